// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The Docker client (control/docker) against Engine API answers recorded from
 * dockerd 20.10.24 (Debian 12's docker.io), served by the fake dockerd of
 * fake_dockerd.h (an HTTP/1.1 server on a unix socket in threads of this test).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "dk.h"
#include "fake_dockerd.h"
#include "tap.h"

/* --- recorded answers (dockerd 20.10.24+dfsg1, API 1.41) --------------------------- */

/* GET /version, ApiVersion left to the test */
static const char VERSION_FMT[] =
	"{\"Platform\":{\"Name\":\"\"},\"Components\":[{\"Name\":\"Engine\",\"Version\":\"20.10.24+dfsg1\","
	"\"Details\":{\"ApiVersion\":\"%s\",\"Arch\":\"amd64\",\"Experimental\":\"true\","
	"\"GitCommit\":\"5d6db84\",\"GoVersion\":\"go1.19.8\",\"MinAPIVersion\":\"1.12\",\"Os\":\"linux\"}}],"
	"\"Version\":\"20.10.24+dfsg1\",\"ApiVersion\":\"%s\",\"MinAPIVersion\":\"1.12\","
	"\"GitCommit\":\"5d6db84\",\"GoVersion\":\"go1.19.8\",\"Os\":\"linux\",\"Arch\":\"amd64\","
	"\"KernelVersion\":\"6.1.0-27-amd64\",\"Experimental\":true,"
	"\"BuildTime\":\"2026-05-07T21:09:36.000000000+00:00\"}";

#define CT_ID "2dd46d1c297701959532b9b34089b7fd4ef05ede5133cf5ef995b3ea70f23489"
static const char CREATED[] = "{\"Id\":\"" CT_ID "\",\"Warnings\":[]}\n";
static const char CONFLICT_NAME[] =
	"{\"message\":\"Conflict. The container name \\\"/ct-x\\\" is already in use by container "
	"\\\"" CT_ID "\\\". You have to remove (or rename) that container to be able to reuse that name.\"}\n";
static const char CONFLICT_NAME_MSG[] =
	"Conflict. The container name \"/ct-x\" is already in use by container \"" CT_ID
	"\". You have to remove (or rename) that container to be able to reuse that name.";
static const char NO_IMAGE[] = "{\"message\":\"No such image: nope/x:1\"}\n";
static const char REMOVE_RUNNING[] =
	"{\"message\":\"You cannot remove a running container " CT_ID
	". Stop the container before attempting removal or force remove\"}\n";
static const char PAUSED[] = "{\"message\":\"Container " CT_ID " is already paused\"}\n";
static const char WAITED[] = "{\"Error\":null,\"StatusCode\":137}\n";
static const char NO_CHECKPOINT[] = "{\"message\":\"checkpoint nope does not exist for container ct-x\"}\n";
static const char COMMITTED[] =
	"{\"Id\":\"sha256:6be8f618c62c20015893e99fc4eb8c03cb3c71c603c287d9ac04e23231a32426\"}\n";
static const char LOADED[] = "{\"stream\":\"Loaded image: edgehop/svc:test\\n\"}\r\n";
static const char LOAD_FAILED[] =
	"{\"errorDetail\":{\"message\":\"Error processing tar file(exit status 1): unexpected EOF\"},"
	"\"error\":\"Error processing tar file(exit status 1): unexpected EOF\"}\r\n";
/* GET /containers/ct-x/json, cut down */
static const char INSPECT[] =
	"{\"Id\":\"" CT_ID "\",\"Created\":\"2026-11-30T20:50:53.355752026Z\",\"Path\":\"/bin/sleep\","
	"\"Args\":[\"3600\"],\"State\":{\"Status\":\"running\",\"Running\":true,\"Paused\":false,"
	"\"Restarting\":false,\"OOMKilled\":false,\"Dead\":false,\"Pid\":11522,\"ExitCode\":0,\"Error\":\"\","
	"\"StartedAt\":\"2026-11-30T20:50:53.554517236Z\",\"FinishedAt\":\"0001-01-01T00:00:00Z\"},"
	"\"Image\":\"sha256:a7f4c7bb11a9d539bc468f25f0a1b25a5674a79e2b77739843cc8599c5fe63ce\","
	"\"Name\":\"/ct-x\",\"RestartCount\":0,\"Driver\":\"overlay2\",\"Platform\":\"linux\","
	"\"HostConfig\":{\"NetworkMode\":\"none\",\"IpcMode\":\"private\",\"ShmSize\":67108864,"
	"\"Runtime\":\"runc\"},\"Config\":{\"Hostname\":\"2dd46d1c2977\",\"Image\":\"ehtry/bb:1\","
	"\"Cmd\":[\"/bin/sleep\",\"3600\"]}}\n";

/* --- the server -------------------------------------------------------------------- */

#define SAVE_BYTES	(4u << 20)	/* an image save streamed in chunks */
#define SAVE_ABORT_BYTES (64u << 20)	/* ... and one far larger than any socket buffer */
#define LOAD_BYTES	(3u << 20)

static struct fdk_server g_srv;
static char g_api[16] = "1.41";
/* under g_srv.mu */
static size_t g_sent;		/* body bytes the last streamed answer got out */
static bool g_load_ok;		/* the uploaded tar matched the pattern */

static uint8_t pattern(size_t i)
{
	return (uint8_t)((i * 2654435761u) >> 13);
}

/* image save: the pattern, chunked as dockerd does (32 KiB writes), or cut short */
static int stream_save(int fd, size_t total, bool finish)
{
	static char buf[40000];
	size_t off = 0;
	int err = 0;

	if (fdk_chunked_head(fd, "application/x-tar"))
		return -EPIPE;
	while (off < total && !err) {
		size_t n = 7000 + off % 33000;

		if (n > total - off)
			n = total - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		err = fdk_chunk(fd, buf, n);
		if (!err)
			off += n;
	}
	pthread_mutex_lock(&g_srv.mu);
	g_sent = off;
	pthread_mutex_unlock(&g_srv.mu);
	if (err || !finish)
		return -EPIPE;
	return fdk_chunked_end(fd);
}

static bool is(const struct fdk_req *rq, const char *method, const char *path)
{
	return !strcmp(rq->method, method) && !strcmp(rq->path, path);
}

/* Answers one request; a negative return closes the connection. */
static int route(struct fdk_server *s, int fd, struct fdk_req *rq)
{
	char buf[4096];

	(void)s;
	/* dockerd's httputils.CheckForJSON: libcurl's default form type is refused */
	if (!strcmp(rq->method, "POST") && rq->ctype[0] &&
	    strncmp(rq->ctype, "application/json", 16) && strcmp(rq->ctype, "application/x-tar")) {
		snprintf(buf, sizeof(buf), "{\"message\":\"Content-Type specified (%s) must be "
			 "'application/json'\"}", rq->ctype);
		return fdk_reply(fd, "400 Bad Request", buf);
	}
	if (is(rq, "GET", "/version")) {
		snprintf(buf, sizeof(buf), VERSION_FMT, g_api, g_api);
		return fdk_reply(fd, "200 OK", buf);
	}
	if (!strncmp(rq->path, "/containers/create", 18) && !strcmp(rq->method, "POST")) {
		json_t *j = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
		const char *img = json_string_value(json_object_get(j, "Image"));
		int err;

		if (img && !strcmp(img, "nope/x:1"))
			err = fdk_reply(fd, "404 Not Found", NO_IMAGE);
		else if (!img)
			err = fdk_reply(fd, "400 Bad Request", "{\"message\":\"config has no Image\"}");
		else if (!strcmp(rq->path, "/containers/create?name=ct-x"))
			err = fdk_reply(fd, "201 Created", CREATED);
		else
			err = fdk_reply(fd, "409 Conflict", CONFLICT_NAME);
		json_decref(j);
		return err;
	}
	if (is(rq, "GET", "/containers/ct-x/json"))
		return fdk_reply(fd, "200 OK", INSPECT);
	/* the filter {"label":["edgehop.mud"]}, escaped as a query value */
	if (is(rq, "GET", "/containers/json?all=1&filters=%7B%22label%22:%5B%22edgehop.mud%22%5D%7D"))
		return fdk_reply(fd, "200 OK", "[{\"Id\":\"c1\",\"State\":\"running\","
				 "\"Labels\":{\"edgehop.mud\":\"7\"}},{\"Id\":\"c2\","
				 "\"State\":\"exited\",\"Labels\":{\"edgehop.mud\":\"8\"}}]");
	if (!strncmp(rq->path, "/containers/json?", 17) && !strcmp(rq->method, "GET"))
		return fdk_reply(fd, "200 OK", "{\"message\":\"an object, not a list\"}");
	if (is(rq, "GET", "/containers/a%20b%26c/json"))
		return fdk_reply(fd, "404 Not Found", "{\"message\":\"No such container: a b&c\"}");
	if (is(rq, "GET", "/containers/plain/json")) {
		/* not dockerd's: a proxy's plain-text error */
		snprintf(buf, sizeof(buf), "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
			 "Content-Length: 12\r\n\r\nBad Gateway\n");
		return fdk_send_all(fd, buf, strlen(buf));
	}
	if (is(rq, "GET", "/containers/short/json")) {
		/* promises 1000 bytes, sends 100, closes */
		snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%sContent-Type: application/json\r\n"
			 "Content-Length: 1000\r\n\r\n%.100s", FDK_HDRS, INSPECT);
		fdk_send_all(fd, buf, strlen(buf));
		return -EPIPE;
	}
	if (is(rq, "GET", "/images/x/json"))
		return fdk_reply(fd, "404 Not Found", "{\"message\":\"No such image: x\"}");
	if (is(rq, "POST", "/containers/ct-x/start"))
		return fdk_reply(fd, "304 Not Modified", NULL);
	if (is(rq, "POST", "/containers/ct-x/start?checkpoint=cp1"))
		return fdk_reply(fd, "204 No Content", NULL);
	if (is(rq, "POST", "/containers/ct-x/stop?t=1"))
		return fdk_reply(fd, "304 Not Modified", NULL);
	if (is(rq, "POST", "/containers/ct-x/kill?signal=SIGTERM"))
		return fdk_reply(fd, "204 No Content", NULL);
	if (is(rq, "DELETE", "/containers/ct-x?v=1&force=0"))
		return fdk_reply(fd, "409 Conflict", REMOVE_RUNNING);
	if (is(rq, "DELETE", "/containers/ct-x?v=1&force=1"))
		return fdk_reply(fd, "204 No Content", NULL);
	if (is(rq, "POST", "/containers/ct-x/pause"))
		return fdk_reply(fd, "409 Conflict", PAUSED);
	if (is(rq, "POST", "/containers/ct-x/unpause"))
		return fdk_reply(fd, "500 Internal Server Error",
			     "{\"message\":\"Cannot unpause container ct-x: OCI runtime resume failed\"}");
	if (is(rq, "POST", "/containers/ct-x/wait?condition=not-running"))
		return fdk_reply_chunked(fd, "application/json", WAITED);
	if (is(rq, "POST", "/containers/ct-x/checkpoints"))
		return fdk_reply(fd, "201 Created", NULL);
	if (is(rq, "GET", "/containers/ct-x/checkpoints"))
		return fdk_reply(fd, "200 OK", "null\n");
	if (is(rq, "DELETE", "/containers/ct-x/checkpoints/nope"))
		return fdk_reply(fd, "500 Internal Server Error", NO_CHECKPOINT);
	if (is(rq, "POST", "/commit?container=ct-x&repo=edgehop/ct-x&tag=mig1&pause=1"))
		return fdk_reply(fd, "201 Created", COMMITTED);
	if (is(rq, "GET", "/images/get?names=edgehop/svc:1"))
		return stream_save(fd, SAVE_BYTES, true);
	if (is(rq, "GET", "/images/get?names=big"))
		return stream_save(fd, SAVE_ABORT_BYTES, true);
	if (is(rq, "GET", "/images/get?names=cut"))
		return stream_save(fd, SAVE_BYTES / 2, false);
	if (is(rq, "POST", "/images/load?quiet=1")) {
		bool ok = rq->chunked && rq->body_len == LOAD_BYTES;

		for (size_t i = 0; ok && i < rq->body_len; i++)
			ok = (uint8_t)rq->body[i] == pattern(i);
		pthread_mutex_lock(&g_srv.mu);
		g_load_ok = ok;
		pthread_mutex_unlock(&g_srv.mu);
		/* what dockerd answers to a tar it can't read */
		return fdk_reply_chunked(fd, "application/json", ok ? LOADED : LOAD_FAILED);
	}
	return fdk_reply(fd, "404 Not Found", "{\"message\":\"page not found\"}");
}

/* --- sinks and sources -------------------------------------------------------------- */

struct sink {
	size_t got, calls, max_call, fail_after;
	bool bad;
};

static int check_sink(void *ctx, const void *buf, size_t len)
{
	struct sink *s = ctx;
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern(s->got + i))
			s->bad = true;
	s->got += len;
	s->calls++;
	if (len > s->max_call)
		s->max_call = len;
	if (s->fail_after && s->got > s->fail_after)
		return -ENOSPC;
	return 0;
}

struct source {
	size_t off, total, abort_at, calls;
};

static ssize_t pattern_source(void *ctx, void *buf, size_t cap)
{
	struct source *s = ctx;
	uint8_t *p = buf;
	size_t n = s->total - s->off;

	if (s->abort_at && s->off >= s->abort_at)
		return -ECANCELED;
	if (n > cap)
		n = cap;
	if (n > 10000)	/* a pipe gives what it has, not what was asked */
		n = 10000;
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(s->off + i);
	s->off += n;
	s->calls++;
	return n;
}

/* --- the tests ---------------------------------------------------------------------- */

static void test_connect_errors(const char *dir)
{
	char path[108];
	struct dk *d = NULL;
	int fd, err;

	snprintf(path, sizeof(path), "%s/absent.sock", dir);
	err = dk_open(&d, path);
	tap_ok(err == -ENOENT, "no socket: -ENOENT (got %d: %s)", err, dk_err(d));
	dk_close(d);

	snprintf(path, sizeof(path), "%s/deaf.sock", dir);
	fd = fdk_unix_socket(path, false);	/* bound, never listening */
	err = dk_open(&d, path);
	tap_ok(err == -ECONNREFUSED && strstr(dk_err(d), path),
	       "nobody listening: -ECONNREFUSED naming the socket (got %d: %s)", err, dk_err(d));
	dk_close(d);
	if (fd >= 0)
		close(fd);
}

static void test_negotiation(void)
{
	static const struct { const char *server, *want; int err; } cases[] = {
		{ "1.41", "1.41", 0 },	/* Docker 20.10 */
		{ "1.45", "1.45", 0 },	/* Docker 26 */
		{ "1.47", "1.45", 0 },	/* newer than we speak: ours */
		{ "1.40", NULL, -EPROTONOSUPPORT },
	};
	struct dk *d = NULL;
	json_t *j = NULL;
	int err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(g_api, sizeof(g_api), "%s", cases[i].server);
		err = dk_open(&d, g_srv.sock);
		if (cases[i].err) {
			tap_ok(err == cases[i].err && strstr(dk_err(d), "1.40"),
			       "server API %s refused (got %d: %s)", cases[i].server, err, dk_err(d));
		} else {
			err = err ?: dk_inspect(d, "ct-x", &j);
			pthread_mutex_lock(&g_srv.mu);
			tap_ok(!err && !strcmp(dk_api_version(d), cases[i].want) &&
			       !strcmp(g_srv.last.ver, cases[i].want),
			       "server API %s: requests as /v%s/ (got %d, %s, sent /v%s/)",
			       cases[i].server, cases[i].want, err, err ? dk_err(d) : dk_api_version(d),
			       g_srv.last.ver);
			pthread_mutex_unlock(&g_srv.mu);
		}
		json_decref(j);
		j = NULL;
		dk_close(d);
		d = NULL;
	}
	snprintf(g_api, sizeof(g_api), "1.41");
	err = dk_open(&d, g_srv.sock);
	tap_ok(!err && !strcmp(dk_server_version(d), "20.10.24+dfsg1") && dk_experimental(d),
	       "server version and experimental flag (got %d, \"%s\")", err,
	       d ? dk_server_version(d) : "");
	dk_close(d);
}

static void test_containers(struct dk *d)
{
	char id[65] = "";
	json_t *cfg, *j = NULL;
	int err, code = -1;

	cfg = json_pack("{s:s, s:[s,s], s:{s:s}}", "Image", "ehtry/bb:1", "Cmd", "/bin/sleep",
			"3600", "HostConfig", "NetworkMode", "none");
	err = dk_create(d, "ct-x", cfg, id);
	pthread_mutex_lock(&g_srv.mu);
	tap_ok(!err && !strcmp(id, CT_ID) && g_srv.last_body && strstr(g_srv.last_body, "\"ehtry/bb:1\""),
	       "create ct-x -> id, config sent as the body (got %d, %s)", err, id);
	pthread_mutex_unlock(&g_srv.mu);

	err = dk_create(d, "ct-dup", cfg, id);
	tap_ok(err == -EEXIST && !strcmp(dk_err(d), CONFLICT_NAME_MSG),
	       "create of a name in use: 409 -> -EEXIST, Docker's message (got %d: %s)", err, dk_err(d));
	json_object_set_new(cfg, "Image", json_string("nope/x:1"));
	err = dk_create(d, "ct-y", cfg, id);
	tap_ok(err == -ENOENT && !strcmp(dk_err(d), "No such image: nope/x:1"),
	       "create from a missing image: -ENOENT, \"No such image: nope/x:1\" (got %d: %s)",
	       err, dk_err(d));
	json_decref(cfg);

	err = dk_inspect(d, "ct-x", &j);
	tap_ok(!err && json_is_true(json_object_get(json_object_get(j, "State"), "Running")) &&
	       json_integer_value(json_object_get(json_object_get(j, "State"), "Pid")) == 11522,
	       "inspect -> State.Running, State.Pid (got %d)", err);
	json_decref(j);

	err = dk_container_list(d, "edgehop.mud", &j);
	tap_ok(!err && json_array_size(j) == 2 &&
	       !strcmp(json_string_value(json_object_get(json_array_get(j, 0), "Id")) ?: "", "c1"),
	       "container list by label: the filter escaped in the query, an array back (got %d: %s)",
	       err, err ? dk_err(d) : "");
	json_decref(j);
	err = dk_container_list(d, "other", &j);
	tap_ok(err == -EBADMSG && !j && dk_container_list(d, "", &j) == -EINVAL,
	       "container list: an answer that is no array is -EBADMSG, an empty label -EINVAL "
	       "(got %d)", err);

	err = dk_inspect(d, "a b&c", &j);
	tap_ok(err == -ENOENT && !j && !strcmp(dk_err(d), "No such container: a b&c"),
	       "inspect of an odd name: percent-encoded, -ENOENT (got %d: %s)", err, dk_err(d));

	err = dk_start(d, "ct-x", NULL);
	tap_ok(err == 0, "start of a running container: 304 -> 0 (got %d: %s)", err, dk_err(d));
	err = dk_start(d, "ct-x", "cp1");
	tap_ok(err == 0, "start from checkpoint cp1 -> ?checkpoint=cp1 (got %d: %s)", err, dk_err(d));
	err = dk_stop(d, "ct-x", 1);
	tap_ok(err == 0, "stop of a stopped container: 304 -> 0 (got %d: %s)", err, dk_err(d));
	err = dk_kill(d, "ct-x", "SIGTERM");
	tap_ok(err == 0, "kill SIGTERM (got %d: %s)", err, dk_err(d));
	err = dk_pause(d, "ct-x");
	tap_ok(err == -EBUSY && strstr(dk_err(d), "is already paused"),
	       "pause of a paused container: 409 -> -EBUSY (got %d: %s)", err, dk_err(d));
	err = dk_unpause(d, "ct-x");
	tap_ok(err == -EIO && !strcmp(dk_err(d), "Cannot unpause container ct-x: OCI runtime resume failed"),
	       "500 -> -EIO with Docker's message (got %d: %s)", err, dk_err(d));
	err = dk_remove(d, "ct-x", false);
	tap_ok(err == -EBUSY && strstr(dk_err(d), "You cannot remove a running container"),
	       "remove of a running container: 409 -> -EBUSY (got %d: %s)", err, dk_err(d));
	err = dk_remove(d, "ct-x", true);
	tap_ok(err == 0, "forced remove, anonymous volumes too (?v=1&force=1) (got %d: %s)",
	       err, dk_err(d));
	err = dk_wait(d, "ct-x", &code);
	tap_ok(err == 0 && code == 137, "wait -> exit code 137 from a chunked answer (got %d, %d)",
	       err, code);

	err = dk_inspect(d, "plain", &j);
	tap_ok(err == -EIO && !strcmp(dk_err(d), "HTTP 502 from GET /containers/plain/json: Bad Gateway"),
	       "a status without a Docker message: the status and the request (got %d: %s)",
	       err, dk_err(d));
	err = dk_inspect(d, "short", &j);
	tap_ok(err == -EIO && !j, "an answer closed mid-body is an error, not success (got %d: %s)",
	       err, dk_err(d));
}

static void test_checkpoints_commit(struct dk *d)
{
	char image[80] = "";
	json_t *j = NULL;
	int err;

	err = dk_checkpoint_create(d, "ct-x", "cp1", false);
	pthread_mutex_lock(&g_srv.mu);
	tap_ok(!err && g_srv.last_body && strstr(g_srv.last_body, "\"CheckpointID\":\"cp1\"") &&
	       strstr(g_srv.last_body, "\"Exit\":true"),
	       "checkpoint create: CheckpointID and Exit sent (got %d, %s)", err,
	       g_srv.last_body ? g_srv.last_body : "no body");
	pthread_mutex_unlock(&g_srv.mu);
	err = dk_checkpoint_list(d, "ct-x", &j);
	tap_ok(!err && json_is_array(j) && !json_array_size(j),
	       "checkpoint list: Docker 20.10's null is an empty array (got %d)", err);
	json_decref(j);
	err = dk_checkpoint_delete(d, "ct-x", "nope");
	tap_ok(err == -EIO && !strcmp(dk_err(d), "checkpoint nope does not exist for container ct-x"),
	       "checkpoint delete of a missing one: Docker's message (got %d: %s)", err, dk_err(d));
	err = dk_commit(d, "ct-x", "edgehop/ct-x:mig1", true, image);
	tap_ok(!err && !strcmp(image, "sha256:6be8f618c62c20015893e99fc4eb8c03cb3c71c603c287d9ac04e23231a32426"),
	       "commit -> image id, repo and tag split (got %d, %s)", err, err ? dk_err(d) : image);
	err = dk_image_inspect(d, "x", &j);
	tap_ok(err == -ENOENT && !j && !strcmp(dk_err(d), "No such image: x"),
	       "image inspect of a missing image: -ENOENT, \"No such image: x\" word for word (got %d: %s)",
	       err, dk_err(d));
}

static void test_image_streams(struct dk *d)
{
	struct sink sk = { 0 };
	struct source src = { .total = LOAD_BYTES };
	char loaded[128] = "x";
	json_t *j = NULL;
	unsigned int before;
	int err;

	err = dk_image_save(d, "edgehop/svc:1", check_sink, &sk);
	tap_ok(!err && sk.got == SAVE_BYTES && !sk.bad && sk.calls > 100 && sk.max_call <= CURL_MAX_WRITE_SIZE,
	       "image save: %u bytes streamed to the sink intact, in %zu calls of <= %zu bytes (got %d, %zu bytes)",
	       SAVE_BYTES, sk.calls, sk.max_call, err, sk.got);

	memset(&sk, 0, sizeof(sk));
	sk.fail_after = 256 << 10;
	before = fdk_done_now(&g_srv);
	err = dk_image_save(d, "big", check_sink, &sk);
	fdk_wait_done(&g_srv, before + 1);
	pthread_mutex_lock(&g_srv.mu);
	tap_ok(err == -ENOSPC && sk.got < (1u << 20) && g_sent < SAVE_ABORT_BYTES,
	       "a sink error aborts the save and is returned (got %d: %s; server sent %zu of %u)",
	       err, dk_err(d), g_sent, SAVE_ABORT_BYTES);
	pthread_mutex_unlock(&g_srv.mu);

	err = dk_inspect(d, "ct-x", &j);
	tap_ok(!err, "the client works after an aborted transfer (got %d: %s)", err, dk_err(d));
	json_decref(j);

	memset(&sk, 0, sizeof(sk));
	err = dk_image_save(d, "cut", check_sink, &sk);
	tap_ok(err == -EIO && sk.got < SAVE_BYTES / 2 + 1,
	       "a save whose server closes mid-stream is an error (got %d: %s)", err, dk_err(d));

	err = dk_image_load(d, pattern_source, &src, loaded, sizeof(loaded));
	pthread_mutex_lock(&g_srv.mu);
	tap_ok(!err && !strcmp(loaded, "edgehop/svc:test") && g_load_ok && g_srv.last.chunked &&
	       g_srv.last.chunks > 10,
	       "image load: %u bytes uploaded chunked in %u chunks, \"Loaded image: edgehop/svc:test\" (got %d: %s, %s)",
	       LOAD_BYTES, g_srv.last.chunks, err, err ? dk_err(d) : "", loaded);
	pthread_mutex_unlock(&g_srv.mu);

	src = (struct source){ .total = LOAD_BYTES - 1 };	/* a tar dockerd can't read */
	err = dk_image_load(d, pattern_source, &src, loaded, sizeof(loaded));
	tap_ok(err == -EIO && !strcmp(dk_err(d), "Error processing tar file(exit status 1): unexpected EOF"),
	       "an errorDetail in the load's progress stream is an error, its message kept (got %d: %s)",
	       err, dk_err(d));

	src = (struct source){ .total = LOAD_BYTES, .abort_at = 100000 };
	err = dk_image_load(d, pattern_source, &src, loaded, sizeof(loaded));
	tap_ok(err == -ECANCELED, "a source error aborts the load and is returned (got %d: %s)",
	       err, dk_err(d));

	err = dk_inspect(d, "ct-x", &j);
	tap_ok(!err, "the client works after an aborted upload (got %d: %s)", err, dk_err(d));
	json_decref(j);
}

int main(void)
{
	char dir[] = "/tmp/eh-unit-docker.XXXXXX", path[108];
	struct dk *d = NULL;
	int err;

	signal(SIGPIPE, SIG_IGN);
	tap_plan(39);
	if (!mkdtemp(dir)) {
		tap_diag("Couldn't create %s: %s", dir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/docker.sock", dir);
	g_srv.route = route;
	err = fdk_start(&g_srv, path);
	if (err) {
		tap_diag("Couldn't listen on %s: %s", path, strerror(-err));
		return 1;
	}

	test_connect_errors(dir);
	test_negotiation();
	err = dk_open(&d, g_srv.sock);
	tap_ok(!err, "open %s (got %d: %s)", g_srv.sock, err, dk_err(d));
	if (!err) {
		test_containers(d);
		test_checkpoints_commit(d);
		test_image_streams(d);
	}
	dk_close(d);

	unlink(g_srv.sock);
	snprintf(path, sizeof(path), "%s/deaf.sock", dir);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
