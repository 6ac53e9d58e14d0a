// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The wire header, filled and checked in one place: see eh_wire.h. */
#include <endian.h>
#include <string.h>
#include <arpa/inet.h>

#include "eh_wire.h"

void eh_hdr_init(struct eh_hdr *h, uint8_t type, uint16_t flags, uint32_t mud_id,
		 uint32_t seq, uint64_t send_ns, uint32_t len)
{
	h->magic = htonl(EH_MAGIC);
	h->version = EH_VERSION;
	h->type = type;
	h->flags = htons(flags);
	h->mud_id = htonl(mud_id);
	h->seq = htonl(seq);
	h->send_ns = htobe64(send_ns);
	h->len = htonl(len);
	h->reserved = 0;
}

uint32_t eh_status_split(const struct eh_hdr_host *h, const void *body,
			 char name[EH_NAME_LEN])
{
	uint32_t blen = h->len;

	name[0] = '\0';
	if ((h->flags & EH_F_STATUS_NAME) && blen >= EH_NAME_LEN) {
		blen -= EH_NAME_LEN;
		memcpy(name, (const uint8_t *)body + blen, EH_NAME_LEN);
		name[EH_NAME_LEN - 1] = '\0';
	}
	return blen / sizeof(struct eh_status_ent);
}

int eh_hdr_check(const void *buf, size_t n, struct eh_hdr_host *out)
{
	struct eh_hdr h;

	if (n < sizeof(h))
		return -EH_HDR_SHORT;
	memcpy(&h, buf, sizeof(h));
	if (ntohl(h.magic) != EH_MAGIC)
		return -EH_HDR_MAGIC;
	if (h.version != EH_VERSION)
		return -EH_HDR_VERSION;
	if (ntohl(h.len) > n - sizeof(h))
		return -EH_HDR_LEN;
	out->type = h.type;
	out->flags = ntohs(h.flags);
	out->mud_id = ntohl(h.mud_id);
	out->seq = ntohl(h.seq);
	out->send_ns = be64toh(h.send_ns);
	out->len = ntohl(h.len);
	return 0;
}
