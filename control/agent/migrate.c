// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop-agent migrate MUD --to NODE --method c|p|auto [--json] [--ctl PATH]:
 * asks the agent holding MUD's container to migrate it, shows progress (step,
 * bytes, rate, ETA) and ends with the per-step report.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "agent.h"
#include "agentd.h"
#include "eh_parse.h"

static void on_progress(void *ctx, json_t *msg)
{
	json_t *p = json_object_get(msg, "progress");
	int json = *(int *)ctx;
	double eta = json_real_value(json_object_get(p, "eta_s"));

	if (json) {
		json_dumpf(msg, stdout, JSON_COMPACT);
		putchar('\n');
		fflush(stdout);
		return;
	}
	fprintf(stderr, "  %-12s %10.1f MB  %7.2f MB/s", json_string_value(json_object_get(p, "step")),
		json_integer_value(json_object_get(p, "bytes")) / 1e6,
		json_real_value(json_object_get(p, "rate_Bps")) / 1e6);
	if (eta >= 0)
		fprintf(stderr, "  ETA %.1f s", eta);
	fputc('\n', stderr);
}

int cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "method", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "ctl", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *ctl = "/run/edgehop-agent.sock", *to = NULL, *method = "p";
	json_t *req, *ans, *res, *v;
	uint32_t mud;
	size_t i;
	int o, json = 0, rc;

	while ((o = getopt_long(argc, argv, "t:m:jC:h", opts, NULL)) != -1) {
		switch (o) {
		case 't': to = optarg; break;
		case 'm': method = optarg; break;
		case 'j': json = 1; break;
		case 'C': ctl = optarg; break;
		case 'h':
			printf("usage: edgehop-agent migrate MUD --to NODE --method c|p|auto [--json] [--ctl PATH]\n");
			return 0;
		default: return 2;
		}
	}
	if (optind != argc - 1 || !to || (strcmp(method, "c") && strcmp(method, "p") && strcmp(method, "auto"))) {
		fprintf(stderr, "usage: edgehop-agent migrate MUD --to NODE --method c|p|auto [--json]\n");
		return 2;
	}
	if (eh_parse_u32(argv[optind], UINT32_MAX, &mud)) {
		fprintf(stderr, "edgehop-agent migrate: bad MUD id '%s'\n", argv[optind]);
		return 2;
	}
	req = json_pack("{s:s, s:I, s:s, s:s}", "cmd", "migrate", "mud_id", (json_int_t)mud,
			"to", to, "method", method);
	ans = agentd_call(ctl, req, on_progress, &json);
	json_decref(req);
	if (!ans)
		return 1;
	res = json_object_get(ans, "result");
	if (!res) {
		fprintf(stderr, "edgehop-agent migrate: %s\n",
			json_string_value(json_object_get(ans, "error")) ?: "no result");
		json_decref(ans);
		return 1;
	}
	rc = json_object_get(res, "error") ? 1 : 0;
	if (json) {
		json_dumpf(res, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		printf("%s of MUD %u to %s: %s\n", json_string_value(json_object_get(res, "method")),
		       mud, to, rc ? json_string_value(json_object_get(res, "error")) : "done");
		printf("  %-20s %10s %12s %12s\n", "step", "ms", "bytes", "on the wire");
		json_array_foreach(json_object_get(res, "steps"), i, v)
			printf("  %-20s %10.1f %12lld %12lld\n",
			       json_string_value(json_object_get(v, "step")),
			       json_real_value(json_object_get(v, "ms")),
			       json_integer_value(json_object_get(v, "raw_bytes")),
			       json_integer_value(json_object_get(v, "wire_bytes")));
		printf("  pause window %.1f ms, total %.1f ms, %lld requests replayed\n",
		       json_real_value(json_object_get(res, "pause_ms")),
		       json_real_value(json_object_get(res, "total_ms")),
		       json_integer_value(json_object_get(res, "replayed")));
		printf("  before the snapshot: %.1f ms until ES-y was ready",
		       json_real_value(json_object_get(res, "ready_ms")));
		if (json_object_size(json_object_get(res, "t5_marks"))) {
			const char *k;

			printf("; T5's moments (ms from its begin):");
			json_object_foreach(json_object_get(res, "t5_marks"), k, v)
				printf(" %s %.0f", k, json_real_value(v));
		}
		putchar('\n');
	}
	json_decref(ans);
	return rc;
}
