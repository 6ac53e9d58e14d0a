/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The offloading service's state machine, free of sockets so that the unit
 * tests drive it with crafted datagrams: per-MUD digest chain, exactly-once
 * application, reply cache, status listing, and the counters of everything
 * it refused.
 *
 * The MUD table is bounded (SVC_MAX_MUDS) and cannot be locked by junk: a MUD
 * with a single applied request sits on probation, and a new MUD takes the
 * place of the least recently used one on probation; a MUD with two or more
 * applied requests is only given up once it has been idle SVC_IDLE_S seconds.
 * A table full of such MUDs refuses new ones (table_full).
 */
#ifndef SVC_STATE_H
#define SVC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>

#include "edgehop_proto.h"
#include "eh_parse.h"

#define SVC_MAX_MUDS	4096	/* MUDs one service holds */
#define SVC_BUCKETS	8192	/* hash chains (keyed hash: no chosen collisions) */
#define SVC_CACHE	32	/* answers kept per MUD (>= the MUD's --window) */
#define SVC_IDLE_S	60	/* a settled MUD idle this long may be evicted */
#define SVC_MAX_CIDRS	16	/* --status-from entries */

/* Entries that fit one STATUS_RESP next to the name trailer. */
#define SVC_STATUS_PER_MSG \
	((EH_BODY_MAX - EH_NAME_LEN) / sizeof(struct eh_status_ent))
/* Largest STATUS_RESP; a request padded to this size is answered by anyone. */
#define SVC_STATUS_MAX \
	(sizeof(struct eh_hdr) + SVC_STATUS_PER_MSG * sizeof(struct eh_status_ent) + \
	 EH_NAME_LEN)

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
	/* table bookkeeping */
	struct svc_mud *hnext;			/* hash chain */
	struct svc_mud *lprev, *lnext;		/* its LRU list, most recent first */
	bool settled;				/* >= 2 applied: off probation */
	uint64_t last_use_s;			/* monotonic seconds */
};

struct svc_lru {
	struct svc_mud *head, *tail;
};

/* Every datagram lands in exactly one of these (plus fs_errors, evicted). */
struct svc_counters {
	uint64_t rx;		/* datagrams handed to svc_handle() */
	uint64_t applied;	/* SVCQ applied (state advanced) */
	uint64_t dup_cached;	/* duplicate SVCQ answered from the cache */
	uint64_t stale;		/* applied, older than the cache: answered STALE */
	uint64_t early;		/* seq beyond next: answered GAP, the MUD retries */
	uint64_t status;	/* STATUS_REQ answered */
	uint64_t status_refused;/* STATUS_REQ shorter than its answer, from a
				 * source not in --status-from: not answered */
	uint64_t malformed;	/* short, lying length, bad header fields */
	uint64_t foreign;	/* not edgehop (magic/version) */
	uint64_t oversized;	/* SVCQ body > EH_BODY_MAX */
	uint64_t unexpected;	/* valid edgehop type the service does not serve */
	uint64_t table_full;	/* new MUD refused: every entry settled and busy */
	uint64_t other_mud;	/* SVCQ of a MUD this service is not bound to */
	uint64_t fs_errors;	/* state-dir record failed (state still applied) */
	uint64_t evicted;	/* MUDs dropped to make room (not a datagram) */
};

/*
 * Called after a request was applied, before it is answered; a non-zero
 * return is counted in fs_errors and does not undo the application.
 */
typedef int (*svc_apply_cb)(void *ctx, const struct svc_mud *m, uint32_t seq,
			    const struct eh_svcr_body *answer);
/* Called when a MUD is evicted, before its entry is freed. */
typedef void (*svc_evict_cb)(void *ctx, const struct svc_mud *m);

struct svc_state {
	char name[EH_NAME_LEN];
	unsigned int work_us;		/* CPU burnt per applied request */
	bool bound;			/* serves only MUD bound_mud (--mud-id) */
	uint32_t bound_mud;
	uint32_t hash_key;		/* random per process */
	struct svc_mud *buckets[SVC_BUCKETS];
	struct svc_lru probation, settled;
	struct svc_mud *sorted[SVC_MAX_MUDS];	/* by mud_id, for STATUS */
	uint32_t nmuds;
	/* who may get a STATUS answer larger than its request */
	struct eh_cidr status_from[SVC_MAX_CIDRS];
	int nstatus_from;
	struct svc_counters cnt;
	svc_apply_cb on_apply;
	svc_evict_cb on_evict;
	void *cb_ctx;
	uint64_t (*now_s)(void);	/* monotonic seconds; tests replace it */
};

/* Default --status-from: loopback and the private networks (RFC 1918). */
int svc_state_init(struct svc_state *s, const char *name);
void svc_state_free(struct svc_state *s);

/*
 * A restored container is another container with the same memory: it learns
 * its own name again (SIGHUP, --name-file). Later answers carry @name; those
 * in the reply cache keep the name of the server that computed them.
 * -EINVAL: empty, too long (EH_NAME_LEN - 1 at most), or not printable ASCII
 * without spaces.
 */
int svc_state_rename(struct svc_state *s, const char *name);

/*
 * The first line of @path as a server name (trailing whitespace dropped),
 * into @name (EH_NAME_LEN bytes). -errno of the read, -EINVAL as above.
 */
int svc_name_read(const char *path, char *name);
struct svc_mud *svc_find(struct svc_state *s, uint32_t mud_id);

/*
 * Handle one datagram from @src. Every SVCQ of a MUD served is answered:
 * applied, from the reply cache (EH_F_DUP), or with where the service stands
 * (EH_F_STALE: applied long ago; EH_F_GAP: beyond the next seq). An SVCQ of
 * another MUD than the bound one is counted and never answered. A STATUS_REQ
 * is answered only if the request is at least as long as the answer (so
 * the service never amplifies) or @src is in status_from. On return *outlen
 * is the answer's length in @out (0: nothing to send). @out must hold
 * EH_BODY_MAX + sizeof(eh_hdr). Returns 0 or -errno for an internal failure
 * (digest); bad input is not an error, it is counted.
 */
int svc_handle(struct svc_state *s, const void *pkt, size_t len,
	       const struct sockaddr_in *src, void *out, size_t *outlen);

/* Counters as "name value" lines, for logs and the unit tests. */
void svc_counters_print(const struct svc_state *s, FILE *f);

#endif /* SVC_STATE_H */
