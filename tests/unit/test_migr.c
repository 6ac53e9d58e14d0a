// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The migration engine (control/migr/migr.c) end to end in one process:
 * migr_source() (ES-x) and migr_dest() (ES-y) in two threads of this test,
 * over the real peer channel (TLS 1.3 + PSK on loopback, through a relay of
 * the test's that can cut it), each side with a fake dockerd of its own
 * (fake_dockerd.h) that keeps containers and images as a small model. Every
 * message between the two sides is built and parsed by the engine itself, so a
 * json_pack format that does not match its arguments, or a field one side
 * sends and the other does not read, fails here in seconds instead of in a
 * ten-minute VM run.
 *
 * What stands in for what cannot run in a unit test (no production code is
 * bent for it; every seam is one the engine already has):
 *  - CRIU through Docker (CHECKPOINT = docker): the fake's checkpoint create writes
 *    a checkpoint directory; its start ?checkpoint= checks what arrived.
 *  - CRIU through runc (the default): a fake `runc` first in PATH (ckpt_dump
 *    spawns "runc" by PATH) writes the image and CRIU's recorded statistics.
 *  - edgehop-runc (RESTORE = runc, with the early start): the fake's start of a
 *    container of runtime "edgehop" waits while <stage>/<id>/pending exists,
 *    fails on "abort", checks <stage>/<id>/img and renames it img.used, as
 *    control/runtime/main.c does.
 *  - the service in CT-y: a UDP responder on 127.a.b.c:7777 (the engine's fixed
 *    service port) answering STATUS_REQ in pages.
 *  - overlay2: UpperDirs are plain directories under the fake's root; the
 *    layer tar (layer.c) and the image tar filter (tarfilter.c) run for real.
 * Not covered: the cgroup freezer (the fake's containers report no Pid, so the
 * engine pauses through Docker, as on a host without cgroup v2), real CRIU,
 * runc and edgehop-runc, the agent around the engine (steering, events).
 *
 * Three parts: (a) P-Migr, C-Migr and the two outcomes of "auto" succeed and
 * their reports agree on both sides; (b) each Docker call the engine makes,
 * on either side, fails once in turn (and the non-Docker failures: fake runc,
 * the service, the cutover, the agent's FAULT steps): the error names
 * Docker's message on both sides and nothing is left behind (CT-x running,
 * CT-y and staged files gone, the rollback hook run); (c) the channel is cut
 * at several points: both sides return an error within a deadline; and the
 * agent's cancel (a MUD that moved again) before and after the snapshot;
 * (d) in doubt: the channel cut after "restore" (right after ES-y's cut-over,
 * and during T5 with ES-y then rolling back): ES-x in doubt, ES-y's outcome
 * record says committed (with CT-y's facts) or failed; the records across
 * restarts (migr_recover); malformed, unknown, foreign and garbled queries;
 * the asker's retries and deadline.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "dk.h"
#include "edgehop_proto.h"
#include "eh_time.h"
#include "eh_wire.h"
#include "ehrt.h"
#include "fake_dockerd.h"
#include "migr.h"
#include "peer.h"
#include "tap.h"

#define METHOD_P	1	/* enum ag_method */
#define METHOD_C	2
#define METHOD_AUTO	3
#define SVC_PORT	7777	/* migr.c's */
#define DEADLINE_S	10	/* one migration, both sides */

#define CKPT_PAGES	(256 * 1024)	/* the checkpoint's pages-1.img */
#define CKPT_WORD	"edgehop-ckpt\n"
#define STATE_BYTES	40000		/* CT-x's app/state.db */

#define BASE	"edgehop-svc:test"	/* layers 1 2: on both nodes */
#define SOLO	"edgehop-svc:solo"	/* layers 4 5: ES-x only */
#define OTHER	"edgehop-svc:other"	/* layers 1 6: ES-x only, shares layer 1 */

static char tmp[40], data_dir[512];

/* --- the fake dockerd's model ----------------------------------------------------- */

enum ct_state { CT_GONE, CT_CREATED, CT_RUNNING, CT_PAUSED };

struct fct {
	char name[96], id[65], image[200], runtime[16], hostname[64];
	enum ct_state st;
	unsigned int mud;
	json_t *cmd;
};

struct fimg {
	char ref[200], id[72];
	int layer[8], nlayers;	/* layer numbers (diff id "sha256:" hex64()) */
	bool gone;
};

struct engine {
	const char *node;
	char root[256], state[256], stage[256];
	struct fdk_server srv;
	struct in_addr ip;	/* every running container's address */
	pthread_mutex_t mu;
	/* under mu */
	struct fct ct[64];
	int nct;
	struct fimg img[64];
	int nimg;
	unsigned int seq;
	char log[32768];
	size_t loglen;
	/* one Docker call fails: the skip+1-th of op */
	char f_op[16];
	int f_skip, f_hits;
	const char *f_status;
	char f_msg[160];
	bool f_fired;
	/* the channel is cut at op (mid: halfway through the image save) */
	char cut_op[16];
	bool cut_mid;
	/* the agent cancels the migration (the MUD moved again) at op */
	char cancel_op[16];
	int loaded_layers;	/* layer blobs in the last load's tar */
};

static struct engine X = { .node = "node-x" }, Y = { .node = "node-y" };
static void svc_name_set(const char *name);
static volatile int *g_cancel;	/* the running migration's migr_src.cancel (under X.mu) */

/* A sha256-looking id whose first 8 hex digits are @n (hex_n() reads them back). */
static void hex64(char out[65], unsigned int n)
{
	snprintf(out, 65, "%08x%08x%048x", n, n * 2654435761u, 0);
}

static int hex_n(const char *hex)
{
	char h[9];

	snprintf(h, sizeof(h), "%.8s", hex);
	return (int)strtol(h, NULL, 16);
}

static size_t layer_size(int k)
{
	return 16384 + 1024 * (k % 16);
}

static uint8_t layer_byte(int k, size_t i)
{
	return (uint8_t)(k * 31 + i * 7 + (i >> 9));
}

static void elog(struct engine *e, const char *fmt, ...)
{
	va_list ap;

	if (e->loglen + 300 >= sizeof(e->log))
		return;
	va_start(ap, fmt);
	e->loglen += vsnprintf(e->log + e->loglen, sizeof(e->log) - e->loglen, fmt, ap);
	va_end(ap);
}

static struct fct *ct_find(struct engine *e, const char *name)
{
	for (int i = 0; i < e->nct; i++) {
		struct fct *c = &e->ct[i];

		if (c->st != CT_GONE && (!strcmp(c->name, name) || !strcmp(c->id, name) ||
		    (strlen(name) >= 12 && !strncmp(c->id, name, strlen(name)))))
			return c;
	}
	return NULL;
}

static struct fimg *img_find(struct engine *e, const char *ref)
{
	for (int i = 0; i < e->nimg; i++)
		if (!e->img[i].gone && (!strcmp(e->img[i].ref, ref) || !strcmp(e->img[i].id, ref)))
			return &e->img[i];
	return NULL;
}

static struct fimg *img_add(struct engine *e, const char *ref, const int *layers, int n)
{
	struct fimg *m = &e->img[e->nimg++];
	char h[65];

	memset(m, 0, sizeof(*m));
	snprintf(m->ref, sizeof(m->ref), "%s", ref);
	hex64(h, 0x10000 + ++e->seq);
	snprintf(m->id, sizeof(m->id), "sha256:%s", h);
	if (n)	/* memcpy's source may not be NULL, even for 0 bytes */
		memcpy(m->layer, layers, n * sizeof(*layers));
	m->nlayers = n;
	return m;
}

static bool holds_layer(struct engine *e, int k)
{
	for (int i = 0; i < e->nimg; i++)
		for (int j = 0; !e->img[i].gone && j < e->img[i].nlayers; j++)
			if (e->img[i].layer[j] == k)
				return true;
	return false;
}

static void upper_of(struct engine *e, const struct fct *c, char *out, size_t cap)
{
	snprintf(out, cap, "%s/overlay2/%s/diff", e->root, c->id);
}

static int mkdir_p(const char *path)
{
	char t[512];

	snprintf(t, sizeof(t), "%s", path);
	for (char *p = t + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(t, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(t, 0700) && errno != EEXIST ? -errno : 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int write_file(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t w;

	if (fd < 0)
		return -errno;
	w = write(fd, buf, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -EIO;
}

/* What CRIU would have written: the pages and an inventory. */
static int ckpt_write(const char *dir)
{
	static char pages[CKPT_PAGES];
	char p[800];
	int r = mkdir_p(dir);

	for (size_t i = 0; i < sizeof(pages); i++)
		pages[i] = CKPT_WORD[i % (sizeof(CKPT_WORD) - 1)];
	snprintf(p, sizeof(p), "%s/pages-1.img", dir);
	r = r ?: write_file(p, pages, sizeof(pages));
	snprintf(p, sizeof(p), "%s/inventory.img", dir);
	return r ?: write_file(p, "fake\n", 5);
}

/* The checkpoint arrived whole: pages-1.img exactly as written, an inventory. */
static bool ckpt_check(const char *dir, char *why, size_t cap)
{
	char p[800], buf[4096];
	size_t got = 0;
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/inventory.img", dir);
	if (access(p, F_OK)) {
		snprintf(why, cap, "%.300s: %s", p, strerror(errno));
		return false;
	}
	snprintf(p, sizeof(p), "%s/pages-1.img", dir);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, cap, "%.300s: %s", p, strerror(errno));
		return false;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != CKPT_WORD[(got + i) % (sizeof(CKPT_WORD) - 1)]) {
				close(fd);
				snprintf(why, cap, "%.300s differs at byte %zu", p, got + i);
				return false;
			}
		}
		got += n;
	}
	close(fd);
	if (got != CKPT_PAGES) {
		snprintf(why, cap, "%.300s has %zu bytes, not %d", p, got, CKPT_PAGES);
		return false;
	}
	return true;
}

/* --- docker save / load: an OCI-layout tar of ustar entries ---------------------- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void buf_put(struct buf *b, const void *src, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	if (src)
		memcpy(b->p + b->len, src, n);
	else
		memset(b->p + b->len, 0, n);
	b->len += n;
}

static void tar_entry(struct buf *b, const char *name, const void *data, size_t n)
{
	char h[512] = { 0 };
	unsigned int sum = 0;

	snprintf(h, 100, "%s", name);
	snprintf(h + 100, 8, "%07o", 0644);
	snprintf(h + 108, 8, "%07o", 0);
	snprintf(h + 116, 8, "%07o", 0);
	snprintf(h + 124, 12, "%011o", (unsigned int)n);
	snprintf(h + 136, 12, "%011o", 0);
	memset(h + 148, ' ', 8);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (int i = 0; i < 512; i++)
		sum += (uint8_t)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	h[155] = ' ';
	buf_put(b, h, 512);
	buf_put(b, data, n);
	buf_put(b, NULL, (512 - n % 512) % 512);
}

static void image_tar(const struct fimg *m, struct buf *b)
{
	json_t *man = json_pack("[{s:s+, s:[s], s:[]}]", "Config", "blobs/sha256/", m->id + 7,
				"RepoTags", m->ref, "Layers");
	json_t *cfg = json_pack("{s:{s:s, s:[]}}", "rootfs", "type", "layers", "diff_ids");
	json_t *ml = json_object_get(json_array_get(man, 0), "Layers");
	json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	char name[128], h[65], *s;

	for (int i = 0; i < m->nlayers; i++) {
		hex64(h, m->layer[i]);
		snprintf(name, sizeof(name), "blobs/sha256/%s", h);
		json_array_append_new(ml, json_string(name));
		snprintf(name, sizeof(name), "sha256:%s", h);
		json_array_append_new(ids, json_string(name));
	}
	s = json_dumps(man, JSON_COMPACT);
	tar_entry(b, "manifest.json", s, strlen(s));
	free(s);
	s = json_dumps(cfg, JSON_COMPACT);
	snprintf(name, sizeof(name), "blobs/sha256/%s", m->id + 7);
	tar_entry(b, name, s, strlen(s));
	free(s);
	for (int i = 0; i < m->nlayers; i++) {
		size_t n = layer_size(m->layer[i]);
		uint8_t *d = malloc(n);

		for (size_t k = 0; k < n; k++)
			d[k] = layer_byte(m->layer[i], k);
		hex64(h, m->layer[i]);
		snprintf(name, sizeof(name), "blobs/sha256/%s", h);
		tar_entry(b, name, d, n);
		free(d);
	}
	buf_put(b, NULL, 1024);
	json_decref(man);
	json_decref(cfg);
}

/*
 * docker load of @tar: every layer of the manifest is in the tar, intact, or
 * already held here; registers the image. 0, or -1 with Docker-like @why.
 */
static int image_load(struct engine *e, const uint8_t *tar, size_t len, char *ref, size_t rcap,
		      char *why, size_t wcap)
{
	const uint8_t *blob[16];
	char bname[16][128];
	size_t blen[16], off = 0;
	int nb = 0, layers[8], nl = 0, nblobs = 0;
	json_t *man = NULL, *ml;
	size_t i;
	json_t *v;

	while (off + 512 <= len && tar[off]) {
		char name[101], size[13];
		size_t n;

		snprintf(name, sizeof(name), "%.100s", (const char *)tar + off);
		snprintf(size, sizeof(size), "%.12s", (const char *)tar + off + 124);
		n = strtoul(size, NULL, 8);
		if (off + 512 + n > len) {
			snprintf(why, wcap, "Error processing tar file(exit status 1): unexpected EOF");
			return -1;
		}
		if (!strcmp(name, "manifest.json"))
			man = json_loadb((const char *)tar + off + 512, n, 0, NULL);
		else if (nb < 16) {
			snprintf(bname[nb], sizeof(bname[nb]), "%s", name);
			blob[nb] = tar + off + 512;
			blen[nb++] = n;
		}
		off += 512 + (n + 511) / 512 * 512;
	}
	ml = json_object_get(json_array_get(man, 0), "Layers");
	if (!json_is_array(ml)) {
		json_decref(man);
		snprintf(why, wcap, "open /var/lib/docker/tmp/docker-import-1/manifest.json: "
			 "no such file or directory");
		return -1;
	}
	json_array_foreach(ml, i, v) {
		const char *want = json_string_value(v);
		int k = hex_n(want ? want + strlen("blobs/sha256/") : "0"), b;

		for (b = 0; b < nb && strcmp(bname[b], want ?: ""); b++)
			;
		if (b < nb) {
			nblobs++;
			for (size_t j = 0; j < blen[b]; j++) {
				if (blen[b] != layer_size(k) || blob[b][j] != layer_byte(k, j)) {
					snprintf(why, wcap, "layer %s: digest mismatch", want);
					json_decref(man);
					return -1;
				}
			}
		} else if (!holds_layer(e, k)) {
			snprintf(why, wcap, "open /var/lib/docker/tmp/docker-import-1/%s: no such file "
				 "or directory", want ?: "");
			json_decref(man);
			return -1;
		}
		if (nl < 8)
			layers[nl++] = k;
	}
	snprintf(ref, rcap, "%s", json_string_value(json_array_get(json_object_get(
		json_array_get(man, 0), "RepoTags"), 0)) ?: "");
	json_decref(man);
	if (img_find(e, ref))
		img_find(e, ref)->gone = true;
	img_add(e, ref, layers, nl);
	e->loaded_layers = nblobs;
	return 0;
}

/* --- the relay: the peer channel passes through it, and it can cut it ------------- */

struct relay {
	int lfd;
	uint16_t port, to;
	pthread_t th;
	pthread_mutex_t mu;
	int a, b;		/* under mu */
	bool cut;
};

static struct relay R = { .a = -1, .b = -1, .mu = PTHREAD_MUTEX_INITIALIZER };

static void relay_cut(struct relay *r)
{
	pthread_mutex_lock(&r->mu);
	r->cut = true;
	if (r->a >= 0)
		shutdown(r->a, SHUT_RDWR);
	if (r->b >= 0)
		shutdown(r->b, SHUT_RDWR);
	pthread_mutex_unlock(&r->mu);
}

static int fwd(int from, int to)
{
	char buf[65536];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n <= 0)
		return -1;
	return fdk_send_all(to, buf, n) ? -1 : 0;
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	struct pollfd p[2] = { { .fd = r->lfd, .events = POLLIN } };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(r->to),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int a, b;

	if (poll(p, 1, 5000) != 1)
		return NULL;
	a = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
	b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a < 0 || b < 0 || connect(b, (struct sockaddr *)&sa, sizeof(sa))) {
		if (a >= 0)
			close(a);
		if (b >= 0)
			close(b);
		return NULL;
	}
	/* As transparent as a wire: no Nagle delay on what the ends already batched. */
	setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	pthread_mutex_lock(&r->mu);
	r->a = a;
	r->b = b;
	pthread_mutex_unlock(&r->mu);
	p[0] = (struct pollfd){ .fd = a, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = b, .events = POLLIN };
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if ((p[0].revents && fwd(a, b)) || (p[1].revents && fwd(b, a)))
			break;
	}
	pthread_mutex_lock(&r->mu);
	close(a);
	close(b);
	r->a = r->b = -1;
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* --- the fake dockerd's routes ---------------------------------------------------- */

static int reply_json(int fd, const char *status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	int r = fdk_reply(fd, status, s);

	free(s);
	json_decref(j);
	return r;
}

static int reply_no_ct(int fd, const char *name)
{
	char m[200];

	snprintf(m, sizeof(m), "No such container: %s", name);
	return fdk_reply_msg(fd, "404 Not Found", m);
}

static int reply_no_img(int fd, const char *name)
{
	char m[300];

	snprintf(m, sizeof(m), "No such image: %s", name);
	return fdk_reply_msg(fd, "404 Not Found", m);
}

/* A query parameter's value (no percent-decoding: the test's names need none). */
static void qget(const char *path, const char *key, char *out, size_t cap)
{
	const char *q = strchr(path, '?'), *p;
	size_t kl = strlen(key);

	out[0] = '\0';
	for (p = q; p && *p; p = strchr(p + 1, '&')) {
		if (!strncmp(p + 1, key, kl) && p[1 + kl] == '=') {
			snprintf(out, cap, "%.*s", (int)strcspn(p + 2 + kl, "&"), p + 2 + kl);
			return;
		}
	}
}

/* Which Engine API call: op name, the container or image it names (@a). */
static const char *classify(const struct fdk_req *rq, char *a, size_t cap)
{
	const char *p = rq->path, *m = rq->method, *rest;
	size_t n;

	a[0] = '\0';
	if (!strcmp(p, "/version"))
		return "version";
	if (!strncmp(p, "/containers/create", 18)) {
		qget(p, "name", a, cap);
		return "create";
	}
	if (!strncmp(p, "/containers/", 12)) {
		rest = p + 12;
		n = strcspn(rest, "/?");
		snprintf(a, cap, "%.*s", (int)n, rest);
		rest += n;
		if (!strcmp(m, "DELETE") && *rest == '?')
			return "remove";
		if (!strcmp(rest, "/json"))
			return "inspect";
		if (!strncmp(rest, "/start", 6))
			return "start";
		if (!strcmp(rest, "/pause"))
			return "pause";
		if (!strcmp(rest, "/unpause"))
			return "unpause";
		if (!strncmp(rest, "/kill", 5))
			return "kill";
		if (!strcmp(rest, "/checkpoints"))
			return !strcmp(m, "POST") ? "ckpt-create" : "ckpt-list";
		if (!strncmp(rest, "/checkpoints/", 13))
			return "ckpt-delete";
		return "?";
	}
	if (!strncmp(p, "/commit?", 8)) {
		qget(p, "container", a, cap);
		return "commit";
	}
	if (!strcmp(p, "/images/json"))
		return "image-list";
	if (!strncmp(p, "/images/get?", 12)) {
		qget(p, "names", a, cap);
		return "save";
	}
	if (!strncmp(p, "/images/load", 12))
		return "load";
	if (!strncmp(p, "/images/", 8)) {
		rest = p + 8;
		n = strlen(rest);
		if (!strcmp(m, "GET") && n > 5 && !strcmp(rest + n - 5, "/json")) {
			snprintf(a, cap, "%.*s", (int)(n - 5), rest);
			return "image-inspect";
		}
		if (!strcmp(m, "DELETE")) {
			snprintf(a, cap, "%.*s", (int)strcspn(rest, "?"), rest);
			return "image-remove";
		}
	}
	return "?";
}

static int do_inspect(struct engine *e, int fd, const char *name)
{
	struct fct *c = ct_find(e, name);
	char upper[512], nm[100];
	json_t *j;

	if (!c)
		return reply_no_ct(fd, name);
	upper_of(e, c, upper, sizeof(upper));
	snprintf(nm, sizeof(nm), "/%s", c->name);
	j = json_pack("{s:s, s:s, s:{s:s, s:b, s:b, s:i}, s:{s:s, s:{s:s}}, s:{s:s}, s:{s:s},"
		      " s:{s:s, s:O}}",
		      "Id", c->id, "Name", nm,
		      "State", "Status", c->st == CT_RUNNING ? "running" : c->st == CT_PAUSED ?
		      "paused" : "created", "Running", c->st == CT_RUNNING || c->st == CT_PAUSED,
		      "Paused", c->st == CT_PAUSED, "Pid", 0,
		      "GraphDriver", "Name", "overlay2", "Data", "UpperDir", upper,
		      "NetworkSettings", "IPAddress", c->st == CT_CREATED ? "" : inet_ntoa(e->ip),
		      "HostConfig", "Runtime", c->runtime,
		      "Config", "Image", c->image, "Cmd", c->cmd);
	return reply_json(fd, "200 OK", j);
}

static int do_create(struct engine *e, int fd, const char *name, const struct fdk_req *rq)
{
	json_t *cfg = json_loadb(rq->body ?: "", rq->body_len, 0, NULL);
	const char *image = json_string_value(json_object_get(cfg, "Image"));
	const char *rt = json_string_value(json_object_get(json_object_get(cfg, "HostConfig"),
							   "Runtime"));
	const char *mud = json_string_value(json_object_get(json_object_get(cfg, "Labels"),
							    "edgehop.mud"));
	char upper[512], m[300];
	struct fct *c;

	if (!image || !json_is_array(json_object_get(cfg, "Cmd"))) {
		json_decref(cfg);
		return fdk_reply_msg(fd, "400 Bad Request", "config has no Image or Cmd");
	}
	if (!img_find(e, image)) {
		json_decref(cfg);
		return reply_no_img(fd, image);
	}
	if (ct_find(e, name)) {
		json_decref(cfg);
		snprintf(m, sizeof(m), "Conflict. The container name \"/%s\" is already in use", name);
		return fdk_reply_msg(fd, "409 Conflict", m);
	}
	c = &e->ct[e->nct++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	hex64(c->id, 0xc0000 + ++e->seq);
	snprintf(c->image, sizeof(c->image), "%s", image);
	snprintf(c->runtime, sizeof(c->runtime), "%s", rt ?: "runc");
	c->mud = mud ? strtoul(mud, NULL, 10) : 0;
	c->cmd = json_incref(json_object_get(cfg, "Cmd"));
	snprintf(c->hostname, sizeof(c->hostname), "%s",
		 json_string_value(json_object_get(cfg, "Hostname")) ?: "");
	c->st = CT_CREATED;
	json_decref(cfg);
	upper_of(e, c, upper, sizeof(upper));
	mkdir_p(upper);
	return reply_json(fd, "201 Created", json_pack("{s:s, s:[]}", "Id", c->id, "Warnings"));
}

/* One line of edgehop-runc's marks file (ehrt.h). */
static void runc_mark(struct engine *e, const char *id, const char *what)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s/marks", e->stage, id);
	f = fopen(p, "a");
	if (f) {
		fprintf(f, "%s %.3f\n", what, eh_mono_ms());
		fclose(f);
	}
}

/*
 * edgehop-runc's create and start, as control/runtime/main.c: waits for the
 * staged image, "restores" it, marks each moment.
 */
static int runc_restore(struct engine *e, const char *id, char *why, size_t cap)
{
	char p[600], q[600];
	double end = eh_mono_ms() + DEADLINE_S * 1000;

	runc_mark(e, id, EHRT_MARK_CREATE);
	for (;;) {
		snprintf(p, sizeof(p), "%s/%s/abort", e->stage, id);
		if (!access(p, F_OK)) {
			snprintf(why, cap, "edgehop-runc: the migration of %s was aborted", id);
			return -1;
		}
		snprintf(p, sizeof(p), "%s/%s/pending", e->stage, id);
		if (access(p, F_OK))
			break;
		if (eh_mono_ms() > end) {
			snprintf(why, cap, "edgehop-runc: %s still pending", id);
			return -1;
		}
		usleep(1000);	/* edgehop-runc waits on inotify; a poll is enough here */
	}
	runc_mark(e, id, EHRT_MARK_RESTORE);
	snprintf(p, sizeof(p), "%s/%s/img", e->stage, id);
	if (!ckpt_check(p, why, cap))
		return -1;
	snprintf(q, sizeof(q), "%s/%s/img.used", e->stage, id);
	if (rename(p, q)) {
		snprintf(why, cap, "rename %s: %s", p, strerror(errno));
		return -1;
	}
	runc_mark(e, id, EHRT_MARK_RESTORED);
	runc_mark(e, id, EHRT_MARK_START);
	return 0;
}

static int do_start(struct engine *e, int fd, const char *name, const struct fdk_req *rq)
{
	char ck[128], dir[700], why[700], id[65];
	struct fct *c;
	bool edgehop;

	qget(rq->path, "checkpoint", ck, sizeof(ck));
	pthread_mutex_lock(&e->mu);
	c = ct_find(e, name);
	if (!c) {
		pthread_mutex_unlock(&e->mu);
		return reply_no_ct(fd, name);
	}
	if (c->st == CT_RUNNING || c->st == CT_PAUSED) {
		pthread_mutex_unlock(&e->mu);
		return fdk_reply(fd, "304 Not Modified", NULL);
	}
	edgehop = !strcmp(c->runtime, "edgehop");
	snprintf(id, sizeof(id), "%s", c->id);
	pthread_mutex_unlock(&e->mu);
	why[0] = '\0';
	if (ck[0]) {
		snprintf(dir, sizeof(dir), "%s/containers/%s/checkpoints/%s", e->root, id, ck);
		ckpt_check(dir, why, sizeof(why));
	} else if (edgehop) {
		runc_restore(e, id, why, sizeof(why));
	}
	if (why[0]) {
		char m[900];

		snprintf(m, sizeof(m), "failed to create task for container: restore: %s", why);
		return fdk_reply_msg(fd, "500 Internal Server Error", m);
	}
	pthread_mutex_lock(&e->mu);
	c = ct_find(e, id);
	if (c)
		c->st = CT_RUNNING;
	pthread_mutex_unlock(&e->mu);
	return c ? fdk_reply(fd, "204 No Content", NULL) : reply_no_ct(fd, name);
}

/* The image save, chunked as dockerd does; the channel is cut halfway if asked. */
static int do_save(struct engine *e, int fd, const char *name)
{
	struct buf b = { 0 };
	struct fimg *m;
	bool cut;
	int r = 0;

	pthread_mutex_lock(&e->mu);
	m = img_find(e, name);
	if (m)
		image_tar(m, &b);
	cut = e->cut_mid && !strcmp(e->cut_op, "save");
	pthread_mutex_unlock(&e->mu);
	if (!m)
		return reply_no_img(fd, name);
	r = fdk_chunked_head(fd, "application/x-tar");
	for (size_t off = 0; !r && off < b.len; off += 32768) {
		if (cut && off >= b.len / 2) {
			relay_cut(&R);
			cut = false;
		}
		r = fdk_chunk(fd, b.p + off, b.len - off < 32768 ? b.len - off : 32768);
	}
	free(b.p);
	return r ?: fdk_chunked_end(fd);
}

static int do_load(struct engine *e, int fd, const struct fdk_req *rq)
{
	char ref[200], why[400], body[1000];
	int r;

	pthread_mutex_lock(&e->mu);
	r = image_load(e, (const uint8_t *)rq->body, rq->body_len, ref, sizeof(ref), why,
		       sizeof(why));
	pthread_mutex_unlock(&e->mu);
	if (r)
		snprintf(body, sizeof(body), "{\"errorDetail\":{\"message\":\"%s\"},\"error\":\"%s\"}\r\n",
			 why, why);
	else
		snprintf(body, sizeof(body), "{\"stream\":\"Loaded image: %s\\n\"}\r\n", ref);
	return fdk_reply_chunked(fd, "application/json", body);
}

static int route(struct fdk_server *s, int fd, struct fdk_req *rq)
{
	struct engine *e = s->ctx;
	char a[256], b[512], dir[700], m[300];
	const char *op = classify(rq, a, sizeof(a));
	struct fct *c;
	struct fimg *im;
	bool fault = false, cut = false;
	json_t *j, *v;

	pthread_mutex_lock(&e->mu);
	elog(e, "%s %s\n", op, a);
	if (e->f_op[0] && !strcmp(op, e->f_op) && e->f_hits++ == e->f_skip) {
		fault = true;
		e->f_fired = true;
	}
	cut = e->cut_op[0] && !e->cut_mid && !strcmp(op, e->cut_op);
	if (e->cancel_op[0] && !strcmp(op, e->cancel_op) && g_cancel)
		*g_cancel = 1;
	pthread_mutex_unlock(&e->mu);
	if (cut)
		relay_cut(&R);
	if (fault && !strcmp(op, "load")) {
		snprintf(b, sizeof(b), "{\"errorDetail\":{\"message\":\"%s\"},\"error\":\"%s\"}\r\n",
			 e->f_msg, e->f_msg);
		return fdk_reply_chunked(fd, "application/json", b);
	}
	if (fault)
		return fdk_reply_msg(fd, e->f_status, e->f_msg);

	if (!strcmp(op, "version"))
		return fdk_reply(fd, "200 OK", "{\"Version\":\"26.1.5\",\"ApiVersion\":\"1.45\","
				 "\"MinAPIVersion\":\"1.24\",\"Experimental\":true}");
	if (!strcmp(op, "start"))
		return do_start(e, fd, a, rq);
	if (!strcmp(op, "save"))
		return do_save(e, fd, a);
	if (!strcmp(op, "load"))
		return do_load(e, fd, rq);

	pthread_mutex_lock(&e->mu);
	c = ct_find(e, a);
	if (!strcmp(op, "inspect")) {
		int r = do_inspect(e, fd, a);

		pthread_mutex_unlock(&e->mu);
		return r;
	}
	if (!strcmp(op, "create")) {
		int r = do_create(e, fd, a, rq);

		pthread_mutex_unlock(&e->mu);
		return r;
	}
	if (c && (!strcmp(op, "pause") || !strcmp(op, "unpause"))) {
		bool p = !strcmp(op, "pause"), can = c->st == (p ? CT_RUNNING : CT_PAUSED);

		if (can)
			c->st = p ? CT_PAUSED : CT_RUNNING;
		else
			snprintf(m, sizeof(m), "Container %s is %s", c->id,
				 p ? "not running" : "not paused");
		pthread_mutex_unlock(&e->mu);
		return can ? fdk_reply(fd, "204 No Content", NULL) : fdk_reply_msg(fd, "409 Conflict", m);
	}
	if (!strcmp(op, "kill") && c) {
		/* SIGHUP: the service reads its name from its own /etc/hostname */
		qget(rq->path, "signal", m, sizeof(m));
		if (!strcmp(m, "SIGHUP") && c->st == CT_RUNNING)
			svc_name_set(c->hostname);
		pthread_mutex_unlock(&e->mu);
		return c->st == CT_RUNNING ? fdk_reply(fd, "204 No Content", NULL) :
		       fdk_reply_msg(fd, "409 Conflict", "container is not running");
	}
	if (!strcmp(op, "remove")) {
		if (c) {
			upper_of(e, c, dir, sizeof(dir));
			*strrchr(dir, '/') = '\0';
			rm_tree(dir);
			snprintf(dir, sizeof(dir), "%s/containers/%s", e->root, c->id);
			rm_tree(dir);
			c->st = CT_GONE;
		}
		pthread_mutex_unlock(&e->mu);
		return c ? fdk_reply(fd, "204 No Content", NULL) : reply_no_ct(fd, a);
	}
	if (!strcmp(op, "ckpt-create") && c) {
		j = json_loadb(rq->body ?: "", rq->body_len, 0, NULL);
		snprintf(dir, sizeof(dir), "%s/containers/%s/checkpoints/%s", e->root, c->id,
			 json_string_value(json_object_get(j, "CheckpointID")) ?: "none");
		json_decref(j);
		pthread_mutex_unlock(&e->mu);
		if (ckpt_write(dir))
			return fdk_reply_msg(fd, "500 Internal Server Error", "fake CRIU: cannot write");
		return fdk_reply(fd, "201 Created", NULL);
	}
	if (!strcmp(op, "ckpt-delete") && c) {
		snprintf(dir, sizeof(dir), "%s/containers/%s/checkpoints/%s", e->root, c->id,
			 strrchr(rq->path, '/') + 1);
		pthread_mutex_unlock(&e->mu);
		rm_tree(dir);
		return fdk_reply(fd, "204 No Content", NULL);
	}
	if (!strcmp(op, "commit") && c && (im = img_find(e, c->image))) {
		char repo[200], tag[100], ref[300];
		int layers[8], n = im->nlayers;

		qget(rq->path, "repo", repo, sizeof(repo));
		qget(rq->path, "tag", tag, sizeof(tag));
		snprintf(ref, sizeof(ref), "%s:%s", repo, tag);
		memcpy(layers, im->layer, n * sizeof(int));
		layers[n++] = 0x100 + e->seq;	/* the container's own layer */
		im = img_add(e, ref, layers, n);
		snprintf(b, sizeof(b), "{\"Id\":\"%s\"}", im->id);
		pthread_mutex_unlock(&e->mu);
		return fdk_reply(fd, "201 Created", b);
	}
	if (!strcmp(op, "image-list")) {
		j = json_array();
		for (int i = 0; i < e->nimg; i++)
			if (!e->img[i].gone)
				json_array_append_new(j, json_pack("{s:s, s:[s]}", "Id", e->img[i].id,
								   "RepoTags", e->img[i].ref));
		pthread_mutex_unlock(&e->mu);
		return reply_json(fd, "200 OK", j);
	}
	if (!strcmp(op, "image-inspect") && (im = img_find(e, a))) {
		char h[65], id[80];

		v = json_array();
		for (int i = 0; i < im->nlayers; i++) {
			hex64(h, im->layer[i]);
			snprintf(id, sizeof(id), "sha256:%s", h);
			json_array_append_new(v, json_string(id));
		}
		j = json_pack("{s:s, s:[s], s:{s:s, s:o}}", "Id", im->id, "RepoTags", im->ref,
			      "RootFS", "Type", "layers", "Layers", v);
		pthread_mutex_unlock(&e->mu);
		return reply_json(fd, "200 OK", j);
	}
	if (!strcmp(op, "image-remove") && (im = img_find(e, a))) {
		im->gone = true;
		snprintf(b, sizeof(b), "[{\"Untagged\":\"%s\"}]", im->ref);
		pthread_mutex_unlock(&e->mu);
		return fdk_reply(fd, "200 OK", b);
	}
	pthread_mutex_unlock(&e->mu);
	if (!strncmp(op, "image", 5))
		return reply_no_img(fd, a);
	if (!c && strcmp(op, "?"))
		return reply_no_ct(fd, a);
	snprintf(m, sizeof(m), "fake dockerd: no route for %s %s", rq->method, rq->path);
	return fdk_reply_msg(fd, "404 Not Found", m);
}

static int engine_start(struct engine *e, struct in_addr ip)
{
	char p[108];

	snprintf(e->root, sizeof(e->root), "%s/%s/docker", tmp, e->node);
	snprintf(e->state, sizeof(e->state), "%s/%s/state", tmp, e->node);
	snprintf(e->stage, sizeof(e->stage), "%s/%s/restore", tmp, e->node);
	snprintf(p, sizeof(p), "%s/%s/docker.sock", tmp, e->node);
	pthread_mutex_init(&e->mu, NULL);
	e->ip = ip;
	e->srv.route = route;
	e->srv.ctx = e;
	return mkdir_p(e->root) ?: mkdir_p(e->state) ?: mkdir_p(e->stage) ?: fdk_start(&e->srv, p);
}

/* CT-x of @mud on ES-x from @image, running, its UpperDir with a few files. */
static struct fct *ct_x(uint32_t mud, const char *image)
{
	static uint8_t state[STATE_BYTES];
	char upper[512], p[600];
	struct fct *c;

	for (size_t i = 0; i < sizeof(state); i++)
		state[i] = (uint8_t)(i * 13 + mud);
	pthread_mutex_lock(&X.mu);
	c = &X.ct[X.nct++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "eh-mud-%u", mud);
	hex64(c->id, 0xa0000 + mud);
	snprintf(c->image, sizeof(c->image), "%s", image);
	snprintf(c->runtime, sizeof(c->runtime), "runc");
	c->mud = mud;
	c->cmd = json_pack("[s, s, s]", "/edgehop-svc", "--port", "7777");
	c->st = CT_RUNNING;
	upper_of(&X, c, upper, sizeof(upper));
	pthread_mutex_unlock(&X.mu);
	snprintf(p, sizeof(p), "%s/app/empty", upper);
	mkdir_p(p);
	snprintf(p, sizeof(p), "%s/app/state.db", upper);
	write_file(p, state, sizeof(state));
	snprintf(p, sizeof(p), "%s/etc", upper);
	mkdir_p(p);
	snprintf(p, sizeof(p), "%s/etc/state-link", upper);
	if (symlink("../app/state.db", p))
		tap_diag("symlink %s: %s", p, strerror(errno));
	return c;
}

/* --- the service in CT-y: STATUS_REQ answered in pages of 20 ------------------------ */

#define SVC_MUD_FIRST	100	/* it holds state for MUDs 100..159 ... */
#define SVC_MUD_COUNT	60
static uint32_t svc_forget;	/* ... except this one */
static int svc_fd = -1;
/* the name it answers under (EH_F_STATUS_NAME), changed by a SIGHUP to CT-y */
static pthread_mutex_t svc_name_mu = PTHREAD_MUTEX_INITIALIZER;
static char svc_name[EH_NAME_LEN];

static void svc_name_set(const char *name)
{
	pthread_mutex_lock(&svc_name_mu);
	memset(svc_name, 0, sizeof(svc_name));
	memcpy(svc_name, name, strnlen(name, sizeof(svc_name) - 1));
	pthread_mutex_unlock(&svc_name_mu);
}

static void svc_name_get(char name[EH_NAME_LEN])
{
	pthread_mutex_lock(&svc_name_mu);
	memcpy(name, svc_name, EH_NAME_LEN);
	pthread_mutex_unlock(&svc_name_mu);
}
static struct in_addr svc_ip;

static void *svc_main(void *arg)
{
	uint8_t in[512], out[2048];
	struct eh_hdr *h = (void *)out;

	(void)arg;
	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(svc_fd, in, sizeof(in), 0, (struct sockaddr *)&from, &fl);
		uint32_t first, cnt = 0, held = 0, ids[SVC_MUD_COUNT];
		struct eh_hdr_host q;

		if (n < 0 || eh_hdr_check(in, n, &q) || q.type != EH_T_STATUS_REQ)
			continue;
		for (uint32_t i = 0; i < SVC_MUD_COUNT; i++)
			if (SVC_MUD_FIRST + i != __atomic_load_n(&svc_forget, __ATOMIC_RELAXED))
				ids[held++] = SVC_MUD_FIRST + i;
		first = q.seq;
		memset(out, 0, sizeof(out));
		for (uint32_t i = first; i < held && cnt < 20; i++, cnt++) {
			struct eh_status_ent *e = (void *)(out + sizeof(*h) + cnt * sizeof(*e));

			e->mud_id = htonl(ids[i]);
			e->last_seq = htonl(41);
			e->applied = htobe64(42);
		}
		svc_name_get((char *)out + sizeof(*h) + cnt * sizeof(struct eh_status_ent));
		eh_hdr_init(h, EH_T_STATUS_RESP, EH_F_STATUS_NAME, held, first, q.send_ns,
			    cnt * sizeof(struct eh_status_ent) + EH_NAME_LEN);
		sendto(svc_fd, out, sizeof(*h) + cnt * sizeof(struct eh_status_ent) + EH_NAME_LEN,
		       0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

/* On 127.a.b.c:7777, an address of this process's own (tests may run side by side). */
static int svc_start(void)
{
	pthread_t t;
	uint32_t pid = getpid();

	for (int i = 0; i < 8; i++) {
		uint32_t h = pid * 8 + i;
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(SVC_PORT) };

		sa.sin_addr.s_addr = htonl(0x7f000000u | (100u + (h >> 16) % 150) << 16 |
					   ((h >> 8) & 0xff) << 8 | (1 + h % 250));
		svc_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (svc_fd >= 0 && !bind(svc_fd, (struct sockaddr *)&sa, sizeof(sa))) {
			svc_ip = sa.sin_addr;
			return -pthread_create(&t, NULL, svc_main, NULL);
		}
		if (svc_fd >= 0)
			close(svc_fd);
	}
	return -EADDRINUSE;
}

/* --- one migration: ES-x and ES-y in threads, under a deadline -------------------- */

static struct peer_ctx *ctx_x, *ctx_y;
static int lfd_y;
static uint16_t port_y;

struct mig {
	uint32_t mud;
	int method;
	const char *image;
	bool runc_ckpt;		/* CHECKPOINT = runc (fake runc) instead of Docker's API */
	bool runc_restore;	/* RESTORE = runc: edgehop-runc, early start */
	const char *fault;	/* the agent's FAULT key on ES-y */
	bool cutover_fail;
	bool cut_after_cutover;	/* the channel is cut once the cutover hook succeeded */
	bool block_commit;	/* the outcome record cannot be replaced at the commit point */
	bool fail_after_commit;	/* the hook returns an error past the commit point */
	char rec_before[16], rec_after[16];	/* ES-y's record around the commit call */
	int commit_rc;
	json_t *begin;		/* ES-y's migr_begin while it runs (the id) */
	const char *name_file;	/* CT-x's service runs with --name-file this */
	volatile int cancel;	/* ES-x's agent: stop at the next step */
	/* results */
	int rs, rd;
	bool dest_ran, was_cut;
	char es[1200], ed[1200];
	struct migr_report reps, repd;
	int cutovers, rollbacks;
	struct in_addr cut_addr;
	uint16_t cut_port;
	double ms;
};

/* What ES-y's outcome record of @id says now ("" if none). */
static void rec_now(const char *id, char *out, size_t cap)
{
	json_t *q = json_pack("{s:s, s:s}", "op", "outcome", "id", id);
	json_t *a = migr_outcome_answer(Y.state, q, NULL);

	snprintf(out, cap, "%s", json_string_value(json_object_get(a, "outcome")) ?: "");
	json_decref(q);
	json_decref(a);
}

static int hook_cutover(void *ctx, uint32_t mud_id, struct in_addr addr, uint16_t port,
			int (*commit)(void *), void *commit_ctx,
			uint64_t *replayed, uint64_t *relayed, char *err, size_t errlen)
{
	struct mig *g = ctx;
	const char *id = json_string_value(json_object_get(g->begin, "checkpoint")) ?: "";

	(void)mud_id;
	g->cutovers++;
	g->cut_addr = addr;
	g->cut_port = port;
	if (g->cutover_fail) {
		snprintf(err, errlen, "replay into CT-y: fake cutover refused");
		return -EHOSTUNREACH;
	}
	*replayed = 7;
	*relayed = 3;
	/* The replay is done, the MUD's requests held: the commit point, as eh_replay calls it. */
	rec_now(id, g->rec_before, sizeof(g->rec_before));
	if (g->block_commit) {
		char p[800];

		snprintf(p, sizeof(p), "%s/" MIGR_OUTCOME_DIR "/%s.json", Y.state, id);
		unlink(p);
		mkdir(p, 0700);	/* rename() onto a directory: EISDIR */
	}
	g->commit_rc = commit(commit_ctx);
	rec_now(id, g->rec_after, sizeof(g->rec_after));
	if (g->commit_rc) {
		snprintf(err, errlen, "commit: %s", strerror(-g->commit_rc));
		return g->commit_rc;
	}
	if (g->fail_after_commit) {
		snprintf(err, errlen, "fake: the switch refused after the commit");
		return -EIO;
	}
	/* ES-y has committed; its "done" goes into a cut channel. */
	if (g->cut_after_cutover)
		relay_cut(&R);
	return 0;
}

static void hook_rollback(void *ctx, uint32_t mud_id)
{
	(void)mud_id;
	((struct mig *)ctx)->rollbacks++;
}

static void *src_main(void *arg)
{
	struct mig *g = arg;
	struct peer_conn *pc = NULL;
	struct dk *d = NULL;
	char ct[64];
	struct migr_src s = { .mud_id = g->mud, .method = g->method, .node = "node-x",
			      .ct_id = ct, .image = g->image, .state_dir = X.state,
			      .docker_checkpoint = !g->runc_ckpt, .cancel = &g->cancel };

	snprintf(ct, sizeof(ct), "eh-mud-%u", g->mud);
	s.cmd = g->name_file ? json_pack("[s, s, s, s, s]", "/edgehop-svc", "--port", "7777",
					 "--name-file", g->name_file) :
			       json_pack("[s, s, s]", "/edgehop-svc", "--port", "7777");
	g->rs = dk_open(&d, X.srv.sock);
	if (g->rs) {
		snprintf(g->es, sizeof(g->es), "dk_open: %s", dk_err(d));
		goto out;
	}
	g->rs = peer_connect(ctx_x, "node-y", "127.0.0.1", R.port, 5000, &pc);
	if (g->rs) {
		snprintf(g->es, sizeof(g->es), "peer_connect: %s", strerror(-g->rs));
		goto out;
	}
	g->rs = migr_source(d, pc, &s, &g->reps, g->es, sizeof(g->es));
out:
	json_decref(s.cmd);
	peer_close(pc);
	dk_close(d);
	return NULL;
}

static void *dst_main(void *arg)
{
	struct mig *g = arg;
	struct migr_dst_hooks h = { .ctx = g, .cutover = hook_cutover, .rollback = hook_rollback,
				    .fault = g->fault, .docker_sock = Y.srv.sock,
				    .restore_stage = g->runc_restore ? Y.stage : NULL };
	struct peer_conn *pc = NULL;
	struct dk *d = NULL;
	json_t *begin = NULL;

	g->rd = peer_accept(ctx_y, lfd_y, 5000, &pc);
	if (g->rd) {
		snprintf(g->ed, sizeof(g->ed), "peer_accept: %s", strerror(-g->rd));
		return NULL;
	}
	g->rd = peer_recv_msg(pc, &begin);
	if (!g->rd && strcmp(json_string_value(json_object_get(begin, "op")) ?: "", "migr_begin"))
		g->rd = -EPROTO;
	if (g->rd) {
		snprintf(g->ed, sizeof(g->ed), "no migr_begin: %s", strerror(-g->rd));
		goto out;
	}
	g->rd = dk_open(&d, Y.srv.sock);
	if (g->rd) {
		snprintf(g->ed, sizeof(g->ed), "dk_open: %s", dk_err(d));
		goto out;
	}
	g->dest_ran = true;
	g->begin = begin;
	g->rd = migr_dest(d, pc, begin, "node-y", Y.state, &h, &g->repd, g->ed, sizeof(g->ed));
	g->begin = NULL;
out:
	json_decref(begin);
	peer_close(pc);
	dk_close(d);
	return NULL;
}

static bool join_by(pthread_t t, const struct timespec *dl)
{
	return pthread_timedjoin_np(t, NULL, dl) == 0;
}

static void migrate(struct mig *g)
{
	pthread_t ts, td;
	struct timespec dl;
	double t0 = eh_mono_ms();
	bool ok;

	R.cut = false;
	pthread_mutex_lock(&X.mu);
	g_cancel = &g->cancel;
	pthread_mutex_unlock(&X.mu);
	pthread_create(&R.th, NULL, relay_main, &R);
	pthread_create(&td, NULL, dst_main, g);
	pthread_create(&ts, NULL, src_main, g);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += DEADLINE_S;
	ok = join_by(ts, &dl);
	ok = join_by(td, &dl) && ok;
	g->ms = eh_mono_ms() - t0;
	if (!ok) {
		/* Threads stuck in the engine: nothing sane to go on with. */
		tap_ok(0, "MUD %u: ES-x and ES-y end within %d s (source: %s; dest: %s)", g->mud,
		       DEADLINE_S, g->es, g->ed);
		fflush(stdout);
		_exit(1);
	}
	pthread_mutex_lock(&X.mu);
	g_cancel = NULL;
	pthread_mutex_unlock(&X.mu);
	pthread_mutex_lock(&R.mu);
	g->was_cut = R.cut;
	pthread_mutex_unlock(&R.mu);
	relay_cut(&R);	/* a relay whose two ends did not both close yet */
	pthread_join(R.th, NULL);
}

/* --- what is left behind ---------------------------------------------------------- */

static int dir_entries(const char *dir, char *list, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		/* ES-y's outcome records stay on purpose: checked on their own */
		if (e->d_name[0] == '.' || !strcmp(e->d_name, MIGR_OUTCOME_DIR))
			continue;
		n++;
		if (strlen(list) + strlen(e->d_name) + 4 < cap)
			strcat(strcat(list, " "), e->d_name);
	}
	closedir(d);
	return n;
}

/*
 * After a failed migration: CT-x running (not paused), no checkpoint or
 * committed image of it on ES-x, no CT-y or loaded image on ES-y, no staged
 * file or marker on either side. Returns how many things are wrong, in @why.
 */
static int leftovers(uint32_t mud, char *why, size_t cap)
{
	char pfx[64], dir[700];
	struct fct *c;
	int n = 0;

	why[0] = '\0';
	snprintf(pfx, sizeof(pfx), MIGR_IMAGE_REPO "mud-%u:", mud);
	pthread_mutex_lock(&X.mu);
	snprintf(dir, sizeof(dir), "eh-mud-%u", mud);
	c = ct_find(&X, dir);
	if (!c || c->st != CT_RUNNING) {
		n++;
		snprintf(why + strlen(why), cap - strlen(why), " CT-x %s;",
			 !c ? "gone" : c->st == CT_PAUSED ? "paused" : "not running");
	}
	if (c) {
		snprintf(dir, sizeof(dir), "%s/containers/%s/checkpoints", X.root, c->id);
		n += dir_entries(dir, why, cap);
	}
	for (struct engine *e = &X; e; e = e == &X ? &Y : NULL) {
		for (int i = 0; i < e->nimg; i++) {
			if (!e->img[i].gone && !strncmp(e->img[i].ref, pfx, strlen(pfx))) {
				n++;
				snprintf(why + strlen(why), cap - strlen(why), " %s image %s;",
					 e->node, e->img[i].ref);
			}
		}
	}
	for (int i = 0; i < Y.nct; i++) {
		if (Y.ct[i].st != CT_GONE && Y.ct[i].mud == mud) {
			n++;
			snprintf(why + strlen(why), cap - strlen(why), " CT-y %s;", Y.ct[i].name);
		}
	}
	pthread_mutex_unlock(&X.mu);
	n += dir_entries(X.state, why, cap);
	n += dir_entries(Y.state, why, cap);
	n += dir_entries(Y.stage, why, cap);
	return n;
}

static void engines_reset(void)
{
	for (struct engine *e = &X; e; e = e == &X ? &Y : NULL) {
		pthread_mutex_lock(&e->mu);
		e->f_op[0] = e->cut_op[0] = e->cancel_op[0] = '\0';
		e->f_hits = 0;
		e->f_fired = e->cut_mid = false;
		e->loglen = 0;
		e->log[0] = '\0';
		e->loaded_layers = -1;
		pthread_mutex_unlock(&e->mu);
	}
	__atomic_store_n(&svc_forget, 0, __ATOMIC_RELAXED);
}

static bool logged(struct engine *e, const char *line)
{
	bool r;

	pthread_mutex_lock(&e->mu);
	r = strstr(e->log, line) != NULL;
	pthread_mutex_unlock(&e->mu);
	return r;
}

/* --- (a) migrations that succeed -------------------------------------------------- */

static bool file_same(const char *a, const char *b)
{
	char x[4096], y[4096];
	FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
	size_t n, m;
	bool same = fa && fb;

	while (same && (n = fread(x, 1, sizeof(x), fa)) > 0) {
		m = fread(y, 1, n, fb);
		same = m == n && !memcmp(x, y, n);
	}
	if (same)
		same = fread(y, 1, 1, fb) == 0;
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

static bool report_json_ok(const struct migr_report *rep)
{
	json_t *j = migr_report_json(rep);
	bool ok = j && json_array_size(json_object_get(j, "steps")) == MS_MAX &&
		  json_is_string(json_object_get(j, "ct_y_id"));

	json_decref(j);
	return ok;
}

/*
 * T5's moments: ES-y's own three, edgehop-runc's four (RESTORE = runc), the
 * same on both sides after the trip in "done", "answering" at T5's end.
 */
static bool marks_ok(const struct migr_report *s, const struct migr_report *d, bool runc)
{
	static const char *const want[] = { "start_called", "start_returned", "answering",
					    EHRT_MARK_CREATE, EHRT_MARK_RESTORE,
					    EHRT_MARK_RESTORED, EHRT_MARK_START };
	int n = runc ? 7 : 3;
	bool ok = s->n_t5_marks == n && d->n_t5_marks == n;

	for (int i = 0; ok && i < n; i++) {
		ok = !strcmp(s->t5_marks[i].what, d->t5_marks[i].what) &&
		     s->t5_marks[i].ms == d->t5_marks[i].ms;
		if (!strcmp(s->t5_marks[i].what, "answering"))
			ok = ok && s->t5_marks[i].ms == d->step[MS_T5_RESTORE].ms;
	}
	for (int k = 0; ok && k < n; k++) {
		bool found = false;

		for (int i = 0; i < n; i++)
			found = found || !strcmp(s->t5_marks[i].what, want[k]);
		ok = found;
	}
	return ok;
}

static const char *last_mark(const struct migr_report *r)
{
	return r->n_t5_marks ? r->t5_marks[r->n_t5_marks - 1].what : "";
}

/*
 * CT-x's service runs with --name-file: the restored CT-y (CT-x's memory,
 * its name included) gets SIGHUP through Docker and answers as CT-<node-y>,
 * from the Hostname ES-y gave CT-y, before the replay ("renamed", T5's last
 * moment). A kill Docker refuses fails nothing: CT-y keeps the old name.
 */
static void renamed(uint32_t mud, bool kill_fails)
{
	struct mig g = { .mud = mud, .method = METHOD_P, .image = BASE, .runc_ckpt = true,
			 .runc_restore = true, .name_file = "/etc/hostname" };
	char name[EH_NAME_LEN], host[64] = "";
	struct fct *cy;

	engines_reset();
	ct_x(mud, BASE);
	if (kill_fails) {
		pthread_mutex_lock(&Y.mu);
		snprintf(Y.f_op, sizeof(Y.f_op), "kill");
		Y.f_status = "500 Internal Server Error";
		snprintf(Y.f_msg, sizeof(Y.f_msg), "cannot kill container: permission denied");
		pthread_mutex_unlock(&Y.mu);
	}
	svc_name_set("CT-node-x");
	migrate(&g);
	svc_name_get(name);
	pthread_mutex_lock(&Y.mu);
	cy = ct_find(&Y, g.repd.ct_y_id[0] ? g.repd.ct_y_id : "none");
	if (cy)
		snprintf(host, sizeof(host), "%s", cy->hostname);
	pthread_mutex_unlock(&Y.mu);
	if (kill_fails)
		tap_ok(!g.rs && !g.rd && !strcmp(host, "CT-node-y") &&
		       !strcmp(name, "CT-node-x") && !strcmp(last_mark(&g.reps), "answering") &&
		       logged(&Y, "kill "), "a kill Docker refuses: the migration succeeds "
		       "(source %d, dest %d: %s), CT-y (hostname %s) still answers as %s, "
		       "T5 ends at %s", g.rs, g.rd, g.ed, host, name, last_mark(&g.reps));
	else
		tap_ok(!g.rs && !g.rd && !strcmp(host, "CT-node-y") &&
		       !strcmp(name, "CT-node-y") && !strcmp(last_mark(&g.reps), "renamed") &&
		       !strcmp(last_mark(&g.repd), "renamed") &&
		       g.reps.t5_marks[g.reps.n_t5_marks - 1].ms >= g.reps.step[MS_T5_RESTORE].ms,
		       "--name-file: CT-y created with hostname %s answers as %s before the "
		       "replay (source %d, dest %d: %s), T5 ends at %s", host, name, g.rs, g.rd,
		       g.ed, last_mark(&g.reps));
	svc_name_set("");
}

/* (d) below */
static int ask(const char *id, struct migr_report *rep, char *why, size_t cap);
static void doubt_wait(const char *id, const char *ct_y);

static void success(const char *what, uint32_t mud, int method, const char *image, int want,
		    bool runc_ckpt, bool runc_restore, int want_blobs)
{
	struct mig g = { .mud = mud, .method = method, .image = image, .runc_ckpt = runc_ckpt,
			 .runc_restore = runc_restore };
	const struct migr_stepstat *s = g.reps.step, *d = g.repd.step;
	char upx[512], upy[512], a[600], b[600], why[1000];
	struct fct *cx, *cy = NULL;
	json_t *cmd;
	bool ok;

	engines_reset();
	cx = ct_x(mud, image);
	migrate(&g);
	tap_ok(!g.rs && !g.rd && g.dest_ran, "%s: both sides succeed in %.0f ms (source %d: %s; "
	       "dest %d: %s)", what, g.ms, g.rs, g.es, g.rd, g.ed);

	/* The reports: every step there, bytes counted alike on both sides. */
	ok = g.reps.method == want && g.repd.method == want &&
	     s[MS_T1_CHECKPOINT].ms > 0 && s[MS_T3_CAPTURE].ms > 0 &&
	     s[MS_T2_SEND_CKPT].raw_bytes >= CKPT_PAGES && s[MS_T2_SEND_CKPT].wire_bytes > 0 &&
	     s[MS_T2_SEND_CKPT].wire_bytes < s[MS_T2_SEND_CKPT].raw_bytes &&
	     s[MS_T2_SEND_CKPT].raw_bytes == d[MS_T2_SEND_CKPT].raw_bytes &&
	     s[MS_T2_SEND_CKPT].wire_bytes == d[MS_T2_SEND_CKPT].wire_bytes &&
	     s[MS_T4_SEND_FS].raw_bytes > 0 &&
	     s[MS_T4_SEND_FS].raw_bytes == d[MS_T4_SEND_FS].raw_bytes &&
	     s[MS_T4_SEND_FS].wire_bytes == d[MS_T4_SEND_FS].wire_bytes &&
	     (want == METHOD_C || s[MS_T3_CAPTURE].raw_bytes == s[MS_T4_SEND_FS].raw_bytes) &&
	     d[MS_T5_RESTORE].ms > 0 && s[MS_T5_RESTORE].ms == d[MS_T5_RESTORE].ms &&
	     d[MS_T7_REPLAY].ms >= 0 && s[MS_T7_REPLAY].ms == d[MS_T7_REPLAY].ms &&
	     g.reps.pause_ms > 0 && g.reps.total_ms >= g.reps.pause_ms && g.reps.ready_ms > 0 &&
	     marks_ok(&g.reps, &g.repd, runc_restore) &&
	     g.reps.replayed == 7 && g.reps.relayed == 3 &&
	     !strcmp(g.reps.restore_via, runc_restore ? "runc" : "docker") &&
	     g.reps.early_start == runc_restore && g.repd.early_start == runc_restore &&
	     g.reps.ct_y_id[0] && !strcmp(g.reps.ct_y_id, g.repd.ct_y_id) &&
	     !strcmp(g.reps.ct_y_name, g.repd.ct_y_name) &&
	     !strcmp(g.reps.ct_y_image, g.repd.ct_y_image) &&
	     g.reps.ct_y_addr.s_addr == svc_ip.s_addr && g.repd.ct_y_addr.s_addr == svc_ip.s_addr &&
	     (!runc_ckpt || !data_dir[0] || (g.reps.ckpt_pages > 0 && g.reps.criu_frozen_ms > 0)) &&
	     (runc_ckpt || g.reps.criu_frozen_ms < 0) &&
	     report_json_ok(&g.reps) && report_json_ok(&g.repd);
	tap_ok(ok, "%s: reports agree: %s, T1 %.1f ms, T2 %llu/%llu B (dest %llu/%llu), "
	       "T3 %llu B, T4 %llu/%llu B (dest %llu), skipped %llu B, T5 %.1f ms via %s%s, "
	       "T7 %.1f ms, pause %.1f ms, ready %.1f ms, total %.1f ms, %d T5 marks (dest %d), "
	       "%llu replayed/%llu relayed, pages %llu, CT-y %.12s at %s", what, g.reps.method == METHOD_C ? "C-Migr" : "P-Migr",
	       s[MS_T1_CHECKPOINT].ms, (unsigned long long)s[MS_T2_SEND_CKPT].raw_bytes,
	       (unsigned long long)s[MS_T2_SEND_CKPT].wire_bytes,
	       (unsigned long long)d[MS_T2_SEND_CKPT].raw_bytes,
	       (unsigned long long)d[MS_T2_SEND_CKPT].wire_bytes,
	       (unsigned long long)s[MS_T3_CAPTURE].raw_bytes,
	       (unsigned long long)s[MS_T4_SEND_FS].raw_bytes,
	       (unsigned long long)s[MS_T4_SEND_FS].wire_bytes,
	       (unsigned long long)d[MS_T4_SEND_FS].raw_bytes,
	       (unsigned long long)s[MS_T4_SEND_FS].skipped_bytes, d[MS_T5_RESTORE].ms,
	       g.reps.restore_via, g.reps.early_start ? " (early start)" : "",
	       d[MS_T7_REPLAY].ms, g.reps.pause_ms, g.reps.ready_ms, g.reps.total_ms,
	       g.reps.n_t5_marks, g.repd.n_t5_marks,
	       (unsigned long long)g.reps.replayed, (unsigned long long)g.reps.relayed,
	       (unsigned long long)g.reps.ckpt_pages, g.reps.ct_y_id, inet_ntoa(g.reps.ct_y_addr));

	/* What ES-y holds: CT-y as CT-x was, from the right image, the layer in it. */
	pthread_mutex_lock(&Y.mu);
	cy = ct_find(&Y, g.repd.ct_y_id[0] ? g.repd.ct_y_id : "none");
	cmd = cy ? json_incref(cy->cmd) : NULL;
	ok = cy && cy->st == CT_RUNNING && cy->mud == mud && json_equal(cmd, cx->cmd) &&
	     !strcmp(cy->image, g.repd.ct_y_image) &&
	     !strcmp(cy->runtime, runc_restore ? "edgehop" : "runc") &&
	     (want == METHOD_C ? !strncmp(cy->image, MIGR_IMAGE_REPO, strlen(MIGR_IMAGE_REPO)) &&
				 img_find(&Y, cy->image) : !strcmp(cy->image, image)) &&
	     /* C: the layer blobs ES-y lacked were sent, the one it held was not */
	     (want_blobs < 0 || (Y.loaded_layers == want_blobs &&
				  (want_blobs == 3 ? s[MS_T4_SEND_FS].skipped_bytes == 0 :
				   s[MS_T4_SEND_FS].skipped_bytes >= layer_size(1))));
	if (cy)
		upper_of(&Y, cy, upy, sizeof(upy));
	pthread_mutex_unlock(&Y.mu);
	json_decref(cmd);
	upper_of(&X, cx, upx, sizeof(upx));
	if (cy && want == METHOD_P) {
		ssize_t n;

		snprintf(a, sizeof(a), "%s/app/state.db", upx);
		snprintf(b, sizeof(b), "%s/app/state.db", upy);
		ok = ok && file_same(a, b);
		snprintf(b, sizeof(b), "%s/etc/state-link", upy);
		n = readlink(b, a, sizeof(a) - 1);
		ok = ok && n > 0 && (a[n] = '\0', !strcmp(a, "../app/state.db"));
		snprintf(b, sizeof(b), "%s/app/empty", upy);
		ok = ok && !access(b, F_OK);
	}
	/* Nothing staged left, CT-x running, the hooks as they should. */
	ok = ok && cx->st == CT_RUNNING && g.cutovers == 1 && g.rollbacks == 0 &&
	     g.cut_addr.s_addr == svc_ip.s_addr && g.cut_port == SVC_PORT;
	why[0] = '\0';
	ok = ok && !dir_entries(X.state, why, sizeof(why)) && !dir_entries(Y.state, why, sizeof(why)) &&
	     !dir_entries(Y.stage, why, sizeof(why));
	if (!runc_ckpt) {
		snprintf(a, sizeof(a), "%s/containers/%s/checkpoints", X.root, cx->id);
		ok = ok && !dir_entries(a, why, sizeof(why));
	}
	tap_ok(ok, "%s: CT-y runs %s%s with CT-x's command%s, %d layer blob(s) loaded; CT-x runs; "
	       "cutover once at %s:%u; nothing staged left%s", what, cy ? cy->image : "(none)",
	       runc_restore ? " under edgehop-runc" : "",
	       want == METHOD_P ? " and its layer (file, symlink, empty dir)" : "",
	       Y.loaded_layers, inet_ntoa(g.cut_addr), g.cut_port, why);
	if (want == METHOD_P && runc_restore)
		doubt_wait(g.reps.id, g.repd.ct_y_id);
}

/* --- (b) failures ----------------------------------------------------------------- */

enum special { SP_NONE, SP_RUNC_FAIL, SP_CUTOVER, SP_SVC_FORGETS };

struct fcase {
	const char *what;
	int method;
	bool runc_ckpt, runc_restore;
	struct engine *side;	/* whose dockerd fails, or NULL */
	const char *op;
	int skip;
	const char *status;
	const char *fault;	/* FAULT key */
	enum special sp;
	const char *want;	/* in the source's error (NULL: the Docker message) */
};


static void failure(const struct fcase *f, uint32_t mud)
{
	struct mig g = { .mud = mud, .method = f->method, .image = BASE, .runc_ckpt = f->runc_ckpt,
			 .runc_restore = f->runc_restore, .fault = f->fault,
			 .cutover_fail = f->sp == SP_CUTOVER };
	char msg[160], want[200], why[1000], fail_path[300];
	bool ok, fired = true;
	bool on_y = f->side == &Y || f->fault || f->sp == SP_CUTOVER || f->sp == SP_SVC_FORGETS;

	engines_reset();
	ct_x(mud, BASE);
	snprintf(msg, sizeof(msg), "fake %s: %s refused (MUD %u)", f->side ? f->side->node : "",
		 f->op ?: "", mud);
	if (f->side) {
		pthread_mutex_lock(&f->side->mu);
		snprintf(f->side->f_op, sizeof(f->side->f_op), "%s", f->op);
		f->side->f_skip = f->skip;
		f->side->f_status = f->status ?: "500 Internal Server Error";
		snprintf(f->side->f_msg, sizeof(f->side->f_msg), "%s", msg);
		pthread_mutex_unlock(&f->side->mu);
	}
	snprintf(fail_path, sizeof(fail_path), "%s/runc-fail", tmp);
	if (f->sp == SP_RUNC_FAIL)
		write_file(fail_path, "", 0);
	if (f->sp == SP_SVC_FORGETS)
		__atomic_store_n(&svc_forget, mud, __ATOMIC_RELAXED);
	snprintf(want, sizeof(want), "%s", f->want ?: msg);

	migrate(&g);
	unlink(fail_path);
	if (f->side) {
		pthread_mutex_lock(&f->side->mu);
		fired = f->side->f_fired;
		pthread_mutex_unlock(&f->side->mu);
	}
	/*
	 * Both sides fail; the source's error (what the agent reports) says why,
	 * in Docker's words; so does ES-y's when the failure was on ES-y.
	 */
	ok = fired && g.rs < 0 && strstr(g.es, want) && (!g.dest_ran || g.rd < 0) &&
	     (f->side != &Y || strstr(g.ed, want)) &&
	     /* ES-y's "failed" is the source's -EREMOTEIO */
	     (!on_y || g.rs == -EREMOTEIO);
	tap_ok(ok, "%s: %s; source %d: %s | dest%s %d: %s", f->what,
	       fired ? "both fail with the reason" : "THE FAULT NEVER FIRED", g.rs, g.es,
	       g.dest_ran ? "" : " (no migr_begin)", g.rd, g.ed);

	/* Everything undone on both sides; ES-y's rollback hook ran once if it began. */
	ok = !leftovers(mud, why, sizeof(why)) && g.rollbacks == (g.dest_ran ? 1 : 0) &&
	     (f->sp == SP_CUTOVER || g.cutovers == 0) &&
	     (!f->side || f->side != &Y || !f->op || strcmp(f->op, "start") ||
	      logged(&Y, "remove "));
	/* ES-y recorded the outcome: a later query says failed. */
	if (g.dest_ran) {
		struct migr_report rep;
		char w[600];
		int o = ask(g.reps.id, &rep, w, sizeof(w));

		ok = ok && o == MO_FAILED;
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "; outcome %s",
			 migr_outcome_name(o));
	}
	tap_ok(ok, "%s: rolled back: CT-x runs, nothing left on either side, rollback hook %d "
	       "time(s)%s", f->what, g.rollbacks, why);
}

/* --- (c) the channel cut ---------------------------------------------------------- */

static void cut(const char *what, uint32_t mud, int method, struct engine *e, const char *op,
		bool mid, bool dest_may_finish)
{
	struct mig g = { .mud = mud, .method = method, .image = BASE };
	char why[1000];
	bool ok;

	engines_reset();
	ct_x(mud, BASE);
	pthread_mutex_lock(&e->mu);
	snprintf(e->cut_op, sizeof(e->cut_op), "%s", op);
	e->cut_mid = mid;
	pthread_mutex_unlock(&e->mu);
	migrate(&g);
	ok = g.was_cut && g.rs < 0 && g.dest_ran && (g.rd < 0 || dest_may_finish) && g.ms < DEADLINE_S * 1000;
	tap_ok(ok, "%s: %s within %.0f ms; source %d: %s | dest %d: %s", what,
	       dest_may_finish ? "the source fails (ES-y may finish)" : "both sides fail",
	       g.ms, g.rs, g.es, g.rd, g.ed);
	if (dest_may_finish) {
		/*
		 * "restore" went out: ES-x is in doubt, ES-y's record says how it
		 * ended (committed: its "done" went into the cut channel).
		 */
		struct migr_report rep;
		int r = ask(g.reps.id, &rep, why, sizeof(why));

		ok = g.rs == -EINPROGRESS && g.reps.in_doubt &&
		     (g.rd ? r == MO_FAILED && g.rollbacks == 1 :
		      r == MO_COMMITTED && g.rollbacks == 0 && g.cutovers == 1 &&
		      !strcmp(rep.ct_y_id, g.repd.ct_y_id));
		tap_ok(ok, "%s: ES-x in doubt, ES-y's record says %s (dest %d; cutover %d, "
		       "rollback %d): %s", what, migr_outcome_name(r), g.rd, g.cutovers,
		       g.rollbacks, why);
		migr_doubt_clear(X.state, g.reps.id);
		return;
	}
	ok = !leftovers(mud, why, sizeof(why)) && g.rollbacks == 1;
	tap_ok(ok, "%s: rolled back on both sides, rollback hook %d time(s)%s", what, g.rollbacks,
	       why);
}

/* --- the agent cancels: the MUD moved again --------------------------------------- */

static void cancel(const char *what, uint32_t mud, const char *op, const char *when)
{
	struct mig g = { .mud = mud, .method = METHOD_P, .image = BASE };
	char want[100], why[1000];
	bool ok;

	engines_reset();
	ct_x(mud, BASE);
	pthread_mutex_lock(&X.mu);
	snprintf(X.cancel_op, sizeof(X.cancel_op), "%s", op);
	pthread_mutex_unlock(&X.mu);
	migrate(&g);
	snprintf(want, sizeof(want), "cancelled %s (the MUD moved again)", when);
	ok = g.cancel && g.rs == -ECANCELED && strstr(g.es, want) && g.dest_ran && g.rd < 0 &&
	     strstr(g.ed, "ES-x aborted: ") && strstr(g.ed, want);
	tap_ok(ok, "%s: ES-x stops %s and tells ES-y; source %d: %s | dest %d: %s", what, when,
	       g.rs, g.es, g.rd, g.ed);
	ok = !leftovers(mud, why, sizeof(why)) && g.rollbacks == 1 && g.cutovers == 0;
	tap_ok(ok, "%s: rolled back on both sides, rollback hook %d time(s)%s", what, g.rollbacks,
	       why);
}

/* --- (d) in doubt: ES-y's outcome records ---------------------------------------- */

/*
 * ES-y's agent answering one peer request as agentd.c's peer_thread does for
 * "outcome" (migr_outcome_answer), or with a scripted outcome.
 */
struct oserver {
	pthread_t th;
	int r;
	int n;			/* connections to answer (0: one) */
	const char *script[2];	/* per connection; NULL: the record's answer */
};

static void *oserver_main(void *arg)
{
	struct oserver *o = arg;

	for (int i = 0; i < (o->n ?: 1); i++) {
		struct peer_conn *pc = NULL;
		json_t *req = NULL, *ans;

		o->r = peer_accept(ctx_y, lfd_y, 5000, &pc);
		if (o->r)
			return NULL;
		o->r = peer_recv_msg(pc, &req);
		if (!o->r) {
			if (i < 2 && o->script[i])
				ans = json_pack("{s:s, s:s, s:s}", "op", "outcome", "id",
						json_string_value(json_object_get(req, "id")) ?: "",
						"outcome", o->script[i]);
			else
				ans = migr_outcome_answer(Y.state, req, peer_name(pc));
			o->r = peer_send_msg(pc, ans);
			json_decref(ans);
		}
		json_decref(req);
		peer_close(pc);
	}
	return NULL;
}

static int dial_y(struct peer_conn **pc)
{
	return peer_connect(ctx_x, "node-y", "127.0.0.1", port_y, 5000, pc);
}

/* Sends @req (taken) to ES-y's answerer; its answer, or NULL. */
static json_t *raw_query(json_t *req)
{
	struct oserver o = {};
	struct peer_conn *pc = NULL;
	json_t *ans = NULL;

	pthread_create(&o.th, NULL, oserver_main, &o);
	if (!dial_y(&pc) && !peer_send_msg(pc, req))
		peer_recv_msg(pc, &ans);
	peer_close(pc);
	pthread_join(o.th, NULL);
	json_decref(req);
	return ans;
}

/* ES-x's migr_outcome_ask() of @id against ES-y's records. */
static int ask(const char *id, struct migr_report *rep, char *why, size_t cap)
{
	struct oserver o = {};
	struct peer_conn *pc = NULL;
	int r;

	memset(rep, 0, sizeof(*rep));
	pthread_create(&o.th, NULL, oserver_main, &o);
	r = dial_y(&pc);
	if (!r)
		r = migr_outcome_ask(pc, id, rep, why, cap);
	else
		snprintf(why, cap, "dial: %s", strerror(-r));
	peer_close(pc);
	pthread_join(o.th, NULL);
	return r;
}

struct dlist {
	int n;
	struct migr_doubt d[4];
};

static void dl_add(void *ctx, const struct migr_doubt *d)
{
	struct dlist *l = ctx;

	if (l->n < 4)
		l->d[l->n] = *d;
	l->n++;
}

static int say_diag(const char *fmt, ...)
{
	char b[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	tap_diag("recover: %s", b);
	return 0;
}

static int recover(struct engine *e)
{
	struct dk *d = NULL;
	int n = dk_open(&d, e->srv.sock);

	if (!n)
		n = migr_recover(d, e->state, NULL, say_diag);
	dk_close(d);
	return n;
}

/* ES-x's view after a channel lost past "restore": in doubt, CT-x running, one record. */
static bool doubt_ok(const struct mig *g, const struct fct *cx, char *why, size_t cap)
{
	struct dlist l = {};
	int n = migr_doubt_list(X.state, dl_add, &l);

	snprintf(why, cap, "source %d: %s | %d doubt record(s), first %s of MUD %u to %s, CT-x %.12s",
		 g->rs, g->es, n, l.d[0].id, l.d[0].mud_id, l.d[0].peer, l.d[0].ct_x);
	return g->rs == -EINPROGRESS && g->reps.in_doubt && strstr(g->es, "in doubt: ") &&
	       strstr(g->es, "only node-y knows whether it cut over") && cx->st == CT_RUNNING &&
	       n == 1 && !strcmp(l.d[0].id, g->reps.id) && l.d[0].mud_id == g->mud &&
	       !strcmp(l.d[0].peer, "node-y") && !strcmp(l.d[0].ct_x, cx->id);
}

/* The channel is cut right after ES-y's cut-over, before "done": committed. */
static void doubt_committed(uint32_t mud)
{
	struct mig g = { .mud = mud, .method = METHOD_P, .image = BASE, .cut_after_cutover = true };
	struct mig g2 = { .mud = mud };
	struct migr_report rep;
	struct peer_conn *pc = NULL;
	char why[1400];
	struct fct *cx, *cy;
	json_t *ans = NULL, *begin;
	pthread_t td;
	bool ok;
	int r;

	engines_reset();
	cx = ct_x(mud, BASE);
	migrate(&g);
	ok = doubt_ok(&g, cx, why, sizeof(why)) && !g.rd && g.cutovers == 1 && g.rollbacks == 0;
	tap_ok(ok, "cut after ES-y's cut-over, before done: ES-x in doubt (not failed), CT-x kept, "
	       "its record names the id, MUD, ES-y and CT-x; dest %d: %s; %s", g.rd, g.ed, why);

	r = ask(g.reps.id, &rep, why, sizeof(why));
	ok = r == MO_COMMITTED && !strcmp(rep.ct_y_id, g.repd.ct_y_id) &&
	     !strcmp(rep.ct_y_name, g.repd.ct_y_name) && !strcmp(rep.ct_y_image, g.repd.ct_y_image) &&
	     rep.ct_y_addr.s_addr == svc_ip.s_addr && rep.replayed == 7 && rep.relayed == 3 &&
	     rep.step[MS_T5_RESTORE].ms == g.repd.step[MS_T5_RESTORE].ms &&
	     !strcmp(rep.restore_via, g.repd.restore_via);
	tap_ok(ok, "ES-y answers the outcome query: %s (%d): CT-y %.12s %s at %s from %s, "
	       "%llu replayed", migr_outcome_name(r), r, rep.ct_y_id, rep.ct_y_name,
	       inet_ntoa(rep.ct_y_addr), rep.ct_y_image, (unsigned long long)rep.replayed);
	tap_diag("%s", why);

	/* A new agent on each side: ES-y's record stands and CT-y with it; ES-x's doubt too. */
	recover(&Y);
	recover(&X);
	r = ask(g.reps.id, &rep, why, sizeof(why));
	pthread_mutex_lock(&Y.mu);
	cy = ct_find(&Y, g.repd.ct_y_id);
	ok = r == MO_COMMITTED && !strcmp(rep.ct_y_id, g.repd.ct_y_id) && cy &&
	     cy->st == CT_RUNNING && migr_doubt_list(X.state, NULL, NULL) == 1;
	pthread_mutex_unlock(&Y.mu);
	tap_ok(ok, "after a restart of both agents (migr_recover): still %s, CT-y running, ES-x's "
	       "doubt record kept (%s)", migr_outcome_name(r), why);

	/* The id is spent: a migr_begin that reuses it is refused. */
	begin = json_pack("{s:s, s:i, s:s, s:i, s:s, s:[], s:s}", "op", "migr_begin",
			  "mud_id", (int)mud, "from", "node-x", "method", METHOD_P, "image", BASE,
			  "cmd", "checkpoint", g.reps.id);
	pthread_create(&td, NULL, dst_main, &g2);
	if (!dial_y(&pc) && !peer_send_msg(pc, begin))
		peer_recv_msg(pc, &ans);
	peer_close(pc);
	pthread_join(td, NULL);
	json_decref(begin);
	ok = ans && !strcmp(json_string_value(json_object_get(ans, "op")) ?: "", "failed") &&
	     strstr(json_string_value(json_object_get(ans, "reason")) ?: "", "was used before") &&
	     g2.rd == -EEXIST && ask(g.reps.id, &rep, why, sizeof(why)) == MO_COMMITTED;
	tap_ok(ok, "a migr_begin reusing the id is refused (%s: %s), the record stays committed",
	       json_string_value(json_object_get(ans, "op")) ?: "nothing",
	       json_string_value(json_object_get(ans, "reason")) ?: "");
	json_decref(ans);

	r = migr_doubt_clear(X.state, g.reps.id);
	ok = !r && migr_doubt_list(X.state, NULL, NULL) == 0 &&
	     migr_doubt_clear(X.state, g.reps.id) == -ENOENT &&
	     migr_doubt_clear(X.state, "../x") == -EINVAL;
	tap_ok(ok, "ES-x clears its doubt record once it knows (%d); twice: -ENOENT; a bad id: "
	       "-EINVAL", r);
}

/* FAULT = done: ES-y commits and closes without "done", as the agent's test hook. */
static void doubt_fault_done(uint32_t mud)
{
	struct mig g = { .mud = mud, .method = METHOD_P, .image = BASE, .fault = "done" };
	struct migr_report rep;
	char why[1400], w2[600];
	struct fct *cx;
	bool ok;
	int r;

	engines_reset();
	cx = ct_x(mud, BASE);
	migrate(&g);
	ok = doubt_ok(&g, cx, why, sizeof(why)) && !g.rd && g.cutovers == 1 && g.rollbacks == 0;
	r = ask(g.reps.id, &rep, w2, sizeof(w2));
	ok = ok && r == MO_COMMITTED && !strcmp(rep.ct_y_id, g.repd.ct_y_id);
	tap_ok(ok, "FAULT = done: ES-y commits and drops \"done\": ES-x in doubt, then told %s; %s",
	       migr_outcome_name(r), why);
	migr_doubt_clear(X.state, g.reps.id);
}

/* The channel is cut during T5, before the cut-over; ES-y's restore fails: failed. */
static void doubt_failed(uint32_t mud)
{
	struct mig g = { .mud = mud, .method = METHOD_P, .image = BASE };
	struct migr_report rep;
	char why[1400], msg[160];
	struct fct *cx;
	bool ok;
	int r;

	engines_reset();
	cx = ct_x(mud, BASE);
	snprintf(msg, sizeof(msg), "fake node-y: start refused (MUD %u)", mud);
	pthread_mutex_lock(&Y.mu);
	snprintf(Y.cut_op, sizeof(Y.cut_op), "start");
	snprintf(Y.f_op, sizeof(Y.f_op), "start");
	Y.f_status = "500 Internal Server Error";
	snprintf(Y.f_msg, sizeof(Y.f_msg), "%s", msg);
	pthread_mutex_unlock(&Y.mu);
	migrate(&g);
	ok = doubt_ok(&g, cx, why, sizeof(why)) && g.rd < 0 && g.cutovers == 0 && g.rollbacks == 1;
	tap_ok(ok, "cut during T5, ES-y then rolls back: ES-x in doubt, CT-x kept; dest %d: %s; %s",
	       g.rd, g.ed, why);
	r = ask(g.reps.id, &rep, why, sizeof(why));
	ok = r == MO_FAILED && strstr(why, msg) && !rep.ct_y_id[0];
	tap_ok(ok, "ES-y answers the outcome query: %s (%s)", migr_outcome_name(r), why);
	migr_doubt_clear(X.state, g.reps.id);
	ok = !leftovers(mud, why, sizeof(why));
	tap_ok(ok, "then nothing is left on either side but CT-x, running%s", why);
}

static void write_text(const char *path, const char *text)
{
	write_file(path, text, strlen(text));
}

/* Queries ES-y answers with an error or "unknown", and what a restart makes of records. */
static void doubt_queries(void)
{
	static const char *const bad[] = { "", "../x", ".hidden", "a/b", "eh-1 2",
		"0123456789012345678901234567890123456789012345678901234567890123" };
	struct migr_report rep;
	char p[700], why[600];
	json_t *ans;
	bool ok = true;
	int r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ans = raw_query(json_pack("{s:s, s:s}", "op", "outcome", "id", bad[i]));
		ok = ok && ans && !strcmp(json_string_value(json_object_get(ans, "op")) ?: "", "error") &&
		     strstr(json_string_value(json_object_get(ans, "reason")) ?: "",
			    "malformed outcome query: \"id\" must be a migration id");
		json_decref(ans);
	}
	ans = raw_query(json_pack("{s:s, s:i}", "op", "outcome", "id", 7));
	ok = ok && ans && !strcmp(json_string_value(json_object_get(ans, "op")) ?: "", "error");
	json_decref(ans);
	ans = raw_query(json_pack("{s:s}", "op", "outcome"));
	ok = ok && ans && !strcmp(json_string_value(json_object_get(ans, "op")) ?: "", "error");
	tap_ok(ok, "outcome queries without an id, with a number, an empty, too long, or path-like "
	       "id: an error naming what an id is (%s)",
	       json_string_value(json_object_get(ans, "reason")) ?: "no answer");
	json_decref(ans);

	r = ask("eh-1-2-never", &rep, why, sizeof(why));
	tap_ok(r == MO_UNKNOWN && strstr(why, "holds no record of migration eh-1-2-never"),
	       "an id ES-y never saw: unknown (%s)", why);

	/* A record of a migration from another node is not told to this one. */
	snprintf(p, sizeof(p), "%s/" MIGR_OUTCOME_DIR "/eh-1-2-other.json", Y.state);
	write_text(p, "{\"id\":\"eh-1-2-other\",\"outcome\":\"committed\",\"mud_id\":1,"
		   "\"from\":\"node-z\",\"at\":1}");
	r = ask("eh-1-2-other", &rep, why, sizeof(why));
	ok = r == -EREMOTEIO && strstr(why, "came from node-z, not from node-x");
	/* An unreadable record is said so, not taken for "unknown". */
	snprintf(p, sizeof(p), "%s/" MIGR_OUTCOME_DIR "/eh-1-2-junk.json", Y.state);
	write_text(p, "{\"id\":\"eh-1-2-junk\",\"outcome\":\"maybe\"}");
	r = ask("eh-1-2-junk", &rep, why, sizeof(why));
	ok = ok && r == -EREMOTEIO && strstr(why, "outcome record of migration eh-1-2-junk is unreadable");
	tap_ok(ok, "another node's record: refused; a garbled record: an error, not unknown (%s)",
	       why);

	/*
	 * ES-y's agent died mid-migration: its restart removes CT-y (marker) and
	 * records failed, as it does for a record still "running".
	 */
	snprintf(p, sizeof(p), "%s/" MIGR_OUTCOME_DIR "/eh-1-2-run.json", Y.state);
	write_text(p, "{\"id\":\"eh-1-2-run\",\"outcome\":\"running\",\"mud_id\":1,"
		   "\"from\":\"node-x\",\"at\":1}");
	r = ask("eh-1-2-run", &rep, why, sizeof(why));
	ok = r == MO_RUNNING;
	recover(&Y);
	r = ask("eh-1-2-run", &rep, why, sizeof(why));
	ok = ok && r == MO_FAILED && strstr(why, "restarted before the migration was decided");
	tap_ok(ok, "a record still running: running; after ES-y's restart: failed (%s)", why);

	/*
	 * ES-x's agent died after "restore" went out: its restart keeps CT-x and
	 * the migration in doubt; one that died before: undone as ever.
	 */
	snprintf(p, sizeof(p), "%s/eh-9-1-sent.out", X.state);
	write_text(p, "cafe\nmud=9\npeer=node-y\nrestore=sent\n");
	snprintf(p, sizeof(p), "%s/eh-9-2-unsent.out", X.state);
	write_text(p, "cafe\nmud=9\npeer=node-y\n");
	r = recover(&X);
	{
		struct dlist l = {};
		int n = migr_doubt_list(X.state, dl_add, &l);

		ok = r == 2 && n == 1 && !strcmp(l.d[0].id, "eh-9-1-sent") && l.d[0].mud_id == 9 &&
		     !strcmp(l.d[0].peer, "node-y") && !strcmp(l.d[0].ct_x, "cafe") &&
		     access(p, F_OK) && errno == ENOENT;
		tap_ok(ok, "ES-x's restart: the marker of a sent restore becomes a doubt record "
		       "(%d found, %d in doubt: %s of MUD %u to %s), the other is undone", r, n,
		       l.d[0].id, l.d[0].mud_id, l.d[0].peer);
	}
	migr_doubt_clear(X.state, "eh-9-1-sent");
}

/* ES-x's agent asks until it knows: not answering, then running, then committed. */
struct asker_t {
	int tries, pauses, notes;
	char note[4][300];
};

static int t_dial(void *ctx, struct peer_conn **pc)
{
	struct asker_t *t = ctx;

	if (t->tries++ < 2)
		return -ECONNREFUSED;
	return dial_y(pc);
}

static int t_pause(void *ctx, int ms)
{
	((struct asker_t *)ctx)->pauses++;
	usleep(ms * 100);	/* a tenth: the backoff is checked, not slept */
	return 0;
}

static void t_note(void *ctx, const char *what)
{
	struct asker_t *t = ctx;

	if (t->notes < 4)
		snprintf(t->note[t->notes], sizeof(t->note[0]), "%s", what);
	t->notes++;
}

static int t_refuse(void *ctx, struct peer_conn **pc)
{
	(void)pc;
	((struct asker_t *)ctx)->tries++;
	return -ECONNREFUSED;
}

static void doubt_wait(const char *id, const char *ct_y)
{
	struct asker_t t = {};
	struct migr_asker a = { .peer = "node-y", .dial = t_dial, .pause = t_pause,
				.note = t_note, .ctx = &t, .max_backoff_ms = 400 };
	struct oserver o = { .n = 2, .script = { "running", NULL } };
	struct migr_report rep;
	char why[600];
	double t0;
	bool ok;
	int r;

	/* Refused twice, then "running", then the record. */
	pthread_create(&o.th, NULL, oserver_main, &o);
	r = migr_outcome_wait(&a, id, 10000, &rep, why, sizeof(why));
	pthread_join(o.th, NULL);
	ok = r == MO_COMMITTED && !strcmp(rep.ct_y_id, ct_y) && t.tries == 4 && t.pauses == 3 &&
	     t.notes == 2 && strstr(t.note[0], "node-y does not answer: Connection refused") &&
	     strstr(t.note[1], "is still under way there");
	tap_ok(ok, "ES-x asks until it knows: %d tries, %d pauses, said \"%s\" then \"%s\"; "
	       "then %s", t.tries, t.pauses, t.note[0], t.note[1], migr_outcome_name(r));

	/* Never answered: gives up at the deadline, having said so once. */
	memset(&t, 0, sizeof(t));
	a.dial = t_refuse;
	t0 = eh_mono_ms();
	r = migr_outcome_wait(&a, id, 1000, &rep, why, sizeof(why));
	t0 = eh_mono_ms() - t0;
	ok = r == -ETIMEDOUT && t.notes == 1 && t.tries >= 4 && t0 < 1000 &&
	     strstr(why, "node-y does not answer");
	tap_ok(ok, "ES-y never answers: -ETIMEDOUT within the deadline (%d, %.0f ms, %d tries, "
	       "%d note(s)): %s", r, t0, t.tries, t.notes, why);
}

/* --- setup ------------------------------------------------------------------------ */

static int fake_runc(void)
{
	char p[400], body[2048];
	FILE *f;

	snprintf(p, sizeof(p), "%s/bin", tmp);
	mkdir_p(p);
	snprintf(p, sizeof(p), "%s/bin/runc", tmp);
	f = fopen(p, "w");
	if (!f)
		return -errno;
	fprintf(f,
		 "#!/bin/sh\n"
		 "# fake runc (tests/unit/test_migr.c): checkpoint writes what CRIU would\n"
		 "while [ $# -gt 1 ]; do case $1 in --image-path) i=$2;; --work-path) w=$2;; esac; "
		 "shift; done\n"
		 "if [ -e %s/runc-fail ]; then\n"
		 "  echo 'criu failed: type NOTIFY errno 0 (fake)' >&2; exit 1\n"
		 "fi\n"
		 "[ -n '%s' ] && cp '%s/ckpt-full.stats-dump' \"$w/stats-dump\" && "
		 "cp '%s/ckpt-full.dump.log' \"$w/dump.log\"\n"
		 "yes '%.*s' | head -c %d > \"$i/pages-1.img\"\n"
		 "echo fake > \"$i/inventory.img\"\n",
		 tmp, data_dir, data_dir, data_dir, (int)strlen(CKPT_WORD) - 1, CKPT_WORD, CKPT_PAGES);
	fclose(f);
	chmod(p, 0755);
	snprintf(body, sizeof(body), "%s/bin:%s", tmp, getenv("PATH") ?: "/usr/bin:/bin");
	return setenv("PATH", body, 1) ? -errno : 0;
}

static void peer_log(int prio, const char *msg, void *arg)
{
	(void)prio;
	(void)arg;
	tap_diag("peer: %s", msg);
}

static int setup(void)
{
	static const struct peer_allow ax = { "node-y", NULL }, ay = { "node-x", NULL };
	static const int base[] = { 1, 2 }, solo[] = { 4, 5 }, other[] = { 1, 6 };
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct in_addr xip;
	uint8_t key[32];
	int r;

	if (!realpath("tests/unit/data", data_dir) || access("tests/unit/data/ckpt-full.stats-dump",
							      R_OK)) {
		tap_diag("tests/unit/data not here (run from the top of the tree): no CRIU stats");
		data_dir[0] = '\0';
	}
	inet_pton(AF_INET, "127.0.0.1", &xip);
	r = svc_start();
	if (r)
		return tap_diag("the service's address: %s", strerror(-r)), r;
	r = engine_start(&X, xip) ?: engine_start(&Y, svc_ip);
	if (r)
		return tap_diag("fake dockerd: %s", strerror(-r)), r;
	img_add(&X, BASE, base, 2);
	img_add(&X, SOLO, solo, 2);
	img_add(&X, OTHER, other, 2);
	img_add(&Y, BASE, base, 2);
	r = fake_runc();
	if (r)
		return tap_diag("fake runc: %s", strerror(-r)), r;

	peer_set_log(peer_log, NULL);
	RAND_bytes(key, sizeof(key));
	r = peer_ctx_new(&ctx_x, "node-x", key, sizeof(key), &ax, 1) ?:
	    peer_ctx_new(&ctx_y, "node-y", key, sizeof(key), &ay, 1);
	if (r)
		return tap_diag("peer contexts: %s", strerror(-r)), r;
	lfd_y = peer_listen("127.0.0.1", 0);
	R.lfd = peer_listen("127.0.0.1", 0);
	if (lfd_y < 0 || R.lfd < 0)
		return tap_diag("listen: %s", strerror(-(lfd_y < 0 ? lfd_y : R.lfd))), -EIO;
	getsockname(lfd_y, (struct sockaddr *)&sa, &sl);
	port_y = ntohs(sa.sin_port);
	sl = sizeof(sa);
	getsockname(R.lfd, (struct sockaddr *)&sa, &sl);
	R.port = ntohs(sa.sin_port);
	R.to = port_y;
	return 0;
}

/* Docker's call @o on @e fails (the @k+1-th of them). */
#define DK(w, m, rc, rr, e, o, k) \
	{ .what = w, .method = m, .runc_ckpt = rc, .runc_restore = rr, .side = e, .op = o, .skip = k }
/* Something else fails, with @msg in the source's error. */
#define NOT_DK(w, m, rc, rr, f, s, msg) \
	{ .what = w, .method = m, .runc_ckpt = rc, .runc_restore = rr, .fault = f, .sp = s, .want = msg }

static const struct fcase fcases[] = {
	/* ES-x's dockerd */
	DK("ES-x: inspect CT-x fails", METHOD_P, false, false, &X, "inspect", 0),
	DK("ES-x: pause CT-x fails", METHOD_P, false, false, &X, "pause", 0),
	DK("ES-x: Docker's checkpoint fails", METHOD_P, false, false, &X, "ckpt-create", 0),
	DK("ES-x: unpause after the snapshot fails once", METHOD_P, false, false, &X, "unpause", 0),
	DK("ES-x: commit CT-x fails (C)", METHOD_C, false, false, &X, "commit", 0),
	DK("ES-x: image save fails (C)", METHOD_C, false, false, &X, "save", 0),
	DK("ES-x: pause fails on the runc path", METHOD_P, true, false, &X, "pause", 0),
	NOT_DK("ES-x: runc's checkpoint fails", METHOD_P, true, false, NULL, SP_RUNC_FAIL,
	       "criu failed: type NOTIFY errno 0 (fake)"),
	/* ES-y's dockerd */
	DK("ES-y: the base image's inspect fails (P)", METHOD_P, false, false, &Y, "image-inspect", 0),
	DK("ES-y: create CT-y fails (P)", METHOD_P, false, false, &Y, "create", 0),
	DK("ES-y: inspect of the new CT-y fails (P)", METHOD_P, false, false, &Y, "inspect", 0),
	DK("ES-y: start --checkpoint fails (P)", METHOD_P, false, false, &Y, "start", 0),
	DK("ES-y: the early start fails (P, edgehop-runc)", METHOD_P, true, true, &Y, "start", 0),
	DK("ES-y: inspect of the restored CT-y fails (P)", METHOD_P, false, false, &Y, "inspect", 1),
	DK("ES-y: docker load fails (C)", METHOD_C, false, false, &Y, "load", 0),
	DK("ES-y: create CT-y from the loaded image fails (C)", METHOD_C, false, false, &Y, "create", 0),
	DK("ES-y: start --checkpoint fails (C)", METHOD_C, false, false, &Y, "start", 0),
	DK("ES-y: the early start fails (C, edgehop-runc)", METHOD_C, false, true, &Y, "start", 0),
	/* not Docker */
	NOT_DK("ES-y: the cutover fails", METHOD_P, false, false, NULL, SP_CUTOVER,
	       "replay into CT-y: fake cutover refused"),
	NOT_DK("ES-y: the restored service holds nothing for the MUD", METHOD_P, false, false,
	       NULL, SP_SVC_FORGETS, "answers but holds no state for the MUD"),
	NOT_DK("FAULT = image (C)", METHOD_C, false, false, "image", SP_NONE,
	       "fault injected at image"),
	NOT_DK("FAULT = checkpoint", METHOD_P, false, true, "checkpoint", SP_NONE,
	       "fault injected at checkpoint"),
	NOT_DK("FAULT = layer", METHOD_P, true, true, "layer", SP_NONE, "fault injected at layer"),
	NOT_DK("FAULT = restore", METHOD_P, false, true, "restore", SP_NONE,
	       "fault injected at restore"),
	NOT_DK("FAULT = replay", METHOD_P, false, false, "replay", SP_NONE,
	       "fault injected at replay"),
};

#define NFCASES (int)(sizeof(fcases) / sizeof(fcases[0]))
#define NCUTS 5
#define NCANCELS 2
#define NDOUBT (5 + 1 + 3 + 5)
#define NCOMMIT (1 + 2 + 1 + 4)

/* --- (e) the commit point ---------------------------------------------------------- */

/* ES-y's record says "committed" before the switch, and only from the commit call on. */
static void commit_order(uint32_t mud)
{
	struct mig g = { .mud = mud, .method = METHOD_P, .image = BASE };

	engines_reset();
	ct_x(mud, BASE);
	migrate(&g);
	tap_ok(!g.rs && !g.rd && g.commit_rc == 0 && !strcmp(g.rec_before, "running") &&
	       !strcmp(g.rec_after, "committed") && g.rollbacks == 0,
	       "commit point: ES-y's record says '%s' up to it and '%s' once it returned %d, "
	       "before the switch (source %d, dest %d: %s)", g.rec_before, g.rec_after,
	       g.commit_rc, g.rs, g.rd, g.ed);
}

/* The commit record cannot be written: not committed, rolled back like any failure. */
static void commit_blocked(uint32_t mud)
{
	struct mig g = { .mud = mud, .method = METHOD_P, .image = BASE, .block_commit = true };
	char why[1000], p[800];
	bool ok;

	engines_reset();
	ct_x(mud, BASE);
	migrate(&g);
	ok = g.commit_rc < 0 && g.rd < 0 && strstr(g.ed, "not committed: the outcome record") &&
	     g.rs == -EREMOTEIO && strstr(g.es, "not committed") && !strcmp(g.rec_after, "");
	tap_ok(ok, "commit record not written (%s): ES-y fails with the reason, ES-x told "
	       "(source %d: %s | dest %d: %s)", strerror(-g.commit_rc), g.rs, g.es, g.rd, g.ed);
	ok = !leftovers(mud, why, sizeof(why)) && g.rollbacks == 1 && g.cutovers == 1;
	tap_ok(ok, "commit record not written: rolled back once, CT-x runs, nothing left%s", why);
	snprintf(p, sizeof(p), "%s/" MIGR_OUTCOME_DIR "/%s.json", Y.state, g.reps.id);
	rmdir(p);
}

/* An error past the commit point is reported, never undone. */
static void commit_then_error(uint32_t mud)
{
	struct mig g = { .mud = mud, .method = METHOD_P, .image = BASE,
			 .fail_after_commit = true };
	struct migr_report rep;
	char w[600];
	struct fct *cy;
	bool ok;
	int o;

	engines_reset();
	ct_x(mud, BASE);
	migrate(&g);
	o = ask(g.reps.id, &rep, w, sizeof(w));
	pthread_mutex_lock(&Y.mu);
	cy = ct_find(&Y, g.repd.ct_y_id[0] ? g.repd.ct_y_id : "none");
	ok = !g.rs && !g.rd && g.rollbacks == 0 && cy && cy->st == CT_RUNNING &&
	     o == MO_COMMITTED;
	pthread_mutex_unlock(&Y.mu);
	tap_ok(ok, "an error after the commit point: both sides succeed, no rollback, CT-y runs, "
	       "the record says %s (source %d: %s | dest %d: %s)", migr_outcome_name(o), g.rs,
	       g.es, g.rd, g.ed);
}

struct iblist {
	int n;
	struct migr_inbound ib[8];
	bool cmd_ok[8];
};

static void ib_add(void *ctx, const struct migr_inbound *ib)
{
	struct iblist *l = ctx;

	if (l->n < 8) {
		l->cmd_ok[l->n] = json_is_array(ib->cmd) && json_array_size(ib->cmd) == 2;
		l->ib[l->n] = *ib;
		l->ib[l->n++].cmd = NULL;	/* borrowed for the call only */
	}
}

static const struct migr_inbound *ib_of(const struct iblist *l, uint32_t mud)
{
	for (int i = 0; i < l->n; i++)
		if (l->ib[i].mud_id == mud)
			return &l->ib[i];
	return NULL;
}

static void put_in(const char *id, const char *rec)
{
	char p[800];

	snprintf(p, sizeof(p), "%s/%s.in", Y.state, id);
	write_file(p, "eh-mud-x\n", 9);
	if (rec) {
		snprintf(p, sizeof(p), "%s/" MIGR_OUTCOME_DIR "/%s.json", Y.state, id);
		write_file(p, rec, strlen(rec));
	}
}

/*
 * A crashed ES-y's "<id>.in" markers, decided at the next start: committed
 * (to CT-y, with what the agent needs), running (now failed), failed, no
 * record and a committed record without CT-y's address (left alone).
 */
static void inbound_decide(void)
{
	struct iblist l = {}, l2 = {};
	const struct migr_inbound *a, *b, *c;
	struct migr_report rep;
	char w[600], p[800];
	json_t *q, *ans;
	bool ok;
	int n, n2;

	snprintf(p, sizeof(p), "%s/" MIGR_OUTCOME_DIR, Y.state);
	mkdir(p, 0700);
	put_in("eh-190-1-a", "{\"id\":\"eh-190-1-a\",\"outcome\":\"committed\",\"mud_id\":190,"
	       "\"from\":\"node-x\",\"at\":1,\"ct_id\":\"beef01\",\"ct_addr\":\"172.17.0.9\","
	       "\"ct_image\":\"edgehop-svc:small\",\"cmd\":[\"/edgehop-svc\",\"--quiet\"]}");
	put_in("eh-191-1-b", "{\"id\":\"eh-191-1-b\",\"outcome\":\"running\",\"mud_id\":191,"
	       "\"from\":\"node-x\",\"at\":1}");
	put_in("eh-192-1-c", "{\"id\":\"eh-192-1-c\",\"outcome\":\"failed\",\"mud_id\":192,"
	       "\"from\":\"node-x\",\"at\":1,\"reason\":\"its own\"}");
	put_in("eh-193-1-d", NULL);
	put_in("eh-194-1-e", "{\"id\":\"eh-194-1-e\",\"outcome\":\"committed\",\"mud_id\":194,"
	       "\"from\":\"node-x\",\"at\":1,\"ct_id\":\"beef04\"}");
	n = migr_inbound_decide(Y.state, ib_add, &l, say_diag);
	a = ib_of(&l, 190);
	b = ib_of(&l, 191);
	c = ib_of(&l, 192);
	ok = n == 3 && l.n == 3 && a && b && c && !ib_of(&l, 193) && !ib_of(&l, 194) &&
	     a->committed && !strcmp(a->ct_id, "beef01") &&
	     a->ct_addr.s_addr == inet_addr("172.17.0.9") &&
	     !strcmp(a->ct_image, "edgehop-svc:small") && l.cmd_ok[0] &&
	     !b->committed && !c->committed;
	tap_ok(ok, "a crashed ES-y's migrations in, decided: %d (committed -> CT-y %.12s at %s; "
	       "running and failed -> CT-x; no record and no address: left alone)", n,
	       a ? a->ct_id : "?", a ? inet_ntoa(a->ct_addr) : "?");

	/* "running" was decided failed on disk before the steering acts; ES-x asks and learns it. */
	q = json_pack("{s:s, s:s}", "op", "outcome", "id", "eh-191-1-b");
	ans = migr_outcome_answer(Y.state, q, NULL);
	ok = !strcmp(json_string_value(json_object_get(ans, "outcome")) ?: "", "failed") &&
	     strstr(json_string_value(json_object_get(ans, "reason")) ?: "", "commit point") &&
	     ask("eh-190-1-a", &rep, w, sizeof(w)) == MO_COMMITTED &&
	     rep.ct_y_addr.s_addr == inet_addr("172.17.0.9");
	tap_ok(ok, "the undecided one is recorded failed (%s), the committed one answers "
	       "committed with CT-y's address", json_string_value(json_object_get(ans, "reason")) ?: "no reason");
	json_decref(ans);
	json_decref(q);

	/* Again (Docker was down: markers kept): the same decisions; then recovery keeps them. */
	pthread_mutex_lock(&Y.mu);
	img_add(&Y, MIGR_IMAGE_REPO "mud-190:eh-190-1-a", NULL, 0);
	img_add(&Y, MIGR_IMAGE_REPO "mud-191:eh-191-1-b", NULL, 0);
	pthread_mutex_unlock(&Y.mu);
	n2 = migr_inbound_decide(Y.state, ib_add, &l2, say_diag);
	recover(&Y);
	q = json_pack("{s:s, s:s}", "op", "outcome", "id", "eh-192-1-c");
	ans = migr_outcome_answer(Y.state, q, NULL);
	ok = n2 == 3 && l2.n == 3 && ib_of(&l2, 190) && ib_of(&l2, 190)->committed &&
	     !ib_of(&l2, 191)->committed &&
	     !strcmp(json_string_value(json_object_get(ans, "reason")) ?: "", "its own") &&
	     migr_inbound_decide(Y.state, ib_add, &l2, say_diag) == 0;
	tap_ok(ok, "decided again alike (%d); migr_recover then clears the markers and keeps each "
	       "record's reason", n2);
	json_decref(ans);
	json_decref(q);

	/*
	 * C-Migr's images a crash left: ES-y's loaded one goes with its
	 * uncommitted CT-y, a committed CT-y keeps its own; ES-x's committed
	 * one goes when its ".out" marker is undone (CT-x keeps running).
	 */
	{
		struct fct *cx = ct_x(195, BASE);
		bool gone191, kept190, gone195, cx_runs;

		static const char mk[] = "eh-mud-195\nmud=195\npeer=node-y\n";

		snprintf(p, sizeof(p), "%s/eh-195-1-f.out", X.state);
		write_file(p, mk, strlen(mk));
		pthread_mutex_lock(&X.mu);
		img_add(&X, MIGR_IMAGE_REPO "mud-195:eh-195-1-f", NULL, 0);
		pthread_mutex_unlock(&X.mu);
		recover(&X);
		pthread_mutex_lock(&Y.mu);
		gone191 = !img_find(&Y, MIGR_IMAGE_REPO "mud-191:eh-191-1-b");
		kept190 = img_find(&Y, MIGR_IMAGE_REPO "mud-190:eh-190-1-a") != NULL;
		pthread_mutex_unlock(&Y.mu);
		pthread_mutex_lock(&X.mu);
		gone195 = !img_find(&X, MIGR_IMAGE_REPO "mud-195:eh-195-1-f");
		cx_runs = cx->st == CT_RUNNING;
		pthread_mutex_unlock(&X.mu);
		tap_ok(gone191 && kept190 && gone195 && cx_runs,
		       "C-Migr's images after a crash: ES-y's of an uncommitted migration removed "
		       "(%d), of a committed one kept (%d); ES-x's committed image removed (%d), "
		       "CT-x running (%d)", gone191, kept190, gone195, cx_runs);
	}
}

int main(void)
{
	char dir[] = "/tmp/eh-unit-migr.XXXXXX";
	uint32_t mud = SVC_MUD_FIRST;
	double t0 = eh_mono_ms();
	int err;

	signal(SIGPIPE, SIG_IGN);
	tap_plan(1 + 4 * 3 + 2 + NFCASES * 2 + NCUTS * 2 + NCANCELS * 2 + 2 + NDOUBT + NCOMMIT);
	if (!mkdtemp(dir)) {
		tap_diag("Couldn't create %s: %s", dir, strerror(errno));
		return 1;
	}
	snprintf(tmp, sizeof(tmp), "%s", dir);
	err = setup();
	if (!tap_ok(err == 0, "two fake dockerds, the service at %s:%u, a fake runc, the peer "
		    "channel through a relay", inet_ntoa(svc_ip), SVC_PORT))
		return tap_done();

	/* (a) */
	success("P-Migr, runc checkpoint, edgehop-runc restore", mud++, METHOD_P, BASE, METHOD_P,
		true, true, -1);
	success("C-Migr, Docker's checkpoint and restore", mud++, METHOD_C, SOLO, METHOD_C,
		false, false, 3);
	success("auto, ES-y holds the image: P-Migr", mud++, METHOD_AUTO, BASE, METHOD_P,
		false, false, -1);
	success("auto, ES-y holds one layer: C-Migr of the rest", mud++, METHOD_AUTO, OTHER,
		METHOD_C, true, true, 2);

	/* (b) */
	for (int i = 0; i < NFCASES; i++)
		failure(&fcases[i], mud++);

	/* (c) */
	cut("cut while ES-y creates CT-y", mud++, METHOD_P, &Y, "create", false, false);
	cut("cut during ES-x's checkpoint", mud++, METHOD_P, &X, "ckpt-create", false, false);
	cut("cut halfway through the image stream", mud++, METHOD_C, &X, "save", true, false);
	cut("cut as ES-y loads the image", mud++, METHOD_C, &Y, "load", false, false);
	cut("cut as ES-y restores", mud++, METHOD_P, &Y, "start", false, true);

	/* the agent's cancel (migr_src.cancel), raised during a Docker call of ES-x */
	cancel("cancelled while ES-x inspects CT-x", mud++, "inspect", "before the snapshot");
	cancel("cancelled during ES-x's checkpoint", mud++, "ckpt-create", "between steps");

	/* CT-y's service learns its own name */
	renamed(mud++, false);
	renamed(mud++, true);

	/* (d) in doubt */
	doubt_committed(mud++);
	doubt_fault_done(mud++);
	doubt_failed(mud++);
	doubt_queries();

	/* (e) the commit point */
	commit_order(mud++);
	commit_blocked(mud++);
	commit_then_error(mud++);
	inbound_decide();

	tap_diag("%u migrations in %.1f s", mud - SVC_MUD_FIRST, (eh_mono_ms() - t0) / 1000);
	if (mud > SVC_MUD_FIRST + SVC_MUD_COUNT)
		tap_diag("more MUDs than the fake service knows: raise SVC_MUD_COUNT");
	rm_tree(dir);
	return tap_done();
}
