/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The agents' peer channel: TCP + TLS 1.3, both ends authenticated by a
 * pre-shared key, framed messages (JSON) and bulk streams (zstd) inside.
 * docs/peer.md has the wire format, the refusals and what is not done.
 *
 * Every int function returns 0 (or a count) or -errno. Failures are logged
 * through peer_set_log() with what failed and with what.
 */
#ifndef EDGEHOP_PEER_H
#define EDGEHOP_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

struct peer_ctx;    /* an SSL_CTX + this node's name + key + the allowed peers */
struct peer_conn;   /* one authenticated TLS connection; blocking I/O with timeouts; one thread at a time */
struct peer_allow { const char *name; const char *addr; /* dotted IPv4 or NULL: any */ };
int  peer_key_load(const char *path, uint8_t *key, size_t cap, size_t *len);
int  peer_ctx_new(struct peer_ctx **out, const char *self_name, const uint8_t *key, size_t keylen,
                  const struct peer_allow *allow, size_t nallow);
void peer_ctx_free(struct peer_ctx *c);
int  peer_listen(const char *addr, uint16_t port);   /* listening TCP fd or -errno; addr NULL = any */
int  peer_accept(struct peer_ctx *c, int lfd, int timeout_ms, struct peer_conn **out); /* accept + handshake; refuses (returns -EACCES/-EPROTO..., logs why) a bad peer */
int  peer_connect(struct peer_ctx *c, const char *peer_name, const char *addr, uint16_t port, int timeout_ms, struct peer_conn **out);
void peer_close(struct peer_conn *pc);
const char *peer_name(const struct peer_conn *pc);     /* authenticated peer's name */
void peer_set_timeout(struct peer_conn *pc, int timeout_ms);   /* per read/write; default 30000 */
int  peer_send_msg(struct peer_conn *pc, json_t *msg);          /* borrowed */
int  peer_recv_msg(struct peer_conn *pc, json_t **msg);         /* -EPROTO on a non-MSG frame/garbage, -ECONNRESET on EOF, -ETIMEDOUT */
/* Bulk streams: push to send, pull to receive (fits libcurl's write callback on one side, libarchive/libcurl read callbacks on the other). */
struct peer_wstream; struct peer_rstream;
struct peer_xfer { uint64_t raw_bytes, wire_bytes; uint64_t ns; };
int  peer_wstream_begin(struct peer_conn *pc, int zstd_level, struct peer_wstream **out);
int  peer_wstream_write(struct peer_wstream *w, const void *buf, size_t len);
int  peer_wstream_end(struct peer_wstream *w, struct peer_xfer *st);   /* flushes, sends END, frees */
void peer_wstream_abort(struct peer_wstream *w, const char *why);    /* sends ABORT (best effort), frees */
int  peer_rstream_begin(struct peer_conn *pc, struct peer_rstream **out);
ssize_t peer_rstream_read(struct peer_rstream *r, void *buf, size_t cap); /* 0 at a verified END; -EPROTO on ABORT (reason logged), bad checksum, garbage; -ECONNRESET on a cut */
int  peer_rstream_end(struct peer_rstream *r, struct peer_xfer *st);   /* frees; -EPROTO if not at a verified END */

/* --- additions to the interface above ------------------------------------ */

#define PEER_KEY_MIN	32	/* bytes of key material, at least */
#define PEER_KEY_MAX	256
#define PEER_NAME_MAX	64	/* node names: [A-Za-z0-9._-], 1..64 characters */

/*
 * Where the library's messages go (prio is a syslog LOG_* level). Default,
 * or fn NULL: one line on stderr prefixed "edgehop-peer: ". Set it before
 * starting threads; fn may be called from any thread using the library.
 */
typedef void (*peer_log_fn)(int prio, const char *msg, void *arg);
void peer_set_log(peer_log_fn fn, void *arg);

/*
 * The handshake half of peer_accept() on a connection already accepted (so
 * that an accept loop can hand the handshake to a thread and a slow or
 * hostile client cannot hold the loop up). Takes fd, closed on failure.
 */
int peer_accept_fd(struct peer_ctx *c, int fd, int timeout_ms, struct peer_conn **out);

/*
 * TCP congestion control of this context's connections (setsockopt
 * TCP_CONGESTION on each, both ends: the sender's is what counts), e.g.
 * "bbr": over a rate-limited long link (netem's rate with 100 ms each way)
 * loss-based CUBIC backs off at every queue overflow, BBR paces at the
 * bottleneck's rate (docs/peer.md: no gain measured on the TCG testbed,
 * where the CPU is the bound). NULL or "": the
 * kernel's default. -ENOENT if this kernel has no such algorithm (nothing
 * set); checked here, once, on a throw-away socket.
 */
#define PEER_CC_MAX	16
int peer_ctx_set_congestion(struct peer_ctx *c, const char *cc);

#endif /* EDGEHOP_PEER_H */
