package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/store/storeapi"
)

// Annotations of static and mirror pods, as upstream.
const (
	AnnotationConfigSource = "kubernetes.io/config.source"
	AnnotationConfigHash   = "kubernetes.io/config.hash"
	AnnotationConfigMirror = "kubernetes.io/config.mirror"
)

// staticResyncInterval is how often the manifest directory is read even
// without an inotify event (upstream's file source checks every 20 s); a
// directory that cannot be watched (it does not exist yet) is also retried
// then.
const staticResyncInterval = 20 * time.Second

func isMirrorPod(p *corev1.Pod) bool {
	_, ok := p.Annotations[AnnotationConfigMirror]
	return ok
}

// ParseStaticPod decodes a static pod manifest (YAML or JSON, strict) for
// node and gives it the name "<name>-<node>", a UID derived from the
// manifest, the node's name and the config annotations.
func ParseStaticPod(reg *storeapi.Registry, data []byte, node, source string) (*corev1.Pod, error) {
	obj, err := storeapi.Decode(reg, data)
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("agent: static manifest %s holds a %T, want a Pod", source, obj)
	}
	if pod.Name == "" {
		return nil, fmt.Errorf("agent: static manifest %s: metadata.name is required", source)
	}
	if k := reg.ForObject(pod); k != nil && k.Default != nil {
		k.Default(pod)
	}
	if pod.Namespace == "" {
		pod.Namespace = metav1.NamespaceDefault
	}
	sum := sha256.Sum256(append([]byte(node+"\x00"+source+"\x00"), data...))
	hash := hex.EncodeToString(sum[:16])
	pod.Name = pod.Name + "-" + node
	pod.UID = types.UID(hash)
	pod.Spec.NodeName = node
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationConfigSource] = "file"
	pod.Annotations[AnnotationConfigHash] = hash
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: storeapi.QOSClass(&pod.Spec)}
	return pod, nil
}

// staticLoop runs the pods of the manifest directory: new files start pods,
// changed files replace them, removed files stop them. Each runs with a
// mirror pod in the API.
func (a *Agent) staticLoop(ctx context.Context) error {
	known := map[types.UID]bool{}
	changed := make(chan struct{}, 1)
	var dw *dirWatcher
	defer func() {
		if dw != nil {
			dw.close()
		}
	}()
	for {
		if dw == nil {
			var err error
			if dw, err = watchDir(a.cfg.StaticPodDir, changed, a.log); err != nil {
				lvl := slog.LevelDebug
				if _, serr := os.Stat(a.cfg.StaticPodDir); serr == nil {
					lvl = slog.LevelWarn // it exists: inotify itself failed (instance limit?)
				}
				a.log.Log(ctx, lvl, "static pod directory not watched; rescanning it every 20 s", "dir", a.cfg.StaticPodDir, "err", err)
			}
		} else if dw.gone() {
			// The directory was removed or moved: watch it again once it
			// is back.
			dw.close()
			dw = nil
		}
		want := map[types.UID]*corev1.Pod{}
		entries, err := os.ReadDir(a.cfg.StaticPodDir)
		if err != nil && !os.IsNotExist(err) {
			a.log.Warn("reading static pod directory", "err", err)
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".json")) {
				continue
			}
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			path := filepath.Join(a.cfg.StaticPodDir, n)
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			pod, err := ParseStaticPod(a.s.Registry(), data, a.cfg.NodeName, path)
			if err != nil {
				a.log.Warn("invalid static pod manifest", "file", path, "err", err)
				continue
			}
			want[pod.UID] = pod
		}
		for uid, pod := range want {
			a.mu.Lock()
			w := a.workers[uid]
			if w == nil && ctx.Err() == nil {
				w = newPodWorker(a, pod, true)
				a.workers[uid] = w
				a.wg.Add(1)
				w.start(ctx)
			}
			a.mu.Unlock()
			known[uid] = true
			if w != nil {
				a.ensureMirror(ctx, w, pod)
			}
		}
		for uid := range known {
			if _, ok := want[uid]; ok {
				continue
			}
			delete(known, uid)
			a.mu.Lock()
			if w := a.workers[uid]; w != nil {
				w.setGone()
			}
			a.mu.Unlock()
		}
		t := a.clk.NewTimer(staticResyncInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-changed:
		case <-a.staticKick:
		case <-t.C():
		}
		t.Stop()
	}
}

// ensureMirror creates the static pod's mirror pod in the API when it is
// missing (or belongs to another version of the manifest).
func (a *Agent) ensureMirror(ctx context.Context, w *podWorker, pod *corev1.Pod) {
	hash := pod.Annotations[AnnotationConfigHash]
	cur, err := storeapi.Get[*corev1.Pod](ctx, a.s, pod.Namespace, pod.Name)
	switch {
	case err == nil && cur.Annotations[AnnotationConfigMirror] == hash && cur.DeletionTimestamp == nil:
		w.mu.Lock()
		fresh := w.mirrorName == ""
		w.mirrorName = pod.Namespace + "/" + pod.Name
		w.forceStatus = w.forceStatus || fresh
		w.mu.Unlock()
		if fresh {
			w.kickNow()
		}
		return
	case err == nil:
		// A stale mirror (old manifest) or one being deleted: replace it.
		zero := int64(0)
		uid := cur.UID
		_ = storeapi.Delete[*corev1.Pod](ctx, a.s, pod.Namespace, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		return
	case !apierrors.IsNotFound(err):
		return
	}
	m := pod.DeepCopy()
	m.UID = ""
	m.ResourceVersion = ""
	m.Annotations[AnnotationConfigMirror] = hash
	if n := a.Node(); n != nil {
		t := true
		m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID, Controller: &t}}
	}
	if _, err := storeapi.Create(ctx, a.s, m); err != nil && !apierrors.IsAlreadyExists(err) {
		a.log.Warn("creating mirror pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return
	}
	w.mu.Lock()
	w.mirrorName = pod.Namespace + "/" + pod.Name
	w.forceStatus = true
	w.mu.Unlock()
	w.kickNow()
}

// deleteMirror removes a static pod's mirror pod.
func (w *podWorker) deleteMirror(ctx context.Context) {
	w.mu.Lock()
	mirror := w.mirrorName
	w.mu.Unlock()
	ns, name, ok := strings.Cut(mirror, "/")
	if !ok {
		return
	}
	zero := int64(0)
	if err := storeapi.Delete[*corev1.Pod](ctx, w.a.s, ns, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
		w.a.log.Warn("deleting mirror pod", "pod", mirror, "err", err)
	}
}
