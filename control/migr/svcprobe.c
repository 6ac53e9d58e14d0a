// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "edgehop_proto.h"
#include "eh_time.h"
#include "eh_wire.h"
#include "svcprobe.h"

_Static_assert(sizeof(((struct svc_mud_state *)0)->name) == EH_NAME_LEN,
	       "svc_mud_state.name holds a server name");

/* One page of the status answer starting at entry @first: 1 answered, 0 not (yet). */
static int ask(int fd, const struct sockaddr_in *dst, uint32_t first, uint32_t mud_id,
	       int wait_ms, struct svc_mud_state *st, uint32_t *next)
{
	uint8_t buf[2048];
	struct eh_hdr q;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t sent = eh_mono_ns() / 1000000, end = sent + wait_ms;

	/* send_ns: this try's token, echoed (the answer to an older try is not this page) */
	eh_hdr_init(&q, EH_T_STATUS_REQ, 0, 0, first, sent, 0);
	if (sendto(fd, &q, sizeof(q), 0, (const struct sockaddr *)dst, sizeof(*dst)) < 0)
		return -errno;
	for (uint64_t now; (now = eh_mono_ns() / 1000000) < end;) {
		struct eh_hdr_host h;
		ssize_t n;
		uint32_t cnt;

		if (poll(&pfd, 1, (int)(end - now)) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 || eh_hdr_check(buf, n, &h) || h.type != EH_T_STATUS_RESP ||
		    h.send_ns != sent)
			continue;
		cnt = eh_status_split(&h, buf + sizeof(struct eh_hdr), st->name);
		st->nmuds = h.mud_id;
		for (uint32_t i = 0; i < cnt; i++) {
			const struct eh_status_ent *e = (const void *)(buf + sizeof(struct eh_hdr) +
							    i * sizeof(*e));
			if (ntohl(e->mud_id) != mud_id)
				continue;
			st->known = true;
			st->last_seq = ntohl(e->last_seq);
			st->applied = be64toh(e->applied);
			memcpy(st->digest, e->digest, sizeof(st->digest));
		}
		*next = h.seq + cnt;
		return 1;
	}
	return 0;
}

int svc_probe(struct in_addr addr, uint16_t port, uint32_t mud_id, int deadline_ms,
	      struct svc_mud_state *st)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = addr };
	uint64_t end = eh_mono_ns() / 1000000 + deadline_ms;
	uint32_t first = 0, next;
	int fd, r, err = -ETIMEDOUT;

	memset(st, 0, sizeof(*st));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (eh_mono_ns() / 1000000 < end) {
		r = ask(fd, &dst, first, mud_id, 300, st, &next);
		if (r < 0 && r != -ECONNREFUSED && r != -EHOSTUNREACH && r != -ENETUNREACH) {
			err = r;
			break;
		}
		if (r <= 0) {
			usleep(r < 0 ? 200000 : 0);
			continue;
		}
		if (st->known || next >= st->nmuds || next == first) {
			err = 0;
			break;
		}
		first = next;	/* more pages */
	}
	close(fd);
	return err;
}
