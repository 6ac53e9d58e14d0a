#!/usr/bin/env bats
# edgehop-agent wan: netem and routes over rtnetlink (control/nl), on a veth
# pair inside a private namespace of this suite. iproute2 (ip, tc) only
# checks, and puts a foreign root qdisc in place for "del leaves it alone".
#
# This host's kernel has no netem (and nothing loads modules): there, "wan set"
# must fail with the kernel's own words and exit 1. On a kernel with netem the
# same test checks set/show/del instead; the VM tier (tests/vm/10-smoke.bats)
# does that on the nodes with traffic.

bats_require_minimum_version 1.5.0

setup_file() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
	export NS=ehnl-$$
	ip netns add "$NS"
	ip -n "$NS" link add name veth0 type veth peer name veth1
	ip -n "$NS" addr add 10.1.0.1/24 dev veth0
	ip -n "$NS" addr add 10.1.0.2/24 dev veth1
	ip -n "$NS" link set lo up
	ip -n "$NS" link set veth0 up
	ip -n "$NS" link set veth1 up
	[ -x "$EHS_BIN/edgehop-agent" ]
}

teardown_file() {
	load helpers/ehs-common
	ehs_del_ns "$NS"
}

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
}

agent() {
	timeout 10 ip netns exec "$NS" "$EHS_BIN/edgehop-agent" "$@"
}

@test "wan: usage errors exit 2 and say what is wrong" {
	run -2 agent wan
	assert_output --partial "needs set, show, del or route"
	run -2 agent wan set
	assert_output --partial "set needs DEV"
	run -2 agent wan set veth0 rate 8
	assert_output --partial "bad rate '8'"
	assert_output --partial "bit, kbit, mbit, gbit, Bps, KBps, MBps"
	run -2 agent wan set veth0 delay -5
	assert_output --partial "bad delay '-5'"
	run -2 agent wan set veth0 loss 101
	assert_output --partial "bad loss '101'"
	run -2 agent wan set veth0 limit 1.5
	assert_output --partial "bad limit '1.5'"
	run -2 agent wan set veth0 delay 10 delay 20
	assert_output --partial "delay given twice"
	run -2 agent wan set veth0 latency 10
	assert_output --partial "unknown option 'latency'"
	run -2 agent wan set veth0 delay
	assert_output --partial "delay needs a value"
	run -2 agent wan show
	assert_output --partial "show needs DEV"
	run -2 agent wan frob veth0
	assert_output --partial "unknown 'frob'"
	run -2 agent wan route replace 10.9.0.0/24
	assert_output --partial "needs via GW or dev DEV"
	run -2 agent wan route replace 10.9.0.0/33 via 10.1.0.2
	assert_output --partial "bad destination '10.9.0.0/33'"
	run -0 agent wan --help
	assert_output --partial "wan show DEV [--json]"
}

@test "wan set: without netem in the kernel, exit 1 with the kernel's message and the root qdisc untouched" {
	run agent wan set veth0 delay 100 rate 8mbit limit 10000
	if [ "$status" -eq 0 ]; then
		# A kernel with netem: then set must have put exactly this there.
		run -0 agent wan show veth0 --json
		run -0 jq -e '.netem and .delay_ms == 100 and .rate_bit_s == 8000000 and .limit == 10000' <<<"$output"
		run -0 agent wan del veth0
		run -0 agent wan show veth0
		assert_output "veth0: netem none"
		return
	fi
	assert_equal "$status" 1
	assert_output "edgehop-agent wan set: netem on veth0: Error: Specified qdisc kind is unknown."
	run -0 ip netns exec "$NS" tc -j qdisc show dev veth0
	run -0 jq -e 'length == 1 and .[0].kind == "noqueue"' <<<"$output"
}

@test "wan set on an interface that is not there: exit 1, names it" {
	run -1 agent wan set nope0 delay 10
	assert_output --partial "netem on nope0: no interface 'nope0' here"
	run -1 agent wan show nope0
	assert_output --partial "no interface 'nope0'"
}

@test "wan show says none, wan del of nothing is 0" {
	run -0 agent wan show veth0
	assert_output "veth0: netem none"
	run -0 agent wan show veth0 --json
	run -0 jq -e '. == {"dev": "veth0", "netem": false}' <<<"$output"
	run -0 agent wan del veth0
	assert_output ""
	run -0 agent wan del veth0
}

@test "wan del leaves a root qdisc that is not netem alone" {
	timeout 10 ip netns exec "$NS" tc qdisc replace dev veth1 root tbf rate 1mbit burst 32k latency 400ms
	run -0 agent wan show veth1
	assert_output "veth1: netem none"
	run -0 agent wan del veth1
	run -0 ip netns exec "$NS" tc -j qdisc show dev veth1
	run -0 jq -e '.[0].kind == "tbf"' <<<"$output"
	timeout 10 ip netns exec "$NS" tc qdisc del dev veth1 root
}

@test "wan route: replace creates then changes in place, del removes, del of nothing is 0" {
	run -0 agent wan route replace 10.9.0.0/24 via 10.1.0.2
	run -0 ip -n "$NS" route show 10.9.0.0/24
	assert_output --regexp '^10\.9\.0\.0/24 via 10\.1\.0\.2 dev veth(0|1) proto static *$'
	# replace, not add: a second gateway changes the route, no second route
	run -0 agent wan route replace 10.9.0.0/24 via 10.1.0.1 dev veth1
	run -0 ip -n "$NS" route show 10.9.0.0/24
	assert_output --regexp '^10\.9\.0\.0/24 via 10\.1\.0\.1 dev veth1 proto static *$'
	# no gateway: on-link through the device
	run -0 agent wan route replace 10.8.0.0/16 dev veth0
	run -0 ip -n "$NS" route show 10.8.0.0/16
	assert_output --regexp '^10\.8\.0\.0/16 dev veth0 proto static scope link *$'
	# a host route from a bare address
	run -0 agent wan route replace 10.7.0.9 via 10.1.0.2
	run -0 ip -n "$NS" route show 10.7.0.9/32
	assert_output --partial "10.7.0.9 via 10.1.0.2"

	run -0 agent wan route del 10.9.0.0/24
	run -0 agent wan route del 10.8.0.0/16
	run -0 agent wan route del 10.7.0.9
	run -0 ip -n "$NS" route show
	refute_output --regexp '10\.(9|8|7)\.0\.'
	run -0 agent wan route del 10.9.0.0/24
}

@test "wan route: the kernel's refusal and a bad prefix say why, exit 1" {
	run -1 agent wan route replace 10.6.0.0/24 via 10.99.0.1
	assert_output "edgehop-agent wan route replace 10.6.0.0/24: Error: Nexthop has invalid gateway."
	run -1 agent wan route replace 10.6.0.1/24 via 10.1.0.2
	assert_output --partial "10.6.0.1/24 has host bits set"
	run -1 agent wan route replace 10.6.0.0/24 dev nope0
	assert_output --partial "no interface 'nope0'"
	run -0 ip -n "$NS" route show 10.6.0.0/24
	assert_output ""
}
