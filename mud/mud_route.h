/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MUD_ROUTE_H
#define MUD_ROUTE_H

#include <netinet/in.h>

/*
 * Point the host route @dst/32 at gateway @gw (RTM_NEWROUTE, create or
 * replace, main table) over rtnetlink. Returns 0 or -errno; @err_msg gets the
 * kernel's extended-ack text when there is one.
 */
int mud_route_replace(struct in_addr dst, struct in_addr gw, char *err_msg,
		      size_t cap);

#endif /* MUD_ROUTE_H */
