// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the helpers around the wire protocol: the header
 * checker (eh_hdr_check, on the raw input: what it passes must hold what
 * edgehop_proto.h promises), the STATUS_RESP body reader of svcctl, svcprobe
 * and the replayer (eh_status_split: its entries and name stay inside the
 * body, the name is terminated), and the text ones, IPv4:PORT addresses
 * (eh_parse_ipv4_port), digests in hex (eh_digest_parse, which must
 * round-trip through eh_digest_hex) and CIDRs (eh_cidr_parse).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "eh_digest.h"
#include "eh_parse.h"
#include "eh_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t d[EH_DIGEST_LEN];
	char hex[2 * EH_DIGEST_LEN + 1];
	struct sockaddr_in sa;
	struct eh_cidr c;
	struct eh_hdr_host hh;
	char *s;
	int err;

	if (size > 4096)
		return 0;
	err = eh_hdr_check(data, size, &hh);
	if (!err) {
		const struct eh_hdr *h = (const void *)data;
		struct eh_hdr again;

		if (size < sizeof(*h) || hh.len > size - sizeof(*h) ||
		    ntohl(h->magic) != EH_MAGIC || h->version != EH_VERSION)
			abort();
		/* what passed is what eh_hdr_init writes from its fields */
		eh_hdr_init(&again, hh.type, hh.flags, hh.mud_id, hh.seq, hh.send_ns, hh.len);
		again.reserved = h->reserved;
		if (memcmp(&again, data, sizeof(again)))
			abort();
		/* any checked header, read as a STATUS_RESP */
		{
			char name[EH_NAME_LEN];
			uint32_t n = eh_status_split(&hh, data + sizeof(*h), name);
			size_t used = (size_t)n * sizeof(struct eh_status_ent) +
				      (name[0] ? EH_NAME_LEN : 0);

			if (used > hh.len || strnlen(name, EH_NAME_LEN) == EH_NAME_LEN ||
			    (name[0] && !(hh.flags & EH_F_STATUS_NAME)))
				abort();
		}
	} else if (err != -EH_HDR_SHORT && err != -EH_HDR_MAGIC &&
		   err != -EH_HDR_VERSION && err != -EH_HDR_LEN) {
		abort();
	}
	s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	if (!eh_parse_ipv4_port(s, &sa) && sa.sin_family != AF_INET)
		abort();
	if (!eh_digest_parse(s, d)) {
		eh_digest_hex(d, hex);
		if (strcasecmp(hex, s))
			abort();	/* accepted something that is not 64 hex digits */
	}
	if (!eh_cidr_parse(s, &c) && (c.net & ~c.mask))
		abort();
	free(s);
	return 0;
}
