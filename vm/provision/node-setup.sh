#!/usr/bin/env bash
# Configures one edgehop edge node (AP + ES) inside its VM. Idempotent.
#
# Called at every boot by the image's edgehop-node.service (arguments from the
# kernel command line, see vm/image/files/edgehop-boot), or by hand / by a
# Vagrant shell provisioner with the same options:
#
#   node-setup.sh --name node-x
#       --nic mgmt=52:54:00:77:01:00,10.77.0.11/24   NIC with that MAC (or that
#       --nic radio=eth1,10.77.1.11/24               current name) is renamed to
#       --nic wan=eth2,10.77.2.11/24                 ROLE0 and gets the address
#       --docker-bip 10.77.10.1/24                   Docker's bridge (containers)
#       --route 10.77.11.0/24=10.77.2.12             extra routes DEST=GATEWAY
#       --host node-y=10.77.0.12                     /etc/hosts entries
#       --ssh-key /opt/edgehop/vm/run/ssh/id.pub     root's authorized key
#
# Before Docker has started (boot) it only writes daemon.json; afterwards
# (Vagrant) it restarts Docker when the bridge address changed.
set -euo pipefail

name= bip= sshkey=
nics=() routes=() hosts=()
while [ $# -gt 0 ]; do
	case $1 in
	--name)       name=$2; shift 2 ;;
	--nic)        nics+=("$2"); shift 2 ;;
	--docker-bip) bip=$2; shift 2 ;;
	--route)      routes+=("$2"); shift 2 ;;
	--host)       hosts+=("$2"); shift 2 ;;
	--ssh-key)    sshkey=$2; shift 2 ;;
	*) echo "node-setup: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -n "$name" ] || { echo "node-setup: --name is required" >&2; exit 2; }
say() { echo "node-setup[$name]: $*"; }

# Identity: host name, and a machine-id of its own (cloned disks start empty).
hostname "$name"
echo "$name" >/etc/hostname
[ -s /etc/machine-id ] || systemd-machine-id-setup >/dev/null 2>&1 || true

# NICs: find by MAC or name, rename to ROLE0, address, up.
for spec in "${nics[@]}"; do
	role=${spec%%=*} rest=${spec#*=}
	id=${rest%%,*} addr=
	[[ $rest == *,* ]] && addr=${rest#*,}
	want=${role}0
	if [[ $id == *:*:*:*:*:* ]]; then
		dev=$(ip -o link | awk -v mac="${id,,}" '$0 ~ "link/ether " mac {sub(":$","",$2); sub("@.*","",$2); print $2; exit}')
	else
		dev=$id
	fi
	[ -n "$dev" ] && [ -e "/sys/class/net/$dev" ] || { say "no NIC $id for $role" >&2; exit 1; }
	if [ "$dev" != "$want" ]; then
		ip link set dev "$dev" down
		ip link set dev "$dev" name "$want"
	fi
	ip link set dev "$want" up
	if [ -n "$addr" ]; then
		ip addr replace "$addr" dev "$want"
	fi
	say "$want ($id) ${addr:-no address}"
done
ip link set lo up

for r in "${routes[@]}"; do
	ip route replace "${r%%=*}" via "${r#*=}"
done

# Routing between the WAN, the radio side and the containers.
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 || true
# Bridged container traffic must not go through (empty) iptables chains.
sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true

# /etc/hosts: this node and its peers.
{
	echo "127.0.0.1 localhost"
	echo "127.0.1.1 $name"
	for h in "${hosts[@]}"; do echo "${h#*=} ${h%%=*}"; done
} >/etc/hosts

if [ -n "$sshkey" ]; then
	for _ in $(seq 25); do [ -s "$sshkey" ] && break; sleep 0.2; done
	install -d -m 700 /root/.ssh
	install -m 600 "$sshkey" /root/.ssh/authorized_keys
fi

# CRIU as runc drives it: leave cgroups to runc. Otherwise a restore puts the
# tasks back into the cgroup the checkpoint names (the source container's,
# made anew here), not the restored container's own; runc then freezes an
# empty cgroup and the container can never be checkpointed again ("Unseizable
# non-zombie"), so a MUD that moves on could not take it along. runc reads
# this file for every checkpoint and restore.
mkdir -p /etc/criu
echo "manage-cgroups=ignore" >/etc/criu/runc.conf

# The runtime Docker runs restored containers with, on the node's own disk (a
# binary run from the 9p share goes stale when the host relinks it). Without
# a build the agent restores through Docker's own path.
share=$(cd "$(dirname "$0")/../.." && pwd)
if [ -x "$share/build/bin/edgehop-runc" ]; then
	install -m 0755 "$share/build/bin/edgehop-runc" /usr/local/sbin/edgehop-runc
fi

if [ -n "$bip" ]; then
	# cgroupfs, not systemd: a container restored from a checkpoint under the
	# systemd driver loses its scope (systemd collects it once runc's CRIU
	# helper leaves it), so it can be neither paused nor checkpointed again -
	# and a MUD that moves on needs its restored container migrated again.
	# "edgehop": runc, except that the create of a container the agent staged
	# a CRIU image for restores it (control/runtime/; docs/migration-speed.md):
	# restores that go around containerd's content store.
	new=$(printf '{ "iptables": false, "ip-forward": true, "experimental": true, "log-driver": "json-file", "exec-opts": ["native.cgroupdriver=cgroupfs"], "runtimes": { "edgehop": { "path": "/usr/local/sbin/edgehop-runc" } }, "bip": "%s" }\n' "$bip")
	if [ "$(cat /etc/docker/daemon.json 2>/dev/null)" != "$new" ]; then
		echo "$new" >/etc/docker/daemon.json
		if systemctl is-active -q docker 2>/dev/null; then
			say "Docker bridge changed: restarting docker"
			systemctl restart docker
		fi
	fi
fi
say "configured"
