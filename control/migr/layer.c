// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The container layer as a pax tar stream (layer.h; design in docs/layer.md).
 *
 * Writing walks the tree itself with *at() calls and fills each entry with
 * archive_read_disk_entry_from_file() on a read_disk object that has no
 * tree open: libarchive's own walker fchdir()s into the directories it
 * reads, which would move every thread of the agent. Extracting hands
 * archive_write_disk absolute names (the realpath of the target dir plus
 * the entry's name), after checking the entry's own name here: relative,
 * no "..", no symlink on the way. libarchive's NODOTDOT and SYMLINKS checks
 * stay on over the whole name; NOABSOLUTEPATHS cannot (every name is
 * absolute once prefixed), so it is what the check here enforces.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "layer.h"

#define LAYER_BLOCK	(64 * 1024)
#define OPAQUE_XATTR	"trusted.overlay.opaque"
/* Both null blocks of the tar end marker. */
#define TAR_END_LEN	1024

static const char zeros[LAYER_BLOCK];

/* --- writing ------------------------------------------------------------ */

/*
 * Names already written of inodes with more than one link. libarchive's
 * link resolver skips devices, but overlay's whiteouts of one directory
 * may share one 0/0 inode.
 */
struct link_ent {
	struct link_ent *next;
	dev_t dev;
	ino_t ino;
	char name[];
};

#define LINK_BUCKETS 1024

struct layer_out {
	struct archive *disk;		/* read_disk, no tree: path based, never chdir */
	struct archive *tar;
	struct link_ent *links[LINK_BUCKETS];
	int (*sink)(void *ctx, const void *buf, size_t len);
	void *ctx;
	int sink_err;
	int rootfd;
	dev_t rootdev;
	char root[PATH_MAX];		/* realpath of the tree */
	char src[PATH_MAX];		/* root/rel of the entry being written */
	char rel[PATH_MAX];		/* its name in the archive, "" for the root */
	char *buf;
	struct layer_stats st;
};

static la_ssize_t out_write(struct archive *a, void *p, const void *buf, size_t len)
{
	struct layer_out *o = p;
	int err;

	err = o->sink(o->ctx, buf, len);
	if (err) {
		o->sink_err = err < 0 ? err : -EIO;
		archive_set_error(a, -o->sink_err, "layer sink failed");
		return -1;
	}
	o->st.stream += len;
	return len;
}

/* The error of a libarchive call: the sink's if it was the sink, else libarchive's errno. */
static int out_err(struct layer_out *o, struct archive *a)
{
	if (o->sink_err)
		return o->sink_err;
	return archive_errno(a) > 0 ? -archive_errno(a) : -EIO;
}

static bool xattr_skipped(const char *name)
{
	/* What libarchive leaves out of an entry's xattrs (ACLs go as ACLs). */
	return !strcmp(name, "system.posix_acl_access") ||
	       !strcmp(name, "system.posix_acl_default") ||
	       !strcmp(name, "trusted.SGI_ACL_FILE") ||
	       !strcmp(name, "trusted.SGI_ACL_DEFAULT") || !strncmp(name, "xfsroot.", 8);
}

/* SCHILY.xattr keys carry the name as is: '=', '%', blanks and non-ASCII get mangled. */
static bool xattr_name_plain(const char *name)
{
	const unsigned char *s;

	for (s = (const unsigned char *)name; *s; s++)
		if (*s < 33 || *s > 126 || *s == '%' || *s == '=')
			return false;
	return true;
}

/*
 * libarchive skips an xattr it cannot read without saying so; a lost
 * trusted.overlay.opaque brings the base image's files back. So count the
 * file's xattrs again and compare.
 */
static int check_xattrs(struct archive_entry *e, int fd, const char *path)
{
	const char *rel = archive_entry_pathname(e), *name, *p;
	ssize_t len;
	char *list = NULL;
	const void *val;
	size_t sz;
	int n = 0, err = 0;

	len = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
	if (len < 0 && (errno == ENOTSUP || errno == ENOSYS))
		len = 0;
	if (len < 0) {
		err = -errno;
		fprintf(stderr, "layer: cannot list xattrs of %s: %s\n", path, strerror(errno));
		goto cleanup;
	}
	if (len > 0) {
		list = malloc(len);
		if (!list) {
			err = -ENOMEM;
			goto cleanup;
		}
		len = fd >= 0 ? flistxattr(fd, list, len) : llistxattr(path, list, len);
		if (len < 0) {
			err = -errno;
			fprintf(stderr, "layer: cannot list xattrs of %s: %s\n", path,
				strerror(errno));
			goto cleanup;
		}
	}
	for (p = list; p && p < list + len; p += strlen(p) + 1)
		n += !xattr_skipped(p);
	if (n != archive_entry_xattr_reset(e)) {
		fprintf(stderr, "layer: %s has %d xattrs, libarchive read %d\n", path, n,
			archive_entry_xattr_count(e));
		err = -EIO;
		goto cleanup;
	}
	while (archive_entry_xattr_next(e, &name, &val, &sz) == ARCHIVE_OK) {
		if (!xattr_name_plain(name)) {
			fprintf(stderr, "layer: xattr name '%s' of %s cannot go in a SCHILY.xattr key\n",
				name, rel);
			err = -EINVAL;
			goto cleanup;
		}
	}
cleanup:
	free(list);
	return err;
}

/* Feed the entry's data: the data regions read from @fd, zeros for holes (pax drops them). */
static int put_data(struct layer_out *o, struct archive_entry *e, int fd)
{
	int64_t size = archive_entry_size(e), off = 0, soff, slen, end;
	const char *rel = archive_entry_pathname(e);
	bool sparse = archive_entry_sparse_reset(e) > 0;
	la_ssize_t w;
	ssize_t n;
	size_t chunk;

	while (off < size) {
		if (sparse) {
			if (archive_entry_sparse_next(e, &soff, &slen) != ARCHIVE_OK)
				soff = slen = size;	/* trailing hole */
		} else {
			soff = 0;
			slen = size;
		}
		if (soff > size)
			soff = size;
		end = soff + slen > size ? size : soff + slen;
		for (; off < soff; off += chunk) {
			chunk = soff - off > LAYER_BLOCK ? LAYER_BLOCK : soff - off;
			w = archive_write_data(o->tar, zeros, chunk);
			if (w < 0)
				goto tar_fail;
		}
		for (; off < end; off += n) {
			chunk = end - off > LAYER_BLOCK ? LAYER_BLOCK : end - off;
			n = pread(fd, o->buf, chunk, off);
			if (n <= 0) {
				fprintf(stderr, "layer: cannot read %s at %lld: %s\n", rel,
					(long long)off, n ? strerror(errno) : "file shrank");
				return n ? -errno : -EIO;
			}
			w = archive_write_data(o->tar, o->buf, n);
			if (w < 0)
				goto tar_fail;
			o->st.bytes += n;
		}
	}
	return 0;
tar_fail:
	fprintf(stderr, "layer: cannot write data of %s: %s\n", rel, archive_error_string(o->tar));
	return out_err(o, o->tar);
}

static void count_entry(struct layer_stats *st, struct archive_entry *e)
{
	const char *name;
	const void *val;
	size_t sz;

	st->entries++;
	if (archive_entry_hardlink(e)) {
		st->hardlinks++;
	} else {
		switch (archive_entry_filetype(e)) {
		case AE_IFREG:
			st->files++;
			break;
		case AE_IFDIR:
			st->dirs++;
			break;
		case AE_IFLNK:
			st->symlinks++;
			break;
		case AE_IFCHR:
			if (archive_entry_rdev(e) == makedev(0, 0))
				st->whiteouts++;
			break;
		}
	}
	st->xattrs += archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &sz) == ARCHIVE_OK)
		if (archive_entry_filetype(e) == AE_IFDIR && !strcmp(name, OPAQUE_XATTR) &&
		    sz == 1 && *(const char *)val == 'y')
			st->opaque++;
}

/*
 * The first name of @sb's inode if it was written already (this entry goes
 * as a hard link to it), else NULL after remembering @name (-ENOMEM in @err).
 */
static const char *link_first(struct layer_out *o, const struct stat *sb, const char *name,
			      int *err)
{
	struct link_ent **head = &o->links[(sb->st_ino ^ sb->st_dev) % LINK_BUCKETS], *l;
	size_t len = strlen(name);

	for (l = *head; l; l = l->next)
		if (l->ino == sb->st_ino && l->dev == sb->st_dev)
			return l->name;
	l = malloc(sizeof(*l) + len + 1);
	if (!l) {
		*err = -ENOMEM;
		return NULL;
	}
	l->dev = sb->st_dev;
	l->ino = sb->st_ino;
	memcpy(l->name, name, len + 1);
	l->next = *head;
	*head = l;
	return NULL;
}

static int walk_dir(struct layer_out *o, char *rel, size_t len);

/*
 * Write the entry at @rel ("" is the root, "." in the archive), then descend
 * into it if it is a directory. Nothing of this frame but scalars lives
 * across the recursion (no PATH_MAX buffers, no fd): a container can nest
 * directories PATH_MAX/2 deep.
 */
static int put_entry(struct layer_out *o, char *rel, size_t len)
{
	const char *at = len ? rel : ".", *src = o->src;
	struct archive_entry *e = NULL;
	const char *first = NULL;
	struct stat sb;
	int fd = -1, err = 0, r;
	bool descend;

	if (snprintf(o->src, sizeof(o->src), "%s/%s", o->root, rel) >= (int)sizeof(o->src)) {
		fprintf(stderr, "layer: path too long: %s/%s\n", o->root, rel);
		return -ENAMETOOLONG;
	}
	if (fstatat(o->rootfd, at, &sb, AT_SYMLINK_NOFOLLOW)) {
		err = -errno;
		fprintf(stderr, "layer: cannot stat %s: %s\n", src, strerror(errno));
		goto cleanup;
	}
	if (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)) {
		fd = openat(o->rootfd, at, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &sb)) {
			err = -errno;
			fprintf(stderr, "layer: cannot open %s: %s\n", src, strerror(errno));
			goto cleanup;
		}
	}
	e = archive_entry_new();
	if (!e) {
		err = -ENOMEM;
		goto cleanup;
	}
	archive_entry_copy_pathname(e, at);
	/* libarchive reads symlinks and xattrs of non-openable files by this path. */
	archive_entry_copy_sourcepath(e, src);
	r = archive_read_disk_entry_from_file(o->disk, e, fd, &sb);
	if (r != ARCHIVE_OK) {
		fprintf(stderr, "layer: cannot read %s: %s\n", src, archive_error_string(o->disk));
		err = archive_errno(o->disk) > 0 ? -archive_errno(o->disk) : -EIO;
		goto cleanup;
	}
	err = check_xattrs(e, fd, src);
	if (err)
		goto cleanup;

	if (!S_ISDIR(sb.st_mode) && sb.st_nlink > 1)
		first = link_first(o, &sb, at, &err);
	if (err)
		goto cleanup;
	if (first) {
		/* Same inode as the first name: metadata and data travel once. */
		archive_entry_copy_hardlink(e, first);
		archive_entry_unset_size(e);
		archive_entry_sparse_clear(e);
		archive_entry_xattr_clear(e);
		archive_entry_acl_clear(e);
	}
	/* ctime cannot be restored; atime and mtime go with nanoseconds. */
	archive_entry_unset_ctime(e);
	archive_entry_unset_birthtime(e);
	r = archive_write_header(o->tar, e);
	if (r != ARCHIVE_OK) {
		fprintf(stderr, "layer: cannot write header of %s: %s\n", src,
			archive_error_string(o->tar));
		err = out_err(o, o->tar);
		goto cleanup;
	}
	if (S_ISREG(sb.st_mode) && !archive_entry_hardlink(e)) {
		err = put_data(o, e, fd);
		if (err)
			goto cleanup;
	}
	r = archive_write_finish_entry(o->tar);
	if (r != ARCHIVE_OK) {
		fprintf(stderr, "layer: cannot finish %s: %s\n", src, archive_error_string(o->tar));
		err = out_err(o, o->tar);
		goto cleanup;
	}
	count_entry(&o->st, e);
cleanup:
	archive_entry_free(e);
	if (fd >= 0)
		close(fd);
	/* A mount point under the tree is written, not what is mounted on it. */
	descend = !err && S_ISDIR(sb.st_mode) && sb.st_dev == o->rootdev;
	return descend ? walk_dir(o, rel, len) : err;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Write the children of directory @rel (length @len, in a PATH_MAX buffer) in byte order. */
static int walk_dir(struct layer_out *o, char *rel, size_t len)
{
	char **names = NULL;
	size_t n = 0, cap = 0, i, nl;
	struct dirent *de;
	DIR *d = NULL;
	int fd, err = 0;

	fd = openat(o->rootfd, len ? rel : ".",
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		err = -errno;
		fprintf(stderr, "layer: cannot open directory %s/%s: %s\n", o->root, rel,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		goto cleanup;
	}
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*names));

			if (!nn) {
				err = -ENOMEM;
				goto cleanup;
			}
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			err = -ENOMEM;
			goto cleanup;
		}
		n++;
	}
	if (errno) {
		err = -errno;
		fprintf(stderr, "layer: cannot read directory %s/%s: %s\n", o->root, rel,
			strerror(errno));
		goto cleanup;
	}
	closedir(d);
	d = NULL;
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);

	for (i = 0; i < n && !err; i++) {
		nl = strlen(names[i]);
		if (len + !!len + nl >= PATH_MAX) {
			fprintf(stderr, "layer: path too long under %s/%s: %s\n", o->root, rel,
				names[i]);
			err = -ENAMETOOLONG;
			break;
		}
		if (len)
			rel[len] = '/';
		memcpy(rel + len + !!len, names[i], nl + 1);
		err = put_entry(o, rel, len + !!len + nl);
		rel[len] = '\0';
	}
cleanup:
	if (d)
		closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return err;
}

int layer_write(const char *dir, int (*sink)(void *ctx, const void *buf, size_t len), void *ctx,
		struct layer_stats *st)
{
	struct layer_out *o;
	struct link_ent *l;
	struct stat sb;
	int err = 0, i;

	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->sink = sink;
	o->ctx = ctx;
	o->rootfd = -1;
	if (!realpath(dir, o->root)) {
		err = -errno;
		fprintf(stderr, "layer: cannot resolve %s: %s\n", dir, strerror(errno));
		goto cleanup;
	}
	o->rootfd = open(o->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (o->rootfd < 0 || fstat(o->rootfd, &sb)) {
		err = -errno;
		fprintf(stderr, "layer: cannot open %s: %s\n", o->root, strerror(errno));
		goto cleanup;
	}
	o->rootdev = sb.st_dev;
	o->buf = malloc(LAYER_BLOCK);
	o->disk = archive_read_disk_new();
	o->tar = archive_write_new();
	if (!o->buf || !o->disk || !o->tar) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* No uname/gname lookup: owners are the container's numeric ids. */
	if (archive_read_disk_set_symlink_physical(o->disk) ||
	    archive_read_disk_set_behavior(o->disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS) ||
	    /* Full pax: restricted pax drops mtime's nanoseconds of plain entries. */
	    archive_write_set_format_pax(o->tar) ||
	    /* Names are bytes on Linux: no charset conversion either way. */
	    archive_write_set_format_option(o->tar, "pax", "hdrcharset", "BINARY") ||
	    archive_write_set_format_option(o->tar, "pax", "xattrheader", "SCHILY") ||
	    archive_write_set_bytes_per_block(o->tar, LAYER_BLOCK) ||
	    archive_write_set_bytes_in_last_block(o->tar, 1)) {
		fprintf(stderr, "layer: cannot set up the tar writer: %s\n",
			archive_error_string(o->tar) ?: archive_error_string(o->disk));
		err = -EINVAL;
		goto cleanup;
	}
	if (archive_write_open(o->tar, o, NULL, out_write, NULL)) {
		fprintf(stderr, "layer: cannot open the tar writer: %s\n",
			archive_error_string(o->tar));
		err = out_err(o, o->tar);
		goto cleanup;
	}

	err = put_entry(o, o->rel, 0);
	if (err)
		goto cleanup;
	if (archive_write_close(o->tar)) {
		fprintf(stderr, "layer: cannot end the tar stream of %s: %s\n", o->root,
			archive_error_string(o->tar));
		err = out_err(o, o->tar);
		goto cleanup;
	}
	if (st)
		*st = o->st;
cleanup:
	for (i = 0; i < LINK_BUCKETS; i++) {
		while ((l = o->links[i])) {
			o->links[i] = l->next;
			free(l);
		}
	}
	if (o->tar)
		archive_write_free(o->tar);
	if (o->disk)
		archive_read_free(o->disk);
	if (o->rootfd >= 0)
		close(o->rootfd);
	free(o->buf);
	free(o);
	return err;
}

/* --- extracting ----------------------------------------------------------- */

struct layer_in {
	ssize_t (*source)(void *ctx, void *buf, size_t cap);
	void *ctx;
	int source_err;
	char *buf;
	struct layer_stats st;
};

static la_ssize_t in_read(struct archive *a, void *p, const void **buf)
{
	struct layer_in *in = p;
	ssize_t n;

	n = in->source(in->ctx, in->buf, LAYER_BLOCK);
	if (n < 0 || n > LAYER_BLOCK) {
		in->source_err = n < 0 ? (int)n : -EINVAL;
		archive_set_error(a, -in->source_err, "layer source failed");
		return -1;
	}
	*buf = in->buf;
	in->st.stream += n;
	return n;
}

/* The error of a read from the stream: the source's, else a bad stream. */
static int in_err(struct layer_in *in, struct archive *a)
{
	if (in->source_err)
		return in->source_err;
	return archive_errno(a) == ENOMEM ? -ENOMEM : -EBADMSG;
}

/* Relative, and no ".." component: the checks NOABSOLUTEPATHS and NODOTDOT make. */
static bool name_inside(const char *name)
{
	const char *p, *q;

	if (!name || !*name || name[0] == '/')
		return false;
	for (p = name; *p; p = *q ? q + 1 : q) {
		q = strchrnul(p, '/');
		if (q - p == 2 && p[0] == '.' && p[1] == '.')
			return false;
	}
	return true;
}

/*
 * -EPERM if a directory on the way to @name under @rootfd is a symlink.
 * (The last component may be one: it is replaced, not followed.)
 */
static int name_no_symlink(int rootfd, const char *name)
{
	char path[PATH_MAX];
	struct stat sb;
	size_t i, len = strlen(name);

	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, name, len + 1);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	for (i = 1; i < len; i++) {
		if (path[i] != '/' || path[i - 1] == '/')
			continue;
		path[i] = '\0';
		if (fstatat(rootfd, path, &sb, AT_SYMLINK_NOFOLLOW))
			return errno == ENOENT ? 0 : -errno;
		path[i] = '/';
		if (S_ISLNK(sb.st_mode))
			return -EPERM;
	}
	return 0;
}

/*
 * Check @name, the name of @entry or its hard-link target, and write
 * @root/@name into @full.
 */
static int name_prefix(int rootfd, const char *root, const char *entry, const char *name,
		       char full[PATH_MAX])
{
	const char *what = name == entry ? "" : " (its hard link target)";
	int err;

	if (!name_inside(name)) {
		fprintf(stderr, "layer: refused entry '%s'%s: absolute or '..' in '%s'\n", entry,
			what, name);
		return -EPERM;
	}
	err = name_no_symlink(rootfd, name);
	if (err == -EPERM)
		fprintf(stderr, "layer: refused entry '%s'%s: '%s' leads through a symlink\n",
			entry, what, name);
	else if (err)
		fprintf(stderr, "layer: cannot check entry '%s'%s: %s\n", entry, what,
			strerror(-err));
	if (err)
		return err;
	if (snprintf(full, PATH_MAX, "%s/%s", root, name) >= PATH_MAX) {
		/* libarchive would chdir() to shorten it. */
		fprintf(stderr, "layer: entry '%s'%s too long under %s\n", entry, what, root);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int copy_entry_data(struct layer_in *in, struct archive *ar, struct archive *aw,
			   const char *name)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	for (;;) {
		r = archive_read_data_block(ar, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK) {
			fprintf(stderr, "layer: cannot read data of %s: %s\n", name,
				archive_error_string(ar));
			return in_err(in, ar);
		}
		if (archive_write_data_block(aw, buf, size, off) != ARCHIVE_OK) {
			fprintf(stderr, "layer: cannot write data of %s: %s\n", name,
				archive_error_string(aw));
			return archive_errno(aw) > 0 ? -archive_errno(aw) : -EIO;
		}
		in->st.bytes += size;
	}
}

int layer_extract(const char *dir, ssize_t (*source)(void *ctx, void *buf, size_t cap), void *ctx,
		  struct layer_stats *st)
{
	const int flags = ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
			  ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
			  ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_FFLAGS |
			  ARCHIVE_EXTRACT_SPARSE;
	struct archive *ar = NULL, *aw = NULL;
	struct archive_entry *e;
	struct layer_in in = { .source = source, .ctx = ctx };
	char root[PATH_MAX], full[PATH_MAX], fulllink[PATH_MAX];
	char *name = NULL, *link = NULL;
	struct timespec root_times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	int rootfd = -1, err = 0, r;

	if (!realpath(dir, root)) {
		err = -errno;
		fprintf(stderr, "layer: cannot resolve %s: %s\n", dir, strerror(errno));
		goto cleanup;
	}
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		err = -errno;
		fprintf(stderr, "layer: cannot open %s: %s\n", root, strerror(errno));
		goto cleanup;
	}
	in.buf = malloc(LAYER_BLOCK);
	ar = archive_read_new();
	aw = archive_write_disk_new();
	if (!in.buf || !ar || !aw) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* Tar only, no filters: the transport does compression, if any. */
	if (archive_read_support_format_tar(ar) || archive_write_disk_set_options(aw, flags)) {
		fprintf(stderr, "layer: cannot set up the tar reader\n");
		err = -EINVAL;
		goto cleanup;
	}
	if (archive_read_open(ar, &in, NULL, in_read, NULL)) {
		fprintf(stderr, "layer: cannot open the tar stream: %s\n", archive_error_string(ar));
		err = in_err(&in, ar);
		goto cleanup;
	}

	for (;;) {
		r = archive_read_next_header(ar, &e);
		if (r == ARCHIVE_EOF)
			break;
		/* A warning (bad charset, odd pax record) is a stream we did not write. */
		if (r != ARCHIVE_OK) {
			fprintf(stderr, "layer: bad tar stream after %llu entries: %s\n",
				(unsigned long long)in.st.entries, archive_error_string(ar));
			err = in_err(&in, ar);
			goto cleanup;
		}
		free(name);
		free(link);
		link = NULL;
		name = strdup(archive_entry_pathname(e) ?: "");
		if (!name || (archive_entry_hardlink(e) && !(link = strdup(archive_entry_hardlink(e))))) {
			err = -ENOMEM;
			goto cleanup;
		}
		err = name_prefix(rootfd, root, name, name, full);
		if (!err && link)
			err = name_prefix(rootfd, root, name, link, fulllink);
		if (err)
			goto cleanup;
		count_entry(&in.st, e);
		if (!strcmp(name, ".") || !strcmp(name, "./")) {
			/* libarchive sets an existing dir's times at once; its children move them. */
			if (archive_entry_atime_is_set(e))
				root_times[0] = (struct timespec){ archive_entry_atime(e),
								   archive_entry_atime_nsec(e) };
			if (archive_entry_mtime_is_set(e))
				root_times[1] = (struct timespec){ archive_entry_mtime(e),
								   archive_entry_mtime_nsec(e) };
		}
		archive_entry_copy_pathname(e, full);
		if (link)
			archive_entry_copy_hardlink(e, fulllink);

		r = archive_write_header(aw, e);
		if (r != ARCHIVE_OK) {
			fprintf(stderr, "layer: cannot extract '%s': %s\n", name,
				archive_error_string(aw));
			err = archive_errno(aw) > 0 ? -archive_errno(aw) : -EPERM;
			goto cleanup;
		}
		err = copy_entry_data(&in, ar, aw, name);
		if (err)
			goto cleanup;
		r = archive_write_finish_entry(aw);
		if (r != ARCHIVE_OK) {
			fprintf(stderr, "layer: cannot restore '%s': %s\n", name,
				archive_error_string(aw));
			err = archive_errno(aw) > 0 ? -archive_errno(aw) : -EIO;
			goto cleanup;
		}
	}
	/* libarchive takes a stream cut at an entry boundary for a whole one. */
	if (archive_filter_bytes(ar, 0) - archive_read_header_position(ar) < TAR_END_LEN) {
		fprintf(stderr, "layer: tar stream ends without its end marker after %llu entries\n",
			(unsigned long long)in.st.entries);
		err = -EBADMSG;
		goto cleanup;
	}
	/* Directory times and modes are set here. */
	if (archive_write_close(aw) != ARCHIVE_OK) {
		fprintf(stderr, "layer: cannot restore directories under %s: %s\n", root,
			archive_error_string(aw));
		err = archive_errno(aw) > 0 ? -archive_errno(aw) : -EIO;
		goto cleanup;
	}
	if (futimens(rootfd, root_times)) {
		err = -errno;
		fprintf(stderr, "layer: cannot set the times of %s: %s\n", root, strerror(errno));
		goto cleanup;
	}
	if (st)
		*st = in.st;
cleanup:
	if (aw)
		archive_write_free(aw);
	if (ar)
		archive_read_free(ar);
	if (rootfd >= 0)
		close(rootfd);
	free(in.buf);
	free(name);
	free(link);
	return err;
}
