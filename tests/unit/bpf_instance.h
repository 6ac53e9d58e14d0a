/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The BPF tests' own instance of the dataplane (bpf_dataplane, bpf_fuzz):
 * loaded from the skeleton, never pinned, with the eh_dp handle user/'s
 * library works on pointing at its maps and @cfg written as its config.
 */
#ifndef EDGEHOP_BPF_INSTANCE_H
#define EDGEHOP_BPF_INSTANCE_H

#include <errno.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "edgehop.skel.h"
#include "eh_dp.h"

static inline int bpf_instance_open(struct edgehop_bpf **skelp, struct eh_dp *dp,
				    const struct eh_cfg *cfg)
{
	struct edgehop_bpf *skel = edgehop_bpf__open();
	__u32 zero = 0;
	int err;

	*skelp = skel;
	if (!skel)
		return -errno;
	/* Test instances are never pinned. */
	bpf_map__set_pin_path(skel->maps.eh_steer, NULL);
	bpf_map__set_pin_path(skel->maps.eh_mud_dp, NULL);
	bpf_map__set_pin_path(skel->maps.eh_config, NULL);
	bpf_map__set_pin_path(skel->maps.eh_counters, NULL);
	bpf_map__set_pin_path(skel->maps.eh_replay_rings, NULL);
	err = edgehop_bpf__load(skel);
	if (err)
		return err;
	dp->steer_fd = bpf_map__fd(skel->maps.eh_steer);
	dp->config_fd = bpf_map__fd(skel->maps.eh_config);
	dp->counters_fd = bpf_map__fd(skel->maps.eh_counters);
	dp->replay_fd = -1;
	dp->rings_fd = bpf_map__fd(skel->maps.eh_replay_rings);
	dp->pin_fd = -1;
	dp->mud_dp_fd = bpf_map__fd(skel->maps.eh_mud_dp);
	dp->ncpus = libbpf_num_possible_cpus();
	return bpf_map_update_elem(dp->config_fd, &zero, cfg, 0) ? -errno : 0;
}

#endif
