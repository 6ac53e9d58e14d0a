// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop-mud: the mobile user device emulator.
 *
 * Associates with its first AP, sends offload requests (seq from --start-seq)
 * to the service address at a fixed rate, retries unanswered ones, checks
 * every answer against the digest chain it computes itself, hands off to
 * other APs on a schedule (REASSOCIATION REQUEST + route to the VIP through
 * the new AP's gateway), reports every SVCQ/SVCR to logrepo and ends with a
 * report. Exit status: 0 only with nothing lost, no mismatch, no failed
 * handoff, and no answer from anywhere but the service address.
 *
 * The request socket is not connected: the source address of each request
 * is picked per datagram from the route to the VIP, which a handoff moves to
 * another AP's cell (another address). So the MUD checks every answer's
 * source itself: one not from VIP:port is counted as foreign and fails the
 * run (it shows a dataplane that answered from the backend's address).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <endian.h>
#include <sys/socket.h>

#include "eh_digest.h"
#include "eh_log.h"
#include "eh_parse.h"
#include "eh_stats.h"
#include "eh_time.h"
#include "mud_route.h"

#define MAX_APS		16
#define MAX_HANDOFFS	64
#define MAX_PHASES	(2 * MAX_HANDOFFS + 1)
#define MAX_WINDOW	32	/* <= the service's SVC_CACHE */
#define MAX_COUNT	50000000u
#define EH_REASON_LEN	200	/* an ASSOC_FAIL reason kept for the report */
#define MAX_EPOCHS	(MAX_HANDOFFS + 64)	/* APs the MUD was at, in order */

struct ap {
	char name[EH_NAME_LEN];
	struct sockaddr_in agent;
	struct in_addr gw;
	bool has_gw;
};

struct handoff {
	uint32_t seq;		/* before sending this seq */
	int ap;			/* index in aps[] */
	bool done, ok;
	double ms;		/* REASSOC sent -> READY received */
	char error[EH_REASON_LEN + 64];	/* why it failed (the agent's reason) */
};

struct req {
	uint64_t first_mono, last_mono, ans_mono;
	uint64_t last_wire_ns;	/* send_ns of the latest try (echoed back) */
	uint8_t expect[EH_DIGEST_LEN];
	uint16_t tries;
	uint16_t epoch;		/* the AP stay it was first sent in */
	uint8_t answered, mismatch, lost, phase, stale;
};

struct phase {
	char name[24];
	uint32_t n;
	double *rtt_ms;		/* answered requests of this phase */
};

struct mud {
	/* options */
	struct sockaddr_in svc;
	uint32_t mud_id, count, start_seq, window;
	double rate;
	unsigned int timeout_ms, give_up_ms, payload_bytes, assoc_timeout_ms;
	uint8_t init_digest[EH_DIGEST_LEN];
	const char *json_path, *name, *run;
	struct ap aps[MAX_APS];
	int naps, cur_ap;
	struct handoff ho[MAX_HANDOFFS];
	int nho;
	bool quiet;
	char svc_str[INET_ADDRSTRLEN];

	/* run state */
	int fd, agent_fd;
	struct eh_log log;
	struct req *reqs;
	uint32_t next;		/* index of the next request to send first */
	uint32_t outstanding[MAX_WINDOW];
	uint32_t nout;
	uint8_t chain[EH_DIGEST_LEN];
	struct phase phases[MAX_PHASES];
	int nphases, cur_phase;
	char pre_server[EH_NAME_LEN];	/* who served before the last handoff */
	char last_server[EH_NAME_LEN];
	/*
	 * AP stays ("epochs"): a new one at each handoff, ours (--handoff) or
	 * seen as a new source address towards the VIP (routes moved by
	 * someone else). epoch_pre[e]: the server that answered last before
	 * stay e began; its answers to requests sent during stay e came
	 * through the new AP forwarding to the old container.
	 */
	int probe_fd;
	struct in_addr cur_src;
	uint16_t epoch;
	char epoch_pre[MAX_EPOCHS][EH_NAME_LEN];
	char assoc_error[EH_REASON_LEN];	/* last ASSOC_FAIL reason */
	char servers[8][EH_NAME_LEN];
	int nservers;

	/* counters */
	uint64_t transmissions, retries, answered, dup_answers, cached_answers;
	uint64_t late_answers, mismatches, lost, foreign, forwarded;
	uint64_t bad_answers;	/* from VIP:port, but not an answer to us */
	uint64_t handoff_failures;
	uint64_t gap_answers;	/* EH_F_GAP: the service waits for an earlier seq */
	uint64_t stale_answers;	/* EH_F_STALE to a seq already answered: harmless */
	uint64_t stale_errors;	/* EH_F_STALE to a seq never answered: unverifiable */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Who the MUD talks through: its AP, or without one the service address. */
static const char *cur_ap_name(struct mud *m)
{
	return m->naps ? m->aps[m->cur_ap].name : m->svc_str;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: edgehop-mud --svc VIP:PORT [--mud-id N] [--count N] [--rate R]\n"
"         [--window W] [--timeout-ms T] [--give-up-ms G] [--start-seq N]\n"
"         [--initial-digest HEX] [--payload-bytes N] [--json FILE]\n"
"         [--logrepo IP:PORT] [--name NAME] [--run ID] [--assoc-timeout-ms T]\n"
"         [--ap NAME=AGENT_IP:PORT[,GW_IP]]... [--handoff SEQ:NAME]... [--quiet]\n"
"  --rate R         requests per second (default 1); 0: as fast as answers come\n"
"  --window W       requests in flight at once (default 1, max %d)\n"
"  --timeout-ms T   retry a request unanswered after T ms (default 1000)\n"
"  --give-up-ms G   count a request lost G ms after its first send (default 30000)\n"
"  --ap ...         an AP: its agent's address and the gateway the route to the\n"
"                   VIP goes through; the first --ap is associated at start\n"
"  --handoff SEQ:AP before sending SEQ, reassociate with AP and move the route\n"
"  --assoc-timeout-ms T  an (re)association fails T ms after its first request\n"
"                   (default 60000; the request is repeated every second): an\n"
"                   agent creates or restores the MUD's container before READY\n"
"  Exit status 0 only if nothing was lost, nothing mismatched, no handoff failed,\n"
"  no request was answered STALE before it was answered, and every datagram\n"
"  came from VIP:PORT and was an answer to this MUD.\n",
		MAX_WINDOW);
}

static int find_ap(struct mud *m, const char *name)
{
	for (int i = 0; i < m->naps; i++)
		if (!strcmp(m->aps[i].name, name))
			return i;
	return -1;
}

/* NAME=AGENT_IP:PORT[,GW_IP] */
static int parse_ap(struct mud *m, const char *arg)
{
	char tmp[128], *eq, *comma;
	struct ap *ap;

	if (m->naps >= MAX_APS || strlen(arg) >= sizeof(tmp))
		return -EINVAL;
	strcpy(tmp, arg);
	eq = strchr(tmp, '=');
	if (!eq || eq == tmp || eq - tmp >= EH_NAME_LEN)
		return -EINVAL;
	*eq = '\0';
	ap = &m->aps[m->naps];
	memset(ap, 0, sizeof(*ap));
	strcpy(ap->name, tmp);
	comma = strchr(eq + 1, ',');
	if (comma) {
		*comma = '\0';
		if (inet_pton(AF_INET, comma + 1, &ap->gw) != 1)
			return -EINVAL;
		ap->has_gw = true;
	}
	if (eh_parse_ipv4_port(eq + 1, &ap->agent))
		return -EINVAL;
	m->naps++;
	return 0;
}

static int parse_args(struct mud *m, int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "svc", required_argument, NULL, 's' },
		{ "mud-id", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'W' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "give-up-ms", required_argument, NULL, 'g' },
		{ "start-seq", required_argument, NULL, 'S' },
		{ "initial-digest", required_argument, NULL, 'D' },
		{ "payload-bytes", required_argument, NULL, 'b' },
		{ "json", required_argument, NULL, 'j' },
		{ "logrepo", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "run", required_argument, NULL, 'R' },
		{ "ap", required_argument, NULL, 'a' },
		{ "handoff", required_argument, NULL, 'H' },
		{ "assoc-timeout-ms", required_argument, NULL, 'A' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *svc = NULL, *logrepo = NULL;
	char *handoffs[MAX_HANDOFFS];
	int c, nh = 0, i;
	uint32_t v;
	char *end;

	m->mud_id = 1;
	m->count = 100;
	m->rate = 1.0;
	m->window = 1;
	m->timeout_ms = 1000;
	m->give_up_ms = 30000;
	m->payload_bytes = 64;
	m->assoc_timeout_ms = 60000;
	m->name = "USER";
	while ((c = getopt_long(argc, argv, "hq", lopts, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 's': svc = optarg; break;
		case 'i': bad = eh_parse_u32(optarg, UINT32_MAX, &m->mud_id); break;
		case 'c': bad = eh_parse_u32(optarg, MAX_COUNT, &m->count); break;
		case 'r':
			m->rate = strtod(optarg, &end);
			bad = *end || end == optarg || !(m->rate >= 0) || m->rate > 1e7;
			break;
		case 'W':
			bad = eh_parse_u32(optarg, MAX_WINDOW, &m->window) || !m->window;
			break;
		case 't':
			bad = eh_parse_u32(optarg, 3600000, &v) || !v;
			m->timeout_ms = v;
			break;
		case 'g':
			bad = eh_parse_u32(optarg, 86400000, &v) || !v;
			m->give_up_ms = v;
			break;
		case 'A':
			bad = eh_parse_u32(optarg, 3600000, &v) || !v;
			m->assoc_timeout_ms = v;
			break;
		case 'S': bad = eh_parse_u32(optarg, UINT32_MAX, &m->start_seq); break;
		case 'D': bad = eh_digest_parse(optarg, m->init_digest); break;
		case 'b':
			bad = eh_parse_u32(optarg, EH_BODY_MAX, &v);
			m->payload_bytes = v;
			break;
		case 'j': m->json_path = optarg; break;
		case 'l': logrepo = optarg; break;
		case 'n': m->name = optarg; break;
		case 'R': m->run = optarg; break;
		case 'a': bad = parse_ap(m, optarg); break;
		case 'H':
			if (nh >= MAX_HANDOFFS)
				bad = 1;
			else
				handoffs[nh++] = optarg;
			break;
		case 'q': m->quiet = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
		if (bad) {
			for (i = 0; lopts[i].name && lopts[i].val != c; i++)
				;
			fprintf(stderr, "edgehop-mud: bad value '%s' for --%s\n",
				optarg, lopts[i].name ? lopts[i].name : "?");
			return -EINVAL;
		}
	}
	if (optind != argc || !svc || eh_parse_ipv4_port(svc, &m->svc)) {
		fprintf(stderr, "edgehop-mud: --svc VIP:PORT is required (IPv4)\n");
		return -EINVAL;
	}
	for (i = 0; i < nh; i++) {
		char *colon = strchr(handoffs[i], ':');
		int ap;

		if (!colon) {
			fprintf(stderr, "edgehop-mud: --handoff wants SEQ:AP, got '%s'\n",
				handoffs[i]);
			return -EINVAL;
		}
		*colon = '\0';
		ap = find_ap(m, colon + 1);
		if (eh_parse_u32(handoffs[i], UINT32_MAX, &m->ho[i].seq) || ap < 0) {
			fprintf(stderr, "edgehop-mud: --handoff %s:%s: bad seq or AP not given with --ap\n",
				handoffs[i], colon + 1);
			return -EINVAL;
		}
		if (i && m->ho[i].seq <= m->ho[i - 1].seq) {
			fprintf(stderr, "edgehop-mud: --handoff seqs must increase\n");
			return -EINVAL;
		}
		m->ho[i].ap = ap;
	}
	m->nho = nh;
	inet_ntop(AF_INET, &m->svc.sin_addr, m->svc_str, sizeof(m->svc_str));
	if (eh_log_open(&m->log, logrepo, m->name)) {
		fprintf(stderr, "edgehop-mud: bad --logrepo '%s' or --name '%s'\n",
			logrepo, m->name);
		return -EINVAL;
	}
	return 0;
}

/* ---- association ---------------------------------------------------------- */

/*
 * Send (RE)ASSOC_REQ to @ap's agent and wait for its READY, repeating the
 * request every ASSOC_RETRY_MS until --assoc-timeout-ms after the first: the
 * agent answers only once the MUD's container serves (or, on REASSOC, once it
 * steers the MUD), which takes seconds. Returns 0, -ECONNREFUSED on
 * ASSOC_FAIL (its reason text in m->assoc_error), -ETIMEDOUT.
 *
 * Repeats are harmless here: any READY of the wanted type (whichever try it
 * echoes) completes the association, and the READYs an agent sends to the
 * other tries land on this socket, which nobody reads again (the next
 * association opens a fresh one).
 */
#define ASSOC_RETRY_MS	1000

/* The agent's reason (ASSOC_FAIL body, text, not NUL-terminated), printable. */
static void fail_reason(struct mud *m, const uint8_t *pkt, ssize_t n)
{
	const struct eh_hdr *h = (const void *)pkt;
	size_t len = ntohl(h->len), i;

	if (len > (size_t)n - sizeof(*h))
		len = (size_t)n - sizeof(*h);
	if (len > sizeof(m->assoc_error) - 1)
		len = sizeof(m->assoc_error) - 1;
	for (i = 0; i < len; i++) {
		char c = (char)pkt[sizeof(*h) + i];

		/* kept printable and JSON-safe: it goes into the report */
		m->assoc_error[i] = c < ' ' || c > '~' || c == '"' || c == '\\' ? '_' : c;
	}
	m->assoc_error[i] = '\0';
	if (!len)
		snprintf(m->assoc_error, sizeof(m->assoc_error), "(no reason given)");
}

static int associate(struct mud *m, int ap_idx, bool reassoc, double *ms)
{
	struct ap *ap = &m->aps[ap_idx];
	const char *ev = reassoc ? "REASSOCIATION REQUEST" : "ASSOCIATION REQUEST";
	uint8_t pkt[sizeof(struct eh_hdr) + sizeof(struct eh_assoc_body)];
	struct eh_hdr *h = (void *)pkt;
	struct eh_assoc_body *b = (void *)(pkt + sizeof(*h));
	uint8_t want = reassoc ? EH_T_REASSOC_READY : EH_T_ASSOC_READY;
	struct sockaddr_in local;
	socklen_t llen = sizeof(local);
	uint64_t t0 = eh_mono_ns();
	uint64_t end = t0 + m->assoc_timeout_ms * 1000000ull;
	unsigned int every = m->assoc_timeout_ms < ASSOC_RETRY_MS ?
			     m->assoc_timeout_ms : ASSOC_RETRY_MS;
	char agent[INET_ADDRSTRLEN];
	int tries;

	inet_ntop(AF_INET, &ap->agent.sin_addr, agent, sizeof(agent));
	/*
	 * A fresh socket per AP: a connected UDP socket keeps the source
	 * address of its first connect(), which is the old AP's subnet.
	 */
	if (m->agent_fd >= 0)
		close(m->agent_fd);
	m->agent_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (m->agent_fd < 0)
		return -errno;
	/* connect() also tells us our source address towards the agent */
	if (connect(m->agent_fd, (struct sockaddr *)&ap->agent, sizeof(ap->agent)) ||
	    getsockname(m->agent_fd, (struct sockaddr *)&local, &llen))
		return -errno;
	memset(pkt, 0, sizeof(pkt));
	h->magic = htonl(EH_MAGIC);
	h->version = EH_VERSION;
	h->type = reassoc ? EH_T_REASSOC_REQ : EH_T_ASSOC_REQ;
	h->mud_id = htonl(m->mud_id);
	h->len = htonl(sizeof(*b));
	b->mud_addr = local.sin_addr.s_addr;
	if (reassoc)
		b->prev_ap_addr = m->aps[m->cur_ap].agent.sin_addr.s_addr;
	snprintf(b->mud_name, sizeof(b->mud_name), "%s", m->name);

	for (tries = 0; eh_mono_ns() < end && !stop; tries++) {
		uint64_t deadline;

		h->seq = htonl(tries);
		h->send_ns = htobe64(eh_real_ns());
		if (send(m->agent_fd, pkt, sizeof(pkt), 0) < 0 &&
		    errno != ECONNREFUSED)
			return -errno;
		eh_log_event(&m->log, ap->name, m->name, ev, NULL, "sent",
			     "run=%s mud=%u try=%d", m->run, m->mud_id, tries);
		deadline = eh_mono_ns() + every * 1000000ull;
		if (deadline > end)
			deadline = end;
		while (eh_mono_ns() < deadline && !stop) {
			struct pollfd pfd = { .fd = m->agent_fd, .events = POLLIN };
			uint8_t in[1500];
			struct eh_hdr *r = (void *)in;
			ssize_t n;

			if (poll(&pfd, 1, (int)((deadline - eh_mono_ns()) / 1000000) + 1) <= 0)
				continue;
			n = recv(m->agent_fd, in, sizeof(in), 0);
			if (n < (ssize_t)sizeof(*r) || ntohl(r->magic) != EH_MAGIC ||
			    ntohl(r->mud_id) != m->mud_id)
				continue;
			if (r->type == EH_T_ASSOC_FAIL) {
				fail_reason(m, in, n);
				eh_log_event(&m->log, agent, ap->name, "ASSOC-FAIL",
					     NULL, "recvd", "run=%s mud=%u", m->run,
					     m->mud_id);
				return -ECONNREFUSED;
			}
			if (r->type != want)
				continue;
			*ms = (eh_mono_ns() - t0) / 1e6;
			eh_log_event(&m->log, agent, ap->name,
				     reassoc ? "REASSOC-READY" : "READY", NULL,
				     "recvd", "run=%s mud=%u ms=%.3f", m->run,
				     m->mud_id, *ms);
			return 0;
		}
	}
	return -ETIMEDOUT;
}

static int move_route(struct mud *m, int ap_idx)
{
	struct ap *ap = &m->aps[ap_idx];
	char msg[256], gw[INET_ADDRSTRLEN];
	int err;

	if (!ap->has_gw)
		return 0;
	err = mud_route_replace(m->svc.sin_addr, ap->gw, msg, sizeof(msg));
	inet_ntop(AF_INET, &ap->gw, gw, sizeof(gw));
	if (err) {
		fprintf(stderr, "edgehop-mud: route to the VIP via %s (%s): %s%s%s\n",
			gw, ap->name, strerror(-err), msg[0] ? ": " : "", msg);
		return err;
	}
	eh_log_event(&m->log, ap->name, m->name, "ROUTE", NULL, NULL,
		     "run=%s mud=%u gw=%s", m->run, m->mud_id, gw);
	return 0;
}

/* ---- AP stays --------------------------------------------------------------- */

/* Our source address towards the VIP now (the route's, as a send would use). */
static struct in_addr route_src(struct mud *m)
{
	struct sockaddr_in local = {}, none = { .sin_family = AF_UNSPEC };
	socklen_t llen = sizeof(local);

	/* disconnect first: a connected UDP socket keeps its first source */
	connect(m->probe_fd, (struct sockaddr *)&none, sizeof(none));
	if (connect(m->probe_fd, (struct sockaddr *)&m->svc, sizeof(m->svc)) ||
	    getsockname(m->probe_fd, (struct sockaddr *)&local, &llen))
		local.sin_addr.s_addr = 0;
	return local.sin_addr;
}

static void new_epoch(struct mud *m)
{
	if (m->epoch + 1 < MAX_EPOCHS)
		m->epoch++;
	memcpy(m->epoch_pre[m->epoch], m->last_server, EH_NAME_LEN);
	m->cur_src = route_src(m);
}

/* A route moved behind our back (no --handoff) is a handoff too. */
static void check_route(struct mud *m)
{
	struct in_addr a = route_src(m);

	if (a.s_addr && m->cur_src.s_addr && a.s_addr != m->cur_src.s_addr)
		new_epoch(m);
	else if (a.s_addr)
		m->cur_src = a;
}

/* ---- phases ---------------------------------------------------------------- */

static void new_phase(struct mud *m, const char *fmt, int k)
{
	struct phase *p = &m->phases[m->nphases];

	snprintf(p->name, sizeof(p->name), fmt, k);
	m->cur_phase = m->nphases++;
}

static void do_handoff(struct mud *m, struct handoff *ho, int k)
{
	int err;

	if (!m->quiet)
		fprintf(stderr, "edgehop-mud: handoff %d at seq %u: %s -> %s\n", k,
			ho->seq, cur_ap_name(m), m->aps[ho->ap].name);
	ho->done = true;
	memcpy(m->pre_server, m->last_server, EH_NAME_LEN);
	err = associate(m, ho->ap, true, &ho->ms);
	if (err) {
		if (err == -ECONNREFUSED)
			snprintf(ho->error, sizeof(ho->error), "refused: %s", m->assoc_error);
		else
			snprintf(ho->error, sizeof(ho->error), "%s", strerror(-err));
		fprintf(stderr, "edgehop-mud: REASSOCIATION with %s failed: %s; staying on %s\n",
			m->aps[ho->ap].name, ho->error, cur_ap_name(m));
		m->handoff_failures++;
		return;
	}
	err = move_route(m, ho->ap);
	if (err) {
		snprintf(ho->error, sizeof(ho->error), "route to the VIP: %s", strerror(-err));
		m->handoff_failures++;
		return;
	}
	ho->ok = true;
	m->cur_ap = ho->ap;
	new_phase(m, "during-%d", k);
	new_epoch(m);
}

/* ---- requests ---------------------------------------------------------------- */

static int send_try(struct mud *m, uint32_t idx)
{
	uint8_t pkt[sizeof(struct eh_hdr) + EH_BODY_MAX];
	struct eh_hdr *h = (void *)pkt;
	struct req *r = &m->reqs[idx];
	uint32_t seq = m->start_seq + idx;
	char arg[16];
	uint64_t now = eh_mono_ns();

	memset(h, 0, sizeof(*h));
	h->magic = htonl(EH_MAGIC);
	h->version = EH_VERSION;
	h->type = EH_T_SVCQ;
	h->flags = htons(r->tries ? EH_F_RETRY : 0);
	h->mud_id = htonl(m->mud_id);
	h->seq = htonl(seq);
	r->last_wire_ns = eh_real_ns();
	h->send_ns = htobe64(r->last_wire_ns);
	h->len = htonl(m->payload_bytes);
	eh_payload_fill(m->mud_id, seq, pkt + sizeof(*h), m->payload_bytes);
	if (!r->tries) {
		r->first_mono = now;
		r->phase = (uint8_t)m->cur_phase;
	} else {
		m->retries++;
	}
	r->last_mono = now;
	r->tries++;
	m->transmissions++;
	/* a send that fails (no route mid-handoff) is just a lost try */
	sendto(m->fd, pkt, sizeof(*h) + m->payload_bytes, 0,
	       (struct sockaddr *)&m->svc, sizeof(m->svc));
	snprintf(arg, sizeof(arg), "%u", seq);
	eh_log_event(&m->log, cur_ap_name(m), m->name, "SVCQ", arg, "sent",
		     "run=%s mud=%u try=%u phase=%s", m->run, m->mud_id, r->tries,
		     m->phases[m->cur_phase].name);
	return 0;
}

static void send_first(struct mud *m)
{
	uint32_t idx = m->next++;
	uint32_t seq = m->start_seq + idx;
	uint8_t pl[EH_BODY_MAX];

	check_route(m);
	m->reqs[idx].epoch = m->epoch;
	/* the expected answer: the chain advanced by this request */
	eh_payload_fill(m->mud_id, seq, pl, m->payload_bytes);
	eh_digest_step(m->chain, seq, pl, m->payload_bytes, m->chain);
	memcpy(m->reqs[idx].expect, m->chain, EH_DIGEST_LEN);
	m->outstanding[m->nout++] = idx;
	send_try(m, idx);
}

/*
 * outstanding[] stays sorted by seq (new requests are appended, removal
 * keeps the order), so that retransmissions after a loss leave in seq order:
 * the service applies only the next seq and holds off the rest.
 */
static void remove_at(struct mud *m, uint32_t i)
{
	memmove(&m->outstanding[i], &m->outstanding[i + 1],
		(m->nout - i - 1) * sizeof(m->outstanding[0]));
	m->nout--;
}

static void drop_outstanding(struct mud *m, uint32_t idx)
{
	for (uint32_t i = 0; i < m->nout; i++) {
		if (m->outstanding[i] == idx) {
			remove_at(m, i);
			return;
		}
	}
}

static void note_server(struct mud *m, const char *srv)
{
	int i;

	for (i = 0; i < m->nservers; i++)
		if (!strcmp(m->servers[i], srv))
			return;
	if (m->nservers < 8)
		strcpy(m->servers[m->nservers++], srv);
}

/*
 * An SVCR flagged GAP or STALE answers nothing: the request stays
 * outstanding (retried on its timeout). GAP: the service waits for an earlier
 * seq, which our retries bring. STALE to a request already answered is a
 * late duplicate; STALE to one never answered means the service applied it
 * and we can never check its answer: an error, reported.
 */
static void position_answer(struct mud *m, const struct eh_hdr *h,
			    const char *srv, struct req *r, uint32_t seq)
{
	const struct eh_svcr_pos *p = (const void *)(h + 1);
	bool stale = ntohs(h->flags) & EH_F_STALE;
	char arg[16];

	if (!stale) {
		m->gap_answers++;
	} else if (r->answered) {
		m->stale_answers++;
	} else {
		if (!r->stale)
			m->stale_errors++;
		r->stale = 1;
		if (m->stale_errors <= 5)
			fprintf(stderr, "edgehop-mud: STALE answer to unanswered seq %u from %s (its next seq %u): applied, its answer lost for good\n",
				seq, srv, ntohl(p->next_seq));
	}
	snprintf(arg, sizeof(arg), "%u", seq);
	/* Not "SVCR": logrepo's report counts those as answers. */
	eh_log_event(&m->log, srv, cur_ap_name(m), stale ? "SVCR-STALE" : "SVCR-GAP",
		     arg, "recvd", "run=%s mud=%u next_seq=%u", m->run, m->mud_id,
		     ntohl(p->next_seq));
}

static void handle_answer(struct mud *m, const uint8_t *buf, ssize_t n,
			  const struct sockaddr_in *src)
{
	const struct eh_hdr *h = (const void *)buf;
	const struct eh_svcr_body *b = (const void *)(buf + sizeof(*h));
	uint8_t pl[EH_BODY_MAX];
	char srv[EH_NAME_LEN], arg[16];
	uint32_t seq, idx;
	bool mismatch, dup, late, fwd = false;
	struct req *r;
	uint64_t now = eh_mono_ns();

	if (src->sin_addr.s_addr != m->svc.sin_addr.s_addr ||
	    src->sin_port != m->svc.sin_port) {
		/* only the dataplane's rewrite makes answers come from the VIP */
		if (m->foreign++ < 5)
			fprintf(stderr, "edgehop-mud: FOREIGN datagram from %s:%u (%zd bytes), not from the service address %s:%u\n",
				inet_ntoa(src->sin_addr), ntohs(src->sin_port), n,
				m->svc_str, ntohs(m->svc.sin_port));
		return;
	}
	if (n < (ssize_t)(sizeof(*h) + sizeof(*b)) || ntohl(h->magic) != EH_MAGIC ||
	    h->version != EH_VERSION || h->type != EH_T_SVCR ||
	    ntohl(h->len) < sizeof(*b) || ntohl(h->len) > n - sizeof(*h) ||
	    ntohl(h->mud_id) != m->mud_id ||
	    (idx = ntohl(h->seq) - m->start_seq) >= m->next) {
		if (m->bad_answers++ < 5)
			fprintf(stderr, "edgehop-mud: BAD answer from the service address (%zd bytes): not an answer to a request of MUD %u\n",
				n, m->mud_id);
		return;
	}
	seq = ntohl(h->seq);
	r = &m->reqs[idx];
	memcpy(srv, b->server, EH_NAME_LEN);
	srv[EH_NAME_LEN - 1] = '\0';
	for (char *p = srv; *p; p++)	/* keep it loggable */
		if (*p <= ' ' || *p > '~' || *p == '"' || *p == '\\')
			*p = '_';
	if (ntohs(h->flags) & (EH_F_STALE | EH_F_GAP)) {
		position_answer(m, h, srv, r, seq);
		return;
	}
	eh_payload_fill(m->mud_id, seq, pl, m->payload_bytes);
	mismatch = memcmp(b->digest, r->expect, EH_DIGEST_LEN) ||
		   be64toh(b->result) != eh_offload_result(seq, pl, m->payload_bytes);
	dup = r->answered;
	late = be64toh(h->send_ns) != r->last_wire_ns;
	if (ntohs(h->flags) & EH_F_DUP)
		m->cached_answers++;
	if (mismatch && !r->mismatch) {
		r->mismatch = 1;
		m->mismatches++;
		char got[65], want[65];

		eh_digest_hex(b->digest, got);
		eh_digest_hex(r->expect, want);
		if (m->mismatches <= 5)
			fprintf(stderr, "edgehop-mud: MISMATCH seq %u from %s: digest %s, expected %s\n",
				seq, srv, got, want);
	}
	if (dup) {
		m->dup_answers++;
	} else {
		if (late)
			m->late_answers++;
		r->answered = 1;
		r->ans_mono = now;
		m->answered++;
		if (r->lost) {		/* answered after we had given up */
			r->lost = 0;
			m->lost--;
		} else {
			drop_outstanding(m, idx);
		}
		note_server(m, srv);
		/* a migration ends for us when a new server answers */
		if (!strncmp(m->phases[m->cur_phase].name, "during", 6) &&
		    m->pre_server[0] && strcmp(srv, m->pre_server)) {
			int k = atoi(m->phases[m->cur_phase].name + 7);

			new_phase(m, "after-%d", k);
		}
		/*
		 * Sent from a new AP and answered by the server that served
		 * before we got there: the new AP forwarded it to the old
		 * container.
		 */
		if (r->epoch && m->epoch_pre[r->epoch][0] &&
		    !strcmp(srv, m->epoch_pre[r->epoch])) {
			fwd = true;
			m->forwarded++;
		}
		snprintf(m->last_server, sizeof(m->last_server), "%s", srv);
	}
	snprintf(arg, sizeof(arg), "%u", seq);
	eh_log_event(&m->log, srv, cur_ap_name(m), "SVCR", arg, "recvd",
		     "run=%s mud=%u rtt_ns=%llu phase=%s dup=%d cached=%d late=%d mismatch=%d fwd=%d",
		     m->run, m->mud_id, (unsigned long long)(now - r->first_mono), m->phases[r->phase].name,
		     dup, !!(ntohs(h->flags) & EH_F_DUP), late, mismatch, fwd);
}

static void check_timeouts(struct mud *m)
{
	uint64_t now = eh_mono_ns();
	uint32_t i = 0;

	while (i < m->nout) {
		uint32_t idx = m->outstanding[i];
		struct req *r = &m->reqs[idx];
		char arg[16];

		if (now - r->first_mono >= m->give_up_ms * 1000000ull) {
			r->lost = 1;
			m->lost++;
			snprintf(arg, sizeof(arg), "%u", m->start_seq + idx);
			eh_log_event(&m->log, cur_ap_name(m), m->name, "SVCQ", arg,
				     "lost", "run=%s mud=%u tries=%u", m->run,
				     m->mud_id, r->tries);
			remove_at(m, i);
			continue;
		}
		if (now - r->last_mono >= m->timeout_ms * 1000000ull)
			send_try(m, idx);
		i++;
	}
}

/*
 * A sliding window: a new request only while it is within --window of the
 * oldest unanswered one (not merely while fewer are in flight), so that a
 * retransmission is never older than the service's reply cache.
 *
 * Until the first request is answered the window is 1: a service starts a
 * MUD's session at the first seq it sees, so if request 0 were lost and
 * request 1 overtook it, the session would start at 1 (and 0 be stale).
 */
static bool window_open(const struct mud *m)
{
	uint32_t window = m->answered ? m->window : 1;

	return m->next < m->count &&
	       (!m->nout || m->next - m->outstanding[0] < window);
}

/* Next instant (mono ns) at which something is due; 0: now. */
static uint64_t next_due(struct mud *m, uint64_t t0)
{
	uint64_t due = UINT64_MAX, now = eh_mono_ns();

	if (window_open(m)) {
		uint64_t t = m->rate > 0 ?
			t0 + (uint64_t)((double)m->next * 1e9 / m->rate) : now;
		due = t;
	}
	for (uint32_t i = 0; i < m->nout; i++) {
		struct req *r = &m->reqs[m->outstanding[i]];
		uint64_t t = r->last_mono + m->timeout_ms * 1000000ull;
		uint64_t g = r->first_mono + m->give_up_ms * 1000000ull;

		if (t < due)
			due = t;
		if (g < due)
			due = g;
	}
	return due;
}

static int run(struct mud *m)
{
	uint64_t t0 = eh_mono_ns();
	int hk = 0;

	while (!stop && (m->next < m->count || m->nout)) {
		uint64_t now = eh_mono_ns(), due;
		struct pollfd pfd = { .fd = m->fd, .events = POLLIN };
		int wait_ms;

		/* a handoff waits until the request before it was sent */
		if (hk < m->nho && m->start_seq + m->next == m->ho[hk].seq &&
		    !m->ho[hk].done) {
			do_handoff(m, &m->ho[hk], hk + 1);
			hk++;
			now = eh_mono_ns();
		}
		if (window_open(m) &&
		    (m->rate == 0 ||
		     now >= t0 + (uint64_t)((double)m->next * 1e9 / m->rate))) {
			if (!(hk < m->nho && m->start_seq + m->next == m->ho[hk].seq))
				send_first(m);
			continue;
		}
		check_timeouts(m);
		due = next_due(m, t0);
		now = eh_mono_ns();
		wait_ms = due == UINT64_MAX ? 1000 : due <= now ? 0 :
			  (int)((due - now + 999999) / 1000000);
		if (poll(&pfd, 1, wait_ms) > 0) {
			uint8_t buf[2048];
			struct sockaddr_in src;
			socklen_t slen;
			ssize_t n;

			for (;;) {
				slen = sizeof(src);
				n = recvfrom(m->fd, buf, sizeof(buf), MSG_DONTWAIT,
					     (struct sockaddr *)&src, &slen);
				if (n < 0)
					break;
				handle_answer(m, buf, n, &src);
			}
		}
	}
	return stop ? -EINTR : 0;
}

/* ---- report ----------------------------------------------------------------- */

static void build_phases(struct mud *m)
{
	uint32_t i;

	for (int p = 0; p < m->nphases; p++) {
		m->phases[p].rtt_ms = calloc(m->count ? m->count : 1, sizeof(double));
		m->phases[p].n = 0;
	}
	for (i = 0; i < m->next; i++) {
		struct req *r = &m->reqs[i];
		struct phase *p = &m->phases[r->phase];

		if (r->answered && p->rtt_ms)
			p->rtt_ms[p->n++] = (r->ans_mono - r->first_mono) / 1e6;
	}
	for (int p = 0; p < m->nphases; p++)
		if (m->phases[p].rtt_ms)
			eh_sort_doubles(m->phases[p].rtt_ms, m->phases[p].n);
}

static double fwd_pct(const struct mud *m)
{
	return m->answered ? 100.0 * m->forwarded / m->answered : 0;
}

static void report(struct mud *m, double elapsed_s, FILE *f, bool json)
{
	char hex[65];

	eh_digest_hex(m->chain, hex);
	if (!json) {
		fprintf(f, "MUD %u (%s) -> %s:%u  run %s  %.2f s\n", m->mud_id,
			m->name, inet_ntoa(m->svc.sin_addr), ntohs(m->svc.sin_port),
			m->run, elapsed_s);
		fprintf(f, "  sent %u  answered %llu  lost %llu  retries %llu  "
			"duplicate answers %llu (from cache %llu)  late %llu  "
			"mismatches %llu  forwarded %llu (%.1f%% of answered)  gap %llu  stale %llu (unanswered %llu)  "
			"foreign %llu  bad answers %llu\n", m->next,
			(unsigned long long)m->answered, (unsigned long long)m->lost,
			(unsigned long long)m->retries,
			(unsigned long long)m->dup_answers,
			(unsigned long long)m->cached_answers,
			(unsigned long long)m->late_answers,
			(unsigned long long)m->mismatches,
			(unsigned long long)m->forwarded, fwd_pct(m),
			(unsigned long long)m->gap_answers,
			(unsigned long long)m->stale_answers,
			(unsigned long long)m->stale_errors,
			(unsigned long long)m->foreign,
			(unsigned long long)m->bad_answers);
		for (int k = 0; k < m->nho; k++)
			fprintf(f, "  handoff %d at seq %u to %s: %s%s%s (%.1f ms)\n", k + 1,
				m->ho[k].seq, m->aps[m->ho[k].ap].name,
				!m->ho[k].done ? "not reached" : m->ho[k].ok ? "ok" : "FAILED",
				m->ho[k].error[0] ? ": " : "", m->ho[k].error, m->ho[k].ms);
		fprintf(f, "  %-10s %8s %10s %10s %10s %10s %10s\n", "phase",
			"requests", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms");
		for (int p = 0; p < m->nphases; p++) {
			struct phase *ph = &m->phases[p];
			double sum = 0;

			for (uint32_t i = 0; i < ph->n; i++)
				sum += ph->rtt_ms[i];
			fprintf(f, "  %-10s %8u %10.3f %10.3f %10.3f %10.3f %10.3f\n",
				ph->name, ph->n, eh_pct(ph->rtt_ms, ph->n, 0.5),
				eh_pct(ph->rtt_ms, ph->n, 0.9), eh_pct(ph->rtt_ms, ph->n, 0.99),
				ph->n ? ph->rtt_ms[ph->n - 1] : 0, ph->n ? sum / ph->n : 0);
		}
		fprintf(f, "  next seq %u, digest after seq %u: %s\n",
			m->start_seq + m->next, m->start_seq + m->next - 1, hex);
		if (m->log.fd >= 0)
			fprintf(f, "  log events sent %llu, dropped %llu\n",
				(unsigned long long)m->log.sent,
				(unsigned long long)m->log.dropped);
		return;
	}
	fprintf(f, "{\"run\":\"%s\",\"name\":\"%s\",\"mud_id\":%u,\"svc\":\"%s:%u\","
		"\"start_seq\":%u,\"count\":%u,\"elapsed_s\":%.3f,\"sent\":%u,"
		"\"transmissions\":%llu,\"answered\":%llu,\"lost\":%llu,"
		"\"retries\":%llu,\"duplicate_answers\":%llu,\"cached_answers\":%llu,"
		"\"late_answers\":%llu,\"mismatches\":%llu,\"foreign\":%llu,"
		"\"forwarded\":%llu,\"handoff_failures\":%llu,\"next_seq\":%u,"
		"\"final_digest\":\"%s\",\"log_sent\":%llu,\"log_dropped\":%llu,"
		"\"gap_answers\":%llu,\"stale_answers\":%llu,\"stale_errors\":%llu,"
		"\"forwarded_share\":%.6f,\"bad_answers\":%llu,",
		m->run, m->name, m->mud_id, inet_ntoa(m->svc.sin_addr),
		ntohs(m->svc.sin_port), m->start_seq, m->count, elapsed_s, m->next,
		(unsigned long long)m->transmissions, (unsigned long long)m->answered,
		(unsigned long long)m->lost, (unsigned long long)m->retries,
		(unsigned long long)m->dup_answers,
		(unsigned long long)m->cached_answers,
		(unsigned long long)m->late_answers,
		(unsigned long long)m->mismatches, (unsigned long long)m->foreign,
		(unsigned long long)m->forwarded,
		(unsigned long long)m->handoff_failures, m->start_seq + m->next, hex,
		(unsigned long long)m->log.sent, (unsigned long long)m->log.dropped,
		(unsigned long long)m->gap_answers, (unsigned long long)m->stale_answers,
		(unsigned long long)m->stale_errors, fwd_pct(m) / 100,
		(unsigned long long)m->bad_answers);
	fprintf(f, "\"servers\":[");
	for (int i = 0; i < m->nservers; i++)
		fprintf(f, "%s\"%s\"", i ? "," : "", m->servers[i]);
	fprintf(f, "],\"handoffs\":[");
	for (int k = 0; k < m->nho; k++)
		fprintf(f, "%s{\"seq\":%u,\"ap\":\"%s\",\"done\":%s,\"ok\":%s,\"ms\":%.3f,"
			"\"error\":\"%s\"}",
			k ? "," : "", m->ho[k].seq, m->aps[m->ho[k].ap].name,
			m->ho[k].done ? "true" : "false", m->ho[k].ok ? "true" : "false",
			m->ho[k].ms, m->ho[k].error);
	/* the failed ones again, with why: what a reader of the report looks for */
	fprintf(f, "],\"handoff_errors\":[");
	for (int k = 0, n = 0; k < m->nho; k++)
		if (m->ho[k].error[0])
			fprintf(f, "%s{\"seq\":%u,\"ap\":\"%s\",\"error\":\"%s\"}",
				n++ ? "," : "", m->ho[k].seq, m->aps[m->ho[k].ap].name,
				m->ho[k].error);
	fprintf(f, "],\"phases\":[");
	for (int p = 0; p < m->nphases; p++) {
		struct phase *ph = &m->phases[p];
		double sum = 0;

		for (uint32_t i = 0; i < ph->n; i++)
			sum += ph->rtt_ms[i];
		fprintf(f, "%s{\"name\":\"%s\",\"requests\":%u,\"p50_ms\":%.3f,"
			"\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f}",
			p ? "," : "", ph->name, ph->n, eh_pct(ph->rtt_ms, ph->n, 0.5),
			eh_pct(ph->rtt_ms, ph->n, 0.9), eh_pct(ph->rtt_ms, ph->n, 0.99),
			ph->n ? ph->rtt_ms[ph->n - 1] : 0, ph->n ? sum / ph->n : 0);
	}
	fprintf(f, "]}\n");
}

int main(int argc, char **argv)
{
	struct mud *m = calloc(1, sizeof(*m));
	struct sigaction sig;
	char runbuf[32];
	uint64_t t0;
	double ho_ms = 0, elapsed;
	int err = 0, rcvbuf = 4 << 20, rc;

	if (!m)
		return 1;
	m->fd = m->agent_fd = m->probe_fd = -1;
	m->log.fd = -1;
	if (parse_args(m, argc, argv)) {
		free(m);
		return 2;
	}
	if (!m->run) {
		snprintf(runbuf, sizeof(runbuf), "%u-%llu", m->mud_id,
			 (unsigned long long)(eh_real_ns() / 1000000));
		m->run = runbuf;
	}
	memset(&sig, 0, sizeof(sig));
	sig.sa_handler = on_signal;
	sigaction(SIGTERM, &sig, NULL);
	sigaction(SIGINT, &sig, NULL);

	memcpy(m->chain, m->init_digest, EH_DIGEST_LEN);
	new_phase(m, m->nho ? "before" : "all", 0);
	m->reqs = calloc(m->count ? m->count : 1, sizeof(*m->reqs));
	m->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	m->agent_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	m->probe_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!m->reqs || m->fd < 0 || m->agent_fd < 0 || m->probe_fd < 0) {
		err = -errno ?: -ENOMEM;
		fprintf(stderr, "edgehop-mud: setting up: %s\n", strerror(-err));
		goto cleanup;
	}
	setsockopt(m->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

	if (m->naps) {
		err = associate(m, 0, false, &ho_ms);
		if (err) {
			if (err == -ECONNREFUSED)
				fprintf(stderr, "edgehop-mud: ASSOCIATION with %s refused: %s\n",
					m->aps[0].name, m->assoc_error);
			else
				fprintf(stderr, "edgehop-mud: ASSOCIATION with %s failed: %s\n",
					m->aps[0].name, strerror(-err));
			goto cleanup;
		}
		err = move_route(m, 0);
		if (err)
			goto cleanup;
	}

	t0 = eh_mono_ns();
	err = run(m);
	elapsed = (eh_mono_ns() - t0) / 1e9;
	build_phases(m);
	eh_log_event(&m->log, NULL, NULL, "MUD REPORT", NULL, NULL,
		     "run=%s mud=%u sent=%u answered=%llu lost=%llu dups=%llu mismatches=%llu",
		     m->run, m->mud_id, m->next, (unsigned long long)m->answered,
		     (unsigned long long)m->lost, (unsigned long long)m->dup_answers,
		     (unsigned long long)m->mismatches);
	report(m, elapsed, stdout, false);
	if (m->json_path) {
		FILE *f = fopen(m->json_path, "w");

		if (!f) {
			fprintf(stderr, "edgehop-mud: cannot write %s: %s\n",
				m->json_path, strerror(errno));
			err = err ?: -errno;
		} else {
			report(m, elapsed, f, true);
			fclose(f);
		}
	}
	if (err == -EINTR)
		fprintf(stderr, "edgehop-mud: interrupted after %u requests\n", m->next);
cleanup:
	if (m->foreign || m->bad_answers)
		fprintf(stderr, "edgehop-mud: %llu foreign datagram(s) and %llu bad answer(s) from the service address: a dataplane or service fault\n",
			(unsigned long long)m->foreign, (unsigned long long)m->bad_answers);
	rc = err || m->lost || m->mismatches || m->handoff_failures || m->stale_errors ||
	     m->foreign || m->bad_answers || m->next < m->count;
	if (m->fd >= 0)
		close(m->fd);
	if (m->agent_fd >= 0)
		close(m->agent_fd);
	if (m->probe_fd >= 0)
		close(m->probe_fd);
	eh_log_close(&m->log);
	for (int p = 0; p < m->nphases; p++)
		free(m->phases[p].rtt_ms);
	free(m->reqs);
	free(m);
	return rc ? 1 : 0;
}
