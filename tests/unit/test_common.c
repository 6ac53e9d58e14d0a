// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * control/common's helpers that have no test of their own elsewhere: value
 * parsers (eh_parse), statistics and their table (eh_stats) and clocks
 * (eh_time). The digest
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
#include "tap.h"

static struct in_addr ip(const char *s)
{
	struct in_addr a = {};

	inet_pton(AF_INET, s, &a);
	return a;
}

int main(void)
{
	struct sockaddr_in sa;
	struct eh_cidr c[2];
	uint32_t v = 7;
	uint16_t port = 0;
	double d[] = { 5, 1, 4, 2, 3, 10, 9, 8, 7, 6 };
	uint64_t m0, m1, r;

	tap_plan(19);

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
