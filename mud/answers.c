// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Every datagram on the request socket: from the service address, an answer
 * to a request of ours, with the digest and result this MUD computed itself.
 * Anything else is counted (foreign, bad answers) and fails the run.
 */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <endian.h>

#include "eh_digest.h"
#include "eh_log.h"
#include "eh_time.h"
#include "eh_wire.h"
#include "mud.h"

static void note_server(struct mud *m, const char *srv)
{
	int i;

	for (i = 0; i < m->nservers; i++)
		if (!strcmp(m->servers[i], srv))
			return;
	if (m->nservers < 8)
		strcpy(m->servers[m->nservers++], srv);
}

/*
 * An SVCR flagged GAP or STALE answers nothing: the request stays
 * outstanding (retried on its timeout). GAP: the service waits for an earlier
 * seq, which our retries bring. STALE to a request already answered is a
 * late duplicate; STALE to one never answered means the service applied it
 * and we can never check its answer: an error, reported.
 */
static void position_answer(struct mud *m, const struct eh_hdr_host *h,
			    const struct eh_svcr_pos *p, const char *srv, struct req *r,
			    uint32_t seq)
{
	bool stale = h->flags & EH_F_STALE;
	char arg[16];

	if (!stale) {
		m->gap_answers++;
	} else if (r->answered) {
		m->stale_answers++;
	} else {
		if (!r->stale)
			m->stale_errors++;
		r->stale = 1;
		if (m->stale_errors <= 5)
			fprintf(stderr, "edgehop-mud: STALE answer to unanswered seq %u from %s (its next seq %u): applied, its answer lost for good\n",
				seq, srv, ntohl(p->next_seq));
	}
	snprintf(arg, sizeof(arg), "%u", seq);
	/* Not "SVCR": logrepo's report counts those as answers. */
	eh_log_event(&m->log, srv, mud_ap_name(m), stale ? "SVCR-STALE" : "SVCR-GAP",
		     arg, "recvd", "run=%s mud=%u next_seq=%u", m->run, m->mud_id,
		     ntohl(p->next_seq));
}

void mud_handle_answer(struct mud *m, const uint8_t *buf, ssize_t n,
		       const struct sockaddr_in *src)
{
	const struct eh_svcr_body *b = (const void *)(buf + sizeof(struct eh_hdr));
	struct eh_hdr_host h;
	uint8_t pl[EH_BODY_MAX];
	char srv[EH_NAME_LEN], arg[16];
	uint32_t seq, idx;
	bool mismatch, dup, late, fwd = false;
	struct req *r;
	uint64_t now = eh_mono_ns();

	if (src->sin_addr.s_addr != m->svc.sin_addr.s_addr ||
	    src->sin_port != m->svc.sin_port) {
		/* only the dataplane's rewrite makes answers come from the VIP */
		if (m->foreign++ < 5)
			fprintf(stderr, "edgehop-mud: FOREIGN datagram from %s:%u (%zd bytes), not from the service address %s:%u\n",
				inet_ntoa(src->sin_addr), ntohs(src->sin_port), n,
				m->svc_str, ntohs(m->svc.sin_port));
		return;
	}
	if (n < 0 || eh_hdr_check(buf, n, &h) || h.type != EH_T_SVCR || h.len < sizeof(*b) ||
	    h.mud_id != m->mud_id || (idx = h.seq - m->start_seq) >= m->next) {
		if (m->bad_answers++ < 5)
			fprintf(stderr, "edgehop-mud: BAD answer from the service address (%zd bytes): not an answer to a request of MUD %u\n",
				n, m->mud_id);
		return;
	}
	seq = h.seq;
	r = &m->reqs[idx];
	memcpy(srv, b->server, EH_NAME_LEN);
	srv[EH_NAME_LEN - 1] = '\0';
	for (char *p = srv; *p; p++)	/* keep it loggable */
		if (*p <= ' ' || *p > '~' || *p == '"' || *p == '\\')
			*p = '_';
	if (h.flags & (EH_F_STALE | EH_F_GAP)) {
		position_answer(m, &h, (const void *)b, srv, r, seq);
		return;
	}
	eh_payload_fill(m->mud_id, seq, pl, m->payload_bytes);
	mismatch = memcmp(b->digest, r->expect, EH_DIGEST_LEN) ||
		   be64toh(b->result) != eh_offload_result(seq, pl, m->payload_bytes);
	dup = r->answered;
	late = h.send_ns != r->last_wire_ns;
	if (h.flags & EH_F_DUP)
		m->cached_answers++;
	if (mismatch && !r->mismatch) {
		r->mismatch = 1;
		m->mismatches++;
		char got[65], want[65];

		eh_digest_hex(b->digest, got);
		eh_digest_hex(r->expect, want);
		if (m->mismatches <= 5)
			fprintf(stderr, "edgehop-mud: MISMATCH seq %u from %s: digest %s, expected %s\n",
				seq, srv, got, want);
	}
	if (dup) {
		m->dup_answers++;
	} else {
		if (late)
			m->late_answers++;
		r->answered = 1;
		r->ans_mono = now;
		m->answered++;
		if (r->lost) {		/* answered after we had given up */
			r->lost = 0;
			m->lost--;
		} else {
			mud_drop_outstanding(m, idx);
		}
		note_server(m, srv);
		mud_phase_answered(m, srv);
		/*
		 * Sent from a new AP and answered by the server that served
		 * before we got there: the new AP forwarded it to the old
		 * container.
		 */
		if (r->epoch && m->epoch_pre[r->epoch][0] &&
		    !strcmp(srv, m->epoch_pre[r->epoch])) {
			fwd = true;
			m->forwarded++;
		}
		snprintf(m->last_server, sizeof(m->last_server), "%s", srv);
	}
	snprintf(arg, sizeof(arg), "%u", seq);
	eh_log_event(&m->log, srv, mud_ap_name(m), "SVCR", arg, "recvd",
		     "run=%s mud=%u rtt_ns=%llu phase=%s dup=%d cached=%d late=%d mismatch=%d fwd=%d",
		     m->run, m->mud_id, (unsigned long long)(now - r->first_mono), m->phases[r->phase].name,
		     dup, !!(h.flags & EH_F_DUP), late, mismatch, fwd);
}
