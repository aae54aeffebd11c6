package e2e

import (
	"os"
	"testing"

	deadlock "github.com/sasha-s/go-deadlock"
)

// TestMain turns off go-cni's lock checker. Built with -race, go-cni
// guards its state with github.com/sasha-s/go-deadlock, whose goroutine
// IDs (from github.com/petermattis/goid) read 0 for every goroutine on
// this Go version; two pods torn down at once then look like a
// recursive read lock and the checker exits the process.
func TestMain(m *testing.M) {
	deadlock.Opts.Disable = true
	os.Exit(m.Run())
}
