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
BIN=${EDGEHOP_BUILD:-$TOP/build}/bin	# EDGEHOP_BUILD: tests/helpers/ehs-common.bash
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
	local many
	# The many-MUD namespaces (many_up) first: their macvlans hang off ehd-mud's veths.
	many=$(ls /run/netns 2>/dev/null | grep -E '^ehd-m[0-9]+$' || true)
	if [ -n "$many" ]; then
		# shellcheck disable=SC2086
		netns_kill 5 $many
		# shellcheck disable=SC2086
		netns_del $many || true
	fi
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

# dp_topo_up: topo_up, both APs' dataplanes loaded (at EH_ATTACH: auto, xdp or
# tc; auto attaches at TC on these veths), CT-x and CT-y serving on VPORT. The
# MUD's veth keeps checksum offload on: its requests arrive as
# CHECKSUM_PARTIAL seeds, which the redirect paths must checksum whole. GRO on
# the MUD's end gives the peer the NAPI that XDP_REDIRECT into a veth needs
# (AP-y's fast return path, WAN -> radio at XDP).
dp_topo_up() {
	topo_up
	ip netns exec ehd-mud ethtool -K mud0 gro on >/dev/null
	ap_x load --radio radio0 --wan wan0 --vip $VIP:$VPORT ${EH_ATTACH:+--attach $EH_ATTACH}
	ap_y load --radio radio0 --wan wan0 --vip $VIP:$VPORT --fast-return on ${EH_ATTACH:+--attach $EH_ATTACH}
	start_svc ehd-esx ct-x
	start_svc ehd-esy ct-y
}

# hooks NS DEV...: what is attached to each DEV in NS (XDP program, qdiscs, TC
# filters both ways, program ids included), for before/after comparisons.
hooks() {
	local ns=$1 dev dir; shift
	for dev in "$@"; do
		echo "$dev xdp: $(ip -n "$ns" -d link show dev "$dev" | grep -o 'prog/xdp id [0-9]* name [a-z_]*')"
		tc -n "$ns" qdisc show dev "$dev"
		for dir in ingress egress; do
			echo "$dev $dir:"
			tc -n "$ns" filter show dev "$dev" "$dir"
		done
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

# --- many MUDs (tests/11-many-muds.bats, tests/bench/cutover) --------------
# MUD i (1..N) lives in namespace ehd-mNN with a leg on each AP's radio
# (macvlans on ehd-mud's mud0 and mudx0): 10.91.0.(110+i) at AP-y,
# 10.91.3.(110+i) at AP-x; mud id 200+i. It associates with AP-x and hands
# off to AP-y through the test-double agents (tests/helpers/fake-agent.py).
many_ns() { printf 'ehd-m%02d' "$1"; }
many_ip_y() { echo "10.91.0.$((110 + $1))"; }
many_ip_x() { echo "10.91.3.$((110 + $1))"; }
many_id() { echo $((${MANY_ID_BASE:-200} + $1)); }	# fresh ids per run: MANY_ID_BASE

many_up() {
	local n=$1 i ns
	for i in $(seq 1 "$n"); do
		ns=$(many_ns "$i")
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		ip -n ehd-mud link add "ry$i" link mud0 type macvlan mode bridge
		ip -n ehd-mud link set "ry$i" netns "$ns"
		ip -n ehd-mud link add "rx$i" link mudx0 type macvlan mode bridge
		ip -n ehd-mud link set "rx$i" netns "$ns"
		ip -n "$ns" addr add "$(many_ip_y "$i")/24" dev "ry$i"
		ip -n "$ns" addr add "$(many_ip_x "$i")/24" dev "rx$i"
		ip -n "$ns" link set "ry$i" up
		ip -n "$ns" link set "rx$i" up
		# Answers of around the handoff arrive on the other leg.
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 \
			net.ipv4.conf."ry$i".rp_filter=0 net.ipv4.conf."rx$i".rp_filter=0
	done
}

# many_agents DIR: the test-double agents of AP-x and AP-y (READY to any MUD).
many_agents() {
	local dir=$1
	nsenter --net=/run/netns/ehd-apx python3 "$TOP/tests/helpers/fake-agent.py" \
		--addr 10.91.3.1 --name AP-x --vip "$VIP:$VPORT" >"$dir/agent-x.out" 2>&1 &
	nsenter --net=/run/netns/ehd-apy python3 "$TOP/tests/helpers/fake-agent.py" \
		--addr 10.91.0.1 --name AP-y --vip "$VIP:$VPORT" >"$dir/agent-y.out" 2>&1 &
	wait_for 10 grep -q ready "$dir/agent-x.out"
	wait_for 10 grep -q ready "$dir/agent-y.out"
}

# many_topo_up N DIR: dp_topo_up, N MUDs (many_up), the test-double agents and
# logrepo on AP-y (udp 7779, DIR/logrepo); their output in DIR.
many_topo_up() {
	local n=$1 dir=$2
	dp_topo_up
	many_up "$n"
	many_agents "$dir"
	nsenter --net=/run/netns/ehd-apy "$BIN/edgehop-logrepo" serve --udp 7779 \
		--allow 10.91.0.0/16 --allow 127.0.0.0/8 --dir "$dir/logrepo" \
		>"$dir/logrepo.out" 2>&1 &
	wait_for 10 grep -q "serving udp" "$dir/logrepo.out"
}

# ap_show_holds NS PIN FILTER: 0 if jq FILTER holds on that AP's show --json.
ap_show_holds() {
	local ns=$1 pin=$2 filter=$3
	timeout 20 nsenter --net=/run/netns/"$ns" "$BIN/edgehop-ap" --pin "$pin" show --json |
		jq -e "$filter" >/dev/null
}

# many_run N COUNT HANDOFF DIR [RUN-PREFIX]: N MUDs at 10 req/s for COUNT
# (ids from MANY_ID_BASE + 1; cut over once each has MANY_BUFFERED at AP-y)
# requests, associated with AP-x (buffering towards CT-x, which stands in for
# the container being checkpointed), handing off to AP-y before request
# HANDOFF; AP-y forwards to CT-x and buffers; once every MUD is at AP-y,
# CT-y is "restored" from AP-x's buffers (the stand-in for T1-T5, as in
# scripts/run-demo) and all N are cut over to CT-y at once. Writes
# DIR/mud-ID.json, DIR/cut-ID.json, DIR/cut-ID.end (ns, end of its cut-over),
# DIR/cut.start (ns). Returns non-zero if a step failed (the checks are the
# caller's).
many_run() {
	local n=$1 count=$2 handoff=$3 dir=$4 run=${5:-many} i id ns pids=() cuts=() rc=0 ids=()
	for i in $(seq 1 "$n"); do
		id=$(many_id "$i")
		ids+=("$id")
		# Fresh entries: the per-MUD counters waited on below start at 0.
		ap_x del "$(many_ip_x "$i")" >/dev/null 2>&1
		ap_y del "$(many_ip_y "$i")" >/dev/null 2>&1
		ap_x set "$(many_ip_x "$i")" --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id "$id" || return 1
		ap_y set "$(many_ip_y "$i")" --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id "$id" || return 1
	done
	for i in $(seq 1 "$n"); do
		id=$(many_id "$i")
		ns=$(many_ns "$i")
		timeout 300 nsenter --net=/run/netns/"$ns" "$BIN/edgehop-mud" --svc $VIP:$VPORT \
			--mud-id "$id" --count "$count" --rate 10 --timeout-ms 500 --name "MUD-$id" \
			--ap AP-x=10.91.3.1:7778,10.91.3.1 --ap AP-y=10.91.0.1:7778,10.91.0.1 \
			--handoff "$handoff:AP-y" --run "$run-$id" --logrepo 10.91.0.1:7779 \
			--quiet --json "$dir/mud-$id.json" >"$dir/mud-$id.out" 2>&1 &
		pids+=($!)
	done
	# Every MUD at AP-y: its requests arrive there (it sends the next one
	# only after READY and the route moved; window 1: nothing left at AP-x),
	# and AP-y buffered MANY_BUFFERED of each (default 1): what it holds
	# when the migration's restore is done.
	local all_y
	all_y=$(printf '%s\n' "${ids[@]}" | jq -sc .)
	wait_for 120 ap_show_holds ehd-apy "$PIN_Y" \
		"[.[]|select(.mud_id as \$m | $all_y | index(\$m))|select(.buffered >= ${MANY_BUFFERED:-1})]|length == $n" || rc=1
	# CT-y restored: what CT-x applied before the handoff, from AP-x's buffers.
	for i in $(seq 1 "$n"); do
		[ $rc -eq 0 ] || break
		ap_x replay "$(many_ip_x "$i")" --to $CTY_IP:$VPORT >"$dir/restore-$(many_id "$i").out" 2>&1 || rc=1
	done
	ap_y show --json >"$dir/show-before-cut.json"
	date +%s%N >"$dir/cut.start"
	for i in $(seq 1 "$n"); do
		[ $rc -eq 0 ] || break
		id=$(many_id "$i")
		( ap_y cutover "$(many_ip_y "$i")" --to $CTY_IP:$VPORT --mud-id "$id" --json \
			--logrepo 127.0.0.1:7779 --role AP-y --run "$run-$id" >"$dir/cut-$id.json" 2>"$dir/cut-$id.err"
		  r=$?; date +%s%N >"$dir/cut-$id.end"; exit $r ) &
		cuts+=($!)
	done
	for i in "${cuts[@]}"; do wait "$i" || rc=1; done
	for i in "${pids[@]}"; do wait "$i" || rc=1; done
	for i in $(seq 1 "$n"); do
		ap_x del "$(many_ip_x "$i")" >/dev/null 2>&1
	done
	return $rc
}
