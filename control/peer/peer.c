// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The agents' peer channel: TCP + TLS 1.3 with an external pre-shared key.
 *
 * The client offers one PSK whose identity is its node name; the server
 * looks the name up in its allowed peers (and checks the address when one is
 * configured) and answers with the same PSK. The PSK itself is derived per
 * (client, server) pair from the cluster key with HKDF, so a client that
 * dialled the wrong node fails the handshake instead of talking to it. The
 * key exchange stays psk_dhe_ke (OpenSSL's default; psk_ke is never
 * enabled): every connection gets fresh ECDHE keys, and a recorded session
 * played back to a server fails at the client's Finished. No certificates,
 * no tickets, no early data.
 *
 * Sockets are non-blocking underneath; every blocking call polls against a
 * deadline, so a silent or slow peer costs at most one timeout.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <zstd.h>

#include "peer.h"
#include "eh_time.h"
#include "peer_wire.h"

#define PSK_LEN			32
#define DEFAULT_TIMEOUT_MS	30000
/* DATA frames are cut at this size: a few TLS records, well under the max. */
#define WS_OUT_CAP		(256 * 1024)
/* Levels <= 19 use at most 2^23; caps what a peer can make our decoder hold. */
#define ZSTD_WLOG_MAX		23
#define ZSTD_LEVEL_MAX		19

static const unsigned char tls13_aes128gcmsha256_id[] = { 0x13, 0x01 };
static const char psk_label[] = "edgehop peer psk v1";

struct allow_ent {
	char name[PEER_NAME_MAX + 1];
	int any_addr;
	struct in_addr addr;
};

struct peer_ctx {
	SSL_CTX *ssl_ctx;
	char self[PEER_NAME_MAX + 1];
	uint8_t key[PEER_KEY_MAX];
	size_t keylen;
	struct allow_ent *allow;
	size_t nallow;
	char cc[PEER_CC_MAX];	/* TCP congestion control, "" = the kernel's */
};

struct peer_conn {
	struct peer_ctx *ctx;
	SSL *ssl;
	int fd;
	int timeout_ms;
	int eof;		/* the TCP stream ended (seen by the BIO) */
	int sock_err;		/* errno of the last failed send/recv */
	int broken;		/* -errno: out of step with the peer; every call fails */
	int wbusy, rbusy;	/* a write / read stream is open */
	struct in_addr addr;	/* the other end (IPv4) */
	char where[64];		/* "ip:port" of the other end, for messages */
	char name[PEER_NAME_MAX + 1];
	char refusal[384];	/* why the PSK callback refused the client */
};

/* --- logging ------------------------------------------------------------------ */

static peer_log_fn log_fn;
static void *log_arg;

void peer_set_log(peer_log_fn fn, void *arg)
{
	log_fn = fn;
	log_arg = arg;
}

__attribute__((format(printf, 2, 3)))
static void plog(int prio, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_fn)
		log_fn(prio, msg, log_arg);
	else
		fprintf(stderr, "edgehop-peer: %s\n", msg);
}

/* The last OpenSSL error of this thread as text, or "no TLS error". */
static const char *tls_err(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();

	if (!e)
		return "no TLS error";
	ERR_error_string_n(e, buf, cap);
	return buf;
}

/* Bytes from the network shown safely: printable ASCII, the rest as \xHH. */
static void shown(const unsigned char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0, i;

	for (i = 0; i < n && o + 5 < cap; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			out[o++] = s[i];
		else
			o += snprintf(out + o, cap - o, "\\x%02x", s[i]);
	}
	if (i < n && o + 4 < cap)
		o += snprintf(out + o, cap - o, "...");
	out[o] = '\0';
}

const char *peer_frame_name(uint32_t type)
{
	switch (type) {
	case PEER_F_MSG: return "MSG";
	case PEER_F_DATA: return "DATA";
	case PEER_F_END: return "END";
	case PEER_F_ABORT: return "ABORT";
	default: return "unknown";
	}
}

int peer_frame_check(uint32_t type, uint32_t len, const char **why)
{
	uint32_t min, max;

	switch (type) {
	case PEER_F_MSG: min = 2; max = PEER_MSG_MAX; break;
	case PEER_F_DATA: min = 1; max = PEER_DATA_MAX; break;
	case PEER_F_END: min = PEER_END_LEN; max = PEER_END_LEN; break;
	case PEER_F_ABORT: min = 0; max = PEER_ABORT_MAX; break;
	default:
		*why = "unknown frame type";
		return -EPROTO;
	}
	if (len > max) {
		*why = "frame longer than its type allows";
		return -EPROTO;
	}
	if (len < min) {
		*why = "frame shorter than its type needs";
		return -EPROTO;
	}
	return 0;
}

/* --- small helpers ---------------------------------------------------------- */

static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left;
	int r;

	for (;;) {
		left = deadline - (int64_t)(eh_mono_ns() / 1000000);
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int name_ok(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		char ch = s[n];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return n >= 1 && n <= PEER_NAME_MAX;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* --- the key ------------------------------------------------------------------ */

/*
 * The key file holds the key in hex (64+ digits, e.g. `openssl rand -hex 32`),
 * optionally followed by whitespace; it must not be readable by group or others.
 */
int peer_key_load(const char *path, uint8_t *key, size_t cap, size_t *len)
{
	char text[2 * PEER_KEY_MAX + 64];
	size_t n = 0, i;
	struct stat st;
	ssize_t r;
	int fd, err = 0;

	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		err = -errno;
		plog(LOG_ERR, "Couldn't open key file %s: %s", path, strerror(errno));
		return err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		plog(LOG_ERR, "Couldn't stat key file %s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		plog(LOG_ERR, "Key file %s is not a regular file", path);
		err = -EINVAL;
		goto cleanup;
	}
	if (st.st_mode & 077) {
		plog(LOG_ERR, "Key file %s is open to group or others (mode %03o); chmod 600 it",
		     path, (unsigned int)(st.st_mode & 0777));
		err = -EPERM;
		goto cleanup;
	}
	while (n < sizeof(text)) {
		r = read(fd, text + n, sizeof(text) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			plog(LOG_ERR, "Couldn't read key file %s: %s", path, strerror(errno));
			goto cleanup;
		}
		if (r == 0)
			break;
		n += r;
	}
	if (n == sizeof(text)) {
		plog(LOG_ERR, "Key file %s is too long (over %d key bytes)", path, PEER_KEY_MAX);
		err = -EFBIG;
		goto cleanup;
	}
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' ||
		     text[n - 1] == ' ' || text[n - 1] == '\t'))
		n--;
	for (i = 0; i < n; i++) {
		if (hexval(text[i]) < 0) {
			plog(LOG_ERR, "Key file %s: not a hex digit at offset %zu (the key is hex text)",
			     path, i);
			err = -EINVAL;
			goto cleanup;
		}
	}
	if (n % 2 || n / 2 < PEER_KEY_MIN) {
		plog(LOG_ERR, "Key file %s holds %zu hex digits; need an even number, at least %d",
		     path, n, 2 * PEER_KEY_MIN);
		err = -EINVAL;
		goto cleanup;
	}
	if (n / 2 > cap) {
		plog(LOG_ERR, "Key in %s is %zu bytes; the buffer holds %zu", path, n / 2, cap);
		err = -ENOSPC;
		goto cleanup;
	}
	for (i = 0; i < n / 2; i++)
		key[i] = hexval(text[2 * i]) << 4 | hexval(text[2 * i + 1]);
	*len = n / 2;
cleanup:
	OPENSSL_cleanse(text, sizeof(text));
	close(fd);
	return err;
}

/* PSK for client -> server: HKDF-SHA256(key, info = label 0 client 0 server). */
static int derive_psk(const struct peer_ctx *c, const char *client, const char *server,
		      uint8_t out[PSK_LEN])
{
	uint8_t info[sizeof(psk_label) + 2 * (PEER_NAME_MAX + 1)];
	size_t n = 0, cl = strlen(client), sl = strlen(server);
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf = NULL;
	OSSL_PARAM p[4];
	int err = -EIO;

	memcpy(info, psk_label, sizeof(psk_label));
	n = sizeof(psk_label);
	memcpy(info + n, client, cl + 1);
	n += cl + 1;
	memcpy(info + n, server, sl + 1);
	n += sl + 1;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (!kctx) {
		plog(LOG_ERR, "Couldn't get OpenSSL's HKDF");
		goto cleanup;
	}
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)c->key, c->keylen);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	p[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, PSK_LEN, p) <= 0) {
		plog(LOG_ERR, "HKDF of the PSK for %s -> %s failed", client, server);
		goto cleanup;
	}
	err = 0;
cleanup:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return err;
}

static SSL_SESSION *psk_session(SSL *ssl, const uint8_t psk[PSK_LEN])
{
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, tls13_aes128gcmsha256_id);
	SSL_SESSION *s;

	if (!cipher)
		return NULL;
	s = SSL_SESSION_new();
	if (!s)
		return NULL;
	if (!SSL_SESSION_set1_master_key(s, psk, PSK_LEN) ||
	    !SSL_SESSION_set_cipher(s, cipher) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		SSL_SESSION_free(s);
		return NULL;
	}
	return s;
}

/* --- OpenSSL glue: a socket BIO that never raises SIGPIPE ---------------------- */

static BIO_METHOD *sock_meth;
static int conn_idx = -1;
static pthread_once_t glue_once = PTHREAD_ONCE_INIT;

static int sbio_write(BIO *b, const char *buf, size_t len, size_t *done)
{
	struct peer_conn *pc = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = send(pc->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_write(b);
		else
			pc->sock_err = errno;
		return 0;
	}
	*done = n;
	return 1;
}

static int sbio_read(BIO *b, char *buf, size_t len, size_t *done)
{
	struct peer_conn *pc = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = recv(pc->fd, buf, len, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_read(b);
		else
			pc->sock_err = errno;
		return 0;
	}
	if (n == 0) {
		pc->eof = 1;
		return 0;
	}
	*done = n;
	return 1;
}

static long sbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct peer_conn *pc = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return pc ? pc->eof : 0;
	default:
		return 0;
	}
}

static int sbio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void glue_init(void)
{
	sock_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "edgehop peer socket");
	if (sock_meth) {
		BIO_meth_set_write_ex(sock_meth, sbio_write);
		BIO_meth_set_read_ex(sock_meth, sbio_read);
		BIO_meth_set_ctrl(sock_meth, sbio_ctrl);
		BIO_meth_set_create(sock_meth, sbio_create);
	}
	conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* --- PSK callbacks ------------------------------------------------------------ */

static int psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		      SSL_SESSION **sess)
{
	struct peer_conn *pc = SSL_get_ex_data(ssl, conn_idx);
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, tls13_aes128gcmsha256_id);
	uint8_t psk[PSK_LEN];

	*sess = NULL;
	if (!pc || !cipher)
		return 0;
	if (md && md != SSL_CIPHER_get_handshake_digest(cipher))
		return 0;
	if (derive_psk(pc->ctx, pc->ctx->self, pc->name, psk))
		return 0;
	*sess = psk_session(ssl, psk);
	OPENSSL_cleanse(psk, sizeof(psk));
	if (!*sess)
		return 0;
	*id = (const unsigned char *)pc->ctx->self;
	*idlen = strlen(pc->ctx->self);
	return 1;
}

static int psk_find_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	struct peer_conn *pc = SSL_get_ex_data(ssl, conn_idx);
	const struct allow_ent *ent = NULL;
	char ids[3 * PEER_NAME_MAX], want[INET_ADDRSTRLEN];
	uint8_t psk[PSK_LEN];
	size_t i;

	*sess = NULL;
	if (!pc)
		return 0;
	shown(id, idlen > PEER_NAME_MAX ? PEER_NAME_MAX + 1 : idlen, ids, sizeof(ids));
	for (i = 0; i < pc->ctx->nallow; i++) {
		const struct allow_ent *a = &pc->ctx->allow[i];

		if (strlen(a->name) == idlen && !memcmp(a->name, id, idlen)) {
			ent = a;
			break;
		}
	}
	if (!ent) {
		snprintf(pc->refusal, sizeof(pc->refusal),
			 "peer '%s' from %s: not in the allowed peer list", ids, pc->where);
	} else if (!ent->any_addr && ent->addr.s_addr != pc->addr.s_addr) {
		inet_ntop(AF_INET, &ent->addr, want, sizeof(want));
		snprintf(pc->refusal, sizeof(pc->refusal),
			 "peer '%s' from %s: allowed only from %s", ids, pc->where, want);
	}
	/*
	 * A refused client gets a random PSK: its binder fails exactly as with a
	 * wrong key, so the alert does not tell which names are configured.
	 */
	if (pc->refusal[0]) {
		if (RAND_bytes(psk, sizeof(psk)) != 1)
			return 0;
	} else if (derive_psk(pc->ctx, ent->name, pc->ctx->self, psk)) {
		return 0;
	}
	*sess = psk_session(ssl, psk);
	OPENSSL_cleanse(psk, sizeof(psk));
	if (!*sess)
		return 0;
	/* Only a candidate until the binder verifies; the handshake decides. */
	if (!pc->refusal[0])
		snprintf(pc->name, sizeof(pc->name), "%s", ent->name);
	return 1;
}

/* --- context ------------------------------------------------------------------- */

int peer_ctx_new(struct peer_ctx **out, const char *self_name, const uint8_t *key, size_t keylen,
		 const struct peer_allow *allow, size_t nallow)
{
	struct peer_ctx *c = NULL;
	size_t i, j;
	int err = -EINVAL;

	*out = NULL;
	pthread_once(&glue_once, glue_init);
	if (!sock_meth || conn_idx < 0) {
		plog(LOG_ERR, "Couldn't set up the OpenSSL BIO method");
		return -ENOMEM;
	}
	if (!name_ok(self_name)) {
		plog(LOG_ERR, "Bad node name '%s' (1..%d of [A-Za-z0-9._-])",
		     self_name ? self_name : "(null)", PEER_NAME_MAX);
		return -EINVAL;
	}
	if (!key || keylen < PEER_KEY_MIN || keylen > PEER_KEY_MAX) {
		plog(LOG_ERR, "Peer key of %zu bytes: need %d..%d", keylen, PEER_KEY_MIN, PEER_KEY_MAX);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->allow = calloc(nallow ? nallow : 1, sizeof(*c->allow));
	if (!c->allow) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < nallow; i++) {
		struct allow_ent *a = &c->allow[i];

		if (!name_ok(allow[i].name)) {
			plog(LOG_ERR, "Bad peer name '%s' in the allowed peers",
			     allow[i].name ? allow[i].name : "(null)");
			goto cleanup;
		}
		for (j = 0; j < i; j++) {
			if (!strcmp(c->allow[j].name, allow[i].name)) {
				plog(LOG_ERR, "Peer '%s' is in the allowed peers twice", allow[i].name);
				goto cleanup;
			}
		}
		snprintf(a->name, sizeof(a->name), "%s", allow[i].name);
		a->any_addr = !allow[i].addr;
		if (allow[i].addr && inet_pton(AF_INET, allow[i].addr, &a->addr) != 1) {
			plog(LOG_ERR, "Peer '%s': address '%s' is not a dotted IPv4 address",
			     allow[i].name, allow[i].addr);
			goto cleanup;
		}
	}
	c->nallow = nallow;
	snprintf(c->self, sizeof(c->self), "%s", self_name);
	memcpy(c->key, key, keylen);
	c->keylen = keylen;

	c->ssl_ctx = SSL_CTX_new(TLS_method());
	if (!c->ssl_ctx ||
	    !SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(c->ssl_ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(c->ssl_ctx, "TLS_AES_128_GCM_SHA256") ||
	    !SSL_CTX_set_num_tickets(c->ssl_ctx, 0) ||
	    !SSL_CTX_set_max_early_data(c->ssl_ctx, 0) ||
	    !SSL_CTX_set_recv_max_early_data(c->ssl_ctx, 0)) {
		char e[256];

		plog(LOG_ERR, "Couldn't set up the TLS context: %s", tls_err(e, sizeof(e)));
		err = -ENOMEM;
		goto cleanup;
	}
	/* psk_dhe_ke only: SSL_OP_ALLOW_NO_DHE_KEX is never set. */
	SSL_CTX_set_options(c->ssl_ctx, SSL_OP_NO_TICKET);
	SSL_CTX_clear_options(c->ssl_ctx, SSL_OP_ALLOW_NO_DHE_KEX | SSL_OP_ENABLE_KTLS);
	SSL_CTX_set_session_cache_mode(c->ssl_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(c->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_psk_use_session_callback(c->ssl_ctx, psk_use_cb);
	SSL_CTX_set_psk_find_session_callback(c->ssl_ctx, psk_find_cb);
	*out = c;
	return 0;
cleanup:
	peer_ctx_free(c);
	return err;
}

void peer_ctx_free(struct peer_ctx *c)
{
	if (!c)
		return;
	SSL_CTX_free(c->ssl_ctx);
	OPENSSL_cleanse(c->key, sizeof(c->key));
	free(c->allow);
	free(c);
}

int peer_ctx_set_congestion(struct peer_ctx *c, const char *cc)
{
	int fd, err = 0;

	if (!cc || !*cc) {
		c->cc[0] = '\0';
		return 0;
	}
	if (strlen(cc) >= sizeof(c->cc))
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, strlen(cc)))
		err = -errno;
	close(fd);
	if (err) {
		plog(LOG_ERR, "TCP congestion control '%s': %s", cc, strerror(-err));
		return err;
	}
	snprintf(c->cc, sizeof(c->cc), "%s", cc);
	return 0;
}

/* --- connections --------------------------------------------------------------- */

int peer_listen(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd, one = 1, err;

	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	if (addr && inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		plog(LOG_ERR, "Listen address '%s' is not a dotted IPv4 address", addr);
		return -EINVAL;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		plog(LOG_ERR, "Couldn't create a TCP socket: %s", strerror(errno));
		return err;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		err = -errno;
		plog(LOG_ERR, "Couldn't listen on %s:%u: %s", addr ? addr : "0.0.0.0", port,
		     strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

static void conn_free(struct peer_conn *pc)
{
	if (!pc)
		return;
	SSL_free(pc->ssl);
	if (pc->fd >= 0)
		close(pc->fd);
	free(pc);
}

/* A connection on fd (taken: closed on failure) with its SSL, not yet shaken. */
static int conn_new(struct peer_ctx *c, int fd, struct peer_conn **out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct peer_conn *pc;
	int one = 1, fl;
	BIO *bio;

	*out = NULL;
	pc = calloc(1, sizeof(*pc));
	if (!pc) {
		close(fd);
		return -ENOMEM;
	}
	pc->ctx = c;
	pc->fd = fd;
	pc->timeout_ms = DEFAULT_TIMEOUT_MS;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK)) {
		int err = -errno;

		conn_free(pc);
		return err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Checked by peer_ctx_set_congestion(); a failure here leaves the default. */
	if (c->cc[0] && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, c->cc, strlen(c->cc)))
		plog(LOG_WARNING, "TCP congestion control '%s' not set: %s", c->cc, strerror(errno));
	snprintf(pc->where, sizeof(pc->where), "(unknown address)");
	if (!getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		char a[INET6_ADDRSTRLEN] = "?";

		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			pc->addr = s4->sin_addr;
			inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
			snprintf(pc->where, sizeof(pc->where), "%s:%u", a, ntohs(s4->sin_port));
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
				memcpy(&pc->addr, &s6->sin6_addr.s6_addr[12], 4);
			inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
			snprintf(pc->where, sizeof(pc->where), "[%s]:%u", a, ntohs(s6->sin6_port));
		}
	}
	pc->ssl = SSL_new(c->ssl_ctx);
	bio = pc->ssl ? BIO_new(sock_meth) : NULL;
	if (!bio) {
		conn_free(pc);
		return -ENOMEM;
	}
	BIO_set_data(bio, pc);
	SSL_set_bio(pc->ssl, bio, bio);
	SSL_set_ex_data(pc->ssl, conn_idx, pc);
	*out = pc;
	return 0;
}

/*
 * One TLS call went nowhere (ret from SSL_*): wait for the socket until
 * deadline, or say why it failed. The OpenSSL error queue is left for the
 * caller's message.
 */
static int io_wait(struct peer_conn *pc, int ret, int64_t deadline)
{
	switch (SSL_get_error(pc->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(pc->fd, POLLIN, deadline);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(pc->fd, POLLOUT, deadline);
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	default:
		if (pc->sock_err == EPIPE || pc->sock_err == ECONNRESET || pc->eof)
			return -ECONNRESET;
		if (pc->sock_err)
			return -pc->sock_err;
		return -EPROTO;
	}
}

static int handshake(struct peer_conn *pc, int server, int64_t deadline)
{
	int r, err;

	for (;;) {
		ERR_clear_error();
		r = server ? SSL_accept(pc->ssl) : SSL_connect(pc->ssl);
		if (r == 1)
			return 0;
		err = io_wait(pc, r, deadline);
		if (err)
			return err;
	}
}

static int64_t deadline_of(int timeout_ms)
{
	return (int64_t)(eh_mono_ns() / 1000000) + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
}

int peer_accept_fd(struct peer_ctx *c, int fd, int timeout_ms, struct peer_conn **out)
{
	struct peer_conn *pc = NULL;
	char e[256];
	int err;

	*out = NULL;
	err = conn_new(c, fd, &pc);
	if (err) {
		plog(LOG_ERR, "Couldn't set up a TLS connection: %s", strerror(-err));
		return err;
	}
	SSL_set_accept_state(pc->ssl);
	SSL_set_verify(pc->ssl, SSL_VERIFY_NONE, NULL);
	err = handshake(pc, 1, deadline_of(timeout_ms));
	if (pc->refusal[0]) {
		plog(LOG_WARNING, "Refused %s", pc->refusal);
		err = -EACCES;
		goto cleanup;
	}
	if (err == -EPROTO &&
	    ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_BINDER_DOES_NOT_VERIFY) {
		plog(LOG_WARNING, "Refused peer '%s' from %s: it does not hold our key "
		     "(PSK binder does not verify)", pc->name, pc->where);
		err = -EACCES;
		goto cleanup;
	}
	if (err) {
		if (err == -EPROTO)
			plog(LOG_WARNING, "Refused %s: TLS handshake failed: %s", pc->where,
			     tls_err(e, sizeof(e)));
		else
			plog(LOG_WARNING, "Refused %s: TLS handshake failed: %s", pc->where,
			     strerror(-err));
		goto cleanup;
	}
	/* Belt and braces: the only way through is the PSK, never a fresh full handshake. */
	if (!SSL_session_reused(pc->ssl) || !pc->name[0]) {
		plog(LOG_WARNING, "Refused %s: handshake completed without our PSK", pc->where);
		err = -EACCES;
		goto cleanup;
	}
	*out = pc;
	return 0;
cleanup:
	ERR_clear_error();
	conn_free(pc);
	return err;
}

int peer_accept(struct peer_ctx *c, int lfd, int timeout_ms, struct peer_conn **out)
{
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : (int64_t)(eh_mono_ns() / 1000000) + timeout_ms;
	int fd, err;

	*out = NULL;
	for (;;) {
		err = wait_fd(lfd, POLLIN, deadline);
		if (err)
			return err;
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			continue;
		err = -errno;
		plog(LOG_ERR, "Couldn't accept on fd %d: %s", lfd, strerror(errno));
		return err;
	}
	return peer_accept_fd(c, fd, timeout_ms, out);
}

int peer_connect(struct peer_ctx *c, const char *peer_name, const char *addr, uint16_t port,
		 int timeout_ms, struct peer_conn **out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int64_t deadline = deadline_of(timeout_ms);
	struct peer_conn *pc = NULL;
	socklen_t sl = sizeof(int);
	int fd, err, soerr = 0;
	char e[256];

	*out = NULL;
	if (!name_ok(peer_name)) {
		plog(LOG_ERR, "Bad peer name '%s'", peer_name ? peer_name : "(null)");
		return -EINVAL;
	}
	if (!addr || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		plog(LOG_ERR, "Peer %s: address '%s' is not a dotted IPv4 address", peer_name,
		     addr ? addr : "(null)");
		return -EINVAL;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		plog(LOG_ERR, "Couldn't create a TCP socket: %s", strerror(errno));
		return err;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		err = -errno;
		goto fail_fd;
	}
	err = wait_fd(fd, POLLOUT, deadline);
	if (!err && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
		err = -errno;
	if (!err && soerr)
		err = -soerr;
	if (err)
		goto fail_fd;

	err = conn_new(c, fd, &pc);
	if (err) {
		plog(LOG_ERR, "Couldn't set up a TLS connection to %s at %s:%u: %s", peer_name,
		     addr, port, strerror(-err));
		return err;
	}
	snprintf(pc->name, sizeof(pc->name), "%s", peer_name);
	SSL_set_connect_state(pc->ssl);
	/* No CA: a server that answers with a certificate instead of the PSK fails here. */
	SSL_set_verify(pc->ssl, SSL_VERIFY_PEER, NULL);
	err = handshake(pc, 0, deadline);
	if (err == -EPROTO &&
	    ERR_GET_LIB(ERR_peek_last_error()) == ERR_LIB_SSL &&
	    ERR_GET_REASON(ERR_peek_last_error()) >= SSL_AD_REASON_OFFSET) {
		/* An alert from the server: it refused us (wrong key, unknown name...). */
		plog(LOG_WARNING, "Peer %s at %s:%u refused us: %s", peer_name, addr, port,
		     tls_err(e, sizeof(e)));
		err = -EACCES;
		goto cleanup;
	}
	if (err) {
		plog(LOG_WARNING, "TLS handshake with %s at %s:%u failed: %s", peer_name, addr, port,
		     err == -EPROTO ? tls_err(e, sizeof(e)) : strerror(-err));
		goto cleanup;
	}
	if (!SSL_session_reused(pc->ssl)) {
		plog(LOG_WARNING, "Peer %s at %s:%u did not authenticate with our PSK", peer_name,
		     addr, port);
		err = -EACCES;
		goto cleanup;
	}
	*out = pc;
	return 0;
fail_fd:
	plog(LOG_WARNING, "Couldn't connect to %s at %s:%u: %s", peer_name, addr, port,
	     strerror(-err));
	close(fd);
	return err;
cleanup:
	ERR_clear_error();
	conn_free(pc);
	return err;
}

void peer_close(struct peer_conn *pc)
{
	if (!pc)
		return;
	/* One close_notify, best effort: never wait for the peer's. */
	if (pc->ssl && !pc->broken) {
		ERR_clear_error();
		SSL_shutdown(pc->ssl);
	}
	ERR_clear_error();
	conn_free(pc);
}

const char *peer_name(const struct peer_conn *pc)
{
	return pc->name;
}

void peer_set_timeout(struct peer_conn *pc, int timeout_ms)
{
	pc->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

int peer_conn_fd(const struct peer_conn *pc)
{
	return pc->fd;
}

int peer_conn_group(const struct peer_conn *pc)
{
	return pc->ssl ? SSL_get_negotiated_group(pc->ssl) : 0;
}

/* --- byte I/O with deadlines ---------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int conn_fail(struct peer_conn *pc, int err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	plog(LOG_WARNING, "Peer %s (%s): %s", pc->name, pc->where, msg);
	if (!pc->broken)
		pc->broken = err;
	return err;
}

/* Reads n bytes; *got says how many arrived (a timeout at 0 leaves the stream in step). */
static int conn_read(struct peer_conn *pc, void *buf, size_t n, size_t *got, int64_t deadline)
{
	size_t k;
	int r, err;

	*got = 0;
#ifdef PEER_FUZZ
	if (!pc->ssl) {
		ssize_t m;

		while (*got < n) {
			m = read(pc->fd, (char *)buf + *got, n - *got);
			if (m <= 0)
				return -ECONNRESET;
			*got += m;
		}
		return 0;
	}
#endif
	while (*got < n) {
		ERR_clear_error();
		r = SSL_read_ex(pc->ssl, (char *)buf + *got, n - *got, &k);
		if (r) {
			*got += k;
			continue;
		}
		err = io_wait(pc, r, deadline);
		if (err)
			return err;
	}
	return 0;
}

static int conn_write(struct peer_conn *pc, const void *buf, size_t n, int64_t deadline)
{
	size_t done = 0, k;
	int r, err;

#ifdef PEER_FUZZ
	if (!pc->ssl)
		return 0;
#endif
	while (done < n) {
		ERR_clear_error();
		r = SSL_write_ex(pc->ssl, (const char *)buf + done, n - done, &k);
		if (r) {
			done += k;
			continue;
		}
		err = io_wait(pc, r, deadline);
		if (err)
			return err;
	}
	return 0;
}

static const char *io_why(int err, char *buf, size_t cap)
{
	if (err == -EPROTO)
		return tls_err(buf, cap);
	if (err == -ECONNRESET)
		return "connection closed";
	if (err == -ETIMEDOUT)
		return "timed out";
	return strerror(-err);
}

int peer_send_raw(struct peer_conn *pc, const void *buf, size_t len)
{
	char e[256];
	int err;

	if (pc->broken)
		return pc->broken;
	err = conn_write(pc, buf, len, deadline_of(pc->timeout_ms));
	if (err)
		return conn_fail(pc, err, "sending %zu bytes failed: %s", len, io_why(err, e, sizeof(e)));
	return 0;
}

/* frame: PEER_HDR_LEN bytes of room, then len bytes of payload. */
static int send_frame(struct peer_conn *pc, uint32_t type, uint8_t *frame, uint32_t len)
{
	uint32_t be;
	char e[256];
	int err;

	if (pc->broken)
		return pc->broken;
	be = htobe32(type);
	memcpy(frame, &be, 4);
	be = htobe32(len);
	memcpy(frame + 4, &be, 4);
	err = conn_write(pc, frame, PEER_HDR_LEN + (size_t)len, deadline_of(pc->timeout_ms));
	if (err)
		return conn_fail(pc, err, "sending a frame (%s, %u bytes) failed: %s",
				 peer_frame_name(type), len, io_why(err, e, sizeof(e)));
	return 0;
}

/* Reads and checks a frame header; the frame's deadline starts here. */
static int read_hdr(struct peer_conn *pc, uint32_t *type, uint32_t *len, int64_t *deadline)
{
	uint8_t hdr[PEER_HDR_LEN];
	const char *why;
	uint32_t be;
	size_t got;
	char e[256];
	int err;

	if (pc->broken)
		return pc->broken;
	*deadline = deadline_of(pc->timeout_ms);
	err = conn_read(pc, hdr, sizeof(hdr), &got, *deadline);
	if (err == -ETIMEDOUT && !got)
		return err;	/* nothing came: still in step, the caller may wait again */
	if (err == -ECONNRESET && !got) {
		if (!pc->broken)
			pc->broken = err;
		plog(LOG_INFO, "Peer %s (%s) closed the connection", pc->name, pc->where);
		return err;
	}
	if (err)
		return conn_fail(pc, err, "reading a frame header failed after %zu of %d bytes: %s",
				 got, PEER_HDR_LEN, io_why(err, e, sizeof(e)));
	memcpy(&be, hdr, 4);
	*type = be32toh(be);
	memcpy(&be, hdr + 4, 4);
	*len = be32toh(be);
	if (peer_frame_check(*type, *len, &why))
		return conn_fail(pc, -EPROTO, "%s: type %u (%s), length %u", why, *type,
				 peer_frame_name(*type), *len);
	return 0;
}

static int read_body(struct peer_conn *pc, uint32_t type, void *buf, uint32_t len,
		     int64_t deadline)
{
	size_t got;
	char e[256];
	int err;

	err = conn_read(pc, buf, len, &got, deadline);
	if (err)
		return conn_fail(pc, err, "truncated %s frame: %zu of %u bytes, then %s",
				 peer_frame_name(type), got, len, io_why(err, e, sizeof(e)));
	return 0;
}

/* --- messages ---------------------------------------------------------------------- */

int peer_send_msg(struct peer_conn *pc, json_t *msg)
{
	uint8_t *frame = NULL;
	char *s = NULL;
	size_t n;
	int err;

	if (!json_is_object(msg))
		return -EINVAL;
	if (pc->broken)
		return pc->broken;
	if (pc->wbusy)
		return -EBUSY;
	s = json_dumps(msg, JSON_COMPACT);
	if (!s) {
		plog(LOG_ERR, "Couldn't encode a message for %s as JSON", pc->name);
		return -EINVAL;
	}
	n = strlen(s);
	if (n > PEER_MSG_MAX) {
		plog(LOG_ERR, "Message for %s is %zu bytes; the limit is %d", pc->name, n,
		     PEER_MSG_MAX);
		err = -EMSGSIZE;
		goto cleanup;
	}
	frame = malloc(PEER_HDR_LEN + n);
	if (!frame) {
		err = -ENOMEM;
		goto cleanup;
	}
	memcpy(frame + PEER_HDR_LEN, s, n);
	err = send_frame(pc, PEER_F_MSG, frame, n);
cleanup:
	free(frame);
	free(s);
	return err;
}

int peer_recv_msg(struct peer_conn *pc, json_t **msg)
{
	uint32_t type, len;
	json_error_t jerr;
	int64_t deadline;
	char *buf = NULL;
	json_t *j;
	int err;

	*msg = NULL;
	if (pc->rbusy)
		return -EBUSY;
	err = read_hdr(pc, &type, &len, &deadline);
	if (err)
		return err;
	if (type != PEER_F_MSG)
		return conn_fail(pc, -EPROTO, "expected a MSG frame, got %s (%u bytes)",
				 peer_frame_name(type), len);
	buf = malloc(len);
	if (!buf)
		return conn_fail(pc, -ENOMEM, "no memory for a MSG frame of %u bytes", len);
	err = read_body(pc, type, buf, len, deadline);
	if (err)
		goto cleanup;
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j || !json_is_object(j)) {
		err = conn_fail(pc, -EPROTO, "MSG frame is not a JSON object: %s",
				j ? "another JSON type" : jerr.text);
		json_decref(j);
		goto cleanup;
	}
	*msg = j;
cleanup:
	free(buf);
	return err;
}

/* --- bulk streams: sending ---------------------------------------------------------- */

struct peer_wstream {
	struct peer_conn *pc;
	ZSTD_CCtx *z;
	EVP_MD_CTX *sha;
	uint8_t *frame;		/* header room + WS_OUT_CAP of compressed bytes */
	ZSTD_outBuffer out;
	uint64_t raw, wire, t0;
	int err;
};

static void ws_free(struct peer_wstream *w)
{
	if (!w)
		return;
	if (w->pc)
		w->pc->wbusy = 0;
	ZSTD_freeCCtx(w->z);
	EVP_MD_CTX_free(w->sha);
	free(w->frame);
	free(w);
}

int peer_wstream_begin(struct peer_conn *pc, int zstd_level, struct peer_wstream **out)
{
	struct peer_wstream *w;
	int err = -ENOMEM;

	*out = NULL;
	if (pc->broken)
		return pc->broken;
	if (pc->wbusy)
		return -EBUSY;
	if (zstd_level > ZSTD_LEVEL_MAX)
		zstd_level = ZSTD_LEVEL_MAX;
	if (zstd_level < ZSTD_minCLevel())
		zstd_level = ZSTD_minCLevel();
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->z = ZSTD_createCCtx();
	w->sha = EVP_MD_CTX_new();
	w->frame = malloc(PEER_HDR_LEN + WS_OUT_CAP);
	if (!w->z || !w->sha || !w->frame)
		goto cleanup;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(w->z, ZSTD_c_compressionLevel, zstd_level)) ||
	    !EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL)) {
		plog(LOG_ERR, "Couldn't set up a stream to %s (zstd level %d)", pc->name,
		     zstd_level);
		err = -EINVAL;
		goto cleanup;
	}
	w->out.dst = w->frame + PEER_HDR_LEN;
	w->out.size = WS_OUT_CAP;
	w->t0 = eh_mono_ns();
	w->pc = pc;
	pc->wbusy = 1;
	*out = w;
	return 0;
cleanup:
	ws_free(w);
	return err;
}

static int ws_flush(struct peer_wstream *w)
{
	int err;

	if (!w->out.pos)
		return 0;
	err = send_frame(w->pc, PEER_F_DATA, w->frame, w->out.pos);
	if (err)
		return err;
	w->wire += PEER_HDR_LEN + w->out.pos;
	w->out.pos = 0;
	return 0;
}

/*
 * Compresses @in; full frame buffers are sent as DATA. With ZSTD_e_end, the
 * zstd frame is complete (its tail may still be in the buffer) on return.
 */
static int ws_compress(struct peer_wstream *w, ZSTD_inBuffer *in, ZSTD_EndDirective mode)
{
	size_t left;
	int done;
	int err;

	do {
		left = ZSTD_compressStream2(w->z, &w->out, in, mode);
		if (ZSTD_isError(left)) {
			plog(LOG_ERR, "zstd compression of the stream to %s failed: %s", w->pc->name,
			     ZSTD_getErrorName(left));
			return -EIO;
		}
		/*
		 * Decided before the flush: once ZSTD_e_end returned 0, a
		 * further call would begin a second, empty zstd frame.
		 */
		done = mode == ZSTD_e_end ? left == 0 : in->pos == in->size;
		if (w->out.pos == w->out.size) {
			err = ws_flush(w);
			if (err)
				return err;
		}
	} while (!done);
	return 0;
}

int peer_wstream_write(struct peer_wstream *w, const void *buf, size_t len)
{
	ZSTD_inBuffer in = { buf, len, 0 };

	if (w->err)
		return w->err;
	if (!len)
		return 0;
	if (!EVP_DigestUpdate(w->sha, buf, len))
		return w->err = -EIO;
	w->raw += len;
	w->err = ws_compress(w, &in, ZSTD_e_continue);
	return w->err;
}

int peer_wstream_end(struct peer_wstream *w, struct peer_xfer *st)
{
	uint8_t end[PEER_HDR_LEN + PEER_END_LEN];
	ZSTD_inBuffer in = { NULL, 0, 0 };
	unsigned int mdlen = 0;
	uint64_t be;
	int err;

	err = w->err;
	if (!err)
		err = ws_compress(w, &in, ZSTD_e_end);
	if (!err)
		err = ws_flush(w);
	if (!err) {
		be = htobe64(w->raw);
		memcpy(end + PEER_HDR_LEN, &be, 8);
		if (!EVP_DigestFinal_ex(w->sha, end + PEER_HDR_LEN + 8, &mdlen) || mdlen != 32)
			err = -EIO;
	}
	if (!err)
		err = send_frame(w->pc, PEER_F_END, end, PEER_END_LEN);
	if (!err)
		w->wire += sizeof(end);
	else if (!w->pc->broken) {
		/* Still in step (a local failure): tell the reader rather than leave it waiting. */
		char abort_frame[PEER_HDR_LEN + 64];
		int n = snprintf(abort_frame + PEER_HDR_LEN, 64, "sender failed: %s",
				 strerror(-err));

		send_frame(w->pc, PEER_F_ABORT, (uint8_t *)abort_frame, n < 64 ? n : 63);
	}
	if (st) {
		st->raw_bytes = w->raw;
		st->wire_bytes = w->wire;
		st->ns = eh_mono_ns() - w->t0;
	}
	ws_free(w);
	return err;
}

void peer_wstream_abort(struct peer_wstream *w, const char *why)
{
	uint8_t frame[PEER_HDR_LEN + PEER_ABORT_MAX];
	size_t n = why ? strlen(why) : 0;

	if (!w)
		return;
	if (n > PEER_ABORT_MAX)
		n = PEER_ABORT_MAX;
	if (n)
		memcpy(frame + PEER_HDR_LEN, why, n);
	/* Everything sent so far was whole frames: the connection stays in step. */
	send_frame(w->pc, PEER_F_ABORT, frame, n);
	ws_free(w);
}

/* --- bulk streams: receiving ----------------------------------------------------------- */

struct peer_rstream {
	struct peer_conn *pc;
	ZSTD_DCtx *z;
	EVP_MD_CTX *sha;
	uint8_t *in_buf;	/* as large as the largest DATA frame so far */
	size_t in_cap;
	ZSTD_inBuffer in;
	size_t zret;		/* last ZSTD_decompressStream(): 0 = the zstd frame is complete */
	int more;		/* the decoder may hold output not handed out yet */
	int state;		/* 0 open, 1 at a verified END, -errno failed */
	int aborted;		/* ended by the peer's ABORT: the connection is still in step */
	uint64_t raw, wire, t0, t1;
};

int peer_rstream_begin(struct peer_conn *pc, struct peer_rstream **out)
{
	struct peer_rstream *r;

	*out = NULL;
	if (pc->broken)
		return pc->broken;
	if (pc->rbusy)
		return -EBUSY;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->z = ZSTD_createDCtx();
	r->sha = EVP_MD_CTX_new();
	if (!r->z || !r->sha ||
	    ZSTD_isError(ZSTD_DCtx_setParameter(r->z, ZSTD_d_windowLogMax, ZSTD_WLOG_MAX)) ||
	    !EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL)) {
		ZSTD_freeDCtx(r->z);
		EVP_MD_CTX_free(r->sha);
		free(r);
		return -ENOMEM;
	}
	r->zret = 1;
	r->t0 = eh_mono_ns();
	r->pc = pc;
	pc->rbusy = 1;
	*out = r;
	return 0;
}

__attribute__((format(printf, 3, 4)))
static int rs_fail(struct peer_rstream *r, int err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->aborted)
		plog(LOG_WARNING, "Peer %s (%s): %s", r->pc->name, r->pc->where, msg);
	else
		conn_fail(r->pc, err, "%s", msg);
	r->state = err;
	return err;
}

/* Reads the next frame of the stream: DATA refills the input, END verifies. */
static int rs_next_frame(struct peer_rstream *r)
{
	struct peer_conn *pc = r->pc;
	uint8_t end[PEER_END_LEN], sum[32];
	char reason[3 * PEER_ABORT_MAX + 8];
	unsigned int mdlen = 0;
	uint32_t type, len;
	int64_t deadline;
	uint64_t be;
	int err;

	err = read_hdr(pc, &type, &len, &deadline);
	if (err == -ETIMEDOUT && !pc->broken)
		return rs_fail(r, err, "stream stalled: no frame within %d ms", pc->timeout_ms);
	if (err) {
		r->state = err;
		return err;
	}
	r->wire += PEER_HDR_LEN + len;
	switch (type) {
	case PEER_F_DATA:
		if (len > r->in_cap) {	/* len <= PEER_DATA_MAX: read_hdr checked */
			uint8_t *p = realloc(r->in_buf, len);

			if (!p)
				return rs_fail(r, -ENOMEM, "no memory for a DATA frame of %u bytes", len);
			r->in_buf = p;
			r->in_cap = len;
		}
		r->in.src = r->in_buf;
		err = read_body(pc, type, r->in_buf, len, deadline);
		if (err) {
			r->state = err;
			return err;
		}
		r->in.size = len;
		r->in.pos = 0;
		return 0;
	case PEER_F_END:
		err = read_body(pc, type, end, len, deadline);
		if (err) {
			r->state = err;
			return err;
		}
		memcpy(&be, end, 8);
		if (r->zret != 0 || r->more || r->in.pos < r->in.size)
			return rs_fail(r, -EPROTO, "END before the end of the zstd data");
		if (be64toh(be) != r->raw)
			return rs_fail(r, -EPROTO, "END says %llu bytes, %llu arrived",
				       (unsigned long long)be64toh(be), (unsigned long long)r->raw);
		if (!EVP_DigestFinal_ex(r->sha, sum, &mdlen) || mdlen != 32 ||
		    CRYPTO_memcmp(sum, end + 8, 32))
			return rs_fail(r, -EPROTO, "SHA-256 of the %llu bytes does not match END's",
				       (unsigned long long)r->raw);
		r->state = 1;
		r->t1 = eh_mono_ns();
		return 0;
	case PEER_F_ABORT: {
		uint8_t text[PEER_ABORT_MAX];

		err = read_body(pc, type, text, len, deadline);
		if (err) {
			r->state = err;
			return err;
		}
		shown(text, len, reason, sizeof(reason));
		r->aborted = 1;
		return rs_fail(r, -EPROTO, "stream aborted by the sender after %llu bytes: %s",
			       (unsigned long long)r->raw, len ? reason : "(no reason given)");
	}
	default:
		return rs_fail(r, -EPROTO, "%s frame inside a stream", peer_frame_name(type));
	}
}

ssize_t peer_rstream_read(struct peer_rstream *r, void *buf, size_t cap)
{
	ZSTD_outBuffer out;
	size_t ret, pos0;
	int err;

	if (r->state > 0)
		return 0;
	if (r->state < 0)
		return r->state;
	if (!cap)
		return -EINVAL;
	if (cap > SSIZE_MAX)
		cap = SSIZE_MAX;
	for (;;) {
		if (r->in.pos < r->in.size || r->more) {
			out = (ZSTD_outBuffer){ buf, cap, 0 };
			pos0 = r->in.pos;
			ret = ZSTD_decompressStream(r->z, &out, &r->in);
			if (ZSTD_isError(ret))
				return rs_fail(r, -EPROTO, "bad zstd data after %llu bytes: %s",
					       (unsigned long long)r->raw, ZSTD_getErrorName(ret));
			r->zret = ret;
			/*
			 * A full buffer may leave output in the decoder, unless
			 * ret is 0: the frame is decoded and all of it flushed.
			 * Calling again then would start the next frame's header
			 * on no input, and its size hint would replace the 0.
			 */
			r->more = ret && out.pos == out.size;
			if (out.pos) {
				if (!EVP_DigestUpdate(r->sha, buf, out.pos))
					return rs_fail(r, -EIO, "SHA-256 update failed");
				r->raw += out.pos;
				return out.pos;
			}
			if (r->in.pos == pos0 && r->in.pos < r->in.size)
				return rs_fail(r, -EPROTO, "zstd made no progress on the stream");
			continue;
		}
		err = rs_next_frame(r);
		if (err)
			return err;
		if (r->state > 0)
			return 0;
	}
}

int peer_rstream_end(struct peer_rstream *r, struct peer_xfer *st)
{
	int err = 0;

	if (r->state != 1) {
		err = -EPROTO;
		/* Left mid-stream: frames of it are still on the way. */
		if (r->state == 0 && !r->pc->broken)
			conn_fail(r->pc, -EPROTO, "stream left before its END after %llu bytes",
				  (unsigned long long)r->raw);
	}
	if (st) {
		st->raw_bytes = r->raw;
		st->wire_bytes = r->wire;
		st->ns = (r->t1 ? r->t1 : eh_mono_ns()) - r->t0;
	}
	r->pc->rbusy = 0;
	ZSTD_freeDCtx(r->z);
	EVP_MD_CTX_free(r->sha);
	free(r->in_buf);
	free(r);
	return err;
}

#ifdef PEER_FUZZ
int peer_conn_plain(int fd, struct peer_conn **out)
{
	struct peer_conn *pc = calloc(1, sizeof(*pc));

	*out = NULL;
	if (!pc)
		return -ENOMEM;
	pc->fd = fd;
	pc->timeout_ms = DEFAULT_TIMEOUT_MS;
	snprintf(pc->name, sizeof(pc->name), "fuzz");
	snprintf(pc->where, sizeof(pc->where), "fuzz");
	*out = pc;
	return 0;
}
#endif
