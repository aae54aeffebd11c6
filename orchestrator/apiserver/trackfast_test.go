package apiserver

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/store"
)

// trackBoth records the patch p of live by manager with trackUpdate
// (whole objects) and with trackPatch (the projected fields), and returns
// both results' managed fields; ok is false when patchInPlace does not
// apply p.
func trackBoth(t testing.TB, s *Server, k *store.Kind, sub string, live runtime.Object, p *patchRequest, manager string) (whole, projected []metav1.ManagedFieldsEntry, ok bool) {
	t.Helper()
	next, ok := s.fields.patch(live, p)
	if !ok {
		return nil, nil, false
	}
	mf := func(obj runtime.Object) []metav1.ManagedFieldsEntry {
		acc, err := meta.Accessor(obj)
		if err != nil {
			t.Fatal(err)
		}
		return acc.GetManagedFields()
	}
	before := live.DeepCopyObject()
	fm, err := s.fieldManager(k, sub)
	if err != nil {
		t.Fatal(err)
	}
	whole = mf(s.trackUpdateWith(fm, k, live.DeepCopyObject(), next.DeepCopyObject(), manager))
	nextCopy := next.DeepCopyObject()
	out := s.trackPatch(k, sub, live, nextCopy, p, manager)
	projected = mf(out)
	// trackPatch changes only next's managed fields.
	acc, _ := meta.Accessor(nextCopy)
	acc.SetManagedFields(mf(next))
	if diff := cmp.Diff(next, nextCopy); diff != "" {
		t.Errorf("trackPatch changed more than the managed fields (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, live); diff != "" {
		t.Errorf("trackPatch modified the live object:\n%s", diff)
	}
	return whole, projected, true
}

// ignoreTime compares managed fields entries without their timestamps
// (both paths stamp the current time), but not without their presence.
var ignoreTime = cmp.Options{
	cmpopts.IgnoreFields(metav1.ManagedFieldsEntry{}, "Time"),
	cmp.Comparer(func(a, b metav1.FieldsV1) bool { return string(a.Raw) == string(b.Raw) }),
}

func checkTimes(t testing.TB, whole, projected []metav1.ManagedFieldsEntry) {
	t.Helper()
	for i := range min(len(whole), len(projected)) {
		if (whole[i].Time == nil) != (projected[i].Time == nil) {
			t.Errorf("entry %d: time %v, want %v", i, projected[i].Time, whole[i].Time)
		}
	}
}

// TestTrackPatchMatchesTrackUpdate checks that recording a patch in
// managedFields from the fields it names gives the entries that the
// whole-object comparison (trackUpdate, what kube-apiserver does) gives:
// for every patch of the patch tests, by the manager that owns some of
// the live fields and by another (whose write takes fields over), on the
// main resource and on the status subresource.
func TestTrackPatchMatchesTrackUpdate(t *testing.T) {
	ts := startServer(t)
	s := ts.srv
	projected, recorded := 0, 0
	for _, tt := range patchCases() {
		for _, manager := range []string{"kubectl", "other"} {
			for _, sub := range []string{"", "status"} {
				t.Run(tt.name+"/"+manager+"/"+sub, func(t *testing.T) {
					p := &patchRequest{pt: tt.pt, body: []byte(tt.patch), validation: validationStrict}
					var err error
					if p.patchMap, p.strict, err = decodePatchMap(p.body, p.validation); err != nil {
						t.Fatal(err)
					}
					if next, ok := s.fields.patch(tt.live, p); ok {
						if _, _, ok := s.fields.projectPatch(tt.live, next, p); ok {
							projected++
						}
					}
					whole, got, ok := trackBoth(t, s, tt.kind, sub, tt.live, p, manager)
					if !ok {
						return
					}
					if len(whole) > 0 {
						recorded++
					}
					if diff := cmp.Diff(whole, got, ignoreTime); diff != "" {
						t.Errorf("managed fields differ (-whole +projected):\n%s", diff)
					}
					checkTimes(t, whole, got)
				})
			}
		}
	}
	// Every patch but one (apiVersion and kind) takes the projected path;
	// a few only remove fields nobody owned, and record nothing.
	if n := 4 * len(patchCases()); projected < n-4 || recorded < n*3/4 {
		t.Errorf("%d of %d patches took the projected path, %d recorded fields", projected, n, recorded)
	}
}

// TestTrackUpdateMatchesFieldManager checks trackUpdate (which compares
// without the managed fields unless an entry owns a path under them)
// against apimachinery's field manager as it is: for creates (no live
// object) and updates of every patched object of the patch tests.
func TestTrackUpdateMatchesFieldManager(t *testing.T) {
	ts := startServer(t)
	s := ts.srv
	mf := func(obj runtime.Object) []metav1.ManagedFieldsEntry {
		acc, err := meta.Accessor(obj)
		if err != nil {
			t.Fatal(err)
		}
		return acc.GetManagedFields()
	}
	for _, tt := range patchCases() {
		p := &patchRequest{pt: tt.pt, body: []byte(tt.patch), validation: validationStrict}
		var err error
		if p.patchMap, p.strict, err = decodePatchMap(p.body, p.validation); err != nil {
			t.Fatal(err)
		}
		next, _, err := patchObject(tt.kind, tt.live, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		fm, err := s.fieldManager(tt.kind, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, create := range []bool{true, false} {
			for _, manager := range []string{"kubectl", "other"} {
				var live, liveRef runtime.Object = tt.kind.New(), tt.kind.New()
				if !create {
					live, liveRef = tt.live.DeepCopyObject(), tt.live.DeepCopyObject()
				}
				want := mf(s.trackUpdateWith(fm, tt.kind, liveRef, next.DeepCopyObject(), manager))
				got := mf(s.trackUpdate(tt.kind, "", live, next.DeepCopyObject(), manager))
				if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
					t.Errorf("%s (create %v, %s): managed fields differ (-field manager +trackUpdate):\n%s", tt.name, create, manager, diff)
				}
				checkTimes(t, want, got)
				if create && len(got) == 0 {
					t.Errorf("%s: a create recorded nothing", tt.name)
				}
			}
		}
	}
}

// TestTrackPatchSequence patches one pod many times by two managers,
// carrying the result forward as the next live object, and checks the
// projected path against the whole-object path at every step.
func TestTrackPatchSequence(t *testing.T) {
	ts := startServer(t)
	s := ts.srv
	patches := []string{
		`{"metadata":{"labels":{"n":"1"}}}`,
		`{"metadata":{"labels":{"n":"2","app":"y"}}}`,
		`{"spec":{"containers":[{"name":"a","image":"busybox:2"}]}}`,
		`{"metadata":{"labels":{"n":null}},"spec":{"containers":[{"name":"b","image":"nginx:2"}]}}`,
		`{"metadata":{"annotations":{"a":null,"b":"2"}}}`,
		`{"spec":{"containers":[{"name":"a","$patch":"delete"}]}}`,
		handWritten,
		`{"metadata":{"labels":{"n":"3"}}}`,
	}
	live := runtime.Object(livePod())
	checkSequence(t, s, live, patches, 3*len(patches), func(i int) string { return []string{"kubectl", "ctl2", "kubectl"}[i%3] })
	// Without managed fields on the live object the hand-written entry
	// keeps its metadata.managedFields path, and the next write (which
	// compares with the managed fields) takes it away as upstream does.
	bare := livePod()
	bare.ManagedFields = nil
	after := checkSequence(t, s, bare, []string{handWritten}, 1, func(int) string { return "hand" })
	if !ownsManagedFields(after) {
		t.Fatalf("the hand-written entry lost its path: %v", after.(*corev1.Pod).ManagedFields)
	}
	after = checkSequence(t, s, after, []string{`{"metadata":{"labels":{"n":"4"}}}`}, 1, func(int) string { return "kubectl" })
	if ownsManagedFields(after) {
		t.Fatalf("metadata.managedFields still owned: %v", after.(*corev1.Pod).ManagedFields)
	}
}

// handWritten is a patch writing a managedFields entry that owns
// metadata.managedFields itself.
const handWritten = `{"metadata":{"managedFields":[{"manager":"hand","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:managedFields":{},"f:labels":{"f:app":{}}}}}]}}`

// checkSequence applies n of the strategic merge patches (cycling) to
// live by manager(i), carrying each result forward, checks the projected
// managed fields against the whole-object ones at every step, and
// returns the last object.
func checkSequence(t *testing.T, s *Server, live runtime.Object, patches []string, n int, manager func(int) string) runtime.Object {
	t.Helper()
	pods := s.reg.ForResource(podsGR)
	for i := 0; i < n; i++ {
		manager := manager(i)
		body := patches[i%len(patches)]
		p := &patchRequest{pt: types.StrategicMergePatchType, body: []byte(body), validation: validationStrict}
		var err error
		if p.patchMap, p.strict, err = decodePatchMap(p.body, p.validation); err != nil {
			t.Fatal(err)
		}
		whole, got, ok := trackBoth(t, s, pods, "", live, p, manager)
		if !ok {
			t.Fatalf("step %d: patchInPlace gave up on %s", i, body)
		}
		if diff := cmp.Diff(whole, got, ignoreTime); diff != "" {
			t.Fatalf("step %d (%s by %s): managed fields differ (-whole +projected):\n%s", i, body, manager, diff)
		}
		checkTimes(t, whole, got)
		next, _ := s.fields.patch(live, p)
		acc, _ := meta.Accessor(next)
		acc.SetManagedFields(got)
		live = next
	}
	return live
}

// FuzzTrackPatch checks the projected managed fields against the
// whole-object ones for arbitrary merge and strategic merge patches of a
// pod, wherever patchInPlace applies them.
func FuzzTrackPatch(f *testing.F) {
	f.Add([]byte(`{"metadata":{"labels":{"n":"1"}}}`), true, "other")
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","$patch":"delete"}]}}`), true, "kubectl")
	f.Add([]byte(`{"spec":{"securityContext":{"runAsUser":1}},"status":{"phase":"Failed"}}`), false, "x")
	f.Add([]byte(`{"metadata":{"managedFields":null,"labels":{"app":"z"}}}`), true, "kubectl")
	f.Add([]byte(`{"metadata":{"managedFields":[{"manager":"m","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:managedFields":{}}}}]}}`), true, "m")
	ts := startServer(f)
	s := ts.srv
	pods := s.reg.ForResource(podsGR)
	live := livePod()
	f.Fuzz(func(t *testing.T, body []byte, strategic bool, manager string) {
		if manager == "" {
			manager = "m"
		}
		p := &patchRequest{pt: types.MergePatchType, body: body, validation: validationIgnore}
		if strategic {
			p.pt = types.StrategicMergePatchType
		}
		var err error
		if p.patchMap, p.strict, err = decodePatchMap(body, p.validation); err != nil {
			return
		}
		whole, got, ok := trackBoth(t, s, pods, "", live, p, manager)
		if !ok {
			return
		}
		if diff := cmp.Diff(whole, got, ignoreTime); diff != "" {
			t.Fatalf("managed fields differ (-whole +projected):\n%s", diff)
		}
		checkTimes(t, whole, got)
	})
}
