package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/orchestrator/controller"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// LocalPathProvisioner is the provisioner name of StorageClasses whose
// volumes the [PersistentVolume] controller makes as host directories.
const LocalPathProvisioner = "tugboat.dev/local-path"

// Annotations of the binding protocol, as upstream.
const (
	annBindCompleted     = "pv.kubernetes.io/bind-completed"
	annBoundByController = "pv.kubernetes.io/bound-by-controller"
	annProvisionedBy     = "pv.kubernetes.io/provisioned-by"
	annSelectedNode      = "volume.kubernetes.io/selected-node"
	annDefaultClass      = "storageclass.kubernetes.io/is-default-class"
)

// PersistentVolume binds PersistentVolumeClaims to PersistentVolumes
// (matching class, access modes, volume mode, selector and size, the
// smallest fitting volume first; storageClassName "" binds only
// pre-created class-less volumes), provisions host-directory volumes for
// StorageClasses of the local-path provisioner (at once, or on the node of
// the first pod with WaitForFirstConsumer), and applies reclaim policies
// when a claim goes: Retain (Released, never rebound), Delete (volume and
// directory removed) and Recycle (directory emptied, volume Available again).
// A bound claim whose request grows is expanded when its StorageClass has
// allowVolumeExpansion: the volume's capacity grows; a local-path volume
// (a directory) is then done, any other filesystem volume waits with the
// FileSystemResizePending condition for its node to grow the filesystem.
type PersistentVolume struct {
	cfg     Config
	pvs     controller.Lister[*corev1.PersistentVolume]
	pvcs    controller.Lister[*corev1.PersistentVolumeClaim]
	classes controller.Lister[*storagev1.StorageClass]
	pods    controller.Lister[*corev1.Pod]
	rec     *controller.Recorder
	// BaseDir is where local-path volumes are made (default /var/lib/tugboat/local-path).
	BaseDir string
	// Controller runs the reconciler; keys are "pv/<name>" and "pvc/<ns>/<name>".
	Controller *controller.Controller
}

// NewPersistentVolume builds the volume binder with local-path volumes under baseDir.
func NewPersistentVolume(cfg Config, baseDir string) *PersistentVolume {
	cfg = cfg.withDefaults()
	if baseDir == "" {
		baseDir = "/var/lib/tugboat/local-path"
	}
	r := &PersistentVolume{cfg: cfg, BaseDir: baseDir,
		pvs: controller.ListerFor[*corev1.PersistentVolume](cfg.Informers), pvcs: controller.ListerFor[*corev1.PersistentVolumeClaim](cfg.Informers),
		classes: controller.ListerFor[*storagev1.StorageClass](cfg.Informers), pods: controller.ListerFor[*corev1.Pod](cfg.Informers),
		rec: controller.NewRecorder(cfg.Store, "persistentvolume-controller", cfg.Clock, cfg.Log)}
	c := controller.New("persistentvolume", r, 1, cfg.Clock, cfg.Log)
	r.Controller = c
	onPV := func(o runtime.Object) {
		pv := o.(*corev1.PersistentVolume)
		c.Enqueue("pv/" + pv.Name)
		if ref := pv.Spec.ClaimRef; ref != nil {
			c.Enqueue("pvc/" + controller.Key(ref.Namespace, ref.Name))
		}
		// A new or freed volume may serve a pending claim.
		for _, pvc := range r.pvcs.List("", nil) {
			if pvc.Spec.VolumeName == "" {
				c.Enqueue("pvc/" + controller.KeyOf(pvc))
			}
		}
	}
	onPVC := func(o runtime.Object) {
		pvc := o.(*corev1.PersistentVolumeClaim)
		c.Enqueue("pvc/" + controller.KeyOf(pvc))
		if pvc.Spec.VolumeName != "" {
			c.Enqueue("pv/" + pvc.Spec.VolumeName)
		}
		for _, pv := range r.pvs.List("", nil) {
			if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == pvc.Namespace && ref.Name == pvc.Name {
				c.Enqueue("pv/" + pv.Name)
			}
		}
	}
	r.pvs.Inf.AddHandler(controller.Handler{OnAdd: onPV, OnUpdate: func(_, o runtime.Object) { onPV(o) }, OnDelete: onPV})
	r.pvcs.Inf.AddHandler(controller.Handler{OnAdd: onPVC, OnUpdate: func(_, o runtime.Object) { onPVC(o) }, OnDelete: onPVC})
	onPod := func(o runtime.Object) {
		p := podOf(o)
		if p.Spec.NodeName == "" {
			return
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				c.Enqueue("pvc/" + controller.Key(p.Namespace, v.PersistentVolumeClaim.ClaimName))
			}
		}
	}
	r.pods.Inf.AddHandler(controller.Handler{OnAdd: onPod, OnUpdate: func(_, o runtime.Object) { onPod(o) }})
	pending := func(runtime.Object) {
		for _, pvc := range r.pvcs.List("", nil) {
			if pvc.Spec.VolumeName == "" {
				c.Enqueue("pvc/" + controller.KeyOf(pvc))
			}
		}
	}
	r.classes.Inf.AddHandler(controller.Handler{OnAdd: pending, OnUpdate: func(_, o runtime.Object) { pending(o) }})
	return r
}

// Run runs the reconciler and its recorder until ctx ends.
func (r *PersistentVolume) Run(ctx context.Context) error {
	return runWithRecorder(ctx, r.rec, r.Controller)
}

// Reconcile syncs one volume or claim.
func (r *PersistentVolume) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	switch {
	case strings.HasPrefix(key, "pv/"):
		return controller.Result{}, r.syncVolume(ctx, strings.TrimPrefix(key, "pv/"))
	case strings.HasPrefix(key, "pvc/"):
		ns, name := controller.SplitKey(strings.TrimPrefix(key, "pvc/"))
		return controller.Result{}, r.syncClaim(ctx, ns, name)
	}
	return controller.Result{}, nil
}

func (r *PersistentVolume) classOf(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	for _, sc := range r.classes.List("", nil) {
		if sc.Annotations[annDefaultClass] == "true" {
			return sc.Name
		}
	}
	return ""
}

func hasModes(have, want []corev1.PersistentVolumeAccessMode) bool {
	for _, w := range want {
		ok := false
		for _, h := range have {
			ok = ok || h == w
		}
		if !ok {
			return false
		}
	}
	return true
}

func volumeMode(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

// matches reports whether pv can serve pvc.
func (r *PersistentVolume) matches(pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim, class string) bool {
	if pv.DeletionTimestamp != nil || pv.Spec.StorageClassName != class || !hasModes(pv.Spec.AccessModes, pvc.Spec.AccessModes) ||
		volumeMode(pv.Spec.VolumeMode) != volumeMode(pvc.Spec.VolumeMode) {
		return false
	}
	if ref := pv.Spec.ClaimRef; ref != nil && (ref.Namespace != pvc.Namespace || ref.Name != pvc.Name || (ref.UID != "" && ref.UID != pvc.UID)) {
		return false
	}
	if pvc.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(pvc.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pv.Labels)) {
			return false
		}
	}
	want := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	have := pv.Spec.Capacity[corev1.ResourceStorage]
	return have.Cmp(want) >= 0
}

func (r *PersistentVolume) syncClaim(ctx context.Context, ns, name string) error {
	pvc, ok := r.pvcs.Get(ns, name)
	if !ok || pvc.DeletionTimestamp != nil {
		return nil
	}
	if pvc.Spec.VolumeName != "" {
		pv, ok := r.pvs.Get("", pvc.Spec.VolumeName)
		if !ok {
			if pvc.Status.Phase == corev1.ClaimBound {
				return r.claimPhase(ctx, pvc, corev1.ClaimLost, nil)
			}
			return nil
		}
		if ref := pv.Spec.ClaimRef; ref == nil || ref.UID == "" {
			return r.bind(ctx, pv, pvc)
		} else if ref.UID != pvc.UID {
			return nil
		}
		if err := r.claimPhase(ctx, pvc, corev1.ClaimBound, pv); err != nil {
			return err
		}
		return r.expand(ctx, pvc, pv)
	}
	class := r.classOf(pvc)
	var best *corev1.PersistentVolume
	for _, pv := range r.pvs.List("", nil) {
		if pv.Status.Phase == corev1.VolumeReleased || pv.Status.Phase == corev1.VolumeFailed || !r.matches(pv, pvc, class) {
			continue
		}
		if pv.Spec.ClaimRef != nil { // pre-bound to this claim wins
			best = pv
			break
		}
		if best == nil {
			best = pv
			continue
		}
		bc, pc := best.Spec.Capacity[corev1.ResourceStorage], pv.Spec.Capacity[corev1.ResourceStorage]
		if pc.Cmp(bc) < 0 {
			best = pv
		}
	}
	if best != nil {
		return r.bind(ctx, best, pvc)
	}
	if class == "" {
		r.rec.Eventf(pvc, corev1.EventTypeNormal, "FailedBinding", "no persistent volumes available for this claim and no storage class is set")
		return nil
	}
	sc, ok := r.classes.Get("", class)
	if !ok {
		r.rec.Eventf(pvc, corev1.EventTypeWarning, "ProvisioningFailed", "storageclass.storage.k8s.io %q not found", class)
		return nil
	}
	if sc.Provisioner != LocalPathProvisioner {
		r.rec.Eventf(pvc, corev1.EventTypeNormal, "ExternalProvisioning", "Waiting for a volume to be created by the external provisioner %q", sc.Provisioner)
		return nil
	}
	return r.provision(ctx, pvc, sc)
}

// provision makes a host-directory volume for pvc, pre-bound to it.
func (r *PersistentVolume) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim, sc *storagev1.StorageClass) error {
	node := ""
	if sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer {
		for _, p := range r.pods.List(pvc.Namespace, nil) {
			for _, v := range p.Spec.Volumes {
				if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name && p.Spec.NodeName != "" {
					node = p.Spec.NodeName
				}
			}
		}
		if node == "" {
			r.rec.Eventf(pvc, corev1.EventTypeNormal, "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
			return nil
		}
	}
	name := "pvc-" + string(pvc.UID)
	dir := filepath.Join(r.BaseDir, fmt.Sprintf("%s_%s_%s", name, pvc.Namespace, pvc.Name))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		r.rec.Eventf(pvc, corev1.EventTypeWarning, "ProvisioningFailed", "create %s: %v", dir, err)
		return fmt.Errorf("local-path: %w", err)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	hpt := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: LocalPathProvisioner}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              sc.Name,
			VolumeMode:                    pvc.Spec.VolumeMode,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hpt}},
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name,
				UID: pvc.UID},
		},
	}
	if node != "" {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}
	}
	if _, err := storeapi.Create(ctx, r.cfg.Store, pv); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("local-path: create pv %s: %w", name, err)
	}
	r.rec.Eventf(pvc, corev1.EventTypeNormal, "ProvisioningSucceeded", "Successfully provisioned volume %s", name)
	return nil
}

// bind points pv at pvc and pvc at pv, then marks both Bound.
func (r *PersistentVolume) bind(ctx context.Context, pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) error {
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
		up := pv.DeepCopy()
		up.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name,
			UID: pvc.UID, ResourceVersion: pvc.ResourceVersion}
		if up.Annotations == nil {
			up.Annotations = map[string]string{}
		}
		if pv.Spec.ClaimRef == nil {
			up.Annotations[annBoundByController] = "yes"
		}
		got, err := storeapi.Update(ctx, r.cfg.Store, up)
		if err != nil {
			return fmt.Errorf("bind pv %s: %w", pv.Name, err)
		}
		pv = got
	}
	if err := r.volumePhase(ctx, pv, corev1.VolumeBound); err != nil {
		return err
	}
	if pvc.Spec.VolumeName != pv.Name {
		up := pvc.DeepCopy()
		up.Spec.VolumeName = pv.Name
		if up.Annotations == nil {
			up.Annotations = map[string]string{}
		}
		up.Annotations[annBindCompleted] = "yes"
		up.Annotations[annBoundByController] = "yes"
		got, err := storeapi.Update(ctx, r.cfg.Store, up)
		if err != nil {
			return fmt.Errorf("bind pvc %s/%s: %w", pvc.Namespace, pvc.Name, err)
		}
		pvc = got
	}
	return r.claimPhase(ctx, pvc, corev1.ClaimBound, pv)
}

func (r *PersistentVolume) claimPhase(ctx context.Context, pvc *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase, pv *corev1.PersistentVolume) error {
	up := pvc.DeepCopy()
	up.Status.Phase = phase
	if pv != nil && phase == corev1.ClaimBound {
		up.Status.AccessModes = pv.Spec.AccessModes
		up.Status.Capacity = pv.Spec.Capacity
	}
	if phase == pvc.Status.Phase && (pv == nil || len(pvc.Status.Capacity) > 0) {
		return nil
	}
	if _, err := storeapi.UpdateStatus(ctx, r.cfg.Store, up); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pvc %s/%s status: %w", pvc.Namespace, pvc.Name, err)
	}
	return nil
}

func (r *PersistentVolume) volumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase) error {
	if pv.Status.Phase == phase {
		return nil
	}
	up := pv.DeepCopy()
	up.Status.Phase = phase
	if _, err := storeapi.UpdateStatus(ctx, r.cfg.Store, up); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pv %s status: %w", pv.Name, err)
	}
	return nil
}

func (r *PersistentVolume) syncVolume(ctx context.Context, name string) error {
	pv, ok := r.pvs.Get("", name)
	if !ok || pv.DeletionTimestamp != nil {
		return nil
	}
	ref := pv.Spec.ClaimRef
	if ref == nil {
		return r.volumePhase(ctx, pv, corev1.VolumeAvailable)
	}
	pvc, ok := r.pvcs.Get(ref.Namespace, ref.Name)
	if ok && (ref.UID == "" || ref.UID == pvc.UID) {
		if ref.UID == "" || pvc.Spec.VolumeName != pv.Name {
			// Pre-bound, or binding in progress: the claim's sync binds.
			if pv.Status.Phase == "" || pv.Status.Phase == corev1.VolumePending {
				return r.volumePhase(ctx, pv, corev1.VolumeAvailable)
			}
			return nil
		}
		return r.volumePhase(ctx, pv, corev1.VolumeBound)
	}
	if ref.UID == "" {
		return r.volumePhase(ctx, pv, corev1.VolumeAvailable)
	}
	// Its claim is gone: reclaim.
	if pv.Status.Phase != corev1.VolumeReleased {
		if err := r.volumePhase(ctx, pv, corev1.VolumeReleased); err != nil {
			return err
		}
	}
	switch pv.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimDelete:
		if err := r.removeDir(pv, true); err != nil {
			r.rec.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "%v", err)
			return r.volumePhase(ctx, pv, corev1.VolumeFailed)
		}
		err := storeapi.Delete[*corev1.PersistentVolume](ctx, r.cfg.Store, "", pv.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("pv %s: delete: %w", pv.Name, err)
		}
	case corev1.PersistentVolumeReclaimRecycle:
		if err := r.removeDir(pv, false); err != nil {
			r.rec.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedRecycle", "%v", err)
			return r.volumePhase(ctx, pv, corev1.VolumeFailed)
		}
		up := pv.DeepCopy()
		up.Spec.ClaimRef = nil
		delete(up.Annotations, annBoundByController)
		got, err := storeapi.Update(ctx, r.cfg.Store, up)
		if err != nil {
			return fmt.Errorf("pv %s: recycle: %w", pv.Name, err)
		}
		r.rec.Eventf(pv, corev1.EventTypeNormal, "RecyclerPod", "Recycler pod: Successfully assigned volume %s", pv.Name)
		return r.volumePhase(ctx, got, corev1.VolumeAvailable)
	}
	return nil // Retain: stays Released, never rebound.
}

// removeDir deletes (whole) or empties a volume's directory when it is a
// host directory under BaseDir; other volumes have nothing to remove here.
func (r *PersistentVolume) removeDir(pv *corev1.PersistentVolume, whole bool) error {
	hp := pv.Spec.HostPath
	if hp == nil {
		return nil
	}
	dir := filepath.Clean(hp.Path)
	base := filepath.Clean(r.BaseDir) + string(filepath.Separator)
	if !strings.HasPrefix(dir+string(filepath.Separator), base) || dir == filepath.Clean(r.BaseDir) {
		return nil
	}
	if whole {
		return os.RemoveAll(dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func pvcCondition(pvc *corev1.PersistentVolumeClaim, t corev1.PersistentVolumeClaimConditionType) *corev1.PersistentVolumeClaimCondition {
	for i := range pvc.Status.Conditions {
		if pvc.Status.Conditions[i].Type == t {
			return &pvc.Status.Conditions[i]
		}
	}
	return nil
}

// resizeDone clears what a resize left on a claim that has the capacity it
// requests: the Resizing or FileSystemResizePending condition and the
// resize status. A finished resize has none; one is left only when a
// resize was started from a stale copy of the claim.
func (r *PersistentVolume) resizeDone(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvcCondition(pvc, corev1.PersistentVolumeClaimResizing) == nil && pvcCondition(pvc, corev1.PersistentVolumeClaimFileSystemResizePending) == nil &&
		pvc.Status.AllocatedResourceStatuses == nil {
		return nil
	}
	_, err := writeRetry(ctx, r.cfg.Store, pvc, true, func(up *corev1.PersistentVolumeClaim) {
		want := up.Spec.Resources.Requests[corev1.ResourceStorage]
		if c, ok := up.Status.Capacity[corev1.ResourceStorage]; !ok || want.Cmp(c) > 0 {
			return // a new resize was requested meanwhile
		}
		up.Status.AllocatedResourceStatuses = nil
		setPVCConditions(&up.Status, nil)
	})
	if err != nil {
		return fmt.Errorf("pvc %s/%s: finish resize: %w", pvc.Namespace, pvc.Name, err)
	}
	return nil
}

// setPVCConditions replaces the resize conditions of a claim by c (none when nil).
func setPVCConditions(st *corev1.PersistentVolumeClaimStatus, c *corev1.PersistentVolumeClaimCondition) {
	var out []corev1.PersistentVolumeClaimCondition
	for _, x := range st.Conditions {
		if x.Type != corev1.PersistentVolumeClaimResizing && x.Type != corev1.PersistentVolumeClaimFileSystemResizePending {
			out = append(out, x)
		}
	}
	if c != nil {
		out = append(out, *c)
	}
	st.Conditions = out
}

// expand grows a bound volume to its claim's larger request, as
// upstream's expand controller: status.allocatedResources and
// allocatedResourceStatuses record the resize (ControllerResizeInProgress,
// then NodeResizePending), the volume's capacity grows, and the claim's
// capacity follows at once for local-path volumes or after the node
// finished the filesystem (FileSystemResizePending until then).
func (r *PersistentVolume) expand(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) error {
	want := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	have, ok := pvc.Status.Capacity[corev1.ResourceStorage]
	if !ok {
		return nil
	}
	if want.Cmp(have) <= 0 {
		return r.resizeDone(ctx, pvc)
	}
	if c := pvcCondition(pvc, corev1.PersistentVolumeClaimFileSystemResizePending); c != nil && c.Status == corev1.ConditionTrue {
		if alloc, ok := pvc.Status.AllocatedResources[corev1.ResourceStorage]; ok && alloc.Cmp(want) == 0 {
			return nil // the node finishes it
		}
	}
	sc, ok := r.classes.Get("", pv.Spec.StorageClassName)
	if !ok || sc.AllowVolumeExpansion == nil || !*sc.AllowVolumeExpansion {
		r.rec.Eventf(pvc, corev1.EventTypeWarning, "VolumeResizeFailed", "storageclass %q does not allow volume expansion", pv.Spec.StorageClassName)
		return nil
	}
	now := metav1.NewTime(r.cfg.Clock.Now())
	// The resize begins.
	// The writes below may be retried on the claim as it is then (a
	// conflict): one that finds the claim grown already leaves it alone,
	// so that a resize decided on a stale copy cannot mark a finished one
	// as in progress again.
	grown := func(up *corev1.PersistentVolumeClaim) bool {
		c, ok := up.Status.Capacity[corev1.ResourceStorage]
		return ok && want.Cmp(c) <= 0
	}
	started, err := writeRetry(ctx, r.cfg.Store, pvc, true, func(up *corev1.PersistentVolumeClaim) {
		if grown(up) {
			return
		}
		up.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: want}
		up.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{corev1.ResourceStorage: corev1.PersistentVolumeClaimControllerResizeInProgress}
		setPVCConditions(&up.Status, &corev1.PersistentVolumeClaimCondition{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue, LastTransitionTime: now})
	})
	if err != nil {
		return fmt.Errorf("pvc %s/%s: start resize: %w", pvc.Namespace, pvc.Name, err)
	}
	pvc = started
	r.rec.Eventf(pvc, corev1.EventTypeNormal, "Resizing", "Resizing volume %s to %s", pv.Name, want.String())
	if cur := pv.Spec.Capacity[corev1.ResourceStorage]; cur.Cmp(want) < 0 {
		if _, err := writeRetry(ctx, r.cfg.Store, pv, false, func(up *corev1.PersistentVolume) {
			up.Spec.Capacity[corev1.ResourceStorage] = want
		}); err != nil {
			return fmt.Errorf("pv %s: resize: %w", pv.Name, err)
		}
	}
	nodeStep := volumeMode(pv.Spec.VolumeMode) == corev1.PersistentVolumeFilesystem && pv.Annotations[annProvisionedBy] != LocalPathProvisioner
	_, err = writeRetry(ctx, r.cfg.Store, pvc, true, func(up *corev1.PersistentVolumeClaim) {
		if grown(up) {
			return
		}
		if nodeStep {
			up.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{corev1.ResourceStorage: corev1.PersistentVolumeClaimNodeResizePending}
			setPVCConditions(&up.Status, &corev1.PersistentVolumeClaimCondition{Type: corev1.PersistentVolumeClaimFileSystemResizePending,
				Status: corev1.ConditionTrue, LastTransitionTime: now,
				Message: "Waiting for user to (re-)start a pod to finish file system resize of volume on node."})
			return
		}
		up.Status.Capacity = up.Status.Capacity.DeepCopy()
		up.Status.Capacity[corev1.ResourceStorage] = want
		up.Status.AllocatedResourceStatuses = nil
		setPVCConditions(&up.Status, nil)
	})
	if err != nil {
		return fmt.Errorf("pvc %s/%s: resize: %w", pvc.Namespace, pvc.Name, err)
	}
	if nodeStep {
		r.rec.Eventf(pvc, corev1.EventTypeNormal, "FileSystemResizeRequired", "Require file system resize of volume on node")
	} else {
		r.rec.Eventf(pvc, corev1.EventTypeNormal, "VolumeResizeSuccessful", "resize volume %s succeeded", pv.Name)
	}
	return nil
}
