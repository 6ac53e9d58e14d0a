/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A streaming filter over a tar stream that drops named entries and passes
 * every other byte through unchanged: the image C-Migr ships, minus the layers
 * ES-y already holds.
 *
 * `docker save` (Docker >= 25) writes an OCI layout in which each layer is
 * blobs/sha256/<diffID>, the uncompressed layer tar; `docker load` looks each
 * layer up by its chain ID before it reads the file and skips the file when the
 * layer is there. So the entries of the layers ES-y has can be left out of the
 * stream and the load still gives the same image.
 *
 * Entries are matched by name; a PAX/GNU extended header in front of a dropped
 * entry is dropped with it. The filter keeps at most one header plus one
 * extended-header block set in memory, whatever the stream's size.
 */
#ifndef EH_TARFILTER_H
#define EH_TARFILTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TF_DROP_MAX 64
#define TF_META_MAX (64 * 1024)	/* an extended header this long is refused */

struct tarfilter {
	/* what to drop: entry names, exact */
	char drop[TF_DROP_MAX][160];
	int ndrop;
	/* where the rest goes; returns 0 or -errno */
	int (*sink)(void *ctx, const void *buf, size_t len);
	void *ctx;
	/* state */
	uint8_t hdr[512];
	size_t hlen;		/* bytes of the current header block so far */
	uint64_t left;		/* data bytes (padded) of the current entry still to come */
	int skipping;		/* the current entry's data is dropped */
	uint8_t *meta;		/* extended header(s) waiting for the entry they describe */
	size_t mlen, mcap;
	int in_meta;		/* the current entry is an extended header being buffered */
	/* counters */
	uint64_t bytes_in, bytes_out, bytes_dropped;
	int dropped;
	int err;		/* sticky: the first error */
};

void tf_init(struct tarfilter *f, int (*sink)(void *ctx, const void *buf, size_t len),
	     void *ctx);
/*
 * Adds a name to drop (a name already there is not added twice); -ENOSPC
 * when full, -ENAMETOOLONG past 159 bytes.
 */
int tf_drop(struct tarfilter *f, const char *name);
/* Feeds bytes of the stream; 0, or -errno (sink's, or -EPROTO for a malformed tar). */
int tf_write(struct tarfilter *f, const void *buf, size_t len);
/* The stream ended: -EPROTO if it ended inside an entry or a header. */
int tf_finish(struct tarfilter *f);
void tf_free(struct tarfilter *f);

#endif
