package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-memdb"
	bolt "go.etcd.io/bbolt"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// The durable log: transactions are appended to a bbolt database, one key
// (the big-endian revision) per transaction, many transactions per bbolt
// commit (group commit: whatever queued while the previous commit was being
// fsynced goes in the next). Every SnapshotEvery transactions the whole
// state is written to a snapshot database beside it and the log up to the
// snapshot's revision is deleted. Recovery loads the snapshot and replays
// the log after it.

const (
	logFile      = "log.db"
	snapshotFile = "snapshot.db"
	compactChunk = 10_000
	snapChunk    = 5_000
)

var (
	bucketLog     = []byte("log")
	bucketObjects = []byte("objects")
	bucketMeta    = []byte("meta")
	keyRev        = []byte("rev")
)

type durableLog struct {
	dir string
	db  *bolt.DB
}

func revKey(rev uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, rev)
}

func openDurableLog(dir string, s *Store) (*durableLog, uint64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("store: data dir: %w", err)
	}
	_ = os.Remove(filepath.Join(dir, snapshotFile+".tmp"))
	tables := map[string]*Kind{}
	for _, k := range s.reg.Kinds() {
		tables[k.table()] = k
	}
	txn := s.db.Txn(true)
	rev, err := loadSnapshot(filepath.Join(dir, snapshotFile), tables, txn, s)
	if err != nil {
		txn.Abort()
		return nil, 0, err
	}
	db, err := bolt.Open(filepath.Join(dir, logFile), 0o600, &bolt.Options{
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		txn.Abort()
		return nil, 0, fmt.Errorf("store: open log: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketLog)
		return err
	})
	if err == nil {
		err = db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketLog).Cursor()
			for k, v := c.Seek(revKey(rev + 1)); k != nil; k, v = c.Next() {
				r := binary.BigEndian.Uint64(k)
				if err := replay(v, tables, txn, s); err != nil {
					return fmt.Errorf("revision %d: %w", r, err)
				}
				rev = r
			}
			return nil
		})
	}
	if err != nil {
		txn.Abort()
		db.Close()
		return nil, 0, fmt.Errorf("store: recover log: %w", err)
	}
	if err := txn.Insert(metaTable, &revRow{ID: "rev", Rev: rev}); err != nil {
		txn.Abort()
		db.Close()
		return nil, 0, fmt.Errorf("store: recover: %w", err)
	}
	txn.Commit()
	return &durableLog{dir: dir, db: db}, rev, nil
}

func loadSnapshot(path string, tables map[string]*Kind, txn *memdb.Txn, s *Store) (uint64, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("store: open snapshot: %w", err)
	}
	defer db.Close()
	var rev uint64
	err = db.View(func(tx *bolt.Tx) error {
		m, objs := tx.Bucket(bucketMeta), tx.Bucket(bucketObjects)
		if m == nil || objs == nil {
			return errors.New("snapshot is incomplete")
		}
		rev = binary.BigEndian.Uint64(m.Get(keyRev))
		return objs.ForEach(func(k, v []byte) error {
			table, _, _ := strings.Cut(string(k), "\x00")
			kind := tables[table]
			if kind == nil {
				return fmt.Errorf("snapshot holds unknown table %q", table)
			}
			obj, err := decodeObject(kind, v)
			if err != nil {
				return err
			}
			_, key, _ := strings.Cut(string(k), "\x00")
			s.applyOp(txn, op{kind: kind, key: key, obj: obj})
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("store: load snapshot: %w", err)
	}
	return rev, nil
}

func replay(data []byte, tables map[string]*Kind, txn *memdb.Txn, s *Store) error {
	n, data, err := readUvarint(data)
	if err != nil {
		return err
	}
	for i := uint64(0); i < n; i++ {
		if len(data) == 0 {
			return errors.New("truncated record")
		}
		del := data[0] == 2
		data = data[1:]
		var table, key, obj []byte
		if table, data, err = readBytes(data); err != nil {
			return err
		}
		if key, data, err = readBytes(data); err != nil {
			return err
		}
		kind := tables[string(table)]
		if kind == nil {
			return fmt.Errorf("unknown table %q", table)
		}
		o := op{kind: kind, key: string(key), del: del}
		if !del {
			if obj, data, err = readBytes(data); err != nil {
				return err
			}
			if o.obj, err = decodeObject(kind, obj); err != nil {
				return err
			}
		}
		s.applyOp(txn, o)
	}
	return nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errors.New("bad varint in record")
	}
	return v, b[n:], nil
}

func readBytes(b []byte) ([]byte, []byte, error) {
	n, rest, err := readUvarint(b)
	if err != nil {
		return nil, nil, err
	}
	if uint64(len(rest)) < n {
		return nil, nil, errors.New("truncated record")
	}
	return rest[:n], rest[n:], nil
}

// encodeOps encodes a transaction: a count, then per change a tag (1 put,
// 2 delete), the table, the key and, for a put, the object.
func encodeOps(ops []op) ([]byte, error) {
	buf := binary.AppendUvarint(make([]byte, 0, 4096), uint64(len(ops)))
	for _, o := range ops {
		tag := byte(1)
		if o.del {
			tag = 2
		}
		buf = append(buf, tag)
		buf = binary.AppendUvarint(buf, uint64(len(o.kind.table())))
		buf = append(buf, o.kind.table()...)
		buf = binary.AppendUvarint(buf, uint64(len(o.key)))
		buf = append(buf, o.key...)
		if !o.del {
			var err error
			if buf, err = appendObject(buf, o.obj); err != nil {
				return nil, err
			}
		}
	}
	return buf, nil
}

// sizedMarshaler is the generated protobuf encoding of the upstream types,
// which can write straight into a buffer.
type sizedMarshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// appendObject appends a length-prefixed encoded object to buf, encoding
// protobuf in place when the type allows it.
func appendObject(buf []byte, obj runtime.Object) ([]byte, error) {
	sm, ok := obj.(sizedMarshaler)
	if !ok {
		b, err := encodeObject(obj)
		if err != nil {
			return nil, err
		}
		buf = binary.AppendUvarint(buf, uint64(len(b)))
		return append(buf, b...), nil
	}
	n := sm.Size()
	buf = binary.AppendUvarint(buf, uint64(n+1))
	buf = append(buf, 'p')
	start := len(buf)
	buf = append(buf, make([]byte, n)...)
	if _, err := sm.MarshalToSizedBuffer(buf[start:]); err != nil {
		return nil, fmt.Errorf("store: encode %T: %w", obj, err)
	}
	return buf, nil
}

type protoCodec interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// encodeObject uses the generated protobuf encoding of the upstream types
// ('p'), or JSON ('j') for types without one.
func encodeObject(obj runtime.Object) ([]byte, error) {
	if pc, ok := obj.(protoCodec); ok {
		b, err := pc.Marshal()
		if err != nil {
			return nil, fmt.Errorf("store: encode %T: %w", obj, err)
		}
		return append([]byte{'p'}, b...), nil
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("store: encode %T: %w", obj, err)
	}
	return append([]byte{'j'}, b...), nil
}

func decodeObject(k *Kind, b []byte) (runtime.Object, error) {
	if len(b) == 0 {
		return nil, errors.New("store: empty object in log")
	}
	obj := k.New()
	var err error
	switch b[0] {
	case 'p':
		pc, ok := obj.(protoCodec)
		if !ok {
			return nil, fmt.Errorf("store: %T has no protobuf codec", obj)
		}
		err = pc.Unmarshal(b[1:])
	case 'j':
		err = json.Unmarshal(b[1:], obj)
	default:
		err = fmt.Errorf("unknown encoding %q", b[0])
	}
	if err != nil {
		return nil, fmt.Errorf("store: decode %s: %w", k.GVK.Kind, err)
	}
	warm(obj)
	return obj, nil
}

func (l *durableLog) append(batch []*proposal) error {
	return l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLog)
		for _, p := range batch {
			if err := b.Put(revKey(p.rev), p.data); err != nil {
				return err
			}
		}
		return nil
	})
}

func (l *durableLog) close() error { return l.db.Close() }

// snapshot writes the state at the latest applied revision to a new
// snapshot file, swaps it in atomically and then deletes the log up to it.
func (l *durableLog) snapshot(s *Store) error {
	txn := s.db.Txn(false)
	rev := revOf(txn)
	tmp := filepath.Join(l.dir, snapshotFile+".tmp")
	_ = os.Remove(tmp)
	sdb, err := bolt.Open(tmp, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	err = sdb.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketObjects); err != nil {
			return err
		}
		return m.Put(keyRev, revKey(rev))
	})
	for _, k := range s.reg.Kinds() {
		if err != nil {
			break
		}
		it, ierr := txn.Get(k.table(), "id")
		if ierr != nil {
			err = ierr
			break
		}
		for done := false; !done && err == nil; {
			err = sdb.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketObjects)
				for i := 0; i < snapChunk; i++ {
					raw := it.Next()
					if raw == nil {
						done = true
						return nil
					}
					r := raw.(*record)
					v, err := encodeObject(r.Obj)
					if err != nil {
						return err
					}
					if err := b.Put([]byte(k.table()+"\x00"+r.Key), v); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	if err == nil {
		err = sdb.Sync()
	}
	if cerr := sdb.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(l.dir, snapshotFile))
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: snapshot at revision %d: %w", rev, err)
	}
	// The snapshot is durable: the log up to it is no longer needed.
	for more := true; more; {
		err := l.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketLog)
			c := b.Cursor()
			var keys [][]byte
			for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= rev && len(keys) < compactChunk; k, _ = c.Next() {
				keys = append(keys, append([]byte(nil), k...))
			}
			more = len(keys) == compactChunk
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: compact log to revision %d: %w", rev, err)
		}
	}
	s.log.Debug("snapshot written", "revision", rev)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// objectName is used in messages.
func objectName(obj runtime.Object) string {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return "?"
	}
	if acc.GetNamespace() == "" {
		return acc.GetName()
	}
	return acc.GetNamespace() + "/" + acc.GetName()
}
