package nettest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tugboatdev/tugboat/internal/testenv"
)

// CgroupRoot is the cgroup v2 hierarchy tests create their cgroups in.
const CgroupRoot = "/sys/fs/cgroup/unified"

// ServiceCIDR is the service range the tests use.
var ServiceCIDR = netip.MustParsePrefix("10.96.0.0/12")

func randName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// NeedEBPF requires root and a cgroup v2 hierarchy at [CgroupRoot].
func NeedEBPF(t testing.TB) {
	t.Helper()
	testenv.NeedRoot(t)
	var st unix.Statfs_t
	err := unix.Statfs(CgroupRoot, &st)
	testenv.Need(t, err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC, "cgroup v2 at "+CgroupRoot)
}

// Netns is a network namespace created by a test.
type Netns struct {
	Handle netns.NsHandle
	// Path names the namespace for other processes (/proc/<pid>/fd/<fd>).
	Path string
}

// NewNetns creates a network namespace with lo up. It is closed at cleanup.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	testenv.NeedRoot(t)
	var ns netns.NsHandle
	err := func() error {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			return err
		}
		defer orig.Close()
		ns, err = netns.New()
		if err != nil {
			runtime.UnlockOSThread()
			return err
		}
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: Go discards it when the goroutine ends.
			return err
		}
		runtime.UnlockOSThread()
		return nil
	}()
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	n := &Netns{Handle: ns, Path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))}
	t.Cleanup(func() { ns.Close() })
	h, err := n.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return n
}

// Netlink returns a netlink handle operating inside the namespace.
func (n *Netns) Netlink() (*netlink.Handle, error) { return netlink.NewHandleAt(n.Handle) }

// Do runs f on a thread switched into the namespace; sockets f creates
// belong to the namespace.
func (n *Netns) Do(f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(n.Handle); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, err) // thread stays locked and is discarded
	}
	runtime.UnlockOSThread()
	return ferr
}

// NewCgroup creates a cgroup v2 directory under [CgroupRoot] and removes it
// at cleanup (after the processes in it were stopped by earlier cleanups).
func NewCgroup(t testing.TB) string {
	t.Helper()
	NeedEBPF(t)
	dir := filepath.Join(CgroupRoot, randName("tugboat-test-"))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() {
		var err error
		for range 50 {
			if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("remove cgroup %s: %v", dir, err)
	})
	return dir
}

// NewBPFFS mounts a private bpffs on a temporary directory and unmounts it
// at cleanup.
func NewBPFFS(t testing.TB) string {
	t.Helper()
	testenv.NeedRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount bpffs %s: %v", dir, err)
		}
	})
	return dir
}

// Blackhole installs a blackhole route for cidr inside the namespace.
func (n *Netns) Blackhole(t testing.TB, cidr netip.Prefix) {
	t.Helper()
	h, err := n.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dst := &net.IPNet{IP: cidr.Addr().AsSlice(), Mask: net.CIDRMask(cidr.Bits(), cidr.Addr().BitLen())}
	if err := h.RouteAdd(&netlink.Route{Dst: dst, Type: unix.RTN_BLACKHOLE}); err != nil {
		t.Fatalf("blackhole %s: %v", cidr, err)
	}
}

// Backend is an echo server: on every TCP connection it first writes its own
// address and a newline, then answers each line it reads with its address;
// over UDP it answers each datagram with its address. A backend started by
// [StartPeerBackend] writes the client's address (as the backend sees it)
// instead of its own.
type Backend struct {
	Addr     netip.AddrPort
	ln       net.Listener
	pc       net.PacketConn
	mu       sync.Mutex
	open     map[net.Conn]bool
	wg       sync.WaitGroup
	showPeer bool
}

// StartBackend starts an echo backend for network ("tcp" or "udp") on addr
// inside ns (or in the test's own namespace when ns is nil). An IPv6 addr
// ("[fd00::2]:8080") listens on IPv6 only.
func StartBackend(t testing.TB, ns *Netns, network, addr string) *Backend {
	t.Helper()
	return startBackend(t, ns, network, addr, false)
}

// StartPeerBackend starts a backend that answers with the address of the
// client as it sees it (after any NAT), to check source address handling.
func StartPeerBackend(t testing.TB, ns *Netns, network, addr string) *Backend {
	t.Helper()
	return startBackend(t, ns, network, addr, true)
}

func startBackend(t testing.TB, ns *Netns, network, addr string, showPeer bool) *Backend {
	t.Helper()
	b := &Backend{open: map[net.Conn]bool{}, showPeer: showPeer}
	fam := "4"
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() && !ap.Addr().Is4In6() {
		fam = "6"
	}
	listen := func() error {
		var err error
		if network == "udp" {
			b.pc, err = net.ListenPacket("udp"+fam, addr)
		} else {
			b.ln, err = net.Listen("tcp"+fam, addr)
		}
		return err
	}
	var err error
	if ns != nil {
		err = ns.Do(listen)
	} else {
		err = listen()
	}
	if err != nil {
		t.Fatalf("backend %s %s: %v", network, addr, err)
	}
	if b.pc != nil {
		b.Addr = b.pc.LocalAddr().(*net.UDPAddr).AddrPort()
		b.wg.Add(1)
		go b.serveUDP()
	} else {
		b.Addr = b.ln.Addr().(*net.TCPAddr).AddrPort()
		b.wg.Add(1)
		go b.serveTCP()
	}
	t.Cleanup(b.Close)
	return b
}

func (b *Backend) serveUDP() {
	defer b.wg.Done()
	buf := make([]byte, 2048)
	for {
		_, from, err := b.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		msg := b.Addr.String()
		if b.showPeer {
			msg = from.(*net.UDPAddr).AddrPort().String()
		}
		_, _ = b.pc.WriteTo([]byte(msg), from)
	}
}

func (b *Backend) serveTCP() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.open[c] = true
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() {
				b.mu.Lock()
				delete(b.open, c)
				b.mu.Unlock()
				c.Close()
			}()
			msg := []byte(b.Addr.String() + "\n")
			if b.showPeer {
				msg = []byte(c.RemoteAddr().(*net.TCPAddr).AddrPort().String() + "\n")
			}
			if _, err := c.Write(msg); err != nil {
				return
			}
			r := bufio.NewReader(c)
			for {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				if _, err := c.Write(msg); err != nil {
					return
				}
			}
		}()
	}
}

// Close stops the backend and closes its connections.
func (b *Backend) Close() {
	if b.ln != nil {
		b.ln.Close()
	}
	if b.pc != nil {
		b.pc.Close()
	}
	b.mu.Lock()
	for c := range b.open {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// Result is a client's answer to one command.
type Result struct {
	// Backend is what the server said it is (its listen address).
	Backend string `json:"backend,omitempty"`
	// Peer is the remote address the client's socket reports (getpeername
	// for TCP and connected UDP, recvfrom's source for unconnected UDP).
	Peer string `json:"peer,omitempty"`
	// Err is "ECONNREFUSED", "EPERM", ... or an error text; empty on success.
	Err string `json:"err,omitempty"`
}

// Client is a helper process running inside a namespace and a cgroup.
type Client struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	mu  sync.Mutex
}

const helperEnv = "TUGBOAT_NETTEST_CLIENT"

// StartClient re-executes the test binary as a client helper inside ns (nil:
// the test's namespace) and the cgroup directory cg. The package's TestMain
// must call [RunHelper] first.
func StartClient(t testing.TB, ns *Netns, cg string) *Client {
	t.Helper()
	fd, err := unix.Open(cg, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open cgroup: %v", err)
	}
	defer unix.Close(fd)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	nsPath := ""
	if ns != nil {
		nsPath = ns.Path
	}
	// No asynchronous preemption in the helper: its raw blocking syscalls
	// would fail with EINTR when the runtime signals the thread.
	cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1", helperEnv+"="+nsPath)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd, Pdeathsig: syscall.SIGKILL}
	if ns != nil {
		// The child inherits fds it needs: pass the namespace as fd 3.
		dup, err := unix.Dup(int(ns.Handle))
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(dup), "netns")
		defer f.Close()
		cmd.ExtraFiles = []*os.File{f}
		cmd.Env[len(cmd.Env)-1] = helperEnv + "=/proc/self/fd/3"
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start client: %v", err)
	}
	c := &Client{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(c.Stop)
	if r := c.Do(t, "hello"); r.Err != "" {
		t.Fatalf("client: %s", r.Err)
	}
	return c
}

// Pid returns the client's process id.
func (c *Client) Pid() int { return c.cmd.Process.Pid }

// Do sends one command and returns the result. Commands:
//
//	tcp ADDR          connect, read the greeting, getpeername, close
//	open ID ADDR      connect and keep the connection as ID
//	ping ID           send a line on connection ID and read the answer
//	close ID          close connection ID
//	udp ADDR          unconnected UDP: sendto, recvfrom
//	cudp ADDR         connected UDP: connect, send, recv, getpeername
//	dns ADDR NAME [TYPE]
//	                  DNS query for NAME (TYPE A, AAAA or PTR; default A)
//	                  over unconnected UDP; Backend holds the answers'
//	                  addresses or PTR targets, comma separated, Peer the
//	                  reply's source
//	bench N ADDR...   N rounds of TCP connect(), read of the backend's first
//	                  bytes and close() to each ADDR in turn; Backend holds
//	                  the nanoseconds spent per ADDR, space separated
//	                  (interleaving makes the figures comparable on a busy
//	                  machine); Peer holds the median nanoseconds of one
//	                  round per ADDR, which preemption spikes on a loaded
//	                  machine do not move
func (c *Client) Do(t testing.TB, cmd string) Result {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		t.Fatalf("client %q: %v", cmd, err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("client %q: %v", cmd, err)
	}
	var r Result
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("client %q answered %q: %v", cmd, line, err)
	}
	return r
}

// Stop ends the client process and waits for it.
func (c *Client) Stop() {
	c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// RunHelper turns the process into a client helper when it was started by
// [StartClient]; call it at the top of TestMain.
func RunHelper() {
	path, ok := os.LookupEnv(helperEnv)
	if !ok {
		return
	}
	runtime.LockOSThread() // all sockets are made on this thread
	if path != "" {
		h, err := netns.GetFromPath(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "nettest helper:", err)
			os.Exit(2)
		}
		if err := netns.Set(h); err != nil {
			fmt.Fprintln(os.Stderr, "nettest helper:", err)
			os.Exit(2)
		}
	}
	serveHelper(os.Stdin, os.Stdout)
	os.Exit(0)
}

func errName(err error) string {
	for _, e := range []syscall.Errno{unix.ECONNREFUSED, unix.EPERM, unix.ETIMEDOUT, unix.EINVAL, unix.ENETUNREACH, unix.EHOSTUNREACH, unix.ECONNRESET} {
		if errors.Is(err, e) {
			return unix.ErrnoName(e)
		}
	}
	return err.Error()
}

// sockaddr parses "a.b.c.d:port" (an AF_INET socket) or "[v6]:port" (an
// AF_INET6 socket, for example [::ffff:10.96.0.10]:80).
func sockaddr(s string) (unix.Sockaddr, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	if ap.Addr().Is6() {
		return &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}, nil
	}
	return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}, nil
}

func family(sa unix.Sockaddr) int {
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func fromSockaddr(sa unix.Sockaddr) string {
	switch s := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), uint16(s.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(s.Addr), uint16(s.Port)).String()
	}
	return fmt.Sprint(sa)
}

// The helper uses raw syscalls on its locked thread so that every socket is
// created inside the namespace it switched to.
func serveHelper(in io.Reader, out io.Writer) {
	enc := json.NewEncoder(out)
	conns := map[string]int{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var r Result
		switch {
		case len(f) == 1 && f[0] == "hello":
		case len(f) == 2 && f[0] == "tcp":
			fd, res := tcpConnect(f[1])
			r = res
			if fd >= 0 {
				unix.Close(fd)
			}
		case len(f) == 3 && f[0] == "open":
			fd, res := tcpConnect(f[2])
			r = res
			if fd >= 0 {
				conns[f[1]] = fd
			}
		case len(f) == 2 && f[0] == "ping":
			fd, ok := conns[f[1]]
			if !ok {
				r.Err = "no such connection"
				break
			}
			if _, err := unix.Write(fd, []byte("ping\n")); err != nil {
				r.Err = errName(err)
				break
			}
			line, err := readLine(fd)
			r.Backend = line
			if err != nil {
				r.Err = errName(err)
			}
		case len(f) == 2 && f[0] == "close":
			if fd, ok := conns[f[1]]; ok {
				unix.Close(fd)
				delete(conns, f[1])
			}
		case len(f) == 3 && f[0] == "dns":
			r = dnsQuery(f[1], f[2], "A")
		case len(f) == 4 && f[0] == "dns":
			r = dnsQuery(f[1], f[2], f[3])
		case len(f) >= 3 && f[0] == "bench":
			r = benchConnect(f[1], f[2:])
		case len(f) == 2 && (f[0] == "udp" || f[0] == "cudp"):
			r = udpExchange(f[1], f[0] == "cudp")
		default:
			r.Err = "bad command"
		}
		if err := enc.Encode(r); err != nil {
			return
		}
	}
}

func setTimeout(fd int) {
	tv := unix.Timeval{Sec: 10} // generous: a loaded CI machine must not turn into a failed connection
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
}

func tcpConnect(addr string) (int, Result) {
	var r Result
	sa, err := sockaddr(addr)
	if err != nil {
		r.Err = err.Error()
		return -1, r
	}
	fd, err := unix.Socket(family(sa), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		r.Err = errName(err)
		return -1, r
	}
	setTimeout(fd)
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		r.Err = errName(err)
		return -1, r
	}
	if p, err := unix.Getpeername(fd); err == nil {
		r.Peer = fromSockaddr(p)
	}
	line, err := readLine(fd)
	r.Backend = line
	if err != nil {
		r.Err = errName(err)
	}
	return fd, r
}

func readLine(fd int) (string, error) {
	var buf []byte
	b := make([]byte, 1)
	for {
		n, err := unix.Read(fd, b)
		if err != nil {
			return string(buf), err
		}
		if n == 0 {
			return string(buf), io.EOF
		}
		if b[0] == '\n' {
			return string(buf), nil
		}
		buf = append(buf, b[0])
	}
}

func udpExchange(addr string, connected bool) Result {
	var r Result
	sa, err := sockaddr(addr)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	fd, err := unix.Socket(family(sa), unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		r.Err = errName(err)
		return r
	}
	defer unix.Close(fd)
	setTimeout(fd)
	buf := make([]byte, 2048)
	if connected {
		if err := unix.Connect(fd, sa); err != nil {
			r.Err = errName(err)
			return r
		}
		if _, err := unix.Write(fd, []byte("hi")); err != nil {
			r.Err = errName(err)
			return r
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			r.Err = errName(err)
			return r
		}
		r.Backend = string(buf[:n])
		if p, err := unix.Getpeername(fd); err == nil {
			r.Peer = fromSockaddr(p)
		}
		return r
	}
	if err := unix.Sendto(fd, []byte("hi"), 0, sa); err != nil {
		r.Err = errName(err)
		return r
	}
	n, from, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		r.Err = errName(err)
		return r
	}
	r.Backend = string(buf[:n])
	r.Peer = fromSockaddr(from)
	return r
}

func benchConnect(count string, addrs []string) Result {
	var r Result
	n, err := strconv.Atoi(count)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	sas := make([]unix.Sockaddr, len(addrs))
	for i, a := range addrs {
		if sas[i], err = sockaddr(a); err != nil {
			r.Err = err.Error()
			return r
		}
	}
	total := make([]time.Duration, len(addrs))
	each := make([][]time.Duration, len(addrs))
	for i := range each {
		each[i] = make([]time.Duration, 0, n)
	}
	buf := make([]byte, 64)
	for range n {
		for i, sa := range sas {
			start := time.Now()
			fd, err := unix.Socket(family(sa), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				r.Err = errName(err)
				return r
			}
			// Close with RST so that no TIME_WAIT sockets pile up.
			_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			err = unix.Connect(fd, sa)
			if err == nil {
				var got int
				got, err = unix.Read(fd, buf)
				if err == nil && got == 0 {
					err = io.EOF
				}
			}
			unix.Close(fd)
			took := time.Since(start)
			total[i] += took
			each[i] = append(each[i], took)
			if err != nil {
				r.Err = errName(err)
				return r
			}
		}
	}
	parts := make([]string, len(total))
	meds := make([]string, len(total))
	for i, d := range total {
		parts[i] = strconv.FormatInt(int64(d), 10)
		slices.Sort(each[i])
		meds[i] = strconv.FormatInt(int64(each[i][len(each[i])/2]), 10)
	}
	r.Backend = strings.Join(parts, " ")
	r.Peer = strings.Join(meds, " ")
	return r
}

// AddAddr adds addr (a prefix such as fd00:db8::2/128) to the interface
// named dev inside the namespace; IPv6 addresses skip duplicate address
// detection so they are usable at once.
func (n *Netns) AddAddr(t testing.TB, dev, addr string) {
	t.Helper()
	h, err := n.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	if a.IP.To4() == nil {
		a.Flags |= unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("add %s to %s: %v", addr, dev, err)
	}
}

// Route adds a route to dst via gw inside the namespace.
func (n *Netns) Route(t testing.TB, dst, gw string) {
	t.Helper()
	h, err := n.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	p := netip.MustParsePrefix(dst)
	r := &netlink.Route{Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Gw: netip.MustParseAddr(gw).AsSlice()}
	if err := h.RouteAdd(r); err != nil {
		t.Fatalf("route %s via %s: %v", dst, gw, err)
	}
}

// Sysctl writes value to the sysctl at path (below /proc/sys, for example
// net/ipv4/ip_forward) inside the namespace.
func (n *Netns) Sysctl(t testing.TB, path, value string) {
	t.Helper()
	err := n.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", path), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("sysctl %s=%s: %v", path, value, err)
	}
}

// Veth connects namespace a and b with a veth pair, addresses aAddr on a's
// end and bAddr on b's end (prefixes such as 192.0.2.1/24 or
// fd00:192::1/64; IPv6 addresses skip duplicate address detection), both
// up. The pair lives only inside the two test namespaces and disappears with
// them.
func Veth(t testing.TB, a *Netns, aAddr string, b *Netns, bAddr string) {
	t.Helper()
	ha, err := a.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	hb, err := b.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tbveth-a"}, PeerName: "tbveth-b", PeerNamespace: netlink.NsFd(int(b.Handle))}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	for _, side := range []struct {
		h    *netlink.Handle
		name string
		addr string
	}{{ha, "tbveth-a", aAddr}, {hb, "tbveth-b", bAddr}} {
		l, err := side.h.LinkByName(side.name)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := netlink.ParseAddr(side.addr)
		if err != nil {
			t.Fatal(err)
		}
		if addr.IP.To4() == nil {
			addr.Flags |= unix.IFA_F_NODAD // usable at once
		}
		if err := side.h.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

func dnsQuery(addr, name, qtype string) Result {
	var r Result
	sa, err := sockaddr(addr)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	t, ok := dns.StringToType[qtype]
	if !ok {
		r.Err = "unknown query type " + qtype
		return r
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), t)
	wire, err := q.Pack()
	if err != nil {
		r.Err = err.Error()
		return r
	}
	fd, err := unix.Socket(family(sa), unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		r.Err = errName(err)
		return r
	}
	defer unix.Close(fd)
	setTimeout(fd)
	if err := unix.Sendto(fd, wire, 0, sa); err != nil {
		r.Err = errName(err)
		return r
	}
	buf := make([]byte, 4096)
	n, from, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		r.Err = errName(err)
		return r
	}
	r.Peer = fromSockaddr(from)
	resp := new(dns.Msg)
	if err := resp.Unpack(buf[:n]); err != nil {
		r.Err = err.Error()
		return r
	}
	if resp.Rcode != dns.RcodeSuccess {
		r.Err = dns.RcodeToString[resp.Rcode]
		return r
	}
	var ips []string
	for _, rr := range resp.Answer {
		switch a := rr.(type) {
		case *dns.A:
			ips = append(ips, a.A.String())
		case *dns.AAAA:
			ips = append(ips, a.AAAA.String())
		case *dns.PTR:
			ips = append(ips, a.Ptr)
		}
	}
	r.Backend = strings.Join(ips, ",")
	return r
}
