/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Clocks, in the units the programs count in. CLOCK_MONOTONIC for intervals
 * and deadlines (never steps), CLOCK_REALTIME for what goes on the wire or
 * into the event log (comparable across hosts).
 */
#ifndef EH_TIME_H
#define EH_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t eh_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline uint64_t eh_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Monotonic milliseconds with their fraction: for timing steps. */
static inline double eh_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#endif /* EH_TIME_H */
