package store

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Finalizers the store itself acts on.
const (
	// FinalizerOrphan makes the collector release dependents before the owner goes.
	FinalizerOrphan = metav1.FinalizerOrphanDependents
	// FinalizerForeground makes the owner wait until blocking dependents are gone.
	FinalizerForeground = metav1.FinalizerDeleteDependents
	// FinalizerNamespace (in a Namespace's spec.finalizers) holds the
	// namespace until its contents are gone.
	FinalizerNamespace = string(corev1.FinalizerKubernetes)
)

const maxGenerateNameTries = 8

// protectedNamespaces may not be deleted, as upstream.
var protectedNamespaces = map[string]bool{metav1.NamespaceDefault: true, metav1.NamespaceSystem: true, metav1.NamespacePublic: true}

func isDryRun(dr []string) bool { return len(dr) > 0 }

func (s *Store) kindForObject(obj runtime.Object) (*Kind, metav1.Object, error) {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return nil, nil, apierrors.NewBadRequest("object is nil")
	}
	k := s.reg.ForObject(obj)
	if k == nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("type %T is not a kind this store serves", obj))
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(err.Error())
	}
	return k, acc, nil
}

func invalid(k *Kind, name string, errs field.ErrorList) error {
	return apierrors.NewInvalid(k.GVK.GroupKind(), name, errs)
}

// validate checks metadata (name rules per kind, labels, annotation size,
// owner references, finalizers) and the kind's own rules.
func (s *Store) validate(k *Kind, obj runtime.Object, acc metav1.Object) error {
	nameFn := k.NameValidation
	if nameFn == nil {
		nameFn = apivalidation.NameIsDNSSubdomain
	}
	errs := apivalidation.ValidateObjectMetaAccessor(acc, k.Namespaced, nameFn, field.NewPath("metadata"))
	if k.Validate != nil {
		errs = append(errs, k.Validate(obj, &s.cfg)...)
	}
	if len(errs) > 0 {
		return invalid(k, acc.GetName(), errs)
	}
	return nil
}

// namespaceUsable refuses objects in a missing or terminating namespace.
func (s *Store) namespaceUsable(v *view, k *Kind, ns string) error {
	if !k.Namespaced {
		return nil
	}
	terminating, ok := s.nsTerminating[ns]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, ns)
	}
	if terminating {
		return apierrors.NewForbidden(k.GroupResource(), "", fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
	}
	return nil
}

// Create stores a new object. See [Interface.Create].
func (s *Store) Create(ctx context.Context, obj runtime.Object, opts metav1.CreateOptions) (runtime.Object, error) {
	return s.create(ctx, obj, opts, false)
}

// CreateOwned implements [OwnedCreator]: Create without its two copies of
// the object.
func (s *Store) CreateOwned(ctx context.Context, obj runtime.Object, opts metav1.CreateOptions) (runtime.Object, error) {
	return s.create(ctx, obj, opts, true)
}

// create stores a new object: a copy of obj that the caller gets another
// copy of or, when owned, obj itself.
func (s *Store) create(ctx context.Context, obj runtime.Object, opts metav1.CreateOptions, owned bool) (runtime.Object, error) {
	k, _, err := s.kindForObject(obj)
	if err != nil {
		return nil, err
	}
	if !owned {
		obj = obj.DeepCopyObject()
	}
	acc, _ := meta.Accessor(obj)
	if !k.Namespaced {
		acc.SetNamespace("")
	}
	acc.SetResourceVersion("")
	acc.SetDeletionTimestamp(nil)
	acc.SetDeletionGracePeriodSeconds(nil)
	acc.SetUID(types.UID(uuid.NewString()))
	acc.SetCreationTimestamp(metav1.NewTime(s.now().Truncate(time.Second)))
	acc.SetGeneration(0)
	if k.HasSpec() {
		acc.SetGeneration(1)
	}
	if k.HasStatus() && !k.KeepStatusOnCreate {
		setField(obj, "Status", reflect.Zero(fieldType(obj, "Status")))
	}
	if k.Default != nil {
		k.Default(obj)
	}
	if k.PrepareCreate != nil {
		k.PrepareCreate(obj)
	}
	generated := acc.GetName() == "" && acc.GetGenerateName() != ""
	if generated {
		acc.SetName(acc.GetGenerateName() + rand.String(5))
	}
	if err := s.validate(k, obj, acc); err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		ops, err := s.commit(ctx, isDryRun(opts.DryRun), func(v *view, rev uint64) ([]op, error) {
			if err := s.namespaceUsable(v, k, acc.GetNamespace()); err != nil {
				return nil, err
			}
			if p, ok := obj.(*corev1.Pod); ok {
				if err := s.resolvePriority(v, p); err != nil {
					return nil, err
				}
			}
			key := objKey(acc.GetNamespace(), acc.GetName())
			if v.get(k, key) != nil {
				return nil, apierrors.NewAlreadyExists(k.GroupResource(), acc.GetName())
			}
			return []op{{kind: k, key: key, obj: obj}}, nil
		})
		if err != nil && generated && try < maxGenerateNameTries && apierrors.IsAlreadyExists(err) {
			acc.SetName(acc.GetGenerateName() + rand.String(5))
			continue
		}
		if err != nil {
			return nil, err
		}
		if owned {
			return ops[0].obj, nil
		}
		return ops[0].obj.DeepCopyObject(), nil
	}
}

// resolvePriority sets a new pod's spec.priority from its
// priorityClassName (or the global default class), as the Priority
// admission plugin does; an unknown class is refused.
func (s *Store) resolvePriority(v *view, p *corev1.Pod) error {
	pcKind := s.pcKind
	if pcKind == nil {
		return nil
	}
	var pc *schedulingv1.PriorityClass
	if name := p.Spec.PriorityClassName; name != "" {
		o, _ := v.get(pcKind, objKey("", name)).(*schedulingv1.PriorityClass)
		if o == nil {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, p.Name, fmt.Errorf("no PriorityClass with name %s was found", name))
		}
		pc = o
	} else if s.pcDefaults > 0 {
		pc = globalDefaultPriorityClass(v, pcKind)
	}
	prio := int32(0)
	if pc != nil {
		prio = pc.Value
		p.Spec.PriorityClassName = pc.Name
		if p.Spec.PreemptionPolicy == nil {
			p.Spec.PreemptionPolicy = pc.PreemptionPolicy
		}
	}
	if p.Spec.Priority != nil && *p.Spec.Priority != prio {
		return k8sInvalidPriority(p, prio)
	}
	p.Spec.Priority = &prio
	return nil
}

func k8sInvalidPriority(p *corev1.Pod, want int32) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, p.Name,
		fmt.Errorf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *p.Spec.Priority, want))
}

// globalDefaultPriorityClass finds the PriorityClass marked globalDefault
// among the sequenced state v reads.
func globalDefaultPriorityClass(v *view, k *Kind) *schedulingv1.PriorityClass {
	var found *schedulingv1.PriorityClass
	v.each(k, func(obj runtime.Object) bool {
		if pc := obj.(*schedulingv1.PriorityClass); pc.GlobalDefault {
			found = pc
			return false
		}
		return true
	})
	return found
}

// loadSequencedState fills what commit keeps up to date for every
// sequenced transaction (see sequenced) from the recovered state, at
// Open, before any write is sequenced.
func (s *Store) loadSequencedState() {
	v := &view{s: s}
	s.pcDefaults = 0
	if s.pcKind != nil {
		v.each(s.pcKind, func(obj runtime.Object) bool {
			if obj.(*schedulingv1.PriorityClass).GlobalDefault {
				s.pcDefaults++
			}
			return true
		})
	}
	s.nsTerminating = map[string]bool{}
	if s.nsKind != nil {
		v.each(s.nsKind, func(obj runtime.Object) bool {
			ns := obj.(*corev1.Namespace)
			s.nsTerminating[ns.Name] = ns.DeletionTimestamp != nil
			return true
		})
	}
}

// sequenced keeps the PriorityClass count and the namespace states up to
// date with a transaction that has just been sequenced. It runs under seqMu.
func (s *Store) sequenced(ops []op) {
	for _, o := range ops {
		switch {
		case o.kind == nil:
		case o.kind == s.pcKind:
			if prev, ok := o.prev.(*schedulingv1.PriorityClass); ok && prev.GlobalDefault {
				s.pcDefaults--
			}
			if cur, ok := o.obj.(*schedulingv1.PriorityClass); ok && !o.del && cur.GlobalDefault {
				s.pcDefaults++
			}
		case o.kind == s.nsKind:
			ns := o.obj.(*corev1.Namespace)
			if o.del {
				delete(s.nsTerminating, ns.Name)
			} else {
				s.nsTerminating[ns.Name] = ns.DeletionTimestamp != nil
			}
		}
	}
}

// Update replaces spec and metadata, keeping status. See [Interface.Update].
func (s *Store) Update(ctx context.Context, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error) {
	return s.update(ctx, obj, isDryRun(opts.DryRun), false)
}

// UpdateStatus replaces status, keeping spec and metadata. See [Interface.UpdateStatus].
func (s *Store) UpdateStatus(ctx context.Context, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error) {
	return s.update(ctx, obj, isDryRun(opts.DryRun), true)
}

func conflict(k *Kind, name string, why string) error {
	return apierrors.NewConflict(k.GroupResource(), name, fmt.Errorf("%s", why))
}

const conflictMsg = "the object has been modified; please apply your changes to the latest version and try again"

func (s *Store) update(ctx context.Context, obj runtime.Object, dryRun, status bool) (runtime.Object, error) {
	k, in, err := s.kindForObject(obj)
	if err != nil {
		return nil, err
	}
	if status && !k.HasStatus() {
		return nil, apierrors.NewMethodNotSupported(k.GroupResource(), "update status")
	}
	ns, name, wantRV := in.GetNamespace(), in.GetName(), in.GetResourceVersion()
	if !k.Namespaced {
		ns = ""
	}
	if name == "" {
		return nil, invalid(k, "", field.ErrorList{field.Required(field.NewPath("metadata", "name"), "name is required")})
	}
	return s.updateWith(ctx, k, ns, name, dryRun, status, func(old runtime.Object) (runtime.Object, error) {
		if oldAcc, _ := meta.Accessor(old); wantRV != "" && wantRV != oldAcc.GetResourceVersion() {
			return nil, conflict(k, name, conflictMsg)
		}
		return obj, nil
	})
}

// updateWith writes the object that newObj derives from the current one,
// with update's rules (status or spec, immutable metadata, defaults,
// validation, generation, no-op detection). newObj runs under the write
// lock, so it must be quick.
func (s *Store) updateWith(ctx context.Context, k *Kind, ns, name string, dryRun, status bool, newObj func(old runtime.Object) (runtime.Object, error)) (runtime.Object, error) {
	key := objKey(ns, name)
	var result runtime.Object
	ops, err := s.commit(ctx, dryRun, func(v *view, rev uint64) ([]op, error) {
		old := v.get(k, key)
		if old == nil {
			return nil, apierrors.NewNotFound(k.GroupResource(), name)
		}
		oldAcc, _ := meta.Accessor(old)
		obj, err := newObj(old)
		if err != nil {
			return nil, err
		}
		var next runtime.Object
		if status {
			next = old.DeepCopyObject()
			setField(next, "Status", reflect.ValueOf(obj.DeepCopyObject()).Elem().FieldByName("Status"))
		} else {
			next = obj.DeepCopyObject()
			acc, _ := meta.Accessor(next)
			if uid := acc.GetUID(); uid != "" && uid != oldAcc.GetUID() {
				return nil, invalid(k, name, field.ErrorList{field.Invalid(field.NewPath("metadata", "uid"), uid, "field is immutable")})
			}
			acc.SetNamespace(oldAcc.GetNamespace())
			acc.SetUID(oldAcc.GetUID())
			acc.SetCreationTimestamp(oldAcc.GetCreationTimestamp())
			acc.SetDeletionTimestamp(oldAcc.GetDeletionTimestamp())
			acc.SetDeletionGracePeriodSeconds(oldAcc.GetDeletionGracePeriodSeconds())
			if acc.GetGenerateName() == "" {
				acc.SetGenerateName(oldAcc.GetGenerateName())
			}
			if k.HasStatus() {
				setField(next, "Status", reflect.ValueOf(old).Elem().FieldByName("Status"))
			}
			if k.Default != nil {
				k.Default(next)
			}
			acc.SetGeneration(oldAcc.GetGeneration())
			if k.HasSpec() && !sameObject(fieldAddr(old, "Spec"), fieldAddr(next, "Spec")) {
				acc.SetGeneration(oldAcc.GetGeneration() + 1)
			}
			if err := s.validate(k, next, acc); err != nil {
				return nil, err
			}
			if k.ValidateUpdate != nil {
				if errs := k.ValidateUpdate(next, old); len(errs) > 0 {
					return nil, invalid(k, name, errs)
				}
			}
			if oldAcc.GetDeletionTimestamp() != nil {
				if errs := apivalidation.ValidateNoNewFinalizers(acc.GetFinalizers(), oldAcc.GetFinalizers(), field.NewPath("metadata", "finalizers")); len(errs) > 0 {
					return nil, invalid(k, name, errs)
				}
			}
		}
		nextAcc, _ := meta.Accessor(next)
		nextAcc.SetResourceVersion(oldAcc.GetResourceVersion())
		if sameObject(old, next) {
			result = old
			return nil, nil
		}
		if finishedDeleting(next) {
			return []op{{kind: k, key: key, obj: next, prev: old, del: true}}, nil
		}
		return []op{{kind: k, key: key, obj: next, prev: old}}, nil
	})
	return written(ops, result, err)
}

// written returns a copy of what a single-object write left: the object
// it wrote or, for a write that changed nothing, the object as it was.
func written(ops []op, unchanged runtime.Object, err error) (runtime.Object, error) {
	if err != nil {
		return nil, err
	}
	if len(ops) > 0 {
		return ops[0].obj.DeepCopyObject(), nil
	}
	return unchanged.DeepCopyObject(), nil
}

// finishedDeleting reports whether an object marked for deletion may go:
// no finalizers left (and, for a namespace, no spec finalizers) and no
// grace period still running.
func finishedDeleting(obj runtime.Object) bool {
	acc, _ := meta.Accessor(obj)
	if acc.GetDeletionTimestamp() == nil || len(acc.GetFinalizers()) > 0 {
		return false
	}
	if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return false
	}
	if g := acc.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
		return false
	}
	return true
}

// Patch applies a patch with optimistic concurrency: it patches the current
// object and retries if another write landed in between, unless the patch
// itself named a resourceVersion. See [Interface.Patch].
func (s *Store) Patch(ctx context.Context, res schema.GroupResource, namespace, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresource ...string) (runtime.Object, error) {
	k, err := s.kindOf(res)
	if err != nil {
		return nil, err
	}
	status := false
	for _, sr := range subresource {
		switch sr {
		case "":
		case "status":
			status = true
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("subresource %q cannot be patched in the store", sr))
		}
	}
	if err := s.checkNamespaceArg(k, namespace); err != nil {
		return nil, err
	}
	if status && !k.HasStatus() {
		return nil, apierrors.NewMethodNotSupported(k.GroupResource(), "patch status")
	}
	patched := func(cur runtime.Object) (runtime.Object, error) {
		next, err := ApplyPatch(k, cur, pt, data)
		if err != nil {
			return nil, err
		}
		curAcc, _ := meta.Accessor(cur)
		if nextAcc, _ := meta.Accessor(next); nextAcc.GetResourceVersion() != curAcc.GetResourceVersion() {
			return nil, conflict(k, name, conflictMsg)
		}
		return next, nil
	}
	// Optimistically: patch a copy outside the write lock, and write it if
	// nothing changed in between. Under contention, patch under the lock,
	// which cannot conflict.
	for try := 0; try < optimisticPatchTries; try++ {
		cur, err := s.Get(ctx, res, namespace, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		next, err := patched(cur)
		if err != nil {
			return nil, err
		}
		out, err := s.update(ctx, next, isDryRun(opts.DryRun), status)
		if !apierrors.IsConflict(err) {
			return out, err
		}
	}
	return s.updateWith(ctx, k, namespace, name, isDryRun(opts.DryRun), status, patched)
}

const optimisticPatchTries = 3

// ApplyPatch returns cur, an object of kind k, with a JSON patch, JSON
// merge patch or strategic merge patch applied; cur is not changed. A bad
// patch is a BadRequest error, an unknown patch type UnsupportedMediaType.
// The API server uses it to patch outside the store, where it records
// managed fields.
func ApplyPatch(k *Kind, cur runtime.Object, pt types.PatchType, data []byte) (runtime.Object, error) {
	orig, err := json.Marshal(cur)
	if err != nil {
		return nil, fmt.Errorf("store: encode for patch: %w", err)
	}
	var patched []byte
	switch pt {
	case types.JSONPatchType:
		p, perr := jsonpatch.DecodePatch(data)
		if perr != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid JSON patch: %v", perr))
		}
		patched, err = p.Apply(orig)
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(orig, data)
	case types.StrategicMergePatchType:
		patched, err = strategicpatch.StrategicMergePatch(orig, data, k.New())
	default:
		return nil, unsupportedMediaType(string(pt))
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch could not be applied: %v", err))
	}
	next := k.New()
	if err := json.Unmarshal(patched, next); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patched object is not a valid %s: %v", k.GVK.Kind, err))
	}
	next.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	return next, nil
}

// Delete deletes an object. See [Interface.Delete].
func (s *Store) Delete(ctx context.Context, res schema.GroupResource, namespace, name string, opts metav1.DeleteOptions) (runtime.Object, error) {
	k, err := s.kindOf(res)
	if err != nil {
		return nil, err
	}
	if err := s.checkNamespaceArg(k, namespace); err != nil {
		return nil, err
	}
	policy := metav1.DeletePropagationBackground
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		policy = metav1.DeletePropagationOrphan
	}
	if opts.PropagationPolicy != nil {
		policy = *opts.PropagationPolicy
		switch policy {
		case metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan:
		default:
			return nil, invalid(k, name, field.ErrorList{field.NotSupported(field.NewPath("propagationPolicy"), policy,
				[]string{string(metav1.DeletePropagationForeground), string(metav1.DeletePropagationBackground), string(metav1.DeletePropagationOrphan)})})
		}
	}
	if opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds < 0 {
		return nil, invalid(k, name, field.ErrorList{field.Invalid(field.NewPath("gracePeriodSeconds"), *opts.GracePeriodSeconds, "must be >= 0")})
	}
	key := objKey(namespace, name)
	var result runtime.Object
	ops, err := s.commit(ctx, isDryRun(opts.DryRun), func(v *view, rev uint64) ([]op, error) {
		old := v.get(k, key)
		if old == nil {
			return nil, apierrors.NewNotFound(k.GroupResource(), name)
		}
		oldAcc, _ := meta.Accessor(old)
		if k.GroupResource() == (schema.GroupResource{Resource: "namespaces"}) && protectedNamespaces[name] {
			return nil, apierrors.NewForbidden(k.GroupResource(), name, fmt.Errorf("this namespace may not be deleted"))
		}
		if pc := opts.Preconditions; pc != nil {
			if pc.UID != nil && *pc.UID != oldAcc.GetUID() {
				return nil, conflict(k, name, fmt.Sprintf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *pc.UID, oldAcc.GetUID()))
			}
			if pc.ResourceVersion != nil && *pc.ResourceVersion != oldAcc.GetResourceVersion() {
				return nil, conflict(k, name, fmt.Sprintf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *pc.ResourceVersion, oldAcc.GetResourceVersion()))
			}
		}
		next := old.DeepCopyObject()
		acc, _ := meta.Accessor(next)
		grace := s.gracePeriod(old, opts.GracePeriodSeconds)
		switch policy {
		case metav1.DeletePropagationOrphan:
			acc.SetFinalizers(addString(acc.GetFinalizers(), FinalizerOrphan))
		case metav1.DeletePropagationForeground:
			acc.SetFinalizers(addString(acc.GetFinalizers(), FinalizerForeground))
		}
		now := metav1.NewTime(s.now().Truncate(time.Second))
		if ts := oldAcc.GetDeletionTimestamp(); ts == nil {
			when := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			acc.SetDeletionTimestamp(&when)
			acc.SetDeletionGracePeriodSeconds(&grace)
		} else if g := oldAcc.GetDeletionGracePeriodSeconds(); g != nil && grace < *g {
			// A shorter grace period than the one running replaces it.
			when := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			if when.Before(ts) {
				acc.SetDeletionTimestamp(&when)
			}
			acc.SetDeletionGracePeriodSeconds(&grace)
		}
		if nsObj, ok := next.(*corev1.Namespace); ok {
			nsObj.Status.Phase = corev1.NamespaceTerminating
		}
		if finishedDeleting(next) {
			return []op{{kind: k, key: key, obj: next, prev: old, del: true}}, nil
		}
		if sameObject(old, next) {
			result = old
			return nil, nil
		}
		return []op{{kind: k, key: key, obj: next, prev: old}}, nil
	})
	return written(ops, result, err)
}

// gracePeriod is the deletion grace period of obj: pods that run on a node
// get the requested or their spec's terminationGracePeriodSeconds (default
// 30 s); everything else, unscheduled or finished pods included, goes at once.
func (s *Store) gracePeriod(obj runtime.Object, requested *int64) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	if requested != nil {
		return *requested
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// DeleteCollection deletes every matching object. See [Interface.DeleteCollection].
func (s *Store) DeleteCollection(ctx context.Context, res schema.GroupResource, namespace string, opts metav1.DeleteOptions, listOpts metav1.ListOptions) error {
	l, err := s.List(ctx, res, namespace, listOpts)
	if err != nil {
		return err
	}
	for _, o := range l.Items {
		acc, _ := meta.Accessor(o)
		if _, err := s.Delete(ctx, res, acc.GetNamespace(), acc.GetName(), opts); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func addString(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func removeString(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func fieldType(obj runtime.Object, name string) reflect.Type {
	f, _ := reflect.TypeOf(obj).Elem().FieldByName(name)
	return f.Type
}

func fieldAddr(obj runtime.Object, name string) any {
	return reflect.ValueOf(obj).Elem().FieldByName(name).Addr().Interface()
}

type marshaler interface{ Marshal() ([]byte, error) }

func setField(obj runtime.Object, name string, v reflect.Value) {
	reflect.ValueOf(obj).Elem().FieldByName(name).Set(v)
}
