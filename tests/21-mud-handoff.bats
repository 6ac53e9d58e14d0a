#!/usr/bin/env bats
# MUD mobility: association with the first AP, handoffs on a schedule
# (REASSOCIATION REQUEST to the new AP's agent, route to the VIP moved to the
# new AP's gateway over rtnetlink), x -> y -> x, and a refused reassociation.
# The AP agents are a test double (tests/helpers/fake-agent.py); the APs are
# plain routers in namespaces; one service behind both holds the VIP.
#
#   mud --(10.80.1.0/24)-- ap1 --(10.80.3.0/24)--+
#       --(10.80.2.0/24)-- ap2 --(10.80.4.0/24)--+-- svc (VIP 10.80.9.9 on lo)

bats_require_minimum_version 1.5.0

setup_file() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
	export NS_MUD=ehs-hmud-$$ NS_AP1=ehs-hap1-$$ NS_AP2=ehs-hap2-$$ NS_SVC=ehs-hsvc-$$
	export TMPD=$(mktemp -d /tmp/ehs-21.XXXXXX) VIP=10.80.9.9
	ehs_pair "$NS_MUD" "$NS_AP1" 10.80.1.2 10.80.1.1 to-ap1 to-mud
	ehs_pair "$NS_MUD" "$NS_AP2" 10.80.2.2 10.80.2.1 to-ap2 to-mud
	ehs_pair "$NS_AP1" "$NS_SVC" 10.80.3.1 10.80.3.2 to-svc to-ap1
	ehs_pair "$NS_AP2" "$NS_SVC" 10.80.4.1 10.80.4.2 to-svc to-ap2
	local ns
	for ns in "$NS_MUD" "$NS_AP1" "$NS_AP2" "$NS_SVC"; do
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
		for i in $(ip netns exec "$ns" ls /proc/sys/net/ipv4/conf); do
			ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$i.rp_filter=0"
		done
	done
	ip netns exec "$NS_AP1" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$NS_AP2" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$NS_AP1" route add "$VIP/32" via 10.80.3.2
	ip -n "$NS_AP2" route add "$VIP/32" via 10.80.4.2
	ip -n "$NS_SVC" addr add "$VIP/32" dev lo
	# answers leave from the VIP, back through the AP the MUD uses
	ip -n "$NS_SVC" route add 10.80.1.0/24 via 10.80.3.1 src "$VIP"
	ip -n "$NS_SVC" route add 10.80.2.0/24 via 10.80.4.1 src "$VIP"

	ip netns exec "$NS_SVC" timeout 300 "$EHS_BIN/edgehop-svc" --port 7777 --name CT-1 \
		--state-dir "$TMPD/st" 2>"$TMPD/svc.err" &
	ip netns exec "$NS_AP1" timeout 300 python3 "$EHS_TOP/tests/helpers/fake-agent.py" \
		--addr 10.80.1.1 --name AP-1 --vip "$VIP:7777" >"$TMPD/ap1.out" &
	ip netns exec "$NS_AP2" timeout 300 python3 "$EHS_TOP/tests/helpers/fake-agent.py" \
		--addr 10.80.2.1 --name AP-2 --vip "$VIP:7777" >"$TMPD/ap2.out" &
	wait_for 10 grep -q ready "$TMPD/ap1.out"
	wait_for 10 grep -q ready "$TMPD/ap2.out"
	wait_for 10 svc_status "$NS_SVC" 127.0.0.1:7777
}

teardown_file() {
	load helpers/ehs-common
	ehs_del_ns "$NS_MUD" "$NS_AP1" "$NS_AP2" "$NS_SVC"
	rm -rf "$TMPD"
}

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
}

rx_packets() { # rx_packets <ns> <dev>
	ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"
}

@test "mud: associates with AP-1, hands off to AP-2 at seq 40 and back at seq 80, nothing lost" {
	local ap2_before
	ap2_before=$(rx_packets "$NS_AP2" to-mud)
	run -0 timeout 60 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc "$VIP:7777" \
		--mud-id 41 --count 120 --rate 400 --timeout-ms 100 --name MUD-41 \
		--ap AP-1=10.80.1.1:7778,10.80.1.1 --ap AP-2=10.80.2.1:7778,10.80.2.1 \
		--handoff 40:AP-2 --handoff 80:AP-1 --json "$TMPD/ho.json"
	echo "$output"
	run -0 jq -e '.lost == 0 and .mismatches == 0 and .answered == 120 and
		([.handoffs[] | .ok] == [true, true]) and
		([.phases[].name] == ["before", "during-1", "during-2"]) and
		.phases[0].requests == 40 and .phases[1].requests == 40 and .phases[2].requests == 40' "$TMPD/ho.json"
	# the agents saw the association and both reassociations, with the previous AP
	run -0 grep -c "ASSOC_REQ mud=41 mud_addr=10.80.1.2 prev=0.0.0.0 name=MUD-41" "$TMPD/ap1.out"
	run -0 grep -c "REASSOC_REQ mud=41 mud_addr=10.80.2.2 prev=10.80.1.1" "$TMPD/ap2.out"
	run -0 grep -c "REASSOC_REQ mud=41 mud_addr=10.80.1.2 prev=10.80.2.1" "$TMPD/ap1.out"
	# the 40 requests in between really went through AP-2, and the route is back on AP-1
	[ $(( $(rx_packets "$NS_AP2" to-mud) - ap2_before )) -ge 40 ]
	run -0 ip -n "$NS_MUD" route get "$VIP"
	assert_output --partial "via 10.80.1.1"
}

@test "mud: a refused reassociation is reported, the MUD stays on its AP and loses nothing" {
	ip netns exec "$NS_AP2" timeout 60 python3 "$EHS_TOP/tests/helpers/fake-agent.py" \
		--addr 10.80.2.1 --port 7788 --name AP-2 --fail >"$TMPD/ap2fail.out" &
	wait_for 10 grep -q ready "$TMPD/ap2fail.out"
	run -1 timeout 60 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc "$VIP:7777" \
		--mud-id 42 --count 30 --rate 400 --timeout-ms 100 \
		--ap AP-1=10.80.1.1:7778,10.80.1.1 --ap AP-2=10.80.2.1:7788,10.80.2.1 \
		--handoff 10:AP-2 --json "$TMPD/fail.json"
	assert_output --partial "REASSOCIATION with AP-2 failed: refused: refused by test double; staying on AP-1"
	run -0 jq -e '.lost == 0 and .mismatches == 0 and .answered == 30 and .handoff_failures == 1' "$TMPD/fail.json"
	# the agent's reason in the report, not only strerror
	run -0 jq -e '.handoff_errors == [{"seq":10,"ap":"AP-2","error":"refused: refused by test double"}] and
		.handoffs[0].error == "refused: refused by test double"' "$TMPD/fail.json"
	run -0 ip -n "$NS_MUD" route get "$VIP"
	assert_output --partial "via 10.80.1.1"
}

@test "mud: an AP that never answers fails the association at --assoc-timeout-ms, repeating it every second" {
	local t0=$SECONDS
	run -1 timeout 30 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc "$VIP:7777" \
		--mud-id 43 --count 3 --timeout-ms 100 --assoc-timeout-ms 2500 --ap AP-9=10.80.1.1:7799,10.80.1.1
	assert_output --partial "ASSOCIATION with AP-9 failed: Connection timed out"
	assert [ $((SECONDS - t0)) -ge 2 ]
	assert [ $((SECONDS - t0)) -le 6 ]
}

@test "mud: an agent that takes 2.5 s to create the container and answers every repeat: one association, nothing lost" {
	# Holds the first request 2.5 s (docker create), then answers it and each
	# repeat that queued meanwhile: the MUD gets several READYs.
	ip netns exec "$NS_AP1" timeout 60 python3 - 10.80.1.1 7798 >"$TMPD/slow.out" <<-'PY' &
	import socket, struct, sys, time
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((sys.argv[1], int(sys.argv[2])))
	print("ready", flush=True)
	first = True
	while True:
	    data, src = s.recvfrom(2048)
	    magic, ver, typ, flags, mud, seq, sns, ln, _ = struct.unpack("!IBBHIIQII", data[:32])
	    print("ASSOC_REQ try=%d" % seq, flush=True)
	    if first:
	        time.sleep(2.5)
	        first = False
	    body = struct.pack("!IHH32s", struct.unpack("!I", socket.inet_aton("10.77.0.1"))[0], 7777, 0, b"AP-S")
	    s.sendto(struct.pack("!IBBHIIQII", magic, ver, 4, 0, mud, seq, sns, len(body), 0) + body, src)
	PY
	wait_for 10 grep -q ready "$TMPD/slow.out"
	run -0 timeout 60 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc "$VIP:7777" \
		--mud-id 44 --count 30 --rate 400 --timeout-ms 100 --assoc-timeout-ms 10000 \
		--ap AP-S=10.80.1.1:7798,10.80.1.1 --ap AP-2=10.80.2.1:7778,10.80.2.1 \
		--handoff 15:AP-2 --json "$TMPD/slow.json"
	run -0 jq -e '.lost == 0 and .mismatches == 0 and .answered == 30 and .handoff_failures == 0' "$TMPD/slow.json"
	run -0 grep -c "ASSOC_REQ" "$TMPD/slow.out"
	assert [ "$output" -ge 3 ]
}

@test "mud+logrepo: 3 runs with a handoff at seq 30; the report matches each MUD and plots the handoff window" {
	ip netns exec "$NS_SVC" timeout 120 "$EHS_BIN/edgehop-logrepo" serve --udp 7779 \
		--dir "$TMPD/logs" --allow 10.80.0.0/16 2>"$TMPD/lr.err" &
	local lpid=$! r
	wait_for 10 grep -q "serving udp" "$TMPD/lr.err"
	for r in 1 2 3; do
		run -0 timeout 60 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc "$VIP:7777" \
			--mud-id $((50 + r)) --count 60 --rate 200 --timeout-ms 100 --run "ho-$r" \
			--ap AP-1=10.80.1.1:7778,10.80.1.1 --ap AP-2=10.80.2.1:7778,10.80.2.1 \
			--handoff 30:AP-2 --logrepo "$VIP:7779" --json "$TMPD/ho-$r.json" --quiet
	done
	wait_for 10 bash -c "[ \$(grep -c 'MUD REPORT' '$TMPD/logs/events.jsonl') -ge 3 ]"
	ehs_term "$lpid"
	wait_for 10 bash -c "! kill -0 $lpid"
	run -0 grep -m1 -E '^[0-9-]{26} USER AP-2 USER REASSOCIATION REQUEST \(sent\)$' "$TMPD/logs/events.log"
	run -0 --separate-stderr timeout 60 "$EHS_BIN/edgehop-logrepo" report "$TMPD/logs/events.jsonl" \
		--json --plot "$TMPD/ho-rt"
	echo "$output" >"$TMPD/ho-report.json"
	for r in 1 2 3; do
		run -0 jq -e --slurpfile m "$TMPD/ho-$r.json" --arg run "ho-$r" '
			.runs[] | select(.run == $run) |
			.answered == 60 and .lost == 0 and .forwarded == $m[0].forwarded and
			(.phases | map({name, requests, p50_ms, max_ms})) ==
			($m[0].phases | map({name, requests, p50_ms, max_ms}))' "$TMPD/ho-report.json"
	done
	# the shaded window starts at the handoff
	run -0 grep -E "^set object 1 rect from 29.5," "$TMPD/ho-rt.gp"
	run -0 file "$TMPD/ho-rt.png"
	assert_output --partial "PNG image data"
	mkdir -p "$EHS_TOP/build/test-logs"
	cp "$TMPD/ho-rt.png" "$EHS_TOP/build/test-logs/mud-handoff-rt.png"
	cp "$TMPD/ho-rt.svg" "$EHS_TOP/build/test-logs/mud-handoff-rt.svg"
}

@test "mud: a refused first association prints the agent's reason" {
	ip netns exec "$NS_AP2" timeout 60 python3 "$EHS_TOP/tests/helpers/fake-agent.py" \
		--addr 10.80.2.1 --port 7789 --name AP-2 --fail >"$TMPD/ap2fail2.out" &
	wait_for 10 grep -q ready "$TMPD/ap2fail2.out"
	run -1 timeout 30 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc "$VIP:7777" \
		--mud-id 43 --count 3 --ap AP-2=10.80.2.1:7789,10.80.2.1
	assert_output --partial "ASSOCIATION with AP-2 refused: refused by test double"
}

@test "mud: forwarded = answers from the server of before the handoff to requests sent at the new AP (--handoff, and a route moved behind its back)" {
	# AP-2 reaches the same service: every answer after the handoff comes from
	# the server that served before it, i.e. through the new AP to the old one.
	run -0 timeout 60 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc "$VIP:7777" \
		--mud-id 61 --count 40 --rate 400 --timeout-ms 100 \
		--ap AP-1=10.80.1.1:7778,10.80.1.1 --ap AP-2=10.80.2.1:7778,10.80.2.1 \
		--handoff 10:AP-2 --json "$TMPD/fwd1.json" --quiet
	run -0 jq -e '.answered == 40 and .forwarded == 30 and .forwarded_share == 0.75' "$TMPD/fwd1.json"
	# No --ap/--handoff: the route is moved by someone else mid-run (make demo does
	# that); the MUD sees its source address towards the VIP change.
	ip -n "$NS_MUD" route replace "$VIP/32" via 10.80.1.1
	ip netns exec "$NS_MUD" timeout 60 "$EHS_BIN/edgehop-mud" --svc "$VIP:7777" --mud-id 62 \
		--count 100 --rate 50 --timeout-ms 100 --json "$TMPD/fwd2.json" --quiet &
	local pid=$!
	sleep 1
	ip -n "$NS_MUD" route replace "$VIP/32" via 10.80.2.1
	wait "$pid"
	run -0 jq -e '.answered == 100 and .forwarded > 20 and .forwarded < 80 and
		.forwarded_share == .forwarded / 100' "$TMPD/fwd2.json"
}
