#!/usr/bin/env bats
# Smoke test 4 of the VM testbed, kept out of tests/vm/10-smoke.bats (and out of
# tests/run-all, which runs tests/vm/[0-9]*.bats only) until the dataplane's XDP
# program passes the verifier of the node kernel (trixie 6.12): there
# eh_xdp_radio is refused with "math between pkt pointer and register with
# unbounded min value is not allowed" (edgehop.bpf.c:183, "(void *)ip + tot_len").
# Run it by hand: bats tests/vm/pending/04-dataplane-forward.bats

load ../helpers

setup_file() {
	load ../helpers
	"$TOP/control/image/mkbase.sh" small >&3 2>&1
	testbed_setup_file node-x node-y
}

teardown_file() {
	load ../helpers
	testbed_teardown_file
}

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
}

ct_ip() { on "$1" docker inspect -f '{{.NetworkSettings.IPAddress}}' "$2"; }
svc_args() { echo "--port $SVC_PORT --name $1 --state-dir /var/lib/edgehop-svc"; }

@test "dataplane on both radio NICs: a MUD associated to node-y reaches CT on node-x through node-y's forwarding, answers from the VIP" {
	needs_bin edgehop-ap edgehop-svc edgehop-mud
	local n ipx mudy
	for n in node-x node-y; do
		on "$n" "$BIN/edgehop-ap unload --radio radio0 --wan wan0 >/dev/null 2>&1; $BIN/edgehop-ap load --radio radio0 --wan wan0 --vip $VIP:$SVC_PORT"
	done
	on node-x "docker rm -f ct-4 >/dev/null 2>&1; $SHARE/control/image/svc-image.sh small" >&3
	on node-x docker run -d --name ct-4 --security-opt seccomp=unconfined edgehop-svc:small $(svc_args CT-x)
	ipx=$(ct_ip node-x ct-4)
	wait_for 30 "CT-x answers" on node-x "$BIN/edgehop-svcctl" status "$ipx:$SVC_PORT"
	mudy=$(cd "$TOP" && source vm/lib.sh && mud_ip node-y)
	on node-y "$BIN/edgehop-ap" set "$mudy" --mode forward --backend "$ipx:$SVC_PORT" --mud-id 9
	# Associated to node-y: the VIP is reached through node-y's radio address.
	ip -n "$NS_MUD" route replace "$VIP/32" via "${NODE_RADIO[node-y]}"
	run -0 timeout 120 ip netns exec "$NS_MUD" "$TOP/build/bin/edgehop-mud" --svc "$VIP:$SVC_PORT" \
		--mud-id 9 --count 100 --rate 0 --quiet --json "$BATS_TEST_TMPDIR/m4.json"
	# The MUD's socket is connected to the VIP: answers from elsewhere never arrive.
	assert_equal "$(jq -r .answered "$BATS_TEST_TMPDIR/m4.json")" 100
	assert_equal "$(jq -r .mismatches "$BATS_TEST_TMPDIR/m4.json")" 0
	assert_equal "$(jq -r '.servers|join(",")' "$BATS_TEST_TMPDIR/m4.json")" CT-x
	run -0 on node-y "$BIN/edgehop-ap" stats --json
	echo "node-y stats: $output"
	for n in node-x node-y; do on "$n" "$BIN/edgehop-ap" unload --radio radio0 --wan wan0; done
	on node-x docker rm -f ct-4 >/dev/null
}
