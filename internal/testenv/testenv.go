// Package testenv decides whether tests that need privileges or system
// software run or skip. Outside CI a missing prerequisite skips the test
// with a message naming it; in CI (CI=true) nothing may be skipped, so a
// missing prerequisite fails the test instead.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") != "" }

// Need skips (outside CI) or fails (in CI) the test unless ok holds.
// what names the missing prerequisite.
func Need(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("prerequisite missing in CI: %s", what)
	}
	t.Skipf("skipped: prerequisite missing: %s", what)
}

// NeedRoot requires the test to run as root.
func NeedRoot(t testing.TB) { t.Helper(); Need(t, os.Geteuid() == 0, "root") }

// NeedCommand requires an executable on PATH.
func NeedCommand(t testing.TB, name string) {
	t.Helper()
	_, err := exec.LookPath(name)
	Need(t, err == nil, "command "+name+" on PATH")
}
