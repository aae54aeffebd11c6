package serviceaccount

import (
	"bytes"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/store"
)

// rootCADescription is the annotation kube-controller-manager's root CA
// publisher puts on kube-root-ca.crt.
const rootCADescription = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."

// EnsureNamespace makes namespace hold, once, what pods of it need for
// their token volume: the "default" ServiceAccount and the
// kube-root-ca.crt ConfigMap with caPEM under ca.crt (updated if it
// differs). Terminating namespaces are left alone. In a running cluster
// the ServiceAccount and RootCAPublisher reconcilers of
// orchestrator/controllers keep these in every namespace; EnsureNamespace
// is for programs and tests that run without them.
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
