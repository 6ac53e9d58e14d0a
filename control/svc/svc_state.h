/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The offloading service's state machine, free of sockets so that the unit
 * tests drive it with crafted datagrams: per-MUD digest chain, exactly-once
 * application, reply cache, status listing, and the counters of everything
 * it refused.
 */
#ifndef SVC_STATE_H
#define SVC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "edgehop_proto.h"

#define SVC_MAX_MUDS	4096	/* MUDs one service holds; more are refused */
#define SVC_SLOTS	8192	/* open-addressing table, at most half full */
#define SVC_CACHE	32	/* answers kept per MUD (>= the MUD's --window) */

/* Entries that fit one STATUS_RESP next to the name trailer. */
#define SVC_STATUS_PER_MSG \
	((EH_BODY_MAX - EH_NAME_LEN) / sizeof(struct eh_status_ent))

struct svc_cached {
	bool valid;
	uint32_t seq;
	struct eh_svcr_body body;
};

struct svc_mud {
	uint32_t mud_id;
	uint32_t next_seq;	/* the only seq that may be applied next */
	uint32_t last_seq;
	uint64_t applied;
	uint8_t digest[EH_DIGEST_LEN];
	struct svc_cached cache[SVC_CACHE];	/* indexed by seq % SVC_CACHE */
};

/* Every datagram lands in exactly one of these (plus fs_errors). */
struct svc_counters {
	uint64_t rx;		/* datagrams handed to svc_handle() */
	uint64_t applied;	/* SVCQ applied (state advanced) */
	uint64_t dup_cached;	/* duplicate SVCQ answered from the cache */
	uint64_t stale;		/* applied, older than the cache: answered STALE */
	uint64_t early;		/* seq beyond next: answered GAP, the MUD retries */
	uint64_t status;	/* STATUS_REQ answered */
	uint64_t malformed;	/* short, lying length, bad header fields */
	uint64_t foreign;	/* not edgehop (magic/version) */
	uint64_t oversized;	/* SVCQ body > EH_BODY_MAX */
	uint64_t unexpected;	/* valid edgehop type the service does not serve */
	uint64_t table_full;	/* new MUD refused: SVC_MAX_MUDS reached */
	uint64_t other_mud;	/* SVCQ of a MUD this service is not bound to */
	uint64_t fs_errors;	/* state-dir record failed (state still applied) */
};

/*
 * Called after a request was applied, before it is answered; a non-zero
 * return is counted in fs_errors and does not undo the application.
 */
typedef int (*svc_apply_cb)(void *ctx, const struct svc_mud *m, uint32_t seq,
			    const struct eh_svcr_body *answer);

struct svc_state {
	char name[EH_NAME_LEN];
	unsigned int work_us;		/* CPU burnt per applied request */
	bool bound;			/* serves only MUD bound_mud (--mud-id) */
	uint32_t bound_mud;
	struct svc_mud *slots[SVC_SLOTS];
	uint32_t nmuds;
	struct svc_counters cnt;
	svc_apply_cb on_apply;
	void *cb_ctx;
};

int svc_state_init(struct svc_state *s, const char *name);
void svc_state_free(struct svc_state *s);
struct svc_mud *svc_find(struct svc_state *s, uint32_t mud_id);

/*
 * Handle one datagram. Every SVCQ of a MUD served is answered: applied,
 * from the reply cache (EH_F_DUP), or with where the service stands
 * (EH_F_STALE: applied long ago; EH_F_GAP: beyond the next seq). An SVCQ of
 * another MUD than the bound one is counted and never answered. On return *outlen is the answer's length in @out
 * (0: nothing to send). @out must hold EH_BODY_MAX + sizeof(eh_hdr).
 * Returns 0 or -errno for an internal failure (digest); bad input is not an
 * error, it is counted.
 */
int svc_handle(struct svc_state *s, const void *pkt, size_t len,
	       void *out, size_t *outlen);

/* Counters as "name value" lines, for logs and the unit tests. */
void svc_counters_print(const struct svc_state *s, FILE *f);

#endif /* SVC_STATE_H */
