// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop-agent's daemon (see agentd.h). Threads: the main loop owns the MUD
 * socket and accepts on the peer and control sockets; every accepted peer or
 * control connection, every association that creates a container, every
 * handoff and every migration runs in a thread of its own with a Docker
 * client of its own. The MUD table is guarded by one mutex; a condition
 * variable tells waiters that a MUD's migration ended.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "agentd.h"
#include "assoc_wire.h"
#include "dk.h"
#include "eh_time.h"
#include "edgehop_proto.h"
#include "eh_dp.h"
#include "eh_log.h"
#include "eh_nl.h"
#include "eh_parse.h"
#include "eh_replay.h"
#include "eh_wire.h"
#include "ehrt.h"
#include "migr.h"
#include "peer.h"
#include "svcprobe.h"

#define MUDS_MAX	256
#define SVC_PORT	7777
#define SVC_READY_MS	(60 * 1000)
#define PEER_TIMEOUT_MS	5000
#define MIGR_WAIT_MS	(600 * 1000)
/* In doubt: ES-y is asked this long at once, then in the background this far apart at most. */
#define OUTCOME_WAIT_MS		(30 * 1000)
#define OUTCOME_BACKOFF_MS	(10 * 1000)
#define CTL_LINE_MAX	4096

enum migr_dir { MG_NONE = 0, MG_OUT, MG_IN };

struct mud {
	bool used;
	uint32_t id;
	char name[EH_NAME_LEN + 1];
	bool here;			/* associated at this AP */
	struct in_addr addr;		/* its address at this AP */
	char ap_node[AG_NAME_MAX];	/* the AP it is at, as last learnt */
	/* its container */
	char ct_node[AG_NAME_MAX];
	char ct_id[65];
	struct in_addr ct_addr;
	uint16_t ct_port;
	char image[128];
	json_t *cmd;			/* the service's command line */
	/* work in progress */
	bool busy;			/* an association or handoff is being handled */
	enum migr_dir migr;
	char migr_peer[AG_NAME_MAX];
	volatile int cancel;
	/*
	 * The last migration out lost its channel after "restore": only
	 * doubt_peer knows whether it cut over. CT-x (doubt_ct) is kept, and
	 * nothing acts on this node's belief about the MUD until it is known.
	 */
	bool doubt;
	char doubt_id[MIGR_ID_MAX];
	char doubt_peer[AG_NAME_MAX];
	char doubt_ct[65];
	uint64_t doubt_since_ns;
	char error[256];
	json_t *report;			/* last migration's report */
	/* the answer owed to the MUD once the work ends */
	struct sockaddr_in pend_to;
	uint8_t pend_type;
	uint32_t pend_seq;
	uint64_t pend_ns;
	uint64_t req_ns;		/* when the (re)association request came */
	double assoc_ms;		/* last request -> answer */
};

static struct agent {
	struct ag_config c;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_cond_t doubt_cond;	/* a peer called: ask again about doubts now */
	pthread_mutex_t log_lock;
	struct mud muds[MUDS_MAX];
	struct peer_ctx *pctx;
	struct eh_dp dp;
	bool dp_ok;
	struct eh_log log;
	int mud_fd, peer_fd, ctl_fd;
	uint64_t junk, peer_ok, peer_refused, ctl_calls, threads;
	int verbose;
} A = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.doubt_cond = PTHREAD_COND_INITIALIZER,
	.log_lock = PTHREAD_MUTEX_INITIALIZER,
	.mud_fd = -1, .peer_fd = -1, .ctl_fd = -1,
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

__attribute__((format(printf, 1, 2)))
static int say(const char *fmt, ...)
{
	va_list ap;
	char buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return fprintf(stderr, "edgehop-agent[%s]: %s\n", A.c.node, buf);
}

/* One event to logrepo (eh_log is not thread-safe: serialise). */
__attribute__((format(printf, 4, 5)))
static void event(const char *peer, uint32_t mud_id, const char *ev, const char *kvfmt, ...)
{
	char kv[EH_LOG_KV_MAX], subject[32];
	va_list ap;

	va_start(ap, kvfmt);
	vsnprintf(kv, sizeof(kv), kvfmt, ap);
	va_end(ap);
	snprintf(subject, sizeof(subject), "MUD-%u", mud_id);
	pthread_mutex_lock(&A.log_lock);
	eh_log_event(&A.log, peer, subject, ev, NULL, NULL, "mud=%u %s", mud_id, kv);
	pthread_mutex_unlock(&A.log_lock);
	if (A.verbose)
		say("%s %s %s", subject, ev, kv);
}

static bool is_self(const char *node)
{
	return !strcmp(node, A.c.node);
}

/* Sends a message made for the occasion (peer_send_msg borrows it). */
static int send_new(struct peer_conn *pc, json_t *msg)
{
	int err = msg ? peer_send_msg(pc, msg) : -ENOMEM;

	json_decref(msg);
	return err;
}

/* ---- MUD table (A.lock held) ------------------------------------------------- */

static struct mud *mud_find(uint32_t id, bool create)
{
	struct mud *free_slot = NULL;

	for (int i = 0; i < MUDS_MAX; i++) {
		if (A.muds[i].used && A.muds[i].id == id)
			return &A.muds[i];
		if (!A.muds[i].used && !free_slot)
			free_slot = &A.muds[i];
	}
	if (create && !free_slot) {
		/*
		 * Full: reuse the entry of a MUD that holds nothing here (a refused
		 * association kept for status), the oldest first, so that junk ids
		 * cannot lock real MUDs out.
		 */
		for (int i = 0; i < MUDS_MAX; i++) {
			struct mud *c = &A.muds[i];

			if (c->busy || c->migr != MG_NONE || c->ct_node[0] || c->here || c->doubt)
				continue;
			if (!free_slot || c->req_ns < free_slot->req_ns)
				free_slot = c;
		}
		if (free_slot) {
			json_decref(free_slot->cmd);
			json_decref(free_slot->report);
		}
	}
	if (!create || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = true;
	free_slot->id = id;
	return free_slot;
}

static int wait_no_migr(struct mud *m, int ms)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += ms / 1000;
	while (m->migr != MG_NONE)
		if (pthread_cond_timedwait(&A.cond, &A.lock, &dl) == ETIMEDOUT)
			return -ETIMEDOUT;
	return 0;
}

static int steer(struct mud *m, enum eh_mode mode, struct in_addr to, uint16_t port)
{
	int err;

	if (!A.dp_ok || !m->addr.s_addr)
		return 0;
	/* RING_BYTES: the size of the MUD's replay buffer when it gets one. */
	err = eh_dp_steer_set_ring(&A.dp, m->addr, mode, to, port, m->id, A.c.ring_bytes);
	if (err)
		say("steering MUD %u %s -> %s: %s", m->id, eh_mode_name(mode), inet_ntoa(to),
		    strerror(-err));
	return err;
}

static void unsteer(struct mud *m)
{
	if (A.dp_ok && m->addr.s_addr) {
		int err = eh_dp_steer_del(&A.dp, m->addr);

		if (err && err != -ENOENT)
			say("removing MUD %u's steering: %s", m->id, strerror(-err));
	}
}

/* ---- answers to the MUD ------------------------------------------------------ */

static void mud_send(const struct sockaddr_in *to, uint8_t type, uint32_t mud_id, uint32_t seq,
		     uint64_t send_ns, const void *body, uint32_t blen)
{
	uint8_t buf[sizeof(struct eh_hdr) + 256];
	struct eh_hdr *h = (void *)buf;

	if (blen > sizeof(buf) - sizeof(*h))
		blen = sizeof(buf) - sizeof(*h);
	eh_hdr_init(h, type, 0, mud_id, seq, send_ns /* echoed */, blen);
	memcpy(buf + sizeof(*h), body, blen);
	if (sendto(A.mud_fd, buf, sizeof(*h) + blen, 0, (const struct sockaddr *)to,
		   sizeof(*to)) < 0)
		say("answer to MUD %u at %s: %s", mud_id, inet_ntoa(to->sin_addr), strerror(errno));
}

/* Sends the pending answer of @m: READY/REASSOC_READY, or ASSOC_FAIL with @why. A.lock held. */
static void mud_answer(struct mud *m, const char *why)
{
	m->assoc_ms = (eh_real_ns() - m->req_ns) / 1e6;
	if (why) {
		snprintf(m->error, sizeof(m->error), "%s", why);
		mud_send(&m->pend_to, EH_T_ASSOC_FAIL, m->id, m->pend_seq, m->pend_ns, why,
			 strlen(why));
		event(A.c.node, m->id, m->pend_type == EH_T_ASSOC_READY ? "ASSOC-FAIL" :
		      "REASSOC-FAIL", "ms=%.3f", m->assoc_ms);	/* the reason has spaces: stderr, status */
		say("MUD %u: %s refused: %s", m->id, m->pend_type == EH_T_ASSOC_READY ?
		    "association" : "reassociation", why);
		return;
	}
	struct eh_ready_body b = {
		.vip = A.c.vip.s_addr,
		.vip_port = htons(A.c.vip_port),
	};
	snprintf(b.ap_name, sizeof(b.ap_name), "%s", A.c.node);
	m->error[0] = '\0';
	mud_send(&m->pend_to, m->pend_type, m->id, m->pend_seq, m->pend_ns, &b, sizeof(b));
	event(A.c.node, m->id, m->pend_type == EH_T_ASSOC_READY ? "READY" : "REASSOC-READY",
	      "ms=%.3f ct_node=%s ct=%s", m->assoc_ms, m->ct_node, inet_ntoa(m->ct_addr));
}

/* ---- threads ---------------------------------------------------------------- */

static int spawn(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t at;
	int err;

	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&t, &at, fn, arg);
	pthread_attr_destroy(&at);
	if (!err)
		__atomic_add_fetch(&A.threads, 1, __ATOMIC_RELAXED);
	return -err;
}

static void thread_done(void)
{
	__atomic_sub_fetch(&A.threads, 1, __ATOMIC_RELAXED);
}

static json_t *svc_cmd(uint32_t mud_id)
{
	char name[MIGR_SVC_NAME_MAX], id[16], args[sizeof(A.c.svc_args)], *save, *w;
	json_t *cmd;

	/*
	 * The container's hostname is its name too (migr_ct_config): a CT-y
	 * restored from this container's memory reads its own on SIGHUP.
	 */
	migr_svc_name(A.c.node, name);
	snprintf(id, sizeof(id), "%u", mud_id);
	cmd = json_pack("[s,s,s,s,s,s,s,s,s,s]", "--port", "7777", "--name", name,
			"--name-file", "/etc/hostname", "--state-dir",
			"/var/lib/edgehop-svc", "--mud-id", id);
	snprintf(args, sizeof(args), "%s", A.c.svc_args);
	for (w = strtok_r(args, " \t", &save); w && cmd; w = strtok_r(NULL, " \t", &save))
		json_array_append_new(cmd, json_string(w));
	return cmd;
}

/* ASSOCIATION: CT(m) created, started, answering; steered LOCAL; READY. */
static void *assoc_thread(void *arg)
{
	struct mud *m = arg;
	struct dk *d = NULL;
	char name[64], host[MIGR_SVC_NAME_MAX], id[65] = "", why[300] = "";
	json_t *cfg = NULL, *cmd, *ins = NULL;
	struct svc_mud_state ss;
	struct in_addr ip = {};
	bool created = false;
	uint32_t mud_id;
	int err;

	pthread_mutex_lock(&A.lock);
	mud_id = m->id;
	pthread_mutex_unlock(&A.lock);
	snprintf(name, sizeof(name), "eh-mud-%u", mud_id);
	cmd = svc_cmd(mud_id);
	err = dk_open(&d, A.c.docker);
	if (err) {
		snprintf(why, sizeof(why), "Docker at %s: %s", A.c.docker, d ? dk_err(d) : strerror(-err));
		goto out;
	}
	/* A container of an earlier life of this agent goes first. */
	if (dk_inspect(d, name, &ins) == 0) {
		json_decref(ins);
		dk_remove(d, name, true);
	}
	migr_svc_name(A.c.node, host);
	cfg = migr_ct_config(A.c.image, cmd, mud_id, NULL, host);
	err = cfg ? dk_create(d, name, cfg, id) : -ENOMEM;
	if (err) {
		snprintf(why, sizeof(why), "creating the container from %s: %s", A.c.image, dk_err(d));
		goto out;
	}
	created = true;
	event("docker", mud_id, "CT created", "ct=%.12s image=%s", id, A.c.image);
	err = dk_start(d, id, NULL);
	if (err) {
		snprintf(why, sizeof(why), "starting the container: %s", dk_err(d));
		goto out;
	}
	err = dk_inspect(d, id, &ins);
	if (!err) {
		const char *s = json_string_value(json_object_get(json_object_get(ins,
					"NetworkSettings"), "IPAddress"));
		if (s)
			inet_pton(AF_INET, s, &ip);
		json_decref(ins);
	}
	if (!ip.s_addr) {
		snprintf(why, sizeof(why), "the container has no IPv4 address");
		err = -EADDRNOTAVAIL;
		goto out;
	}
	err = svc_probe(ip, SVC_PORT, mud_id, SVC_READY_MS, &ss);
	if (err) {
		snprintf(why, sizeof(why), "the service in the container does not answer (%s)",
			 strerror(-err));
		goto out;
	}
	event("docker", mud_id, "CT started", "ct=%.12s addr=%s", id, inet_ntoa(ip));
out:
	pthread_mutex_lock(&A.lock);
	if (!err) {
		snprintf(m->ct_id, sizeof(m->ct_id), "%s", id);
		snprintf(m->ct_node, sizeof(m->ct_node), "%s", A.c.node);
		snprintf(m->image, sizeof(m->image), "%s", A.c.image);
		m->ct_addr = ip;
		m->ct_port = SVC_PORT;
		json_decref(m->cmd);
		m->cmd = json_incref(cmd);
		m->here = true;
		snprintf(m->ap_node, sizeof(m->ap_node), "%s", A.c.node);
		err = steer(m, EH_MODE_LOCAL, ip, SVC_PORT);
		if (err)
			snprintf(why, sizeof(why), "steering the MUD to its container: %s",
				 strerror(-err));
	}
	if (err && created) {
		/* No half-made container stays behind. */
		m->ct_id[0] = m->ct_node[0] = '\0';
		m->here = false;
		if (dk_remove(d, id, true))
			say("removing half-made container %s: %s", id, dk_err(d));
	}
	m->busy = false;
	mud_answer(m, err ? why : NULL);
	pthread_cond_broadcast(&A.cond);
	pthread_mutex_unlock(&A.lock);
	json_decref(cfg);
	json_decref(cmd);
	dk_close(d);
	thread_done();
	return NULL;
}

struct migr_job {
	uint32_t mud_id;
	char to[AG_NAME_MAX];
	int method;
	int ctl_fd;		/* by hand: progress and the report go there; else -1 */
	bool reported;		/* the report went to ctl_fd */
};

static void *migrate_thread(void *arg);
static int migrate_out(struct migr_job *j, char *why, size_t whylen);

static int peer_dial(const char *node, struct peer_conn **pc)
{
	const struct ag_peer_cfg *p = ag_peer_by_name(&A.c, node);
	int err;

	if (!p)
		return -ENOENT;
	err = peer_connect(A.pctx, node, inet_ntoa(p->addr), A.c.peer_port, PEER_TIMEOUT_MS, pc);
	if (!err)
		peer_set_timeout(*pc, PEER_TIMEOUT_MS * 4);
	return err;
}

/* Asks @node for MUD @m's context (IAPP); fills ct_* of @m. A.lock NOT held. */
static int ask_ctx(const char *node, struct mud *m, uint32_t mud_id, struct in_addr mud_addr,
		   char *why, size_t whylen)
{
	struct peer_conn *pc = NULL;
	json_t *ans = NULL;
	const char *op, *s;
	int err;

	err = peer_dial(node, &pc);
	if (err) {
		snprintf(why, whylen, "previous AP %s does not answer: %s", node, strerror(-err));
		return err;
	}
	err = send_new(pc, json_pack("{s:s, s:i, s:s, s:s, s:s}", "op", "ctx_req",
					  "mud_id", (int)mud_id, "mud_addr", inet_ntoa(mud_addr),
					  "from", A.c.node, "migrate", ag_method_name(A.c.migrate)));
	/* The previous AP may first wait for a migration into it to end. */
	peer_set_timeout(pc, MIGR_WAIT_MS);
	if (!err)
		err = peer_recv_msg(pc, &ans);
	peer_close(pc);
	if (err) {
		snprintf(why, whylen, "previous AP %s: %s", node, strerror(-err));
		return err;
	}
	op = json_string_value(json_object_get(ans, "op")) ?: "";
	if (strcmp(op, "ctx")) {
		snprintf(why, whylen, "previous AP %s: %s", node,
			 json_string_value(json_object_get(ans, "reason")) ?: "no context");
		json_decref(ans);
		return -ENOENT;
	}
	pthread_mutex_lock(&A.lock);
	snprintf(m->ct_node, sizeof(m->ct_node), "%s",
		 json_string_value(json_object_get(ans, "ct_node")) ?: "");
	snprintf(m->ct_id, sizeof(m->ct_id), "%s",
		 json_string_value(json_object_get(ans, "ct_id")) ?: "");
	snprintf(m->image, sizeof(m->image), "%s",
		 json_string_value(json_object_get(ans, "image")) ?: "");
	inet_pton(AF_INET, (s = json_string_value(json_object_get(ans, "ct_addr"))) ? s : "0.0.0.0",
		  &m->ct_addr);
	m->ct_port = json_integer_value(json_object_get(ans, "ct_port")) ?: SVC_PORT;
	json_decref(m->cmd);
	m->cmd = json_incref(json_object_get(ans, "cmd"));
	pthread_mutex_unlock(&A.lock);
	json_decref(ans);
	return 0;
}

/*
 * REASSOCIATION at this AP: the previous AP gives the MUD's context, the MUD
 * is steered to its container (FORWARD, or FWD_BUF when it will migrate
 * here), REASSOC_READY; the node holding the container starts the migration.
 */
struct handoff_job {
	struct mud *m;
	char prev[AG_NAME_MAX];
};

static void *handoff_thread(void *arg)
{
	struct handoff_job *j = arg;
	struct mud *m = j->m;
	char why[300] = "", ct_node[AG_NAME_MAX];
	struct in_addr addr;
	uint32_t id;
	int err;

	pthread_mutex_lock(&A.lock);
	id = m->id;
	addr = m->addr;
	/* Back where its container is, while it is being migrated away: stop that. */
	if (m->migr == MG_OUT)
		m->cancel = 1;
	pthread_mutex_unlock(&A.lock);

	event(j->prev, id, "IAPP ctx-req", "from=%s", A.c.node);
	err = ask_ctx(j->prev, m, id, addr, why, sizeof(why));
	if (!err) {
		pthread_mutex_lock(&A.lock);
		snprintf(ct_node, sizeof(ct_node), "%s", m->ct_node);
		pthread_mutex_unlock(&A.lock);
		/* The previous AP is not where the container is: tell that node too. */
		if (ct_node[0] && !is_self(ct_node) && strcmp(ct_node, j->prev))
			err = ask_ctx(ct_node, m, id, addr, why, sizeof(why));
	}
	pthread_mutex_lock(&A.lock);
	if (!err && wait_no_migr(m, MIGR_WAIT_MS)) {
		err = -ETIMEDOUT;
		snprintf(why, sizeof(why), "a migration of its container does not end");
	}
	if (!err && !m->ct_node[0]) {
		err = -ENOENT;
		snprintf(why, sizeof(why), "previous AP %s knows no container of MUD %u", j->prev, id);
	}
	if (!err) {
		bool local = is_self(m->ct_node);
		enum eh_mode mode = local ? EH_MODE_LOCAL :
			A.c.migrate != AG_MIGR_NONE ? EH_MODE_FWD_BUF : EH_MODE_FORWARD;

		if (A.dp_ok && !local && mode == EH_MODE_FWD_BUF) {
			/*
			 * What an earlier migration left in this MUD's buffer is not
			 * this one's; its fresh buffer has this node's RING_BYTES.
			 */
			int e = eh_dp_ring_reset_size(&A.dp, m->addr, A.c.ring_bytes);

			if (e && e != -ENOENT)
				say("MUD %u: emptying its replay buffer: %s", m->id, strerror(-e));
			e = eh_dp_steer_clear_flags(&A.dp, m->addr);
			if (e && e != -ENOENT)
				say("MUD %u: clearing its loss flags: %s", m->id, strerror(-e));
		}
		err = steer(m, mode, m->ct_addr, m->ct_port);
		if (err)
			snprintf(why, sizeof(why), "steering: %s", strerror(-err));
		else {
			m->here = true;
			snprintf(m->ap_node, sizeof(m->ap_node), "%s", A.c.node);
		}
	}
	m->busy = false;
	mud_answer(m, err ? why : NULL);
	pthread_cond_broadcast(&A.cond);
	pthread_mutex_unlock(&A.lock);
	free(j);
	thread_done();
	return NULL;
}

static void on_mud_datagram(void)
{
	uint8_t buf[1500];
	struct sockaddr_in src;
	socklen_t sl = sizeof(src);
	struct ag_assoc_req q;
	struct mud *m;
	uint32_t id;
	ssize_t n;
	bool reassoc;
	char why[200];

	n = recvfrom(A.mud_fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&src, &sl);
	if (n < 0)
		return;
	if (ag_assoc_parse(buf, n, &q)) {
		A.junk++;
		return;
	}
	id = q.mud_id;
	reassoc = q.reassoc;

	pthread_mutex_lock(&A.lock);
	m = mud_find(id, true);
	if (!m) {
		pthread_mutex_unlock(&A.lock);
		snprintf(why, sizeof(why), "this AP serves %d MUDs already", MUDS_MAX);
		mud_send(&src, EH_T_ASSOC_FAIL, id, q.seq, q.send_ns, why, strlen(why));
		return;
	}
	/* Whatever happens, the answer goes to the latest try. */
	m->pend_to = src;
	m->pend_seq = q.seq;
	m->pend_ns = q.send_ns;
	m->pend_type = reassoc ? EH_T_REASSOC_READY : EH_T_ASSOC_READY;
	if (m->busy)
		goto out;	/* a retransmission while we work on it */
	m->req_ns = eh_real_ns();
	memcpy(m->name, q.name, sizeof(m->name));
	m->addr = q.mud_addr.s_addr ? q.mud_addr : src.sin_addr;
	event(inet_ntoa(src.sin_addr), id, reassoc ? "REASSOC-REQ" : "ASSOC-REQ", "name=%.32s",
	      m->name);

	if (m->here && m->ct_node[0]) {
		/*
		 * Idempotent: same container, same steering, READY again — also
		 * while its migration into this node runs (the first READY may
		 * have been lost on the radio).
		 */
		mud_answer(m, NULL);
		goto out;
	}
	if (!reassoc) {
		if (m->ct_node[0] && !is_self(m->ct_node)) {
			snprintf(why, sizeof(why), "MUD %u's container runs on %s: reassociate", id,
				 m->ct_node);
			mud_answer(m, why);
			goto out;
		}
		if (m->doubt) {
			/* CT-x may be stale: it does not serve the MUD on a guess. */
			snprintf(why, sizeof(why), "MUD %u's container is in doubt (migration %.40s to "
				 "%s, outcome not known yet): try again later", id, m->doubt_id,
				 m->doubt_peer);
			mud_answer(m, why);
			goto out;
		}
		if (m->ct_node[0] && m->migr == MG_NONE) {
			m->here = true;
			steer(m, EH_MODE_LOCAL, m->ct_addr, m->ct_port);
			mud_answer(m, NULL);
			goto out;
		}
		m->busy = true;
		if (spawn(assoc_thread, m)) {
			m->busy = false;
			mud_answer(m, "agent out of threads");
		}
		goto out;
	}
	{
		struct in_addr prev = q.prev_ap;
		const struct ag_peer_cfg *p = ag_peer_by_agent_addr(&A.c, prev);
		struct handoff_job *j;

		if (!p) {
			snprintf(why, sizeof(why), "previous AP %s is not a peer of %s",
				 inet_ntoa(prev), A.c.node);
			mud_answer(m, why);
			goto out;
		}
		j = calloc(1, sizeof(*j));
		if (!j) {
			mud_answer(m, "agent out of memory");
			goto out;
		}
		j->m = m;
		snprintf(j->prev, sizeof(j->prev), "%s", p->name);
		m->busy = true;
		if (spawn(handoff_thread, j)) {
			m->busy = false;
			free(j);
			mud_answer(m, "agent out of threads");
		}
	}
out:
	pthread_mutex_unlock(&A.lock);
}

/* ---- peer requests ------------------------------------------------------------ */


/* ctx_req from the AP the MUD moved to: the MUD left us; give its context. */
static void peer_ctx_req(struct peer_conn *pc, json_t *req)
{
	uint32_t id = json_integer_value(json_object_get(req, "mud_id"));
	const char *from = peer_name(pc), *ms = json_string_value(json_object_get(req, "migrate"));
	const char *maddr = json_string_value(json_object_get(req, "mud_addr"));
	enum ag_method method = AG_MIGR_NONE;
	struct migr_job *job = NULL;
	struct mud *m;
	json_t *ans;

	if (ms)
		ag_method_parse(ms, &method);
	pthread_mutex_lock(&A.lock);
	m = mud_find(id, false);
	if (!m || !m->ct_node[0]) {
		pthread_mutex_unlock(&A.lock);
		send_new(pc, json_pack("{s:s, s:s}", "op", "error", "reason",
					    "unknown MUD"));
		return;
	}
	if (m->doubt) {
		char why[200];

		snprintf(why, sizeof(why), "MUD %u's container is in doubt: migration %.40s to %s "
			 "has no known outcome yet", id, m->doubt_id, m->doubt_peer);
		pthread_cond_broadcast(&A.doubt_cond);	/* ask again now */
		pthread_mutex_unlock(&A.lock);
		send_new(pc, json_pack("{s:s, s:s}", "op", "error", "reason", why));
		return;
	}
	/* A migration into this node decides where the container is: wait for it. */
	if (m->migr == MG_IN && wait_no_migr(m, MIGR_WAIT_MS)) {
		pthread_mutex_unlock(&A.lock);
		send_new(pc, json_pack("{s:s, s:s}", "op", "error", "reason",
					    "a migration here does not end"));
		return;
	}
	if (m->here && strcmp(from, A.c.node)) {
		const struct ag_peer_cfg *p = ag_peer_by_name(&A.c, from);
		struct in_addr ma;

		unsteer(m);
		m->here = false;
		/* The return path to the MUD's new address goes through its new AP. */
		if (p && maddr && inet_pton(AF_INET, maddr, &ma) == 1) {
			char e[200];

			if (eh_route_replace(ma, 32, p->addr, NULL, e, sizeof(e)))
				say("route to MUD %u at %s via %s: %s", id, maddr, from, e);
		}
	}
	snprintf(m->ap_node, sizeof(m->ap_node), "%s", from);
	ans = json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:s, s:O?}", "op", "ctx", "mud_id", (int)id,
			"ct_node", m->ct_node, "ct_id", m->ct_id, "ct_addr", inet_ntoa(m->ct_addr),
			"ct_port", m->ct_port, "image", m->image, "cmd", m->cmd);
	if (is_self(m->ct_node) && method != AG_MIGR_NONE && !is_self(from)) {
		if (m->migr == MG_OUT && strcmp(m->migr_peer, from))
			m->cancel = 1;	/* it moved on: redirect */
		job = calloc(1, sizeof(*job));
		if (job) {
			job->mud_id = id;
			job->method = method;
			job->ctl_fd = -1;
			snprintf(job->to, sizeof(job->to), "%s", from);
		}
	}
	pthread_mutex_unlock(&A.lock);
	event(from, id, "IAPP ctx", "to=%s", from);
	peer_send_msg(pc, ans);
	json_decref(ans);
	if (job && spawn(migrate_thread, job)) {
		say("MUD %u: no thread for its migration to %s", id, job->to);
		free(job);
	}
}

struct dst_ctx {
	struct mud *m;
	uint32_t id;
	struct in_addr addr;		/* the MUD at this AP */
	struct in_addr ct_x;
	uint16_t ct_x_port;
};

static int dst_cutover(void *vctx, uint32_t mud_id, struct in_addr addr, uint16_t port,
		       int (*commit)(void *), void *commit_ctx,
		       uint64_t *replayed, uint64_t *relayed, char *err, size_t errlen)
{
	struct dst_ctx *c = vctx;
	struct eh_replay_opts o = {
		.mud = c->addr, .backend = addr, .backend_port = port,
		.commit = commit, .commit_ctx = commit_ctx,
	};
	struct eh_replayer r;
	int e;

	if (!A.dp_ok) {
		snprintf(err, errlen, "no dataplane on %s", A.c.node);
		return -ENODEV;
	}
	/* One replay buffer per MUD: cut-overs of different MUDs run side by side. */
	e = eh_replayer_init(&r, &A.dp, &o);
	if (e) {
		snprintf(err, errlen, "replayer: %s", strerror(-e));
		return e;
	}
	event(A.c.node, mud_id, "replay begins", "to=%s", inet_ntoa(addr));
	e = eh_replayer_cutover(&r, mud_id);
	*replayed = r.st.replayed;
	*relayed = r.st.relayed;
	eh_replayer_fini(&r);
	if (e && r.st.committed) {
		/* Past the commit point: said, never undone (a restart redoes the switch). */
		say("MUD %u: committed to CT-y at %s, then: %s", mud_id, inet_ntoa(addr),
		    strerror(-e));
		return 0;
	}
	if (e)
		snprintf(err, errlen, "replay/cut-over into CT-y: %s", strerror(-e));
	return e;
}

static void dst_rollback(void *vctx, uint32_t mud_id)
{
	struct dst_ctx *c = vctx;

	pthread_mutex_lock(&A.lock);
	if (c->m->here && c->ct_x.s_addr)
		steer(c->m, EH_MODE_FORWARD, c->ct_x, c->ct_x_port);
	pthread_mutex_unlock(&A.lock);
	event(A.c.node, mud_id, "migr rolled back", "ct_x=%s", inet_ntoa(c->ct_x));
}

/*
 * Where T5 restores CT-y from: edgehop-runc's staging root when Docker knows
 * the runtime "edgehop" (RESTORE = runc or auto), else NULL (Docker's own
 * start --checkpoint). RESTORE = runc without the runtime is an error.
 */
static int restore_path(struct dk *d, const char **stage, char *err, size_t errlen)
{
	json_t *info = NULL;
	bool have;

	*stage = NULL;
	if (A.c.restore == AG_RESTORE_DOCKER)
		return 0;
	if (dk_info(d, &info)) {
		snprintf(err, errlen, "Docker's info: %s", dk_err(d));
		return -EIO;
	}
	have = json_object_get(json_object_get(info, "Runtimes"), EHRT_RUNTIME) != NULL;
	json_decref(info);
	if (have)
		*stage = EHRT_STAGE_DIR;
	else if (A.c.restore == AG_RESTORE_RUNC) {
		snprintf(err, errlen, "RESTORE = runc, but Docker has no runtime '%s' "
			 "(daemon.json: \"runtimes\": { \"%s\": { \"path\": "
			 "\"/usr/local/sbin/edgehop-runc\" } })", EHRT_RUNTIME, EHRT_RUNTIME);
		return -ENOENT;
	}
	return 0;
}

static void peer_migr_begin(struct peer_conn *pc, json_t *req)
{
	uint32_t id = json_integer_value(json_object_get(req, "mud_id"));
	struct migr_dst_hooks h = { .cutover = dst_cutover, .rollback = dst_rollback };
	struct dst_ctx c = { .id = id };
	struct migr_report rep;
	char err[300] = "";
	struct dk *d = NULL;
	struct mud *m;
	int r;

	pthread_mutex_lock(&A.lock);
	m = mud_find(id, false);
	/* ES-x may start as soon as it answered our ctx_req: let the handoff end. */
	if (m && m->busy) {
		struct timespec dl;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 60;
		while (m->busy && pthread_cond_timedwait(&A.cond, &A.lock, &dl) != ETIMEDOUT)
			;
	}
	if (!m || !m->here || m->migr != MG_NONE) {
		pthread_mutex_unlock(&A.lock);
		send_new(pc, json_pack("{s:s, s:s}", "op", "error", "reason",
				  !m || !m->here ? "the MUD is not at this AP (nothing buffers its requests)"
						 : "a migration of this MUD is under way here"));
		return;
	}
	m->migr = MG_IN;
	snprintf(m->migr_peer, sizeof(m->migr_peer), "%s", peer_name(pc));
	c.m = m;
	c.addr = m->addr;
	c.ct_x = m->ct_addr;
	c.ct_x_port = m->ct_port;
	pthread_mutex_unlock(&A.lock);
	h.ctx = &c;
	h.fault = A.c.fault[0] ? A.c.fault : NULL;
	h.docker_sock = A.c.docker;

	r = dk_open(&d, A.c.docker);
	if (r) {
		snprintf(err, sizeof(err), "Docker: %s", d ? dk_err(d) : strerror(-r));
		send_new(pc, json_pack("{s:s, s:s}", "op", "error", "reason", err));
	} else if ((r = restore_path(d, &h.restore_stage, err, sizeof(err)))) {
		send_new(pc, json_pack("{s:s, s:s}", "op", "error", "reason", err));
	} else {
		r = migr_dest(d, pc, req, A.c.node, A.c.state_dir, &h, &rep, err, sizeof(err));
	}
	pthread_mutex_lock(&A.lock);
	if (!r) {
		snprintf(m->ct_node, sizeof(m->ct_node), "%s", A.c.node);
		snprintf(m->ct_id, sizeof(m->ct_id), "%s", rep.ct_y_id);
		/* C-Migr: CT-y runs from the image it brought; a later P-Migr needs it. */
		if (rep.ct_y_image[0])
			snprintf(m->image, sizeof(m->image), "%s", rep.ct_y_image);
		m->ct_addr = rep.ct_y_addr;
		m->ct_port = SVC_PORT;
		json_decref(m->report);
		m->report = migr_report_json(&rep);
		m->error[0] = '\0';
		event(A.c.node, id, "migr finished", "replayed=%llu relayed=%llu restore_ms=%.1f replay_ms=%.1f restore_via=%s",
		      (unsigned long long)rep.replayed, (unsigned long long)rep.relayed,
		      rep.step[MS_T5_RESTORE].ms, rep.step[MS_T7_REPLAY].ms, rep.restore_via);
	} else {
		snprintf(m->error, sizeof(m->error), "migration in from %s: %s", peer_name(pc), err);
		event(A.c.node, id, "migr failed", "side=dest");
		say("MUD %u: %s", id, m->error);
	}
	m->migr = MG_NONE;
	pthread_cond_broadcast(&A.cond);
	pthread_mutex_unlock(&A.lock);
	dk_close(d);
}

static void *peer_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct peer_conn *pc = NULL;
	json_t *req = NULL;
	const char *op;
	int err;

	err = peer_accept_fd(A.pctx, fd, PEER_TIMEOUT_MS, &pc);
	if (err) {
		__atomic_add_fetch(&A.peer_refused, 1, __ATOMIC_RELAXED);
		goto out;
	}
	__atomic_add_fetch(&A.peer_ok, 1, __ATOMIC_RELAXED);
	/* A peer is back: whatever is in doubt with it is asked again now. */
	pthread_mutex_lock(&A.lock);
	pthread_cond_broadcast(&A.doubt_cond);
	pthread_mutex_unlock(&A.lock);
	err = peer_recv_msg(pc, &req);
	if (err) {
		say("peer %s: no request: %s", peer_name(pc), strerror(-err));
		goto out;
	}
	op = json_string_value(json_object_get(req, "op")) ?: "";
	if (!strcmp(op, "ctx_req")) {
		peer_ctx_req(pc, req);
	} else if (!strcmp(op, "migr_begin")) {
		peer_migr_begin(pc, req);
	} else if (!strcmp(op, "outcome")) {
		/* ES-x lost its channel after "restore": what this node decided. */
		json_t *ans = migr_outcome_answer(A.c.state_dir, req, peer_name(pc));

		say("peer %s asks the outcome of migration %.63s: %s%s%s", peer_name(pc),
		    json_string_value(json_object_get(req, "id")) ?: "(no id)",
		    json_string_value(json_object_get(ans, "outcome")) ?: "error",
		    json_object_get(ans, "reason") ? ": " : "",
		    json_string_value(json_object_get(ans, "reason")) ?: "");
		send_new(pc, ans);
	} else {
		say("peer %s: unknown request '%.40s' refused", peer_name(pc), op);
		send_new(pc, json_pack("{s:s, s:s}", "op", "error", "reason", "unknown request"));
	}
out:
	json_decref(req);
	if (pc)
		peer_close(pc);
	thread_done();
	return NULL;
}

/* ---- migrations out ------------------------------------------------------------ */

static void ctl_write(int fd, json_t *msg)
{
	char *s;

	if (fd < 0 || !msg)
		return;
	s = json_dumps(msg, JSON_COMPACT);
	if (s) {
		struct iovec iov[2] = { { s, strlen(s) }, { "\n", 1 } };

		/* A client that went away does not stop the migration. */
		if (writev(fd, iov, 2) < 0 && A.verbose)
			say("control client: %s", strerror(errno));
		free(s);
	}
}

struct prog_ctx {
	int fd;
	uint32_t mud_id;
	double t0, last;
	uint64_t last_bytes;
};

static void progress(void *vctx, const char *step, uint64_t bytes, uint64_t total)
{
	struct prog_ctx *p = vctx;
	double t = eh_mono_ms(), rate;
	json_t *j;

	rate = t > p->t0 ? bytes / ((t - p->t0) / 1e3) : 0;
	j = json_pack("{s:{s:s, s:I, s:I, s:f, s:f}}", "progress", "step", step,
		      "bytes", (json_int_t)bytes, "total", (json_int_t)total,
		      "rate_Bps", rate, "eta_s", total && rate > 0 ? (total - bytes) / rate : -1.0);
	ctl_write(p->fd, j);
	json_decref(j);
	p->last = t;
	p->last_bytes = bytes;
}

/* ---- migrations in doubt ------------------------------------------------------ */

struct asker_ctx {
	const char *peer;
	uint32_t mud_id;
};

static int ask_dial(void *ctx, struct peer_conn **pc)
{
	struct asker_ctx *c = ctx;

	return stopping ? -ECANCELED : peer_dial(c->peer, pc);
}

/* Waits @ms, or less when a peer calls (doubt_cond); -ECANCELED when stopping. */
static int ask_pause(void *ctx, int ms)
{
	struct timespec dl;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&A.lock);
	if (!stopping)
		pthread_cond_timedwait(&A.doubt_cond, &A.lock, &dl);
	pthread_mutex_unlock(&A.lock);
	return stopping ? -ECANCELED : 0;
}

static void ask_note(void *ctx, const char *what)
{
	struct asker_ctx *c = ctx;

	say("MUD %u: asking %s for the outcome of its migration: %s", c->mud_id, c->peer, what);
}

/*
 * Asks @peer for the outcome of migration @id (of MUD @mud_id) for @wait_ms
 * (< 0: until it knows or the agent stops). Returns MO_COMMITTED (@rep holds
 * CT-y's facts), MO_FAILED, MO_UNKNOWN (ES-y answered: it never cut over), or
 * -ETIMEDOUT / -ECANCELED with @why.
 */
static int doubt_ask(const char *peer, uint32_t mud_id, const char *id, int wait_ms, int backoff,
		     struct migr_report *rep, char *why, size_t whylen)
{
	struct asker_ctx ac = { .peer = peer, .mud_id = mud_id };
	struct migr_asker a = { .peer = peer, .dial = ask_dial, .pause = ask_pause,
				.note = ask_note, .ctx = &ac, .max_backoff_ms = backoff };

	return migr_outcome_wait(&a, id, wait_ms, rep, why, whylen);
}

/* CT-x after ES-y committed: stale, it goes as it would after "done". */
static void doubt_remove_ctx(uint32_t mud_id, const char *ct_x)
{
	struct dk *d = NULL;
	int r = dk_open(&d, A.c.docker);

	if (!r)
		r = dk_remove(d, ct_x, true);
	if (!r)
		event("docker", mud_id, "CT stopped", "ct=%.12s stale=1", ct_x);
	else if (r != -ENOENT)
		say("MUD %u: stale CT-x %s not removed: %s", mud_id, ct_x,
		    d ? dk_err(d) : strerror(-r));
	dk_close(d);
}

/*
 * The outcome of migration @id (MUD @mud_id, to @peer, CT-x @ct_x) is known
 * at last: CT-x goes if ES-y committed, the doubt record goes, and the MUD's
 * entry learns where its container is (unless it learnt something newer).
 */
static void doubt_settle(uint32_t mud_id, const char *id, const char *peer, const char *ct_x,
			 int o, const struct migr_report *rep, const char *why)
{
	struct mud *m;

	if (o == MO_COMMITTED && ct_x[0])
		doubt_remove_ctx(mud_id, ct_x);
	migr_doubt_clear(A.c.state_dir, id);
	pthread_mutex_lock(&A.lock);
	m = mud_find(mud_id, false);
	if (m && m->doubt && !strcmp(m->doubt_id, id)) {
		m->doubt = false;
		if (o == MO_COMMITTED && is_self(m->ct_node) && !strcmp(m->ct_id, ct_x)) {
			snprintf(m->ct_node, sizeof(m->ct_node), "%s", peer);
			snprintf(m->ct_id, sizeof(m->ct_id), "%s", rep->ct_y_id);
			if (rep->ct_y_image[0])
				snprintf(m->image, sizeof(m->image), "%s", rep->ct_y_image);
			m->ct_addr = rep->ct_y_addr;
			m->ct_port = SVC_PORT;
		} else if (o != MO_COMMITTED && !m->ct_addr.s_addr && is_self(m->ct_node)) {
			/* Known only from its doubt record (a restart): nothing to serve from. */
			json_decref(m->cmd);
			json_decref(m->report);
			memset(m, 0, sizeof(*m));
		}
		if (m->used) {
			snprintf(m->error, sizeof(m->error), "%.200s%s", o == MO_COMMITTED ? "" : why,
				 o == MO_COMMITTED ? "" : " (CT-x goes on serving)");
			if (m->report)
				json_object_set_new(m->report, "resolved",
						    json_string(migr_outcome_name(o)));
		}
	}
	pthread_cond_broadcast(&A.cond);
	pthread_mutex_unlock(&A.lock);
	event(peer, mud_id, "migr resolved", "id=%s outcome=%s", id, migr_outcome_name(o));
	say("MUD %u: migration %s to %s resolved after the lost channel: %s: %s%s", mud_id, id,
	    peer, migr_outcome_name(o), why, o == MO_COMMITTED ? " (stale CT-x removed)" :
	    " (CT-x goes on serving)");
}

struct doubt_job {
	uint32_t mud_id;
	char id[MIGR_ID_MAX];
	char peer[AG_NAME_MAX];
	char ct_x[65];
};

/* Asks in the background until the outcome is known (or the agent stops). */
static void *doubt_thread(void *arg)
{
	struct doubt_job *j = arg;
	struct migr_report rep = {};
	char why[400];
	int o = doubt_ask(j->peer, j->mud_id, j->id, -1, OUTCOME_BACKOFF_MS, &rep, why, sizeof(why));

	if (o >= 0)
		doubt_settle(j->mud_id, j->id, j->peer, j->ct_x, o, &rep, why);
	free(j);
	thread_done();
	return NULL;
}

static void doubt_spawn(uint32_t mud_id, const char *id, const char *peer, const char *ct_x)
{
	struct doubt_job *j = calloc(1, sizeof(*j));

	if (j) {
		j->mud_id = mud_id;
		snprintf(j->id, sizeof(j->id), "%s", id);
		snprintf(j->peer, sizeof(j->peer), "%s", peer);
		snprintf(j->ct_x, sizeof(j->ct_x), "%s", ct_x);
	}
	if (!j || spawn(doubt_thread, j)) {
		free(j);
		say("MUD %u: no thread to ask %s about migration %s: asked at the next restart",
		    mud_id, peer, id);
	}
}

/* Marks @m in doubt (A.lock held). */
static void doubt_mark(struct mud *m, const char *id, const char *peer, const char *ct_x,
		       const char *why)
{
	m->doubt = true;
	snprintf(m->doubt_id, sizeof(m->doubt_id), "%s", id);
	snprintf(m->doubt_peer, sizeof(m->doubt_peer), "%s", peer);
	snprintf(m->doubt_ct, sizeof(m->doubt_ct), "%s", ct_x);
	m->doubt_since_ns = eh_real_ns();
	snprintf(m->error, sizeof(m->error), "%.255s", why);
}

/* At start: each migration a crashed life of this agent left in doubt. */
static void doubt_found(void *ctx, const struct migr_doubt *dt)
{
	struct dk *d = ctx;
	json_t *ins = NULL;
	struct mud *m;
	char why[400];

	snprintf(why, sizeof(why), "migration %s to %s in doubt since the agent restarted: "
		 "CT-x kept until %s tells its outcome", dt->id, dt->peer, dt->peer);
	/* CT-x's facts, so that it can serve again if ES-y did not commit. */
	if (d && dk_inspect(d, dt->ct_x, &ins))
		ins = NULL;
	pthread_mutex_lock(&A.lock);
	m = mud_find(dt->mud_id, true);
	if (m) {
		const char *a = json_string_value(json_object_get(json_object_get(ins,
					"NetworkSettings"), "IPAddress"));
		const char *img = json_string_value(json_object_get(json_object_get(ins, "Config"),
								    "Image"));

		snprintf(m->ct_node, sizeof(m->ct_node), "%s", A.c.node);
		snprintf(m->ct_id, sizeof(m->ct_id), "%s", dt->ct_x);
		if (a)
			inet_pton(AF_INET, a, &m->ct_addr);
		m->ct_port = SVC_PORT;
		snprintf(m->image, sizeof(m->image), "%s", img ?: "");
		json_decref(m->cmd);
		m->cmd = json_incref(json_object_get(json_object_get(ins, "Config"), "Cmd"));
		doubt_mark(m, dt->id, dt->peer, dt->ct_x, why);
	}
	pthread_mutex_unlock(&A.lock);
	json_decref(ins);
	event(dt->peer, dt->mud_id, "migr in doubt", "id=%s after=restart", dt->id);
	say("MUD %u: %s", dt->mud_id, why);
	if (m)
		doubt_spawn(dt->mud_id, dt->id, dt->peer, dt->ct_x);
}

static int migrate_out(struct migr_job *j, char *why, size_t whylen)
{
	struct migr_src s = { .mud_id = j->mud_id, .method = j->method, .node = A.c.node,
			      .state_dir = A.c.state_dir,
			      .docker_checkpoint = A.c.docker_checkpoint };
	struct prog_ctx pg = { .fd = j->ctl_fd, .mud_id = j->mud_id, .t0 = eh_mono_ms() };
	char ct_id[65], image[128];
	struct migr_report rep;
	struct peer_conn *pc = NULL;
	struct dk *d = NULL;
	json_t *cmd = NULL;
	struct mud *m;
	const char *resolved = NULL;	/* the outcome, learnt after a lost channel */
	int r;

	pthread_mutex_lock(&A.lock);
	m = mud_find(j->mud_id, false);
	if (!m || !is_self(m->ct_node)) {
		pthread_mutex_unlock(&A.lock);
		snprintf(why, whylen, "MUD %u has no container on %s", j->mud_id, A.c.node);
		return -ENOENT;
	}
	if (m->doubt) {
		/* Not from a belief that may be wrong: CT-x may be stale. */
		snprintf(why, whylen, "MUD %u's last migration (%s to %s) is in doubt: none starts "
			 "until %s tells its outcome", j->mud_id, m->doubt_id, m->doubt_peer,
			 m->doubt_peer);
		pthread_mutex_unlock(&A.lock);
		return -EBUSY;
	}
	if (wait_no_migr(m, MIGR_WAIT_MS)) {
		pthread_mutex_unlock(&A.lock);
		snprintf(why, whylen, "an earlier migration of MUD %u does not end", j->mud_id);
		return -ETIMEDOUT;
	}
	if (!is_self(m->ct_node) || m->doubt) {	/* the earlier one moved it, or lost track */
		pthread_mutex_unlock(&A.lock);
		snprintf(why, whylen, m->doubt ? "MUD %u's container is in doubt meanwhile" :
			 "MUD %u's container moved to %s meanwhile", j->mud_id, m->ct_node);
		return -ENOENT;
	}
	/* Where the MUD is decides: a stale request to follow it elsewhere is dropped. */
	if (j->ctl_fd < 0 && strcmp(m->ap_node, j->to)) {
		pthread_mutex_unlock(&A.lock);
		snprintf(why, whylen, "MUD %u is at %s now, not %s", j->mud_id, m->ap_node, j->to);
		return -ECANCELED;
	}
	m->migr = MG_OUT;
	m->cancel = 0;
	snprintf(m->migr_peer, sizeof(m->migr_peer), "%s", j->to);
	snprintf(ct_id, sizeof(ct_id), "%s", m->ct_id);
	snprintf(image, sizeof(image), "%s", m->image);
	cmd = json_incref(m->cmd);
	pthread_mutex_unlock(&A.lock);

	s.ct_id = ct_id;
	s.image = image;
	s.cmd = cmd;
	s.cancel = &m->cancel;
	s.progress = progress;
	s.pctx = &pg;
	event(j->to, j->mud_id, "migr begins", "method=%s to=%s",
	      j->method == AG_MIGR_C ? "C-Migr" : j->method == AG_MIGR_AUTO ? "auto" : "P-Migr",
	      j->to);
	r = dk_open(&d, A.c.docker);
	if (r) {
		snprintf(why, whylen, "Docker: %s", d ? dk_err(d) : strerror(-r));
		goto out;
	}
	r = peer_dial(j->to, &pc);
	if (r) {
		snprintf(why, whylen, "%s does not answer: %s", j->to, strerror(-r));
		goto out;
	}
	r = migr_source(d, pc, &s, &rep, why, whylen);
	for (int i = 0; i < MS_MAX; i++)
		if (rep.step[i].ms > 0)
			event(j->to, j->mud_id, "migr step", "step=%s bytes=%llu wire=%llu ms=%.3f",
			      migr_step_name(i), (unsigned long long)rep.step[i].raw_bytes,
			      (unsigned long long)rep.step[i].wire_bytes, rep.step[i].ms);
	event(j->to, j->mud_id, "migr snapshot", "pause_ms=%.3f criu_frozen_ms=%.3f pages=%llu via=%s",
	      rep.pause_ms, rep.criu_frozen_ms, (unsigned long long)rep.ckpt_pages,
	      A.c.docker_checkpoint ? "docker" : "runc");
	if (r == -EINPROGRESS) {
		/* The channel failed after "restore": ES-y alone knows. Ask it, anew. */
		char w[400];
		int o;

		event(j->to, j->mud_id, "migr in doubt", "id=%s", rep.id);
		say("MUD %u: %s; asking %s", j->mud_id, why, j->to);
		peer_close(pc);
		pc = NULL;
		o = doubt_ask(j->to, j->mud_id, rep.id, OUTCOME_WAIT_MS, 2000, &rep, w, sizeof(w));
		if (o >= 0) {
			resolved = migr_outcome_name(o);
			event(j->to, j->mud_id, "migr resolved", "id=%s outcome=%s", rep.id, resolved);
			say("MUD %u: migration %s to %s resolved after the lost channel: %s", j->mud_id,
			    rep.id, j->to, w);
			migr_doubt_clear(A.c.state_dir, rep.id);
		}
		if (o == MO_COMMITTED) {
			r = 0;		/* as if "done" had come */
		} else if (o >= 0) {
			r = -EREMOTEIO;
			snprintf(why, whylen, "%.250s", w);
		} else {
			rep.in_doubt = true;
			snprintf(why, whylen, "in doubt: %s asked for %d s: %.200s", j->to,
				 OUTCOME_WAIT_MS / 1000, w);
		}
	}
	if (!r) {
		/* CT-y serves and AP-y released every held answer: CT-x stops last. */
		double t_rm = eh_mono_ms();
		int rr = dk_remove(d, ct_id, true);

		rep.ctx_remove_ms = eh_mono_ms() - t_rm;
		if (rr)
			say("MUD %u: CT-x %s not removed: %s", j->mud_id, ct_id, dk_err(d));
		else
			event("docker", j->mud_id, "CT stopped", "ct=%.12s ms=%.3f", ct_id,
			      rep.ctx_remove_ms);
		/*
		 * CT-x ran from an image a C-Migr brought here: nothing else
		 * uses it (a container that does keeps it: no force).
		 */
		if (!strncmp(image, MIGR_IMAGE_REPO, strlen(MIGR_IMAGE_REPO)) &&
		    dk_image_remove(d, image, false))
			say("MUD %u: image %s not removed: %s", j->mud_id, image, dk_err(d));
	}
out:
	pthread_mutex_lock(&A.lock);
	if (!r) {
		snprintf(m->ct_node, sizeof(m->ct_node), "%s", j->to);
		snprintf(m->ct_id, sizeof(m->ct_id), "%s", rep.ct_y_id);
		if (rep.ct_y_image[0])
			snprintf(m->image, sizeof(m->image), "%s", rep.ct_y_image);
		m->ct_addr = rep.ct_y_addr;
		m->error[0] = '\0';
	} else if (r == -EINPROGRESS) {
		doubt_mark(m, rep.id, j->to, ct_id, why);
		event(j->to, j->mud_id, "migr in doubt", "id=%s ask=background", rep.id);
		say("MUD %u: migration %s to %s %s (CT-x kept; no migration of it until %s "
		    "answers; asking in the background)", j->mud_id, rep.id, j->to, why, j->to);
	} else {
		snprintf(m->error, sizeof(m->error), "migration to %s: %s", j->to, why);
		event(j->to, j->mud_id, "migr failed", "side=source");
		say("MUD %u: %s (CT-x goes on serving)", j->mud_id, m->error);
	}
	json_decref(m->report);
	m->report = migr_report_json(&rep);
	if (r)
		json_object_set_new(m->report, "error", json_string(why));
	if (rep.id[0])
		json_object_set_new(m->report, "id", json_string(rep.id));
	if (r == -EINPROGRESS)
		json_object_set_new(m->report, "in_doubt", json_true());
	if (resolved)
		json_object_set_new(m->report, "resolved", json_string(resolved));
	if (j->ctl_fd >= 0) {
		json_t *res = json_pack("{s:O}", "result", m->report);

		ctl_write(j->ctl_fd, res);
		json_decref(res);
		j->reported = true;
	}
	m->migr = MG_NONE;
	pthread_cond_broadcast(&A.cond);
	pthread_mutex_unlock(&A.lock);
	if (r == -EINPROGRESS)
		doubt_spawn(j->mud_id, rep.id, j->to, ct_id);
	if (pc)
		peer_close(pc);
	dk_close(d);
	json_decref(cmd);
	return r;
}

static void *migrate_thread(void *arg)
{
	struct migr_job *j = arg;
	char why[300];

	migrate_out(j, why, sizeof(why));
	free(j);
	thread_done();
	return NULL;
}

/* ---- control socket ------------------------------------------------------------- */

static int status_steer(void *ctx, struct in_addr mud, const struct eh_steer *st)
{
	json_t *arr = ctx;
	struct in_addr b = { .s_addr = st->backend_addr };
	char ma[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &mud, ma, sizeof(ma));
	json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:b, s:I}",
		"mud_addr", ma, "mode", eh_mode_name(st->mode), "backend", inet_ntoa(b),
		"backend_port", ntohs(st->backend_port), "mud_id", st->mud_id, "flags", st->flags,
		"rx", (json_int_t)st->rx, "buffered", (json_int_t)st->buffered,
		"delivered", (json_int_t)st->delivered, "lost_buf", (json_int_t)st->lost_buf,
		"ring_bytes", (json_int_t)st->ring_bytes, "ring", (int)st->has_ring,
		"ring_used", (json_int_t)st->ring_used));
	return 0;
}

static json_t *status_json(void)
{
	json_t *muds = json_array(), *peers = json_array(), *steering = json_array(), *j;
	static const char *const migr_names[] = { "none", "out", "in" };

	pthread_mutex_lock(&A.lock);
	for (int i = 0; i < MUDS_MAX; i++) {
		struct mud *m = &A.muds[i];
		char ma[INET_ADDRSTRLEN];

		if (!m->used)
			continue;
		inet_ntop(AF_INET, &m->addr, ma, sizeof(ma));
		json_t *doubt = !m->doubt ? NULL :
			json_pack("{s:s, s:s, s:s, s:f}", "id", m->doubt_id, "peer", m->doubt_peer,
				  "ct_x", m->doubt_ct,
				  "since_s", (eh_real_ns() - m->doubt_since_ns) / 1e9);

		json_array_append_new(muds, json_pack(
			"{s:i, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:b, s:s, s:s, s:f, s:s, s:O?, s:o?}",
			"mud_id", m->id, "name", m->name, "here", m->here, "mud_addr", ma,
			"ap_node", m->ap_node, "ct_node", m->ct_node, "ct_id", m->ct_id,
			"ct_addr", inet_ntoa(m->ct_addr), "ct_port", m->ct_port, "image", m->image,
			"busy", m->busy, "migration", migr_names[m->migr], "migr_peer",
			m->migr != MG_NONE ? m->migr_peer : "", "assoc_ms", m->assoc_ms,
			"error", m->error, "last_migration", m->report, "in_doubt", doubt));
	}
	pthread_mutex_unlock(&A.lock);
	for (int i = 0; i < A.c.npeers; i++) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &A.c.peers[i].addr, a, sizeof(a));
		json_array_append_new(peers, json_pack("{s:s, s:s}", "name", A.c.peers[i].name,
						       "addr", a));
	}
	if (A.dp_ok)
		eh_dp_steer_foreach(&A.dp, status_steer, steering);
	j = json_pack("{s:s, s:o, s:o, s:o, s:b, s:{s:I, s:I, s:I, s:I}}", "node", A.c.node,
		      "muds", muds, "peers", peers, "steering", steering, "dataplane", A.dp_ok,
		      "counters", "mud_junk", (json_int_t)A.junk, "peer_ok", (json_int_t)A.peer_ok,
		      "peer_refused", (json_int_t)A.peer_refused, "ctl_calls",
		      (json_int_t)A.ctl_calls);
	/* What staging left behind (a failed migration should leave nothing). */
	{
		json_t *staged = json_array();
		DIR *dir = opendir(A.c.state_dir);
		struct dirent *e;

		/* ES-y's outcome records are kept on purpose, not staging. */
		while (dir && (e = readdir(dir)))
			if (e->d_name[0] != '.' && strcmp(e->d_name, MIGR_OUTCOME_DIR))
				json_array_append_new(staged, json_string(e->d_name));
		if (dir)
			closedir(dir);
		json_object_set_new(j, "staged", staged);
	}
	return j;
}

static void *ctl_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char line[CTL_LINE_MAX];
	json_t *req = NULL, *ans = NULL;
	json_error_t jerr;
	const char *cmd;
	ssize_t n;
	size_t len = 0;

	/* One request line. */
	while (len < sizeof(line) - 1 && (n = read(fd, line + len, sizeof(line) - 1 - len)) > 0) {
		len += n;
		if (memchr(line, '\n', len))
			break;
	}
	line[len] = '\0';
	__atomic_add_fetch(&A.ctl_calls, 1, __ATOMIC_RELAXED);
	req = json_loads(line, JSON_DISABLE_EOF_CHECK, &jerr);
	cmd = json_string_value(json_object_get(req, "cmd")) ?: "";
	if (!strcmp(cmd, "status")) {
		ans = json_pack("{s:o}", "result", status_json());
	} else if (!strcmp(cmd, "migrate")) {
		struct migr_job j = { .ctl_fd = fd,
				      .mud_id = json_integer_value(json_object_get(req, "mud_id")) };
		const char *to = json_string_value(json_object_get(req, "to")) ?: "";
		const char *method = json_string_value(json_object_get(req, "method")) ?: "p";
		enum ag_method mth;
		char why[300];

		if (ag_method_parse(method, &mth) || mth == AG_MIGR_NONE || !ag_peer_by_name(&A.c, to)) {
			ans = json_pack("{s:s}", "error", "migrate wants mud_id, a configured peer and method c|p");
		} else {
			j.method = mth;
			snprintf(j.to, sizeof(j.to), "%s", to);
			/* The report went out as the last line, unless it never began. */
			if (migrate_out(&j, why, sizeof(why)) && !j.reported)
				ans = json_pack("{s:s}", "error", why);
		}
	} else {
		ans = json_pack("{s:s}", "error", "unknown command (status, migrate)");
	}
	ctl_write(fd, ans);
	json_decref(ans);
	json_decref(req);
	close(fd);
	thread_done();
	return NULL;
}

json_t *agentd_call(const char *ctl_path, json_t *req, void (*cb)(void *ctx, json_t *msg),
		    void *ctx)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = 0, cap = 1 << 16;
	char *s, *buf = NULL;
	json_t *last = NULL;
	int fd;

	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ctl_path) >= (int)sizeof(sa.sun_path)) {
		fprintf(stderr, "edgehop-agent: control socket path too long: %s\n", ctl_path);
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "edgehop-agent: no agent at %s: %s\n", ctl_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	s = json_dumps(req, JSON_COMPACT);
	if (!s || write(fd, s, strlen(s)) < 0 || write(fd, "\n", 1) < 0) {
		fprintf(stderr, "edgehop-agent: writing to %s: %s\n", ctl_path, strerror(errno));
		free(s);
		close(fd);
		return NULL;
	}
	free(s);
	buf = malloc(cap);
	while (buf) {
		ssize_t n;
		char *nl;

		/* A status of many MUDs is one long line: grow, within reason. */
		if (len + 1 >= cap) {
			char *b = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;

			if (!b) {
				fprintf(stderr, "edgehop-agent: an answer line over %zu bytes\n", cap);
				break;
			}
			buf = b;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += n;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			json_t *msg;

			*nl = '\0';
			msg = json_loads(buf, 0, NULL);
			len -= nl + 1 - buf;
			memmove(buf, nl + 1, len + 1);
			if (!msg)
				continue;
			if (json_object_get(msg, "progress")) {
				if (cb)
					cb(ctx, msg);
				json_decref(msg);
			} else {
				json_decref(last);
				last = msg;
			}
		}
	}
	free(buf);
	close(fd);
	if (!last)
		fprintf(stderr, "edgehop-agent: the agent at %s closed without an answer\n", ctl_path);
	return last;
}

/* ---- start and main loop -------------------------------------------------------- */

static int open_mud_socket(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(A.c.agent_port),
				  .sin_addr = A.c.agent_addr };
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		say("cannot bind the MUD socket %s:%u: %s", inet_ntoa(A.c.agent_addr),
		    A.c.agent_port, strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

static int open_ctl_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", A.c.ctl) >= (int)sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(A.c.ctl);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16)) {
		err = -errno;
		say("control socket %s: %s", A.c.ctl, strerror(errno));
		close(fd);
		return err;
	}
	chmod(A.c.ctl, 0600);
	return fd;
}

static int load_dataplane(void)
{
	struct eh_load_opts o = {
		.pin = A.c.pin, .radio = A.c.radio, .wan = A.c.wan,
		.vip = A.c.vip, .vip_port = A.c.vip_port,
		.attach = (enum eh_attach)A.c.attach,	/* 0 auto, 1 xdp, 2 tc: config.c */
	};
	int err = eh_dp_load(&o);

	if (err) {
		/* Pins of another build (its maps differ): start from a clean slate. */
		say("dataplane at %s does not load as it is (%s): unloading it and loading again",
		    A.c.pin, strerror(-err));
		eh_dp_unload(A.c.pin, A.c.radio, A.c.wan);
		err = eh_dp_load(&o);
	}
	if (err)
		return err;
	err = eh_dp_open(&A.dp, A.c.pin);
	if (err)
		return err;
	A.dp_ok = true;
	return 0;
}

/* ---- a restarted agent learns again the MUDs whose containers it holds -------- */

struct relearn_steer {
	struct mud *m;
	bool found;
};

/* The MUD's steering entry: its address at this AP, and whether it is here. */
static int relearn_entry(void *vctx, struct in_addr mud, const struct eh_steer *st)
{
	struct relearn_steer *r = vctx;

	if (st->mud_id != r->m->id || r->found)
		return 0;
	r->found = true;
	r->m->addr = mud;
	if (st->mode == EH_MODE_LOCAL && st->backend_addr == r->m->ct_addr.s_addr) {
		r->m->here = true;
		snprintf(r->m->ap_node, sizeof(r->m->ap_node), "%s", A.c.node);
	}
	return 0;
}

/*
 * Every running container labelled edgehop.mud on this node serves its MUD:
 * the agent's table (in memory) learns it again, so that the MUD's next
 * association finds its container (with its state) instead of a new one,
 * and a later handoff can move it. MUDs already known (a migration in or out
 * that recovery decided) are left as they are. Returns how many were learnt.
 */
static int relearn_containers(struct dk *d)
{
	json_t *list = NULL, *c;
	size_t i;
	int n = 0;

	if (dk_container_list(d, "edgehop.mud", &list)) {
		say("Docker's container list: %s (MUDs served before the restart not learnt)",
		    dk_err(d));
		return 0;
	}
	json_array_foreach(list, i, c) {
		const char *id = json_string_value(json_object_get(c, "Id"));
		const char *lab = json_string_value(json_object_get(json_object_get(c, "Labels"),
								    "edgehop.mud"));
		const char *st = json_string_value(json_object_get(c, "State"));
		json_t *ins = NULL;
		struct relearn_steer rs = { .found = false };
		struct in_addr ip = {};
		const char *a, *img;
		uint32_t mud_id;
		struct mud *m;

		if (!id || !lab || !st || strcmp(st, "running") ||
		    eh_parse_u32(lab, UINT32_MAX, &mud_id) || !mud_id)
			continue;
		if (dk_inspect(d, id, &ins)) {
			say("container %.12s of MUD %u: %s (not learnt)", id, mud_id, dk_err(d));
			continue;
		}
		a = json_string_value(json_object_get(json_object_get(ins, "NetworkSettings"),
						      "IPAddress"));
		img = json_string_value(json_object_get(json_object_get(ins, "Config"), "Image"));
		if (!a || inet_pton(AF_INET, a, &ip) != 1) {
			say("container %.12s of MUD %u has no IPv4 address (not learnt)", id, mud_id);
			json_decref(ins);
			continue;
		}
		pthread_mutex_lock(&A.lock);
		m = mud_find(mud_id, false);
		if (m && m->ct_node[0]) {
			pthread_mutex_unlock(&A.lock);	/* recovery knew it already */
			json_decref(ins);
			continue;
		}
		m = m ?: mud_find(mud_id, true);
		if (m) {
			snprintf(m->ct_node, sizeof(m->ct_node), "%s", A.c.node);
			snprintf(m->ct_id, sizeof(m->ct_id), "%s", id);
			snprintf(m->image, sizeof(m->image), "%s", img ?: "");
			m->ct_addr = ip;
			m->ct_port = SVC_PORT;
			json_decref(m->cmd);
			m->cmd = json_incref(json_object_get(json_object_get(ins, "Config"), "Cmd"));
			rs.m = m;
			if (A.dp_ok)
				eh_dp_steer_foreach(&A.dp, relearn_entry, &rs);
			say("MUD %u: its container %.12s at %s, from before the restart: %s", mud_id,
			    id, a, m->here ? "the MUD is here" : rs.found ?
			    "the MUD was steered elsewhere" : "no steering for it here");
			n++;
		}
		pthread_mutex_unlock(&A.lock);
		json_decref(ins);
	}
	json_decref(list);
	return n;
}

struct inbound_fix {
	const struct migr_inbound *ib;
	int fixed;
};

/* A steering entry of the MUD left in a replay mode by the crashed migration. */
static int inbound_entry(void *vctx, struct in_addr mud, const struct eh_steer *st)
{
	struct inbound_fix *f = vctx;
	const struct migr_inbound *ib = f->ib;
	struct in_addr to = { .s_addr = st->backend_addr };
	uint16_t port = ntohs(st->backend_port);
	enum eh_mode mode = EH_MODE_FORWARD;
	struct mud *m;
	int e;

	if (st->mud_id != ib->mud_id)
		return 0;
	if (ib->committed) {
		to = ib->ct_addr;
		port = SVC_PORT;
		mode = EH_MODE_LOCAL;
		/* This agent serves the MUD again: what it needs for the next move. */
		m = mud_find(ib->mud_id, true);
		if (m && !m->busy) {
			m->here = true;
			m->addr = mud;
			snprintf(m->ap_node, sizeof(m->ap_node), "%s", A.c.node);
			snprintf(m->ct_node, sizeof(m->ct_node), "%s", A.c.node);
			snprintf(m->ct_id, sizeof(m->ct_id), "%s", ib->ct_id);
			snprintf(m->image, sizeof(m->image), "%s", ib->ct_image);
			m->ct_addr = ib->ct_addr;
			m->ct_port = SVC_PORT;
			if (ib->cmd) {
				json_decref(m->cmd);
				m->cmd = json_incref(ib->cmd);
			}
		}
	}
	if (st->mode != EH_MODE_FWD_BUF && st->mode != EH_MODE_BUF_ONLY &&
	    !(ib->committed && st->mode == EH_MODE_LOCAL && st->backend_addr != to.s_addr))
		return 0;	/* already where the decision puts it */
	e = eh_dp_steer_set(&A.dp, mud, mode, to, port, st->mud_id);
	if (e)
		say("recovered: MUD %u (%s): steering %s -> %s: %s", ib->mud_id, inet_ntoa(mud),
		    eh_mode_name(mode), inet_ntoa(to), strerror(-e));
	else {
		say("recovered: MUD %u's steering %s -> %s:%u (was %s)", ib->mud_id,
		    eh_mode_name(mode), inet_ntoa(to), port, eh_mode_name(st->mode));
		f->fixed++;
	}
	return 0;
}

static void inbound_steer(void *ctx, const struct migr_inbound *ib)
{
	struct inbound_fix f = { .ib = ib };
	int e;

	(void)ctx;
	if (!A.dp_ok)
		return;
	e = eh_dp_steer_foreach(&A.dp, inbound_entry, &f);
	if (e)
		say("recovered: the steering entries: %s", strerror(-e));
	event(A.c.node, ib->mud_id, "migr recovered", "id=%s outcome=%s fixed=%d", ib->id,
	      ib->committed ? "committed" : "failed", f.fixed);
}

int agentd_run(const struct ag_config *cfg, int verbose)
{
	uint8_t key[256];
	size_t keylen;
	struct peer_allow allow[AG_PEERS_MAX];
	char addrs[AG_PEERS_MAX][INET_ADDRSTRLEN];
	struct sigaction sa = { .sa_handler = on_signal };
	int err;

	A.c = *cfg;
	A.verbose = verbose;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (mkdir(A.c.state_dir, 0700) && errno != EEXIST) {
		err = -errno;
		say("state directory %s: %s", A.c.state_dir, strerror(errno));
		return err;
	}
	err = peer_key_load(A.c.key, key, sizeof(key), &keylen);
	if (err) {
		say("peer key %s: %s", A.c.key, strerror(-err));
		return err;
	}
	for (int i = 0; i < A.c.npeers; i++) {
		inet_ntop(AF_INET, &A.c.peers[i].addr, addrs[i], sizeof(addrs[i]));
		allow[i].name = A.c.peers[i].name;
		allow[i].addr = addrs[i];
	}
	err = peer_ctx_new(&A.pctx, A.c.node, key, keylen, allow, A.c.npeers);
	memset(key, 0, sizeof(key));
	if (err) {
		say("TLS context: %s", strerror(-err));
		return err;
	}
	err = peer_ctx_set_congestion(A.pctx, A.c.tcp_cc);
	if (err) {
		say("TCP_CONGESTION = %s: %s (tcp_available_congestion_control lists what "
		    "this kernel has)", A.c.tcp_cc, strerror(-err));
		return err;
	}
	err = eh_log_open(&A.log, A.c.logrepo, A.c.node);
	if (err)
		say("logrepo %s: %s (events not sent)", A.c.logrepo, strerror(-err));
	if (A.c.load_dataplane) {
		err = load_dataplane();
		if (err) {
			say("dataplane on %s/%s: %s", A.c.radio, A.c.wan, strerror(-err));
			goto out;
		}
	}
	/* What a crashed life of this agent left half-way. */
	{
		struct dk *d = NULL;

		/* Migrations in: decided from their records, steered accordingly. */
		pthread_mutex_lock(&A.lock);
		migr_inbound_decide(A.c.state_dir, inbound_steer, NULL, say);
		pthread_mutex_unlock(&A.lock);

		bool dk_ok = dk_open(&d, A.c.docker) == 0;

		if (dk_ok)
			migr_recover(d, A.c.state_dir, EHRT_STAGE_DIR, say);
		else
			say("Docker at %s: %s (associations will fail until it answers)", A.c.docker,
			    d ? dk_err(d) : "unreachable");
		/* Migrations out whose outcome only their ES-y knows: asked in the background. */
		migr_doubt_list(A.c.state_dir, doubt_found, dk_ok ? d : NULL);
		/* The containers this node holds: their MUDs are served again as they were. */
		if (dk_ok)
			relearn_containers(d);
		dk_close(d);
	}
	A.mud_fd = open_mud_socket();
	A.peer_fd = peer_listen(NULL, A.c.peer_port);
	A.ctl_fd = open_ctl_socket();
	if (A.mud_fd < 0 || A.peer_fd < 0 || A.ctl_fd < 0) {
		err = A.mud_fd < 0 ? A.mud_fd : A.peer_fd < 0 ? A.peer_fd : A.ctl_fd;
		say("cannot listen (MUDs udp/%u, peers tcp/%u, control %s): %s", A.c.agent_port,
		    A.c.peer_port, A.c.ctl, strerror(-err));
		goto out;
	}
	say("serving: MUDs on udp/%u, peers on tcp/%u (TLS 1.3, PSK), control at %s, dataplane %s",
	    A.c.agent_port, A.c.peer_port, A.c.ctl, A.dp_ok ? "loaded" : "off");
	event("", 0, "agent up", "node=%s", A.c.node);

	while (!stopping) {
		struct pollfd p[3] = {
			{ .fd = A.mud_fd, .events = POLLIN },
			{ .fd = A.peer_fd, .events = POLLIN },
			{ .fd = A.ctl_fd, .events = POLLIN },
		};

		if (poll(p, 3, 500) <= 0)
			continue;
		if (p[0].revents & POLLIN)
			on_mud_datagram();
		if (p[1].revents & POLLIN) {
			/* The handshake runs in the connection's thread: a slow or
			 * hostile peer holds that thread only. */
			int fd = accept4(A.peer_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0 && spawn(peer_thread, (void *)(intptr_t)fd))
				close(fd);
		}
		if (p[2].revents & POLLIN) {
			int fd = accept4(A.ctl_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0 && spawn(ctl_thread, (void *)(intptr_t)fd))
				close(fd);
		}
	}
	say("stopping");
	err = 0;
out:
	if (A.mud_fd >= 0)
		close(A.mud_fd);
	if (A.peer_fd >= 0)
		close(A.peer_fd);
	if (A.ctl_fd >= 0) {
		close(A.ctl_fd);
		unlink(A.c.ctl);
	}
	/*
	 * The dataplane stays: MUDs go on being forwarded while the agent is
	 * restarted (make unload / edgehop-ap unload removes it).
	 */
	if (A.dp_ok)
		eh_dp_close(&A.dp);
	eh_log_close(&A.log);
	return err;
}
