// pause is PID 1 of a pod's shared PID namespace (shareProcessNamespace):
// it sets SIGCHLD to SIG_IGN, so that the kernel reaps every process that
// exits while reparented to it, and sleeps until it is killed (SIGKILL from
// the runtime; as a namespace's init it receives no signal it has no
// handler for). It uses no libc: two system calls, for x86-64 Linux.
//
// Regenerate ../pause-amd64 with `go generate` in the package (needs clang and ld).

#define SYS_rt_sigaction 13
#define SYS_pause 34
#define SIGCHLD 17
#define SIG_IGN 1

struct kernel_sigaction {
	unsigned long handler;
	unsigned long flags;
	unsigned long restorer;
	unsigned long mask;
};

static long syscall4(long n, long a, long b, long c, long d) {
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}

// Static, not on the stack: the entry point gets a stack that is not
// aligned as the compiler assumes for a called function.
static const struct kernel_sigaction sa = {SIG_IGN, 0, 0, 0};

__attribute__((noreturn)) void _start(void) {
	syscall4(SYS_rt_sigaction, SIGCHLD, (long)&sa, 0, sizeof(sa.mask));
	for (;;) {
		syscall4(SYS_pause, 0, 0, 0, 0);
	}
}
