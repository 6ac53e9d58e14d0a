// SPDX-License-Identifier: GPL-2.0
/*
 * edgehop-runc: runc for Docker, except that the create of a container the agent
 * staged a CRIU image for is a restore of that image (see ehrt.h).
 *
 * Docker's daemon.json names it as a runtime:
 *	"runtimes": { "edgehop": { "path": "/usr/local/sbin/edgehop-runc" } }
 * and the agent creates CT-y with HostConfig.Runtime = "edgehop". Every other
 * call, and every container without a staged image, goes to runc unchanged
 * (execvp: same process, same descriptors, same exit status).
 *
 * Environment (tests): EDGEHOP_RUNC (the runc to run, default "runc" on PATH),
 * EDGEHOP_RESTORE_DIR (the staging root, default EHRT_STAGE_DIR).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ehrt.h"

static const char *log_path(int argc, char *argv[], int sub)
{
	for (int i = 1; i < sub && i < argc; i++) {
		if (!strcmp(argv[i], "--log") && i + 1 < sub)
			return argv[i + 1];
		if (!strncmp(argv[i], "--log=", 6))
			return argv[i] + 6;
	}
	return NULL;
}

/*
 * An error goes to stderr and, like runc's own, as a JSON line into the --log
 * file the shim gave: containerd puts that file's last error into the message
 * Docker returns ("OCI runtime create failed: ...").
 */
static void report(const char *log, const char *msg)
{
	char ts[64], line[1400];
	time_t t = time(NULL);
	struct tm tm;
	int fd, n, o = 0;

	fprintf(stderr, "%s\n", msg);
	if (!log)
		return;
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	/* JSON string escaping of the few characters a message may hold. */
	n = snprintf(line, sizeof(line), "{\"level\":\"error\",\"msg\":\"");
	for (const char *s = msg; *s && n + o + 8 < (int)sizeof(line); s++) {
		if (*s == '"' || *s == '\\')
			line[n + o++] = '\\';
		line[n + o++] = (*s == '\n' || *s == '\t') ? ' ' : *s;
	}
	n += o;
	n += snprintf(line + n, sizeof(line) - n, "\",\"time\":\"%s\"}\n", ts);
	fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, line, n) < 0) {
			/* stderr has it already */
		}
		close(fd);
	}
}

static int is_dir(const char *p)
{
	struct stat st;

	return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int exists(const char *stage, const char *id, const char *name)
{
	char p[4200];

	snprintf(p, sizeof(p), "%s/%s/%s", stage, id, name);
	return !access(p, F_OK);
}

/*
 * The agent may start CT-y before its image is complete (Docker's own start
 * then overlaps the transfer): it leaves <stage>/<id>/pending until the image
 * is whole, or adds "abort". Waits for either (inotify on the staging dir),
 * up to EDGEHOP_RESTORE_WAIT_S (default EHRT_WAIT_S). 0, or 1 with the reason
 * reported.
 */
static int wait_staged(const char *stage, const char *id, const char *log)
{
	const char *w = getenv("EDGEHOP_RESTORE_WAIT_S");
	long secs = w && *w ? strtol(w, NULL, 10) : EHRT_WAIT_S;
	struct timespec end, now;
	char dir[4200], msg[1024];
	int fd, wd;

	snprintf(dir, sizeof(dir), "%s/%s", stage, id);
	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	wd = fd < 0 ? -1 : inotify_add_watch(fd, dir, IN_CREATE | IN_DELETE | IN_MOVED_TO |
					     IN_MOVED_FROM | IN_DELETE_SELF);
	if (wd < 0) {
		snprintf(msg, sizeof(msg), "edgehop-runc: watching %.900s: %s", dir, strerror(errno));
		report(log, msg);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += secs;
	/* Checked after the watch exists: no change can slip between. */
	while (exists(stage, id, "pending") && !exists(stage, id, "abort")) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char ev[4096];
		long ms;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0) {
			snprintf(msg, sizeof(msg), "edgehop-runc: the image of %s was not staged "
				 "within %ld s", id, secs);
			report(log, msg);
			close(fd);
			return 1;
		}
		if (poll(&pfd, 1, ms > 60000 ? 60000 : (int)ms) > 0)
			while (read(fd, ev, sizeof(ev)) > 0)
				;
	}
	close(fd);
	if (exists(stage, id, "abort")) {
		snprintf(msg, sizeof(msg), "edgehop-runc: the migration of %s was aborted", id);
		report(log, msg);
		return 1;
	}
	return 0;
}

/*
 * Appends "<what> <ms>\n" (CLOCK_MONOTONIC, the clock the agent reads too) to
 * <stage>/<id>/marks. Best effort: a mark that cannot be written is missing
 * from the agent's breakdown, it never fails a restore.
 */
static void mark(const char *stage, const char *id, const char *what)
{
	struct timespec ts;
	char p[4200], line[96];
	int fd, n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(line, sizeof(line), "%s %.3f\n", what,
		     ts.tv_sec * 1e3 + ts.tv_nsec / 1e6);
	snprintf(p, sizeof(p), "%s/%s/marks", stage, id);
	fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	/* One write of a short line to an O_APPEND file: lines never interleave. */
	if (write(fd, line, n) != n) {
		/* best effort, see ehrt.h */
	}
	close(fd);
}

static void exec_runc(const char *runc, char *argv[])
{
	argv[0] = (char *)runc;
	execvp(runc, argv);
	fprintf(stderr, "edgehop-runc: cannot run %s: %s\n", runc, strerror(errno));
	exit(127);
}

static int restore(int argc, char *argv[], const struct ehrt_plan *p, const char *runc,
		   const char *stage)
{
	const char *log = log_path(argc, argv, p->sub);
	char *rargv[256], buf[2 * 4096], err[512], path[4200], msg[1024];
	int n, status;
	pid_t pid;

	n = ehrt_restore_argv(argc, argv, p, runc, stage, rargv, 256, buf, sizeof(buf), err,
			      sizeof(err));
	if (n < 0) {
		report(log, err);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s/work", stage, p->id);
	if (mkdir(path, 0700) && errno != EEXIST) {
		snprintf(msg, sizeof(msg), "edgehop-runc: mkdir %.900s: %s", path, strerror(errno));
		report(log, msg);
		return 1;
	}
	mark(stage, p->id, EHRT_MARK_RESTORE);
	pid = fork();
	if (pid < 0) {
		snprintf(msg, sizeof(msg), "edgehop-runc: fork: %s", strerror(errno));
		report(log, msg);
		return 1;
	}
	if (pid == 0) {
		execvp(runc, rargv);
		fprintf(stderr, "edgehop-runc: cannot run %s: %s\n", runc, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			snprintf(msg, sizeof(msg), "edgehop-runc: waitpid: %s", strerror(errno));
			report(log, msg);
			return 1;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		/* runc has logged CRIU's failure and the restore.log path itself. */
		snprintf(msg, sizeof(msg), "edgehop-runc: restore of %s from %s/%s/img failed "
			 "(CRIU's log: %s/%s/work/restore.log)", p->id, stage, p->id, stage, p->id);
		report(log, msg);
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}
	mark(stage, p->id, EHRT_MARK_RESTORED);
	snprintf(path, sizeof(path), "%s/%s/restored", stage, p->id);
	n = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (n < 0) {
		/* The container runs, but the shim's start would fail: say why. */
		snprintf(msg, sizeof(msg), "edgehop-runc: %.900s: %s", path, strerror(errno));
		report(log, msg);
		return 1;
	}
	close(n);
	return 0;
}

/*
 * The shim's start after a restore: the container runs already. The image is
 * used up: it is renamed so that a later create (docker stop, docker start)
 * starts the container fresh instead of restoring the old snapshot again.
 */
static int start_restored(const char *stage, const char *id)
{
	char m[4200], img[4200], used[4200];

	snprintf(m, sizeof(m), "%s/%s/restored", stage, id);
	if (unlink(m))
		return -1;
	snprintf(img, sizeof(img), "%s/%s/img", stage, id);
	snprintf(used, sizeof(used), "%s/%s/img.used", stage, id);
	if (rename(img, used) && errno != ENOENT)
		fprintf(stderr, "edgehop-runc: %s: %s (left in place)\n", img, strerror(errno));
	return 0;
}

int main(int argc, char *argv[])
{
	const char *runc = getenv("EDGEHOP_RUNC"), *stage = getenv("EDGEHOP_RESTORE_DIR");
	struct ehrt_plan p;
	char err[256], img[4200];

	if (!runc || !*runc)
		runc = "runc";
	if (!stage || !*stage)
		stage = EHRT_STAGE_DIR;
	/* Named "runc" on a PATH before the real one, we would call ourselves. */
	if (getenv("EDGEHOP_RUNC_WRAPPED")) {
		fprintf(stderr, "edgehop-runc: %s is edgehop-runc itself: set EDGEHOP_RUNC "
			"to the real runc\n", runc);
		return 127;
	}
	setenv("EDGEHOP_RUNC_WRAPPED", "1", 1);

	if (ehrt_parse(argc, argv, &p, err, sizeof(err)) || p.cmd == EHRT_PASS)
		exec_runc(runc, argv);

	snprintf(img, sizeof(img), "%s/%s/img", stage, p.id);
	if (p.cmd == EHRT_RESTORE && (exists(stage, p.id, "pending") || is_dir(img)))
		mark(stage, p.id, EHRT_MARK_CREATE);
	if (p.cmd == EHRT_RESTORE && exists(stage, p.id, "pending")) {
		if (wait_staged(stage, p.id, log_path(argc, argv, p.sub)))
			return 1;
		if (!is_dir(img)) {
			char msg[600];

			snprintf(msg, sizeof(msg), "edgehop-runc: no image staged for %.128s", p.id);
			report(log_path(argc, argv, p.sub), msg);
			return 1;
		}
	}
	if (p.cmd == EHRT_RESTORE && is_dir(img) && !exists(stage, p.id, "restored"))
		return restore(argc, argv, &p, runc, stage);
	if (p.cmd == EHRT_START_NOOP && !start_restored(stage, p.id)) {
		mark(stage, p.id, EHRT_MARK_START);
		return 0;
	}
	exec_runc(runc, argv);
	return 127;
}
