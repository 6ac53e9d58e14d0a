// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <jansson.h>

#include "eh_log.h"
#include "eh_stats.h"
#include "lr_report.h"

void lr_report_init(struct lr_report *r)
{
	memset(r, 0, sizeof(*r));
	if (getrandom(&r->hash_key, sizeof(r->hash_key), GRND_NONBLOCK) !=
	    sizeof(r->hash_key))
		r->hash_key = 0x9e3779b9u;
}

void lr_report_free(struct lr_report *r)
{
	for (int i = 0; i < r->nruns; i++) {
		free(r->runs[i].reqs);
		free(r->runs[i].dup_mism);
		free(r->runs[i].first_tries);
	}
	free(r->runs);
	free(r->marks);
	memset(r, 0, sizeof(*r));
}

/* Grow *arr (of @size-byte elements) so that index @n fits. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 256;
	while (ncap <= n)
		ncap *= 2;
	p = realloc(*arr, ncap * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static uint32_t run_bucket(const struct lr_report *r, const char *id)
{
	uint32_t h = 2166136261u ^ r->hash_key;	/* FNV-1a, keyed */

	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	h ^= h >> 15;
	return h % LR_RUN_BUCKETS;
}

static struct lr_run *find_run(struct lr_report *r, const char *id)
{
	for (int i = r->buckets[run_bucket(r, id)]; i; i = r->runs[i - 1].hnext)
		if (!strcmp(r->runs[i - 1].id, id))
			return &r->runs[i - 1];
	return NULL;
}

/* The run @id, added if new; NULL with -ENOSPC past LR_MAX_RUNS (or -ENOMEM). */
static struct lr_run *get_run(struct lr_report *r, const char *id, int *err)
{
	struct lr_run *run = find_run(r, id);
	size_t cap = r->capruns;
	uint32_t b;

	if (run)
		return run;
	if (r->nruns >= LR_MAX_RUNS) {
		*err = -ENOSPC;
		return NULL;
	}
	if (grow((void **)&r->runs, &cap, r->nruns, sizeof(*r->runs))) {
		*err = -ENOMEM;
		return NULL;
	}
	r->capruns = (int)cap;
	run = &r->runs[r->nruns++];
	memset(run, 0, sizeof(*run));
	snprintf(run->id, sizeof(run->id), "%s", id);
	b = run_bucket(r, run->id);
	run->hnext = r->buckets[b];
	r->buckets[b] = r->nruns;
	return run;
}

static const char *fstr(json_t *fields, const char *key)
{
	json_t *v = json_object_get(fields, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int fint(json_t *fields, const char *key, long long *out)
{
	json_t *v = json_object_get(fields, key);

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 1;
	}
	if (json_is_real(v)) {
		*out = (long long)json_real_value(v);
		return 1;
	}
	return 0;
}

static int fnum(json_t *fields, const char *key, double *out)
{
	json_t *v = json_object_get(fields, key);

	if (!json_is_number(v))
		return 0;
	*out = json_number_value(v);
	return 1;
}

static int phase_index(struct lr_run *run, const char *name)
{
	for (int i = 0; i < run->nphases; i++)
		if (!strcmp(run->phase_names[i], name))
			return i;
	if (run->nphases >= LR_MAX_PHASES)
		return LR_MAX_PHASES - 1;
	snprintf(run->phase_names[run->nphases], 24, "%s", name);
	return run->nphases++;
}

static int add_mark(struct lr_report *r, const struct lr_marker *m)
{
	if (grow((void **)&r->marks, &r->capmarks, r->nmarks, sizeof(*m)))
		return -ENOMEM;
	r->marks[r->nmarks++] = *m;
	return 0;
}

static int take_event(struct lr_report *r, json_t *ev)
{
	const char *event = json_string_value(json_object_get(ev, "event"));
	const char *dir = json_string_value(json_object_get(ev, "dir"));
	const char *arg = json_string_value(json_object_get(ev, "arg"));
	json_t *fields = json_object_get(ev, "fields");
	json_t *tj = json_object_get(ev, "t_ns");
	const char *runid, *s;
	char numrun[32];
	struct lr_marker mk;
	struct lr_run *run;
	long long v;
	uint64_t t;
	uint32_t seq;
	double d;
	int err = 0;

	if (!event || !json_is_integer(tj) || !json_is_object(fields))
		return -EINVAL;
	t = (uint64_t)json_integer_value(tj);
	dir = dir ? dir : "";
	runid = fstr(fields, "run");
	if (!runid && fint(fields, "run", &v)) {	/* an all-digit run id */
		snprintf(numrun, sizeof(numrun), "%lld", v);
		runid = numrun;
	}

	memset(&mk, 0, sizeof(mk));
	mk.t_ns = t;
	mk.kind = -1;
	if (runid)
		snprintf(mk.run, sizeof(mk.run), "%s", runid);
	if (!strcmp(event, "migr begins"))
		mk.kind = 0;
	else if (!strcmp(event, "migr finished"))
		mk.kind = 1;
	if (mk.kind >= 0 && add_mark(r, &mk))
		return -ENOMEM;
	if ((s = fstr(fields, "step")) && fint(fields, "bytes", &v)) {
		mk.kind = 2;
		snprintf(mk.step.name, sizeof(mk.step.name), "%s", s);
		mk.step.bytes = (uint64_t)v;
		mk.step.ms = fnum(fields, "ms", &d) ? d : -1;
		if (add_mark(r, &mk))
			return -ENOMEM;
	}
	if (fnum(fields, "pause_ms", &d)) {
		mk.kind = 3;
		mk.pause_ms = d;
		if (add_mark(r, &mk))
			return -ENOMEM;
	}
	if (!runid)
		return 0;

	run = get_run(r, runid, &err);
	if (!run) {
		if (err != -ENOSPC)
			return err;
		if (!r->refused_events++)
			fprintf(stderr, "logrepo: more than %d runs: refusing the events of "
				"run '%s' and of every further new run (counted)\n",
				LR_MAX_RUNS, runid);
		return 0;
	}
	if (!run->first_ns || t < run->first_ns)
		run->first_ns = t;
	if (t > run->last_ns)
		run->last_ns = t;
	seq = arg ? (uint32_t)strtoul(arg, NULL, 10) : 0;

	if (!strcmp(event, "SVCQ") && !strcmp(dir, "sent")) {
		if (fint(fields, "try", &v) && v != 1)
			return 0;
		run->sent++;
		if (grow((void **)&run->first_tries, &run->capsent, run->nsent,
			 sizeof(*run->first_tries)))
			return -ENOMEM;
		run->first_tries[run->nsent].t_ns = t;
		run->first_tries[run->nsent++].seq = seq;
	} else if (!strcmp(event, "SVCQ") && !strcmp(dir, "lost")) {
		run->lost++;
	} else if (!strcmp(event, "SVCR") && !strcmp(dir, "recvd")) {
		long long dup = 0, mism = 0, fwd = 0, rtt = 0;

		fint(fields, "dup", &dup);
		fint(fields, "mismatch", &mism);
		fint(fields, "fwd", &fwd);
		fint(fields, "rtt_ns", &rtt);
		if (dup) {
			run->dups++;
			if (mism) {
				if (grow((void **)&run->dup_mism, &run->capdup,
					 run->ndup_mism, sizeof(uint32_t)))
					return -ENOMEM;
				run->dup_mism[run->ndup_mism++] = seq;
			}
			return 0;
		}
		if (grow((void **)&run->reqs, &run->capreq, run->nreq,
			 sizeof(*run->reqs)))
			return -ENOMEM;
		run->reqs[run->nreq].seq = seq;
		run->reqs[run->nreq].rtt_ns = (uint64_t)rtt;
		s = fstr(fields, "phase");
		run->reqs[run->nreq].phase = (uint8_t)phase_index(run, s ? s : "all");
		run->reqs[run->nreq].fwd = fwd;
		run->reqs[run->nreq].mismatch = mism;
		run->nreq++;
		run->answered++;
		run->fwd += !!fwd;
	} else if (!strcmp(event, "MUD REPORT")) {
		run->has_mud_report = true;
		if (fint(fields, "sent", &v)) run->mr_sent = v;
		if (fint(fields, "answered", &v)) run->mr_answered = v;
		if (fint(fields, "lost", &v)) run->mr_lost = v;
		if (fint(fields, "dups", &v)) run->mr_dups = v;
		if (fint(fields, "mismatches", &v)) run->mr_mismatches = v;
	}
	return 0;
}

int lr_report_load(struct lr_report *r, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int err = 0;

	if (!f)
		return -errno;
	while ((n = getline(&line, &cap, f)) > 0) {
		json_error_t jerr;
		json_t *ev;

		r->lines++;
		if (line[0] != '{') {	/* the Fig. 5 text log: not parsed */
			r->bad_lines++;
			continue;
		}
		ev = json_loadb(line, n, 0, &jerr);
		if (!ev) {
			r->bad_lines++;
			continue;
		}
		err = take_event(r, ev);
		json_decref(ev);
		if (err == -EINVAL) {
			r->bad_lines++;
			err = 0;
		} else if (err) {
			break;
		} else {
			r->events++;
		}
	}
	free(line);
	fclose(f);
	return err;
}

/* qsort() with an empty (possibly NULL) array is undefined: skip it. */
static void sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
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

	sort(run->first_tries, run->nsent, sizeof(*run->first_tries), cmp_sent_seq);
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

	if (m->run[0] && (best = find_run(r, m->run)))
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

	sort(r->marks, r->nmarks, sizeof(*r->marks), cmp_mark);
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

		sort(run->reqs, run->nreq, sizeof(*run->reqs), cmp_req);
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
			pb = phase_index(run, "before");
			pd = phase_index(run, "during");
			pa = phase_index(run, "after");
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
		for (int p = 0; p < run->nphases; p++) {
			struct lr_phase_stats *ps = &run->ps[p];
			double sum = 0;
			size_t n = 0;

			for (size_t k = 0; k < run->nreq; k++)
				if (run->reqs[k].phase == p)
					v[n++] = run->reqs[k].rtt_ns / 1e6;
			eh_sort_doubles(v, n);
			for (size_t k = 0; k < n; k++)
				sum += v[k];
			snprintf(ps->name, sizeof(ps->name), "%s", run->phase_names[p]);
			ps->n = (uint32_t)n;
			ps->p50 = eh_pct(v, n, 0.5);
			ps->p90 = eh_pct(v, n, 0.9);
			ps->p99 = eh_pct(v, n, 0.99);
			ps->max = n ? v[n - 1] : 0;
			ps->mean = n ? sum / n : 0;
		}
	}
	free(v);
	return 0;
}

struct mmm {
	double min, sum, max;
	int n;
};

static void mmm_add(struct mmm *a, double x)
{
	if (!a->n || x < a->min)
		a->min = x;
	if (!a->n || x > a->max)
		a->max = x;
	a->sum += x;
	a->n++;
}

static double mig_s(const struct lr_mig *m)
{
	return m->end_ns ? (m->end_ns - m->begin_ns) / 1e9 : -1;
}

/* Across-run aggregates, by name; the callers print them. */
struct across {
	struct mmm lost, mism, fwd_share, mig_s, pause;
	char pnames[LR_MAX_PHASES][24];
	struct mmm pmean[LR_MAX_PHASES], pp99[LR_MAX_PHASES], pmax[LR_MAX_PHASES];
	int np;
};

static void across(const struct lr_report *r, struct across *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 0; i < r->nruns; i++) {
		const struct lr_run *run = &r->runs[i];

		mmm_add(&a->lost, (double)run->lost);
		mmm_add(&a->mism, (double)run->mismatches);
		mmm_add(&a->fwd_share, run->answered ? (double)run->fwd / run->answered : 0);
		for (int k = 0; k < run->nmigs; k++) {
			if (mig_s(&run->migs[k]) >= 0)
				mmm_add(&a->mig_s, mig_s(&run->migs[k]));
			if (run->migs[k].pause_ms >= 0)
				mmm_add(&a->pause, run->migs[k].pause_ms);
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
			mmm_add(&a->pmean[j], run->ps[p].mean);
			mmm_add(&a->pp99[j], run->ps[p].p99);
			mmm_add(&a->pmax[j], run->ps[p].max);
		}
	}
}

static void pr_mmm(FILE *f, const char *label, const struct mmm *m, const char *unit)
{
	if (!m->n)
		fprintf(f, "  %-22s -\n", label);
	else
		fprintf(f, "  %-22s min %.3f  mean %.3f  max %.3f %s (%d)\n", label,
			m->min, m->sum / m->n, m->max, unit, m->n);
}

void lr_report_print(const struct lr_report *r, FILE *f)
{
	struct across a;

	fprintf(f, "%d run(s), %llu events, %llu lines skipped\n", r->nruns,
		(unsigned long long)r->events, (unsigned long long)r->bad_lines);
	if (r->refused_events)
		fprintf(f, "REFUSED: %llu events of runs beyond the first %d\n",
			(unsigned long long)r->refused_events, LR_MAX_RUNS);
	for (int i = 0; i < r->nruns; i++) {
		const struct lr_run *run = &r->runs[i];

		fprintf(f, "run %s\n  sent %llu  answered %llu  lost %llu  "
			"duplicate answers %llu  mismatches %llu  forwarded %llu (%.1f%%)\n",
			run->id, (unsigned long long)run->sent,
			(unsigned long long)run->answered, (unsigned long long)run->lost,
			(unsigned long long)run->dups,
			(unsigned long long)run->mismatches,
			(unsigned long long)run->fwd,
			run->answered ? 100.0 * run->fwd / run->answered : 0);
		fprintf(f, "  %-10s %8s %10s %10s %10s %10s %10s\n", "phase",
			"requests", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms");
		for (int p = 0; p < run->nphases; p++)
			fprintf(f, "  %-10s %8u %10.3f %10.3f %10.3f %10.3f %10.3f\n",
				run->ps[p].name, run->ps[p].n, run->ps[p].p50,
				run->ps[p].p90, run->ps[p].p99, run->ps[p].max,
				run->ps[p].mean);
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
		if (run->has_mud_report)
			fprintf(f, "  MUD's own count: sent %llu answered %llu lost %llu dups %llu mismatches %llu\n",
				(unsigned long long)run->mr_sent,
				(unsigned long long)run->mr_answered,
				(unsigned long long)run->mr_lost,
				(unsigned long long)run->mr_dups,
				(unsigned long long)run->mr_mismatches);
	}
	across(r, &a);
	fprintf(f, "across runs:\n");
	pr_mmm(f, "lost", &a.lost, "");
	pr_mmm(f, "mismatches", &a.mism, "");
	pr_mmm(f, "forwarded share", &a.fwd_share, "");
	pr_mmm(f, "migration time", &a.mig_s, "s");
	pr_mmm(f, "pause", &a.pause, "ms");
	for (int j = 0; j < a.np; j++) {
		char label[48];

		snprintf(label, sizeof(label), "%s mean rt", a.pnames[j]);
		pr_mmm(f, label, &a.pmean[j], "ms");
		snprintf(label, sizeof(label), "%s p99 rt", a.pnames[j]);
		pr_mmm(f, label, &a.pp99[j], "ms");
	}
}

static void js_mmm(FILE *f, const char *key, const struct mmm *m)
{
	if (!m->n)
		fprintf(f, "\"%s\":null", key);
	else
		fprintf(f, "\"%s\":{\"min\":%.6f,\"mean\":%.6f,\"max\":%.6f,\"n\":%d}",
			key, m->min, m->sum / m->n, m->max, m->n);
}

void lr_report_json(const struct lr_report *r, FILE *f)
{
	struct across a;

	fprintf(f, "{\"events\":%llu,\"skipped_lines\":%llu,\"refused_events\":%llu,\"runs\":[",
		(unsigned long long)r->events, (unsigned long long)r->bad_lines,
		(unsigned long long)r->refused_events);
	for (int i = 0; i < r->nruns; i++) {
		const struct lr_run *run = &r->runs[i];

		fprintf(f, "%s{\"run\":\"%s\",\"sent\":%llu,\"answered\":%llu,"
			"\"lost\":%llu,\"duplicate_answers\":%llu,\"mismatches\":%llu,"
			"\"forwarded\":%llu,\"forwarded_share\":%.6f,\"unmatched_answers\":%llu,\"phases\":[",
			i ? "," : "", run->id, (unsigned long long)run->sent,
			(unsigned long long)run->answered, (unsigned long long)run->lost,
			(unsigned long long)run->dups,
			(unsigned long long)run->mismatches,
			(unsigned long long)run->fwd,
			run->answered ? (double)run->fwd / run->answered : 0,
			(unsigned long long)run->unmatched);
		for (int p = 0; p < run->nphases; p++)
			fprintf(f, "%s{\"name\":\"%s\",\"requests\":%u,\"p50_ms\":%.3f,"
				"\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
				"\"mean_ms\":%.3f}", p ? "," : "", run->ps[p].name,
				run->ps[p].n, run->ps[p].p50, run->ps[p].p90,
				run->ps[p].p99, run->ps[p].max, run->ps[p].mean);
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
			if (m->has_seqs)
				fprintf(f, ",\"first_seq\":%u,\"last_seq\":%u",
					m->first_seq, m->last_seq);
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
		if (run->has_mud_report)
			fprintf(f, ",\"mud_report\":{\"sent\":%llu,\"answered\":%llu,"
				"\"lost\":%llu,\"dups\":%llu,\"mismatches\":%llu}",
				(unsigned long long)run->mr_sent,
				(unsigned long long)run->mr_answered,
				(unsigned long long)run->mr_lost,
				(unsigned long long)run->mr_dups,
				(unsigned long long)run->mr_mismatches);
		fprintf(f, "}");
	}
	across(r, &a);
	fprintf(f, "],\"across_runs\":{\"runs\":%d,", r->nruns);
	js_mmm(f, "lost", &a.lost);
	fprintf(f, ",");
	js_mmm(f, "mismatches", &a.mism);
	fprintf(f, ",");
	js_mmm(f, "forwarded_share", &a.fwd_share);
	fprintf(f, ",");
	js_mmm(f, "migration_time_s", &a.mig_s);
	fprintf(f, ",");
	js_mmm(f, "pause_ms", &a.pause);
	fprintf(f, ",\"phases\":{");
	for (int j = 0; j < a.np; j++) {
		fprintf(f, "%s\"%s\":{", j ? "," : "", a.pnames[j]);
		js_mmm(f, "mean_ms", &a.pmean[j]);
		fprintf(f, ",");
		js_mmm(f, "p99_ms", &a.pp99[j]);
		fprintf(f, ",");
		js_mmm(f, "max_ms", &a.pmax[j]);
		fprintf(f, "}");
	}
	fprintf(f, "}}}\n");
}

/*
 * Per request number (seq - the run's first seq): min, mean and max response
 * time across runs, the paper's Fig. 6/7; the migration window (mean over
 * runs of its first and last request) is shaded.
 */
struct plot_pt {
	uint32_t k;		/* request number: seq - the run's first seq */
	double ms;
};

static int cmp_pt(const void *a, const void *b)
{
	const struct plot_pt *x = a, *y = b;

	return x->k < y->k ? -1 : x->k > y->k;
}

/* The run's first request: its lowest seq sent, else its lowest answered. */
static uint32_t run_base(const struct lr_run *run)
{
	uint32_t base = run->reqs[0].seq;

	for (size_t i = 0; i < run->nsent; i++)
		if (run->first_tries[i].seq < base)
			base = run->first_tries[i].seq;
	return base;
}

int lr_report_plot(const struct lr_report *r, const char *prefix)
{
	char path[4096], cmd[4200];
	struct mmm win_a = {}, win_b = {};
	struct plot_pt *pts = NULL;
	size_t npts = 0, total = 0;
	bool from_migr = false;
	FILE *f = NULL;
	int err = 0, st;

	for (int i = 0; i < r->nruns; i++)
		total += r->runs[i].nreq;
	if (!total)
		return -ENODATA;
	/* One point per answer, sorted by request number: no array by seq span. */
	pts = calloc(total, sizeof(*pts));
	if (!pts) {
		fprintf(stderr, "logrepo: no memory for the %zu points of the plot\n", total);
		return -ENOMEM;
	}
	for (int i = 0; i < r->nruns; i++) {
		const struct lr_run *run = &r->runs[i];
		uint32_t base;

		if (!run->nreq)
			continue;
		base = run_base(run);
		for (size_t k = 0; k < run->nreq; k++) {
			pts[npts].k = run->reqs[k].seq - base;
			pts[npts++].ms = run->reqs[k].rtt_ns / 1e6;
		}
		if (run->nmigs && run->migs[0].has_seqs) {
			from_migr = true;
			mmm_add(&win_a, run->migs[0].first_seq - base);
			mmm_add(&win_b, run->migs[0].last_seq - base);
		} else {	/* no migration events: the MUD's own phases */
			int64_t lo = -1, hi = -1;

			for (size_t k = 0; k < run->nreq; k++) {
				if (strncmp(run->phase_names[run->reqs[k].phase], "during", 6))
					continue;
				if (lo < 0)
					lo = run->reqs[k].seq - base;
				hi = run->reqs[k].seq - base;
			}
			if (lo >= 0) {
				mmm_add(&win_a, (double)lo);
				mmm_add(&win_b, (double)hi);
			}
		}
	}
	sort(pts, npts, sizeof(*pts), cmp_pt);

	snprintf(path, sizeof(path), "%s.dat", prefix);
	f = fopen(path, "w");
	if (!f) {
		err = -errno;
		fprintf(stderr, "logrepo: cannot write %s: %s\n", path, strerror(errno));
		goto cleanup;
	}
	fprintf(f, "# request min_ms mean_ms max_ms runs\n");
	for (size_t i = 0; i < npts;) {
		struct mmm per = {};
		uint32_t k = pts[i].k;

		for (; i < npts && pts[i].k == k; i++)
			mmm_add(&per, pts[i].ms);
		fprintf(f, "%u %.6f %.6f %.6f %d\n", k, per.min, per.sum / per.n,
			per.max, per.n);
	}
	fclose(f);

	snprintf(path, sizeof(path), "%s.gp", prefix);
	f = fopen(path, "w");
	if (!f) {
		err = -errno;
		fprintf(stderr, "logrepo: cannot write %s: %s\n", path, strerror(errno));
		goto cleanup;
	}
	fprintf(f, "set xlabel 'request number'\nset ylabel 'response time (ms)'\n"
		"set key top left\nset grid\nset title 'Response time per request "
		"(%d run%s: min, mean, max)'\n", r->nruns, r->nruns == 1 ? "" : "s");
	if (win_a.n)
		fprintf(f, "set object 1 rect from %.1f, graph 0 to %.1f, graph 1 "
			"fc rgb '#ffe0a0' fs solid 0.5 noborder behind\n"
			"set label 1 '%s' at %.1f, graph 0.95\n",
			win_a.sum / win_a.n - 0.5, win_b.sum / win_b.n + 0.5,
			from_migr ? "migration" : "handoff: until a new server answers",
			win_a.sum / win_a.n);
	fprintf(f, "plots = \"plot '%s.dat' using 1:2:4 with filledcurves "
		"fc rgb '#a0c0ff' title 'min..max', '' using 1:3 with lines lw 2 "
		"lc rgb '#0030a0' title 'mean'\"\n", prefix);
	fprintf(f, "set terminal pngcairo size 1000,500\nset output '%s.png'\n"
		"eval plots\nset terminal svg size 1000,500\nset output '%s.svg'\n"
		"eval plots\n", prefix, prefix);
	fclose(f);
	f = NULL;

	snprintf(cmd, sizeof(cmd), "gnuplot '%s.gp'", prefix);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "logrepo: gnuplot %s.gp failed (status %d)\n", prefix, st);
		err = -EIO;
	}
cleanup:
	free(pts);
	return err;
}
