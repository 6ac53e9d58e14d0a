// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop-logrepo: the event log repository.
 *
 *	edgehop-logrepo serve --udp PORT [--dir DIR] [--max-bytes N] [--keep K]
 *			      [--allow CIDR]...
 *	edgehop-logrepo report LOG... [--json] [--plot OUT_PREFIX]
 *
 * serve stores every valid record twice, DIR/events.log (the paper's Fig. 5
 * lines) and DIR/events.jsonl, rotating both to .1 .. .K when either passes
 * --max-bytes. Memory is fixed: one datagram buffer, no queue. Records that
 * are malformed or oversized are counted and skipped; a write that fails
 * (full disk) is counted and reported once per episode, and serving goes on.
 * Only sources in the --allow list are heard (default: the testbed's
 * management network and loopback); the others are counted in refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "eh_log.h"
#include "eh_parse.h"
#include "lr_report.h"

static volatile sig_atomic_t stop, dump;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		dump = 1;
	else
		stop = 1;
}

struct store {
	const char *dir;
	unsigned long long max_bytes;
	int keep;
	int fd_line, fd_json;
	unsigned long long bytes_line, bytes_json;
	bool failing;		/* inside a write-error episode */
	unsigned long long received, stored, malformed, oversized, write_errors,
		rotations, refused;
};

#define MAX_ALLOW	32
/* Default --allow: the testbed's management network (vm/lib.sh) and loopback. */
static const char *const default_allow[] = { "10.77.0.0/24", "127.0.0.0/8" };

static void usage(FILE *f)
{
	fprintf(f,
"usage: edgehop-logrepo serve --udp PORT [--dir DIR] [--max-bytes N] [--keep K]\n"
"                              [--allow CIDR]...\n"
"       edgehop-logrepo report LOG.jsonl... [--json] [--plot OUT_PREFIX]\n"
"       edgehop-logrepo send HOST:PORT ROLE EVENT [k=v ...]\n"
"  serve   store events in DIR/events.log (Fig. 5 lines) and DIR/events.jsonl,\n"
"          rotated to .1...K (default 5) past N bytes (default 64 MiB); only\n"
"          from --allow sources (repeatable; default 10.77.0.0/24, 127.0.0.0/8)\n"
"  report  per-run and across-run numbers from JSON-lines logs; --plot draws\n"
"          OUT_PREFIX.png and OUT_PREFIX.svg with gnuplot\n"
"  send    report one event from a script (e.g. 'ES-x \"migr begins\" run=R')\n");
}

static int open_log(struct store *s, const char *name, unsigned long long *bytes)
{
	char path[4096];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "logrepo: open %s: %s\n", path, strerror(errno));
		return -errno;
	}
	*bytes = fstat(fd, &st) ? 0 : (unsigned long long)st.st_size;
	return fd;
}

static int open_logs(struct store *s)
{
	s->fd_line = open_log(s, "events.log", &s->bytes_line);
	if (s->fd_line < 0)
		return s->fd_line;
	s->fd_json = open_log(s, "events.jsonl", &s->bytes_json);
	if (s->fd_json < 0) {
		close(s->fd_line);
		s->fd_line = -1;
		return s->fd_json;
	}
	return 0;
}

static void rotate(struct store *s)
{
	static const char *names[] = { "events.log", "events.jsonl" };
	char from[4200], to[4200];

	close(s->fd_line);
	close(s->fd_json);
	for (int n = 0; n < 2; n++) {
		for (int k = s->keep - 1; k >= 1; k--) {
			snprintf(from, sizeof(from), "%s/%s.%d", s->dir, names[n], k);
			snprintf(to, sizeof(to), "%s/%s.%d", s->dir, names[n], k + 1);
			rename(from, to);
		}
		snprintf(from, sizeof(from), "%s/%s", s->dir, names[n]);
		snprintf(to, sizeof(to), "%s/%s.1", s->dir, names[n]);
		if (s->keep > 0)
			rename(from, to);
		else
			unlink(from);
	}
	s->rotations++;
	if (open_logs(s))
		s->fd_line = s->fd_json = -1;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

static void store_record(struct store *s, const struct eh_logrec *r,
			 const char *from)
{
	char line[2048], json[4096];
	int nl, nj, err;

	nl = eh_logrec_line(r, line, sizeof(line) - 1);
	nj = eh_logrec_json(r, from, json, sizeof(json) - 1);
	if (nl < 0 || nj < 0) {
		s->malformed++;
		return;
	}
	line[nl++] = '\n';
	json[nj++] = '\n';
	if (s->bytes_line + nl > s->max_bytes || s->bytes_json + nj > s->max_bytes)
		rotate(s);
	if (s->fd_line < 0 && open_logs(s)) {
		err = -EIO;
		goto fail;
	}
	err = write_all(s->fd_line, line, nl);
	if (!err)
		err = write_all(s->fd_json, json, nj);
	if (err)
		goto fail;
	s->bytes_line += nl;
	s->bytes_json += nj;
	s->stored++;
	if (s->failing)
		fprintf(stderr, "logrepo: writing to %s works again\n", s->dir);
	s->failing = false;
	return;
fail:
	s->write_errors++;
	if (!s->failing)
		fprintf(stderr, "logrepo: writing events to %s: %s; dropping events "
			"until writes succeed (still serving)\n", s->dir,
			strerror(-err));
	s->failing = true;
}

static void print_counters(const struct store *s)
{
	fprintf(stderr, "received %llu\nstored %llu\nmalformed %llu\noversized %llu\n"
		"write_errors %llu\nrotations %llu\nrefused %llu\n", s->received, s->stored,
		s->malformed, s->oversized, s->write_errors, s->rotations, s->refused);
}

static int serve(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "udp", required_argument, NULL, 'u' },
		{ "dir", required_argument, NULL, 'd' },
		{ "max-bytes", required_argument, NULL, 'm' },
		{ "keep", required_argument, NULL, 'k' },
		{ "allow", required_argument, NULL, 'a' },
		{},
	};
	struct eh_cidr allow[MAX_ALLOW];
	int nallow = 0;
	struct store s = { .dir = ".", .max_bytes = 64ull << 20, .keep = 5,
			   .fd_line = -1, .fd_json = -1 };
	int port = 0, fd = -1, c, err = 0, rcvbuf = 8 << 20, one = 1;
	struct sigaction sig;
	struct sockaddr_in sa;
	char buf[EH_LOG_DGRAM_MAX + 1];

	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'u': port = atoi(optarg); break;
		case 'd': s.dir = optarg; break;
		case 'm': s.max_bytes = strtoull(optarg, NULL, 10); break;
		case 'k': s.keep = atoi(optarg); break;
		case 'a':
			if (nallow >= MAX_ALLOW || eh_cidr_parse(optarg, &allow[nallow])) {
				fprintf(stderr, "logrepo: bad --allow '%s' (want A.B.C.D/N, at most %d)\n",
					optarg, MAX_ALLOW);
				return 2;
			}
			nallow++;
			break;
		default: usage(stderr); return 2;
		}
	}
	if (!nallow)
		for (size_t i = 0; i < sizeof(default_allow) / sizeof(default_allow[0]); i++)
			eh_cidr_parse(default_allow[i], &allow[nallow++]);
	if (optind != argc || port <= 0 || port > 65535 || s.max_bytes < 4096 ||
	    s.keep < 0 || s.keep > 1000) {
		fprintf(stderr, "logrepo: serve needs --udp PORT (1-65535); --max-bytes >= 4096, --keep 0..1000\n");
		return 2;
	}
	if (mkdir(s.dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "logrepo: mkdir %s: %s\n", s.dir, strerror(errno));
		return 1;
	}
	if (open_logs(&s))
		return 1;

	memset(&sig, 0, sizeof(sig));
	sig.sa_handler = on_signal;
	sigaction(SIGTERM, &sig, NULL);
	sigaction(SIGINT, &sig, NULL);
	sigaction(SIGUSR1, &sig, NULL);

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "logrepo: socket: %s\n", strerror(errno));
		goto cleanup;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* bursts of a fast MUD must fit; FORCE works as root, else best effort */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		fprintf(stderr, "logrepo: bind udp 0.0.0.0:%d: %s\n", port, strerror(errno));
		goto cleanup;
	}
	fprintf(stderr, "logrepo: serving udp 0.0.0.0:%d into %s, from %d allowed network(s)\n",
		port, s.dir, nallow);

	while (!stop) {
		struct sockaddr_in src;
		socklen_t slen = sizeof(src);
		char from[INET_ADDRSTRLEN + 8];
		struct eh_logrec rec;
		ssize_t n;

		if (dump) {
			dump = 0;
			print_counters(&s);
		}
		n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&src,
			     &slen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			fprintf(stderr, "logrepo: recvfrom: %s\n", strerror(errno));
			goto cleanup;
		}
		s.received++;
		if (slen < sizeof(src) || src.sin_family != AF_INET ||
		    !eh_cidr_match(allow, nallow, src.sin_addr)) {
			if (!s.refused++) {
				inet_ntop(AF_INET, &src.sin_addr, from, INET_ADDRSTRLEN);
				fprintf(stderr, "logrepo: refusing events from %s (not in --allow); "
					"counting the refused\n", from);
			}
			continue;
		}
		if (n > EH_LOG_DGRAM_MAX) {
			s.oversized++;
			continue;
		}
		if (eh_logrec_decode(buf, n, &rec)) {
			s.malformed++;
			continue;
		}
		inet_ntop(AF_INET, &src.sin_addr, from, INET_ADDRSTRLEN);
		snprintf(from + strlen(from), 8, ":%u", ntohs(src.sin_port));
		store_record(&s, &rec, from);
	}
	fprintf(stderr, "logrepo: stopping\n");
	print_counters(&s);
cleanup:
	if (fd >= 0)
		close(fd);
	if (s.fd_line >= 0)
		close(s.fd_line);
	if (s.fd_json >= 0)
		close(s.fd_json);
	return err ? 1 : 0;
}

static int report(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'p' },
		{},
	};
	const char *plot = NULL;
	struct lr_report r;
	int c, json = 0, err = 0;

	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'p': plot = optarg; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "logrepo: report needs at least one LOG.jsonl\n");
		return 2;
	}
	lr_report_init(&r);
	for (int i = optind; i < argc; i++) {
		err = lr_report_load(&r, argv[i]);
		if (err == -ENOMEM) {
			fprintf(stderr, "logrepo: reading %s: out of memory after %llu events\n",
				argv[i], (unsigned long long)r.events);
			goto cleanup;
		}
		if (err) {
			fprintf(stderr, "logrepo: reading %s: %s\n", argv[i], strerror(-err));
			goto cleanup;
		}
	}
	err = lr_report_compute(&r);
	if (err) {
		fprintf(stderr, "logrepo: computing the report: %s\n", strerror(-err));
		goto cleanup;
	}
	if (json)
		lr_report_json(&r, stdout);
	else
		lr_report_print(&r, stdout);
	if (plot) {
		err = lr_report_plot(&r, plot);
		if (err == -ENODATA)
			fprintf(stderr, "logrepo: no answered requests to plot\n");
		else if (err)
			fprintf(stderr, "logrepo: no plot in %s.png: %s\n", plot, strerror(-err));
		else
			fprintf(stderr, "logrepo: plot in %s.png and %s.svg\n", plot, plot);
	}
cleanup:
	lr_report_free(&r);
	return err ? 1 : 0;
}

/* send HOST:PORT ROLE EVENT [k=v ...]: one event, for scripts. */
static int send_event(int argc, char **argv)
{
	char kv[EH_LOG_KV_MAX] = "";
	size_t used = 0;
	struct eh_log l;
	int err;

	if (argc < 4) {
		usage(stderr);
		return 2;
	}
	for (int i = 4; i < argc; i++) {
		int n = snprintf(kv + used, sizeof(kv) - used, "%s%s", used ? " " : "", argv[i]);

		if (n < 0 || (size_t)n >= sizeof(kv) - used || !strchr(argv[i], '=')) {
			fprintf(stderr, "logrepo send: bad or too long field '%s' (k=v)\n", argv[i]);
			return 2;
		}
		used += n;
	}
	err = eh_log_open(&l, argv[1], argv[2]);
	if (err) {
		fprintf(stderr, "logrepo send: Couldn't open a socket to %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	err = eh_log_event(&l, NULL, NULL, argv[3], NULL, NULL, used ? "%s" : NULL, kv);
	eh_log_close(&l);
	if (err) {
		fprintf(stderr, "logrepo send: event not sent: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "serve"))
		return serve(argc - 1, argv + 1);
	if (!strcmp(argv[1], "report"))
		return report(argc - 1, argv + 1);
	if (!strcmp(argv[1], "send"))
		return send_event(argc - 1, argv + 1);
	fprintf(stderr, "logrepo: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
