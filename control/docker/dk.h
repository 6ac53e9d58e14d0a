/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * dk: a Docker Engine API client over dockerd's unix socket (libcurl, jansson).
 *
 * Every call returns 0 or -errno and leaves what failed in dk_err(): Docker's own
 * "message" word for word when Docker refused, else the transport error or the
 * HTTP status. HTTP statuses map to errnos: 400 -EINVAL, 401/403 -EACCES,
 * 404 -ENOENT, 409 -EBUSY (-EEXIST from dk_create and dk_checkpoint_create:
 * the name is taken), 500 -EIO, 501 -EOPNOTSUPP, 503 -EAGAIN, any other
 * -EPROTO; 304 (already started/stopped) is 0 for dk_start and dk_stop. A
 * socket that is missing is -ENOENT, one nobody listens on -ECONNREFUSED, a
 * stall or timeout -ETIMEDOUT, an answer cut short -EIO. dk_err() is "" after
 * a call that succeeded.
 *
 * Timeouts: connect 5 s; short calls 120 s in all (stop: its grace time more);
 * dk_wait, dk_commit, dk_checkpoint_create and dk_start from a checkpoint none;
 * image save/load none in all, but abort after 300 s without a byte moving.
 *
 * Requests are sent as API version min(server's ApiVersion, DK_API_MAX) and
 * servers older than DK_API_MIN are refused, so the same request bodies mean
 * the same thing on Docker 20.10 (1.41) and Docker 26 (1.45).
 */
#ifndef EDGEHOP_DK_H
#define EDGEHOP_DK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#define DK_SOCK_DEFAULT	"/var/run/docker.sock"
#define DK_API_MIN	"1.41"	/* Docker 20.10, Debian 12's docker.io */
#define DK_API_MAX	"1.45"	/* Docker 26, the testbed's nodes */

struct dk;                                    /* one client; not thread-safe: one per thread */

/*
 * sock NULL: DK_SOCK_DEFAULT. On failure *out is still set when the client
 * could be allocated, so that dk_err(*out) can say why; dk_close() it either way.
 */
int  dk_open(struct dk **out, const char *sock);
void dk_close(struct dk *d);
const char *dk_err(const struct dk *d);
const char *dk_api_version(const struct dk *d);
const char *dk_server_version(const struct dk *d);	/* "20.10.24+dfsg1" */
bool dk_experimental(const struct dk *d);		/* checkpoints need it */

/* containers; id = name or id */
int dk_create(struct dk *d, const char *name, json_t *config /* borrowed: Engine API ContainerCreate body */, char id[65]);
int dk_start(struct dk *d, const char *id, const char *checkpoint /* NULL or checkpoint name: POST /containers/{id}/start?checkpoint= */);
int dk_start_timed(struct dk *d, const char *id, int timeout_s);	/* plain start, 0: no total timeout */
int dk_stop(struct dk *d, const char *id, int timeout_s);
int dk_kill(struct dk *d, const char *id, const char *signal);	/* signal NULL: SIGKILL */
int dk_remove(struct dk *d, const char *id, bool force);   /* also removes anonymous volumes */
int dk_pause(struct dk *d, const char *id);
int dk_unpause(struct dk *d, const char *id);
int dk_wait(struct dk *d, const char *id, int *exit_code);	/* until not running */
int dk_inspect(struct dk *d, const char *id, json_t **out);   /* caller json_decref()s */
int dk_info(struct dk *d, json_t **out);	/* GET /info (Runtimes, Driver...); caller json_decref()s */
/* GET /containers/json?all=1 with the label filter @label ("key" or "key=value"): an array */
int dk_container_list(struct dk *d, const char *label, json_t **out);

/* checkpoints (experimental API: dockerd with "experimental": true) */
int dk_checkpoint_create(struct dk *d, const char *id, const char *name, bool leave_running);
int dk_checkpoint_list(struct dk *d, const char *id, json_t **out);	/* always an array */
int dk_checkpoint_delete(struct dk *d, const char *id, const char *name);

/* images */
int dk_commit(struct dk *d, const char *id, const char *repo_tag, bool pause, char image_id[80]);
int dk_image_inspect(struct dk *d, const char *name, json_t **out);   /* -ENOENT when absent */
int dk_image_list(struct dk *d, json_t **out);	/* GET /images/json: an array; caller json_decref()s */
int dk_image_remove(struct dk *d, const char *name, bool force);	/* untags; deletes when unused */
/* streamed, never whole in memory; a sink error aborts the transfer and is returned */
int dk_image_save(struct dk *d, const char *name,
		  int (*sink)(void *ctx, const void *buf, size_t len), void *ctx);
/*
 * Streamed upload (chunked); source returns 0 at end, <0 (-errno) to abort;
 * "loaded" gets the image reference Docker reports ("Loaded image: ..." or
 * "Loaded image ID: ..."); a Docker error in the JSON progress stream
 * ("errorDetail") is an error (-EIO, its message in dk_err()).
 */
int dk_image_load(struct dk *d, ssize_t (*source)(void *ctx, void *buf, size_t cap), void *ctx,
		  char *loaded, size_t loaded_len);

#endif /* EDGEHOP_DK_H */
