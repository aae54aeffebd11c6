package controllers

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/orchestrator/simnode"
	"github.com/tugboatdev/tugboat/store"
)

func withEndpoints(c Config) runner      { return NewEndpoints(c) }
func withServiceAccount(c Config) runner { return NewServiceAccount(c) }

func webPod(name string, port int32) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}}}}}}
}

func (e *env) endpointsState(name string) (ready, notReady []string, ports string) {
	ep, err := store.Get[*corev1.Endpoints](e.ctx, e.s, "default", name)
	if err != nil {
		return nil, nil, err.Error()
	}
	for _, ss := range ep.Subsets {
		for _, a := range ss.Addresses {
			ready = append(ready, fmt.Sprintf("%s:%d", a.TargetRef.Name, ss.Ports[0].Port))
		}
		for _, a := range ss.NotReadyAddresses {
			notReady = append(notReady, fmt.Sprintf("%s:%d", a.TargetRef.Name, ss.Ports[0].Port))
		}
	}
	return ready, notReady, ""
}

func TestEndpointsAndSlicesFollowPodReadiness(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 2, Manual: true}, withEndpoints)
	mustCreate(e, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}})
	mustCreate(e, webPod("a", 8080))
	mustCreate(e, webPod("b", 9090)) // a different container port behind the same name
	e.waitFor("pods bound", func() (bool, string) {
		n := 0
		for _, p := range e.pods("default", "app=web") {
			if p.Spec.NodeName != "" {
				n++
			}
		}
		return n == 2, fmt.Sprint(n)
	})
	if err := e.agent.StartPod(e.ctx, "default", "a"); err != nil {
		t.Fatal(err)
	}
	if err := e.agent.StartPod(e.ctx, "default", "b"); err != nil {
		t.Fatal(err)
	}
	if err := e.agent.SetReady(e.ctx, "default", "b", false); err != nil {
		t.Fatal(err)
	}
	e.waitFor("a ready on 8080, b not ready on 9090", func() (bool, string) {
		r, nr, errs := e.endpointsState("web")
		return cmp.Equal(r, []string{"a:8080"}) && cmp.Equal(nr, []string{"b:9090"}), fmt.Sprint(r, nr, errs)
	})
	e.waitFor("slices", func() (bool, string) {
		sl, _, _ := store.ListOf[*discoveryv1.EndpointSlice](e.ctx, e.s, "default", metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
		var got []string
		for _, s := range sl {
			for _, ep := range s.Endpoints {
				got = append(got, fmt.Sprintf("%s:%d:%v", ep.TargetRef.Name, *s.Ports[0].Port, *ep.Conditions.Ready))
			}
		}
		return len(sl) == 2 && cmp.Equal(sortStrings(got), []string{"a:8080:true", "b:9090:false"}), fmt.Sprint(got)
	})
	// publishNotReadyAddresses makes every address ready.
	update(e, "default", "web", func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true })
	e.waitFor("all ready", func() (bool, string) {
		r, nr, _ := e.endpointsState("web")
		return len(r) == 2 && len(nr) == 0, fmt.Sprint(r, nr)
	})
}

func TestEndpointsLeavesSelectorlessServiceAlone(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}, withEndpoints)
	mustCreate(e, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}})
	mine := mustCreate(e, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}}, Ports: []corev1.EndpointPort{{Port: 80}}}}})
	// Something else changes to make the controller look at the service.
	update(e, "default", "ext", func(s *corev1.Service) { s.Labels = map[string]string{"touched": "yes"} })
	if ok, desc := e.settle(func() (bool, string) {
		ep, err := store.Get[*corev1.Endpoints](e.ctx, e.s, "default", "ext")
		return err == nil && ep.ResourceVersion == mine.ResourceVersion, fmt.Sprint(err)
	}); !ok {
		t.Fatalf("user endpoints changed: %s", desc)
	}
}

func TestServiceAccountDefaultPerNamespace(t *testing.T) {
	e := newEnv(t, simnode.Options{Nodes: 1}, withServiceAccount)
	mustCreate(e, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})
	for _, ns := range []string{"default", "kube-system", "team-a"} {
		e.waitFor("default SA in "+ns, func() (bool, string) {
			_, err := store.Get[*corev1.ServiceAccount](e.ctx, e.s, ns, "default")
			return err == nil, fmt.Sprint(err)
		})
	}
	if err := store.Delete[*corev1.ServiceAccount](e.ctx, e.s, "team-a", "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("re-created", func() (bool, string) {
		_, err := store.Get[*corev1.ServiceAccount](e.ctx, e.s, "team-a", "default")
		return err == nil, fmt.Sprint(err)
	})
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
