package apiserver

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// frameCache shares encoded watch frames among the watchers of one
// event. The store hands every watcher of a resource the same event
// object, so the first watcher to send an event in a media type encodes
// it and the others reuse the bytes: a change seen by 1,000 watchers is
// encoded once per media type, not 1,000 times. Entries are keyed by the
// object's identity; the cache holds the object, so its address cannot be
// reused while the entry lives. The last frameCacheSize frames are kept.
type frameCache struct {
	mu      sync.Mutex
	entries map[frameKey]*frameEntry
	ring    [frameCacheSize]frameKey
	next    int
}

// frameCacheSize is how many recent frames are kept. A watcher that
// falls further behind than that encodes its own frames.
const frameCacheSize = 128

// frameKey names one frame: an event object in a media type.
type frameKey struct {
	obj runtime.Object
	typ watch.EventType
	// media is the response media type (mediaJSON, mediaProtobuf,
	// mediaCBOR).
	media string
}

// frameEntry is one frame, encoded once.
type frameEntry struct {
	once  sync.Once
	frame []byte
	err   error
}

// frame returns the frame of key, encoding it with encode on first use.
// The returned bytes are shared and must not be modified.
func (c *frameCache) frame(key frameKey, encode func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = make(map[frameKey]*frameEntry, frameCacheSize)
	}
	e, ok := c.entries[key]
	if !ok {
		e = &frameEntry{}
		if old := c.ring[c.next]; old.obj != nil {
			delete(c.entries, old)
		}
		c.ring[c.next] = key
		c.next = (c.next + 1) % frameCacheSize
		c.entries[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.frame, e.err = encode() })
	return e.frame, e.err
}
