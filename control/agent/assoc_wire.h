/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The agent's reading of a MUD's (RE)ASSOCIATION REQUEST (docs/protocol.md). */
#ifndef EDGEHOP_ASSOC_WIRE_H
#define EDGEHOP_ASSOC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "edgehop_proto.h"

struct ag_assoc_req {
	bool reassoc;
	uint32_t mud_id;
	uint32_t seq;			/* the MUD's try number, echoed */
	uint64_t send_ns;		/* the MUD's, echoed (host order) */
	struct in_addr mud_addr;	/* 0: none given */
	struct in_addr prev_ap;		/* REASSOC: the previous AP's agent */
	char name[EH_NAME_LEN + 1];	/* NUL-terminated, printable only */
};

/*
 * 0 and @out filled, or -EINVAL for anything else: what eh_hdr_check()
 * refuses (short, another magic or version, a length that lies), a type that is not (RE)ASSOC_REQ, a body shorter than
 * struct eh_assoc_body or a length that lies.
 */
int ag_assoc_parse(const void *buf, size_t len, struct ag_assoc_req *out);

#endif /* EDGEHOP_ASSOC_WIRE_H */
