package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

func mustStore(t *testing.T, cidr string) *ipStore {
	t.Helper()
	s, err := newIPStore(t.TempDir(), "net", netip.MustParsePrefix(cidr))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeFiles lists the store directory as name -> content.
func storeFiles(t *testing.T, s *ipStore) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(s.dir, e.Name()))
		out[e.Name()] = string(b)
	}
	return out
}

func TestIPStoreAllocateRelease(t *testing.T) {
	s := mustStore(t, "10.9.0.0/29") // .1 gateway, .2-.6 for pods, .7 broadcast
	var got []string
	for i := range 5 {
		p, err := s.allocate(fmt.Sprintf("c%d", i), "eth0")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.String())
	}
	want := []string{"10.9.0.2/29", "10.9.0.3/29", "10.9.0.4/29", "10.9.0.5/29", "10.9.0.6/29"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("allocation order (-want +got):\n%s", diff)
	}
	if _, err := s.allocate("c5", "eth0"); err == nil || !strings.Contains(err.Error(), "no IP addresses available") {
		t.Errorf("allocate from a full range = %v, want an exhaustion error", err)
	}
	if err := s.release("c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := s.release("c1", "eth0"); err != nil {
		t.Errorf("second release: %v", err)
	}
	wantFiles := map[string]string{
		"10.9.0.2": "c0\r\neth0", "10.9.0.4": "c2\r\neth0", "10.9.0.5": "c3\r\neth0", "10.9.0.6": "c4\r\neth0",
		"last_reserved_ip.0": "10.9.0.6", "lock": "",
	}
	if diff := cmp.Diff(wantFiles, storeFiles(t, s)); diff != "" {
		t.Errorf("store after release (-want +got):\n%s", diff)
	}
	// After the last reserved address the search wraps around to the freed one.
	if p, err := s.allocate("c9", "eth0"); err != nil || p.String() != "10.9.0.3/29" {
		t.Errorf("allocate after wrap = %v, %v; want 10.9.0.3/29", p, err)
	}
	// A store that did not allocate them (another process, or this one
	// restarted) releases by reading the files; every IP of the id goes.
	other, err := newIPStore(filepath.Dir(s.dir), filepath.Base(s.dir), s.subnet)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "10.9.0.2"), []byte("c4\r\neth0"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := other.release("c4", "eth0"); err != nil {
		t.Fatal(err)
	}
	wantFiles = map[string]string{
		"10.9.0.3": "c9\r\neth0", "10.9.0.4": "c2\r\neth0", "10.9.0.5": "c3\r\neth0",
		"last_reserved_ip.0": "10.9.0.3", "lock": "",
	}
	if diff := cmp.Diff(wantFiles, storeFiles(t, s)); diff != "" {
		t.Errorf("store after release by another store (-want +got):\n%s", diff)
	}
	// This store's record of c4 is stale (the file is gone): no error.
	if err := s.release("c4", "eth0"); err != nil {
		t.Errorf("release of an IP released elsewhere: %v", err)
	}
}

func TestIPStoreLegacyAndForeignFiles(t *testing.T) {
	s := mustStore(t, "10.9.1.0/24")
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"10.9.1.2":           "old-id",        // written by an old host-local
		"10.9.1.3":           "other\r\neth0", // another container
		"last_reserved_ip.0": "garbage",
		"notes.txt":          "old-id\r\neth0",
	} {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An unreadable last_reserved_ip starts at the beginning of the range.
	if p, err := s.allocate("new", "eth0"); err != nil || p.String() != "10.9.1.4/24" {
		t.Errorf("allocate = %v, %v; want 10.9.1.4/24", p, err)
	}
	if err := s.release("old-id", "eth0"); err != nil {
		t.Fatal(err)
	}
	files := storeFiles(t, s)
	if _, ok := files["10.9.1.2"]; ok {
		t.Error("legacy allocation of old-id not released")
	}
	if _, ok := files["notes.txt"]; !ok {
		t.Error("a file not named by an IP was removed")
	}
	if _, ok := files["10.9.1.3"]; !ok {
		t.Error("another container's allocation was released")
	}
}

func TestIPStoreConcurrent(t *testing.T) {
	s := mustStore(t, "10.9.2.0/24")
	// Two stores over one directory, as two processes sharing the lock.
	s2, err := newIPStore(filepath.Dir(s.dir), filepath.Base(s.dir), s.subnet)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for i := range 40 {
		st := s
		if i%2 == 1 {
			st = s2
		}
		wg.Go(func() {
			id := fmt.Sprintf("c%d", i)
			p, err := st.allocate(id, "eth0")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if other, dup := seen[p.String()]; dup {
				t.Errorf("%v handed to %s and %s", p, other, id)
			}
			seen[p.String()] = id
		})
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Errorf("%d distinct addresses, want 40", len(seen))
	}
}

func TestNewIPStoreValidates(t *testing.T) {
	for _, cidr := range []string{"10.0.0.0/31", "10.0.0.0/32", "fd00::/64"} {
		if _, err := newIPStore(t.TempDir(), "n", netip.MustParsePrefix(cidr)); err == nil {
			t.Errorf("newIPStore(%s) accepted", cidr)
		}
	}
}

// TestIPStoreSharesHostLocalPool runs the real host-local plugin against
// the same store: neither hands out an address the other holds, and each
// releases what the other reserved.
func TestIPStoreSharesHostLocalPool(t *testing.T) {
	plugin := filepath.Join(DefaultPluginDir, "host-local")
	_, err := os.Stat(plugin)
	testenv.Need(t, err == nil, "host-local plugin in "+DefaultPluginDir+" (containernetworking-plugins)")
	dataDir := t.TempDir()
	s, err := newIPStore(dataDir, "shared", netip.MustParsePrefix("10.9.3.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "shared", "type": "bridge",
		"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": "10.9.3.0/24"}}}, "dataDir": dataDir},
	})
	hostLocal := func(cmd, id string) string {
		t.Helper()
		c := exec.Command(plugin)
		c.Stdin = bytes.NewReader(conf)
		c.Env = []string{"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=" + id, "CNI_NETNS=/nonexistent", "CNI_IFNAME=eth0", "CNI_PATH=" + DefaultPluginDir}
		out, err := c.Output()
		if err != nil {
			t.Fatalf("host-local %s %s: %v: %s", cmd, id, err, out)
		}
		var res struct {
			IPs []struct{ Address string } `json:"ips"`
		}
		_ = json.Unmarshal(out, &res)
		if len(res.IPs) == 0 {
			return ""
		}
		return res.IPs[0].Address
	}
	var got []string
	for i := range 4 {
		if i%2 == 0 {
			p, err := s.allocate(fmt.Sprintf("in-%d", i), "eth0")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p.String())
		} else {
			got = append(got, hostLocal("ADD", fmt.Sprintf("ex-%d", i)))
		}
	}
	if diff := cmp.Diff([]string{"10.9.3.2/24", "10.9.3.3/24", "10.9.3.4/24", "10.9.3.5/24"}, got); diff != "" {
		t.Errorf("interleaved allocations (-want +got):\n%s", diff)
	}
	// Each releases the other's allocation.
	hostLocal("DEL", "in-0")
	if err := s.release("ex-1", "eth0"); err != nil {
		t.Fatal(err)
	}
	var left []string
	for name := range storeFiles(t, s) {
		if _, err := netip.ParseAddr(name); err == nil {
			left = append(left, name)
		}
	}
	sort.Strings(left)
	if diff := cmp.Diff([]string{"10.9.3.4", "10.9.3.5"}, left); diff != "" {
		t.Errorf("allocations left (-want +got):\n%s", diff)
	}
}

// FuzzIPStoreFiles feeds arbitrary store file contents to the parsers of
// allocation and last-reserved files; allocation still returns a free
// address of the range.
func FuzzIPStoreFiles(f *testing.F) {
	f.Add([]byte("10.9.4.7"), []byte("id\r\neth0"))
	f.Add([]byte(" 10.9.4.254\n"), []byte("id"))
	f.Add([]byte("::1"), []byte(""))
	f.Add([]byte("10.9.5.1"), []byte("\r\n"))
	f.Fuzz(func(t *testing.T, last, alloc []byte) {
		s, err := newIPStore(t.TempDir(), "n", netip.MustParsePrefix("10.9.4.0/24"))
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := s.parseLastReserved(last); ok && !s.subnet.Contains(a) {
			t.Fatalf("parseLastReserved(%q) = %v outside %v", last, a, s.subnet)
		}
		_ = ownedBy(alloc, "id", "eth0")
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(s.dir, lastReservedFile), last, 0o644)
		_ = os.WriteFile(filepath.Join(s.dir, "10.9.4.2"), alloc, 0o644)
		p, err := s.allocate("fuzz", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		if !s.subnet.Contains(p.Addr()) || p.Addr() == s.gateway || p.Addr() == s.subnet.Addr() || p.Addr() == broadcast(s.subnet) {
			t.Fatalf("allocated %v: not a pod address of %v", p, s.subnet)
		}
		if p.Addr().String() == "10.9.4.2" && !ownedBy(alloc, "fuzz", "eth0") {
			t.Fatalf("allocated 10.9.4.2, held by %q", alloc)
		}
	})
}
