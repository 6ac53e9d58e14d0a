/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * edgehop-agent: the node agent of an AP+ES host. One thin file per verb
 * (run.c, status.c, migrate.c, wan.c) over the parts in control/docker,
 * control/peer, control/nl and control/migr.
 */
#ifndef EDGEHOP_AGENT_H
#define EDGEHOP_AGENT_H

int cmd_run(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_wan(int argc, char **argv);

#endif /* EDGEHOP_AGENT_H */
