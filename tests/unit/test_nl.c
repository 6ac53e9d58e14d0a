// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * control/nl without a socket: the netem and route requests byte for byte
 * against messages laid out here by hand (offsets and values written out, not
 * built with libmnl), and qdisc dump messages parsed back.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "eh_nl.h"
#include "tap.h"

/* A message laid out by hand, host byte order as netlink is. */
struct hand {
	uint8_t b[512];
	size_t n;
};

static void h8(struct hand *h, uint8_t v) { h->b[h->n++] = v; }
static void h16(struct hand *h, uint16_t v) { memcpy(h->b + h->n, &v, 2); h->n += 2; }
static void h32(struct hand *h, uint32_t v) { memcpy(h->b + h->n, &v, 4); h->n += 4; }
static void h64(struct hand *h, uint64_t v) { memcpy(h->b + h->n, &v, 8); h->n += 8; }
static void hpad(struct hand *h) { while (h->n % 4) h->b[h->n++] = 0; }
static void hset32(struct hand *h, size_t at, uint32_t v) { memcpy(h->b + at, &v, 4); }

/* nlmsghdr with its length patched by hend() */
static void hnl(struct hand *h, uint16_t type, uint16_t flags)
{
	h->n = 0;
	memset(h->b, 0, sizeof(h->b));
	h32(h, 0);		/* nlmsg_len, patched */
	h16(h, type);
	h16(h, flags);
	h32(h, 0);		/* seq */
	h32(h, 0);		/* pid */
}

static void hend(struct hand *h) { hset32(h, 0, h->n); }

static void htcmsg(struct hand *h, int32_t ifindex, uint32_t handle, uint32_t parent)
{
	h8(h, AF_UNSPEC);
	h8(h, 0);
	h16(h, 0);
	h32(h, (uint32_t)ifindex);
	h32(h, handle);
	h32(h, parent);
	h32(h, 0);		/* tcm_info */
}

static void hkind(struct hand *h, const char *kind)
{
	size_t l = strlen(kind) + 1;

	h16(h, 4 + l);
	h16(h, TCA_KIND);
	memcpy(h->b + h->n, kind, l);
	h->n += l;
	hpad(h);
}

/* netem's qopt in its field order: latency, limit, loss, gap, duplicate, jitter */
static void hqopt(struct hand *h, uint32_t lat, uint32_t limit, uint32_t loss, uint32_t jit)
{
	h32(h, lat);
	h32(h, limit);
	h32(h, loss);
	h32(h, 0);
	h32(h, 0);
	h32(h, jit);
}

static void hattr64(struct hand *h, uint16_t type, uint64_t v)
{
	h16(h, 12);
	h16(h, type);
	h64(h, v);
}

static void hrate(struct hand *h, uint32_t rate)
{
	h16(h, 20);
	h16(h, TCA_NETEM_RATE);
	h32(h, rate);
	h32(h, 0);		/* packet_overhead */
	h32(h, 0);		/* cell_size */
	h32(h, 0);		/* cell_overhead */
}

/* same bytes; else say where they first differ */
static int same(const void *got, size_t got_n, const struct hand *want, const char *what)
{
	size_t i;

	if (got_n != want->n) {
		tap_diag("%s: %zu bytes, want %zu", what, got_n, want->n);
		return 0;
	}
	for (i = 0; i < got_n; i++) {
		if (((const uint8_t *)got)[i] != want->b[i]) {
			tap_diag("%s: byte %zu is 0x%02x, want 0x%02x", what, i,
				 ((const uint8_t *)got)[i], want->b[i]);
			return 0;
		}
	}
	return 1;
}

static void test_netem_msg(void)
{
	uint8_t buf[EH_NL_REQ_BYTES];
	struct hand w;
	struct nlmsghdr *nlh;
	const uint16_t req_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	struct eh_netem ne = {
		.delay_ns = 100000000, .jitter_ns = 10000000,
		.rate_Bps = 1000000, .loss_pct = 1.0, .limit = 0,
	};
	size_t opts;

	/* 100 ms, 10 ms, 8 Mbit/s, 1 %, limit derived (110 kB in flight < 1000 frames) */
	memset(buf, 0xa5, sizeof(buf));
	nlh = eh_nl_netem_msg(buf, sizeof(buf), 7, &ne);
	hnl(&w, RTM_NEWQDISC, req_flags);
	htcmsg(&w, 7, 0, TC_H_ROOT);
	hkind(&w, "netem");
	opts = w.n;
	h16(&w, 0);				/* nla_len, patched below */
	h16(&w, TCA_OPTIONS);
	hqopt(&w, 100000000 / 64, 1000, 42949673 /* 1 % of 2^32-1, rounded */, 10000000 / 64);
	hattr64(&w, TCA_NETEM_LATENCY64, 100000000);
	hattr64(&w, TCA_NETEM_JITTER64, 10000000);
	hrate(&w, 1000000);
	memcpy(w.b + opts, &(uint16_t){ w.n - opts }, 2);
	hend(&w);
	tap_ok(w.n == 120 && *(uint16_t *)(w.b + opts) == 72,
	       "hand layout: 120 bytes, TCA_OPTIONS nla_len 72 = 4 + qopt 24 + 12 + 12 + 20");
	tap_ok(nlh && same(nlh, nlh->nlmsg_len, &w, "netem 100ms/10ms/8mbit/1%"),
	       "netem request: tcmsg at root, kind, qopt (ticks, derived limit, loss fraction), LATENCY64, JITTER64, RATE");

	/* above 4 GB/s: RATE64 carries it, RATE says ~0; 100 % loss; explicit limit */
	ne = (struct eh_netem){ .delay_ns = 500000, .rate_Bps = 5000000000ull,
				.loss_pct = 100, .limit = 5000 };
	nlh = eh_nl_netem_msg(buf, sizeof(buf), 3, &ne);
	hnl(&w, RTM_NEWQDISC, req_flags);
	htcmsg(&w, 3, 0, TC_H_ROOT);
	hkind(&w, "netem");
	opts = w.n;
	h16(&w, 0);
	h16(&w, TCA_OPTIONS);
	hqopt(&w, 7812 /* 500000 / 64 */, 5000, 0xffffffff, 0);
	hattr64(&w, TCA_NETEM_LATENCY64, 500000);
	hattr64(&w, TCA_NETEM_JITTER64, 0);
	hattr64(&w, TCA_NETEM_RATE64, 5000000000ull);
	hrate(&w, 0xffffffff);
	memcpy(w.b + opts, &(uint16_t){ w.n - opts }, 2);
	hend(&w);
	tap_ok(nlh && same(nlh, nlh->nlmsg_len, &w, "netem 40gbit"),
	       "netem request above 4 GB/s: RATE64 5e9 and RATE 0xffffffff, nla_len %u covers it",
	       *(uint16_t *)(w.b + opts));

	/* no rate: RATE is still sent (with 0) so that an old rate does not stay */
	ne = (struct eh_netem){ .delay_ns = 1000000 };
	nlh = eh_nl_netem_msg(buf, sizeof(buf), 3, &ne);
	hnl(&w, RTM_NEWQDISC, req_flags);
	htcmsg(&w, 3, 0, TC_H_ROOT);
	hkind(&w, "netem");
	opts = w.n;
	h16(&w, 0);
	h16(&w, TCA_OPTIONS);
	hqopt(&w, 15625, 1000, 0, 0);
	hattr64(&w, TCA_NETEM_LATENCY64, 1000000);
	hattr64(&w, TCA_NETEM_JITTER64, 0);
	hrate(&w, 0);
	memcpy(w.b + opts, &(uint16_t){ w.n - opts }, 2);
	hend(&w);
	tap_ok(nlh && same(nlh, nlh->nlmsg_len, &w, "netem 1ms"),
	       "netem request without a rate sends RATE 0 (the whole state every time)");

	tap_ok(!eh_nl_netem_msg(buf, 100, 3, &ne), "a buffer too small for the request gives NULL");
}

static void test_netem_numbers(void)
{
	struct eh_netem ne = {};

	tap_ok(eh_netem_loss_u32(0) == 0 && eh_netem_loss_u32(1) == 42949673 &&
	       eh_netem_loss_u32(50) == 2147483648u && eh_netem_loss_u32(100) == UINT32_MAX &&
	       eh_netem_loss_u32(150) == UINT32_MAX,
	       "loss %% -> fraction of 2^32-1: 0, 1 %% = 42949673, 50 %% = 2^31, 100 %% = ~0");
	tap_ok(eh_netem_loss_pct(42949673) > 0.99999 && eh_netem_loss_pct(42949673) < 1.00001 &&
	       eh_netem_loss_pct(UINT32_MAX) == 100.0, "fraction -> loss %%");

	tap_ok(eh_netem_limit(&ne) == 1000, "limit without a rate: 1000 (got %u)", eh_netem_limit(&ne));
	ne = (struct eh_netem){ .delay_ns = 100000000, .rate_Bps = 1000000 };
	tap_ok(eh_netem_limit(&ne) == 1000, "limit 8 Mbit/s x 100 ms = 67 frames: the minimum 1000 (got %u)",
	       eh_netem_limit(&ne));
	ne = (struct eh_netem){ .delay_ns = 100000000, .rate_Bps = 125000000 };
	tap_ok(eh_netem_limit(&ne) == 8334, "limit 1 Gbit/s x 100 ms = 12.5 MB = 8334 frames (got %u)",
	       eh_netem_limit(&ne));
	ne = (struct eh_netem){ .delay_ns = 80000000, .jitter_ns = 20000000, .rate_Bps = 125000000 };
	tap_ok(eh_netem_limit(&ne) == 8334, "limit counts delay + jitter (got %u)", eh_netem_limit(&ne));
	ne.limit = 10000;
	tap_ok(eh_netem_limit(&ne) == 10000, "an explicit limit is kept");
	ne = (struct eh_netem){ .delay_ns = 3600000000000ull, .rate_Bps = UINT64_MAX };
	tap_ok(eh_netem_limit(&ne) == UINT32_MAX, "a huge rate x delay caps at 2^32-1, no overflow");
}

/* A qdisc message as the kernel's dump lays it out (netem_dump: qopt, then
 * LATENCY64, JITTER64, RATE, ECN..., nla_len covering all). */
static void hdump(struct hand *h, int32_t ifindex, uint32_t parent, const char *kind,
		  bool lat64, uint64_t rate64)
{
	size_t opts;

	hnl(h, RTM_NEWQDISC, NLM_F_MULTI);
	htcmsg(h, ifindex, 0x80010000, parent);
	hkind(h, kind);
	opts = h->n;
	h16(h, 0);
	h16(h, TCA_OPTIONS);
	/* ticks say 2 ms/1 ms; LATENCY64/JITTER64, when there, say 100 ms/5 ms */
	hqopt(h, 31250, 10000, 0x051eb852 /* 2 % */, 15625);
	if (lat64) {
		hattr64(h, TCA_NETEM_LATENCY64, 100000000);
		hattr64(h, TCA_NETEM_JITTER64, 5000000);
	}
	/* correlations: not ours, skipped */
	h16(h, 16);
	h16(h, TCA_NETEM_CORR);
	h32(h, 0);
	h32(h, 0);
	h32(h, 0);
	if (rate64) {
		h16(h, 4);
		h16(h, TCA_NETEM_PAD);
		hattr64(h, TCA_NETEM_RATE64, rate64);
	}
	hrate(h, rate64 ? 0xffffffff : 1000000);
	memcpy(h->b + opts, &(uint16_t){ h->n - opts }, 2);
	/* and what follows TCA_OPTIONS in a dump */
	h16(h, 5);
	h16(h, TCA_HW_OFFLOAD);
	h8(h, 0);
	hpad(h);
	hend(h);
}

static void test_parse(void)
{
	uint8_t buf[EH_NL_REQ_BYTES];
	struct eh_netem out, in;
	struct nlmsghdr *nlh;
	struct hand m;
	int r;

	hdump(&m, 4, TC_H_ROOT, "netem", true, 0);
	r = eh_nl_qdisc_parse((struct nlmsghdr *)m.b, 4, &out);
	tap_ok(r == 1 && out.delay_ns == 100000000 && out.jitter_ns == 5000000 &&
	       out.rate_Bps == 1000000 && out.limit == 10000 &&
	       out.loss_pct > 1.9999 && out.loss_pct < 2.0001,
	       "dump of netem at the root: 100 ms/5 ms from the 64-bit attributes, 1 MB/s, 2 %%, limit 10000 (r=%d delay %llu jitter %llu rate %llu limit %u loss %f)",
	       r, (unsigned long long)out.delay_ns, (unsigned long long)out.jitter_ns,
	       (unsigned long long)out.rate_Bps, out.limit, out.loss_pct);

	hdump(&m, 4, TC_H_ROOT, "netem", false, 0);
	r = eh_nl_qdisc_parse((struct nlmsghdr *)m.b, 4, &out);
	tap_ok(r == 1 && out.delay_ns == 2000000 && out.jitter_ns == 1000000,
	       "without LATENCY64/JITTER64 (old kernel) the qopt's ticks are read (%llu, %llu)",
	       (unsigned long long)out.delay_ns, (unsigned long long)out.jitter_ns);

	hdump(&m, 4, TC_H_ROOT, "netem", true, 6000000000ull);
	r = eh_nl_qdisc_parse((struct nlmsghdr *)m.b, 4, &out);
	tap_ok(r == 1 && out.rate_Bps == 6000000000ull, "RATE64 (after a PAD) wins over RATE's ~0 (%llu)",
	       (unsigned long long)out.rate_Bps);

	hdump(&m, 5, TC_H_ROOT, "netem", true, 0);
	tap_ok(eh_nl_qdisc_parse((struct nlmsghdr *)m.b, 4, &out) == 0, "another device's netem: not ours");
	hdump(&m, 4, 0x00010001, "netem", true, 0);
	tap_ok(eh_nl_qdisc_parse((struct nlmsghdr *)m.b, 4, &out) == 0, "netem below the root: not ours");
	hdump(&m, 4, TC_H_ROOT, "fq_codel", true, 0);
	tap_ok(eh_nl_qdisc_parse((struct nlmsghdr *)m.b, 4, &out) == 0, "another root qdisc: no netem");

	/* TCA_OPTIONS shorter than a qopt */
	hnl(&m, RTM_NEWQDISC, 0);
	htcmsg(&m, 4, 0x80010000, TC_H_ROOT);
	hkind(&m, "netem");
	h16(&m, 12);
	h16(&m, TCA_OPTIONS);
	h32(&m, 1);
	h32(&m, 2);
	hend(&m);
	tap_ok(eh_nl_qdisc_parse((struct nlmsghdr *)m.b, 4, &out) == -EBADMSG,
	       "TCA_OPTIONS shorter than tc_netem_qopt: -EBADMSG");

	/* what we send reads back as what we meant */
	in = (struct eh_netem){ .delay_ns = 100000000, .jitter_ns = 3000000, .rate_Bps = 1000000,
				.loss_pct = 0.5, .limit = 10000 };
	nlh = eh_nl_netem_msg(buf, sizeof(buf), 9, &in);
	r = nlh ? eh_nl_qdisc_parse(nlh, 9, &out) : -1;
	tap_ok(r == 1 && out.delay_ns == in.delay_ns && out.jitter_ns == in.jitter_ns &&
	       out.rate_Bps == in.rate_Bps && out.limit == in.limit &&
	       out.loss_pct > 0.4999 && out.loss_pct < 0.5001,
	       "the request parses back to its input (round trip)");
}

static void test_route_msg(void)
{
	uint8_t buf[EH_NL_REQ_BYTES];
	struct in_addr dst, gw, none = {};
	struct nlmsghdr *nlh;
	struct hand w;

	inet_pton(AF_INET, "10.9.0.0", &dst);
	inet_pton(AF_INET, "10.1.0.2", &gw);
	nlh = eh_nl_route_msg(buf, sizeof(buf), RTM_NEWROUTE, dst, 24, gw, 3);
	hnl(&w, RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
	h8(&w, AF_INET);
	h8(&w, 24);		/* dst_len */
	h8(&w, 0);		/* src_len */
	h8(&w, 0);		/* tos */
	h8(&w, RT_TABLE_MAIN);
	h8(&w, RTPROT_STATIC);
	h8(&w, RT_SCOPE_UNIVERSE);
	h8(&w, RTN_UNICAST);
	h32(&w, 0);		/* rtm_flags */
	h16(&w, 8);
	h16(&w, RTA_DST);
	memcpy(w.b + w.n, &dst, 4);
	w.n += 4;
	h16(&w, 8);
	h16(&w, RTA_GATEWAY);
	memcpy(w.b + w.n, &gw, 4);
	w.n += 4;
	h16(&w, 8);
	h16(&w, RTA_OIF);
	h32(&w, 3);
	hend(&w);
	tap_ok(nlh && same(nlh, nlh->nlmsg_len, &w, "route replace"),
	       "route replace 10.9.0.0/24 via 10.1.0.2 dev #3: 52 bytes as laid out");

	nlh = eh_nl_route_msg(buf, sizeof(buf), RTM_DELROUTE, dst, 24, none, 0);
	hnl(&w, RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK);
	h8(&w, AF_INET);
	h8(&w, 24);
	h8(&w, 0);
	h8(&w, 0);
	h8(&w, RT_TABLE_MAIN);
	h8(&w, 0);		/* any protocol */
	h8(&w, RT_SCOPE_NOWHERE);
	h8(&w, 0);		/* any type */
	h32(&w, 0);
	h16(&w, 8);
	h16(&w, RTA_DST);
	memcpy(w.b + w.n, &dst, 4);
	w.n += 4;
	hend(&w);
	tap_ok(nlh && same(nlh, nlh->nlmsg_len, &w, "route del"),
	       "route del 10.9.0.0/24: scope nowhere, no gateway or device");

	tap_ok(!eh_nl_route_msg(buf, sizeof(buf), RTM_NEWROUTE, dst, 33, gw, 0),
	       "prefix 33 is refused");
}

int main(void)
{
	tap_plan(24);
	test_netem_msg();
	test_netem_numbers();
	test_parse();
	test_route_msg();
	return tap_done();
}
