/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Asks a service container for one MUD's state (STATUS_REQ, docs/protocol.md). */
#ifndef EDGEHOP_SVCPROBE_H
#define EDGEHOP_SVCPROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

struct svc_mud_state {
	bool known;		/* the service holds state for this MUD */
	uint32_t last_seq;
	uint64_t applied;
	uint8_t digest[32];
	uint32_t nmuds;		/* MUDs the service holds */
	char name[32];		/* the server's name (EH_NAME_LEN), "" if not told */
};

/*
 * Polls @addr:@port until the service answers or @deadline_ms passes
 * (-ETIMEDOUT). Fills @st for @mud_id (st->known false when the service
 * answers but holds nothing for it).
 */
int svc_probe(struct in_addr addr, uint16_t port, uint32_t mud_id, int deadline_ms,
	      struct svc_mud_state *st);

#endif
