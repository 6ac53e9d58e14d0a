/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * logrepo's report: reads the JSON-lines logs logrepo stores and computes,
 * per run (the MUD's "run" field) and across runs, what the paper's Fig. 6/7
 * and Table 2 show.
 *
 * Events it understands (role-independent, matched by event name/fields):
 *   SVCQ (sent)  try=1         a request          -> sent
 *   SVCR (recvd) dup=0|1 rtt_ns=N phase=P fwd=0|1 mismatch=0|1
 *   SVCQ (lost)                a request given up -> lost
 *   MUD REPORT                 the MUD's own totals (kept for cross-checks)
 *   migr begins / migr finished  a migration (ES-x / AP-y), paired in order
 *   any event with step=NAME bytes=N [ms=N]   bytes moved per step
 *   any event with pause_ms=N                 the consistent-snapshot pause
 * Events without a run field belong to the run whose time span holds them.
 *
 * Its files: report_load.c (reading logs into runs), report_compute.c
 * (matching, migrations, statistics), report_print.c (text and JSON, from one
 * table per list of fields), report_plot.c (the plot).
 */
#ifndef LR_REPORT_H
#define LR_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "eh_stats.h"

#define LR_MAX_PHASES	32
#define LR_MAX_MIGS	16
#define LR_MAX_STEPS	16
#define LR_NAME		48
#define LR_MAX_RUNS	1024	/* events of further run ids are refused, counted */
#define LR_RUN_BUCKETS	2048

struct lr_req {
	uint32_t seq;
	uint64_t rtt_ns;
	uint8_t phase;
	bool fwd, mismatch;
};

struct lr_step {
	char name[LR_NAME];
	uint64_t bytes;
	double ms;
};

struct lr_mig {
	uint64_t begin_ns, end_ns;	/* end 0: never finished */
	double pause_ms;		/* < 0: not reported */
	struct lr_step steps[LR_MAX_STEPS];
	int nsteps;
	uint32_t first_seq, last_seq;	/* requests sent during it */
	bool has_seqs;
	struct eh_rt_stats rt;		/* response times of those requests (has_seqs) */
};

struct lr_run {
	char id[LR_NAME];
	int hnext;			/* next run index + 1 in its hash chain */
	uint64_t first_ns, last_ns;
	uint64_t sent, answered, dups, lost, mismatches, fwd;
	uint64_t unmatched;		/* answers to seqs this run never sent */
	struct lr_req *reqs;
	size_t nreq, capreq;
	uint32_t *dup_mism;		/* seqs of mismatching duplicate answers */
	size_t ndup_mism, capdup;
	struct lr_sent { uint64_t t_ns; uint32_t seq; } *first_tries;
	size_t nsent, capsent;
	char phase_names[LR_MAX_PHASES][24];
	int nphases;
	struct eh_rt_stats ps[LR_MAX_PHASES];
	struct lr_mig migs[LR_MAX_MIGS];
	int nmigs;
	bool has_mud_report;
	uint64_t mr_sent, mr_answered, mr_lost, mr_dups, mr_mismatches;
};

/* Migration markers and step/pause events before they are given to runs. */
struct lr_marker {
	uint64_t t_ns;
	int kind;		/* 0 begins, 1 finished, 2 step, 3 pause */
	char run[LR_NAME];
	struct lr_step step;
	double pause_ms;
};

struct lr_report {
	struct lr_run *runs;
	int nruns, capruns;
	int buckets[LR_RUN_BUCKETS];	/* run index + 1, 0: empty */
	uint32_t hash_key;		/* random: no chosen collisions */
	uint64_t refused_events;	/* of runs beyond LR_MAX_RUNS */
	struct lr_marker *marks;
	size_t nmarks, capmarks;
	uint64_t lines, bad_lines, events;
};

void lr_report_init(struct lr_report *r);
void lr_report_free(struct lr_report *r);
/* Load one JSON-lines log; returns 0 or -errno (bad lines are counted). */
int lr_report_load(struct lr_report *r, const char *path);
/* Sort, pair migrations, compute per-phase statistics. */
int lr_report_compute(struct lr_report *r);

void lr_report_print(const struct lr_report *r, FILE *f);
void lr_report_json(const struct lr_report *r, FILE *f);
/*
 * PREFIX.dat, PREFIX.gp, then gnuplot -> PREFIX.png and PREFIX.svg. Memory
 * follows the number of answers, never the span of their sequence numbers.
 */
int lr_report_plot(const struct lr_report *r, const char *prefix);

/* Shared by the report's files. */
struct lr_run *lr_find_run(struct lr_report *r, const char *id);
int lr_phase_index(struct lr_run *run, const char *name);
/* qsort() that accepts an empty (possibly NULL) array. */
void lr_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* Minimum, sum and maximum of @n values. */
struct lr_mmm {
	double min, sum, max;
	int n;
};

void lr_mmm_add(struct lr_mmm *a, double x);

#endif /* LR_REPORT_H */
