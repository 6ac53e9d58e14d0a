// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>

#include "assoc_wire.h"
#include "eh_wire.h"

int ag_assoc_parse(const void *buf, size_t len, struct ag_assoc_req *out)
{
	struct eh_hdr_host h;
	struct eh_assoc_body b;

	if (eh_hdr_check(buf, len, &h) ||
	    (h.type != EH_T_ASSOC_REQ && h.type != EH_T_REASSOC_REQ) || h.len < sizeof(b))
		return -EINVAL;
	memcpy(&b, (const char *)buf + sizeof(struct eh_hdr), sizeof(b));
	memset(out, 0, sizeof(*out));
	out->reassoc = h.type == EH_T_REASSOC_REQ;
	out->mud_id = h.mud_id;
	out->seq = h.seq;
	out->send_ns = h.send_ns;
	out->mud_addr.s_addr = b.mud_addr;
	out->prev_ap.s_addr = b.prev_ap_addr;
	/* The name goes into logs and JSON: keep it printable. */
	for (size_t i = 0; i < EH_NAME_LEN && b.mud_name[i]; i++)
		out->name[i] = b.mud_name[i] >= 0x20 && b.mud_name[i] < 0x7f ? b.mud_name[i] : '?';
	return 0;
}
