/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Replay of buffered requests into the new container (T7) and the cut-over to
 * it (T8).
 *
 * Records are replayed in the MUD's seq order, not the ring's arrival order (a
 * retransmission of a request lost on the radio lands after later seqs), with
 * a window of records in flight to the backend; answers are matched by seq.
 * The backend's position (its next seq and digest for the MUD) is learnt from
 * its STATUS first, and from its STALE/GAP answers: records of seqs it already
 * holds (a restored checkpoint) are not replayed. Every answer is checked
 * against the chain: the backend's digest after seq s must be SHA-256 of its
 * digest after s-1, s and the buffered request s (the requests CT-x answered,
 * byte for byte), else the replay stops (-EPROTO). A record is consumed only
 * once the backend holds its seq (and, for a record only buffered, once the MUD
 * has or will get its answer), so a failure leaves it in the ring.
 *
 * A record that was also forwarded (FWD_BUF) was already answered by the old
 * container. A record that was only buffered (BUF_ONLY) has no answer yet: the
 * new container's answer is relayed to the MUD from VIP:port (once per seq:
 * a retransmission of a seq already answered is dropped).
 *
 * A seq that nobody buffered (missing between the backend's next seq and the
 * buffered ones) is waited for gap_wait_ms (the MUD retransmits it into the
 * ring); then the replay fails with -ENODATA.
 *
 * Time bounds of eh_replayer_cutover(): everything before the switch
 * (status, catch-up, hold, settle) is bounded by deadline_ms, after which it
 * rolls back (-ETIMEDOUT); after the switch, the final replay is bounded by
 * settle_ms. A cut-over therefore takes at most deadline_ms + settle_ms
 * (default 30 s + 1 s) plus one relay of the held answers.
 */
#ifndef EDGEHOP_EH_REPLAY_H
#define EDGEHOP_EH_REPLAY_H

#include <stdint.h>
#include <netinet/in.h>

#include "eh_dp.h"
#include "edgehop_proto.h"

struct eh_replay_opts {
	struct in_addr mud;		/* the MUD being cut over */
	struct in_addr backend;		/* the new container */
	uint16_t backend_port;		/* host order */
	int timeout_ms;			/* per attempt; 0: 200 */
	int retries;			/* attempts per record; 0: 10 */
	int window;			/* records in flight; 0: 16, at most EH_REPLAY_WINDOW */
	int gap_wait_ms;		/* a missing seq may take this to land; 0: 3000 */
	int settle_ms;			/* bound of each settle; 0: 1000 */
	int deadline_ms;		/* cut-over up to the switch; 0: 30000 */
	/*
	 * The caller's commit point, or NULL: called by eh_replayer_cutover()
	 * once the backend holds everything the old one applied and the MUD's
	 * new requests are held, just before the switch. Nonzero: the cut-over
	 * rolls back as for any error before the switch. Zero: it never rolls
	 * back any more (st.committed).
	 */
	int (*commit)(void *ctx);
	void *commit_ctx;
};

#define EH_REPLAY_WINDOW	32	/* <= the service's reply cache */
#define EH_HELD_MAX		256	/* answers held back, one per seq */
#define EH_REPLAY_SPAN		65536	/* seqs ahead of the backend indexed at once */

struct eh_replay_stats {
	uint64_t replayed;		/* records replayed and answered */
	uint64_t relayed;		/* answers relayed to the MUD */
	uint64_t resent;		/* attempts that timed out and were repeated */
	uint64_t first_seq, last_seq;	/* seqs of the first/last replayed record */
	uint64_t consumed;		/* records consumed from the ring (EH_C_REPLAYED) */
	uint64_t skipped;		/* records of seqs the backend already held */
	uint64_t dups;			/* retransmissions of a seq already replayed */
	uint64_t held_dropped;		/* answers not held (EH_HELD_MAX): the MUD retries */
	uint64_t verified;		/* answers whose digest chained from the previous one */
	bool committed;			/* past the commit point: no rollback */
	uint32_t backend_next;		/* the backend's next seq at the end */
	uint8_t backend_digest[EH_DIGEST_LEN];	/* and its digest (valid if verified) */
};

/* A record in flight to the backend (window slot, by seq). */
struct eh_slot {
	const struct eh_replay_rec *rec;	/* NULL: slot free */
	uint32_t seq;
	uint16_t tries;
	bool answered;
	uint64_t sent_ns;
	uint16_t anslen;
	uint8_t ans[sizeof(struct eh_hdr) + sizeof(struct eh_svcr_body)];
};

/* An answer held back until the switch (see eh_replayer_cutover). */
struct eh_held {
	__be32 mud_addr;
	__be16 mud_port;
	uint16_t len;
	uint8_t data[sizeof(struct eh_hdr) + sizeof(struct eh_svcr_body) + 64];
};

struct eh_replayer {
	struct eh_dp *dp;
	struct eh_ring ring;
	struct eh_replay_opts o;
	struct eh_cfg cfg;
	int usock;			/* UDP, connected to the backend */
	int rawsock;			/* IPPROTO_RAW, relays answers from the VIP */
	struct eh_replay_stats st;
	bool hold;			/* queue answers to the MUD instead of relaying */
	struct eh_held *held;
	size_t nheld;
	/* replay state (see eh_replay.c) */
	uint32_t mud_id;		/* 0 until known (cut-over's argument or a record) */
	bool pos_known;			/* next/digest learnt from the backend */
	bool digest_known;
	bool fresh;			/* the backend did not know the MUD */
	uint32_t next;			/* the backend's next seq */
	uint8_t digest[EH_DIGEST_LEN];	/* the backend's digest after next - 1 */
	unsigned long scan_pos;		/* ring position indexed up to */
	const struct eh_replay_rec **idx;	/* EH_REPLAY_SPAN, by seq: first copy */
	uint32_t *answered;		/* EH_REPLAY_SPAN, by seq: seq + 1 once the MUD has its answer */
	struct eh_slot slots[EH_REPLAY_WINDOW];
	uint32_t query_seq;		/* a held seq whose answer the MUD still needs */
	uint64_t query_ns;
	int query_tries;
	bool querying;
	uint64_t gap_since;		/* 0: no gap at next */
	uint64_t deadline_ns;		/* 0: none; past it: -ETIMEDOUT */
	uint64_t settle_end_ns;		/* 0: none; past it: stop, not an error */
	uint64_t unflushed, unflushed_bytes;	/* consumed, not yet in EH_C_REPLAYED */
};

/*
 * Opens the replay buffer of o->mud (-ENOENT: it has none, not being in a
 * buffering mode) and the sockets to o->backend. Replayers of different MUDs
 * never share a ring: they may run at once, in one process or several.
 */
int eh_replayer_init(struct eh_replayer *r, struct eh_dp *dp, const struct eh_replay_opts *o);
void eh_replayer_fini(struct eh_replayer *r);
/*
 * Replays every record in the MUD's ring; returns the number replayed, or
 * -errno (-ETIMEDOUT: the backend never answered; -EXDEV: a record of
 * another MUD id from the MUD's address is at the head of its ring; -ENODATA: a seq missing from the ring did not
 * arrive within gap_wait_ms; -EPROTO: the backend's digest broke the chain).
 * Records not consumed stay in the ring.
 */
long eh_replayer_drain(struct eh_replayer *r);
/*
 * The whole cut-over for a MUD in FWD_BUF (or BUF_ONLY): catch up while CT-x
 * still serves, hold new requests (BUF_ONLY) and replay them while holding
 * back their answers, switch to LOCAL on the new backend, then release the
 * answers. The MUD's loss flags are checked before, after the catch-up and
 * before the switch (-ENOSPC). On error before the commit point (o->commit,
 * else the switch) the MUD is put back in its previous mode with the old
 * backend (CT-x keeps serving). Past it, st.committed is set and nothing is
 * undone: an error then (the switch refused by the map, the final replay)
 * is returned for the caller to report, the new backend stays the MUD's.
 */
int eh_replayer_cutover(struct eh_replayer *r, uint32_t mud_id);

/* Internet checksum over a buffer, folded; exposed for the tests. */
uint16_t eh_csum(const void *buf, size_t len, uint32_t sum);

#endif /* EDGEHOP_EH_REPLAY_H */
