// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Drops named entries from a tar stream, passing the rest through: tarfilter.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tarfilter.h"

void tf_init(struct tarfilter *f, int (*sink)(void *ctx, const void *buf, size_t len),
	     void *ctx)
{
	memset(f, 0, sizeof(*f));
	f->sink = sink;
	f->ctx = ctx;
}

void tf_free(struct tarfilter *f)
{
	free(f->meta);
	f->meta = NULL;
	f->mlen = f->mcap = 0;
}

int tf_drop(struct tarfilter *f, const char *name)
{
	if (strlen(name) >= sizeof(f->drop[0]))
		return -ENAMETOOLONG;
	/* A layer may stand twice in an image's chain; its blob is there once. */
	for (int i = 0; i < f->ndrop; i++)
		if (!strcmp(f->drop[i], name))
			return 0;
	if (f->ndrop >= TF_DROP_MAX)
		return -ENOSPC;
	strcpy(f->drop[f->ndrop++], name);
	return 0;
}

static int out(struct tarfilter *f, const void *buf, size_t len)
{
	int r;

	if (!len)
		return 0;
	r = f->sink(f->ctx, buf, len);
	if (r)
		return r;
	f->bytes_out += len;
	return 0;
}

static int meta_add(struct tarfilter *f, const void *buf, size_t len)
{
	if (f->mlen + len > TF_META_MAX)
		return -EPROTO;
	if (f->mlen + len > f->mcap) {
		size_t cap = f->mcap ? f->mcap * 2 : 4096;
		uint8_t *m;

		while (cap < f->mlen + len)
			cap *= 2;
		m = realloc(f->meta, cap);
		if (!m)
			return -ENOMEM;
		f->meta = m;
		f->mcap = cap;
	}
	memcpy(f->meta + f->mlen, buf, len);
	f->mlen += len;
	return 0;
}

/* The size field: octal, or base-256 (first byte 0x80) for large entries. */
static int parse_size(const uint8_t *h, uint64_t *size)
{
	const uint8_t *p = h + 124;
	uint64_t v = 0;
	int i = 0;

	if (p[0] & 0x80) {
		for (i = 1; i < 12; i++) {
			if (v >> 56)
				return -EPROTO;
			v = v << 8 | p[i];
		}
		*size = v;
		return 0;
	}
	while (i < 12 && p[i] == ' ')
		i++;
	for (; i < 12 && p[i] >= '0' && p[i] <= '7'; i++) {
		if (v >> 60)
			return -EPROTO;
		v = v << 3 | (uint64_t)(p[i] - '0');
	}
	if (i < 12 && p[i] != ' ' && p[i] != '\0')
		return -EPROTO;
	*size = v;
	return 0;
}

static bool checksum_ok(const uint8_t *h)
{
	unsigned long want = 0, sum = 0;
	int i;

	for (i = 148; i < 156 && h[i] == ' '; i++)
		;
	for (; i < 156 && h[i] >= '0' && h[i] <= '7'; i++)
		want = want * 8 + (h[i] - '0');
	for (i = 0; i < 512; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	return sum == want;
}

/* The entry's name: a PAX "path" or GNU long name in @meta wins over the header's. */
static void entry_name(const struct tarfilter *f, const uint8_t *h, char *name, size_t cap)
{
	size_t o = 0;

	name[0] = '\0';
	/* meta = header block(s) + data; find "path=" records in PAX data */
	while (o + 512 <= f->mlen) {
		const uint8_t *mh = f->meta + o;
		uint64_t sz = 0, pad;

		if (parse_size(mh, &sz))
			return;
		pad = (sz + 511) & ~511ull;
		if (o + 512 + pad > f->mlen)
			return;
		if (mh[156] == 'L') {
			size_t n = sz < cap ? sz : cap - 1;

			memcpy(name, mh + 512, n);
			name[n] = '\0';
			name[strcspn(name, "\n")] = '\0';
		} else if (mh[156] == 'x') {
			const char *d = (const char *)mh + 512, *end = d + sz;

			while (d < end) {
				char *sp;
				long len = strtol(d, &sp, 10);

				if (len <= 0 || d + len > end || *sp != ' ')
					break;
				if (!strncmp(sp + 1, "path=", 5)) {
					size_t n = (size_t)(d + len - (sp + 6) - 1);

					if (n >= cap)
						n = cap - 1;
					memcpy(name, sp + 6, n);
					name[n] = '\0';
				}
				d += len;
			}
		}
		o += 512 + pad;
	}
	if (name[0])
		return;
	if (!memcmp(h + 257, "ustar", 5) && h[345]) {
		snprintf(name, cap, "%.155s/%.100s", (const char *)h + 345, (const char *)h);
		return;
	}
	snprintf(name, cap, "%.100s", (const char *)h);
}

static int on_header(struct tarfilter *f)
{
	const uint8_t *h = f->hdr;
	uint64_t size, pad;
	char name[300];
	bool zero = true;
	int r, i;

	for (i = 0; i < 512 && zero; i++)
		zero = !h[i];
	if (zero) {
		/* end of archive (and its padding): whatever waits goes first */
		r = out(f, f->meta, f->mlen);
		f->mlen = 0;
		return r ?: out(f, h, 512);
	}
	if (!checksum_ok(h) || parse_size(h, &size))
		return -EPROTO;
	pad = (size + 511) & ~511ull;
	f->left = pad;
	switch (h[156]) {
	case 'x':
	case 'L':
	case 'K':
		/* describes the next entry: held until that entry is judged */
		f->in_meta = 1;
		return meta_add(f, h, 512);
	default:
		break;
	}
	entry_name(f, h, name, sizeof(name));
	for (i = 0; i < f->ndrop; i++)
		if (!strcmp(name, f->drop[i]))
			break;
	if (i < f->ndrop) {
		f->skipping = 1;
		f->dropped++;
		f->bytes_dropped += f->mlen + 512 + pad;
		f->mlen = 0;
		return 0;
	}
	f->skipping = 0;
	r = out(f, f->meta, f->mlen);
	f->mlen = 0;
	return r ?: out(f, h, 512);
}

int tf_write(struct tarfilter *f, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int r = 0;

	if (f->err)
		return f->err;
	f->bytes_in += len;
	while (len && !r) {
		if (f->left) {
			size_t n = len < f->left ? len : (size_t)f->left;

			if (f->in_meta)
				r = meta_add(f, p, n);
			else if (!f->skipping)
				r = out(f, p, n);
			f->left -= n;
			p += n;
			len -= n;
			if (!f->left)
				f->in_meta = f->skipping = 0;
			continue;
		}
		{
			size_t n = 512 - f->hlen;

			if (n > len)
				n = len;
			memcpy(f->hdr + f->hlen, p, n);
			f->hlen += n;
			p += n;
			len -= n;
			if (f->hlen == 512) {
				f->hlen = 0;
				r = on_header(f);
			}
		}
	}
	if (r)
		f->err = r;
	return r;
}

int tf_finish(struct tarfilter *f)
{
	if (f->err)
		return f->err;
	if (f->left || f->hlen || f->mlen)
		return f->err = -EPROTO;
	return 0;
}
