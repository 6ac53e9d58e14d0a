// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the service's request handling (svc_handle): each
 * input is a sequence of datagrams (2-byte big-endian length, then the
 * bytes), all handed to one service state, with the source address taken
 * from the first byte (trusted or not for STATUS). Checks what the service
 * promises whatever it gets: an answer fits its buffer, a STATUS answer to an
 * untrusted source is never longer than the request, the table stays bounded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "svc_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[sizeof(struct eh_hdr) + EH_BODY_MAX];
	static struct svc_state *s;
	struct sockaddr_in src = { .sin_family = AF_INET };
	size_t pos = 1, outlen;

	if (!s) {
		s = malloc(sizeof(*s));
		if (!s || svc_state_init(s, "fuzz"))
			abort();
	}
	if (size < 1)
		return 0;
	/* bit 0: a trusted (RFC 1918) or an untrusted source; bit 1: bound */
	src.sin_addr.s_addr = htonl(data[0] & 1 ? 0x0a000001 : 0xcb007105);
	s->bound = data[0] & 2;
	s->bound_mud = 7;
	while (pos + 2 <= size) {
		size_t len = (size_t)data[pos] << 8 | data[pos + 1];
		const struct eh_hdr *h;

		pos += 2;
		if (len > size - pos)
			len = size - pos;
		/* a copy of exactly len bytes: ASan sees any read beyond it */
		uint8_t *pkt = malloc(len ? len : 1);

		if (!pkt)
			abort();
		memcpy(pkt, data + pos, len);
		pos += len;
		outlen = 0;
		if (svc_handle(s, pkt, len, &src, out, &outlen))
			abort();	/* only an internal (digest) failure returns an error */
		h = (const void *)pkt;
		if (outlen > sizeof(out))
			abort();
		if (outlen && len >= sizeof(*h) && h->type == EH_T_STATUS_REQ &&
		    !(data[0] & 1) && outlen > len)
			abort();	/* amplification for an untrusted source */
		free(pkt);
	}
	if (s->nmuds > SVC_MAX_MUDS)
		abort();
	return 0;
}
