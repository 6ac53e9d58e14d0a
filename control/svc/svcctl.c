// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop-svcctl: ask an offloading service for its per-MUD state.
 *
 *	edgehop-svcctl status IP:PORT [--json] [--timeout-ms T]
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <endian.h>
#include <sys/socket.h>
#include <jansson.h>

#include "eh_digest.h"
#include "eh_log.h"
#include "eh_parse.h"
#include "eh_time.h"
#include "eh_wire.h"

#define MAX_ENTS 4096
/*
 * A status request padded to the largest answer: the service answers a
 * request at least as long as its answer from anyone (it never amplifies),
 * a shorter one only from the sources it trusts (--status-from).
 */
#define STATUS_REQ_LEN	(sizeof(struct eh_hdr) + EH_BODY_MAX)

static void usage(FILE *f)
{
	fprintf(f, "usage: edgehop-svcctl status IP:PORT [--json] [--timeout-ms T]\n");
}

/* Fetch the page starting at @first; returns entries copied or -errno. */
static int fetch_page(int fd, const struct sockaddr_in *dst, uint32_t first,
		      int timeout_ms, struct eh_status_ent *ents, uint32_t *total,
		      char *server)
{
	uint8_t buf[2048], qbuf[STATUS_REQ_LEN] = {};
	int tries;

	for (tries = 0; tries < 3; tries++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t deadline, sent = eh_real_ns();

		/* len 0: the padding is ignored */
		eh_hdr_init((struct eh_hdr *)qbuf, EH_T_STATUS_REQ, 0, 0, first, sent, 0);
		if (sendto(fd, qbuf, sizeof(qbuf), 0, (const struct sockaddr *)dst,
			   sizeof(*dst)) < 0)
			return -errno;
		deadline = eh_real_ns() + (uint64_t)timeout_ms * 1000000ull;
		while (eh_real_ns() < deadline) {
			int left = (int)((deadline - eh_real_ns()) / 1000000) + 1;
			struct eh_hdr_host h;
			uint32_t n;
			ssize_t len;

			if (poll(&pfd, 1, left) <= 0)
				continue;
			len = recv(fd, buf, sizeof(buf), 0);
			if (len < 0 || eh_hdr_check(buf, len, &h) ||
			    h.type != EH_T_STATUS_RESP || h.seq != first || h.send_ns != sent)
				continue;
			n = eh_status_split(&h, buf + sizeof(struct eh_hdr), server);
			*total = h.mud_id;
			memcpy(ents, buf + sizeof(struct eh_hdr), n * sizeof(*ents));
			return (int)n;
		}
	}
	return -ETIMEDOUT;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct eh_status_ent *ents = NULL;
	char server[EH_NAME_LEN] = "", hex[2 * EH_DIGEST_LEN + 1];
	uint32_t got = 0, total = 0, i;
	int json = 0, timeout_ms = 500, c, fd = -1, err = 0, n;
	struct sockaddr_in dst;

	while ((c = getopt_long(argc, argv, "jh", lopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 't': timeout_ms = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2 || strcmp(argv[optind], "status") ||
	    timeout_ms <= 0) {
		usage(stderr);
		return 2;
	}
	if (eh_parse_ipv4_port(argv[optind + 1], &dst)) {
		fprintf(stderr, "edgehop-svcctl: bad address '%s' (want IPv4:PORT)\n",
			argv[optind + 1]);
		return 2;
	}
	ents = calloc(MAX_ENTS + 64, sizeof(*ents));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!ents || fd < 0) {
		err = -errno;
		fprintf(stderr, "edgehop-svcctl: socket: %s\n", strerror(errno));
		goto cleanup;
	}
	do {
		n = fetch_page(fd, &dst, got, timeout_ms, ents + got, &total, server);
		if (n < 0) {
			err = n;
			fprintf(stderr, "edgehop-svcctl: no status answer from %s: %s\n",
				argv[optind + 1], strerror(-n));
			goto cleanup;
		}
		got += n;
	} while (n > 0 && got < total && got < MAX_ENTS);

	if (json) {
		/* The name comes from the network: jansson escapes it. */
		json_t *root = json_object(), *muds = json_array();

		if (!root || !muds || json_object_set_new(root, "server", json_string(server)) ||
		    json_object_set(root, "muds", muds)) {
			fprintf(stderr, "edgehop-svcctl: building the JSON answer: out of memory\n");
			err = -ENOMEM;
		}
		for (i = 0; !err && i < got; i++) {
			eh_digest_hex(ents[i].digest, hex);
			if (json_array_append_new(muds, json_pack("{s:I,s:I,s:I,s:s}",
					"mud_id", (json_int_t)ntohl(ents[i].mud_id),
					"last_seq", (json_int_t)ntohl(ents[i].last_seq),
					"applied", (json_int_t)be64toh(ents[i].applied),
					"digest", hex)))
				err = -ENOMEM;
		}
		if (!err && json_dumpf(root, stdout, JSON_COMPACT | JSON_ENSURE_ASCII)) {
			fprintf(stderr, "edgehop-svcctl: writing JSON: %s\n", strerror(errno));
			err = -EIO;
		}
		if (!err)
			putchar('\n');
		json_decref(muds);
		json_decref(root);
	} else {
		printf("server %s, %u MUD(s)\n", server, got);
		printf("%10s %10s %10s  %s\n", "mud_id", "last_seq", "applied",
		       "digest");
		for (i = 0; i < got; i++) {
			eh_digest_hex(ents[i].digest, hex);
			printf("%10u %10u %10llu  %s\n", ntohl(ents[i].mud_id),
			       ntohl(ents[i].last_seq),
			       (unsigned long long)be64toh(ents[i].applied), hex);
		}
	}
cleanup:
	if (fd >= 0)
		close(fd);
	free(ents);
	return err ? 1 : 0;
}
