// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer target: the node agent's reading of MUD (re)association datagrams. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "assoc_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ag_assoc_req q;

	if (ag_assoc_parse(data, size, &q) == 0) {
		/* What the agent relies on: a printable, terminated name. */
		size_t n = strlen(q.name);

		if (n > EH_NAME_LEN)
			abort();
		for (size_t i = 0; i < n; i++)
			if (q.name[i] < 0x20 || q.name[i] >= 0x7f)
				abort();
		if (!q.reassoc && size < sizeof(struct eh_hdr) + sizeof(struct eh_assoc_body))
			abort();
	}
	return 0;
}
