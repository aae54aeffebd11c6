// Socket-level service load balancer for tugboat's netproxy.
//
// cgroup/connect4 and cgroup/sendmsg4 rewrite a destination that matches a
// service frontend (VIP, port, protocol) to one of its ready backends, so no
// packet is ever addressed to the virtual IP. cgroup/recvmsg4 and
// cgroup/getpeername4 translate the backend address back to the frontend, so
// replies and getpeername() show the service address. The *6 hooks do the
// same for IPv6 sockets: IPv6 services (IPv6 backends) and IPv4 services
// reached through IPv4-mapped addresses (::ffff:a.b.c.d).
//
// All addresses in the maps are 16 bytes in network order; IPv4 addresses
// are stored IPv4-mapped (::ffff:a.b.c.d), so one lookup serves both
// families.
//
// Maps (all written by user space, see lb.go):
//   services:  frontend -> {service id, ready backend count, affinity timeout}
//   slots:     {service id, slot 1..count} -> backend id
//   backends:  backend id -> {address, port, service id}
//   affinity:  LRU {service id, client netns cookie} -> {backend id, last use}
//   revnat:    LRU {socket cookie, backend address, port} -> frontend
//   ct_fwd, ct_rev: LRU flow tables of the tc NodePort programs (below)

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ECONNREFUSED 111
#define SOCK_STREAM 1
#define SOCK_DGRAM 2

char __license[] SEC("license") = "Dual MIT/GPL";

struct svc_key {
	__u32 addr[4]; /* network byte order, IPv4 mapped */
	__u16 port;    /* network byte order */
	__u8 proto;
	__u8 pad;
};

struct svc_val {
	__u32 id;
	__u32 count;        /* ready backends, slots 1..count */
	__u32 affinity_sec; /* 0: no session affinity */
	__u32 flags;        /* SVC_F_* */
};

/* SVC_F_KEEP_SOURCE: packets from outside the node keep their source
 * address (externalTrafficPolicy: Local); without it a backend on another
 * host gets them source-NATed to the node's address, as kube-proxy
 * masquerades for externalTrafficPolicy: Cluster. */
#define SVC_F_KEEP_SOURCE 1

struct slot_key {
	__u32 id;
	__u32 slot;
};

struct backend {
	__u32 addr[4]; /* network byte order, IPv4 mapped */
	__u16 port; /* network byte order */
	__u16 pad;
	__u32 svc_id;
};

struct affinity_key {
	__u64 client; /* netns cookie of the connecting socket */
	__u32 svc_id;
	__u32 pad;
};

struct affinity_val {
	__u64 last_ns;
	__u32 backend_id;
	__u32 pad;
};

struct revnat_key {
	__u64 cookie;
	__u32 addr[4];
	__u16 port;
	__u16 pad;
	__u32 pad2;
};

struct revnat_val {
	__u32 addr[4];
	__u16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct svc_key);
	__type(value, struct svc_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1048576);
	__type(key, struct slot_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1048576);
	__type(key, __u32);
	__type(value, struct backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct affinity_key);
	__type(value, struct affinity_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct revnat_key);
	__type(value, struct revnat_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} revnat SEC(".maps");

static __always_inline int sock_proto(struct bpf_sock_addr *ctx, __u8 *proto)
{
	if (ctx->type == SOCK_STREAM) {
		*proto = IPPROTO_TCP;
		return 0;
	}
	if (ctx->type == SOCK_DGRAM) {
		*proto = IPPROTO_UDP;
		return 0;
	}
	return -1;
}

static __always_inline struct backend *pick(struct bpf_sock_addr *ctx, struct svc_val *svc)
{
	struct affinity_key akey = {};
	struct backend *be;
	__u32 *bid;
	__u64 now = 0;

	if (svc->affinity_sec) {
		struct affinity_val *av;

		now = bpf_ktime_get_ns();
		akey.client = bpf_get_netns_cookie(ctx);
		akey.svc_id = svc->id;
		av = bpf_map_lookup_elem(&affinity, &akey);
		if (av && now - av->last_ns <= (__u64)svc->affinity_sec * 1000000000ULL) {
			__u32 id = av->backend_id;

			be = bpf_map_lookup_elem(&backends, &id);
			if (be && be->svc_id == svc->id) {
				av->last_ns = now;
				return be;
			}
		}
	}

	struct slot_key skey = {
		.id = svc->id,
		.slot = (bpf_get_prandom_u32() % svc->count) + 1,
	};
	bid = bpf_map_lookup_elem(&slots, &skey);
	if (!bid)
		return 0;
	be = bpf_map_lookup_elem(&backends, bid);
	if (!be)
		return 0;
	if (svc->affinity_sec) {
		struct affinity_val nv = { .last_ns = now, .backend_id = *bid };

		bpf_map_update_elem(&affinity, &akey, &nv, BPF_ANY);
	}
	return be;
}

/* xlate translates the destination addr (16 bytes, IPv4 mapped) and *port
 * (network order) of the socket in ctx in place. It returns 1 when the
 * destination is no service, 0 when it was rewritten to a backend and -1
 * when the service has no ready backend. */
static __always_inline int xlate(struct bpf_sock_addr *ctx, __u32 addr[4], __u16 *port)
{
	struct svc_key key = {};
	struct svc_val *svc;
	struct backend *be;
	__u8 proto;

	if (sock_proto(ctx, &proto))
		return 1;
	key.addr[0] = addr[0];
	key.addr[1] = addr[1];
	key.addr[2] = addr[2];
	key.addr[3] = addr[3];
	key.port = *port;
	key.proto = proto;
	svc = bpf_map_lookup_elem(&services, &key);
	if (!svc)
		return 1;
	if (svc->count == 0)
		return -1;
	be = pick(ctx, svc);
	if (!be)
		return -1;

	struct revnat_key rkey = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = { be->addr[0], be->addr[1], be->addr[2], be->addr[3] },
		.port = be->port,
	};
	struct revnat_val rval = {
		.addr = { key.addr[0], key.addr[1], key.addr[2], key.addr[3] },
		.port = key.port,
	};
	bpf_map_update_elem(&revnat, &rkey, &rval, BPF_ANY);

	addr[0] = be->addr[0];
	addr[1] = be->addr[1];
	addr[2] = be->addr[2];
	addr[3] = be->addr[3];
	*port = be->port;
	return 0;
}

#define V4_MAPPED_PREFIX bpf_htonl(0x0000ffff)

static __always_inline int is_mapped(const __u32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == V4_MAPPED_PREFIX;
}

/* get_user_addr reads the socket address of ctx as 16 bytes: an IPv4 hook's
 * (v6 == 0) IPv4-mapped, as the maps store it. v6 is a constant in every
 * caller, so each hook reads only the context fields its type allows. */
static __always_inline void get_user_addr(struct bpf_sock_addr *ctx, int v6, __u32 a[4])
{
	if (v6) {
		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
	} else {
		a[0] = 0;
		a[1] = 0;
		a[2] = V4_MAPPED_PREFIX;
		a[3] = ctx->user_ip4;
	}
}

/* set_user_addr writes a (16 bytes, IPv4 mapped for an IPv4 hook) and port
 * (network order) as the socket address of ctx. */
static __always_inline void set_user_addr(struct bpf_sock_addr *ctx, int v6, const __u32 a[4], __u16 port)
{
	if (v6) {
		ctx->user_ip6[0] = a[0];
		ctx->user_ip6[1] = a[1];
		ctx->user_ip6[2] = a[2];
		ctx->user_ip6[3] = a[3];
	} else {
		ctx->user_ip4 = a[3];
	}
	ctx->user_port = port;
}

/* fwd serves the connect and sendmsg hooks of both families. IPv6 sockets
 * reach IPv6 services directly and IPv4 services through IPv4-mapped
 * addresses (::ffff:a.b.c.d), which is how the maps store them. */
static __always_inline int fwd(struct bpf_sock_addr *ctx, int v6)
{
	__u32 addr[4];
	__u16 port = (__u16)ctx->user_port;
	int r;

	get_user_addr(ctx, v6, addr);
	r = xlate(ctx, addr, &port);
	/* An IPv4 socket cannot reach an IPv6 backend (the frontend and its
	 * backends are of one family, so this only guards the maps). */
	if (r < 0 || (r == 0 && !v6 && !is_mapped(addr))) {
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	}
	if (r == 0)
		set_user_addr(ctx, v6, addr, port);
	return 1;
}

/* SOCK_HOOK defines the program tugboat_<hook> of the cgroup sock_addr
 * hook <hook>, which returns call. */
#define SOCK_HOOK(hook, call)                               \
	SEC("cgroup/" #hook)                                \
	int tugboat_##hook(struct bpf_sock_addr *ctx)       \
	{                                                   \
		return call;                                \
	}

SOCK_HOOK(connect4, fwd(ctx, 0))
SOCK_HOOK(sendmsg4, fwd(ctx, 0))
SOCK_HOOK(connect6, fwd(ctx, 1))
SOCK_HOOK(sendmsg6, fwd(ctx, 1))

/* rev serves the recvmsg and getpeername hooks of both families: it
 * translates a backend address back to the service address it was
 * translated from on this socket. It returns 1 (always allowed). */
static __always_inline int rev(struct bpf_sock_addr *ctx, int v6)
{
	struct revnat_key rkey = {
		.cookie = bpf_get_socket_cookie(ctx),
		.port = (__u16)ctx->user_port,
	};
	struct revnat_val *rv;

	get_user_addr(ctx, v6, rkey.addr);
	rv = bpf_map_lookup_elem(&revnat, &rkey);
	if (rv && (v6 || is_mapped(rv->addr)))
		set_user_addr(ctx, v6, rv->addr, rv->port);
	return 1;
}

SOCK_HOOK(recvmsg4, rev(ctx, 0))
SOCK_HOOK(getpeername4, rev(ctx, 0))
SOCK_HOOK(recvmsg6, rev(ctx, 1))
SOCK_HOOK(getpeername6, rev(ctx, 1))

/*
 * External NodePort traffic: tc programs on the node's interfaces.
 *
 * Packets arriving from outside the node for a frontend (node address and
 * NodePort, external IP, load-balancer IP) are rewritten to a backend on
 * ingress, before routing; the flow's backend is remembered in ct_fwd so all
 * packets of a connection go to the same backend, and ct_rev rewrites the
 * replies leaving through an external interface back to the frontend
 * address. A frontend without ready backend is left alone: nothing listens
 * on the NodePort itself, so the kernel refuses the connection.
 *
 * Source NAT: when the chosen backend is not local (the kernel's FIB would
 * forward the packet) and the service does not keep the source address
 * (externalTrafficPolicy: Cluster), the packet's source becomes the node
 * address the kernel would use towards the backend and a port chosen from
 * the ephemeral range, as kube-proxy masquerades, and the packet is
 * redirected straight to the interface towards the backend
 * (bpf_redirect_neigh: the stack would drop a packet arriving with one of
 * the node's own addresses as source). The backend then answers the node:
 * ct_snat maps that reply (arriving on an external interface) back to the
 * client's address, the kernel forwards it, and ct_rev restores the
 * frontend as its source on the way out. With externalTrafficPolicy: Local
 * (SVC_F_KEEP_SOURCE) the client's address is kept.
 */

/* The flow structures of both families have the same fields; an address is
 * ADDR_WORDS(family) 32-bit words in network order (one for IPv4), so one
 * body (nodeport.h) serves both. */

struct flow_key {
	__u32 saddr[1];
	__u32 daddr[1];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_val {
	__u32 addr[1];
	__u16 port;
	__u16 pad;
};

/* fwd_val is the translation of a client's flow: the backend and, for
 * source-NATed flows, the node's address and port and the interface towards
 * the backend (zero otherwise). */
struct fwd_val {
	__u32 addr[1];
	__u32 snat_addr[1];
	__u16 port;
	__u16 snat_port;
	__u32 ifindex;
};

/* IPv6: the same with 16-byte addresses. */

struct flow6_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow6_val {
	__u32 addr[4];
	__u16 port;
	__u16 pad;
};

struct fwd6_val {
	__u32 addr[4];
	__u32 snat_addr[4];
	__u16 port;
	__u16 snat_port;
	__u32 ifindex;
};

/* CT_MAP declares one LRU flow table of the tc programs. */
#define CT_MAP(name, key_type, val_type)                  \
	struct {                                          \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);      \
		__uint(max_entries, 262144);              \
		__type(key, key_type);                    \
		__type(value, val_type);                  \
		__uint(pinning, LIBBPF_PIN_BY_NAME);      \
	} name SEC(".maps")

CT_MAP(ct_fwd, struct flow_key, struct fwd_val);
CT_MAP(ct_rev, struct flow_key, struct flow_val);
CT_MAP(ct_snat, struct flow_key, struct flow_val);
CT_MAP(ct6_fwd, struct flow6_key, struct fwd6_val);
CT_MAP(ct6_rev, struct flow6_key, struct flow6_val);
CT_MAP(ct6_snat, struct flow6_key, struct flow6_val);

#define AF_INET 2
#define AF_INET6 10
#define SNAT_PORT_MIN 32768
#define SNAT_PORT_RANGE (61000 - SNAT_PORT_MIN)

/* addr_copy copies an address of n words (1 or 4, a constant). */
static __always_inline void addr_copy(__u32 *dst, const __u32 *src, int n)
{
	for (int i = 0; i < n; i++)
		dst[i] = src[i];
}

static __always_inline int addr_is_zero(const __u32 *a, int n)
{
	__u32 x = 0;

	for (int i = 0; i < n; i++)
		x |= a[i];
	return x == 0;
}

/* svc_addr widens an address of n words to the services map's 16 bytes
 * (IPv4 mapped). */
static __always_inline void svc_addr(__u32 dst[4], const __u32 *a, int n)
{
	if (n == 1) {
		dst[0] = 0;
		dst[1] = 0;
		dst[2] = V4_MAPPED_PREFIX;
		dst[3] = a[0];
	} else {
		addr_copy(dst, a, 4);
	}
}

/* The IPv4 programs (no IP options, no fragments; the IP header checksum
 * is fixed too) and the IPv6 programs (no extension headers; there is no IP
 * header checksum, the L4 checksum covers the addresses through the pseudo
 * header): ingress4, egress4, ingress6 and egress6. */
#define NP_FAMILY 4
#include "nodeport.h"
#undef NP_FAMILY
#define NP_FAMILY 6
#include "nodeport.h"
#undef NP_FAMILY

SEC("tc")
int tugboat_nodeport_ingress(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return ingress6(skb);
	return ingress4(skb);
}

SEC("tc")
int tugboat_nodeport_egress(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return egress6(skb);
	return egress4(skb);
}
