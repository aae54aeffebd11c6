package store

import (
	"runtime/debug"
	"sync"
)

// gcTuning holds the process-wide garbage-collector settings a store
// changed (Config.GCPercent, Config.MemoryLimit) and restores them once.
type gcTuning struct {
	once        sync.Once
	setPercent  bool
	prevPercent int
	setLimit    bool
	prevLimit   int64
}

// tuneGC applies the store's garbage-collector settings.
func tuneGC(cfg *Config) *gcTuning {
	t := &gcTuning{}
	if cfg.GCPercent > 0 {
		t.prevPercent, t.setPercent = debug.SetGCPercent(cfg.GCPercent), true
	}
	if cfg.MemoryLimit > 0 {
		t.prevLimit, t.setLimit = debug.SetMemoryLimit(cfg.MemoryLimit), true
	}
	return t
}

// restore puts back the settings tuneGC replaced.
func (t *gcTuning) restore() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		if t.setPercent {
			debug.SetGCPercent(t.prevPercent)
		}
		if t.setLimit {
			debug.SetMemoryLimit(t.prevLimit)
		}
	})
}
