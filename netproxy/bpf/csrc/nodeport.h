/* The NodePort tc programs of one address family: lb.c includes this file
 * once with NP_FAMILY 4 and once with NP_FAMILY 6, so the one body below
 * serves both families. It defines parse, rewrite, snat_source, new_flow,
 * ingress and egress with the family's number appended (ingress4,
 * ingress6, ...), over the family's flow structures and ct maps. Addresses
 * are ADDR_WORDS 32-bit words in network order. */

#if NP_FAMILY == 4
#define NP(name) name##4
#define FLOW_KEY struct flow_key
#define FLOW_VAL struct flow_val
#define FWD_VAL struct fwd_val
#define CT_FWD ct_fwd
#define CT_REV ct_rev
#define CT_SNAT ct_snat
#define ADDR_WORDS 1
#define NP_ETH_P ETH_P_IP
#define NP_AF AF_INET
#define NP_IPHDR struct iphdr
#elif NP_FAMILY == 6
#define NP(name) name##6
#define FLOW_KEY struct flow6_key
#define FLOW_VAL struct flow6_val
#define FWD_VAL struct fwd6_val
#define CT_FWD ct6_fwd
#define CT_REV ct6_rev
#define CT_SNAT ct6_snat
#define ADDR_WORDS 4
#define NP_ETH_P ETH_P_IPV6
#define NP_AF AF_INET6
#define NP_IPHDR struct ipv6hdr
#else
#error "NP_FAMILY must be 4 or 6"
#endif

#define NP_IP_OFF ETH_HLEN
#define NP_SADDR_OFF (NP_IP_OFF + offsetof(NP_IPHDR, saddr))
#define NP_DADDR_OFF (NP_IP_OFF + offsetof(NP_IPHDR, daddr))
#define NP_L4_OFF (NP_IP_OFF + sizeof(NP_IPHDR))
#define NP_SPORT_OFF NP_L4_OFF
#define NP_DPORT_OFF (NP_L4_OFF + 2)
#define NP_TCP_CSUM_OFF (NP_L4_OFF + 16)
#define NP_UDP_CSUM_OFF (NP_L4_OFF + 6)
#define NP_IP_CSUM_OFF (NP_IP_OFF + offsetof(struct iphdr, check))

/* parse reads the TCP/UDP 5-tuple of skb. */
static __always_inline int NP(parse)(struct __sk_buff *skb, FLOW_KEY *k)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	NP_IPHDR *ip;
	__u16 *ports;
	__u8 proto;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(NP_ETH_P))
		return -1;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return -1;
#if NP_FAMILY == 4
	if (ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
		return -1;
	proto = ip->protocol;
#else
	proto = ip->nexthdr;
#endif
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -1;
	ports = (void *)(ip + 1);
	if ((void *)(ports + 2) > end)
		return -1;
	addr_copy(k->saddr, (const __u32 *)&ip->saddr, ADDR_WORDS);
	addr_copy(k->daddr, (const __u32 *)&ip->daddr, ADDR_WORDS);
	k->sport = ports[0];
	k->dport = ports[1];
	k->proto = proto;
	return 0;
}

/* rewrite replaces one address (at addr_off) and one port (at port_off) and
 * fixes the checksums. */
static __always_inline int NP(rewrite)(struct __sk_buff *skb, __u8 proto, int addr_off, const __u32 *old_addr,
				       const __u32 *new_addr, int port_off, __u16 old_port, __u16 new_port)
{
	int csum_off = proto == IPPROTO_TCP ? NP_TCP_CSUM_OFF : NP_UDP_CSUM_OFF;
	__u64 flags = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

#if NP_FAMILY == 4
	if (bpf_l4_csum_replace(skb, csum_off, old_addr[0], new_addr[0], flags | BPF_F_PSEUDO_HDR | 4))
		return -1;
#else
	__s64 diff = bpf_csum_diff((__be32 *)old_addr, 16, (__be32 *)new_addr, 16, 0);

	if (diff < 0)
		return -1;
	if (bpf_l4_csum_replace(skb, csum_off, 0, diff, flags | BPF_F_PSEUDO_HDR))
		return -1;
#endif
	if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, flags | sizeof(new_port)))
		return -1;
#if NP_FAMILY == 4
	if (bpf_l3_csum_replace(skb, NP_IP_CSUM_OFF, old_addr[0], new_addr[0], 4))
		return -1;
#endif
	if (bpf_skb_store_bytes(skb, addr_off, new_addr, ADDR_WORDS * 4, 0))
		return -1;
	if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0))
		return -1;
	return 0;
}

/* snat_source stores in node the node address the kernel would forward a
 * packet from k's source to the backend with and returns 1, or returns 0
 * when the backend is local (or the packet would not be forwarded), so no
 * source NAT is needed. The ipv4 fields of bpf_fib_lookup are the first
 * word of its ipv6 ones. */
static __always_inline int NP(snat_source)(struct __sk_buff *skb, FLOW_KEY *k, const __u32 *backend, __u32 *node,
					   __u32 *ifindex)
{
	struct bpf_fib_lookup fib = {};

	fib.family = NP_AF;
	fib.l4_protocol = k->proto;
	fib.tot_len = skb->len > ETH_HLEN ? skb->len - ETH_HLEN : 0;
	addr_copy(fib.ipv6_src, k->saddr, ADDR_WORDS);
	addr_copy(fib.ipv6_dst, backend, ADDR_WORDS);
	fib.ifindex = skb->ingress_ifindex;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	addr_copy(node, fib.ipv6_src, ADDR_WORDS);
	*ifindex = fib.ifindex;
	return !addr_is_zero(node, ADDR_WORDS);
}

/* new_flow chooses a backend for a new flow k to a frontend of this family
 * and records the flow's translations. It returns 1 when k is for no
 * usable frontend. */
static __always_inline int NP(new_flow)(struct __sk_buff *skb, FLOW_KEY *k, FWD_VAL *out)
{
	struct svc_key sk = { .port = k->dport, .proto = k->proto };
	struct svc_val *svc;
	struct backend *b;
	__u32 *bid;

	svc_addr(sk.addr, k->daddr, ADDR_WORDS);
	/* An IPv4-mapped IPv6 destination is no IPv6 frontend. */
	if (ADDR_WORDS == 4 && is_mapped(sk.addr))
		return 1;
	svc = bpf_map_lookup_elem(&services, &sk);
	if (!svc || svc->count == 0)
		return 1;
	struct slot_key slk = { .id = svc->id, .slot = (bpf_get_prandom_u32() % svc->count) + 1 };
	bid = bpf_map_lookup_elem(&slots, &slk);
	if (!bid)
		return 1;
	b = bpf_map_lookup_elem(&backends, bid);
	if (!b || is_mapped(b->addr) != (ADDR_WORDS == 1))
		return 1;
	__builtin_memset(out, 0, sizeof(*out));
	addr_copy(out->addr, &b->addr[4 - ADDR_WORDS], ADDR_WORDS);
	out->port = b->port;

	/* The reply to the client, on its way out: source back to the
	 * frontend. */
	FLOW_KEY rk = { .sport = out->port, .dport = k->sport, .proto = k->proto };
	FLOW_VAL fe = { .port = k->dport };

	addr_copy(rk.saddr, out->addr, ADDR_WORDS);
	addr_copy(rk.daddr, k->saddr, ADDR_WORDS);
	addr_copy(fe.addr, k->daddr, ADDR_WORDS);
	if (!(svc->flags & SVC_F_KEEP_SOURCE)) {
		__u32 node[ADDR_WORDS] = {};

		if (NP(snat_source)(skb, k, out->addr, node, &out->ifindex)) {
			/* The reply to the node, arriving: destination back to
			 * the client. Try the client's port, then random
			 * ones, for a tuple no other flow uses. */
			FLOW_KEY sk2 = { .sport = out->port, .proto = k->proto };
			FLOW_VAL client = { .port = k->sport };
			__u16 port = k->sport;
			int i;

			addr_copy(sk2.saddr, out->addr, ADDR_WORDS);
			addr_copy(sk2.daddr, node, ADDR_WORDS);
			addr_copy(client.addr, k->saddr, ADDR_WORDS);
			for (i = 0; i < 8; i++) {
				sk2.dport = port;
				if (bpf_map_update_elem(&CT_SNAT, &sk2, &client, BPF_NOEXIST) == 0)
					break;
				port = bpf_htons(SNAT_PORT_MIN + bpf_get_prandom_u32() % SNAT_PORT_RANGE);
			}
			if (i == 8)
				return -1;
			addr_copy(out->snat_addr, node, ADDR_WORDS);
			out->snat_port = port;
		}
	}
	bpf_map_update_elem(&CT_FWD, k, out, BPF_ANY);
	bpf_map_update_elem(&CT_REV, &rk, &fe, BPF_ANY);
	return 0;
}

static __always_inline int NP(ingress)(struct __sk_buff *skb)
{
	FLOW_KEY k = {};
	FWD_VAL *known;
	FWD_VAL fwd;
	FLOW_VAL *client;

	if (NP(parse)(skb, &k))
		return TC_ACT_OK;
	known = bpf_map_lookup_elem(&CT_FWD, &k);
	if (known) {
		fwd = *known;
	} else {
		/* A reply from a remote backend to a source-NATed flow: back to
		 * the client (egress restores the frontend as source). */
		client = bpf_map_lookup_elem(&CT_SNAT, &k);
		if (client) {
			__u32 addr[ADDR_WORDS];
			__u16 port = client->port;

			addr_copy(addr, client->addr, ADDR_WORDS);
			if (NP(rewrite)(skb, k.proto, NP_DADDR_OFF, k.daddr, addr, NP_DPORT_OFF, k.dport, port))
				return TC_ACT_SHOT;
			return TC_ACT_OK;
		}
		int r = NP(new_flow)(skb, &k, &fwd);

		if (r > 0)
			return TC_ACT_OK;
		if (r < 0)
			return TC_ACT_SHOT;
	}
	if (NP(rewrite)(skb, k.proto, NP_DADDR_OFF, k.daddr, fwd.addr, NP_DPORT_OFF, k.dport, fwd.port))
		return TC_ACT_SHOT;
	if (!addr_is_zero(fwd.snat_addr, ADDR_WORDS)) {
		if (NP(rewrite)(skb, k.proto, NP_SADDR_OFF, k.saddr, fwd.snat_addr, NP_SPORT_OFF, k.sport, fwd.snat_port))
			return TC_ACT_SHOT;
		return bpf_redirect_neigh(fwd.ifindex, 0, 0, 0);
	}
	return TC_ACT_OK;
}

static __always_inline int NP(egress)(struct __sk_buff *skb)
{
	FLOW_KEY k = {};
	FLOW_VAL *fe;
	__u32 addr[ADDR_WORDS];

	if (NP(parse)(skb, &k))
		return TC_ACT_OK;
	fe = bpf_map_lookup_elem(&CT_REV, &k);
	if (!fe)
		return TC_ACT_OK;
	addr_copy(addr, fe->addr, ADDR_WORDS);
	__u16 port = fe->port;
	if (NP(rewrite)(skb, k.proto, NP_SADDR_OFF, k.saddr, addr, NP_SPORT_OFF, k.sport, port))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

#undef NP
#undef FLOW_KEY
#undef FLOW_VAL
#undef FWD_VAL
#undef CT_FWD
#undef CT_REV
#undef CT_SNAT
#undef ADDR_WORDS
#undef NP_ETH_P
#undef NP_AF
#undef NP_IPHDR
#undef NP_IP_OFF
#undef NP_SADDR_OFF
#undef NP_DADDR_OFF
#undef NP_L4_OFF
#undef NP_SPORT_OFF
#undef NP_DPORT_OFF
#undef NP_TCP_CSUM_OFF
#undef NP_UDP_CSUM_OFF
#undef NP_IP_CSUM_OFF
