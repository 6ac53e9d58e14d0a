// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <arpa/inet.h>
#include <endian.h>

#include "eh_digest.h"
#include "eh_time.h"
#include "eh_wire.h"
#include "svc_state.h"

static uint64_t mono_s(void)
{
	return eh_mono_ns() / 1000000000ull;
}

static bool name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (!n || n >= EH_NAME_LEN)
		return false;
	for (; *name; name++)
		if (*name <= ' ' || *name > '~' || *name == '"' || *name == '\\')
			return false;
	return true;
}

int svc_state_rename(struct svc_state *s, const char *name)
{
	if (!name_ok(name))
		return -EINVAL;
	memset(s->name, 0, sizeof(s->name));
	memcpy(s->name, name, strlen(name));
	return 0;
}

int svc_name_read(const char *path, char *name)
{
	char buf[128];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	for (n = (ssize_t)strlen(buf); n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t' ||
					      buf[n - 1] == '\r'); n--)
		buf[n - 1] = 0;
	if (!name_ok(buf))
		return -EINVAL;
	memset(name, 0, EH_NAME_LEN);
	memcpy(name, buf, strlen(buf));
	return 0;
}

int svc_state_init(struct svc_state *s, const char *name)
{
	static const char *const dflt[] = {
		"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
	};

	memset(s, 0, sizeof(*s));
	if (!name || !*name || strlen(name) >= EH_NAME_LEN)
		return -EINVAL;
	strncpy(s->name, name, EH_NAME_LEN - 1);
	/* Unpredictable buckets: nobody can pick ids that share one chain. */
	if (getrandom(&s->hash_key, sizeof(s->hash_key), GRND_NONBLOCK) !=
	    sizeof(s->hash_key))
		s->hash_key = (uint32_t)time(NULL) * 2654435761u ^ (uint32_t)getpid();
	for (size_t i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++)
		eh_cidr_parse(dflt[i], &s->status_from[s->nstatus_from++]);
	s->now_s = mono_s;
	return 0;
}

void svc_state_free(struct svc_state *s)
{
	for (uint32_t i = 0; i < s->nmuds; i++)
		free(s->sorted[i]);
	memset(s->buckets, 0, sizeof(s->buckets));
	s->probation.head = s->probation.tail = NULL;
	s->settled.head = s->settled.tail = NULL;
	s->nmuds = 0;
}

static uint32_t bucket_of(const struct svc_state *s, uint32_t mud_id)
{
	uint32_t h = mud_id ^ s->hash_key;

	/* murmur3's finaliser: every key bit reaches every bucket bit */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h % SVC_BUCKETS;
}

struct svc_mud *svc_find(struct svc_state *s, uint32_t mud_id)
{
	struct svc_mud *m;

	for (m = s->buckets[bucket_of(s, mud_id)]; m; m = m->hnext)
		if (m->mud_id == mud_id)
			return m;
	return NULL;
}

static void lru_unlink(struct svc_lru *l, struct svc_mud *m)
{
	if (m->lprev)
		m->lprev->lnext = m->lnext;
	else
		l->head = m->lnext;
	if (m->lnext)
		m->lnext->lprev = m->lprev;
	else
		l->tail = m->lprev;
	m->lprev = m->lnext = NULL;
}

static void lru_push(struct svc_lru *l, struct svc_mud *m)
{
	m->lprev = NULL;
	m->lnext = l->head;
	if (l->head)
		l->head->lprev = m;
	else
		l->tail = m;
	l->head = m;
}

static struct svc_lru *lru_of(struct svc_state *s, const struct svc_mud *m)
{
	return m->settled ? &s->settled : &s->probation;
}

/* A request of @m came in: most recently used, off probation once settled. */
static void touch(struct svc_state *s, struct svc_mud *m)
{
	lru_unlink(lru_of(s, m), m);
	if (m->applied >= 2)
		m->settled = true;
	lru_push(lru_of(s, m), m);
	m->last_use_s = s->now_s();
}

/* Index in sorted[] where @mud_id is or would go. */
static uint32_t sorted_pos(const struct svc_state *s, uint32_t mud_id)
{
	uint32_t lo = 0, hi = s->nmuds;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->sorted[mid]->mud_id < mud_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void evict(struct svc_state *s, struct svc_mud *m)
{
	struct svc_mud **pp = &s->buckets[bucket_of(s, m->mud_id)];
	uint32_t i = sorted_pos(s, m->mud_id);

	while (*pp != m)
		pp = &(*pp)->hnext;
	*pp = m->hnext;
	lru_unlink(lru_of(s, m), m);
	memmove(&s->sorted[i], &s->sorted[i + 1],
		(s->nmuds - i - 1) * sizeof(s->sorted[0]));
	s->nmuds--;
	s->cnt.evicted++;
	if (s->on_evict)
		s->on_evict(s->cb_ctx, m);
	free(m);
}

/*
 * Room for one more MUD: the least recently used on probation (one request
 * applied: junk looks like that), else the least recently used settled MUD
 * if it has been idle SVC_IDLE_S. Neither: refused.
 */
static bool make_room(struct svc_state *s)
{
	struct svc_mud *v = s->probation.tail;

	if (s->nmuds < SVC_MAX_MUDS)
		return true;
	if (!v) {
		v = s->settled.tail;
		/* signed: a clock that went back (restored elsewhere) is not idle */
		if (!v || (int64_t)(s->now_s() - v->last_use_s) < SVC_IDLE_S)
			return false;
	}
	evict(s, v);
	return true;
}

static struct svc_mud *svc_add(struct svc_state *s, uint32_t mud_id,
			       uint32_t first_seq)
{
	uint32_t b = bucket_of(s, mud_id), i;
	struct svc_mud *m;

	if (!make_room(s))
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->mud_id = mud_id;
	m->next_seq = first_seq;	/* a new session starts where it starts */
	m->last_seq = first_seq - 1;
	m->hnext = s->buckets[b];
	s->buckets[b] = m;
	lru_push(&s->probation, m);
	m->last_use_s = s->now_s();
	i = sorted_pos(s, mud_id);
	memmove(&s->sorted[i + 1], &s->sorted[i],
		(s->nmuds - i) * sizeof(s->sorted[0]));
	s->sorted[i] = m;
	s->nmuds++;
	return m;
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

/* An answer's header: mud_id, seq and send_ns echoed (send_ns lets the MUD match the try). */
static void put_hdr(struct eh_hdr *o, const struct eh_hdr_host *req, uint8_t type,
		    uint16_t flags, uint32_t len)
{
	eh_hdr_init(o, type, flags, req->mud_id, req->seq, req->send_ns, len);
}

/* A STALE or GAP answer: not an answer to hdr.seq, the MUD's position here. */
static void put_pos(const struct svc_state *s, const struct svc_mud *m,
		    const struct eh_hdr_host *h, uint16_t flag, void *out, size_t *outlen)
{
	struct eh_svcr_pos *pos = (void *)((uint8_t *)out + sizeof(struct eh_hdr));

	put_hdr(out, h, EH_T_SVCR, flag, sizeof(*pos));
	memset(pos, 0, sizeof(*pos));
	memcpy(pos->digest, m->digest, EH_DIGEST_LEN);
	memcpy(pos->server, s->name, EH_NAME_LEN);
	pos->next_seq = htonl(m->next_seq);
	*outlen = sizeof(struct eh_hdr) + sizeof(*pos);
}

static int handle_svcq(struct svc_state *s, const struct eh_hdr_host *h,
		       const uint8_t *body, uint32_t blen, void *out,
		       size_t *outlen)
{
	uint32_t mud_id = h->mud_id, seq = h->seq;
	struct eh_svcr_body *ans = (void *)((uint8_t *)out + sizeof(struct eh_hdr));
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
	touch(s, m);
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
		*outlen = sizeof(struct eh_hdr) + sizeof(*ans);
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

	if (!m->settled && m->applied >= 2)
		touch(s, m);	/* off probation */
	if (s->on_apply && s->on_apply(s->cb_ctx, m, seq, ans))
		s->cnt.fs_errors++;

	put_hdr(out, h, EH_T_SVCR, 0, sizeof(*ans));
	*outlen = sizeof(struct eh_hdr) + sizeof(*ans);
	return 0;
}

/*
 * STATUS_REQ carries the index of the first entry wanted in hdr.seq; the
 * answer carries the total number of MUDs in hdr.mud_id, the index of its
 * first entry in hdr.seq, and at most SVC_STATUS_PER_MSG entries sorted by
 * mud_id (kept sorted as MUDs come and go: no sort per request), followed by
 * the server name (flag EH_F_STATUS_NAME). Answered only when it is no longer
 * than the request, or to a source in status_from: never an amplifier for a
 * spoofed source.
 */
static int handle_status(struct svc_state *s, const struct eh_hdr_host *h, size_t reqlen,
			 const struct sockaddr_in *src, void *out, size_t *outlen)
{
	uint32_t first = h->seq, i, k = 0;
	struct eh_status_ent *ent;
	struct eh_hdr *o = out;
	size_t len;

	ent = (void *)((uint8_t *)out + sizeof(*o));
	for (i = first; i < s->nmuds && k < SVC_STATUS_PER_MSG; i++, k++) {
		const struct svc_mud *m = s->sorted[i];

		ent[k].mud_id = htonl(m->mud_id);
		ent[k].last_seq = htonl(m->last_seq);
		ent[k].applied = htobe64(m->applied);
		memcpy(ent[k].digest, m->digest, EH_DIGEST_LEN);
	}
	len = sizeof(*o) + k * sizeof(*ent) + EH_NAME_LEN;
	if (len > reqlen &&
	    !(src && eh_cidr_match(s->status_from, s->nstatus_from, src->sin_addr))) {
		s->cnt.status_refused++;
		return 0;
	}
	memcpy(&ent[k], s->name, EH_NAME_LEN);
	/* mud_id: how many MUDs in all; seq: the index of the first entry */
	eh_hdr_init(o, EH_T_STATUS_RESP, EH_F_STATUS_NAME, s->nmuds, first, h->send_ns,
		    k * sizeof(*ent) + EH_NAME_LEN);
	*outlen = len;
	s->cnt.status++;
	return 0;
}

int svc_handle(struct svc_state *s, const void *pkt, size_t len,
	       const struct sockaddr_in *src, void *out, size_t *outlen)
{
	struct eh_hdr_host h;

	*outlen = 0;
	s->cnt.rx++;
	switch (eh_hdr_check(pkt, len, &h)) {
	case 0:
		break;
	case -EH_HDR_MAGIC:
	case -EH_HDR_VERSION:
		s->cnt.foreign++;
		return 0;
	default:	/* short, or a length that lies */
		s->cnt.malformed++;
		return 0;
	}
	switch (h.type) {
	case EH_T_SVCQ:
		if (h.len > EH_BODY_MAX) {
			s->cnt.oversized++;
			return 0;
		}
		return handle_svcq(s, &h, (const uint8_t *)pkt + sizeof(struct eh_hdr),
				   h.len, out, outlen);
	case EH_T_STATUS_REQ:
		return handle_status(s, &h, len, src, out, outlen);
	default:
		if (h.type == 0 || h.type >= EH_T_MAX)
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
		"fs_errors %llu\nother_mud %llu\nstatus_refused %llu\n"
		"evicted %llu\nmuds %u\n",
		(unsigned long long)c->rx, (unsigned long long)c->applied,
		(unsigned long long)c->dup_cached, (unsigned long long)c->stale,
		(unsigned long long)c->early, (unsigned long long)c->status,
		(unsigned long long)c->malformed, (unsigned long long)c->foreign,
		(unsigned long long)c->oversized,
		(unsigned long long)c->unexpected,
		(unsigned long long)c->table_full,
		(unsigned long long)c->fs_errors,
		(unsigned long long)c->other_mud,
		(unsigned long long)c->status_refused,
		(unsigned long long)c->evicted, s->nmuds);
}
