// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The node agent's pure parts: its configuration and the MUD datagrams it reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "assoc_wire.h"
#include "config.h"
#include "edgehop_kern_user.h"
#include "eh_wire.h"
#include "tap.h"

static const char *write_conf(const char *text)
{
	static char path[] = "/tmp/eh-agent-conf.XXXXXX";
	int fd;

	strcpy(path, "/tmp/eh-agent-conf.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	return path;
}

static int load(const char *text, struct ag_config *c)
{
	const char *p = write_conf(text);
	int r;

	ag_config_defaults(c);
	r = ag_config_load(c, p);
	unlink(p);
	return r;
}

static size_t mk(uint8_t *buf, uint8_t type, uint32_t mud, uint32_t blen, size_t body_bytes,
		 const char *name)
{
	struct eh_hdr h;
	struct eh_assoc_body b = { .mud_addr = htonl(0x0a4d1664), .prev_ap_addr = htonl(0x0a4d1501) };

	eh_hdr_init(&h, type, 0, mud, 3, 0x0102030405060708ull, blen);	/* blen may lie */
	memcpy(b.mud_name, name, strlen(name) < sizeof(b.mud_name) ? strlen(name) : sizeof(b.mud_name));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &b, body_bytes < sizeof(b) ? body_bytes : sizeof(b));
	return sizeof(h) + body_bytes;
}

int main(void)
{
	struct ag_config c;
	struct ag_assoc_req q;
	uint8_t buf[256];
	char a[INET_ADDRSTRLEN];
	size_t n;

	tap_plan(33);

	/* Configuration */
	tap_ok(load("# a node\nNODE = node-x\nRADIO = radio0\nWAN = wan0\nVIP = 10.77.100.1:7777\n"
		    "PEER = node-y 10.77.2.12 10.77.22.1\nPEER = node-z 10.77.2.13\n"
		    "MIGRATE = c\nSVC_ARGS = \"--mem-mb 8\"\nFAULT = restore\n", &c) == 0,
	       "a full config loads");
	tap_ok(!strcmp(c.node, "node-x") && c.vip_port == 7777 && c.npeers == 2 &&
	       c.migrate == AG_MIGR_C && !strcmp(c.svc_args, "--mem-mb 8") &&
	       !strcmp(c.fault, "restore"), "its values are kept (quotes stripped)");
	inet_ntop(AF_INET, &c.peers[0].agent_addr, a, sizeof(a));
	tap_ok(!strcmp(a, "10.77.22.1") && c.peers[1].agent_addr.s_addr == 0,
	       "a peer's agent address is optional (%s)", a);
	{
		struct in_addr x;

		inet_pton(AF_INET, "10.77.22.1", &x);
		tap_ok(ag_peer_by_agent_addr(&c, x) == &c.peers[0], "a peer is found by its agent address");
		inet_pton(AF_INET, "10.77.2.13", &x);
		tap_ok(ag_peer_by_agent_addr(&c, x) == &c.peers[1], "...or by its channel address");
		tap_ok(ag_peer_by_name(&c, "node-q") == NULL, "an unknown name is no peer");
	}
	tap_ok(c.agent_port == 7778 && c.peer_port == 7780 && c.load_dataplane,
	       "defaults: agent 7778, peers 7780, dataplane on");
	tap_ok(load("NODE = n\nDATAPLANE = no\nBOGUS = 1\n", &c) == -EINVAL, "an unknown key is refused");
	tap_ok(load("NODE = n\nDATAPLANE = no\nVIP = 10.0.0.1\n", &c) == -EINVAL, "a VIP without port is refused");
	tap_ok(load("NODE = n\nDATAPLANE = no\nPEER = a 1.2.3.4 5.6.7.8 extra\n", &c) == -EINVAL,
	       "a PEER line with too many words is refused");
	tap_ok(load("NODE = n\nDATAPLANE = no\nFAULT = everywhere\n", &c) == -EINVAL,
	       "an unknown fault step is refused");
	{
		/* every step docs/agent.md lists, the longest names included */
		static const char *const steps[] = { "image", "checkpoint", "layer", "restore",
						     "replay", "done", "crash-uncommitted",
						     "crash-committed" };
		char text[128];
		int bad = 0;

		for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
			snprintf(text, sizeof(text), "NODE = n\nDATAPLANE = no\nFAULT = %s\n",
				 steps[i]);
			if (load(text, &c) || strcmp(c.fault, steps[i])) {
				tap_diag("FAULT = %s not read", steps[i]);
				bad++;
			}
		}
		tap_ok(!bad, "every FAULT step is read as written (%d refused)", bad);
	}
	tap_ok(load("RADIO = r\n", &c) == -EINVAL, "NODE is required");
	tap_ok(load("NODE = n\n", &c) == -EINVAL, "with a dataplane, RADIO, WAN and VIP are required");
	tap_ok(load("NODE = n\nDATAPLANE = no\nMIGRATE = z\n", &c) == -EINVAL, "MIGRATE is p, c or none");
	tap_ok(load("NODE = n\nDATAPLANE = no\n", &c) == 0 && c.restore == AG_RESTORE_AUTO &&
	       load("NODE = n\nDATAPLANE = no\nRESTORE = docker\n", &c) == 0 &&
	       c.restore == AG_RESTORE_DOCKER &&
	       load("NODE = n\nDATAPLANE = no\nRESTORE = runc\n", &c) == 0 &&
	       c.restore == AG_RESTORE_RUNC, "RESTORE: auto by default, runc and docker read");
	tap_ok(load("NODE = n\nDATAPLANE = no\nRESTORE = criu\n", &c) == -EINVAL,
	       "RESTORE is auto, runc or docker");
	tap_ok(load("NODE = n\nDATAPLANE = no\nMIGRATE = auto\n", &c) == 0 &&
	       c.migrate == AG_MIGR_AUTO && !strcmp(ag_method_name(c.migrate), "auto"),
	       "MIGRATE = auto read, and named back 'auto' (the IAPP context carries it)");

	tap_ok(load("NODE = n\nDATAPLANE = no\n", &c) == 0 && !c.tcp_cc[0] &&
	       load("NODE = n\nDATAPLANE = no\nTCP_CONGESTION = bbr\n", &c) == 0 &&
	       !strcmp(c.tcp_cc, "bbr") &&
	       load("NODE = n\nDATAPLANE = no\nTCP_CONGESTION = bbr; rm\n", &c) == -EINVAL,
	       "TCP_CONGESTION: the kernel's default unless set; a name read; not a name refused");

	/* RING_BYTES: each MUD's replay buffer, as the dataplane would take it. */
	{
		long page = sysconf(_SC_PAGESIZE);
		const char *why = NULL;
		uint32_t b = 0;
		char text[96];

		tap_ok(load("NODE = n\nDATAPLANE = no\n", &c) == 0 && c.ring_bytes == EH_RING_DEFAULT,
		       "RING_BYTES: the dataplane's default (%u) unless set", EH_RING_DEFAULT);
		tap_ok(load("NODE = n\nDATAPLANE = no\nRING_BYTES = 1048576\n", &c) == 0 &&
		       c.ring_bytes == 1048576, "RING_BYTES = 1048576 read");
		snprintf(text, sizeof(text), "NODE = n\nDATAPLANE = no\nRING_BYTES = %ld\n", page);
		tap_ok(load(text, &c) == 0 && c.ring_bytes == (uint32_t)page,
		       "RING_BYTES: the page size (%ld) is the smallest", page);
		tap_ok(!ag_ring_bytes_parse("1073741824", &b, &why) && b == EH_RING_MAX_BYTES,
		       "RING_BYTES: 1 GiB is the largest");
		tap_ok(load("NODE = n\nDATAPLANE = no\nRING_BYTES = 10000\n", &c) == -EINVAL &&
		       ag_ring_bytes_parse("10000", &b, &why) == -EINVAL &&
		       !strcmp(why, "not a power of two"), "RING_BYTES: 10000 refused: %s", why);
		snprintf(text, sizeof(text), "%ld", page / 2);
		why = "";
		tap_ok(ag_ring_bytes_parse(text, &b, &why) == -EINVAL &&
		       strstr(why, "less than the page size") &&
		       ag_ring_bytes_parse("0", &b, &why) == -EINVAL,
		       "RING_BYTES: below a page refused (%s), 0 too", why);
		why = "";
		tap_ok(ag_ring_bytes_parse("2147483648", &b, &why) == -EINVAL &&
		       strstr(why, "more than the largest") &&
		       ag_ring_bytes_parse("18446744073709551616", &b, &why) == -EINVAL,
		       "RING_BYTES: beyond 1 GiB refused (%s), beyond 64 bits too", why);
		b = 7;
		tap_ok(ag_ring_bytes_parse("16M", &b, &why) == -EINVAL &&
		       !strcmp(why, "not a number of bytes") &&
		       ag_ring_bytes_parse("-4096", &b, &why) == -EINVAL &&
		       ag_ring_bytes_parse("", &b, &why) == -EINVAL &&
		       ag_ring_bytes_parse(" 4096", &b, &why) == -EINVAL && b == 7,
		       "RING_BYTES: '16M', '-4096', '' refused as not a number of bytes; nothing written");
	}

	/* MUD datagrams */
	n = mk(buf, EH_T_REASSOC_REQ, 42, sizeof(struct eh_assoc_body), sizeof(struct eh_assoc_body),
	       "mud\x01\xff-42");
	tap_ok(ag_assoc_parse(buf, n, &q) == 0 && q.reassoc && q.mud_id == 42 && q.seq == 3 &&
	       q.send_ns == 0x0102030405060708ull, "a REASSOC is read (send_ns in host order)");
	inet_ntop(AF_INET, &q.prev_ap, a, sizeof(a));
	tap_ok(!strcmp(a, "10.77.21.1") && !strcmp(q.name, "mud?" "?-42"),
	       "previous AP %s, name made printable '%s'", a, q.name);
	n = mk(buf, EH_T_ASSOC_REQ, 1, sizeof(struct eh_assoc_body) + 10, sizeof(struct eh_assoc_body), "m");
	tap_ok(ag_assoc_parse(buf, n, &q) == -EINVAL, "a length that lies is refused");
	n = mk(buf, EH_T_ASSOC_REQ, 1, 8, 8, "m");
	tap_ok(ag_assoc_parse(buf, n, &q) == -EINVAL, "a body shorter than eh_assoc_body is refused");
	n = mk(buf, EH_T_SVCQ, 1, sizeof(struct eh_assoc_body), sizeof(struct eh_assoc_body), "m");
	tap_ok(ag_assoc_parse(buf, n, &q) == -EINVAL, "another type is refused");
	tap_ok(ag_assoc_parse(buf, 31, &q) == -EINVAL, "a datagram shorter than the header is refused");
	return tap_done();
}
