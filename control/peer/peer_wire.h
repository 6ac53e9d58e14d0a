/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The frames inside the peer channel's TLS stream, and the few internals the
 * tests and the fuzz target need. Not for the agent: it uses peer.h.
 *
 * Every frame: be32 type, be32 len, then len bytes of payload.
 */
#ifndef EDGEHOP_PEER_WIRE_H
#define EDGEHOP_PEER_WIRE_H

#include <stdint.h>

#include "peer.h"

enum peer_frame_type {
	PEER_F_MSG	= 1,	/* one JSON object, UTF-8, no NUL */
	PEER_F_DATA	= 2,	/* the next piece of a stream's zstd frame */
	PEER_F_END	= 3,	/* be64 raw byte count, SHA-256 of the raw bytes */
	PEER_F_ABORT	= 4,	/* the sender gave the stream up; payload: reason text */
};

#define PEER_HDR_LEN	8
#define PEER_MSG_MAX	(64 * 1024)
#define PEER_DATA_MAX	(1024 * 1024)
#define PEER_END_LEN	(8 + 32)
#define PEER_ABORT_MAX	1024

/* 0 if a frame of this type may have this length, else -EPROTO and *why. */
int peer_frame_check(uint32_t type, uint32_t len, const char **why);
const char *peer_frame_name(uint32_t type);

/* Writes bytes as they are into the TLS stream (tests: hostile frames). */
int peer_send_raw(struct peer_conn *pc, const void *buf, size_t len);
int peer_conn_fd(const struct peer_conn *pc);
/* The key exchange group of the handshake (psk_dhe_ke: non-zero). */
int peer_conn_group(const struct peer_conn *pc);

#ifdef PEER_FUZZ
/* Fuzz builds only: a connection without TLS over fd, for the frame parser. */
int peer_conn_plain(int fd, struct peer_conn **out);
#endif

#endif /* EDGEHOP_PEER_WIRE_H */
