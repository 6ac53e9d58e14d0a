// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Replay of the replay buffer into the new container: see eh_replay.h. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include "eh_replay.h"
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
	r->dp = dp;
	r->o = *o;
	if (!r->o.timeout_ms)
		r->o.timeout_ms = 200;
	if (!r->o.retries)
		r->o.retries = 10;
	err = eh_dp_config(dp, &r->cfg);
	if (err) {
		fprintf(stderr, "edgehop: Couldn't read the dataplane configuration: %s\n", strerror(-err));
		return err;
	}
	err = eh_ring_open(&r->ring, dp->replay_fd);
	if (err)
		return err;

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
	r->held = NULL;
	r->nheld = r->held_cap = 0;
	if (r->usock >= 0)
		close(r->usock);
	if (r->rawsock >= 0)
		close(r->rawsock);
	r->usock = r->rawsock = -1;
	eh_ring_close(&r->ring);
}

/* The backend's answer to (mud_id, seq), or -ETIMEDOUT. */
static ssize_t await_answer(struct eh_replayer *r, uint32_t mud_id, uint32_t seq,
			    uint8_t *buf, size_t len)
{
	struct pollfd pfd = { .fd = r->usock, .events = POLLIN };
	const struct eh_hdr *h = (const void *)buf;
	struct timespec now, end;
	int left;
	ssize_t n;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_nsec += (long)r->o.timeout_ms * 1000000L;
	end.tv_sec += end.tv_nsec / 1000000000L;
	end.tv_nsec %= 1000000000L;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
		if (left < 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -errno;
		n = recv(r->usock, buf, len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			if (errno == ECONNREFUSED)	/* service not up (yet): retry */
				return -ETIMEDOUT;
			return -errno;
		}
		/* Late answers to earlier attempts are skipped by (mud, seq). */
		if ((size_t)n >= sizeof(*h) && h->magic == htonl(EH_MAGIC) &&
		    h->type == EH_T_SVCR && ntohl(h->mud_id) == mud_id &&
		    ntohl(h->seq) == seq)
			return n;
	}
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

static int hold_answer(struct eh_replayer *r, const struct eh_replay_rec *rec,
		       const uint8_t *ans, size_t len)
{
	struct eh_held *h;

	if (len > sizeof(h->data))
		return -EMSGSIZE;
	if (r->nheld == r->held_cap) {
		size_t cap = r->held_cap ? 2 * r->held_cap : 64;

		h = realloc(r->held, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		r->held = h;
		r->held_cap = cap;
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

static int replay_one(struct eh_replayer *r, const struct eh_replay_rec *rec)
{
	uint8_t req[EH_REPLAY_MAX], ans[2048];
	struct eh_hdr *h = (void *)req;
	ssize_t n = -ETIMEDOUT;
	int err;

	if (rec->len < sizeof(*h) || rec->len > EH_REPLAY_MAX)
		return -EBADMSG;
	memcpy(req, rec->data, rec->len);
	h->flags |= htons(EH_F_REPLAY);
	for (int attempt = 0; attempt < r->o.retries; attempt++) {
		if (attempt)
			r->st.resent++;
		if (send(r->usock, req, rec->len, 0) < 0) {
			if (errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN)
				return -errno;
			continue;
		}
		n = await_answer(r, rec->mud_id, rec->seq, ans, sizeof(ans));
		if (n != -ETIMEDOUT)
			break;
	}
	if (n < 0)
		return n;
	if (!rec->forwarded) {
		err = r->hold ? hold_answer(r, rec, ans, n)
			      : relay_to_mud(r, rec->mud_addr, rec->mud_port, ans, n);
		if (err)
			return err;
		if (!r->hold)
			r->st.relayed++;
	}
	if (!r->st.replayed)
		r->st.first_seq = rec->seq;
	r->st.last_seq = rec->seq;
	r->st.replayed++;
	return 0;
}

/* Replays records until the consumer position reaches @limit (or the ring empties). */
static long drain_to(struct eh_replayer *r, unsigned long limit)
{
	const struct eh_replay_rec *rec;
	uint64_t bytes = 0;
	long done = 0;
	int err = 0;

	while (eh_ring_consumed(&r->ring) < limit && (rec = eh_ring_peek(&r->ring))) {
		if (rec->mud_addr != r->o.mud.s_addr) {
			struct in_addr a = { .s_addr = rec->mud_addr };

			fprintf(stderr, "edgehop: replay buffer head belongs to MUD %s, not the one being cut over\n",
				inet_ntoa(a));
			err = -EXDEV;
			break;
		}
		err = replay_one(r, rec);
		if (err) {
			fprintf(stderr, "edgehop: replay of MUD %u seq %u to %s:%u failed: %s (record kept)\n",
				rec->mud_id, rec->seq, inet_ntoa(r->o.backend), r->o.backend_port,
				strerror(-err));
			break;
		}
		bytes += rec->len;
		eh_ring_commit(&r->ring);
		done++;
	}
	if (done)
		eh_dp_counter_add(r->dp, EH_C_REPLAYED, done, bytes);
	return err ? err : done;
}

long eh_replayer_drain(struct eh_replayer *r)
{
	return drain_to(r, ULONG_MAX);
}

/*
 * After the mode has changed away from buffering, only an XDP program that was
 * already running can still commit a record; the programs run for
 * microseconds, so the ring is settled once it has stayed empty (no record
 * being written either) over a few milliseconds.
 */
static long drain_settled(struct eh_replayer *r)
{
	long total = 0, n;

	for (int quiet = 0; quiet < 3;) {
		n = eh_replayer_drain(r);
		if (n < 0)
			return n;
		total += n;
		if (n == 0 && !eh_ring_backlog(&r->ring))
			quiet++;
		else
			quiet = 0;
		n = eh_ring_wait(&r->ring, 1);
		if (n < 0)
			return n;
	}
	return total;
}

int eh_replayer_cutover(struct eh_replayer *r, uint32_t mud_id)
{
	struct eh_steer before;
	struct in_addr old_backend;
	long n;
	int err;

	err = eh_dp_steer_get(r->dp, r->o.mud, &before);
	if (err) {
		fprintf(stderr, "edgehop: MUD %s has no steering entry\n", inet_ntoa(r->o.mud));
		return err;
	}
	if (before.mode != EH_MODE_FWD_BUF && before.mode != EH_MODE_BUF_ONLY) {
		fprintf(stderr, "edgehop: MUD %s is in mode %s; cut-over starts from fwd-buf or buf-only\n",
			inet_ntoa(r->o.mud), eh_mode_name(before.mode));
		return -EINVAL;
	}
	if (before.flags & (EH_SF_OVERFLOW | EH_SF_TOO_BIG)) {
		fprintf(stderr, "edgehop: MUD %s lost requests from the replay buffer (flags 0x%x): the new container would miss them; migrate again\n",
			inet_ntoa(r->o.mud), before.flags);
		return -ENOSPC;
	}
	old_backend.s_addr = before.backend_addr;

	/*
	 * 1. Catch up while the old container still answers: up to what was
	 * buffered when we started, a few rounds while the backlog shrinks.
	 * Bounded, because the MUD keeps adding to the ring meanwhile.
	 */
	for (int round = 0; round < 4; round++) {
		size_t backlog = eh_ring_backlog(&r->ring);

		n = drain_to(r, eh_ring_produced(&r->ring));
		if (n < 0)
			goto rollback;
		if (eh_ring_backlog(&r->ring) >= backlog || !eh_ring_backlog(&r->ring))
			break;
	}
	/*
	 * 2. Hold new requests (nothing may reach CT-y ahead of the replay)
	 * and replay everything, holding back the answers to the requests
	 * only buffered: a MUD without answers sends nothing new, so the ring
	 * drains to empty and stays empty: the switch cannot race a request.
	 */
	err = eh_dp_steer_set(r->dp, r->o.mud, EH_MODE_BUF_ONLY, old_backend,
			      ntohs(before.backend_port), mud_id);
	if (err)
		goto rollback;
	r->hold = true;
	n = drain_settled(r);
	if (n < 0)
		goto rollback;
	/* 3. Switch; replay what a retransmission slipped in; release the answers. */
	err = eh_dp_steer_set(r->dp, r->o.mud, EH_MODE_LOCAL, r->o.backend,
			      r->o.backend_port, mud_id);
	if (err)
		goto rollback;
	n = drain_settled(r);
	release_held(r);
	if (n < 0) {
		/* CT-y already serves new requests: rolling back would reorder. */
		fprintf(stderr, "edgehop: requests that raced the switch could not be replayed; the MUD will retransmit them\n");
		return (int)n;
	}
	return 0;
rollback:
	/* Whatever CT-y answered is not the MUD's business: CT-x answers again. */
	r->hold = false;
	r->nheld = 0;
	err = err ? err : (int)n;
	fprintf(stderr, "edgehop: cut-over of MUD %s aborted (%s)\n", inet_ntoa(r->o.mud),
		strerror(-err));
	if (eh_dp_steer_set(r->dp, r->o.mud, before.mode, old_backend,
			    ntohs(before.backend_port), mud_id))
		fprintf(stderr, "edgehop: and its steering could not be put back: check 'edgehop-ap show'\n");
	else
		fprintf(stderr, "edgehop: MUD %s back in mode %s to %s\n", inet_ntoa(r->o.mud),
			eh_mode_name(before.mode), inet_ntoa(old_backend));
	return err;
}
