#!/usr/bin/env bats
# Smoke suite of the VM testbed (issue 4): the nodes, netem on the WAN, a
# checkpoint/restore of the service across nodes, the dataplane's forwarding
# between nodes, and a "down" that leaves nothing behind. One testbed per suite.

load helpers

setup_file() {
	load helpers
	"$TOP/control/image/mkbase.sh" small >&3 2>&1
	testbed_setup_file node-x node-y
}

teardown_file() {
	load helpers
	testbed_teardown_file
}

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
}

@test "both nodes boot: criu check looks good, docker answers, netem is accepted on the WAN NIC" {
	local n
	needs_bin edgehop-agent
	for n in node-x node-y; do
		run -0 on "$n" hostname
		assert_output "$n"
		run -0 on "$n" criu check
		assert_output --partial "Looks good"
		run -0 on "$n" docker info --format '{{.ServerVersion}}'
		# netem over rtnetlink (edgehop-agent wan); tc only looks.
		run -0 on "$n" "$BIN/edgehop-agent wan set wan0 delay 1 && tc qdisc show dev wan0 && $BIN/edgehop-agent wan del wan0"
		assert_output --partial "netem"
		run -0 on "$n" "$BIN/edgehop-agent" wan show wan0
		assert_output "wan0: netem none"
		# The repository is there, read-only.
		run -0 on "$n" "test -x $SHARE/vm/testbed && ! touch $SHARE/.rw-probe 2>/dev/null"
	done
}

@test "netem 100 ms each way + 8 Mbit/s on the WAN: ping shows the delay, a bulk transfer the rate" {
	local n rtt bytes ns mbit
	needs_bin edgehop-agent
	for n in node-x node-y; do
		on "$n" "$BIN/edgehop-agent" wan set wan0 delay 100 rate 8mbit limit 10000
		# what the agent reads back, and what tc reads independently of it
		run -0 on "$n" "$BIN/edgehop-agent" wan show wan0 --json
		echo "$n: $output"
		run -0 jq -e '.dev == "wan0" and .netem and .delay_ms == 100 and .jitter_ms == 0 and
			.rate_bit_s == 8000000 and .loss_pct == 0 and .limit == 10000' <<<"$output"
		run -0 on "$n" "$BIN/edgehop-agent" wan show wan0
		assert_output "wan0: netem delay 100ms jitter 0ms rate 8mbit loss 0% limit 10000"
		run -0 on "$n" tc qdisc show dev wan0
		assert_output --regexp 'qdisc netem [0-9a-f]+: root .*limit 10000 delay 100(\.0)?ms rate 8Mbit'
	done
	run -0 on node-x ping -n -c 5 -i 0.3 "${NODE_WAN[node-y]}"
	# rtt min/avg/max/mdev = a/b/c/d ms
	rtt=$(echo "$output" | sed -n 's|.*= \([0-9.]*\)/\([0-9.]*\)/.*|\1 \2|p')
	echo "rtt min avg: $rtt"
	read -r min avg <<<"$rtt"
	assert [ "${min%.*}" -ge 195 ]
	assert [ "${avg%.*}" -le 400 ]

	# Receiver on node-y times the transfer after its first 64 KiB (TCP's slow
	# start over a 200 ms RTT excluded), on its own clock.
	on node-y "rm -f /tmp/rx; (setsid sh -c 'timeout 90 busybox nc -l -p 5001 | { head -c 65536 >/dev/null; a=\$(date +%s%N); n=\$(wc -c); b=\$(date +%s%N); echo \$n \$((b - a)) >/tmp/rx; }' >/dev/null 2>&1 </dev/null &)"
	sleep 1
	# bash's /dev/tcp: busybox nc drops what is still queued when its stdin ends.
	on node-x "timeout 90 bash -c 'head -c 5000000 /dev/zero >/dev/tcp/${NODE_WAN[node-y]}/5001'"
	wait_for 60 on node-y test -s /tmp/rx	# node-y received the transfer
	read -r bytes ns < <(on node-y cat /tmp/rx)
	mbit=$((bytes * 8 * 1000000 / ns))         # Mbit/s x 1000
	echo "bulk: $bytes bytes in $((ns / 1000000)) ms = $((mbit / 1000)).$((mbit % 1000 / 100)) Mbit/s"
	assert [ "$bytes" -ge 4900000 ]
	assert [ "$mbit" -ge 5600 ]   # >= 0.7 x 8 Mbit/s
	assert [ "$mbit" -le 8800 ]   # <= 1.1 x 8 Mbit/s
	# each set is the whole state: without "rate" the rate goes, limit back to derived
	on node-x "$BIN/edgehop-agent" wan set wan0 delay 100 jitter 5 loss 1.5
	run -0 on node-x "$BIN/edgehop-agent" wan show wan0 --json
	run -0 jq -e '.delay_ms == 100 and .jitter_ms == 5 and .rate_bit_s == 0 and .loss_pct == 1.5 and
		.limit == 1000' <<<"$output"
	for n in node-x node-y; do
		run -0 on "$n" "$BIN/edgehop-agent" wan del wan0
		run -0 on "$n" "$BIN/edgehop-agent" wan show wan0 --json
		run -0 jq -e '.netem == false' <<<"$output"
		run -0 on "$n" tc qdisc show dev wan0
		refute_output --partial netem
		# and a second del finds nothing to do
		run -0 on "$n" "$BIN/edgehop-agent" wan del wan0
	done
}

# ct_ip NODE NAME: the container's address
ct_ip() { on "$1" docker inspect -f '{{.NetworkSettings.IPAddress}}' "$2"; }
svc_args() { echo "--port $SVC_PORT --name $1 --state-dir /var/lib/edgehop-svc"; }

@test "a service container checkpointed on node-x (leave-running) and restored on node-y keeps its state" {
	needs_bin edgehop-svc edgehop-svcctl edgehop-mud
	local n ipx ipy cp=cp1
	for n in node-x node-y; do
		on "$n" "docker rm -f ct-x ct-y >/dev/null 2>&1; $SHARE/control/image/svc-image.sh small" >&3
	done
	on node-x docker run -d --name ct-x --security-opt seccomp=unconfined edgehop-svc:small $(svc_args CT-x)
	ipx=$(ct_ip node-x ct-x)
	wait_for 30 on node-x "$BIN/edgehop-svcctl" status "$ipx:$SVC_PORT"	# CT-x answers
	run -0 on node-x "$BIN/edgehop-mud" --svc "$ipx:$SVC_PORT" --mud-id 5 --count 200 --rate 0 --quiet --json /tmp/m1.json
	run -0 on node-x cat /tmp/m1.json
	local m1=$output
	assert_equal "$(jq -r .answered <<<"$m1")" 200

	# The consistent snapshot: pause, checkpoint (leave-running), container layer, unpause.
	local upper_x
	upper_x=$(on node-x docker inspect -f '{{.GraphDriver.Data.UpperDir}}' ct-x)
	on node-x docker pause ct-x
	on node-x docker checkpoint create --leave-running ct-x "$cp"
	on node-x "tar -C '$upper_x' -cf /tmp/layer.tar ."
	on node-x docker unpause ct-x
	run -0 on node-x "$BIN/edgehop-svcctl" status "$ipx:$SVC_PORT" --json
	local st_x=$output
	echo "CT-x at checkpoint: $st_x"

	# Move checkpoint and layer through the host to node-y, restore into a new container.
	local idx
	idx=$(on node-x docker inspect -f '{{.Id}}' ct-x)
	on node-x "tar -C /var/lib/docker/containers/$idx/checkpoints -cf - $cp" >"$BATS_TEST_TMPDIR/cp.tar"
	copy node-x:/tmp/layer.tar "$BATS_TEST_TMPDIR/layer.tar"
	local idy upper_y
	idy=$(on node-y docker create --name ct-y --security-opt seccomp=unconfined edgehop-svc:small $(svc_args CT-x))
	upper_y=$(on node-y docker inspect -f '{{.GraphDriver.Data.UpperDir}}' ct-y)
	on node-y "mkdir -p /var/lib/docker/containers/$idy/checkpoints && tar -C /var/lib/docker/containers/$idy/checkpoints -xf -" <"$BATS_TEST_TMPDIR/cp.tar"
	on node-y "tar -C '$upper_y' -xf -" <"$BATS_TEST_TMPDIR/layer.tar"
	on node-y docker start --checkpoint "$cp" ct-y
	ipy=$(ct_ip node-y ct-y)
	wait_for 30 on node-y "$BIN/edgehop-svcctl" status "$ipy:$SVC_PORT"	# CT-y answers
	run -0 on node-y "$BIN/edgehop-svcctl" status "$ipy:$SVC_PORT" --json
	echo "CT-y restored: $output"
	assert_equal "$(jq -c .muds <<<"$output")" "$(jq -c .muds <<<"$st_x")"

	# The MUD continues against CT-y: zero mismatches, nothing lost.
	run -0 on node-y "$BIN/edgehop-mud" --svc "$ipy:$SVC_PORT" --mud-id 5 --count 100 --rate 0 --quiet \
		--start-seq "$(jq -r .next_seq <<<"$m1")" --initial-digest "$(jq -r .final_digest <<<"$m1")" --json /tmp/m2.json
	run -0 on node-y cat /tmp/m2.json
	assert_equal "$(jq -r .answered <<<"$output")" 100
	assert_equal "$(jq -r .mismatches <<<"$output")" 0
	on node-x docker rm -f ct-x >/dev/null
	on node-y docker rm -f ct-y >/dev/null
}

@test "the BPF program tests pass on the nodes' kernel too (Debian 13, 6.12 verifier)" {
	run -0 on node-x "$SHARE/build/tests/bpf_dataplane"
	refute_output --partial 'not ok'
}

@test "dataplane on both radio NICs: a MUD associated to node-y reaches CT on node-x through node-y's forwarding, answers from the VIP" {
	needs_bin edgehop-ap edgehop-svc edgehop-mud
	local n ipx mudy
	for n in node-x node-y; do
		on "$n" "$BIN/edgehop-ap unload --radio radio0 --wan wan0 >/dev/null 2>&1; $BIN/edgehop-ap load --radio radio0 --wan wan0 --vip $VIP:$SVC_PORT"
	done
	on node-x "docker rm -f ct-4 >/dev/null 2>&1; $SHARE/control/image/svc-image.sh small" >&3
	on node-x docker run -d --name ct-4 --security-opt seccomp=unconfined edgehop-svc:small $(svc_args CT-x)
	ipx=$(ct_ip node-x ct-4)
	wait_for 30 on node-x "$BIN/edgehop-svcctl" status "$ipx:$SVC_PORT"	# CT-x answers
	mudy=$(cd "$TOP" && source vm/lib.sh && mud_ip node-y)
	on node-y "$BIN/edgehop-ap" set "$mudy" --mode forward --backend "$ipx:$SVC_PORT" --mud-id 9
	# Associated to node-y: the VIP is reached through node-y's radio address.
	ip -n "$NS_MUD" route replace "$VIP/32" via "${NODE_RADIO[node-y]}"
	run -0 timeout 120 ip netns exec "$NS_MUD" "$TOP/build/bin/edgehop-mud" --svc "$VIP:$SVC_PORT" \
		--mud-id 9 --count 100 --rate 0 --quiet --json "$BATS_TEST_TMPDIR/m4.json"
	# The MUD's socket is not connected: it sees every answer's source, and
	# one not from VIP:port is counted foreign (and fails the run, rc above).
	assert_equal "$(jq -r .answered "$BATS_TEST_TMPDIR/m4.json")" 100
	assert_equal "$(jq -r .foreign "$BATS_TEST_TMPDIR/m4.json")" 0
	assert_equal "$(jq -r .mismatches "$BATS_TEST_TMPDIR/m4.json")" 0
	assert_equal "$(jq -r '.servers|join(",")' "$BATS_TEST_TMPDIR/m4.json")" CT-x
	# node-y redirected them in XDP out of its WAN NIC (virtio), and the
	# answers came back WAN -> radio in XDP (fast return: the radio is no veth).
	run -0 on node-y "$BIN/edgehop-ap" stats --json
	echo "node-y stats: $output"
	assert [ "$(echo "$output" | jq '.forwarded.packets')" -ge 90 ]
	assert [ "$(echo "$output" | jq '.returned_fast.packets + .tx_rewritten.packets')" -ge 100 ]
	for n in node-x node-y; do on "$n" "$BIN/edgehop-ap" unload --radio radio0 --wan wan0; done
	on node-x docker rm -f ct-4 >/dev/null
}

@test "down leaves the host as it was: no tap, bridge, namespace or qemu of the testbed" {
	local pids=() n
	# The qemu process of each node, from either launcher's status (PID column).
	for n in node-x node-y; do
		pids+=("$("$TESTBED" status | awk -v n="$n" '$1 == n {print $4}')")
		assert [ -n "${pids[-1]}" ]
	done
	run -0 "$TESTBED" down
	for p in "${pids[@]}"; do
		run ! kill -0 "$p"
	done
	run -0 ip -o link show
	refute_output --regexp ' eh-(mgmt|wan|air-[xyz]|[xyz]-(mgmt|radio|wan)|mud-[a-z]+|lr-mgmt)[:@]'
	run -0 ip netns list
	refute_output --regexp "^($NS_MUD|$NS_LOGREPO)( |\$)"
	# And a second down (after a failed run, say) is harmless.
	run -0 "$TESTBED" down
}
