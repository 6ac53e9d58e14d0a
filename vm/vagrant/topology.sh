#!/usr/bin/env bash
# Prints the testbed topology of vm/testbed.conf as JSON, for vm/Vagrantfile (which
# must not repeat the numbers by hand) and for vm/vagrant/testbed.
#
#   vm/vagrant/topology.sh            JSON on stdout
#
# Per node it also gives the exact node-setup.sh arguments the qemu launcher puts on
# the kernel command line (eh.nic=..., eh.docker=..., eh.route=..., eh.host=...), so
# that both testbeds configure a node the same way. Under Vagrant the management NIC
# is Vagrant's own (DHCP, address fixed by MAC in the libvirt network), so it is only
# named, not addressed, by node-setup.sh.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

declare -F node_setup_args >/dev/null || die "vm/lib.sh has no node_setup_args (older vm/?)"
js()  { printf '"%s"' "$1"; }                       # values here never need escaping
jarr() { local s="" x; for x in "$@"; do s+="${s:+,}$(js "$x")"; done; printf '[%s]' "$s"; }

default=" $NODES_DEFAULT "
nodes=""
for n in $NODES_ALL; do
	# node-setup.sh's arguments as vm/testbed gives them, minus the management NIC:
	# under Vagrant that is Vagrant's own (eth0, DHCP, same fixed address by MAC).
	args=()
	while IFS= read -r opt && IFS= read -r val; do
		[ "$opt" = --nic ] && [[ $val == mgmt=* ]] && continue
		args+=("$opt" "$val")
	done < <(node_setup_args "$n")
	nodes+="${nodes:+,}{\"name\":$(js "$n"),\"default\":$([[ $default == *" $n "* ]] && echo true || echo false)"
	nodes+=",\"mem\":${NODE_MEM[$n]},\"cpus\":${NODE_CPUS[$n]},\"air_bridge\":$(js "$(air_bridge "$n")")"
	nodes+=",\"mac_mgmt\":$(js "$(node_mac "$n" 0)"),\"mac_radio\":$(js "$(node_mac "$n" 1)"),\"mac_wan\":$(js "$(node_mac "$n" 2)")"
	nodes+=",\"mgmt\":$(js "${NODE_MGMT[$n]}"),\"radio\":$(js "${NODE_RADIO[$n]}"),\"wan\":$(js "${NODE_WAN[$n]}")"
	nodes+=",\"setup_args\":$(jarr "${args[@]}")}"
done
cat <<JSON
{"top":$(js "$TOP"),"share":$(js "$GUEST_SHARE"),"disk_gb":$DISK_GB,
 "br_mgmt":$(js "$BR_MGMT"),"mgmt_host_ip":$(js "$MGMT_HOST_IP"),"mgmt_prefix":$MGMT_PREFIX,
 "br_wan":$(js "$BR_WAN"),
 "nodes_default":$(jarr $NODES_DEFAULT),"nodes":[$nodes]}
JSON
