// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The service's exactly-once state machine, driven with crafted datagrams. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <endian.h>

#include "ballast.h"
#include "eh_digest.h"
#include "eh_wire.h"
#include "svc_state.h"
#include "tap.h"

static uint8_t out[sizeof(struct eh_hdr) + EH_BODY_MAX];

static size_t mk(uint8_t *buf, uint8_t type, uint32_t mud, uint32_t seq,
		 const void *body, uint32_t blen)
{
	eh_hdr_init((struct eh_hdr *)buf, type, 0, mud, seq, 12345, blen);
	if (blen)
		memcpy(buf + sizeof(struct eh_hdr), body, blen);
	return sizeof(struct eh_hdr) + blen;
}

/* Send seq's deterministic payload for @mud; returns the answer length. */
static size_t req(struct svc_state *s, uint32_t mud, uint32_t seq)
{
	uint8_t pkt[256], pl[48];
	size_t outlen = 0;

	eh_payload_fill(mud, seq, pl, sizeof(pl));
	svc_handle(s, pkt, mk(pkt, EH_T_SVCQ, mud, seq, pl, sizeof(pl)), NULL, out,
		   &outlen);
	return outlen;
}

static const struct eh_svcr_body *ans(void)
{
	return (const void *)(out + sizeof(struct eh_hdr));
}

static const struct eh_svcr_pos *pos(void)
{
	return (const void *)(out + sizeof(struct eh_hdr));
}

static uint16_t ans_flags(void)
{
	return ntohs(((struct eh_hdr *)out)->flags);
}

static struct sockaddr_in from(const char *ip)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(40000) };

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

static int evictions;
static void count_evict(void *ctx, const struct svc_mud *m)
{
	(void)ctx; (void)m;
	evictions++;
}

/* Every STATUS page from 0 on, padded; true when ids ascend and count == nmuds. */
static bool status_consistent(struct svc_state *s)
{
	static uint8_t pkt[SVC_STATUS_MAX];
	uint32_t first = 0, prev = 0, total;
	size_t outlen;

	do {
		const struct eh_hdr *o = (const void *)out;
		const struct eh_status_ent *e = (const void *)(out + sizeof(*o));
		uint32_t k;

		memset(pkt, 0, sizeof(pkt));
		mk(pkt, EH_T_STATUS_REQ, 0, first, NULL, 0);
		svc_handle(s, pkt, sizeof(pkt), NULL, out, &outlen);
		if (!outlen)
			return false;
		total = ntohl(o->mud_id);
		k = (ntohl(o->len) - EH_NAME_LEN) / sizeof(*e);
		for (uint32_t i = 0; i < k; i++) {
			uint32_t id = ntohl(e[i].mud_id);

			if ((first || i) && id <= prev)
				return false;
			if (!svc_find(s, id))
				return false;
			prev = id;
		}
		if (!k)
			break;
		first += k;
	} while (first < total);
	return first == s->nmuds && total == s->nmuds;
}

static int fs_calls;
static int count_apply(void *ctx, const struct svc_mud *m, uint32_t seq,
		       const struct eh_svcr_body *a)
{
	(void)ctx; (void)m; (void)seq; (void)a;
	fs_calls++;
	return 0;
}

/*
 * The heap ballast (ballast.h): 40/30/30 floats/text/zero blocks, floats that
 * look like weights, text that is printable lines, the random one without
 * zero blocks; the same seed gives the same bytes.
 */
static void ballast_checks(void)
{
	size_t len = 20 * SVC_BALLAST_BLOCK + 1000, b, i, nb[3] = {};
	uint8_t *a = malloc(len), *c = malloc(len);
	enum svc_ballast k;
	int floats_ok = 1, text_ok = 1, zero_ok = 1, random_ok = 1;

	svc_ballast_fill(a, len, SVC_BALLAST_HEAP, 42);
	for (b = 0; b * SVC_BALLAST_BLOCK < len; b++) {
		const uint8_t *p = a + b * SVC_BALLAST_BLOCK;
		size_t n = len - b * SVC_BALLAST_BLOCK;
		enum svc_ballast_block kind = svc_ballast_block_kind(b);
		double sum2 = 0;

		n = n < SVC_BALLAST_BLOCK ? n : SVC_BALLAST_BLOCK;
		if (n == SVC_BALLAST_BLOCK)
			nb[kind]++;
		for (i = 0; kind == SVC_BLK_FLOATS && i + 4 <= n; i += 4) {
			float w;

			memcpy(&w, p + i, 4);
			floats_ok &= w > -0.07f && w < 0.07f;
			sum2 += (double)w * w;
		}
		if (kind == SVC_BLK_FLOATS && n == SVC_BALLAST_BLOCK) {
			double var = sum2 / (n / 4);

			floats_ok &= var > 0.018 * 0.018 && var < 0.022 * 0.022;
		}
		for (i = 0; kind == SVC_BLK_TEXT && i < n; i++)
			text_ok &= (p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\n';
		for (i = 0; kind == SVC_BLK_ZERO && i < n; i++)
			zero_ok &= p[i] == 0;
	}
	tap_ok(nb[SVC_BLK_FLOATS] == 8 && nb[SVC_BLK_TEXT] == 6 && nb[SVC_BLK_ZERO] == 6,
	       "heap ballast: 20 blocks are 8 float, 6 text, 6 zero (%zu %zu %zu)",
	       nb[0], nb[1], nb[2]);
	tap_ok(floats_ok && text_ok && zero_ok,
	       "heap ballast: floats within +-0.07 with sd 0.02, text printable, zero blocks zero");
	svc_ballast_fill(c, len, SVC_BALLAST_HEAP, 42);
	tap_ok(!memcmp(a, c, len), "heap ballast: the same seed gives the same bytes");
	svc_ballast_fill(a, len, SVC_BALLAST_RANDOM, 42);
	for (b = 0; b + 4096 <= len; b += 4096) {
		for (i = 0; i < 4096 && !a[b + i]; i++)
			;
		random_ok &= i < 4096;
	}
	tap_ok(random_ok && memcmp(a, c, len), "random ballast: no zero page, not the heap's bytes");
	tap_ok(!svc_ballast_parse("heap", &k) && k == SVC_BALLAST_HEAP &&
	       !svc_ballast_parse("random", &k) && k == SVC_BALLAST_RANDOM &&
	       svc_ballast_parse("zero", &k) == -EINVAL && svc_ballast_parse("", &k) == -EINVAL,
	       "--mem-kind: heap and random parse, anything else is refused");
	free(a);
	free(c);
}

/* svc_name_read: the first line of a file (CT-y's /etc/hostname). */
static void name_file_checks(void)
{
	static const struct { const char *text; int want; const char *name; } c[] = {
		{ "CT-node-y\n", 0, "CT-node-y" },
		{ "CT-node-y  \r\nsecond line\n", 0, "CT-node-y" },
		{ "abc", 0, "abc" },
		{ "", -EINVAL, NULL },
		{ "\n", -EINVAL, NULL },
		{ "two words\n", -EINVAL, NULL },
		{ "0123456789012345678901234567890123456789\n", -EINVAL, NULL },
	};
	char path[] = "/tmp/eh-unit-svc-name.XXXXXX", name[EH_NAME_LEN];
	int fd = mkstemp(path), ok = fd >= 0, r;

	for (size_t i = 0; ok && i < sizeof(c) / sizeof(c[0]); i++) {
		ok = !ftruncate(fd, 0) && pwrite(fd, c[i].text, strlen(c[i].text), 0) ==
		     (ssize_t)strlen(c[i].text);
		memset(name, 'z', sizeof(name));
		r = svc_name_read(path, name);
		ok = ok && r == c[i].want && (r || !strcmp(name, c[i].name));
		if (!ok)
			tap_diag("name file case %zu: %d, want %d", i, r, c[i].want);
	}
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	tap_ok(ok && svc_name_read(path, name) == -ENOENT,
	       "svc_name_read: the first line, trailing blanks dropped; empty, spaced, "
	       "long and missing files refused");
}

int main(void)
{
	struct svc_state *s = malloc(sizeof(*s));
	uint8_t d[EH_DIGEST_LEN] = {}, pl[48], pkt[4096], saved[EH_DIGEST_LEN];
	struct eh_svcr_body first;
	struct eh_status_ent *ent;
	struct svc_mud *m;
	struct sockaddr_in lo;
	size_t n, outlen, i;
	uint64_t applied;
	int ok;

	tap_plan(48);
	tap_ok(svc_state_init(s, "ct-x") == 0, "state initialises");
	s->on_apply = count_apply;

	n = req(s, 7, 0);
	eh_payload_fill(7, 0, pl, sizeof(pl));
	eh_digest_step(d, 0, pl, sizeof(pl), d);
	tap_ok(n == sizeof(struct eh_hdr) + sizeof(struct eh_svcr_body) &&
	       !memcmp(ans()->digest, d, EH_DIGEST_LEN) && ans_flags() == 0 &&
	       !strcmp(ans()->server, "ct-x"),
	       "seq 0 is applied and answered with d1 and the server name");
	tap_ok(be64toh(ans()->result) == eh_offload_result(0, pl, sizeof(pl)) &&
	       be64toh(((struct eh_hdr *)out)->send_ns) == 12345,
	       "answer carries the offload result and echoes send_ns");
	memcpy(&first, ans(), sizeof(first));

	n = req(s, 7, 0);
	m = svc_find(s, 7);
	tap_ok(n && ans_flags() == EH_F_DUP && !memcmp(ans(), &first, sizeof(first)) &&
	       m->applied == 1 && s->cnt.dup_cached == 1,
	       "duplicate seq 0 answered from the cache, identical, not re-applied");

	n = req(s, 7, 2);
	tap_ok(n == sizeof(struct eh_hdr) + sizeof(struct eh_svcr_pos) &&
	       ans_flags() == EH_F_GAP && s->cnt.early == 1 && m->applied == 1 &&
	       !memcmp(m->digest, d, EH_DIGEST_LEN),
	       "seq 2 before seq 1 is held off: answered GAP, no state change");
	tap_ok(ntohl(pos()->next_seq) == 1 && !memcmp(pos()->digest, d, EH_DIGEST_LEN) &&
	       !strcmp(pos()->server, "ct-x") && ntohl(((struct eh_hdr *)out)->seq) == 2,
	       "GAP answer names the next expected seq 1 and the current digest");

	n = req(s, 7, 1);
	eh_payload_fill(7, 1, pl, sizeof(pl));
	eh_digest_step(d, 1, pl, sizeof(pl), d);
	tap_ok(n && !memcmp(ans()->digest, d, EH_DIGEST_LEN) && m->applied == 2 &&
	       m->last_seq == 1, "seq 1 applied next, digest chains");
	tap_ok(req(s, 7, 2) && m->applied == 3, "the retried seq 2 is now applied");
	tap_ok(fs_calls == 3, "the state-dir hook ran once per application (%d)",
	       fs_calls);

	/* malformed and foreign input never answers and never changes state */
	memcpy(saved, m->digest, sizeof(saved));
	applied = s->cnt.applied;
	outlen = 1;
	svc_handle(s, pkt, 10, NULL, out, &outlen);
	tap_ok(outlen == 0 && s->cnt.malformed == 1, "short datagram counted as malformed");
	n = mk(pkt, EH_T_SVCQ, 7, 3, pl, sizeof(pl));
	((struct eh_hdr *)pkt)->magic = htonl(0xdeadbeef);
	svc_handle(s, pkt, n, NULL, out, &outlen);
	tap_ok(outlen == 0 && s->cnt.foreign == 1, "wrong magic counted as foreign");
	n = mk(pkt, EH_T_SVCQ, 7, 3, pl, sizeof(pl));
	((struct eh_hdr *)pkt)->version = 9;
	svc_handle(s, pkt, n, NULL, out, &outlen);
	tap_ok(outlen == 0 && s->cnt.foreign == 2, "wrong version counted as foreign");
	n = mk(pkt, EH_T_SVCQ, 7, 3, pl, sizeof(pl));
	ok = 1;
	for (i = 0; i < n; i++) {	/* every truncation of a valid request */
		svc_handle(s, pkt, i, NULL, out, &outlen);
		ok &= outlen == 0;
	}
	tap_ok(ok && s->cnt.malformed == 1 + n, "all %zu truncations refused as malformed",
	       n);
	memset(pkt + sizeof(struct eh_hdr), 0, 2000);
	n = mk(pkt, EH_T_SVCQ, 7, 3, NULL, 0);
	((struct eh_hdr *)pkt)->len = htonl(EH_BODY_MAX + 1);
	svc_handle(s, pkt, n + EH_BODY_MAX + 1, NULL, out, &outlen);
	tap_ok(outlen == 0 && s->cnt.oversized == 1, "body > EH_BODY_MAX counted as oversized");
	n = mk(pkt, 0, 7, 3, NULL, 0);
	svc_handle(s, pkt, n, NULL, out, &outlen);
	n = mk(pkt, 200, 7, 3, NULL, 0);
	svc_handle(s, pkt, n, NULL, out, &outlen);
	tap_ok(outlen == 0 && s->cnt.malformed == 3 + (sizeof(struct eh_hdr) + 48),
	       "unknown types counted as malformed");
	n = mk(pkt, EH_T_ASSOC_REQ, 7, 3, NULL, 0);
	svc_handle(s, pkt, n, NULL, out, &outlen);
	tap_ok(outlen == 0 && s->cnt.unexpected == 1, "ASSOC_REQ at the service counted as unexpected");
	srand(42);
	for (i = 0; i < 20000; i++) {	/* random bytes behind a valid magic */
		size_t len = rand() % 200;

		for (size_t j = 0; j < len; j++)
			pkt[j] = rand();
		if (len >= 5) {
			((struct eh_hdr *)pkt)->magic = htonl(EH_MAGIC);
			pkt[4] = EH_VERSION;
			if (pkt[5] == EH_T_SVCQ)	/* keep the fuzz away from mud 7 */
				((struct eh_hdr *)pkt)->mud_id = htonl(1000 + i);
		}
		svc_handle(s, pkt, len, NULL, out, &outlen);
	}
	m = svc_find(s, 7);
	tap_ok(!memcmp(m->digest, saved, sizeof(saved)) && m->applied == 3,
	       "MUD 7 untouched by all refused and fuzzed input (applied %llu, fuzz applied %llu)",
	       (unsigned long long)m->applied,
	       (unsigned long long)(s->cnt.applied - applied));

	for (i = 3; i < 3 + 2 * SVC_CACHE; i++)
		req(s, 7, i);
	memcpy(saved, m->digest, sizeof(saved));
	applied = m->applied;
	n = req(s, 7, 0);
	tap_ok(n == sizeof(struct eh_hdr) + sizeof(struct eh_svcr_pos) &&
	       ans_flags() == EH_F_STALE && s->cnt.stale == 1 && m->applied == applied,
	       "a duplicate older than the cache is answered STALE, not re-applied");
	tap_ok(ntohl(pos()->next_seq) == 3 + 2 * SVC_CACHE &&
	       !memcmp(pos()->digest, saved, EH_DIGEST_LEN) &&
	       be64toh(((struct eh_hdr *)out)->send_ns) == 12345,
	       "STALE answer carries the next seq %u and the current digest, echoes send_ns",
	       3 + 2 * SVC_CACHE);
	n = req(s, 7, 3 + 2 * SVC_CACHE - 1);
	tap_ok(n && ans_flags() == EH_F_DUP, "the newest answer is still cached");

	/* a MUD unknown to the service starts where its first request is */
	memset(d, 0, sizeof(d));
	eh_payload_fill(9, 100, pl, sizeof(pl));
	eh_digest_step(d, 100, pl, sizeof(pl), d);
	n = req(s, 9, 100);
	tap_ok(n && !memcmp(ans()->digest, d, EH_DIGEST_LEN),
	       "unknown MUD's first seq 100 chains from the zero digest");

	/* status */
	svc_state_free(s);
	svc_state_init(s, "ct-y");
	req(s, 5, 0);
	req(s, 3, 0);
	req(s, 3, 1);
	lo = from("127.0.0.1");
	n = mk(pkt, EH_T_STATUS_REQ, 0, 0, NULL, 0);
	svc_handle(s, pkt, n, &lo, out, &outlen);
	ent = (void *)(out + sizeof(struct eh_hdr));
	tap_ok(outlen == sizeof(struct eh_hdr) + 2 * sizeof(*ent) + EH_NAME_LEN &&
	       ntohl(((struct eh_hdr *)out)->mud_id) == 2 &&
	       ntohs(((struct eh_hdr *)out)->flags) == EH_F_STATUS_NAME,
	       "status lists 2 MUDs with the name trailer");
	m = svc_find(s, 3);
	tap_ok(ntohl(ent[0].mud_id) == 3 && ntohl(ent[0].last_seq) == 1 &&
	       be64toh(ent[0].applied) == 2 && !memcmp(ent[0].digest, m->digest, EH_DIGEST_LEN) &&
	       ntohl(ent[1].mud_id) == 5,
	       "entries sorted by mud_id with last_seq, applied, digest");
	tap_ok(!strcmp((char *)&ent[2], "ct-y"), "server name after the entries");
	n = mk(pkt, EH_T_STATUS_REQ, 0, 5, NULL, 0);
	svc_handle(s, pkt, n, &lo, out, &outlen);
	tap_ok(outlen == sizeof(struct eh_hdr) + EH_NAME_LEN, "a page past the end is empty");

	svc_state_free(s);

	/*
	 * Junk cannot lock the table: 6,000 requests with junk MUD ids (one
	 * applied request each: on probation), then a real MUD is served.
	 */
	svc_state_init(s, "ct-j");
	s->now_s = fake_clock;
	s->on_evict = count_evict;
	fake_now = 1000;
	req(s, 42, 0);
	req(s, 42, 1);		/* settled: two applied */
	srand(7);
	for (i = 0; i < 6000; i++)
		req(s, 1000000 + (uint32_t)rand() % 1000000000u, rand());
	tap_ok(s->nmuds == SVC_MAX_MUDS && s->cnt.table_full == 0 &&
	       s->cnt.evicted >= 6000 - SVC_MAX_MUDS && evictions == (int)s->cnt.evicted,
	       "6,000 junk MUD ids: table stays at %d, junk evicted (%llu), none refused",
	       SVC_MAX_MUDS, (unsigned long long)s->cnt.evicted);
	ok = 1;
	for (i = 0; i < 20; i++)
		ok &= req(s, 7, i) && ans_flags() == 0;
	tap_ok(ok && svc_find(s, 7) && svc_find(s, 7)->applied == 20,
	       "after the junk a real MUD gets all 20 requests answered and applied");
	tap_ok(svc_find(s, 42) && svc_find(s, 42)->applied == 2,
	       "a settled MUD is never evicted by junk while it is not idle");
	tap_ok(status_consistent(s), "status pages list all %u MUDs in mud_id order after evictions",
	       s->nmuds);

	/* A table of settled, busy MUDs refuses new ones; idle ones make room. */
	svc_state_free(s);
	svc_state_init(s, "ct-k");
	s->now_s = fake_clock;
	for (i = 0; i < SVC_MAX_MUDS; i++) {
		req(s, 5000 + i, 0);
		req(s, 5000 + i, 1);
	}
	n = req(s, 77, 0);
	tap_ok(n == 0 && s->cnt.table_full == 1 && !svc_find(s, 77),
	       "table full of settled MUDs used within %d s: a new MUD is refused (table_full)",
	       SVC_IDLE_S);
	fake_now += SVC_IDLE_S;
	req(s, 5001, 2);	/* still in use: never the one evicted */
	n = req(s, 77, 0);
	tap_ok(n && svc_find(s, 77) && !svc_find(s, 5000) && svc_find(s, 5001) &&
	       s->nmuds == SVC_MAX_MUDS,
	       "%d s later the least recently used idle MUD (5000) makes room", SVC_IDLE_S);
	tap_ok(status_consistent(s), "status still consistent");

	/* STATUS never amplifies for a source it does not trust. */
	{
		struct sockaddr_in far = from("203.0.113.5"), near = from("10.91.2.1");
		static uint8_t big[SVC_STATUS_MAX];

		n = mk(pkt, EH_T_STATUS_REQ, 0, 0, NULL, 0);
		outlen = 1;
		svc_handle(s, pkt, n, &far, out, &outlen);
		tap_ok(outlen == 0 && s->cnt.status_refused == 1,
		       "32-byte STATUS_REQ from 203.0.113.5: not answered (status_refused)");
		memset(big, 0, sizeof(big));
		mk(big, EH_T_STATUS_REQ, 0, 0, NULL, 0);
		svc_handle(s, big, sizeof(big), &far, out, &outlen);
		tap_ok(outlen > 0 && outlen <= sizeof(big),
		       "the same padded to %zu bytes: answered with %zu bytes (no amplification)",
		       sizeof(big), outlen);
		svc_handle(s, pkt, n, &near, out, &outlen);
		tap_ok(outlen == SVC_STATUS_MAX,
		       "32-byte STATUS_REQ from 10.91.2.1 (default --status-from): full page");
		eh_cidr_parse("10.91.2.0/24", &s->status_from[0]);
		s->nstatus_from = 1;
		svc_handle(s, pkt, n, &far, out, &outlen);
		ok = outlen == 0;
		svc_handle(s, pkt, n, &near, out, &outlen);
		tap_ok(ok && outlen == SVC_STATUS_MAX, "--status-from 10.91.2.0/24 trusts only it");
		tap_ok(eh_cidr_parse("10.0.0.0/33", &s->status_from[1]) == -EINVAL &&
		       eh_cidr_parse("nonsense", &s->status_from[1]) == -EINVAL &&
		       eh_cidr_parse("1.2.3.4", &s->status_from[1]) == 0 &&
		       s->status_from[1].mask == ~0u, "CIDR parsing refuses junk, bare address is /32");
	}
	svc_state_free(s);

	/* --mud-id: a container serves one MUD and nobody else */
	svc_state_init(s, "ct-7");
	s->bound = true;
	s->bound_mud = 7;
	n = req(s, 8, 0);
	tap_ok(n == 0 && s->nmuds == 0 && s->cnt.other_mud == 1 && s->cnt.applied == 0,
	       "bound to MUD 7: MUD 8's request counted, not answered, not added");
	n = req(s, 7, 0);
	tap_ok(n && ans_flags() == 0 && s->nmuds == 1 && svc_find(s, 7)->applied == 1,
	       "bound to MUD 7: MUD 7 served");
	ok = 1;
	for (i = 0; i < 100; i++) {
		ok &= req(s, 8 + i, i) == 0;
		ok &= req(s, 8 + i, 0) == 0;
	}
	tap_ok(ok && s->nmuds == 1 && s->cnt.other_mud == 201 && !svc_find(s, 8),
	       "bound: 200 requests of other MUDs (any seq) never answered or added");

	/* a restored service takes its own name: later answers carry it, the cache keeps who computed */
	memcpy(saved, ans()->digest, EH_DIGEST_LEN);
	tap_ok(svc_state_rename(s, "CT-node-y") == 0 && req(s, 7, 1) &&
	       !strcmp(ans()->server, "CT-node-y") && req(s, 7, 0) && ans_flags() == EH_F_DUP &&
	       !strcmp(ans()->server, "ct-7"),
	       "renamed: a new answer carries CT-node-y, seq 0 from the cache still ct-7");
	tap_ok(svc_state_rename(s, "") == -EINVAL && svc_state_rename(s, "a b") == -EINVAL &&
	       svc_state_rename(s, "0123456789012345678901234567890123") == -EINVAL &&
	       svc_state_rename(s, "x\"y") == -EINVAL && !strcmp(s->name, "CT-node-y"),
	       "rename refuses empty, spaced, quoted and over-31-byte names, the name stays");
	name_file_checks();
	svc_state_free(s);
	free(s);
	ballast_checks();
	return tap_done();
}
