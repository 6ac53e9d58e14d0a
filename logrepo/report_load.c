// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The report's input: JSON-lines logs read into runs (keyed by the events'
 * run field), with the migration markers and step events kept aside until
 * report_compute.c gives them to runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <jansson.h>

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

/*
 * Grow *arr (of @size-byte elements) so that index @n fits. The first
 * allocation is about 16 KiB (at least 1 element), not a fixed count: a run
 * is 21 KiB, and 256 of them for a log of one run was 5.5 MB.
 */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : (16384 / size ? 16384 / size : 1);
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

struct lr_run *lr_find_run(struct lr_report *r, const char *id)
{
	for (int i = r->buckets[run_bucket(r, id)]; i; i = r->runs[i - 1].hnext)
		if (!strcmp(r->runs[i - 1].id, id))
			return &r->runs[i - 1];
	return NULL;
}

/* The run @id, added if new; NULL with -ENOSPC past LR_MAX_RUNS (or -ENOMEM). */
static struct lr_run *get_run(struct lr_report *r, const char *id, int *err)
{
	struct lr_run *run = lr_find_run(r, id);
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

int lr_phase_index(struct lr_run *run, const char *name)
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
		run->reqs[run->nreq].phase = (uint8_t)lr_phase_index(run, s ? s : "all");
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

