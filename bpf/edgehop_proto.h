/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * edgehop wire protocol: the one definition of every message that crosses the
 * network between a MUD, an AP/ES node agent and the offloading service.
 *
 * Every message is one UDP datagram that starts with struct eh_hdr. All fields
 * are in network byte order; there are no pointers and no implicit padding.
 * Included by the XDP/TC programs (kernel side) and by every userspace role.
 */
#ifndef EDGEHOP_PROTO_H
#define EDGEHOP_PROTO_H

#include <linux/types.h>

#define EH_MAGIC	0x45484f50u	/* "EHOP" */
#define EH_VERSION	1

/* Default service address (the VIP the MUD talks to) and ports. */
#define EH_SVC_PORT_DEFAULT	7777	/* offload requests (SVCQ/SVCR) */
#define EH_AGENT_PORT_DEFAULT	7778	/* association with the AP's node agent */
#define EH_LOGREPO_PORT_DEFAULT	7779	/* events to logrepo */

enum eh_msg_type {
	EH_T_SVCQ		= 1,	/* offload request, MUD -> service */
	EH_T_SVCR		= 2,	/* offload answer, service -> MUD */
	EH_T_ASSOC_REQ		= 3,	/* ASSOCIATION REQUEST, MUD -> AP agent */
	EH_T_ASSOC_READY	= 4,	/* READY: CT(m) serves, AP agent -> MUD */
	EH_T_REASSOC_REQ	= 5,	/* REASSOCIATION REQUEST, MUD -> new AP */
	EH_T_REASSOC_READY	= 6,	/* new AP steers the MUD, AP agent -> MUD */
	EH_T_STATUS_REQ		= 7,	/* service status query */
	EH_T_STATUS_RESP	= 8,	/* service status answer (eh_status_ent list) */
	EH_T_ASSOC_FAIL		= 9,	/* association refused; body: text reason */
	EH_T_MAX,
};

/*
 * Common header. @len is the number of body bytes that follow the header;
 * a receiver drops a datagram whose UDP payload is shorter than
 * sizeof(struct eh_hdr) + len ("a length that lies"). Trailing bytes beyond
 * @len are ignored.
 */
struct eh_hdr {
	__be32 magic;		/* EH_MAGIC */
	__u8   version;		/* EH_VERSION */
	__u8   type;		/* enum eh_msg_type */
	__be16 flags;		/* EH_F_* */
	__be32 mud_id;		/* the MUD this message is about */
	__be32 seq;		/* SVCQ/SVCR: request sequence number, from 0 */
	__be64 send_ns;		/* sender's CLOCK_REALTIME, ns (for RTT) */
	__be32 len;		/* body bytes after this header */
	__be32 reserved;	/* 0 */
} __attribute__((packed));

_Static_assert(sizeof(struct eh_hdr) == 32, "eh_hdr is 32 bytes on the wire");

/* eh_hdr.flags */
#define EH_F_DUP	0x0001	/* SVCR: answered from the reply cache */
#define EH_F_REPLAY	0x0002	/* SVCQ: sent by the replayer, not the MUD */
#define EH_F_RETRY	0x0004	/* SVCQ: a retransmission by the MUD */
#define EH_F_STATUS_NAME 0x0008	/* STATUS_RESP: body ends with the server's
				 * name (EH_NAME_LEN bytes) after the entries;
				 * len / sizeof(eh_status_ent) still counts
				 * the entries since EH_NAME_LEN < 48 */
#define EH_F_STALE	0x0010	/* SVCR: seq was applied but its answer is no
				 * longer cached; body: struct eh_svcr_pos */
#define EH_F_GAP	0x0020	/* SVCR: seq is beyond the next one the
				 * service would apply (nothing applied);
				 * body: struct eh_svcr_pos */

/* Largest body a SVCQ may carry (keeps every request within one 1500-byte frame). */
#define EH_BODY_MAX	(1472 - 32)

#define EH_DIGEST_LEN	32	/* SHA-256 */
#define EH_NAME_LEN	32	/* host/container name, NUL-padded */

/* Body of EH_T_SVCR: the answer to request hdr.seq. */
struct eh_svcr_body {
	__u8   digest[EH_DIGEST_LEN];	/* MUD's state digest after applying seq */
	char   server[EH_NAME_LEN];	/* who served it (host/container) */
	__be64 result;			/* result of the offloaded computation */
} __attribute__((packed));

/*
 * Body of an EH_T_SVCR flagged EH_F_STALE or EH_F_GAP: not an answer to
 * hdr.seq but where the service stands for this MUD. Same size as
 * eh_svcr_body, and digest/server at the same offsets.
 */
struct eh_svcr_pos {
	__u8   digest[EH_DIGEST_LEN];	/* digest after next_seq - 1 (its current one) */
	char   server[EH_NAME_LEN];
	__be32 next_seq;		/* the only seq the service applies next */
	__be32 reserved;		/* 0 */
} __attribute__((packed));

_Static_assert(sizeof(struct eh_svcr_pos) == sizeof(struct eh_svcr_body),
	       "STALE/GAP answers are as long as answers");

/* One entry of an EH_T_STATUS_RESP body (the body is an array of these). */
struct eh_status_ent {
	__be32 mud_id;
	__be32 last_seq;		/* last applied seq */
	__be64 applied;			/* number of requests applied */
	__u8   digest[EH_DIGEST_LEN];
} __attribute__((packed));

/*
 * Body of EH_T_ASSOC_REQ / EH_T_REASSOC_REQ: the MUD's address and, for a
 * reassociation, the AP it comes from (IEEE 802.11 "current AP address").
 */
struct eh_assoc_body {
	__be32 mud_addr;		/* MUD's IPv4 address */
	__be32 prev_ap_addr;		/* REASSOC: previous AP's agent address, else 0 */
	char   mud_name[EH_NAME_LEN];
} __attribute__((packed));

/* Body of EH_T_ASSOC_READY / EH_T_REASSOC_READY. */
struct eh_ready_body {
	__be32 vip;			/* service address to use */
	__be16 vip_port;
	__be16 reserved;
	char   ap_name[EH_NAME_LEN];
} __attribute__((packed));

#endif /* EDGEHOP_PROTO_H */
