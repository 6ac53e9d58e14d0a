// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <endian.h>

#include "eh_digest.h"
#include "svc_state.h"

int svc_state_init(struct svc_state *s, const char *name)
{
	memset(s, 0, sizeof(*s));
	if (!name || !*name || strlen(name) >= EH_NAME_LEN)
		return -EINVAL;
	strncpy(s->name, name, EH_NAME_LEN - 1);
	return 0;
}

void svc_state_free(struct svc_state *s)
{
	int i;

	for (i = 0; i < SVC_SLOTS; i++) {
		free(s->slots[i]);
		s->slots[i] = NULL;
	}
	s->nmuds = 0;
}

static uint32_t slot_of(uint32_t mud_id)
{
	return (mud_id * 2654435761u) % SVC_SLOTS;
}

struct svc_mud *svc_find(struct svc_state *s, uint32_t mud_id)
{
	uint32_t i, h = slot_of(mud_id);

	for (i = 0; i < SVC_SLOTS; i++) {
		struct svc_mud *m = s->slots[(h + i) % SVC_SLOTS];

		if (!m)
			return NULL;
		if (m->mud_id == mud_id)
			return m;
	}
	return NULL;
}

static struct svc_mud *svc_add(struct svc_state *s, uint32_t mud_id,
			       uint32_t first_seq)
{
	uint32_t i, h = slot_of(mud_id);
	struct svc_mud *m;

	if (s->nmuds >= SVC_MAX_MUDS)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->mud_id = mud_id;
	m->next_seq = first_seq;	/* a new session starts where it starts */
	m->last_seq = first_seq - 1;
	for (i = 0; i < SVC_SLOTS; i++) {
		if (!s->slots[(h + i) % SVC_SLOTS]) {
			s->slots[(h + i) % SVC_SLOTS] = m;
			s->nmuds++;
			return m;
		}
	}
	free(m);
	return NULL;
}

/*
 * Stand-in for real offloaded work: burn CPU for @us microseconds. Measured
 * as a relative interval so that a CRIU restore in the middle cannot make it
 * wait for a deadline taken on another host's clock.
 */
static void burn_cpu(unsigned int us)
{
	struct timespec a, b;
	volatile uint64_t x = 1;
	int64_t spent;

	if (!us)
		return;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		for (int i = 0; i < 256; i++)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		clock_gettime(CLOCK_MONOTONIC, &b);
		spent = (b.tv_sec - a.tv_sec) * 1000000ll +
			(b.tv_nsec - a.tv_nsec) / 1000;
	} while (spent >= 0 && spent < us);
}

static void put_hdr(struct eh_hdr *o, const struct eh_hdr *req, uint8_t type,
		    uint16_t flags, uint32_t len)
{
	memset(o, 0, sizeof(*o));
	o->magic = htonl(EH_MAGIC);
	o->version = EH_VERSION;
	o->type = type;
	o->flags = htons(flags);
	o->mud_id = req->mud_id;
	o->seq = req->seq;
	o->send_ns = req->send_ns;	/* echoed: lets the MUD match the try */
	o->len = htonl(len);
}

/* A STALE or GAP answer: not an answer to hdr.seq, the MUD's position here. */
static void put_pos(const struct svc_state *s, const struct svc_mud *m,
		    const struct eh_hdr *h, uint16_t flag, void *out, size_t *outlen)
{
	struct eh_svcr_pos *pos = (void *)((uint8_t *)out + sizeof(*h));

	put_hdr(out, h, EH_T_SVCR, flag, sizeof(*pos));
	memset(pos, 0, sizeof(*pos));
	memcpy(pos->digest, m->digest, EH_DIGEST_LEN);
	memcpy(pos->server, s->name, EH_NAME_LEN);
	pos->next_seq = htonl(m->next_seq);
	*outlen = sizeof(*h) + sizeof(*pos);
}

static int handle_svcq(struct svc_state *s, const struct eh_hdr *h,
		       const uint8_t *body, uint32_t blen, void *out,
		       size_t *outlen)
{
	uint32_t mud_id = ntohl(h->mud_id), seq = ntohl(h->seq);
	struct eh_svcr_body *ans = (void *)((uint8_t *)out + sizeof(*h));
	struct svc_mud *m = svc_find(s, mud_id);
	struct svc_cached *c;
	uint8_t next[EH_DIGEST_LEN];
	int err;

	if (s->bound && mud_id != s->bound_mud) {
		/* Another MUD's container: no state of ours is its business. */
		s->cnt.other_mud++;
		return 0;
	}
	if (!m) {
		m = svc_add(s, mud_id, seq);
		if (!m) {
			s->cnt.table_full++;
			return 0;
		}
	}
	if ((int32_t)(seq - m->next_seq) < 0) {
		c = &m->cache[seq % SVC_CACHE];
		if (!c->valid || c->seq != seq) {
			/* Applied, answer gone: say so rather than be silent. */
			s->cnt.stale++;
			put_pos(s, m, h, EH_F_STALE, out, outlen);
			return 0;
		}
		s->cnt.dup_cached++;
		put_hdr(out, h, EH_T_SVCR, EH_F_DUP, sizeof(*ans));
		memcpy(ans, &c->body, sizeof(*ans));
		*outlen = sizeof(*h) + sizeof(*ans);
		return 0;
	}
	if (seq != m->next_seq) {
		/* Applying it would skip a request: tell which one is missing. */
		s->cnt.early++;
		put_pos(s, m, h, EH_F_GAP, out, outlen);
		return 0;
	}

	err = eh_digest_step(m->digest, seq, body, blen, next);
	if (err)
		return err;
	burn_cpu(s->work_us);

	memset(ans, 0, sizeof(*ans));
	memcpy(ans->digest, next, EH_DIGEST_LEN);
	memcpy(ans->server, s->name, EH_NAME_LEN);
	ans->result = htobe64(eh_offload_result(seq, body, blen));

	memcpy(m->digest, next, EH_DIGEST_LEN);
	m->last_seq = seq;
	m->next_seq = seq + 1;
	m->applied++;
	s->cnt.applied++;
	c = &m->cache[seq % SVC_CACHE];
	c->valid = true;
	c->seq = seq;
	memcpy(&c->body, ans, sizeof(*ans));

	if (s->on_apply && s->on_apply(s->cb_ctx, m, seq, ans))
		s->cnt.fs_errors++;

	put_hdr(out, h, EH_T_SVCR, 0, sizeof(*ans));
	*outlen = sizeof(*h) + sizeof(*ans);
	return 0;
}

static int cmp_mud(const void *a, const void *b)
{
	const struct svc_mud *x = *(struct svc_mud *const *)a;
	const struct svc_mud *y = *(struct svc_mud *const *)b;

	return x->mud_id < y->mud_id ? -1 : x->mud_id > y->mud_id;
}

/*
 * STATUS_REQ carries the index of the first entry wanted in hdr.seq; the
 * answer carries the total number of MUDs in hdr.mud_id, the index of its
 * first entry in hdr.seq, and at most SVC_STATUS_PER_MSG entries sorted by
 * mud_id, followed by the server name (flag EH_F_STATUS_NAME).
 */
static int handle_status(struct svc_state *s, const struct eh_hdr *h,
			 void *out, size_t *outlen)
{
	struct svc_mud *list[SVC_MAX_MUDS];
	uint32_t first = ntohl(h->seq), n = 0, i, k = 0;
	struct eh_status_ent *ent;
	struct eh_hdr *o = out;

	for (i = 0; i < SVC_SLOTS && n < SVC_MAX_MUDS; i++)
		if (s->slots[i])
			list[n++] = s->slots[i];
	qsort(list, n, sizeof(list[0]), cmp_mud);

	ent = (void *)((uint8_t *)out + sizeof(*o));
	for (i = first; i < n && k < SVC_STATUS_PER_MSG; i++, k++) {
		ent[k].mud_id = htonl(list[i]->mud_id);
		ent[k].last_seq = htonl(list[i]->last_seq);
		ent[k].applied = htobe64(list[i]->applied);
		memcpy(ent[k].digest, list[i]->digest, EH_DIGEST_LEN);
	}
	memcpy(&ent[k], s->name, EH_NAME_LEN);
	put_hdr(o, h, EH_T_STATUS_RESP, EH_F_STATUS_NAME,
		k * sizeof(*ent) + EH_NAME_LEN);
	o->mud_id = htonl(n);
	o->seq = htonl(first);
	*outlen = sizeof(*o) + k * sizeof(*ent) + EH_NAME_LEN;
	s->cnt.status++;
	return 0;
}

int svc_handle(struct svc_state *s, const void *pkt, size_t len,
	       void *out, size_t *outlen)
{
	const struct eh_hdr *h = pkt;
	uint32_t blen;

	*outlen = 0;
	s->cnt.rx++;
	if (len < sizeof(*h)) {
		s->cnt.malformed++;
		return 0;
	}
	if (ntohl(h->magic) != EH_MAGIC || h->version != EH_VERSION) {
		s->cnt.foreign++;
		return 0;
	}
	blen = ntohl(h->len);
	if (blen > len - sizeof(*h)) {	/* a length that lies */
		s->cnt.malformed++;
		return 0;
	}
	switch (h->type) {
	case EH_T_SVCQ:
		if (blen > EH_BODY_MAX) {
			s->cnt.oversized++;
			return 0;
		}
		return handle_svcq(s, h, (const uint8_t *)pkt + sizeof(*h),
				   blen, out, outlen);
	case EH_T_STATUS_REQ:
		return handle_status(s, h, out, outlen);
	default:
		if (h->type == 0 || h->type >= EH_T_MAX)
			s->cnt.malformed++;
		else
			s->cnt.unexpected++;
		return 0;
	}
}

void svc_counters_print(const struct svc_state *s, FILE *f)
{
	const struct svc_counters *c = &s->cnt;

	fprintf(f, "rx %llu\napplied %llu\ndup_cached %llu\nstale %llu\n"
		"early %llu\nstatus %llu\nmalformed %llu\nforeign %llu\n"
		"oversized %llu\nunexpected %llu\ntable_full %llu\n"
		"fs_errors %llu\nother_mud %llu\nmuds %u\n",
		(unsigned long long)c->rx, (unsigned long long)c->applied,
		(unsigned long long)c->dup_cached, (unsigned long long)c->stale,
		(unsigned long long)c->early, (unsigned long long)c->status,
		(unsigned long long)c->malformed, (unsigned long long)c->foreign,
		(unsigned long long)c->oversized,
		(unsigned long long)c->unexpected,
		(unsigned long long)c->table_full,
		(unsigned long long)c->fs_errors,
		(unsigned long long)c->other_mud, s->nmuds);
}
