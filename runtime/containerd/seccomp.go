package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/contrib/apparmor"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tugboatdev/tugboat/runtime"
)

// appArmorProfileName is the name under which the runtime's default
// AppArmor profile is loaded on hosts with AppArmor.
const appArmorProfileName = "tugboat-default"

// validSeccompAction reports whether a profile may name the action.
func validSeccompAction(a specs.LinuxSeccompAction) bool {
	switch a {
	case specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
		specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify:
		return true
	}
	return false
}

// validSeccompOperator reports whether a profile may compare with op.
func validSeccompOperator(op specs.LinuxSeccompOperator) bool {
	switch op {
	case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
		return true
	}
	return false
}

// ParseSeccompProfile decodes a seccomp profile in the OCI runtime-spec
// JSON form (defaultAction, architectures, syscalls with names, action,
// errnoRet and args), which is what a Localhost profile file holds, as for
// containerd's CRI plugin. Fields of the Docker profile format that the
// OCI form lacks (such as archMap) are ignored, as there; unknown actions
// or operators and rules without syscall names are errors.
func ParseSeccompProfile(data []byte) (*specs.LinuxSeccomp, error) {
	var p specs.LinuxSeccomp
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("seccomp profile: data after the JSON object")
	}
	if !validSeccompAction(p.DefaultAction) {
		return nil, fmt.Errorf("seccomp profile: unknown defaultAction %q", p.DefaultAction)
	}
	for i, sc := range p.Syscalls {
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("seccomp profile: syscalls[%d] names no system call", i)
		}
		for _, n := range sc.Names {
			if n == "" {
				return nil, fmt.Errorf("seccomp profile: syscalls[%d] has an empty name", i)
			}
		}
		if !validSeccompAction(sc.Action) {
			return nil, fmt.Errorf("seccomp profile: syscalls[%d]: unknown action %q", i, sc.Action)
		}
		for j, a := range sc.Args {
			if !validSeccompOperator(a.Op) {
				return nil, fmt.Errorf("seccomp profile: syscalls[%d].args[%d]: unknown operator %q", i, j, a.Op)
			}
		}
	}
	return &p, nil
}

// seccompProfileRoot is where Localhost seccomp profiles are looked up.
func (r *Runtime) seccompProfileRoot() string {
	if r.opts.SeccompProfileRoot != "" {
		return r.opts.SeccompProfileRoot
	}
	return filepath.Join(r.opts.DataDir, "seccomp")
}

// appArmorEnabled reports whether the kernel has AppArmor enabled.
func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

// securityProfileOpts maps the container's seccomp and AppArmor choices to
// spec options. They must come after the capability options: the default
// seccomp profile allows system calls according to the capabilities.
func (r *Runtime) securityProfileOpts(cfg *runtime.ContainerConfig) ([]oci.SpecOpts, error) {
	sec := cfg.Security
	var opts []oci.SpecOpts
	sp := sec.Seccomp
	if sp.Type == "" {
		sp.Type = runtime.ProfileUnconfined
		if r.opts.SeccompDefault {
			sp.Type = runtime.ProfileRuntimeDefault
		}
	}
	switch {
	case sec.Privileged || sp.Type == runtime.ProfileUnconfined:
		opts = append(opts, withoutSeccomp)
	case sp.Type == runtime.ProfileRuntimeDefault:
		opts = append(opts, seccomp.WithDefaultProfile())
	case sp.Type == runtime.ProfileLocalhost:
		name := sp.LocalhostProfile
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("seccomp localhostProfile %q must be a relative path inside %s: %w", name, r.seccompProfileRoot(), runtime.ErrInvalid)
		}
		file := filepath.Join(r.seccompProfileRoot(), name)
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("seccomp localhostProfile: %w", err)
		}
		p, err := ParseSeccompProfile(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Linux == nil {
				s.Linux = &specs.Linux{}
			}
			s.Linux.Seccomp = p
			return nil
		})
	default:
		return nil, fmt.Errorf("unknown seccomp profile type %q: %w", sp.Type, runtime.ErrInvalid)
	}

	ap := sec.AppArmor
	if sec.Privileged || ap.Type == "" || ap.Type == runtime.ProfileUnconfined {
		return opts, nil
	}
	if !appArmorEnabled() {
		if ap.Type == runtime.ProfileLocalhost {
			return nil, fmt.Errorf("AppArmor profile %q requested but AppArmor is not enabled on this node: %w", ap.LocalhostProfile, runtime.ErrInvalid)
		}
		// RuntimeDefault on a node without AppArmor: nothing to apply.
		return opts, nil
	}
	switch ap.Type {
	case runtime.ProfileRuntimeDefault:
		opts = append(opts, apparmor.WithDefaultProfile(appArmorProfileName))
	case runtime.ProfileLocalhost:
		if ap.LocalhostProfile == "" {
			return nil, fmt.Errorf("AppArmor Localhost profile without a name: %w", runtime.ErrInvalid)
		}
		opts = append(opts, apparmor.WithProfile(ap.LocalhostProfile))
	default:
		return nil, fmt.Errorf("unknown AppArmor profile type %q: %w", ap.Type, runtime.ErrInvalid)
	}
	return opts, nil
}

// withoutSeccomp removes any seccomp profile from the spec.
func withoutSeccomp(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Linux != nil {
		s.Linux.Seccomp = nil
	}
	return nil
}
