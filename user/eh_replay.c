// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Replay of the replay buffer into the new container: see eh_replay.h. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <endian.h>

#include "eh_digest.h"
#include "eh_replay.h"
#include "eh_time.h"
#include "eh_wire.h"
#include "edgehop_proto.h"

uint16_t eh_csum(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *p = buf;

	for (; len > 1; len -= 2, p += 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

int eh_replayer_init(struct eh_replayer *r, struct eh_dp *dp, const struct eh_replay_opts *o)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int err;

	memset(r, 0, sizeof(*r));
	r->usock = r->rawsock = -1;
	r->ring.epfd = -1;
	r->dp = dp;
	r->o = *o;
	if (!r->o.timeout_ms)
		r->o.timeout_ms = 200;
	if (!r->o.retries)
		r->o.retries = 10;
	if (r->o.window <= 0 || r->o.window > EH_REPLAY_WINDOW)
		r->o.window = r->o.window > EH_REPLAY_WINDOW ? EH_REPLAY_WINDOW : 16;
	if (!r->o.gap_wait_ms)
		r->o.gap_wait_ms = 3000;
	if (!r->o.settle_ms)
		r->o.settle_ms = 1000;
	if (!r->o.deadline_ms)
		r->o.deadline_ms = 30000;
	r->idx = calloc(EH_REPLAY_SPAN, sizeof(*r->idx));
	r->answered = calloc(EH_REPLAY_SPAN, sizeof(*r->answered));
	r->held = calloc(EH_HELD_MAX, sizeof(*r->held));
	if (!r->idx || !r->answered || !r->held) {
		eh_replayer_fini(r);
		return -ENOMEM;
	}
	err = eh_dp_config(dp, &r->cfg);
	if (err) {
		fprintf(stderr, "edgehop: Couldn't read the dataplane configuration: %s\n", strerror(-err));
		return err;
	}
	err = eh_dp_ring_open(dp, o->mud, &r->ring);
	if (err) {
		if (err == -ENOENT)
			fprintf(stderr, "edgehop: MUD %s has no replay buffer: it is not in fwd-buf or buf-only\n",
				inet_ntoa(o->mud));
		eh_replayer_fini(r);
		return err;
	}
	r->scan_pos = eh_ring_consumed(&r->ring);

	r->usock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	sa.sin_addr = o->backend;
	sa.sin_port = htons(o->backend_port);
	if (r->usock < 0 || connect(r->usock, (struct sockaddr *)&sa, sizeof(sa)))
		goto err_sock;
	r->rawsock = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (r->rawsock < 0)
		goto err_sock;
	return 0;
err_sock:
	err = -errno;
	fprintf(stderr, "edgehop: Couldn't open replay sockets to %s:%u: %s\n",
		inet_ntoa(o->backend), o->backend_port, strerror(errno));
	eh_replayer_fini(r);
	return err;
}

void eh_replayer_fini(struct eh_replayer *r)
{
	free(r->held);
	free(r->idx);
	free(r->answered);
	r->held = NULL;
	r->idx = NULL;
	r->answered = NULL;
	r->nheld = 0;
	if (r->usock >= 0)
		close(r->usock);
	if (r->rawsock >= 0)
		close(r->rawsock);
	r->usock = r->rawsock = -1;
	eh_ring_close(&r->ring);
}

/* Send an answer to the MUD as if from VIP:port (the MUD never sees CT-y). */
static int relay_to_mud(struct eh_replayer *r, __be32 mud_addr, __be16 mud_port,
			const uint8_t *ans, size_t len)
{
	uint8_t pkt[sizeof(struct iphdr) + sizeof(struct udphdr) + 2048];
	struct iphdr *ip = (void *)pkt;
	struct udphdr *udp = (void *)(ip + 1);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = mud_addr };
	uint32_t pseudo;
	size_t ulen = sizeof(*udp) + len;

	if (len > sizeof(pkt) - sizeof(*ip) - sizeof(*udp))
		return -EMSGSIZE;
	memset(pkt, 0, sizeof(*ip) + sizeof(*udp));
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(sizeof(*ip) + ulen);
	ip->saddr = r->cfg.vip;
	ip->daddr = mud_addr;	/* kernel fills id and the IP checksum */
	udp->source = r->cfg.vip_port;
	udp->dest = mud_port;
	udp->len = htons(ulen);
	memcpy(udp + 1, ans, len);
	pseudo = ntohs(ip->saddr >> 16) + ntohs(ip->saddr & 0xffff) +
		 ntohs(ip->daddr >> 16) + ntohs(ip->daddr & 0xffff) + IPPROTO_UDP + ulen;
	udp->check = eh_csum(udp, ulen, pseudo);
	if (!udp->check)
		udp->check = 0xffff;
	if (sendto(r->rawsock, pkt, sizeof(*ip) + ulen, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}


static bool ours(const struct eh_replayer *r, const struct eh_replay_rec *rec)
{
	return rec->mud_addr == r->o.mud.s_addr && (!r->mud_id || rec->mud_id == r->mud_id);
}

static bool mud_has_answer(const struct eh_replayer *r, uint32_t seq)
{
	return r->answered[seq % EH_REPLAY_SPAN] == seq + 1;
}

static int send_rec(struct eh_replayer *r, const struct eh_replay_rec *rec)
{
	uint8_t req[EH_REPLAY_MAX];
	struct eh_hdr *h = (void *)req;

	/* resent as the MUD sent it (its send_ns, its len), not rebuilt: only the flag added */
	memcpy(req, rec->data, rec->len);
	h->flags |= htons(EH_F_REPLAY);
	if (send(r->usock, req, rec->len, 0) < 0 &&
	    errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN)
		return -errno;	/* refused: the service is not up (yet); retried */
	return 0;
}

/*
 * The backend's position for the MUD, from its STATUS (paged, sorted by
 * mud_id). Not listed: it starts the MUD where the first replayed seq is.
 */
static int ask_position(struct eh_replayer *r)
{
	uint8_t buf[2048];
	struct eh_hdr q;
	uint32_t first = 0;

	for (int tries = 0; tries < r->o.retries;) {
		struct pollfd pfd = { .fd = r->usock, .events = POLLIN };
		const struct eh_status_ent *e = (const void *)(buf + sizeof(struct eh_hdr));
		struct eh_hdr_host h;
		uint32_t total, k;
		ssize_t n;

		eh_hdr_init(&q, EH_T_STATUS_REQ, 0, 0, first, 0, 0);
		if (send(r->usock, &q, sizeof(q), 0) < 0 && errno != ECONNREFUSED)
			return -errno;
		if (poll(&pfd, 1, r->o.timeout_ms) <= 0) {
			tries++;
			continue;
		}
		n = recv(r->usock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < (ssize_t)sizeof(struct eh_hdr)) {
			if (n < 0 && errno == ECONNREFUSED) {	/* not up (yet) */
				tries++;
				usleep(r->o.timeout_ms * 1000);
			}
			continue;
		}
		if (eh_hdr_check(buf, n, &h) || h.type != EH_T_STATUS_RESP || h.seq != first)
			continue;	/* a late answer to a replayed request */
		total = h.mud_id;
		k = h.len / sizeof(*e);
		for (uint32_t i = 0; i < k; i++) {
			if (ntohl(e[i].mud_id) != r->mud_id)
				continue;
			r->next = ntohl(e[i].last_seq) + 1;
			memcpy(r->digest, e[i].digest, EH_DIGEST_LEN);
			r->pos_known = r->digest_known = true;
			return 0;
		}
		if (!k || first + k >= total)
			return 0;
		first += k;
	}
	fprintf(stderr, "edgehop: %s:%u does not answer STATUS\n", inet_ntoa(r->o.backend),
		r->o.backend_port);
	return -ETIMEDOUT;
}

/* The lowest seq of the MUD's records in the ring (the backend does not know it). */
static bool lowest_seq(struct eh_replayer *r, uint32_t *seq)
{
	unsigned long pos = eh_ring_consumed(&r->ring);
	const struct eh_replay_rec *rec;
	bool found = false;

	while ((rec = eh_ring_read_at(&r->ring, &pos))) {
		if (!ours(r, rec))
			break;
		if (!found || (int32_t)(rec->seq - *seq) < 0)
			*seq = rec->seq;
		found = true;
	}
	return found;
}

/* Where the backend stands, once: from its STATUS, else from the ring. */
static int learn_position(struct eh_replayer *r)
{
	const struct eh_replay_rec *rec;
	unsigned long pos;
	int err;

	if (r->pos_known)
		return 0;
	if (!r->mud_id) {
		pos = eh_ring_consumed(&r->ring);
		rec = eh_ring_read_at(&r->ring, &pos);
		if (!rec)
			return 0;	/* nothing to replay yet */
		if (rec->mud_addr != r->o.mud.s_addr)
			return 0;	/* drain reports it */
		r->mud_id = rec->mud_id;
	}
	err = ask_position(r);
	if (err || r->pos_known)
		return err;
	if (lowest_seq(r, &r->next)) {
		/* It starts an unknown MUD at the first seq it gets, from d_0. */
		r->pos_known = r->digest_known = r->fresh = true;
		memset(r->digest, 0, EH_DIGEST_LEN);
	}
	return 0;
}

/* Index the records not yet seen, by seq; stops at another MUD's record. */
static void scan(struct eh_replayer *r)
{
	const struct eh_replay_rec *rec;
	unsigned long pos = r->scan_pos;

	while ((rec = eh_ring_read_at(&r->ring, &pos))) {
		uint32_t ahead = rec->seq - r->next;

		if (!ours(r, rec))
			return;
		if (rec->len < sizeof(struct eh_hdr) || rec->len > EH_REPLAY_MAX)
			return;	/* corrupt: left at the head, drain reports it */
		if ((int32_t)ahead >= 0) {
			if (ahead >= EH_REPLAY_SPAN)
				return;	/* indexed once the backend gets closer */
			if (!r->idx[rec->seq % EH_REPLAY_SPAN] ||
			    r->idx[rec->seq % EH_REPLAY_SPAN]->seq != rec->seq)
				r->idx[rec->seq % EH_REPLAY_SPAN] = rec;
		}
		r->scan_pos = pos;
	}
}

static const struct eh_replay_rec *indexed(const struct eh_replayer *r, uint32_t seq)
{
	const struct eh_replay_rec *rec = r->idx[seq % EH_REPLAY_SPAN];

	return rec && rec->seq == seq ? rec : NULL;
}

static int hold_answer(struct eh_replayer *r, const struct eh_replay_rec *rec,
		       const uint8_t *ans, size_t len)
{
	struct eh_held *h;

	if (len > sizeof(h->data))
		return -EMSGSIZE;
	if (r->nheld == EH_HELD_MAX) {
		/* The MUD retransmits; CT-y answers it from its reply cache. */
		r->st.held_dropped++;
		return 0;
	}
	h = &r->held[r->nheld++];
	h->mud_addr = rec->mud_addr;
	h->mud_port = rec->mud_port;
	h->len = len;
	memcpy(h->data, ans, len);
	return 0;
}

/* Relays the held answers, in order; stops at the first failure. */
static int release_held(struct eh_replayer *r)
{
	int err = 0;

	for (size_t i = 0; i < r->nheld; i++) {
		err = relay_to_mud(r, r->held[i].mud_addr, r->held[i].mud_port,
				   r->held[i].data, r->held[i].len);
		if (err) {
			fprintf(stderr, "edgehop: Couldn't relay a held answer to the MUD: %s (it will retransmit)\n",
				strerror(-err));
			break;
		}
		r->st.relayed++;
	}
	r->nheld = 0;
	r->hold = false;
	return err;
}

/* The MUD gets the answer to a record only buffered (now, or at the switch). */
static int deliver(struct eh_replayer *r, const struct eh_replay_rec *rec,
		   const uint8_t *ans, size_t len)
{
	int err;

	if (r->hold) {
		err = hold_answer(r, rec, ans, len);
	} else {
		err = relay_to_mud(r, rec->mud_addr, rec->mud_port, ans, len);
		if (!err)
			r->st.relayed++;
	}
	if (!err)
		r->answered[rec->seq % EH_REPLAY_SPAN] = rec->seq + 1;
	return err;
}

/*
 * The backend already holds every seq before @next (STALE answer, or a DUP
 * beyond what we knew): nothing there is replayed again.
 */
static void jump_to(struct eh_replayer *r, uint32_t next, const uint8_t *digest)
{
	if ((int32_t)(next - r->next) <= 0)
		return;
	for (int i = 0; i < EH_REPLAY_WINDOW; i++)
		if (r->slots[i].rec && (int32_t)(r->slots[i].seq - next) < 0)
			r->slots[i].rec = NULL;
	r->next = next;
	memcpy(r->digest, digest, EH_DIGEST_LEN);
	r->digest_known = true;
	r->gap_since = 0;
	r->scan_pos = eh_ring_consumed(&r->ring);	/* re-index from the new position */
}

/* Accepts the answers at the backend's next seq, in order, checking the chain. */
static int advance(struct eh_replayer *r)
{
	for (;;) {
		struct eh_slot *sl = &r->slots[r->next % EH_REPLAY_WINDOW];
		const struct eh_svcr_body *b = (const void *)(sl->ans + sizeof(struct eh_hdr));
		const struct eh_replay_rec *rec = sl->rec;
		const struct eh_hdr *q;
		uint8_t want[EH_DIGEST_LEN];
		int err;

		if (!rec || sl->seq != r->next || !sl->answered)
			return 0;
		q = (const void *)rec->data;
		if (r->digest_known) {
			uint32_t blen = ntohl(q->len);

			if (blen > rec->len - sizeof(*q))
				blen = rec->len - sizeof(*q);
			err = eh_digest_step(r->digest, rec->seq, rec->data + sizeof(*q), blen, want);
			if (err)
				return err;
			if (memcmp(want, b->digest, EH_DIGEST_LEN)) {
				char got[65], exp[65];

				eh_digest_hex(b->digest, got);
				eh_digest_hex(want, exp);
				fprintf(stderr, "edgehop: %s:%u broke the chain at seq %u: digest %s, the buffered request gives %s\n",
					inet_ntoa(r->o.backend), r->o.backend_port, rec->seq, got, exp);
				return -EPROTO;
			}
			r->st.verified++;
		}
		if (!rec->forwarded && !mud_has_answer(r, rec->seq)) {
			err = deliver(r, rec, sl->ans, sl->anslen);
			if (err)
				return err;
		}
		memcpy(r->digest, b->digest, EH_DIGEST_LEN);
		r->digest_known = true;
		if (!r->st.replayed)
			r->st.first_seq = rec->seq;
		r->st.last_seq = rec->seq;
		r->st.replayed++;
		sl->rec = NULL;
		r->next++;
		r->gap_since = 0;
	}
}

/* One datagram from the backend. */
static int on_answer(struct eh_replayer *r, const uint8_t *buf, size_t n)
{
	const struct eh_svcr_pos *p = (const void *)(buf + sizeof(struct eh_hdr));
	struct eh_hdr_host h;
	uint32_t seq;
	uint16_t flags;
	struct eh_slot *sl;

	/* what the MUD takes (mud/answers.c): relayed, anything less would count as answered */
	if (eh_hdr_check(buf, n, &h) || h.type != EH_T_SVCR ||
	    h.len < sizeof(struct eh_svcr_body) || h.mud_id != r->mud_id)
		return 0;
	seq = h.seq;
	flags = h.flags;
	if (r->querying && seq == r->query_seq && (int32_t)(seq - r->next) < 0) {
		/* The answer (DUP, or STALE) a held seq's retransmission needs. */
		unsigned long pos = eh_ring_consumed(&r->ring);
		const struct eh_replay_rec *rec = eh_ring_read_at(&r->ring, &pos);

		r->querying = false;
		if (rec && rec->seq == seq && !mud_has_answer(r, seq))
			return deliver(r, rec, buf, n);
		return 0;
	}
	if (flags & EH_F_STALE) {
		jump_to(r, ntohl(p->next_seq), p->digest);
		return 0;
	}
	if (flags & EH_F_GAP) {
		if ((int32_t)(ntohl(p->next_seq) - r->next) < 0) {
			fprintf(stderr, "edgehop: %s:%u went back to seq %u (we had it at %u)\n",
				inet_ntoa(r->o.backend), r->o.backend_port, ntohl(p->next_seq), r->next);
			return -EPROTO;
		}
		/* Our copy of its next seq was lost on the way: resend it now. */
		sl = &r->slots[r->next % EH_REPLAY_WINDOW];
		if (sl->rec && sl->seq == r->next && !sl->answered)
			sl->sent_ns = 0;
		return 0;
	}
	if ((int32_t)(seq - r->next) < 0)
		return 0;	/* late duplicate */
	sl = &r->slots[seq % EH_REPLAY_WINDOW];
	if (!sl->rec || sl->seq != seq || sl->answered)
		return 0;
	if (flags & EH_F_DUP && seq != r->next && !r->digest_known) {
		/* It held seq already: its position is beyond what we knew. */
		return 0;
	}
	sl->answered = true;
	sl->anslen = n > sizeof(sl->ans) ? sizeof(sl->ans) : n;
	memcpy(sl->ans, buf, sl->anslen);
	return 0;
}

/*
 * Consumes the records at the head whose seq the backend holds and whose
 * answer the MUD has (or never needed: forwarded, CT-x answered it).
 */
static void commit_done(struct eh_replayer *r)
{
	unsigned long start = eh_ring_consumed(&r->ring), pos = start, at;
	const struct eh_replay_rec *rec;
	uint64_t n = 0, bytes = 0;

	for (at = pos; pos < r->scan_pos && (rec = eh_ring_read_at(&r->ring, &pos)); at = pos) {
		if (!ours(r, rec) || (int32_t)(rec->seq - r->next) >= 0)
			break;
		if (!rec->forwarded && !mud_has_answer(r, rec->seq))
			break;	/* queried first (send_window) */
		if (r->idx[rec->seq % EH_REPLAY_SPAN] == rec)
			r->idx[rec->seq % EH_REPLAY_SPAN] = NULL;
		else if (r->st.replayed && (int32_t)(rec->seq - r->st.first_seq) >= 0 &&
			 (int32_t)(rec->seq - r->st.last_seq) <= 0)
			r->st.dups++;		/* a retransmission of one replayed */
		else
			r->st.skipped++;	/* the backend held it before */
		n++;
		bytes += rec->len;
	}
	if (!n)
		return;
	eh_ring_commit_to(&r->ring, at);
	r->st.consumed += n;
	r->unflushed += n;
	r->unflushed_bytes += bytes;
}

/* Sends what the window allows: new records, and resends of the overdue. */
static int send_window(struct eh_replayer *r, uint64_t now)
{
	uint64_t tmo = (uint64_t)r->o.timeout_ms * 1000000ull;
	/* One in flight until the first answer: see the MUD's window_open(). */
	uint32_t window = r->fresh && !r->st.replayed ? 1 : (uint32_t)r->o.window;
	unsigned long pos;
	int err;

	for (uint32_t seq = r->next; seq - r->next < window; seq++) {
		struct eh_slot *sl = &r->slots[seq % EH_REPLAY_WINDOW];
		const struct eh_replay_rec *rec = indexed(r, seq);

		if (!rec)
			break;	/* a gap: nothing beyond it may reach the backend */
		if (!sl->rec || sl->seq != seq) {
			memset(sl, 0, offsetof(struct eh_slot, ans));
			sl->rec = rec;
			sl->seq = seq;
		}
		if (sl->answered || (sl->sent_ns && now - sl->sent_ns < tmo))
			continue;
		if (sl->tries >= r->o.retries) {
			fprintf(stderr, "edgehop: replay of MUD %u seq %u to %s:%u: no answer after %d tries (record kept)\n",
				r->mud_id, seq, inet_ntoa(r->o.backend), r->o.backend_port, sl->tries);
			return -ETIMEDOUT;
		}
		if (sl->tries)
			r->st.resent++;
		sl->tries++;
		sl->sent_ns = now;
		err = send_rec(r, rec);
		if (err)
			return err;
	}
	/* A retransmission of a seq the backend held before: the MUD needs its answer. */
	pos = eh_ring_consumed(&r->ring);
	{
		const struct eh_replay_rec *rec = eh_ring_read_at(&r->ring, &pos);

		if (rec && ours(r, rec) && (int32_t)(rec->seq - r->next) < 0 &&
		    !rec->forwarded && !mud_has_answer(r, rec->seq) &&
		    (!r->querying || r->query_seq != rec->seq || now - r->query_ns >= tmo)) {
			if (r->querying && r->query_seq == rec->seq && ++r->query_tries >= r->o.retries)
				return -ETIMEDOUT;
			if (!r->querying || r->query_seq != rec->seq)
				r->query_tries = 0;
			r->querying = true;
			r->query_seq = rec->seq;
			r->query_ns = now;
			err = send_rec(r, rec);
			if (err)
				return err;
		}
	}
	return 0;
}

static bool in_flight(const struct eh_replayer *r)
{
	for (int i = 0; i < EH_REPLAY_WINDOW; i++)
		if (r->slots[i].rec && !r->slots[i].answered)
			return true;
	return r->querying;
}

/* Is anything of the MUD's indexed beyond a missing next seq? */
static bool gap_at_next(const struct eh_replayer *r)
{
	unsigned long pos = eh_ring_consumed(&r->ring);
	const struct eh_replay_rec *rec;

	if (indexed(r, r->next))
		return false;
	while (pos < r->scan_pos && (rec = eh_ring_read_at(&r->ring, &pos)))
		if (ours(r, rec) && (int32_t)(rec->seq - r->next) > 0)
			return true;
	return false;
}

/*
 * The replay engine: replays until the ring is consumed up to @limit (or has
 * nothing more for the backend), in seq order with a window of records in
 * flight. Returns the number of records replayed, or -errno.
 */
static long replay_loop(struct eh_replayer *r, unsigned long limit)
{
	uint64_t replayed = r->st.replayed;
	int err;

	err = learn_position(r);
	if (err)
		return err;
	for (;;) {
		struct pollfd pfd = { .fd = r->usock, .events = POLLIN };
		const struct eh_replay_rec *head;
		unsigned long pos = eh_ring_consumed(&r->ring);
		uint64_t now = eh_mono_ns();
		uint8_t buf[2048];
		bool busy;
		ssize_t n;

		if (!r->pos_known) {
			err = learn_position(r);
			if (err)
				return err;
			if (!r->pos_known)
				break;	/* nothing of ours in the ring */
		}
		scan(r);
		while ((n = recv(r->usock, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
			err = on_answer(r, buf, n);
			if (err)
				return err;
		}
		err = advance(r);
		if (err)
			return err;
		commit_done(r);

		head = eh_ring_read_at(&r->ring, &pos);
		if (head && !ours(r, head)) {
			struct in_addr a = { .s_addr = head->mud_addr };

			fprintf(stderr, "edgehop: replay buffer head belongs to MUD %s (id %u), not the one being cut over\n",
				inet_ntoa(a), head->mud_id);
			return -EXDEV;
		}
		if (head && (head->len < sizeof(struct eh_hdr) || head->len > EH_REPLAY_MAX))
			return -EBADMSG;
		if (r->deadline_ns && now >= r->deadline_ns)
			return -ETIMEDOUT;
		if (r->settle_end_ns && now >= r->settle_end_ns)
			break;
		err = send_window(r, now);
		if (err)
			return err;
		busy = in_flight(r);
		if (!busy && (!head || eh_ring_consumed(&r->ring) >= limit) && !indexed(r, r->next))
			break;
		if (!busy && gap_at_next(r)) {
			if (!r->gap_since)
				r->gap_since = now;
			if (now - r->gap_since >= (uint64_t)r->o.gap_wait_ms * 1000000ull) {
				fprintf(stderr, "edgehop: MUD %u seq %u is in nobody's buffer (waited %d ms for its retransmission); %s:%u cannot catch up\n",
					r->mud_id, r->next, r->o.gap_wait_ms, inet_ntoa(r->o.backend),
					r->o.backend_port);
				return -ENODATA;
			}
		} else if (!busy && !indexed(r, r->next)) {
			break;	/* only records beyond the span: wait for the backend */
		}
		/* An answer, or (waiting for the ring) a millisecond. */
		if (poll(&pfd, 1, busy ? 5 : 1) < 0 && errno != EINTR)
			return -errno;
	}
	r->st.backend_next = r->next;
	memcpy(r->st.backend_digest, r->digest, EH_DIGEST_LEN);
	return (long)(r->st.replayed - replayed);
}

static long replay_to(struct eh_replayer *r, unsigned long limit)
{
	long n = replay_loop(r, limit);

	if (r->unflushed)
		eh_dp_counter_add(r->dp, EH_C_REPLAYED, r->unflushed, r->unflushed_bytes);
	r->unflushed = r->unflushed_bytes = 0;
	return n;
}

long eh_replayer_drain(struct eh_replayer *r)
{
	return replay_to(r, ULONG_MAX);
}

/*
 * After the mode has changed away from buffering, only an XDP program that was
 * already running can still commit a record; the programs run for
 * microseconds, so the ring is settled once it has stayed empty (no record
 * being written either) over a few milliseconds. A MUD that keeps
 * retransmitting keeps it busy: bounded by settle_ms (what is left is either
 * replayed later or a retransmission the backend answers itself).
 */
static long drain_settled(struct eh_replayer *r)
{
	uint64_t end = eh_mono_ns() + (uint64_t)r->o.settle_ms * 1000000ull;
	long total = 0, n;

	for (int quiet = 0; quiet < 3;) {
		r->settle_end_ns = end;
		n = replay_to(r, ULONG_MAX);
		r->settle_end_ns = 0;
		if (n < 0)
			return n;
		total += n;
		if (n == 0 && !eh_ring_backlog(&r->ring))
			quiet++;
		else
			quiet = 0;
		if (eh_mono_ns() >= end) {
			fprintf(stderr, "edgehop: replay buffer not settled after %d ms (%zu bytes left)\n",
				r->o.settle_ms, eh_ring_backlog(&r->ring));
			break;
		}
		usleep(1000);
	}
	return total;
}

static int check_flags(struct eh_replayer *r, const char *when)
{
	struct eh_steer st;
	int err = eh_dp_steer_get(r->dp, r->o.mud, &st);

	if (err)
		return err;
	if (st.flags & (EH_SF_OVERFLOW | EH_SF_TOO_BIG)) {
		fprintf(stderr, "edgehop: MUD %s lost requests from the replay buffer %s (flags 0x%x): the new container would miss them; migrate again\n",
			inet_ntoa(r->o.mud), when, st.flags);
		return -ENOSPC;
	}
	return 0;
}

int eh_replayer_cutover(struct eh_replayer *r, uint32_t mud_id)
{
	struct eh_steer before;
	struct eh_steer_ctl saved;
	struct in_addr old_backend;
	uint32_t entry_id;
	long n = 0;
	int err;

	err = eh_dp_steer_get(r->dp, r->o.mud, &before);
	if (!err)
		err = eh_dp_steer_save(r->dp, r->o.mud, &saved);
	if (err) {
		fprintf(stderr, "edgehop: MUD %s has no steering entry\n", inet_ntoa(r->o.mud));
		return err;
	}
	if (mud_id && before.mud_id && mud_id != before.mud_id) {
		fprintf(stderr, "edgehop: MUD %s's entry accepts only MUD id %u, not %u\n",
			inet_ntoa(r->o.mud), before.mud_id, mud_id);
		return -EINVAL;
	}
	if (before.mode != EH_MODE_FWD_BUF && before.mode != EH_MODE_BUF_ONLY) {
		fprintf(stderr, "edgehop: MUD %s is in mode %s; cut-over starts from fwd-buf or buf-only\n",
			inet_ntoa(r->o.mud), eh_mode_name(before.mode));
		return -EINVAL;
	}
	err = check_flags(r, "before the cut-over");
	if (err)
		return err;
	old_backend.s_addr = before.backend_addr;
	if (mud_id)
		r->mud_id = mud_id;
	else if (before.mud_id)
		r->mud_id = before.mud_id;
	/*
	 * The entry's mud-id check is never loosened by a cut-over: it keeps
	 * its own, or takes the one given (a record's id is not a check).
	 */
	entry_id = before.mud_id ? before.mud_id : mud_id;
	r->deadline_ns = eh_mono_ns() + (uint64_t)r->o.deadline_ms * 1000000ull;

	/*
	 * 1. Catch up while the old container still answers: up to what was
	 * buffered when we started, a few rounds while the backlog shrinks.
	 * Bounded, because the MUD keeps adding to the ring meanwhile.
	 */
	for (int round = 0; round < 4; round++) {
		size_t backlog = eh_ring_backlog(&r->ring);

		n = replay_to(r, eh_ring_produced(&r->ring));
		if (n < 0)
			goto rollback;
		if (eh_ring_backlog(&r->ring) >= backlog || !eh_ring_backlog(&r->ring))
			break;
	}
	err = check_flags(r, "during the catch-up");
	if (err)
		goto rollback;
	/*
	 * 2. Hold new requests (nothing may reach CT-y ahead of the replay)
	 * and replay everything, holding back the answers to the requests
	 * only buffered: a MUD without answers sends nothing new, so the ring
	 * drains to empty and stays empty: the switch cannot race a request.
	 */
	err = eh_dp_steer_set(r->dp, r->o.mud, EH_MODE_BUF_ONLY, old_backend,
			      ntohs(before.backend_port), entry_id);
	if (err)
		goto rollback;
	r->hold = true;
	n = drain_settled(r);
	if (n < 0)
		goto rollback;
	err = check_flags(r, "before the switch");
	if (err)
		goto rollback;
	/*
	 * 3. The caller's commit point: the backend holds all CT-x applied,
	 * the MUD's new requests wait in the ring. A "no" still rolls back.
	 */
	if (r->o.commit) {
		err = r->o.commit(r->o.commit_ctx);
		if (err)
			goto rollback;
	}
	r->st.committed = true;
	/*
	 * 4. Switch; replay what a retransmission slipped in; release the
	 * answers. Committed: a refused switch is tried again, never undone.
	 */
	for (int i = 0; i < 3; i++) {
		err = eh_dp_steer_set(r->dp, r->o.mud, EH_MODE_LOCAL, r->o.backend,
				      r->o.backend_port, entry_id);
		if (!err)
			break;
		usleep(10000);
	}
	if (err) {
		fprintf(stderr, "edgehop: committed, but the switch of MUD %s to LOCAL was refused: %s; its requests wait in the ring\n",
			inet_ntoa(r->o.mud), strerror(-err));
		return err;
	}
	r->deadline_ns = 0;	/* drain_settled bounds it */
	n = drain_settled(r);
	release_held(r);
	if (n < 0) {
		/* CT-y already serves new requests: rolling back would reorder. */
		fprintf(stderr, "edgehop: requests that raced the switch could not be replayed (%s); the MUD will retransmit them\n",
			strerror((int)-n));
		return (int)n;
	}
	return 0;
rollback:
	/* Whatever CT-y answered is not the MUD's business: CT-x answers again. */
	r->hold = false;
	r->nheld = 0;
	r->deadline_ns = 0;
	err = err ? err : (int)n;
	fprintf(stderr, "edgehop: cut-over of MUD %s aborted (%s)\n", inet_ntoa(r->o.mud),
		strerror(-err));
	/* As it was: mode, backend, previous backend and mud-id check. */
	if (eh_dp_steer_restore(r->dp, r->o.mud, &saved))
		fprintf(stderr, "edgehop: and its steering could not be put back: check 'edgehop-ap show'\n");
	else
		fprintf(stderr, "edgehop: MUD %s back in mode %s to %s\n", inet_ntoa(r->o.mud),
			eh_mode_name(before.mode), inet_ntoa(old_backend));
	return err;
}
