# Namespace topology for the dataplane tests (docs/design.md §8, tier ns):
#
#   ehd-mud (MUD) --mud0/radio0-- ehd-apy --wan0/wan0-- ehd-apx --es0/eth0-- ehd-esx (CT-x)
#                                 |es0  |spf0              |radio0
#                       ehd-esy (CT-y)  ehd-spf (spoofer)  mudx0 (in ehd-mud)
#
#   ehd-mud2 (a second MUD): mud2, a macvlan on ehd-mud's mud0 (same radio)
#
# Every address below exists only inside these namespaces.
# Sourced by the bats suites and by scripts/run-demo (which sets TMPD).
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/netdev.sh
source "$TOP/scripts/netdev.sh"
BIN=$TOP/build/bin
VIP=10.91.255.1
VPORT=7777
MUD_IP=10.91.0.100
MUDX_IP=10.91.3.100
CTX_IP=10.91.1.2
CTY_IP=10.91.2.2
SPF_IP=10.91.4.2
MUD2_IP=10.91.0.101
PIN_X=/sys/fs/bpf/ehd-apx
PIN_Y=/sys/fs/bpf/ehd-apy
NSS=(ehd-mud ehd-apx ehd-apy ehd-esx ehd-esy ehd-spf ehd-mud2)

in_ns() { local ns=$1; shift; timeout 120 nsenter --net=/run/netns/"$ns" "$@"; }
ap_x() { in_ns ehd-apx "$BIN/edgehop-ap" --pin "$PIN_X" "$@"; }
ap_y() { in_ns ehd-apy "$BIN/edgehop-ap" --pin "$PIN_Y" "$@"; }

# topo_down: stop what runs in the namespaces and wait until it has exited (a
# service still running in a deleted namespace would keep writing its state dir),
# unload the dataplanes, delete the namespaces (every veth has both ends in them;
# one already gone is fine). Safe to repeat.
topo_down() {
	netns_kill 5 "${NSS[@]}"
	[ -e /run/netns/ehd-apx ] && nsenter --net=/run/netns/ehd-apx "$BIN/edgehop-ap" --pin "$PIN_X" unload --radio radio0 --wan wan0 >/dev/null 2>&1 || true
	[ -e /run/netns/ehd-apy ] && nsenter --net=/run/netns/ehd-apy "$BIN/edgehop-ap" --pin "$PIN_Y" unload --radio radio0 --wan wan0 >/dev/null 2>&1 || true
	netns_del "${NSS[@]}" || true
	return 0
}

topo_up() {
	local ns
	topo_down
	for ns in "${NSS[@]}"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	done
	ip -n ehd-mud link add mud0 type veth peer name radio0 netns ehd-apy
	ip -n ehd-mud link add mudx0 type veth peer name radio0 netns ehd-apx
	ip -n ehd-apy link add wan0 type veth peer name wan0 netns ehd-apx
	ip -n ehd-apx link add es0 type veth peer name eth0 netns ehd-esx
	ip -n ehd-apy link add es0 type veth peer name eth0 netns ehd-esy
	ip -n ehd-apy link add spf0 type veth peer name spf0 netns ehd-spf
	ip -n ehd-mud link add mud2 link mud0 type macvlan mode bridge
	ip -n ehd-mud link set mud2 netns ehd-mud2
	ip -n ehd-mud2 addr add $MUD2_IP/24 dev mud2

	ip -n ehd-mud addr add $MUD_IP/24 dev mud0
	ip -n ehd-mud addr add $MUDX_IP/24 dev mudx0
	ip -n ehd-apy addr add 10.91.0.1/24 dev radio0
	ip -n ehd-apx addr add 10.91.3.1/24 dev radio0
	ip -n ehd-apx addr add 10.91.100.1/30 dev wan0
	ip -n ehd-apy addr add 10.91.100.2/30 dev wan0
	ip -n ehd-apx addr add 10.91.1.1/24 dev es0
	ip -n ehd-esx addr add $CTX_IP/24 dev eth0
	ip -n ehd-apy addr add 10.91.2.1/24 dev es0
	ip -n ehd-esy addr add $CTY_IP/24 dev eth0
	ip -n ehd-apy addr add 10.91.4.1/24 dev spf0
	ip -n ehd-spf addr add $SPF_IP/24 dev spf0
	for ns in "${NSS[@]}"; do
		for dev in $(ip -n "$ns" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
			ip -n "$ns" link set "$dev" up
		done
	done
	# The MUD reaches the VIP through AP-y by default; through AP-x from mudx0.
	ip -n ehd-mud route add $VIP/32 via 10.91.0.1 dev mud0
	ip -n ehd-apy route add 10.91.1.0/24 via 10.91.100.1
	ip -n ehd-apx route add 10.91.0.0/24 via 10.91.100.2
	ip -n ehd-apx route add 10.91.2.0/24 via 10.91.100.2
	ip -n ehd-esx route add default via 10.91.1.1
	ip -n ehd-esy route add default via 10.91.2.1
	ip -n ehd-spf route add default via 10.91.4.1
	ip -n ehd-mud route add 10.91.4.0/24 via 10.91.0.1 dev mud0
	ip -n ehd-mud2 route add $VIP/32 via 10.91.0.1 dev mud2
	for ns in ehd-apx ehd-apy; do
		ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0
	done
}

# start_svc NS NAME [PORT]: the offloading service as the stand-in container.
start_svc() {
	local ns=$1 name=$2 port=${3:-$VPORT} tmp=${TMPD:-$BATS_FILE_TMPDIR}
	local dir=$tmp/$name
	mkdir -p "$dir"
	nsenter --net=/run/netns/"$ns" "$BIN/edgehop-svc" --port "$port" --name "$name" \
		--state-dir "$dir" >"$tmp/$name.log" 2>&1 &
	wait_for 10 in_ns "$ns" "$BIN/edgehop-svcctl" status 127.0.0.1:"$port"
}

# shellcheck source=tests/helpers/wait.bash
source "$TOP/tests/helpers/wait.bash"

# counter PIN NAME: a dataplane counter (EH_C_<NAME>), summed over CPUs, read
# with bpftool; the index comes from the enum in the shared header.
counter_names() {
	awk '/^enum eh_counter/{on=1; next} on && /EH_C_MAX/{exit}
		on && match($0, /EH_C_[A-Z_]+/){print substr($0, RSTART + 5, RLENGTH - 5)}' \
		"$TOP/bpf/edgehop_kern_user.h"
}

counter() {
	local idx
	idx=$(counter_names | grep -nx "$2" | cut -d: -f1)
	[ -n "$idx" ] || { echo "no counter $2" >&2; return 1; }
	bpftool -j map lookup pinned "$1/eh_counters" key $((idx - 1)) 0 0 0 \
		| jq '[.formatted.values[].value.packets] | add'
}
