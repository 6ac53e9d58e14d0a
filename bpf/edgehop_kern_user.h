/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Structures and constants shared by the AP dataplane (bpf/edgehop.bpf.c) and
 * its userspace (user/): map keys and values, the replay-buffer record, the
 * counter indexes. Fixed-width fields, no pointers; addresses and ports are
 * kept in network byte order exactly as they appear in packets.
 */
#ifndef EDGEHOP_KERN_USER_H
#define EDGEHOP_KERN_USER_H

#include <linux/types.h>

/* Steering modes of a MUD (struct eh_steer.mode). */
enum eh_mode {
	EH_MODE_NONE	= 0,	/* entry present but inactive: pass untouched */
	EH_MODE_LOCAL	= 1,	/* rewrite VIP -> local container, deliver via the kernel */
	EH_MODE_FORWARD	= 2,	/* rewrite VIP -> remote container, redirect out of WAN */
	EH_MODE_FWD_BUF	= 3,	/* FORWARD and copy into the replay buffer */
	EH_MODE_BUF_ONLY = 4,	/* copy into the replay buffer, deliver nothing */
	EH_MODE_MAX,
};

/*
 * A MUD's steering lives in two maps, one per writer, so that neither can
 * erase what the other wrote (a hash-map update rewrites the whole value):
 *
 *   eh_steer   (struct eh_steer_ctl) written only by the controller: mode,
 *              backend, mud_id, and which dataplane events it acknowledged;
 *   eh_mud_dp  (struct eh_mud_dp) written only by the XDP program: per-MUD
 *              counters and loss events, with atomic adds (one MUD's packets
 *              may be processed on several CPUs at once). Userspace creates
 *              an entry (BPF_NOEXIST) and deletes it, never updates one.
 *
 * A flag is "the dataplane counted an event the controller has not
 * acknowledged": clear-flags acknowledges (copies the counts into
 * eh_steer_ctl), so a loss counted after the controller read the counts
 * keeps the flag set.
 */
struct eh_steer_ctl {
	__u32 mode;		/* enum eh_mode */
	__u32 mud_id;		/* host order; 0 = accept any mud_id from this address */
	__be32 backend_addr;	/* container serving the MUD (LOCAL/FORWARD targets) */
	__be16 backend_port;
	__u16 pad;
	/*
	 * The backend before the last change of backend (0: none): its
	 * answers still in flight at a switch are rewritten like the
	 * current backend's, whatever its port.
	 */
	__be32 prev_addr;
	__be16 prev_port;
	__u16 pad2;
	__u64 ack_overflow;	/* eh_mud_dp.overflow at the last clear-flags */
	__u64 ack_too_big;	/* eh_mud_dp.too_big at the last clear-flags */
	/*
	 * Size of the MUD's replay buffer when userspace creates it (on
	 * entering FWD_BUF/BUF_ONLY); 0: the AP's (eh_cfg.ring_bytes). Not
	 * read by the programs.
	 */
	__u32 ring_bytes;
	__u32 pad3;
};

struct eh_mud_dp {
	__u64 rx;		/* offload requests seen from this MUD */
	__u64 delivered;	/* sent on to the backend (LOCAL or FORWARD) */
	__u64 buffered;		/* copied into the replay buffer */
	__u64 lost_buf;		/* could not be buffered (ring full / too big) */
	__u64 last_seq;		/* seq of the last request seen */
	__u64 overflow;		/* FWD_BUF: forwarded but not buffered, ring full */
	__u64 too_big;		/* larger than EH_REPLAY_MAX: never buffered */
};

/* struct eh_steer.flags: unacknowledged dataplane events. */
#define EH_SF_OVERFLOW	0x1	/* a forwarded request could not be buffered: ring full */
#define EH_SF_TOO_BIG	0x2	/* a request was larger than EH_REPLAY_MAX */

/*
 * Userspace's view of a MUD's entry (eh_dp_steer_get/foreach), both maps
 * read together. Not a map value.
 */
struct eh_steer {
	__u32 mode;		/* enum eh_mode */
	__u32 flags;		/* EH_SF_* */
	__u32 mud_id;		/* host order; 0 = accept any mud_id from this address */
	__be32 backend_addr;	/* container serving the MUD (LOCAL/FORWARD targets) */
	__be16 backend_port;
	__be16 prev_port;	/* the previous backend (see eh_steer_ctl) */
	__be32 prev_addr;
	__u64 rx;		/* offload requests seen from this MUD */
	__u64 delivered;	/* sent on to the backend (LOCAL or FORWARD) */
	__u64 buffered;		/* copied into the replay buffer */
	__u64 lost_buf;		/* could not be buffered (ring full / too big) */
	__u64 last_seq;		/* seq of the last request seen */
	__u32 ring_bytes;	/* its replay buffer's size (the ring it has, else the one it gets) */
	__u32 has_ring;		/* 1 while it has a replay buffer (FWD_BUF, BUF_ONLY) */
	__u64 ring_used;	/* bytes its replay buffer holds, not yet consumed */
};

/* Dataplane configuration (single-entry array map eh_config). */
struct eh_cfg {
	__be32 vip;		/* service address the MUDs talk to */
	__be16 vip_port;
	__u16 pad;
	__u32 wan_ifindex;	/* FORWARD: the only interface redirected to */
	__u32 radio_ifindex;	/* fast return: the only interface redirected to */
	__u32 flags;		/* EH_CFG_* */
	__u32 ring_bytes;	/* size of a MUD's replay buffer unless set per MUD */
};

#define EH_CFG_TC_HOOK_OURS	0x1	/* loader created the radio clsact qdisc */
#define EH_CFG_FAST_RETURN	0x2	/* answers arriving on the WAN go WAN->radio in the kernel */
#define EH_CFG_RADIO_TC		0x4	/* radio program at TC ingress (else XDP) */
#define EH_CFG_WAN_TC		0x8	/* WAN program at TC ingress (else XDP) */
#define EH_CFG_WAN_HOOK_OURS	0x10	/* loader created the WAN clsact qdisc */
/*
 * The WAN (radio) interface is a veth whose peer is in another network
 * namespace: at TC, a forwarded request (fast-return answer) enters the
 * peer's ingress directly (bpf_redirect_peer), skipping this side's qdisc,
 * the veth's transmit and the backlog queue. Set by the loader, which can see
 * where the peer is; the program cannot (a redirect_peer to a peer in the
 * same namespace, or to a device without one, is dropped by the kernel).
 */
#define EH_CFG_WAN_PEER		0x20
#define EH_CFG_RADIO_PEER	0x40

/*
 * Largest request (UDP payload: offload header + body) the replay buffer
 * holds. A larger request is never truncated: it is counted (EH_C_TOO_BIG),
 * flagged on the MUD's entry, and not buffered.
 */
#define EH_REPLAY_MAX	1472

/*
 * One replay-buffer record. Each MUD in a buffering mode (FWD_BUF, BUF_ONLY)
 * has its own BPF ring buffer (map eh_replay_rings, keyed by the MUD's
 * address), created when it enters one and released when it leaves, so
 * MUDs migrating at once never share one.
 */
struct eh_replay_rec {
	__u64 ts_ns;		/* bpf_ktime_get_ns() at reception */
	__be32 mud_addr;
	__u32 mud_id;		/* host order */
	__u32 seq;		/* host order */
	__u16 len;		/* bytes valid in data[] (whole UDP payload) */
	__be16 mud_port;	/* MUD's UDP source port: where answers go */
	__u8  forwarded;	/* 1 if the request was also forwarded (FWD_BUF) */
	__u8  pad[3];
	__u8  data[EH_REPLAY_MAX];
};

/* Per-CPU counters (eh_counters array index); a packet bumps exactly one rx class. */
enum eh_counter {
	EH_C_RX = 0,		/* every packet the radio XDP program saw */
	EH_C_LOCAL,		/* offload requests delivered to the local container */
	EH_C_FORWARD,		/* offload requests redirected to the peer AP */
	EH_C_FWD_SLOW,		/* FORWARD via the kernel path (no neighbour/route to WAN yet) */
	EH_C_BUFFERED,		/* copies written to the replay buffer */
	EH_C_RING_FULL,		/* requests that could not be buffered: ring full */
	EH_C_TOO_BIG,		/* requests larger than EH_REPLAY_MAX (not buffered) */
	EH_C_BUF_DROP,		/* BUF_ONLY requests dropped because not buffered */
	EH_C_PASS,		/* not for us (unknown MUD, non-offload traffic): XDP_PASS */
	EH_C_MALFORMED,		/* to the VIP:port but not a valid offload request */
	EH_C_REPLAYED,		/* requests replayed from the buffer (by userspace) */
	EH_C_TX_REWRITE,	/* answers whose source TC egress rewrote to the VIP */
	EH_C_RET_FAST,		/* answers redirected WAN -> radio in XDP (source rewritten) */
	EH_C_TX_FOREIGN,	/* to a steered MUD from a service port, not from its
				 * backend's address and port: dropped, never rewritten */
	EH_C_NO_RING,		/* to be buffered, but the MUD has no replay buffer */
	/*
	 * How the in-kernel redirects left, at TC (each is also one of the
	 * forwarded or returned_fast above; the others went out by
	 * bpf_redirect with the MACs from the FIB). No counter names in
	 * comments here: tests/dataplane_helper.bash reads them off this enum.
	 */
	EH_C_FWD_PEER,		/* into the WAN veth peer's ingress (bpf_redirect_peer) */
	EH_C_FWD_NEIGH,		/* next hop not resolved yet: bpf_redirect_neigh resolves it */
	EH_C_RET_PEER,		/* into the radio veth peer's ingress (bpf_redirect_peer) */
	EH_C_MAX,
};

struct eh_datarec {
	__u64 packets;
	__u64 bytes;
};

#define EH_STEER_MAX	4096	/* MUDs per AP */
#define EH_RING_DEFAULT	(16u << 20)	/* replay buffer bytes per MUD (~11,000 records) */
#define EH_RINGS_MAX	256	/* MUDs buffering (migrating into an AP) at once */
#define EH_RING_MAX_BYTES (1u << 30)	/* largest replay buffer of one MUD */

#endif /* EDGEHOP_KERN_USER_H */
