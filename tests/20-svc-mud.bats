#!/usr/bin/env bats
# The offloading service and the MUD emulator, MUD <-> service directly over a
# veth pair between two namespaces of this suite, with packet loss injected by
# nftables (numgen random) inside the service's namespace.

bats_require_minimum_version 1.5.0

setup_file() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
	export NS_MUD=ehs-mud-$$ NS_SVC=ehs-svc-$$
	export TMPD=$(mktemp -d /tmp/ehs-20.XXXXXX)
	ehs_pair "$NS_MUD" "$NS_SVC" 10.77.0.1 10.77.0.2
	[ -x "$EHS_BIN/edgehop-svc" ] && [ -x "$EHS_BIN/edgehop-mud" ]
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

# start_svc <name> <statedir> [extra...]: service in NS_SVC on 7777, waits
# until it answers a status query; pid in $TMPD/svc.pid
start_svc() {
	local name=$1 dir=$2; shift 2
	ip netns exec "$NS_SVC" timeout 300 "$EHS_BIN/edgehop-svc" --port 7777 \
		--name "$name" --state-dir "$dir" "$@" 2>"$TMPD/$name.err" &
	echo $! >"$TMPD/svc.pid"
	wait_for 10 svc_status "$NS_SVC" 127.0.0.1:7777
}

stop_svc() {
	local pid
	pid=$(cat "$TMPD/svc.pid")
	ehs_term "$pid" || true
	wait_for 10 bash -c "! kill -0 $pid"
}

mud() {
	timeout 120 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc 10.77.0.2:7777 "$@"
}

@test "svc: static binary, usage errors exit 2" {
	run -0 file "$EHS_BIN/edgehop-svc"
	if ehs_sanitized; then
		assert_output --partial "dynamically linked"	# make SAN=1: no static ASan
	else
		assert_output --partial "statically linked"
	fi
	run -2 timeout 5 "$EHS_BIN/edgehop-svc" --port 7777
	assert_output --partial "--name and --state-dir are required"
	run -2 timeout 5 "$EHS_BIN/edgehop-mud" --count 3
	assert_output --partial "--svc VIP:PORT is required"
}

@test "svc+mud: 10,000 requests at --rate 0 with 5% loss each way: none lost, no mismatch, duplicates from the cache" {
	start_svc ct-x "$TMPD/st-lossy"
	timeout 10 ip netns exec "$NS_SVC" nft -f - <<'NFT'
table inet ehs_loss {
	chain in  { type filter hook input priority 0; udp dport 7777 numgen random mod 100 < 5 counter drop; }
	chain out { type filter hook output priority 0; udp sport 7777 numgen random mod 100 < 5 counter drop; }
}
NFT
	run -0 mud --mud-id 10 --count 10000 --rate 0 --timeout-ms 10 --json "$TMPD/lossy.json"
	echo "$output"
	run -0 jq -e '.sent == 10000 and .answered == 10000 and .lost == 0 and .mismatches == 0' "$TMPD/lossy.json"
	# loss really happened, was retried, and lost answers came from the cache
	run -0 jq -e '.retries > 100 and .cached_answers > 20' "$TMPD/lossy.json"
	run -0 timeout 10 ip netns exec "$NS_SVC" nft list table inet ehs_loss
	assert_output --regexp 'packets [1-9][0-9]+ bytes'
	# the service applied each request exactly once and holds the MUD's digest
	run -0 svc_status "$NS_SVC" 127.0.0.1:7777
	local want
	want=$(jq -r .final_digest "$TMPD/lossy.json")
	run -0 jq -e --arg d "$want" '.muds[] | select(.mud_id == 10) | .applied == 10000 and .last_seq == 9999 and .digest == $d' <<<"$output"
	timeout 10 ip netns exec "$NS_SVC" nft delete table inet ehs_loss
	# every applied request left a line in the state dir
	run -0 wc -l <"$TMPD/st-lossy/mud-10.log"
	assert_output 10000
	stop_svc
	run -0 grep -E '^dup_cached [1-9]' "$TMPD/ct-x.err"
}

@test "svc+mud: --window 8 with 5% loss: out-of-order arrivals are held off, nothing lost or mismatched" {
	start_svc ct-x "$TMPD/st-window"
	timeout 10 ip netns exec "$NS_SVC" nft -f - <<'NFT'
table inet ehs_loss {
	chain in  { type filter hook input priority 0; udp dport 7777 numgen random mod 100 < 5 drop; }
	chain out { type filter hook output priority 0; udp sport 7777 numgen random mod 100 < 5 drop; }
}
NFT
	run mud --mud-id 14 --count 3000 --rate 0 --window 8 --timeout-ms 10 --json "$TMPD/win.json"
	echo "$output"
	assert_success
	timeout 10 ip netns exec "$NS_SVC" nft delete table inet ehs_loss
	run -0 jq -e '.answered == 3000 and .lost == 0 and .mismatches == 0 and .retries > 0' "$TMPD/win.json"
	stop_svc
	# requests overtaking a lost one were not applied early
	run -0 grep -E '^early [1-9]' "$TMPD/ct-x.err"
	run -0 grep -E '^applied 3000$' "$TMPD/ct-x.err"
}

@test "mud: SIGUSR1 ends a run early: no new request, those in flight finished, nothing lost" {
	start_svc ct-x "$TMPD/st-usr1"
	# a third of the answers dropped: at any moment some requests wait for a retry
	timeout 10 ip netns exec "$NS_SVC" nft -f - <<'NFT'
table inet ehs_usr1 {
	chain out { type filter hook output priority 0; udp sport 7777 numgen random mod 100 < 33 counter drop; }
}
NFT
	ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc 10.77.0.2:7777 --mud-id 15 \
		--count 100000 --rate 200 --window 4 --timeout-ms 100 --json "$TMPD/usr1.json" \
		>"$TMPD/usr1.out" 2>&1 &
	local pid=$!
	wait_for 20 bash -c "timeout 5 ip netns exec $NS_SVC nft list table inet ehs_usr1 | grep -Eq 'packets [0-9]{2,} '"
	kill -USR1 "$pid"
	run -0 timeout 30 tail --pid="$pid" -f /dev/null
	wait "$pid"	# its status: 0 only if nothing was lost or mismatched
	timeout 10 ip netns exec "$NS_SVC" nft delete table inet ehs_usr1
	cat "$TMPD/usr1.out"
	run -0 jq -e '.sent < 100000 and .sent >= 10 and .count == .sent and .answered == .sent
		and .lost == 0 and .mismatches == 0 and .retries > 0' "$TMPD/usr1.json"
	local sent
	sent=$(jq .sent "$TMPD/usr1.json")
	stop_svc
	# the service applied exactly what the MUD sent: nothing left in flight
	run -0 grep -E "^applied $sent\$" "$TMPD/ct-x.err"
}

@test "svc+mud: a session continues with --start-seq/--initial-digest; a wrong digest is a mismatch" {
	start_svc ct-x "$TMPD/st-cont"
	run -0 mud --mud-id 11 --count 50 --rate 0 --timeout-ms 50 --json "$TMPD/a.json"
	local d
	d=$(jq -r .final_digest "$TMPD/a.json")
	run -0 mud --mud-id 11 --count 50 --start-seq 50 --initial-digest "$d" --rate 0 --timeout-ms 50 --json "$TMPD/b.json"
	run -0 jq -e '.answered == 50 and .mismatches == 0 and .next_seq == 100' "$TMPD/b.json"
	# the same continuation with a wrong initial digest must fail
	run -1 mud --mud-id 11 --count 5 --start-seq 100 --initial-digest "$(printf '%064d' 0)" --rate 0 --timeout-ms 50 --json "$TMPD/c.json"
	run -0 jq -e '.mismatches == 5 and .lost == 0' "$TMPD/c.json"
	stop_svc
}

@test "svc+mud: a service restarted from scratch mid-run is detected as digest mismatches" {
	start_svc ct-x "$TMPD/st-restart"
	mud --mud-id 12 --count 400 --rate 200 --timeout-ms 50 --json "$TMPD/restart.json" >"$TMPD/restart.out" 2>&1 &
	local mpid=$!
	# wait until the service has applied 100 requests, then replace it
	wait_for 20 bash -c "svc_status() { timeout 5 ip netns exec $NS_SVC $EHS_BIN/edgehop-svcctl status 127.0.0.1:7777 --json; }; svc_status | jq -e '.muds[] | select(.mud_id == 12) | .last_seq >= 100'"
	stop_svc
	start_svc ct-fresh "$TMPD/st-restart2"
	local rc=0
	wait "$mpid" || rc=$?
	cat "$TMPD/restart.out"
	assert_equal "$rc" 1
	run -0 jq -e '.lost == 0 and .mismatches > 100 and (.servers | index("ct-fresh"))' "$TMPD/restart.json"
	stop_svc
}

@test "svc: malformed, truncated, oversized and foreign datagrams are counted and change nothing" {
	start_svc ct-x "$TMPD/st-junk"
	run -0 mud --mud-id 13 --count 20 --rate 0 --timeout-ms 50 --json "$TMPD/j1.json"
	run -0 svc_status "$NS_SVC" 127.0.0.1:7777
	local before=$output
	timeout 20 ip netns exec "$NS_MUD" python3 - <<'PY'
import os, random, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst = ("10.77.0.2", 7777)
random.seed(7)
hdr = lambda t, mud, seq, ln: struct.pack("!IBBHIIQII", 0x45484f50, 1, t, 0, mud, seq, 0, ln, 0)
pkts = [b"", b"x", b"GET / HTTP/1.0\r\n\r\n", hdr(1, 13, 20, 64)[:20],
        hdr(1, 13, 20, 64) + b"a" * 10,             # length lies
        hdr(1, 13, 20, 4000) + b"a" * 4000,          # oversized
        struct.pack("!I", 0xdeadbeef) + b"\0" * 60,  # foreign magic
        hdr(0, 13, 20, 0), hdr(250, 13, 20, 0), hdr(3, 13, 20, 0)]
for i in range(3000):
    pkts.append(hdr(random.randrange(0, 256), 13, random.randrange(0, 1 << 32), random.randrange(0, 1 << 32))[:random.randrange(0, 33)] + os.urandom(random.randrange(0, 100)))
for p in pkts:
    s.sendto(p, dst)
PY
	# the service still answers, and MUD 13 is exactly as before
	run -0 svc_status "$NS_SVC" 127.0.0.1:7777
	assert_equal "$(jq -c '.muds[] | select(.mud_id == 13)' <<<"$output")" "$(jq -c '.muds[] | select(.mud_id == 13)' <<<"$before")"
	run -0 mud --mud-id 13 --count 5 --start-seq 20 --initial-digest "$(jq -r .final_digest "$TMPD/j1.json")" --rate 0 --timeout-ms 50
	stop_svc
	run -0 grep -E '^malformed [1-9]' "$TMPD/ct-x.err"
	run -0 grep -E '^oversized [1-9]' "$TMPD/ct-x.err"
	run -0 grep -E '^foreign [1-9]' "$TMPD/ct-x.err"
}

@test "svc: --mem-mb and --fs-mb make resident memory and layer files; SIGTERM exits 0" {
	ip netns exec "$NS_SVC" timeout 60 "$EHS_BIN/edgehop-svc" --port 7778 --name ballast \
		--state-dir "$TMPD/st-ballast" --mem-mb 16 --fs-mb 3 2>"$TMPD/ballast.err" &
	local pid=$!
	wait_for 10 timeout 5 ip netns exec "$NS_SVC" "$EHS_BIN/edgehop-svcctl" status 127.0.0.1:7778
	local spid
	spid=$(pgrep -P "$pid" -x edgehop-svc)
	run -0 awk '/VmRSS/ {print $2}' "/proc/$spid/status"
	[ "$output" -ge $((16 * 1024)) ]
	run -0 du -sk "$TMPD/st-ballast/ballast"
	[ "$(cut -f1 <<<"$output")" -ge $((3 * 1024)) ]
	ehs_term "$pid"
	local rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	run -0 grep "ballast stopping" "$TMPD/ballast.err"
}

@test "svc --mud-id: serves its MUD, never answers another (counted other_mud, not in its status)" {
	start_svc ct-b "$TMPD/st-bound" --mud-id 21
	run -0 mud --mud-id 21 --count 20 --rate 0 --timeout-ms 50 --json "$TMPD/b21.json"
	run -1 mud --mud-id 22 --count 3 --rate 0 --timeout-ms 50 --give-up-ms 300 --json "$TMPD/b22.json"
	run -0 jq -e '.answered == 0 and .lost == 3' "$TMPD/b22.json"
	run -0 svc_status "$NS_SVC" 127.0.0.1:7777
	assert_equal "$(echo "$output" | jq -c '[.muds[].mud_id]')" '[21]'
	stop_svc
	run -0 grep -E '^other_mud [1-9]' "$TMPD/ct-b.err"
	run -0 grep 'serving MUD 21 only' "$TMPD/ct-b.err"
}

@test "svc+mud: GAP and STALE answers are never taken for answers; STALE to an unanswered seq is an error" {
	start_svc ct-s "$TMPD/st-stale"
	run -0 mud --mud-id 23 --count 100 --rate 0 --timeout-ms 50 --json "$TMPD/s1.json"
	# seq 5 again, long applied and out of the cache: STALE, the MUD cannot check it.
	run -1 mud --mud-id 23 --count 1 --start-seq 5 --rate 0 --timeout-ms 50 --give-up-ms 300 --json "$TMPD/s2.json"
	assert_output --partial 'STALE answer to unanswered seq 5'
	run -0 jq -e '.answered == 0 and .stale_errors == 1 and .mismatches == 0' "$TMPD/s2.json"
	# seq 150 while the service waits for 100: GAP, retried, never answered.
	run -1 mud --mud-id 23 --count 1 --start-seq 150 --rate 0 --timeout-ms 50 --give-up-ms 300 --json "$TMPD/s3.json"
	run -0 jq -e '.answered == 0 and .gap_answers >= 2 and .mismatches == 0 and .lost == 1' "$TMPD/s3.json"
	run -0 mud --mud-id 23 --count 10 --start-seq 100 --initial-digest "$(jq -r .final_digest "$TMPD/s1.json")" --rate 0 --timeout-ms 50
	stop_svc
}

@test "svc: 6,000 datagrams with junk MUD ids, then a real MUD is answered (table bounded, junk evicted)" {
	start_svc ct-j "$TMPD/st-junkids"
	run -0 mud --mud-id 31 --count 5 --rate 0 --timeout-ms 50 --json "$TMPD/j31a.json"
	timeout 30 ip netns exec "$NS_MUD" python3 - <<'PY'
import random, socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
random.seed(11)
for i in range(6000):
    mud = random.randrange(1000, 1 << 32)
    s.sendto(struct.pack("!IBBHIIQII", 0x45484f50, 1, 1, 0, mud, random.randrange(0, 1 << 32), 0, 64, 0) + b"j" * 64,
             ("10.77.0.2", 7777))
    if i % 500 == 499:
        time.sleep(0.01)   # stay within the service's socket buffer
PY
	# a MUD never seen before, and the one that was there before the junk
	run -0 mud --mud-id 32 --count 20 --rate 0 --timeout-ms 50 --give-up-ms 3000 --json "$TMPD/j32.json"
	run -0 jq -e '.answered == 20 and .lost == 0 and .mismatches == 0' "$TMPD/j32.json"
	run -0 mud --mud-id 31 --count 5 --start-seq 5 --initial-digest "$(jq -r .final_digest "$TMPD/j31a.json")" \
		--rate 0 --timeout-ms 50 --give-up-ms 3000
	stop_svc
	run -0 grep -E '^table_full 0$' "$TMPD/ct-j.err"
	run -0 awk '$1 == "evicted" && $2 >= 1900 {print}' "$TMPD/ct-j.err"
	assert_output --regexp '^evicted [0-9]+$'
	run -0 awk '$1 == "muds" && $2 <= 4096 {print}' "$TMPD/ct-j.err"
	assert_output --regexp '^muds [0-9]+$'
	# the evicted MUDs' records went with them
	[ "$(find "$TMPD/st-junkids" -name 'mud-*.log*' | wc -l)" -le 4096 ]
}

# status_raw <len> [count]: one STATUS_REQ of <len> bytes from the MUD's
# namespace; prints the answer's length, or "none" after 1 s.
status_raw() {
	timeout 10 ip netns exec "$NS_MUD" python3 - "$1" <<'PY'
import socket, struct, sys
n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
q = struct.pack("!IBBHIIQII", 0x45484f50, 1, 7, 0, 0, 0, 99, 0, 0)
s.sendto(q + b"\0" * (n - len(q)), ("10.77.0.2", 7777))
try:
    print(len(s.recv(4096)))
except socket.timeout:
    print("none")
PY
}

@test "svc: STATUS_REQ never amplifies for an untrusted source; padded requests and --status-from are answered" {
	start_svc ct-st "$TMPD/st-status" --status-from 127.0.0.0/8
	for i in $(seq 40); do
		run -0 mud --mud-id $((100 + i)) --count 2 --rate 0 --timeout-ms 50
	done
	# 10.77.0.1 is not in --status-from: a 32-byte request gets nothing
	run -0 status_raw 32
	assert_output none
	# padded to the largest answer: answered, never longer than the request
	run -0 status_raw 1472
	[ "$output" != none ] && [ "$output" -le 1472 ]
	# svcctl pads its requests: works from anywhere, and pages through all 40
	run -0 timeout 10 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-svcctl" status 10.77.0.2:7777 --json
	assert_equal "$(jq '.muds | length' <<<"$output")" 40
	stop_svc
	run -0 grep -E '^status_refused 1$' "$TMPD/ct-st.err"
	# default --status-from: loopback and private networks (the AP's replayer, the agent)
	start_svc ct-sd "$TMPD/st-status-d"
	run -0 mud --mud-id 150 --count 2 --rate 0 --timeout-ms 50
	run -0 status_raw 32
	assert_equal "$output" $((32 + 48 + 32))
	stop_svc
}

@test "svc: the per-MUD apply log rotates at --log-max-kb (two files at most)" {
	start_svc ct-l "$TMPD/st-logcap" --log-max-kb 4
	run -0 mud --mud-id 41 --count 300 --rate 0 --timeout-ms 50
	stop_svc
	local cur=$TMPD/st-logcap/mud-41.log
	[ "$(stat -c %s "$cur")" -le 4096 ]
	[ "$(stat -c %s "$cur.1")" -le 4096 ]
	[ "$(stat -c %s "$cur.1")" -gt 3900 ]
	# the newest line is the last request's
	run -0 tail -n 1 "$cur"
	assert_output --regexp '^299 [0-9a-f]{64}$'
	run -0 grep -c . "$cur.1"
	[ "$output" -gt 40 ]
}

@test "svc --name-file: SIGHUP takes the name from the file (a restored container's own); a bad file keeps it" {
	echo CT-node-x >"$TMPD/hostname"
	start_svc CT-node-x "$TMPD/st-rename" --name-file "$TMPD/hostname"
	run -0 mud --mud-id 41 --count 5 --rate 0 --json "$TMPD/r1.json"
	run -0 jq -e '.servers == ["CT-node-x"]' "$TMPD/r1.json"
	echo CT-node-y >"$TMPD/hostname"
	ehs_signal HUP "$(cat "$TMPD/svc.pid")"
	wait_for 10 grep -q 'renamed CT-node-x -> CT-node-y' "$TMPD/CT-node-x.err"
	run -0 svc_status "$NS_SVC" 127.0.0.1:7777
	assert_equal "$(jq -r .server <<<"$output")" CT-node-y
	# the session goes on (same state), answered under the new name
	run -0 mud --mud-id 41 --count 5 --start-seq 5 --rate 0 --json "$TMPD/r2.json" \
		--initial-digest "$(jq -r .final_digest "$TMPD/r1.json")"
	run -0 jq -e '.servers == ["CT-node-y"] and .answered == 5 and .mismatches == 0' "$TMPD/r2.json"
	printf 'two words\n' >"$TMPD/hostname"
	ehs_signal HUP "$(cat "$TMPD/svc.pid")"
	wait_for 10 grep -q 'no name in' "$TMPD/CT-node-x.err"
	run -0 svc_status "$NS_SVC" 127.0.0.1:7777
	assert_equal "$(jq -r .server <<<"$output")" CT-node-y
	stop_svc
}

@test "svcctl --json escapes the server name it got from the network" {
	ip netns exec "$NS_SVC" timeout 60 "$EHS_BIN/edgehop-svc" --port 7777 \
		--name 'ct"q\b/<x>' --state-dir "$TMPD/st-name" 2>"$TMPD/name.err" &
	echo $! >"$TMPD/svc.pid"
	wait_for 10 svc_status "$NS_SVC" 127.0.0.1:7777
	run -0 svc_status "$NS_SVC" 127.0.0.1:7777
	assert_equal "$(jq -r .server <<<"$output")" 'ct"q\b/<x>'
	stop_svc
}

@test "mud: an answer from anywhere but the service address fails the run (foreign)" {
	start_svc ct-f "$TMPD/st-foreign"
	# A relay on 10.77.0.2:7790 in front of the service: answers come back from
	# 7790 as they should, and the first one once more from port 7791.
	ip netns exec "$NS_SVC" timeout 60 python3 - >"$TMPD/relay.out" <<'PY' &
import select, socket, sys
front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); front.bind(("10.77.0.2", 7790))
other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); other.bind(("10.77.0.2", 7791))
back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); back.connect(("127.0.0.1", 7777))
print("ready", flush=True)
client, n = None, 0
while True:
    r, _, _ = select.select([front, back], [], [], 30)
    if not r:
        break
    for s in r:
        if s is front:
            d, client = front.recvfrom(4096)
            back.send(d)
        else:
            d = back.recv(4096)
            front.sendto(d, client)
            n += 1
            if n == 1:
                other.sendto(d, client)
PY
	local rpid=$!
	wait_for 10 grep -q ready "$TMPD/relay.out"
	run -1 timeout 60 ip netns exec "$NS_MUD" "$EHS_BIN/edgehop-mud" --svc 10.77.0.2:7790 \
		--mud-id 71 --count 20 --rate 0 --timeout-ms 200 --json "$TMPD/f71.json"
	assert_output --partial "FOREIGN datagram from 10.77.0.2:7791"
	run -0 jq -e '.answered == 20 and .lost == 0 and .mismatches == 0 and .foreign == 1' "$TMPD/f71.json"
	kill "$rpid" 2>/dev/null || true
	stop_svc
}
