// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop-agent wan: WAN emulation (netem at an interface's root) and routes
 * across the WAN, over rtnetlink (control/nl). Thin: parse, call, print.
 *
 *	wan set DEV [delay MS] [jitter MS] [rate N(bit|kbit|mbit|gbit|Bps|KBps|MBps)]
 *		    [loss PCT] [limit PKTS]
 *	wan show DEV [--json]
 *	wan del DEV
 *	wan route replace DST[/PREFIX] [via GW] [dev DEV]
 *	wan route del DST[/PREFIX]
 *
 * Exit status: 0 done, 1 the kernel (or the system) refused, 2 bad usage.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <jansson.h>

#include "agent.h"
#include "nl/eh_nl.h"

#define WAN_MAX_DELAY_MS 3600000.0	/* one hour: far beyond any WAN */

static void wan_usage(FILE *f)
{
	fprintf(f,
		"usage: edgehop-agent wan set DEV [delay MS] [jitter MS] [rate N(bit|kbit|mbit|gbit|Bps|KBps|MBps)]\n"
		"                             [loss PCT] [limit PKTS]\n"
		"       edgehop-agent wan show DEV [--json]\n"
		"       edgehop-agent wan del DEV\n"
		"       edgehop-agent wan route replace DST[/PREFIX] [via GW] [dev DEV]\n"
		"       edgehop-agent wan route del DST[/PREFIX]\n"
		"set replaces DEV's root qdisc with netem holding exactly what is given (the\n"
		"rest is 0: no delay, no rate limit, no loss); limit 0 or none: enough packets\n"
		"for rate x delay, at least %d.\n", EH_NETEM_LIMIT_MIN);
}

__attribute__((format(printf, 1, 2)))
static int usage_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "edgehop-agent wan: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	wan_usage(stderr);
	return 2;
}

/* --- one table of the netem fields: set's keywords, show's text and JSON --- */

enum wan_kind { WAN_MS, WAN_RATE, WAN_PCT, WAN_PKTS };

static const struct wan_field {
	const char *name;	/* set's keyword and show's text */
	const char *json;	/* show --json's key */
	enum wan_kind kind;
	size_t off;		/* in struct eh_netem */
} wan_fields[] = {
	{ "delay",  "delay_ms",   WAN_MS,   offsetof(struct eh_netem, delay_ns) },
	{ "jitter", "jitter_ms",  WAN_MS,   offsetof(struct eh_netem, jitter_ns) },
	{ "rate",   "rate_bit_s", WAN_RATE, offsetof(struct eh_netem, rate_Bps) },
	{ "loss",   "loss_pct",   WAN_PCT,  offsetof(struct eh_netem, loss_pct) },
	{ "limit",  "limit",      WAN_PKTS, offsetof(struct eh_netem, limit) },
};
#define N_WAN_FIELDS (sizeof(wan_fields) / sizeof(wan_fields[0]))

/* bits/s per unit; the byte units are tc's (K = 1000) */
static const struct rate_unit {
	const char *name;
	uint64_t bit_s;
} rate_units[] = {
	{ "gbit", 1000000000 }, { "mbit", 1000000 }, { "kbit", 1000 }, { "bit", 1 },
	{ "MBps", 8000000 },	{ "KBps", 8000 },    { "Bps", 8 },
};

/* A non-negative decimal number, then exactly one of the suffixes (or none if ""). */
static int parse_num(const char *s, double *v, const char **suffix)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (end == s || errno || !(*v >= 0) || *v > 1e18 || *s == '-' || *s == '+')
		return -EINVAL;
	*suffix = end;
	return 0;
}

static int parse_field(const struct wan_field *f, const char *s, struct eh_netem *ne)
{
	void *p = (char *)ne + f->off;
	const char *sfx;
	double v;
	size_t i;

	if (parse_num(s, &v, &sfx))
		return -EINVAL;
	switch (f->kind) {
	case WAN_MS:
		if ((*sfx && strcmp(sfx, "ms")) || v > WAN_MAX_DELAY_MS)
			return -EINVAL;
		*(uint64_t *)p = (uint64_t)(v * 1e6 + 0.5);
		return 0;
	case WAN_RATE:
		for (i = 0; i < sizeof(rate_units) / sizeof(rate_units[0]); i++) {
			if (strcasecmp(sfx, rate_units[i].name))
				continue;
			/* case-blind like tc: "Bps" or "bit" is what decides */
			if (v * rate_units[i].bit_s / 8 >= 1.8e19)
				return -EINVAL;
			*(uint64_t *)p = (uint64_t)(v * rate_units[i].bit_s / 8 + 0.5);
			return 0;
		}
		return -EINVAL;
	case WAN_PCT:
		if ((*sfx && strcmp(sfx, "%")) || v > 100)
			return -EINVAL;
		*(double *)p = v;
		return 0;
	case WAN_PKTS:
		if (*sfx || v > UINT32_MAX || v != (uint32_t)v)
			return -EINVAL;
		*(uint32_t *)p = (uint32_t)v;
		return 0;
	}
	return -EINVAL;
}

static const char *field_hint(enum wan_kind k)
{
	switch (k) {
	case WAN_MS:
		return "milliseconds, 0..3600000, e.g. 100 or 0.5";
	case WAN_RATE:
		return "a number and a unit: bit, kbit, mbit, gbit, Bps, KBps, MBps (e.g. 8mbit)";
	case WAN_PCT:
		return "a percentage, 0..100";
	case WAN_PKTS:
		return "packets, a whole number";
	}
	return "";
}

/* show's text for a field: what set accepts back. */
static void fmt_field(const struct wan_field *f, const struct eh_netem *ne, char *buf,
		      size_t len)
{
	const void *p = (const char *)ne + f->off;
	uint64_t ns, bits;

	switch (f->kind) {
	case WAN_MS:
		ns = *(const uint64_t *)p;
		if (ns % 1000000 == 0)
			snprintf(buf, len, "%llums", (unsigned long long)(ns / 1000000));
		else
			snprintf(buf, len, "%.6gms", ns / 1e6);
		return;
	case WAN_RATE:
		bits = *(const uint64_t *)p * 8;
		for (size_t i = 0; i < 4; i++) {	/* the bit units, largest first */
			if (bits % rate_units[i].bit_s == 0) {
				snprintf(buf, len, "%llu%s",
					 (unsigned long long)(bits / rate_units[i].bit_s),
					 rate_units[i].name);
				return;
			}
		}
		return;
	case WAN_PCT:
		snprintf(buf, len, "%.4g%%", *(const double *)p);
		return;
	case WAN_PKTS:
		snprintf(buf, len, "%u", *(const uint32_t *)p);
		return;
	}
}

static json_t *json_field(const struct wan_field *f, const struct eh_netem *ne)
{
	const void *p = (const char *)ne + f->off;
	double pct;

	switch (f->kind) {
	case WAN_MS:
		return json_real(*(const uint64_t *)p / 1e6);
	case WAN_RATE:
		return json_integer((json_int_t)(*(const uint64_t *)p * 8));
	case WAN_PCT:
		/* the kernel keeps a fraction of 2^32-1: 1% reads back as 1.0000000009 */
		pct = *(const double *)p;
		return json_real((double)(int64_t)(pct * 1e4 + 0.5) / 1e4);
	case WAN_PKTS:
		return json_integer(*(const uint32_t *)p);
	}
	return json_null();
}

/* --- verbs ----------------------------------------------------------------- */

static int wan_set(int argc, char **argv)
{
	struct eh_netem ne = {};
	bool seen[N_WAN_FIELDS] = {};
	const char *dev;
	char err[512];
	int i, ret;
	size_t f;

	if (argc < 3)
		return usage_err("set needs DEV");
	dev = argv[2];
	for (i = 3; i < argc; i += 2) {
		for (f = 0; f < N_WAN_FIELDS; f++)
			if (!strcmp(argv[i], wan_fields[f].name))
				break;
		if (f == N_WAN_FIELDS)
			return usage_err("set: unknown option '%s' (delay, jitter, rate, loss, limit)",
					 argv[i]);
		if (i + 1 >= argc)
			return usage_err("set: %s needs a value: %s", argv[i],
					 field_hint(wan_fields[f].kind));
		if (seen[f])
			return usage_err("set: %s given twice", argv[i]);
		seen[f] = true;
		if (parse_field(&wan_fields[f], argv[i + 1], &ne))
			return usage_err("set: bad %s '%s': %s", argv[i], argv[i + 1],
					 field_hint(wan_fields[f].kind));
	}
	ret = eh_netem_set(dev, &ne, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "edgehop-agent wan set: netem on %s: %s\n", dev, err);
		return 1;
	}
	return 0;
}

static int wan_show(int argc, char **argv)
{
	struct eh_netem ne;
	bool present, json = false;
	const char *dev = NULL;
	char err[512], val[64];
	json_t *o;
	size_t f;
	int i;

	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!dev && argv[i][0] != '-')
			dev = argv[i];
		else
			return usage_err("show: unexpected '%s'", argv[i]);
	}
	if (!dev)
		return usage_err("show needs DEV");
	if (eh_netem_get(dev, &ne, &present, err, sizeof(err))) {
		fprintf(stderr, "edgehop-agent wan show: netem on %s: %s\n", dev, err);
		return 1;
	}
	if (json) {
		o = json_pack("{s:s, s:b}", "dev", dev, "netem", present);
		if (!o) {
			fprintf(stderr, "edgehop-agent wan show: out of memory\n");
			return 1;
		}
		for (f = 0; present && f < N_WAN_FIELDS; f++)
			json_object_set_new(o, wan_fields[f].json, json_field(&wan_fields[f], &ne));
		json_dumpf(o, stdout, JSON_COMPACT);
		json_decref(o);
		printf("\n");
		return 0;
	}
	printf("%s: netem", dev);
	if (!present)
		printf(" none");
	for (f = 0; present && f < N_WAN_FIELDS; f++) {
		fmt_field(&wan_fields[f], &ne, val, sizeof(val));
		printf(" %s %s", wan_fields[f].name, val);
	}
	printf("\n");
	return 0;
}

static int wan_del(int argc, char **argv)
{
	char err[512];

	if (argc != 3)
		return usage_err(argc < 3 ? "del needs DEV" : "del takes only DEV");
	if (eh_netem_del(argv[2], err, sizeof(err))) {
		fprintf(stderr, "edgehop-agent wan del: netem on %s: %s\n", argv[2], err);
		return 1;
	}
	return 0;
}

/* "10.1.0.0/16", "10.1.2.3" (a /32) or "default" */
static int parse_prefix(const char *s, struct in_addr *dst, int *prefix)
{
	char a[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	char *end;
	long p = 32;

	if (!strcmp(s, "default")) {
		dst->s_addr = 0;
		*prefix = 0;
		return 0;
	}
	if (slash) {
		if ((size_t)(slash - s) >= sizeof(a))
			return -EINVAL;
		memcpy(a, s, slash - s);
		a[slash - s] = '\0';
		errno = 0;
		p = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || errno || p < 0 || p > 32)
			return -EINVAL;
	} else {
		snprintf(a, sizeof(a), "%s", s);
	}
	if (inet_pton(AF_INET, a, dst) != 1)
		return -EINVAL;
	*prefix = (int)p;
	return 0;
}

static int wan_route(int argc, char **argv)
{
	struct in_addr dst, gw = {};
	const char *dev = NULL, *op;
	char err[512];
	int prefix, i, ret;

	if (argc < 4)
		return usage_err("route needs replace|del and DST[/PREFIX]");
	op = argv[2];
	if (strcmp(op, "replace") && strcmp(op, "del"))
		return usage_err("route: unknown '%s' (replace, del)", op);
	if (parse_prefix(argv[3], &dst, &prefix))
		return usage_err("route %s: bad destination '%s' (A.B.C.D[/0..32] or default)",
				 op, argv[3]);
	if (!strcmp(op, "del")) {
		if (argc != 4)
			return usage_err("route del takes only DST[/PREFIX]");
		ret = eh_route_del(dst, prefix, err, sizeof(err));
	} else {
		for (i = 4; i < argc; i += 2) {
			if (i + 1 >= argc)
				return usage_err("route replace: %s needs a value", argv[i]);
			if (!strcmp(argv[i], "via")) {
				if (inet_pton(AF_INET, argv[i + 1], &gw) != 1)
					return usage_err("route replace: bad gateway '%s'",
							 argv[i + 1]);
			} else if (!strcmp(argv[i], "dev")) {
				dev = argv[i + 1];
			} else {
				return usage_err("route replace: unknown option '%s' (via, dev)",
						 argv[i]);
			}
		}
		if (!gw.s_addr && !dev)
			return usage_err("route replace needs via GW or dev DEV");
		ret = eh_route_replace(dst, prefix, gw, dev, err, sizeof(err));
	}
	if (ret) {
		fprintf(stderr, "edgehop-agent wan route %s %s: %s\n", op, argv[3], err);
		return 1;
	}
	return 0;
}

int cmd_wan(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} subs[] = {
		{ "set", wan_set }, { "show", wan_show }, { "del", wan_del }, { "route", wan_route },
	};
	size_t i;

	if (argc < 2)
		return usage_err("needs set, show, del or route");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		wan_usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (!strcmp(argv[1], subs[i].name))
			return subs[i].fn(argc, argv);
	return usage_err("unknown '%s' (set, show, del, route)", argv[1]);
}
