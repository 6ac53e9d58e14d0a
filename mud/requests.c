// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The request engine: first sends at --rate within a sliding --window,
 * retries after --timeout-ms, gives up after --give-up-ms, and waits for
 * answers (answers.c) in between.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "eh_digest.h"
#include "eh_log.h"
#include "eh_time.h"
#include "eh_wire.h"
#include "mud.h"

volatile sig_atomic_t mud_stop;
volatile sig_atomic_t mud_finish;

static int send_try(struct mud *m, uint32_t idx)
{
	uint8_t pkt[sizeof(struct eh_hdr) + EH_BODY_MAX];
	struct eh_hdr *h = (void *)pkt;
	struct req *r = &m->reqs[idx];
	uint32_t seq = m->start_seq + idx;
	char arg[16];
	uint64_t now = eh_mono_ns();

	r->last_wire_ns = eh_real_ns();
	eh_hdr_init(h, EH_T_SVCQ, r->tries ? EH_F_RETRY : 0, m->mud_id, seq, r->last_wire_ns,
		    m->payload_bytes);
	eh_payload_fill(m->mud_id, seq, pkt + sizeof(*h), m->payload_bytes);
	if (!r->tries) {
		r->first_mono = now;
		r->phase = (uint8_t)m->cur_phase;
	} else {
		m->retries++;
	}
	r->last_mono = now;
	r->tries++;
	m->transmissions++;
	/* a send that fails (no route mid-handoff) is just a lost try */
	sendto(m->fd, pkt, sizeof(*h) + m->payload_bytes, 0,
	       (struct sockaddr *)&m->svc, sizeof(m->svc));
	snprintf(arg, sizeof(arg), "%u", seq);
	eh_log_event(&m->log, mud_ap_name(m), m->name, "SVCQ", arg, "sent",
		     "run=%s mud=%u try=%u phase=%s", m->run, m->mud_id, r->tries,
		     m->phases[m->cur_phase].name);
	return 0;
}

static void send_first(struct mud *m)
{
	uint32_t idx = m->next++;
	uint32_t seq = m->start_seq + idx;
	uint8_t pl[EH_BODY_MAX];

	mud_check_route(m);
	m->reqs[idx].epoch = m->epoch;
	/* the expected answer: the chain advanced by this request */
	eh_payload_fill(m->mud_id, seq, pl, m->payload_bytes);
	eh_digest_step(m->chain, seq, pl, m->payload_bytes, m->chain);
	memcpy(m->reqs[idx].expect, m->chain, EH_DIGEST_LEN);
	m->outstanding[m->nout++] = idx;
	send_try(m, idx);
}

/*
 * outstanding[] stays sorted by seq (new requests are appended, removal
 * keeps the order), so that retransmissions after a loss leave in seq order:
 * the service applies only the next seq and holds off the rest.
 */
static void remove_at(struct mud *m, uint32_t i)
{
	memmove(&m->outstanding[i], &m->outstanding[i + 1],
		(m->nout - i - 1) * sizeof(m->outstanding[0]));
	m->nout--;
}

void mud_drop_outstanding(struct mud *m, uint32_t idx)
{
	for (uint32_t i = 0; i < m->nout; i++) {
		if (m->outstanding[i] == idx) {
			remove_at(m, i);
			return;
		}
	}
}

static void check_timeouts(struct mud *m)
{
	uint64_t now = eh_mono_ns();
	uint32_t i = 0;

	while (i < m->nout) {
		uint32_t idx = m->outstanding[i];
		struct req *r = &m->reqs[idx];
		char arg[16];

		if (now - r->first_mono >= m->give_up_ms * 1000000ull) {
			r->lost = 1;
			m->lost++;
			snprintf(arg, sizeof(arg), "%u", m->start_seq + idx);
			eh_log_event(&m->log, mud_ap_name(m), m->name, "SVCQ", arg,
				     "lost", "run=%s mud=%u tries=%u", m->run,
				     m->mud_id, r->tries);
			remove_at(m, i);
			continue;
		}
		if (now - r->last_mono >= m->timeout_ms * 1000000ull)
			send_try(m, idx);
		i++;
	}
}

/*
 * A sliding window: a new request only while it is within --window of the
 * oldest unanswered one (not merely while fewer are in flight), so that a
 * retransmission is never older than the service's reply cache.
 *
 * Until the first request is answered the window is 1: a service starts a
 * MUD's session at the first seq it sees, so if request 0 were lost and
 * request 1 overtook it, the session would start at 1 (and 0 be stale).
 */
static bool window_open(const struct mud *m)
{
	uint32_t window = m->answered ? m->window : 1;

	return m->next < m->count &&
	       (!m->nout || m->next - m->outstanding[0] < window);
}

/* Next instant (mono ns) at which something is due; 0: now. */
static uint64_t next_due(struct mud *m, uint64_t t0)
{
	uint64_t due = UINT64_MAX, now = eh_mono_ns();

	if (window_open(m)) {
		uint64_t t = m->rate > 0 ?
			t0 + (uint64_t)((double)m->next * 1e9 / m->rate) : now;
		due = t;
	}
	for (uint32_t i = 0; i < m->nout; i++) {
		struct req *r = &m->reqs[m->outstanding[i]];
		uint64_t t = r->last_mono + m->timeout_ms * 1000000ull;
		uint64_t g = r->first_mono + m->give_up_ms * 1000000ull;

		if (t < due)
			due = t;
		if (g < due)
			due = g;
	}
	return due;
}

int mud_run(struct mud *m)
{
	uint64_t t0 = eh_mono_ns();
	int hk = 0;

	while (!mud_stop && (m->next < m->count || m->nout)) {
		uint64_t now = eh_mono_ns(), due;
		struct pollfd pfd = { .fd = m->fd, .events = POLLIN };
		int wait_ms;

		if (mud_finish && m->next < m->count)
			m->count = m->next;	/* what was sent is the whole run */

		/* a handoff waits until the request before it was sent */
		if (hk < m->nho && m->start_seq + m->next == m->ho[hk].seq &&
		    !m->ho[hk].done && m->next < m->count) {
			mud_handoff(m, &m->ho[hk], hk + 1);
			hk++;
			now = eh_mono_ns();
		}
		if (window_open(m) &&
		    (m->rate == 0 ||
		     now >= t0 + (uint64_t)((double)m->next * 1e9 / m->rate))) {
			if (!(hk < m->nho && m->start_seq + m->next == m->ho[hk].seq))
				send_first(m);
			continue;
		}
		check_timeouts(m);
		due = next_due(m, t0);
		now = eh_mono_ns();
		wait_ms = due == UINT64_MAX ? 1000 : due <= now ? 0 :
			  (int)((due - now + 999999) / 1000000);
		if (poll(&pfd, 1, wait_ms) > 0) {
			uint8_t buf[2048];
			struct sockaddr_in src;
			socklen_t slen;
			ssize_t n;

			for (;;) {
				slen = sizeof(src);
				n = recvfrom(m->fd, buf, sizeof(buf), MSG_DONTWAIT,
					     (struct sockaddr *)&src, &slen);
				if (n < 0)
					break;
				mud_handle_answer(m, buf, n, &src);
			}
		}
	}
	return mud_stop ? -EINTR : 0;
}
