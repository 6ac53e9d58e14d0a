// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * control/migr/ckpt.c on the host, no Docker, no CRIU: the argv it builds,
 * CRIU's stats-dump and dump.log as recorded in the testbed's nodes
 * (tests/unit/data/ckpt-*), and runc's exit paths through fake runc
 * scripts (failure, timeout, pre-dump rounds).
 *
 * With arguments it is the dump itself, for measuring in a node
 * (docs/migration-speed.md):
 *   unit_ckpt --live CT IMAGE_DIR WORK_DIR [--pre-dump] [--parent P] [--exit]
 *   unit_ckpt --live-rounds CT DIR N
 * prints the stats as one JSON line.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "eh_time.h"
#include "tap.h"

#define DATA "tests/unit/data"

static char tmp[256];

static void print_stats(const struct ckpt_stats *s)
{
	printf("{\"wall_ms\":%.1f,\"have_stats\":%s,\"freezing_ms\":%.1f,\"frozen_ms\":%.1f,"
	       "\"memdump_ms\":%.1f,\"memwrite_ms\":%.1f,\"pages_scanned\":%llu,"
	       "\"pages_skipped_parent\":%llu,\"pages_written\":%llu,\"log_frozen_ms\":%.1f,"
	       "\"image_bytes\":%llu,\"image_files\":%llu}\n",
	       s->wall_ms, s->have_stats ? "true" : "false", s->freezing_ms, s->frozen_ms,
	       s->memdump_ms, s->memwrite_ms, (unsigned long long)s->pages_scanned,
	       (unsigned long long)s->pages_skipped_parent, (unsigned long long)s->pages_written,
	       s->log_frozen_ms, (unsigned long long)s->image_bytes,
	       (unsigned long long)s->image_files);
}

static int live(int argc, char **argv)
{
	struct ckpt_opts o = { .leave_running = true };
	struct ckpt_stats st[100];
	char err[2048];
	int r;

	if (!strcmp(argv[1], "--live-rounds") && argc == 5) {
		int n = atoi(argv[4]);

		r = ckpt_predump_rounds(argv[2], argv[3], n, &o, st, err, sizeof(err));
		if (r) {
			fprintf(stderr, "unit_ckpt: %s\n", err);
			return 1;
		}
		for (int i = 0; i <= n; i++)
			print_stats(&st[i]);
		return 0;
	}
	if (strcmp(argv[1], "--live") || argc < 5)
		return 2;
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--pre-dump"))
			o.pre_dump = true;
		else if (!strcmp(argv[i], "--exit"))
			o.leave_running = false;
		else if (!strcmp(argv[i], "--parent") && i + 1 < argc)
			o.parent_dir = argv[++i];
		else
			return 2;
	}
	r = ckpt_dump(argv[2], argv[3], argv[4], &o, st, err, sizeof(err));
	if (r) {
		fprintf(stderr, "unit_ckpt: %s\n", err);
		return 1;
	}
	print_stats(st);
	return 0;
}

static bool argv_is(const char **got, const char *const *want)
{
	for (int i = 0;; i++) {
		if (!got[i] || !want[i])
			return !got[i] && !want[i];
		if (strcmp(got[i], want[i]))
			return false;
	}
}

static void test_argv(void)
{
	const char *a[CKPT_ARGV_MAX];
	struct ckpt_opts o = { .leave_running = true };
	static const char *const full[] = {
		"runc", "--root", "/run/docker/runtime-runc/moby", "checkpoint", "--leave-running",
		"--image-path", "/s/ck", "--work-path", "/s/w", "abc123", NULL };
	static const char *const pre[] = {
		"/usr/sbin/runc", "--root", "/r", "checkpoint", "--pre-dump", "--parent-path", "../pd1",
		"--image-path", "/s/pd2", "--work-path", "/s/w2", "abc123", NULL };
	static const char *const stop[] = {
		"runc", "--root", "/run/docker/runtime-runc/moby", "checkpoint",
		"--image-path", "/s/ck", "--work-path", "/s/w", "eh-mud-7", NULL };

	tap_ok(ckpt_argv("abc123", "/s/ck", "/s/w", &o, a, CKPT_ARGV_MAX) == 10 && argv_is(a, full),
	       "argv: full dump, leave-running, Docker's runc root by default");
	o = (struct ckpt_opts){ .leave_running = true, .pre_dump = true, .parent_dir = "../pd1",
				.runc = "/usr/sbin/runc", .runc_root = "/r" };
	tap_ok(ckpt_argv("abc123", "/s/pd2", "/s/w2", &o, a, CKPT_ARGV_MAX) == 12 && argv_is(a, pre),
	       "argv: pre-dump with a parent (no --leave-running: a pre-dump never stops it)");
	o = (struct ckpt_opts){ 0 };
	tap_ok(ckpt_argv("eh-mud-7", "/s/ck", "/s/w", &o, a, CKPT_ARGV_MAX) == 9 && argv_is(a, stop),
	       "argv: a dump that stops the container, by name");
	tap_ok(ckpt_argv("-h", "/s/ck", "/s/w", &o, a, CKPT_ARGV_MAX) == -EINVAL &&
	       ckpt_argv("a b", "/s/ck", "/s/w", &o, a, CKPT_ARGV_MAX) == -EINVAL &&
	       ckpt_argv("abc", "--x", "/s/w", &o, a, CKPT_ARGV_MAX) == -EINVAL &&
	       ckpt_argv("abc", "/s/ck", "", &o, a, CKPT_ARGV_MAX) == -EINVAL &&
	       ckpt_argv("abc", "/s/ck", "/s/w", &o, a, 4) == -EINVAL,
	       "argv: an id or path runc would read as an option, an empty one, a short array: EINVAL");
	o.parent_dir = "-x";
	tap_ok(ckpt_argv("abc", "/s/ck", "/s/w", &o, a, CKPT_ARGV_MAX) == -EINVAL,
	       "argv: a parent path beginning with '-': EINVAL");
}

/* Samples recorded in a testbed node (docs/migration-speed.md, "Samples"). */
static void test_parsers(void)
{
	struct ckpt_stats s = { 0 };
	int r;

	r = ckpt_read_stats(DATA "/ckpt-full.stats-dump", &s);
	tap_ok(r == 0 && s.have_stats, "stats-dump of a full dump parses (%d)", r);
	tap_ok(s.pages_written > 7680 && s.pages_written < 9000 && s.pages_scanned >= s.pages_written &&
	       !s.pages_skipped_parent,
	       "full dump: 30 MiB of ballast written (%llu pages of %llu scanned, %llu in parent)",
	       (unsigned long long)s.pages_written, (unsigned long long)s.pages_scanned,
	       (unsigned long long)s.pages_skipped_parent);
	tap_ok(s.frozen_ms > 100 && s.frozen_ms < 10000 && s.freezing_ms < s.frozen_ms &&
	       s.memdump_ms > 0 && s.memdump_ms < s.frozen_ms,
	       "full dump: frozen %.1f ms, freezing %.1f ms, memdump %.1f ms", s.frozen_ms,
	       s.freezing_ms, s.memdump_ms);
	r = ckpt_read_dumplog(DATA "/ckpt-full.dump.log", &s);
	tap_ok(r == 0 && s.log_frozen_ms > 100 && s.log_frozen_ms < 10000,
	       "dump.log of the full dump: frozen %.1f ms by its timestamps (%d)", s.log_frozen_ms, r);

	memset(&s, 0, sizeof(s));
	r = ckpt_read_stats(DATA "/ckpt-final.stats-dump", &s);
	tap_ok(r == 0 && s.pages_skipped_parent > 7000 && s.pages_written < 1000,
	       "final dump after a pre-dump: %llu pages written, %llu left in the parent",
	       (unsigned long long)s.pages_written, (unsigned long long)s.pages_skipped_parent);
	memset(&s, 0, sizeof(s));
	r = ckpt_read_stats(DATA "/ckpt-pre.stats-dump", &s);
	tap_ok(r == 0 && s.pages_written > 7680, "pre-dump's stats: %llu pages written",
	       (unsigned long long)s.pages_written);

	tap_ok(ckpt_read_stats(DATA "/ckpt-full.dump.log", &s) == -EBADMSG &&
	       ckpt_read_stats(DATA "/nonexistent", &s) == -ENOENT,
	       "stats-dump: a file of another kind is EBADMSG, a missing one ENOENT");
}

/* A stats-dump cut short or with a lying length is refused, never over-read. */
static void test_stats_hostile(void)
{
	unsigned char b[64];
	char p[300];
	FILE *f;
	size_t n;
	struct ckpt_stats s;
	bool ok = true;

	f = fopen(DATA "/ckpt-full.stats-dump", "rb");
	n = f ? fread(b, 1, sizeof(b), f) : 0;
	if (f)
		fclose(f);
	snprintf(p, sizeof(p), "%s/cut", tmp);
	for (size_t k = 0; k < n; k++) {
		f = fopen(p, "wb");
		fwrite(b, 1, k, f);
		fclose(f);
		memset(&s, 0, sizeof(s));
		if (ckpt_read_stats(p, &s) != -EBADMSG)
			ok = false;
	}
	tap_ok(n > 20 && ok, "stats-dump cut at each of its %zu bytes: EBADMSG every time", n);
	if (n > 12) {
		b[8] = 0xff;	/* entry length far past the end */
		f = fopen(p, "wb");
		fwrite(b, 1, n, f);
		fclose(f);
	}
	tap_ok(ckpt_read_stats(p, &s) == -EBADMSG, "stats-dump with an entry length past its end: EBADMSG");
}

static void script(const char *name, const char *body)
{
	char p[300];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", tmp, name);
	f = fopen(p, "w");
	fprintf(f, "#!/bin/sh\n%s", body);
	fclose(f);
	chmod(p, 0755);
}

static bool file_has(const char *path, const char *what)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, what) != NULL;
}

static void test_fake_runc(void)
{
	char runc[300], img[300], work[300], err[1024], p[400], body[2048];
	struct ckpt_opts o = { .leave_running = true, .runc = runc, .timeout_ms = 20000 };
	struct ckpt_stats s;
	double t0, ms;
	int r;

	snprintf(img, sizeof(img), "%s/img", tmp);
	snprintf(work, sizeof(work), "%s/work", tmp);

	/* Success: the fake writes what CRIU would, from the recorded samples. */
	snprintf(body, sizeof(body),
		 "echo \"$@\" >> %s/args\n"
		 "while [ $# -gt 1 ]; do case $1 in --image-path) i=$2;; --work-path) w=$2;; esac; shift; done\n"
		 "cp %s/" DATA "/ckpt-full.stats-dump \"$w/stats-dump\"\n"
		 "cp %s/" DATA "/ckpt-full.dump.log \"$w/dump.log\"\n"
		 "head -c 12345 /dev/zero > \"$i/pages-1.img\"; echo '{}' > \"$i/descriptors.json\"\n"
		 "ln -s ../nowhere \"$i/parent\"\n",
		 tmp, getenv("PWD"), getenv("PWD"));
	script("runc-ok", body);
	snprintf(runc, sizeof(runc), "%s/runc-ok", tmp);
	r = ckpt_dump("abc", img, work, &o, &s, err, sizeof(err));
	tap_ok(r == 0, "fake runc that succeeds: 0 (%d: %s)", r, r ? err : "");
	tap_ok(s.have_stats && s.pages_written > 7680 && s.log_frozen_ms > 0 && s.wall_ms > 0,
	       "stats read from its work dir (%llu pages, frozen %.1f / %.1f ms, wall %.1f ms)",
	       (unsigned long long)s.pages_written, s.frozen_ms, s.log_frozen_ms, s.wall_ms);
	tap_ok(s.image_files == 2 && s.image_bytes == 12348,
	       "image dir: regular files counted, the parent link not (%llu files, %llu bytes)",
	       (unsigned long long)s.image_files, (unsigned long long)s.image_bytes);
	snprintf(p, sizeof(p), "%s/args", tmp);
	snprintf(body, sizeof(body), "--root /run/docker/runtime-runc/moby checkpoint --leave-running "
		 "--image-path %s --work-path %s abc\n", img, work);
	tap_ok(file_has(p, body), "runc got the argv, one word each (no shell)");

	/* Failure: runc's complaint and CRIU's errors are in the message. */
	snprintf(body, sizeof(body),
		 "while [ $# -gt 1 ]; do case $1 in --work-path) w=$2;; esac; shift; done\n"
		 "printf '(00.100000) Error (criu/cr-dump.c:2093): Dumping FAILED.\\n' > \"$w/dump.log\"\n"
		 "echo 'time=\"x\" level=error msg=\"criu failed: type NOTIFY errno 0\"' >&2\n"
		 "exit 1\n");
	script("runc-fail", body);
	snprintf(runc, sizeof(runc), "%s/runc-fail", tmp);
	r = ckpt_dump("abc", img, work, &o, &s, err, sizeof(err));
	tap_ok(r == -EIO && strstr(err, "exited with 1") && strstr(err, "criu failed: type NOTIFY") &&
	       strstr(err, "Dumping FAILED"),
	       "fake runc that fails: EIO, its stderr and CRIU's error in the message (%s)", err);

	/* Timeout: runc and what it started (CRIU) are killed, as a group. */
	snprintf(body, sizeof(body), "sleep 30 & echo $! > %s/child\necho started\nwait\n", tmp);
	script("runc-hang", body);
	snprintf(runc, sizeof(runc), "%s/runc-hang", tmp);
	o.timeout_ms = 500;
	t0 = eh_mono_ms();
	r = ckpt_dump("abc", img, work, &o, &s, err, sizeof(err));
	ms = eh_mono_ms() - t0;
	tap_ok(r == -ETIMEDOUT && ms < 3000 && strstr(err, "no end after 500 ms") &&
	       strstr(err, "started"),
	       "fake runc that hangs: ETIMEDOUT after %.0f ms (%s)", ms, err);
	{
		char cp[300], st[64] = "";
		FILE *f;
		int child = 0;

		snprintf(cp, sizeof(cp), "%s/child", tmp);
		f = fopen(cp, "r");
		if (f) {
			if (fscanf(f, "%d", &child) != 1)
				child = 0;
			fclose(f);
		}
		usleep(100000);
		snprintf(cp, sizeof(cp), "/proc/%d/stat", child);
		f = child ? fopen(cp, "r") : NULL;
		if (f) {
			if (!fgets(st, sizeof(st), f))
				st[0] = '\0';
			fclose(f);
		}
		tap_ok(child > 0 && (!f || strstr(st, ") Z ")),
		       "its child (pid %d) was killed with it (%s)", child, f ? "zombie" : "gone");
	}

	/* No such runc. */
	o.timeout_ms = 5000;
	snprintf(runc, sizeof(runc), "%s/no-such-runc", tmp);
	r = ckpt_dump("abc", img, work, &o, &s, err, sizeof(err));
	tap_ok(r == -ENOENT && strstr(err, "no-such-runc"), "no runc: ENOENT (%s)", err);

	/* Pre-copy: each round's parent, the final dump's --leave-running. */
	snprintf(p, sizeof(p), "%s/args", tmp);
	unlink(p);
	snprintf(runc, sizeof(runc), "%s/runc-ok", tmp);
	snprintf(img, sizeof(img), "%s/pc", tmp);
	{
		struct ckpt_stats rs[3];
		char want[4096];

		r = ckpt_predump_rounds("abc", img, 2, &o, rs, err, sizeof(err));
		snprintf(want, sizeof(want),
			 "--root /run/docker/runtime-runc/moby checkpoint --pre-dump --image-path %s/pd1 "
			 "--work-path %s/work-pd1 abc\n"
			 "--root /run/docker/runtime-runc/moby checkpoint --pre-dump --parent-path ../pd1 "
			 "--image-path %s/pd2 --work-path %s/work-pd2 abc\n"
			 "--root /run/docker/runtime-runc/moby checkpoint --leave-running --parent-path "
			 "../pd2 --image-path %s/ckpt --work-path %s/work-ckpt abc\n",
			 img, img, img, img, img, img);
		tap_ok(r == 0 && file_has(p, want) && rs[2].have_stats,
		       "2 pre-dump rounds then the final dump, each on the previous (%d %s)", r,
		       r ? err : "");
	}
}

/* The freezer over a fake /proc and cgroup tree (regular files). */
static void test_freezer(void)
{
	struct ckpt_cgroup cg;
	char p[1200], err[300], buf[64];
	FILE *f;
	int r, fd;
	ssize_t n;

	snprintf(p, sizeof(p), "mkdir -p %s/proc/42 %s/proc/43 %s/proc/44 %s/cg/docker/abc", tmp,
		 tmp, tmp, tmp);
	r = system(p);
	snprintf(p, sizeof(p), "%s/proc/42/cgroup", tmp);
	f = fopen(p, "w");
	fprintf(f, "0::/docker/abc\n");
	fclose(f);
	snprintf(p, sizeof(p), "%s/proc/43/cgroup", tmp);
	f = fopen(p, "w");
	fprintf(f, "12:freezer:/docker/abc\n11:memory:/docker/abc\n");
	fclose(f);
	snprintf(p, sizeof(p), "%s/proc/44/cgroup", tmp);
	f = fopen(p, "w");
	fprintf(f, "0::/docker/../../etc\n");
	fclose(f);
	snprintf(p, sizeof(p), "%s/proc", tmp);
	{
		char root[300];

		snprintf(root, sizeof(root), "%s/cg", tmp);
		r = ckpt_cgroup_of(42, p, root, &cg);
		tap_ok(r == 0 && !strcmp(cg.dir + strlen(root), "/docker/abc"),
		       "cgroup v2: the container's cgroup dir (%d %s)", r, cg.dir);
		tap_ok(ckpt_cgroup_of(43, p, root, &cg) == -ENOTSUP, "cgroup v1: -ENOTSUP");
		tap_ok(ckpt_cgroup_of(44, p, root, &cg) == -EINVAL, "a path with '..': refused");
		tap_ok(ckpt_cgroup_of(45, p, root, &cg) == -ENOENT, "no such process: -ENOENT");
		ckpt_cgroup_of(42, p, root, &cg);
	}
	snprintf(p, sizeof(p), "%s/cgroup.freeze", cg.dir);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	snprintf(p, sizeof(p), "%s/cgroup.events", cg.dir);
	f = fopen(p, "w");
	fprintf(f, "populated 1\nfrozen 1\n");
	fclose(f);
	r = ckpt_cgroup_freeze(&cg, true, 500, err, sizeof(err));
	snprintf(p, sizeof(p), "%s/cgroup.freeze", cg.dir);
	fd = open(p, O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	tap_ok(r == 0 && !strcmp(buf, "1"), "freeze: '1' written, frozen seen (%d %s)", r,
	       r ? err : "");
	{
		double t0 = eh_mono_ms();

		r = ckpt_cgroup_freeze(&cg, false, 300, err, sizeof(err));
		tap_ok(r == -ETIMEDOUT && strstr(err, "not thawed") && eh_mono_ms() - t0 >= 290,
		       "thaw that the kernel never confirms: -ETIMEDOUT after the deadline (%s)",
		       err);
	}
	snprintf(p, sizeof(p), "%s/cgroup.events", cg.dir);
	f = fopen(p, "w");
	fprintf(f, "populated 1\nfrozen 0\n");
	fclose(f);
	r = ckpt_cgroup_freeze(&cg, false, 500, err, sizeof(err));
	snprintf(p, sizeof(p), "%s/cgroup.freeze", cg.dir);
	fd = open(p, O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	tap_ok(r == 0 && buf[0] == '0', "thaw: '0' written, thawed seen");
	snprintf(p, sizeof(p), "%s/cg/none", tmp);
	snprintf(cg.dir, sizeof(cg.dir), "%.500s", p);
	r = ckpt_cgroup_freeze(&cg, true, 100, err, sizeof(err));
	tap_ok(r == -ENOENT && strstr(err, "cgroup.freeze"), "a cgroup that is gone: %s", err);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		return live(argc, argv);
	tap_plan(31);
	snprintf(tmp, sizeof(tmp), "/tmp/unit_ckpt.XXXXXX");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	test_argv();
	test_parsers();
	test_stats_hostile();
	test_fake_runc();
	test_freezer();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		if (system(cmd))
			tap_diag("could not remove %s", tmp);
	}
	return tap_done();
}
