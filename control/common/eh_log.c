// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "eh_log.h"
#include "eh_parse.h"
#include "eh_time.h"

int eh_log_open(struct eh_log *l, const char *hostport, const char *role)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (!role || !*role || strlen(role) >= EH_LOG_F_MAX)
		return -EINVAL;
	strcpy(l->role, role);
	if (!hostport || !*hostport)
		return 0;
	if (eh_parse_ipv4_port(hostport, &l->dst))
		return -EINVAL;
	l->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	return 0;
}

int eh_log_set_role(struct eh_log *l, const char *role)
{
	if (!role || !*role || strlen(role) >= EH_LOG_F_MAX)
		return -EINVAL;
	strcpy(l->role, role);
	return 0;
}

void eh_log_close(struct eh_log *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

static int copy_field(char *dst, const char *src)
{
	if (!src)
		src = "";
	if (strlen(src) >= EH_LOG_F_MAX)
		return -E2BIG;
	strcpy(dst, src);
	return 0;
}

int eh_log_event(struct eh_log *l, const char *peer, const char *subject,
		 const char *event, const char *arg, const char *dir,
		 const char *kvfmt, ...)
{
	char buf[EH_LOG_DGRAM_MAX];
	struct eh_logrec r;
	va_list ap;
	int n, err;

	if (l->fd < 0)
		return 0;
	memset(&r, 0, sizeof(r));
	r.t_ns = eh_real_ns();
	strcpy(r.role, l->role);
	if ((err = copy_field(r.peer, peer)) || (err = copy_field(r.subject, subject)) ||
	    (err = copy_field(r.event, event)) || (err = copy_field(r.arg, arg)) ||
	    (err = copy_field(r.dir, dir)))
		goto drop;
	if (kvfmt) {
		va_start(ap, kvfmt);
		n = vsnprintf(r.kv, sizeof(r.kv), kvfmt, ap);
		va_end(ap);
		if (n < 0 || (size_t)n >= sizeof(r.kv)) {
			err = -E2BIG;
			goto drop;
		}
	}
	n = eh_logrec_encode(&r, buf, sizeof(buf));
	if (n < 0) {
		err = n;
		goto drop;
	}
	if (sendto(l->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL,
		   (struct sockaddr *)&l->dst, sizeof(l->dst)) != n) {
		err = -errno;
		goto drop;
	}
	l->sent++;
	return 0;
drop:
	l->dropped++;
	return err;
}

/* Printable ASCII, no tab/quote/backslash; no space unless @spaces. */
static int field_ok(const char *s, int spaces)
{
	for (; *s; s++) {
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return 0;
		if (*s == ' ' && !spaces)
			return 0;
	}
	return 1;
}

static int kv_ok(const char *s)
{
	const char *p = s;

	if (!field_ok(s, 1))
		return 0;
	/* every token is key=value with a non-empty key of [A-Za-z0-9_.-] */
	while (*p) {
		const char *tok = p, *eq = NULL;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		tok = p;
		while (*p && *p != ' ') {
			if (*p == '=' && !eq)
				eq = p;
			p++;
		}
		if (!eq || eq == tok)
			return 0;
		for (const char *k = tok; k < eq; k++)
			if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
			      (*k >= '0' && *k <= '9') || *k == '_' || *k == '.' ||
			      *k == '-'))
				return 0;
	}
	return 1;
}

static int rec_ok(const struct eh_logrec *r)
{
	return r->role[0] && r->event[0] && field_ok(r->role, 0) &&
	       field_ok(r->peer, 0) && field_ok(r->subject, 0) &&
	       field_ok(r->event, 1) && field_ok(r->arg, 0) &&
	       field_ok(r->dir, 0) && kv_ok(r->kv);
}

int eh_logrec_encode(const struct eh_logrec *r, char *buf, size_t cap)
{
	int n;

	if (!rec_ok(r))
		return -EINVAL;
	n = snprintf(buf, cap, EH_LOG_MAGIC "\t%llu\t%s\t%s\t%s\t%s\t%s\t%s\t%s",
		     (unsigned long long)r->t_ns, r->role, r->peer, r->subject,
		     r->event, r->arg, r->dir, r->kv);
	if (n < 0 || (size_t)n >= cap || n > EH_LOG_DGRAM_MAX)
		return -E2BIG;
	return n;
}

int eh_logrec_decode(const char *buf, size_t len, struct eh_logrec *r)
{
	char *fields[9], tmp[EH_LOG_DGRAM_MAX + 1], *p, *end;
	size_t flen[9];
	int i;

	if (len > EH_LOG_DGRAM_MAX || memchr(buf, '\0', len))
		return -EINVAL;
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	p = tmp;
	for (i = 0; i < 9; i++) {
		fields[i] = p;
		p = strchr(p, '\t');
		if (i < 8) {
			if (!p)
				return -EINVAL;
			*p++ = '\0';
		} else if (p) {
			return -EINVAL;		/* too many fields */
		}
		flen[i] = strlen(fields[i]);
	}
	if (strcmp(fields[0], EH_LOG_MAGIC))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	errno = 0;
	r->t_ns = strtoull(fields[1], &end, 10);
	if (errno || *end || end == fields[1])
		return -EINVAL;
	for (i = 2; i < 8; i++)
		if (flen[i] >= EH_LOG_F_MAX)
			return -EINVAL;
	if (flen[8] >= EH_LOG_KV_MAX)
		return -EINVAL;
	strcpy(r->role, fields[2]);
	strcpy(r->peer, fields[3]);
	strcpy(r->subject, fields[4]);
	strcpy(r->event, fields[5]);
	strcpy(r->arg, fields[6]);
	strcpy(r->dir, fields[7]);
	strcpy(r->kv, fields[8]);
	return rec_ok(r) ? 0 : -EINVAL;
}

void eh_log_timestamp(uint64_t t_ns, char out[40])
{
	time_t sec = (time_t)(t_ns / 1000000000ull);
	struct tm tm;

	gmtime_r(&sec, &tm);
	snprintf(out, 40, "%04d-%02d-%02d-%02d-%02d-%02d-%06u",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100, (unsigned int)(t_ns % 1000000000ull / 1000));
}

int eh_logrec_line(const struct eh_logrec *r, char *buf, size_t cap)
{
	const char *parts[5] = { r->peer, r->subject, r->event, r->arg, NULL };
	char ts[40];
	size_t off;
	int n, i;

	eh_log_timestamp(r->t_ns, ts);
	n = snprintf(buf, cap, "%s %s", ts, r->role);
	if (n < 0 || (size_t)n >= cap)
		return -E2BIG;
	off = n;
	for (i = 0; parts[i]; i++) {
		if (!parts[i][0])
			continue;
		n = snprintf(buf + off, cap - off, " %s", parts[i]);
		if (n < 0 || (size_t)n >= cap - off)
			return -E2BIG;
		off += n;
	}
	if (r->dir[0]) {
		n = snprintf(buf + off, cap - off, " (%s)", r->dir);
		if (n < 0 || (size_t)n >= cap - off)
			return -E2BIG;
		off += n;
	}
	return (int)off;
}

/* A JSON number as JSON spells it: -?(0|[1-9][0-9]*)(.[0-9]+)? */
static int is_number(const char *v)
{
	if (*v == '-')
		v++;
	if (*v == '0')
		v++;
	else if (*v >= '1' && *v <= '9')
		while (*v >= '0' && *v <= '9')
			v++;
	else
		return 0;
	if (*v == '.') {
		v++;
		if (!(*v >= '0' && *v <= '9'))
			return 0;
		while (*v >= '0' && *v <= '9')
			v++;
	}
	return *v == '\0';
}

int eh_logrec_json(const struct eh_logrec *r, const char *from, char *buf,
		   size_t cap)
{
	char ts[40], tok[EH_LOG_KV_MAX];
	const char *p = r->kv;
	size_t off;
	int n, first = 1;

	eh_log_timestamp(r->t_ns, ts);
	n = snprintf(buf, cap,
		     "{\"t\":\"%s\",\"t_ns\":%llu,\"role\":\"%s\",\"peer\":\"%s\","
		     "\"subject\":\"%s\",\"event\":\"%s\",\"arg\":\"%s\","
		     "\"dir\":\"%s\",\"from\":\"%s\",\"fields\":{",
		     ts, (unsigned long long)r->t_ns, r->role, r->peer,
		     r->subject, r->event, r->arg, r->dir, from ? from : "");
	if (n < 0 || (size_t)n >= cap)
		return -E2BIG;
	off = n;
	while (*p) {
		size_t len;
		char *eq;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		len = strcspn(p, " ");
		memcpy(tok, p, len);
		tok[len] = '\0';
		p += len;
		eq = strchr(tok, '=');
		if (!eq)
			return -EINVAL;
		*eq = '\0';
		n = snprintf(buf + off, cap - off,
			     is_number(eq + 1) ? "%s\"%s\":%s" : "%s\"%s\":\"%s\"",
			     first ? "" : ",", tok, eq + 1);
		if (n < 0 || (size_t)n >= cap - off)
			return -E2BIG;
		off += n;
		first = 0;
	}
	n = snprintf(buf + off, cap - off, "}}");
	if (n < 0 || (size_t)n >= cap - off)
		return -E2BIG;
	return (int)(off + n);
}

int eh_logrec_kv_get(const struct eh_logrec *r, const char *key, char *val,
		     size_t cap)
{
	size_t klen = strlen(key);
	const char *p = r->kv;

	while (*p) {
		size_t len;

		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len > klen && !strncmp(p, key, klen) && p[klen] == '=') {
			if (len - klen - 1 >= cap)
				return -E2BIG;
			memcpy(val, p + klen + 1, len - klen - 1);
			val[len - klen - 1] = '\0';
			return 0;
		}
		p += len;
	}
	return -ENOENT;
}
