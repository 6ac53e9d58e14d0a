/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The service's memory ballast: what a checkpoint of its heap carries.
 *
 *   random  incompressible bytes (the worst case for compression)
 *   heap    what a real service's heap looks like, in 64 KiB blocks:
 *           40 % model-like float32 weights (about N(0, 0.02)),
 *           30 % text (JSON log/record lines from a small vocabulary),
 *           30 % zeroed (allocated, written with zeros: present and dirty)
 *
 * Both are deterministic for a given seed.
 */
#ifndef EH_SVC_BALLAST_H
#define EH_SVC_BALLAST_H

#include <stddef.h>
#include <stdint.h>

enum svc_ballast { SVC_BALLAST_RANDOM, SVC_BALLAST_HEAP };

#define SVC_BALLAST_BLOCK	(64 * 1024)

/* What kind of data block @b of a heap ballast holds. */
enum svc_ballast_block { SVC_BLK_FLOATS, SVC_BLK_TEXT, SVC_BLK_ZERO };
enum svc_ballast_block svc_ballast_block_kind(size_t b);

int svc_ballast_parse(const char *s, enum svc_ballast *out);	/* 0 or -EINVAL */
const char *svc_ballast_name(enum svc_ballast k);
void svc_ballast_fill(void *buf, size_t len, enum svc_ballast k, uint64_t seed);

#endif
