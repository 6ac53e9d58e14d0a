/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The header every edgehop datagram starts with (struct eh_hdr,
 * bpf/edgehop_proto.h): filled by eh_hdr_init(), checked by eh_hdr_check().
 *
 * eh_hdr_check() applies the rules every receiver shares (docs/protocol.md):
 * at least the 32-byte header, EH_MAGIC, EH_VERSION, and a @len no larger than
 * the bytes that follow ("a length that lies"); bytes after @len are allowed
 * and ignored. What a receiver serves (the type, the body's size, the MUD,
 * the seq) stays its own check, at its call site.
 */
#ifndef EH_WIRE_H
#define EH_WIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "edgehop_proto.h"

/* struct eh_hdr's fields in host byte order, as eh_hdr_check() hands them out. */
struct eh_hdr_host {
	uint8_t  type;
	uint16_t flags;
	uint32_t mud_id;
	uint32_t seq;
	uint64_t send_ns;
	uint32_t len;		/* body bytes after the header, <= what arrived */
};

/* Why eh_hdr_check() refused a datagram: it returns the negative of one. */
enum {
	EH_HDR_SHORT	= ENODATA,		/* shorter than struct eh_hdr */
	EH_HDR_MAGIC	= ENOMSG,		/* not EH_MAGIC */
	EH_HDR_VERSION	= EPROTONOSUPPORT,	/* not EH_VERSION */
	EH_HDR_LEN	= EBADMSG,		/* len is more than the bytes after the header */
};

/*
 * Fills all 32 bytes of @h from host-order values: EH_MAGIC, EH_VERSION,
 * reserved 0. An answer echoes the request's mud_id, seq and send_ns.
 */
void eh_hdr_init(struct eh_hdr *h, uint8_t type, uint16_t flags, uint32_t mud_id,
		 uint32_t seq, uint64_t send_ns, uint32_t len);

/*
 * Checks the @n bytes of @buf (any alignment) in this order: -EH_HDR_SHORT,
 * -EH_HDR_MAGIC, -EH_HDR_VERSION, -EH_HDR_LEN; 0 and @out filled when it
 * passes (@out is untouched otherwise).
 */
int eh_hdr_check(const void *buf, size_t n, struct eh_hdr_host *out);

/*
 * A checked STATUS_RESP's body (@h.len bytes at @body): its entries (how many;
 * they start at @body, unaligned) and, with EH_F_STATUS_NAME, the server name
 * of its last EH_NAME_LEN bytes into @name (NUL-terminated; "" without one).
 */
uint32_t eh_status_split(const struct eh_hdr_host *h, const void *body,
			 char name[EH_NAME_LEN]);

#endif /* EH_WIRE_H */
