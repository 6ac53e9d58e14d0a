// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The report as text (the default) and as JSON (--json). Each list of
 * fields is one table below that both forms walk: a run's counters, the
 * MUD's own count, the across-run aggregates; a phase's row is
 * control/common's eh_rt_stats (the MUD prints the same).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "eh_log.h"
#include "eh_stats.h"
#include "lr_report.h"

static double mig_s(const struct lr_mig *m)
{
	return m->end_ns ? (m->end_ns - m->begin_ns) / 1e9 : -1;
}

/* ---- a run's counters ------------------------------------------------------ */

enum run_kind {
	RF_U64,		/* a uint64_t of struct lr_run */
	RF_SHARE,	/* forwarded / answered (JSON: a fraction; text: %) */
};

static const struct run_field {
	const char *key;	/* JSON */
	const char *text;	/* its part of the text's counters line; NULL: JSON only */
	enum run_kind kind;
	size_t off;
} run_fields[] = {
	{ "sent", "  sent %llu", RF_U64, offsetof(struct lr_run, sent) },
	{ "answered", "  answered %llu", RF_U64, offsetof(struct lr_run, answered) },
	{ "lost", "  lost %llu", RF_U64, offsetof(struct lr_run, lost) },
	{ "duplicate_answers", "  duplicate answers %llu", RF_U64, offsetof(struct lr_run, dups) },
	{ "mismatches", "  mismatches %llu", RF_U64, offsetof(struct lr_run, mismatches) },
	{ "forwarded", "  forwarded %llu", RF_U64, offsetof(struct lr_run, fwd) },
	{ "forwarded_share", " (%.1f%%)", RF_SHARE, 0 },
	/* said on a line of its own in the text, when there are any */
	{ "unmatched_answers", NULL, RF_U64, offsetof(struct lr_run, unmatched) },
};

/* The MUD's own totals from its MUD REPORT event: the same names in both forms. */
static const struct {
	const char *name;
	size_t off;
} mud_fields[] = {
	{ "sent", offsetof(struct lr_run, mr_sent) },
	{ "answered", offsetof(struct lr_run, mr_answered) },
	{ "lost", offsetof(struct lr_run, mr_lost) },
	{ "dups", offsetof(struct lr_run, mr_dups) },
	{ "mismatches", offsetof(struct lr_run, mr_mismatches) },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static unsigned long long run_u64(const struct lr_run *run, size_t off)
{
	return *(const uint64_t *)((const char *)run + off);
}

static void run_text(FILE *f, const struct lr_run *run)
{
	fprintf(f, "run %s\n", run->id);
	for (size_t i = 0; i < NELEM(run_fields); i++) {
		const struct run_field *fd = &run_fields[i];

		if (!fd->text)
			continue;
		if (fd->kind == RF_SHARE)
			fprintf(f, fd->text, run->answered ? 100.0 * run->fwd / run->answered : 0);
		else
			fprintf(f, fd->text, run_u64(run, fd->off));
	}
	fprintf(f, "\n");
}

static void run_json(FILE *f, const struct lr_run *run)
{
	fprintf(f, "{\"run\":\"%s\"", run->id);
	for (size_t i = 0; i < NELEM(run_fields); i++) {
		const struct run_field *fd = &run_fields[i];

		if (fd->kind == RF_SHARE)
			fprintf(f, ",\"%s\":%.6f", fd->key,
				run->answered ? (double)run->fwd / run->answered : 0);
		else
			fprintf(f, ",\"%s\":%llu", fd->key, run_u64(run, fd->off));
	}
}

/* ---- across runs ------------------------------------------------------------- */

/* Across-run aggregates, by name; the callers print them. */
struct across {
	struct lr_mmm lost, mism, fwd_share, mig_s, pause;
	char pnames[LR_MAX_PHASES][24];
	struct lr_mmm pmean[LR_MAX_PHASES], pp99[LR_MAX_PHASES], pmax[LR_MAX_PHASES];
	int np;
};

static const struct {
	const char *label, *unit;	/* text */
	const char *key;		/* JSON */
	size_t off;
} across_fields[] = {
	{ "lost", "", "lost", offsetof(struct across, lost) },
	{ "mismatches", "", "mismatches", offsetof(struct across, mism) },
	{ "forwarded share", "", "forwarded_share", offsetof(struct across, fwd_share) },
	{ "migration time", "s", "migration_time_s", offsetof(struct across, mig_s) },
	{ "pause", "ms", "pause_ms", offsetof(struct across, pause) },
};

/* Per phase name: text "<phase> mean rt" (ms), JSON "<phase>":{"mean_ms":..} */
static const struct {
	const char *label;	/* text, after the phase's name; NULL: JSON only */
	const char *key;	/* JSON */
	size_t off;
} across_phase_fields[] = {
	{ "mean rt", "mean_ms", offsetof(struct across, pmean) },
	{ "p99 rt", "p99_ms", offsetof(struct across, pp99) },
	{ NULL, "max_ms", offsetof(struct across, pmax) },
};

static const struct lr_mmm *across_at(const struct across *a, size_t off, int j)
{
	return (const struct lr_mmm *)((const char *)a + off) + j;
}

static void across(const struct lr_report *r, struct across *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 0; i < r->nruns; i++) {
		const struct lr_run *run = &r->runs[i];

		lr_mmm_add(&a->lost, (double)run->lost);
		lr_mmm_add(&a->mism, (double)run->mismatches);
		lr_mmm_add(&a->fwd_share, run->answered ? (double)run->fwd / run->answered : 0);
		for (int k = 0; k < run->nmigs; k++) {
			if (mig_s(&run->migs[k]) >= 0)
				lr_mmm_add(&a->mig_s, mig_s(&run->migs[k]));
			if (run->migs[k].pause_ms >= 0)
				lr_mmm_add(&a->pause, run->migs[k].pause_ms);
		}
		for (int p = 0; p < run->nphases; p++) {
			int j;

			for (j = 0; j < a->np; j++)
				if (!strcmp(a->pnames[j], run->ps[p].name))
					break;
			if (j == a->np) {
				if (a->np >= LR_MAX_PHASES)
					continue;
				strcpy(a->pnames[a->np++], run->ps[p].name);
			}
			lr_mmm_add(&a->pmean[j], run->ps[p].mean);
			lr_mmm_add(&a->pp99[j], run->ps[p].p99);
			lr_mmm_add(&a->pmax[j], run->ps[p].max);
		}
	}
}

static void pr_mmm(FILE *f, const char *label, const struct lr_mmm *m, const char *unit)
{
	if (!m->n)
		fprintf(f, "  %-22s -\n", label);
	else
		fprintf(f, "  %-22s min %.3f  mean %.3f  max %.3f %s (%d)\n", label,
			m->min, m->sum / m->n, m->max, unit, m->n);
}

static void js_mmm(FILE *f, const char *key, const struct lr_mmm *m)
{
	if (!m->n)
		fprintf(f, "\"%s\":null", key);
	else
		fprintf(f, "\"%s\":{\"min\":%.6f,\"mean\":%.6f,\"max\":%.6f,\"n\":%d}",
			key, m->min, m->sum / m->n, m->max, m->n);
}

static void across_text(FILE *f, const struct lr_report *r)
{
	struct across a;

	across(r, &a);
	fprintf(f, "across runs:\n");
	for (size_t i = 0; i < NELEM(across_fields); i++)
		pr_mmm(f, across_fields[i].label, across_at(&a, across_fields[i].off, 0),
		       across_fields[i].unit);
	for (int j = 0; j < a.np; j++) {
		for (size_t i = 0; i < NELEM(across_phase_fields); i++) {
			char label[48];

			if (!across_phase_fields[i].label)
				continue;
			snprintf(label, sizeof(label), "%s %s", a.pnames[j],
				 across_phase_fields[i].label);
			pr_mmm(f, label, across_at(&a, across_phase_fields[i].off, j), "ms");
		}
	}
}

static void across_json(FILE *f, const struct lr_report *r)
{
	struct across a;

	across(r, &a);
	fprintf(f, "],\"across_runs\":{\"runs\":%d", r->nruns);
	for (size_t i = 0; i < NELEM(across_fields); i++) {
		fprintf(f, ",");
		js_mmm(f, across_fields[i].key, across_at(&a, across_fields[i].off, 0));
	}
	fprintf(f, ",\"phases\":{");
	for (int j = 0; j < a.np; j++) {
		fprintf(f, "%s\"%s\":{", j ? "," : "", a.pnames[j]);
		for (size_t i = 0; i < NELEM(across_phase_fields); i++) {
			fprintf(f, "%s", i ? "," : "");
			js_mmm(f, across_phase_fields[i].key,
			       across_at(&a, across_phase_fields[i].off, j));
		}
		fprintf(f, "}");
	}
	fprintf(f, "}}}\n");
}

/* ---- the two forms ----------------------------------------------------------- */

void lr_report_print(const struct lr_report *r, FILE *f)
{
	fprintf(f, "%d run(s), %llu events, %llu lines skipped\n", r->nruns,
		(unsigned long long)r->events, (unsigned long long)r->bad_lines);
	if (r->refused_events)
		fprintf(f, "REFUSED: %llu events of runs beyond the first %d\n",
			(unsigned long long)r->refused_events, LR_MAX_RUNS);
	for (int i = 0; i < r->nruns; i++) {
		const struct lr_run *run = &r->runs[i];

		run_text(f, run);
		eh_rt_stats_text_head(f);
		for (int p = 0; p < run->nphases; p++)
			eh_rt_stats_text(f, &run->ps[p]);
		for (int k = 0; k < run->nmigs; k++) {
			const struct lr_mig *m = &run->migs[k];
			char ts[40];

			eh_log_timestamp(m->begin_ns, ts);
			fprintf(f, "  migration %d: begins %s, ", k + 1, ts);
			if (m->end_ns)
				fprintf(f, "time %.3f s", mig_s(m));
			else
				fprintf(f, "NOT FINISHED");
			if (m->pause_ms >= 0)
				fprintf(f, ", pause %.3f ms", m->pause_ms);
			if (m->has_seqs)
				fprintf(f, ", requests %u..%u", m->first_seq, m->last_seq);
			fprintf(f, "\n");
			if (m->has_seqs)
				fprintf(f, "    response times of those: %u answered, mean %.3f ms, "
					"p99 %.3f ms, max %.3f ms\n", m->rt.n, m->rt.mean, m->rt.p99,
					m->rt.max);
			for (int s = 0; s < m->nsteps; s++) {
				fprintf(f, "    step %-8s %12llu bytes", m->steps[s].name,
					(unsigned long long)m->steps[s].bytes);
				if (m->steps[s].ms >= 0)
					fprintf(f, " %10.3f ms", m->steps[s].ms);
				fprintf(f, "\n");
			}
		}
		if (run->unmatched)
			fprintf(f, "  UNMATCHED: %llu answer(s) to seqs this run never sent (not counted)\n",
				(unsigned long long)run->unmatched);
		if (run->has_mud_report) {
			fprintf(f, "  MUD's own count:");
			for (size_t j = 0; j < NELEM(mud_fields); j++)
				fprintf(f, " %s %llu", mud_fields[j].name,
					run_u64(run, mud_fields[j].off));
			fprintf(f, "\n");
		}
	}
	across_text(f, r);
}

void lr_report_json(const struct lr_report *r, FILE *f)
{
	fprintf(f, "{\"events\":%llu,\"skipped_lines\":%llu,\"refused_events\":%llu,\"runs\":[",
		(unsigned long long)r->events, (unsigned long long)r->bad_lines,
		(unsigned long long)r->refused_events);
	for (int i = 0; i < r->nruns; i++) {
		const struct lr_run *run = &r->runs[i];

		fprintf(f, "%s", i ? "," : "");
		run_json(f, run);
		fprintf(f, ",\"phases\":[");
		for (int p = 0; p < run->nphases; p++) {
			fprintf(f, "%s", p ? "," : "");
			eh_rt_stats_json(f, &run->ps[p]);
		}
		fprintf(f, "],\"migrations\":[");
		for (int k = 0; k < run->nmigs; k++) {
			const struct lr_mig *m = &run->migs[k];

			fprintf(f, "%s{\"begin_ns\":%llu,\"end_ns\":%llu,\"time_s\":",
				k ? "," : "", (unsigned long long)m->begin_ns,
				(unsigned long long)m->end_ns);
			if (m->end_ns)
				fprintf(f, "%.6f", mig_s(m));
			else
				fprintf(f, "null");
			fprintf(f, ",\"pause_ms\":");
			if (m->pause_ms >= 0)
				fprintf(f, "%.3f", m->pause_ms);
			else
				fprintf(f, "null");
			if (m->has_seqs) {
				fprintf(f, ",\"first_seq\":%u,\"last_seq\":%u,\"rt\":",
					m->first_seq, m->last_seq);
				eh_rt_stats_json(f, &m->rt);
			}
			fprintf(f, ",\"steps\":[");
			for (int s = 0; s < m->nsteps; s++) {
				fprintf(f, "%s{\"step\":\"%s\",\"bytes\":%llu,\"ms\":",
					s ? "," : "", m->steps[s].name,
					(unsigned long long)m->steps[s].bytes);
				if (m->steps[s].ms >= 0)
					fprintf(f, "%.3f}", m->steps[s].ms);
				else
					fprintf(f, "null}");
			}
			fprintf(f, "]}");
		}
		fprintf(f, "]");
		if (run->has_mud_report) {
			fprintf(f, ",\"mud_report\":{");
			for (size_t j = 0; j < NELEM(mud_fields); j++)
				fprintf(f, "%s\"%s\":%llu", j ? "," : "", mud_fields[j].name,
					run_u64(run, mud_fields[j].off));
			fprintf(f, "}");
		}
		fprintf(f, "}");
	}
	across_json(f, r);
}
