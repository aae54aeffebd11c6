package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	bolt "go.etcd.io/bbolt"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// The durable log: transactions are appended to a write-ahead log
// (github.com/hashicorp/raft-wal, the segment-file log store built for
// hashicorp/raft), one log entry per transaction with the revision as its
// index, many transactions per append (group commit: whatever queued while
// the previous append was being fsynced goes in the next, one fsync each).
// Every SnapshotEvery transactions the whole state is written to a bbolt
// snapshot database beside it and the log up to the snapshot's revision is
// truncated. Recovery loads the snapshot and replays the log after it.
//
// A data directory written by an earlier version keeps its log in a bbolt
// database (log.db, one key per revision). Open replays it once, writes a
// snapshot and removes it.

const (
	walDir       = "wal"
	legacyLog    = "log.db"
	snapshotFile = "snapshot.db"
	snapChunk    = 5_000
	walTerm      = 1 // the log is not replicated yet: every entry has term 1
)

var (
	bucketLog     = []byte("log")
	bucketObjects = []byte("objects")
	bucketMeta    = []byte("meta")
	keyRev        = []byte("rev")
)

type durableLog struct {
	dir string
	wal *wal.WAL
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
		tables[k.Table()] = k
	}
	txn := s.beginApply()
	rev, err := loadSnapshot(filepath.Join(dir, snapshotFile), tables, txn, s)
	if err != nil {
		txn.Abort()
		return nil, 0, err
	}
	legacy := filepath.Join(dir, legacyLog)
	migrate := false
	if _, err := os.Stat(legacy); err == nil {
		if rev, err = replayLegacy(legacy, rev, tables, txn, s); err != nil {
			txn.Abort()
			return nil, 0, err
		}
		migrate = true
	}
	if err := os.MkdirAll(filepath.Join(dir, walDir), 0o700); err != nil {
		txn.Abort()
		return nil, 0, fmt.Errorf("store: log dir: %w", err)
	}
	w, err := wal.Open(filepath.Join(dir, walDir), wal.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		txn.Abort()
		return nil, 0, fmt.Errorf("store: open log: %w", err)
	}
	if rev, err = replayWAL(w, rev, tables, txn, s); err != nil {
		txn.Abort()
		w.Close()
		return nil, 0, fmt.Errorf("store: recover log: %w", err)
	}
	txn.Commit()
	s.publish(rev)
	l := &durableLog{dir: dir, wal: w}
	if migrate {
		// The old log is folded into a snapshot; only then is it removed.
		if err := l.snapshot(s); err != nil {
			w.Close()
			return nil, 0, err
		}
		if err := os.Remove(legacy); err != nil {
			w.Close()
			return nil, 0, fmt.Errorf("store: remove migrated log: %w", err)
		}
		s.log.Info("migrated the bbolt log to the write-ahead log", "dir", dir, "revision", rev)
	}
	return l, rev, nil
}

// replayWAL applies the log entries after the snapshot's revision.
func replayWAL(w *wal.WAL, rev uint64, tables map[string]*Kind, txn *applyTxn, s *Store) (uint64, error) {
	first, err := w.FirstIndex()
	if err != nil {
		return 0, err
	}
	last, err := w.LastIndex()
	if err != nil {
		return 0, err
	}
	if last == 0 || last <= rev {
		return rev, nil
	}
	if first > rev+1 {
		return 0, fmt.Errorf("the log starts at revision %d but the snapshot ends at %d", first, rev)
	}
	var e raft.Log
	for i := rev + 1; i <= last; i++ {
		if err := w.GetLog(i, &e); err != nil {
			return 0, fmt.Errorf("revision %d: %w", i, err)
		}
		if err := replay(e.Data, tables, txn, s); err != nil {
			return 0, fmt.Errorf("revision %d: %w", i, err)
		}
	}
	return last, nil
}

// replayLegacy applies an earlier version's bbolt log after rev.
func replayLegacy(path string, rev uint64, tables map[string]*Kind, txn *applyTxn, s *Store) (uint64, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("store: open legacy log: %w", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLog)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(revKey(rev + 1)); k != nil; k, v = c.Next() {
			r := binary.BigEndian.Uint64(k)
			if err := replay(v, tables, txn, s); err != nil {
				return fmt.Errorf("revision %d: %w", r, err)
			}
			rev = r
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: recover legacy log: %w", err)
	}
	return rev, nil
}

func loadSnapshot(path string, tables map[string]*Kind, txn *applyTxn, s *Store) (uint64, error) {
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

func replay(data []byte, tables map[string]*Kind, txn *applyTxn, s *Store) error {
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
func encodeOps(ops []op) ([]byte, error) { return appendOps(nil, ops) }

// appendOps appends the encoding of ops (see encodeOps) to buf, reusing
// its capacity when it is large enough.
func appendOps(buf []byte, ops []op) ([]byte, error) {
	// Size the buffer first: one allocation of the right size per record.
	var sizes [8]int
	objSize := sizes[:0]
	n := binary.MaxVarintLen64
	for _, o := range ops {
		sz := 0
		if sm, ok := o.obj.(sizedMarshaler); ok && !o.del {
			sz = sm.Size()
		}
		objSize = append(objSize, sz)
		n += 1 + 2*binary.MaxVarintLen64 + len(o.kind.Table()) + len(o.key) + binary.MaxVarintLen64 + 1 + sz
	}
	buf = binary.AppendUvarint(slices.Grow(buf, n), uint64(len(ops)))
	for i, o := range ops {
		tag := byte(1)
		if o.del {
			tag = 2
		}
		buf = append(buf, tag)
		buf = binary.AppendUvarint(buf, uint64(len(o.kind.Table())))
		buf = append(buf, o.kind.Table()...)
		buf = binary.AppendUvarint(buf, uint64(len(o.key)))
		buf = append(buf, o.key...)
		if !o.del {
			var err error
			if buf, err = appendObject(buf, o.obj, objSize[i]); err != nil {
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
func appendObject(buf []byte, obj runtime.Object, n int) ([]byte, error) {
	sm, ok := obj.(sizedMarshaler)
	if !ok || n == 0 {
		b, err := encodeObject(obj)
		if err != nil {
			return nil, err
		}
		buf = binary.AppendUvarint(buf, uint64(len(b)))
		return append(buf, b...), nil
	}
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
	logs := make([]*raft.Log, len(batch))
	entries := make([]raft.Log, len(batch))
	for i, p := range batch {
		entries[i] = raft.Log{Index: p.rev, Term: walTerm, Type: raft.LogCommand, Data: p.data}
		logs[i] = &entries[i]
	}
	return l.wal.StoreLogs(logs)
}

func (l *durableLog) close() error { return l.wal.Close() }

// snapshot writes the state at the latest applied revision to a new
// snapshot file, swaps it in atomically and then deletes the log up to it.
func (l *durableLog) snapshot(s *Store) error {
	txn, rev := s.reader()
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
		it, ierr := txn.Get(k.Table(), "id")
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
					if err := b.Put([]byte(k.Table()+"\x00"+r.Key), v); err != nil {
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
	first, err := l.wal.FirstIndex()
	if err == nil && first > 0 && first <= rev {
		err = l.wal.DeleteRange(first, rev)
	}
	if err != nil {
		return fmt.Errorf("store: compact log to revision %d: %w", rev, err)
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
