package bpf

// The eBPF objects are generated with bpf2go and committed, so building the
// package needs no clang. Regenerate with `go generate ./netproxy/bpf` (needs
// clang and libbpf-dev); TestGeneratedUpToDate checks the committed files.
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -type svc_key -type svc_val -type slot_key -type backend -type affinity_key -type affinity_val -type revnat_key -type revnat_val -type flow_key -type flow_val -type fwd_val -type flow6_key -type flow6_val -type fwd6_val lb csrc/lb.c
