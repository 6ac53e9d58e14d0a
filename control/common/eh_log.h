/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * edgehop event log: the client every role links to report events to
 * logrepo, and the record format logrepo stores.
 *
 * A record is one UDP datagram of text, tab-separated:
 *
 *	EHLOG1 <t_ns> <role> <peer> <subject> <event> <arg> <dir> <k=v k=v ...>
 *
 * t_ns is the sender's CLOCK_REALTIME in ns. Fields are printable ASCII
 * without tab, '"' or '\\' (so that neither stored format needs escaping);
 * role, peer, subject, arg and dir also without spaces; empty fields are
 * allowed except role and event. logrepo writes each record twice: as the
 * paper's line (Fig. 5)
 *
 *	2021-09-02-11-44-53-839044 USER AP-1 USER SVCQ 0 (sent)
 *	<time (UTC)>               role peer subject event arg (dir)
 *
 * and as a JSON line with the fields as an object.
 *
 * Sending never blocks: the socket is non-blocking and unconnected, a record
 * that cannot be sent is counted in ->dropped and forgotten.
 */
#ifndef EH_LOG_H
#define EH_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#define EH_LOG_MAGIC	"EHLOG1"
#define EH_LOG_DGRAM_MAX 1024	/* larger datagrams are refused by logrepo */
#define EH_LOG_F_MAX	48	/* role, peer, subject, event, arg, dir */
#define EH_LOG_KV_MAX	768

struct eh_logrec {
	uint64_t t_ns;
	char role[EH_LOG_F_MAX];
	char peer[EH_LOG_F_MAX];
	char subject[EH_LOG_F_MAX];
	char event[EH_LOG_F_MAX];
	char arg[EH_LOG_F_MAX];
	char dir[EH_LOG_F_MAX];
	char kv[EH_LOG_KV_MAX];	/* "k=v k=v", keys [A-Za-z0-9_.-] */
};

struct eh_log {
	int fd;			/* -1: logging disabled */
	struct sockaddr_in dst;
	char role[EH_LOG_F_MAX];
	uint64_t sent;
	uint64_t dropped;	/* would block, unreachable, or invalid */
};

/* @hostport NULL or "" disables logging (every call becomes a no-op). */
int eh_log_open(struct eh_log *l, const char *hostport, const char *role);
/* The role later events carry (a service renamed after its restore). */
int eh_log_set_role(struct eh_log *l, const char *role);
void eh_log_close(struct eh_log *l);

/*
 * Report one event now. Any of @peer, @subject, @arg, @dir, @kvfmt may be
 * NULL. Returns 0, or -errno when the record was dropped (also counted).
 */
__attribute__((format(printf, 7, 8)))
int eh_log_event(struct eh_log *l, const char *peer, const char *subject,
		 const char *event, const char *arg, const char *dir,
		 const char *kvfmt, ...);

/* Record format, shared by the client, the server and the tests. */
int eh_logrec_encode(const struct eh_logrec *r, char *buf, size_t cap);
int eh_logrec_decode(const char *buf, size_t len, struct eh_logrec *r);
int eh_logrec_line(const struct eh_logrec *r, char *buf, size_t cap);
int eh_logrec_json(const struct eh_logrec *r, const char *from, char *buf,
		   size_t cap);
/* Value of @key in r->kv into @val; -ENOENT if absent. */
int eh_logrec_kv_get(const struct eh_logrec *r, const char *key, char *val,
		     size_t cap);
/* "2021-09-02-11-44-53-839044" (UTC) for @t_ns. */
void eh_log_timestamp(uint64_t t_ns, char out[40]);

#endif /* EH_LOG_H */
