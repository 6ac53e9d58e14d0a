// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* edgehop-agent run --config FILE [-v]: the node agent. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "agentd.h"
#include "config.h"

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *path = "/etc/edgehop/agent.conf";
	struct ag_config c;
	int o, verbose = 0;

	while ((o = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': path = optarg; break;
		case 'v': verbose = 1; break;
		case 'h':
			printf("usage: edgehop-agent run [--config FILE] [--verbose]\n"
			       "  FILE: NAME = value lines (default /etc/edgehop/agent.conf); see docs/agent.md\n");
			return 0;
		default: return 2;
		}
	}
	ag_config_defaults(&c);
	if (ag_config_load(&c, path))
		return 2;
	return agentd_run(&c, verbose) ? 1 : 0;
}
