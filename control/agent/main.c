// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* edgehop-agent: dispatches to one verb per file. */
#include <stdio.h>
#include <string.h>

#include "agent.h"

static const struct verb {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} verbs[] = {
	{ "run",     cmd_run,     "run --config FILE        the node agent (daemon)" },
	{ "status",  cmd_status,  "status [--json]          ask the running agent for its MUDs, containers, peers" },
	{ "migrate", cmd_migrate, "migrate MUD --to NODE --method c|p [--json]   migrate a MUD's container" },
	{ "wan",     cmd_wan,     "wan set|show|del DEV ...  WAN emulation (netem over rtnetlink)" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: edgehop-agent VERB [ARGS]\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %s\n", verbs[i].help);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(argv[1], verbs[i].name))
			return verbs[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "edgehop-agent: unknown verb '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
