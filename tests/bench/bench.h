/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Small helpers shared by the dataplane benchmark's programs (eh-blast,
 * eh-relay, eh-echo): socket buffers, header checks. Address parsing and
 * clocks are control/common's (eh_parse.h, eh_time.h): each program is one
 * object plus this file, linked with $(EH_COMMON).
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
#include "eh_parse.h"
#include "eh_time.h"
#include "eh_wire.h"

/* Datagrams moved per recvmmsg/sendmmsg call. */
#define EH_BENCH_BATCH	64
/* Largest datagram any of the programs handles. */
#define EH_BENCH_MTU	2048
/* Socket buffers: deep enough that a full window never overflows them. */
#define EH_BENCH_SOCKBUF (8 << 20)

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
	struct eh_hdr_host h;

	return !eh_hdr_check(buf, len, &h) && h.type == type;
}

#endif /* EH_BENCH_H */
