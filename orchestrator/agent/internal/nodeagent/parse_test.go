package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procMemory
		wantErr bool
	}{
		{name: "status", in: "Name:\tnodeagent\nVmPeak:\t 1000 kB\nVmRSS:\t   76800 kB\nRssAnon:\t   40960 kB\nRssFile:\t   35840 kB\nRssShmem:\t       0 kB\nThreads:\t12\n",
			want: procMemory{VmRSS: 75 << 20, RssAnon: 40 << 20, RssFile: 35 << 20}},
		{name: "kernel thread without memory", in: "Name:\tkthreadd\nThreads:\t1\n", wantErr: true},
		{name: "bad unit", in: "VmRSS:\t12 MB\n", wantErr: true},
		{name: "bad number", in: "VmRSS:\tx kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStatus(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{name: "plain", in: "1234 (nodeagent) S 1 1234 1234 0 -1 4194560 5000 0 0 0 150 50 0 0 20 0 12 0 100 1000 100",
			want: 2 * time.Second},
		{name: "command with spaces and parentheses", in: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1",
			want: 70 * time.Millisecond},
		{name: "no command", in: "1 nodeagent S", wantErr: true},
		{name: "too short", in: "1 (x) S 1 2 3", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseProcStat = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestMemStat(t *testing.T) {
	profile := []byte("heap profile: 1: 2 [3: 4] @ heap/1048576\n\n# runtime.MemStats\n# Alloc = 15758264\n# HeapInuse = 27435008\n# Stack = 8028160 / 8028160\n")
	for name, want := range map[string]int64{"HeapInuse": 27435008, "Alloc": 15758264, "Stack": 8028160} {
		if got, err := memStat(profile, name); err != nil || got != want {
			t.Errorf("memStat(%s) = %d, %v; want %d", name, got, err, want)
		}
	}
	if _, err := memStat(profile, "NumGC"); err == nil {
		t.Error("memStat of a missing figure: no error")
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    config
		wantErr bool
	}{
		{name: "required only", args: []string{"-kubeconfig", "k", "-node", "n", "-data-dir", "/d"},
			want: config{kubeconfig: "k", node: "n", dataDir: "/d", namespace: "nodeagent", resync: 10 * time.Second, status: 10 * time.Second}},
		{name: "all", args: []string{"-kubeconfig", "k", "-node", "n", "-data-dir", "/d", "-namespace", "ns", "-images-dir", "/i",
			"-debug-addr-file", "/a", "-resync", "1s", "-status", "2s", "-v", "-memprofilerate", "1", "-memory-limit", "-1"},
			want: config{kubeconfig: "k", node: "n", dataDir: "/d", namespace: "ns", imagesDir: "/i", debugAddrFile: "/a",
				resync: time.Second, status: 2 * time.Second, verbose: true, memProfileRate: 1, memoryLimit: -1}},
		{name: "missing node", args: []string{"-kubeconfig", "k", "-data-dir", "/d"}, wantErr: true},
		{name: "unknown flag", args: []string{"-bogus"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr {
				if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(config{})); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
		})
	}
}

func FuzzParseProcStatus(f *testing.F) {
	f.Add("VmRSS:\t   76800 kB\nRssAnon:\t   40960 kB\nRssFile:\t   35840 kB\n")
	f.Add("Name:\tx\n")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := parseProcStatus(strings.NewReader(in))
		if err == nil && (m.VmRSS < 0 || m.RssAnon < 0 || m.RssFile < 0) {
			t.Errorf("negative figures %+v from %q", m, in)
		}
	})
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("1234 (nodeagent) S 1 1234 1234 0 -1 4194560 5000 0 0 0 150 50 0 0 20 0 12 0 100 1000 100")
	f.Add("7 (a (b) c) R")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := parseProcStat([]byte(in))
		if err == nil && d < 0 {
			t.Errorf("negative CPU time %v from %q", d, in)
		}
	})
}

func FuzzMemStat(f *testing.F) {
	f.Add("# HeapInuse = 27435008\n", "HeapInuse")
	f.Add("# Stack = 1 / 2\n", "Stack")
	f.Fuzz(func(t *testing.T, profile, name string) {
		_, _ = memStat([]byte(profile), name)
	})
}
