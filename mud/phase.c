// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Phases, for response times before, during and after each handoff. A
 * request belongs to the phase it was first sent in (requests.c); the phase
 * names go into the event log (phase=during-1) and the report, where
 * logrepo's report groups answers by them.
 */
#include <stdio.h>
#include <string.h>

#include "mud.h"

static const char *const phase_names[] = {
	[MUD_PH_ALL]	= "all",	/* a run without --handoff */
	[MUD_PH_BEFORE]	= "before",	/* until the first handoff */
	[MUD_PH_DURING]	= "during",	/* handoff K until a new server answers */
	[MUD_PH_AFTER]	= "after",	/* from then on, until the next handoff */
};

/* A new phase, current from now on; @k: the handoff it belongs to (0: none). */
void mud_phase_begin(struct mud *m, enum mud_phase_kind kind, int k)
{
	struct phase *p = &m->phases[m->nphases];

	p->kind = kind;
	p->k = k;
	if (k)
		snprintf(p->name, sizeof(p->name), "%s-%d", phase_names[kind], k);
	else
		snprintf(p->name, sizeof(p->name), "%s", phase_names[kind]);
	m->cur_phase = m->nphases++;
}

/* A migration ends for the MUD when a server other than the old one answers. */
void mud_phase_answered(struct mud *m, const char *server)
{
	const struct phase *p = &m->phases[m->cur_phase];

	if (p->kind == MUD_PH_DURING && m->pre_server[0] && strcmp(server, m->pre_server))
		mud_phase_begin(m, MUD_PH_AFTER, p->k);
}
