// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The response-time plot: a gnuplot script and its data, PNG and SVG. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "lr_report.h"

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
	struct lr_mmm win_a = {}, win_b = {};
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
			lr_mmm_add(&win_a, run->migs[0].first_seq - base);
			lr_mmm_add(&win_b, run->migs[0].last_seq - base);
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
				lr_mmm_add(&win_a, (double)lo);
				lr_mmm_add(&win_b, (double)hi);
			}
		}
	}
	lr_sort(pts, npts, sizeof(*pts), cmp_pt);

	snprintf(path, sizeof(path), "%s.dat", prefix);
	f = fopen(path, "w");
	if (!f) {
		err = -errno;
		fprintf(stderr, "logrepo: cannot write %s: %s\n", path, strerror(errno));
		goto cleanup;
	}
	fprintf(f, "# request min_ms mean_ms max_ms runs\n");
	for (size_t i = 0; i < npts;) {
		struct lr_mmm per = {};
		uint32_t k = pts[i].k;

		for (; i < npts && pts[i].k == k; i++)
			lr_mmm_add(&per, pts[i].ms);
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

