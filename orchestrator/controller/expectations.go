package controller

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// ExpectationsTTL is how long unobserved expectations block a controller
// before they are considered lost (as upstream, 5 minutes).
const ExpectationsTTL = 5 * time.Minute

// Expectations remember, per controller key, how many creations and
// deletions the controller has issued but not yet seen in its informer, so
// it does not act twice on a stale cache (create twice while its own writes
// are in flight). It is the pattern of upstream's ControllerExpectations.
type Expectations struct {
	clk clock.Clock
	mu  sync.Mutex
	m   map[string]*expectation
}

type expectation struct {
	add  int
	dels map[string]struct{}
	at   time.Time
}

// NewExpectations returns empty expectations on clk (nil for the real clock).
func NewExpectations(clk clock.Clock) *Expectations {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Expectations{clk: clk, m: map[string]*expectation{}}
}

// Satisfied reports whether key has no outstanding creations or deletions
// (or they are older than [ExpectationsTTL]); a controller syncs only then.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.add <= 0 && len(x.dels) == 0 {
		return true
	}
	return e.clk.Since(x.at) > ExpectationsTTL
}

// Expect records that adds creations and the deletions of the objects
// with UIDs dels are about to be issued for key, replacing earlier
// expectations. Deletions are tracked by UID so that seeing a deletion
// twice (graceful deletion starting, then the object going) counts once.
func (e *Expectations) Expect(key string, adds int, dels []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{add: adds, dels: map[string]struct{}{}, at: e.clk.Now()}
	for _, u := range dels {
		x.dels[u] = struct{}{}
	}
	e.m[key] = x
}

// CreationObserved lowers key's expected creations by one (when the
// informer sees the object, or when the create failed).
func (e *Expectations) CreationObserved(key string) { e.LowerCreations(key, 1) }

// LowerCreations lowers key's expected creations by n.
func (e *Expectations) LowerCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add -= n
	}
}

// DeletionObserved records that the object with uid is being or has been
// deleted (or its deletion failed).
func (e *Expectations) DeletionObserved(key, uid string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.dels, uid)
	}
}

// Delete forgets key (when its object is deleted).
func (e *Expectations) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
