// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The peer channel on loopback: a server thread (node-a) and clients in the
 * main thread. Good handshakes, messages, a 50 MB stream and 160 short ones
 * read as the migration reads a tar; then every kind of bad peer and bad
 * frame, each followed by a good peer that must still get through.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zstd.h>

#include "peer.h"
#include "peer_wire.h"
#include "tap.h"

#define STREAM_BYTES	(50ull * 1000 * 1000)
#define CHUNK		(64 * 1024)

static uint8_t key_a[32], key_b[32];
static struct peer_ctx *srv_ctx;
static int lfd;
static uint16_t srv_port;

/* --- log capture: every library message is a TAP comment and kept for asserts --- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[16384];
static size_t log_len;

static void log_cb(int prio, const char *msg, void *arg)
{
	size_t n = strlen(msg);

	(void)prio;
	(void)arg;
	pthread_mutex_lock(&log_lock);
	printf("# peer: %s\n", msg);
	fflush(stdout);
	if (log_len + n + 2 < sizeof(log_buf)) {
		memcpy(log_buf + log_len, msg, n);
		log_len += n;
		log_buf[log_len++] = '\n';
		log_buf[log_len] = '\0';
	}
	pthread_mutex_unlock(&log_lock);
}

static void log_reset(void)
{
	pthread_mutex_lock(&log_lock);
	log_len = 0;
	log_buf[0] = '\0';
	pthread_mutex_unlock(&log_lock);
}

static int log_has(const char *s)
{
	int r;

	pthread_mutex_lock(&log_lock);
	r = strstr(log_buf, s) != NULL;
	pthread_mutex_unlock(&log_lock);
	return r;
}

/* --- the server thread ---------------------------------------------------------- */

enum srv_mode {
	SRV_ECHO,	/* echo messages back until the client goes */
	SRV_COUNT,	/* count delivered messages until an error */
	SRV_STREAM,	/* read one stream, then count messages */
	SRV_STREAMS,	/* read the streams of a plan as recv_into_dir() does */
};

/*
 * One stream of a plan: len bytes, read with reads of cap1 bytes while fewer
 * than head bytes arrived, then 4096-byte reads to the END (recv_into_dir():
 * libarchive's 64 KiB reads to the tar end marker, then its drain).
 */
struct ss_plan {
	size_t len, head, cap1;
	uint8_t sha[32];
};

struct srv_job {
	enum srv_mode mode;
	int accept_ms, io_ms;
	int accept_err;
	char name[PEER_NAME_MAX + 1];
	int group;
	int msgs, msg_err;
	ssize_t read_err;	/* last peer_rstream_read result (0 = END) */
	int end_err;
	uint64_t got;
	uint8_t sha[32];
	struct peer_xfer xfer;
	const struct ss_plan *plan;	/* SRV_STREAMS */
	int nplan, streams_ok, exact_ends;
	pthread_t th;
};

/*
 * Reads the plan's streams in order; stops at the first one that does not end
 * at a verified END with the planned length and SHA-256 (read_err, end_err
 * say why). exact_ends counts streams whose last data read filled its buffer.
 */
static void srv_streams(struct srv_job *j, struct peer_conn *pc, uint8_t *buf, EVP_MD_CTX *sha)
{
	for (int i = 0; i < j->nplan; i++) {
		const struct ss_plan *p = &j->plan[i];
		struct peer_rstream *r = NULL;
		size_t cap, last = 0, last_cap = 0;
		unsigned int mdlen;
		ssize_t n;

		j->got = 0;
		j->read_err = peer_rstream_begin(pc, &r);
		EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
		while (!j->read_err) {
			cap = j->got < p->head ? p->cap1 : 4096;
			n = peer_rstream_read(r, buf, cap);
			if (n <= 0) {
				j->read_err = n;
				break;
			}
			EVP_DigestUpdate(sha, buf, n);
			j->got += n;
			last = n;
			last_cap = cap;
		}
		EVP_DigestFinal_ex(sha, j->sha, &mdlen);
		j->end_err = r ? peer_rstream_end(r, &j->xfer) : -EPROTO;
		if (j->read_err || j->end_err || j->got != p->len || memcmp(j->sha, p->sha, 32))
			return;
		j->exact_ends += last && last == last_cap;
		j->streams_ok++;
	}
}

static void *srv_main(void *arg)
{
	struct srv_job *j = arg;
	struct peer_rstream *r = NULL;
	struct peer_conn *pc = NULL;
	EVP_MD_CTX *sha = NULL;
	unsigned int mdlen;
	uint8_t *buf = NULL;
	json_t *m;
	ssize_t n;

	j->accept_err = peer_accept(srv_ctx, lfd, j->accept_ms ? j->accept_ms : 5000, &pc);
	if (j->accept_err)
		return NULL;
	snprintf(j->name, sizeof(j->name), "%s", peer_name(pc));
	j->group = peer_conn_group(pc);
	peer_set_timeout(pc, j->io_ms ? j->io_ms : 5000);
	if (j->mode == SRV_STREAM) {
		buf = malloc(256 * 1024);
		sha = EVP_MD_CTX_new();
		EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
		j->read_err = peer_rstream_begin(pc, &r);
		while (!j->read_err) {
			n = peer_rstream_read(r, buf, 256 * 1024);
			if (n <= 0) {
				j->read_err = n;
				break;
			}
			EVP_DigestUpdate(sha, buf, n);
			j->got += n;
		}
		EVP_DigestFinal_ex(sha, j->sha, &mdlen);
		if (r)
			j->end_err = peer_rstream_end(r, &j->xfer);
	} else if (j->mode == SRV_STREAMS) {
		buf = malloc(256 * 1024);
		sha = EVP_MD_CTX_new();
		srv_streams(j, pc, buf, sha);
	}
	for (;;) {
		j->msg_err = peer_recv_msg(pc, &m);
		if (j->msg_err)
			break;
		j->msgs++;
		if (j->mode == SRV_ECHO && peer_send_msg(pc, m)) {
			json_decref(m);
			break;
		}
		json_decref(m);
	}
	EVP_MD_CTX_free(sha);
	free(buf);
	peer_close(pc);
	return NULL;
}

static void srv_start(struct srv_job *j, enum srv_mode mode)
{
	j->mode = mode;
	pthread_create(&j->th, NULL, srv_main, j);
}

static void srv_wait(struct srv_job *j)
{
	pthread_join(j->th, NULL);
}

/* --- clients ------------------------------------------------------------------------ */

static struct peer_ctx *client_ctx(const char *name, const uint8_t *key)
{
	struct peer_ctx *c;
	struct peer_allow allow[] = { { "node-a", NULL } };

	if (peer_ctx_new(&c, name, key, 32, allow, 1))
		return NULL;
	return c;
}

static int raw_connect(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(srv_port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until EOF or 3 s; returns the bytes read. */
static size_t drain(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];
	size_t total = 0;
	ssize_t n;

	while (poll(&p, 1, 3000) > 0) {
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		total += n;
	}
	return total;
}

/* A good peer (node-b, right key) connects, exchanges a message and leaves. */
static void good_peer(const char *after)
{
	struct srv_job j = {};
	struct peer_conn *pc = NULL;
	struct peer_ctx *c = client_ctx("node-b", key_a);
	json_t *m = json_pack("{s:s}", "after", after), *back = NULL;
	int err;

	srv_start(&j, SRV_ECHO);
	err = peer_connect(c, "node-a", "127.0.0.1", srv_port, 5000, &pc);
	if (!err)
		err = peer_send_msg(pc, m);
	if (!err)
		err = peer_recv_msg(pc, &back);
	peer_close(pc);
	srv_wait(&j);
	tap_ok(!err && !j.accept_err && json_equal(m, back) && j.msgs == 1,
	       "after %s, a good peer still gets through (client %d, server accept %d, msgs %d)",
	       after, err, j.accept_err, j.msgs);
	json_decref(m);
	json_decref(back);
	peer_ctx_free(c);
}

/* --- memory ------------------------------------------------------------------------- */

static long status_kb(const char *field)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, strlen(field))) {
			v = atol(line + strlen(field) + 1);
			break;
		}
	}
	fclose(f);
	return v;
}

static int reset_peak_rss(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	int ok;

	if (fd < 0)
		return 0;
	ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

/* Mixed data: 1 block in 4 random, the rest log-like text. */
static void fill_mixed(uint8_t *buf, size_t n, uint64_t blk, uint64_t *rng)
{
	static const char *words[] = { "container ", "checkpoint ", "edge ", "node-x ",
				       "restore ", "layer ", "sha256 ", "ok\n", "mud=7 " };
	size_t o = 0;

	if (blk % 4 == 0) {
		for (; o < n; o++) {
			*rng ^= *rng << 13;
			*rng ^= *rng >> 7;
			*rng ^= *rng << 17;
			buf[o] = *rng >> 24;
		}
		return;
	}
	while (o < n) {
		char tmp[48];
		int k;

		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		k = snprintf(tmp, sizeof(tmp), "%s%llu ", words[*rng % 9],
			     (unsigned long long)(*rng >> 40));
		if ((size_t)k > n - o)
			k = n - o;
		memcpy(buf + o, tmp, k);
		o += k;
	}
}

/* --- tests ------------------------------------------------------------------------------ */

static void test_handshake_and_msgs(void)
{
	struct srv_job j = {};
	struct peer_conn *pc = NULL;
	struct peer_ctx *c = client_ctx("node-b", key_a);
	json_t *m, *back = NULL;
	int err;

	m = json_pack("{s:s, s:i, s:f, s:[i,i,{s:b}], s:s, s:n}", "op", "migrate",
		      "mud", 7, "rate", 1.5, "list", 1, 2, "deep", 1, "utf8", "h\xc3\xa9llo \xe2\x9c\x93",
		      "none");
	srv_start(&j, SRV_ECHO);
	err = peer_connect(c, "node-a", "127.0.0.1", srv_port, 5000, &pc);
	tap_ok(!err && pc && !strcmp(peer_name(pc), "node-a"),
	       "handshake with the right key (client err %d, sees %s)", err,
	       pc ? peer_name(pc) : "-");
	if (!err)
		err = peer_send_msg(pc, m);
	if (!err)
		err = peer_recv_msg(pc, &back);
	tap_ok(!err && json_equal(m, back), "JSON message round trip (err %d)", err);
	tap_ok(pc && peer_conn_group(pc) != 0,
	       "the key exchange has an ECDHE group (psk_dhe_ke: fresh keys), group %d",
	       pc ? peer_conn_group(pc) : 0);
	json_decref(back);
	back = json_array();
	tap_ok(pc && peer_send_msg(pc, back) == -EINVAL, "a non-object message is refused");
	json_decref(back);
	back = json_object();
	{
		char *big = malloc(70000);

		memset(big, 'x', 69999);
		big[69999] = '\0';
		json_object_set_new(back, "big", json_string(big));
		free(big);
	}
	tap_ok(pc && peer_send_msg(pc, back) == -EMSGSIZE, "a message over 64 KiB is refused");
	json_decref(back);
	peer_close(pc);
	srv_wait(&j);

	/* TCP_CONGESTION: what the context names is what its connections use. */
	{
		char got[PEER_CC_MAX] = "";
		socklen_t gl = sizeof(got);

		tap_ok(peer_ctx_set_congestion(c, "no-such-cc") == -ENOENT &&
		       peer_ctx_set_congestion(c, "a-name-longer-than-16") == -EINVAL,
		       "congestion control: an unknown name is -ENOENT, a too long one -EINVAL");
		pc = NULL;
		srv_start(&j, SRV_ECHO);
		err = peer_ctx_set_congestion(c, "reno") ?:
		      peer_connect(c, "node-a", "127.0.0.1", srv_port, 5000, &pc);
		if (!err && getsockopt(peer_conn_fd(pc), IPPROTO_TCP, TCP_CONGESTION, got, &gl))
			err = -errno;
		peer_close(pc);
		srv_wait(&j);
		tap_ok(!err && !strcmp(got, "reno"),
		       "congestion control 'reno' set on the connection (err %d, got '%s')", err, got);
		peer_ctx_set_congestion(c, NULL);
	}
	tap_ok(!j.accept_err && !strcmp(j.name, "node-b") && j.msgs == 1 &&
	       j.msg_err == -ECONNRESET,
	       "server saw node-b, one message, then -ECONNRESET at the close (accept %d, '%s', %d msgs, %d)",
	       j.accept_err, j.name, j.msgs, j.msg_err);
	json_decref(m);
	peer_ctx_free(c);
}

#define POOL_CHUNKS	128	/* 8 MB of data, cycled: more than zstd's 2 MB window at level 3 */

static void test_stream(void)
{
	struct srv_job j = {};
	struct peer_conn *pc = NULL;
	struct peer_ctx *c = client_ctx("node-b", key_a);
	struct peer_wstream *w = NULL;
	struct peer_xfer st = {};
	uint8_t *pool = malloc((size_t)POOL_CHUNKS * CHUNK), sha[32];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t rng = 0x9e3779b97f4a7c15ull, blk, sent;
	long rss0, hwm;
	unsigned int mdlen;
	int err, peak_reset;

	/* The data and its SHA-256 are made first: the timing is the channel's alone. */
	for (blk = 0; blk < POOL_CHUNKS; blk++)
		fill_mixed(pool + blk * CHUNK, CHUNK, blk, &rng);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (sent = 0, blk = 0; sent < STREAM_BYTES; sent += CHUNK, blk++) {
		size_t n = STREAM_BYTES - sent < CHUNK ? STREAM_BYTES - sent : CHUNK;

		EVP_DigestUpdate(md, pool + (blk % POOL_CHUNKS) * CHUNK, n);
	}
	EVP_DigestFinal_ex(md, sha, &mdlen);

	srv_start(&j, SRV_STREAM);
	err = peer_connect(c, "node-a", "127.0.0.1", srv_port, 5000, &pc);
	rss0 = status_kb("VmRSS");
	peak_reset = reset_peak_rss();
	if (!err)
		err = peer_wstream_begin(pc, 3, &w);
	for (sent = 0, blk = 0; !err && sent < STREAM_BYTES; sent += CHUNK, blk++) {
		size_t n = STREAM_BYTES - sent < CHUNK ? STREAM_BYTES - sent : CHUNK;

		err = peer_wstream_write(w, pool + (blk % POOL_CHUNKS) * CHUNK, n);
	}
	if (w)
		err = err ? (peer_wstream_abort(w, "test failed"), err) : peer_wstream_end(w, &st);
	peer_close(pc);
	srv_wait(&j);
	hwm = status_kb("VmHWM");

	tap_ok(!err && j.read_err == 0 && j.end_err == 0 && j.got == STREAM_BYTES &&
	       !memcmp(sha, j.sha, 32),
	       "50 MB mixed stream: reader ends at a verified END with the same SHA-256 "
	       "(send %d, read %zd, end %d, %llu bytes)", err, j.read_err, j.end_err,
	       (unsigned long long)j.got);
	tap_ok(st.raw_bytes == STREAM_BYTES && j.xfer.raw_bytes == STREAM_BYTES &&
	       st.wire_bytes == j.xfer.wire_bytes && st.wire_bytes < STREAM_BYTES,
	       "both ends count %llu raw bytes and the same %llu wire bytes",
	       (unsigned long long)st.raw_bytes, (unsigned long long)st.wire_bytes);
	tap_diag("stream: %.1f MB raw -> %.1f MB on the wire (%.2fx) in %.3f s: %.0f MB/s raw, "
		 "%.0f MB/s wire", STREAM_BYTES / 1e6, st.wire_bytes / 1e6,
		 (double)STREAM_BYTES / (st.wire_bytes ? st.wire_bytes : 1), st.ns / 1e9,
		 STREAM_BYTES / 1e6 / (st.ns / 1e9), st.wire_bytes / 1e6 / (st.ns / 1e9));
	tap_diag("memory: RSS %ld kB before, peak %ld kB during (%s): +%ld kB", rss0, hwm,
		 peak_reset ? "peak reset before the stream" : "peak since start", hwm - rss0);
	tap_ok(hwm > 0 && hwm - rss0 < 24 * 1024,
	       "memory bounded: peak RSS grew %ld kB (< 24 MiB) for a %llu MB stream",
	       hwm - rss0, STREAM_BYTES / 1000000);
	EVP_MD_CTX_free(md);
	free(pool);
	peer_ctx_free(c);
}

/* --- many short streams, read the way recv_into_dir() reads a tar ------------------ */

#define SS_N		160
#define SS_MAX		(640 * 1024)
#define WS_CUT		(256 * 1024)	/* the writer cuts DATA frames here (peer.c) */

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Stream i's bytes (the same on every call): random, mixed, or text and zeros. */
static void ss_fill(uint8_t *buf, size_t len, int i)
{
	uint64_t rng = 0x243f6a8885a308d3ull + i * 0x9e3779b97f4a7c15ull, blk = 0;
	int kind = i % 3;

	for (size_t o = 0; o < len; o += CHUNK, blk++) {
		size_t n = len - o < CHUNK ? len - o : CHUNK;

		if (kind == 0)
			fill_mixed(buf + o, n, 0, &rng);	/* block 0: random */
		else if (kind == 1)
			fill_mixed(buf + o, n, blk, &rng);
		else if (blk % 2)
			memset(buf + o, 0, n);
		else
			fill_mixed(buf + o, n, 1, &rng);
	}
}

/* Writes one stream in chunks of odd sizes (from *rng), or in one piece. */
static int ss_send(struct peer_conn *pc, const uint8_t *buf, size_t len, uint64_t *rng,
		   struct peer_xfer *st)
{
	struct peer_wstream *w = NULL;
	int err = peer_wstream_begin(pc, 1, &w);

	for (size_t o = 0, n; !err && o < len; o += n) {
		switch (xs(rng) % 4) {
		case 0: n = 1 + xs(rng) % 700; break;
		case 1: n = 1 + xs(rng) % (3 * CHUNK); break;
		case 2: n = CHUNK; break;
		default: n = len; break;
		}
		if (n > len - o)
			n = len - o;
		err = peer_wstream_write(w, buf + o, n);
	}
	if (w)
		err = err ? (peer_wstream_abort(w, "test failed"), err) : peer_wstream_end(w, st);
	return err;
}

/* The zstd frame the writer makes of buf (level 1, streamed): its length, or 0. */
static size_t zframe_len(const uint8_t *buf, size_t len, void *out, size_t cap)
{
	ZSTD_CCtx *z = ZSTD_createCCtx();
	ZSTD_inBuffer in = { buf, len, 0 };
	ZSTD_outBuffer o = { out, cap, 0 };
	size_t left;

	ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, 1);
	left = ZSTD_compressStream2(z, &o, &in, ZSTD_e_continue);
	if (!ZSTD_isError(left))
		left = ZSTD_compressStream2(z, &o, &in, ZSTD_e_end);
	ZSTD_freeCCtx(z);
	return ZSTD_isError(left) || left ? 0 : o.pos;
}

/*
 * 160 streams on one connection: random, mixed and compressible data of
 * lengths around 4 KiB multiples, zstd's 128 KiB block and the writer's
 * 256 KiB DATA frames, written in odd pieces, read as recv_into_dir() reads a
 * tar. Streams whose zstd frame ends exactly where a read's buffer is full
 * must end at their verified END like any other; and a zstd frame that ends
 * exactly at the end of a DATA frame must not be followed by a second one.
 */
static void test_stream_ends(void)
{
	static struct ss_plan plan[SS_N];
	struct srv_job j = { .plan = plan, .nplan = SS_N };
	struct peer_ctx *c = client_ctx("node-b", key_a);
	struct peer_conn *pc = NULL;
	struct peer_xfer st = {}, fill_st = {};
	uint8_t *buf = malloc(SS_MAX), *zbuf = malloc(ZSTD_compressBound(SS_MAX));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t rng = 7, total = 0;
	size_t fill_len = 0;
	unsigned int mdlen;
	int err, i, fill_i = -1, sent = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < SS_N; i++) {
		struct ss_plan *p = &plan[i];
		size_t tail;

		/* Lengths: 0-3 exact cases, then a mix of the sizes that matter. */
		switch (i < 4 ? (uint64_t)i : 4 + xs(&rng) % 6) {
		case 0: p->len = 3 * 4096; p->head = 0; break;
		case 1: p->len = 3 * 65536; p->head = p->len; break;
		case 2: p->len = 131072; p->head = p->len; break;
		case 3: p->len = 65536 + 4096; p->head = 65536; break;
		case 4: p->len = 4096 * (1 + xs(&rng) % 150); break;
		case 5: p->len = 131072 * (1 + xs(&rng) % 4) + xs(&rng) % 17 - 8; break;
		case 6: p->len = WS_CUT - xs(&rng) % 64; break;
		case 7: p->len = 512 * (1 + xs(&rng) % 1200); break;
		default: p->len = 1 + xs(&rng) % SS_MAX; break;
		}
		if (i >= 4) {
			/* What follows libarchive's last read: nothing, a padding, or all. */
			switch (xs(&rng) % 4) {
			case 0: tail = 0; break;
			case 1: tail = 512 * (xs(&rng) % 129); break;
			case 2: tail = xs(&rng) % 70000; break;
			default: tail = p->len; break;
			}
			p->head = p->len - (tail < p->len ? tail : p->len);
		}
		p->cap1 = i < 4 || xs(&rng) % 4 ? 65536 : 512 + xs(&rng) % 100000;
		ss_fill(buf, p->len, i);
		EVP_DigestInit_ex(md, EVP_sha256(), NULL);
		EVP_DigestUpdate(md, buf, p->len);
		EVP_DigestFinal_ex(md, p->sha, &mdlen);
		total += p->len;
	}
	/* Stream 6 (random data): a length whose zstd frame is exactly one full DATA frame. */
	for (size_t n = WS_CUT; n > WS_CUT - 256 && fill_i < 0; n--) {
		ss_fill(buf, n, 6);
		if (zframe_len(buf, n, zbuf, ZSTD_compressBound(SS_MAX)) != WS_CUT)
			continue;
		fill_i = 6;
		fill_len = n;
		total += n - plan[6].len;
		plan[6].len = plan[6].head = n;
		plan[6].cap1 = 65536;
		EVP_DigestInit_ex(md, EVP_sha256(), NULL);
		EVP_DigestUpdate(md, buf, n);
		EVP_DigestFinal_ex(md, plan[6].sha, &mdlen);
	}

	srv_start(&j, SRV_STREAMS);
	err = peer_connect(c, "node-a", "127.0.0.1", srv_port, 5000, &pc);
	for (i = 0; !err && i < SS_N; i++) {
		ss_fill(buf, plan[i].len, i);
		err = ss_send(pc, buf, plan[i].len, &rng, i == fill_i ? &fill_st : &st);
		sent += !err;
	}
	peer_close(pc);
	srv_wait(&j);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	tap_diag("%d streams, %.1f MB, made, sent and read in %.2f s", SS_N, total / 1e6,
		 t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (j.streams_ok < SS_N)
		tap_diag("stream %d of %zu bytes failed: read %zd, end %d after %llu bytes",
			 j.streams_ok, plan[j.streams_ok].len, j.read_err, j.end_err,
			 (unsigned long long)j.got);
	tap_ok(!err && sent == SS_N && j.streams_ok == SS_N && j.exact_ends >= 4,
	       "%d of %d streams read like a tar (64 KiB reads, then 4096-byte ones) end at a "
	       "verified END, %d of them right after a read that filled its buffer (send %d)",
	       j.streams_ok, SS_N, j.exact_ends, err);
	if (fill_i < 0)
		tap_skip(1, "no length near 256 KiB makes a zstd frame of exactly 256 KiB");
	else
		tap_ok(fill_st.raw_bytes == fill_len &&
		       fill_st.wire_bytes == PEER_HDR_LEN + WS_CUT + PEER_HDR_LEN + PEER_END_LEN,
		       "a zstd frame that fills its DATA frame exactly is one DATA frame and END: "
		       "%zu raw bytes, %llu on the wire (want %zu)", fill_len,
		       (unsigned long long)fill_st.wire_bytes,
		       (size_t)PEER_HDR_LEN + WS_CUT + PEER_HDR_LEN + PEER_END_LEN);
	EVP_MD_CTX_free(md);
	free(zbuf);
	free(buf);
	peer_ctx_free(c);
}

/* A client that must be refused; the server's reason must be in the log. */
static void refused(const char *what, const char *name, const uint8_t *key, const char *ask,
		    const char *reason)
{
	struct srv_job j = {};
	struct peer_conn *pc = NULL;
	struct peer_ctx *c = client_ctx(name, key);
	int err;

	log_reset();
	srv_start(&j, SRV_COUNT);
	err = peer_connect(c, ask, "127.0.0.1", srv_port, 5000, &pc);
	if (!err) {
		json_t *m = json_object();

		peer_send_msg(pc, m);
		json_decref(m);
	}
	peer_close(pc);
	srv_wait(&j);
	tap_ok(err && j.accept_err == -EACCES && !j.msgs && log_has(reason),
	       "%s: refused (client %d, server %d, reason '%s' logged: %s)", what, err,
	       j.accept_err, reason, log_has(reason) ? "yes" : "no");
	peer_ctx_free(c);
	good_peer(what);
}

/* --- the replay: record a real session through a relay, play it back -------------- */

struct relay {
	int lfd;
	uint16_t port;
	uint8_t *rec;
	size_t len, cap;
	pthread_t th;
};

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(srv_port) };
	struct pollfd p[2];
	int c = -1, s = -1, open_c = 1, open_s = 1;
	char buf[16384];
	ssize_t n;

	p[0] = (struct pollfd){ .fd = r->lfd, .events = POLLIN };
	if (poll(p, 1, 5000) != 1)
		return NULL;
	c = accept(r->lfd, NULL, NULL);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (c < 0 || s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)))
		goto out;
	while (open_c || open_s) {
		p[0] = (struct pollfd){ .fd = open_c ? c : -1, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = open_s ? s : -1, .events = POLLIN };
		if (poll(p, 2, 5000) <= 0)
			break;
		if (p[0].revents) {
			n = read(c, buf, sizeof(buf));
			if (n <= 0) {
				open_c = 0;
				shutdown(s, SHUT_WR);
			} else {
				if (r->len + n > r->cap) {
					r->cap = (r->len + n) * 2;
					r->rec = realloc(r->rec, r->cap);
				}
				memcpy(r->rec + r->len, buf, n);
				r->len += n;
				if (write(s, buf, n) != n)
					break;
			}
		}
		if (p[1].revents) {
			n = read(s, buf, sizeof(buf));
			if (n <= 0) {
				open_s = 0;
				shutdown(c, SHUT_WR);
			} else if (write(c, buf, n) != n) {
				break;
			}
		}
	}
out:
	if (c >= 0)
		close(c);
	if (s >= 0)
		close(s);
	return NULL;
}

static void test_replay(void)
{
	struct relay r = {};
	struct srv_job j = {}, k = {};
	struct peer_conn *pc = NULL;
	struct peer_ctx *c = client_ctx("node-b", key_a);
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	json_t *m = json_pack("{s:s}", "op", "delete-container");
	int err, fd;

	r.lfd = peer_listen("127.0.0.1", 0);
	getsockname(r.lfd, (struct sockaddr *)&sa, &sl);
	r.port = ntohs(sa.sin_port);
	srv_start(&j, SRV_COUNT);
	pthread_create(&r.th, NULL, relay_main, &r);
	err = peer_connect(c, "node-a", "127.0.0.1", r.port, 5000, &pc);
	if (!err)
		err = peer_send_msg(pc, m);
	peer_close(pc);
	srv_wait(&j);
	pthread_join(r.th, NULL);
	close(r.lfd);
	tap_ok(!err && !j.accept_err && j.msgs == 1 && r.len > 0,
	       "a real session through the relay: 1 message delivered, %zu client bytes recorded",
	       r.len);

	log_reset();
	srv_start(&k, SRV_COUNT);
	fd = raw_connect();
	if (fd >= 0) {
		if (write(fd, r.rec, r.len) != (ssize_t)r.len)
			tap_diag("short write of the recording");
		drain(fd);
		close(fd);
	}
	srv_wait(&k);
	tap_ok(fd >= 0 && k.accept_err && k.msgs == 0,
	       "the recorded session replayed to the server: handshake fails (%d), %d messages delivered",
	       k.accept_err, k.msgs);
	free(r.rec);
	json_decref(m);
	peer_ctx_free(c);
	good_peer("a replayed session");
}

/* --- raw bytes and hostile frames ------------------------------------------------------ */

static void test_garbage(void)
{
	struct srv_job j = {};
	static const char junk[] = "GET / HTTP/1.0\r\nHost: node-a\r\n\r\n\x16\x03\x01\xff\xff garbage";
	int fd;

	srv_start(&j, SRV_COUNT);
	fd = raw_connect();
	if (fd >= 0 && write(fd, junk, sizeof(junk)) < 0)
		tap_diag("write: %s", strerror(errno));
	drain(fd);
	close(fd);
	srv_wait(&j);
	tap_ok(j.accept_err == -EPROTO && !j.msgs, "garbage bytes on the port: refused (%d)",
	       j.accept_err);
	good_peer("garbage bytes");

	/* A client that connects and says nothing is cut off at the handshake timeout. */
	j = (struct srv_job){ .accept_ms = 400 };
	srv_start(&j, SRV_COUNT);
	fd = raw_connect();
	srv_wait(&j);
	close(fd);
	tap_ok(j.accept_err == -ETIMEDOUT, "a silent client: handshake times out (%d)",
	       j.accept_err);
	good_peer("a silent client");
}

static void put_hdr(uint8_t *p, uint32_t type, uint32_t len)
{
	uint32_t be = htobe32(type);

	memcpy(p, &be, 4);
	be = htobe32(len);
	memcpy(p + 4, &be, 4);
}

/*
 * Sends bytes inside a good TLS session (then closes, or holds the connection
 * for hold_ms); the server reads a message (or a stream) and must fail with want.
 */
static void hostile(const char *what, enum srv_mode mode, const void *bytes, size_t len,
		    int hold_ms, int want, const char *reason)
{
	struct srv_job j = { .io_ms = 400 };
	struct peer_conn *pc = NULL;
	struct peer_ctx *c = client_ctx("node-b", key_a);
	int err, got;

	log_reset();
	srv_start(&j, mode);
	err = peer_connect(c, "node-a", "127.0.0.1", srv_port, 5000, &pc);
	if (!err)
		err = peer_send_raw(pc, bytes, len);
	if (hold_ms)
		usleep(hold_ms * 1000);
	peer_close(pc);
	srv_wait(&j);
	got = mode == SRV_STREAM ? (int)j.read_err : j.msg_err;
	tap_ok(!err && !j.accept_err && got == want && !j.msgs && log_has(reason),
	       "%s: reader gets %d (want %d), no message, '%s' logged: %s", what, got, want, reason,
	       log_has(reason) ? "yes" : "no");
	peer_ctx_free(c);
	good_peer(what);
}

static void test_frames(void)
{
	uint8_t f[64], *big;
	char z[64];
	size_t zn;

	put_hdr(f, PEER_F_MSG, 100);
	memcpy(f + 8, "{\"op\":\"tr", 9);
	hostile("a truncated frame, then close", SRV_COUNT, f, 17, 0, -ECONNRESET,
		"truncated MSG frame: 9 of 100");
	hostile("a truncated frame, then silence", SRV_COUNT, f, 17, 700, -ETIMEDOUT,
		"truncated MSG frame");
	put_hdr(f, PEER_F_MSG, PEER_MSG_MAX + 1);
	hostile("an oversized MSG frame", SRV_COUNT, f, 8, 0, -EPROTO, "longer than its type");
	put_hdr(f, 99, 4);
	hostile("an unknown frame type", SRV_COUNT, f, 12, 0, -EPROTO, "unknown frame type");
	put_hdr(f, PEER_F_MSG, 9);
	memcpy(f + 8, "{not json", 9);
	hostile("a MSG frame that is not JSON", SRV_COUNT, f, 17, 0, -EPROTO, "not a JSON object");
	put_hdr(f, PEER_F_DATA, 4);
	hostile("a DATA frame where a message is due", SRV_COUNT, f, 12, 0, -EPROTO,
		"expected a MSG frame");

	/* Streams: an oversized DATA frame, and a wrong checksum at END. */
	put_hdr(f, PEER_F_DATA, PEER_DATA_MAX + 1);
	hostile("an oversized DATA frame", SRV_STREAM, f, 8, 0, -EPROTO, "longer than its type");

	big = calloc(1, 256);
	zn = ZSTD_compress(z, sizeof(z), "hello, node-a", 13, 3);
	put_hdr(big, PEER_F_DATA, zn);
	memcpy(big + 8, z, zn);
	put_hdr(big + 8 + zn, PEER_F_END, PEER_END_LEN);
	{
		uint64_t be = htobe64(13);

		memcpy(big + 16 + zn, &be, 8);
		memset(big + 24 + zn, 0xab, 32);	/* not SHA-256("hello, node-a") */
	}
	hostile("a stream whose END has the wrong SHA-256", SRV_STREAM, big, 16 + zn + PEER_END_LEN,
		0, -EPROTO, "does not match END");
	{
		uint64_t be = htobe64(12);

		memcpy(big + 16 + zn, &be, 8);
	}
	hostile("a stream whose END has the wrong count", SRV_STREAM, big, 16 + zn + PEER_END_LEN,
		0, -EPROTO, "END says 12 bytes, 13 arrived");
	put_hdr(big + 8 + zn, PEER_F_MSG, 2);
	memcpy(big + 16 + zn, "{}", 2);
	hostile("a MSG frame inside a stream", SRV_STREAM, big, 18 + zn, 0, -EPROTO,
		"MSG frame inside a stream");
	free(big);
}

/* Writes 3 MB of a stream, then ABORTs it or cuts the TCP connection. */
static void test_stream_break(int cut)
{
	const char *what = cut ? "a connection cut mid-stream" : "an ABORT mid-stream";
	struct srv_job j = {};
	struct peer_conn *pc = NULL;
	struct peer_ctx *c = client_ctx("node-b", key_a);
	struct peer_wstream *w = NULL;
	uint8_t *buf = malloc(CHUNK);
	uint64_t rng = 42;
	int err, i;

	log_reset();
	srv_start(&j, SRV_STREAM);
	err = peer_connect(c, "node-a", "127.0.0.1", srv_port, 5000, &pc);
	if (!err)
		err = peer_wstream_begin(pc, 1, &w);
	for (i = 0; !err && i < 48; i++) {
		fill_mixed(buf, CHUNK, i, &rng);
		err = peer_wstream_write(w, buf, CHUNK);
	}
	if (cut) {
		shutdown(peer_conn_fd(pc), SHUT_RDWR);
		peer_wstream_abort(w, "unused: the socket is gone");
	} else {
		peer_wstream_abort(w, "disk full on node-b");
		json_t *m = json_object();

		/* The connection is still in step after an ABORT. */
		peer_send_msg(pc, m);
		json_decref(m);
	}
	peer_close(pc);
	srv_wait(&j);
	if (cut)
		tap_ok(!err && j.read_err == -ECONNRESET && j.end_err == -EPROTO,
		       "%s: reader gets -ECONNRESET after %llu bytes, not a short success "
		       "(read %zd, end %d)", what, (unsigned long long)j.got, j.read_err, j.end_err);
	else
		tap_ok(!err && j.read_err == -EPROTO && j.end_err == -EPROTO && j.got > 0 &&
		       log_has("disk full on node-b") && j.msgs == 1,
		       "%s: reader gets -EPROTO after %llu bytes with the reason logged, "
		       "and the next message still arrives (read %zd, end %d, msgs %d)", what,
		       (unsigned long long)j.got, j.read_err, j.end_err, j.msgs);
	free(buf);
	peer_ctx_free(c);
	good_peer(what);
}

static void test_key_file(void)
{
	char path[] = "/tmp/peer-key-XXXXXX";
	static const char hex[] =
		"00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n";
	uint8_t k[PEER_KEY_MAX];
	size_t n = 0;
	int fd = mkstemp(path), e1, e2, e3;

	if (fd < 0 || write(fd, hex, sizeof(hex) - 1) < 0)
		tap_diag("key file: %s", strerror(errno));
	close(fd);
	e1 = peer_key_load(path, k, sizeof(k), &n);
	tap_ok(!e1 && n == 32 && k[0] == 0x00 && k[1] == 0x11 && k[31] == 0xff,
	       "a 64-hex-digit key file loads as 32 bytes (%d, %zu)", e1, n);
	chmod(path, 0644);
	e2 = peer_key_load(path, k, sizeof(k), &n);
	chmod(path, 0600);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (write(fd, "00112233", 8) < 0)
		tap_diag("key file: %s", strerror(errno));
	close(fd);
	e3 = peer_key_load(path, k, sizeof(k), &n);
	tap_ok(e2 == -EPERM && e3 == -EINVAL,
	       "a key file readable by others (%d) and a short key (%d) are refused", e2, e3);
	unlink(path);
}

int main(void)
{
	struct peer_allow allow[] = {
		{ "node-b", NULL },
		{ "node-c", "127.0.0.2" },
		{ "node-d", "127.0.0.1" },
	};
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct peer_ctx *c;
	int err;

	tap_plan(57);
	peer_set_log(log_cb, NULL);
	RAND_bytes(key_a, sizeof(key_a));
	RAND_bytes(key_b, sizeof(key_b));

	err = peer_ctx_new(&srv_ctx, "node-a", key_a, sizeof(key_a), allow, 3);
	lfd = peer_listen("127.0.0.1", 0);
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	srv_port = ntohs(sa.sin_port);
	if (!tap_ok(!err && lfd >= 0, "server node-a listens on 127.0.0.1:%u", srv_port))
		return tap_done();

	test_key_file();
	tap_ok(peer_ctx_new(&c, "node-b", key_a, 16, allow, 1) == -EINVAL,
	       "a 16-byte key is refused");
	test_handshake_and_msgs();
	test_stream();
	test_stream_ends();

	refused("a forged peer (wrong key)", "node-b", key_b, "node-a", "does not hold our key");
	refused("a peer not in the config", "node-z", key_a, "node-a",
		"not in the allowed peer list");
	refused("an allowed name from the wrong address", "node-c", key_a, "node-a",
		"allowed only from 127.0.0.2");
	refused("a client that meant another server", "node-b", key_a, "node-x",
		"does not hold our key");
	{
		struct srv_job j = {};
		struct peer_conn *pc = NULL;

		c = client_ctx("node-d", key_a);
		srv_start(&j, SRV_COUNT);
		err = peer_connect(c, "node-a", "127.0.0.1", srv_port, 5000, &pc);
		peer_close(pc);
		srv_wait(&j);
		tap_ok(!err && !j.accept_err && !strcmp(j.name, "node-d"),
		       "an allowed name from its configured address gets in (%d, %d)", err,
		       j.accept_err);
		peer_ctx_free(c);
	}

	test_replay();
	test_garbage();
	test_frames();
	test_stream_break(0);
	test_stream_break(1);

	close(lfd);
	peer_ctx_free(srv_ctx);
	return tap_done();
}
