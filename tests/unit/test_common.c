// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * control/common's helpers that have no test of their own elsewhere: value
 * parsers (eh_parse), statistics and their table (eh_stats), clocks
 * (eh_time) and the wire header (eh_wire). The digest
 * chain is tests/unit/test_digest.c, the event log's records test_logrepo.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "eh_parse.h"
#include "eh_stats.h"
#include "eh_time.h"
#include "eh_wire.h"
#include "tap.h"

static struct in_addr ip(const char *s)
{
	struct in_addr a = {};

	inet_pton(AF_INET, s, &a);
	return a;
}

/* eh_hdr_init's bytes, and every rule of eh_hdr_check (edgehop_proto.h). */
static void test_wire(void)
{
	/* the header, then a 72-byte body, then 100 trailing bytes; +1: unaligned */
	static uint8_t buf[1 + 32 + 72 + 100];
	static const uint8_t want[32] = {
		0x45, 0x48, 0x4f, 0x50, 1, EH_T_SVCR, 0x00, 0x11,
		0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d,
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
		0x00, 0x00, 0x00, 72, 0, 0, 0, 0,
	};
	uint8_t *p = buf + 1;
	struct eh_hdr *h = (void *)p;
	struct eh_hdr_host o, untouched;
	int e[4];

	memset(buf, 0xff, sizeof(buf));
	eh_hdr_init(h, EH_T_SVCR, 0x0011, 0x01020304, 0x0a0b0c0d, 0x1122334455667788ull, 72);
	tap_ok(!memcmp(p, want, sizeof(want)) && p[32] == 0xff,
	       "wire: eh_hdr_init writes the 32 bytes in network order, reserved 0, nothing after");

	memset(&o, 0, sizeof(o));
	tap_ok(!eh_hdr_check(p, 32 + 72, &o) && o.type == EH_T_SVCR && o.flags == 0x0011 &&
	       o.mud_id == 0x01020304 && o.seq == 0x0a0b0c0d &&
	       o.send_ns == 0x1122334455667788ull && o.len == 72,
	       "wire: a header with exactly its body passes (unaligned), fields in host order");
	tap_ok(!eh_hdr_check(p, sizeof(buf) - 1, &o) && o.len == 72,
	       "wire: trailing bytes after len are allowed, len stays the header's");

	memset(&untouched, 0x5a, sizeof(untouched));
	o = untouched;
	tap_ok(eh_hdr_check(p, 32 + 71, &o) == -EH_HDR_LEN && !memcmp(&o, &untouched, sizeof(o)),
	       "wire: one body byte missing is a length that lies, out untouched");
	h->len = htonl(0xffffffffu);
	tap_ok(eh_hdr_check(p, sizeof(buf) - 1, &o) == -EH_HDR_LEN,
	       "wire: len 0xffffffff lies (no wrap-around)");
	h->len = 0;
	tap_ok(!eh_hdr_check(p, 32, &o) && o.len == 0,
	       "wire: exactly 32 bytes with len 0 pass");
	tap_ok(eh_hdr_check(p, 31, &o) == -EH_HDR_SHORT && eh_hdr_check(p, 0, &o) == -EH_HDR_SHORT,
	       "wire: 31 and 0 bytes are short");

	h->magic = __builtin_bswap32(htonl(EH_MAGIC));	/* byte-swapped: "POHE" */
	e[0] = eh_hdr_check(p, 32, &o);
	h->magic = htonl(EH_MAGIC ^ 1);
	e[1] = eh_hdr_check(p, 32, &o);
	tap_ok(e[0] == -EH_HDR_MAGIC && e[1] == -EH_HDR_MAGIC &&
	       eh_hdr_check(p, 31, &o) == -EH_HDR_SHORT,
	       "wire: another magic refused; short is told before magic");
	h->magic = htonl(EH_MAGIC);
	h->version = 0;
	e[0] = eh_hdr_check(p, 32, &o);
	h->version = EH_VERSION + 1;
	e[1] = eh_hdr_check(p, 32, &o);
	h->magic = htonl(EH_MAGIC ^ 1);
	e[2] = eh_hdr_check(p, 32, &o);
	tap_ok(e[0] == -EH_HDR_VERSION && e[1] == -EH_HDR_VERSION && e[2] == -EH_HDR_MAGIC,
	       "wire: versions 0 and 2 refused; magic is told before version");
	h->magic = htonl(EH_MAGIC);
	h->len = htonl(1);
	e[0] = eh_hdr_check(p, 32, &o);
	h->version = EH_VERSION;
	e[1] = eh_hdr_check(p, 32, &o);
	tap_ok(e[0] == -EH_HDR_VERSION && e[1] == -EH_HDR_LEN,
	       "wire: version is told before a length that lies");

	e[0] = -EH_HDR_SHORT, e[1] = -EH_HDR_MAGIC, e[2] = -EH_HDR_VERSION, e[3] = -EH_HDR_LEN;
	tap_ok(e[0] < 0 && e[1] < 0 && e[2] < 0 && e[3] < 0 && e[0] != e[1] && e[0] != e[2] &&
	       e[0] != e[3] && e[1] != e[2] && e[1] != e[3] && e[2] != e[3],
	       "wire: four distinct negative errnos");
}

/* STATUS_RESP bodies: entries, then the name (EH_F_STATUS_NAME), as the service sends them. */
static void test_status_split(void)
{
	uint8_t body[2 * sizeof(struct eh_status_ent) + EH_NAME_LEN];
	struct eh_hdr_host h = { .type = EH_T_STATUS_RESP, .flags = EH_F_STATUS_NAME,
				 .len = sizeof(body) };
	char name[EH_NAME_LEN];
	uint32_t n2, n1, n0, nn;
	bool named;

	memset(body, 0xee, sizeof(body));
	memcpy(body + 2 * sizeof(struct eh_status_ent), "CT-node-y", 10);
	n2 = eh_status_split(&h, body, name);
	named = !strcmp(name, "CT-node-y");
	memset(body + 2 * sizeof(struct eh_status_ent), 'x', EH_NAME_LEN);	/* unterminated */
	n2 += eh_status_split(&h, body, name) - 2;
	named = named && strlen(name) == EH_NAME_LEN - 1;
	h.len = EH_NAME_LEN;
	n0 = eh_status_split(&h, body, name);
	h.len = EH_NAME_LEN - 1;	/* too short for a name */
	n1 = eh_status_split(&h, body, name);
	nn = name[0];
	h.flags = 0;
	h.len = 2 * sizeof(struct eh_status_ent);
	n2 += eh_status_split(&h, body, name) - 2;
	tap_ok(n2 == 2 && named && n0 == 0 && n1 == 0 && nn == 0 && !name[0],
	       "eh_status_split: entries then the name, terminated; no name without the flag "
	       "or the bytes (%u %u %u, name %s)", n2, n0, n1, named ? "ok" : "wrong");
}

int main(void)
{
	struct sockaddr_in sa;
	struct eh_cidr c[2];
	uint32_t v = 7;
	uint16_t port = 0;
	double d[] = { 5, 1, 4, 2, 3, 10, 9, 8, 7, 6 };
	uint64_t m0, m1, r;

	tap_plan(31);
	test_wire();
	test_status_split();

	tap_ok(!eh_parse_u32("4294967295", UINT32_MAX, &v) && v == UINT32_MAX,
	       "u32: the largest value (got %u)", v);
	tap_ok(eh_parse_u32("4294967296", UINT32_MAX, &v) == -EINVAL &&
	       eh_parse_u32("33", 32, &v) == -EINVAL && !eh_parse_u32("32", 32, &v) && v == 32,
	       "u32: beyond the maximum is refused, the maximum itself taken");
	v = 7;
	tap_ok(eh_parse_u32("", 10, &v) == -EINVAL && eh_parse_u32("12x", 100, &v) == -EINVAL &&
	       eh_parse_u32("0x10", 100, &v) == -EINVAL && v == 7,
	       "u32: empty, trailing junk and hex refused, the output untouched");
	tap_ok(!eh_parse_u32("010", 100, &v) && v == 10, "u32: decimal even with a leading zero");

	tap_ok(!eh_parse_port("65535", &port) && port == 65535 &&
	       eh_parse_port("0", &port) == -EINVAL && eh_parse_port("65536", &port) == -EINVAL,
	       "port: 1..65535 only");

	tap_ok(!eh_parse_ipv4_port("10.0.0.1:7777", &sa) && sa.sin_family == AF_INET &&
	       sa.sin_addr.s_addr == ip("10.0.0.1").s_addr && ntohs(sa.sin_port) == 7777,
	       "IPv4:PORT into a sockaddr_in (network byte order)");
	tap_ok(eh_parse_ipv4_port("10.0.0.1", &sa) == -EINVAL &&
	       eh_parse_ipv4_port(":7777", &sa) == -EINVAL &&
	       eh_parse_ipv4_port("10.0.0.1:", &sa) == -EINVAL &&
	       eh_parse_ipv4_port("10.0.0.1:0", &sa) == -EINVAL &&
	       eh_parse_ipv4_port("host.example:80", &sa) == -EINVAL &&
	       eh_parse_ipv4_port("1111.2222.3333.4444:80", &sa) == -EINVAL &&
	       eh_parse_ipv4_port(NULL, &sa) == -EINVAL,
	       "IPv4:PORT: no port, no address, port 0, a name, too long, NULL refused");

	tap_ok(!eh_cidr_parse("10.91.2.77/24", &c[0]) && c[0].net == 0x0a5b0200 &&
	       c[0].mask == 0xffffff00, "CIDR: host bits cleared (net %08x mask %08x)",
	       c[0].net, c[0].mask);
	tap_ok(!eh_cidr_parse("1.2.3.4", &c[1]) && c[1].mask == 0xffffffff &&
	       c[1].net == 0x01020304, "CIDR: a bare address is a /32");
	tap_ok(eh_cidr_parse("10.0.0.0/33", &c[1]) == -EINVAL &&
	       eh_cidr_parse("10.0.0.0/", &c[1]) == -EINVAL &&
	       eh_cidr_parse("/8", &c[1]) == -EINVAL && eh_cidr_parse("nonsense", &c[1]) == -EINVAL,
	       "CIDR: /33, an empty length, no address and junk refused");
	eh_cidr_parse("0.0.0.0/0", &c[1]);
	tap_ok(eh_cidr_match(c, 1, ip("10.91.2.1")) && !eh_cidr_match(c, 1, ip("10.91.3.1")) &&
	       eh_cidr_match(c, 2, ip("192.0.2.1")) && !eh_cidr_match(c, 0, ip("10.91.2.1")),
	       "CIDR match: inside, outside, /0 matches all, an empty list nothing");

	eh_sort_doubles(d, 10);
	tap_ok(d[0] == 1 && d[4] == 5 && d[9] == 10, "sort: ascending");
	eh_sort_doubles(NULL, 0);
	tap_ok(eh_pct(d, 10, 0.5) == 5 && eh_pct(d, 10, 0.9) == 9 && eh_pct(d, 10, 0.99) == 10 &&
	       eh_pct(d, 10, 0.01) == 1, "nearest rank: p50 5, p90 9, p99 10, p1 1 of 1..10");
	tap_ok(eh_pct(d, 1, 0.5) == 1 && eh_pct(NULL, 0, 0.5) == 0,
	       "nearest rank: one sample is every percentile, none gives 0");

	{
		double rt[] = { 4, 2, 8, 6 };
		struct eh_rt_stats st;
		char *out = NULL;
		size_t olen = 0;
		FILE *f;

		eh_rt_stats_of(&st, "during-1", rt, 4);
		tap_ok(st.n == 4 && st.p50 == 4 && st.p90 == 8 && st.max == 8 && st.mean == 5 &&
		       rt[0] == 2, "phase statistics: sorted, n 4, p50 4, p90 8, max 8, mean 5");
		f = open_memstream(&out, &olen);
		eh_rt_stats_text_head(f);
		eh_rt_stats_text(f, &st);
		fclose(f);
		tap_ok(out && !strcmp(out,
			"  phase      requests     p50 ms     p90 ms     p99 ms     max ms    mean ms\n"
			"  during-1          4      4.000      8.000      8.000      8.000      5.000\n"),
		       "phase table, text: the header and a row");
		free(out);
		out = NULL;
		f = open_memstream(&out, &olen);
		eh_rt_stats_json(f, &st);
		fclose(f);
		tap_ok(out && !strcmp(out, "{\"name\":\"during-1\",\"requests\":4,\"p50_ms\":4.000,"
			"\"p90_ms\":8.000,\"p99_ms\":8.000,\"max_ms\":8.000,\"mean_ms\":5.000}"),
		       "phase table, JSON: the same columns (%s)", out ? out : "");
		free(out);
	}

	m0 = eh_mono_ns();
	r = eh_real_ns();
	m1 = eh_mono_ns();
	tap_ok(m1 >= m0 && eh_mono_ms() >= m1 / 1e6, "monotonic clocks agree and do not go back");
	/* 2020-01-01 in ns: a realtime clock, not a monotonic one */
	tap_ok(r > 1577836800ull * 1000000000ull, "realtime is wall-clock time (%llu)",
	       (unsigned long long)r);
	return tap_done();
}
