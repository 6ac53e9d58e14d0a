// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the text helpers around the wire protocol: IPv4:PORT
 * addresses (eh_parse_ipv4_port), digests in hex (eh_digest_parse, which
 * must round-trip through eh_digest_hex) and CIDRs (eh_cidr_parse).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "eh_digest.h"
#include "eh_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t d[EH_DIGEST_LEN];
	char hex[2 * EH_DIGEST_LEN + 1];
	struct sockaddr_in sa;
	struct eh_cidr c;
	char *s;

	if (size > 4096)
		return 0;
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
