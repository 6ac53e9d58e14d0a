// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <unistd.h>

#include "config.h"
#include "eh_parse.h"
#include "edgehop_kern_user.h"

void ag_config_defaults(struct ag_config *c)
{
	memset(c, 0, sizeof(*c));
	c->agent_port = 7778;
	c->peer_port = 7780;
	c->vip_port = 7777;
	c->migrate = AG_MIGR_P;
	c->load_dataplane = 1;
	c->ring_bytes = EH_RING_DEFAULT;
	snprintf(c->key, sizeof(c->key), "/etc/edgehop/peer.key");
	snprintf(c->image, sizeof(c->image), "edgehop-svc:small");
	snprintf(c->pin, sizeof(c->pin), "/sys/fs/bpf/edgehop");
	snprintf(c->ctl, sizeof(c->ctl), "/run/edgehop-agent.sock");
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/edgehop-agent");
	snprintf(c->docker, sizeof(c->docker), "/var/run/docker.sock");
}

const char *ag_method_name(enum ag_method m)
{
	return m == AG_MIGR_P ? "p" : m == AG_MIGR_C ? "c" : m == AG_MIGR_AUTO ? "auto" : "none";
}

int ag_method_parse(const char *s, enum ag_method *m)
{
	if (!strcmp(s, "p") || !strcmp(s, "P-Migr"))
		*m = AG_MIGR_P;
	else if (!strcmp(s, "c") || !strcmp(s, "C-Migr"))
		*m = AG_MIGR_C;
	else if (!strcmp(s, "auto"))
		*m = AG_MIGR_AUTO;
	else if (!strcmp(s, "none"))
		*m = AG_MIGR_NONE;
	else
		return -EINVAL;
	return 0;
}

int ag_ring_bytes_parse(const char *s, uint32_t *bytes, const char **why)
{
	static char msg[96];
	unsigned long long v;
	long page = sysconf(_SC_PAGESIZE);
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno) {
		*why = "not a number of bytes";
		return -EINVAL;
	}
	if (v & (v - 1)) {
		*why = "not a power of two";
		return -EINVAL;
	}
	if (v < (unsigned long long)page) {
		snprintf(msg, sizeof(msg), "less than the page size (%ld)", page);
		*why = msg;
		return -EINVAL;
	}
	if (v > EH_RING_MAX_BYTES) {
		snprintf(msg, sizeof(msg), "more than the largest replay buffer (%u)", EH_RING_MAX_BYTES);
		*why = msg;
		return -EINVAL;
	}
	*bytes = v;
	return 0;
}

#define SETSTR(dst, v) (snprintf(dst, sizeof(dst), "%s", v) >= (int)sizeof(dst) ? -ENAMETOOLONG : 0)

/* 0, -ENOENT (no such key) or another -errno; *why: what is wrong, if known. */
static int set_key(struct ag_config *c, const char *k, char *v, const char **why)
{
	if (!strcmp(k, "NODE"))
		return SETSTR(c->node, v);
	if (!strcmp(k, "RADIO"))
		return SETSTR(c->radio, v);
	if (!strcmp(k, "WAN"))
		return SETSTR(c->wan, v);
	if (!strcmp(k, "VIP")) {
		struct sockaddr_in sa;

		if (eh_parse_ipv4_port(v, &sa))
			return -EINVAL;
		c->vip = sa.sin_addr;
		c->vip_port = ntohs(sa.sin_port);
		return 0;
	}
	if (!strcmp(k, "AGENT_ADDR"))
		return inet_pton(AF_INET, v, &c->agent_addr) == 1 ? 0 : -EINVAL;
	if (!strcmp(k, "AGENT_PORT"))
		return eh_parse_port(v, &c->agent_port);
	if (!strcmp(k, "PEER_PORT"))
		return eh_parse_port(v, &c->peer_port);
	if (!strcmp(k, "KEY"))
		return SETSTR(c->key, v);
	if (!strcmp(k, "IMAGE"))
		return SETSTR(c->image, v);
	if (!strcmp(k, "SVC_ARGS"))
		return SETSTR(c->svc_args, v);
	if (!strcmp(k, "MIGRATE"))
		return ag_method_parse(v, &c->migrate);
	if (!strcmp(k, "LOGREPO"))
		return SETSTR(c->logrepo, v);
	if (!strcmp(k, "PIN"))
		return SETSTR(c->pin, v);
	if (!strcmp(k, "CTL"))
		return SETSTR(c->ctl, v);
	if (!strcmp(k, "STATE_DIR"))
		return SETSTR(c->state_dir, v);
	if (!strcmp(k, "DOCKER"))
		return SETSTR(c->docker, v);
	if (!strcmp(k, "ATTACH")) {
		if (!strcmp(v, "auto"))
			c->attach = 0;
		else if (!strcmp(v, "xdp"))
			c->attach = 1;
		else if (!strcmp(v, "tc"))
			c->attach = 2;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(k, "CHECKPOINT")) {
		if (strcmp(v, "runc") && strcmp(v, "docker"))
			return -EINVAL;
		c->docker_checkpoint = !strcmp(v, "docker");
		return 0;
	}
	if (!strcmp(k, "RESTORE")) {
		if (!strcmp(v, "auto"))
			c->restore = AG_RESTORE_AUTO;
		else if (!strcmp(v, "runc"))
			c->restore = AG_RESTORE_RUNC;
		else if (!strcmp(v, "docker"))
			c->restore = AG_RESTORE_DOCKER;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(k, "FAULT")) {
		static const char *const steps[] = { "", "image", "checkpoint", "layer", "restore",
						     "replay", "done", "crash-uncommitted",
						     "crash-committed" };

		for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
			if (!strcmp(v, steps[i]))
				return SETSTR(c->fault, v);
		return -EINVAL;
	}
	if (!strcmp(k, "TCP_CONGESTION")) {
		/* a name as the kernel lists them (tcp_available_congestion_control) */
		for (const char *q = v; *q; q++)
			if (!isalnum((unsigned char)*q) && *q != '_' && *q != '-')
				return -EINVAL;
		return SETSTR(c->tcp_cc, v);
	}
	if (!strcmp(k, "RING_BYTES"))
		return ag_ring_bytes_parse(v, &c->ring_bytes, why);
	if (!strcmp(k, "DATAPLANE")) {
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return -EINVAL;
		c->load_dataplane = !strcmp(v, "yes");
		return 0;
	}
	if (!strcmp(k, "PEER")) {
		struct ag_peer_cfg *p;
		char *name, *addr, *agent, *save;

		if (c->npeers >= AG_PEERS_MAX)
			return -E2BIG;
		p = &c->peers[c->npeers];
		name = strtok_r(v, " \t", &save);
		addr = strtok_r(NULL, " \t", &save);
		agent = strtok_r(NULL, " \t", &save);
		if (!name || !addr || strtok_r(NULL, " \t", &save))
			return -EINVAL;
		if (SETSTR(p->name, name) || inet_pton(AF_INET, addr, &p->addr) != 1)
			return -EINVAL;
		if (agent && inet_pton(AF_INET, agent, &p->agent_addr) != 1)
			return -EINVAL;
		c->npeers++;
		return 0;
	}
	return -ENOENT;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int ag_config_load(struct ag_config *c, const char *path)
{
	char line[512], orig[512];
	int lineno = 0, err = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		err = -errno;
		fprintf(stderr, "edgehop-agent: cannot read config %s: %s\n", path, strerror(errno));
		return err;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = trim(line), *eq, *k, *v;
		const char *why = NULL;
		int r;

		lineno++;
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			fprintf(stderr, "%s:%d: expected NAME = value\n", path, lineno);
			err = -EINVAL;
			continue;
		}
		*eq = '\0';
		k = trim(s);
		v = trim(eq + 1);
		if (*v == '"' && strlen(v) >= 2 && v[strlen(v) - 1] == '"') {
			v[strlen(v) - 1] = '\0';
			v++;
		}
		snprintf(orig, sizeof(orig), "%s", v);	/* set_key may cut it up */
		r = set_key(c, k, v, &why);
		if (r == -ENOENT) {
			fprintf(stderr, "%s:%d: unknown key %s\n", path, lineno, k);
			err = -EINVAL;
		} else if (r) {
			fprintf(stderr, "%s:%d: bad value for %s: '%s'%s%s\n", path, lineno, k, orig,
				why ? ": " : "", why ? why : "");
			err = -EINVAL;
		}
	}
	fclose(f);
	if (!err && !c->node[0]) {
		fprintf(stderr, "%s: NODE is required\n", path);
		err = -EINVAL;
	}
	if (!err && c->load_dataplane && (!c->radio[0] || !c->wan[0] || !c->vip.s_addr)) {
		fprintf(stderr, "%s: RADIO, WAN and VIP are required (or DATAPLANE = no)\n", path);
		err = -EINVAL;
	}
	return err;
}

const struct ag_peer_cfg *ag_peer_by_name(const struct ag_config *c, const char *name)
{
	for (int i = 0; i < c->npeers; i++)
		if (!strcmp(c->peers[i].name, name))
			return &c->peers[i];
	return NULL;
}

const struct ag_peer_cfg *ag_peer_by_agent_addr(const struct ag_config *c, struct in_addr a)
{
	for (int i = 0; i < c->npeers; i++)
		if (c->peers[i].agent_addr.s_addr == a.s_addr ||
		    c->peers[i].addr.s_addr == a.s_addr)
			return &c->peers[i];
	return NULL;
}
