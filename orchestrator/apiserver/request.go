package apiserver

import (
	"net/http"
	"runtime"
	"strings"
)

// requestInfo is what a request path and method say about a request.
type requestInfo struct {
	resourceRequest bool
	verb            string
	group, version  string
	namespace       string
	resource        string
	name            string
	subresource     string
	// rest holds path segments after the subresource (pods/proxy paths).
	rest []string
}

// parseRequest splits /api/v1/... and /apis/<g>/<v>/... paths into their
// parts following the Kubernetes REST conventions.
func parseRequest(r *http.Request) requestInfo {
	var info requestInfo
	parts := splitPath(r.URL.Path)
	if len(parts) == 0 {
		return info
	}
	for _, p := range parts {
		if p == "" {
			return info // an empty segment ("/api//v1") names no resource
		}
	}
	switch {
	case parts[0] == "api" && len(parts) >= 3:
		info.version = parts[1]
		parts = parts[2:]
	case parts[0] == "apis" && len(parts) >= 4:
		info.group, info.version = parts[1], parts[2]
		parts = parts[3:]
	default:
		return info
	}
	info.resourceRequest = true
	if parts[0] == "namespaces" && len(parts) > 1 {
		info.namespace = parts[1]
		if len(parts) > 2 && parts[2] != "status" && parts[2] != "finalize" {
			parts = parts[2:]
		}
	}
	info.resource = parts[0]
	if len(parts) > 1 {
		info.name = parts[1]
	}
	if len(parts) > 2 {
		info.subresource = parts[2]
	}
	if len(parts) > 3 {
		info.rest = parts[3:]
	}
	if info.resource == "namespaces" {
		info.namespace = ""
		if len(parts) > 1 {
			info.namespace = parts[1]
		}
	}
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case info.name != "":
			info.verb = "get"
		case q.Get("watch") == "true" || q.Get("watch") == "1":
			info.verb = "watch"
		default:
			info.verb = "list"
		}
	case http.MethodPost:
		info.verb = "create"
	case http.MethodPut:
		info.verb = "update"
	case http.MethodPatch:
		info.verb = "patch"
	case http.MethodDelete:
		info.verb = "delete"
		if info.name == "" {
			info.verb = "deletecollection"
		}
	default:
		info.verb = strings.ToLower(r.Method)
	}
	return info
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func goVersion() string { return runtime.Version() }

func platform() string { return runtime.GOOS + "/" + runtime.GOARCH }
