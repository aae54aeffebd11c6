package controller

import (
	"container/heap"
	"math"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Queue is a rate-limited, de-duplicating work queue of string keys, with
// the semantics of client-go's workqueue: a key added while it waits is
// stored once; a key added while a worker processes it is queued again once
// the worker calls Done, so no two workers ever hold the same key.
type Queue struct {
	clk clock.Clock

	mu         sync.Mutex
	cond       *sync.Cond
	queue      []string
	dirty      map[string]struct{}
	processing map[string]struct{}
	shutdown   bool

	waiting  delayHeap
	waitIdx  map[string]*delayed
	wake     chan struct{}
	failures map[string]int

	baseDelay, maxDelay time.Duration
}

// QueueOptions configures a [Queue].
type QueueOptions struct {
	// Clock drives delayed adds; nil means the real clock.
	Clock clock.Clock
	// BaseDelay is the first retry delay of AddRateLimited (default 5 ms);
	// it doubles per failure up to MaxDelay (default 1000 s), as client-go's
	// default controller rate limiter does.
	BaseDelay, MaxDelay time.Duration
}

// NewQueue returns an empty queue. Call ShutDown to stop its timer goroutine.
func NewQueue(opts QueueOptions) *Queue {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 5 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 1000 * time.Second
	}
	q := &Queue{
		clk: opts.Clock, dirty: map[string]struct{}{}, processing: map[string]struct{}{},
		waitIdx: map[string]*delayed{}, wake: make(chan struct{}, 1), failures: map[string]int{},
		baseDelay: opts.BaseDelay, maxDelay: opts.MaxDelay,
	}
	q.cond = sync.NewCond(&q.mu)
	go q.delayLoop()
	return q
}

// Add queues key unless it is queued already.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key string) {
	if q.shutdown {
		return
	}
	if _, ok := q.dirty[key]; ok {
		return
	}
	q.dirty[key] = struct{}{}
	if _, ok := q.processing[key]; ok {
		return
	}
	q.queue = append(q.queue, key)
	q.cond.Signal()
}

// AddAfter queues key once d has passed on the queue's clock. An earlier
// pending AddAfter of the same key wins.
func (q *Queue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.AddAt(key, q.clk.Now().Add(d))
}

// Now returns the time on the queue's clock.
func (q *Queue) Now() time.Time { return q.clk.Now() }

// AddAt queues key once the queue's clock reaches at. An earlier pending
// time for the same key wins.
func (q *Queue) AddAt(key string, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	if e, ok := q.waitIdx[key]; ok {
		if at.Before(e.at) {
			e.at = at
			heap.Fix(&q.waiting, e.index)
		}
	} else {
		e := &delayed{key: key, at: at}
		heap.Push(&q.waiting, e)
		q.waitIdx[key] = e
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// AddRateLimited queues key after its per-key exponential back-off. The
// back-off runs on the wall clock, not the queue's clock: it protects the
// store from hot loops, while AddAfter schedules what the controller's
// logic asks for on the controller's (possibly fake) clock.
func (q *Queue) AddRateLimited(key string) {
	d := q.When(key)
	time.AfterFunc(d, func() { q.Add(key) })
}

// When returns the next back-off of key and counts one more failure.
func (q *Queue) When(key string) time.Duration {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	q.mu.Unlock()
	d := float64(q.baseDelay) * math.Pow(2, float64(n))
	if d > float64(q.maxDelay) {
		return q.maxDelay
	}
	return time.Duration(d)
}

// NumRequeues returns how many failures key has had since its last Forget.
func (q *Queue) NumRequeues(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[key]
}

// Forget clears key's failure count.
func (q *Queue) Forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, key)
}

// Get blocks until a key is ready and hands it to the caller, who must call
// Done with it. ok is false once the queue is shut down and drained.
func (q *Queue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if len(q.queue) == 0 {
		return "", false
	}
	key = q.queue[0]
	q.queue[0] = ""
	q.queue = q.queue[1:]
	q.processing[key] = struct{}{}
	delete(q.dirty, key)
	return key, true
}

// Done marks key as processed; if it was added meanwhile it is queued again.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if _, ok := q.dirty[key]; ok && !q.shutdown {
		q.queue = append(q.queue, key)
		q.cond.Signal()
	}
}

// Len returns the number of keys waiting (not counting delayed ones).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// ShutDown stops the queue: Get returns ok=false once the queue is empty
// and nothing more is accepted.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	q.shutdown = true
	q.queue = nil
	q.cond.Broadcast()
	close(q.wake)
}

func (q *Queue) delayLoop() {
	for {
		q.mu.Lock()
		if q.shutdown {
			q.mu.Unlock()
			return
		}
		now := q.clk.Now()
		for len(q.waiting) > 0 && !q.waiting[0].at.After(now) {
			e := heap.Pop(&q.waiting).(*delayed)
			delete(q.waitIdx, e.key)
			q.addLocked(e.key)
		}
		var timer <-chan time.Time
		var t clock.Timer
		if len(q.waiting) > 0 {
			t = q.clk.NewTimer(q.waiting[0].at.Sub(now))
			timer = t.C()
		}
		q.mu.Unlock()
		select {
		case _, ok := <-q.wake:
			if t != nil {
				t.Stop()
			}
			if !ok {
				return
			}
		case <-timer:
		}
	}
}

type delayed struct {
	key   string
	at    time.Time
	index int
}

type delayHeap []*delayed

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h delayHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *delayHeap) Push(x any) {
	e := x.(*delayed)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *delayHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
