#!/usr/bin/env bats
# logrepo: receives events from the MUD and the service over UDP, stores the
# paper's lines and JSON lines, rotates, survives junk and a full disk, and
# its report reproduces the numbers the MUD printed.

bats_require_minimum_version 1.5.0

setup_file() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
	export NS_MUD=ehs-lmud-$$ NS_SVC=ehs-lsvc-$$
	export TMPD=$(mktemp -d /tmp/ehs-22.XXXXXX)
	ehs_pair "$NS_MUD" "$NS_SVC" 10.78.0.1 10.78.0.2
}

teardown_file() {
	load helpers/ehs-common
	ehs_del_ns "$NS_MUD" "$NS_SVC"
	rm -rf "$TMPD"
}

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
}

# start_logrepo <port> <dir> [extra...]; pid in $TMPD/lr.pid, stderr in $TMPD/lr.err.
# The suite's network (10.78.0.0/24) is allowed besides the default.
start_logrepo() {
	local port=$1 dir=$2; shift 2
	ip netns exec "$NS_SVC" timeout 300 "$EHS_BIN/edgehop-logrepo" serve --udp "$port" \
		--dir "$dir" --allow 10.78.0.0/24 --allow 127.0.0.0/8 "$@" 2>"$TMPD/lr.err" &
	echo $! >"$TMPD/lr.pid"
	wait_for 10 grep -q "serving udp" "$TMPD/lr.err"
}

stop_logrepo() {
	local pid
	pid=$(cat "$TMPD/lr.pid")
	ehs_term "$pid"
	wait_for 10 bash -c "! kill -0 $pid"
}

# send_events <port> <count> [size]: count valid records from NS_MUD
send_events() {
	timeout 30 ip netns exec "$NS_MUD" python3 - "$@" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    rec = "EHLOG1\t%d\tAP-1\tES-1\t\tmigr step\t%d\t\tstep=T2 bytes=%d n=%d" % (time.time_ns(), i, i * 10, i)
    s.sendto(rec.encode(), ("10.78.0.2", port))
    if i % 200 == 199:
        time.sleep(0.01)   # stay below the socket buffer, as a real role does
PY
}

@test "logrepo: MUD and service events stored in the Fig. 5 format and as JSON; report reproduces the MUD's numbers" {
	start_logrepo 7779 "$TMPD/logs"
	ip netns exec "$NS_SVC" timeout 120 "$EHS_BIN/edgehop-svc" --port 7777 --name CT-1 \
		--state-dir "$TMPD/st" --logrepo 10.78.0.2:7779 2>"$TMPD/svc.err" &
	local spid=$!
	wait_for 10 svc_status "$NS_SVC" 127.0.0.1:7777
	timeout 10 ip netns exec "$NS_SVC" nft -f - <<'NFT'
table inet ehs_loss {
	chain in  { type filter hook input priority 0; udp dport 7777 numgen random mod 100 < 3 drop; }
	chain out { type filter hook output priority 0; udp sport 7777 numgen random mod 100 < 3 drop; }
}
NFT
	run -0 timeout 60 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc 10.78.0.2:7777 \
		--mud-id 21 --count 2000 --rate 0 --timeout-ms 10 --run lr-a \
		--logrepo 10.78.0.2:7779 --json "$TMPD/mud.json"
	echo "$output"
	timeout 10 ip netns exec "$NS_SVC" nft delete table inet ehs_loss
	ehs_term "$spid"
	wait_for 10 bash -c "! kill -0 $spid"
	# every event sent reached the store
	local want
	want=$(jq '.log_sent' "$TMPD/mud.json")
	run -0 jq -e '.log_dropped == 0 and .retries > 0 and .cached_answers > 0' "$TMPD/mud.json"
	wait_for 10 bash -c "[ \$(grep -c '\"run\":\"lr-a\"' '$TMPD/logs/events.jsonl') -ge $want ]"
	run -0 grep -m1 -E '^[0-9]{4}(-[0-9]{2}){5}-[0-9]{6} USER 10\.78\.0\.2 USER SVCQ 0 \(sent\)$' "$TMPD/logs/events.log"
	run -0 grep -m1 -E '^[0-9-]{26} USER CT-1 10\.78\.0\.2 SVCR 0 \(recvd\)$' "$TMPD/logs/events.log"
	run -0 grep -m1 -E '^[0-9-]{26} CT-1 10\.78\.0\.1 USER SVCR 0 \(sent\)$' "$TMPD/logs/events.log"
	stop_logrepo
	run -0 timeout 30 "$EHS_BIN/edgehop-logrepo" report "$TMPD/logs/events.jsonl" --json
	echo "$output" >"$TMPD/report.json"
	# the report's run equals the MUD's own report, number by number
	run -0 jq -e --slurpfile m "$TMPD/mud.json" '
		.runs[] | select(.run == "lr-a") |
		.sent == $m[0].sent and .answered == $m[0].answered and .lost == $m[0].lost and
		.duplicate_answers == $m[0].duplicate_answers and .mismatches == $m[0].mismatches and
		(.phases | map({name, requests, p50_ms, p90_ms, p99_ms, max_ms, mean_ms})) ==
		($m[0].phases | map({name, requests, p50_ms, p90_ms, p99_ms, max_ms, mean_ms}))' "$TMPD/report.json"
	run -0 timeout 30 "$EHS_BIN/edgehop-logrepo" report "$TMPD/logs/events.jsonl"
	assert_output --partial "run lr-a"
	assert_output --partial "sent 2000  answered 2000  lost 0"
}

@test "logrepo: rotates both files by size and keeps --keep generations" {
	start_logrepo 7780 "$TMPD/rot" --max-bytes 20000 --keep 3
	send_events 7780 1000
	wait_for 10 grep -q '"n":999}' "$TMPD/rot/events.jsonl"
	stop_logrepo
	run -0 grep -E '^rotations [1-9]' "$TMPD/lr.err"
	for f in events.log events.jsonl; do
		for k in "" .1 .2 .3; do
			[ -f "$TMPD/rot/$f$k" ]
			[ "$(stat -c %s "$TMPD/rot/$f$k")" -le 20000 ]
		done
		[ ! -e "$TMPD/rot/$f.4" ]
	done
	# the kept JSON lines are whole and in order, ending with the last event
	run -0 bash -c "cat '$TMPD/rot/events.jsonl.3' '$TMPD/rot/events.jsonl.2' '$TMPD/rot/events.jsonl.1' '$TMPD/rot/events.jsonl' | jq -s -e '(map(.fields.n) | . == (sort)) and (.[-1].fields.n == 999)'"
	run -0 grep -E '^received 1000$' "$TMPD/lr.err"
}

@test "logrepo: malformed and oversized datagrams are counted and skipped" {
	start_logrepo 7781 "$TMPD/junk"
	timeout 20 ip netns exec "$NS_MUD" python3 - <<'PY'
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d = ("10.78.0.2", 7781)
for p in [b"", b"EHLOG1", b"EHLOG1\tx\tA\t\t\tE\t\t\t", b"EHLOG1\t1\tA\t\t\t\t\t\t",
          b"EHLOG1\t1\tA\"\t\t\tE\t\t\t", b"EHLOG1\t1\tA\t\t\tE\t\t\tnovalue",
          b"EHLOG1\t1\tA\t\t\tE\t\t\t" + b"k=" + b"v" * 3000, b"\xff" * 500]:
    s.sendto(p, d)
for i in range(200):
    s.sendto(os.urandom(i * 5), d)
s.sendto(b"EHLOG1\t1630583093839044123\tAP-1\tES-1\t\tmigr begins\t\t\t", d)
PY
	wait_for 10 grep -q 'migr begins' "$TMPD/junk/events.log"
	stop_logrepo
	run -0 cat "$TMPD/junk/events.log"
	assert_output "2021-09-02-11-44-53-839044 AP-1 ES-1 migr begins"
	run -0 grep -E '^stored 1$' "$TMPD/lr.err"
	run -0 grep -E '^oversized 1$' "$TMPD/lr.err"
	run -0 grep -E '^malformed 20[0-9]$' "$TMPD/lr.err"
}

@test "logrepo: a full disk is reported once and the server keeps serving" {
	mkdir -p "$TMPD/full"
	timeout 60 unshare -m bash -c "
		mount -t tmpfs -o size=64k ehs-full '$TMPD/full' &&
		exec ip netns exec '$NS_SVC' timeout 60 '$EHS_BIN/edgehop-logrepo' serve --udp 7782 --dir '$TMPD/full' --allow 10.78.0.0/24
	" 2>"$TMPD/lr.err" &
	local pid=$!
	wait_for 10 grep -q "serving udp" "$TMPD/lr.err"
	send_events 7782 1500
	wait_for 10 grep -q "No space left on device" "$TMPD/lr.err"
	kill -0 "$pid"
	ehs_term "$pid"
	wait_for 10 bash -c "! kill -0 $pid"
	run -0 grep -c "No space left on device" "$TMPD/lr.err"
	assert_output 1
	run -0 grep -E '^write_errors [1-9]' "$TMPD/lr.err"
	run -0 grep -E '^received 1500$' "$TMPD/lr.err"
}

@test "logrepo report: several runs give min/mean/max and a plot in PNG and SVG" {
	start_logrepo 7783 "$TMPD/multi"
	# 3% loss each way and 50 ms retries, so that the runs differ visibly
	timeout 10 ip netns exec "$NS_SVC" nft -f - <<'NFT'
table inet ehs_loss5 {
	chain in  { type filter hook input priority 0; udp dport 7777 numgen random mod 100 < 3 drop; }
	chain out { type filter hook output priority 0; udp sport 7777 numgen random mod 100 < 3 drop; }
}
NFT
	ip netns exec "$NS_SVC" timeout 120 "$EHS_BIN/edgehop-svc" --port 7777 --name CT-1 \
		--state-dir "$TMPD/st2" 2>/dev/null &
	local spid=$!
	wait_for 10 svc_status "$NS_SVC" 127.0.0.1:7777
	for r in 1 2 3; do
		run -0 timeout 60 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc 10.78.0.2:7777 \
			--mud-id $((30 + r)) --count 200 --rate 2000 --timeout-ms 50 --run "multi-$r" \
			--logrepo 10.78.0.2:7783 --quiet
	done
	timeout 10 ip netns exec "$NS_SVC" nft delete table inet ehs_loss5
	ehs_term "$spid"
	wait_for 10 bash -c "[ \$(grep -c 'MUD REPORT' '$TMPD/multi/events.jsonl') -ge 3 ]"
	stop_logrepo
	run -0 --separate-stderr timeout 60 "$EHS_BIN/edgehop-logrepo" report "$TMPD/multi/events.jsonl" --json --plot "$TMPD/multi/rt"
	run -0 jq -e '.across_runs.runs == 3 and .across_runs.lost.max == 0 and
		(.across_runs.phases.all.mean_ms | .min <= .mean and .mean <= .max)' <<<"$output"
	run -0 file "$TMPD/multi/rt.png"
	assert_output --partial "PNG image data"
	run -0 grep -c "<svg" "$TMPD/multi/rt.svg"
	run -0 awk 'NR > 1 && $5 == 3' "$TMPD/multi/rt.dat"
	[ "${#lines[@]}" -eq 200 ]
	# keep the figure with the test logs
	mkdir -p "$EHS_TOP/build/test-logs"
	cp "$TMPD/multi/rt.png" "$EHS_TOP/build/test-logs/logrepo-3runs-rt.png"
	cp "$TMPD/multi/rt.svg" "$EHS_TOP/build/test-logs/logrepo-3runs-rt.svg"
}

@test "logrepo serve: only --allow sources are stored (default 10.77.0.0/24 and loopback), the rest counted as refused" {
	# default list: 10.78.0.1 (this suite's MUD side) is not in it, loopback is
	ip netns exec "$NS_SVC" timeout 60 "$EHS_BIN/edgehop-logrepo" serve --udp 7784 \
		--dir "$TMPD/allow" 2>"$TMPD/lr.err" &
	echo $! >"$TMPD/lr.pid"
	wait_for 10 grep -q "serving udp" "$TMPD/lr.err"
	send_events 7784 50
	run -0 timeout 10 ip netns exec "$NS_SVC" "$EHS_BIN/edgehop-logrepo" send 127.0.0.1:7784 ES-1 "from loopback" run=lo
	wait_for 10 grep -q 'from loopback' "$TMPD/allow/events.log"
	stop_logrepo
	run -0 grep -E '^refused 50$' "$TMPD/lr.err"
	run -0 grep -E '^stored 1$' "$TMPD/lr.err"
	run -0 grep -c 'refusing events from 10.78.0.1' "$TMPD/lr.err"
	assert_output 1
	# an explicit list replaces the default
	ip netns exec "$NS_SVC" timeout 60 "$EHS_BIN/edgehop-logrepo" serve --udp 7785 \
		--dir "$TMPD/allow2" --allow 10.78.0.1/32 2>"$TMPD/lr.err" &
	echo $! >"$TMPD/lr.pid"
	wait_for 10 grep -q "serving udp" "$TMPD/lr.err"
	send_events 7785 50
	run -0 timeout 10 ip netns exec "$NS_SVC" "$EHS_BIN/edgehop-logrepo" send 127.0.0.1:7785 ES-1 "from loopback" run=lo
	wait_for 10 bash -c "[ \$(grep -c . '$TMPD/allow2/events.log') -ge 50 ]"
	sleep 0.2
	stop_logrepo
	run -0 grep -E '^stored 50$' "$TMPD/lr.err"
	run -0 grep -E '^refused 1$' "$TMPD/lr.err"
	run -2 timeout 5 "$EHS_BIN/edgehop-logrepo" serve --udp 7786 --allow 10.0.0.0/40
	assert_output --partial "bad --allow '10.0.0.0/40'"
}

@test "logrepo report: a forged answer with seq 4,000,000,000 under a 1 GB limit: report and plot, 1 answer for 1 request" {
	local f=$TMPD/forged.jsonl t=1700000000000000000
	printf '{"t_ns":%d,"role":"USER","event":"SVCQ","arg":"0","dir":"sent","fields":{"run":"F","try":1}}\n' $t >"$f"
	printf '{"t_ns":%d,"role":"USER","event":"SVCR","arg":"0","dir":"recvd","fields":{"run":"F","rtt_ns":2000000}}\n' $((t + 1000)) >>"$f"
	printf '{"t_ns":%d,"role":"X","event":"SVCR","arg":"4000000000","dir":"recvd","fields":{"run":"F","rtt_ns":1}}\n' $((t + 2000)) >>"$f"
	run -0 --separate-stderr mem_limited 1000000 timeout 60 "$EHS_BIN/edgehop-logrepo" report "$f" --json --plot "$TMPD/forged"
	run -0 jq -e '.runs[0].sent == 1 and .runs[0].answered == 1 and .runs[0].unmatched_answers == 1' <<<"$output"
	run -0 file "$TMPD/forged.png"
	assert_output --partial "PNG image data"
	run -0 --separate-stderr mem_limited 1000000 timeout 60 "$EHS_BIN/edgehop-logrepo" report "$f"
	assert_output --partial "UNMATCHED: 1 answer(s) to seqs this run never sent"
}

@test "logrepo report: 200,000 forged run ids cost bounded memory and time; the refusal is said and counted" {
	local f=$TMPD/runs.jsonl
	python3 - "$f" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(200000):
        f.write('{"t_ns":%d,"role":"USER","event":"SVCQ","arg":"1","dir":"sent","fields":{"run":"forged-%d","try":1}}\n' % (1700000000000000000 + i, i))
PY
	local t0=$SECONDS
	run -0 --separate-stderr mem_limited 1000000 timeout 60 "$EHS_BIN/edgehop-logrepo" report "$f" --json
	[ $((SECONDS - t0)) -lt 30 ]
	run -0 jq -e '(.runs | length) == 1024 and .refused_events == 200000 - 1024' <<<"$output"
	run -0 --separate-stderr bash -c "timeout 60 '$EHS_BIN/edgehop-logrepo' report '$f' >/dev/null"
	assert_equal "$stderr" "logrepo: more than 1024 runs: refusing the events of run 'forged-1024' and of every further new run (counted)"
}
