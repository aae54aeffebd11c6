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

static __always_inline int fwd4(struct bpf_sock_addr *ctx)
{
	__u32 addr[4] = { 0, 0, V4_MAPPED_PREFIX, ctx->user_ip4 };
	__u16 port = (__u16)ctx->user_port;
	int r = xlate(ctx, addr, &port);

	/* An IPv4 socket cannot reach an IPv6 backend (the frontend and its
	 * backends are of one family, so this only guards the maps). */
	if (r < 0 || (r == 0 && !is_mapped(addr))) {
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	}
	if (r == 0) {
		ctx->user_ip4 = addr[3];
		ctx->user_port = port;
	}
	return 1;
}

/* IPv6 sockets reach IPv6 services directly and IPv4 services through
 * IPv4-mapped addresses (::ffff:a.b.c.d), which is how the maps store them. */
static __always_inline int fwd6(struct bpf_sock_addr *ctx)
{
	__u32 addr[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };
	__u16 port = (__u16)ctx->user_port;
	int r = xlate(ctx, addr, &port);

	if (r < 0) {
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	}
	if (r == 0) {
		ctx->user_ip6[0] = addr[0];
		ctx->user_ip6[1] = addr[1];
		ctx->user_ip6[2] = addr[2];
		ctx->user_ip6[3] = addr[3];
		ctx->user_port = port;
	}
	return 1;
}

SEC("cgroup/connect4")
int tugboat_connect4(struct bpf_sock_addr *ctx)
{
	return fwd4(ctx);
}

SEC("cgroup/sendmsg4")
int tugboat_sendmsg4(struct bpf_sock_addr *ctx)
{
	return fwd4(ctx);
}

SEC("cgroup/connect6")
int tugboat_connect6(struct bpf_sock_addr *ctx)
{
	return fwd6(ctx);
}

SEC("cgroup/sendmsg6")
int tugboat_sendmsg6(struct bpf_sock_addr *ctx)
{
	return fwd6(ctx);
}

/* rev_lookup finds the service address a backend address was translated
 * from on this socket. */
static __always_inline struct revnat_val *rev_lookup(struct bpf_sock_addr *ctx, struct revnat_key *rkey)
{
	rkey->cookie = bpf_get_socket_cookie(ctx);
	rkey->port = (__u16)ctx->user_port;
	return bpf_map_lookup_elem(&revnat, rkey);
}

static __always_inline void rev4(struct bpf_sock_addr *ctx)
{
	struct revnat_key rkey = { .addr = { 0, 0, V4_MAPPED_PREFIX, ctx->user_ip4 } };
	struct revnat_val *rv = rev_lookup(ctx, &rkey);

	if (!rv || !is_mapped(rv->addr))
		return;
	ctx->user_ip4 = rv->addr[3];
	ctx->user_port = rv->port;
}

static __always_inline void rev6(struct bpf_sock_addr *ctx)
{
	struct revnat_key rkey = {
		.addr = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] },
	};
	struct revnat_val *rv = rev_lookup(ctx, &rkey);

	if (!rv)
		return;
	ctx->user_ip6[0] = rv->addr[0];
	ctx->user_ip6[1] = rv->addr[1];
	ctx->user_ip6[2] = rv->addr[2];
	ctx->user_ip6[3] = rv->addr[3];
	ctx->user_port = rv->port;
}

SEC("cgroup/recvmsg4")
int tugboat_recvmsg4(struct bpf_sock_addr *ctx)
{
	rev4(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int tugboat_getpeername4(struct bpf_sock_addr *ctx)
{
	rev4(ctx);
	return 1;
}

SEC("cgroup/recvmsg6")
int tugboat_recvmsg6(struct bpf_sock_addr *ctx)
{
	rev6(ctx);
	return 1;
}

SEC("cgroup/getpeername6")
int tugboat_getpeername6(struct bpf_sock_addr *ctx)
{
	rev6(ctx);
	return 1;
}

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

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_val {
	__u32 addr;
	__u16 port;
	__u16 pad;
};

/* fwd_val is the translation of a client's flow: the backend and, for
 * source-NATed flows, the node's address and port and the interface towards
 * the backend (zero otherwise). */
struct fwd_val {
	__u32 addr;
	__u32 snat_addr;
	__u16 port;
	__u16 snat_port;
	__u32 ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct flow_key);
	__type(value, struct fwd_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_fwd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_snat SEC(".maps");

#define AF_INET 2
#define SNAT_PORT_MIN 32768
#define SNAT_PORT_RANGE (61000 - SNAT_PORT_MIN)

#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_SADDR_OFF (IP_OFF + offsetof(struct iphdr, saddr))
#define IP_DADDR_OFF (IP_OFF + offsetof(struct iphdr, daddr))
#define L4_OFF (IP_OFF + sizeof(struct iphdr))
#define L4_SPORT_OFF L4_OFF
#define L4_DPORT_OFF (L4_OFF + 2)
#define TCP_CSUM_OFF (L4_OFF + 16)
#define UDP_CSUM_OFF (L4_OFF + 6)

/* parse reads the IPv4 TCP/UDP 5-tuple of skb (no IP options, no
 * fragments). */
static __always_inline int parse(struct __sk_buff *skb, struct flow_key *k)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u16 *ports;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
		return -1;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return -1;
	ports = (void *)(ip + 1);
	if ((void *)(ports + 2) > end)
		return -1;
	k->saddr = ip->saddr;
	k->daddr = ip->daddr;
	k->sport = ports[0];
	k->dport = ports[1];
	k->proto = ip->protocol;
	return 0;
}

/* rewrite replaces one address (at addr_off) and one port (at port_off) and
 * fixes the IP and L4 checksums. */
static __always_inline int rewrite(struct __sk_buff *skb, __u8 proto, int addr_off, __u32 old_addr,
				   __u32 new_addr, int port_off, __u16 old_port, __u16 new_port)
{
	int csum_off = proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF;
	__u64 flags = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr, flags | BPF_F_PSEUDO_HDR | sizeof(new_addr)))
		return -1;
	if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, flags | sizeof(new_port)))
		return -1;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr)))
		return -1;
	if (bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0))
		return -1;
	if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0))
		return -1;
	return 0;
}

/* snat_source returns the node address the kernel would forward a packet
 * from k's source to the backend with, or 0 when the backend is local (or
 * the packet would not be forwarded), so no source NAT is needed. */
static __always_inline __u32 snat_source(struct __sk_buff *skb, struct flow_key *k, __u32 backend, __u32 *ifindex)
{
	struct bpf_fib_lookup fib = {};

	fib.family = AF_INET;
	fib.l4_protocol = k->proto;
	fib.tot_len = skb->len > ETH_HLEN ? skb->len - ETH_HLEN : 0;
	fib.ipv4_src = k->saddr;
	fib.ipv4_dst = backend;
	fib.ifindex = skb->ingress_ifindex;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	*ifindex = fib.ifindex;
	return fib.ipv4_src;
}

/* new_flow chooses a backend for a new flow k to a frontend and records the
 * flow's translations. It returns 1 when k is for no usable frontend. */
static __always_inline int new_flow(struct __sk_buff *skb, struct flow_key *k, struct fwd_val *out)
{
	struct svc_key sk = { .addr = { 0, 0, V4_MAPPED_PREFIX, k->daddr }, .port = k->dport, .proto = k->proto };
	struct svc_val *svc = bpf_map_lookup_elem(&services, &sk);
	struct backend *b;
	__u32 *bid;

	if (!svc || svc->count == 0)
		return 1;
	struct slot_key slk = { .id = svc->id, .slot = (bpf_get_prandom_u32() % svc->count) + 1 };
	bid = bpf_map_lookup_elem(&slots, &slk);
	if (!bid)
		return 1;
	b = bpf_map_lookup_elem(&backends, bid);
	if (!b || !is_mapped(b->addr))
		return 1;
	out->addr = b->addr[3];
	out->port = b->port;
	out->snat_addr = 0;
	out->snat_port = 0;
	out->ifindex = 0;

	/* The reply to the client, on its way out: source back to the
	 * frontend. */
	struct flow_key rk = { .saddr = out->addr, .daddr = k->saddr, .sport = out->port, .dport = k->sport, .proto = k->proto };
	struct flow_val fe = { .addr = k->daddr, .port = k->dport };

	if (!(svc->flags & SVC_F_KEEP_SOURCE)) {
		__u32 node = snat_source(skb, k, out->addr, &out->ifindex);

		if (node) {
			/* The reply to the node, arriving: destination back to
			 * the client. Try the client's port, then random
			 * ones, for a tuple no other flow uses. */
			struct flow_key sk2 = { .saddr = out->addr, .daddr = node, .sport = out->port, .proto = k->proto };
			struct flow_val client = { .addr = k->saddr, .port = k->sport };
			__u16 port = k->sport;
			int i;

			for (i = 0; i < 8; i++) {
				sk2.dport = port;
				if (bpf_map_update_elem(&ct_snat, &sk2, &client, BPF_NOEXIST) == 0)
					break;
				port = bpf_htons(SNAT_PORT_MIN + bpf_get_prandom_u32() % SNAT_PORT_RANGE);
			}
			if (i == 8)
				return -1;
			out->snat_addr = node;
			out->snat_port = port;
		}
	}
	bpf_map_update_elem(&ct_fwd, k, out, BPF_ANY);
	bpf_map_update_elem(&ct_rev, &rk, &fe, BPF_ANY);
	return 0;
}

static __always_inline int ingress4(struct __sk_buff *skb)
{
	struct flow_key k = {};
	struct fwd_val *known;
	struct fwd_val fwd;
	struct flow_val *client;

	if (parse(skb, &k))
		return TC_ACT_OK;
	known = bpf_map_lookup_elem(&ct_fwd, &k);
	if (known) {
		fwd = *known;
	} else {
		/* A reply from a remote backend to a source-NATed flow: back to
		 * the client (egress restores the frontend as source). */
		client = bpf_map_lookup_elem(&ct_snat, &k);
		if (client) {
			__u32 addr = client->addr;
			__u16 port = client->port;

			if (rewrite(skb, k.proto, IP_DADDR_OFF, k.daddr, addr, L4_DPORT_OFF, k.dport, port))
				return TC_ACT_SHOT;
			return TC_ACT_OK;
		}
		int r = new_flow(skb, &k, &fwd);

		if (r > 0)
			return TC_ACT_OK;
		if (r < 0)
			return TC_ACT_SHOT;
	}
	if (rewrite(skb, k.proto, IP_DADDR_OFF, k.daddr, fwd.addr, L4_DPORT_OFF, k.dport, fwd.port))
		return TC_ACT_SHOT;
	if (fwd.snat_addr) {
		if (rewrite(skb, k.proto, IP_SADDR_OFF, k.saddr, fwd.snat_addr, L4_SPORT_OFF, k.sport, fwd.snat_port))
			return TC_ACT_SHOT;
		return bpf_redirect_neigh(fwd.ifindex, 0, 0, 0);
	}
	return TC_ACT_OK;
}

static __always_inline int egress4(struct __sk_buff *skb)
{
	struct flow_key k = {};
	struct flow_val *fe;

	if (parse(skb, &k))
		return TC_ACT_OK;
	fe = bpf_map_lookup_elem(&ct_rev, &k);
	if (!fe)
		return TC_ACT_OK;
	__u32 addr = fe->addr;
	__u16 port = fe->port;
	if (rewrite(skb, k.proto, IP_SADDR_OFF, k.saddr, addr, L4_SPORT_OFF, k.sport, port))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/*
 * IPv6: the same translations with 16-byte addresses (no extension
 * headers; there is no IP header checksum, the L4 checksum covers the
 * addresses through the pseudo header).
 */

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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct flow6_key);
	__type(value, struct fwd6_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct6_fwd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct flow6_key);
	__type(value, struct flow6_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct6_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct flow6_key);
	__type(value, struct flow6_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct6_snat SEC(".maps");

#define AF_INET6 10
#define IP6_OFF ETH_HLEN
#define IP6_SADDR_OFF (IP6_OFF + offsetof(struct ipv6hdr, saddr))
#define IP6_DADDR_OFF (IP6_OFF + offsetof(struct ipv6hdr, daddr))
#define L4_6_OFF (IP6_OFF + sizeof(struct ipv6hdr))
#define TCP6_CSUM_OFF (L4_6_OFF + 16)
#define UDP6_CSUM_OFF (L4_6_OFF + 6)

static __always_inline void copy6(__u32 *dst, const __u32 *src)
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
}

static __always_inline int is_zero6(const __u32 *a)
{
	return (a[0] | a[1] | a[2] | a[3]) == 0;
}

/* parse6 reads the IPv6 TCP/UDP 5-tuple of skb (no extension headers). */
static __always_inline int parse6(struct __sk_buff *skb, struct flow6_key *k)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip;
	__u16 *ports;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IPV6))
		return -1;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return -1;
	if (ip->nexthdr != IPPROTO_TCP && ip->nexthdr != IPPROTO_UDP)
		return -1;
	ports = (void *)(ip + 1);
	if ((void *)(ports + 2) > end)
		return -1;
	copy6(k->saddr, ip->saddr.in6_u.u6_addr32);
	copy6(k->daddr, ip->daddr.in6_u.u6_addr32);
	k->sport = ports[0];
	k->dport = ports[1];
	k->proto = ip->nexthdr;
	return 0;
}

/* rewrite6 replaces one address and one port and fixes the L4 checksum. */
static __always_inline int rewrite6(struct __sk_buff *skb, __u8 proto, int addr_off, __u32 *old_addr,
				    __u32 *new_addr, int port_off, __u16 old_port, __u16 new_port)
{
	int csum_off = proto == IPPROTO_TCP ? TCP6_CSUM_OFF : UDP6_CSUM_OFF;
	__u64 flags = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__s64 diff = bpf_csum_diff(old_addr, 16, new_addr, 16, 0);

	if (diff < 0)
		return -1;
	if (bpf_l4_csum_replace(skb, csum_off, 0, diff, flags | BPF_F_PSEUDO_HDR))
		return -1;
	if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, flags | sizeof(new_port)))
		return -1;
	if (bpf_skb_store_bytes(skb, addr_off, new_addr, 16, 0))
		return -1;
	if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0))
		return -1;
	return 0;
}

static __always_inline int snat_source6(struct __sk_buff *skb, struct flow6_key *k, __u32 *backend,
					__u32 *node, __u32 *ifindex)
{
	struct bpf_fib_lookup fib = {};

	fib.family = AF_INET6;
	fib.l4_protocol = k->proto;
	fib.tot_len = skb->len > ETH_HLEN ? skb->len - ETH_HLEN : 0;
	copy6(fib.ipv6_src, k->saddr);
	copy6(fib.ipv6_dst, backend);
	fib.ifindex = skb->ingress_ifindex;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	copy6(node, fib.ipv6_src);
	*ifindex = fib.ifindex;
	return !is_zero6(node);
}

static __always_inline int new_flow6(struct __sk_buff *skb, struct flow6_key *k, struct fwd6_val *out)
{
	struct svc_key sk = { .port = k->dport, .proto = k->proto };
	struct svc_val *svc;
	struct backend *b;
	__u32 *bid;

	copy6(sk.addr, k->daddr);
	if (is_mapped(sk.addr))
		return 1;
	svc = bpf_map_lookup_elem(&services, &sk);
	if (!svc || svc->count == 0)
		return 1;
	struct slot_key slk = { .id = svc->id, .slot = (bpf_get_prandom_u32() % svc->count) + 1 };
	bid = bpf_map_lookup_elem(&slots, &slk);
	if (!bid)
		return 1;
	b = bpf_map_lookup_elem(&backends, bid);
	if (!b || is_mapped(b->addr))
		return 1;
	__builtin_memset(out, 0, sizeof(*out));
	copy6(out->addr, b->addr);
	out->port = b->port;

	struct flow6_key rk = { .sport = out->port, .dport = k->sport, .proto = k->proto };
	struct flow6_val fe = { .port = k->dport };

	copy6(rk.saddr, out->addr);
	copy6(rk.daddr, k->saddr);
	copy6(fe.addr, k->daddr);
	if (!(svc->flags & SVC_F_KEEP_SOURCE)) {
		__u32 node[4] = {};

		if (snat_source6(skb, k, out->addr, node, &out->ifindex)) {
			struct flow6_key sk2 = { .sport = out->port, .proto = k->proto };
			struct flow6_val client = { .port = k->sport };
			__u16 port = k->sport;
			int i;

			copy6(sk2.saddr, out->addr);
			copy6(sk2.daddr, node);
			copy6(client.addr, k->saddr);
			for (i = 0; i < 8; i++) {
				sk2.dport = port;
				if (bpf_map_update_elem(&ct6_snat, &sk2, &client, BPF_NOEXIST) == 0)
					break;
				port = bpf_htons(SNAT_PORT_MIN + bpf_get_prandom_u32() % SNAT_PORT_RANGE);
			}
			if (i == 8)
				return -1;
			copy6(out->snat_addr, node);
			out->snat_port = port;
		}
	}
	bpf_map_update_elem(&ct6_fwd, k, out, BPF_ANY);
	bpf_map_update_elem(&ct6_rev, &rk, &fe, BPF_ANY);
	return 0;
}

static __always_inline int ingress6(struct __sk_buff *skb)
{
	struct flow6_key k = {};
	struct fwd6_val *known;
	struct fwd6_val fwd;
	struct flow6_val *client;

	if (parse6(skb, &k))
		return TC_ACT_OK;
	known = bpf_map_lookup_elem(&ct6_fwd, &k);
	if (known) {
		fwd = *known;
	} else {
		client = bpf_map_lookup_elem(&ct6_snat, &k);
		if (client) {
			__u32 addr[4];
			__u16 port = client->port;

			copy6(addr, client->addr);
			if (rewrite6(skb, k.proto, IP6_DADDR_OFF, k.daddr, addr, L4_6_OFF + 2, k.dport, port))
				return TC_ACT_SHOT;
			return TC_ACT_OK;
		}
		int r = new_flow6(skb, &k, &fwd);

		if (r > 0)
			return TC_ACT_OK;
		if (r < 0)
			return TC_ACT_SHOT;
	}
	if (rewrite6(skb, k.proto, IP6_DADDR_OFF, k.daddr, fwd.addr, L4_6_OFF + 2, k.dport, fwd.port))
		return TC_ACT_SHOT;
	if (!is_zero6(fwd.snat_addr)) {
		if (rewrite6(skb, k.proto, IP6_SADDR_OFF, k.saddr, fwd.snat_addr, L4_6_OFF, k.sport, fwd.snat_port))
			return TC_ACT_SHOT;
		return bpf_redirect_neigh(fwd.ifindex, 0, 0, 0);
	}
	return TC_ACT_OK;
}

static __always_inline int egress6(struct __sk_buff *skb)
{
	struct flow6_key k = {};
	struct flow6_val *fe;
	__u32 addr[4];

	if (parse6(skb, &k))
		return TC_ACT_OK;
	fe = bpf_map_lookup_elem(&ct6_rev, &k);
	if (!fe)
		return TC_ACT_OK;
	copy6(addr, fe->addr);
	__u16 port = fe->port;
	if (rewrite6(skb, k.proto, IP6_SADDR_OFF, k.saddr, addr, L4_6_OFF, k.sport, port))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

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
