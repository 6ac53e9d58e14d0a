// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop AP dataplane.
 *
 *   eh_xdp_radio   XDP on the radio-side interface (where MUDs' frames arrive):
 *                  steers offload requests (UDP to VIP:port carrying struct
 *                  eh_hdr) per MUD: LOCAL, FORWARD, FORWARD+BUFFER, BUFFER-ONLY.
 *   eh_tc_radio_egress
 *                  TC egress on the same interface: answers from a MUD's
 *                  container (local or remote) leave with the VIP as source.
 *   eh_xdp_wan     XDP on the inter-AP interface: answers from a remote
 *                  container to a steered MUD go straight to the radio
 *                  interface with VIP:port as source (fast return path, when
 *                  enabled); everything else passes. Being attached also lets
 *                  the interface take frames eh_xdp_radio redirects into it
 *                  (most drivers allocate their XDP transmit queues only then;
 *                  a veth needs an XDP program, or GRO, on its *peer*).
 *
 * Everything the programs do not recognise as theirs passes untouched.
 */
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

/* The replay buffer: struct eh_replay_rec records; size set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EH_RING_DEFAULT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eh_replay SEC(".maps");

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
	udp->check = ~sum ? ~sum : 0xffff;
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
 * Copy the request into the replay buffer. Returns 0 when buffered; on failure
 * the MUD's entry is flagged so the controller learns that the buffer is
 * incomplete (never silent).
 */
static __always_inline int buffer_request(struct xdp_md *ctx, struct req_info *ri,
					  struct eh_mud_dp *md, __u8 forwarded,
					  __u64 bytes)
{
	struct eh_replay_rec *rec;
	__u32 len = ri->payload_len;

	if (len > EH_REPLAY_MAX) {
		count(EH_C_TOO_BIG, bytes);
		__sync_fetch_and_add(&md->too_big, 1);
		__sync_fetch_and_add(&md->lost_buf, 1);
		return -1;
	}
	rec = bpf_ringbuf_reserve(&eh_replay, sizeof(*rec), 0);
	if (!rec) {
		count(EH_C_RING_FULL, bytes);
		/*
		 * Only a forwarded request is lost to the new container; one
		 * that was only to be buffered is dropped: the MUD retransmits.
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
	if (len == 0 || len > EH_REPLAY_MAX ||
	    bpf_xdp_load_bytes(ctx, ri->payload_off, rec->data, len)) {
		bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);
		count(EH_C_MALFORMED, bytes);
		return -1;
	}
	bpf_ringbuf_submit(rec, 0);
	count(EH_C_BUFFERED, bytes);
	__sync_fetch_and_add(&md->buffered, 1);
	return 0;
}

/* VIP:port -> backend, with the IP and UDP checksums updated incrementally. */
static __always_inline void rewrite_dst(struct req_info *ri, const struct eh_steer_ctl *st)
{
	struct iphdr *ip = ri->ip;
	struct udphdr *udp = ri->udp;
	__be32 old_daddr = ip->daddr;
	__be16 old_dport = udp->dest;

	ip->daddr = st->backend_addr;
	csum_replace4(&ip->check, old_daddr, st->backend_addr);
	udp->dest = st->backend_port;
	/* A zero UDP checksum means "none" and stays so. */
	if (udp->check) {
		csum_replace4(&udp->check, old_daddr, st->backend_addr);
		csum_replace2(&udp->check, old_dport, st->backend_port);
		if (!udp->check)
			udp->check = 0xffff;
	}
}

/*
 * Send the rewritten request out of the WAN interface, in the kernel. The FIB
 * gives the next hop; if it is not on the WAN interface, or its neighbour is
 * not resolved yet, the kernel's forwarding path takes the packet (XDP_PASS).
 */
static __always_inline int forward(struct xdp_md *ctx, struct req_info *ri,
				   const struct eh_cfg *cfg, __u64 bytes)
{
	struct bpf_fib_lookup fib = {};
	struct ethhdr *eth = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	long rc;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_UDP;
	fib.tos = ri->ip->tos;
	fib.tot_len = bpf_ntohs(ri->ip->tot_len);
	fib.ipv4_src = ri->ip->saddr;
	fib.ipv4_dst = ri->ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	/* An expiring TTL goes the kernel's way too: it sends the ICMP error. */
	if (rc != BPF_FIB_LKUP_RET_SUCCESS || fib.ifindex != cfg->wan_ifindex ||
	    ri->ip->ttl <= 1) {
		count(EH_C_FWD_SLOW, bytes);
		return XDP_PASS;
	}
	if (udp_csum_full(ri->ip, ri->udp, data_end)) {
		count(EH_C_FWD_SLOW, bytes);
		return XDP_PASS;
	}
	/* As the kernel's forwarding path would. */
	csum_replace2(&ri->ip->check, bpf_htons((__u16)ri->ip->ttl << 8),
		      bpf_htons((__u16)(ri->ip->ttl - 1) << 8));
	ri->ip->ttl--;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	count(EH_C_FORWARD, bytes);
	return bpf_redirect(fib.ifindex, 0);
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

SEC("xdp")
int eh_xdp_radio(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct req_info ri = {};
	struct eh_steer_ctl *st;
	struct eh_mud_dp *md;
	struct eh_cfg *cfg;
	__u32 zero = 0;
	int verdict;

	count(EH_C_RX, bytes);
	cfg = bpf_map_lookup_elem(&eh_config, &zero);
	if (!cfg || !cfg->vip)
		goto pass;

	switch (parse_request(data, data_end, cfg, &ri)) {
	case PARSE_NOT_OURS:
		goto pass;
	case PARSE_MALFORMED:
		count(EH_C_MALFORMED, bytes);
		return XDP_PASS;
	case PARSE_OK:
		break;
	}

	st = bpf_map_lookup_elem(&eh_steer, &ri.ip->saddr);
	if (!st || st->mode == EH_MODE_NONE || st->mode >= EH_MODE_MAX)
		goto pass;
	if (st->mud_id && st->mud_id != bpf_ntohl(ri.eh->mud_id)) {
		/* Someone else's request from this MUD's address: not steered. */
		count(EH_C_MALFORMED, bytes);
		return XDP_PASS;
	}
	md = mud_dp(ri.ip->saddr);
	if (!md) {
		/* eh_mud_dp full: cannot record a loss, so never risk one. */
		count(EH_C_MALFORMED, bytes);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&md->rx, 1);
	md->last_seq = bpf_ntohl(ri.eh->seq);

	switch (st->mode) {
	case EH_MODE_LOCAL:
		rewrite_dst(&ri, st);
		count(EH_C_LOCAL, bytes);
		__sync_fetch_and_add(&md->delivered, 1);
		return XDP_PASS;
	case EH_MODE_FWD_BUF:
		/* Forwarded even if the copy fails: CT-x still serves it. */
		buffer_request(ctx, &ri, md, 1, bytes);
		/* fallthrough */
	case EH_MODE_FORWARD:
		rewrite_dst(&ri, st);
		verdict = forward(ctx, &ri, cfg, bytes);
		if (verdict != XDP_ABORTED)
			__sync_fetch_and_add(&md->delivered, 1);
		return verdict;
	case EH_MODE_BUF_ONLY:
		/*
		 * Nothing may reach CT-y ahead of the replay: a request that
		 * cannot be buffered is dropped (counted, flagged); the MUD
		 * retransmits it after its timeout.
		 */
		if (buffer_request(ctx, &ri, md, 0, bytes))
			count(EH_C_BUF_DROP, bytes);
		return XDP_DROP;
	}
pass:
	count(EH_C_PASS, bytes);
	return XDP_PASS;
}

/*
 * Who may answer a steered MUD "from the VIP": only its registered backend
 * (address and port), or the backend before the last switch (its answers
 * still in flight). A datagram from a service port (the backend's, the
 * previous backend's or the VIP's) that is from neither is somebody posing as
 * the service: counted, never rewritten.
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

SEC("xdp")
int eh_xdp_wan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	struct ethhdr *eth = data;
	struct eh_steer_ctl *st;
	struct eh_cfg *cfg;
	struct iphdr *ip;
	struct udphdr *udp;
	__u32 zero = 0, ihl;
	__be32 old_saddr;
	__be16 old_sport;

	cfg = bpf_map_lookup_elem(&eh_config, &zero);
	if (!cfg || !(cfg->flags & EH_CFG_FAST_RETURN) || !cfg->vip)
		return XDP_PASS;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP ||
	    ip->version != 4 || ip->ihl < 5 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) ||
	    ip->saddr == cfg->vip || ip->ttl <= 1)
		return XDP_PASS;
	ihl = (ip->ihl * 4) & 0x3c;
	udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	st = bpf_map_lookup_elem(&eh_steer, &ip->daddr);
	if (!st)
		return XDP_PASS;
	/* A foreign one is counted once, by TC egress on its way to the radio. */
	if (answer_src(st, cfg, ip->saddr, udp->source) != ANSWER_BACKEND)
		return XDP_PASS;

	/* Only when the MUD is right behind the radio; else TC egress rewrites. */
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_UDP;
	fib.tos = ip->tos;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS ||
	    fib.ifindex != cfg->radio_ifindex)
		return XDP_PASS;

	old_saddr = ip->saddr;
	old_sport = udp->source;
	ip->saddr = cfg->vip;
	udp->source = cfg->vip_port;
	if (udp_csum_full(ip, udp, data_end)) {
		/* Too long to checksum here (checksum untouched): TC egress rewrites it. */
		ip->saddr = old_saddr;
		udp->source = old_sport;
		return XDP_PASS;
	}
	csum_replace4(&ip->check, old_saddr, cfg->vip);
	csum_replace2(&ip->check, bpf_htons((__u16)ip->ttl << 8),
		      bpf_htons((__u16)(ip->ttl - 1) << 8));
	ip->ttl--;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	count(EH_C_RET_FAST, data_end - data);
	return bpf_redirect(fib.ifindex, 0);
}

/*
 * Answers to a steered MUD leave the radio interface with VIP:port as their
 * source, whichever of its containers produced them. Only UDP from the MUD's
 * backend (or previous backend) address and port to a MUD with a steering
 * entry is touched; see answer_src().
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
	__u32 zero = 0, ihl, ip_off, udp_off;
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
		return TC_ACT_OK;
	default:
		return TC_ACT_OK;
	}

	old_saddr = ip->saddr;
	old_sport = udp->source;
	vip = cfg->vip;
	vip_port = cfg->vip_port;
	ip_off = sizeof(*eth);
	udp_off = ip_off + ihl;

	/*
	 * The helpers handle a locally generated answer (CHECKSUM_PARTIAL) as
	 * well as a forwarded one; BPF_F_MARK_MANGLED_0 keeps a zero UDP
	 * checksum meaning "none".
	 */
	if (bpf_l4_csum_replace(skb, udp_off + offsetof(struct udphdr, check),
				old_saddr, vip,
				BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | sizeof(vip)) ||
	    bpf_l4_csum_replace(skb, udp_off + offsetof(struct udphdr, check),
				old_sport, vip_port,
				BPF_F_MARK_MANGLED_0 | sizeof(vip_port)) ||
	    bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check),
				old_saddr, vip, sizeof(vip)) ||
	    bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, saddr),
				&vip, sizeof(vip), 0) ||
	    bpf_skb_store_bytes(skb, udp_off + offsetof(struct udphdr, source),
				&vip_port, sizeof(vip_port), 0))
		return TC_ACT_SHOT;
	count(EH_C_TX_REWRITE, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
