// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Handoffs: reassociate with the next AP, point the route to the VIP through
 * its gateway, start the phase and the AP stay ("epoch") that follow. A
 * route moved by someone else (no --handoff) starts a stay too.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "eh_log.h"
#include "mud.h"
#include "mud_route.h"

int mud_move_route(struct mud *m, int ap_idx)
{
	struct ap *ap = &m->aps[ap_idx];
	char msg[256], gw[INET_ADDRSTRLEN];
	int err;

	if (!ap->has_gw)
		return 0;
	err = mud_route_replace(m->svc.sin_addr, ap->gw, msg, sizeof(msg));
	inet_ntop(AF_INET, &ap->gw, gw, sizeof(gw));
	if (err) {
		fprintf(stderr, "edgehop-mud: route to the VIP via %s (%s): %s%s%s\n",
			gw, ap->name, strerror(-err), msg[0] ? ": " : "", msg);
		return err;
	}
	eh_log_event(&m->log, ap->name, m->name, "ROUTE", NULL, NULL,
		     "run=%s mud=%u gw=%s", m->run, m->mud_id, gw);
	return 0;
}

/* ---- AP stays --------------------------------------------------------------- */

/* Our source address towards the VIP now (the route's, as a send would use). */
static struct in_addr route_src(struct mud *m)
{
	struct sockaddr_in local = {}, none = { .sin_family = AF_UNSPEC };
	socklen_t llen = sizeof(local);

	/* disconnect first: a connected UDP socket keeps its first source */
	connect(m->probe_fd, (struct sockaddr *)&none, sizeof(none));
	if (connect(m->probe_fd, (struct sockaddr *)&m->svc, sizeof(m->svc)) ||
	    getsockname(m->probe_fd, (struct sockaddr *)&local, &llen))
		local.sin_addr.s_addr = 0;
	return local.sin_addr;
}

static void new_epoch(struct mud *m)
{
	if (m->epoch + 1 < MAX_EPOCHS)
		m->epoch++;
	memcpy(m->epoch_pre[m->epoch], m->last_server, EH_NAME_LEN);
	m->cur_src = route_src(m);
}

/* A route moved behind our back (no --handoff) is a handoff too. */
void mud_check_route(struct mud *m)
{
	struct in_addr a = route_src(m);

	if (a.s_addr && m->cur_src.s_addr && a.s_addr != m->cur_src.s_addr)
		new_epoch(m);
	else if (a.s_addr)
		m->cur_src = a;
}

void mud_handoff(struct mud *m, struct handoff *ho, int k)
{
	int err;

	if (!m->quiet)
		fprintf(stderr, "edgehop-mud: handoff %d at seq %u: %s -> %s\n", k,
			ho->seq, mud_ap_name(m), m->aps[ho->ap].name);
	ho->done = true;
	memcpy(m->pre_server, m->last_server, EH_NAME_LEN);
	err = mud_associate(m, ho->ap, true, &ho->ms);
	if (err) {
		if (err == -ECONNREFUSED)
			snprintf(ho->error, sizeof(ho->error), "refused: %s", m->assoc_error);
		else
			snprintf(ho->error, sizeof(ho->error), "%s", strerror(-err));
		fprintf(stderr, "edgehop-mud: REASSOCIATION with %s failed: %s; staying on %s\n",
			m->aps[ho->ap].name, ho->error, mud_ap_name(m));
		m->handoff_failures++;
		return;
	}
	err = mud_move_route(m, ho->ap);
	if (err) {
		snprintf(ho->error, sizeof(ho->error), "route to the VIP: %s", strerror(-err));
		m->handoff_failures++;
		return;
	}
	ho->ok = true;
	m->cur_ap = ho->ap;
	mud_phase_begin(m, MUD_PH_DURING, k);
	new_epoch(m);
}
