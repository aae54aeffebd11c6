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

// ServiceAccount makes sure every active namespace has a "default"
// ServiceAccount, re-creating it when it is deleted.
type ServiceAccount struct {
	cfg Config
	ns  controller.Lister[*corev1.Namespace]
	sa  controller.Lister[*corev1.ServiceAccount]
	// Controller runs the reconciler.
	Controller *controller.Controller
}

// NewServiceAccount builds the ServiceAccount reconciler (keys are namespace names).
func NewServiceAccount(cfg Config) *ServiceAccount {
	cfg = cfg.withDefaults()
	r := &ServiceAccount{cfg: cfg, ns: controller.ListerFor[*corev1.Namespace](cfg.Informers),
		sa: controller.ListerFor[*corev1.ServiceAccount](cfg.Informers)}
	r.Controller = controller.New("serviceaccount", r, cfg.Workers, cfg.Clock, cfg.Log)
	r.ns.Inf.AddHandler(controller.Handler{
		OnAdd:    r.Controller.EnqueueObject,
		OnUpdate: func(_, o runtime.Object) { r.Controller.EnqueueObject(o) },
	})
	r.sa.Inf.AddHandler(controller.Handler{OnDelete: func(o runtime.Object) {
		r.Controller.Enqueue(o.(*corev1.ServiceAccount).Namespace)
	}})
	return r
}

// Run runs the reconciler until ctx ends.
func (r *ServiceAccount) Run(ctx context.Context) error { return r.Controller.Run(ctx) }

// Reconcile ensures namespace key has its default ServiceAccount.
func (r *ServiceAccount) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, ok := r.ns.Get("", key)
	if !ok || ns.Status.Phase != corev1.NamespaceActive || ns.DeletionTimestamp != nil {
		return controller.Result{}, nil
	}
	if _, ok := r.sa.Get(key, "default"); ok {
		return controller.Result{}, nil
	}
	_, err := storeapi.Create(ctx, r.cfg.Store, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: key, Name: "default"}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
			return controller.Result{}, nil // namespace terminating or gone
		}
		return controller.Result{}, fmt.Errorf("serviceaccount: create default in %s: %w", key, err)
	}
	return controller.Result{}, nil
}
