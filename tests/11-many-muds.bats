#!/usr/bin/env bats
# Many MUDs migrating at once (issue 9 §2): 20 MUDs at 10 requests/s each,
# every one associated with AP-x, handed off to AP-y (REASSOCIATION to the
# test-double agents, tests/helpers/fake-agent.py), forwarded by AP-y to CT-x
# with a replay buffer each, and all cut over to CT-y concurrently. The MUDs
# check every answer against their own digest chain; CT-y's digest of each
# MUD must equal the MUD's; logrepo's report must agree with each MUD.
# Topology: tests/dataplane_helper.bash (many_topo_up, many_run).

bats_require_minimum_version 1.5.0

N=20
COUNT=150	# 15 s at 10/s: the MUDs are still sending when the cut-overs run
HANDOFF=20

setup_file() {
	load dataplane_helper
	many_topo_up $N "$BATS_FILE_TMPDIR"
}

teardown_file() {
	load dataplane_helper
	topo_down
}

setup() {
	load dataplane_helper
	bats_load_library bats-support
	bats_load_library bats-assert
}

@test "20 MUDs at 10 req/s hand off from AP-x to AP-y and are all cut over to CT-y at once: 0 lost, 0 mismatches, every CT-y digest equal to its MUD's" {
	dir=$BATS_TEST_TMPDIR
	# Cut over once AP-y holds 10 requests of every MUD (a second of buffering).
	MANY_BUFFERED=10 run many_run $N $COUNT $HANDOFF "$dir" many
	rc=$status
	for f in "$dir"/cut-*.json; do echo "$(basename "$f"): $(cat "$f")"; done
	cat "$dir"/cut-*.err "$dir"/restore-*.out | sort | uniq -c | head -20
	assert_equal "$rc" 0
	status_y=$(in_ns ehd-esy "$BIN/edgehop-svcctl" status 127.0.0.1:$VPORT --json)
	for i in $(seq 1 $N); do
		id=$(many_id $i)
		m=$dir/mud-$id.json
		# The MUD's own checks: every answer chained from its digest, from the VIP.
		assert_equal "$(jq -c '[.answered,.lost,.mismatches,.stale_errors,.handoff_failures]' "$m")" "[$COUNT,0,0,0,0]"
		assert_equal "$(jq -r '.servers|sort|join(",")' "$m")" ct-x,ct-y
		# Each cut-over: every replayed answer verified against the chain.
		assert_equal "$(jq '.ok and .verified == .replayed and .replayed > 0' "$dir/cut-$id.json")" true
		# CT-y applied every request exactly once, in order: the MUD's digest.
		assert_equal "$(echo "$status_y" | jq -c ".muds[]|select(.mud_id==$id)|[.last_seq,.applied,.digest]")" \
			"$(jq -c "[$((COUNT - 1)),$COUNT,.final_digest]" "$m")"
		# The handoff went through the agents: AP-y's saw the reassociation from AP-x.
		run -0 grep -c "REASSOC_REQ mud=$id mud_addr=$(many_ip_y $i) prev=10.91.3.1 name=MUD-$id" \
			"$BATS_FILE_TMPDIR/agent-y.out"
	done
	# When the cut-overs were started, all 20 were buffering on AP-y, a ring each.
	assert_equal "$(jq '[.[]|select(.mud_id > 200 and .mud_id <= 220)|select(.mode == "fwd-buf" and .ring and .buffered >= 10)]|length' "$dir/show-before-cut.json")" $N
	# No ring left on AP-y: each went with its MUD's switch to LOCAL.
	run -0 ap_y ring --json --timeout-ms 0
	assert_equal "$output" "[]"
	run -0 ap_y show --json
	assert_equal "$(echo "$output" | jq '[.[]|select(.mud_id > 200 and .mud_id <= 220)|select(.mode == "local" and .overflow == false)]|length')" $N
}

@test "logrepo's report agrees with each of the 20 MUDs" {
	wait_for 30 bash -c "[ \$(grep -c 'MUD REPORT' '$BATS_FILE_TMPDIR/logrepo/events.jsonl') -ge $N ]"
	run -0 --separate-stderr timeout 60 "$BIN/edgehop-logrepo" report "$BATS_FILE_TMPDIR/logrepo/events.jsonl" --json
	report=$output
	for i in $(seq 1 $N); do
		id=$(many_id $i)
		assert_equal "$(echo "$report" | jq -c --arg run "many-$id" '.runs[]|select(.run == $run)|[.answered,.lost]')" "[$COUNT,0]"
	done
}
