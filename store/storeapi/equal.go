package storeapi

import (
	"bytes"

	"k8s.io/apimachinery/pkg/api/equality"
)

type marshaler interface{ Marshal() ([]byte, error) }

// sizedMarshaler is the generated protobuf encoding of the upstream types,
// which can write straight into a buffer.
type sizedMarshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// SameObject reports whether a and b, two API objects or two parts of
// them of one type, are equal. The upstream types encode
// deterministically to protobuf (map keys sorted, quantities canonical,
// nil and empty collections alike), which is several times cheaper than a
// reflective deep comparison; other types are compared semantically.
func SameObject(a, b any) bool {
	if sa, ok := a.(sizedMarshaler); ok {
		if sb, ok := b.(sizedMarshaler); ok {
			// Different sizes differ; equal sizes are encoded into the two
			// halves of one buffer.
			na, nb := sa.Size(), sb.Size()
			if na != nb {
				return false
			}
			buf := make([]byte, na+nb)
			_, errA := sa.MarshalToSizedBuffer(buf[:na])
			_, errB := sb.MarshalToSizedBuffer(buf[na:])
			if errA == nil && errB == nil {
				return bytes.Equal(buf[:na], buf[na:])
			}
		}
	}
	if ma, ok := a.(marshaler); ok {
		if mb, ok := b.(marshaler); ok {
			ba, errA := ma.Marshal()
			bb, errB := mb.Marshal()
			if errA == nil && errB == nil {
				return bytes.Equal(ba, bb)
			}
		}
	}
	return equality.Semantic.DeepEqual(a, b)
}
