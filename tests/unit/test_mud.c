// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The MUD's phases (mud/phase.c: one enum, one name table) and its report
 * (mud/report.c: one table of counters for the text and the JSON form).
 */
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <jansson.h>

#include "mud.h"
#include "tap.h"

int main(void)
{
	struct mud *m = calloc(1, sizeof(*m));
	char *text = NULL, *js = NULL;
	size_t tlen = 0, jlen = 0;
	json_error_t jerr;
	json_t *j;
	FILE *f;

	tap_plan(9);
	if (!m)
		return 1;
	m->log.fd = -1;
	m->name = "USER";
	m->run = "t";
	m->svc.sin_addr.s_addr = htonl(0x0a000001);
	m->svc.sin_port = htons(7777);

	mud_phase_begin(m, MUD_PH_ALL, 0);
	mud_phase_begin(m, MUD_PH_BEFORE, 0);
	mud_phase_begin(m, MUD_PH_DURING, 3);
	tap_ok(!strcmp(m->phases[0].name, "all") && !strcmp(m->phases[1].name, "before") &&
	       !strcmp(m->phases[2].name, "during-3") && m->cur_phase == 2 && m->nphases == 3,
	       "phase names from the table, with the handoff's number (%s %s %s)",
	       m->phases[0].name, m->phases[1].name, m->phases[2].name);

	strcpy(m->pre_server, "CT-x");
	mud_phase_answered(m, "CT-x");
	tap_ok(m->cur_phase == 2, "during-3: an answer from the old server keeps the phase");
	mud_phase_answered(m, "CT-y");
	tap_ok(m->cur_phase == 3 && m->phases[3].kind == MUD_PH_AFTER && m->phases[3].k == 3 &&
	       !strcmp(m->phases[3].name, "after-3"),
	       "during-3: the first answer from a new server begins after-3 (%s)",
	       m->phases[3].name);
	mud_phase_answered(m, "CT-z");
	tap_ok(m->nphases == 4, "after-3: further servers begin nothing");
	m->pre_server[0] = '\0';
	mud_phase_begin(m, MUD_PH_DURING, 4);
	mud_phase_answered(m, "CT-y");
	tap_ok(m->cur_phase == 4, "during-4 with no server before it: stays until one is known");

	m->next = 10;
	m->answered = 8;
	m->forwarded = 2;
	m->stale_errors = 1;
	m->count = 10;
	m->reqs = calloc(m->count, sizeof(*m->reqs));
	if (!m->reqs)
		return 1;
	for (int i = 0; i < 8; i++) {
		m->reqs[i].answered = 1;
		m->reqs[i].ans_mono = (i + 1) * 1000000ull;
		m->reqs[i].phase = 1;
	}
	mud_report_compute(m);
	tap_ok(m->phases[1].st.n == 8 && m->phases[1].st.p50 == 4 && m->phases[1].st.max == 8,
	       "per-phase statistics (n %u, p50 %.3f, max %.3f)", m->phases[1].st.n,
	       m->phases[1].st.p50, m->phases[1].st.max);

	f = open_memstream(&text, &tlen);
	mud_report(m, 2, f, false);
	fclose(f);
	f = open_memstream(&js, &jlen);
	mud_report(m, 2, f, true);
	fclose(f);
	tap_ok(text && strstr(text, "  sent 10  answered 8  lost 0") &&
	       strstr(text, "forwarded 2 (25.0% of answered)  gap 0  stale 0 (unanswered 1)"),
	       "text: the counters line in its order");
	j = json_loads(js ? js : "", 0, &jerr);
	tap_ok(j && json_integer_value(json_object_get(j, "sent")) == 10 &&
	       json_integer_value(json_object_get(j, "stale_errors")) == 1 &&
	       json_real_value(json_object_get(j, "forwarded_share")) == 0.25 &&
	       json_array_size(json_object_get(j, "phases")) == 5,
	       "JSON: valid, the same counters (%s)", j ? "parsed" : jerr.text);
	tap_ok(j && json_object_size(j) == 7 + 21 + 4,
	       "JSON: the head, the table's 21 counters and 4 lists (%zu keys)",
	       j ? json_object_size(j) : 0);
	json_decref(j);
	free(text);
	free(js);
	for (int p = 0; p < m->nphases; p++)
		free(m->phases[p].rtt_ms);
	free(m->reqs);
	free(m);
	return tap_done();
}
