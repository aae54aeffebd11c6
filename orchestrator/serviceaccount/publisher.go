package serviceaccount

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
)

// rootCADescription is the annotation kube-controller-manager's root CA
// publisher puts on kube-root-ca.crt.
const rootCADescription = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."

// EnsureNamespace makes namespace hold what pods of it need for their
// token volume, as kube-controller-manager's serviceaccounts and root CA
// publisher controllers do: the "default" ServiceAccount and the
// kube-root-ca.crt ConfigMap with caPEM under ca.crt (updated if it
// differs). Terminating namespaces are left alone.
func EnsureNamespace(ctx context.Context, st store.Interface, namespace string, caPEM []byte) error {
	ns, err := store.Get[*corev1.Namespace](ctx, st, "", namespace)
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	_, err = store.Create(ctx, st, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultServiceAccount, Namespace: namespace}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("serviceaccount: default account in %s: %w", namespace, err)
	}
	cm, err := store.Get[*corev1.ConfigMap](ctx, st, namespace, RootCAConfigMap)
	switch {
	case apierrors.IsNotFound(err):
		_, err = store.Create(ctx, st, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: RootCAConfigMap, Namespace: namespace,
				Annotations: map[string]string{"kubernetes.io/description": rootCADescription}},
			Data: map[string]string{"ca.crt": string(caPEM)},
		})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	case err == nil && !bytes.Equal([]byte(cm.Data["ca.crt"]), caPEM):
		cm = cm.DeepCopy()
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data["ca.crt"] = string(caPEM)
		_, err = store.Update(ctx, st, cm)
	}
	if err != nil {
		return fmt.Errorf("serviceaccount: %s in %s: %w", RootCAConfigMap, namespace, err)
	}
	return nil
}

// Publisher keeps every namespace's default ServiceAccount and
// kube-root-ca.crt ConfigMap in place (see [EnsureNamespace]), also after
// they are deleted.
type Publisher struct {
	// Store is the cluster state. Required.
	Store store.Interface
	// CAPEM is the cluster CA certificate (PEM) published as ca.crt.
	CAPEM []byte
	// Logger receives errors; nil means slog.Default().
	Logger *slog.Logger
}

// Run publishes until ctx ends: it ensures every namespace, then reacts
// to namespaces being added and to the default account or the ConfigMap
// being deleted or changed. It returns nil when ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	for ctx.Err() == nil {
		if err := p.runOnce(ctx); err != nil && ctx.Err() == nil {
			log.Warn("serviceaccount: publisher", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// runOnce lists and watches until a watch ends.
func (p *Publisher) runOnce(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nss, rv, err := store.ListOf[*corev1.Namespace](ctx, p.Store, "", metav1.ListOptions{})
	if err != nil {
		return err
	}
	opts := metav1.ListOptions{ResourceVersion: rv}
	nsw, err := store.WatchOf[*corev1.Namespace](ctx, p.Store, "", opts)
	if err != nil {
		return err
	}
	defer nsw.Stop()
	saw, err := store.WatchOf[*corev1.ServiceAccount](ctx, p.Store, "", metav1.ListOptions{ResourceVersion: rv, FieldSelector: "metadata.name=" + DefaultServiceAccount})
	if err != nil {
		return err
	}
	defer saw.Stop()
	cmw, err := store.WatchOf[*corev1.ConfigMap](ctx, p.Store, "", metav1.ListOptions{ResourceVersion: rv, FieldSelector: "metadata.name=" + RootCAConfigMap})
	if err != nil {
		return err
	}
	defer cmw.Stop()
	for _, ns := range nss {
		if err := EnsureNamespace(ctx, p.Store, ns.Name, p.CAPEM); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case ev, ok = <-nsw.ResultChan():
		case ev, ok = <-saw.ResultChan():
		case ev, ok = <-cmw.ResultChan():
		}
		if !ok {
			return nil // a watch ended: list again
		}
		if ev.Type == watch.Error || ev.Type == watch.Bookmark {
			if ev.Type == watch.Error {
				return fmt.Errorf("watch: %v", apierrors.FromObject(ev.Object))
			}
			continue
		}
		m, ok := ev.Object.(metav1.Object)
		if !ok {
			continue
		}
		ns := m.GetNamespace()
		if _, isNS := ev.Object.(*corev1.Namespace); isNS {
			if ev.Type == watch.Deleted {
				continue
			}
			ns = m.GetName()
		}
		if err := EnsureNamespace(ctx, p.Store, ns, p.CAPEM); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
}
