/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The node agent's configuration: "NAME = value" lines (as make load's), '#'
 * comments. Keys:
 *
 *	NODE = node-x			this node's name (peers know it by it)
 *	RADIO = radio0			radio-side interface (MUDs), WAN = wan0
 *	VIP = 10.77.100.1:7777		service address the MUDs talk to
 *	AGENT_ADDR = 0.0.0.0		MUD association socket (UDP), AGENT_PORT = 7778
 *	PEER_PORT = 7780		TLS peer channel (TCP), on every node
 *	PEER = node-y 10.77.2.12 10.77.22.1	name, peer-channel address, its agent's
 *					(radio) address as MUDs name it; repeatable
 *	KEY = /etc/edgehop/peer.key	pre-shared key of the peer channel
 *	IMAGE = edgehop-svc:small	service image, one container per MUD
 *	SVC_ARGS = --mem-mb 30		extra arguments for the service
 *	MIGRATE = p			on reassociation: p (P-Migr), c (C-Migr), auto (ES-y
 *					decides: P-Migr when it holds the base image, else
 *					C-Migr of the image layers it lacks), none
 *	LOGREPO = 10.77.0.2:7779	event log repository ("" none)
 *	PIN = /sys/fs/bpf/edgehop	dataplane pin directory
 *	CTL = /run/edgehop-agent.sock	local control socket (status, migrate)
 *	STATE_DIR = /var/lib/edgehop-agent	staged files of migrations
 *	DOCKER = /var/run/docker.sock
 *	RING_BYTES = 16777216		replay buffer of each MUD migrating into this node
 *					(bytes: a power of two, page size to 1 GiB;
 *					default EH_RING_DEFAULT, 16 MiB)
 *	ATTACH = auto			dataplane hook: auto, xdp or tc (tc keeps forwarded
 *					requests in the WAN's qdisc, e.g. netem; XDP_REDIRECT skips it)
 *	CHECKPOINT = runc		T1 by runc directly (default) or docker (Engine API:
 *					~7x slower, containerd's content store; docs/migration-speed.md)
 *	RESTORE = auto			T5 by edgehop-runc (runc restore of the staged image,
 *					around containerd's content store; Docker's runtime
 *					"edgehop"), docker (start --checkpoint), or auto: runc
 *					when Docker knows the runtime "edgehop", else docker
 *	TCP_CONGESTION = bbr		the peer channel's TCP congestion control ("" the
 *					kernel's default); a name this kernel lacks stops
 *					the agent at start with the reason
 *	FAULT = restore			test hook: migrations into this node fail on
 *					purpose at image|checkpoint|layer|restore|replay;
 *					done: commits, then drops "done" (in doubt)
 */
#ifndef EDGEHOP_AGENT_CONFIG_H
#define EDGEHOP_AGENT_CONFIG_H

#include <stdint.h>
#include <netinet/in.h>

#define AG_NAME_MAX	32
#define AG_PEERS_MAX	16
#define AG_PATH_MAX	256

enum ag_method { AG_MIGR_NONE = 0, AG_MIGR_P, AG_MIGR_C, AG_MIGR_AUTO };
enum ag_restore { AG_RESTORE_AUTO = 0, AG_RESTORE_RUNC, AG_RESTORE_DOCKER };

struct ag_peer_cfg {
	char name[AG_NAME_MAX];
	struct in_addr addr;		/* peer channel */
	struct in_addr agent_addr;	/* its MUD-facing agent address */
};

struct ag_config {
	char node[AG_NAME_MAX];
	char radio[32], wan[32];
	struct in_addr vip;
	uint16_t vip_port;
	struct in_addr agent_addr;
	uint16_t agent_port;
	uint16_t peer_port;
	struct ag_peer_cfg peers[AG_PEERS_MAX];
	int npeers;
	char key[AG_PATH_MAX];
	char image[128];
	char svc_args[256];
	enum ag_method migrate;
	char logrepo[64];
	char pin[AG_PATH_MAX];
	char ctl[AG_PATH_MAX];
	char state_dir[AG_PATH_MAX];
	char docker[AG_PATH_MAX];
	char fault[24];		/* FAULT: the longest step name fits */
	int docker_checkpoint;		/* CHECKPOINT = docker */
	int restore;			/* enum ag_restore */
	int attach;			/* enum eh_attach */
	int load_dataplane;		/* DATAPLANE = yes|no (no: tests without BPF) */
	uint32_t ring_bytes;		/* RING_BYTES: each MUD's replay buffer */
	char tcp_cc[16];		/* TCP_CONGESTION, "" = the kernel's default */
};

/* Reads @path; on error prints "FILE:LINE: what" and returns -EINVAL/-errno. */
int ag_config_load(struct ag_config *c, const char *path);
void ag_config_defaults(struct ag_config *c);
const struct ag_peer_cfg *ag_peer_by_name(const struct ag_config *c, const char *name);
const struct ag_peer_cfg *ag_peer_by_agent_addr(const struct ag_config *c, struct in_addr a);
const char *ag_method_name(enum ag_method m);
int ag_method_parse(const char *s, enum ag_method *m);
/*
 * RING_BYTES: a decimal number of bytes, a power of two from the page size to
 * EH_RING_MAX_BYTES (what the dataplane accepts as a ring's size). 0 or
 * -EINVAL with *why saying what is wrong with @s.
 */
int ag_ring_bytes_parse(const char *s, uint32_t *bytes, const char **why);

#endif /* EDGEHOP_AGENT_CONFIG_H */
