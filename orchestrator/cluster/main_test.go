package cluster

import (
	"os"
	"testing"

	deadlock "github.com/sasha-s/go-deadlock"
)

// TestMain turns off go-cni's lock checker. Built with -race, go-cni
// guards its state with github.com/sasha-s/go-deadlock, whose goroutine
// IDs (from github.com/petermattis/goid) read 0 for every goroutine on
// this Go version, so two pods set up or torn down at once look like a
// recursive read lock and the checker exits the test process.
func TestMain(m *testing.M) {
	deadlock.Opts.Disable = true
	os.Exit(m.Run())
}
