// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* (Re)association with an AP's agent: (RE)ASSOC_REQ until READY or ASSOC_FAIL. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "eh_log.h"
#include "eh_time.h"
#include "eh_wire.h"
#include "mud.h"

/*
 * Send (RE)ASSOC_REQ to @ap's agent and wait for its READY, repeating the
 * request every ASSOC_RETRY_MS until --assoc-timeout-ms after the first: the
 * agent answers only once the MUD's container serves (or, on REASSOC, once it
 * steers the MUD), which takes seconds. Returns 0, -ECONNREFUSED on
 * ASSOC_FAIL (its reason text in m->assoc_error), -ETIMEDOUT.
 *
 * Repeats are harmless here: any READY of the wanted type (whichever try it
 * echoes) completes the association, and the READYs an agent sends to the
 * other tries land on this socket, which nobody reads again (the next
 * association opens a fresh one).
 */
#define ASSOC_RETRY_MS	1000

/* The agent's reason (ASSOC_FAIL body, text, not NUL-terminated), printable. */
static void fail_reason(struct mud *m, const uint8_t *body, size_t len)
{
	size_t i;

	if (len > sizeof(m->assoc_error) - 1)
		len = sizeof(m->assoc_error) - 1;
	for (i = 0; i < len; i++) {
		char c = (char)body[i];

		/* kept printable and JSON-safe: it goes into the report */
		m->assoc_error[i] = c < ' ' || c > '~' || c == '"' || c == '\\' ? '_' : c;
	}
	m->assoc_error[i] = '\0';
	if (!len)
		snprintf(m->assoc_error, sizeof(m->assoc_error), "(no reason given)");
}

int mud_associate(struct mud *m, int ap_idx, bool reassoc, double *ms)
{
	struct ap *ap = &m->aps[ap_idx];
	const char *ev = reassoc ? "REASSOCIATION REQUEST" : "ASSOCIATION REQUEST";
	uint8_t pkt[sizeof(struct eh_hdr) + sizeof(struct eh_assoc_body)];
	struct eh_hdr *h = (void *)pkt;
	struct eh_assoc_body *b = (void *)(pkt + sizeof(*h));
	uint8_t want = reassoc ? EH_T_REASSOC_READY : EH_T_ASSOC_READY;
	struct sockaddr_in local;
	socklen_t llen = sizeof(local);
	uint64_t t0 = eh_mono_ns();
	uint64_t end = t0 + m->assoc_timeout_ms * 1000000ull;
	unsigned int every = m->assoc_timeout_ms < ASSOC_RETRY_MS ?
			     m->assoc_timeout_ms : ASSOC_RETRY_MS;
	char agent[INET_ADDRSTRLEN];
	int tries;

	inet_ntop(AF_INET, &ap->agent.sin_addr, agent, sizeof(agent));
	/*
	 * A fresh socket per AP: a connected UDP socket keeps the source
	 * address of its first connect(), which is the old AP's subnet.
	 */
	if (m->agent_fd >= 0)
		close(m->agent_fd);
	m->agent_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (m->agent_fd < 0)
		return -errno;
	/* connect() also tells us our source address towards the agent */
	if (connect(m->agent_fd, (struct sockaddr *)&ap->agent, sizeof(ap->agent)) ||
	    getsockname(m->agent_fd, (struct sockaddr *)&local, &llen))
		return -errno;
	memset(pkt, 0, sizeof(pkt));
	b->mud_addr = local.sin_addr.s_addr;
	if (reassoc)
		b->prev_ap_addr = m->aps[m->cur_ap].agent.sin_addr.s_addr;
	snprintf(b->mud_name, sizeof(b->mud_name), "%s", m->name);

	for (tries = 0; eh_mono_ns() < end && !mud_stop; tries++) {
		uint64_t deadline;

		eh_hdr_init(h, reassoc ? EH_T_REASSOC_REQ : EH_T_ASSOC_REQ, 0, m->mud_id, tries,
			    eh_real_ns(), sizeof(*b));
		if (send(m->agent_fd, pkt, sizeof(pkt), 0) < 0 &&
		    errno != ECONNREFUSED)
			return -errno;
		eh_log_event(&m->log, ap->name, m->name, ev, NULL, "sent",
			     "run=%s mud=%u try=%d", m->run, m->mud_id, tries);
		deadline = eh_mono_ns() + every * 1000000ull;
		if (deadline > end)
			deadline = end;
		while (eh_mono_ns() < deadline && !mud_stop) {
			struct pollfd pfd = { .fd = m->agent_fd, .events = POLLIN };
			uint8_t in[1500];
			struct eh_hdr_host r;
			ssize_t n;

			if (poll(&pfd, 1, (int)((deadline - eh_mono_ns()) / 1000000) + 1) <= 0)
				continue;
			n = recv(m->agent_fd, in, sizeof(in), 0);
			if (n < 0 || eh_hdr_check(in, n, &r) || r.mud_id != m->mud_id)
				continue;
			if (r.type == EH_T_ASSOC_FAIL) {
				fail_reason(m, in + sizeof(struct eh_hdr), r.len);
				eh_log_event(&m->log, agent, ap->name, "ASSOC-FAIL",
					     NULL, "recvd", "run=%s mud=%u", m->run,
					     m->mud_id);
				return -ECONNREFUSED;
			}
			if (r.type != want)
				continue;
			*ms = (eh_mono_ns() - t0) / 1e6;
			eh_log_event(&m->log, agent, ap->name,
				     reassoc ? "REASSOC-READY" : "READY", NULL,
				     "recvd", "run=%s mud=%u ms=%.3f", m->run,
				     m->mud_id, *ms);
			return 0;
		}
	}
	return -ETIMEDOUT;
}
