package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor/direct"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/store"
)

// Media types the server speaks.
const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
	// mediaCBOR is served as kube-apiserver ≥ 1.32 does with its CBOR
	// feature gates on; watches stream application/cbor-seq.
	mediaCBOR    = "application/cbor"
	mediaCBORSeq = "application/cbor-seq"
)

// codecs holds the scheme and serializers of one server.
type codecs struct {
	scheme  *runtime.Scheme
	factory serializer.CodecFactory
	params  runtime.ParameterCodec
	proto   *protobuf.Serializer
	cbor    runtime.Serializer
}

func newCodecs() (*codecs, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("apiserver: scheme: %w", err)
	}
	if err := metav1.AddMetaToScheme(s); err != nil {
		return nil, fmt.Errorf("apiserver: scheme: %w", err)
	}
	if err := apidiscoveryv2.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("apiserver: scheme: %w", err)
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return &codecs{
		scheme:  s,
		factory: serializer.NewCodecFactory(s),
		params:  runtime.NewParameterCodec(s),
		proto:   protobuf.NewSerializer(s, s),
		cbor:    cbor.NewSerializer(s, s),
	}, nil
}

// mediaType is one negotiated media type with its parameters.
type mediaType struct {
	typ string // application/json, application/yaml, application/vnd.kubernetes.protobuf
	// as, g, v select a transformed representation (Table,
	// PartialObjectMetadata, APIGroupDiscoveryList).
	as, g, v string
}

func (m mediaType) contentType() string {
	if m.as == "" {
		return m.typ
	}
	return fmt.Sprintf("%s;g=%s;v=%s;as=%s", m.typ, m.g, m.v, m.as)
}

// negotiate picks the response media type from an Accept header. accepted
// reports which "as" transformations the caller supports.
func negotiate(accept string, accepted func(m mediaType) bool) (mediaType, error) {
	if strings.TrimSpace(accept) == "" {
		return mediaType{typ: mediaJSON}, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		m := mediaType{as: params["as"], g: params["g"], v: params["v"]}
		switch mt {
		case mediaJSON, "*/*", "application/*":
			m.typ = mediaJSON
		case mediaYAML:
			m.typ = mediaYAML
		case mediaProtobuf:
			m.typ = mediaProtobuf
		case mediaCBOR, mediaCBORSeq:
			m.typ = mediaCBOR
		default:
			continue
		}
		if m.as != "" && (accepted == nil || !accepted(m)) {
			continue
		}
		return m, nil
	}
	return mediaType{}, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "", fmt.Sprintf("only the following media types are accepted: %s, %s, %s, %s", mediaJSON, mediaYAML, mediaProtobuf, mediaCBOR), 0, false)
}

// withKind returns a shallow copy of obj carrying its apiVersion and kind,
// leaving obj (possibly shared with other watchers) untouched.
func (c *codecs) withKind(obj runtime.Object) (runtime.Object, error) {
	if !obj.GetObjectKind().GroupVersionKind().Empty() {
		return obj, nil
	}
	kinds, _, err := c.scheme.ObjectKinds(obj)
	if err != nil || len(kinds) == 0 {
		return nil, fmt.Errorf("apiserver: no kind for %T: %w", obj, err)
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer {
		return nil, fmt.Errorf("apiserver: %T is not a pointer", obj)
	}
	cp := reflect.New(v.Elem().Type())
	cp.Elem().Set(v.Elem())
	out := cp.Interface().(runtime.Object)
	out.GetObjectKind().SetGroupVersionKind(kinds[0])
	return out, nil
}

// encode serializes obj in the media type.
func (c *codecs) encode(obj runtime.Object, m mediaType) ([]byte, error) {
	obj, err := c.withKind(obj)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	switch m.typ {
	case mediaProtobuf:
		if err := c.proto.Encode(obj, &buf); err != nil {
			return nil, fmt.Errorf("apiserver: protobuf encode: %w", err)
		}
	case mediaCBOR:
		if err := c.cbor.Encode(obj, &buf); err != nil {
			return nil, fmt.Errorf("apiserver: cbor encode: %w", err)
		}
	case mediaYAML:
		js, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("apiserver: encode: %w", err)
		}
		y, err := yaml.JSONToYAML(js)
		if err != nil {
			return nil, fmt.Errorf("apiserver: encode: %w", err)
		}
		return y, nil
	default:
		if err := json.NewEncoder(&buf).Encode(obj); err != nil {
			return nil, fmt.Errorf("apiserver: encode: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// errBodyTooLarge is returned when a request body exceeds the limit.
var errBodyTooLarge = errors.New("request body too large")

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if int64(len(b)) > limit {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", limit))
	}
	return b, nil
}

// Field validation directives (the fieldValidation query parameter).
const (
	validationStrict = "Strict"
	validationWarn   = "Warn"
	validationIgnore = "Ignore"
)

func fieldValidation(q string) (string, error) {
	switch q {
	case "", validationWarn:
		return validationWarn, nil
	case validationStrict, validationIgnore:
		return q, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of Ignore, Warn or Strict, got %q", q))
}

// bodyToJSON converts a JSON or YAML body to JSON; protobuf bodies are
// returned as they are with isProto set.
func bodyToJSON(contentType string, body []byte) (js []byte, isProto bool, err error) {
	mt := mediaJSON
	if contentType != "" {
		parsed, _, perr := mime.ParseMediaType(contentType)
		if perr != nil {
			return nil, false, unsupportedMediaType(contentType)
		}
		mt = parsed
	}
	switch mt {
	case mediaJSON:
		return body, false, nil
	case mediaYAML, "application/apply-patch+yaml":
		js, err := yaml.YAMLToJSON(body)
		if err != nil {
			return nil, false, apierrors.NewBadRequest(fmt.Sprintf("error converting YAML to JSON: %v", err))
		}
		return js, false, nil
	case mediaProtobuf:
		return body, true, nil
	case mediaCBOR:
		js, err := cborToJSON(body)
		return js, false, err
	}
	return nil, false, unsupportedMediaType(contentType)
}

// decodeObject decodes a request body into a new object of kind k. With
// validation Strict an unknown or duplicate field is a 400 naming it; with
// Warn it is returned as a warning; with Ignore it is dropped.
func (c *codecs) decodeObject(k *store.Kind, contentType string, body []byte, validation string) (runtime.Object, []string, error) {
	js, isProto, err := bodyToJSON(contentType, body)
	if err != nil {
		return nil, nil, err
	}
	obj := k.New()
	if isProto {
		into, _, err := c.proto.Decode(body, nil, obj)
		if err != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("unable to decode protobuf body: %v", err))
		}
		if into != obj {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("protobuf body is a %T, not a %s", into, k.GVK.Kind))
		}
		if gvk := obj.GetObjectKind().GroupVersionKind(); !gvk.Empty() && gvk != k.GVK {
			return nil, nil, kindMismatch(gvk, k.GVK)
		}
		obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
		return obj, nil, nil
	}
	return decodeJSONInto(k, js, obj, validation)
}

func kindMismatch(got, want schema.GroupVersionKind) error {
	if got.GroupVersion() != want.GroupVersion() {
		return apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), want.GroupVersion()))
	}
	return apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", got.Kind, want.Kind))
}

// decodeJSONInto decodes js into obj of kind k with field validation.
func decodeJSONInto(k *store.Kind, js []byte, obj runtime.Object, validation string) (runtime.Object, []string, error) {
	var tm metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("couldn't get version/kind; json parse error: %v", err))
	}
	if tm.APIVersion != "" || tm.Kind != "" {
		gv, err := schema.ParseGroupVersion(tm.APIVersion)
		if err != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid apiVersion %q: %v", tm.APIVersion, err))
		}
		got := gv.WithKind(tm.Kind)
		if got.Kind == "" {
			got.Kind = k.GVK.Kind
		}
		if tm.APIVersion == "" {
			got.Group, got.Version = k.GVK.Group, k.GVK.Version
		}
		if got != k.GVK {
			return nil, nil, kindMismatch(got, k.GVK)
		}
	}
	what := fmt.Sprintf("%s in version %q cannot be handled as a %s", k.GVK.Kind, k.GVK.Version, k.GVK.Kind)
	strictErrs, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("%s: %v", what, err))
	}
	obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	if len(strictErrs) == 0 || validation == validationIgnore {
		return obj, nil, nil
	}
	msgs := make([]string, len(strictErrs))
	for i, e := range strictErrs {
		msgs[i] = e.Error()
	}
	if validation == validationStrict {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("%s: strict decoding error: %s", what, strings.Join(msgs, ", ")))
	}
	return obj, msgs, nil
}

// decodeOptions decodes a body holding an options object (DeleteOptions,
// Eviction, Binding...) in JSON, YAML or protobuf.
func (c *codecs) decodeInto(contentType string, body []byte, into runtime.Object) error {
	js, isProto, err := bodyToJSON(contentType, body)
	if err != nil {
		return err
	}
	if isProto {
		if _, _, err := c.proto.Decode(body, nil, into); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("unable to decode protobuf body: %v", err))
		}
		return nil
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, into); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("unable to decode body: %v", err))
	}
	return nil
}

func unsupportedMediaType(contentType string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got %q)", contentType),
	}}
}

func notAcceptable(msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotAcceptable, Reason: metav1.StatusReasonNotAcceptable, Message: msg,
	}}
}

// cborToJSON transcodes a CBOR request body to JSON, so that CBOR bodies
// get the same decoding and field validation as JSON ones. Byte strings
// become base64 strings, as []byte fields are in JSON.
func cborToJSON(body []byte) ([]byte, error) {
	var v any
	if err := direct.Unmarshal(body, &v); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unable to decode CBOR body: %v", err))
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("CBOR body has no JSON equivalent: %v", err))
	}
	return js, nil
}
