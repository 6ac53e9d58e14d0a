/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The node agent's daemon: MUD (re)association on UDP, the peer channel on
 * TCP+TLS, the local control socket (status, migrate), one container per MUD
 * through Docker's Engine API, the dataplane's steering, and the migrations.
 */
#ifndef EDGEHOP_AGENTD_H
#define EDGEHOP_AGENTD_H

#include "config.h"

/* Runs until SIGTERM/SIGINT; 0 on a clean stop, -errno if it could not start. */
int agentd_run(const struct ag_config *cfg, int verbose);

/*
 * Client side of the control socket: sends @req (one JSON object), prints the
 * answer lines through @line until the final one, which is returned (caller
 * json_decref()s). NULL + message on error.
 */
struct json_t;
struct json_t *agentd_call(const char *ctl_path, struct json_t *req,
			   void (*line)(void *ctx, struct json_t *msg), void *ctx);

#endif /* EDGEHOP_AGENTD_H */
