// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Checkpoint around containerd's content store (ckpt.h; numbers in
 * docs/migration-speed.md).
 *
 * runc is spawned with posix_spawnp() in a process group of its own, so
 * that a deadline kills CRIU with it (runc runs "criu swrk" as its child).
 * The agent is multi-threaded: nothing here calls chdir() or touches
 * signal dispositions; posix_spawn puts SIGPIPE back to its default in the
 * child (the agent ignores it, and an ignored signal survives exec).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "eh_time.h"

/* CRIU's image framing (criu/include/magic.h): the stats file is a service image. */
#define IMG_COMMON_MAGIC	0x54564319u
#define IMG_SERVICE_MAGIC	0x55105940u
#define STATS_MAGIC		0x57093306u
#define STATS_MAX		4096	/* a dump_stats_entry is < 100 bytes */
#define OUT_TAIL		1024	/* runc's output kept for the message */
#define LOG_ERR_TAIL		400	/* CRIU's last error lines kept */

extern char **environ;

static void fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* An argument runc's CLI could read as an option, or an empty one. */
static bool bad_arg(const char *s)
{
	return !s || !*s || *s == '-';
}

static bool bad_id(const char *id)
{
	if (bad_arg(id) || strlen(id) > 128)
		return true;
	for (const char *p = id; *p; p++)
		if (!(*p >= '0' && *p <= '9') && !(*p >= 'a' && *p <= 'z') &&
		    !(*p >= 'A' && *p <= 'Z') && *p != '_' && *p != '.' && *p != '-')
			return true;
	return false;
}

int ckpt_argv(const char *ct_id, const char *image_dir, const char *work_dir,
	      const struct ckpt_opts *o, const char **argv, size_t cap)
{
	size_t n = 0;

	if (cap < CKPT_ARGV_MAX || bad_id(ct_id) || bad_arg(image_dir) || bad_arg(work_dir) ||
	    (o->parent_dir && bad_arg(o->parent_dir)) || (o->runc && !*o->runc) ||
	    (o->runc_root && bad_arg(o->runc_root)))
		return -EINVAL;
	argv[n++] = o->runc ?: "runc";
	argv[n++] = "--root";
	argv[n++] = o->runc_root ?: CKPT_RUNC_ROOT;
	argv[n++] = "checkpoint";
	if (o->pre_dump)
		argv[n++] = "--pre-dump";	/* implies leaving it running */
	else if (o->leave_running)
		argv[n++] = "--leave-running";
	if (o->parent_dir) {
		argv[n++] = "--parent-path";
		argv[n++] = o->parent_dir;
	}
	argv[n++] = "--image-path";
	argv[n++] = image_dir;
	argv[n++] = "--work-path";
	argv[n++] = work_dir;
	argv[n++] = ct_id;
	argv[n] = NULL;
	return n;
}

/*
 * Run @argv with stdout+stderr into @out (its last @outcap - 1 bytes, NUL-
 * terminated) under @timeout_ms. Returns 0 with the wait status in
 * *@status, -ETIMEDOUT after killing the process group, or -errno.
 */
static int run(const char *const *argv, int timeout_ms, char *out, size_t outcap, int *status)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	double deadline = eh_mono_ms() + timeout_ms;
	size_t len = 0;
	int p[2], r, ws;
	bool eof = false;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				      POSIX_SPAWN_SETSIGDEF);
	r = posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	if (r) {
		close(p[0]);
		return -r;
	}
	for (;;) {
		double left = deadline - eh_mono_ms();
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		char buf[4096];
		ssize_t k;

		if (left <= 0)
			break;
		if (eof) {
			/* Output closed: wait for the exit itself. */
			r = waitpid(pid, &ws, WNOHANG);
			if (r == pid) {
				close(p[0]);
				*status = ws;
				return 0;
			}
			if (r < 0 && errno != EINTR) {
				r = -errno;
				close(p[0]);
				return r;
			}
			usleep(5000);
			continue;
		}
		r = poll(&pf, 1, left > 1000 ? 1000 : (int)left + 1);
		if (r <= 0)
			continue;
		k = read(p[0], buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			eof = true;
			continue;
		}
		/* Keep the tail: the error is at the end. */
		if ((size_t)k >= outcap - 1) {
			memcpy(out, buf + k - (outcap - 1), outcap - 1);
			len = outcap - 1;
		} else {
			if (len + k > outcap - 1) {
				size_t drop = len + k - (outcap - 1);

				memmove(out, out + drop, len - drop);
				len -= drop;
			}
			memcpy(out + len, buf, k);
			len += k;
		}
		out[len] = '\0';
	}
	kill(-pid, SIGKILL);
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	close(p[0]);
	return -ETIMEDOUT;
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Output of a program as one line: newlines and runs of blanks squeezed. */
static void squeeze(char *str)
{
	char *w = str, *s = str;
	bool sp = true;

	for (; *s; s++) {
		char c = (*s == '\n' || *s == '\r' || *s == '\t') ? ' ' : *s;

		if (c == ' ' && sp)
			continue;
		sp = c == ' ';
		*w++ = c;
	}
	if (w > str && w[-1] == ' ')
		w--;
	*w = '\0';
}

/* The last "Error" lines of CRIU's log, one line. */
static void log_errors(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	char line[512];

	buf[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		size_t bl, ll;

		if (!strstr(line, "Error") && !strstr(line, "error"))
			continue;
		line[strcspn(line, "\n")] = '\0';
		bl = strlen(buf);
		ll = strlen(line);
		/* Keep the last lines that fit. */
		while (bl && bl + ll + 3 > cap) {
			char *nx = strstr(buf, " | ");

			if (!nx) {
				bl = 0;
				buf[0] = '\0';
				break;
			}
			memmove(buf, nx + 3, strlen(nx + 3) + 1);
			bl = strlen(buf);
		}
		if (ll + 3 > cap)
			continue;
		if (bl) {
			memcpy(buf + bl, " | ", 3);
			bl += 3;
		}
		memcpy(buf + bl, line, ll + 1);
	}
	fclose(f);
}

/* --- CRIU's stats-dump and dump.log ---------------------------------------- */

static int varint(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*off >= len)
			return -EBADMSG;
		uint8_t b = p[(*off)++];

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -EBADMSG;
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* stats.proto: dump_stats_entry, every field a varint (times in microseconds). */
static int parse_dump_entry(const uint8_t *p, size_t len, struct ckpt_stats *st)
{
	size_t off = 0;

	while (off < len) {
		uint64_t key, v;

		if (varint(p, len, &off, &key) || (key & 7) != 0 || varint(p, len, &off, &v))
			return -EBADMSG;
		switch (key >> 3) {
		case 1: st->freezing_ms = v / 1e3; break;
		case 2: st->frozen_ms = v / 1e3; break;
		case 3: st->memdump_ms = v / 1e3; break;
		case 4: st->memwrite_ms = v / 1e3; break;
		case 5: st->pages_scanned = v; break;
		case 6: st->pages_skipped_parent = v; break;
		case 7: st->pages_written = v; break;
		case 9: st->pages_lazy = v; break;
		default: break;	/* irmap, page pipes, shmem pages */
		}
	}
	return 0;
}

int ckpt_read_stats(const char *path, struct ckpt_stats *st)
{
	uint8_t buf[STATS_MAX];
	size_t len, off = 0;
	FILE *f = fopen(path, "rb");

	if (!f)
		return -errno;
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (len >= 4 && (le32(buf) == IMG_SERVICE_MAGIC || le32(buf) == IMG_COMMON_MAGIC))
		off = 4;
	if (len < off + 8 || le32(buf + off) != STATS_MAGIC)
		return -EBADMSG;
	off += 4;
	uint32_t elen = le32(buf + off);

	off += 4;
	if (elen > len - off)
		return -EBADMSG;
	len = off + elen;
	/* stats_entry { optional dump_stats_entry dump = 1; optional restore = 2; } */
	while (off < len) {
		uint64_t key, sub;

		if (varint(buf, len, &off, &key) || (key & 7) != 2 || varint(buf, len, &off, &sub) ||
		    sub > len - off)
			return -EBADMSG;
		if (key >> 3 == 1) {
			if (parse_dump_entry(buf + off, sub, st))
				return -EBADMSG;
			st->have_stats = true;
		}
		off += sub;
	}
	return st->have_stats ? 0 : -EBADMSG;
}

/* "(00.123456) text": seconds since CRIU started. */
static bool log_time(const char *line, double *ms)
{
	char *end;
	double s;

	if (line[0] != '(')
		return false;
	s = strtod(line + 1, &end);
	if (end == line + 1 || *end != ')')
		return false;
	*ms = s * 1e3;
	return true;
}

int ckpt_read_dumplog(const char *path, struct ckpt_stats *st)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	double t, t0 = -1;

	st->log_frozen_ms = -1;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!log_time(line, &t))
			continue;
		if (t0 < 0 && strstr(line, "freezing") && !strstr(line, "nfreezing"))
			t0 = t;
		else if (t0 >= 0 && strstr(line, "Unfreezing tasks")) {
			st->log_frozen_ms = t - t0;
			break;
		}
	}
	fclose(f);
	return st->log_frozen_ms < 0 ? -EBADMSG : 0;
}

static void image_size(const char *dir, struct ckpt_stats *st)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat sb;

		if (!fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) && S_ISREG(sb.st_mode)) {
			st->image_bytes += sb.st_size;
			st->image_files++;
		}
	}
	closedir(d);
}

/* --- the dump ---------------------------------------------------------------- */

int ckpt_dump(const char *ct_id, const char *image_dir, const char *work_dir,
	      const struct ckpt_opts *o, struct ckpt_stats *st, char *err, size_t errlen)
{
	const char *argv[CKPT_ARGV_MAX];
	struct ckpt_stats local;
	char out[OUT_TAIL], path[4200], crit[LOG_ERR_TAIL];
	int r, ws = 0, tmo = o->timeout_ms > 0 ? o->timeout_ms : CKPT_TIMEOUT_MS;
	double t0;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	st->log_frozen_ms = -1;
	if (ckpt_argv(ct_id, image_dir, work_dir, o, argv, CKPT_ARGV_MAX) < 0) {
		fail(err, errlen, "checkpoint of \"%s\": a container id or path that is empty or "
		     "begins with '-'", ct_id ?: "");
		return -EINVAL;
	}
	r = mkdir_p(image_dir);
	if (!r)
		r = mkdir_p(work_dir);
	if (r) {
		fail(err, errlen, "checkpoint of %.12s: mkdir %s: %s", ct_id, image_dir, strerror(-r));
		return r;
	}
	/* A reused work dir: stale logs and stats would be read as this dump's. */
	for (const char *const *f = (const char *const[]){ "dump.log", "pre-dump.log", "stats-dump",
							     NULL }; *f; f++) {
		snprintf(path, sizeof(path), "%s/%s", work_dir, *f);
		unlink(path);
	}
	t0 = eh_mono_ms();
	r = run(argv, tmo, out, sizeof(out), &ws);
	st->wall_ms = eh_mono_ms() - t0;
	squeeze(out);
	snprintf(path, sizeof(path), "%s/%s", work_dir, o->pre_dump ? "pre-dump.log" : "dump.log");
	if (access(path, F_OK))
		snprintf(path, sizeof(path), "%s/dump.log", work_dir);
	if (r == -ETIMEDOUT) {
		log_errors(path, crit, sizeof(crit));
		fail(err, errlen, "%s checkpoint of %.12s: no end after %d ms, killed (the container "
		     "may stay frozen): %s%s%s", argv[0], ct_id, tmo, out, *crit ? "; CRIU: " : "",
		     crit);
		return r;
	}
	if (r) {
		fail(err, errlen, "running %s: %s", argv[0], strerror(-r));
		return r;
	}
	if (!WIFEXITED(ws) || WEXITSTATUS(ws)) {
		log_errors(path, crit, sizeof(crit));
		if (WIFEXITED(ws))
			fail(err, errlen, "%s checkpoint of %.12s exited with %d: %s%s%s", argv[0],
			     ct_id, WEXITSTATUS(ws), out, *crit ? "; CRIU: " : "", crit);
		else
			fail(err, errlen, "%s checkpoint of %.12s killed by signal %d: %s", argv[0],
			     ct_id, WTERMSIG(ws), out);
		return WIFEXITED(ws) && WEXITSTATUS(ws) == 127 ? -ENOENT : -EIO;
	}
	ckpt_read_dumplog(path, st);
	snprintf(path, sizeof(path), "%s/stats-dump", work_dir);
	ckpt_read_stats(path, st);
	image_size(image_dir, st);
	return 0;
}

int ckpt_predump_rounds(const char *ct_id, const char *dir, int rounds,
			const struct ckpt_opts *o, struct ckpt_stats *st, char *err, size_t errlen)
{
	char img[4096], work[4096], parent[32];
	struct ckpt_opts ro = *o;
	int r;

	if (rounds < 1 || rounds > 99) {
		fail(err, errlen, "pre-dump rounds: %d (1..99)", rounds);
		return -EINVAL;
	}
	for (int i = 1; i <= rounds + 1; i++) {
		bool last = i == rounds + 1;

		ro.pre_dump = !last;
		ro.parent_dir = i > 1 ? parent : NULL;
		if (last)
			snprintf(img, sizeof(img), "%s/ckpt", dir);
		else
			snprintf(img, sizeof(img), "%s/pd%d", dir, i);
		snprintf(work, sizeof(work), "%s/work-%s", dir, strrchr(img, '/') + 1);
		r = ckpt_dump(ct_id, img, work, &ro, st ? &st[i - 1] : NULL, err, errlen);
		if (r)
			return r;
		snprintf(parent, sizeof(parent), "../pd%d", i);
	}
	return 0;
}

/* ---- the cgroup v2 freezer --------------------------------------------------- */

int ckpt_cgroup_of(int pid, const char *proc, const char *root, struct ckpt_cgroup *cg)
{
	char path[128], line[600];
	int r = -ENOTSUP;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/cgroup", proc ?: "/proc", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* cgroup v2: one line "0::/path"; v1 lines name their controllers. */
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "0::/", 4))
			continue;
		if (strstr(line, "/..") || strlen(line + 3) > 400) {
			r = strstr(line, "/..") ? -EINVAL : -ENAMETOOLONG;
			break;
		}
		r = snprintf(cg->dir, sizeof(cg->dir), "%s%.400s", root ?: "/sys/fs/cgroup",
			     line + 3) >= (int)sizeof(cg->dir) ? -ENAMETOOLONG : 0;
		break;
	}
	fclose(f);
	return r;
}

/* cgroup.events says "frozen 0|1": -1 if it cannot be read. */
static int events_frozen(int fd)
{
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	const char *p;

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "frozen ");
	return p ? p[7] == '1' : -1;
}

int ckpt_cgroup_freeze(const struct ckpt_cgroup *cg, bool frozen, int timeout_ms,
		       char *err, size_t errlen)
{
	char path[600];
	double end = eh_mono_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
	int fd, ev, state, r = 0;

	snprintf(path, sizeof(path), "%s/cgroup.freeze", cg->dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, frozen ? "1" : "0", 1) != 1) {
		r = -errno;
		fail(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return r;
	}
	close(fd);
	snprintf(path, sizeof(path), "%s/cgroup.events", cg->dir);
	ev = open(path, O_RDONLY | O_CLOEXEC);
	if (ev < 0) {
		r = -errno;
		fail(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	/*
	 * The kernel wakes pollers of cgroup.events (POLLPRI) when "frozen"
	 * changes; a regular file (the unit test's) polls readable at once,
	 * hence the short sleep when nothing changed.
	 */
	while ((state = events_frozen(ev)) != (int)frozen) {
		struct pollfd pfd = { .fd = ev, .events = POLLPRI };
		double left = end - eh_mono_ms();

		if (state < 0 || left <= 0) {
			r = state < 0 ? -EIO : -ETIMEDOUT;
			fail(err, errlen, "%s: not %s after %d ms", path,
			     frozen ? "frozen" : "thawed", timeout_ms);
			break;
		}
		if (poll(&pfd, 1, (int)left + 1) > 0 && events_frozen(ev) != (int)frozen)
			usleep(1000);
	}
	close(ev);
	return r;
}

int ckpt_thaw(const char *ct_id, const struct ckpt_opts *o, char *err, size_t errlen)
{
	const char *argv[] = { o->runc ?: "runc", "--root", o->runc_root ?: CKPT_RUNC_ROOT,
			       "resume", ct_id, NULL };
	char out[OUT_TAIL];
	int ws = 0, r;

	if (bad_id(ct_id)) {
		fail(err, errlen, "resume: bad container id");
		return -EINVAL;
	}
	r = run(argv, o->timeout_ms > 0 ? o->timeout_ms : CKPT_TIMEOUT_MS, out, sizeof(out), &ws);
	squeeze(out);
	if (r) {
		fail(err, errlen, "%s resume %.12s: %s", argv[0], ct_id, strerror(-r));
		return r;
	}
	if (!WIFEXITED(ws) || WEXITSTATUS(ws)) {
		fail(err, errlen, "%s resume %.12s failed: %s", argv[0], ct_id, out);
		return -EIO;
	}
	return 0;
}
