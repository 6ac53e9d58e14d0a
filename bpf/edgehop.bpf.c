// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop AP dataplane.
 *
 *   eh_xdp_radio / eh_tc_radio
 *                  XDP or TC ingress (--attach) on the radio-side interface
 *                  (where MUDs' frames arrive): steers offload requests (UDP
 *                  to VIP:port carrying struct eh_hdr) per MUD: LOCAL,
 *                  FORWARD, FORWARD+BUFFER, BUFFER-ONLY.
 *   eh_tc_radio_egress
 *                  TC egress on the same interface: answers from a MUD's
 *                  container (local or remote) leave with the VIP as source.
 *   eh_xdp_wan / eh_tc_wan
 *                  XDP or TC ingress on the inter-AP interface: answers from a remote
 *                  container to a steered MUD go straight to the radio
 *                  interface with VIP:port as source (fast return path, when
 *                  enabled); everything else passes. Being attached also lets
 *                  the interface take frames eh_xdp_radio redirects into it
 *                  (most drivers allocate their XDP transmit queues only then;
 *                  a veth needs an XDP program, or GRO, on its *peer*).
 *
 * Everything the programs do not recognise as theirs passes untouched.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "edgehop_proto.h"
#include "edgehop_kern_user.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#define IP_MF		0x2000
#define IP_OFFSET	0x1fff

/* Per-MUD steering, keyed by the MUD's IPv4 address: read only here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EH_STEER_MAX);
	__type(key, __be32);
	__type(value, struct eh_steer_ctl);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eh_steer SEC(".maps");

/* Per-MUD counters and loss events, same key: written only here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EH_STEER_MAX);
	__type(key, __be32);
	__type(value, struct eh_mud_dp);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eh_mud_dp SEC(".maps");

/* VIP, port, WAN ifindex: written by the loader, read on every packet. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct eh_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eh_config SEC(".maps");

/* Per-CPU counters indexed by enum eh_counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EH_C_MAX);
	__type(key, __u32);
	__type(value, struct eh_datarec);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eh_counters SEC(".maps");

/* A MUD's replay buffer: struct eh_replay_rec records; size set by the loader. */
struct eh_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EH_RING_DEFAULT);
};

/*
 * The replay buffers, one per MUD in a buffering mode, keyed by its address:
 * userspace creates a MUD's when it enters FWD_BUF/BUF_ONLY and removes it
 * when it leaves (eh_dp_steer_set), so two MUDs migrating into this AP at
 * once never share a ring, nor wait for each other's records.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, EH_RINGS_MAX);
	__type(key, __be32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct eh_ring);
} eh_replay_rings SEC(".maps");

static __always_inline void count(__u32 idx, __u64 bytes)
{
	struct eh_datarec *rec = bpf_map_lookup_elem(&eh_counters, &idx);

	/* Per-CPU slot, and this program cannot be preempted on it: no atomics. */
	if (rec) {
		rec->packets++;
		rec->bytes += bytes;
	}
}

/* One's complement checksum update for a 16-bit field (RFC 1624, eqn. 3). */
static __always_inline __u16 csum16_add(__u16 a, __u16 b)
{
	__u32 r = (__u32)a + b;

	return (__u16)((r & 0xffff) + (r >> 16));
}

static __always_inline void csum_replace2(__u16 *sum, __u16 from, __u16 to)
{
	*sum = ~csum16_add(csum16_add(~*sum, ~from), to);
}

static __always_inline void csum_replace4(__u16 *sum, __be32 from, __be32 to)
{
	csum_replace2(sum, (__u16)(from >> 16), (__u16)(to >> 16));
	csum_replace2(sum, (__u16)from, (__u16)to);
}

/*
 * UDP checksum computed from scratch. Frames leaving by XDP_REDIRECT become
 * CHECKSUM_NONE skbs at the receiver, which verifies them; the arriving
 * checksum may have been a CHECKSUM_PARTIAL seed (veth, tun, virtio with
 * offloads) that XDP cannot tell apart from a complete one, so an incremental
 * update would be wrong there. Datagrams are at most EH_UDP_MAX bytes here.
 */
#define EH_UDP_MAX	(8 + 1472)

static __always_inline int udp_csum_full(struct iphdr *ip, struct udphdr *udp,
					 void *data_end)
{
	__u32 len = bpf_ntohs(udp->len), sum;
	__u16 *p = (void *)udp;

	/* Scalars only: see parse_request(). */
	if (len < sizeof(*udp) || len > EH_UDP_MAX || len > (__u64)(data_end - (void *)udp))
		return -1;
	sum = (ip->saddr >> 16) + (ip->saddr & 0xffff) + (ip->daddr >> 16) +
	      (ip->daddr & 0xffff) + bpf_htons(IPPROTO_UDP) + udp->len;
	udp->check = 0;
	for (int i = 0; i < EH_UDP_MAX / 2; i++) {
		if ((__u32)i * 2 + 2 > len || (void *)(p + 1) > data_end)
			break;
		sum += *p++;
	}
	if ((len & 1) && (void *)p + 1 <= data_end)
		sum += *(__u8 *)p;	/* the odd byte, zero-padded (network order) */
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	/*
	 * 16 bits before the test: a sum that folds to 0xffff gives a zero
	 * checksum, sent as 0xffff (RFC 768: zero means "none"). Found by
	 * bpf_fuzz: the 32-bit ~sum was never zero, and 0 went out.
	 */
	sum = (__u16)~sum;
	udp->check = sum ? sum : 0xffff;
	return 0;
}

struct req_info {
	struct iphdr *ip;
	struct udphdr *udp;
	struct eh_hdr *eh;
	__u32 payload_off;	/* offset of the UDP payload in the frame */
	__u32 payload_len;	/* UDP payload bytes */
};

enum parse_res {
	PARSE_NOT_OURS,		/* not addressed to the VIP:port: pass untouched */
	PARSE_MALFORMED,	/* addressed to the VIP:port, not a valid request */
	PARSE_OK,
};

/*
 * Is this frame an offload request to VIP:port? Checks every length against
 * the frame and against the other lengths, so a field that lies is caught
 * before anything is rewritten or copied.
 */
static __always_inline enum parse_res parse_request(void *data, void *data_end,
						    const struct eh_cfg *cfg,
						    struct req_info *ri)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	struct eh_hdr *eh;
	__u32 ihl, tot_len, udp_len;

	if ((void *)(eth + 1) > data_end)
		return PARSE_NOT_OURS;
	/* VLAN-tagged, IPv6, ARP...: not steered (the radio side is untagged IPv4). */
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PARSE_NOT_OURS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return PARSE_NOT_OURS;
	if (ip->daddr != cfg->vip || ip->protocol != IPPROTO_UDP)
		return PARSE_NOT_OURS;
	/* From here on the packet claims to be ours: every defect is malformed. */
	ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < sizeof(*ip))
		return PARSE_MALFORMED;
	/* Offload requests fit in one frame; a fragment is never one. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return PARSE_MALFORMED;
	/*
	 * Lengths from the packet are compared as scalars, never added to a
	 * packet pointer: verifiers before 6.10 lose a value's bounds through
	 * the byte swap, and refuse the pointer arithmetic.
	 */
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < ihl + sizeof(*udp) ||
	    sizeof(*eth) + (__u64)tot_len > (__u64)(data_end - data))
		return PARSE_MALFORMED;
	udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > data_end)
		return PARSE_MALFORMED;
	if (udp->dest != cfg->vip_port)
		return PARSE_NOT_OURS;
	udp_len = bpf_ntohs(udp->len);
	if (udp_len != tot_len - ihl || udp_len < sizeof(*udp) + sizeof(*eh))
		return PARSE_MALFORMED;
	eh = (void *)(udp + 1);
	if ((void *)(eh + 1) > data_end)
		return PARSE_MALFORMED;
	if (eh->magic != bpf_htonl(EH_MAGIC) || eh->version != EH_VERSION ||
	    eh->type != EH_T_SVCQ)
		return PARSE_MALFORMED;
	if (bpf_ntohl(eh->len) > udp_len - sizeof(*udp) - sizeof(*eh))
		return PARSE_MALFORMED;

	ri->ip = ip;
	ri->udp = udp;
	ri->eh = eh;
	ri->payload_off = (void *)eh - data;
	ri->payload_len = udp_len - sizeof(*udp);
	return PARSE_OK;
}

/*
 * One program source for both hooks: the radio and WAN programs run at XDP
 * (native, on NICs that have it) or at TC ingress (on veth, where XDP costs
 * more than it saves), chosen by the loader (--attach). The logic below takes
 * the hook as a constant (@tc); once inlined into a program, the other hook's
 * branches are gone before the verifier sees them. What differs:
 *   - verdicts (XDP_* / TC_ACT_*);
 *   - copying the request (bpf_xdp_load_bytes / bpf_skb_load_bytes);
 *   - rewrites: XDP writes the packet and computes the UDP checksum whole on
 *     redirect (it cannot see the checksum state); TC uses the checksum
 *     helpers, which keep the skb's state (CHECKSUM_PARTIAL or COMPLETE)
 *     right, so nothing is summed whole. Helpers that write invalidate packet
 *     pointers: everything needed afterwards is read first;
 *   - leaving: XDP redirects the frame to the interface's transmit; TC enters
 *     a veth peer's ingress directly when the loader says the peer is in
 *     another namespace (bpf_redirect_peer), and lets the kernel resolve a
 *     next hop not resolved yet (bpf_redirect_neigh) instead of passing.
 */
#define V_PASS(tc)	((tc) ? TC_ACT_OK : XDP_PASS)
#define V_DROP(tc)	((tc) ? TC_ACT_SHOT : XDP_DROP)

struct pkt {
	void *ctx;		/* struct xdp_md or struct __sk_buff */
	void *data, *data_end;
	__u32 ingress_ifindex;
	__u64 bytes;		/* frame length, for the counters */
};

static __always_inline void pkt_init(struct pkt *p, void *ctx, const bool tc)
{
	p->ctx = ctx;
	if (tc) {
		struct __sk_buff *skb = ctx;
		__u32 want = sizeof(struct ethhdr) + 60 + sizeof(struct udphdr) +
			     sizeof(struct eh_hdr);

		/* Headers in the linear part, for direct access (GRO'd, paged skbs). */
		if (skb->data + want > skb->data_end && skb->len > skb->data_end - skb->data)
			bpf_skb_pull_data(skb, skb->len < want ? skb->len : want);
		p->data = (void *)(long)skb->data;
		p->data_end = (void *)(long)skb->data_end;
		p->ingress_ifindex = skb->ifindex;	/* at ingress: where it arrived */
		p->bytes = skb->len;
	} else {
		struct xdp_md *xdp = ctx;

		p->data = (void *)(long)xdp->data;
		p->data_end = (void *)(long)xdp->data_end;
		p->ingress_ifindex = xdp->ingress_ifindex;
		p->bytes = p->data_end - p->data;
	}
}

/*
 * Copy the request into the MUD's replay buffer. Returns 0 when buffered; on
 * failure the MUD's entry is flagged so the controller learns that the buffer
 * is incomplete (never silent).
 */
static __always_inline int buffer_request(struct pkt *p, const bool tc, struct req_info *ri,
					  struct eh_mud_dp *md, __u8 forwarded)
{
	struct eh_replay_rec *rec;
	__u32 len = ri->payload_len;
	__u64 bytes = p->bytes;
	void *ring;
	long err;

	if (len > EH_REPLAY_MAX) {
		count(EH_C_TOO_BIG, bytes);
		__sync_fetch_and_add(&md->too_big, 1);
		__sync_fetch_and_add(&md->lost_buf, 1);
		return -1;
	}
	ring = bpf_map_lookup_elem(&eh_replay_rings, &ri->ip->saddr);
	rec = ring ? bpf_ringbuf_reserve(ring, sizeof(*rec), 0) : NULL;
	if (!rec) {
		count(ring ? EH_C_RING_FULL : EH_C_NO_RING, bytes);
		/*
		 * Only a forwarded request is lost to the new container; one
		 * that was only to be buffered is dropped: the MUD retransmits.
		 * No ring (the controller is changing the MUD's mode) is a
		 * full one.
		 */
		if (forwarded)
			__sync_fetch_and_add(&md->overflow, 1);
		__sync_fetch_and_add(&md->lost_buf, 1);
		return -1;
	}
	rec->ts_ns = bpf_ktime_get_ns();
	rec->mud_addr = ri->ip->saddr;
	rec->mud_id = bpf_ntohl(ri->eh->mud_id);
	rec->seq = bpf_ntohl(ri->eh->seq);
	rec->mud_port = ri->udp->source;
	rec->forwarded = forwarded;
	rec->pad[0] = rec->pad[1] = rec->pad[2] = 0;
	rec->len = len;
	/* The verifier needs the copy length bounded by data[]'s size. */
	len &= 0x7ff;
	if (len == 0 || len > EH_REPLAY_MAX)
		err = -1;
	else if (tc)
		err = bpf_skb_load_bytes(p->ctx, ri->payload_off, rec->data, len);
	else
		err = bpf_xdp_load_bytes(p->ctx, ri->payload_off, rec->data, len);
	if (err) {
		bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);
		count(EH_C_MALFORMED, bytes);
		return -1;
	}
	bpf_ringbuf_submit(rec, 0);
	count(EH_C_BUFFERED, bytes);
	__sync_fetch_and_add(&md->buffered, 1);
	return 0;
}

/* What forward() needs of a request, read before a TC rewrite invalidates ri. */
struct fwd_info {
	__be32 saddr;
	__u8 tos, ttl;
	__u16 tot_len;		/* host order */
	__u32 udp_off;
};

/*
 * TC: the IP and UDP headers again (helpers that write invalidate packet
 * pointers), at the offsets parsed before (@ihl: 20..60).
 */
static __always_inline int tc_headers(struct __sk_buff *skb, __u32 ihl, struct ethhdr **ethp,
				      struct iphdr **ipp, struct udphdr **udpp)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end)
		return -1;
	udp = (void *)ip + (ihl & 0x3c);
	if ((void *)(udp + 1) > data_end)
		return -1;
	*ethp = eth;
	*ipp = ip;
	*udpp = udp;
	return 0;
}

/*
 * TC: one end of a UDP/IPv4 datagram (@dst: the destination, else the
 * source) from @from:@fport to @to:@port. The UDP checksum goes through the
 * helpers, which know the skb's checksum state (a CHECKSUM_PARTIAL seed sums
 * the pseudo-header only, a COMPLETE sum covers the checksum field itself);
 * the address, the port and the IP checksum are written directly, two stores
 * instead of five helper calls per packet: each change within a header is
 * offset by that header's checksum, so a COMPLETE sum stays right. Packet
 * pointers are invalid afterwards. Returns 0, or -1 if a helper failed.
 */
static __always_inline int tc_rewrite(struct __sk_buff *skb, __u32 ihl, const bool dst,
				      __be32 from, __be32 to, __be16 fport, __be16 port)
{
	__u32 check_off = sizeof(struct ethhdr) + ihl + offsetof(struct udphdr, check);
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;

	if (bpf_l4_csum_replace(skb, check_off, from, to,
				BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | sizeof(to)) ||
	    bpf_l4_csum_replace(skb, check_off, fport, port, BPF_F_MARK_MANGLED_0 | sizeof(port)) ||
	    tc_headers(skb, ihl, &eth, &ip, &udp))
		return -1;
	if (dst) {
		ip->daddr = to;
		udp->dest = port;
	} else {
		ip->saddr = to;
		udp->source = port;
	}
	csum_replace4(&ip->check, from, to);
	return 0;
}

/*
 * TC: the frame is leaving by redirect: TTL decremented (as the kernel's
 * forwarding path would), IP checksum kept, and the next hop's MACs unless
 * @fib is NULL (the neighbour code writes them). Direct stores.
 */
static __always_inline int tc_next_hop(struct __sk_buff *skb, __u32 ihl,
				       const struct bpf_fib_lookup *fib)
{
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;

	if (tc_headers(skb, ihl, &eth, &ip, &udp))
		return -1;
	csum_replace2(&ip->check, bpf_htons((__u16)ip->ttl << 8),
		      bpf_htons((__u16)(ip->ttl - 1) << 8));
	ip->ttl--;
	if (fib) {
		__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	}
	return 0;
}

/*
 * VIP:port -> @to:@port, checksums updated incrementally (a zero UDP checksum
 * means "none" and stays so). TC: see tc_rewrite; packet pointers are
 * invalid afterwards. Returns 0, or -1 if a helper failed.
 */
static __always_inline int rewrite_dst(struct pkt *p, const bool tc, struct req_info *ri,
				       __be32 to, __be16 port)
{
	struct iphdr *ip = ri->ip;
	struct udphdr *udp = ri->udp;
	__be32 old_daddr = ip->daddr;
	__be16 old_dport = udp->dest;

	if (tc)
		return tc_rewrite(p->ctx, ri->payload_off - sizeof(*udp) - sizeof(struct ethhdr),
				  true, old_daddr, to, old_dport, port);
	ip->daddr = to;
	csum_replace4(&ip->check, old_daddr, to);
	udp->dest = port;
	if (udp->check) {
		csum_replace4(&udp->check, old_daddr, to);
		csum_replace2(&udp->check, old_dport, port);
		if (!udp->check)
			udp->check = 0xffff;
	}
	return 0;
}

/*
 * The frame is leaving by redirect: TTL decremented (as the kernel's
 * forwarding path would), the next hop's MACs, and in XDP the UDP checksum
 * computed whole (see udp_csum_full). Returns 0, or -1: then the kernel's path
 * takes it, with the XDP frame unchanged.
 */
static __always_inline int prepare_redirect(struct pkt *p, const bool tc,
					    const struct fwd_info *fi,
					    const struct bpf_fib_lookup *fib)
{
	if (tc) {
		return tc_next_hop(p->ctx, fi->udp_off - sizeof(struct ethhdr), fib);
	} else {
		struct xdp_md *xdp = p->ctx;
		void *data = (void *)(long)xdp->data, *data_end = (void *)(long)xdp->data_end;
		struct ethhdr *eth = data;
		struct iphdr *ip = (void *)(eth + 1);
		struct udphdr *udp;

		if ((void *)(ip + 1) > data_end || fi->udp_off > 14 + 60)
			return -1;
		udp = data + fi->udp_off;
		if ((void *)(udp + 1) > data_end || udp_csum_full(ip, udp, data_end))
			return -1;
		csum_replace2(&ip->check, bpf_htons((__u16)ip->ttl << 8),
			      bpf_htons((__u16)(ip->ttl - 1) << 8));
		ip->ttl--;
		__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
		return 0;
	}
}

/*
 * Out of @ifindex, a frame prepared by prepare_redirect(). At TC, when the
 * interface is a veth whose peer is in another namespace (@peer, from the
 * loader), straight into the peer's ingress: no qdisc, no veth transmit, no
 * backlog queue and second softirq pass, the cheapest hop between namespaces
 * the kernel has. Otherwise an ordinary redirect to the interface's egress.
 */
static __always_inline int redirect_out(const bool tc, __u32 ifindex, bool peer,
					__u32 peer_counter, __u64 bytes)
{
	if (tc && peer) {
		count(peer_counter, bytes);
		return bpf_redirect_peer(ifindex, 0);
	}
	return bpf_redirect(ifindex, 0);
}

/*
 * Send the rewritten request out of the WAN interface, in the kernel. The FIB
 * gives the next hop. Its neighbour not resolved yet: at TC the kernel's
 * neighbour code resolves it and sends the frame (bpf_redirect_neigh, with
 * the FIB's gateway); at XDP the kernel's forwarding path takes it (pass), as
 * it does anything whose next hop is not on the WAN interface.
 */
static __always_inline int forward(struct pkt *p, const bool tc, const struct fwd_info *fi,
				   __be32 daddr, const struct eh_cfg *cfg)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_UDP;
	fib.tos = fi->tos;
	fib.tot_len = fi->tot_len;
	fib.ipv4_src = fi->saddr;
	fib.ipv4_dst = daddr;
	fib.ifindex = p->ingress_ifindex;

	rc = bpf_fib_lookup(p->ctx, &fib, sizeof(fib), 0);
	/* An expiring TTL goes the kernel's way too: it sends the ICMP error. */
	if (fib.ifindex != cfg->wan_ifindex || fi->ttl <= 1)
		goto slow;
	if (tc && rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		struct bpf_redir_neigh nh = {
			.nh_family = AF_INET,
			.ipv4_nh = fib.ipv4_dst,	/* the gateway, after the lookup */
		};

		if (tc_next_hop(p->ctx, fi->udp_off - sizeof(struct ethhdr), NULL))
			goto slow;
		count(EH_C_FORWARD, p->bytes);
		count(EH_C_FWD_NEIGH, p->bytes);
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS || prepare_redirect(p, tc, fi, &fib))
		goto slow;
	count(EH_C_FORWARD, p->bytes);
	return redirect_out(tc, fib.ifindex, cfg->flags & EH_CFG_WAN_PEER, EH_C_FWD_PEER,
			    p->bytes);
slow:
	count(EH_C_FWD_SLOW, p->bytes);
	return V_PASS(tc);
}

/*
 * The MUD's counters; the entry is created here if the controller has not
 * (NOEXIST never overwrites one that another CPU created meanwhile).
 */
static __always_inline struct eh_mud_dp *mud_dp(__be32 addr)
{
	struct eh_mud_dp *md = bpf_map_lookup_elem(&eh_mud_dp, &addr);
	struct eh_mud_dp zero = {};

	if (md)
		return md;
	bpf_map_update_elem(&eh_mud_dp, &addr, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&eh_mud_dp, &addr);
}

/* The radio side: steer offload requests per MUD (either hook). */
static __always_inline int radio(void *ctx, const bool tc)
{
	struct req_info ri = {};
	struct fwd_info fi = {};
	struct eh_steer_ctl *st;
	struct eh_mud_dp *md;
	struct eh_cfg *cfg;
	struct pkt p;
	__u32 zero = 0;
	int verdict;

	pkt_init(&p, ctx, tc);
	count(EH_C_RX, p.bytes);
	cfg = bpf_map_lookup_elem(&eh_config, &zero);
	if (!cfg || !cfg->vip)
		goto pass;

	switch (parse_request(p.data, p.data_end, cfg, &ri)) {
	case PARSE_NOT_OURS:
		goto pass;
	case PARSE_MALFORMED:
		count(EH_C_MALFORMED, p.bytes);
		return V_PASS(tc);
	case PARSE_OK:
		break;
	}

	st = bpf_map_lookup_elem(&eh_steer, &ri.ip->saddr);
	if (!st || st->mode == EH_MODE_NONE || st->mode >= EH_MODE_MAX)
		goto pass;
	if (st->mud_id && st->mud_id != bpf_ntohl(ri.eh->mud_id)) {
		/* Someone else's request from this MUD's address: not steered. */
		count(EH_C_MALFORMED, p.bytes);
		return V_PASS(tc);
	}
	md = mud_dp(ri.ip->saddr);
	if (!md) {
		/* eh_mud_dp full: cannot record a loss, so never risk one. */
		count(EH_C_MALFORMED, p.bytes);
		return V_PASS(tc);
	}
	__sync_fetch_and_add(&md->rx, 1);
	md->last_seq = bpf_ntohl(ri.eh->seq);

	switch (st->mode) {
	case EH_MODE_LOCAL:
		rewrite_dst(&p, tc, &ri, st->backend_addr, st->backend_port);
		count(EH_C_LOCAL, p.bytes);
		__sync_fetch_and_add(&md->delivered, 1);
		return V_PASS(tc);
	case EH_MODE_FWD_BUF:
		/* Forwarded even if the copy fails: CT-x still serves it. */
		buffer_request(&p, tc, &ri, md, 1);
		/* fallthrough */
	case EH_MODE_FORWARD:
		fi.saddr = ri.ip->saddr;
		fi.tos = ri.ip->tos;
		fi.ttl = ri.ip->ttl;
		fi.tot_len = bpf_ntohs(ri.ip->tot_len);
		fi.udp_off = ri.payload_off - sizeof(struct udphdr);
		if (rewrite_dst(&p, tc, &ri, st->backend_addr, st->backend_port)) {
			count(EH_C_MALFORMED, p.bytes);
			return V_DROP(tc);
		}
		verdict = forward(&p, tc, &fi, st->backend_addr, cfg);
		__sync_fetch_and_add(&md->delivered, 1);
		return verdict;
	case EH_MODE_BUF_ONLY:
		/*
		 * Nothing may reach CT-y ahead of the replay: a request that
		 * cannot be buffered is dropped (counted, flagged); the MUD
		 * retransmits it after its timeout.
		 */
		if (buffer_request(&p, tc, &ri, md, 0))
			count(EH_C_BUF_DROP, p.bytes);
		return V_DROP(tc);
	}
pass:
	count(EH_C_PASS, p.bytes);
	return V_PASS(tc);
}

SEC("xdp")
int eh_xdp_radio(struct xdp_md *ctx)
{
	return radio(ctx, false);
}

SEC("tc")
int eh_tc_radio(struct __sk_buff *skb)
{
	return radio(skb, true);
}

/*
 * Who may answer a steered MUD "from the VIP": only its registered backend
 * (address and port), or the backend before the last switch (its answers
 * still in flight). A datagram from a service port (the backend's, the
 * previous backend's or the VIP's) that is from neither is somebody posing as
 * the service, or a container that is not the MUD's backend (yet): counted,
 * never rewritten, and dropped by TC egress (see eh_tc_radio_egress).
 */
enum answer_src {
	ANSWER_OTHER,		/* not an answer: pass untouched, uncounted */
	ANSWER_BACKEND,		/* rewrite to VIP:port */
	ANSWER_FOREIGN,		/* a service port from an unregistered address */
};

static __always_inline enum answer_src answer_src(const struct eh_steer_ctl *st,
						  const struct eh_cfg *cfg,
						  __be32 saddr, __be16 sport)
{
	if (saddr == st->backend_addr && sport == st->backend_port && st->backend_addr)
		return ANSWER_BACKEND;
	if (saddr == st->prev_addr && sport == st->prev_port && st->prev_addr)
		return ANSWER_BACKEND;
	if (sport == st->backend_port || sport == cfg->vip_port ||
	    (st->prev_addr && sport == st->prev_port))
		return ANSWER_FOREIGN;
	return ANSWER_OTHER;
}

/*
 * The WAN side (either hook): the fast return path, answers from a MUD's
 * remote container straight to the radio from VIP:port.
 */
static __always_inline int wan(void *ctx, const bool tc)
{
	struct bpf_fib_lookup fib = {};
	struct fwd_info fi = {};
	struct eh_steer_ctl *st;
	struct eh_cfg *cfg;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;
	struct pkt p;
	__u32 zero = 0, ihl;
	__be32 old_saddr, vip;
	__be16 old_sport, vip_port;

	cfg = bpf_map_lookup_elem(&eh_config, &zero);
	if (!cfg || !(cfg->flags & EH_CFG_FAST_RETURN) || !cfg->vip)
		return V_PASS(tc);
	pkt_init(&p, ctx, tc);
	eth = p.data;
	if ((void *)(eth + 1) > p.data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return V_PASS(tc);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > p.data_end || ip->protocol != IPPROTO_UDP ||
	    ip->version != 4 || ip->ihl < 5 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) ||
	    ip->saddr == cfg->vip || ip->ttl <= 1)
		return V_PASS(tc);
	ihl = (ip->ihl * 4) & 0x3c;
	udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > p.data_end)
		return V_PASS(tc);
	st = bpf_map_lookup_elem(&eh_steer, &ip->daddr);
	if (!st)
		return V_PASS(tc);
	/* A foreign one is counted (and dropped) once, by TC egress on its way to the radio. */
	if (answer_src(st, cfg, ip->saddr, udp->source) != ANSWER_BACKEND)
		return V_PASS(tc);

	/* Only when the MUD is right behind the radio; else TC egress rewrites. */
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_UDP;
	fib.tos = ip->tos;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = p.ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS ||
	    fib.ifindex != cfg->radio_ifindex)
		return V_PASS(tc);

	old_saddr = ip->saddr;
	old_sport = udp->source;
	vip = cfg->vip;
	vip_port = cfg->vip_port;
	fi.ttl = ip->ttl;
	fi.udp_off = sizeof(*eth) + ihl;
	if (tc) {
		if (tc_rewrite(ctx, ihl, false, old_saddr, vip, old_sport, vip_port) ||
		    prepare_redirect(&p, tc, &fi, &fib))
			return TC_ACT_SHOT;
	} else {
		__u16 old_check = ip->check;

		ip->saddr = vip;
		udp->source = vip_port;
		csum_replace4(&ip->check, old_saddr, vip);
		if (prepare_redirect(&p, tc, &fi, &fib)) {
			/*
			 * Too long to checksum here (checksum untouched): TC
			 * egress rewrites it. Passed as it came, byte for byte:
			 * the old IP checksum put back, not updated back (an
			 * update there and back turns 0xffff into 0; found by
			 * bpf_fuzz).
			 */
			ip = (void *)((struct ethhdr *)p.data + 1);
			if ((void *)(ip + 1) > p.data_end)
				return XDP_PASS;
			udp = (void *)ip + ihl;
			if ((void *)(udp + 1) > p.data_end)
				return XDP_PASS;
			ip->saddr = old_saddr;
			udp->source = old_sport;
			ip->check = old_check;
			return XDP_PASS;
		}
	}
	count(EH_C_RET_FAST, p.bytes);
	return redirect_out(tc, fib.ifindex, cfg->flags & EH_CFG_RADIO_PEER, EH_C_RET_PEER,
			    p.bytes);
}

SEC("xdp")
int eh_xdp_wan(struct xdp_md *ctx)
{
	return wan(ctx, false);
}

SEC("tc")
int eh_tc_wan(struct __sk_buff *skb)
{
	return wan(skb, true);
}

/*
 * Answers to a steered MUD leave the radio interface with VIP:port as their
 * source, whichever of its containers produced them. Only UDP from the MUD's
 * backend (or previous backend) address and port to a MUD with a steering
 * entry is rewritten; see answer_src().
 *
 * A datagram to a steered MUD from a service port but not from its backend
 * (ANSWER_FOREIGN) is dropped: a steered MUD only ever hears the service
 * from VIP:port. Besides posers, this is what a container restored from a
 * checkpoint sends before its cut-over: CRIU resumes the service where the
 * checkpoint caught it, possibly between receiving a request of the MUD
 * (forwarded to CT-x) and sending its answer, so CT-y answers that request
 * from its own address while the MUD's entry still names CT-x (which,
 * left running, answers it too, from the VIP). Passed, it reached the MUD
 * as a foreign datagram.
 */
SEC("tc")
int eh_tc_radio_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	struct eh_steer_ctl *st;
	struct eh_cfg *cfg;
	__u32 zero = 0, ihl;
	__be32 old_saddr, vip;
	__be16 old_sport, vip_port;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip) || (ip->frag_off & bpf_htons(IP_OFFSET)))
		return TC_ACT_OK;
	cfg = bpf_map_lookup_elem(&eh_config, &zero);
	if (!cfg || !cfg->vip || ip->saddr == cfg->vip)
		return TC_ACT_OK;
	st = bpf_map_lookup_elem(&eh_steer, &ip->daddr);
	if (!st)
		return TC_ACT_OK;
	ihl &= 0x3f;
	udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	switch (answer_src(st, cfg, ip->saddr, udp->source)) {
	case ANSWER_BACKEND:
		break;
	case ANSWER_FOREIGN:
		count(EH_C_TX_FOREIGN, skb->len);
		return TC_ACT_SHOT;
	default:
		return TC_ACT_OK;
	}

	old_saddr = ip->saddr;
	old_sport = udp->source;
	vip = cfg->vip;
	vip_port = cfg->vip_port;
	/*
	 * The helpers handle a locally generated answer (CHECKSUM_PARTIAL) as
	 * well as a forwarded one; BPF_F_MARK_MANGLED_0 keeps a zero UDP
	 * checksum meaning "none".
	 */
	if (tc_rewrite(skb, ihl, false, old_saddr, vip, old_sport, vip_port))
		return TC_ACT_SHOT;
	count(EH_C_TX_REWRITE, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
