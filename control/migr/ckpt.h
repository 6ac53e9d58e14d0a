/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Checkpoint a running Docker container with runc directly, around
 * containerd's content store (docs/migration-speed.md): Docker's own
 * "checkpoint create" tars the CRIU images into a content blob and costs
 * ~9x what runc's dump does in the testbed's nodes.
 *
 * runc has no C library: the runc binary is run without a shell (argv
 * array), its stdout and stderr captured for the error message, under a
 * deadline after which its process group is killed.
 *
 * The image directory is a plain CRIU image set plus runc's
 * descriptors.json: copied into a Docker container's
 * /var/lib/docker/containers/<id>/checkpoints/<name>/ it restores with
 * "docker start --checkpoint <name>", so Docker stays the container's owner.
 *
 * A container paused by Docker (cgroup frozen) can be dumped: CRIU finds
 * the cgroup frozen, dumps it and leaves it frozen (measured:
 * docs/migration-speed.md).
 */
#ifndef EH_CKPT_H
#define EH_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKPT_RUNC_ROOT "/run/docker/runtime-runc/moby"	/* Docker's runc state */
#define CKPT_TIMEOUT_MS 120000

struct ckpt_opts {
	bool leave_running;	/* the container goes on after the dump */
	bool pre_dump;		/* memory only, the container keeps running */
	const char *parent_dir;	/* a previous pre-dump, relative to the image dir
				 * (e.g. "../pd1") or absolute; NULL: none */
	const char *runc_root;	/* NULL: CKPT_RUNC_ROOT */
	const char *runc;	/* NULL: "runc" (searched in PATH) */
	int timeout_ms;		/* 0: CKPT_TIMEOUT_MS */
};

/*
 * CRIU's own numbers come from the work dir's stats-dump (a protobuf
 * dump_stats_entry read without libprotobuf: every field is a varint); the
 * frozen interval is also read from dump.log's timestamps as a cross-check.
 */
struct ckpt_stats {
	double wall_ms;			/* runc started -> runc exited */
	bool have_stats;		/* stats-dump read */
	double freezing_ms;		/* CRIU: freezing the tasks */
	double frozen_ms;		/* CRIU: frozen -> unfrozen (the dump's pause) */
	double memdump_ms, memwrite_ms;
	uint64_t pages_scanned, pages_skipped_parent, pages_written, pages_lazy;
	double log_frozen_ms;		/* dump.log "freezing" -> "Unfreezing tasks"; < 0: not found */
	uint64_t image_bytes;		/* regular files in the image dir */
	uint64_t image_files;
};

/*
 * Dump container @ct_id (full id or unique name runc knows) into @image_dir,
 * CRIU's work files and logs into @work_dir (both made if missing, mode
 * 0700; @work_dir must not be inside @image_dir if the image dir is to be
 * shipped alone). @st may be NULL. Returns 0, or -errno with @err saying
 * what failed (runc's own output and CRIU's last errors included);
 * -ETIMEDOUT when the deadline passed (runc and CRIU killed: a container
 * CRIU had frozen may stay frozen, ckpt_thaw() undoes that).
 */
int ckpt_dump(const char *ct_id, const char *image_dir, const char *work_dir,
	      const struct ckpt_opts *o, struct ckpt_stats *st, char *err, size_t errlen);

/*
 * Pre-copy: @rounds pre-dumps into @dir/pd1..pdN (each the parent of the
 * next) while the container runs, then the final dump into @dir/ckpt with
 * --parent-path ../pdN and @o's leave_running. @st gets @rounds + 1
 * entries (may be NULL). The final image dir is not self-contained: its
 * "parent" symlink must resolve where it is restored. Returns as ckpt_dump().
 */
int ckpt_predump_rounds(const char *ct_id, const char *dir, int rounds,
			const struct ckpt_opts *o, struct ckpt_stats *st, char *err, size_t errlen);

/*
 * The consistent snapshot's pause without Docker's round trips: the cgroup v2
 * freezer of the container, as `runc pause` drives it (cgroup.freeze, then
 * cgroup.events until "frozen 1"). Docker is not told: for the second or two
 * the container is frozen it shows "running", as during CRIU's own freeze;
 * `runc resume` (ckpt_thaw) and runc's state see the freeze, since runc reads
 * it from the same file. cgroup v1 is not supported (-ENOTSUP: use Docker's
 * pause).
 */
struct ckpt_cgroup {
	char dir[512];		/* e.g. /sys/fs/cgroup/docker/<id> */
};

/* The cgroup of process @pid under @root (NULL: /sys/fs/cgroup). 0 or -errno. */
int ckpt_cgroup_of(int pid, const char *proc, const char *root, struct ckpt_cgroup *cg);

/* Freeze (@frozen) or thaw, waiting up to @timeout_ms for cgroup.events to agree. */
int ckpt_cgroup_freeze(const struct ckpt_cgroup *cg, bool frozen, int timeout_ms,
		       char *err, size_t errlen);

/* Resume a container left frozen (runc resume); 0 or -errno with @err. */
int ckpt_thaw(const char *ct_id, const struct ckpt_opts *o, char *err, size_t errlen);

/*
 * The argv ckpt_dump() runs (pointers into the arguments, NULL-terminated),
 * or -EINVAL for an id or a path runc would read as an option. Returns
 * the count. @cap must be >= CKPT_ARGV_MAX.
 */
#define CKPT_ARGV_MAX 16
int ckpt_argv(const char *ct_id, const char *image_dir, const char *work_dir,
	      const struct ckpt_opts *o, const char **argv, size_t cap);

/* Parsers, for the unit test: 0, -ENOENT (no such file) or -EBADMSG. */
int ckpt_read_stats(const char *path, struct ckpt_stats *st);
int ckpt_read_dumplog(const char *path, struct ckpt_stats *st);

#endif /* EH_CKPT_H */
