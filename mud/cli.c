// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* edgehop-mud's command line: options, APs (--ap), the handoff schedule. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "eh_digest.h"
#include "eh_log.h"
#include "eh_parse.h"
#include "mud.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: edgehop-mud --svc VIP:PORT [--mud-id N] [--count N] [--rate R]\n"
"         [--window W] [--timeout-ms T] [--give-up-ms G] [--start-seq N]\n"
"         [--initial-digest HEX] [--payload-bytes N] [--json FILE]\n"
"         [--logrepo IP:PORT] [--name NAME] [--run ID] [--assoc-timeout-ms T]\n"
"         [--ap NAME=AGENT_IP:PORT[,GW_IP]]... [--handoff SEQ:NAME]... [--quiet]\n"
"  --rate R         requests per second (default 1); 0: as fast as answers come\n"
"  --window W       requests in flight at once (default 1, max %d)\n"
"  --timeout-ms T   retry a request unanswered after T ms (default 1000)\n"
"  --give-up-ms G   count a request lost G ms after its first send (default 30000)\n"
"  --ap ...         an AP: its agent's address and the gateway the route to the\n"
"                   VIP goes through; the first --ap is associated at start\n"
"  --handoff SEQ:AP before sending SEQ, reassociate with AP and move the route\n"
"  --assoc-timeout-ms T  an (re)association fails T ms after its first request\n"
"                   (default 60000; the request is repeated every second): an\n"
"                   agent creates or restores the MUD's container before READY\n"
"  SIGUSR1: send no new request, finish those in flight, report as usual\n"
"  (the run ends early, nothing counts lost for it); SIGTERM/SIGINT: stop now.\n"
"  Exit status 0 only if nothing was lost, nothing mismatched, no handoff failed,\n"
"  no request was answered STALE before it was answered, and every datagram\n"
"  came from VIP:PORT and was an answer to this MUD.\n",
		MAX_WINDOW);
}

static int find_ap(struct mud *m, const char *name)
{
	for (int i = 0; i < m->naps; i++)
		if (!strcmp(m->aps[i].name, name))
			return i;
	return -1;
}

/* NAME=AGENT_IP:PORT[,GW_IP] */
static int parse_ap(struct mud *m, const char *arg)
{
	char tmp[128], *eq, *comma;
	struct ap *ap;

	if (m->naps >= MAX_APS || strlen(arg) >= sizeof(tmp))
		return -EINVAL;
	strcpy(tmp, arg);
	eq = strchr(tmp, '=');
	if (!eq || eq == tmp || eq - tmp >= EH_NAME_LEN)
		return -EINVAL;
	*eq = '\0';
	ap = &m->aps[m->naps];
	memset(ap, 0, sizeof(*ap));
	strcpy(ap->name, tmp);
	comma = strchr(eq + 1, ',');
	if (comma) {
		*comma = '\0';
		if (inet_pton(AF_INET, comma + 1, &ap->gw) != 1)
			return -EINVAL;
		ap->has_gw = true;
	}
	if (eh_parse_ipv4_port(eq + 1, &ap->agent))
		return -EINVAL;
	m->naps++;
	return 0;
}

int mud_parse_args(struct mud *m, int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "svc", required_argument, NULL, 's' },
		{ "mud-id", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'W' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "give-up-ms", required_argument, NULL, 'g' },
		{ "start-seq", required_argument, NULL, 'S' },
		{ "initial-digest", required_argument, NULL, 'D' },
		{ "payload-bytes", required_argument, NULL, 'b' },
		{ "json", required_argument, NULL, 'j' },
		{ "logrepo", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "run", required_argument, NULL, 'R' },
		{ "ap", required_argument, NULL, 'a' },
		{ "handoff", required_argument, NULL, 'H' },
		{ "assoc-timeout-ms", required_argument, NULL, 'A' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *svc = NULL, *logrepo = NULL;
	char *handoffs[MAX_HANDOFFS];
	int c, nh = 0, i;
	uint32_t v;
	char *end;

	m->mud_id = 1;
	m->count = 100;
	m->rate = 1.0;
	m->window = 1;
	m->timeout_ms = 1000;
	m->give_up_ms = 30000;
	m->payload_bytes = 64;
	m->assoc_timeout_ms = 60000;
	m->name = "USER";
	while ((c = getopt_long(argc, argv, "hq", lopts, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 's': svc = optarg; break;
		case 'i': bad = eh_parse_u32(optarg, UINT32_MAX, &m->mud_id); break;
		case 'c': bad = eh_parse_u32(optarg, MAX_COUNT, &m->count); break;
		case 'r':
			m->rate = strtod(optarg, &end);
			bad = *end || end == optarg || !(m->rate >= 0) || m->rate > 1e7;
			break;
		case 'W':
			bad = eh_parse_u32(optarg, MAX_WINDOW, &m->window) || !m->window;
			break;
		case 't':
			bad = eh_parse_u32(optarg, 3600000, &v) || !v;
			m->timeout_ms = v;
			break;
		case 'g':
			bad = eh_parse_u32(optarg, 86400000, &v) || !v;
			m->give_up_ms = v;
			break;
		case 'A':
			bad = eh_parse_u32(optarg, 3600000, &v) || !v;
			m->assoc_timeout_ms = v;
			break;
		case 'S': bad = eh_parse_u32(optarg, UINT32_MAX, &m->start_seq); break;
		case 'D': bad = eh_digest_parse(optarg, m->init_digest); break;
		case 'b':
			bad = eh_parse_u32(optarg, EH_BODY_MAX, &v);
			m->payload_bytes = v;
			break;
		case 'j': m->json_path = optarg; break;
		case 'l': logrepo = optarg; break;
		case 'n': m->name = optarg; break;
		case 'R': m->run = optarg; break;
		case 'a': bad = parse_ap(m, optarg); break;
		case 'H':
			if (nh >= MAX_HANDOFFS)
				bad = 1;
			else
				handoffs[nh++] = optarg;
			break;
		case 'q': m->quiet = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
		if (bad) {
			for (i = 0; lopts[i].name && lopts[i].val != c; i++)
				;
			fprintf(stderr, "edgehop-mud: bad value '%s' for --%s\n",
				optarg, lopts[i].name ? lopts[i].name : "?");
			return -EINVAL;
		}
	}
	if (optind != argc || !svc || eh_parse_ipv4_port(svc, &m->svc)) {
		fprintf(stderr, "edgehop-mud: --svc VIP:PORT is required (IPv4)\n");
		return -EINVAL;
	}
	for (i = 0; i < nh; i++) {
		char *colon = strchr(handoffs[i], ':');
		int ap;

		if (!colon) {
			fprintf(stderr, "edgehop-mud: --handoff wants SEQ:AP, got '%s'\n",
				handoffs[i]);
			return -EINVAL;
		}
		*colon = '\0';
		ap = find_ap(m, colon + 1);
		if (eh_parse_u32(handoffs[i], UINT32_MAX, &m->ho[i].seq) || ap < 0) {
			fprintf(stderr, "edgehop-mud: --handoff %s:%s: bad seq or AP not given with --ap\n",
				handoffs[i], colon + 1);
			return -EINVAL;
		}
		if (i && m->ho[i].seq <= m->ho[i - 1].seq) {
			fprintf(stderr, "edgehop-mud: --handoff seqs must increase\n");
			return -EINVAL;
		}
		m->ho[i].ap = ap;
	}
	m->nho = nh;
	inet_ntop(AF_INET, &m->svc.sin_addr, m->svc_str, sizeof(m->svc_str));
	if (eh_log_open(&m->log, logrepo, m->name)) {
		fprintf(stderr, "edgehop-mud: bad --logrepo '%s' or --name '%s'\n",
			logrepo, m->name);
		return -EINVAL;
	}
	return 0;
}
