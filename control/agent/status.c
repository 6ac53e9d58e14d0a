// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* edgehop-agent status [--json] [--ctl PATH]: what a running agent holds. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "agent.h"
#include "agentd.h"

#define DEFAULT_CTL "/run/edgehop-agent.sock"

static const char *s(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k)) ?: "";
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "ctl", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *ctl = DEFAULT_CTL;
	json_t *req, *ans, *res, *v;
	size_t i;
	int o, json = 0;

	while ((o = getopt_long(argc, argv, "jC:h", opts, NULL)) != -1) {
		switch (o) {
		case 'j': json = 1; break;
		case 'C': ctl = optarg; break;
		case 'h': printf("usage: edgehop-agent status [--json] [--ctl PATH]\n"); return 0;
		default: return 2;
		}
	}
	req = json_pack("{s:s}", "cmd", "status");
	ans = agentd_call(ctl, req, NULL, NULL);
	json_decref(req);
	if (!ans)
		return 1;
	res = json_object_get(ans, "result");
	if (!res) {
		fprintf(stderr, "edgehop-agent status: %s\n", s(ans, "error"));
		json_decref(ans);
		return 1;
	}
	if (json) {
		json_dumpf(res, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(ans);
		return 0;
	}
	printf("node %s, dataplane %s\n", s(res, "node"),
	       json_is_true(json_object_get(res, "dataplane")) ? "loaded" : "off");
	printf("%-6s %-10s %-5s %-16s %-8s %-16s %-9s %s\n", "MUD", "NAME", "HERE", "ADDR",
	       "CT-NODE", "CT-ADDR", "MIGR", "ERROR");
	json_array_foreach(json_object_get(res, "muds"), i, v)
		printf("%-6lld %-10s %-5s %-16s %-8s %-16s %-9s %s\n",
		       json_integer_value(json_object_get(v, "mud_id")), s(v, "name"),
		       json_is_true(json_object_get(v, "here")) ? "yes" : "no", s(v, "mud_addr"),
		       s(v, "ct_node"), s(v, "ct_addr"), s(v, "migration"), s(v, "error"));
	printf("steering:\n");
	json_array_foreach(json_object_get(res, "steering"), i, v)
		printf("  %-16s %-9s -> %s:%lld mud %lld rx %lld buffered %lld\n", s(v, "mud_addr"),
		       s(v, "mode"), s(v, "backend"),
		       json_integer_value(json_object_get(v, "backend_port")),
		       json_integer_value(json_object_get(v, "mud_id")),
		       json_integer_value(json_object_get(v, "rx")),
		       json_integer_value(json_object_get(v, "buffered")));
	printf("peers:");
	json_array_foreach(json_object_get(res, "peers"), i, v)
		printf(" %s(%s)", s(v, "name"), s(v, "addr"));
	printf("\nstaged files:");
	json_array_foreach(json_object_get(res, "staged"), i, v)
		printf(" %s", json_string_value(v));
	printf("%s\n", json_array_size(json_object_get(res, "staged")) ? "" : " none");
	json_decref(ans);
	return 0;
}
