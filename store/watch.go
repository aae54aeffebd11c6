package store

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

// event is one committed change, kept in the event window.
type event struct {
	rev  uint64
	typ  watch.EventType
	kind *Kind
	obj  runtime.Object
	prev runtime.Object
}

// eventLog is the in-memory event window: a ring of the most recent events
// that watchers read at their own pace. Writers never wait for watchers; a
// watcher that falls out of the window is cut off with 410 Expired.
type eventLog struct {
	mu      sync.RWMutex
	buf     []event
	start   uint64 // sequence number of the oldest event kept
	next    uint64 // sequence number of the next event
	lastRev uint64 // revision of the newest event (or of the state at start)
	lostRev uint64 // highest revision of an event dropped from the window
	notify  chan struct{}
	closed  bool
}

func newEventLog(size int, rev uint64) *eventLog {
	return &eventLog{buf: make([]event, size), lastRev: rev, lostRev: rev, notify: make(chan struct{})}
}

func (l *eventLog) append(evs []event, rev uint64) {
	l.mu.Lock()
	for _, e := range evs {
		if l.next-l.start == uint64(len(l.buf)) {
			l.lostRev = l.buf[l.start%uint64(len(l.buf))].rev
			l.buf[l.start%uint64(len(l.buf))] = event{}
			l.start++
		}
		l.buf[l.next%uint64(len(l.buf))] = e
		l.next++
	}
	l.lastRev = rev
	close(l.notify)
	l.notify = make(chan struct{})
	l.mu.Unlock()
}

func (l *eventLog) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.notify)
	}
	l.mu.Unlock()
}

// position returns the sequence number of the first event after rev, or
// false when events after rev have already left the window.
func (l *eventLog) position(rev uint64) (uint64, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if rev < l.lostRev {
		return 0, false
	}
	lo, hi := l.start, l.next
	for lo < hi {
		mid := lo + (hi-lo)/2
		if l.buf[mid%uint64(len(l.buf))].rev <= rev {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, true
}

// readState says whether a watcher may go on reading.
type readState int

const (
	readOK readState = iota
	readExpired
	readClosed
)

// read copies events from seq on into dst (up to its capacity). It returns
// the next sequence number, the newest revision, a channel closed when more
// events arrive, and whether seq is still in the window.
func (l *eventLog) read(seq uint64, dst []event) ([]event, uint64, uint64, <-chan struct{}, readState) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if seq < l.start {
		return dst, seq, l.lastRev, l.notify, readExpired
	}
	for seq < l.next && len(dst) < cap(dst) {
		dst = append(dst, l.buf[seq%uint64(len(l.buf))])
		seq++
	}
	if l.closed && len(dst) == 0 {
		return dst, seq, l.lastRev, l.notify, readClosed
	}
	return dst, seq, l.lastRev, l.notify, readOK
}

// InitialEventsEndAnnotation marks the bookmark that ends the initial
// events of a watch-list (sendInitialEvents=true).
const InitialEventsEndAnnotation = "k8s.io/initial-events-end"

// Watch streams the changes of one resource. See [Interface.Watch].
func (s *Store) Watch(ctx context.Context, res schema.GroupResource, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	k, f, err := s.readRequest(res, namespace, opts)
	if err != nil {
		return nil, err
	}
	w := &watcher{
		s: s, kind: k, filter: f, result: make(chan watch.Event, 100),
		done: make(chan struct{}), bookmarks: opts.AllowWatchBookmarks,
		hubState: hubState{lagged: make(chan struct{}, 1), pos: -1},
	}
	var initial []runtime.Object
	var seq uint64
	sendInitial := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	if opts.ResourceVersion == "" || opts.ResourceVersion == "0" || sendInitial {
		items, rev, err := s.listSnapshot(k, namespace, f)
		if err != nil {
			return nil, err
		}
		initial = items
		var ok bool
		seq, ok = s.evs.position(rev)
		if !ok {
			return nil, expired(rev)
		}
		w.rev, w.startRev = rev, rev
	} else {
		rev, err := strconv.ParseUint(opts.ResourceVersion, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q: %v", opts.ResourceVersion, err))
		}
		var ok bool
		seq, ok = s.evs.position(rev)
		if !ok {
			return nil, expired(rev)
		}
		w.rev, w.startRev = rev, rev
	}
	wctx, cancel := context.WithCancel(ctx)
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		wctx, cancel = context.WithTimeout(ctx, time.Duration(*opts.TimeoutSeconds)*time.Second)
	}
	w.cancel = cancel
	s.metrics.watchers.Inc()
	go func() {
		defer s.metrics.watchers.Dec()
		w.run(wctx, initial, sendInitial, seq)
	}()
	return w, nil
}

func expired(rev uint64) error {
	return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d: events after it are no longer kept", rev))
}

// listSnapshot reads the matching objects and the revision they were read at.
func (s *Store) listSnapshot(k *Kind, namespace string, f *filter) ([]runtime.Object, uint64, error) {
	txn, rev := s.reader()
	var out []runtime.Object
	err := s.scan(txn, k, namespace, f, "", func(r *record) bool {
		out = append(out, r.Obj)
		return true
	})
	return out, rev, err
}

type watcher struct {
	s         *Store
	kind      *Kind
	filter    *filter
	result    chan watch.Event
	done      chan struct{}
	once      sync.Once
	cancel    context.CancelFunc
	bookmarks bool
	rev       uint64
	// startRev is the revision the watch starts after: events up to it
	// (which a transaction being applied may still be adding to the
	// window) are in the state the client started from, so they are
	// skipped.
	startRev uint64
	hubState
}

// Stop ends the watch and closes its result channel.
func (w *watcher) Stop() {
	w.once.Do(func() { close(w.done); w.cancel() })
}

// ResultChan returns the events of the watch.
func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

func (w *watcher) send(ctx context.Context, e watch.Event) bool {
	select {
	case w.result <- e:
		return true
	case <-ctx.Done():
		return false
	case <-w.done:
		return false
	}
}

func (w *watcher) bookmark(rev uint64, initialEnd bool) watch.Event {
	obj := w.kind.New()
	acc, _ := meta.Accessor(obj)
	acc.SetResourceVersion(strconv.FormatUint(rev, 10))
	if initialEnd {
		acc.SetAnnotations(map[string]string{InitialEventsEndAnnotation: "true"})
	}
	return watch.Event{Type: watch.Bookmark, Object: obj}
}

func (w *watcher) run(ctx context.Context, initial []runtime.Object, sendInitial bool, seq uint64) {
	defer close(w.result)
	defer w.Stop()
	for _, o := range initial {
		if !w.send(ctx, watch.Event{Type: watch.Added, Object: o}) {
			return
		}
	}
	if sendInitial && !w.send(ctx, w.bookmark(w.rev, true)) {
		return
	}
	var tick <-chan time.Time
	if w.bookmarks {
		t := time.NewTicker(w.s.cfg.BookmarkInterval)
		defer t.Stop()
		tick = t.C
	}
	buf := make([]event, 0, 256)
	for {
		evs, next, last, notify, st := w.s.evs.read(seq, buf[:0])
		switch st {
		case readExpired:
			w.expire(ctx)
			return
		case readClosed:
			return
		}
		seq = next
		for _, e := range evs {
			if e.kind != w.kind {
				continue
			}
			if e.rev <= w.startRev {
				continue
			}
			if ev, ok := w.filter.event(e); ok {
				if !w.send(ctx, ev) {
					return
				}
			}
			w.rev = e.rev
		}
		if len(evs) > 0 {
			continue
		}
		w.rev = max(w.rev, last)
		// Caught up: hand the watcher to the hub, which delivers the next
		// events straight into its result channel, until it falls behind.
		if w.s.hub.join(w, seq) {
			var ok bool
			if seq, ok = w.live(ctx, tick); !ok {
				return
			}
			continue
		}
		select {
		case <-notify:
		case <-tick:
			if !w.send(ctx, w.bookmark(w.rev, false)) {
				return
			}
		case <-ctx.Done():
			return
		case <-w.done:
			return
		}
	}
}

// live waits while the hub delivers the watcher's events. It returns the
// sequence number to read on from when the hub lets the watcher go (its
// result channel was full, or the store is closing), or false when the
// watch ends.
func (w *watcher) live(ctx context.Context, tick <-chan time.Time) (uint64, bool) {
	for {
		select {
		case <-w.lagged:
			return w.s.hub.resume(w), true
		case <-tick:
			w.s.hub.bookmark(w)
		case <-ctx.Done():
			w.s.hub.leave(w)
			return 0, false
		case <-w.done:
			w.s.hub.leave(w)
			return 0, false
		}
	}
}

// hub delivers events to the watchers that keep up ("live" watchers) from
// one goroutine: an event wakes that goroutine and each watch's consumer,
// not also a goroutine per watch. A live watcher whose result channel is
// full goes back to reading the event window at its own pace (and is cut
// off with 410 Expired if it falls out of it), so the hub never blocks.
type hub struct {
	mu      sync.Mutex
	next    uint64 // sequence number of the next event to deliver
	lastRev uint64 // revision of the newest event delivered
	closed  bool
	// live holds each kind's live watchers in a slice (each knows its
	// position): the hub walks it for every event, which is cheaper than
	// iterating a map of 1,000 watchers.
	live map[*Kind][]*watcher
}

// hubState is the hub's part of a watcher, guarded by hub.mu.
type hubState struct {
	from   uint64 // the first sequence number the hub delivers to it
	resume uint64 // where it reads on after the hub let it go
	lagged chan struct{}
	pos    int // index in hub.live[kind], -1 when not live
}

func newHub(evs *eventLog) *hub {
	evs.mu.RLock()
	defer evs.mu.RUnlock()
	return &hub{next: evs.next, lastRev: evs.lastRev, live: map[*Kind][]*watcher{}}
}

// join makes w live from seq on, unless the hub has already delivered
// events from seq on (w then reads them itself) or has stopped.
func (h *hub) join(w *watcher, seq uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || seq < h.next {
		return false
	}
	if w.pos < 0 {
		w.pos = len(h.live[w.kind])
		h.live[w.kind] = append(h.live[w.kind], w)
	}
	w.from = seq
	return true
}

// removeLocked takes w out of its kind's live watchers (the last one
// takes its place); it does nothing if w is not live.
func (h *hub) removeLocked(w *watcher) {
	if w.pos < 0 {
		return
	}
	ws := h.live[w.kind]
	last := ws[len(ws)-1]
	ws[w.pos] = last
	last.pos = w.pos
	ws[len(ws)-1] = nil
	h.live[w.kind] = ws[:len(ws)-1]
	w.pos = -1
}

// leave removes w; the hub sends nothing to it afterwards.
func (h *hub) leave(w *watcher) {
	h.mu.Lock()
	h.removeLocked(w)
	h.mu.Unlock()
}

// resume returns where a watcher the hub let go reads on from.
func (h *hub) resume(w *watcher) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return w.resume
}

// letGo removes w from the live set; it reads on from seq itself.
func (h *hub) letGoLocked(w *watcher, seq uint64) {
	h.removeLocked(w)
	w.resume = seq
	select {
	case w.lagged <- struct{}{}:
	default:
	}
}

// letAllGoLocked lets every live watcher go; they read on from seq.
func (h *hub) letAllGoLocked(seq uint64) {
	for _, ws := range h.live {
		for len(ws) > 0 {
			h.letGoLocked(ws[len(ws)-1], seq)
			ws = ws[:len(ws)-1]
		}
	}
}

// bookmark sends a live watcher a bookmark at the newest revision it has
// seen, unless its result channel is full (then a later tick sends one).
func (h *hub) bookmark(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.pos < 0 {
		return
	}
	w.rev = max(w.rev, h.lastRev)
	select {
	case w.result <- w.bookmark(w.rev, false):
	default:
	}
}

// run delivers events until ctx ends, then lets every live watcher go.
func (h *hub) run(ctx context.Context, evs *eventLog) {
	buf := make([]event, 0, 256)
	for {
		h.mu.Lock()
		seq := h.next
		h.mu.Unlock()
		got, next, last, notify, st := evs.read(seq, buf[:0])
		h.mu.Lock()
		if st == readExpired {
			// The hub itself fell out of the window (a starved process):
			// its watchers read on and find out for themselves.
			h.letAllGoLocked(seq)
			evs.mu.RLock()
			h.next = evs.start
			evs.mu.RUnlock()
			h.mu.Unlock()
			continue
		}
		for i, e := range got {
			for j := 0; j < len(h.live[e.kind]); j++ {
				w := h.live[e.kind][j]
				if seq+uint64(i) < w.from || e.rev <= w.startRev {
					continue
				}
				if ev, ok := w.filter.event(e); ok {
					select {
					case w.result <- ev:
					default:
						// The last live watcher takes w's place: visit
						// that place again.
						h.letGoLocked(w, seq+uint64(i))
						j--
						continue
					}
				}
				w.rev = e.rev
			}
		}
		h.next, h.lastRev = next, last
		h.mu.Unlock()
		if len(got) > 0 {
			continue
		}
		select {
		case <-notify:
		case <-ctx.Done():
			h.mu.Lock()
			h.closed = true
			h.letAllGoLocked(h.next)
			h.mu.Unlock()
			return
		}
	}
}

// expire ends a watch that fell out of the event window with an in-stream
// 410 error, as the API server does.
func (w *watcher) expire(ctx context.Context) {
	st := apierrors.NewResourceExpired(fmt.Sprintf("watch of %s fell behind the event window at revision %d; list again", w.kind.Resource, w.rev)).Status()
	st.Code = http.StatusGone
	w.send(ctx, watch.Event{Type: watch.Error, Object: &st})
}
