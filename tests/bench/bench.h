/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Small helpers shared by the dataplane benchmark's programs (eh-blast,
 * eh-relay, eh-echo): address parsing, clocks, socket buffers, header checks.
 * Header-only: each program is one object plus this file.
 */
#ifndef EH_BENCH_H
#define EH_BENCH_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "edgehop_proto.h"

/* Datagrams moved per recvmmsg/sendmmsg call. */
#define EH_BENCH_BATCH	64
/* Largest datagram any of the programs handles. */
#define EH_BENCH_MTU	2048
/* Socket buffers: deep enough that a full window never overflows them. */
#define EH_BENCH_SOCKBUF (8 << 20)

static inline uint64_t eh_now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* "a.b.c.d:port" -> sockaddr_in. Returns 0 or -EINVAL. */
static inline int eh_parse_sin(const char *s, struct sockaddr_in *sin)
{
	char buf[64], *colon, *end;
	unsigned long port;

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || !port || port > 65535)
		return -EINVAL;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

/*
 * Ask for big socket buffers. The *FORCE variants ignore rmem_max/wmem_max
 * (we run as root); fall back to the capped ones otherwise.
 */
static inline void eh_sockbufs(int fd)
{
	int sz = EH_BENCH_SOCKBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

/* Is @buf (@len bytes) a well-formed message of @type, per edgehop_proto.h? */
static inline int eh_hdr_ok(const void *buf, size_t len, uint8_t type)
{
	const struct eh_hdr *h = buf;

	return len >= sizeof(*h) && h->magic == htonl(EH_MAGIC) &&
	       h->version == EH_VERSION && h->type == type &&
	       ntohl(h->len) <= len - sizeof(*h);
}

#endif /* EH_BENCH_H */
