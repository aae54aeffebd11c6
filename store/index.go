package store

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/go-memdb"
)

// Indexes. Each kind has two memdb tables: its objects (table(), one
// record per object under the unique "id" index, namespace/name), and
// their secondary index entries (indexTable(), one indexRow per label,
// owner reference and, for pods, spec.nodeName). memdb itself would keep
// the secondary indexes in the objects' table, and every write of an
// object would then rewrite (path-copy) one radix-tree entry per index
// even when the indexed values did not change, as in a pod's status
// update or binding. With the entries in their own table, a write touches
// only the entries whose values changed: a status update writes the
// object's id entry alone, a binding adds the node entry.
//
// An index row's key is a tag byte (idxLabel, idxOwner, idxNode), the
// indexed values and the object's id, each NUL-terminated, so that a
// prefix scan of tag and values yields the matching objects in id
// (namespace/name) order. Readers resolve each row to the record through
// the id index of the same read transaction.

// Index tags.
const (
	idxLabel = 'l' // label key, label value
	idxOwner = 'o' // owner reference UID
	idxNode  = 'n' // spec.nodeName
)

// indexRow is one secondary index entry.
type indexRow struct {
	key []byte // tag, values and the object's id, each NUL-terminated
	id  any    // the object's id (record.id, a []byte), boxed once for lookups
}

// rowIndex is the unique index of an index table: the row's key. Exact
// and prefix lookups take the key bytes as they are.
type rowIndex struct{}

// FromObject returns the row's key.
func (*rowIndex) FromObject(obj any) (bool, []byte, error) { return true, obj.(*indexRow).key, nil }

// FromArgs takes one []byte, the complete key.
func (*rowIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, errors.New("index row: one argument expected")
	}
	b, ok := args[0].([]byte)
	if !ok {
		return nil, fmt.Errorf("index row: argument must be []byte, got %T", args[0])
	}
	return b, nil
}

// PrefixFromArgs takes one []byte, a key prefix.
func (i *rowIndex) PrefixFromArgs(args ...any) ([]byte, error) { return i.FromArgs(args...) }

// recordKeyIndex indexes record.Key (the unique "id" index of an object
// table) as memdb's StringFieldIndex would (NUL-terminated). Lookups take
// a string, or the []byte of a record's id as it is.
type recordKeyIndex struct{ memdb.StringFieldIndex }

// FromObject returns the record's precomputed id.
func (*recordKeyIndex) FromObject(obj any) (bool, []byte, error) {
	r := obj.(*record)
	if r.id == nil {
		return true, terminated(r.Key, 0), nil
	}
	return true, r.id, nil
}

// FromArgs accepts a record id ([]byte) besides a key string.
func (i *recordKeyIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) == 1 {
		if b, ok := args[0].([]byte); ok {
			return b, nil
		}
	}
	return i.StringFieldIndex.FromArgs(args...)
}

// terminated returns s with a NUL terminator, with spare capacity extra.
func terminated(s string, extra int) []byte {
	b := make([]byte, 0, len(s)+1+extra)
	b = append(b, s...)
	return append(b, 0)
}

// rowKey builds an index row key: tag, vals and id (already terminated).
func rowKey(tag byte, id []byte, vals ...string) []byte {
	n := 2 + len(id)
	for _, v := range vals {
		n += len(v) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, tag, 0)
	for _, v := range vals {
		b = append(b, v...)
		b = append(b, 0)
	}
	return append(b, id...)
}

// rowPrefix is rowKey without the id: what a lookup scans.
func rowPrefix(tag byte, vals ...string) []byte { return rowKey(tag, nil, vals...) }

// rowWriter is what writing index rows needs of a write transaction.
type rowWriter interface {
	Insert(table string, obj any) error
	Delete(table string, obj any) error
}

// updateIndexRows writes the index rows of a record that replaces old
// (nil for a new object) or, with r nil, deletes old's: only the entries
// whose values differ are written.
func updateIndexRows(txn rowWriter, k *Kind, old, r *record) error {
	var oldLabels, newLabels map[string]string
	var oldOwners, newOwners []string
	var oldNode, newNode string
	var oldID, newID []byte
	if old != nil {
		oldLabels, oldOwners, oldNode, oldID = old.Labels, old.Owners, old.Node, old.recordID()
	}
	if r != nil {
		newLabels, newOwners, newNode, newID = r.Labels, r.Owners, r.Node, r.recordID()
	}
	tbl := k.IndexTable()
	var boxedID any = newID
	put := func(key []byte) error { return txn.Insert(tbl, &indexRow{key: key, id: boxedID}) }
	del := func(key []byte) error {
		if err := txn.Delete(tbl, &indexRow{key: key}); err != nil && !errors.Is(err, memdb.ErrNotFound) {
			return err
		}
		return nil
	}
	if !maps.Equal(oldLabels, newLabels) {
		for lk, lv := range oldLabels {
			if nv, ok := newLabels[lk]; !ok || nv != lv {
				if err := del(rowKey(idxLabel, oldID, lk, lv)); err != nil {
					return err
				}
			}
		}
		for lk, lv := range newLabels {
			if ov, ok := oldLabels[lk]; !ok || ov != lv {
				if err := put(rowKey(idxLabel, newID, lk, lv)); err != nil {
					return err
				}
			}
		}
	}
	if !slices.Equal(oldOwners, newOwners) {
		for _, o := range oldOwners {
			if !slices.Contains(newOwners, o) {
				if err := del(rowKey(idxOwner, oldID, o)); err != nil {
					return err
				}
			}
		}
		for _, o := range newOwners {
			if !slices.Contains(oldOwners, o) {
				if err := put(rowKey(idxOwner, newID, o)); err != nil {
					return err
				}
			}
		}
	}
	if oldNode != newNode {
		if oldNode != "" {
			if err := del(rowKey(idxNode, oldID, oldNode)); err != nil {
				return err
			}
		}
		if newNode != "" {
			if err := put(rowKey(idxNode, newID, newNode)); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordID returns the record's id as the id index stores it.
func (r *record) recordID() []byte {
	if r.id == nil {
		return terminated(r.Key, 0)
	}
	return r.id
}

// indexed returns the records of k whose index entry tag has the values
// vals (a label key and value, an owner UID, a node name), in id order.
func indexed(txn *memdb.Txn, k *Kind, tag byte, vals ...string) (memdb.ResultIterator, error) {
	rows, err := txn.Get(k.IndexTable(), "id_prefix", rowPrefix(tag, vals...))
	if err != nil {
		return nil, err
	}
	return &recordsOfRows{txn: txn, table: k.Table(), rows: rows}, nil
}

// recordsOfRows turns an iterator over index rows into one over the
// records they name.
type recordsOfRows struct {
	txn   *memdb.Txn
	table string
	rows  memdb.ResultIterator
}

// WatchCh is the rows iterator's.
func (it *recordsOfRows) WatchCh() <-chan struct{} { return it.rows.WatchCh() }

// Next returns the next record, or nil at the end.
func (it *recordsOfRows) Next() any {
	for {
		raw := it.rows.Next()
		if raw == nil {
			return nil
		}
		// A row and its record are written in one transaction, so the
		// record is always there; skip rather than fail if it is not.
		if r, err := it.txn.First(it.table, "id", raw.(*indexRow).id); err == nil && r != nil {
			return r
		}
	}
}
