package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

// splitArgs splits a command line on spaces, honouring double quotes.
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case r == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// TestGeneratedUpToDate regenerates the eBPF objects with the go:generate
// line of gen.go into a temporary directory and compares them byte for byte
// with the committed files.
func TestGeneratedUpToDate(t *testing.T) {
	testenv.NeedCommand(t, "clang")
	testenv.NeedCommand(t, "llvm-strip")
	testenv.NeedCommand(t, "go")
	_, err := os.Stat("/usr/include/bpf/bpf_helpers.h")
	testenv.Need(t, err == nil, "libbpf-dev headers")
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate "); ok {
			args = splitArgs(rest)
		}
	}
	if len(args) < 3 || args[0] != "go" {
		t.Fatalf("no go:generate line in gen.go")
	}
	out := t.TempDir()
	n := len(args)
	cmdArgs := append(append([]string{}, args[1:n-2]...), "-output-dir", out, "-go-package", "bpf", args[n-2], args[n-1])
	cmd := exec.Command("go", cmdArgs...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go: %v\n%s", err, b)
	}
	for _, f := range []string{"lb_bpfel.go", "lb_bpfel.o"} {
		got, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go generate ./netproxy/bpf", f)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	got := splitArgs(`go run x -cflags "-O2 -g" a  b`)
	want := []string{"go", "run", "x", "-cflags", "-O2 -g", "a", "b"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("splitArgs = %q", got)
	}
}
