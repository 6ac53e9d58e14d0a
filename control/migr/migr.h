/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The migration of one MUD's container from this node (ES-x) to a peer (ES-y),
 * the paper's Table 1 done over the agents' TLS channel:
 *
 *   source (ES-x)                         destination (ES-y, also AP-y)
 *   migr_begin {mud, method, image, cmd} ->  P: base image present? create CT-y
 *                                        <-  ready | error
 *   T1+T3 snapshot: pause CT-x, checkpoint (leave-running), layer tar (P) or
 *         commit (C) staged, unpause: the pause window
 *   T4 (C) image  + stream (docker save) ->  docker load, create CT-y
 *   T2 checkpoint + stream (tar)        ->  into CT-y's checkpoints/<name>/
 *   T4 (P) layer  + stream (tar)        ->  into CT-y's UpperDir (whiteouts, opaque dirs)
 *   restore                             ->  T5 docker start --checkpoint, service answers;
 *                                           T7 replay of AP-y's buffer; T8 switch to CT-y
 *                                        <-  done {report} | failed {reason}
 *   done: stop and remove CT-x (last)        failed: CT-y and staged files removed,
 *   failed: CT-x goes on serving             the MUD steered FORWARD to CT-x again
 *
 * The commit point is ES-y's cut-over (T8): ES-y records the outcome of each
 * migration into it (keyed by the migration's id, the checkpoint name both
 * sides share) durably before it answers. Once "restore" went out, a channel
 * that fails before "done" arrives leaves ES-x IN DOUBT (-EINPROGRESS), not
 * failed: it asks ES-y, on a new connection,
 *   outcome {id}                         ->  the record
 *                                        <-  outcome {committed + done's fields
 *                                            | failed + reason | running | unknown}
 *
 * Streams are zstd-compressed by the peer channel and never held whole in
 * memory; the only file written on the source side is the staged layer tar
 * (captured inside the pause so that memory and files are of one instant).
 */
#ifndef EDGEHOP_MIGR_H
#define EDGEHOP_MIGR_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <jansson.h>

struct dk;
struct peer_conn;

/* A migration's id: 1..63 of [A-Za-z0-9_.-], not starting with '.'. */
#define MIGR_ID_MAX 64
/* ES-y's outcome records: <state_dir>/MIGR_OUTCOME_DIR/<id>.json, the newest kept. */
#define MIGR_OUTCOME_DIR "outcomes"
#define MIGR_OUTCOMES_KEEP 128

enum migr_step {
	MS_T1_CHECKPOINT = 0,	/* pause -> checkpoint (leave-running) */
	MS_T2_SEND_CKPT,	/* checkpoint over the channel */
	MS_T3_CAPTURE,		/* layer tar (P) / commit (C) */
	MS_T4_SEND_FS,		/* layer or image over the channel */
	MS_T5_RESTORE,		/* CT-y created and restored, service answers */
	MS_T7_REPLAY,		/* buffered requests replayed, cut over */
	MS_MAX,
};

struct migr_stepstat {
	double ms;
	uint64_t raw_bytes, wire_bytes;
	uint64_t skipped_bytes;		/* not sent: ES-y holds them (C-Migr's shared layers) */
};

/*
 * Where T5's time went: moments of CT-y's restore, in ms from T5's begin (the
 * restore op; negative: before it, the early start), in the order they
 * happened. The agent's own (start_called, start_returned, answering) and
 * edgehop-runc's (runtime_create, criu_begin, criu_end, runtime_start: ehrt.h).
 */
#define MIGR_MAX_MARKS 8

struct migr_mark {
	char what[16];
	double ms;
};

struct migr_report {
	int method;			/* enum ag_method */
	struct migr_stepstat step[MS_MAX];
	double pause_ms;
	double criu_frozen_ms;		/* CRIU's own freeze inside T1 (runc path), < 0 unknown */
	uint64_t ckpt_pages;		/* pages CRIU wrote */
	double total_ms;
	double ready_ms;		/* migr_begin -> ready: ES-y's checks and (P) CT-y's create */
	double ctx_remove_ms;		/* CT-x's removal after done (set by the agent), 0: none */
	struct migr_mark t5_marks[MIGR_MAX_MARKS];
	int n_t5_marks;
	uint64_t replayed, relayed;
	char restore_via[8];		/* T5 by "runc" (edgehop-runc) or "docker" */
	bool early_start;		/* Docker's start of CT-y overlapped the checkpoint's transfer */
	char ct_y_id[65];
	char ct_y_name[64];
	char ct_y_image[128];		/* the image CT-y runs from (C-Migr: the loaded one) */
	struct in_addr ct_y_addr;
	char id[MIGR_ID_MAX];		/* the migration's id (its checkpoint name) */
	bool in_doubt;			/* ES-x: the channel failed after "restore" */
};

const char *migr_step_name(enum migr_step s);

/* Progress of a long step (bytes so far, of total when known, else 0). */
typedef void (*migr_progress_fn)(void *ctx, const char *step, uint64_t bytes, uint64_t total);

struct migr_src {
	uint32_t mud_id;
	int method;			/* AG_MIGR_P, AG_MIGR_C or AG_MIGR_AUTO (ES-y decides:
					 * P when it holds the base image, else C, sending
					 * only the image layers it lacks) */
	const char *node;		/* this node */
	const char *ct_id;		/* CT-x */
	const char *image;		/* CT-x's image (P: must exist on ES-y) */
	json_t *cmd;			/* CT-x's command line (array), borrowed */
	const char *state_dir;		/* staging */
	const char *run;		/* run id for the event log, or NULL */
	bool docker_checkpoint;		/* T1 through Docker's checkpoint API (slow: its
					 * content store) instead of runc directly */
	migr_progress_fn progress;
	void *pctx;
	volatile int *cancel;		/* set: stop at the next step, roll back */
};

/*
 * Runs the source side over @pc (connected and authenticated to ES-y).
 * Returns 0 when ES-y reported done (then the caller stops CT-x), or -errno
 * with @err set; CT-x is then running and unpaused. -EINPROGRESS: in doubt,
 * the channel failed after "restore" went out (rep->in_doubt, rep->id): ES-y
 * may have cut over. The "<id>.doubt" record stays in the state dir
 * (migr_doubt_list) until the caller learnt the outcome (migr_outcome_wait)
 * and called migr_doubt_clear(); until then CT-x must not serve the MUD on
 * the belief that it failed.
 */
int migr_source(struct dk *d, struct peer_conn *pc, const struct migr_src *s,
		struct migr_report *rep, char *err, size_t errlen);

/* What the destination needs from its agent: where to put CT-y's traffic. */
struct migr_dst_hooks {
	void *ctx;
	/*
	 * T7+T8: replay into CT-y at @addr:@port and switch; 0 or -errno (+why).
	 * @commit(@commit_ctx) is called once CT-y holds all CT-x applied and
	 * the MUD's requests are held, before the switch: it records the
	 * migration committed. Its error rolls back like any other; once it
	 * returned 0 the hook returns 0 whatever follows (the switch stands or
	 * is redone by the restarted agent: migr_inbound_decide).
	 */
	int (*cutover)(void *ctx, uint32_t mud_id, struct in_addr addr, uint16_t port,
		       int (*commit)(void *), void *commit_ctx,
		       uint64_t *replayed, uint64_t *relayed, char *err, size_t errlen);
	/* Failed or cancelled: the MUD goes back to CT-x (FORWARD). */
	void (*rollback)(void *ctx, uint32_t mud_id);
	/*
	 * Test hook (the agent's FAULT key): fail on purpose at this step, one of
	 * image, checkpoint, layer, restore, replay; or "done": commit (cut
	 * over, record it), then close without sending "done", as a channel
	 * lost at the worst moment (ES-x is left in doubt); or a crash of the
	 * agent (_exit(MIGR_CRASH_RC)) at the commit point with the MUD's
	 * requests held: "crash-uncommitted" just before the commit record is
	 * written, "crash-committed" just after; NULL in service.
	 */
	const char *fault;
	/*
	 * T5 through edgehop-runc (control/runtime/ehrt.h): CT-y is created with
	 * Docker's runtime "edgehop", its checkpoint staged in
	 * <restore_stage>/<CT-y id>/img, and a plain start restores it. NULL:
	 * Docker's own start --checkpoint.
	 */
	const char *restore_stage;
	/* Docker's socket, for the early start's own connection (NULL: no early start). */
	const char *docker_sock;
};

/*
 * Runs the destination side after @begin (the migr_begin message) arrived on
 * @pc. On failure CT-y and everything staged are removed and the hooks'
 * rollback has run; the reason went to the source.
 */
int migr_dest(struct dk *d, struct peer_conn *pc, json_t *begin, const char *node,
	      const char *state_dir, const struct migr_dst_hooks *h,
	      struct migr_report *rep, char *err, size_t errlen);

/* The create body of a service container for one MUD (agent and CT-y share it). */
/* C-Migr's committed images: MIGR_IMAGE_REPO "mud-<id>:<checkpoint>". */
#define MIGR_IMAGE_REPO "edgehop-migr/"

/* "CT-<node>": the name of the service containers of @node (its hostname too). */
#define MIGR_SVC_NAME_MAX 32
void migr_svc_name(const char *node, char name[MIGR_SVC_NAME_MAX]);

json_t *migr_ct_config(const char *image, json_t *cmd, uint32_t mud_id, const char *runtime,
		       const char *hostname);

/*
 * At agent start: undoes what a crashed migration left (CT-x unpaused and its
 * checkpoint removed, a half-restored CT-y removed, staged tars deleted, and
 * edgehop-runc's staging dirs under @restore_stage, if not NULL).
 * A migration out whose "restore" had been sent keeps CT-x and becomes a
 * "<id>.doubt" record (migr_doubt_list): only ES-y knows how it ended. A
 * migration in that ES-y had committed keeps CT-y; any other ends "failed"
 * in its outcome record (so does one still "running": none is, at start).
 * Returns how many were found, or -errno.
 */
int migr_recover(struct dk *d, const char *state_dir, const char *restore_stage,
		 int (*say)(const char *fmt, ...));

/* The exit status of an injected crash (FAULT = crash-*). */
#define MIGR_CRASH_RC	86

/* A migration into this node that a crashed agent left (its "<id>.in" marker). */
struct migr_inbound {
	char id[MIGR_ID_MAX];
	uint32_t mud_id;
	bool committed;
	/* committed: CT-y, from the record written at the commit point */
	char ct_id[65];
	struct in_addr ct_addr;
	char ct_image[128];
	json_t *cmd;			/* the service's command line, or NULL (borrowed) */
};

/*
 * At agent start, before migr_recover and whether or not Docker answers:
 * decides each migration into this node a crash interrupted and calls
 * @fn with it, for the agent to put the MUD's steering where the decision
 * says: committed (its record says so) -> CT-y (LOCAL), else -> CT-x as before
 * the migration (FORWARD). An undecided one is recorded "failed" first, so
 * that ES-x, asking, learns what the steering then does. Returns how many.
 */
int migr_inbound_decide(const char *state_dir,
			void (*fn)(void *ctx, const struct migr_inbound *ib), void *ctx,
			int (*say)(const char *fmt, ...));

/* ---- in doubt: what ES-y decided ---------------------------------------------- */

enum migr_outcome {
	MO_UNKNOWN = 0,		/* ES-y holds no record of the id: it never committed */
	MO_RUNNING,		/* still under way on ES-y: ask again */
	MO_COMMITTED,		/* ES-y cut over: CT-y serves the MUD */
	MO_FAILED,		/* ES-y rolled back: CT-x goes on serving */
};

const char *migr_outcome_name(int o);

/*
 * ES-y: the answer to a peer's {"op":"outcome","id":ID} (a new message owned by
 * the caller): {"op":"outcome","id","outcome":"committed"|"failed"|"running"|
 * "unknown", ...} with, when committed, the fields of "done" (ct_id, ct_name,
 * ct_addr, ct_image, timings), when failed the "reason"; or {"op":"error",
 * "reason"} for a malformed query, an unreadable record, or (@asker not NULL)
 * a migration that came from another node than @asker.
 */
json_t *migr_outcome_answer(const char *state_dir, json_t *req, const char *asker);

/*
 * ES-x: asks @pc (a new connection to ES-y) for the outcome of @id. Returns an
 * enum migr_outcome (committed: @rep's ct_y_* and ES-y's timings filled from
 * its record) or -errno with @why (-EREMOTEIO: ES-y answered an error).
 */
int migr_outcome_ask(struct peer_conn *pc, const char *id, struct migr_report *rep,
		     char *why, size_t whylen);

struct migr_asker {
	const char *peer;		/* ES-y, for the messages */
	/* a new authenticated connection to ES-y; -ECANCELED: stop asking */
	int (*dial)(void *ctx, struct peer_conn **pc);
	/* waits @ms before the next try (NULL: sleeps); -ECANCELED: stop asking */
	int (*pause)(void *ctx, int ms);
	/* each change of what ES-y says, or that it does not answer (may be NULL) */
	void (*note)(void *ctx, const char *what);
	void *ctx;
	int max_backoff_ms;		/* the tries' interval doubles from 100 ms to this */
};

/*
 * Asks until ES-y answers committed, failed or unknown, for at most @wait_ms
 * (< 0: until then, or until dial or pause says -ECANCELED). Returns that
 * outcome, or -ETIMEDOUT (@why: what ES-y last said, "running" or that it did
 * not answer) or -ECANCELED.
 */
int migr_outcome_wait(const struct migr_asker *a, const char *id, int wait_ms,
		      struct migr_report *rep, char *why, size_t whylen);

/* ES-x: a migration in doubt, as recorded in "<state_dir>/<id>.doubt". */
struct migr_doubt {
	char id[MIGR_ID_MAX];
	uint32_t mud_id;
	char peer[64];			/* ES-y */
	char ct_x[65];			/* CT-x's id */
};

/* Calls @cb for each migration in doubt; returns how many, or -errno. */
int migr_doubt_list(const char *state_dir, void (*cb)(void *ctx, const struct migr_doubt *),
		    void *ctx);

/* The outcome of @id is known: its record goes. */
int migr_doubt_clear(const char *state_dir, const char *id);

/* The report as JSON (steps with ms and bytes, pause, total). */
json_t *migr_report_json(const struct migr_report *rep);

#endif /* EDGEHOP_MIGR_H */
