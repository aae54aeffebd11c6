// Package pause holds the pause program: the process that is PID 1 of a
// pod's shared PID namespace when the pod sets shareProcessNamespace, as
// the Kubernetes pause container is. It is a tiny static executable built
// from csrc/pause.c without libc (it only ignores SIGCHLD, so that the kernel
// reaps orphans, and sleeps); the built file is committed so that building
// tugboat needs no C compiler.
package pause

//go:generate clang -Os -static -nostdlib -fno-stack-protector -fno-pie -fno-asynchronous-unwind-tables -Wl,--build-id=none -s -o pause-amd64 csrc/pause.c
