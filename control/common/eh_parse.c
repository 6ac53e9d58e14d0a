// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "eh_parse.h"

int eh_parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int eh_parse_port(const char *s, uint16_t *port)
{
	uint32_t v;

	if (eh_parse_u32(s, 65535, &v) || !v)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int eh_parse_ipv4_port(const char *s, struct sockaddr_in *sa)
{
	char host[INET_ADDRSTRLEN];
	const char *colon;
	uint16_t port;

	if (!s)
		return -EINVAL;
	colon = strrchr(s, ':');
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	if (eh_parse_port(colon + 1, &port))
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

int eh_cidr_parse(const char *s, struct eh_cidr *c)
{
	char addr[INET_ADDRSTRLEN], *end;
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long bits = 32;
	struct in_addr a;

	if (!alen || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &a) != 1)
		return -EINVAL;
	if (slash) {
		errno = 0;
		bits = strtoul(slash + 1, &end, 10);
		if (errno || *end || end == slash + 1 || bits > 32)
			return -EINVAL;
	}
	c->mask = bits ? ~0u << (32 - bits) : 0;
	c->net = ntohl(a.s_addr) & c->mask;
	return 0;
}

bool eh_cidr_match(const struct eh_cidr *c, int n, struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);

	for (int i = 0; i < n; i++)
		if ((h & c[i].mask) == c[i].net)
			return true;
	return false;
}
