/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The container layer as a pax tar stream (libarchive), for P-Migr: the
 * container's overlay UpperDir on the source node is written with
 * layer_write() and extracted into the new container's empty UpperDir with
 * layer_extract(). Also used for the CRIU checkpoint directory.
 *
 * What an UpperDir holds that must survive: whiteouts (0/0 character
 * devices, possibly several hard links to one inode), opaque directories
 * (xattr trusted.overlay.opaque = "y": without it the base image's files
 * show again), numeric owners (never mapped through names), modes with
 * setuid/setgid, mtimes, every xattr (trusted.*, security.*, user.*),
 * POSIX ACLs, symlinks, hard links and holes of sparse files.
 *
 * Neither function calls chdir() (the agent is multi-threaded); see
 * docs/layer.md for what libarchive itself does with the process state.
 */
#ifndef EH_LAYER_H
#define EH_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Counted per tar entry. A whiteout stored as a hard link to another
 * whiteout counts in @hardlinks, not in @whiteouts; @bytes is file data
 * actually carried (holes excluded); @stream is the tar stream's length.
 */
struct layer_stats {
	uint64_t entries, files, dirs, symlinks, hardlinks, whiteouts, opaque, xattrs, bytes;
	uint64_t stream;
};

/*
 * Write the tree at @dir as a pax tar to @sink, streamed in blocks of at
 * most 64 KiB: owners (numeric), modes, mtimes, all xattrs, ACLs, device
 * nodes (whiteouts), hard links, symlinks, sparse files (holes kept).
 * The first entry is "." (the root's own metadata); names are relative,
 * sorted byte-wise within a directory, never cross a mount point.
 * @sink returns 0 or a negative errno, which is returned as is.
 * @st may be NULL. Returns 0 or -errno.
 */
int layer_write(const char *dir, int (*sink)(void *ctx, const void *buf, size_t len), void *ctx,
		struct layer_stats *st);

/*
 * Extract a stream written by layer_write(), read from @source, into @dir
 * (an existing directory, normally empty). @source returns the number of
 * bytes it put in @buf, 0 at the end, or a negative errno (returned as is).
 *
 * An entry whose name or hard-link target is absolute, has a ".."
 * component or leads through a symlink is refused with -EPERM (the message
 * names it); what was extracted before stays: the caller removes @dir's
 * contents. A malformed stream, or one that ends before the tar end
 * marker (even at an entry boundary), gives -EBADMSG. Any warning of
 * libarchive while restoring (e.g. an xattr it could not set) is an error.
 * @st may be NULL. Returns 0 or -errno.
 */
int layer_extract(const char *dir, ssize_t (*source)(void *ctx, void *buf, size_t cap), void *ctx,
		  struct layer_stats *st);

#endif /* EH_LAYER_H */
