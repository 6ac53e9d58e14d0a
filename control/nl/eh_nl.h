/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * rtnetlink through libmnl, for the node agent: netem at an interface's root
 * (the WAN emulation) and IPv4 routes. No tc or ip is run.
 *
 * Every function returns 0 or -errno; on failure err holds what failed, the
 * kernel's own text when it sent one through an extended ack, tc's way:
 * "Error: Specified qdisc kind is unknown." Functions act in the network
 * namespace of the calling thread.
 *
 * The message builders and parsers below the socket functions need no
 * socket, so that a unit test can check the bytes (tests/unit/test_nl.c).
 */
#ifndef EDGEHOP_EH_NL_H
#define EDGEHOP_EH_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <linux/netlink.h>

struct eh_netem {
	uint64_t delay_ns, jitter_ns;
	uint64_t rate_Bps;	/* bytes/s, 0: no rate limit */
	double loss_pct;	/* 0..100, random loss */
	uint32_t limit;		/* packets; 0: derived so it holds rate x delay, min 1000 */
};

/*
 * Replace (create or change in place) the root qdisc of dev with netem set to
 * *ne. The whole state is sent every time: a change keeps nothing of before.
 */
int eh_netem_set(const char *dev, const struct eh_netem *ne, char *err, size_t errlen);
/* *present is false, and *out zeroed, when dev's root qdisc is not netem. */
int eh_netem_get(const char *dev, struct eh_netem *out, bool *present, char *err,
		 size_t errlen);
/* Removes netem from dev's root; no netem there (another root qdisc is left alone) = 0. */
int eh_netem_del(const char *dev, char *err, size_t errlen);

/* dst/prefix via gw (0.0.0.0: none, then dev is needed) [dev], main table. */
int eh_route_replace(struct in_addr dst, int prefix, struct in_addr gw, const char *dev,
		     char *err, size_t errlen);
/* Absent route = 0. */
int eh_route_del(struct in_addr dst, int prefix, char *err, size_t errlen);

/* --- without a socket ------------------------------------------------------ */

/* Room for any request built below (the netem one is at most 132 bytes). */
#define EH_NL_REQ_BYTES 512

/* Packets that hold rate x (delay + jitter) of full-size (1500 B) frames, min 1000. */
#define EH_NETEM_LIMIT_MIN 1000
#define EH_NETEM_FRAME_BYTES 1500
uint32_t eh_netem_limit(const struct eh_netem *ne);

/* Loss as the kernel holds it: a fraction of UINT32_MAX. */
uint32_t eh_netem_loss_u32(double pct);
double eh_netem_loss_pct(uint32_t loss);

/*
 * RTM_NEWQDISC (create|replace, ack) of netem at the root of ifindex, into
 * buf of len bytes (all of it cleared first). NULL if it does not fit;
 * nlmsg_seq is left 0.
 */
struct nlmsghdr *eh_nl_netem_msg(void *buf, size_t len, int ifindex,
				 const struct eh_netem *ne);
/* netem's TCA_OPTIONS payload (struct tc_netem_qopt + TCA_NETEM_*) -> *out. */
int eh_nl_netem_opts_parse(const void *data, size_t len, struct eh_netem *out);
/*
 * One RTM_NEWQDISC message of a dump: 1 when it is netem at the root of
 * ifindex (*out filled), 0 when it is any other qdisc, -EBADMSG if malformed.
 */
int eh_nl_qdisc_parse(const struct nlmsghdr *nlh, int ifindex, struct eh_netem *out);

/* RTM_NEWROUTE (create|replace) or RTM_DELROUTE of an IPv4 route, main table; buf cleared first. */
struct nlmsghdr *eh_nl_route_msg(void *buf, size_t len, uint16_t type, struct in_addr dst,
				 int prefix, struct in_addr gw, int ifindex);

#endif /* EDGEHOP_EH_NL_H */
