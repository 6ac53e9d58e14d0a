// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop-ap: the AP dataplane's command.
 *
 *   edgehop-ap load --radio IF --wan IF --vip IP:PORT [--ring-bytes N]
 *                   [--fast-return auto|on|off] [--attach auto|xdp|tc]
 *   edgehop-ap unload --radio IF --wan IF
 *   edgehop-ap set MUD_IP --mode MODE [--backend IP:PORT] [--mud-id N] [--ring-bytes N]
 *                                     (--ring-bytes: this MUD's replay buffer,
 *                                     default the load's --ring-bytes)
 *   edgehop-ap del MUD_IP | clear-flags MUD_IP
 *   edgehop-ap show [--json]          steering entries and per-MUD counts
 *   edgehop-ap stats [--json]         dataplane counters
 *   edgehop-ap ring [MUD_IP] [--peek|--drain] [--count N] [--timeout-ms T] [--json]
 *                                     print replay-buffer records (one MUD's,
 *                                     or all); --drain consumes them (--peek,
 *                                     the default, never)
 *   edgehop-ap replay MUD_IP --to IP:PORT
 *   edgehop-ap cutover MUD_IP --to IP:PORT [--mud-id N]
 *                      [--logrepo IP:PORT --role NAME --run ID]
 *
 * Every command takes --pin DIR (default /sys/fs/bpf/edgehop) and -v.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "eh_dp.h"
#include "eh_replay.h"
#include "eh_log.h"
#include "eh_parse.h"

static const char *pin;
static bool json, verbose;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: edgehop-ap [--pin DIR] [-v] COMMAND ...\n"
		"  load --radio IF --wan IF --vip IP:PORT [--ring-bytes N] [--fast-return auto|on|off]\n"
		"       [--attach auto|xdp|tc]\n"
		"  unload --radio IF --wan IF\n"
		"  set MUD_IP --mode none|local|forward|fwd-buf|buf-only [--backend IP:PORT] [--mud-id N]\n"
		"      [--ring-bytes N]\n"
		"  del MUD_IP\n"
		"  clear-flags MUD_IP\n"
		"  show [--json]\n"
		"  stats [--json]\n"
		"  ring [MUD_IP] [--peek|--drain] [--count N] [--timeout-ms T] [--json]\n"
		"  replay MUD_IP --to IP:PORT\n"
		"  cutover MUD_IP --to IP:PORT [--mud-id N] [--logrepo IP:PORT --role NAME --run ID]\n"
		"pin directory: %s unless --pin\n", EH_PIN_DEFAULT);
}

static int parse_addr(const char *s, struct in_addr *a)
{
	if (!s || inet_pton(AF_INET, s, a) != 1) {
		fprintf(stderr, "edgehop-ap: '%s' is not an IPv4 address\n", s ? s : "");
		return -EINVAL;
	}
	return 0;
}

/* IPV4:PORT of a command-line argument, said when it is not one. */
static int addr_port_arg(const char *s, struct in_addr *a, uint16_t *port)
{
	struct sockaddr_in sa;

	if (eh_parse_ipv4_port(s, &sa)) {
		fprintf(stderr, "edgehop-ap: '%s' is not IPV4:PORT\n", s ? s : "");
		return -EINVAL;
	}
	*a = sa.sin_addr;
	*port = ntohs(sa.sin_port);
	return 0;
}

static int u32_arg(const char *s, uint32_t *v)
{
	if (eh_parse_u32(s, UINT32_MAX, v)) {
		fprintf(stderr, "edgehop-ap: '%s' is not a number\n", s);
		return -EINVAL;
	}
	return 0;
}

enum { O_RADIO = 256, O_WAN, O_VIP, O_RING, O_MODE, O_BACKEND, O_MUDID, O_COUNT,
       O_TIMEOUT, O_TO, O_JSON, O_FASTRET, O_LOGREPO, O_ROLE, O_RUN, O_PEEK, O_DRAIN, O_ATTACH };

static const struct option long_opts[] = {
	{ "radio", required_argument, NULL, O_RADIO },
	{ "wan", required_argument, NULL, O_WAN },
	{ "vip", required_argument, NULL, O_VIP },
	{ "ring-bytes", required_argument, NULL, O_RING },
	{ "mode", required_argument, NULL, O_MODE },
	{ "backend", required_argument, NULL, O_BACKEND },
	{ "mud-id", required_argument, NULL, O_MUDID },
	{ "count", required_argument, NULL, O_COUNT },
	{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
	{ "to", required_argument, NULL, O_TO },
	{ "json", no_argument, NULL, O_JSON },
	{ "fast-return", required_argument, NULL, O_FASTRET },
	{ "logrepo", required_argument, NULL, O_LOGREPO },
	{ "role", required_argument, NULL, O_ROLE },
	{ "run", required_argument, NULL, O_RUN },
	{ "peek", no_argument, NULL, O_PEEK },
	{ "attach", required_argument, NULL, O_ATTACH },
	{ "drain", no_argument, NULL, O_DRAIN },
	{ "pin", required_argument, NULL, 'p' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{}
};

struct args {
	const char *radio, *wan, *mode;
	const char *vip, *backend, *to, *fast_return, *attach;
	const char *logrepo, *role, *run;
	uint32_t ring_bytes, mud_id, count, timeout_ms;
	bool has_backend;
	bool peek, drain;	/* ring */
	const char *pos;	/* positional MUD_IP */
};

static int parse_args(int argc, char **argv, struct args *a)
{
	int opt, err = 0;

	memset(a, 0, sizeof(*a));
	a->timeout_ms = 1000;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:vh", long_opts, NULL)) != -1) {
		switch (opt) {
		case O_RADIO: a->radio = optarg; break;
		case O_WAN: a->wan = optarg; break;
		case O_VIP: a->vip = optarg; break;
		case O_RING: err = u32_arg(optarg, &a->ring_bytes); break;
		case O_MODE: a->mode = optarg; break;
		case O_BACKEND: a->backend = optarg; break;
		case O_MUDID: err = u32_arg(optarg, &a->mud_id); break;
		case O_COUNT: err = u32_arg(optarg, &a->count); break;
		case O_TIMEOUT: err = u32_arg(optarg, &a->timeout_ms); break;
		case O_TO: a->to = optarg; break;
		case O_FASTRET: a->fast_return = optarg; break;
		case O_ATTACH: a->attach = optarg; break;
		case O_LOGREPO: a->logrepo = optarg; break;
		case O_ROLE: a->role = optarg; break;
		case O_RUN: a->run = optarg; break;
		case O_JSON: json = true; break;
		case O_PEEK: a->peek = true; break;
		case O_DRAIN: a->drain = true; break;
		case 'p': pin = optarg; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
		if (err)
			return err;
	}
	if (optind < argc)
		a->pos = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "edgehop-ap: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int cmd_load(struct eh_dp *dp, struct args *a)
{
	(void)dp;
	struct eh_load_opts o = { .pin = pin, .radio = a->radio, .wan = a->wan,
				  .ring_bytes = a->ring_bytes, .verbose = verbose };
	int err;

	if (!a->vip) {
		fprintf(stderr, "edgehop-ap: load needs --vip IP:PORT\n");
		return -EINVAL;
	}
	if (!a->fast_return || !strcmp(a->fast_return, "auto")) {
		o.fast_return = EH_FAST_RETURN_AUTO;
	} else if (!strcmp(a->fast_return, "on")) {
		o.fast_return = EH_FAST_RETURN_ON;
	} else if (!strcmp(a->fast_return, "off")) {
		o.fast_return = EH_FAST_RETURN_OFF;
	} else {
		fprintf(stderr, "edgehop-ap: --fast-return takes auto, on or off\n");
		return -EINVAL;
	}
	if (a->attach && eh_attach_parse(a->attach, &o.attach)) {
		fprintf(stderr, "edgehop-ap: --attach takes auto, xdp or tc\n");
		return -EINVAL;
	}
	err = addr_port_arg(a->vip, &o.vip, &o.vip_port);
	if (err)
		return err;
	err = eh_dp_load(&o);
	if (!err) {
		struct eh_dp dp2;
		struct eh_cfg cfg = {};

		if (!eh_dp_open(&dp2, pin)) {
			eh_dp_config(&dp2, &cfg);
			eh_dp_close(&dp2);
		}
		printf("edgehop dataplane loaded: radio %s (%s), WAN %s (%s), VIP %s, pinned under %s\n",
		       a->radio, cfg.flags & EH_CFG_RADIO_TC ? "tc" : "xdp", a->wan,
		       cfg.flags & EH_CFG_WAN_TC ? "tc" : "xdp", a->vip, pin ? pin : EH_PIN_DEFAULT);
	}
	return err;
}

static int cmd_unload(struct eh_dp *dp, struct args *a)
{
	int err = eh_dp_unload(pin, a->radio, a->wan);

	(void)dp;

	if (!err)
		printf("edgehop dataplane unloaded from %s\n", pin ? pin : EH_PIN_DEFAULT);
	return err;
}

static int cmd_set(struct eh_dp *dp, struct args *a)
{
	struct in_addr mud, backend = {};
	uint16_t port = 0;
	enum eh_mode mode;
	int err;

	err = parse_addr(a->pos, &mud);
	if (err)
		return err;
	if (!a->mode || eh_mode_parse(a->mode, &mode)) {
		fprintf(stderr, "edgehop-ap: set needs --mode none|local|forward|fwd-buf|buf-only\n");
		return -EINVAL;
	}
	if (a->backend) {
		err = addr_port_arg(a->backend, &backend, &port);
		if (err)
			return err;
	}
	return eh_dp_steer_set_ring(dp, mud, mode, backend, port, a->mud_id, a->ring_bytes);
}

/*
 * Which hook each side's program runs at, and whether its redirects enter the
 * other side's veth peer directly (bpf_redirect_peer, TC only).
 */
struct hooks {
	const char *radio, *wan;
	bool fast, wan_peer, radio_peer;
};

static void hooks(struct eh_dp *dp, struct hooks *h)
{
	struct eh_cfg cfg = {};

	eh_dp_config(dp, &cfg);
	h->radio = cfg.flags & EH_CFG_RADIO_TC ? "tc" : "xdp";
	h->wan = cfg.flags & EH_CFG_WAN_TC ? "tc" : "xdp";
	h->fast = cfg.flags & EH_CFG_FAST_RETURN;
	h->wan_peer = cfg.flags & EH_CFG_WAN_PEER;
	h->radio_peer = cfg.flags & EH_CFG_RADIO_PEER;
}

static void print_hooks(struct eh_dp *dp)
{
	struct hooks h;

	hooks(dp, &h);
	printf("hooks: radio %s (+ tc egress), wan %s, fast return %s", h.radio, h.wan,
	       h.fast ? "on" : "off");
	if (h.wan_peer || h.radio_peer)
		printf("; redirects into the veth peer of%s%s", h.wan_peer ? " wan" : "",
		       h.radio_peer ? " radio" : "");
	printf("\n");
}

struct show_ctx { int n; };

static int show_one(void *c, struct in_addr mud, const struct eh_steer *st)
{
	struct show_ctx *ctx = c;
	struct in_addr be = { .s_addr = st->backend_addr }, pb = { .s_addr = st->prev_addr };
	char mb[INET_ADDRSTRLEN], bb[INET_ADDRSTRLEN], pbb[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &mud, mb, sizeof(mb));
	inet_ntop(AF_INET, &be, bb, sizeof(bb));
	inet_ntop(AF_INET, &pb, pbb, sizeof(pbb));
	if (json)
		printf("%s{\"mud\":\"%s\",\"mud_id\":%u,\"mode\":\"%s\",\"backend\":\"%s:%u\","
		       "\"prev_backend\":\"%s:%u\",\"flags\":%u,\"overflow\":%s,\"too_big\":%s,\"rx\":%llu,\"delivered\":%llu,"
		       "\"buffered\":%llu,\"lost_buf\":%llu,\"last_seq\":%llu,\"ring\":%s,"
		       "\"ring_bytes\":%u,\"ring_used\":%llu}",
		       ctx->n ? "," : "", mb, st->mud_id, eh_mode_name(st->mode), bb,
		       ntohs(st->backend_port), pbb, ntohs(st->prev_port), st->flags,
		       st->flags & EH_SF_OVERFLOW ? "true" : "false",
		       st->flags & EH_SF_TOO_BIG ? "true" : "false",
		       (unsigned long long)st->rx, (unsigned long long)st->delivered,
		       (unsigned long long)st->buffered, (unsigned long long)st->lost_buf,
		       (unsigned long long)st->last_seq, st->has_ring ? "true" : "false",
		       st->ring_bytes, (unsigned long long)st->ring_used);
	else
		printf("%-15s %8u %-9s %15s:%-5u %5s %10llu %10llu %10llu %8llu %10llu %8u%s\n",
		       mb, st->mud_id, eh_mode_name(st->mode), bb, ntohs(st->backend_port),
		       st->flags & EH_SF_OVERFLOW ? "OVF" : st->flags & EH_SF_TOO_BIG ? "BIG" : "-",
		       (unsigned long long)st->rx, (unsigned long long)st->delivered,
		       (unsigned long long)st->buffered, (unsigned long long)st->lost_buf,
		       (unsigned long long)st->last_seq, st->ring_bytes >> 10,
		       st->has_ring ? "" : " (none)");
	ctx->n++;
	return 0;
}

static int cmd_show(struct eh_dp *dp, struct args *a)
{
	(void)a;
	struct show_ctx ctx = {};
	int err;

	if (json)
		printf("[");
	else
		print_hooks(dp);
	if (!json)
		printf("%-15s %8s %-9s %21s %5s %10s %10s %10s %8s %10s %8s\n", "MUD", "MUD-ID",
		       "MODE", "BACKEND", "FLAGS", "RX", "DELIVERED", "BUFFERED", "LOST-BUF",
		       "LAST-SEQ", "RING-KIB");
	err = eh_dp_steer_foreach(dp, show_one, &ctx);
	if (json)
		printf("]\n");
	return err;
}

static int cmd_stats(struct eh_dp *dp, struct args *a)
{
	struct eh_datarec c[EH_C_MAX];
	int err = eh_dp_counters(dp, c);

	(void)a;

	if (err) {
		fprintf(stderr, "edgehop-ap: Couldn't read counters: %s\n", strerror(-err));
		return err;
	}
	if (json) {
		struct hooks h;

		hooks(dp, &h);
		printf("{\"hook\":{\"radio\":\"%s\",\"wan\":\"%s\",\"fast_return\":%s,"
		       "\"wan_peer\":%s,\"radio_peer\":%s}", h.radio, h.wan,
		       h.fast ? "true" : "false", h.wan_peer ? "true" : "false",
		       h.radio_peer ? "true" : "false");
		for (int i = 0; i < EH_C_MAX; i++)
			printf(",\"%s\":{\"packets\":%llu,\"bytes\":%llu}",
			       eh_counter_name(i), (unsigned long long)c[i].packets,
			       (unsigned long long)c[i].bytes);
		printf("}\n");
		return 0;
	}
	print_hooks(dp);
	printf("%-20s %14s %16s\n", "COUNTER", "PACKETS", "BYTES");
	for (int i = 0; i < EH_C_MAX; i++)
		printf("%-20s %14llu %16llu\n", eh_counter_name(i),
		       (unsigned long long)c[i].packets, (unsigned long long)c[i].bytes);
	return 0;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void print_rec(const struct eh_replay_rec *rec, uint32_t n)
{
	char mb[INET_ADDRSTRLEN];
	struct in_addr m = { .s_addr = rec->mud_addr };

	inet_ntop(AF_INET, &m, mb, sizeof(mb));
	if (json)
		printf("%s{\"mud\":\"%s\",\"mud_port\":%u,\"mud_id\":%u,\"seq\":%u,\"forwarded\":%s,"
		       "\"ts_ns\":%llu,\"len\":%u}", n ? "," : "", mb, ntohs(rec->mud_port),
		       rec->mud_id, rec->seq, rec->forwarded ? "true" : "false",
		       (unsigned long long)rec->ts_ns, rec->len);
	else
		printf("%llu mud %s:%u id %u seq %u %s len %u\n",
		       (unsigned long long)rec->ts_ns, mb, ntohs(rec->mud_port), rec->mud_id,
		       rec->seq, rec->forwarded ? "forwarded" : "buffered-only", rec->len);
}

struct ring_ctx {
	struct eh_dp *dp;
	struct args *a;
	uint32_t n;		/* records printed, over every ring */
	int err;
};

static int ring_one(void *c, struct in_addr mud)
{
	struct ring_ctx *ctx = c;
	struct args *a = ctx->a;
	const struct eh_replay_rec *rec;
	struct eh_ring ring;
	struct timespec t0;
	unsigned long pos;
	uint32_t n = 0;
	int err;

	err = eh_dp_ring_open(ctx->dp, mud, &ring);
	if (err) {
		if (err == -ENOENT && a->pos)
			fprintf(stderr, "edgehop-ap: MUD %s has no replay buffer (not in fwd-buf or buf-only)\n",
				inet_ntoa(mud));
		ctx->err = err;
		return 0;
	}
	pos = eh_ring_consumed(&ring);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!a->count || n < a->count) {
		rec = a->drain ? eh_ring_peek(&ring) : eh_ring_read_at(&ring, &pos);
		if (!rec) {
			long waited = ms_since(&t0);

			if (waited >= (long)a->timeout_ms)
				break;
			if (a->drain) {
				if (eh_ring_wait(&ring, a->timeout_ms - waited) < 0)
					break;
			} else {
				usleep(1000);	/* unconsumed records keep the ring readable */
			}
			continue;
		}
		print_rec(rec, ctx->n++);
		if (a->drain)
			eh_ring_commit(&ring);
		n++;
	}
	if (a->drain)
		fprintf(stderr, "edgehop-ap: consumed %u record%s from the replay buffer of %s\n", n,
			n == 1 ? "" : "s", inet_ntoa(mud));
	eh_ring_close(&ring);
	return 0;
}

/*
 * The debugging view of the replay buffers (one MUD's, or every MUD's that
 * has one). --peek (the default) only looks: what a replay needs stays
 * there. --drain consumes what it prints.
 */
static int cmd_ring(struct eh_dp *dp, struct args *a)
{
	struct ring_ctx ctx = { .dp = dp, .a = a };
	struct in_addr mud;
	int err = 0;

	if (a->peek && a->drain) {
		fprintf(stderr, "edgehop-ap: ring takes --peek or --drain, not both\n");
		return -EINVAL;
	}
	if (a->pos && parse_addr(a->pos, &mud))
		return -EINVAL;
	if (json)
		printf("[");
	if (a->pos)
		ring_one(&ctx, mud);
	else
		err = eh_dp_ring_foreach(dp, ring_one, &ctx);
	if (json)
		printf("]\n");
	if (a->pos && ctx.err)
		return ctx.err;
	return err;
}

static int cmd_replay(struct eh_dp *dp, struct args *a, bool cutover)
{
	struct eh_replay_opts o = {};
	struct eh_replayer r;
	struct eh_log log;
	char subject[32];
	struct timespec t0, t1;
	long n = 0;
	int err;

	err = parse_addr(a->pos, &o.mud);
	if (err)
		return err;
	if (!a->to) {
		fprintf(stderr, "edgehop-ap: %s needs --to IP:PORT (the new container)\n",
			cutover ? "cutover" : "replay");
		return -EINVAL;
	}
	err = addr_port_arg(a->to, &o.backend, &o.backend_port);
	if (err)
		return err;
	err = eh_log_open(&log, a->logrepo, a->role ? a->role : "AP");
	if (err) {
		fprintf(stderr, "edgehop-ap: --logrepo %s: %s\n", a->logrepo, strerror(-err));
		return err;
	}
	err = eh_replayer_init(&r, dp, &o);
	if (err) {
		eh_log_close(&log);
		return err;
	}
	snprintf(subject, sizeof(subject), "MUD-%u", a->mud_id);
	eh_log_event(&log, a->to, subject, cutover ? "replay begins" : "replay", NULL, NULL,
		     "run=%s", a->run ? a->run : "");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (cutover)
		err = eh_replayer_cutover(&r, a->mud_id);
	else
		n = eh_replayer_drain(&r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n < 0)
		err = n;
	double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	/* T8 done: logrepo measures the migration up to this event. */
	eh_log_event(&log, a->to, subject, err ? "migr failed" : cutover ? "migr finished" : "replayed",
		     NULL, NULL, "run=%s replayed=%llu relayed=%llu ms=%.3f",
		     a->run ? a->run : "", (unsigned long long)r.st.replayed,
		     (unsigned long long)r.st.relayed, ms);
	eh_log_close(&log);
	if (json)
		printf("{\"ok\":%s,\"error\":\"%s\",\"replayed\":%llu,\"relayed\":%llu,"
		       "\"resent\":%llu,\"first_seq\":%llu,\"last_seq\":%llu,\"consumed\":%llu,"
		       "\"skipped\":%llu,\"dups\":%llu,\"held_dropped\":%llu,\"verified\":%llu,"
		       "\"backend_next\":%u,\"ms\":%.3f}\n", err ? "false" : "true",
		       err ? strerror(-err) : "",
		       (unsigned long long)r.st.replayed, (unsigned long long)r.st.relayed,
		       (unsigned long long)r.st.resent, (unsigned long long)r.st.first_seq,
		       (unsigned long long)r.st.last_seq, (unsigned long long)r.st.consumed,
		       (unsigned long long)r.st.skipped, (unsigned long long)r.st.dups,
		       (unsigned long long)r.st.held_dropped, (unsigned long long)r.st.verified,
		       r.st.backend_next, ms);
	else
		printf("%s: replayed %llu (answers relayed to the MUD: %llu, resent %llu; "
		       "records consumed %llu, already held %llu, duplicates %llu; "
		       "digests verified %llu) in %.1f ms\n",
		       cutover ? "cutover" : "replay", (unsigned long long)r.st.replayed,
		       (unsigned long long)r.st.relayed, (unsigned long long)r.st.resent,
		       (unsigned long long)r.st.consumed, (unsigned long long)r.st.skipped,
		       (unsigned long long)r.st.dups, (unsigned long long)r.st.verified, ms);
	eh_replayer_fini(&r);
	return err;
}

/* del MUD_IP and clear-flags MUD_IP. */
static int cmd_entry(struct eh_dp *dp, struct args *a, bool del)
{
	struct in_addr mud;
	int err = parse_addr(a->pos, &mud);

	if (err)
		return err;
	err = del ? eh_dp_steer_del(dp, mud) : eh_dp_steer_clear_flags(dp, mud);
	if (err)
		fprintf(stderr, "edgehop-ap: %s %s: %s\n", del ? "del" : "clear-flags", a->pos,
			strerror(-err));
	return err;
}

static int cmd_del(struct eh_dp *dp, struct args *a) { return cmd_entry(dp, a, true); }
static int cmd_clear_flags(struct eh_dp *dp, struct args *a) { return cmd_entry(dp, a, false); }
static int cmd_replay_only(struct eh_dp *dp, struct args *a) { return cmd_replay(dp, a, false); }
static int cmd_cutover(struct eh_dp *dp, struct args *a) { return cmd_replay(dp, a, true); }

static const struct {
	const char *name;
	int (*fn)(struct eh_dp *dp, struct args *a);
	bool needs_maps;	/* works on a loaded dataplane's pinned maps */
} commands[] = {
	{ "load", cmd_load, false },
	{ "unload", cmd_unload, false },
	{ "set", cmd_set, true },
	{ "del", cmd_del, true },
	{ "clear-flags", cmd_clear_flags, true },
	{ "show", cmd_show, true },
	{ "stats", cmd_stats, true },
	{ "ring", cmd_ring, true },
	{ "replay", cmd_replay_only, true },
	{ "cutover", cmd_cutover, true },
};

int main(int argc, char **argv)
{
	struct eh_dp dp, *dpp = NULL;
	struct args a;
	size_t c;
	int i, err;

	/* Global options before the command. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--pin") && i + 1 < argc)
			pin = argv[++i];
		else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
			verbose = true;
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	for (c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
		if (!strcmp(argv[i], commands[c].name))
			break;
	if (c == sizeof(commands) / sizeof(commands[0])) {
		fprintf(stderr, "edgehop-ap: unknown command '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (parse_args(argc - i, argv + i, &a))
		return 2;
	if (commands[c].needs_maps) {
		if (eh_dp_open(&dp, pin))
			return 1;
		dpp = &dp;
	}
	err = commands[c].fn(dpp, &a);
	if (dpp)
		eh_dp_close(dpp);
	return err ? 1 : 0;
}
