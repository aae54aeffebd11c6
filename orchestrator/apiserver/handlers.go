package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tugboatdev/tugboat/store"
)

var v1GV = schema.GroupVersion{Version: "v1"}

// writeJSON writes v as JSON with the code.
func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeError writes err as a metav1.Status in the media type the client accepts.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var st metav1.Status
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st = se.Status()
	} else if errors.Is(err, context.DeadlineExceeded) {
		st = apierrors.NewTimeoutError("request did not complete within the allowed duration", 0).Status()
	} else {
		st = apierrors.NewInternalError(err).Status()
		s.log.Error("apiserver: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	m, nerr := negotiate(r.Header.Get("Accept"), nil)
	if nerr != nil {
		m = mediaType{typ: mediaJSON}
	}
	s.writeObject(w, code, &st, m)
}

func (s *Server) writeObject(w http.ResponseWriter, code int, obj runtime.Object, m mediaType) {
	b, err := s.codecs.encode(obj, m)
	if err != nil && m.typ != mediaJSON {
		m = mediaType{typ: mediaJSON, as: m.as, g: m.g, v: m.v}
		b, err = s.codecs.encode(obj, m)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", m.contentType())
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func addWarnings(w http.ResponseWriter, warnings []string) {
	for _, m := range warnings {
		w.Header().Add("Warning", "299 - "+strconv.Quote(m))
	}
}

func notFoundResource(info requestInfo) error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, "", schema.GroupResource{Group: info.group, Resource: info.resource}, "", "the server could not find the requested resource", 0, false)
}

// tableAccepted tells negotiate which "as" representations we produce.
func tableAccepted(m mediaType) bool {
	if m.g != "meta.k8s.io" || (m.v != "v1" && m.v != "v1beta1") {
		return false
	}
	switch m.as {
	case "Table", "PartialObjectMetadata", "PartialObjectMetadataList":
		return m.typ != mediaYAML || m.as != "Table"
	}
	return false
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, info requestInfo) {
	k, view := s.kindFor(info)
	if k == nil {
		s.writeError(w, r, notFoundResource(info))
		return
	}
	ns := info.namespace
	if !k.Namespaced {
		ns = ""
	} else if ns == "" && info.verb != "list" && info.verb != "watch" {
		s.writeError(w, r, notFoundResource(info))
		return
	}
	if strings.Contains(r.URL.Path, "/namespaces/") && !k.Namespaced && k.Resource != "namespaces" {
		s.writeError(w, r, notFoundResource(info))
		return
	}
	if info.name == "" && r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodDelete {
		s.writeError(w, r, apierrors.NewMethodNotSupported(k.GroupResource(), info.verb))
		return
	}
	m, err := negotiate(r.Header.Get("Accept"), tableAccepted)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	switch info.subresource {
	case "":
	case "status":
		if !k.HasStatus() {
			s.writeError(w, r, notFoundResource(info))
			return
		}
	case "scale":
		s.serveScale(w, r, info, k, ns, m)
		return
	case "binding":
		if k.Resource != "pods" || r.Method != http.MethodPost {
			s.writeError(w, r, notFoundResource(info))
			return
		}
		s.serveBinding(w, r, info, ns, m)
		return
	case "eviction":
		if k.Resource != "pods" || r.Method != http.MethodPost {
			s.writeError(w, r, notFoundResource(info))
			return
		}
		s.serveEviction(w, r, info, ns, m)
		return
	case "token":
		if k.Resource != "serviceaccounts" || k.GVK.Group != "" || r.Method != http.MethodPost {
			s.writeError(w, r, notFoundResource(info))
			return
		}
		s.serveToken(w, r, info, ns, m)
		return
	case "log", "exec", "attach", "portforward", "proxy":
		if k.Resource != "pods" {
			s.writeError(w, r, notFoundResource(info))
			return
		}
		s.servePodStream(w, r, info, ns)
		return
	default:
		s.writeError(w, r, notFoundResource(info))
		return
	}
	switch info.verb {
	case "get":
		s.handleGet(w, r, info, k, ns, m, view)
	case "list":
		s.handleList(w, r, k, ns, m, view)
	case "watch":
		var convert func(runtime.Object) (runtime.Object, error)
		if view != nil {
			convert = view.toExternal
		}
		s.watchConverted(w, r, k, ns, m, convert)
	case "create":
		if info.name != "" {
			s.writeError(w, r, apierrors.NewMethodNotSupported(k.GroupResource(), "create with a name"))
			return
		}
		s.handleCreate(w, r, k, ns, m, view)
	case "update":
		s.handleUpdate(w, r, info, k, ns, m, view)
	case "patch":
		s.handlePatch(w, r, info, k, ns, m, view)
	case "delete":
		s.handleDelete(w, r, info, k, ns, m, view)
	case "deletecollection":
		s.handleDeleteCollection(w, r, k, ns, m)
	default:
		s.writeError(w, r, apierrors.NewMethodNotSupported(k.GroupResource(), r.Method))
	}
}

func (s *Server) decodeParams(r *http.Request, into runtime.Object) error {
	if err := s.codecs.params.DecodeParameters(r.URL.Query(), v1GV, into); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid query parameters: %v", err))
	}
	return nil
}

// respond writes obj, transformed into a Table or metadata when asked.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, code int, k *store.Kind, obj runtime.Object, m mediaType) {
	switch m.as {
	case "Table":
		t, err := s.table(k, []runtime.Object{obj}, r.URL.Query(), time.Now())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if acc, err := meta.Accessor(obj); err == nil {
			t.ResourceVersion = acc.GetResourceVersion()
		}
		obj = t
	case "PartialObjectMetadata":
		obj = partialMetadata(obj)
	case "PartialObjectMetadataList":
		s.writeError(w, r, notAcceptable("PartialObjectMetadataList is for lists"))
		return
	}
	s.writeObject(w, code, obj, m)
}

func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	p := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if om, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			p.ObjectMeta = *om
		}
	}
	return p
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, info requestInfo, k *store.Kind, ns string, m mediaType, view *versionView) {
	var opts metav1.GetOptions
	if err := s.decodeParams(r, &opts); err != nil {
		s.writeError(w, r, err)
		return
	}
	obj, err := s.st.Get(r.Context(), k.GroupResource(), ns, info.name, opts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.respondIn(w, r, http.StatusOK, view, k, obj, m)
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request, k *store.Kind, ns string, m mediaType, view *versionView) {
	var opts metav1.ListOptions
	if err := s.decodeParams(r, &opts); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.st.List(r.Context(), k.GroupResource(), ns, opts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	lm := metav1.ListMeta{ResourceVersion: res.ResourceVersion, Continue: res.Continue, RemainingItemCount: res.RemainingItemCount}
	switch m.as {
	case "Table":
		t, err := s.table(k, res.Items, r.URL.Query(), time.Now())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		t.ListMeta = lm
		s.writeObject(w, http.StatusOK, t, m)
		return
	case "PartialObjectMetadataList", "PartialObjectMetadata":
		pl := &metav1.PartialObjectMetadataList{ListMeta: lm}
		for _, it := range res.Items {
			pl.Items = append(pl.Items, *partialMetadata(it))
		}
		m.as = "PartialObjectMetadataList"
		s.writeObject(w, http.StatusOK, pl, m)
		return
	}
	items := res.Items
	if view != nil {
		items = make([]runtime.Object, len(res.Items))
		for i, it := range res.Items {
			if items[i], err = view.external(it); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
	}
	list := k.NewList()
	if err := meta.SetList(list, items); err != nil {
		s.writeError(w, r, err)
		return
	}
	la, err := meta.ListAccessor(list)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	la.SetResourceVersion(lm.ResourceVersion)
	la.SetContinue(lm.Continue)
	la.SetRemainingItemCount(lm.RemainingItemCount)
	s.writeObject(w, http.StatusOK, list, m)
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, k *store.Kind, ns string, m mediaType, view *versionView) {
	var opts metav1.CreateOptions
	if err := s.decodeParams(r, &opts); err != nil {
		s.writeError(w, r, err)
		return
	}
	obj, _, warnings, err := s.readObject(r, k, ns, "", opts.FieldValidation)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		if err := s.admitPod(r, pod); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	obj = s.trackUpdate(k, "", nil, obj, managerName(r, opts.FieldManager))
	if obj, err = view.stored(obj, nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.st.Create(r.Context(), obj, opts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	addWarnings(w, warnings)
	s.respondIn(w, r, http.StatusCreated, view, k, out, m)
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, info requestInfo, k *store.Kind, ns string, m mediaType, view *versionView) {
	var opts metav1.UpdateOptions
	if err := s.decodeParams(r, &opts); err != nil {
		s.writeError(w, r, err)
		return
	}
	obj, acc, warnings, err := s.readObject(r, k, ns, info.name, opts.FieldValidation)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	live, err := s.st.Get(r.Context(), k.GroupResource(), ns, info.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && info.subresource == "" && allowCreateOnUpdate(k.GroupResource()) && acc.GetResourceVersion() == "" {
		// Upstream's update-creates (AllowCreateOnUpdate).
		obj = s.trackUpdate(k, "", nil, obj, managerName(r, opts.FieldManager))
		if obj, err = view.stored(obj, nil); err != nil {
			s.writeError(w, r, err)
			return
		}
		out, err := s.st.Create(r.Context(), obj, metav1.CreateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		addWarnings(w, warnings)
		s.respondIn(w, r, http.StatusCreated, view, k, out, m)
		return
	}
	var base runtime.Object
	if err == nil {
		base = live
		if acc.GetManagedFields() == nil {
			if la, err := meta.Accessor(live); err == nil {
				acc.SetManagedFields(la.GetManagedFields())
			}
		}
		liveExt, err := view.external(live)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		obj = s.trackUpdate(k, info.subresource, liveExt, obj, managerName(r, opts.FieldManager))
	}
	if obj, err = view.stored(obj, base); err != nil {
		s.writeError(w, r, err)
		return
	}
	var out runtime.Object
	if info.subresource == "status" {
		out, err = s.st.UpdateStatus(r.Context(), obj, opts)
	} else {
		out, err = s.st.Update(r.Context(), obj, opts)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	addWarnings(w, warnings)
	s.respondIn(w, r, http.StatusOK, view, k, out, m)
}

// readObject decodes the body of a create (name "") or update of the
// object name of kind k, with the field validation the validationParam
// asks for, and defaults its namespace to ns or checks it against ns.
func (s *Server) readObject(r *http.Request, k *store.Kind, ns, name, validationParam string) (runtime.Object, metav1.Object, []string, error) {
	validation, err := fieldValidation(validationParam)
	if err != nil {
		return nil, nil, nil, err
	}
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return nil, nil, nil, err
	}
	obj, warnings, err := s.codecs.decodeObject(k, r.Header.Get("Content-Type"), body, validation)
	if err != nil {
		return nil, nil, nil, err
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, nil, apierrors.NewBadRequest(err.Error())
	}
	if name != "" && acc.GetName() != name {
		return nil, nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", acc.GetName(), name))
	}
	if k.Namespaced {
		if acc.GetNamespace() == "" {
			acc.SetNamespace(ns)
		} else if acc.GetNamespace() != ns {
			return nil, nil, nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	}
	return obj, acc, warnings, nil
}

func patchType(contentType string) (types.PatchType, error) {
	mt, _, _ := strings.Cut(contentType, ";")
	switch pt := types.PatchType(strings.TrimSpace(mt)); pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType:
		return pt, nil
	}
	return "", unsupportedMediaType(contentType)
}

// patchRequest is a decoded PATCH request: its options, field
// validation mode, patch type and body, and, for merge and strategic
// merge patches, the body decoded once with the strict decoding errors
// (duplicate fields) it gave.
type patchRequest struct {
	opts       metav1.PatchOptions
	validation string
	pt         types.PatchType
	body       []byte
	// patchMap is the decoded body of a merge or strategic merge patch.
	patchMap map[string]any
	// strict are the body's strict decoding errors (duplicate fields).
	strict []string
}

// readPatch decodes a PATCH request for kind k.
func (s *Server) readPatch(r *http.Request) (*patchRequest, error) {
	p := &patchRequest{}
	if err := s.decodeParams(r, &p.opts); err != nil {
		return nil, err
	}
	var err error
	if p.validation, err = fieldValidation(p.opts.FieldValidation); err != nil {
		return nil, err
	}
	if p.pt, err = patchType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	if p.body, err = readBody(r, s.cfg.MaxBodyBytes); err != nil {
		return nil, err
	}
	if p.pt == types.MergePatchType || p.pt == types.StrategicMergePatchType {
		if p.patchMap, p.strict, err = decodePatchMap(p.body, p.validation); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request, info requestInfo, k *store.Kind, ns string, m mediaType, view *versionView) {
	p, err := s.readPatch(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.pt == types.ApplyYAMLPatchType {
		s.handleApply(w, r, info, k, ns, m, p.body, p.opts, p.validation, view)
		return
	}
	out, warnings, err := s.patchTracked(r, info, k, ns, p, view)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	addWarnings(w, warnings)
	s.respondIn(w, r, http.StatusOK, view, k, out, m)
}

func (s *Server) deleteOptions(r *http.Request) (metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return opts, err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := s.codecs.decodeInto(r.Header.Get("Content-Type"), body, &opts); err != nil {
			return opts, err
		}
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return opts, apierrors.NewBadRequest(fmt.Sprintf("invalid gracePeriodSeconds %q", v))
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		switch p {
		case metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan:
		default:
			return opts, apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy must be Orphan, Background or Foreground, got %q", v))
		}
		opts.PropagationPolicy = &p
	}
	if v := q.Get("orphanDependents"); v != "" {
		b := v == "true"
		opts.OrphanDependents = &b
	}
	if dr := q["dryRun"]; len(dr) > 0 {
		opts.DryRun = dr
	}
	return opts, nil
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, info requestInfo, k *store.Kind, ns string, m mediaType, view *versionView) {
	opts, err := s.deleteOptions(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.st.Delete(r.Context(), k.GroupResource(), ns, info.name, opts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	code := http.StatusOK
	if acc, err := meta.Accessor(out); err == nil && acc.GetDeletionTimestamp() != nil && len(opts.DryRun) == 0 {
		// Deletion is pending (finalizers or grace period).
		code = http.StatusOK
	}
	if out == nil {
		st := &metav1.Status{Status: metav1.StatusSuccess, Details: &metav1.StatusDetails{Name: info.name, Group: k.GVK.Group, Kind: k.Resource}}
		s.writeObject(w, code, st, mediaType{typ: m.typ})
		return
	}
	s.respondIn(w, r, code, view, k, out, m)
}

func (s *Server) handleDeleteCollection(w http.ResponseWriter, r *http.Request, k *store.Kind, ns string, m mediaType) {
	var lo metav1.ListOptions
	if err := s.decodeParams(r, &lo); err != nil {
		s.writeError(w, r, err)
		return
	}
	opts, err := s.deleteOptions(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.st.DeleteCollection(r.Context(), k.GroupResource(), ns, opts, lo); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeObject(w, http.StatusOK, &metav1.Status{Status: metav1.StatusSuccess, Details: &metav1.StatusDetails{Group: k.GVK.Group, Kind: k.Resource}}, mediaType{typ: m.typ})
}

// watchEncoder writes watch events in one media type.
type watchEncoder struct {
	s     *Server
	w     http.ResponseWriter
	f     http.Flusher
	m     mediaType
	k     *store.Kind
	query map[string][]string
	// convert, when set, converts event objects to the requested version.
	convert func(runtime.Object) (runtime.Object, error)
}

func (e *watchEncoder) write(ev watch.Event) error {
	var frame []byte
	var err error
	if e.convert == nil && e.m.as == "" && ev.Type != watch.Error && ev.Type != watch.Bookmark && ev.Object != nil {
		// The same object goes to every watcher: encode it once.
		frame, err = e.s.frames.frame(frameKey{obj: ev.Object, typ: ev.Type, media: e.m.typ}, func() ([]byte, error) { return e.encode(ev) })
	} else {
		frame, err = e.encode(ev)
	}
	if err != nil {
		return err
	}
	if _, err := e.w.Write(frame); err != nil {
		return err
	}
	e.f.Flush()
	return nil
}

// encode returns the frame of one watch event in the watcher's media
// type, with the object transformed as the watcher asked.
func (e *watchEncoder) encode(ev watch.Event) ([]byte, error) {
	obj := ev.Object
	if e.m.as == "Table" && ev.Type != watch.Error && ev.Type != watch.Bookmark {
		t, err := e.s.table(e.k, []runtime.Object{obj}, e.query, time.Now())
		if err != nil {
			return nil, err
		}
		if acc, err := meta.Accessor(obj); err == nil {
			t.ResourceVersion = acc.GetResourceVersion()
		}
		obj = t
	} else if e.m.as == "PartialObjectMetadata" && ev.Type != watch.Error {
		obj = partialMetadata(obj)
	} else if e.convert != nil && e.m.as == "" && ev.Type != watch.Error {
		c, err := e.convert(obj)
		if err != nil {
			return nil, err
		}
		obj = c
	}
	inner := mediaType{typ: e.m.typ}
	raw, err := e.s.codecs.encode(obj, inner)
	if err != nil {
		return nil, err
	}
	var frame []byte
	if e.m.typ == mediaCBOR {
		var buf bytes.Buffer
		if err := e.s.codecs.cbor.Encode(&metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw}}, &buf); err != nil {
			return nil, err
		}
		frame = buf.Bytes()
	} else if e.m.typ == mediaProtobuf {
		we := &metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw}}
		b, err := we.Marshal()
		if err != nil {
			return nil, err
		}
		frame = make([]byte, 4+len(b))
		frame[0], frame[1], frame[2], frame[3] = byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b))
		copy(frame[4:], b)
	} else {
		frame, err = json.Marshal(struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}{string(ev.Type), raw})
		if err != nil {
			return nil, err
		}
		frame = append(frame, '\n')
	}
	return frame, nil
}

func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request, k *store.Kind, ns string, m mediaType) {
	s.watchConverted(w, r, k, ns, m, nil)
}

// watchConverted serves a watch of kind k; convert, when set, turns each
// event's object into the version requested (unless a Table or metadata
// is asked for).
func (s *Server) watchConverted(w http.ResponseWriter, r *http.Request, k *store.Kind, ns string, m mediaType, convert func(runtime.Object) (runtime.Object, error)) {
	var opts metav1.ListOptions
	if err := s.decodeParams(r, &opts); err != nil {
		s.writeError(w, r, err)
		return
	}
	if m.typ == mediaYAML {
		m.typ = mediaJSON
	}
	if opts.TimeoutSeconds == nil {
		t := int64(DefaultWatchTimeout / time.Second)
		opts.TimeoutSeconds = &t
	}
	opts.Watch = true
	f, ok := w.(http.Flusher)
	if !ok {
		s.writeError(w, r, apierrors.NewInternalError(errors.New("streaming unsupported")))
		return
	}
	wi, err := s.st.Watch(r.Context(), k.GroupResource(), ns, opts)
	// A resourceVersion too old for the event window is answered as
	// kube-apiserver's watch cache does: 200, then an ERROR event holding
	// a 410 Expired Status; the client lists again.
	expired := apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
	if err != nil && !expired {
		s.writeError(w, r, err)
		return
	}
	if wi != nil {
		defer wi.Stop()
	}
	ct := m.contentType()
	switch m.typ {
	case mediaProtobuf:
		ct = mediaProtobuf + ";stream=watch"
	case mediaCBOR:
		ct = mediaCBORSeq
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	enc := &watchEncoder{s: s, w: w, f: f, m: m, k: k, query: r.URL.Query(), convert: convert}
	if expired {
		status := errorStatus(err)
		if err := enc.write(watch.Event{Type: watch.Error, Object: status}); err != nil {
			s.log.Debug("apiserver: watch write", "err", err)
		}
		return
	}
	for {
		select {
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return
			}
			if err := enc.write(ev); err != nil {
				s.log.Debug("apiserver: watch write", "err", err)
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// Scale subresource.

func scaleOf(obj runtime.Object) (*autoscalingv1.Scale, error) {
	var replicas, statusReplicas int32
	var sel *metav1.LabelSelector
	var om metav1.ObjectMeta
	switch o := obj.(type) {
	case *appsv1.Deployment:
		om, sel, statusReplicas = o.ObjectMeta, o.Spec.Selector, o.Status.Replicas
		replicas = ptrOr(o.Spec.Replicas, 1)
	case *appsv1.ReplicaSet:
		om, sel, statusReplicas = o.ObjectMeta, o.Spec.Selector, o.Status.Replicas
		replicas = ptrOr(o.Spec.Replicas, 1)
	case *appsv1.StatefulSet:
		om, sel, statusReplicas = o.ObjectMeta, o.Spec.Selector, o.Status.Replicas
		replicas = ptrOr(o.Spec.Replicas, 1)
	default:
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "scale"}, "")
	}
	sc := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: om.Name, Namespace: om.Namespace, UID: om.UID, ResourceVersion: om.ResourceVersion, CreationTimestamp: om.CreationTimestamp},
		Spec:       autoscalingv1.ScaleSpec{Replicas: replicas},
		Status:     autoscalingv1.ScaleStatus{Replicas: statusReplicas},
	}
	if sel != nil {
		if s, err := metav1.LabelSelectorAsSelector(sel); err == nil {
			sc.Status.Selector = s.String()
		}
	}
	return sc, nil
}

func setReplicas(obj runtime.Object, n int32) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	case *appsv1.StatefulSet:
		o.Spec.Replicas = &n
	}
}

func ptrOr(p *int32, d int32) int32 {
	if p == nil {
		return d
	}
	return *p
}

func (s *Server) serveScale(w http.ResponseWriter, r *http.Request, info requestInfo, k *store.Kind, ns string, m mediaType) {
	switch k.GroupResource() {
	case schema.GroupResource{Group: "apps", Resource: "deployments"}, schema.GroupResource{Group: "apps", Resource: "replicasets"},
		schema.GroupResource{Group: "apps", Resource: "statefulsets"}:
	default:
		s.writeError(w, r, notFoundResource(info))
		return
	}
	ctx := r.Context()
	for try := 0; ; try++ {
		cur, err := s.st.Get(ctx, k.GroupResource(), ns, info.name, metav1.GetOptions{})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		sc, err := scaleOf(cur)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var want *autoscalingv1.Scale
		var dryRun []string
		switch r.Method {
		case http.MethodGet:
			s.writeObject(w, http.StatusOK, sc, mediaType{typ: m.typ})
			return
		case http.MethodPut:
			var opts metav1.UpdateOptions
			if err := s.decodeParams(r, &opts); err != nil {
				s.writeError(w, r, err)
				return
			}
			dryRun = opts.DryRun
			body, err := readBody(r, s.cfg.MaxBodyBytes)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			want = &autoscalingv1.Scale{}
			if err := s.codecs.decodeInto(r.Header.Get("Content-Type"), body, want); err != nil {
				s.writeError(w, r, err)
				return
			}
			if want.ResourceVersion != "" && want.ResourceVersion != sc.ResourceVersion {
				s.writeError(w, r, apierrors.NewConflict(k.GroupResource(), info.name, errors.New("the object has been modified; please apply your changes to the latest version and try again")))
				return
			}
		case http.MethodPatch:
			var opts metav1.PatchOptions
			if err := s.decodeParams(r, &opts); err != nil {
				s.writeError(w, r, err)
				return
			}
			dryRun = opts.DryRun
			pt, err := patchType(r.Header.Get("Content-Type"))
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			body, err := readBody(r, s.cfg.MaxBodyBytes)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			want, err = patchScale(sc, pt, body)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
		default:
			s.writeError(w, r, apierrors.NewMethodNotSupported(schema.GroupResource{Group: k.GVK.Group, Resource: k.Resource + "/scale"}, r.Method))
			return
		}
		if want.Spec.Replicas < 0 {
			s.writeError(w, r, apierrors.NewInvalid(schema.GroupKind{Group: "autoscaling", Kind: "Scale"}, info.name, nil))
			return
		}
		setReplicas(cur, want.Spec.Replicas)
		out, err := s.st.Update(ctx, cur, metav1.UpdateOptions{DryRun: dryRun})
		if apierrors.IsConflict(err) && r.Method == http.MethodPatch && try < 8 {
			continue
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		res, _ := scaleOf(out)
		s.writeObject(w, http.StatusOK, res, mediaType{typ: m.typ})
		return
	}
}

func patchScale(sc *autoscalingv1.Scale, pt types.PatchType, body []byte) (*autoscalingv1.Scale, error) {
	orig, err := json.Marshal(sc)
	if err != nil {
		return nil, err
	}
	var patched []byte
	switch pt {
	case types.JSONPatchType:
		p, perr := jsonpatch.DecodePatch(body)
		if perr != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid JSON patch: %v", perr))
		}
		patched, err = p.Apply(orig)
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(orig, body)
	case types.StrategicMergePatchType:
		patched, err = strategicpatch.StrategicMergePatch(orig, body, &autoscalingv1.Scale{})
	default:
		return nil, unsupportedMediaType(string(pt))
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch could not be applied: %v", err))
	}
	out := &autoscalingv1.Scale{}
	if err := json.Unmarshal(patched, out); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patched Scale is invalid: %v", err))
	}
	return out, nil
}

// pods/binding.

func (s *Server) serveBinding(w http.ResponseWriter, r *http.Request, info requestInfo, ns string, m mediaType) {
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var b corev1.Binding
	if err := s.codecs.decodeInto(r.Header.Get("Content-Type"), body, &b); err != nil {
		s.writeError(w, r, err)
		return
	}
	if b.Name != "" && b.Name != info.name {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("the name of the binding (%s) does not match the pod (%s)", b.Name, info.name)))
		return
	}
	if b.Target.Name == "" || (b.Target.Kind != "" && b.Target.Kind != "Node") {
		s.writeError(w, r, apierrors.NewInvalid(schema.GroupKind{Kind: "Binding"}, info.name, nil))
		return
	}
	if err := BindPod(r.Context(), s.st, ns, info.name, b.UID, b.Target.Name, b.Annotations, r.URL.Query()["dryRun"]); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeObject(w, http.StatusCreated, &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated}, mediaType{typ: m.typ})
}

// BindPod assigns a pod to a node as the pods/binding subresource does: it
// fails with 409 Conflict if the pod is bound already, sets
// spec.nodeName and the PodScheduled condition.
func BindPod(ctx context.Context, st store.Interface, ns, name string, uid types.UID, node string, annotations map[string]string, dryRun []string) error {
	pods := schema.GroupResource{Resource: "pods"}
	obj, err := st.Get(ctx, pods, ns, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	if uid != "" && pod.UID != uid {
		return apierrors.NewConflict(pods, name, fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", uid, pod.UID))
	}
	if pod.DeletionTimestamp != nil {
		return apierrors.NewConflict(pods, name, errors.New("pod is being deleted, cannot be assigned to a host"))
	}
	if pod.Spec.NodeName != "" {
		return apierrors.NewConflict(pods, name, fmt.Errorf("pod %s is already assigned to node %q", name, pod.Spec.NodeName))
	}
	pod.Spec.NodeName = node
	for k, v := range annotations {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[k] = v
	}
	out, err := st.Update(ctx, pod, metav1.UpdateOptions{DryRun: dryRun})
	if err != nil {
		return err
	}
	if len(dryRun) > 0 {
		return nil
	}
	bound := out.(*corev1.Pod)
	now := metav1.Now()
	set := false
	for i := range bound.Status.Conditions {
		if bound.Status.Conditions[i].Type == corev1.PodScheduled {
			bound.Status.Conditions[i].Status = corev1.ConditionTrue
			bound.Status.Conditions[i].LastTransitionTime = now
			bound.Status.Conditions[i].Reason, bound.Status.Conditions[i].Message = "", ""
			set = true
		}
	}
	if !set {
		bound.Status.Conditions = append(bound.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for try := 0; try < 8; try++ {
		_, err = st.UpdateStatus(ctx, bound, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			break
		}
		o, gerr := st.Get(ctx, pods, ns, name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		fresh := o.(*corev1.Pod)
		fresh.Status.Conditions = bound.Status.Conditions
		bound = fresh
	}
	return err
}

// pods/eviction.

func (s *Server) serveEviction(w http.ResponseWriter, r *http.Request, info requestInfo, ns string, m mediaType) {
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var ev policyv1.Eviction
	if len(body) > 0 {
		if err := s.codecs.decodeInto(r.Header.Get("Content-Type"), body, &ev); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if ev.Name != "" && ev.Name != info.name {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("name in URL does not match name in Eviction object: %s != %s", info.name, ev.Name)))
		return
	}
	if err := EvictPod(r.Context(), s.st, ns, info.name, ev.DeleteOptions); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeObject(w, http.StatusCreated, &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated}, mediaType{typ: m.typ})
}

// EvictPod deletes a pod as the pods/eviction subresource does: unless the
// pod has finished, the PodDisruptionBudget covering it must allow a
// disruption (its status.disruptionsAllowed is decremented), otherwise the
// eviction fails with 429 TooManyRequests, which makes kubectl drain retry.
func EvictPod(ctx context.Context, st store.Interface, ns, name string, opts *metav1.DeleteOptions) error {
	pods := schema.GroupResource{Resource: "pods"}
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	obj, err := st.Get(ctx, pods, ns, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if !terminal && pod.DeletionTimestamp == nil {
		// Concurrent evictions (kubectl drain evicts in parallel) race
		// for the budget's status: retry a conflict with a growing,
		// jittered pause, as upstream's eviction retries.
		for try := 0; ; try++ {
			err := checkPDB(ctx, st, pod, opts.DryRun)
			if apierrors.IsConflict(err) && try < 20 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(try+1)*5*time.Millisecond + time.Duration(rand.Int64N(int64(5*time.Millisecond)))):
				}
				continue
			}
			if err != nil {
				return err
			}
			break
		}
	}
	_, err = st.Delete(ctx, pods, ns, name, *opts)
	return err
}

func checkPDB(ctx context.Context, st store.Interface, pod *corev1.Pod, dryRun []string) error {
	pdbRes := schema.GroupResource{Group: "policy", Resource: "poddisruptionbudgets"}
	list, err := st.List(ctx, pdbRes, pod.Namespace, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var match []*policyv1.PodDisruptionBudget
	for _, it := range list.Items {
		pdb := it.(*policyv1.PodDisruptionBudget)
		if pdb.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			continue
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			match = append(match, pdb)
		}
	}
	if len(match) == 0 {
		return nil
	}
	if len(match) > 1 {
		return apierrors.NewInternalError(errors.New("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."))
	}
	pdb := match[0]
	if pdb.Status.ObservedGeneration < pdb.Generation || pdb.Status.DisruptionsAllowed <= 0 {
		e := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
		e.ErrStatus.Details.Causes = append(e.ErrStatus.Details.Causes, metav1.StatusCause{
			Type:    policyv1.DisruptionBudgetCause,
			Message: fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy),
		})
		return e
	}
	pdb.Status.DisruptionsAllowed--
	if pdb.Status.DisruptedPods == nil {
		pdb.Status.DisruptedPods = map[string]metav1.Time{}
	}
	pdb.Status.DisruptedPods[pod.Name] = metav1.Now()
	_, err = st.UpdateStatus(ctx, pdb, metav1.UpdateOptions{DryRun: dryRun})
	return err
}

// Streaming pod subresources.

func (s *Server) servePodStream(w http.ResponseWriter, r *http.Request, info requestInfo, ns string) {
	obj, err := s.st.Get(r.Context(), schema.GroupResource{Resource: "pods"}, ns, info.name, metav1.GetOptions{})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.cfg.Streamer == nil {
		s.writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("pods/%s is not available: no node agent streamer is configured", info.subresource)))
		return
	}
	if s.serveWebsocketStream(w, r, obj.(*corev1.Pod), info.subresource) {
		return
	}
	s.cfg.Streamer.ServePod(w, r, obj.(*corev1.Pod), info.subresource)
}

// patchHasPrecondition reports whether a patch names a resourceVersion or
// uid, making a conflict final.
func patchHasPrecondition(body []byte) bool {
	return strings.Contains(string(body), `"resourceVersion"`) || strings.Contains(string(body), `"uid"`) || strings.Contains(string(body), "/metadata/resourceVersion")
}

// errorStatus is the Status of an API error, with its type set, for
// watch ERROR events.
func errorStatus(err error) *metav1.Status {
	st := metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Message: err.Error()}
	if se, ok := err.(apierrors.APIStatus); ok {
		st = se.Status()
	}
	st.Kind, st.APIVersion = "Status", "v1"
	return &st
}
