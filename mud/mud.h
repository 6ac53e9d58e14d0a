/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * edgehop-mud's state, shared by its parts (one file each):
 *
 *	main.c		set up, run, report, exit status
 *	cli.c		the command line
 *	assoc.c		(re)association with an AP's agent
 *	handoff.c	handoffs: reassociation, the route to the VIP, AP stays
 *	mud_route.c	the route itself, over rtnetlink
 *	requests.c	the request engine: window, rate, retries, give-up
 *	answers.c	checking every answer against the digest chain
 *	phase.c		phases (before, during-K, after-K) and their names
 *	report.c	the final report, text and JSON from one field table
 */
#ifndef MUD_H
#define MUD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <netinet/in.h>

#include "edgehop_proto.h"
#include "eh_log.h"
#include "eh_stats.h"

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

/*
 * Phases of a run, for its response times: all (no --handoff), or before the
 * first handoff, during-K from handoff K until a new server answers, after-K
 * from then on (phase.c).
 */
enum mud_phase_kind {
	MUD_PH_ALL,
	MUD_PH_BEFORE,
	MUD_PH_DURING,
	MUD_PH_AFTER,
};

struct phase {
	enum mud_phase_kind kind;
	int k;			/* the handoff it belongs to; 0: none */
	char name[24];		/* "during-2": the name table's, with k */
	uint32_t n;
	double *rtt_ms;		/* answered requests of this phase */
	struct eh_rt_stats st;	/* of them, for the report */
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

/* Set by SIGTERM/SIGINT: every loop ends at its next turn. */
extern volatile sig_atomic_t mud_stop;
/* Set by SIGUSR1: no new request; the run ends once those in flight are done. */
extern volatile sig_atomic_t mud_finish;

/* Who the MUD talks through: its AP, or without one the service address. */
static inline const char *mud_ap_name(const struct mud *m)
{
	return m->naps ? m->aps[m->cur_ap].name : m->svc_str;
}

/* cli.c: options into @m (and its log opened); -EINVAL said on stderr. */
int mud_parse_args(struct mud *m, int argc, char **argv);

/* assoc.c: 0, -ECONNREFUSED (reason in m->assoc_error), -ETIMEDOUT, -errno. */
int mud_associate(struct mud *m, int ap_idx, bool reassoc, double *ms);

/* handoff.c */
int mud_move_route(struct mud *m, int ap_idx);
void mud_check_route(struct mud *m);
void mud_handoff(struct mud *m, struct handoff *ho, int k);

/* phase.c */
void mud_phase_begin(struct mud *m, enum mud_phase_kind kind, int k);
void mud_phase_answered(struct mud *m, const char *server);

/* requests.c */
int mud_run(struct mud *m);
void mud_drop_outstanding(struct mud *m, uint32_t idx);

/* answers.c: one datagram from the request socket, from @src. */
void mud_handle_answer(struct mud *m, const uint8_t *buf, ssize_t n,
		       const struct sockaddr_in *src);

/* report.c: per-phase statistics, then the report in either form. */
void mud_report_compute(struct mud *m);
void mud_report(const struct mud *m, double elapsed_s, FILE *f, bool json);

#endif /* MUD_H */
