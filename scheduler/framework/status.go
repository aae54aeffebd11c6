package framework

import (
	"errors"
	"strings"
)

// Code is the outcome of a plugin call.
type Code int

// The codes, as upstream.
const (
	// Success means the plugin passed.
	Success Code = iota
	// Error is an internal error; the pod is retried with backoff.
	Error
	// Unschedulable means the pod does not fit now but preemption may help.
	Unschedulable
	// UnschedulableAndUnresolvable means preemption cannot help on this node.
	UnschedulableAndUnresolvable
	// Wait is returned by Permit plugins to hold the pod.
	Wait
	// Skip is returned by PreFilter/PreScore to skip the plugin's
	// Filter/Score for this pod.
	Skip
	// Pending means the pod waits for something other than the cluster
	// state (used by plugins that gate scheduling).
	Pending
)

var codeNames = [...]string{"Success", "Error", "Unschedulable", "UnschedulableAndUnresolvable", "Wait", "Skip", "Pending"}

// String returns the code's name.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "Unknown"
}

// Status is the result of a plugin call. A nil *Status means Success.
// Statuses are immutable once returned, so plugins may return shared values.
type Status struct {
	code    Code
	reasons []string
	err     error
	plugin  string
}

// NewStatus returns a status with a code and reasons.
func NewStatus(code Code, reasons ...string) *Status {
	return &Status{code: code, reasons: reasons}
}

// AsStatus wraps an error into an Error status.
func AsStatus(err error) *Status {
	if err == nil {
		return nil
	}
	return &Status{code: Error, reasons: []string{err.Error()}, err: err}
}

// WithPlugin returns a copy of s naming the plugin that produced it.
func (s *Status) WithPlugin(name string) *Status {
	if s == nil {
		return nil
	}
	c := *s
	c.plugin = name
	return &c
}

// Code returns the status code (Success for nil).
func (s *Status) Code() Code {
	if s == nil {
		return Success
	}
	return s.code
}

// Plugin names the plugin that produced the status, when known.
func (s *Status) Plugin() string {
	if s == nil {
		return ""
	}
	return s.plugin
}

// Reasons returns the reasons.
func (s *Status) Reasons() []string {
	if s == nil {
		return nil
	}
	return s.reasons
}

// Message joins the reasons.
func (s *Status) Message() string {
	if s == nil {
		return ""
	}
	return strings.Join(s.reasons, ", ")
}

// AsError returns the status as an error (nil on success or skip).
func (s *Status) AsError() error {
	if s.IsSuccess() || s.code == Skip {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	return errors.New(s.Message())
}

// IsSuccess reports success.
func (s *Status) IsSuccess() bool { return s.Code() == Success }

// IsSkip reports the Skip code.
func (s *Status) IsSkip() bool { return s.Code() == Skip }

// IsRejected reports Unschedulable, UnschedulableAndUnresolvable or Pending.
func (s *Status) IsRejected() bool {
	c := s.Code()
	return c == Unschedulable || c == UnschedulableAndUnresolvable || c == Pending
}

// String formats the status for logs.
func (s *Status) String() string {
	if s == nil {
		return "Success"
	}
	return s.code.String() + ": " + s.Message()
}
