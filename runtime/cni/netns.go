package cni

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// NewNetNS creates a network namespace kept alive by a bind mount at path
// (its directory is created). Remove it with DeleteNetNS.
func NewNetNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	f.Close()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("netns: %w", err)
	}
	defer orig.Close()
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("netns: unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		err := unix.Mount(src, path, "none", unix.MS_BIND, "")
		if err != nil {
			err = fmt.Errorf("netns: bind mount: %w", err)
		}
		restoreThread(orig, unix.CLONE_NEWNET)
		errc <- err
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// DeleteNetNS unmounts and removes a namespace made by NewNetNS. A missing
// path is not an error.
func DeleteNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// Do runs fn on an OS thread that has joined the network namespace at path;
// sockets fn creates belong to that namespace.
func Do(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	defer target.Close()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	defer orig.Close()
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("netns: setns: %w", err)
			return
		}
		err := fn()
		restoreThread(orig, unix.CLONE_NEWNET)
		errc <- err
	}()
	return <-errc
}

// restoreThread moves the locked calling thread back to the namespace orig
// and unlocks it. If that fails the thread stays locked and ends with its
// goroutine. Either way no other goroutine runs in the namespace the
// thread visited, and the thread does not keep that namespace alive (had
// it been left locked, a main thread, which Go never ends, would have).
func restoreThread(orig *os.File, nstype int) {
	if unix.Setns(int(orig.Fd()), nstype) == nil {
		goruntime.UnlockOSThread()
	}
}

// LoopbackUp brings up the loopback interface of the network namespace at
// path.
func LoopbackUp(path string) error {
	return Do(path, func() error { return setLinkUp("lo") })
}

// setLinkUp sets IFF_UP on an interface of the calling thread's network
// namespace.
func setLinkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("netns: flags of %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("netns: set %s up: %w", name, err)
	}
	return nil
}
