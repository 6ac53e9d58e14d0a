// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The migration of one container between two agents: see migr.h. */
#include <errno.h>
#include <dirent.h>
#include <pthread.h>
#include <ftw.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "ckpt.h"
#include "dk.h"
#include "eh_time.h"
#include "ehrt.h"
#include "layer.h"
#include "migr.h"
#include "peer.h"
#include "svcprobe.h"
#include "tarfilter.h"

/* enum ag_method's values, without the agent's header. */
#define METHOD_P 1
#define METHOD_C 2
#define METHOD_AUTO 3	/* ES-y decides: P when it holds the base image, else C */

/* A step of the other side may take this long (docker checkpoint under TCG: ~30 s). */
#define PEER_STEP_TIMEOUT_MS	(300 * 1000)
#define SVC_READY_MS		(60 * 1000)
#define SVC_RENAME_MS		3000	/* CT-y's service takes its own name */
#define SVC_PORT		7777

static const char *const step_names[MS_MAX] = {
	[MS_T1_CHECKPOINT] = "T1-checkpoint",
	[MS_T2_SEND_CKPT]  = "T2-send-checkpoint",
	[MS_T3_CAPTURE]    = "T3-capture-fs",
	[MS_T4_SEND_FS]    = "T4-send-fs",
	[MS_T5_RESTORE]    = "T5-restore",
	[MS_T7_REPLAY]     = "T7-replay-cutover",
};

const char *migr_step_name(enum migr_step s)
{
	return s < MS_MAX ? step_names[s] : "?";
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Docker's root from an overlay2 UpperDir: ROOT/overlay2/<id>/diff. */
static int docker_root(const char *upper, char *root, size_t cap)
{
	char tmp[512];
	char *p;
	int i;

	if (snprintf(tmp, sizeof(tmp), "%s", upper) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (i = 0; i < 3; i++) {
		p = strrchr(tmp, '/');
		if (!p || p == tmp)
			return -EINVAL;
		*p = '\0';
	}
	return snprintf(root, cap, "%s", tmp) >= (int)cap ? -ENAMETOOLONG : 0;
}

/* The pid of a running container's init process, or -errno. */
static int ct_pid(struct dk *d, const char *ct)
{
	json_t *j = NULL;
	int pid, err = dk_inspect(d, ct, &j);

	if (err)
		return err;
	pid = (int)json_integer_value(json_object_get(json_object_get(j, "State"), "Pid"));
	json_decref(j);
	return pid > 0 ? pid : -ESRCH;
}

/*
 * The consistent snapshot's pause. With runc's dump: the container's cgroup
 * freezer directly (ckpt.h), which costs microseconds where Docker's pause and
 * unpause cost a round trip through dockerd, containerd, the shim and runc
 * each (~1 s apiece in the testbed's nodes). Docker's checkpoint API, or a
 * host without cgroup v2: Docker's pause.
 */
struct snap_pause {
	bool use_cg;
	struct ckpt_cgroup cg;
};

static int snap_freeze(struct dk *d, const char *ct, struct snap_pause *sp, bool frozen,
		       char *err, size_t errlen)
{
	int r;

	if (!sp->use_cg) {
		r = frozen ? dk_pause(d, ct) : dk_unpause(d, ct);
		if (r)
			fail(err, errlen, "%s CT-x: %s", frozen ? "pause" : "unpause", dk_err(d));
		return r;
	}
	r = ckpt_cgroup_freeze(&sp->cg, frozen, 10000, err, errlen);
	if (r && frozen) {
		char e2[200];

		/* Never leave a half-frozen CT-x behind a failed freeze. */
		ckpt_cgroup_freeze(&sp->cg, false, 10000, e2, sizeof(e2));
	}
	return r;
}

/* Id, UpperDir (overlay2) and IPv4 address of a container. */
static int ct_facts(struct dk *d, const char *ct, char id[65], char *upper, size_t ucap,
		    struct in_addr *ip)
{
	json_t *j = NULL;
	const char *s;
	int err = dk_inspect(d, ct, &j);

	if (err)
		return err;
	s = json_string_value(json_object_get(j, "Id"));
	if (id && s)
		snprintf(id, 65, "%s", s);
	s = json_string_value(json_object_get(json_object_get(json_object_get(j, "GraphDriver"),
							       "Data"), "UpperDir"));
	if (upper) {
		if (!s) {
			err = -ENOTSUP;	/* not overlay2 */
			goto out;
		}
		snprintf(upper, ucap, "%s", s);
	}
	if (ip) {
		s = json_string_value(json_object_get(json_object_get(j, "NetworkSettings"),
						      "IPAddress"));
		ip->s_addr = 0;
		if (s && *s)
			inet_pton(AF_INET, s, ip);
	}
out:
	json_decref(j);
	return err;
}

void migr_svc_name(const char *node, char name[MIGR_SVC_NAME_MAX])
{
	/* the service takes at most EH_NAME_LEN - 1 bytes */
	snprintf(name, MIGR_SVC_NAME_MAX, "CT-%.*s", MIGR_SVC_NAME_MAX - 4, node);
}

json_t *migr_ct_config(const char *image, json_t *cmd, uint32_t mud_id, const char *runtime,
		       const char *hostname)
{
	char mud[16];
	json_t *c;

	snprintf(mud, sizeof(mud), "%u", mud_id);
	/*
	 * seccomp=unconfined: CRIU's restore needs syscalls Docker's default
	 * profile refuses. Hostname: Docker writes it to the container's own
	 * /etc/hostname, which a restored service reads on SIGHUP (--name-file).
	 */
	c = json_pack("{s:s, s:O, s:s, s:{s:s}, s:{s:[s]}}",
		      "Image", image, "Cmd", cmd, "Hostname", hostname,
		      "Labels", "edgehop.mud", mud,
		      "HostConfig", "SecurityOpt", "seccomp=unconfined");
	if (c && runtime &&
	    json_object_set_new(json_object_get(c, "HostConfig"), "Runtime", json_string(runtime))) {
		json_decref(c);
		return NULL;
	}
	return c;
}

/* ---- staging ---------------------------------------------------------------- */

static int mkdir_p(const char *path, mode_t mode);

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) && errno != ENOENT ? -1 : 0;
}

/* rm -rf of a staging directory (never follows symlinks, never leaves the tree). */
static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* ---- durable records ---------------------------------------------------------- */

static int fd_sink(void *ctx, const void *buf, size_t len);

/* A rename or a new file in @dir made durable: fsync of the directory. */
static int fsync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (dfd < 0)
		return -errno;
	if (fsync(dfd))
		r = -errno;
	close(dfd);
	return r;
}

/*
 * Writes @text to @dir/@name so that a crash leaves the old content or the
 * new, never a mix or nothing: a temporary ".<name>.tmp", fsync, rename,
 * fsync of @dir.
 */
static int write_durable(const char *dir, const char *name, const char *text)
{
	char p[700], t[720];
	int fd, r;

	if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p) ||
	    snprintf(t, sizeof(t), "%s/.%s.tmp", dir, name) >= (int)sizeof(t))
		return -ENAMETOOLONG;
	fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = fd_sink(&fd, text, strlen(text));
	if (!r && fsync(fd))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	if (!r && rename(t, p))
		r = -errno;
	if (r) {
		unlink(t);
		return r;
	}
	return fsync_dir(dir);
}

/* A migration's id, as a file name: 1..63 of [A-Za-z0-9_.-], no leading '.'. */
static bool id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (!n || n >= MIGR_ID_MAX || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= '0' && id[i] <= '9') || strchr("_.-", id[i])))
			return false;
	return true;
}

/* ---- crash markers ---------------------------------------------------------- */

/*
 * A migration leaves a marker in the state directory while it holds something
 * a crash would strand: "<ckpt>.out" (CT-x may be paused, a checkpoint exists)
 * and "<ckpt>.in" (CT-y exists). migr_recover() undoes them at agent start.
 * The first line names the container; "key=value" lines follow: mud=, peer=
 * (ES-y) and, once "restore" is about to go to ES-y, restore=sent. A marker
 * with restore=sent becomes "<ckpt>.doubt" when the outcome is not known.
 */
struct marker {
	char ct[128];
	uint32_t mud_id;
	char peer[64];
	bool restore_sent;
};

static void marker_path(char *buf, size_t cap, const char *dir, const char *ck, const char *ext)
{
	snprintf(buf, cap, "%s/%s.%s", dir, ck, ext);
}

static int marker_write(const char *dir, const char *ck, const char *ext,
			const struct marker *mk)
{
	char name[MIGR_ID_MAX + 16], text[400];

	snprintf(name, sizeof(name), "%s.%s", ck, ext);
	snprintf(text, sizeof(text), "%s\n", mk->ct);
	if (mk->mud_id || mk->peer[0])
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "mud=%u\npeer=%s\n",
			 mk->mud_id, mk->peer);
	if (mk->restore_sent)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "restore=sent\n");
	return write_durable(dir, name, text);
}

static int marker_set(const char *dir, const char *ck, const char *ext, const char *ct)
{
	struct marker mk = {};

	snprintf(mk.ct, sizeof(mk.ct), "%s", ct);
	return marker_write(dir, ck, ext, &mk);
}

static int marker_read(const char *path, struct marker *mk)
{
	char line[200];
	FILE *f = fopen(path, "re");

	memset(mk, 0, sizeof(*mk));
	if (!f)
		return -errno;
	if (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		snprintf(mk->ct, sizeof(mk->ct), "%.127s", line);
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "mud=", 4))
			mk->mud_id = strtoul(line + 4, NULL, 10);
		else if (!strncmp(line, "peer=", 5))
			snprintf(mk->peer, sizeof(mk->peer), "%.63s", line + 5);
		else if (!strcmp(line, "restore=sent"))
			mk->restore_sent = true;
	}
	fclose(f);
	return 0;
}

static void marker_clear(const char *dir, const char *ck, const char *ext)
{
	char p[700];

	marker_path(p, sizeof(p), dir, ck, ext);
	unlink(p);
}

/*
 * Calls @fn(@ctx, id) for each "<id>.<ext>" marker in @dir whose id is a
 * valid migration id; @fn returns 1 to count it. Returns the count, or -errno.
 */
static int marker_each(const char *dir, const char *ext,
		       int (*fn)(void *ctx, const char *id), void *ctx)
{
	DIR *dd = opendir(dir);
	size_t el = strlen(ext) + 1;
	struct dirent *e;
	int n = 0;

	if (!dd)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(dd))) {
		size_t len = strlen(e->d_name);
		char id[MIGR_ID_MAX];

		if (len <= el || len - el >= sizeof(id) || e->d_name[len - el] != '.' ||
		    strcmp(e->d_name + len - el + 1, ext))
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)(len - el), e->d_name);
		if (id_ok(id))
			n += fn(ctx, id);
	}
	closedir(dd);
	return n;
}

/* C-Migr's committed image of migration @ck: ES-x commits it, ES-y loads it. */
static void image_tag(char *buf, size_t cap, uint32_t mud_id, const char *ck)
{
	snprintf(buf, cap, MIGR_IMAGE_REPO "mud-%u:%s", mud_id, ck);
}

/*
 * A crash left C-Migr's image of @ck (MUD @mud_id, 0: read from the id,
 * "eh-<mud>-...") on this node: removed, said; none there is fine.
 */
static void recover_image(struct dk *d, uint32_t mud_id, const char *ck,
			  int (*say)(const char *fmt, ...))
{
	char tag[MIGR_ID_MAX + 48];
	int r;

	if (!mud_id && sscanf(ck, "eh-%u-", &mud_id) != 1)
		return;
	image_tag(tag, sizeof(tag), mud_id, ck);
	r = dk_image_remove(d, tag, true);
	if (!r)
		say("recovered: image %s removed", tag);
	else if (r != -ENOENT)
		say("recovered: image %s not removed: %s", tag, dk_err(d));
}

/* "<ck>.out" -> "<ck>.doubt": the outcome is ES-y's to tell. */
static int marker_to_doubt(const char *dir, const char *ck)
{
	char a[700], b[700];

	marker_path(a, sizeof(a), dir, ck, "out");
	marker_path(b, sizeof(b), dir, ck, "doubt");
	if (rename(a, b))
		return -errno;
	return fsync_dir(dir);
}

/* ---- ES-y's outcome records --------------------------------------------------- */

static const char *const outcome_names[] = {
	[MO_UNKNOWN] = "unknown", [MO_RUNNING] = "running",
	[MO_COMMITTED] = "committed", [MO_FAILED] = "failed",
};

const char *migr_outcome_name(int o)
{
	return o >= 0 && o <= MO_FAILED ? outcome_names[o] : "?";
}

static int outcome_parse(const char *name)
{
	for (int i = 0; i <= MO_FAILED; i++)
		if (name && !strcmp(name, outcome_names[i]))
			return i;
	return -1;
}

static void outcome_dir(char *buf, size_t cap, const char *state_dir)
{
	snprintf(buf, cap, "%s/" MIGR_OUTCOME_DIR, state_dir);
}

struct rec_age {
	char name[MIGR_ID_MAX + 8];
	struct timespec mt;
};

static int rec_older(const void *a, const void *b)
{
	const struct rec_age *x = a, *y = b;

	if (x->mt.tv_sec != y->mt.tv_sec)
		return x->mt.tv_sec < y->mt.tv_sec ? -1 : 1;
	if (x->mt.tv_nsec != y->mt.tv_nsec)
		return x->mt.tv_nsec < y->mt.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Keeps the newest MIGR_OUTCOMES_KEEP records (by mtime); stale temporaries go. */
static void outcome_prune(const char *dir)
{
	struct rec_age *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *dd = opendir(dir);

	if (!dd)
		return;
	while ((e = readdir(dd))) {
		size_t len = strlen(e->d_name);
		char p[800];
		struct stat sb;

		if (len <= 5 || strcmp(e->d_name + len - 5, ".json") || e->d_name[0] == '.' ||
		    len >= sizeof(v->name))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (stat(p, &sb))
			continue;
		if (n == cap) {
			struct rec_age *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		snprintf(v[n].name, sizeof(v[n].name), "%s", e->d_name);
		v[n++].mt = sb.st_mtim;
	}
	closedir(dd);
	if (n > MIGR_OUTCOMES_KEEP) {
		qsort(v, n, sizeof(*v), rec_older);
		for (size_t i = 0; i < n - MIGR_OUTCOMES_KEEP; i++) {
			char p[800];

			snprintf(p, sizeof(p), "%s/%s", dir, v[i].name);
			unlink(p);
		}
	}
	free(v);
}

/* Records @rec (an object with "id" and "outcome") as the outcome of @id. */
static int outcome_put(const char *state_dir, const char *id, json_t *rec)
{
	char dir[700], name[MIGR_ID_MAX + 8];
	char *text;
	int r;

	outcome_dir(dir, sizeof(dir), state_dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	if (!text)
		return -ENOMEM;
	snprintf(name, sizeof(name), "%s.json", id);
	r = write_durable(dir, name, text);
	free(text);
	if (!r)
		outcome_prune(dir);
	return r;
}

static json_t *outcome_rec(const char *id, int outcome, uint32_t mud_id, const char *from)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:I}", "id", id,
			 "outcome", migr_outcome_name(outcome), "mud_id", (json_int_t)mud_id,
			 "from", from ?: "", "at", (json_int_t)time(NULL));
}

/* The record of @id: 0 (@rec set), -ENOENT, or -EBADMSG for one that does not parse. */
static int outcome_get(const char *state_dir, const char *id, json_t **rec)
{
	char p[800];
	json_t *j;
	FILE *f;
	int o;

	*rec = NULL;
	snprintf(p, sizeof(p), "%s/" MIGR_OUTCOME_DIR "/%s.json", state_dir, id);
	f = fopen(p, "re");
	if (!f)
		return -errno;
	j = json_loadf(f, JSON_REJECT_DUPLICATES, NULL);
	fclose(f);
	o = outcome_parse(json_string_value(json_object_get(j, "outcome")));
	if (!json_is_object(j) || o <= MO_UNKNOWN ||
	    strcmp(json_string_value(json_object_get(j, "id")) ?: "", id)) {
		json_decref(j);
		return -EBADMSG;
	}
	*rec = j;
	return 0;
}

/* The outcome records still "running" at agent start end "failed": none runs now. */
static int outcome_recover(const char *state_dir, int (*say)(const char *fmt, ...))
{
	char dir[700];
	struct dirent *e;
	DIR *dd;
	int n = 0;

	outcome_dir(dir, sizeof(dir), state_dir);
	dd = opendir(dir);
	if (!dd)
		return 0;
	while ((e = readdir(dd))) {
		size_t len = strlen(e->d_name);
		char id[MIGR_ID_MAX];
		json_t *rec = NULL;

		if (e->d_name[0] == '.' && len > 4 && !strcmp(e->d_name + len - 4, ".tmp")) {
			char p[800];

			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);	/* a write a crash interrupted */
			continue;
		}
		if (len <= 5 || len - 5 >= sizeof(id) || strcmp(e->d_name + len - 5, ".json"))
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)(len - 5), e->d_name);
		if (outcome_get(state_dir, id, &rec))
			continue;
		if (outcome_parse(json_string_value(json_object_get(rec, "outcome"))) == MO_RUNNING) {
			json_object_set_new(rec, "outcome", json_string("failed"));
			json_object_set_new(rec, "reason", json_string(
				"ES-y's agent restarted before the migration was decided"));
			json_object_set_new(rec, "at", json_integer(time(NULL)));
			if (!outcome_put(state_dir, id, rec))
				say("recovered: migration %s in had not ended: recorded failed", id);
			n++;
		}
		json_decref(rec);
	}
	closedir(dd);
	return n;
}

/*
 * edgehop-runc's staging dirs: one per CT-y being restored. At agent start no
 * migration is under way, so each is what a crash left (used or not).
 */
static int recover_stage(const char *stage, int (*say)(const char *fmt, ...))
{
	DIR *dir = opendir(stage);
	struct dirent *e;
	int n = 0;

	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		char p[700];

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", stage, e->d_name);
		rm_tree(p);
		say("recovered: restore staging %s removed", p);
		n++;
	}
	closedir(dir);
	return n;
}

int migr_recover(struct dk *d, const char *state_dir, const char *restore_stage,
		 int (*say)(const char *fmt, ...))
{
	DIR *dir = opendir(state_dir);
	struct dirent *e;
	int n = restore_stage ? recover_stage(restore_stage, say) : 0;

	if (!dir)
		return errno == ENOENT ? n : -errno;
	while ((e = readdir(dir))) {
		char p[700], ck[256];
		size_t len = strlen(e->d_name);
		bool out = len > 4 && !strcmp(e->d_name + len - 4, ".out");
		bool in = len > 3 && !strcmp(e->d_name + len - 3, ".in");
		bool tar = len > 10 && !strcmp(e->d_name + len - 10, "-layer.tar");
		bool tmp = e->d_name[0] == '.' && len > 4 && !strcmp(e->d_name + len - 4, ".tmp");
		struct marker mk = {};
		bool keep = false;

		if (!out && !in && !tar && !tmp)
			continue;
		snprintf(p, sizeof(p), "%s/%s", state_dir, e->d_name);
		if (tmp) {		/* a marker's write a crash interrupted */
			unlink(p);
			continue;
		}
		if (out || in)
			marker_read(p, &mk);
		snprintf(ck, sizeof(ck), "%.*s", (int)(len - (out ? 4 : in ? 3 : 10)), e->d_name);
		if (out && mk.ct[0]) {
			char stage[700];

			/*
			 * CT-x goes on serving: never left paused by a crash,
			 * whether Docker paused it or its cgroup was frozen
			 * directly (runc resume thaws that).
			 */
			if (dk_unpause(d, mk.ct)) {
				struct ckpt_opts co = { .timeout_ms = 30000 };
				char e2[300];

				ckpt_thaw(mk.ct, &co, e2, sizeof(e2));
			}
			dk_checkpoint_delete(d, mk.ct, ck);
			snprintf(stage, sizeof(stage), "%s/%s", state_dir, ck);
			rm_tree(stage);
			say("recovered: CT-x %.12s unpaused, checkpoint %s removed", mk.ct, ck);
			/* CT-x runs from its own image, never from the committed one. */
			recover_image(d, mk.mud_id, ck, say);
			/* ES-y may have cut over: not ours to decide. */
			if (mk.restore_sent && mk.peer[0] && id_ok(ck)) {
				int r = marker_to_doubt(state_dir, ck);

				keep = !r;
				if (r)
					say("recovered: migration %s: %s.doubt: %s", ck, ck, strerror(-r));
				else
					say("recovered: migration %s of MUD %u to %s: restore had been "
					    "sent, its outcome is in doubt: CT-x %.12s kept, %s will be "
					    "asked", ck, mk.mud_id, mk.peer, mk.ct, mk.peer);
			}
		} else if (in && mk.ct[0]) {
			json_t *rec = NULL;
			bool committed = id_ok(ck) && !outcome_get(state_dir, ck, &rec) &&
				!strcmp(json_string_value(json_object_get(rec, "outcome")) ?: "",
					"committed");

			if (committed) {
				/* Cut over and recorded: CT-y serves the MUD, ES-x was told or asks. */
				say("recovered: CT-y %s kept: migration %s had committed", mk.ct, ck);
			} else {
				/* By name; absent if the crash came before Docker made it. */
				if (dk_remove(d, mk.ct, true) == 0)
					say("recovered: half-restored CT-y %s removed", mk.ct);
				/* The image C-Migr loaded for it (a committed CT-y keeps it). */
				recover_image(d, 0, ck, say);
				if (rec && outcome_parse(json_string_value(json_object_get(rec,
						"outcome"))) != MO_FAILED) {
					json_object_set_new(rec, "outcome", json_string("failed"));
					json_object_set_new(rec, "reason", json_string(
						"ES-y's agent restarted mid-migration: CT-y removed"));
					json_object_set_new(rec, "at", json_integer(time(NULL)));
					outcome_put(state_dir, ck, rec);
				}
			}
			json_decref(rec);
		}
		if (!keep)
			unlink(p);
		n++;
	}
	closedir(dir);
	return n + outcome_recover(state_dir, say);
}

struct inbound_scan {
	const char *state_dir;
	void (*fn)(void *ctx, const struct migr_inbound *ib);
	void *ctx;
	int (*say)(const char *fmt, ...);
};

static int inbound_one(void *vctx, const char *id)
{
	struct inbound_scan *sc = vctx;
	int (*say)(const char *fmt, ...) = sc->say;
	struct migr_inbound ib = { .committed = false };
	json_t *rec = NULL;
	int o, r;

	snprintf(ib.id, sizeof(ib.id), "%s", id);
	if (outcome_get(sc->state_dir, ib.id, &rec)) {
		/* No record: the crash came before the migration was recorded. */
		say("recovered: migration %s in has no outcome record: nothing to steer", ib.id);
		return 0;
	}
	ib.mud_id = json_integer_value(json_object_get(rec, "mud_id"));
	o = outcome_parse(json_string_value(json_object_get(rec, "outcome")));
	if (o == MO_COMMITTED) {
		const char *a = json_string_value(json_object_get(rec, "ct_addr"));

		ib.committed = true;
		snprintf(ib.ct_id, sizeof(ib.ct_id), "%.64s",
			 json_string_value(json_object_get(rec, "ct_id")) ?: "");
		snprintf(ib.ct_image, sizeof(ib.ct_image), "%.127s",
			 json_string_value(json_object_get(rec, "ct_image")) ?: "");
		if (!a || inet_pton(AF_INET, a, &ib.ct_addr) != 1 || !ib.ct_id[0]) {
			say("recovered: migration %s in committed without CT-y's id and "
			    "address in its record: its steering is left as it is", ib.id);
			json_decref(rec);
			return 0;
		}
		ib.cmd = json_object_get(rec, "cmd");
		say("recovered: migration %s of MUD %u in had committed: CT-y %.12s at %s "
		    "serves it", ib.id, ib.mud_id, ib.ct_id, a);
	} else {
		if (o != MO_FAILED) {
			/* Decided here, before the steering says it: ES-x may ask. */
			json_object_set_new(rec, "outcome", json_string("failed"));
			json_object_set_new(rec, "reason", json_string(
				"ES-y's agent restarted before the commit point: CT-x serves"));
			json_object_set_new(rec, "at", json_integer(time(NULL)));
			r = outcome_put(sc->state_dir, ib.id, rec);
			if (r) {
				say("recovered: migration %s in: its failed record not written "
				    "(%s): its steering is left as it is", ib.id, strerror(-r));
				json_decref(rec);
				return 0;
			}
		}
		say("recovered: migration %s of MUD %u in had not committed: back to CT-x",
		    ib.id, ib.mud_id);
	}
	if (ib.mud_id)
		sc->fn(sc->ctx, &ib);
	json_decref(rec);
	return 1;
}

int migr_inbound_decide(const char *state_dir,
			void (*fn)(void *ctx, const struct migr_inbound *ib), void *ctx,
			int (*say)(const char *fmt, ...))
{
	struct inbound_scan sc = { .state_dir = state_dir, .fn = fn, .ctx = ctx, .say = say };

	return marker_each(state_dir, "in", inbound_one, &sc);
}

/* ---- messages ------------------------------------------------------------- */

/* Receives the next message and checks its op; "error"/"failed" carry a reason. */
static int expect(struct peer_conn *pc, const char *op, json_t **out, char *err, size_t errlen)
{
	json_t *m = NULL;
	const char *got;
	int r = peer_recv_msg(pc, &m);

	if (r) {
		fail(err, errlen, "peer %s: %s while waiting for '%s'", peer_name(pc),
		     strerror(-r), op);
		return r;
	}
	got = json_string_value(json_object_get(m, "op"));
	if (!got || strcmp(got, op)) {
		const char *why = json_string_value(json_object_get(m, "reason"));

		/* ES-y said why it failed, or it sent what it should not have. */
		r = got && (!strcmp(got, "error") || !strcmp(got, "failed")) ? -EREMOTEIO : -EPROTO;
		fail(err, errlen, "peer %s: %s%s%s", peer_name(pc),
		     got ? got : "message without op", why ? ": " : "", why ? why : "");
		json_decref(m);	/* got and why point into it */
		return r;
	}
	if (out)
		*out = m;
	else
		json_decref(m);
	return 0;
}

static int send_op(struct peer_conn *pc, json_t *m)
{
	int r;

	if (!m)
		return -ENOMEM;
	r = peer_send_msg(pc, m);
	json_decref(m);
	return r;
}

/* ---- streams -------------------------------------------------------------- */

struct wctx {
	struct peer_wstream *w;
	migr_progress_fn progress;
	void *pctx;
	const char *step;
	uint64_t bytes, total, next_report;
};

static int wsink(void *ctx, const void *buf, size_t len)
{
	struct wctx *c = ctx;
	int r = peer_wstream_write(c->w, buf, len);

	c->bytes += len;
	if (c->progress && c->bytes >= c->next_report) {
		c->progress(c->pctx, c->step, c->bytes, c->total);
		c->next_report = c->bytes + (1u << 20);
	}
	return r;
}

static ssize_t rsource(void *ctx, void *buf, size_t cap)
{
	return peer_rstream_read(ctx, buf, cap);
}

enum payload { PL_DIR, PL_FILE, PL_IMAGE };

static int tf_sink(void *ctx, const void *buf, size_t len)
{
	return tf_write(ctx, buf, len);
}

/*
 * Sends "op" then a stream of a directory (tar), a file, or an image (docker
 * save; minus the layer blobs named in @drop, which ES-y holds), and waits
 * for ES-y's "ok".
 */
static int send_stream_drop(struct dk *d, struct peer_conn *pc, const char *op,
			    enum payload kind, const char *what, uint64_t total,
			    const struct migr_src *s, json_t *drop, struct migr_stepstat *st,
			    char *err, size_t errlen)
{
	struct wctx c = { .progress = s->progress, .pctx = s->pctx, .step = op, .total = total };
	struct peer_xfer x = {};
	double t0 = eh_mono_ms();
	int r;

	r = send_op(pc, json_pack("{s:s}", "op", op));
	if (r)
		return fail(err, errlen, "send '%s' to %s: %s", op, peer_name(pc), strerror(-r)), r;
	r = peer_wstream_begin(pc, 1, &c.w);
	if (r)
		return fail(err, errlen, "stream %s: %s", op, strerror(-r)), r;
	if (kind == PL_DIR) {
		struct layer_stats ls = {};

		r = layer_write(what, wsink, &c, &ls);
	} else if (kind == PL_IMAGE && json_array_size(drop)) {
		struct tarfilter *tf = malloc(sizeof(*tf));
		size_t i;
		json_t *v;

		r = tf ? 0 : -ENOMEM;
		if (tf) {
			tf_init(tf, wsink, &c);
			json_array_foreach(drop, i, v) {
				const char *id = json_string_value(v);
				char name[128];

				if (!r && id && !strncmp(id, "sha256:", 7)) {
					snprintf(name, sizeof(name), "blobs/sha256/%.64s", id + 7);
					r = tf_drop(tf, name);
				}
			}
			if (!r)
				r = dk_image_save(d, what, tf_sink, tf);
			if (!r)
				r = tf_finish(tf);
			/* Each named blob must have been there once: else docker
			 * save laid the image out otherwise and ES-y would lack it. */
			if (!r && tf->dropped != tf->ndrop)
				r = -ENOENT;
			st->skipped_bytes += tf->bytes_dropped;
			tf_free(tf);
			free(tf);
		}
	} else if (kind == PL_IMAGE) {
		r = dk_image_save(d, what, wsink, &c);
	} else {
		char buf[1 << 16];
		int fd = open(what, O_RDONLY | O_CLOEXEC);
		ssize_t n = 0;

		r = fd < 0 ? -errno : 0;
		while (!r && (n = read(fd, buf, sizeof(buf))) > 0)
			r = wsink(&c, buf, n);
		if (!r && n < 0)
			r = -errno;
		if (fd >= 0)
			close(fd);
	}
	if (r) {
		fail(err, errlen, "%s: reading %s: %s%s%s", op, what, strerror(-r),
		     kind == PL_IMAGE ? ": " : "", kind == PL_IMAGE ? dk_err(d) : "");
		peer_wstream_abort(c.w, err);
		return r;
	}
	r = peer_wstream_end(c.w, &x);
	if (r)
		return fail(err, errlen, "%s: sending to %s: %s", op, peer_name(pc), strerror(-r)), r;
	if (s->progress)
		s->progress(s->pctx, op, x.raw_bytes, x.raw_bytes);
	st->raw_bytes += x.raw_bytes;
	st->wire_bytes += x.wire_bytes;
	st->ms += eh_mono_ms() - t0;
	/* ES-y acknowledges every stream once it holds it (or says why not). */
	return expect(pc, "ok", NULL, err, errlen);
}

static int send_stream(struct dk *d, struct peer_conn *pc, const char *op, enum payload kind,
		       const char *what, uint64_t total, const struct migr_src *s,
		       struct migr_stepstat *st, char *err, size_t errlen)
{
	return send_stream_drop(d, pc, op, kind, what, total, s, NULL, st, err, errlen);
}

/* ---- source side ---------------------------------------------------------- */

/* -ECANCELED (with why) once the agent asked to stop: the MUD moved again. */
static int cancelled(const struct migr_src *s, const char *when, char *err, size_t errlen)
{
	if (!s->cancel || !*s->cancel)
		return 0;
	fail(err, errlen, "cancelled %s (the MUD moved again)", when);
	return -ECANCELED;
}

static int fd_sink(void *ctx, const void *buf, size_t len)
{
	int fd = *(int *)ctx;

	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;	/* ENOSPC: a full disk fails the migration */
		buf = (const char *)buf + n;
		len -= n;
	}
	return 0;
}

/* ---- T5's moments (migr_mark) ------------------------------------------------ */

/* Whether the service's command line @cmd (a JSON array) holds @opt. */
static bool cmd_has(json_t *cmd, const char *opt)
{
	size_t i;
	json_t *v;

	json_array_foreach(cmd, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), opt))
			return true;
	return false;
}

/*
 * A restored CT-y's service holds CT-x's memory, its name included, so the
 * MUD could not tell which container answered. A SIGHUP (sent as soon as
 * Docker's start returns, so that the service handles it while CT-y is
 * inspected and probed) makes it read its own (--name-file: CT-y's
 * /etc/hostname, Docker's, which holds CT-y's Hostname); here it is asked
 * until it answers under @want. Before the replay, so every answer CT-y sends
 * the MUD carries it. Failing here fails nothing: the name only labels
 * answers. 0, or -errno with @why.
 */
static int rename_wait(struct in_addr addr, uint32_t mud_id, const char *want,
		       char *why, size_t whylen)
{
	double end = eh_mono_ms() + SVC_RENAME_MS;
	struct svc_mud_state ss;
	int r;

	for (;;) {
		double left = end - eh_mono_ms();

		if (left <= 0) {
			snprintf(why, whylen, "not renamed to %s within %d ms", want,
				 SVC_RENAME_MS);
			return -ETIMEDOUT;
		}
		r = svc_probe(addr, SVC_PORT, mud_id, (int)left, &ss);
		if (r) {
			snprintf(why, whylen, "status: %s", strerror(-r));
			return r;
		}
		if (!strcmp(ss.name, want))
			return 0;
		/* the signal is handled between two datagrams: ask again soon */
		usleep(10000);
	}
}

static void mark_add(struct migr_report *rep, const char *what, double ms)
{
	struct migr_mark *k;
	int i;

	if (rep->n_t5_marks >= MIGR_MAX_MARKS)
		return;
	/* In time order (insertion: a handful of entries). */
	for (i = rep->n_t5_marks; i > 0 && rep->t5_marks[i - 1].ms > ms; i--)
		rep->t5_marks[i] = rep->t5_marks[i - 1];
	k = &rep->t5_marks[i];
	snprintf(k->what, sizeof(k->what), "%s", what);
	k->ms = ms;
	rep->n_t5_marks++;
}

/*
 * edgehop-runc's marks file (ehrt.h: "<what> <CLOCK_MONOTONIC ms>" lines),
 * relative to @t0. Only the names it documents are taken; a missing or
 * garbled file adds nothing.
 */
static void marks_from_runtime(struct migr_report *rep, const char *stage, double t0)
{
	static const char *const known[] = { EHRT_MARK_CREATE, EHRT_MARK_RESTORE,
					     EHRT_MARK_RESTORED, EHRT_MARK_START };
	char p[700], what[32];
	double ms;
	FILE *f;

	snprintf(p, sizeof(p), "%s/marks", stage);
	f = fopen(p, "re");
	if (!f)
		return;
	while (fscanf(f, "%31s %lf", what, &ms) == 2)
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcmp(what, known[i]))
				mark_add(rep, known[i], ms - t0);
	fclose(f);
}

static json_t *marks_json(const struct migr_report *rep)
{
	json_t *o = json_object();

	for (int i = 0; i < rep->n_t5_marks; i++)
		json_object_set_new(o, rep->t5_marks[i].what, json_real(rep->t5_marks[i].ms));
	return o;
}

static void marks_from_json(struct migr_report *rep, json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
		if (json_is_number(v))
			mark_add(rep, k, json_number_value(v));
}

/* What ES-y's "done" (or its committed outcome record) says of T5..T8 and CT-y. */
static void rep_from_done(struct migr_report *rep, json_t *m)
{
	rep->step[MS_T5_RESTORE].ms = json_real_value(json_object_get(m, "restore_ms"));
	snprintf(rep->restore_via, sizeof(rep->restore_via), "%s",
		 json_string_value(json_object_get(m, "restore_via")) ?: "");
	rep->early_start = json_is_true(json_object_get(m, "early_start"));
	snprintf(rep->ct_y_image, sizeof(rep->ct_y_image), "%s",
		 json_string_value(json_object_get(m, "ct_image")) ?: "");
	rep->step[MS_T7_REPLAY].ms = json_real_value(json_object_get(m, "replay_ms"));
	rep->n_t5_marks = 0;
	marks_from_json(rep, json_object_get(m, "t5_marks"));
	rep->replayed = json_integer_value(json_object_get(m, "replayed"));
	rep->relayed = json_integer_value(json_object_get(m, "relayed"));
	snprintf(rep->ct_y_id, sizeof(rep->ct_y_id), "%s",
		 json_string_value(json_object_get(m, "ct_id")) ?: "");
	snprintf(rep->ct_y_name, sizeof(rep->ct_y_name), "%s",
		 json_string_value(json_object_get(m, "ct_name")) ?: "");
	rep->ct_y_addr.s_addr = 0;
	inet_pton(AF_INET, json_string_value(json_object_get(m, "ct_addr")) ?: "0.0.0.0",
		  &rep->ct_y_addr);
}

int migr_source(struct dk *d, struct peer_conn *pc, const struct migr_src *s,
		struct migr_report *rep, char *err, size_t errlen)
{
	char idx[65], upper[512], root[512], ckdir[700], layer[512], ckname[MIGR_ID_MAX], tag[128];
	char stage[600], work[700];
	struct marker mk = { .mud_id = s->mud_id };
	bool doubt = false;
	uint32_t nonce;
	struct ckpt_stats cs = { .log_frozen_ms = -1 };
	char image_id[80];
	struct stat sb;
	json_t *m = NULL;
	bool paused = false, ckpt = false, staged = false, committed = false;
	struct snap_pause sp = { .use_cg = false };
	json_t *layers = NULL, *drop = NULL, *img = NULL;
	int method = s->method;
	double t0 = eh_mono_ms(), tp = 0, t;
	int r;

	memset(rep, 0, sizeof(*rep));
	rep->method = s->method;
	/* Unique: ES-y keys the migration's outcome record by it. */
	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce))
		nonce = (uint32_t)(eh_mono_ms() * 1000) ^ (uint32_t)getpid() << 16;
	snprintf(ckname, sizeof(ckname), "eh-%u-%lld-%08x", s->mud_id, (long long)time(NULL),
		 nonce);
	snprintf(rep->id, sizeof(rep->id), "%s", ckname);
	image_tag(tag, sizeof(tag), s->mud_id, ckname);
	snprintf(layer, sizeof(layer), "%s/%s-layer.tar", s->state_dir, ckname);

	r = ct_facts(d, s->ct_id, idx, upper, sizeof(upper), NULL);
	if (r) {
		fail(err, errlen, "inspect CT-x %s: %s: %s", s->ct_id, strerror(-r), dk_err(d));
		return r;
	}
	r = docker_root(upper, root, sizeof(root));
	if (r)
		return fail(err, errlen, "Docker's root from UpperDir %s: %s", upper, strerror(-r)), r;
	/*
	 * Docker's API dumps into containers/<id>/checkpoints/<name> (through
	 * containerd's content store); runc directly into our staging dir.
	 */
	snprintf(stage, sizeof(stage), "%s/%s", s->state_dir, ckname);
	snprintf(work, sizeof(work), "%s/work", stage);
	if (s->docker_checkpoint)
		snprintf(ckdir, sizeof(ckdir), "%s/containers/%s/checkpoints/%s", root, idx, ckname);
	else
		snprintf(ckdir, sizeof(ckdir), "%s/img", stage);
	rep->criu_frozen_ms = -1;

	peer_set_timeout(pc, PEER_STEP_TIMEOUT_MS);
	/* CT-x's image layers (diff IDs, base first): ES-y says how many it holds. */
	if (!dk_image_inspect(d, s->image, &img))
		layers = json_incref(json_object_get(json_object_get(img, "RootFS"), "Layers"));
	json_decref(img);
	if (!json_is_array(layers)) {
		json_decref(layers);
		layers = json_array();
	}
	r = send_op(pc, json_pack("{s:s, s:i, s:s, s:i, s:s, s:O, s:s, s:O}", "op", "migr_begin",
				  "mud_id", (int)s->mud_id, "from", s->node, "method", s->method,
				  "image", s->image, "cmd", s->cmd, "checkpoint", ckname,
				  "layers", layers));
	if (r) {
		json_decref(layers);
		return fail(err, errlen, "migr_begin to %s: %s", peer_name(pc), strerror(-r)), r;
	}
	t = eh_mono_ms();
	r = expect(pc, "ready", &m, err, errlen);
	if (r) {
		json_decref(layers);
		return r;
	}
	rep->ready_ms = eh_mono_ms() - t;
	{
		json_int_t got = json_integer_value(json_object_get(m, "method"));
		json_int_t have = json_integer_value(json_object_get(m, "have_layers"));

		/* An ES-y that does not say keeps the method asked (and holds nothing). */
		if (method == METHOD_AUTO)
			method = got;
		if (method != METHOD_P && method != METHOD_C) {
			json_decref(layers);
			json_decref(m);
			send_op(pc, json_pack("{s:s, s:s}", "op", "abort", "reason", "no method"));
			return fail(err, errlen, "%s chose no migration method", peer_name(pc)),
			       -EPROTO;
		}
		if (method == METHOD_C && have > 0 && (size_t)have <= json_array_size(layers)) {
			drop = json_array();
			for (json_int_t i = 0; i < have; i++)
				json_array_append(drop, json_array_get(layers, i));
		}
	}
	json_decref(layers);
	json_decref(m);
	m = NULL;
	rep->method = method;

	/* T1 + T3: one instant for memory and files. */
	r = cancelled(s, "before the snapshot", err, errlen);
	if (r)
		goto abort;
	if (s->progress)
		s->progress(s->pctx, "snapshot", 0, 0);
	snprintf(mk.ct, sizeof(mk.ct), "%s", idx);
	snprintf(mk.peer, sizeof(mk.peer), "%s", peer_name(pc));
	r = marker_write(s->state_dir, ckname, "out", &mk);
	if (r) {
		fail(err, errlen, "marker in %s: %s", s->state_dir, strerror(-r));
		goto abort;
	}
	if (!s->docker_checkpoint) {
		int pid = ct_pid(d, idx);

		sp.use_cg = pid > 0 && ckpt_cgroup_of(pid, NULL, NULL, &sp.cg) == 0;
	}
	tp = eh_mono_ms();
	r = snap_freeze(d, idx, &sp, true, err, errlen);
	if (r)
		goto abort;
	paused = true;
	if (s->docker_checkpoint) {
		r = dk_checkpoint_create(d, s->ct_id, ckname, true);
		if (r)
			fail(err, errlen, "checkpoint CT-x: %s", dk_err(d));
	} else {
		struct ckpt_opts co = { .leave_running = true };
		char e[400];

		r = mkdir_p(ckdir, 0700) ?: mkdir_p(work, 0700);
		if (!r)
			r = ckpt_dump(idx, ckdir, work, &co, &cs, e, sizeof(e));
		else
			snprintf(e, sizeof(e), "mkdir %.300s: %s", stage, strerror(-r));
		if (r)
			fail(err, errlen, "checkpoint CT-x (runc): %s", e);
		rep->criu_frozen_ms = cs.have_stats ? cs.frozen_ms : cs.log_frozen_ms;
		rep->ckpt_pages = cs.pages_written;
		rep->step[MS_T1_CHECKPOINT].raw_bytes = cs.image_bytes;
	}
	t = eh_mono_ms();
	rep->step[MS_T1_CHECKPOINT].ms = t - tp;
	if (r)
		goto abort;
	ckpt = true;
	if (method == METHOD_P) {
		struct layer_stats ls = {};
		int fd = open(layer, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0) {
			r = -errno;
			fail(err, errlen, "stage the layer in %s: %s", layer, strerror(errno));
			goto abort;
		}
		staged = true;
		r = layer_write(upper, fd_sink, &fd, &ls);
		close(fd);
		if (r) {
			fail(err, errlen, "tar of the layer %s: %s", upper, strerror(-r));
			goto abort;
		}
		rep->step[MS_T3_CAPTURE].raw_bytes = stat(layer, &sb) ? 0 : sb.st_size;
	} else {
		r = dk_commit(d, s->ct_id, tag, false, image_id);
		if (r) {
			fail(err, errlen, "commit CT-x: %s", dk_err(d));
			goto abort;
		}
		committed = true;
	}
	rep->step[MS_T3_CAPTURE].ms = eh_mono_ms() - t;
	r = snap_freeze(d, idx, &sp, false, err, errlen);
	if (r)
		goto abort;
	paused = false;
	rep->pause_ms = eh_mono_ms() - tp;

	/*
	 * T4 then T2: the files first (C-Migr: the image, CT-y is created from
	 * it; P-Migr: the layer), then the memory. With CT-y's files in place,
	 * ES-y starts CT-y through Docker while the checkpoint travels.
	 */
	if (method == METHOD_C)
		r = send_stream_drop(d, pc, "image", PL_IMAGE, tag, 0, s, drop,
				     &rep->step[MS_T4_SEND_FS], err, errlen);
	else
		r = send_stream(d, pc, "layer", PL_FILE, layer,
				rep->step[MS_T3_CAPTURE].raw_bytes, s,
				&rep->step[MS_T4_SEND_FS], err, errlen);
	if (r)
		goto abort;
	r = cancelled(s, "between steps", err, errlen);
	if (r)
		goto abort;
	r = send_stream(d, pc, "checkpoint", PL_DIR, ckdir, 0, s, &rep->step[MS_T2_SEND_CKPT],
			err, errlen);
	if (r)
		goto abort;
	r = cancelled(s, "between steps", err, errlen);
	if (r)
		goto abort;

	/*
	 * T5..T8 happen on ES-y; its answer says how they went. From here on
	 * ES-y may commit (cut over) without ES-x hearing of it: the marker says
	 * so first, durably, for a restarted agent.
	 */
	mk.restore_sent = true;
	r = marker_write(s->state_dir, ckname, "out", &mk);
	if (r) {
		fail(err, errlen, "marker in %s: %s", s->state_dir, strerror(-r));
		goto abort;
	}
	if (s->progress)
		s->progress(s->pctx, "restore", 0, 0);
	r = send_op(pc, json_pack("{s:s}", "op", "restore"));
	if (r)
		fail(err, errlen, "restore to %s: %s", peer_name(pc), strerror(-r));
	else
		r = expect(pc, "done", &m, err, errlen);
	/* ES-y said "failed": it rolled back. Anything else: ES-y alone knows. */
	if (r && r != -EREMOTEIO) {
		char why[600];

		snprintf(why, sizeof(why), "%s", err);
		fail(err, errlen, "in doubt: %s, after \"restore\" went out: only %s knows "
		     "whether it cut over (migration %s)", why, peer_name(pc), ckname);
		doubt = rep->in_doubt = true;
		r = -EINPROGRESS;
	}
	if (r)
		goto cleanup;
	rep_from_done(rep, m);
	json_decref(m);
	goto cleanup;

abort:
	/* Best effort: ES-y also cleans up when the channel drops. */
	send_op(pc, json_pack("{s:s, s:s}", "op", "abort", "reason", err));
cleanup:
	if (paused) {
		char e2[300];

		if (snap_freeze(d, idx, &sp, false, e2, sizeof(e2)))
			fprintf(stderr, "edgehop-agent: CT-x %s stays paused: %s\n", s->ct_id, e2);
	}
	if (ckpt && s->docker_checkpoint && dk_checkpoint_delete(d, s->ct_id, ckname))
		fprintf(stderr, "edgehop-agent: checkpoint %s of %s not removed: %s\n", ckname,
			s->ct_id, dk_err(d));
	rm_tree(stage);		/* runc's image and work dirs (and nothing if Docker's) */
	if (staged)
		unlink(layer);
	if (committed && dk_image_remove(d, tag, true))
		fprintf(stderr, "edgehop-agent: image %s not removed: %s\n", tag, dk_err(d));
	if (tp && paused)
		rep->pause_ms = eh_mono_ms() - tp;
	if (doubt) {
		int e = marker_to_doubt(s->state_dir, ckname);

		if (e)
			fprintf(stderr, "edgehop-agent: migration %s in doubt, but %s/%s.doubt: %s\n",
				ckname, s->state_dir, ckname, strerror(-e));
	} else {
		marker_clear(s->state_dir, ckname, "out");
	}
	json_decref(drop);
	rep->total_ms = eh_mono_ms() - t0;
	return r;
}

/* ---- destination side ----------------------------------------------------- */

/*
 * Reads what is left of a stream this side will not use, so that the
 * sender finishes it and then reads why ("failed"), instead of meeting a
 * reset connection.
 */
static void drain_rs(struct peer_rstream *rs)
{
	char buf[1 << 16];

	while (peer_rstream_read(rs, buf, sizeof(buf)) > 0)
		;
}

static void drain_stream(struct peer_conn *pc)
{
	struct peer_rstream *rs = NULL;
	struct peer_xfer x;

	if (peer_rstream_begin(pc, &rs))
		return;
	drain_rs(rs);
	peer_rstream_end(rs, &x);
}

static int recv_into_dir(struct peer_conn *pc, const char *dir, struct migr_stepstat *st,
			 char *err, size_t errlen)
{
	struct peer_rstream *rs = NULL;
	struct layer_stats ls = {};
	struct peer_xfer x = {};
	double t0 = eh_mono_ms();
	int r = peer_rstream_begin(pc, &rs);

	if (r)
		return fail(err, errlen, "stream into %s: %s", dir, strerror(-r)), r;
	r = layer_extract(dir, rsource, rs, &ls);
	if (r) {
		drain_rs(rs);
		peer_rstream_end(rs, &x);
		return fail(err, errlen, "extract into %s: %s", dir, strerror(-r)), r;
	}
	/*
	 * libarchive stops at the end-of-archive blocks; the writer's record
	 * padding may follow. Read to the stream's verified END, refusing more
	 * than a tar record's worth of anything.
	 */
	for (size_t tail = 0;;) {
		char pad[4096];
		ssize_t n = peer_rstream_read(rs, pad, sizeof(pad));

		if (n == 0)
			break;
		bool zeros = n > 0;

		for (ssize_t i = 0; i < n && zeros; i++)
			zeros = pad[i] == 0;
		tail += n > 0 ? (size_t)n : 0;
		if (!zeros || tail > 64 * 1024) {
			peer_rstream_end(rs, &x);
			r = n < 0 ? (int)n : -EBADMSG;
			return fail(err, errlen, "stream into %s: %s after the archive's end", dir,
				    n < 0 ? strerror(-r) : "data"), r;
		}
	}
	r = peer_rstream_end(rs, &x);
	if (r)
		return fail(err, errlen, "stream into %s ended badly: %s", dir, strerror(-r)), r;
	st->raw_bytes += x.raw_bytes;
	st->wire_bytes += x.wire_bytes;
	st->ms += eh_mono_ms() - t0;
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[700];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Docker's restore error names CRIU's log ("log file: PATH"), which goes with
 * the container: keep its last error lines in the message.
 */
static void criu_error(const char *dkerr, char *out, size_t cap)
{
	const char *p = strstr(dkerr, "log file: ");
	char path[512], line[512];
	size_t len = 0;
	FILE *f;

	out[0] = '\0';
	if (!p)
		return;
	snprintf(path, sizeof(path), "%s", p + strlen("log file: "));
	path[strcspn(path, " \n\"")] = '\0';
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strstr(line, "Error") && !strstr(line, "error"))
			continue;
		/* The last few errors: CRIU's cause comes before its summary. */
		if (len + strlen(line) + 3 >= cap)
			len = 0;
		len += snprintf(out + len, cap - len, "%s%s", len ? " | " : "", line);
	}
	fclose(f);
}

/*
 * Creates CT-y (not started), marks it for crash recovery, finds its UpperDir.
 * With @restore_stage (edgehop-runc), CT-y gets Docker's runtime "edgehop" and
 * @stage its staging dir there.
 */
static int create_cty(struct dk *d, const char *name, const char *hostname,
		      const char *image, json_t *cmd,
		      uint32_t mud_id, const char *restore_stage, char stage[600],
		      const char *state_dir, const char *ckname, char idy[65],
		      char *upper, size_t ucap, char *root, size_t rcap, char *err, size_t errlen)
{
	const char *runtime = restore_stage ? EHRT_RUNTIME : NULL;
	json_t *cfg;
	int r;

	/* The marker first, by name: a crash during the create leaves nothing behind. */
	r = marker_set(state_dir, ckname, "in", name);
	if (r) {
		fail(err, errlen, "marker in %s: %s", state_dir, strerror(-r));
		return r;
	}
	cfg = migr_ct_config(image, cmd, mud_id, runtime, hostname);
	r = cfg ? dk_create(d, name, cfg, idy) : -ENOMEM;
	json_decref(cfg);
	if (r) {
		fail(err, errlen, "create CT-y from %s: %s", image, dk_err(d));
		marker_clear(state_dir, ckname, "in");
		return r;
	}
	r = ct_facts(d, idy, NULL, upper, ucap, NULL);
	if (!r)
		r = docker_root(upper, root, rcap);
	if (r) {
		/* Docker's message when the inspect failed ("" when it did not). */
		fail(err, errlen, "CT-y's UpperDir: %s%s%s", strerror(-r), *dk_err(d) ? ": " : "",
		     dk_err(d));
		dk_remove(d, idy, true);
		marker_clear(state_dir, ckname, "in");
	} else if (restore_stage) {
		snprintf(stage, 600, "%.500s/%s", restore_stage, idy);
	}
	return r;
}

/*
 * How many of @layers (diff IDs, base first) this node holds as a chain: the
 * longest prefix shared with the layers of an image it has. docker load skips
 * the files of layers it finds by chain ID, so ES-x may leave those out.
 */
static int layers_held(struct dk *d, json_t *layers)
{
	json_t *list = NULL, *it;
	size_t i, best = 0;

	if (!json_array_size(layers) || dk_image_list(d, &list))
		return 0;
	json_array_foreach(list, i, it) {
		const char *id = json_string_value(json_object_get(it, "Id"));
		json_t *img = NULL, *have;
		size_t k = 0;

		if (!id || dk_image_inspect(d, id, &img))
			continue;
		have = json_object_get(json_object_get(img, "RootFS"), "Layers");
		while (k < json_array_size(have) && k < json_array_size(layers) &&
		       json_equal(json_array_get(have, k), json_array_get(layers, k)))
			k++;
		if (k > best)
			best = k;
		json_decref(img);
		if (best == json_array_size(layers))
			break;
	}
	json_decref(list);
	return (int)best;
}

/*
 * The early start (edgehop-runc only): Docker's start of CT-y (network,
 * overlay mount, shim: seconds in the nodes) runs on a thread of its own while
 * the checkpoint travels; edgehop-runc's create waits while <stage>/pending
 * exists and restores once the image is whole (ehrt.h).
 */
struct early_start {
	pthread_t th;
	bool running;
	const char *sock;
	char id[65];
	int r;
	char err[400];
};

static void *early_start_main(void *arg)
{
	struct early_start *e = arg;
	struct dk *d = NULL;

	e->r = dk_open(&d, e->sock);
	if (!e->r)
		e->r = dk_start_timed(d, e->id, 0);	/* bounded by edgehop-runc's wait */
	if (e->r)
		snprintf(e->err, sizeof(e->err), "%s", d ? dk_err(d) : strerror(-e->r));
	dk_close(d);
	return NULL;
}

static int stage_mark(const char *stage, const char *name, bool on)
{
	char p[700];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", stage, name);
	if (!on)
		return unlink(p) && errno != ENOENT ? -errno : 0;
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int early_start_begin(struct early_start *e, const char *sock, const char *stage,
			     const char *id)
{
	int r = mkdir_p(stage, 0700) ?: stage_mark(stage, "pending", true);

	if (r)
		return r;
	e->sock = sock;
	snprintf(e->id, sizeof(e->id), "%s", id);
	r = -pthread_create(&e->th, NULL, early_start_main, e);
	if (r) {
		stage_mark(stage, "pending", false);
		return r;
	}
	e->running = true;
	return 0;
}

/* Joins the start; @abort first tells edgehop-runc to give up waiting. */
static int early_start_end(struct early_start *e, const char *stage, bool abort)
{
	if (!e->running)
		return 0;
	if (abort) {
		stage_mark(stage, "abort", true);
		stage_mark(stage, "pending", false);
	}
	pthread_join(e->th, NULL);
	e->running = false;
	return e->r;
}

static int injected(const struct migr_dst_hooks *h, const char *step, char *err, size_t errlen)
{
	if (!h->fault || strcmp(h->fault, step))
		return 0;
	fail(err, errlen, "fault injected at %s (FAULT = %s)", step, h->fault);
	return -EIO;
}

/*
 * The commit point of a migration in (the cut-over hook calls it before the
 * switch): the outcome record says "committed" durably, with what a
 * restarted agent needs to put the MUD on CT-y, before anyone acts on it.
 */
struct commit_point {
	const struct migr_dst_hooks *h;
	const char *state_dir, *id, *from;
	uint32_t mud_id;
	json_t *fields;		/* CT-y's, merged into the record */
	bool committed;
	char why[300];		/* the record could not be written */
};

/* FAULT = crash-*: the agent dies here as a crash would, nothing cleaned up. */
static void crash_injected(const struct migr_dst_hooks *h, const char *step)
{
	if (!h->fault || strcmp(h->fault, step))
		return;
	fprintf(stderr, "edgehop-agent: FAULT = %s: exiting now, as a crash\n", step);
	_exit(MIGR_CRASH_RC);
}

static int commit_point(void *vctx)
{
	struct commit_point *c = vctx;
	json_t *rec;
	int r;

	crash_injected(c->h, "crash-uncommitted");
	rec = outcome_rec(c->id, MO_COMMITTED, c->mud_id, c->from);
	if (!rec || !c->fields)
		r = -ENOMEM;
	else {
		json_object_update_missing(rec, c->fields);
		r = outcome_put(c->state_dir, c->id, rec);
	}
	json_decref(rec);
	if (r) {
		snprintf(c->why, sizeof(c->why), "not committed: the outcome record in %s/"
			 MIGR_OUTCOME_DIR " was not written: %s", c->state_dir, strerror(-r));
		return r;
	}
	c->committed = true;
	crash_injected(c->h, "crash-committed");
	return 0;
}

int migr_dest(struct dk *d, struct peer_conn *pc, json_t *begin, const char *node,
	      const char *state_dir, const struct migr_dst_hooks *h,
	      struct migr_report *rep, char *err, size_t errlen)
{
	const char *image = json_string_value(json_object_get(begin, "image"));
	const char *ckname = json_string_value(json_object_get(begin, "checkpoint"));
	json_t *cmd = json_object_get(begin, "cmd"), *m = NULL, *img = NULL;
	uint32_t mud_id = json_integer_value(json_object_get(begin, "mud_id"));
	int method = json_integer_value(json_object_get(begin, "method"));
	char idy[65] = "", upper[512], root[512], ckdir[700], name[64], loaded[256];
	char srv_name[MIGR_SVC_NAME_MAX];	/* CT-y's service, once renamed */
	char why_hup[200] = "";
	bool hup = false;	/* SIGHUP sent: CT-y's service takes srv_name */
	/* edgehop-runc's staging dir of CT-y ("" until CT-y exists, or Docker's path) */
	char stage[600] = "";
	struct svc_mud_state ss;
	struct early_start es = { .running = false };
	bool created = false, have_ckpt = false, got_layer;
	bool recorded = false;	/* the outcome record of @ckname is ours to write */
	json_t *done = NULL, *rec = NULL;
	struct commit_point cp = { .committed = false };
	int create_r = 0;	/* P-Migr's create of CT-y failed (after "ready") */
	double t0 = eh_mono_ms(), t, t_start = 0;
	int r;

	memset(rep, 0, sizeof(*rep));
	rep->method = method;
	snprintf(name, sizeof(name), "eh-mud-%u-%s", mud_id, ckname ?: "x");
	migr_svc_name(node, srv_name);
	if (!image || !id_ok(ckname) || !json_is_array(cmd) ||
	    (method != METHOD_P && method != METHOD_C && method != METHOD_AUTO)) {
		r = -EINVAL;
		fail(err, errlen, "malformed migr_begin");
		goto failed;
	}
	/* One outcome per id: ES-x asks by it when it lost the channel. */
	r = outcome_get(state_dir, ckname, &rec);
	json_decref(rec);
	if (r != -ENOENT) {
		if (r && r != -EBADMSG) {
			fail(err, errlen, "outcome record of %s: %s", ckname, strerror(-r));
		} else {
			fail(err, errlen, "migration id %s was used before%s", ckname,
			     r ? " (its outcome record does not parse)" : "");
			r = -EEXIST;
		}
		goto failed;
	}
	r = outcome_put(state_dir, ckname, rec = outcome_rec(ckname, MO_RUNNING, mud_id,
							    peer_name(pc)));
	json_decref(rec);
	if (r) {
		fail(err, errlen, "outcome record in %s/" MIGR_OUTCOME_DIR ": %s", state_dir,
		     strerror(-r));
		goto failed;
	}
	recorded = true;
	peer_set_timeout(pc, PEER_STEP_TIMEOUT_MS);
	if (method == METHOD_AUTO) {
		/* P-Migr when the base image is here, else C-Migr of what is missing. */
		method = dk_image_inspect(d, image, &img) ? METHOD_C : METHOD_P;
		json_decref(img);
		img = NULL;
		rep->method = method;
	}
	if (method == METHOD_P) {
		r = dk_image_inspect(d, image, &img);
		json_decref(img);
		if (r) {
			fail(err, errlen, "P-Migr needs the base image %s on %s: %s", image, node,
			     r == -ENOENT ? "it is not there" : dk_err(d));
			goto failed;
		}
	}
	r = send_op(pc, json_pack("{s:s, s:i, s:i}", "op", "ready", "method", method,
				  "have_layers", method == METHOD_C ?
				  layers_held(d, json_object_get(begin, "layers")) : 0));
	if (r)
		goto failed;
	if (method == METHOD_P) {
		/*
		 * The base image is here: CT-y now, so the streams go straight
		 * into it. After "ready", so that Docker's create runs while ES-x
		 * takes its snapshot instead of before it. A failure is told when
		 * ES-x's first step arrives (its stream drained), so that ES-x
		 * reads the reason instead of meeting a closed channel.
		 */
		create_r = create_cty(d, name, srv_name, image, cmd, mud_id, h->restore_stage, stage,
				      state_dir, ckname, idy, upper, sizeof(upper), root,
				      sizeof(root), err, errlen);
		created = !create_r;
	}

	for (;;) {
		const char *op;

		r = peer_recv_msg(pc, &m);
		if (r) {
			fail(err, errlen, "channel from %s: %s", peer_name(pc), strerror(-r));
			goto failed;
		}
		op = json_string_value(json_object_get(m, "op")) ?: "";
		if (!strcmp(op, "abort")) {
			r = -ECANCELED;
			fail(err, errlen, "ES-x aborted: %s",
			     json_string_value(json_object_get(m, "reason")) ?: "no reason");
			goto failed;
		}
		if (create_r) {		/* err holds create_cty's reason */
			if (!strcmp(op, "layer") || !strcmp(op, "checkpoint") || !strcmp(op, "image"))
				drain_stream(pc);
			r = create_r;
			goto failed;
		}
		if (!strcmp(op, "image") && method == METHOD_C && !created) {
			struct peer_rstream *rs = NULL;
			struct peer_xfer x = {};

			t = eh_mono_ms();
			r = injected(h, "image", err, errlen);
			if (r) {
				drain_stream(pc);
				goto failed;
			}
			r = peer_rstream_begin(pc, &rs);
			if (!r) {
				r = dk_image_load(d, rsource, rs, loaded, sizeof(loaded));
				if (r) {
					fail(err, errlen, "docker load: %s", dk_err(d));
					drain_rs(rs);
					peer_rstream_end(rs, &x);
					goto failed;
				}
				r = peer_rstream_end(rs, &x);
			}
			if (r) {
				fail(err, errlen, "image stream: %s", strerror(-r));
				goto failed;
			}
			rep->step[MS_T4_SEND_FS].raw_bytes = x.raw_bytes;
			rep->step[MS_T4_SEND_FS].wire_bytes = x.wire_bytes;
			rep->step[MS_T4_SEND_FS].ms = eh_mono_ms() - t;
			image = json_string_value(json_object_get(m, "ref")) ?: image;
			/* The committed image's reference as docker load reported it. */
			if (loaded[0])
				image = loaded;
		} else if (!strcmp(op, "checkpoint") && created) {
			if (h->restore_stage) {
				snprintf(ckdir, sizeof(ckdir), "%s/img", stage);
			} else {
				snprintf(ckdir, sizeof(ckdir), "%s/containers/%s/checkpoints/%s",
					 root, idy, ckname);
			}
			r = injected(h, "checkpoint", err, errlen);
			if (r) {
				drain_stream(pc);
				goto failed;
			}
			r = mkdir_p(ckdir, 0700);
			if (r) {
				drain_stream(pc);
				fail(err, errlen, "mkdir %s: %s", ckdir, strerror(-r));
				goto failed;
			}
			r = recv_into_dir(pc, ckdir, &rep->step[MS_T2_SEND_CKPT], err, errlen);
			if (r)
				goto failed;
			have_ckpt = true;
			/* Whole: a waiting create (early start) restores it now. */
			if (h->restore_stage && (r = stage_mark(stage, "pending", false))) {
				fail(err, errlen, "%s/pending: %s", stage, strerror(-r));
				goto failed;
			}
		} else if (!strcmp(op, "layer") && created && method == METHOD_P) {
			r = injected(h, "layer", err, errlen);
			if (r) {
				drain_stream(pc);
				goto failed;
			}
			r = recv_into_dir(pc, upper, &rep->step[MS_T4_SEND_FS], err, errlen);
			if (r)
				goto failed;
		} else if (!strcmp(op, "restore") && created) {
			json_decref(m);
			m = NULL;
			break;
		} else {
			r = -EPROTO;
			fail(err, errlen, "unexpected '%s' from %s", op, peer_name(pc));
			goto failed;
		}
		got_layer = !strcmp(op, "layer");
		json_decref(m);
		m = NULL;
		/* C-Migr: CT-y exists as soon as its image does. */
		if (!created) {
			r = create_cty(d, name, srv_name, image, cmd, mud_id, h->restore_stage, stage,
				       state_dir, ckname, idy, upper, sizeof(upper), root,
				       sizeof(root), err, errlen);
			if (r)
				goto failed;
			created = true;
		}
		/*
		 * CT-y's files are final (C: its image; P: the layer in its
		 * UpperDir) and the memory is still to come: Docker's start now.
		 */
		if (h->restore_stage && h->docker_sock && !es.running && !have_ckpt &&
		    (method == METHOD_C || got_layer)) {
			t_start = eh_mono_ms();
			r = early_start_begin(&es, h->docker_sock, stage, idy);
			if (r) {
				fail(err, errlen, "start CT-y early: %s", strerror(-r));
				goto failed;
			}
		}
		r = send_op(pc, json_pack("{s:s}", "op", "ok"));
		if (r)
			goto failed;
	}

	/*
	 * T5: the service answers with the snapshot's state. Docker's path: start
	 * --checkpoint (containerd tars the checkpoint into its content store and
	 * out again). edgehop-runc's: a plain start, which its create turns into
	 * runc restore of the staged image; the image is renamed img.used once the
	 * container runs from it, so a fresh start cannot pass for a restore.
	 */
	t = eh_mono_ms();
	r = injected(h, "restore", err, errlen);
	if (r)
		goto failed;
	if (es.running) {
		r = early_start_end(&es, stage, false);
		if (r)
			snprintf(err, errlen, "%s", es.err);	/* Docker's message, for below */
		rep->early_start = true;
	} else {
		t_start = eh_mono_ms();
		r = dk_start(d, idy, h->restore_stage ? NULL : ckname);
	}
	mark_add(rep, "start_called", t_start - t);
	mark_add(rep, "start_returned", eh_mono_ms() - t);
	if (stage[0])
		marks_from_runtime(rep, stage, t);
	if (r) {
		char why[512];

		char dmsg[400];

		snprintf(dmsg, sizeof(dmsg), "%s", es.err[0] ? es.err : dk_err(d));
		criu_error(dmsg, why, sizeof(why));
		fail(err, errlen, "restore CT-y from checkpoint %s: %s%s%s", ckname, dmsg,
		     why[0] ? "; CRIU: " : "", why);
		goto failed;
	}
	if (h->restore_stage) {
		char used[700];

		snprintf(used, sizeof(used), "%s/img.used", stage);
		if (access(used, F_OK)) {
			r = -ENOEXEC;
			fail(err, errlen, "CT-y started without restoring %s (is Docker's runtime "
			     "'%s' edgehop-runc?)", ckdir, EHRT_RUNTIME);
			goto failed;
		}
		rm_tree(stage);
	}
	if (cmd_has(cmd, "--name-file")) {
		if (dk_kill(d, idy, "SIGHUP"))
			snprintf(why_hup, sizeof(why_hup), "SIGHUP: %s", dk_err(d));
		else
			hup = true;
	}
	r = ct_facts(d, idy, NULL, NULL, 0, &rep->ct_y_addr);
	if (r) {
		fail(err, errlen, "inspect of the restored CT-y: %s: %s", strerror(-r), dk_err(d));
		goto failed;
	}
	if (!rep->ct_y_addr.s_addr) {
		r = -EADDRNOTAVAIL;
		fail(err, errlen, "CT-y has no IPv4 address");
		goto failed;
	}
	r = svc_probe(rep->ct_y_addr, SVC_PORT, mud_id, SVC_READY_MS, &ss);
	if (r || !ss.known) {
		r = r ?: -ENODATA;
		fail(err, errlen, "restored CT-y %s", r == -ENODATA ?
		     "answers but holds no state for the MUD" : "does not answer");
		goto failed;
	}
	rep->step[MS_T5_RESTORE].ms = eh_mono_ms() - t;
	mark_add(rep, "answering", rep->step[MS_T5_RESTORE].ms);
	snprintf(rep->restore_via, sizeof(rep->restore_via), "%s",
		 h->restore_stage ? "runc" : "docker");
	if (hup && rename_wait(rep->ct_y_addr, mud_id, srv_name, why_hup, sizeof(why_hup)))
		hup = false;
	if (hup)
		mark_add(rep, "renamed", eh_mono_ms() - t);
	else if (why_hup[0])
		fprintf(stderr, "edgehop-agent: CT-y %.12s still answers as %s: %s\n", idy,
			ss.name, why_hup);

	/* T7 + T8 */
	t = eh_mono_ms();
	r = injected(h, "replay", err, errlen);
	if (r)
		goto failed;
	snprintf(rep->ct_y_id, sizeof(rep->ct_y_id), "%s", idy);
	snprintf(rep->ct_y_name, sizeof(rep->ct_y_name), "%s", name);
	snprintf(rep->ct_y_image, sizeof(rep->ct_y_image), "%.127s", image);
	cp = (struct commit_point){
		.h = h, .state_dir = state_dir, .id = ckname, .mud_id = mud_id,
		.from = peer_name(pc),
		.fields = json_pack("{s:s, s:f, s:o, s:s, s:b, s:s, s:s, s:s, s:O}",
				    "ct_image", rep->ct_y_image,
				    "restore_ms", rep->step[MS_T5_RESTORE].ms,
				    "t5_marks", marks_json(rep),
				    "restore_via", rep->restore_via, "early_start", rep->early_start,
				    "ct_id", idy, "ct_name", name,
				    "ct_addr", inet_ntoa(rep->ct_y_addr), "cmd", cmd),
	};
	r = h->cutover(h->ctx, mud_id, rep->ct_y_addr, SVC_PORT, commit_point, &cp,
		       &rep->replayed, &rep->relayed, err, errlen);
	if (cp.why[0])	/* the commit record, not the replay, said no */
		fail(err, errlen, "%s", cp.why);
	if (r && !cp.committed) {
		json_decref(cp.fields);
		goto failed;
	}
	if (r)	/* the hook's contract says 0 once committed: never undone */
		fprintf(stderr, "edgehop-agent: migration %s committed; after its commit point: "
			"%s\n", ckname, err);
	rep->step[MS_T7_REPLAY].ms = eh_mono_ms() - t;
	rep->total_ms = eh_mono_ms() - t0;
	done = json_pack("{s:s, s:f, s:I, s:I}", "op", "done",
			 "replay_ms", rep->step[MS_T7_REPLAY].ms,
			 "replayed", (json_int_t)rep->replayed,
			 "relayed", (json_int_t)rep->relayed);
	if (done)
		json_object_update_missing(done, cp.fields);
	json_object_del(done, "cmd");
	json_decref(cp.fields);
	/*
	 * The record written at the commit point, completed with the replay's
	 * figures; ES-x can learn the outcome from it even when "done" never
	 * reaches it. A failure to complete it loses only those figures.
	 */
	rec = outcome_rec(ckname, MO_COMMITTED, mud_id, peer_name(pc));
	if (rec && done)
		json_object_update_missing(rec, done);
	json_object_del(rec, "op");
	json_object_set(rec, "cmd", cmd);
	r = outcome_put(state_dir, ckname, rec);
	json_decref(rec);
	if (r)
		fprintf(stderr, "edgehop-agent: migration %s committed, but its outcome record in "
			"%s/" MIGR_OUTCOME_DIR " was not completed with the replay's figures: %s\n",
			ckname, state_dir, strerror(-r));
	marker_clear(state_dir, ckname, "in");
	if (injected(h, "done", err, errlen)) {
		/* Committed, and "done" lost on the way: ES-x must ask. */
		json_decref(done);
		fprintf(stderr, "edgehop-agent: migration %s committed, \"done\" not sent: %s\n",
			ckname, err);
		return 0;
	}
	send_op(pc, done);
	return 0;

failed:
	json_decref(m);
	/* A start still waiting for the image gives up before CT-y goes. */
	early_start_end(&es, stage, true);
	h->rollback(h->ctx, mud_id);
	if (created && dk_remove(d, idy, true))
		fprintf(stderr, "edgehop-agent: CT-y %s not removed: %s\n", idy, dk_err(d));
	if (stage[0])
		rm_tree(stage);
	if (method == METHOD_C && loaded[0] && strcmp(loaded, image ?: "") == 0 &&
	    dk_image_remove(d, loaded, true))
		fprintf(stderr, "edgehop-agent: image %s not removed: %s\n", loaded, dk_err(d));
	if (recorded)	/* else @ckname may be no file name at all */
		marker_clear(state_dir, ckname, "in");
	if (recorded) {
		int e;

		rec = outcome_rec(ckname, MO_FAILED, mud_id, peer_name(pc));
		json_object_set_new(rec, "reason", json_string(err));
		e = outcome_put(state_dir, ckname, rec);
		json_decref(rec);
		if (e)
			fprintf(stderr, "edgehop-agent: migration %s failed, but its outcome record "
				"was not written: %s\n", ckname, strerror(-e));
	}
	send_op(pc, json_pack("{s:s, s:s}", "op", "failed", "reason", err));
	rep->total_ms = eh_mono_ms() - t0;
	return r ?: -EIO;
}

/* ---- in doubt ------------------------------------------------------------------ */

#define OUTCOME_TIMEOUT_MS	(10 * 1000)

static json_t *error_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *error_msg(const char *fmt, ...)
{
	char why[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return json_pack("{s:s, s:s}", "op", "error", "reason", why);
}

json_t *migr_outcome_answer(const char *state_dir, json_t *req, const char *asker)
{
	const char *id = json_string_value(json_object_get(req, "id"));
	const char *from;
	json_t *rec = NULL;
	int r;

	if (!id_ok(id))
		return error_msg("malformed outcome query: \"id\" must be a migration id "
				 "(1 to %d of A-Z a-z 0-9 _ . -, not starting with '.')",
				 MIGR_ID_MAX - 1);
	r = outcome_get(state_dir, id, &rec);
	if (r == -ENOENT)
		return json_pack("{s:s, s:s, s:s}", "op", "outcome", "id", id, "outcome",
				 migr_outcome_name(MO_UNKNOWN));
	if (r)
		return error_msg("the outcome record of migration %s is unreadable: %s", id,
				 strerror(-r));
	from = json_string_value(json_object_get(rec, "from")) ?: "";
	if (asker && strcmp(from, asker)) {
		json_t *e = error_msg("migration %s came from %s, not from %s", id, from, asker);

		json_decref(rec);
		return e;
	}
	json_object_set_new(rec, "op", json_string("outcome"));
	return rec;
}

int migr_outcome_ask(struct peer_conn *pc, const char *id, struct migr_report *rep,
		     char *why, size_t whylen)
{
	const char *op, *reason;
	json_t *m = NULL;
	int r, o;

	peer_set_timeout(pc, OUTCOME_TIMEOUT_MS);
	r = send_op(pc, json_pack("{s:s, s:s}", "op", "outcome", "id", id ?: ""));
	if (r)
		return fail(why, whylen, "asking %s for the outcome of %s: %s", peer_name(pc), id,
			    strerror(-r)), r;
	r = peer_recv_msg(pc, &m);
	if (r)
		return fail(why, whylen, "%s: %s while waiting for the outcome of %s",
			    peer_name(pc), strerror(-r), id), r;
	op = json_string_value(json_object_get(m, "op")) ?: "";
	reason = json_string_value(json_object_get(m, "reason")) ?: "no reason";
	o = outcome_parse(json_string_value(json_object_get(m, "outcome")));
	if (!strcmp(op, "error")) {
		fail(why, whylen, "%s: %s", peer_name(pc), reason);
		r = -EREMOTEIO;
	} else if (strcmp(op, "outcome") || o < 0 ||
		   strcmp(json_string_value(json_object_get(m, "id")) ?: "", id)) {
		fail(why, whylen, "%s answered the outcome query of %s with '%s'", peer_name(pc),
		     id, op);
		r = -EPROTO;
	} else if (o == MO_COMMITTED) {
		rep_from_done(rep, m);
		if (!rep->ct_y_id[0] || !rep->ct_y_addr.s_addr) {
			fail(why, whylen, "%s: migration %s committed, without CT-y's id and "
			     "address", peer_name(pc), id);
			r = -EPROTO;
		} else {
			fail(why, whylen, "%s: migration %s committed: CT-y %.12s at %s serves the "
			     "MUD", peer_name(pc), id, rep->ct_y_id, inet_ntoa(rep->ct_y_addr));
			r = o;
		}
	} else {
		if (o == MO_FAILED)
			fail(why, whylen, "%s: migration %s failed there and was rolled back: %s",
			     peer_name(pc), id, reason);
		else if (o == MO_RUNNING)
			fail(why, whylen, "%s: migration %s is still under way there",
			     peer_name(pc), id);
		else
			fail(why, whylen, "%s holds no record of migration %s: it never cut over",
			     peer_name(pc), id);
		r = o;
	}
	json_decref(m);
	return r;
}

int migr_outcome_wait(const struct migr_asker *a, const char *id, int wait_ms,
		      struct migr_report *rep, char *why, size_t whylen)
{
	double end = eh_mono_ms() + (wait_ms > 0 ? wait_ms : 0);
	int backoff = 100, cap = a->max_backoff_ms > 100 ? a->max_backoff_ms : 100;
	char last[400] = "";

	for (;;) {
		struct peer_conn *pc = NULL;
		int r = a->dial(a->ctx, &pc), w;

		if (r == -ECANCELED)
			return fail(why, whylen, "stopped asking %s", a->peer), r;
		if (r) {
			fail(why, whylen, "%s does not answer: %s", a->peer, strerror(-r));
		} else {
			r = migr_outcome_ask(pc, id, rep, why, whylen);
			peer_close(pc);
			if (r == MO_COMMITTED || r == MO_FAILED || r == MO_UNKNOWN)
				return r;
		}
		if (a->note && strcmp(last, why))
			a->note(a->ctx, why);
		snprintf(last, sizeof(last), "%s", why);
		if (wait_ms >= 0 && eh_mono_ms() + backoff > end)
			return -ETIMEDOUT;
		w = a->pause ? a->pause(a->ctx, backoff) : usleep(backoff * 1000);
		if (w == -ECANCELED)
			return fail(why, whylen, "stopped asking %s (%s)", a->peer, last), w;
		backoff = backoff * 2 < cap ? backoff * 2 : cap;
	}
}

struct doubt_scan {
	const char *state_dir;
	void (*cb)(void *ctx, const struct migr_doubt *);
	void *ctx;
};

static int doubt_one(void *vctx, const char *id)
{
	struct doubt_scan *sc = vctx;
	struct migr_doubt dt = {};
	struct marker mk;
	char p[700];

	snprintf(dt.id, sizeof(dt.id), "%s", id);
	marker_path(p, sizeof(p), sc->state_dir, id, "doubt");
	if (marker_read(p, &mk) || !mk.peer[0])
		return 0;
	dt.mud_id = mk.mud_id;
	snprintf(dt.peer, sizeof(dt.peer), "%s", mk.peer);
	snprintf(dt.ct_x, sizeof(dt.ct_x), "%.64s", mk.ct);
	if (sc->cb)
		sc->cb(sc->ctx, &dt);
	return 1;
}

int migr_doubt_list(const char *state_dir, void (*cb)(void *ctx, const struct migr_doubt *),
		    void *ctx)
{
	struct doubt_scan sc = { .state_dir = state_dir, .cb = cb, .ctx = ctx };

	return marker_each(state_dir, "doubt", doubt_one, &sc);
}

int migr_doubt_clear(const char *state_dir, const char *id)
{
	char p[700];

	if (!id_ok(id))
		return -EINVAL;
	marker_path(p, sizeof(p), state_dir, id, "doubt");
	return unlink(p) ? -errno : 0;
}

json_t *migr_report_json(const struct migr_report *rep)
{
	json_t *steps = json_array(), *j;

	for (int i = 0; i < MS_MAX; i++)
		json_array_append_new(steps, json_pack("{s:s, s:f, s:I, s:I, s:I}",
			"step", step_names[i], "ms", rep->step[i].ms,
			"raw_bytes", (json_int_t)rep->step[i].raw_bytes,
			"wire_bytes", (json_int_t)rep->step[i].wire_bytes,
			"skipped_bytes", (json_int_t)rep->step[i].skipped_bytes));
	j = json_pack("{s:s, s:s, s:b, s:o, s:o, s:f, s:f, s:f, s:f, s:I, s:f, s:I, s:I, s:s, s:s}",
		      "method", rep->method == METHOD_C ? "C-Migr" : "P-Migr",
		      "restore_via", rep->restore_via, "early_start", rep->early_start,
		      "steps", steps, "t5_marks", marks_json(rep),
		      "ready_ms", rep->ready_ms, "ctx_remove_ms", rep->ctx_remove_ms,
		      "pause_ms", rep->pause_ms, "criu_frozen_ms", rep->criu_frozen_ms,
		      "ckpt_pages", (json_int_t)rep->ckpt_pages, "total_ms", rep->total_ms,
		      "replayed", (json_int_t)rep->replayed, "relayed", (json_int_t)rep->relayed,
		      "ct_y_id", rep->ct_y_id, "ct_y_addr", inet_ntoa(rep->ct_y_addr));
	return j;
}
