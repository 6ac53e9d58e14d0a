#!/usr/bin/env bats
# Teardown that does not depend on the kernel's timing (scripts/netdev.sh, used by
# vm/testbed, vm/vagrant/testbed and the namespace suites' helpers).
#
# The race: deleting a network namespace returns at once and the kernel removes
# its devices later; a veth whose peer is in the deleted namespace disappears
# from the surviving side at some moment after. "ip link show X && ip link del X"
# then sees X and fails to delete it (a fresh machine's CI lost "vm/testbed down"
# to this). These tests make that race likely (veth, delete the peer's
# namespace, tear down at once) and repeat it.
#
# Everything here has its own names (pid-suffixed, or the private testbed
# config below: node "node-9", bridges eht-*, 10.79.0.0/24): nothing of a real
# testbed, which may be up at the same time, is touched.

bats_require_minimum_version 1.5.0

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
	TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	source "$TOP/scripts/netdev.sh"
	[ "$(id -u)" -eq 0 ] || { echo "needs root (namespaces, links)" >&2; return 1; }
	T=$$	# names: at most 15 characters
}

teardown() {
	local k
	for k in 1 2 3 4 5; do ip link del "ehtd$k-$T" 2>/dev/null || true; done
	ip netns del "ehtd-a-$T" 2>/dev/null || true
	ip netns del "ehtd-b-$T" 2>/dev/null || true
	[ -z "${CONF:-}" ] || EH_TESTBED_CONF=$CONF EH_VM_RUN=$BATS_TEST_TMPDIR/run "$TOP/vm/testbed" down >/dev/null 2>&1 || true
}

# veths ehtd1..5-$T on this side; 1-4 with their peers in namespace a, 5 in b.
racy_veths() {
	local k
	ip netns add "ehtd-a-$T"
	ip netns add "ehtd-b-$T"
	for k in 1 2 3 4; do ip link add "ehtd$k-$T" type veth peer name "p$k" netns "ehtd-a-$T"; done
	ip link add "ehtd5-$T" type veth peer name p5 netns "ehtd-b-$T"
}

@test "links_down right after the peers' namespaces are deleted: exit 0 and no link left, 200 times" {
	local i k devs=()
	for k in 5 4 3 2 1; do devs+=("ehtd$k-$T"); done
	for i in $(seq 200); do
		racy_veths
		ip netns del "ehtd-a-$T"
		ip netns del "ehtd-b-$T"
		run links_down "${devs[@]}"
		[ "$status" -eq 0 ] || fail "round $i: links_down exited $status: $output"
		for k in "${devs[@]}"; do
			run ! ip link show "$k"
		done
	done
}

@test "links_del: a device already gone (before or after ip looked it up) is success; any other error fails and says why" {
	run -0 links_del "ehtd-none-$T"
	assert_output ''
	ip netns add "ehtd-a-$T"
	# the loopback cannot be deleted: not "Cannot find device", so a failure
	run -1 links_del -n "ehtd-a-$T" "ehtd-none-$T" lo
	assert_output --partial "links_del: lo (netns ehtd-a-$T): RTNETLINK answers: Operation not supported"
	run -1 links_wait_gone -n "ehtd-a-$T" 1 lo
	assert_output --partial 'still there after 1s'
	# the narrower window (CI lost a round to it): ip found the name, the device
	# vanished before the delete by index, the kernel said ENODEV. Forced here
	# with an ip(8) that answers as the kernel did; anything else still fails.
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	printf '#!/bin/sh\necho "RTNETLINK answers: $EH_FAKE_ERR" >&2\nexit 2\n' >"$BATS_TEST_TMPDIR/bin/ip"
	chmod +x "$BATS_TEST_TMPDIR/bin/ip"
	PATH=$BATS_TEST_TMPDIR/bin:$PATH EH_FAKE_ERR='No such device' run -0 links_del "ehtd-racy-$T"
	assert_output ''
	PATH=$BATS_TEST_TMPDIR/bin:$PATH EH_FAKE_ERR='Device or resource busy' run -1 links_del "ehtd-racy-$T"
	assert_output --partial "links_del: ehtd-racy-$T: RTNETLINK answers: Device or resource busy"
}

@test "netns_kill stops what runs in a namespace; netns_del of a namespace already gone is success" {
	ip netns add "ehtd-a-$T"
	ip netns exec "ehtd-a-$T" sleep 300 >/dev/null 2>&1 3>&- &
	local p=$!
	wait_until() { local i; for i in $(seq 100); do "$@" && return 0; sleep 0.05; done; return 1; }
	wait_until bash -c "[ -n \"\$(ip netns pids ehtd-a-$T)\" ]"
	# and one that ignores SIGTERM: killed after the grace period
	ip netns exec "ehtd-a-$T" bash -c 'trap "" TERM; sleep 300 & wait; sleep 300' >/dev/null 2>&1 3>&- &
	# and one under timeout(1): its program is stopped, the timeout exits with it
	ip netns exec "ehtd-a-$T" timeout 300 sleep 301 >/dev/null 2>&1 3>&- &
	wait_until bash -c "[ \$(ip netns pids ehtd-a-$T | wc -l) -ge 5 ]"
	run -0 netns_kill 1 "ehtd-a-$T"
	assert_equal "$(ip netns pids "ehtd-a-$T" | wc -l)" 0
	run -0 netns_del "ehtd-a-$T" "ehtd-a-$T" "ehtd-none-$T"
	assert [ ! -e "/run/netns/ehtd-a-$T" ]
	wait "$p" 2>/dev/null || true
}

# A private copy of the testbed's host network: one node (node-9), its own
# bridges, namespaces, veth names and management subnet.
private_testbed_conf() {
	CONF=$BATS_TEST_TMPDIR/testbed.conf
	cat >"$CONF" <<EOF
source "$TOP/vm/testbed.conf"
NODES_ALL="node-9" NODES_DEFAULT="node-9"
NODE_IDX[node-9]=9 NODE_MEM[node-9]=256 NODE_CPUS[node-9]=1
NODE_MGMT[node-9]=10.79.0.11 NODE_RADIO[node-9]=10.79.21.1 NODE_WAN[node-9]=10.79.2.11 NODE_DOCKER[node-9]=10.79.10.1/24
BR_MGMT=eht-mgmt-$T MGMT_HOST_IP=10.79.0.1 BR_WAN=eht-wan-$T
NS_MUD=eht-mud-$T NS_LOGREPO=eht-lr-$T MUD_MGMT_IP=10.79.0.100 LOGREPO_IP=10.79.0.2
MUD_MGMT_IF=ehtm-$T LR_MGMT_IF=ehtl-$T
EOF
	TB=(env EH_TESTBED_CONF="$CONF" EH_VM_RUN="$BATS_TEST_TMPDIR/run" "$TOP/vm/testbed")
}

# no_testbed_left: none of the private testbed's links or namespaces exists.
no_testbed_left() {
	run -0 ip -o link show
	refute_output --regexp " (eh-9-(mgmt|radio|wan)|eh-air-9|eh-mud-9|ehtm-$T|ehtl-$T|eht-mgmt-$T|eht-wan-$T)[:@]"
	run -0 ip netns list
	refute_output --regexp "^eht-(mud|lr)-$T( |\$)"
}

@test "vm/testbed down right after its host network came up: exit 0, nothing left, 10 times; a second down is harmless" {
	private_testbed_conf
	local i
	for i in $(seq 10); do
		run -0 "${TB[@]}" net-up
		# what "up" adds per node besides: its taps on the bridges
		ip tuntap add dev eh-9-mgmt mode tap && ip link set eh-9-mgmt master "eht-mgmt-$T"
		ip tuntap add dev eh-9-radio mode tap && ip link set eh-9-radio master eh-air-9
		# a process in the MUD's namespace (a test's MUD), as a failed run leaves it
		ip netns exec "eht-mud-$T" sleep 300 >/dev/null 2>&1 3>&- &
		run "${TB[@]}" down
		[ "$status" -eq 0 ] || fail "round $i: vm/testbed down exited $status: $output"
		no_testbed_left
	done
	run -0 "${TB[@]}" down
	no_testbed_left
}

@test "vm/testbed net-up over the leftovers of a namespace deleted under it: the stale veths are replaced" {
	private_testbed_conf
	run -0 "${TB[@]}" net-up
	# Someone deletes the namespaces: the host ends go, asynchronously.
	ip netns del "eht-mud-$T"
	ip netns del "eht-lr-$T"
	run -0 "${TB[@]}" net-up
	run -0 ip netns exec "eht-lr-$T" ip -br addr show mgmt0
	assert_output --partial 10.79.0.2/24
	run -0 ip netns exec "eht-mud-$T" ip -br addr show air-9
	assert_output --partial 10.79.21.100/24
	run -0 "${TB[@]}" down
	no_testbed_left
}
