package apiserver

import (
	"net/http"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/store"
)

// versionView serves a stored resource in another version of its kind,
// as kube-apiserver serves autoscaling/v1 HorizontalPodAutoscalers from
// the stored autoscaling/v2 objects. The generic handlers take one: the
// request's kind (decoding, patching, managed fields, responses) is the
// external version, and objects convert on their way to and from the
// store. A nil *versionView is the stored version itself.
type versionView struct {
	// toExternal converts a stored object (Status and other kinds pass
	// through) to the external version.
	toExternal func(stored runtime.Object) (runtime.Object, error)
	// toStored converts an external object to the stored form. base is
	// the stored object it replaces (nil on create): what the external
	// version cannot express is kept from it.
	toStored func(ext, base runtime.Object) (runtime.Object, error)
}

// external converts a stored object to the view's version.
func (v *versionView) external(stored runtime.Object) (runtime.Object, error) {
	if v == nil || stored == nil {
		return stored, nil
	}
	return v.toExternal(stored)
}

// stored converts an object of the view's version to the stored form;
// base is the stored object it replaces, nil on create.
func (v *versionView) stored(ext, base runtime.Object) (runtime.Object, error) {
	if v == nil {
		return ext, nil
	}
	return v.toStored(ext, base)
}

// respondIn writes a stored object in the view's version (Tables and
// metadata, which are version independent, are made from the stored
// object).
func (s *Server) respondIn(w http.ResponseWriter, r *http.Request, code int, view *versionView, k *store.Kind, obj runtime.Object, m mediaType) {
	if m.as == "" {
		ext, err := view.external(obj)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		obj = ext
	}
	s.respond(w, r, code, k, obj, m)
}
