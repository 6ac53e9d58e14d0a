// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop-svc: the offloading service that runs as PID 1 of a MUD's edge
 * container. One UDP socket on the wildcard address (the container's address
 * changes when it migrates), state only in memory and in plain files, no
 * timers: a CRIU checkpoint/restore at any instant resumes it unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "ballast.h"
#include "eh_digest.h"
#include "eh_log.h"
#include "eh_parse.h"
#include "svc_state.h"

static volatile sig_atomic_t stop, dump, rename_req;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		dump = 1;
	else if (sig == SIGHUP)
		rename_req = 1;
	else
		stop = 1;
}

struct svc_opts {
	int port;
	const char *name;
	const char *name_file;	/* SIGHUP: the name again, from here */
	const char *state_dir;
	unsigned long mem_mb, fs_mb, work_us;
	enum svc_ballast mem_kind;
	const char *logrepo;
	bool bound;		/* --mud-id given */
	unsigned long mud_id;
	unsigned long log_max_kb;
	struct eh_cidr status_from[SVC_MAX_CIDRS];
	int nstatus_from;	/* 0: the default list */
};

struct apply_ctx {
	const char *dir;
	off_t log_max;		/* bytes per DIR/mud-<id>.log before it rotates */
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: edgehop-svc --port PORT --name NAME --state-dir DIR [--mem-mb N]\n"
"                   [--mem-kind random|heap] [--fs-mb N] [--work-us N] [--logrepo IP:PORT] [--mud-id N]\n"
"                   [--status-from CIDR]... [--log-max-kb N] [--name-file PATH]\n"
"  Offloading service: answers SVCQ with SVCR (digest chain, exactly once,\n"
"  reply cache) and STATUS_REQ with STATUS_RESP on UDP PORT (all addresses).\n"
"  --mem-mb N   keep N MiB of dirty, resident memory (checkpoint ballast)\n"
"  --mem-kind K what that memory holds: random (incompressible, the default)\n"
"               or heap (40%% float32 weights, 30%% text, 30%% zeroed pages)\n"
"  --fs-mb N    write N MiB of files under DIR/ballast at start (layer ballast)\n"
"  --work-us N  burn N us of CPU per applied request (offloaded work)\n"
"  --mud-id N   serve MUD N only: requests of any other MUD are counted\n"
"               (other_mud) and never answered (one container per MUD)\n"
"  --status-from CIDR  sources that get a STATUS answer longer than their\n"
"               request (repeatable; default loopback and the RFC 1918\n"
"               networks); anyone else must pad the request to the answer\n"
"  --log-max-kb N  DIR/mud-<id>.log rotates to .log.1 past N KiB (default 1024)\n"
"  --name-file PATH  on SIGHUP, take the server name from PATH's first line\n"
"               (a container restored from another's checkpoint has that one's\n"
"               memory, name included: its agent sets PATH and signals it)\n"
"  SIGTERM/SIGINT: exit 0 after printing counters; SIGUSR1: print counters;\n"
"  SIGHUP: rename from --name-file (ignored without it).\n");
}

/*
 * Every applied request leaves a line in DIR/mud-<id>.log (layer changes).
 * Past --log-max-kb the file becomes mud-<id>.log.1 (the previous .1 is
 * dropped): at most two files of that size per MUD.
 */
static int record_apply(void *vctx, const struct svc_mud *m, uint32_t seq,
			const struct eh_svcr_body *ans)
{
	struct apply_ctx *ctx = vctx;
	char path[4096], old[4100], hex[2 * EH_DIGEST_LEN + 1], line[160];
	struct stat st;
	int fd, n, err = 0;

	snprintf(path, sizeof(path), "%s/mud-%u.log", ctx->dir, m->mud_id);
	eh_digest_hex(ans->digest, hex);
	n = snprintf(line, sizeof(line), "%u %s\n", seq, hex);
	if (!stat(path, &st) && st.st_size + n > ctx->log_max) {
		snprintf(old, sizeof(old), "%s.1", path);
		if (rename(path, old))
			return -errno;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, line, n) != n)
		err = -EIO;
	close(fd);
	return err;
}

/* An evicted MUD's records go with it: the state dir stays bounded too. */
static void forget_mud(void *vctx, const struct svc_mud *m)
{
	struct apply_ctx *ctx = vctx;
	char path[4100];

	snprintf(path, sizeof(path), "%s/mud-%u.log", ctx->dir, m->mud_id);
	unlink(path);
	snprintf(path, sizeof(path), "%s/mud-%u.log.1", ctx->dir, m->mud_id);
	unlink(path);
}

static int mkdir_p(const char *dir)
{
	char tmp[4096], *p;

	if (strlen(dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, dir);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Incompressible bytes, so that neither ballast shrinks under zstd. */
static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	eh_payload_fill((uint32_t)(seed >> 32), (uint32_t)seed, p, len);
}

static int write_fs_ballast(const char *dir, unsigned long mb)
{
	char bdir[4096], path[4200];
	uint8_t *buf = NULL;
	struct stat st;
	unsigned long i;
	int fd = -1, err;

	snprintf(bdir, sizeof(bdir), "%s/ballast", dir);
	err = mkdir_p(bdir);
	if (err) {
		fprintf(stderr, "edgehop-svc: mkdir %s: %s\n", bdir, strerror(-err));
		return err;
	}
	buf = malloc(1 << 20);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < mb; i++) {
		snprintf(path, sizeof(path), "%s/ballast-%04lu.bin", bdir, i);
		if (!stat(path, &st) && st.st_size == (1 << 20))
			continue;	/* restored container: already there */
		fill_random(buf, 1 << 20, 0xba11a57ull << 20 | i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, buf, 1 << 20) != 1 << 20) {
			err = -errno ?: -EIO;
			fprintf(stderr, "edgehop-svc: write %s: %s\n", path,
				strerror(-err));
			goto cleanup;
		}
		close(fd);
		fd = -1;
	}
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return err;
}

/* SIGHUP: the name again, from @path (the old one stays on any error, said). */
static void rename_from_file(struct svc_state *s, struct eh_log *log, const char *path)
{
	char name[EH_NAME_LEN], old[EH_NAME_LEN];
	int err;

	if (!path) {
		fprintf(stderr, "edgehop-svc: SIGHUP without --name-file: name stays %s\n", s->name);
		return;
	}
	err = svc_name_read(path, name);
	if (err) {
		fprintf(stderr, "edgehop-svc: SIGHUP: no name in %s: %s; name stays %s\n", path,
			err == -EINVAL ? "not 1-31 printable characters without spaces" :
			strerror(-err), s->name);
		return;
	}
	memcpy(old, s->name, sizeof(old));
	svc_state_rename(s, name);	/* checked by svc_name_read */
	eh_log_set_role(log, name);
	fprintf(stderr, "edgehop-svc: renamed %s -> %s (from %s)\n", old, name, path);
	eh_log_event(log, NULL, NULL, "svc renamed", NULL, NULL, "from=%s", old);
}

static int parse_args(int argc, char **argv, struct svc_opts *o)
{
	static const struct option lopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "name", required_argument, NULL, 'n' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "mem-mb", required_argument, NULL, 'm' },
		{ "mem-kind", required_argument, NULL, 'k' },
		{ "fs-mb", required_argument, NULL, 'f' },
		{ "work-us", required_argument, NULL, 'w' },
		{ "logrepo", required_argument, NULL, 'l' },
		{ "mud-id", required_argument, NULL, 'i' },
		{ "status-from", required_argument, NULL, 'S' },
		{ "log-max-kb", required_argument, NULL, 'L' },
		{ "name-file", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	unsigned long v;
	uint32_t u;
	int c;

	o->port = EH_SVC_PORT_DEFAULT;
	o->log_max_kb = 1024;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (eh_parse_u32(optarg, 65535, &u) || !u)
				goto bad;
			o->port = (int)u;
			break;
		case 'n': o->name = optarg; break;
		case 'N': o->name_file = optarg; break;
		case 'd': o->state_dir = optarg; break;
		case 'm':
			if (eh_parse_u32(optarg, 1 << 16, &u))
				goto bad;
			o->mem_mb = u;
			break;
		case 'k':
			if (svc_ballast_parse(optarg, &o->mem_kind))
				goto bad;
			break;
		case 'f':
			if (eh_parse_u32(optarg, 1 << 16, &u))
				goto bad;
			o->fs_mb = u;
			break;
		case 'w':
			if (eh_parse_u32(optarg, 10000000, &u))
				goto bad;
			o->work_us = u;
			break;
		case 'l': o->logrepo = optarg; break;
		case 'i':
			if (eh_parse_u32(optarg, UINT32_MAX, &u))
				goto bad;
			o->mud_id = u;
			o->bound = true;
			break;
		case 'S':
			if (o->nstatus_from >= SVC_MAX_CIDRS ||
			    eh_cidr_parse(optarg, &o->status_from[o->nstatus_from]))
				goto bad;
			o->nstatus_from++;
			break;
		case 'L':
			if (eh_parse_u32(optarg, 1 << 20, &u) || !u)
				goto bad;
			o->log_max_kb = u;
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind != argc || !o->name || !o->state_dir) {
		fprintf(stderr, "edgehop-svc: --name and --state-dir are required\n");
		usage(stderr);
		return -EINVAL;
	}
	if (strlen(o->name) >= EH_NAME_LEN) {
		fprintf(stderr, "edgehop-svc: --name longer than %d bytes\n",
			EH_NAME_LEN - 1);
		return -EINVAL;
	}
	return 0;
bad:
	for (v = 0; lopts[v].name && lopts[v].val != c; v++)
		;
	fprintf(stderr, "edgehop-svc: bad value '%s' for --%s\n", optarg,
		lopts[v].name ? lopts[v].name : "?");
	return -EINVAL;
}

int main(int argc, char **argv)
{
	uint8_t in[2048], out[sizeof(struct eh_hdr) + EH_BODY_MAX];
	struct svc_opts o = {};
	struct apply_ctx actx;
	struct sockaddr_in sa;
	struct sigaction sig;
	struct eh_log log;
	struct svc_state *s = NULL;
	uint8_t *ballast = NULL;
	int fd = -1, err, one = 1, rcvbuf = 4 << 20;
	unsigned long long tx_errors = 0;

	if (parse_args(argc, argv, &o))
		return 2;

	memset(&sig, 0, sizeof(sig));
	sig.sa_handler = on_signal;	/* no SA_RESTART: recvfrom returns EINTR */
	sigaction(SIGTERM, &sig, NULL);
	sigaction(SIGINT, &sig, NULL);
	sigaction(SIGUSR1, &sig, NULL);
	sigaction(SIGHUP, &sig, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = eh_log_open(&log, o.logrepo, o.name);
	if (err) {
		fprintf(stderr, "edgehop-svc: bad --logrepo '%s' (want IPv4:PORT)\n",
			o.logrepo);
		return 2;
	}
	s = malloc(sizeof(*s));
	if (!s || svc_state_init(s, o.name)) {
		fprintf(stderr, "edgehop-svc: cannot set up state\n");
		err = -ENOMEM;
		goto cleanup;
	}
	s->work_us = (unsigned int)o.work_us;
	s->bound = o.bound;
	s->bound_mud = (uint32_t)o.mud_id;
	actx.dir = o.state_dir;
	actx.log_max = (off_t)o.log_max_kb << 10;
	s->on_apply = record_apply;
	s->on_evict = forget_mud;
	s->cb_ctx = &actx;
	if (o.nstatus_from) {
		memcpy(s->status_from, o.status_from, sizeof(o.status_from));
		s->nstatus_from = o.nstatus_from;
	}

	err = mkdir_p(o.state_dir);
	if (err) {
		fprintf(stderr, "edgehop-svc: mkdir %s: %s\n", o.state_dir,
			strerror(-err));
		goto cleanup;
	}
	if (o.mem_mb) {
		ballast = malloc(o.mem_mb << 20);
		if (!ballast) {
			fprintf(stderr, "edgehop-svc: cannot allocate %lu MiB ballast\n",
				o.mem_mb);
			err = -ENOMEM;
			goto cleanup;
		}
		svc_ballast_fill(ballast, o.mem_mb << 20, o.mem_kind, 0x3e3ull);
	}
	if (o.fs_mb) {
		err = write_fs_ballast(o.state_dir, o.fs_mb);
		if (err)
			goto cleanup;
	}

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "edgehop-svc: socket: %s\n", strerror(errno));
		goto cleanup;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(o.port);
	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		fprintf(stderr, "edgehop-svc: bind udp 0.0.0.0:%d: %s\n", o.port,
			strerror(errno));
		goto cleanup;
	}
	if (o.bound)
		fprintf(stderr, "edgehop-svc: %s serving MUD %lu only on udp 0.0.0.0:%d, state in %s\n",
			o.name, o.mud_id, o.port, o.state_dir);
	else
		fprintf(stderr, "edgehop-svc: %s serving udp 0.0.0.0:%d, state in %s\n",
			o.name, o.port, o.state_dir);
	eh_log_event(&log, NULL, NULL, "svc started", NULL, NULL, "port=%d", o.port);

	while (!stop) {
		struct sockaddr_in src;
		socklen_t slen = sizeof(src);
		const struct eh_hdr *h = (const void *)in;
		size_t outlen = 0;
		ssize_t n;

		if (dump) {
			dump = 0;
			svc_counters_print(s, stderr);
		}
		if (rename_req) {
			rename_req = 0;
			rename_from_file(s, &log, o.name_file);
		}
		n = recvfrom(fd, in, sizeof(in), MSG_TRUNC, (struct sockaddr *)&src,
			     &slen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			fprintf(stderr, "edgehop-svc: recvfrom: %s\n", strerror(errno));
			goto cleanup;
		}
		if ((size_t)n > sizeof(in)) {	/* truncated by the kernel */
			s->cnt.rx++;
			s->cnt.oversized++;
			continue;
		}
		err = svc_handle(s, in, n, &src, out, &outlen);
		if (err) {
			fprintf(stderr, "edgehop-svc: handling a request: %s\n",
				strerror(-err));
			goto cleanup;
		}
		if (!outlen)
			continue;
		/* a lost answer is the MUD's to retry: count it, do not log per packet */
		if (sendto(fd, out, outlen, 0, (struct sockaddr *)&src, slen) < 0)
			tx_errors++;
		if (log.fd >= 0 && h->type == EH_T_SVCQ) {
			char peer[INET_ADDRSTRLEN], arg[16];
			const struct eh_hdr *oh = (const void *)out;

			inet_ntop(AF_INET, &src.sin_addr, peer, sizeof(peer));
			snprintf(arg, sizeof(arg), "%u", ntohl(h->seq));
			eh_log_event(&log, peer, "USER", "SVCR", arg, "sent",
				     "mud=%u dup=%d stale=%d gap=%d", ntohl(h->mud_id),
				     !!(ntohs(oh->flags) & EH_F_DUP),
				     !!(ntohs(oh->flags) & EH_F_STALE),
				     !!(ntohs(oh->flags) & EH_F_GAP));
		}
	}
	err = 0;
	fprintf(stderr, "edgehop-svc: %s stopping\n", o.name);
	svc_counters_print(s, stderr);
	fprintf(stderr, "tx_errors %llu\n", tx_errors);
cleanup:
	if (fd >= 0)
		close(fd);
	eh_log_close(&log);
	if (s)
		svc_state_free(s);
	free(s);
	free(ballast);
	return err ? 1 : 0;
}
