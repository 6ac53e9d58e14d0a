// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * eh-relay: the userspace baseline of the benchmark. It does the job of the
 * XDP FORWARD path in a process: offload requests to VIP:port are relayed to
 * the MUD's backend, answers go back to the MUD with VIP:port as source.
 *
 *   eh-relay --listen VIP:PORT --backend IP:PORT
 *
 * Written to be as fast as a plain UDP relay gets:
 *   - one front socket bound to VIP:PORT (IP_FREEBIND, so the VIP need not be
 *     configured), answers are sent from it, hence their source is VIP:PORT;
 *   - one connected upstream socket per MUD (address, port) - the way a UDP
 *     proxy keeps flows apart without NAT - so that an answer arriving on it
 *     belongs to exactly that MUD and needs no lookup;
 *   - recvmmsg/sendmmsg in batches of EH_BENCH_BATCH in both directions,
 *     runs of consecutive requests of one MUD leave in one sendmmsg;
 *   - requests are checked like the XDP program checks them (magic, version,
 *     type, lengths) and malformed ones are dropped and counted.
 * Single thread, epoll, level triggered.
 *
 * Runs until SIGINT/SIGTERM, then prints its counters on stderr.
 */
#include <signal.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "bench.h"

#define MAX_CLIENTS	1024		/* power of two: open addressing */
#define DRAIN_ROUNDS	8		/* batches per socket and wakeup */

struct client {
	struct sockaddr_in addr;	/* the MUD; sin_family 0: free slot */
	int up_fd;			/* connected to the backend */
};

static struct client clients[MAX_CLIENTS];
static struct sockaddr_in backend;
static int front_fd, ep_fd, n_clients;
static uint64_t c_req, c_ans, c_malformed, c_full, c_send_err;
static volatile sig_atomic_t stop;

static uint8_t bufs[EH_BENCH_BATCH][EH_BENCH_MTU];
static struct sockaddr_in addrs[EH_BENCH_BATCH];
static struct mmsghdr msgs[EH_BENCH_BATCH];
static struct iovec iovs[EH_BENCH_BATCH];

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void reset_msgs(int with_name)
{
	int i;

	for (i = 0; i < EH_BENCH_BATCH; i++) {
		iovs[i].iov_base = bufs[i];
		iovs[i].iov_len = sizeof(bufs[i]);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		if (with_name) {
			msgs[i].msg_hdr.msg_name = &addrs[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
		}
	}
}

static inline uint32_t client_hash(const struct sockaddr_in *a)
{
	uint32_t h = a->sin_addr.s_addr * 2654435761u;

	return (h ^ (a->sin_port * 40503u)) & (MAX_CLIENTS - 1);
}

/* The MUD's slot, created (with its upstream socket) on first sight. */
static struct client *client_get(const struct sockaddr_in *a)
{
	uint32_t i = client_hash(a), probes;
	struct epoll_event ev = { .events = EPOLLIN };
	struct client *c;
	int fd;

	for (probes = 0; probes < MAX_CLIENTS; probes++, i = (i + 1) & (MAX_CLIENTS - 1)) {
		c = &clients[i];
		if (!c->addr.sin_family)
			break;
		if (c->addr.sin_addr.s_addr == a->sin_addr.s_addr &&
		    c->addr.sin_port == a->sin_port)
			return c;
	}
	/* Keep the table at most half full so that probing stays short. */
	if (n_clients >= MAX_CLIENTS / 2)
		return NULL;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("eh-relay: socket");
		return NULL;
	}
	eh_sockbufs(fd);
	if (connect(fd, (struct sockaddr *)&backend, sizeof(backend))) {
		perror("eh-relay: connect to backend");
		close(fd);
		return NULL;
	}
	ev.data.u32 = i;
	if (epoll_ctl(ep_fd, EPOLL_CTL_ADD, fd, &ev)) {
		perror("eh-relay: epoll_ctl");
		close(fd);
		return NULL;
	}
	c->addr = *a;
	c->up_fd = fd;
	n_clients++;
	return c;
}

/* sendmmsg all of @v[0..n); a datagram the kernel refuses is counted and skipped. */
static void send_all(int fd, struct mmsghdr *v, int n)
{
	int sent = 0, r;

	while (sent < n) {
		r = sendmmsg(fd, v + sent, n - sent, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			c_send_err++;
			sent++;
			continue;
		}
		sent += r;
	}
}

/* Requests: front socket -> each MUD's upstream socket. */
static void relay_requests(void)
{
	struct client *run_c = NULL;
	int round, n, i, run_start = 0, k;

	for (round = 0; round < DRAIN_ROUNDS; round++) {
		reset_msgs(1);
		n = recvmmsg(front_fd, msgs, EH_BENCH_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		c_req += n;
		/*
		 * Compact the batch in place to the valid requests, then send each
		 * run of one MUD's requests with one sendmmsg on its socket.
		 */
		for (i = 0, k = 0; i < n; i++) {
			struct client *c;

			if (!eh_hdr_ok(bufs[i], msgs[i].msg_len, EH_T_SVCQ)) {
				c_malformed++;
				continue;
			}
			c = client_get(&addrs[i]);
			if (!c) {
				c_full++;
				continue;
			}
			if (c != run_c) {
				if (run_c && k > run_start)
					send_all(run_c->up_fd, msgs + run_start, k - run_start);
				run_c = c;
				run_start = k;
			}
			iovs[k].iov_base = bufs[i];
			iovs[k].iov_len = msgs[i].msg_len;
			msgs[k].msg_hdr.msg_iov = &iovs[k];
			msgs[k].msg_hdr.msg_iovlen = 1;
			/* Connected socket: no destination address. */
			msgs[k].msg_hdr.msg_name = NULL;
			msgs[k].msg_hdr.msg_namelen = 0;
			msgs[k].msg_hdr.msg_control = NULL;
			msgs[k].msg_hdr.msg_controllen = 0;
			msgs[k].msg_hdr.msg_flags = 0;
			k++;
		}
		if (run_c && k > run_start)
			send_all(run_c->up_fd, msgs + run_start, k - run_start);
		run_c = NULL;
		run_start = 0;
		if (n < EH_BENCH_BATCH)
			return;
	}
}

/* Answers: one MUD's upstream socket -> the front socket, to that MUD. */
static void relay_answers(struct client *c)
{
	int round, n, i;

	for (round = 0; round < DRAIN_ROUNDS; round++) {
		reset_msgs(0);
		n = recvmmsg(c->up_fd, msgs, EH_BENCH_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (i = 0; i < n; i++) {
			iovs[i].iov_len = msgs[i].msg_len;
			msgs[i].msg_hdr.msg_name = &c->addr;
			msgs[i].msg_hdr.msg_namelen = sizeof(c->addr);
		}
		c_ans += n;
		send_all(front_fd, msgs, n);
		if (n < EH_BENCH_BATCH)
			return;
	}
}

int main(int argc, char **argv)
{
	struct epoll_event evs[64], ev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
	struct sigaction sa = { .sa_handler = on_signal };
	struct sockaddr_in listen_sin;
	const char *listen_arg = NULL, *backend_arg = NULL;
	int one = 1, i, n;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--listen"))
			listen_arg = argv[i + 1];
		else if (!strcmp(argv[i], "--backend"))
			backend_arg = argv[i + 1];
		else
			break;
	}
	if (i != argc || eh_parse_ipv4_port(listen_arg, &listen_sin) ||
	    eh_parse_ipv4_port(backend_arg, &backend)) {
		fprintf(stderr, "usage: eh-relay --listen VIP:PORT --backend IP:PORT\n");
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	front_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (front_fd < 0) {
		perror("eh-relay: socket");
		return 1;
	}
	setsockopt(front_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(front_fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	eh_sockbufs(front_fd);
	if (bind(front_fd, (struct sockaddr *)&listen_sin, sizeof(listen_sin))) {
		fprintf(stderr, "eh-relay: bind %s: %s\n", listen_arg, strerror(errno));
		return 1;
	}
	ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (ep_fd < 0 || epoll_ctl(ep_fd, EPOLL_CTL_ADD, front_fd, &ev)) {
		perror("eh-relay: epoll");
		return 1;
	}

	while (!stop) {
		n = epoll_wait(ep_fd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("eh-relay: epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.u32 == UINT32_MAX)
				relay_requests();
			else
				relay_answers(&clients[evs[i].data.u32]);
		}
	}
	fprintf(stderr,
		"eh-relay: requests %llu, answers %llu, malformed %llu, "
		"table full %llu, send errors %llu, clients %d\n",
		(unsigned long long)c_req, (unsigned long long)c_ans,
		(unsigned long long)c_malformed, (unsigned long long)c_full,
		(unsigned long long)c_send_err, n_clients);
	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].addr.sin_family)
			close(clients[i].up_fd);
	close(ep_fd);
	close(front_fd);
	return 0;
}
