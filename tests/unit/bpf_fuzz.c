// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Fuzz target for the dataplane programs (docs/dataplane.md): random and
 * mutated frames through BPF_PROG_TEST_RUN, into every program at both hooks
 * (eh_xdp_radio, eh_tc_radio, eh_xdp_wan, eh_tc_wan, eh_tc_radio_egress), a
 * fixed number of frames each. After every frame an oracle written here from
 * the documented contract, not from the program, checks:
 *
 *   - the verdict is one the program documents for that hook;
 *   - a frame that is not ours comes out byte for byte as it went in;
 *   - a frame that is ours is either counted malformed (or passed) and
 *     unchanged, or rewritten: only the fields the contract says, lengths
 *     kept, every other byte equal, checksums correct (the UDP checksum of
 *     an XDP redirect is computed whole; elsewhere a checksum is updated
 *     incrementally, so an incorrect one stays exactly as incorrect: the
 *     receiver drops it as it would have the original);
 *   - the counters moved exactly as the outcome says, no other;
 *   - the rings hold only records of steered MUDs in a buffering mode, each
 *     the very request that made it.
 *
 * Half the frames run as if the veths' peers were in other namespaces (TC
 * redirects into the peer); one MUD's backend has no resolved neighbour (TC
 * hands the frame to the kernel's neighbour code, XDP to its slow path).
 *
 * Seeded PRNG; the seed is printed. EDGEHOP_FUZZ_SEED and EDGEHOP_FUZZ_ITERS
 * (frames per program) override the defaults. A failing frame is printed in
 * hex with its iteration, so that it can become a case in bpf_dataplane.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tap.h"
#include "edgehop_proto.h"
#include "eh_dp.h"
#include "eh_wire.h"
#include "edgehop.skel.h"
#include "bpf_instance.h"

#define VIP		"10.200.0.1"
#define VPORT		7777
#define BACKEND		"10.1.0.2"
#define BPORT		8888
#define PREV		"10.1.0.3"	/* previous backend of some MUDs */
#define PPORT		9999
#define FOREIGN		"10.1.0.9"	/* somebody posing as the service */
#define UNRESOLVED	"10.1.0.4"	/* a backend whose neighbour is not resolved */
#define RING_BYTES	(64u << 10)	/* ~43 records: fills and drains often */
#define REC_BYTES	((sizeof(struct eh_replay_rec) + 8 + 7) & ~7ul)	/* with its header */
#define MAX_FRAME	1700
#define ITERS_DEFAULT	20000

/* The MUDs: one per steering mode, and one without a mud_id check. */
static const struct mud {
	const char *addr;
	enum eh_mode mode;
	uint32_t mud_id;
	bool prev;		/* switched from PREV:PPORT to BACKEND:BPORT */
	const char *backend;	/* NULL: BACKEND */
} muds[] = {
	{ "10.0.0.100", EH_MODE_LOCAL, 1, true, NULL },
	{ "10.0.0.101", EH_MODE_FORWARD, 2, false, NULL },
	{ "10.0.0.102", EH_MODE_FWD_BUF, 3, true, NULL },
	{ "10.0.0.103", EH_MODE_BUF_ONLY, 4, false, NULL },
	{ "10.0.0.104", EH_MODE_NONE, 5, false, NULL },
	{ "10.0.0.105", EH_MODE_FWD_BUF, 0, false, NULL },
	{ "10.0.0.106", EH_MODE_FORWARD, 6, false, UNRESOLVED },
};
#define NMUDS	(sizeof(muds) / sizeof(muds[0]))
#define UNKNOWN_MUD	"10.0.0.99"

static struct edgehop_bpf *skel;
static __u32 cfg_flags;		/* of the frame being run (peer redirects or not) */
static struct eh_dp dp;
static int wan_idx, radio_idx;
static uint8_t wan_mac[6] = { 2, 0, 0, 0, 0, 0xaa }, prev_mac[6] = { 2, 0, 0, 0, 0, 0xab };

/* A reader on each buffering MUD's ring; records read ahead, consumed on drains. */
static struct ringr {
	struct eh_ring r;
	unsigned long pos;	/* read up to here */
	bool open;
} rings[NMUDS];

static __be32 ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* --- PRNG (splitmix64: the seed alone reproduces a run) --- */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t rn(uint32_t n) { return n ? rnd() % n : 0; }
static bool chance(uint32_t pct) { return rn(100) < pct; }

/* --- checksums from first principles ---------------------------------- */


/* The IPv4 header's sum (0xffff, or 0 for all zeros, when correct), mod 0xffff. */
static uint32_t ip_sum(const uint8_t *ip, size_t ihl)
{
	return sum16(ip, ihl, 0) % 0xffff;
}

/*
 * The UDP datagram's sum with its pseudo-header, mod 0xffff (0: correct), over
 * what the frame holds of the length the UDP header claims (an incremental
 * update keeps the sum over any range that covers the fields it changes).
 */
static uint32_t udp_sum(const uint8_t *ip, const uint8_t *udp, size_t avail)
{
	size_t ulen = udp[4] << 8 | udp[5];
	uint32_t ps = 0;

	ps = sum16(ip + 12, 8, 0) + IPPROTO_UDP + ulen;
	size_t n = ulen < avail ? ulen : avail;

	return sum16(udp, n < 8 ? 8 : n, ps) % 0xffff;	/* the header at least */
}

static void fix_csums(uint8_t *f, size_t len)
{
	size_t ihl, ulen;
	uint8_t *ip = f + 14, *udp;

	if (len < 34 || f[12] != 0x08 || f[13] != 0x00)
		return;
	ihl = (ip[0] & 0xf) * 4;
	if (ihl < 20 || 14 + ihl > len)
		return;
	ip[10] = ip[11] = 0;
	uint16_t c = ~sum16(ip, ihl, 0);

	ip[10] = c >> 8, ip[11] = c;
	if (ip[9] != IPPROTO_UDP || 14 + ihl + 8 > len)
		return;
	udp = ip + ihl;
	ulen = udp[4] << 8 | udp[5];
	if (ulen < 8 || 14 + ihl + ulen > len || (!udp[6] && !udp[7] && chance(30)))
		return;	/* some keep "no checksum" */
	udp[6] = udp[7] = 0;
	c = ~sum16(udp, ulen, sum16(ip + 12, 8, 0) + IPPROTO_UDP + ulen);
	if (!c)
		c = 0xffff;
	udp[6] = c >> 8, udp[7] = c;
}

/* --- frames ----------------------------------------------------------- */

struct spec {
	__be32 src, dst;
	uint16_t sport, dport;
	uint8_t type;
	uint32_t mud_id, seq;
	int body, opt_words;
	bool no_udp_csum;
};

static size_t build(uint8_t *buf, const struct spec *s)
{
	int ihl = 20 + 4 * s->opt_words;
	uint8_t *ip = buf + 14, *udp = ip + ihl;
	struct eh_hdr *eh = (void *)(udp + 8);
	size_t ulen = 8 + sizeof(*eh) + s->body;

	memset(buf, 0, 14 + ihl + ulen);
	memcpy(buf, "\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00", 14);
	ip[0] = 0x40 | ihl / 4;
	ip[2] = (20 + 4 * s->opt_words + ulen) >> 8;
	ip[3] = 20 + 4 * s->opt_words + ulen;
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, &s->src, 4);
	memcpy(ip + 16, &s->dst, 4);
	memset(ip + 20, 1, 4 * s->opt_words);	/* IPOPT_NOOP */
	udp[0] = s->sport >> 8, udp[1] = s->sport;
	udp[2] = s->dport >> 8, udp[3] = s->dport;
	udp[4] = ulen >> 8, udp[5] = ulen;
	eh_hdr_init(eh, s->type, 0, s->mud_id, s->seq, 0, s->body);
	for (int i = 0; i < s->body; i++)
		((uint8_t *)(eh + 1))[i] = rnd();
	if (!s->no_udp_csum)
		udp[6] = 1;	/* fix_csums computes it */
	fix_csums(buf, 14 + ihl + ulen);
	return 14 + ihl + ulen;
}

static int rand_body(void)
{
	switch (rn(10)) {
	case 0: return EH_REPLAY_MAX - 32 + rn(3);	/* around the largest record */
	case 1: return rn(1440);
	default: return rn(64);
	}
}

static const struct mud *rand_mud(void) { return &muds[rn(NMUDS)]; }

static __be32 rand_mud_addr(void)
{
	return chance(90) ? ip4(rand_mud()->addr) : ip4(UNKNOWN_MUD);
}

/* A seed frame, like the cases of bpf_dataplane.c. */
static size_t seed(uint8_t *f)
{
	struct spec s = { .type = EH_T_SVCQ, .seq = rn(1000), .body = rand_body(),
			  .opt_words = chance(80) ? 0 : rn(11), .no_udp_csum = chance(10) };
	const struct mud *m = rand_mud();
	size_t len;

	switch (rn(10)) {
	case 0: case 1: case 2: case 3: case 4:	/* a request to the VIP */
		s.src = chance(90) ? ip4(m->addr) : ip4(UNKNOWN_MUD);
		s.dst = ip4(VIP);
		s.sport = 40000 + rn(3);
		s.dport = chance(95) ? VPORT : rn(65536);
		s.mud_id = chance(85) ? m->mud_id : rn(8);
		break;
	case 5: case 6: case 7: {			/* an answer to a MUD */
		static const char *const srcs[] = { BACKEND, PREV, FOREIGN, VIP, UNRESOLVED };
		static const uint16_t ports[] = { BPORT, PPORT, VPORT, 53 };

		s.src = ip4(srcs[rn(5)]);
		s.sport = ports[rn(4)];
		s.dst = rand_mud_addr();
		s.dport = 40000;
		s.type = EH_T_SVCR;
		s.mud_id = m->mud_id;
		s.body = chance(90) ? 72 : rand_body();
		break;
	}
	case 8:						/* random bytes */
		len = 14 + rn(MAX_FRAME - 14);
		for (size_t i = 0; i < len; i++)
			f[i] = rnd();
		if (chance(50))
			f[12] = 0x08, f[13] = 0;
		return len;
	default: {					/* other link types */
		static const uint16_t types[] = { 0x86dd, 0x8100, 0x0806, 0x88a8 };

		s.src = ip4(m->addr);
		s.dst = ip4(VIP);
		s.sport = 40000;
		s.dport = VPORT;
		s.mud_id = m->mud_id;
		len = build(f + 4, &s);
		memcpy(f, "\x02\0\0\0\0\x01\x02\0\0\0\0\x02", 12);
		f[12] = types[rn(4)] >> 8, f[13] = types[rn(4)] & 0xff;
		f[14] = 0x08, f[15] = 0;
		return len + 4 > MAX_FRAME ? MAX_FRAME : len + 4;
	}
	}
	return build(f, &s);
}

/* Offsets worth hitting: the header fields the programs read. */
static size_t hot_offset(const uint8_t *f, size_t len)
{
	static const uint8_t ip_fields[] = { 0, 2, 3, 6, 7, 8, 9, 10, 12, 15, 16, 19 };
	size_t ihl = len > 14 ? (f[14] & 0xf) * 4 : 20, off;

	switch (rn(5)) {
	case 0: off = 12 + rn(2); break;				/* ethertype */
	case 1: off = 14 + ip_fields[rn(sizeof(ip_fields))]; break;	/* IPv4 */
	case 2: off = 14 + ihl + rn(8); break;				/* UDP */
	case 3: off = 14 + ihl + 8 + rn(32); break;			/* eh_hdr */
	default: off = rn(len); break;
	}
	return off < len ? off : rn(len);
}

static size_t mutate(uint8_t *f, size_t len)
{
	static const uint8_t interesting[] = { 0, 1, 4, 5, 0x0f, 0x10, 0x20, 0x3f, 0x40, 0x45,
					       0x46, 0x4f, 0x7f, 0x80, 0xfe, 0xff };
	int n = 1 + rn(4);

	while (n--) {
		size_t off = hot_offset(f, len);

		switch (rn(8)) {
		case 0: f[off] ^= 1 << rn(8); break;
		case 1: f[off] = interesting[rn(sizeof(interesting))]; break;
		case 2: f[off] = rnd(); break;
		case 3:						/* a 16-bit length */
			if (off + 1 < len) {
				uint16_t v = (f[off] << 8 | f[off + 1]) + (int)rn(17) - 8;

				if (chance(30))
					v = rn(2) ? 0xffff : rn(64);
				f[off] = v >> 8, f[off + 1] = v;
			}
			break;
		case 4:						/* truncate */
			len = 14 + rn(len - 13);
			break;
		case 5:						/* extend */
			while (len < MAX_FRAME && chance(90))
				f[len++] = rnd();
			break;
		case 6:						/* frame from elsewhere */
			f[off] = f[rn(len)];
			break;
		default:					/* shift the payload */
			if (len + 4 <= MAX_FRAME && off < len) {
				memmove(f + off + 4, f + off, len - off);
				len += 4;
			}
			break;
		}
		if (len < 14)
			len = 14;
	}
	if (chance(60))
		fix_csums(f, len);
	return len;
}

/* --- the dataplane under test ------------------------------------------ */

static int make_fib_netns(void)
{
	static const char *const neigh[] = {
		BACKEND " lladdr 02:00:00:00:00:aa dev eh-wan",
		PREV " lladdr 02:00:00:00:00:ab dev eh-wan",
	};
	char cmd[256];
	int r = bpf_fib_netns(neigh, 2, &wan_idx, &radio_idx);

	if (r)
		return r;
	/* Every MUD's neighbour resolved but the unknown one's. */
	for (size_t i = 0; i < NMUDS; i++) {
		snprintf(cmd, sizeof(cmd),
			 "ip neigh add %s lladdr 02:00:00:00:01:%02zx dev eh-radio nud permanent",
			 muds[i].addr, i);
		if (system(cmd))
			return -EIO;
	}
	return 0;
}

static int setup(void)
{
	struct eh_cfg cfg = { .vip = ip4(VIP), .vip_port = htons(VPORT),
			      .ring_bytes = RING_BYTES, .flags = EH_CFG_FAST_RETURN };
	struct in_addr b = { ip4(BACKEND) }, pb = { ip4(PREV) };
	int err;

	cfg.wan_ifindex = wan_idx;
	cfg.radio_ifindex = radio_idx;
	err = bpf_instance_open(&skel, &dp, &cfg);
	if (err)
		return err;
	for (size_t i = 0; i < NMUDS; i++) {
		struct in_addr m = { ip4(muds[i].addr) };

		b.s_addr = ip4(muds[i].backend ? muds[i].backend : BACKEND);
		if (muds[i].prev)
			err = eh_dp_steer_set(&dp, m, EH_MODE_LOCAL, pb, PPORT, muds[i].mud_id);
		if (!err)
			err = eh_dp_steer_set(&dp, m, muds[i].mode, b, BPORT, muds[i].mud_id);
		if (!err && (muds[i].mode == EH_MODE_FWD_BUF || muds[i].mode == EH_MODE_BUF_ONLY)) {
			err = eh_dp_ring_open(&dp, m, &rings[i].r);
			rings[i].open = !err;
			rings[i].pos = eh_ring_consumed(&rings[i].r);
		}
		if (err)
			return err;
	}
	return 0;
}

static const struct mud *find_mud(__be32 a)
{
	for (size_t i = 0; i < NMUDS; i++)
		if (ip4(muds[i].addr) == a)
			return &muds[i];
	return NULL;
}

/* --- the oracle ------------------------------------------------------- */

enum prog { P_XDP_RADIO, P_TC_RADIO, P_XDP_WAN, P_TC_WAN, P_TC_EGRESS, P_MAX };
static const char *const prog_names[P_MAX] = {
	"eh_xdp_radio", "eh_tc_radio", "eh_xdp_wan", "eh_tc_wan", "eh_tc_radio_egress"
};

static bool is_tc(enum prog p) { return p != P_XDP_RADIO && p != P_XDP_WAN; }

struct frame {
	const uint8_t *f;
	size_t len;
	uint32_t ihl;		/* of an IPv4 frame */
};

static uint32_t be16(const uint8_t *p) { return p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static __be32 addr_at(const uint8_t *p) { __be32 a; memcpy(&a, p, 4); return a; }

enum rclass { R_NOT_OURS, R_MALFORMED, R_PASS, R_STEER };

/*
 * The radio side's contract (docs/dataplane.md "What passes untouched"):
 * not UDP/IPv4 to VIP:port passes; to VIP:port but not a valid request is
 * malformed; a valid request of an unknown or inactive MUD passes; of
 * another MUD's id, malformed.
 */
static enum rclass radio_class(const struct frame *fr, const struct mud **mp)
{
	const uint8_t *f = fr->f, *ip = f + 14, *udp, *eh;
	uint32_t ihl, tot, ulen;
	const struct mud *m;

	*mp = NULL;
	if (fr->len < 34 || be16(f + 12) != ETH_P_IP)
		return R_NOT_OURS;
	if (addr_at(ip + 16) != ip4(VIP) || ip[9] != IPPROTO_UDP)
		return R_NOT_OURS;
	ihl = (ip[0] & 0xf) * 4;
	if (ip[0] >> 4 != 4 || ihl < 20)
		return R_MALFORMED;
	if (be16(ip + 6) & 0x3fff)
		return R_MALFORMED;
	tot = be16(ip + 2);
	if (tot < ihl + 8 || 14 + tot > fr->len)
		return R_MALFORMED;
	if (14 + ihl + 8 > fr->len)
		return R_MALFORMED;
	udp = ip + ihl;
	if (be16(udp + 2) != VPORT)
		return R_NOT_OURS;
	ulen = be16(udp + 4);
	if (ulen != tot - ihl || ulen < 8 + 32)
		return R_MALFORMED;
	eh = udp + 8;
	if (14 + ihl + 8 + 32 > fr->len)
		return R_MALFORMED;
	if (be32(eh) != EH_MAGIC || eh[4] != EH_VERSION || eh[5] != EH_T_SVCQ)
		return R_MALFORMED;
	if (be32(eh + 24) > ulen - 8 - 32)
		return R_MALFORMED;
	m = find_mud(addr_at(ip + 12));
	if (!m || m->mode == EH_MODE_NONE)
		return R_PASS;
	if (m->mud_id && m->mud_id != be32(eh + 8))
		return R_MALFORMED;
	*mp = m;
	return R_STEER;
}

static __be32 backend_of(const struct mud *m)
{
	return ip4(m->backend ? m->backend : BACKEND);
}

static bool unresolved(const struct mud *m)
{
	return m->backend && !strcmp(m->backend, UNRESOLVED);
}

enum answer { A_OTHER, A_BACKEND, A_FOREIGN };

/* docs/dataplane.md "Who may answer from the VIP". */
static enum answer answer_of(const struct mud *m, __be32 saddr, uint16_t sport)
{
	if (saddr == backend_of(m) && sport == BPORT)
		return A_BACKEND;
	if (m->prev && saddr == ip4(PREV) && sport == PPORT)
		return A_BACKEND;
	if (sport == BPORT || sport == VPORT || (m->prev && sport == PPORT))
		return A_FOREIGN;
	return A_OTHER;
}

/* Bytes outside the fields a rewrite may change are equal. */
struct mask { size_t off, n; };

static bool equal_but(const uint8_t *a, const uint8_t *b, size_t len, const struct mask *m,
		      size_t nm)
{
	for (size_t i = 0; i < len; i++) {
		bool skip = false;

		for (size_t j = 0; j < nm; j++)
			skip |= i >= m[j].off && i < m[j].off + m[j].n;
		if (!skip && a[i] != b[i])
			return false;
	}
	return true;
}

static char why[512];

#define FAIL(...) do { snprintf(why, sizeof(why), __VA_ARGS__); return false; } while (0)

/*
 * How a rewritten frame leaves: delivered by the kernel (nothing more), or
 * redirected with the next hop's MACs and the TTL decremented, or handed to
 * the kernel's neighbour code (TC, bpf_redirect_neigh: TTL only, the kernel
 * writes the MACs).
 */
enum redir { R_NONE, R_FULL, R_NEIGH };

/*
 * A rewritten datagram: only @mask's bytes changed; the field at @addr_off /
 * @port_off holds @addr/@port; checksums as the hook's method leaves them.
 */
static bool check_rewrite(const struct frame *in, const uint8_t *out, enum redir how, bool xdp,
			  size_t addr_off, __be32 addr, size_t port_off, uint16_t port)
{
	size_t ihl = in->ihl, udp = 14 + ihl;
	const uint8_t *iip = in->f + 14, *oip = out + 14;
	bool redirect = how != R_NONE;
	struct mask m[] = { { 14 + 8, 1 }, { 14 + 10, 2 }, { addr_off, 4 }, { port_off, 2 },
			    { udp + 6, 2 }, { 0, how == R_FULL ? 12 : 0 } };
	size_t avail = in->len - udp;

	if (!equal_but(in->f, out, in->len, m, sizeof(m) / sizeof(m[0])))
		FAIL("bytes outside the rewritten fields changed");
	if (addr_at(out + addr_off) != addr || be16(out + port_off) != port)
		FAIL("not rewritten to the expected address/port");
	if (oip[8] != iip[8] - (redirect ? 1 : 0))
		FAIL("TTL %u -> %u", iip[8], oip[8]);
	if (how == R_FULL) {
		const uint8_t *mac = addr == ip4(PREV) ? prev_mac : wan_mac;

		if (addr_off == 14 + 12) {	/* an answer: to the MUD's MAC */
			const struct mud *mm = find_mud(addr_at(out + 14 + 16));
			uint8_t want[6] = { 2, 0, 0, 0, 1, (uint8_t)(mm ? mm - muds : 0xff) };

			if (memcmp(out, want, 6))
				FAIL("not to the MUD's MAC");
		} else if (memcmp(out, mac, 6)) {
			FAIL("not to the backend's MAC");
		}
	}
	if (ip_sum(oip, ihl) != ip_sum(iip, ihl))
		FAIL("IP checksum: sum %#x in, %#x out", ip_sum(iip, ihl), ip_sum(oip, ihl));
	if (!in->f[udp + 6] && !in->f[udp + 7] && !(redirect && xdp)) {
		if (out[udp + 6] || out[udp + 7])
			FAIL("a zero UDP checksum did not stay zero");
	} else if (redirect && xdp) {
		if ((!out[udp + 6] && !out[udp + 7]) || udp_sum(oip, out + udp, avail))
			FAIL("XDP redirect: UDP checksum not computed whole");
	} else {
		if (!out[udp + 6] && !out[udp + 7])
			FAIL("a UDP checksum became zero (none)");
		if (udp_sum(oip, out + udp, avail) != udp_sum(iip, in->f + udp, avail))
			FAIL("UDP checksum: sum %#x in, %#x out", udp_sum(iip, in->f + udp, avail),
			     udp_sum(oip, out + udp, avail));
	}
	return true;
}

/* Counter deltas of one frame, and the records it left. */
struct effect {
	struct eh_datarec c[EH_C_MAX];
	int nrec;
	int rec_mud;			/* index of the ring that got it */
	const struct eh_replay_rec *rec;
	size_t backlog_before[NMUDS];
};

static bool only(const struct effect *e, const int *want, size_t n)
{
	for (int i = 0; i < EH_C_MAX; i++) {
		__u64 w = 0;

		if (i == EH_C_RX)
			continue;	/* checked apart: the radio counts every frame */
		for (size_t j = 0; j < n; j++)
			w += want[j] == i;
		if (e->c[i].packets != w) {
			snprintf(why, sizeof(why), "counter %s moved by %llu, expected %llu",
				 eh_counter_name(i), (unsigned long long)e->c[i].packets,
				 (unsigned long long)w);
			return false;
		}
	}
	return true;
}

#define ONLY(e, ...) only(e, (const int[]){ __VA_ARGS__ }, \
			  sizeof((const int[]){ __VA_ARGS__ }) / sizeof(int))

static bool unchanged(const struct frame *in, const uint8_t *out, __u32 olen)
{
	if (olen != in->len || memcmp(in->f, out, in->len))
		FAIL("frame changed (%u bytes out of %zu in)", olen, in->len);
	return true;
}

static bool check_radio(enum prog p, const struct frame *in, const uint8_t *out, __u32 olen,
			int rc, const struct effect *e)
{
	bool tc = is_tc(p);
	int pass = tc ? TC_ACT_OK : XDP_PASS, drop = tc ? TC_ACT_SHOT : XDP_DROP;
	int redirect = tc ? TC_ACT_REDIRECT : XDP_REDIRECT;
	const struct mud *m;
	enum rclass cls = radio_class(in, &m);
	int buf = -1;	/* the buffering outcome's counter */

	if (rc != pass && rc != drop && rc != redirect)
		FAIL("verdict %d is none of the documented ones", rc);
	if (e->c[EH_C_RX].packets != 1)
		FAIL("rx moved by %llu", (unsigned long long)e->c[EH_C_RX].packets);
	if (cls != R_STEER) {
		if (e->nrec)
			FAIL("a record for a frame that was not a steered request");
		if (rc != pass)
			FAIL("verdict %d for a frame not steered", rc);
		if (!unchanged(in, out, olen))
			return false;
		return cls == R_MALFORMED ? ONLY(e, EH_C_MALFORMED) : ONLY(e, EH_C_PASS);
	}

	/* A valid request of a steered MUD. */
	size_t udp = 14 + in->ihl;
	uint32_t plen = be16(in->f + udp + 4) - 8;
	bool buffering = m->mode == EH_MODE_FWD_BUF || m->mode == EH_MODE_BUF_ONLY;

	if (buffering) {
		if (plen > EH_REPLAY_MAX)
			buf = EH_C_TOO_BIG;
		else if (e->nrec)
			buf = EH_C_BUFFERED;
		else
			buf = EH_C_RING_FULL;
		if (buf == EH_C_RING_FULL &&
		    e->backlog_before[m - muds] + REC_BYTES < RING_BYTES)
			FAIL("not buffered though the ring had room (backlog %zu)",
			     e->backlog_before[m - muds]);
		if (e->nrec > 1 || (e->nrec && (e->rec_mud != m - muds || plen > EH_REPLAY_MAX)))
			FAIL("%d records, in ring %d", e->nrec, e->rec_mud);
		if (e->nrec) {
			const struct eh_replay_rec *r = e->rec;

			if (r->mud_addr != ip4(m->addr) || r->mud_id != be32(in->f + udp + 16) ||
			    r->seq != be32(in->f + udp + 20) || r->len != plen ||
			    r->mud_port != htons(be16(in->f + udp)) ||
			    r->forwarded != (m->mode == EH_MODE_FWD_BUF) ||
			    memcmp(r->data, in->f + udp + 8, plen))
				FAIL("the record is not the request");
		}
	} else if (e->nrec) {
		FAIL("a record for a MUD not buffering");
	}
	switch (m->mode) {
	case EH_MODE_LOCAL:
		if (rc != pass)
			FAIL("LOCAL: verdict %d", rc);
		if (!check_rewrite(in, out, R_NONE, !tc, 14 + 16, backend_of(m), udp + 2, BPORT))
			return false;
		return ONLY(e, EH_C_LOCAL);
	case EH_MODE_BUF_ONLY:
		if (rc != drop || !unchanged(in, out, olen))
			FAIL("BUF_ONLY: verdict %d or changed", rc);
		if (buf == EH_C_BUFFERED)
			return ONLY(e, EH_C_BUFFERED);
		return ONLY(e, buf, EH_C_BUF_DROP);
	case EH_MODE_FORWARD:
	case EH_MODE_FWD_BUF:
		if (rc == drop)
			FAIL("FORWARD: dropped");
		if (rc == redirect && in->f[14 + 8] <= 1)
			FAIL("FORWARD: redirected with TTL %u (the kernel sends the ICMP error)",
			     in->f[14 + 8]);
		if (rc == redirect && unresolved(m) && !tc)
			FAIL("XDP redirected towards a next hop not resolved");
		{
			/*
			 * The outcome's counters: slow path; a redirect (and
			 * at TC into the peer, or through the neighbour code).
			 */
			enum redir how = rc != redirect ? R_NONE : unresolved(m) ? R_NEIGH : R_FULL;
			int c1 = how == R_NONE ? EH_C_FWD_SLOW : EH_C_FORWARD;
			int c2 = how == R_NEIGH ? EH_C_FWD_NEIGH :
				 how == R_FULL && tc && (cfg_flags & EH_CFG_WAN_PEER) ? EH_C_FWD_PEER : -1;

			if (!check_rewrite(in, out, how, !tc, 14 + 16, backend_of(m), udp + 2, BPORT))
				return false;
			if (m->mode == EH_MODE_FORWARD)
				return ONLY(e, c1, c2);
			return ONLY(e, c1, c2, buf);
		}
	default:
		FAIL("mode %d steered", m->mode);
	}
}

/* WAN ingress (fast return on): answers from a MUD's backend go to the radio from the VIP. */
static bool check_wan(enum prog p, const struct frame *in, const uint8_t *out, __u32 olen,
		      int rc, const struct effect *e)
{
	bool tc = is_tc(p);
	int pass = tc ? TC_ACT_OK : XDP_PASS, redirect = tc ? TC_ACT_REDIRECT : XDP_REDIRECT;
	const uint8_t *f = in->f, *ip = f + 14;
	const struct mud *m = NULL;
	bool ours = false;

	if (rc != pass && rc != redirect && !(tc && rc == TC_ACT_SHOT))
		FAIL("verdict %d is none of the documented ones", rc);
	if (e->nrec || e->c[EH_C_RX].packets)
		FAIL("the WAN side buffered or counted rx");
	if (in->len >= 34 && be16(f + 12) == ETH_P_IP && ip[9] == IPPROTO_UDP && ip[0] >> 4 == 4 &&
	    in->ihl >= 20 && !(be16(ip + 6) & 0x3fff) && addr_at(ip + 12) != ip4(VIP) &&
	    ip[8] > 1 && 14 + in->ihl + 8 <= in->len) {
		m = find_mud(addr_at(ip + 16));
		ours = m && answer_of(m, addr_at(ip + 12), be16(ip + in->ihl)) == A_BACKEND;
	}
	if (!ours && rc != pass)
		FAIL("verdict %d for a frame not ours", rc);
	if (rc != redirect) {
		if (!unchanged(in, out, olen))
			return false;
		return ONLY(e, -1);
	}
	if (!check_rewrite(in, out, R_FULL, !tc, 14 + 12, ip4(VIP), 14 + in->ihl, VPORT))
		return false;
	if (tc && (cfg_flags & EH_CFG_RADIO_PEER))
		return ONLY(e, EH_C_RET_FAST, EH_C_RET_PEER);
	return ONLY(e, EH_C_RET_FAST);
}

/* TC egress on the radio: answers from the backend leave from the VIP. */
static bool check_egress(const struct frame *in, const uint8_t *out, __u32 olen, int rc,
			 const struct effect *e)
{
	const uint8_t *f = in->f, *ip = f + 14;
	enum answer a = A_OTHER;
	const struct mud *m;

	if (rc != TC_ACT_OK && rc != TC_ACT_SHOT)
		FAIL("verdict %d is none of the documented ones", rc);
	if (e->nrec || e->c[EH_C_RX].packets)
		FAIL("egress buffered or counted rx");
	if (in->len >= 34 && be16(f + 12) == ETH_P_IP && ip[9] == IPPROTO_UDP && in->ihl >= 20 &&
	    !(be16(ip + 6) & 0x1fff) && addr_at(ip + 12) != ip4(VIP) &&
	    (m = find_mud(addr_at(ip + 16))) && 14 + in->ihl + 8 <= in->len)
		a = answer_of(m, addr_at(ip + 12), be16(ip + in->ihl));
	if (a == A_FOREIGN) {
		/* Posing as the service, or not the MUD's backend (yet): dropped. */
		if (rc != TC_ACT_SHOT)
			FAIL("verdict %d for a foreign datagram to a steered MUD (not dropped)", rc);
		if (!unchanged(in, out, olen))
			return false;
		return ONLY(e, EH_C_TX_FOREIGN);
	}
	if (a != A_BACKEND) {
		if (rc != TC_ACT_OK)
			FAIL("verdict %d for a frame not ours", rc);
		if (!unchanged(in, out, olen))
			return false;
		return ONLY(e, -1);
	}
	if (rc != TC_ACT_OK)
		FAIL("an answer from the backend dropped");
	if (!check_rewrite(in, out, R_NONE, false, 14 + 12, ip4(VIP), 14 + in->ihl, VPORT))
		return false;
	return ONLY(e, EH_C_TX_REWRITE);
}

/* --- the run ------------------------------------------------------------ */

static int prog_fd(enum prog p)
{
	switch (p) {
	case P_XDP_RADIO: return bpf_program__fd(skel->progs.eh_xdp_radio);
	case P_TC_RADIO: return bpf_program__fd(skel->progs.eh_tc_radio);
	case P_XDP_WAN: return bpf_program__fd(skel->progs.eh_xdp_wan);
	case P_TC_WAN: return bpf_program__fd(skel->progs.eh_tc_wan);
	default: return bpf_program__fd(skel->progs.eh_tc_radio_egress);
	}
}

static int run_prog(enum prog p, const uint8_t *in, size_t len, uint8_t *out, __u32 *olen)
{
	int ifindex = p == P_XDP_WAN || p == P_TC_WAN ? wan_idx : radio_idx;
	struct xdp_md md = { .data_end = len, .ingress_ifindex = ifindex };
	struct __sk_buff skb = { .ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len,
		    .data_out = out, .data_size_out = 4096, .repeat = 1);

	if (is_tc(p)) {
		o.ctx_in = &skb;
		o.ctx_size_in = sizeof(skb);
	} else {
		o.ctx_in = &md;
		o.ctx_size_in = sizeof(md);
	}
	if (bpf_prog_test_run_opts(prog_fd(p), &o))
		return -errno;
	*olen = o.data_size_out;
	return o.retval;
}

static __u64 totals[EH_C_MAX];

static int set_peer(bool on)
{
	struct eh_cfg cfg;
	__u32 zero = 0;
	__u32 want = on ? EH_CFG_WAN_PEER | EH_CFG_RADIO_PEER : 0;

	if ((cfg_flags & (EH_CFG_WAN_PEER | EH_CFG_RADIO_PEER)) == want)
		return 0;
	if (bpf_map_lookup_elem(dp.config_fd, &zero, &cfg))
		return -errno;
	cfg.flags = (cfg.flags & ~(EH_CFG_WAN_PEER | EH_CFG_RADIO_PEER)) | want;
	if (bpf_map_update_elem(dp.config_fd, &zero, &cfg, 0))
		return -errno;
	cfg_flags = cfg.flags;
	return 0;
}

static void counters_delta(struct eh_datarec d[EH_C_MAX])
{
	struct eh_datarec now[EH_C_MAX];

	eh_dp_counters(&dp, now);
	for (int i = 0; i < EH_C_MAX; i++) {
		d[i].packets = now[i].packets - totals[i];
		totals[i] = now[i].packets;
	}
}

/* New records in every ring; each ring only its MUD's. */
static bool read_rings(struct effect *e)
{
	for (size_t i = 0; i < NMUDS; i++) {
		const struct eh_replay_rec *r;

		if (!rings[i].open)
			continue;
		while ((r = eh_ring_read_at(&rings[i].r, &rings[i].pos))) {
			if (r->mud_addr != ip4(muds[i].addr))
				FAIL("ring of %s holds a record of another address", muds[i].addr);
			if (muds[i].mud_id && r->mud_id != muds[i].mud_id)
				FAIL("ring of %s holds a record of MUD id %u", muds[i].addr, r->mud_id);
			e->nrec++;
			e->rec = r;
			e->rec_mud = i;
		}
	}
	return true;
}

/* Only the buffering MUDs have a ring. */
static int ring_of(void *ctx, struct in_addr mud)
{
	const struct mud *m = find_mud(mud.s_addr);

	(void)ctx;
	return m && (m->mode == EH_MODE_FWD_BUF || m->mode == EH_MODE_BUF_ONLY) ? 0 : -EEXIST;
}

static void drain(void)
{
	for (size_t i = 0; i < NMUDS; i++)
		if (rings[i].open) {
			eh_ring_commit_to(&rings[i].r, rings[i].pos);
		}
}

static void hexdump(const uint8_t *f, size_t len)
{
	char line[100];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		n += snprintf(line + n, sizeof(line) - n, "%02x", f[i]);
		if (i % 32 == 31 || i + 1 == len) {
			tap_diag("  %s", line);
			n = 0;
		}
	}
}

static void fuzz(enum prog p, long iters, uint64_t seed0)
{
	static uint8_t in[MAX_FRAME + 64], out[4096];
	long fails = 0, changed = 0, redirected = 0, refused = 0, malformed0 = totals[EH_C_MALFORMED];
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rng_state = seed0 ^ (0x100000001b3ULL * (p + 1));
	for (long it = 0; it < iters && fails < 3; it++) {
		struct effect e = {};
		struct frame fr;
		__u32 olen = 0;
		size_t len;
		bool ok;
		int rc;

		len = seed(in);
		if (chance(75))
			len = mutate(in, len);
		/* Half the frames as if the WAN's and radio's veth peers were in other namespaces. */
		if (set_peer(chance(50))) {
			fails++;
			tap_diag("couldn't update the configuration");
			break;
		}
		fr.f = in;
		fr.len = len;
		fr.ihl = len > 14 ? (in[14] & 0xf) * 4 : 0;
		for (size_t i = 0; i < NMUDS; i++)
			e.backlog_before[i] = rings[i].open ?
				eh_ring_produced(&rings[i].r) - eh_ring_consumed(&rings[i].r) : 0;
		rc = run_prog(p, in, len, out, &olen);
		/*
		 * The kernel's TC test run refuses an IPv4 or IPv6 frame
		 * shorter than its IP header (EINVAL): such a frame never
		 * reaches the program.
		 */
		if (rc == -EINVAL && is_tc(p) &&
		    ((len < 34 && be16(in + 12) == ETH_P_IP) ||
		     (len < 54 && be16(in + 12) == ETH_P_IPV6))) {
			refused++;
			it--;
			continue;
		}
		counters_delta(e.c);
		ok = rc >= 0 || (snprintf(why, sizeof(why), "test run failed: %s", strerror(-rc)), false);
		ok = ok && read_rings(&e);
		if (ok) {
			switch (p) {
			case P_XDP_RADIO: case P_TC_RADIO:
				ok = check_radio(p, &fr, out, olen, rc, &e);
				break;
			case P_XDP_WAN: case P_TC_WAN:
				ok = check_wan(p, &fr, out, olen, rc, &e);
				break;
			default:
				ok = check_egress(&fr, out, olen, rc, &e);
			}
		}
		if (ok && eh_dp_ring_foreach(&dp, ring_of, NULL))
			ok = false, snprintf(why, sizeof(why), "a ring of a MUD not buffering");
		changed += ok && (olen != len || memcmp(in, out, len));
		redirected += rc == XDP_REDIRECT || rc == TC_ACT_REDIRECT;
		if (!ok) {
			fails++;
			tap_diag("%s: frame %ld (seed %llu): verdict %d: %s", prog_names[p], it,
				 (unsigned long long)seed0, rc, why);
			hexdump(in, len);
			if (olen && (olen != len || memcmp(in, out, len))) {
				tap_diag(" out (%u bytes):", olen);
				hexdump(out, olen < sizeof(out) ? olen : sizeof(out));
			}
		}
		if (!rn(1500))
			drain();	/* now and then: rings fill up in between */
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (refused)
		tap_diag("%s: %ld short IP frames refused by the kernel's test run, replaced",
			 prog_names[p], refused);
	tap_ok(!fails, "%s: %ld frames, every verdict, rewrite, counter and record as documented "
	       "(%ld rewritten, %ld redirected, %llu malformed; %.1f s)", prog_names[p], iters,
	       changed, redirected, (unsigned long long)(totals[EH_C_MALFORMED] - malformed0),
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
}

int main(void)
{
	const char *s = getenv("EDGEHOP_FUZZ_SEED"), *n = getenv("EDGEHOP_FUZZ_ITERS");
	uint64_t seed0 = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	long iters = n ? strtol(n, NULL, 0) : ITERS_DEFAULT;
	struct eh_datarec c[EH_C_MAX];
	int err;

	tap_plan(3 + P_MAX);
	tap_diag("seed %llu (EDGEHOP_FUZZ_SEED=%llu to repeat), %ld frames per program",
		 (unsigned long long)seed0, (unsigned long long)seed0, iters);
	if (geteuid()) {
		tap_diag("needs root (BPF_PROG_TEST_RUN, a network namespace)");
		return 1;
	}
	err = make_fib_netns();
	if (!tap_ok(!err, "private netns: WAN and radio veths, neighbours resolved (%s)",
		    strerror(-err)))
		return tap_done();
	err = setup();
	if (!tap_ok(!err, "programs load; %zu MUDs steered: one per mode, one without a mud-id check, "
		    "one whose backend's neighbour is not resolved (%s)", NMUDS,
		    strerror(-err)))
		return tap_done();
	eh_dp_counters(&dp, c);
	for (int i = 0; i < EH_C_MAX; i++)
		totals[i] = c[i].packets;
	for (enum prog p = 0; p < P_MAX; p++)
		fuzz(p, iters, seed0);
	{
		struct eh_datarec d[EH_C_MAX];

		counters_delta(d);
		tap_ok(totals[EH_C_RING_FULL] && totals[EH_C_BUFFERED] && totals[EH_C_TOO_BIG] &&
		       totals[EH_C_FORWARD] && totals[EH_C_RET_FAST] && totals[EH_C_TX_FOREIGN] &&
		       totals[EH_C_MALFORMED] && totals[EH_C_BUF_DROP] && totals[EH_C_FWD_NEIGH] &&
		       totals[EH_C_FWD_PEER] && totals[EH_C_RET_PEER],
		       "the frames reached every outcome: buffered %llu, ring full %llu, too big %llu, "
		       "forwarded %llu (into the peer %llu, through the neighbour code %llu), "
		       "returned fast %llu (into the peer %llu), foreign %llu, malformed %llu",
		       (unsigned long long)totals[EH_C_BUFFERED],
		       (unsigned long long)totals[EH_C_RING_FULL],
		       (unsigned long long)totals[EH_C_TOO_BIG],
		       (unsigned long long)totals[EH_C_FORWARD],
		       (unsigned long long)totals[EH_C_FWD_PEER],
		       (unsigned long long)totals[EH_C_FWD_NEIGH],
		       (unsigned long long)totals[EH_C_RET_FAST],
		       (unsigned long long)totals[EH_C_RET_PEER],
		       (unsigned long long)totals[EH_C_TX_FOREIGN],
		       (unsigned long long)totals[EH_C_MALFORMED]);
	}
	for (size_t i = 0; i < NMUDS; i++)
		if (rings[i].open)
			eh_ring_close(&rings[i].r);
	edgehop_bpf__destroy(skel);
	return tap_done();
}
