/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The offloading service's state function, shared by the service (which
 * applies it) and the MUD emulator (which recomputes it to check every answer).
 *
 *	d_0     = 32 zero bytes
 *	d_{n+1} = SHA-256(d_n || be32(seq) || payload)
 *
 * plus the deterministic "offloaded computation" whose result travels in
 * every SVCR, and the deterministic payload generator the MUD uses, so that
 * a test can recompute any request from (mud_id, seq, size) alone.
 */
#ifndef EH_DIGEST_H
#define EH_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "edgehop_proto.h"

/* next = SHA-256(prev || be32(seq) || payload). @next may alias @prev. */
int eh_digest_step(const uint8_t prev[EH_DIGEST_LEN], uint32_t seq,
		   const void *payload, size_t len, uint8_t next[EH_DIGEST_LEN]);

/* Result of the offloaded computation for (seq, payload): FNV-1a 64 mixed. */
uint64_t eh_offload_result(uint32_t seq, const void *payload, size_t len);

/* Fill @buf with the MUD's payload for (mud_id, seq): a splitmix64 stream. */
void eh_payload_fill(uint32_t mud_id, uint32_t seq, void *buf, size_t len);

/* Lower-case hex of a digest into @out (2*EH_DIGEST_LEN+1 bytes). */
void eh_digest_hex(const uint8_t d[EH_DIGEST_LEN], char *out);

/* Parse 64 hex digits; returns 0 or -EINVAL. */
int eh_digest_parse(const char *hex, uint8_t d[EH_DIGEST_LEN]);

#endif /* EH_DIGEST_H */
