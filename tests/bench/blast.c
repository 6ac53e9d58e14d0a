// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * eh-blast: the benchmark's load generator, run in the MUD's namespace.
 * Sends offload requests (struct eh_hdr, SVCQ, small body) to VIP:port from
 * one connected UDP socket - so only answers whose source is VIP:port are
 * received - and matches answers to requests by seq.
 *
 *   eh-blast --to IP:PORT --window N [common options]    saturation
 *   eh-blast --to IP:PORT --rate R   [common options]    fixed rate
 *     common: [--mud-id N] [--body BYTES] [--duration S] [--warmup S]
 *             [--timeout-ms T] [--tick-us U] [--label TEXT]
 *
 * Saturation (closed loop): N requests are kept outstanding; every answer
 * lets one more go. Result: answered requests per second.
 * Fixed rate (open loop): requests leave on a schedule of R per second
 * whatever comes back; the latency of each is measured from the moment it
 * was handed to the kernel to the moment its answer was read. The generator
 * wakes up every --tick-us (50) and sends what is due in one sendmmsg: a
 * timed sleep per request costs more CPU than the request itself in a VM
 * (timer and halt exits), which made the generator the bottleneck.
 *
 * Only the [warmup, warmup + duration) interval is measured. A request not
 * answered within --timeout-ms is counted lost. One JSON object on stdout.
 */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/prctl.h>

#include "bench.h"

#define SLOTS		(1u << 16)	/* in-flight table, indexed by seq */
#define MAX_SAMPLES	(8u << 20)	/* latency samples kept */

struct slot {
	uint64_t sent_ns;		/* CLOCK_MONOTONIC when handed to the kernel */
	uint32_t seq;
	uint8_t busy;
	uint8_t measured;		/* sent inside the measured interval */
};

static struct slot slots[SLOTS];
static uint32_t *samples;
static uint32_t n_samples;

static struct {
	uint64_t sent, answered, lost, bad, late, send_err;	/* measured interval */
	uint64_t sent_all, answered_all;
	uint64_t max_behind_ns;		/* fixed rate: worst lag behind schedule */
} st;

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(double p)
{
	uint32_t i;

	if (!n_samples)
		return 0;
	i = (uint32_t)(p * (n_samples - 1) + 0.5);
	return samples[i] / 1000.0;
}

int main(int argc, char **argv)
{
	static uint8_t txbuf[EH_BENCH_BATCH][EH_BENCH_MTU], rxbuf[EH_BENCH_BATCH][EH_BENCH_MTU];
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "window", required_argument, NULL, 'w' },
		{ "rate", required_argument, NULL, 'r' },
		{ "mud-id", required_argument, NULL, 'm' },
		{ "body", required_argument, NULL, 'b' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "label", required_argument, NULL, 'l' },
		{ "tick-us", required_argument, NULL, 'k' },
		{ 0 }
	};
	struct mmsghdr tx[EH_BENCH_BATCH], rx[EH_BENCH_BATCH];
	struct iovec txiov[EH_BENCH_BATCH], rxiov[EH_BENCH_BATCH];
	struct sockaddr_in to;
	const char *to_arg = NULL, *label = "";
	double duration = 2.0, warmup = 0.5, rate = 0;
	unsigned long window = 0, body = 32, mud_id = 1, timeout_ms = 200;
	uint64_t t_start, t_meas, t_end, now, next_ns = 0, interval_ns = 0, timeout_ns;
	uint64_t sum_ns = 0, tick_ns = 50000;
	uint32_t seq = 0, oldest = 0, outstanding, max_out;
	double elapsed, p50, p99, p999, mean;
	int fd, opt, i, n;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 't': to_arg = optarg; break;
		case 'w': window = strtoul(optarg, NULL, 0); break;
		case 'r': rate = strtod(optarg, NULL); break;
		case 'm': mud_id = strtoul(optarg, NULL, 0); break;
		case 'b': body = strtoul(optarg, NULL, 0); break;
		case 'd': duration = strtod(optarg, NULL); break;
		case 'W': warmup = strtod(optarg, NULL); break;
		case 'T': timeout_ms = strtoul(optarg, NULL, 0); break;
		case 'l': label = optarg; break;
		case 'k': tick_ns = strtoul(optarg, NULL, 0) * 1000ull; break;
		default: goto usage;
		}
	}
	if (optind != argc || eh_parse_ipv4_port(to_arg, &to) || (!window == !(rate > 0)) ||
	    window > SLOTS / 4 || body > EH_BODY_MAX || duration <= 0 || warmup < 0 ||
	    !timeout_ms)
		goto usage;

	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	if (!samples) {
		fprintf(stderr, "eh-blast: out of memory\n");
		return 1;
	}
	/* Sleeps of a few microseconds must stay a few microseconds. */
	prctl(PR_SET_TIMERSLACK, 1UL);

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("eh-blast: socket");
		return 1;
	}
	eh_sockbufs(fd);
	if (connect(fd, (struct sockaddr *)&to, sizeof(to))) {
		fprintf(stderr, "eh-blast: connect %s: %s\n", to_arg, strerror(errno));
		return 1;
	}

	for (i = 0; i < EH_BENCH_BATCH; i++) {
		struct eh_hdr *h = (struct eh_hdr *)txbuf[i];

		memset(txbuf[i], 0xa5, sizeof(struct eh_hdr) + body);
		eh_hdr_init(h, EH_T_SVCQ, 0, mud_id, 0, 0, body);	/* seq, send_ns: per send */
		txiov[i].iov_base = txbuf[i];
		txiov[i].iov_len = sizeof(struct eh_hdr) + body;
		memset(&tx[i], 0, sizeof(tx[i]));
		tx[i].msg_hdr.msg_iov = &txiov[i];
		tx[i].msg_hdr.msg_iovlen = 1;
		rxiov[i].iov_base = rxbuf[i];
		rxiov[i].iov_len = sizeof(rxbuf[i]);
		memset(&rx[i], 0, sizeof(rx[i]));
		rx[i].msg_hdr.msg_iov = &rxiov[i];
		rx[i].msg_hdr.msg_iovlen = 1;
	}

	timeout_ns = timeout_ms * 1000000ull;
	/* Fixed rate: never more in flight than the table can match. */
	max_out = window ? window : SLOTS / 4;
	if (rate > 0)
		interval_ns = (uint64_t)(1e9 / rate);
	outstanding = 0;
	t_start = eh_mono_ns();
	t_meas = t_start + (uint64_t)(warmup * 1e9);
	t_end = t_meas + (uint64_t)(duration * 1e9);
	next_ns = t_start;

	for (;;) {
		uint64_t wait_ns;
		int want = 0, sent;

		now = eh_mono_ns();
		/* Lost requests: the oldest outstanding one has timed out. */
		while (oldest != seq) {
			struct slot *s = &slots[oldest & (SLOTS - 1)];

			if (s->busy && s->seq == oldest) {
				if (now - s->sent_ns < timeout_ns)
					break;
				s->busy = 0;
				outstanding--;
				if (s->measured)
					st.lost++;
			}
			oldest++;
		}
		if (now >= t_end + timeout_ns || (now >= t_end && !outstanding))
			break;

		if (now < t_end) {
			if (window) {
				want = max_out - outstanding;
			} else if (now >= next_ns) {
				want = (now - next_ns) / interval_ns + 1;
				if (now - next_ns > st.max_behind_ns && now >= t_meas)
					st.max_behind_ns = now - next_ns;
			}
			if (want > (int)(max_out - outstanding))
				want = max_out - outstanding;
			if (want > EH_BENCH_BATCH)
				want = EH_BENCH_BATCH;
		}
		if (want > 0) {
			uint64_t wall = eh_real_ns();

			for (i = 0; i < want; i++) {
				struct eh_hdr *h = (struct eh_hdr *)txbuf[i];

				h->seq = htonl(seq + i);
				h->send_ns = htobe64(wall);
			}
			now = eh_mono_ns();
			sent = sendmmsg(fd, tx, want, 0);
			if (sent < 0) {
				if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR &&
				    errno != ECONNREFUSED) {
					perror("eh-blast: sendmmsg");
					return 1;
				}
				st.send_err++;
				sent = 0;
			}
			for (i = 0; i < sent; i++) {
				struct slot *s = &slots[(seq + i) & (SLOTS - 1)];

				s->sent_ns = now;
				s->seq = seq + i;
				s->busy = 1;
				s->measured = now >= t_meas && now < t_end;
				st.sent += s->measured;
			}
			st.sent_all += sent;
			seq += sent;
			outstanding += sent;
			if (!window)
				next_ns += (uint64_t)sent * interval_ns;
		}

		/*
		 * Wait for answers: while the window is full (saturation), until
		 * the next request is due (fixed rate), or, once the measured
		 * interval is over, for the last answers.
		 */
		now = eh_mono_ns();
		if (now >= t_end || (window && outstanding >= max_out))
			wait_ns = timeout_ns;
		else if (!window && next_ns + tick_ns > now)
			wait_ns = next_ns + tick_ns - now;
		else
			wait_ns = 0;
		if (wait_ns) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			struct timespec ts = { wait_ns / 1000000000ull, wait_ns % 1000000000ull };

			if (ppoll(&pfd, 1, &ts, NULL) <= 0)
				continue;
		}
		n = recvmmsg(fd, rx, EH_BENCH_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			if (errno == ECONNREFUSED) {	/* ICMP port unreachable */
				st.send_err++;
				continue;
			}
			perror("eh-blast: recvmmsg");
			return 1;
		}
		now = eh_mono_ns();
		for (i = 0; i < n; i++) {
			const struct eh_hdr *h = (const struct eh_hdr *)rxbuf[i];
			struct slot *s;
			uint32_t aseq;

			if (!eh_hdr_ok(rxbuf[i], rx[i].msg_len, EH_T_SVCR) ||
			    ntohl(h->mud_id) != mud_id) {
				st.bad++;
				continue;
			}
			aseq = ntohl(h->seq);
			s = &slots[aseq & (SLOTS - 1)];
			if (!s->busy || s->seq != aseq) {
				st.late++;	/* duplicate, or after its timeout */
				continue;
			}
			s->busy = 0;
			outstanding--;
			st.answered_all++;
			if (!s->measured)
				continue;
			st.answered++;
			sum_ns += now - s->sent_ns;
			if (n_samples < MAX_SAMPLES)
				samples[n_samples++] = (uint32_t)(now - s->sent_ns);
		}
	}

	qsort(samples, n_samples, sizeof(*samples), cmp_u32);
	p50 = pct_us(0.50);
	p99 = pct_us(0.99);
	p999 = pct_us(0.999);
	mean = st.answered ? sum_ns / 1000.0 / st.answered : 0;
	elapsed = duration;
	printf("{\"label\":\"%s\",\"mode\":\"%s\",\"window\":%lu,\"offered_rps\":%.0f,"
	       "\"body\":%lu,\"duration_s\":%.3f,\"sent\":%llu,\"answered\":%llu,"
	       "\"lost\":%llu,\"bad\":%llu,\"late\":%llu,\"send_err\":%llu,"
	       "\"rps\":%.0f,\"mean_us\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
	       "\"p999_us\":%.2f,\"max_us\":%.2f,\"max_behind_us\":%.2f}\n",
	       label, window ? "saturation" : "rate", window, rate, body, elapsed,
	       (unsigned long long)st.sent, (unsigned long long)st.answered,
	       (unsigned long long)st.lost, (unsigned long long)st.bad,
	       (unsigned long long)st.late, (unsigned long long)st.send_err,
	       st.answered / elapsed, mean, p50, p99, p999,
	       n_samples ? samples[n_samples - 1] / 1000.0 : 0,
	       st.max_behind_ns / 1000.0);
	free(samples);
	close(fd);
	return 0;
usage:
	fprintf(stderr,
		"usage: eh-blast --to IP:PORT (--window N | --rate R) [--mud-id N] [--body BYTES]\n"
		"                [--duration S] [--warmup S] [--timeout-ms T] [--tick-us U]\n"
		"                [--label TEXT]\n");
	return 2;
}
