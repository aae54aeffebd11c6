package apiserver

import (
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tugboatdev/tugboat/store"
)

// autoscaling/v1 HorizontalPodAutoscaler is served, as kube-apiserver
// does, as a second version of the one stored resource (kept in its
// autoscaling/v2 form): requests convert on the way in and out
// (hpav1_convert.go).

var (
	hpaGR      = schema.GroupResource{Group: "autoscaling", Resource: "horizontalpodautoscalers"}
	hpaV1GVK   = schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "HorizontalPodAutoscaler"}
	hpaV1Group = schema.GroupVersion{Group: "autoscaling", Version: "v1"}
)

// isHPAv1 reports whether a request is for autoscaling/v1
// horizontalpodautoscalers.
func isHPAv1(info requestInfo) bool {
	return info.group == hpaV1Group.Group && info.version == hpaV1Group.Version && info.resource == hpaGR.Resource
}

// hpaV1Kind is the stored HorizontalPodAutoscaler kind seen through
// autoscaling/v1: the same resource with v1 Go types, for decoding and
// patching request bodies. Nil when the registry has no v2 HPA.
func hpaV1Kind(reg *store.Registry) (v2, v1 *store.Kind) {
	v2 = reg.ForResource(hpaGR)
	if v2 == nil || v2.GVK.Version != "v2" {
		return nil, nil
	}
	k := *v2
	k.GVK = hpaV1GVK
	k.New = func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscaler{} }
	k.NewList = func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscalerList{} }
	return v2, &k
}

// hpaV1Resources are the discovery entries of autoscaling/v1.
func hpaV1Resources(k *store.Kind) []metav1.APIResource {
	return []metav1.APIResource{
		{Name: k.Resource, SingularName: k.Singular, Namespaced: true, Kind: hpaV1GVK.Kind, Verbs: allVerbs, ShortNames: k.ShortNames, Categories: k.Categories},
		{Name: k.Resource + "/status", Namespaced: true, Kind: hpaV1GVK.Kind, Verbs: statusVerbs},
	}
}

// hpaV1View is the autoscaling/v1 view of the stored autoscaling/v2
// HorizontalPodAutoscalers that the generic handlers serve v1 requests
// through.
func hpaV1View() *versionView {
	return &versionView{
		toExternal: hpaV1Object,
		toStored: func(ext, base runtime.Object) (runtime.Object, error) {
			h, ok := ext.(*autoscalingv1.HorizontalPodAutoscaler)
			if !ok {
				return nil, apierrors.NewInternalError(fmt.Errorf("apiserver: %T is not an autoscaling/v1 HorizontalPodAutoscaler", ext))
			}
			b, _ := base.(*autoscalingv2.HorizontalPodAutoscaler)
			return hpaFromV1(h, b)
		},
	}
}

// kindFor returns the kind a resource request speaks and, when that is
// not the stored version, the view converting between them; nil when the
// request names no served resource and version.
func (s *Server) kindFor(info requestInfo) (*store.Kind, *versionView) {
	if isHPAv1(info) {
		if _, k1 := hpaV1Kind(s.reg); k1 != nil {
			return k1, hpaV1View()
		}
		return nil, nil
	}
	k := s.reg.ForResource(schema.GroupResource{Group: info.group, Resource: info.resource})
	if k == nil || k.GVK.Version != info.version {
		return nil, nil
	}
	return k, nil
}

// hpaV1Object converts a stored object to v1 (Status and other kinds pass
// through).
func hpaV1Object(obj runtime.Object) (runtime.Object, error) {
	h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return obj, nil
	}
	return hpaToV1(h)
}

// addHPAConversions registers the v1 <-> v2 HorizontalPodAutoscaler
// conversions in scheme, which the field manager uses to relate
// managedFields entries recorded in one version to objects in the other.
func addHPAConversions(scheme *runtime.Scheme) error {
	if err := scheme.AddConversionFunc((*autoscalingv1.HorizontalPodAutoscaler)(nil), (*autoscalingv2.HorizontalPodAutoscaler)(nil),
		func(a, b any, _ conversion.Scope) error {
			out, err := hpaFromV1(a.(*autoscalingv1.HorizontalPodAutoscaler), nil)
			if err != nil {
				return err
			}
			*b.(*autoscalingv2.HorizontalPodAutoscaler) = *out
			return nil
		}); err != nil {
		return fmt.Errorf("apiserver: hpa conversion: %w", err)
	}
	if err := scheme.AddConversionFunc((*autoscalingv2.HorizontalPodAutoscaler)(nil), (*autoscalingv1.HorizontalPodAutoscaler)(nil),
		func(a, b any, _ conversion.Scope) error {
			out, err := hpaToV1(a.(*autoscalingv2.HorizontalPodAutoscaler))
			if err != nil {
				return err
			}
			*b.(*autoscalingv1.HorizontalPodAutoscaler) = *out
			return nil
		}); err != nil {
		return fmt.Errorf("apiserver: hpa conversion: %w", err)
	}
	return nil
}
