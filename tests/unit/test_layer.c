// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * layer_write -> socketpair -> layer_extract on a made-up overlay UpperDir
 * (whiteouts, shared whiteout inode, opaque dir, trusted/security/user
 * xattrs, hard links, symlinks, a 1 GiB sparse file, odd modes and owners,
 * a UTF-8 name); hostile archives; cut streams; an overlay mounted on an
 * extracted upper; a 20 MiB throughput figure. Needs root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "eh_time.h"
#include "layer.h"
#include "tap.h"

#define GiB (1024LL * 1024 * 1024)
#define MiB (1024LL * 1024)

static char base[256];
static bool base_tmpfs;

/* --- helpers ------------------------------------------------------------- */

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...)
{
	static char bufs[8][4096];
	static int i;
	char *b = bufs[i++ % 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, 4096, fmt, ap);
	va_end(ap);
	return b;
}

static int put_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd < 0)
		return -errno;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	fchmod(fd, mode);
	return close(fd) ? -errno : 0;
}

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(p) ? -1 : 0;
	return unlink(p) ? -1 : 0;
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static bool exists(const char *path)
{
	struct stat sb;

	return !lstat(path, &sb);
}

/* --- manifest of a tree: one sorted line per entry ------------------------ */

struct rec {
	char *path;
	struct stat st;
	char *detail;
};

static struct {
	struct rec *r;
	size_t n, cap;
	size_t rootlen;
} mf;

static char *hex(const unsigned char *b, size_t n)
{
	char *s = malloc(2 * n + 1);

	for (size_t i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", b[i]);
	s[2 * n] = 0;
	return s;
}

static char *file_hash(const char *path)
{
	unsigned char md[EVP_MAX_MD_SIZE], *buf = malloc(1 << 20);
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY);
	ssize_t n;

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	while (fd >= 0 && (n = read(fd, buf, 1 << 20)) > 0)
		EVP_DigestUpdate(c, buf, n);
	EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	free(buf);
	if (fd >= 0)
		close(fd);
	return hex(md, mdlen);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *xattr_text(const char *path)
{
	char list[4096], *names[64], val[4096], *out = calloc(1, 16384);
	ssize_t len = llistxattr(path, list, sizeof(list)), vl;
	int n = 0;

	for (char *p = list; len > 0 && p < list + len && n < 64; p += strlen(p) + 1)
		names[n++] = p;
	qsort(names, n, sizeof(*names), str_cmp);
	for (int i = 0; i < n; i++) {
		vl = lgetxattr(path, names[i], val, sizeof(val));
		char *h = hex((unsigned char *)val, vl > 0 ? vl : 0);

		snprintf(out + strlen(out), 16384 - strlen(out), "%s%s=%s", i ? "," : "",
			 names[i], h);
		free(h);
	}
	return out;
}

static int mf_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	struct rec *r;
	char *d = NULL, lnk[4096];
	ssize_t n;

	(void)type;
	(void)ftw;
	if (mf.n == mf.cap) {
		mf.cap = mf.cap ? 2 * mf.cap : 64;
		mf.r = realloc(mf.r, mf.cap * sizeof(*mf.r));
	}
	r = &mf.r[mf.n++];
	r->path = strdup(p[mf.rootlen] ? p + mf.rootlen + 1 : ".");
	r->st = *sb;
	if (S_ISREG(sb->st_mode)) {
		d = file_hash(p);
	} else if (S_ISLNK(sb->st_mode)) {
		n = readlink(p, lnk, sizeof(lnk) - 1);
		lnk[n > 0 ? n : 0] = 0;
		d = strdup(lnk);
	}
	char *x = xattr_text(p);

	if (asprintf(&r->detail, "%s|%s", d ?: "", x) < 0)
		r->detail = NULL;
	free(d);
	free(x);
	return 0;
}

/*
 * Lines "path type mode uid:gid size rdev nlink mtime link-group detail",
 * sorted. The link group is the smallest path with the same inode.
 * @skip_root_time: a mounted overlay's root is not the upper's root.
 */
static char **manifest(const char *root, size_t *count, bool skip_root_time)
{
	char **lines;

	memset(&mf, 0, sizeof(mf));
	mf.rootlen = strlen(root);
	nftw(root, mf_one, 16, FTW_PHYS | FTW_MOUNT);
	lines = calloc(mf.n, sizeof(*lines));
	for (size_t i = 0; i < mf.n; i++) {
		struct rec *r = &mf.r[i];
		const char *group = r->path;
		bool root_entry = !strcmp(r->path, ".");

		for (size_t j = 0; j < mf.n && !S_ISDIR(r->st.st_mode); j++)
			if (mf.r[j].st.st_ino == r->st.st_ino && mf.r[j].st.st_dev == r->st.st_dev &&
			    strcmp(mf.r[j].path, group) < 0)
				group = mf.r[j].path;
		if (asprintf(&lines[i], "%s %o %o %u:%u %lld %u:%u %lu %lld.%09ld %s %s", r->path,
			     r->st.st_mode & S_IFMT, r->st.st_mode & 07777, r->st.st_uid,
			     r->st.st_gid, S_ISDIR(r->st.st_mode) ? 0 : (long long)r->st.st_size,
			     major(r->st.st_rdev), minor(r->st.st_rdev),
			     S_ISDIR(r->st.st_mode) ? 0 : (unsigned long)r->st.st_nlink,
			     root_entry && skip_root_time ? 0 : (long long)r->st.st_mtim.tv_sec,
			     root_entry && skip_root_time ? 0 : r->st.st_mtim.tv_nsec, group,
			     r->detail) < 0)
			lines[i] = NULL;
	}
	for (size_t i = 0; i < mf.n; i++) {
		free(mf.r[i].path);
		free(mf.r[i].detail);
	}
	free(mf.r);
	qsort(lines, mf.n, sizeof(*lines), str_cmp);
	*count = mf.n;
	return lines;
}

/* Both trees' manifests equal; differences as diagnostics. */
static bool same_tree(const char *a, const char *b, bool skip_root_time, size_t *entries)
{
	size_t na, nb, i;
	char **la = manifest(a, &na, skip_root_time), **lb = manifest(b, &nb, skip_root_time);
	bool same = na == nb;

	for (i = 0; i < na || i < nb; i++) {
		const char *x = i < na ? la[i] : "(none)", *y = i < nb ? lb[i] : "(none)";

		if (strcmp(x, y)) {
			tap_diag("- %s", x);
			tap_diag("+ %s", y);
			same = false;
		}
	}
	for (i = 0; i < na; i++)
		free(la[i]);
	for (i = 0; i < nb; i++)
		free(lb[i]);
	free(la);
	free(lb);
	if (entries)
		*entries = na;
	return same;
}

/* --- streams: socketpair + thread, or memory -------------------------------- */

static int fd_sink(void *ctx, const void *buf, size_t len)
{
	int fd = *(int *)ctx;
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

static ssize_t fd_source(void *ctx, void *buf, size_t cap)
{
	ssize_t n = read(*(int *)ctx, buf, cap);

	return n < 0 ? -errno : n;
}

struct writer {
	const char *dir;
	int fd;
	int err;
	struct layer_stats st;
};

static void *writer_main(void *p)
{
	struct writer *w = p;

	w->err = layer_write(w->dir, fd_sink, &w->fd, &w->st);
	close(w->fd);
	return NULL;
}

/* layer_write(@from) in a thread -> socketpair -> layer_extract(@to). */
static int pipe_layer(const char *from, const char *to, struct layer_stats *ws,
		      struct layer_stats *rs, int *werr)
{
	struct writer w = { .dir = from };
	int sv[2], err, sndbuf = 64 * 1024;
	pthread_t t;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	/* A small socket buffer: the writer can only finish if the reader drains it. */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	w.fd = sv[0];
	pthread_create(&t, NULL, writer_main, &w);
	err = layer_extract(to, fd_source, &sv[1], rs);
	close(sv[1]);
	pthread_join(t, NULL);
	*ws = w.st;
	*werr = w.err;
	return err;
}

struct mem {
	char *buf;
	size_t len, cap, pos, limit;
	int fail_at;		/* source fails with -EIO once pos >= fail_at (if > 0) */
};

static int mem_sink(void *ctx, const void *buf, size_t len)
{
	struct mem *m = ctx;

	if (m->len + len > m->cap) {
		m->cap = (m->len + len) * 2;
		m->buf = realloc(m->buf, m->cap);
	}
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return 0;
}

static ssize_t mem_source(void *ctx, void *buf, size_t cap)
{
	struct mem *m = ctx;
	size_t end = m->limit ? m->limit : m->len, n;

	if (m->fail_at && m->pos >= (size_t)m->fail_at)
		return -EIO;
	n = end - m->pos < cap ? end - m->pos : cap;
	if (n > 4096)
		n = 4096;	/* small reads: libarchive must reassemble */
	memcpy(buf, m->buf + m->pos, n);
	m->pos += n;
	return n;
}

static la_ssize_t mem_write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
	(void)a;
	mem_sink(ctx, buf, len);
	return len;
}

/* --- the upper dir under test ---------------------------------------------- */

static int build_upper(const char *d)
{
	struct timespec ts[2] = { { 1700000000, 123456789 }, { 1700000000, 123456789 } };
	char big[300000];
	int fd, err = 0;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + i / 251);
	err |= mkdir(d, 0755);
	err |= mknod(pathf("%s/gone", d), S_IFCHR | 0, makedev(0, 0));
	err |= mkdir(pathf("%s/etc", d), 0755);
	err |= mknod(pathf("%s/etc/a", d), S_IFCHR | 0, makedev(0, 0));
	err |= link(pathf("%s/etc/a", d), pathf("%s/etc/b", d));
	err |= put_file(pathf("%s/etc/keep.conf", d), "k=1\n", 4, 0644);
	err |= mkdir(pathf("%s/opq", d), 0755);
	err |= setxattr(pathf("%s/opq", d), "trusted.overlay.opaque", "y", 1, 0);
	err |= put_file(pathf("%s/opq/new", d), "fresh\n", 6, 0644);
	err |= put_file(pathf("%s/tagged", d), "x", 1, 0644);
	err |= setxattr(pathf("%s/tagged", d), "user.note", "hello", 5, 0);
	err |= setxattr(pathf("%s/tagged", d), "security.edgehop", "sec\0bin", 7, 0);
	err |= setxattr(pathf("%s/tagged", d), "trusted.bin", "\x00\xff\x01", 3, 0);
	err |= symlink("../target/x", pathf("%s/rel-link", d));
	err |= symlink("/etc/passwd", pathf("%s/abs-link", d));
	err |= lchown(pathf("%s/abs-link", d), 1234, 5678);
	err |= put_file(pathf("%s/h1", d), big, sizeof(big), 0640);
	err |= mkdir(pathf("%s/sub", d), 0750);
	err |= link(pathf("%s/h1", d), pathf("%s/sub/h2", d));
	fd = open(pathf("%s/sparse", d), O_WRONLY | O_CREAT, 0644);
	err |= fd < 0 || ftruncate(fd, GiB) || pwrite(fd, "head", 4, 0) != 4 ||
	       pwrite(fd, "middle", 6, 512 * MiB) != 6;
	if (fd >= 0)
		close(fd);
	err |= put_file(pathf("%s/suid", d), "#!/bin/sh\n", 10, 0755);
	err |= chmod(pathf("%s/suid", d), 04755);
	err |= put_file(pathf("%s/secret", d), "s", 1, 0600);
	err |= chmod(pathf("%s/secret", d), 0600);
	err |= put_file(pathf("%s/owned", d), "o", 1, 0644);
	err |= chown(pathf("%s/owned", d), 1234, 5678);
	err |= mkdir(pathf("%s/private", d), 0700);
	err |= chown(pathf("%s/private", d), 1234, 5678);
	err |= put_file(pathf("%s/private/in", d), "p", 1, 0644);
	err |= put_file(pathf("%s/with space ü é.txt", d), "utf8", 4, 0644);
	err |= put_file(pathf("%s/empty", d), "", 0, 0644);
	err |= mkfifo(pathf("%s/fifo", d), 0620);
	/* Times last: creating children moved the directories' mtimes. */
	const char *all[] = { "gone", "etc/a", "etc/keep.conf", "opq/new", "tagged", "h1",
			      "sparse", "suid", "secret", "owned", "private/in", "empty", "fifo",
			      "with space ü é.txt", "rel-link", "abs-link", "etc", "opq", "sub",
			      "private", "." };
	for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++) {
		ts[0].tv_sec = ts[1].tv_sec = 1700000000 + i;
		err |= utimensat(AT_FDCWD, pathf("%s/%s", d, all[i]), ts, AT_SYMLINK_NOFOLLOW);
	}
	return err ? -1 : 0;
}

/* --- hostile archives ----------------------------------------------------- */

enum { E_FILE, E_DIR, E_SYMLINK, E_HARDLINK };

struct hostile_entry {
	int type;
	const char *name;
	const char *target;	/* symlink or hard link target */
};

static void build_archive(struct mem *m, const struct hostile_entry *ents, int n)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e;

	archive_write_set_format_pax_restricted(a);
	archive_write_open(a, m, NULL, mem_write_cb, NULL);
	for (int i = 0; i < n; i++) {
		e = archive_entry_new();
		archive_entry_copy_pathname(e, ents[i].name);
		archive_entry_set_perm(e, 0644);
		switch (ents[i].type) {
		case E_FILE:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, 5);
			break;
		case E_DIR:
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, 0755);
			break;
		case E_SYMLINK:
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_copy_symlink(e, ents[i].target);
			break;
		case E_HARDLINK:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_copy_hardlink(e, ents[i].target);
			break;
		}
		archive_write_header(a, e);
		if (ents[i].type == E_FILE)
			archive_write_data(a, "evil\n", 5);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

/* Extract @ents into a fresh dir; -EPERM expected and nothing new outside it. */
static void hostile(const char *what, const struct hostile_entry *ents, int n, const char *victim)
{
	struct mem m = {};
	char *dir = pathf("%s/hostile", base), *outside = pathf("%s/outside", base);
	int err;

	rm_rf(dir);
	mkdir(dir, 0755);
	build_archive(&m, ents, n);
	err = layer_extract(dir, mem_source, &m, NULL);
	tap_ok(err == -EPERM && !exists(victim) && !exists(pathf("%s/evil", outside)) &&
		       !exists(pathf("%s/escape", base)),
	       "%s: refused with -EPERM, nothing outside (got %d%s)", what, err,
	       exists(victim) ? ", victim written!" : "");
	unlink(victim);
	free(m.buf);
}

/* --- overlay end to end ----------------------------------------------------- */

static int ov_mount(const char *lower, const char *upper, const char *work, const char *merged)
{
	char opts[1024];

	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
	return mount("overlay", merged, "overlay", 0, opts) ? -errno : 0;
}

static void overlay_e2e(void)
{
	char *lower = strdup(pathf("%s/ov/lower", base));
	char *up1 = strdup(pathf("%s/ov/up1", base)), *up2 = strdup(pathf("%s/ov/up2", base));
	char *w1 = strdup(pathf("%s/ov/w1", base)), *w2 = strdup(pathf("%s/ov/w2", base));
	char *m1 = strdup(pathf("%s/ov/m1", base)), *m2 = strdup(pathf("%s/ov/m2", base));
	struct layer_stats ws, rs;
	int err, werr;
	bool ok;

	mkdir(pathf("%s/ov", base), 0755);
	mkdir(lower, 0755);
	mkdir(pathf("%s/dir", lower), 0755);
	mkdir(pathf("%s/dir/deep", lower), 0755);
	put_file(pathf("%s/keep.txt", lower), "keep\n", 5, 0644);
	put_file(pathf("%s/del.txt", lower), "del\n", 4, 0644);
	put_file(pathf("%s/ren.txt", lower), "ren\n", 4, 0644);
	put_file(pathf("%s/dir/a", lower), "a\n", 2, 0644);
	put_file(pathf("%s/dir/deep/b", lower), "b\n", 2, 0644);
	mkdir(pathf("%s/other", lower), 0755);
	put_file(pathf("%s/other/x", lower), "x\n", 2, 0644);
	put_file(pathf("%s/other/y", lower), "y\n", 2, 0644);
	mkdir(up1, 0755);
	mkdir(up2, 0755);
	mkdir(w1, 0755);
	mkdir(w2, 0755);
	mkdir(m1, 0755);
	mkdir(m2, 0755);

	err = ov_mount(lower, up1, w1, m1);
	if (err) {
		tap_skip(3, "overlayfs does not mount here");
		tap_diag("mount -t overlay: %s", strerror(-err));
		goto cleanup;
	}
	/* What a container does to its root fs. */
	unlink(pathf("%s/del.txt", m1));
	rename(pathf("%s/ren.txt", m1), pathf("%s/renamed.txt", m1));
	rm_rf(pathf("%s/dir", m1));
	mkdir(pathf("%s/dir", m1), 0755);
	put_file(pathf("%s/dir/c", m1), "c\n", 2, 0644);
	unlink(pathf("%s/other/x", m1));
	unlink(pathf("%s/other/y", m1));
	put_file(pathf("%s/keep.txt", m1), "changed\n", 8, 0644);
	umount(m1);

	err = pipe_layer(up1, up2, &ws, &rs, &werr);
	/* The kernel links all whiteouts to one inode (ovl "whiteout" reuse). */
	tap_ok(!err && !werr && rs.opaque == 1 && rs.whiteouts + rs.hardlinks == 4,
	       "overlay upper (rm, mv, rm -rf + mkdir) crosses the stream (extract %d, write %d,"
	       " %llu whiteouts + %llu hard links, %llu opaque)", err, werr,
	       (unsigned long long)rs.whiteouts, (unsigned long long)rs.hardlinks,
	       (unsigned long long)rs.opaque);

	err = ov_mount(lower, up1, w1, m1);
	err = err ?: ov_mount(lower, up2, w2, m2);
	ok = !err && same_tree(m1, m2, true, NULL);
	tap_ok(ok, "merged view on the extracted upper equals the source's merged view (%d)", err);
	tap_ok(!err && !exists(pathf("%s/dir/a", m2)) && !exists(pathf("%s/dir/deep", m2)) &&
		       exists(pathf("%s/dir/c", m2)) && !exists(pathf("%s/del.txt", m2)) &&
		       !exists(pathf("%s/ren.txt", m2)) && exists(pathf("%s/renamed.txt", m2)),
	       "no base file shows through the opaque dir or the whiteouts");
	umount(m2);
	umount(m1);
cleanup:
	free(lower);
	free(up1);
	free(up2);
	free(w1);
	free(w2);
	free(m1);
	free(m2);
}

/* --- 20 MiB throughput ------------------------------------------------------- */

static void throughput(void)
{
	char *src = strdup(pathf("%s/tp-src", base)), *dst = strdup(pathf("%s/tp-dst", base));
	char *buf = malloc(MiB);
	struct layer_stats ws, rs;
	int err, werr, i;
	double t0, t;

	mkdir(src, 0755);
	mkdir(dst, 0755);
	for (i = 0; i < (int)MiB; i++)
		buf[i] = (char)(i * 31 + i / 4093);
	/* 16 files of 1 MiB, 64 of 64 KiB: 20 MiB. */
	for (i = 0; i < 16; i++)
		put_file(pathf("%s/big%02d", src, i), buf, MiB, 0644);
	for (i = 0; i < 64; i++)
		put_file(pathf("%s/small%02d", src, i), buf + i, 64 * 1024, 0644);
	sync();
	t0 = eh_mono_ms() / 1e3;
	err = pipe_layer(src, dst, &ws, &rs, &werr);
	t = eh_mono_ms() / 1e3 - t0;
	tap_ok(!err && !werr && rs.bytes == 20 * MiB && same_tree(src, dst, false, NULL),
	       "20 MiB layer: write+extract in %.3f s = %.0f MiB/s (stream %.1f MiB)", t,
	       20 / t, rs.stream / (double)MiB);
	free(buf);
	free(src);
	free(dst);
}

/* --------------------------------------------------------------------------- */

static bool trusted_xattrs_here(const char *dir)
{
	const char *p = pathf("%s/.probe", dir);
	bool ok;

	put_file(p, "", 0, 0644);
	ok = !setxattr(p, "trusted.probe", "1", 1, 0) &&
	     !setxattr(p, "security.probe", "1", 1, 0);
	unlink(p);
	return ok;
}

int main(void)
{
	char *src, *dst;
	struct layer_stats ws = {}, rs = {};
	struct stat sb;
	struct mem m = {};
	size_t entries = 0, cut;
	int err, werr;
	bool ok;

	tap_plan(25);
	if (geteuid() != 0) {
		tap_skip(25, "needs root (mknod, chown, trusted.* xattrs)");
		return tap_done();
	}
	snprintf(base, sizeof(base), "/tmp/eh-layer-XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	if (!trusted_xattrs_here(base)) {
		/* A private tmpfs keeps trusted.* and security.* as root. */
		if (mount("eh-layer", base, "tmpfs", 0, "size=256m")) {
			perror("mount tmpfs");
			return 1;
		}
		base_tmpfs = true;
		tap_diag("%s: no trusted.* xattrs, using a private tmpfs", base);
	}
	src = strdup(pathf("%s/src", base));
	dst = strdup(pathf("%s/dst", base));
	mkdir(pathf("%s/outside", base), 0755);

	/* 1-9: round trip through a socketpair. */
	err = build_upper(src);
	tap_ok(!err, "built an upper dir with every kind of entry (%d)", err);
	mkdir(dst, 0755);
	err = pipe_layer(src, dst, &ws, &rs, &werr);
	tap_ok(!err && !werr, "write -> socketpair -> extract (extract %d, write %d)", err, werr);
	ok = same_tree(src, dst, false, &entries);
	tap_ok(ok, "every entry equal: type, mode, owner, size, content, rdev, xattrs, hard links,"
	       " mtime (%zu entries)", entries);
	tap_ok(!memcmp(&ws, &rs, sizeof(ws)), "write and extract counted the same (entries %llu,"
	       " stream %llu)", (unsigned long long)rs.entries, (unsigned long long)rs.stream);
	tap_ok(rs.whiteouts == 2 && rs.hardlinks == 2 && rs.opaque == 1 && rs.symlinks == 2,
	       "stats: 2 whiteouts + 1 as hard link, 1 more hard link, 1 opaque dir, 2 symlinks"
	       " (got %llu, %llu, %llu, %llu)", (unsigned long long)rs.whiteouts,
	       (unsigned long long)rs.hardlinks, (unsigned long long)rs.opaque,
	       (unsigned long long)rs.symlinks);
	tap_ok(rs.xattrs == 4 && rs.bytes < 2 * MiB && rs.stream < 2 * MiB,
	       "4 xattrs; the 1 GiB sparse file's holes are not in the stream (data %llu,"
	       " stream %llu bytes, %llu xattrs)", (unsigned long long)rs.bytes,
	       (unsigned long long)rs.stream, (unsigned long long)rs.xattrs);
	err = stat(pathf("%s/sparse", dst), &sb);
	tap_ok(!err && sb.st_size == GiB && sb.st_blocks * 512 < MiB,
	       "sparse file extracted sparse (size %lld, %lld blocks)", (long long)sb.st_size,
	       (long long)sb.st_blocks);
	err = lstat(pathf("%s/etc/a", dst), &sb);
	tap_ok(!err && S_ISCHR(sb.st_mode) && sb.st_rdev == 0 && sb.st_nlink == 2,
	       "shared whiteout inode extracted as one 0/0 device with 2 links (nlink %lu)",
	       (unsigned long)sb.st_nlink);
	{
		char v[8] = "";
		ssize_t n = getxattr(pathf("%s/opq", dst), "trusted.overlay.opaque", v, sizeof(v));

		tap_ok(n == 1 && v[0] == 'y', "opaque dir keeps trusted.overlay.opaque=y (%zd)", n);
	}

	/* 10-11: libarchive's own check on prefixed (absolute) names. */
	{
		struct archive *aw = archive_write_disk_new();
		struct archive_entry *e = archive_entry_new();
		char *t = pathf("%s/la", base);
		int r;

		mkdir(t, 0755);
		symlink(pathf("%s/outside", base), pathf("%s/la/link", base));
		archive_write_disk_set_options(aw, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						   ARCHIVE_EXTRACT_SECURE_SYMLINKS);
		archive_entry_copy_pathname(e, pathf("%s/la/link/evil", base));
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		r = archive_write_header(aw, e);
		tap_ok(r != ARCHIVE_OK && !exists(pathf("%s/outside/evil", base)),
		       "libarchive SECURE_SYMLINKS still refuses an absolute prefixed name through"
		       " a symlink (%d: %s)", r, archive_error_string(aw));
		archive_entry_copy_pathname(e, pathf("%s/la/../escape", base));
		r = archive_write_header(aw, e);
		tap_ok(r != ARCHIVE_OK && !exists(pathf("%s/escape", base)),
		       "libarchive SECURE_NODOTDOT still refuses '..' in a prefixed name (%d)", r);
		archive_entry_free(e);
		archive_write_free(aw);
	}

	/* 12-17: hostile archives. */
	{
		const char *victim = pathf("%s/outside/evil", base);
		char *abs = strdup(pathf("%s/outside/evil", base));
		char *via_root = strdup(pathf("link%s/outside/evil", base));
		const struct hostile_entry dotdot[] = { { E_FILE, "ok", NULL },
							{ E_FILE, "../escape", NULL } };
		const struct hostile_entry nested[] = { { E_DIR, "a", NULL },
							{ E_FILE, "a/../../escape", NULL } };
		const struct hostile_entry absolute[] = { { E_FILE, abs, NULL } };
		const struct hostile_entry symlink_root[] = { { E_SYMLINK, "link", "/" },
							      { E_FILE, via_root, NULL } };
		const struct hostile_entry hard_up[] = { { E_HARDLINK, "x", "../../x" } };
		const struct hostile_entry hard_via[] = {
			{ E_SYMLINK, "l2", pathf("%s/outside", base) },
			{ E_HARDLINK, "y", "l2/target" } };

		put_file(pathf("%s/x", base), "victim\n", 7, 0644);
		hostile("entry '../escape'", dotdot, 2, victim);
		hostile("entry 'a/../../escape'", nested, 2, victim);
		hostile("absolute entry (base/outside/evil)", absolute, 1, victim);
		hostile("symlink 'link -> /' then 'link/<base>/outside/evil'", symlink_root, 2,
			victim);
		hostile("hard link 'x' -> '../../x'", hard_up, 1, pathf("%s/hostile/x", base));
		put_file(pathf("%s/outside/target", base), "target\n", 7, 0644);
		hostile("hard link 'y' -> 'l2/target' with l2 a symlink out", hard_via, 2,
			pathf("%s/hostile/y", base));
		free(abs);
		free(via_root);
	}

	/* 18-21: cut and failing streams. */
	err = layer_write(src, mem_sink, &m, NULL);
	rm_rf(pathf("%s/cut", base));
	mkdir(pathf("%s/cut", base), 0755);
	m.limit = m.len / 2 + 100;
	err = layer_extract(pathf("%s/cut", base), mem_source, &m, NULL);
	tap_ok(err == -EBADMSG, "stream cut mid-entry -> -EBADMSG (got %d)", err);
	/* At an entry boundary: just before the end marker (the last byte of data). */
	for (cut = m.len; cut > 0 && !m.buf[cut - 1]; cut--)
		;
	cut = (cut + 511) & ~(size_t)511;
	rm_rf(pathf("%s/cut", base));
	mkdir(pathf("%s/cut", base), 0755);
	m.pos = 0;
	m.limit = cut;
	err = layer_extract(pathf("%s/cut", base), mem_source, &m, NULL);
	tap_ok(err == -EBADMSG && cut < m.len,
	       "stream cut at an entry boundary (%zu of %zu bytes) -> -EBADMSG (got %d)", cut,
	       m.len, err);
	rm_rf(pathf("%s/cut", base));
	mkdir(pathf("%s/cut", base), 0755);
	m.pos = 0;
	m.limit = 0;
	m.fail_at = 200000;
	err = layer_extract(pathf("%s/cut", base), mem_source, &m, NULL);
	tap_ok(err == -EIO, "a source error is returned as is (got %d)", err);
	rm_rf(pathf("%s/cut", base));
	mkdir(pathf("%s/cut", base), 0755);
	m.pos = 0;
	m.fail_at = 0;
	err = layer_extract(pathf("%s/cut", base), mem_source, &m, NULL);
	tap_ok(!err && same_tree(src, pathf("%s/cut", base), false, NULL),
	       "the same stream whole extracts (got %d)", err);
	free(m.buf);

	/* 22-25: overlay and throughput. */
	overlay_e2e();
	throughput();

	free(src);
	free(dst);
	if (base_tmpfs)
		umount(base);
	rm_rf(base);
	rmdir(base);
	return tap_done();
}
