// Socket-level service load balancer for tugboat's netproxy.
//
// cgroup/connect4 and cgroup/sendmsg4 rewrite a destination that matches a
// service frontend (VIP, port, protocol) to one of its ready backends, so no
// packet is ever addressed to the virtual IP. cgroup/recvmsg4 and
// cgroup/getpeername4 translate the backend address back to the frontend, so
// replies and getpeername() show the service address. The *6 hooks do the
// same for IPv6 sockets that use IPv4-mapped addresses (::ffff:a.b.c.d).
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
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ECONNREFUSED 111
#define SOCK_STREAM 1
#define SOCK_DGRAM 2

char __license[] SEC("license") = "Dual MIT/GPL";

struct svc_key {
	__u32 addr; /* network byte order */
	__u16 port; /* network byte order */
	__u8 proto;
	__u8 pad;
};

struct svc_val {
	__u32 id;
	__u32 count;        /* ready backends, slots 1..count */
	__u32 affinity_sec; /* 0: no session affinity */
	__u32 pad;
};

struct slot_key {
	__u32 id;
	__u32 slot;
};

struct backend {
	__u32 addr; /* network byte order */
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
	__u32 addr;
	__u16 port;
	__u16 pad;
};

struct revnat_val {
	__u32 addr;
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

/* xlate translates the IPv4 destination *addr/ *port (network order) of
 * the socket in ctx. It returns 1 when the destination is no service, 0 when
 * it was rewritten to a backend and -1 when the service has no ready
 * backend. */
static __always_inline int xlate(struct bpf_sock_addr *ctx, __u32 *addr, __u16 *port)
{
	struct svc_key key = {};
	struct svc_val *svc;
	struct backend *be;
	__u8 proto;

	if (sock_proto(ctx, &proto))
		return 1;
	key.addr = *addr;
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
		.addr = be->addr,
		.port = be->port,
	};
	struct revnat_val rval = {
		.addr = key.addr,
		.port = key.port,
	};
	bpf_map_update_elem(&revnat, &rkey, &rval, BPF_ANY);

	*addr = be->addr;
	*port = be->port;
	return 0;
}

static __always_inline int fwd4(struct bpf_sock_addr *ctx)
{
	__u32 addr = ctx->user_ip4;
	__u16 port = (__u16)ctx->user_port;
	int r = xlate(ctx, &addr, &port);

	if (r < 0) {
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	}
	if (r == 0) {
		ctx->user_ip4 = addr;
		ctx->user_port = port;
	}
	return 1;
}

/* IPv6 sockets reach IPv4 services through IPv4-mapped addresses
 * (::ffff:a.b.c.d); only those are translated. */
static __always_inline int is_v4_mapped(struct bpf_sock_addr *ctx)
{
	return ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 &&
	       ctx->user_ip6[2] == bpf_htonl(0x0000ffff);
}

static __always_inline int fwd6(struct bpf_sock_addr *ctx)
{
	if (!is_v4_mapped(ctx))
		return 1;
	__u32 addr = ctx->user_ip6[3];
	__u16 port = (__u16)ctx->user_port;
	int r = xlate(ctx, &addr, &port);

	if (r < 0) {
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	}
	if (r == 0) {
		ctx->user_ip6[3] = addr;
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
static __always_inline struct revnat_val *rev_lookup(struct bpf_sock_addr *ctx, __u32 addr)
{
	struct revnat_key rkey = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = addr,
		.port = (__u16)ctx->user_port,
	};

	return bpf_map_lookup_elem(&revnat, &rkey);
}

static __always_inline void rev4(struct bpf_sock_addr *ctx)
{
	struct revnat_val *rv = rev_lookup(ctx, ctx->user_ip4);

	if (!rv)
		return;
	ctx->user_ip4 = rv->addr;
	ctx->user_port = rv->port;
}

static __always_inline void rev6(struct bpf_sock_addr *ctx)
{
	if (!is_v4_mapped(ctx))
		return;
	struct revnat_val *rv = rev_lookup(ctx, ctx->user_ip6[3]);

	if (!rv)
		return;
	ctx->user_ip6[3] = rv->addr;
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
 * External NodePort traffic: tc programs on the node's interface.
 *
 * Packets arriving from outside the node for a frontend (node address and
 * NodePort, external IP, load-balancer IP) are rewritten to a backend on
 * ingress, before routing; the flow's backend is remembered in ct_fwd so all
 * packets of a connection go to the same backend, and ct_rev rewrites the
 * replies leaving through the same interface back to the frontend address.
 * A frontend without ready backend is left alone: nothing listens on the
 * NodePort itself, so the kernel refuses the connection.
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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_fwd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_rev SEC(".maps");

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

SEC("tc")
int tugboat_nodeport_ingress(struct __sk_buff *skb)
{
	struct flow_key k = {};
	struct flow_val *known;
	__u32 addr;
	__u16 port;

	if (parse(skb, &k))
		return TC_ACT_OK;
	known = bpf_map_lookup_elem(&ct_fwd, &k);
	if (known) {
		addr = known->addr;
		port = known->port;
	} else {
		struct svc_key sk = { .addr = k.daddr, .port = k.dport, .proto = k.proto };
		struct svc_val *svc = bpf_map_lookup_elem(&services, &sk);
		struct backend *b;
		__u32 *bid;

		if (!svc || svc->count == 0)
			return TC_ACT_OK;
		struct slot_key slk = { .id = svc->id, .slot = (bpf_get_prandom_u32() % svc->count) + 1 };
		bid = bpf_map_lookup_elem(&slots, &slk);
		if (!bid)
			return TC_ACT_OK;
		b = bpf_map_lookup_elem(&backends, bid);
		if (!b)
			return TC_ACT_OK;
		addr = b->addr;
		port = b->port;
		struct flow_val nb = { .addr = addr, .port = port };
		bpf_map_update_elem(&ct_fwd, &k, &nb, BPF_ANY);
		struct flow_key rk = { .saddr = addr, .daddr = k.saddr, .sport = port, .dport = k.sport, .proto = k.proto };
		struct flow_val fe = { .addr = k.daddr, .port = k.dport };
		bpf_map_update_elem(&ct_rev, &rk, &fe, BPF_ANY);
	}
	if (rewrite(skb, k.proto, IP_DADDR_OFF, k.daddr, addr, L4_DPORT_OFF, k.dport, port))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc")
int tugboat_nodeport_egress(struct __sk_buff *skb)
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
