// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop-runc (control/runtime/) on the host, no Docker, no CRIU: its reading
 * of the command lines containerd's shim gives runc (recorded in a testbed node,
 * Docker 26.1.5 / containerd 1.7.24), the restore call a staged create becomes,
 * and the binary itself over a fake runc that records what it was asked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ehrt.h"
#include "tap.h"

#define ID  "ce1d7ef619f350c5122308b40a2d90a648bfc792cd7e9f726872a5b0c5bde73e"
#define B   "/run/containerd/io.containerd.runtime.v2.task/moby/" ID

static char *shim_create[] = { "edgehop-runc", "--root", "/var/run/docker/runtime-runc/moby",
	"--log", B "/log.json", "--log-format", "json", "create", "--bundle", B, "--pid-file",
	B "/init.pid", ID, NULL };
static char *shim_start[] = { "edgehop-runc", "--root", "/var/run/docker/runtime-runc/moby",
	"--log", B "/log.json", "--log-format", "json", "start", ID, NULL };

static int argc_of(char **v)
{
	int n = 0;

	while (v[n])
		n++;
	return n;
}

static char *joined(char **v)
{
	static char s[4096];
	size_t o = 0;

	s[0] = '\0';
	for (int i = 0; v[i] && o < sizeof(s) - 1; i++)
		o += snprintf(s + o, sizeof(s) - o, "%s%s", i ? " " : "", v[i]);
	return s;
}

static void test_parse(void)
{
	struct ehrt_plan p = { 0 };
	char err[256];
	int r;
	char *features[] = { "r", "features", NULL };
	char *version[] = { "r", "--version", NULL };
	char *del[] = { "r", "--root", "/x", "delete", "--force", ID, NULL };
	char *noid[] = { "r", "create", "--bundle", "/b", NULL };
	char *badid[] = { "r", "create", "--bundle", "/b", "../etc", NULL };
	char *noval[] = { "r", "--root", NULL };
	char *eq[] = { "r", "--root=/x", "create", "--bundle=/b", "--no-pivot", "abc", NULL };

	r = ehrt_parse(argc_of(shim_create), shim_create, &p, err, sizeof(err));
	tap_ok(!r &&
	       p.cmd == EHRT_RESTORE && p.id && !strcmp(p.id, ID) && p.sub == 7,
	       "the shim's create: a restore candidate, id and subcommand found (sub %d)", p.sub);
	tap_ok(!ehrt_parse(argc_of(shim_start), shim_start, &p, err, sizeof(err)) &&
	       p.cmd == EHRT_START_NOOP && p.id && !strcmp(p.id, ID),
	       "the shim's start: found with its id");
	tap_ok(!ehrt_parse(2, features, &p, err, sizeof(err)) && p.cmd == EHRT_PASS && p.sub == 1,
	       "runc features goes to runc");
	tap_ok(!ehrt_parse(2, version, &p, err, sizeof(err)) && p.cmd == EHRT_PASS && p.sub == -1,
	       "runc --version: no subcommand, goes to runc");
	tap_ok(!ehrt_parse(argc_of(del), del, &p, err, sizeof(err)) && p.cmd == EHRT_PASS,
	       "delete goes to runc");
	tap_ok(!ehrt_parse(argc_of(noid), noid, &p, err, sizeof(err)) && p.cmd == EHRT_PASS,
	       "create without an id: runc says what is missing");
	tap_ok(!ehrt_parse(argc_of(badid), badid, &p, err, sizeof(err)) && p.cmd == EHRT_PASS,
	       "create of '../etc': never a staging path, runc judges it");
	tap_ok(ehrt_parse(argc_of(noval), noval, &p, err, sizeof(err)) == -EINVAL &&
	       strstr(err, "--root"), "--root without a value: %s", err);
	tap_ok(!ehrt_parse(argc_of(eq), eq, &p, err, sizeof(err)) && p.cmd == EHRT_RESTORE &&
	       !strcmp(p.id, "abc"), "--opt=value forms: id 'abc' found");
	tap_ok(ehrt_valid_id(ID) && !ehrt_valid_id("") && !ehrt_valid_id("..") &&
	       !ehrt_valid_id("a/b") && !ehrt_valid_id("a b"), "container ids: hex ok, paths refused");
}

static void test_argv(void)
{
	struct ehrt_plan p;
	char *out[64], buf[8192], err[256];
	int n;
	char *keyring[] = { "r", "create", "--bundle", "/b", "--no-new-keyring",
			    "--preserve-fds", "0", "--console-socket", "/s", "c1", NULL };
	char *fds[] = { "r", "create", "--bundle", "/b", "--preserve-fds", "2", "c1", NULL };
	char *pidfd[] = { "r", "create", "--pidfd-socket", "/p", "c1", NULL };

	ehrt_parse(argc_of(shim_create), shim_create, &p, err, sizeof(err));
	n = ehrt_restore_argv(argc_of(shim_create), shim_create, &p, "runc", "/st", out, 64, buf,
			      sizeof(buf), err, sizeof(err));
	tap_ok(n > 0 && !strcmp(joined(out),
		"runc --root /var/run/docker/runtime-runc/moby --log " B "/log.json --log-format json "
		"restore --detach --no-subreaper --image-path /st/" ID "/img --work-path /st/" ID
		"/work --bundle " B " --pid-file " B "/init.pid " ID),
	       "the shim's create becomes: %s", n > 0 ? joined(out) : err);

	ehrt_parse(argc_of(keyring), keyring, &p, err, sizeof(err));
	n = ehrt_restore_argv(argc_of(keyring), keyring, &p, "runc", "/st", out, 64, buf,
			      sizeof(buf), err, sizeof(err));
	tap_ok(n > 0 && !strcmp(joined(out), "runc restore --detach --no-subreaper --image-path "
				"/st/c1/img --work-path /st/c1/work --bundle /b --console-socket /s c1"),
	       "--no-new-keyring and --preserve-fds 0 dropped, --console-socket kept: %s",
	       n > 0 ? joined(out) : err);

	ehrt_parse(argc_of(fds), fds, &p, err, sizeof(err));
	n = ehrt_restore_argv(argc_of(fds), fds, &p, "runc", "/st", out, 64, buf, sizeof(buf),
			      err, sizeof(err));
	tap_ok(n < 0 && strstr(err, "--preserve-fds 2"), "--preserve-fds 2 refused: %s", err);

	ehrt_parse(argc_of(pidfd), pidfd, &p, err, sizeof(err));
	n = ehrt_restore_argv(argc_of(pidfd), pidfd, &p, "runc", "/st", out, 64, buf, sizeof(buf),
			      err, sizeof(err));
	tap_ok(n < 0 && strstr(err, "--pidfd-socket"), "--pidfd-socket refused: %s", err);

	ehrt_parse(argc_of(shim_create), shim_create, &p, err, sizeof(err));
	n = ehrt_restore_argv(argc_of(shim_create), shim_create, &p, "runc", "/st", out, 8, buf,
			      sizeof(buf), err, sizeof(err));
	tap_ok(n == -E2BIG, "an argv that does not fit: -E2BIG (%d)", n);
}

/* ---- the binary over a fake runc ------------------------------------------ */

static char tmp[256], fake[300], calls[300], logf[300];

static int run(char **argv, const char *fail_with)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 2);
		setenv("EDGEHOP_RUNC", fake, 1);
		setenv("EDGEHOP_RESTORE_DIR", tmp, 1);
		setenv("FAKE_CALLS", calls, 1);
		if (fail_with)
			setenv("FAKE_FAIL", fail_with, 1);
		unsetenv("EDGEHOP_RUNC_WRAPPED");
		execv("build/bin/edgehop-runc", argv);
		_exit(126);
	}
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return 0;
}

static int exists(const char *fmt, const char *a)
{
	char p[600];

	snprintf(p, sizeof(p), fmt, tmp, a);
	return !access(p, F_OK);
}

static void test_binary(void)
{
	char got[8192], p[600];
	char *create[] = { "edgehop-runc", "--log", logf, "--log-format", "json", "create",
			   "--bundle", "/b", "--pid-file", "/b/init.pid", "c1", NULL };
	char *start[] = { "edgehop-runc", "--log", logf, "start", "c1", NULL };
	FILE *f;
	int rc;

	snprintf(tmp, sizeof(tmp), "/tmp/unit_runtime.XXXXXX");
	if (!mkdtemp(tmp)) {
		tap_skip(13, "mkdtemp");
		return;
	}
	snprintf(fake, sizeof(fake), "%s/runc", tmp);
	snprintf(calls, sizeof(calls), "%s/calls", tmp);
	snprintf(logf, sizeof(logf), "%s/log.json", tmp);
	f = fopen(fake, "w");
	fprintf(f, "#!/bin/sh\necho \"$*\" >> \"$FAKE_CALLS\"\n"
		   "[ -n \"$FAKE_FAIL\" ] && exit $FAKE_FAIL\nexit 0\n");
	fclose(f);
	chmod(fake, 0755);

	rc = run(create, NULL);
	slurp(calls, got, sizeof(got));
	snprintf(p, sizeof(p), "--log %s --log-format json create --bundle /b --pid-file "
		 "/b/init.pid c1\n", logf);
	tap_ok(rc == 0 && !strcmp(got, p), "nothing staged: runc create with the same arguments");

	snprintf(p, sizeof(p), "%s/c1", tmp);
	mkdir(p, 0700);
	strcat(p, "/img");
	mkdir(p, 0700);
	unlink(calls);
	rc = run(create, "3");
	slurp(calls, got, sizeof(got));
	tap_ok(rc == 3 && strstr(got, "restore --detach --no-subreaper --image-path ") &&
	       !exists("%s/%s/restored", "c1"), "a failed restore: runc's status (3), not marked");
	slurp(logf, got, sizeof(got));
	tap_ok(strstr(got, "\"level\":\"error\"") && strstr(got, "restore of c1") &&
	       strstr(got, "work/restore.log"), "...and said in the shim's log file: %.120s", got);

	unlink(calls);
	rc = run(create, NULL);
	slurp(calls, got, sizeof(got));
	tap_ok(rc == 0 && strstr(got, "restore --detach") && strstr(got, "/c1/work --bundle /b") &&
	       exists("%s/%s/restored", "c1") && exists("%s/%s/work", "c1"),
	       "staged: runc restore, marked restored: %s", got);

	unlink(calls);
	rc = run(start, NULL);
	tap_ok(rc == 0 && access(calls, F_OK) && !exists("%s/%s/restored", "c1") &&
	       exists("%s/%s/img.used", "c1") && !exists("%s/%s/img", "c1"),
	       "start after the restore: runc not called, the image used up");
	{
		/* marks: the failed restore's two, the good one's three, the start's. */
		static const char *const want[] = { EHRT_MARK_CREATE, EHRT_MARK_RESTORE,
			EHRT_MARK_CREATE, EHRT_MARK_RESTORE, EHRT_MARK_RESTORED, EHRT_MARK_START };
		char name[32], mp[600];
		double ms, prev = 0;
		int n = 0, ordered = 1;
		FILE *mf;

		snprintf(mp, sizeof(mp), "%s/c1/marks", tmp);
		mf = fopen(mp, "r");
		while (mf && fscanf(mf, "%31s %lf", name, &ms) == 2) {
			if (n >= 6 || strcmp(name, want[n]) || ms < prev || ms <= 0)
				ordered = 0;
			prev = ms;
			n++;
		}
		if (mf)
			fclose(mf);
		tap_ok(n == 6 && ordered, "marks: create, criu begin (and end when it succeeded), "
		       "start, in order, monotonic ms (%d lines)", n);
	}

	rc = run(create, NULL);
	slurp(calls, got, sizeof(got));
	unlink(calls);
	tap_ok(rc == 0 && strstr(got, " create --bundle") && !strstr(got, "restore"),
	       "a later create (docker stop; docker start) starts fresh: %s", got);
	rc = run(start, NULL);
	slurp(calls, got, sizeof(got));
	tap_ok(rc == 0 && strstr(got, "start c1"), "...and its start goes to runc");

	/* The early start: "pending" until the image is whole, "abort" on failure. */
	{
		char *create2[] = { "edgehop-runc", "--log", logf, "create", "--bundle", "/b", "c2",
				    NULL };
		char d2[400], pend[640];
		pid_t pid;
		int st;

		snprintf(d2, sizeof(d2), "%s/c2", tmp);
		mkdir(d2, 0700);
		snprintf(pend, sizeof(pend), "%s/pending", d2);
		close(open(pend, O_WRONLY | O_CREAT, 0600));
		snprintf(p, sizeof(p), "%s/abort", d2);
		close(open(p, O_WRONLY | O_CREAT, 0600));
		unlink(calls);
		rc = run(create2, NULL);
		tap_ok(rc == 1 && access(calls, F_OK), "pending + abort: create fails, runc not called");
		unlink(p);
		setenv("EDGEHOP_RESTORE_WAIT_S", "1", 1);
		rc = run(create2, NULL);
		unsetenv("EDGEHOP_RESTORE_WAIT_S");
		slurp(logf, got, sizeof(got));
		tap_ok(rc == 1 && access(calls, F_OK) && strstr(got, "not staged within 1 s"),
		       "pending that never ends: create fails at the deadline, said in the log");
		snprintf(p, sizeof(p), "%s/img", d2);
		mkdir(p, 0700);
		pid = fork();
		if (pid == 0)
			_exit(run(create2, NULL));
		/* Whenever the child looks: the image becomes whole, pending goes. */
		unlink(pend);
		waitpid(pid, &st, 0);
		slurp(calls, got, sizeof(got));
		tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(got, "restore --detach") &&
		       strstr(got, "/c2/img"), "pending removed: the waiting create restores: %s", got);
	}

	/* Named runc on a PATH: it would run itself. */
	{
		pid_t pid = fork();
		int st;

		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);

			dup2(fd, 2);
			setenv("EDGEHOP_RUNC_WRAPPED", "1", 1);
			execv("build/bin/edgehop-runc", start);
			_exit(126);
		}
		waitpid(pid, &st, 0);
		tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 127, "calling itself: refused (127)");
	}
	snprintf(p, sizeof(p), "rm -rf %s", tmp);
	rc = system(p);
	tap_ok(rc == 0, "scratch dir removed");
}

int main(void)
{
	tap_plan(10 + 5 + 13);
	test_parse();
	test_argv();
	test_binary();
	return tap_done();
}
