/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libedgehop-dp: load/attach/pin the AP dataplane, edit steering entries, read
 * counters, and consume the replay buffer. Used by edgehop-ap, the tests and
 * the migration controller. Functions return 0 or a negative errno, and print
 * what failed (with what) to stderr.
 */
#ifndef EDGEHOP_EH_DP_H
#define EDGEHOP_EH_DP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "edgehop_kern_user.h"

#define EH_PIN_DEFAULT	"/sys/fs/bpf/edgehop"

/* Pin names below the pin directory (maps keep their own names). */
#define EH_PIN_LINK_RADIO	"link_xdp_radio"
#define EH_PIN_LINK_WAN		"link_xdp_wan"
#define EH_PIN_PROG_TC		"prog_tc_radio_egress"
#define EH_PIN_PROG_TC_RADIO	"prog_tc_radio"		/* --attach tc */
#define EH_PIN_PROG_TC_WAN	"prog_tc_wan"

/* The radio TC egress filter: one fixed handle/priority we own. */
#define EH_TC_HANDLE	0xe4
#define EH_TC_PRIO	0xe4

/*
 * Fast return path: answers from a remote container go WAN -> radio in XDP.
 * XDP_REDIRECT into a veth needs an XDP program or GRO on its peer, which a
 * loader cannot see from here: "auto" enables it unless the radio is a veth.
 */
enum eh_fast_return { EH_FAST_RETURN_AUTO = 0, EH_FAST_RETURN_ON, EH_FAST_RETURN_OFF };

/*
 * Where the radio and WAN programs run (the same logic, maps and counters
 * either way). XDP (native) is fastest on NICs whose driver has it; on a
 * veth every XDP frame is converted and copied, and TC ingress with skb
 * redirects is faster. "auto": native XDP when both interfaces take it and
 * neither is a veth, TC otherwise.
 */
enum eh_attach { EH_ATTACH_AUTO = 0, EH_ATTACH_XDP, EH_ATTACH_TC };
int eh_attach_parse(const char *s, enum eh_attach *a);

struct eh_load_opts {
	const char *pin;	/* pin directory; NULL: EH_PIN_DEFAULT */
	const char *radio;	/* radio-side interface (XDP + TC egress) */
	const char *wan;	/* inter-AP interface (XDP, redirect target) */
	struct in_addr vip;
	uint16_t vip_port;	/* host order */
	uint32_t ring_bytes;	/* replay buffer size; 0: EH_RING_DEFAULT */
	enum eh_fast_return fast_return;
	enum eh_attach attach;
	bool verbose;		/* libbpf debug output */
};

int eh_dp_load(const struct eh_load_opts *o);
int eh_dp_unload(const char *pin, const char *radio, const char *wan);

/* A handle on a loaded dataplane's pinned maps. */
struct eh_dp {
	int steer_fd;
	int config_fd;
	int counters_fd;
	/*
	 * Always -1: the AP-wide replay buffer is gone (one per MUD now, see
	 * eh_dp_ring_open); eh_ring_open(r, -1) fails quietly (-EBADF). Kept
	 * until its last user switches to eh_dp_ring_reset().
	 */
	int replay_fd;
	int mud_dp_fd;		/* eh_mud_dp: the dataplane's per-MUD counters */
	int ncpus;
	int rings_fd;		/* eh_replay_rings: MUD address -> its ring buffer */
	int pin_fd;		/* the pin directory (flock: userspace counter adds), or -1 */
};

int eh_dp_open(struct eh_dp *dp, const char *pin);
void eh_dp_close(struct eh_dp *dp);

/*
 * Sets mode/backend/mud_id of a MUD. Its counters and flags live in a map
 * only the dataplane writes (eh_mud_dp): nothing here can erase them. A new
 * backend (address or port) makes the current one the previous backend,
 * whose answers still in flight are rewritten from the VIP too; a zero
 * backend keeps the current one.
 */
int eh_dp_steer_set(struct eh_dp *dp, struct in_addr mud, enum eh_mode mode,
		    struct in_addr backend, uint16_t backend_port, uint32_t mud_id);
/*
 * The same, and the size of the MUD's replay buffer (@ring_bytes: a power of
 * two multiple of the page size; 0 keeps the MUD's, whose 0 is the AP's
 * --ring-bytes). The size applies when the ring is created (entering
 * FWD_BUF/BUF_ONLY, a reset, a rollback): a MUD whose ring exists with
 * another size and stays buffering is refused (-EBUSY) rather than losing
 * what its ring holds. Overflow is counted and flagged per MUD as ever.
 */
int eh_dp_steer_set_ring(struct eh_dp *dp, struct in_addr mud, enum eh_mode mode,
			 struct in_addr backend, uint16_t backend_port, uint32_t mud_id,
			 uint32_t ring_bytes);
/* 0 if @bytes can be a replay buffer's size, else -EINVAL (said on stderr). */
int eh_ring_bytes_check(uint32_t bytes);
int eh_dp_steer_get(struct eh_dp *dp, struct in_addr mud, struct eh_steer *st);
/*
 * The controller's part of an entry as it is (save), and put back exactly
 * (restore: mode, backends, mud_id; acknowledgements never go back): what a
 * cut-over's rollback does.
 */
int eh_dp_steer_save(struct eh_dp *dp, struct in_addr mud, struct eh_steer_ctl *ctl);
int eh_dp_steer_restore(struct eh_dp *dp, struct in_addr mud, const struct eh_steer_ctl *ctl);
int eh_dp_steer_del(struct eh_dp *dp, struct in_addr mud);
/* Acknowledges the loss events counted so far (a later one flags again). */
int eh_dp_steer_clear_flags(struct eh_dp *dp, struct in_addr mud);
/* Calls fn for each entry; stops and returns fn's value if non-zero. */
int eh_dp_steer_foreach(struct eh_dp *dp,
			int (*fn)(void *ctx, struct in_addr mud, const struct eh_steer *st),
			void *ctx);

/* Sums the per-CPU counters into out[EH_C_MAX]. */
int eh_dp_counters(struct eh_dp *dp, struct eh_datarec out[EH_C_MAX]);
/* Adds to a counter (on CPU 0's slot): used by userspace for EH_C_REPLAYED. */
int eh_dp_counter_add(struct eh_dp *dp, enum eh_counter idx, uint64_t packets,
		      uint64_t bytes);
int eh_dp_config(struct eh_dp *dp, struct eh_cfg *cfg);

const char *eh_mode_name(enum eh_mode m);
int eh_mode_parse(const char *s, enum eh_mode *m);
const char *eh_counter_name(enum eh_counter c);

/*
 * Per-MUD replay buffers. A MUD has one while it is in a buffering mode
 * (FWD_BUF, BUF_ONLY): eh_dp_steer_set creates it (empty) when the MUD
 * enters one and removes it when it leaves; a reader keeps its ring alive.
 */
/* Opens a reader on the MUD's ring: -ENOENT if it has none. */
struct eh_ring;
int eh_dp_ring_open(struct eh_dp *dp, struct in_addr mud, struct eh_ring *r);
/* Empties the MUD's ring (a fresh one replaces it); 0 if it has none. */
int eh_dp_ring_reset(struct eh_dp *dp, struct in_addr mud);
/*
 * The same with a fresh ring of @bytes (0: the MUD's size), which becomes the
 * MUD's size (as eh_dp_steer_set_ring's @ring_bytes): what it held is dropped
 * either way, so its size may change even while the MUD stays buffering.
 */
int eh_dp_ring_reset_size(struct eh_dp *dp, struct in_addr mud, uint32_t bytes);
/* Calls fn for each MUD that has a ring; stops and returns fn's value if non-zero. */
int eh_dp_ring_foreach(struct eh_dp *dp, int (*fn)(void *ctx, struct in_addr mud), void *ctx);

/*
 * Replay-buffer consumer. Unlike libbpf's ring_buffer, a record is only
 * consumed when the caller commits it, so a record whose delivery failed is
 * never lost: peek → deliver → commit.
 */
struct eh_ring {
	int map_fd;
	int epfd;
	size_t size;		/* data area bytes (power of two) */
	size_t page;
	unsigned long *consumer_pos;	/* mmap'ed, written by us */
	const unsigned long *producer_pos;
	const uint8_t *data;
	unsigned long pending;	/* bytes of the peeked record, 0 if none */
	bool own_fd;		/* map_fd closed by eh_ring_close (eh_dp_ring_open) */
};

int eh_ring_open(struct eh_ring *r, int map_fd);
void eh_ring_close(struct eh_ring *r);
/*
 * Returns the oldest committed record without consuming it, or NULL when the
 * ring is empty (or its oldest record is still being written).
 */
const struct eh_replay_rec *eh_ring_peek(struct eh_ring *r);
void eh_ring_commit(struct eh_ring *r);
/*
 * Read-ahead without consuming: the first record at ring position *pos or
 * later (discarded ones skipped), *pos moved past it; NULL when none is
 * complete yet. A record stays valid until it is consumed.
 */
const struct eh_replay_rec *eh_ring_read_at(const struct eh_ring *r, unsigned long *pos);
/* Consumes every record before position @pos. */
void eh_ring_commit_to(struct eh_ring *r, unsigned long pos);
/* Waits until the ring has data or timeout_ms passes: 1, 0 on timeout, -errno. */
int eh_ring_wait(struct eh_ring *r, int timeout_ms);
/* Bytes not yet consumed. */
size_t eh_ring_backlog(const struct eh_ring *r);
/* Monotonic producer/consumer positions (bytes since the ring was created). */
unsigned long eh_ring_produced(const struct eh_ring *r);
unsigned long eh_ring_consumed(const struct eh_ring *r);

#endif /* EDGEHOP_EH_DP_H */
