package apiserver

import (
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/store"
)

// patchTracked applies a JSON, merge or strategic merge patch as
// kube-apiserver does: read the live object, apply the patch, record the
// write in metadata.managedFields as an "Update" by manager, and write it
// back with the live resourceVersion as precondition, starting over on a
// conflict unless the patch itself carries a resourceVersion or uid.
func (s *Server) patchTracked(r *http.Request, info requestInfo, k *store.Kind, ns string, pt types.PatchType, body []byte, opts metav1.PatchOptions) (runtime.Object, error) {
	ctx := r.Context()
	manager := managerName(r, opts.FieldManager)
	final := patchHasPrecondition(body)
	uopts := metav1.UpdateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager}
	for try := 0; ; try++ {
		live, err := s.st.Get(ctx, k.GroupResource(), ns, info.name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		next, err := store.ApplyPatch(k, live, pt, body)
		if err != nil {
			return nil, err
		}
		nextAcc, err := meta.Accessor(next)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		liveAcc, _ := meta.Accessor(live)
		if nextAcc.GetName() != info.name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", nextAcc.GetName(), info.name))
		}
		if nextAcc.GetNamespace() != liveAcc.GetNamespace() {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		if nextAcc.GetResourceVersion() == "" {
			nextAcc.SetResourceVersion(liveAcc.GetResourceVersion())
		}
		next = s.trackUpdate(k, info.subresource, live, next, manager)
		var out runtime.Object
		if info.subresource == "status" {
			out, err = s.st.UpdateStatus(ctx, next, uopts)
		} else {
			out, err = s.st.Update(ctx, next, uopts)
		}
		if !apierrors.IsConflict(err) || final || try >= 16 || ctx.Err() != nil {
			return out, err
		}
		time.Sleep(time.Duration(try+1) * time.Millisecond)
	}
}

// allowCreateOnUpdate reports whether the upstream REST strategy of gr
// has AllowCreateOnUpdate: a PUT of a missing object creates it.
// (ConfigMaps, Secrets, Pods, Nodes, PersistentVolumes, EndpointSlices,
// Namespaces and most others answer 404 instead.)
func allowCreateOnUpdate(gr schema.GroupResource) bool {
	switch gr.Group {
	case "":
		switch gr.Resource {
		case "services", "endpoints", "events", "limitranges":
			return true
		}
	case "events.k8s.io":
		return gr.Resource == "events"
	case "coordination.k8s.io":
		return gr.Resource == "leases"
	case "rbac.authorization.k8s.io":
		switch gr.Resource {
		case "roles", "rolebindings", "clusterroles", "clusterrolebindings":
			return true
		}
	case "node.k8s.io":
		return gr.Resource == "runtimeclasses"
	case "flowcontrol.apiserver.k8s.io":
		return gr.Resource == "flowschemas" || gr.Resource == "prioritylevelconfigurations"
	}
	return false
}
