package store

import (
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Status errors apimachinery has no constructor for, shaped as the API
// server sends them.

func statusError(code int32, reason metav1.StatusReason, msg string, details *metav1.StatusDetails) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg, Details: details,
	}}
}

func unknownResource(gr schema.GroupResource) error {
	return statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
		fmt.Sprintf("the server could not find the requested resource %q", gr.String()),
		&metav1.StatusDetails{Group: gr.Group, Kind: gr.Resource})
}

func tooLargeResourceVersion(want, current uint64) error {
	return statusError(http.StatusGatewayTimeout, metav1.StatusReasonTimeout,
		fmt.Sprintf("Too large resource version: %d, current: %d", want, current),
		&metav1.StatusDetails{RetryAfterSeconds: 1, Causes: []metav1.StatusCause{{
			Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version",
		}}})
}

func unsupportedMediaType(what string) error {
	return statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
		fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got %s)", what), nil)
}
