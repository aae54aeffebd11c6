package storeapi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Decode decodes one manifest (YAML or JSON) into the registered Go type
// its apiVersion and kind name. Decoding is strict: an unknown or
// duplicated field is an error that names the field, as the API server's
// strict field validation reports it. Missing apiVersion, kind or an
// unregistered kind are errors too.
func Decode(reg *Registry, data []byte) (runtime.Object, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error converting YAML to JSON: %v", err))
	}
	if _, err := yaml.YAMLToJSONStrict(data); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("strict decoding error: duplicate field: %v", err))
	}
	var tm metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("couldn't get version/kind; json parse error: %v", err))
	}
	switch {
	case tm.APIVersion == "" && tm.Kind == "":
		return nil, apierrors.NewBadRequest("Object 'Kind' is missing and 'apiVersion' is missing in the manifest")
	case tm.APIVersion == "":
		return nil, apierrors.NewBadRequest(fmt.Sprintf("Object 'apiVersion' is missing in kind %q", tm.Kind))
	case tm.Kind == "":
		return nil, apierrors.NewBadRequest(fmt.Sprintf("Object 'Kind' is missing in apiVersion %q", tm.APIVersion))
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid apiVersion %q: %v", tm.APIVersion, err))
	}
	k := reg.ForGVK(gv.WithKind(tm.Kind))
	if k == nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("no kind %q is registered for version %q", tm.Kind, tm.APIVersion))
	}
	obj := k.New()
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", tm.Kind, tm.APIVersion, tm.Kind, err))
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: strict decoding error: %s", tm.Kind, tm.APIVersion, tm.Kind, strings.Join(msgs, ", ")))
	}
	// The store keeps objects without TypeMeta, as typed clients do.
	if acc, ok := obj.(interface{ GetObjectKind() schema.ObjectKind }); ok {
		acc.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	}
	return obj, nil
}

// DecodeAll decodes every document of a multi-document YAML stream (or a
// JSON object), skipping empty documents. The first bad document stops it
// with an error naming its position.
func DecodeAll(reg *Registry, r io.Reader) ([]runtime.Object, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []runtime.Object
	for i := 1; ; i++ {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, err := Decode(reg, doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, obj)
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}
