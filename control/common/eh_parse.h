/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Values from command lines and configuration files: numbers, IPv4:PORT,
 * IPv4 prefixes (CIDR) and matching an address against a list of them.
 * Each returns 0 or -EINVAL and leaves nothing half-parsed to trust.
 */
#ifndef EH_PARSE_H
#define EH_PARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

/* Decimal, the whole string, at most @max. */
int eh_parse_u32(const char *s, uint32_t max, uint32_t *out);

/* A UDP/TCP port: decimal 1..65535. */
int eh_parse_port(const char *s, uint16_t *port);

/* "A.B.C.D:PORT" (numeric IPv4, port 1..65535) -> @sa. */
int eh_parse_ipv4_port(const char *s, struct sockaddr_in *sa);

struct eh_cidr {
	uint32_t net, mask;	/* host byte order */
};

/* "A.B.C.D/N" or "A.B.C.D" (a /32); host bits are cleared. */
int eh_cidr_parse(const char *s, struct eh_cidr *c);

/* Whether @a lies in any of the @n prefixes @c. */
bool eh_cidr_match(const struct eh_cidr *c, int n, struct in_addr a);

#endif /* EH_PARSE_H */
