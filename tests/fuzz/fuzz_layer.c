// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for layer_extract(): any byte string as a layer stream,
 * extracted into a fresh directory. Nothing may land outside it, and the
 * call must end with 0 or -errno. As root it also exercises mknod, chown and
 * xattrs. Seeds: tests/fuzz/corpus/fuzz_layer/ (written by tests/fuzz/layer-seeds).
 *
 *	tests/fuzz/run fuzz_layer
 */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer.h"

struct mem {
	const uint8_t *p;
	size_t len, pos;
};

static ssize_t mem_source(void *ctx, void *buf, size_t cap)
{
	struct mem *m = ctx;
	size_t n = m->len - m->pos < cap ? m->len - m->pos : cap;

	/* Odd-sized reads, so libarchive has to reassemble headers. */
	if (n > 777)
		n = 777;
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	return n;
}

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	/* Make read-only extracted dirs removable again. */
	if (type == FTW_DP)
		return rmdir(p);
	return unlink(p);
}

static int chmod_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D || type == FTW_DNR)
		chmod(p, (sb->st_mode & 07777) | 0700);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char top[64];
	char dir[128], canary[160];
	struct mem m = { data, size, 0 };
	struct stat sb;
	int err;

	if (!top[0]) {
		snprintf(top, sizeof(top), "/tmp/eh-fuzz-layer-XXXXXX");
		if (!mkdtemp(top))
			abort();
	}
	snprintf(dir, sizeof(dir), "%s/t", top);
	if (mkdir(dir, 0755))
		abort();
	err = layer_extract(dir, mem_source, &m, NULL);
	if (err > 0)
		abort();
	/* Anything in top besides t/ got there through an escape. */
	snprintf(canary, sizeof(canary), "%s/escape", top);
	if (!lstat(canary, &sb))
		abort();
	nftw(dir, chmod_one, 16, FTW_PHYS | FTW_MOUNT);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	return 0;
}
