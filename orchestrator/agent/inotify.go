package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// dirWatcher reports changes of one directory's entries through inotify.
type dirWatcher struct {
	f       *os.File
	removed atomic.Bool
	wg      sync.WaitGroup
}

// dirEvents are the inotify events that can change the set or content of
// the manifests in a directory.
const dirEvents = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE |
	unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// watchDir watches dir and sends on changed (without blocking; changed
// should have a buffer of one) whenever an entry of it is created,
// written, renamed or removed. The reading goroutine ends when the watcher
// is closed.
func watchDir(dir string, changed chan<- struct{}, log *slog.Logger) (*dirWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, dirEvents|unix.IN_ONLYDIR); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify_add_watch %s: %w", dir, err)
	}
	// A non-blocking descriptor wrapped by os.NewFile is served by the
	// runtime's poller, so Close interrupts a pending Read.
	dw := &dirWatcher{f: os.NewFile(uintptr(fd), "inotify:"+dir)}
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	dw.wg.Add(1)
	go func() {
		defer dw.wg.Done()
		buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			n, err := dw.f.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					log.Debug("inotify read", "dir", dir, "err", err)
					dw.removed.Store(true)
					notify()
				}
				return
			}
			events, err := ParseInotifyEvents(buf[:n])
			if err != nil {
				log.Warn("inotify", "dir", dir, "err", err)
			}
			for _, ev := range events {
				if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 {
					dw.removed.Store(true)
				}
			}
			notify()
		}
	}()
	return dw, nil
}

// gone reports whether the watched directory itself was removed or moved
// (the watch no longer reports anything).
func (dw *dirWatcher) gone() bool { return dw.removed.Load() }

func (dw *dirWatcher) close() {
	_ = dw.f.Close()
	dw.wg.Wait()
}

// InotifyEvent is one decoded inotify event.
type InotifyEvent struct {
	// Wd is the watch descriptor, Mask the IN_* bits, Cookie pairs the two
	// halves of a rename.
	Wd     int32
	Mask   uint32
	Cookie uint32
	// Name is the entry's name within the watched directory (empty for
	// events about the directory itself).
	Name string
}

// ParseInotifyEvents decodes the records an inotify descriptor's read
// returned (struct inotify_event followed by a NUL-padded name). A
// truncated record is an error; the events before it are returned.
func ParseInotifyEvents(b []byte) ([]InotifyEvent, error) {
	var out []InotifyEvent
	for len(b) > 0 {
		if len(b) < unix.SizeofInotifyEvent {
			return out, fmt.Errorf("agent: truncated inotify event (%d bytes)", len(b))
		}
		ev := InotifyEvent{
			Wd:     int32(binary.NativeEndian.Uint32(b[0:4])),
			Mask:   binary.NativeEndian.Uint32(b[4:8]),
			Cookie: binary.NativeEndian.Uint32(b[8:12]),
		}
		nameLen := int(binary.NativeEndian.Uint32(b[12:16]))
		b = b[unix.SizeofInotifyEvent:]
		if nameLen < 0 || nameLen > len(b) {
			return out, fmt.Errorf("agent: inotify event name of %d bytes, %d left", nameLen, len(b))
		}
		name := b[:nameLen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		ev.Name = string(name)
		b = b[nameLen:]
		out = append(out, ev)
	}
	return out, nil
}
