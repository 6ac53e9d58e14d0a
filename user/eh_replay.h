/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Replay of buffered requests into the new container (T7) and the cut-over to
 * it (T8). Records are replayed strictly in ring order, one at a time: each is
 * sent to the backend and its answer awaited (with retries) before the record
 * is consumed, so a failure leaves the record in the ring, never lost.
 *
 * A record that was also forwarded (FWD_BUF) was already answered by the old
 * container: its new answer is only checked. A record that was only buffered
 * (BUF_ONLY) has no answer yet: the new container's answer is relayed to the
 * MUD from VIP:port.
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
};

struct eh_replay_stats {
	uint64_t replayed;		/* records replayed and answered */
	uint64_t relayed;		/* answers relayed to the MUD */
	uint64_t resent;		/* attempts that timed out and were repeated */
	uint64_t first_seq, last_seq;	/* seqs of the first/last replayed record */
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
	size_t nheld, held_cap;
};

int eh_replayer_init(struct eh_replayer *r, struct eh_dp *dp, const struct eh_replay_opts *o);
void eh_replayer_fini(struct eh_replayer *r);
/*
 * Replays every record in the ring; returns the number replayed, or -errno
 * (-ETIMEDOUT: the backend never answered; -EXDEV: a record of another MUD is
 * at the head of the ring). The failing record stays in the ring.
 */
long eh_replayer_drain(struct eh_replayer *r);
/*
 * The whole cut-over for a MUD in FWD_BUF (or BUF_ONLY): catch up while CT-x
 * still serves, hold new requests (BUF_ONLY) and replay them while holding
 * back their answers, switch to LOCAL on the new backend, then release the
 * answers. On error the MUD is put back in its previous mode with the old
 * backend (CT-x keeps serving).
 */
int eh_replayer_cutover(struct eh_replayer *r, uint32_t mud_id);

/* Internet checksum over a buffer, folded; exposed for the tests. */
uint16_t eh_csum(const void *buf, size_t len, uint32_t sum);

#endif /* EDGEHOP_EH_REPLAY_H */
