/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The BPF tests' own instance of the dataplane (bpf_dataplane, bpf_fuzz):
 * loaded from the skeleton, never pinned, with the eh_dp handle user/'s
 * library works on pointing at its maps and @cfg written as its config.
 */
#ifndef EDGEHOP_BPF_INSTANCE_H
#define EDGEHOP_BPF_INSTANCE_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "edgehop.skel.h"
#include "eh_dp.h"

/*
 * One's complement sum of @len bytes (big-endian words) onto @sum, folded to
 * 16 bits: checksums from first principles, independent of the code under test.
 */
static inline uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

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

/*
 * The FIB tests' network namespace (the calling process moves into a new
 * one): eh-wan (10.1.0.1/24) and eh-radio (10.0.0.1/24), veths up, forwarding
 * on, and one permanent neighbour per @neigh entry ("ADDR lladdr MAC dev IF").
 * Their ifindexes go to @wan_idx and @radio_idx. 0 or -errno.
 */
static inline int bpf_fib_netns(const char *const *neigh, size_t nneigh, int *wan_idx,
				int *radio_idx)
{
	static const char *const cmds[] = {
		"ip link add eh-wan type veth peer name eh-wanp",
		"ip link add eh-radio type veth peer name eh-radiop",
		"ip link set lo up",
		"ip link set eh-wan up", "ip link set eh-wanp up",
		"ip link set eh-radio up", "ip link set eh-radiop up",
		"ip addr add 10.1.0.1/24 dev eh-wan",
		"ip addr add 10.0.0.1/24 dev eh-radio",
		"sysctl -qw net.ipv4.ip_forward=1",
	};
	char cmd[256];

	if (unshare(CLONE_NEWNET))
		return -errno;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]) + nneigh; i++) {
		if (i < sizeof(cmds) / sizeof(cmds[0]))
			snprintf(cmd, sizeof(cmd), "%s >/dev/null 2>&1", cmds[i]);
		else
			snprintf(cmd, sizeof(cmd), "ip neigh add %s nud permanent >/dev/null 2>&1",
				 neigh[i - sizeof(cmds) / sizeof(cmds[0])]);
		if (system(cmd)) {
			tap_diag("failed: %s", cmd);
			return -EIO;
		}
	}
	*wan_idx = if_nametoindex("eh-wan");
	*radio_idx = if_nametoindex("eh-radio");
	return *wan_idx && *radio_idx ? 0 : -ENODEV;
}

#endif
