/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A fake dockerd for the unit tests (unit_docker, unit_migr): an HTTP/1.1
 * server on a unix socket, in threads of the test, one per connection (libcurl
 * keeps its connection open between requests; the migration engine talks to
 * Docker from two threads at once). Requests are read whole (Content-Length or
 * chunked bodies) and handed to the test's route(), which answers through
 * fdk_reply() and friends with dockerd 20.10.24's own headers.
 *
 *	static int route(struct fdk_server *s, int fd, struct fdk_req *rq) { ... }
 *	struct fdk_server srv = { .route = route };
 *	fdk_start(&srv, "/tmp/x/docker.sock");	// then dk_open(&d, srv.sock)
 */
#ifndef EDGEHOP_FAKE_DOCKERD_H
#define EDGEHOP_FAKE_DOCKERD_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Headers of every answer, as recorded from dockerd 20.10.24+dfsg1 (API 1.41). */
static const char FDK_HDRS[] =
	"Api-Version: 1.41\r\n"
	"Docker-Experimental: true\r\n"
	"Ostype: linux\r\n"
	"Server: Docker/20.10.24+dfsg1 (linux)\r\n"
	"Date: Mon, 30 Nov 2026 20:50:53 GMT\r\n";

struct fdk_req {
	char method[16];
	char target[1024];
	char ver[16];		/* "1.41" from /v1.41/..., "" when unversioned */
	const char *path;	/* target without the version prefix */
	bool chunked;
	char ctype[64];
	char *body;
	size_t body_len;
	unsigned int chunks;
};

struct fdk_server {
	char sock[108];
	/* Answers one request; a negative return closes the connection. */
	int (*route)(struct fdk_server *s, int fd, struct fdk_req *rq);
	void *ctx;		/* the test's */
	int lfd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	struct fdk_req last;	/* the last request (its body in last_body) */
	char *last_body;
	unsigned int done;	/* requests fully handled */
};

struct fdk_conn {
	struct fdk_server *srv;
	int fd;
	char buf[65536];
	size_t off, len;
};

static inline int fdk_fill(struct fdk_conn *c)
{
	ssize_t n;

	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->len == sizeof(c->buf)) {
		if (!c->off)
			return -E2BIG;
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0)
		return n ? -errno : -EPIPE;
	c->len += n;
	return 0;
}

/* one line without its CRLF */
static inline int fdk_line(struct fdk_conn *c, char *out, size_t cap)
{
	size_t n = 0;

	for (;;) {
		while (c->off < c->len) {
			char ch = c->buf[c->off++];

			if (ch == '\n') {
				if (n && out[n - 1] == '\r')
					n--;
				out[n] = '\0';
				return 0;
			}
			if (n + 1 >= cap)
				return -E2BIG;
			out[n++] = ch;
		}
		if (fdk_fill(c))
			return -EPIPE;
	}
}

static inline int fdk_read(struct fdk_conn *c, char *dst, size_t n)
{
	while (n) {
		size_t k;

		if (c->off == c->len && fdk_fill(c))
			return -EPIPE;
		k = c->len - c->off < n ? c->len - c->off : n;
		memcpy(dst, c->buf + c->off, k);
		c->off += k;
		dst += k;
		n -= k;
	}
	return 0;
}

static inline int fdk_body_grow(struct fdk_req *rq, size_t n)
{
	char *b = realloc(rq->body, rq->body_len + n + 1);

	if (!b)
		return -ENOMEM;
	rq->body = b;
	return 0;
}

/* a request with its body (Content-Length or chunked); -EPIPE when cut short */
static inline int fdk_read_request(struct fdk_conn *c, struct fdk_req *rq)
{
	char line[2048], *p;
	size_t clen = 0;

	memset(rq, 0, sizeof(*rq));
	if (fdk_line(c, line, sizeof(line)))
		return -EPIPE;
	if (sscanf(line, "%15s %1023s", rq->method, rq->target) != 2)
		return -EPROTO;
	for (;;) {
		if (fdk_line(c, line, sizeof(line)))
			return -EPIPE;
		if (!line[0])
			break;
		p = strchr(line, ':');
		if (!p)
			return -EPROTO;
		*p++ = '\0';
		while (*p == ' ')
			p++;
		if (!strcasecmp(line, "Content-Length"))
			clen = strtoul(p, NULL, 10);
		else if (!strcasecmp(line, "Content-Type"))
			snprintf(rq->ctype, sizeof(rq->ctype), "%s", p);
		else if (!strcasecmp(line, "Transfer-Encoding") && !strcasecmp(p, "chunked"))
			rq->chunked = true;
	}
	rq->path = rq->target;
	if (!strncmp(rq->target, "/v", 2) && (p = strchr(rq->target + 1, '/'))) {
		snprintf(rq->ver, sizeof(rq->ver), "%.*s", (int)(p - rq->target - 2), rq->target + 2);
		rq->path = p;
	}
	if (rq->chunked) {
		for (;;) {
			size_t n;

			if (fdk_line(c, line, sizeof(line)))
				return -EPIPE;
			n = strtoul(line, NULL, 16);
			if (!n)
				break;
			if (fdk_body_grow(rq, n) || fdk_read(c, rq->body + rq->body_len, n))
				return -EPIPE;
			rq->body_len += n;
			rq->chunks++;
			if (fdk_line(c, line, sizeof(line)) || line[0])
				return -EPIPE;
		}
		if (fdk_line(c, line, sizeof(line)))	/* the empty trailer */
			return -EPIPE;
	} else if (clen) {
		if (fdk_body_grow(rq, clen) || fdk_read(c, rq->body, clen))
			return -EPIPE;
		rq->body_len = clen;
	}
	if (rq->body)
		rq->body[rq->body_len] = '\0';
	return 0;
}

static inline int fdk_send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0)
			return -errno;
		p += k;
		n -= k;
	}
	return 0;
}

static inline int fdk_reply(int fd, const char *status, const char *body)
{
	char head[1024];

	if (!body) {
		/* as Go's net/http: no length on 204 and 304, "0" on any other */
		snprintf(head, sizeof(head), "HTTP/1.1 %s\r\n%s%s\r\n", status, FDK_HDRS,
			 strncmp(status, "204", 3) && strncmp(status, "304", 3) ?
			 "Content-Length: 0\r\n" : "");
		return fdk_send_all(fd, head, strlen(head));
	}
	snprintf(head, sizeof(head), "HTTP/1.1 %s\r\n%sContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n", status, FDK_HDRS, strlen(body));
	return fdk_send_all(fd, head, strlen(head)) ?: fdk_send_all(fd, body, strlen(body));
}

/* Docker's error body: {"message": msg}, msg JSON-escaped. */
static inline int fdk_reply_msg(int fd, const char *status, const char *msg)
{
	char body[1200];
	size_t n = 0;

	n += snprintf(body, sizeof(body), "{\"message\":\"");
	for (const char *p = msg; *p && n + 8 < sizeof(body); p++) {
		if (*p == '"' || *p == '\\')
			body[n++] = '\\';
		body[n++] = *p;
	}
	snprintf(body + n, sizeof(body) - n, "\"}\n");
	return fdk_reply(fd, status, body);
}

static inline int fdk_chunk(int fd, const void *buf, size_t n)
{
	char h[32];

	snprintf(h, sizeof(h), "%zx\r\n", n);
	return fdk_send_all(fd, h, strlen(h)) ?: fdk_send_all(fd, buf, n) ?:
	       fdk_send_all(fd, "\r\n", 2);
}

/* The head of a chunked 200 answer; then fdk_chunk()s, then fdk_chunked_end(). */
static inline int fdk_chunked_head(int fd, const char *ctype)
{
	char head[1024];

	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n%sContent-Type: %s\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n", FDK_HDRS, ctype);
	return fdk_send_all(fd, head, strlen(head));
}

static inline int fdk_chunked_end(int fd)
{
	return fdk_send_all(fd, "0\r\n\r\n", 5);
}

static inline int fdk_reply_chunked(int fd, const char *ctype, const char *body)
{
	if (fdk_chunked_head(fd, ctype))
		return -EPIPE;
	if (body && fdk_chunk(fd, body, strlen(body)))
		return -EPIPE;
	return fdk_chunked_end(fd);
}

static void *fdk_serve_conn(void *arg)
{
	struct fdk_conn *c = arg;
	struct fdk_server *s = c->srv;
	struct fdk_req rq;
	int err;

	for (;;) {
		err = fdk_read_request(c, &rq);
		if (err) {
			free(rq.body);
			break;
		}
		pthread_mutex_lock(&s->mu);
		free(s->last_body);
		s->last = rq;
		s->last.path = s->last.target + (rq.path - rq.target);
		s->last.body = NULL;
		s->last_body = rq.body ? strdup(rq.body) : NULL;
		pthread_mutex_unlock(&s->mu);
		err = s->route(s, c->fd, &rq);
		free(rq.body);
		pthread_mutex_lock(&s->mu);
		s->done++;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		if (err)
			break;
	}
	close(c->fd);
	free(c);
	return NULL;
}

static void *fdk_serve(void *arg)
{
	struct fdk_server *s = arg;

	for (;;) {
		struct fdk_conn *c;
		pthread_t t;
		int fd = accept(s->lfd, NULL, NULL);

		if (fd < 0)
			continue;
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = s;
		c->fd = fd;
		if (pthread_create(&t, NULL, fdk_serve_conn, c)) {
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static inline int fdk_unix_socket(const char *path, bool do_listen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || (do_listen && listen(fd, 16))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Listens on @path and serves it from a thread of its own; 0 or -errno. */
static inline int fdk_start(struct fdk_server *s, const char *path)
{
	pthread_t t;
	int r;

	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	snprintf(s->sock, sizeof(s->sock), "%s", path);
	s->lfd = fdk_unix_socket(path, true);
	if (s->lfd < 0)
		return s->lfd;
	r = pthread_create(&t, NULL, fdk_serve, s);
	if (r)
		return -r;
	pthread_detach(t);
	return 0;
}

/* until the server has handled n requests in all, up to 10 s */
static inline bool fdk_wait_done(struct fdk_server *s, unsigned int n)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&s->mu);
	while (s->done < n && !pthread_cond_timedwait(&s->cv, &s->mu, &ts))
		;
	ok = s->done >= n;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

static inline unsigned int fdk_done_now(struct fdk_server *s)
{
	unsigned int n;

	pthread_mutex_lock(&s->mu);
	n = s->done;
	pthread_mutex_unlock(&s->mu);
	return n;
}

#endif /* EDGEHOP_FAKE_DOCKERD_H */
