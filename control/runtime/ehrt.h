/* SPDX-License-Identifier: GPL-2.0 */
/*
 * edgehop-runc: an OCI runtime for Docker that is runc, except that it restores
 * a container from a CRIU image staged for it instead of creating it fresh.
 *
 * Docker's own restore (`docker start --checkpoint`) hands the checkpoint to
 * containerd, which tars it into its content store and unpacks it again before
 * the shim runs `runc restore`; in the testbed's nodes that costs more than CRIU's
 * restore itself. With this runtime the agent stages the image in
 * EHRT_STAGE_DIR/<container id>/img and calls a plain `docker start`; the shim's
 * `runc create` becomes `runc restore --detach` of that image with the same bundle,
 * pid file and stdio, and the shim's `runc start` then finds the container running.
 * Docker keeps owning the container: it is in `docker ps`, stops, restarts.
 *
 * Staging layout (written by the agent, read here):
 *	<stage>/<id>/pending    the image is still arriving: create waits (inotify)
 *				until it is gone, so that Docker's start can run
 *				while the checkpoint travels
 *	<stage>/<id>/abort      the migration failed: create fails
 *	<stage>/<id>/img/       CRIU's images + runc's descriptors.json
 *	<stage>/<id>/work/      CRIU's restore.log and stats-restore (written here)
 *	<stage>/<id>/restored   created here once the restore succeeded
 *	<stage>/<id>/marks      appended here, one line "<what> <CLOCK_MONOTONIC ms>"
 *				per moment of the create (EHRT_MARK_*, written by
 *				edgehop-runc's main.c): the agent
 *				reads them before it removes the stage, to say where
 *				its restore step's time went
 */
#ifndef EHRT_H
#define EHRT_H

#include <stddef.h>

#define EHRT_STAGE_DIR	"/var/lib/edgehop/restore"
#define EHRT_RUNTIME	"edgehop"	/* the name Docker knows it by (daemon.json) */
#define EHRT_WAIT_S	900		/* longest wait for a "pending" image */

/* The moments edgehop-runc marks (ehrt_mark), in the order they happen. */
#define EHRT_MARK_CREATE	"runtime_create"	/* the shim's create reached us */
#define EHRT_MARK_RESTORE	"criu_begin"		/* the image is whole: runc restore */
#define EHRT_MARK_RESTORED	"criu_end"		/* runc restore returned 0 */
#define EHRT_MARK_START		"runtime_start"		/* the shim's start (a no-op) */

enum ehrt_cmd {
	EHRT_PASS = 0,		/* anything else: exec runc with the same arguments */
	EHRT_RESTORE,		/* create of a staged container: runc restore */
	EHRT_START_NOOP,	/* start of a restored container: already running */
};

struct ehrt_plan {
	enum ehrt_cmd cmd;
	const char *id;		/* the container id (create/start), else NULL */
	int sub;		/* index of the subcommand in argv, or -1 */
};

/*
 * Finds the subcommand and the container id in runc's command line
 * (global options first: --root R --log L --log-format F ...). Returns 0, or
 * -EINVAL with a reason in err for a command line runc would refuse too.
 */
int ehrt_parse(int argc, char *const argv[], struct ehrt_plan *p, char *err, size_t errlen);

/*
 * Builds `runc <global options> restore --detach --no-subreaper --image-path
 * <stage>/<id>/img --work-path <stage>/<id>/work <create's options> <id>` into
 * out (cap entries, NULL-terminated; paths written into buf). Options of
 * create that restore has no use for are dropped (--no-new-keyring); one it
 * cannot honour (--preserve-fds N, N > 0) is an error. Returns the number of
 * arguments or -errno with a reason in err.
 */
int ehrt_restore_argv(int argc, char *const argv[], const struct ehrt_plan *p,
		      const char *runc, const char *stage, char **out, int cap, char *buf,
		      size_t buflen, char *err, size_t errlen);

/* A container id Docker could have made: [0-9a-f]{1,64} and nothing else. */
int ehrt_valid_id(const char *id);

#endif
