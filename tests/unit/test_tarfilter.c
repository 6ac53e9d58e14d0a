// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * control/migr/tarfilter.c: tars written by libarchive (ustar and PAX, the
 * latter with a name too long for ustar), fed in chunks of every awkward size;
 * the entries asked for are gone, every other byte passes, and broken input
 * is an error, never a silent pass.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tarfilter.h"

#define A "blobs/sha256/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B "blobs/sha256/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define LONG "blobs/sha256/long-name-that-does-not-fit-in-the-hundred-bytes-of-ustar-name-field-" \
	     "so-pax-says-it-0123456789"

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static int put(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

static int sink(void *ctx, const void *d, size_t n)
{
	return put(ctx, d, n);
}

static la_ssize_t wcb(struct archive *a, void *ctx, const void *d, size_t n)
{
	(void)a;
	put(ctx, d, n);
	return (la_ssize_t)n;
}

static void add(struct archive *a, const char *name, size_t size, int fill)
{
	struct archive_entry *e = archive_entry_new();
	char *d = malloc(size + 1);

	memset(d, fill, size);
	archive_entry_set_pathname(e, name);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_write_header(a, e);
	archive_write_data(a, d, size);
	archive_entry_free(e);
	free(d);
}

static struct buf make_tar(int pax)
{
	struct buf b = { 0 };
	struct archive *a = archive_write_new();

	if (pax)
		archive_write_set_format_pax_restricted(a);
	else
		archive_write_set_format_ustar(a);
	archive_write_open(a, &b, NULL, wcb, NULL);
	add(a, "oci-layout", 30, 'o');
	add(a, A, 1000, 'a');
	add(a, B, 600, 'b');
	if (pax)
		add(a, LONG, 700, 'l');
	add(a, "manifest.json", 512, 'm');
	archive_write_close(a);
	archive_write_free(a);
	return b;
}

/* Lists the entries of @b (name:size:first byte), or "ERR". */
static void list(const struct buf *b, char *out, size_t cap)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t o = 0;

	archive_read_support_format_tar(a);
	out[0] = '\0';
	if (archive_read_open_memory(a, b->p, b->len) != ARCHIVE_OK) {
		snprintf(out, cap, "ERR");
		goto done;
	}
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		char d[2048];
		la_ssize_t n = archive_read_data(a, d, sizeof(d));
		const char *nm = archive_entry_pathname(e);

		o += snprintf(out + o, cap - o, "%s:%zd:%c ",
			      !strncmp(nm, "blobs/sha256/long", 17) ? "LONG" :
			      !strcmp(nm, A) ? "A" : !strcmp(nm, B) ? "B" : nm, n, n > 0 ? d[0] : '-');
	}
done:
	archive_read_free(a);
}

static int run(const struct buf *in, size_t chunk, const char **drops, struct buf *outb,
	       struct tarfilter *f)
{
	int r = 0;

	tf_init(f, sink, outb);
	for (int i = 0; drops[i]; i++)
		tf_drop(f, drops[i]);
	for (size_t o = 0; o < in->len && !r; o += chunk)
		r = tf_write(f, in->p + o, in->len - o < chunk ? in->len - o : chunk);
	if (!r)
		r = tf_finish(f);
	tf_free(f);
	return r;
}

int main(void)
{
	static const size_t chunks[] = { 1, 7, 511, 512, 513, 4096, 1 << 20 };
	const char *none[] = { NULL }, *drop_a[] = { A, NULL }, *drop_al[] = { A, LONG, NULL };
	struct buf u = make_tar(0), p = make_tar(1);
	struct tarfilter f;
	char got[1024];
	int ok = 1, r;

	tap_plan(10);
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct buf o = { 0 };

		r = run(&u, chunks[i], none, &o, &f);
		ok &= r == 0 && o.len == u.len && !memcmp(o.p, u.p, u.len);
		free(o.p);
	}
	tap_ok(ok, "nothing to drop: the stream byte for byte, in chunks of 1 .. 1 MiB");

	ok = 1;
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct buf o = { 0 };

		r = run(&u, chunks[i], drop_a, &o, &f);
		list(&o, got, sizeof(got));
		ok &= r == 0 && !strcmp(got, "oci-layout:30:o B:600:b manifest.json:512:m ") &&
		      f.dropped == 1 && f.bytes_dropped == 512 + 1024;
		if (!ok)
			tap_diag("chunk %zu: r=%d got '%s'", chunks[i], r, got);
		free(o.p);
	}
	tap_ok(ok, "ustar: layer A dropped (header + 1024 padded bytes), the rest readable and whole");

	ok = 1;
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct buf o = { 0 };

		r = run(&p, chunks[i], drop_al, &o, &f);
		list(&o, got, sizeof(got));
		ok &= r == 0 && !strcmp(got, "oci-layout:30:o B:600:b manifest.json:512:m ") &&
		      f.dropped == 2;
		if (!ok)
			tap_diag("chunk %zu: r=%d got '%s'", chunks[i], r, got);
		free(o.p);
	}
	tap_ok(ok, "PAX: the long-named entry dropped with its extended header, by its PAX path");
	{
		struct buf o = { 0 };

		r = run(&p, 4096, drop_a, &o, &f);
		list(&o, got, sizeof(got));
		tap_ok(r == 0 && strstr(got, "LONG:700:l"), "PAX: a long-named entry kept keeps its name: %s", got);
		free(o.p);
	}
	{
		struct buf o = { 0 }, cut = u;

		cut.len = 512 + 512 + 700;	/* inside A's data */
		r = run(&cut, 4096, none, &o, &f);
		tap_ok(r == -EPROTO, "a stream cut inside an entry: -EPROTO at the end (%d)", r);
		free(o.p);
		cut.len = 512 + 512 + 100;	/* inside A's header */
		o = (struct buf){ 0 };
		r = run(&cut, 4096, none, &o, &f);
		tap_ok(r == -EPROTO, "a stream cut inside a header: -EPROTO (%d)", r);
		free(o.p);
	}
	{
		struct buf o = { 0 }, bad = { 0 };

		put(&bad, u.p, u.len);
		bad.p[1024 + 512 + 1024 + 3] ^= 0x20;	/* B's header name: checksum now wrong */
		r = run(&bad, 4096, none, &o, &f);
		tap_ok(r == -EPROTO && f.err == -EPROTO, "a header with a wrong checksum: -EPROTO (%d)", r);
		free(o.p);
		free(bad.p);
	}
	{
		struct tarfilter t;
		char n[300];

		tf_init(&t, sink, NULL);
		memset(n, 'x', sizeof(n) - 1);
		n[sizeof(n) - 1] = '\0';
		tap_ok(tf_drop(&t, n) == -ENAMETOOLONG, "a name too long to drop: -ENAMETOOLONG");
		tf_drop(&t, "a");
		tf_drop(&t, "a");
		tap_ok(t.ndrop == 1, "a name given twice is kept once (a layer twice in a chain)");
		for (r = 0; r < TF_DROP_MAX; r++) {
			char nm[16];

			snprintf(nm, sizeof(nm), "n%d", r);
			tf_drop(&t, nm);
		}
		tap_ok(tf_drop(&t, "z") == -ENOSPC, "more than %d names: -ENOSPC", TF_DROP_MAX);
	}
	free(u.p);
	free(p.p);
	return tap_done();
}
