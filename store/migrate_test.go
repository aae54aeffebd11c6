package store

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMigrateLegacyLog opens a data directory written in the earlier format
// (a bbolt log, one key per revision) and checks that its objects are
// there, that the old log is folded into a snapshot and removed, and that
// the revision sequence continues across the change.
func TestMigrateLegacyLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := s.reg.ForResource(corev1.SchemeGroupVersion.WithResource("configmaps").GroupResource())
	db, err := bolt.Open(filepath.Join(dir, legacyLog), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	const base = 100
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketLog)
		if err != nil {
			return err
		}
		for i, name := range []string{"a", "b", "c"} {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: "uid-" + "name", ResourceVersion: "1"}, Data: map[string]string{"k": name}}
			data, err := encodeOps([]op{{kind: k, key: objKey("default", name), obj: cm}})
			if err != nil {
				return err
			}
			if err := b.Put(revKey(uint64(base+i)), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	m, err := Open(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatalf("open a legacy data directory: %v", err)
	}
	for _, name := range []string{"a", "b", "c"} {
		cm, err := Get[*corev1.ConfigMap](ctx, m, "default", name)
		if err != nil {
			t.Fatalf("after migration: %v", err)
		}
		if cm.Data["k"] != name {
			t.Errorf("configmap %s holds %v", name, cm.Data)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, legacyLog)); !os.IsNotExist(err) {
		t.Errorf("the legacy log is still there (stat: %v)", err)
	}
	created, err := Create(ctx, m, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "d"}})
	if err != nil {
		t.Fatal(err)
	}
	if rv, _ := strconv.Atoi(created.ResourceVersion); rv <= base+2 {
		t.Errorf("first revision after migration = %s, want more than %d", created.ResourceVersion, base+2)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// And once more, now from the snapshot and the write-ahead log.
	r, err := Open(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, name := range []string{"a", "b", "c", "d"} {
		if _, err := Get[*corev1.ConfigMap](ctx, r, "default", name); err != nil {
			t.Errorf("after reopening: %v", err)
		}
	}
}
