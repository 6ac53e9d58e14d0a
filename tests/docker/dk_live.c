// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dk_live: the Docker client (control/docker) against a real dockerd, in TAP.
 *
 *	dk_live [--criu] SOCKET IMAGE [CMD...]
 *
 * IMAGE must be local and its command (or CMD) must keep running until stopped.
 * Containers get no network (NetworkMode "none"), so any dockerd will do, one
 * started with --bridge=none too. Everything it creates is named dk-live-<pid>*
 * and removed again. --criu adds checkpoint -> restore (needs CRIU and an
 * experimental dockerd: the testbed's nodes).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dk.h"
#include "tap.h"

#define TESTS_BASE	23
#define TESTS_CRIU	5

static const char *g_sock, *g_image;
static char **g_cmd;
static int g_ncmd;

static json_t *ct_config(const char *image)
{
	json_t *cfg, *cmd;

	cfg = json_pack("{s:s, s:{s:s}}", "Image", image, "HostConfig", "NetworkMode", "none");
	if (!cfg || !g_ncmd)
		return cfg;
	cmd = json_array();
	for (int i = 0; cmd && i < g_ncmd; i++)
		json_array_append_new(cmd, json_string(g_cmd[i]));
	json_object_set_new(cfg, "Cmd", cmd);
	return cfg;
}

/* State.<key> of a container, as a JSON value kept alive by *held */
static json_t *state(struct dk *d, const char *id, const char *key, json_t **held)
{
	json_decref(*held);
	*held = NULL;
	if (dk_inspect(d, id, held))
		return NULL;
	return json_object_get(json_object_get(*held, "State"), key);
}

static bool running(struct dk *d, const char *id)
{
	json_t *h = NULL;
	bool r = json_is_true(state(d, id, "Running", &h));

	json_decref(h);
	return r;
}

static void test_lifecycle(struct dk *d, const char *name)
{
	char id[65] = "", id2[65];
	json_t *cfg, *h = NULL, *cps = NULL;
	int err, code = -1;

	cfg = ct_config(g_image);
	err = dk_create(d, name, cfg, id);
	tap_ok(!err && strlen(id) == 64, "create %s from %s -> id %s (%d: %s)", name, g_image, id,
	       err, dk_err(d));
	err = dk_create(d, name, cfg, id2);
	tap_ok(err == -EEXIST && strstr(dk_err(d), "is already in use"),
	       "create of the same name: -EEXIST (%d: %s)", err, dk_err(d));
	json_decref(cfg);

	err = dk_start(d, name, NULL);
	tap_ok(!err && running(d, id) &&
	       json_integer_value(state(d, name, "Pid", &h)) > 0,
	       "start -> State.Running, State.Pid %lld (%d: %s)",
	       (long long)json_integer_value(state(d, name, "Pid", &h)), err, dk_err(d));
	err = dk_start(d, name, NULL);
	tap_ok(!err, "start of a running container: 0 (%d: %s)", err, dk_err(d));

	err = dk_pause(d, name);
	tap_ok(!err && json_is_true(state(d, name, "Paused", &h)) &&
	       !strcmp(json_string_value(state(d, name, "Status", &h)) ?: "", "paused"),
	       "pause -> State.Paused, Status paused (%d: %s)", err, dk_err(d));
	err = dk_pause(d, name);
	tap_ok(err == -EBUSY && strstr(dk_err(d), "is already paused"),
	       "pause of a paused container: -EBUSY, \"%s\" (%d)", dk_err(d), err);
	err = dk_unpause(d, name);
	tap_ok(!err && json_is_false(state(d, name, "Paused", &h)) && running(d, name),
	       "unpause -> running again (%d: %s)", err, dk_err(d));

	if (dk_experimental(d)) {
		err = dk_checkpoint_list(d, name, &cps);
		tap_ok(!err && json_is_array(cps) && !json_array_size(cps),
		       "checkpoint list of a container without any: [] (%d: %s)", err, dk_err(d));
		json_decref(cps);
	} else {
		tap_skip(1, "dockerd is not experimental: no checkpoint API");
	}

	err = dk_stop(d, name, 2);
	tap_ok(!err && !running(d, name), "stop -t 2 -> not running (%d: %s)", err, dk_err(d));
	err = dk_stop(d, name, 2);
	tap_ok(!err, "stop of a stopped container: 0 (%d: %s)", err, dk_err(d));
	err = dk_wait(d, name, &code);
	tap_ok(!err && code == json_integer_value(state(d, name, "ExitCode", &h)),
	       "wait -> exit code %d, State.ExitCode (%d: %s)", code, err, dk_err(d));
	err = dk_kill(d, name, "SIGKILL");
	tap_ok(err == -EBUSY && strstr(dk_err(d), "is not running"),
	       "kill of a stopped container: -EBUSY, \"%s\" (%d)", dk_err(d), err);

	err = dk_remove(d, name, false);
	tap_ok(!err, "remove (%d: %s)", err, dk_err(d));
	json_decref(h);
	h = NULL;
	err = dk_inspect(d, name, &h);
	{
		char want[256];

		snprintf(want, sizeof(want), "No such container: %s", name);
		tap_ok(err == -ENOENT && !h && !strcmp(dk_err(d), want),
		       "inspect after remove: -ENOENT, \"%s\" word for word (%d: %s)", want, err,
		       dk_err(d));
	}
	json_decref(h);
}

static void test_kill(struct dk *d, const char *name)
{
	char id[65];
	json_t *cfg = ct_config(g_image);
	int err, code = -1;

	err = dk_create(d, name, cfg, id) ?: dk_start(d, name, NULL) ?: dk_kill(d, name, "SIGKILL") ?:
	      dk_wait(d, name, &code);
	tap_ok(!err && code == 137, "kill SIGKILL of a running container -> wait gives 137 (%d, %d: %s)",
	       code, err, dk_err(d));
	json_decref(cfg);
	err = dk_remove(d, name, true);
	tap_ok(!err, "forced remove (%d: %s)", err, dk_err(d));
}

static void test_missing(struct dk *d, const char *name)
{
	char id[65], want[256];
	const char *ref = "edgehop-live/no-such-image:0";
	json_t *cfg = ct_config(ref), *j = NULL;
	int err;

	snprintf(want, sizeof(want), "No such image: %s", ref);
	err = dk_create(d, name, cfg, id);
	tap_ok(err == -ENOENT && !strcmp(dk_err(d), want),
	       "create from a missing image: -ENOENT, \"%s\" word for word (%d: %s)", want, err,
	       dk_err(d));
	json_decref(cfg);
	err = dk_image_inspect(d, ref, &j);
	tap_ok(err == -ENOENT && !j && strstr(dk_err(d), ref),
	       "image inspect of a missing image: -ENOENT, Docker's \"%s\" (%d)", dk_err(d), err);
}

/* --- save -> pipe -> load ------------------------------------------------------------- */

struct saver {
	const char *image;
	int fd;			/* the pipe's write end; closed when done */
	size_t bytes;
	int err;
	char msg[512];
};

static int pipe_sink(void *ctx, const void *buf, size_t len)
{
	struct saver *s = ctx;
	const char *p = buf;

	while (len) {
		ssize_t n = write(s->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
		s->bytes += n;
	}
	return 0;
}

/* its own client: one per thread */
static void *save_thread(void *arg)
{
	struct saver *s = arg;
	struct dk *d = NULL;

	s->err = dk_open(&d, g_sock);
	if (!s->err)
		s->err = dk_image_save(d, s->image, pipe_sink, s);
	snprintf(s->msg, sizeof(s->msg), "%s", dk_err(d));
	dk_close(d);
	close(s->fd);
	return NULL;
}

struct loader {
	int fd;
	size_t bytes;
};

static ssize_t pipe_source(void *ctx, void *buf, size_t cap)
{
	struct loader *l = ctx;
	ssize_t n;

	do
		n = read(l->fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	l->bytes += n;
	return n;
}

static const char *image_id(struct dk *d, const char *ref, char *out, size_t cap)
{
	json_t *j = NULL;
	const char *s;

	out[0] = '\0';
	if (!dk_image_inspect(d, ref, &j) && (s = json_string_value(json_object_get(j, "Id"))))
		snprintf(out, cap, "%s", s);
	json_decref(j);
	return out;
}

static void test_save_load(struct dk *d, const char *name)
{
	char id[65], img[80] = "", ref[128], loaded[256] = "", before[128], after[128];
	struct saver sv = { 0 };
	struct loader ld = { 0 };
	struct pollfd pfd;
	json_t *cfg = ct_config(g_image);
	pthread_t t;
	int p[2], err;

	snprintf(ref, sizeof(ref), "%s:1", name);
	err = dk_create(d, name, cfg, id) ?: dk_commit(d, name, ref, false, img);
	json_decref(cfg);
	tap_ok(!err && !strncmp(img, "sha256:", 7) &&
	       !strcmp(image_id(d, ref, before, sizeof(before)), img),
	       "commit %s as %s -> %s (%d: %s)", name, ref, img, err, dk_err(d));
	dk_remove(d, name, true);

	if (pipe(p)) {
		tap_ok(0, "pipe: %s", strerror(errno));
		tap_skip(2, "no pipe");
		return;
	}
	sv.image = ref;
	sv.fd = p[1];
	ld.fd = p[0];
	if (pthread_create(&t, NULL, save_thread, &sv)) {
		close(p[0]);
		close(p[1]);
		tap_ok(0, "save thread");
		tap_skip(2, "no save thread");
		return;
	}
	/*
	 * dockerd writes the whole image out before the first byte of the tar, so
	 * once a byte is in the pipe the image can go: the load must bring it back.
	 */
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	poll(&pfd, 1, 120000);
	err = dk_image_remove(d, ref, true);
	tap_ok(!err, "%s removed while its save streams (%d: %s)", ref, err, dk_err(d));

	err = dk_image_load(d, pipe_source, &ld, loaded, sizeof(loaded));
	close(p[0]);	/* a failed load must not leave the saver blocked on a full pipe */
	pthread_join(t, NULL);
	tap_ok(!err && !sv.err && sv.bytes == ld.bytes && ld.bytes > 0 && !strcmp(loaded, ref) &&
	       !strcmp(image_id(d, ref, after, sizeof(after)), before),
	       "save -> pipe -> load: %zu bytes streamed, \"Loaded image: %s\", same id %s "
	       "(load %d: %s; save %d: %s)", ld.bytes, loaded, after, err, err ? dk_err(d) : "",
	       sv.err, sv.msg);
	dk_image_remove(d, ref, true);
}

/* --- checkpoint -> restore (CRIU) ------------------------------------------------------- */

static void test_criu(struct dk *d, const char *name)
{
	char id[65];
	json_t *cfg = ct_config(g_image), *cps = NULL, *h = NULL;
	long long pid_before;
	int err;

	err = dk_create(d, name, cfg, id) ?: dk_start(d, name, NULL);
	json_decref(cfg);
	pid_before = json_integer_value(state(d, name, "Pid", &h));
	tap_ok(!err && pid_before > 0, "start %s (%d: %s)", name, err, dk_err(d));
	err = dk_checkpoint_create(d, name, "cp1", false);
	tap_ok(!err && !running(d, name), "checkpoint cp1 (exit) -> not running (%d: %s)", err,
	       dk_err(d));
	err = dk_checkpoint_list(d, name, &cps);
	tap_ok(!err && json_array_size(cps) == 1 &&
	       !strcmp(json_string_value(json_object_get(json_array_get(cps, 0), "Name")) ?: "", "cp1"),
	       "checkpoint list -> [cp1] (%d: %s)", err, dk_err(d));
	json_decref(cps);
	err = dk_start(d, name, "cp1");
	tap_ok(!err && running(d, name), "start from cp1 -> running (%d: %s)", err, dk_err(d));
	err = dk_checkpoint_delete(d, name, "cp1");
	tap_ok(!err, "checkpoint delete cp1 (%d: %s)", err, dk_err(d));
	json_decref(h);
	dk_remove(d, name, true);
}

int main(int argc, char **argv)
{
	struct dk *d = NULL;
	bool criu = false;
	char name[64];
	json_t *j = NULL;
	int err, i = 1;

	if (i < argc && !strcmp(argv[i], "--criu")) {
		criu = true;
		i++;
	}
	if (argc - i < 2) {
		fprintf(stderr, "usage: %s [--criu] SOCKET IMAGE [CMD...]\n", argv[0]);
		return 2;
	}
	g_sock = argv[i];
	g_image = argv[i + 1];
	g_cmd = argv + i + 2;
	g_ncmd = argc - i - 2;
	signal(SIGPIPE, SIG_IGN);

	tap_plan(TESTS_BASE + (criu ? TESTS_CRIU : 0));
	err = dk_open(&d, g_sock);
	tap_ok(!err, "open %s: Docker %s, API %s (%d: %s)", g_sock, d ? dk_server_version(d) : "",
	       d ? dk_api_version(d) : "", err, dk_err(d));
	if (err) {
		dk_close(d);
		return tap_done();
	}
	err = dk_image_inspect(d, g_image, &j);
	tap_ok(!err, "image %s is here (%d: %s)", g_image, err, dk_err(d));
	json_decref(j);

	snprintf(name, sizeof(name), "dk-live-%d", (int)getpid());
	test_lifecycle(d, name);
	snprintf(name, sizeof(name), "dk-live-%d-kill", (int)getpid());
	test_kill(d, name);
	snprintf(name, sizeof(name), "dk-live-%d-missing", (int)getpid());
	test_missing(d, name);
	snprintf(name, sizeof(name), "dk-live-%d-rt", (int)getpid());
	test_save_load(d, name);
	if (criu) {
		snprintf(name, sizeof(name), "dk-live-%d-criu", (int)getpid());
		test_criu(d, name);
	}
	dk_close(d);
	return tap_done();
}
