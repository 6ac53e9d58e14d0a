// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * From the runs read to the figures: answers matched to the requests a run
 * sent, migrations paired and given to runs, per-phase response times.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eh_stats.h"
#include "lr_report.h"

/* qsort() with an empty (possibly NULL) array is undefined: skip it. */
void lr_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

static int cmp_req(const void *a, const void *b)
{
	const struct lr_req *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_sent_seq(const void *a, const void *b)
{
	const struct lr_sent *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Only answers to requests the run sent count, once per seq: an answer to a
 * seq never sent (forged, or another run's) is counted in unmatched, a second
 * first-answer to a seq as a duplicate. A run whose sends were not logged
 * keeps its answers as they are.
 */
static void match_answers(struct lr_run *run)
{
	size_t k, w = 0;

	lr_sort(run->first_tries, run->nsent, sizeof(*run->first_tries), cmp_sent_seq);
	for (k = 0; k < run->nreq; k++) {
		struct lr_sent key = { .seq = run->reqs[k].seq };

		if (run->nsent && !bsearch(&key, run->first_tries, run->nsent,
					   sizeof(key), cmp_sent_seq)) {
			run->unmatched++;
			continue;
		}
		if (w && run->reqs[w - 1].seq == run->reqs[k].seq) {
			run->dups++;
			continue;
		}
		run->reqs[w++] = run->reqs[k];
	}
	run->nreq = w;
	run->answered = w;
	run->fwd = 0;
	for (k = 0; k < w; k++)
		run->fwd += run->reqs[k].fwd;
}

static int cmp_mark(const void *a, const void *b)
{
	const struct lr_marker *x = a, *y = b;

	return x->t_ns < y->t_ns ? -1 : x->t_ns > y->t_ns;
}

static struct lr_run *run_at(struct lr_report *r, const struct lr_marker *m)
{
	struct lr_run *best = NULL;

	if (m->run[0] && (best = lr_find_run(r, m->run)))
		return best;
	for (int i = 0; i < r->nruns; i++) {
		struct lr_run *run = &r->runs[i];

		if (m->t_ns >= run->first_ns && m->t_ns <= run->last_ns)
			return run;
		/* a marker just after a run's last event still belongs to it */
		if (m->t_ns > run->last_ns && (!best || run->last_ns > best->last_ns))
			best = run;
	}
	return best;
}

static void mig_seqs(struct lr_run *run, struct lr_mig *mg)
{
	uint64_t end = mg->end_ns ? mg->end_ns : UINT64_MAX;

	for (size_t i = 0; i < run->nsent; i++) {
		uint32_t seq = run->first_tries[i].seq;

		if (run->first_tries[i].t_ns < mg->begin_ns || run->first_tries[i].t_ns > end)
			continue;
		if (!mg->has_seqs || seq < mg->first_seq)
			mg->first_seq = seq;
		if (!mg->has_seqs || seq > mg->last_seq)
			mg->last_seq = seq;
		mg->has_seqs = true;
	}
}

int lr_report_compute(struct lr_report *r)
{
	struct lr_mig *cur = NULL;
	double *v = NULL;

	lr_sort(r->marks, r->nmarks, sizeof(*r->marks), cmp_mark);
	for (size_t i = 0; i < r->nmarks; i++) {
		struct lr_marker *m = &r->marks[i];
		struct lr_run *run = run_at(r, m);

		if (!run)
			continue;
		switch (m->kind) {
		case 0:
			if (run->nmigs >= LR_MAX_MIGS)
				break;
			cur = &run->migs[run->nmigs++];
			memset(cur, 0, sizeof(*cur));
			cur->begin_ns = m->t_ns;
			cur->pause_ms = -1;
			break;
		case 1:
			if (cur && !cur->end_ns)
				cur->end_ns = m->t_ns;
			break;
		case 2:
			if (cur && cur->nsteps < LR_MAX_STEPS)
				cur->steps[cur->nsteps++] = m->step;
			break;
		case 3:
			if (cur)
				cur->pause_ms = m->pause_ms;
			break;
		}
	}

	for (int i = 0; i < r->nruns; i++) {
		struct lr_run *run = &r->runs[i];

		lr_sort(run->reqs, run->nreq, sizeof(*run->reqs), cmp_req);
		match_answers(run);
		run->mismatches = 0;
		for (size_t k = 0; k < run->nreq; k++)
			run->mismatches += run->reqs[k].mismatch;
		for (size_t k = 0; k < run->ndup_mism; k++) {
			struct lr_req key = { .seq = run->dup_mism[k] }, *q;

			q = run->nreq ? bsearch(&key, run->reqs, run->nreq, sizeof(key),
						cmp_req) : NULL;
			if (q && !q->mismatch) {
				q->mismatch = true;
				run->mismatches++;
			}
		}
		for (int k = 0; k < run->nmigs; k++)
			mig_seqs(run, &run->migs[k]);
		/*
		 * A MUD that did not label phases itself (no --handoff of its
		 * own) gets them from the one migration: requests first sent
		 * before it began, while it ran, after it finished.
		 */
		if (run->nphases == 1 && !strcmp(run->phase_names[0], "all") &&
		    run->nmigs == 1 && run->migs[0].has_seqs && run->migs[0].end_ns) {
			const struct lr_mig *mg = &run->migs[0];
			int pb, pd, pa;

			run->nphases = 0;
			pb = lr_phase_index(run, "before");
			pd = lr_phase_index(run, "during");
			pa = lr_phase_index(run, "after");
			for (size_t k = 0; k < run->nreq; k++) {
				uint32_t seq = run->reqs[k].seq;

				run->reqs[k].phase = seq < mg->first_seq ? pb :
						     seq <= mg->last_seq ? pd : pa;
			}
		}

		free(v);
		v = malloc((run->nreq + 1) * sizeof(double));
		if (!v)
			return -ENOMEM;
		for (int k = 0; k < run->nmigs; k++) {
			struct lr_mig *mg = &run->migs[k];
			size_t n = 0;

			if (!mg->has_seqs)
				continue;
			for (size_t q = 0; q < run->nreq; q++)
				if (run->reqs[q].seq >= mg->first_seq && run->reqs[q].seq <= mg->last_seq)
					v[n++] = run->reqs[q].rtt_ns / 1e6;
			eh_rt_stats_of(&mg->rt, "migration", v, n);
		}
		for (int p = 0; p < run->nphases; p++) {
			size_t n = 0;

			for (size_t k = 0; k < run->nreq; k++)
				if (run->reqs[k].phase == p)
					v[n++] = run->reqs[k].rtt_ns / 1e6;
			eh_rt_stats_of(&run->ps[p], run->phase_names[p], v, n);
		}
	}
	free(v);
	return 0;
}

/* ---- aggregates, for report_print.c and report_plot.c ---- */

void lr_mmm_add(struct lr_mmm *a, double x)
{
	if (!a->n || x < a->min)
		a->min = x;
	if (!a->n || x > a->max)
		a->max = x;
	a->sum += x;
	a->n++;
}
