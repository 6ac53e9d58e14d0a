// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The service's memory ballast (ballast.h). The heap mix is what the
 * migration benchmark moves: compression gains on it what it would gain on a
 * real service (floats barely shrink, text shrinks several times, zero pages
 * almost vanish), where the random ballast is the worst case.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ballast.h"
#include "eh_digest.h"

static uint64_t next(uint64_t *s)	/* splitmix64: fast, and good enough */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* b * 7 mod 10 visits every residue once per 10 blocks: the mix is exact per
 * 640 KiB and the kinds are interleaved, as in a heap that grew over time. */
enum svc_ballast_block svc_ballast_block_kind(size_t b)
{
	unsigned r = (unsigned)(b * 7 % 10);

	return r < 4 ? SVC_BLK_FLOATS : r < 7 ? SVC_BLK_TEXT : SVC_BLK_ZERO;
}

/* Weights of a trained layer: about N(0, 0.02) (Irwin-Hall of 4 uniforms). */
static void fill_floats(uint8_t *p, size_t len, uint64_t *s)
{
	size_t i;

	for (i = 0; i + sizeof(float) <= len; i += sizeof(float)) {
		uint64_t r = next(s);
		float u = 0, w;
		int k;

		for (k = 0; k < 4; k++)
			u += (float)((r >> (16 * k)) & 0xffff) / 65536.0f;
		w = (u - 2.0f) * 0.0346410f;	/* 0.02 * sqrt(3): unit std of the sum */
		memcpy(p + i, &w, sizeof(w));
	}
	memset(p + i, 0, len - i);
}

static const char *const words[] = {
	"person", "car", "bicycle", "dog", "traffic-light", "bus", "truck", "stop-sign",
	"ok", "retry", "timeout", "cache-hit", "cache-miss", "frame", "tile", "mask",
	"north", "south", "lane", "cell", "handoff", "edge", "node-x", "node-y",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Records as a service keeps them: a request log, labels, scores. */
static void fill_text(uint8_t *p, size_t len, uint64_t *s)
{
	char line[256];
	size_t off = 0;

	while (off < len) {
		uint64_t r = next(s);
		int n = snprintf(line, sizeof(line),
				 "{\"ts\":%llu,\"mud\":%u,\"seq\":%u,\"label\":\"%s\",\"note\":\"%s %s\",\"score\":0.%04u}\n",
				 1764547200000ull + (r & 0xffffff), (unsigned)(r >> 24) % 64,
				 (unsigned)(r >> 30) % 100000, words[(r >> 47) % NWORDS],
				 words[(r >> 52) % NWORDS], words[(r >> 57) % NWORDS],
				 (unsigned)(r >> 10) % 10000);
		size_t take = (size_t)n < len - off ? (size_t)n : len - off;

		memcpy(p + off, line, take);
		off += take;
	}
}

void svc_ballast_fill(void *buf, size_t len, enum svc_ballast k, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t s = seed;
	size_t b, off, n;

	if (k == SVC_BALLAST_RANDOM) {
		eh_payload_fill((uint32_t)(seed >> 32), (uint32_t)seed, buf, len);
		return;
	}
	for (b = 0, off = 0; off < len; b++, off += n) {
		n = len - off < SVC_BALLAST_BLOCK ? len - off : SVC_BALLAST_BLOCK;
		switch (svc_ballast_block_kind(b)) {
		case SVC_BLK_FLOATS: fill_floats(p + off, n, &s); break;
		case SVC_BLK_TEXT:   fill_text(p + off, n, &s); break;
		case SVC_BLK_ZERO:   memset(p + off, 0, n); break;
		}
	}
}

int svc_ballast_parse(const char *s, enum svc_ballast *out)
{
	if (!strcmp(s, "random"))
		*out = SVC_BALLAST_RANDOM;
	else if (!strcmp(s, "heap"))
		*out = SVC_BALLAST_HEAP;
	else
		return -EINVAL;
	return 0;
}

const char *svc_ballast_name(enum svc_ballast k)
{
	return k == SVC_BALLAST_HEAP ? "heap" : "random";
}
