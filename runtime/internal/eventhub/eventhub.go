package eventhub

import (
	"context"
	"sync"

	"github.com/tugboatdev/tugboat/runtime"
)

// Hub distributes events. The zero value is ready to use.
type Hub struct {
	mu     sync.Mutex
	subs   map[*sub]struct{}
	closed bool
}

type sub struct {
	mu    sync.Mutex
	cond  *sync.Cond
	queue []runtime.ContainerEvent
	done  bool
}

// Subscribe returns a channel of the events published from now on. It is
// closed when ctx ends or the hub is closed.
func (h *Hub) Subscribe(ctx context.Context) <-chan runtime.ContainerEvent {
	ch := make(chan runtime.ContainerEvent)
	s := &sub{}
	s.cond = sync.NewCond(&s.mu)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(ch)
		return ch
	}
	if h.subs == nil {
		h.subs = map[*sub]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { s.finish() })
	go func() {
		defer close(ch)
		defer stop()
		defer func() {
			h.mu.Lock()
			delete(h.subs, s)
			h.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			for len(s.queue) == 0 && !s.done {
				s.cond.Wait()
			}
			if s.done {
				s.mu.Unlock()
				return
			}
			ev := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func (s *sub) finish() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.cond.Broadcast()
}

// Publish queues ev for every subscriber.
func (h *Hub) Publish(ev runtime.ContainerEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.mu.Lock()
		s.queue = append(s.queue, ev)
		s.mu.Unlock()
		s.cond.Signal()
	}
}

// Close ends all subscriptions.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.finish()
	}
}
