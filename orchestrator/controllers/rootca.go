package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Root CA ConfigMap name and key, as upstream publishes them.
const (
	RootCAConfigMapName = "kube-root-ca.crt"
	RootCAConfigMapKey  = "ca.crt"
	// RootCADescriptionAnnotation explains the ConfigMap to users.
	RootCADescriptionAnnotation = "kubernetes.io/description"
)

const rootCADescription = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."

// RootCAPublisher keeps the ConfigMap "kube-root-ca.crt" (key "ca.crt",
// the cluster CA in PEM) in every active namespace: it creates it, puts
// the data back when it is edited and re-creates it when it is deleted
// (upstream's root-ca-cert-publisher). ServiceAccount token volumes mount
// it. With no CA configured it does nothing.
type RootCAPublisher struct {
	cfg Config
	ca  string
	ns  controller.Lister[*corev1.Namespace]
	cms controller.Lister[*corev1.ConfigMap]
	// Controller runs the reconciler.
	Controller *controller.Controller
}

// NewRootCAPublisher builds the publisher for the CA bundle caPEM (keys
// are namespace names).
func NewRootCAPublisher(cfg Config, caPEM []byte) *RootCAPublisher {
	cfg = cfg.withDefaults()
	r := &RootCAPublisher{cfg: cfg, ca: string(caPEM), ns: controller.ListerFor[*corev1.Namespace](cfg.Informers),
		cms: controller.ListerFor[*corev1.ConfigMap](cfg.Informers)}
	r.Controller = controller.New("root-ca-cert-publisher", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.ns.Inf.AddHandler(controller.Handler{
		OnAdd:    r.Controller.EnqueueObject,
		OnUpdate: func(_, o runtime.Object) { r.Controller.EnqueueObject(o) },
	})
	onCM := func(o runtime.Object) {
		if cm := o.(*corev1.ConfigMap); cm.Name == RootCAConfigMapName {
			r.Controller.Enqueue(cm.Namespace)
		}
	}
	r.cms.Inf.AddHandler(controller.Handler{OnUpdate: func(_, o runtime.Object) { onCM(o) }, OnDelete: onCM})
	return r
}

// Run runs the reconciler until ctx ends.
func (r *RootCAPublisher) Run(ctx context.Context) error {
	if r.ca == "" {
		r.cfg.Log.Info("root-ca-cert-publisher: no CA configured, not publishing")
		<-ctx.Done()
		return nil
	}
	return r.Controller.Run(ctx)
}

// Reconcile makes namespace key's kube-root-ca.crt ConfigMap hold the CA.
func (r *RootCAPublisher) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, ok := r.ns.Get("", key)
	if !ok || ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil {
		return controller.Result{}, nil
	}
	cm, ok := r.cms.Get(key, RootCAConfigMapName)
	if !ok {
		_, err := storeapi.Create(ctx, r.cfg.Store, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: key, Name: RootCAConfigMapName,
				Annotations: map[string]string{RootCADescriptionAnnotation: rootCADescription}},
			Data: map[string]string{RootCAConfigMapKey: r.ca},
		})
		switch {
		case err == nil, apierrors.IsAlreadyExists(err):
			return controller.Result{}, nil
		case apierrors.IsForbidden(err), apierrors.IsNotFound(err):
			return controller.Result{}, nil // namespace terminating or gone
		default:
			return controller.Result{}, fmt.Errorf("root-ca-cert-publisher: create in %s: %w", key, err)
		}
	}
	if len(cm.Data) == 1 && cm.Data[RootCAConfigMapKey] == r.ca && len(cm.BinaryData) == 0 &&
		cm.Annotations[RootCADescriptionAnnotation] == rootCADescription {
		return controller.Result{}, nil
	}
	_, err := writeRetry(ctx, r.cfg.Store, cm, false, func(up *corev1.ConfigMap) {
		up.Data = map[string]string{RootCAConfigMapKey: r.ca}
		up.BinaryData = nil
		if up.Annotations == nil {
			up.Annotations = map[string]string{}
		}
		up.Annotations[RootCADescriptionAnnotation] = rootCADescription
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return controller.Result{}, fmt.Errorf("root-ca-cert-publisher: update in %s: %w", key, err)
	}
	if apierrors.IsConflict(err) {
		return controller.Result{Requeue: true}, nil
	}
	return controller.Result{}, nil
}
