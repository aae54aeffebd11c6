package e2e

import (
	"flag"
	"fmt"
	"os"
	"testing"

	deadlock "github.com/sasha-s/go-deadlock"
)

// parallelWalkthroughs is how many walk-throughs run at once unless
// -test.parallel says otherwise. They mostly wait (for pods, rollouts,
// schedules), so far more than GOMAXPROCS (the default, 2 here) fit: all
// of them (16 for each of the two kubectl binaries), so that the longest
// start at once.
const parallelWalkthroughs = 32

// TestMain turns off go-cni's lock checker and raises the default
// -test.parallel to parallelWalkthroughs.
//
// Built with -race, go-cni guards its state with
// github.com/sasha-s/go-deadlock, whose goroutine IDs (from
// github.com/petermattis/goid) read 0 for every goroutine on this Go
// version; two pods torn down at once then look like a recursive read
// lock and the checker exits the process.
func TestMain(m *testing.M) {
	deadlock.Opts.Disable = true
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		if err := flag.Set("test.parallel", fmt.Sprint(parallelWalkthroughs)); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: -test.parallel:", err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}
