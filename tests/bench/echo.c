// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * eh-echo: the benchmark's backend responder. Answers every offload request
 * (SVCQ) with an SVCR carrying the same seq and body, in batches of
 * recvmmsg/sendmmsg, so that the service costs as little as possible and the
 * benchmark measures the forwarding path in front of it.
 *
 *   eh-echo --listen IP:PORT
 *
 * Runs until SIGINT/SIGTERM, then prints its counters on stderr.
 */
#include <signal.h>
#include <unistd.h>

#include "bench.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static uint8_t bufs[EH_BENCH_BATCH][EH_BENCH_MTU];
	struct sockaddr_in addrs[EH_BENCH_BATCH], listen_sin;
	struct mmsghdr in[EH_BENCH_BATCH], out[EH_BENCH_BATCH];
	struct iovec iov[EH_BENCH_BATCH], oiov[EH_BENCH_BATCH];
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t answered = 0, bad = 0, send_err = 0;
	int fd, one = 1, i, n, k, sent, lost;

	if (argc != 3 || strcmp(argv[1], "--listen") ||
	    eh_parse_ipv4_port(argv[2], &listen_sin)) {
		fprintf(stderr, "usage: eh-echo --listen IP:PORT\n");
		return 2;
	}
	/* No SA_RESTART: a signal must interrupt the blocking recvmmsg. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("eh-echo: socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	eh_sockbufs(fd);
	if (bind(fd, (struct sockaddr *)&listen_sin, sizeof(listen_sin))) {
		fprintf(stderr, "eh-echo: bind %s: %s\n", argv[2], strerror(errno));
		return 1;
	}

	for (i = 0; i < EH_BENCH_BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		memset(&in[i], 0, sizeof(in[i]));
		in[i].msg_hdr.msg_iov = &iov[i];
		in[i].msg_hdr.msg_iovlen = 1;
	}

	while (!stop) {
		for (i = 0; i < EH_BENCH_BATCH; i++) {
			in[i].msg_hdr.msg_name = &addrs[i];
			in[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
		}
		/* Block for the first datagram, then take what is queued. */
		n = recvmmsg(fd, in, EH_BENCH_BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("eh-echo: recvmmsg");
			return 1;
		}
		for (i = 0, k = 0; i < n; i++) {
			struct eh_hdr *h = (struct eh_hdr *)bufs[i];

			if (!eh_hdr_ok(bufs[i], in[i].msg_len, EH_T_SVCQ)) {
				bad++;
				continue;
			}
			h->type = EH_T_SVCR;
			oiov[k].iov_base = bufs[i];
			oiov[k].iov_len = in[i].msg_len;
			memset(&out[k], 0, sizeof(out[k]));
			out[k].msg_hdr.msg_name = &addrs[i];
			out[k].msg_hdr.msg_namelen = sizeof(addrs[i]);
			out[k].msg_hdr.msg_iov = &oiov[k];
			out[k].msg_hdr.msg_iovlen = 1;
			k++;
		}
		for (sent = 0, lost = 0; sent < k;) {
			int r = sendmmsg(fd, out + sent, k - sent, 0);

			if (r < 0) {
				if (errno == EINTR)
					continue;
				/* Count the datagram as lost; the generator sees it too. */
				lost++;
				sent++;
				continue;
			}
			sent += r;
		}
		answered += k - lost;
		send_err += lost;
	}
	fprintf(stderr, "eh-echo: answered %llu, malformed %llu, send errors %llu\n",
		(unsigned long long)answered, (unsigned long long)bad,
		(unsigned long long)send_err);
	close(fd);
	return 0;
}
