// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The MUD's final report, as text (stdout) and JSON (--json FILE). The
 * counters come from one table, in the JSON's order, each with its part of
 * the text's counters line; the phase table is control/common's eh_rt_stats.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>

#include "eh_digest.h"
#include "eh_stats.h"
#include "mud.h"

void mud_report_compute(struct mud *m)
{
	uint32_t i;

	for (int p = 0; p < m->nphases; p++) {
		m->phases[p].rtt_ms = calloc(m->count ? m->count : 1, sizeof(double));
		m->phases[p].n = 0;
	}
	for (i = 0; i < m->next; i++) {
		struct req *r = &m->reqs[i];
		struct phase *p = &m->phases[r->phase];

		if (r->answered && p->rtt_ms)
			p->rtt_ms[p->n++] = (r->ans_mono - r->first_mono) / 1e6;
	}
	for (int p = 0; p < m->nphases; p++)
		eh_rt_stats_of(&m->phases[p].st, m->phases[p].name, m->phases[p].rtt_ms,
			       m->phases[p].n);
}

static double fwd_pct(const struct mud *m)
{
	return m->answered ? 100.0 * m->forwarded / m->answered : 0;
}

enum field_kind {
	F_U64,		/* a uint64_t of struct mud */
	F_U32,		/* a uint32_t of struct mud */
	F_NEXT_SEQ,	/* the seq the next request would have */
	F_DIGEST,	/* the chain after the last request, hex */
	F_FWD_SHARE,	/* forwarded / answered (JSON: a fraction; text: %) */
};

struct field {
	const char *key;	/* in the JSON */
	enum field_kind kind;
	size_t off;		/* F_U64, F_U32 */
	int text_at;		/* its place in the text's counters line; 0: JSON only */
	const char *text;	/* its part of that line: %llu (%.1f for F_FWD_SHARE) */
};

#define U64(key, member, at, text) { key, F_U64, offsetof(struct mud, member), at, text }
#define U32(key, member, at, text) { key, F_U32, offsetof(struct mud, member), at, text }

static const struct field fields[] = {
	U32("sent", next, 1, "  sent %llu"),
	U64("transmissions", transmissions, 0, NULL),
	U64("answered", answered, 2, "  answered %llu"),
	U64("lost", lost, 3, "  lost %llu"),
	U64("retries", retries, 4, "  retries %llu"),
	U64("duplicate_answers", dup_answers, 5, "  duplicate answers %llu"),
	U64("cached_answers", cached_answers, 6, " (from cache %llu)"),
	U64("late_answers", late_answers, 7, "  late %llu"),
	U64("mismatches", mismatches, 8, "  mismatches %llu"),
	U64("foreign", foreign, 14, "  foreign %llu"),
	U64("forwarded", forwarded, 9, "  forwarded %llu"),
	U64("handoff_failures", handoff_failures, 0, NULL),
	{ "next_seq", F_NEXT_SEQ, 0, 0, NULL },
	{ "final_digest", F_DIGEST, 0, 0, NULL },
	U64("log_sent", log.sent, 0, NULL),
	U64("log_dropped", log.dropped, 0, NULL),
	U64("gap_answers", gap_answers, 11, "  gap %llu"),
	U64("stale_answers", stale_answers, 12, "  stale %llu"),
	U64("stale_errors", stale_errors, 13, " (unanswered %llu)"),
	{ "forwarded_share", F_FWD_SHARE, 0, 10, " (%.1f%% of answered)" },
	U64("bad_answers", bad_answers, 15, "  bad answers %llu"),
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static unsigned long long field_u(const struct mud *m, const struct field *fd)
{
	const char *p = (const char *)m + fd->off;

	switch (fd->kind) {
	case F_U64: return *(const uint64_t *)p;
	case F_U32: return *(const uint32_t *)p;
	case F_NEXT_SEQ: return m->start_seq + m->next;
	default: return 0;
	}
}

static void field_json(FILE *f, const struct mud *m, const struct field *fd)
{
	char hex[2 * EH_DIGEST_LEN + 1];

	fprintf(f, "\"%s\":", fd->key);
	switch (fd->kind) {
	case F_DIGEST:
		eh_digest_hex(m->chain, hex);
		fprintf(f, "\"%s\"", hex);
		break;
	case F_FWD_SHARE:
		fprintf(f, "%.6f", fwd_pct(m) / 100);
		break;
	default:
		fprintf(f, "%llu", field_u(m, fd));
	}
}

static void field_text(FILE *f, const struct mud *m, const struct field *fd)
{
	if (fd->kind == F_FWD_SHARE)
		fprintf(f, fd->text, fwd_pct(m));
	else
		fprintf(f, fd->text, field_u(m, fd));
}

static void report_text(const struct mud *m, double elapsed_s, FILE *f)
{
	char hex[2 * EH_DIGEST_LEN + 1];

	fprintf(f, "MUD %u (%s) -> %s:%u  run %s  %.2f s\n", m->mud_id,
		m->name, inet_ntoa(m->svc.sin_addr), ntohs(m->svc.sin_port),
		m->run, elapsed_s);
	for (int at = 1; at <= (int)NFIELDS; at++)
		for (size_t i = 0; i < NFIELDS; i++)
			if (fields[i].text_at == at)
				field_text(f, m, &fields[i]);
	fprintf(f, "\n");
	for (int k = 0; k < m->nho; k++)
		fprintf(f, "  handoff %d at seq %u to %s: %s%s%s (%.1f ms)\n", k + 1,
			m->ho[k].seq, m->aps[m->ho[k].ap].name,
			!m->ho[k].done ? "not reached" : m->ho[k].ok ? "ok" : "FAILED",
			m->ho[k].error[0] ? ": " : "", m->ho[k].error, m->ho[k].ms);
	eh_rt_stats_text_head(f);
	for (int p = 0; p < m->nphases; p++)
		eh_rt_stats_text(f, &m->phases[p].st);
	eh_digest_hex(m->chain, hex);
	fprintf(f, "  next seq %u, digest after seq %u: %s\n",
		m->start_seq + m->next, m->start_seq + m->next - 1, hex);
	if (m->log.fd >= 0)
		fprintf(f, "  log events sent %llu, dropped %llu\n",
			(unsigned long long)m->log.sent,
			(unsigned long long)m->log.dropped);
}

static void report_json(const struct mud *m, double elapsed_s, FILE *f)
{
	fprintf(f, "{\"run\":\"%s\",\"name\":\"%s\",\"mud_id\":%u,\"svc\":\"%s:%u\","
		"\"start_seq\":%u,\"count\":%u,\"elapsed_s\":%.3f,",
		m->run, m->name, m->mud_id, inet_ntoa(m->svc.sin_addr),
		ntohs(m->svc.sin_port), m->start_seq, m->count, elapsed_s);
	for (size_t i = 0; i < NFIELDS; i++) {
		field_json(f, m, &fields[i]);
		fprintf(f, ",");
	}
	fprintf(f, "\"servers\":[");
	for (int i = 0; i < m->nservers; i++)
		fprintf(f, "%s\"%s\"", i ? "," : "", m->servers[i]);
	fprintf(f, "],\"handoffs\":[");
	for (int k = 0; k < m->nho; k++)
		fprintf(f, "%s{\"seq\":%u,\"ap\":\"%s\",\"done\":%s,\"ok\":%s,\"ms\":%.3f,"
			"\"error\":\"%s\"}",
			k ? "," : "", m->ho[k].seq, m->aps[m->ho[k].ap].name,
			m->ho[k].done ? "true" : "false", m->ho[k].ok ? "true" : "false",
			m->ho[k].ms, m->ho[k].error);
	/* the failed ones again, with why: what a reader of the report looks for */
	fprintf(f, "],\"handoff_errors\":[");
	for (int k = 0, n = 0; k < m->nho; k++)
		if (m->ho[k].error[0])
			fprintf(f, "%s{\"seq\":%u,\"ap\":\"%s\",\"error\":\"%s\"}",
				n++ ? "," : "", m->ho[k].seq, m->aps[m->ho[k].ap].name,
				m->ho[k].error);
	fprintf(f, "],\"phases\":[");
	for (int p = 0; p < m->nphases; p++) {
		fprintf(f, "%s", p ? "," : "");
		eh_rt_stats_json(f, &m->phases[p].st);
	}
	fprintf(f, "]}\n");
}

void mud_report(const struct mud *m, double elapsed_s, FILE *f, bool json)
{
	if (json)
		report_json(m, elapsed_s, f);
	else
		report_text(m, elapsed_s, f);
}
