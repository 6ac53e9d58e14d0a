#!/usr/bin/env bats
# The node agent on this host, in two namespaces joined by a veth (the peer
# channel), without a dataplane and without Docker: what it refuses and how it
# says so. Association and migration with Docker run in the VM suite
# (tests/vm/20-agent.bats).

bats_require_minimum_version 1.5.0

setup_file() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
	export NSX=ehag-x-$$ NSY=ehag-y-$$ NSZ=ehag-z-$$ PINZ=/sys/fs/bpf/ehag-z-$$
	export TMPD=$(mktemp -d /tmp/ehag-40.XXXXXX)
	ehs_pair "$NSX" "$NSY" 10.94.0.1 10.94.0.2
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMPD/key"
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMPD/badkey"
	chmod 600 "$TMPD/key" "$TMPD/badkey"
	local n
	for n in x y; do
		cat >"$TMPD/$n.conf" <<-CONF
		NODE = node-$n
		DATAPLANE = no
		VIP = 10.94.100.1:7777
		AGENT_ADDR = 10.94.0.$([ $n = x ] && echo 1 || echo 2)
		KEY = $TMPD/key
		CTL = $TMPD/$n.sock
		STATE_DIR = $TMPD/$n.state
		DOCKER = $TMPD/no-docker.sock
		PEER = node-$([ $n = x ] && echo y || echo x) 10.94.0.$([ $n = x ] && echo 2 || echo 1)
		CONF
	done
	start_agent x
	start_agent y
}

teardown_file() {
	load helpers/ehs-common
	ehs_del_ns "$NSX" "$NSY"
	# The dataplane test's namespace and pins, if it stopped half-way.
	if [ -e "/run/netns/$NSZ" ]; then
		netns_kill 5 "$NSZ"
		nsenter --net=/run/netns/"$NSZ" "$EHS_BIN/edgehop-ap" --pin "$PINZ" unload --radio zr0 \
			--wan zw0 >/dev/null 2>&1 || true
		ehs_del_ns "$NSZ"
	fi
	rm -rf "$PINZ" "$TMPD"
}

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
}

start_agent() { # start_agent x|y|z
	local ns=$NSX
	[ "$1" = y ] && ns=$NSY
	[ "$1" = z ] && ns=$NSZ
	# nsenter, not ip netns exec: that one remounts /sys, and with it the
	# bpffs where z's dataplane is pinned.
	nsenter --net=/run/netns/"$ns" timeout 600 "$EHS_BIN/edgehop-agent" run \
		--config "$TMPD/$1.conf" 2>"$TMPD/$1.log" &
	echo $! >"$TMPD/$1.pid"
	wait_for 10 "$EHS_BIN/edgehop-agent" status --ctl "$TMPD/$1.sock"
}

stop_agent() {
	local pid
	pid=$(cat "$TMPD/$1.pid")
	ehs_term "$pid" || true
	wait_for 10 bash -c "! kill -0 $pid"
}

st() { "$EHS_BIN/edgehop-agent" status --ctl "$TMPD/$1.sock" --json; }

# mud_at NS AGENT_IP ARGS...: the MUD emulator, associating at that agent
mud_at() {
	local ns=$1 ip=$2; shift 2
	timeout 60 ip netns exec "$ns" "$EHS_BIN/edgehop-mud" --svc 10.94.100.1:7777 --count 1 \
		--timeout-ms 200 --assoc-timeout-ms 3000 --ap "ap=$ip:7778" "$@"
}

@test "agent: status answers (human and JSON); usage errors exit 2; a bad config names its line" {
	run -0 st x
	assert_equal "$(jq -r .node <<<"$output")" node-x
	assert_equal "$(jq -r '.peers[0].name' <<<"$output")" node-y
	assert_equal "$(jq -r .dataplane <<<"$output")" false
	run -0 "$EHS_BIN/edgehop-agent" status --ctl "$TMPD/x.sock"
	assert_output --partial "node node-x, dataplane off"
	run -2 "$EHS_BIN/edgehop-agent" frobnicate
	run -2 "$EHS_BIN/edgehop-agent" migrate 7 --method z --to node-y
	printf 'NODE = n\nDATAPLANE = no\nBOGUS = 1\nPEER = only-a-name\nRING_BYTES = 10000\n' >"$TMPD/bad.conf"
	run -2 "$EHS_BIN/edgehop-agent" run --config "$TMPD/bad.conf"
	assert_output --partial "bad.conf:3: unknown key BOGUS"
	assert_output --partial "bad.conf:4: bad value for PEER"
	assert_output --partial "bad.conf:5: bad value for RING_BYTES: '10000': not a power of two"
	run -1 "$EHS_BIN/edgehop-agent" status --ctl "$TMPD/nobody.sock"
	assert_output --partial "no agent at"
	# A migration of a MUD the node holds no container of, and to a node that is no peer.
	run -1 "$EHS_BIN/edgehop-agent" migrate 99 --to node-y --method p --ctl "$TMPD/x.sock"
	assert_output --partial "MUD 99 has no container on node-x"
	run -1 "$EHS_BIN/edgehop-agent" migrate 99 --to node-q --method p --ctl "$TMPD/x.sock"
	assert_output --partial "a configured peer"
}

@test "agent: ASSOC without Docker is refused with the reason, nothing half-made, the agent goes on" {
	run mud_at "$NSY" 10.94.0.1 --mud-id 5
	assert_failure
	# The MUD says why, in the agent's words.
	assert_output --partial "Docker at $TMPD/no-docker.sock"
	run -0 st x
	assert_equal "$(jq -r '.muds[] | select(.mud_id == 5) | .ct_node' <<<"$output")" ""
	assert_equal "$(jq -c .staged <<<"$output")" "[]"
	run -0 jq -r '.muds[] | select(.mud_id == 5) | .error' <<<"$output"
	assert_output --partial "Docker at"
}

@test "agent: REASSOC naming an AP that is no peer, a peer that knows no such MUD, a peer that is down: each refused with its reason" {
	# A REASSOC sent by hand: prev = 10.94.0.9 (not a peer), then 10.94.0.1 (node-x).
	run -0 ip netns exec "$NSX" python3 "$BATS_TEST_DIRNAME/helpers/eh-assoc.py" --to 10.94.0.2:7778 --mud-id 6 \
		--reassoc --prev 10.94.0.9
	assert_output --partial "ASSOC_FAIL"
	assert_output --partial "is not a peer of node-y"
	run -0 ip netns exec "$NSX" python3 "$BATS_TEST_DIRNAME/helpers/eh-assoc.py" --to 10.94.0.2:7778 --mud-id 7 \
		--reassoc --prev 10.94.0.1
	assert_output --partial "ASSOC_FAIL"
	assert_output --partial "previous AP node-x: unknown MUD"
	stop_agent x
	run -0 ip netns exec "$NSX" python3 "$BATS_TEST_DIRNAME/helpers/eh-assoc.py" --to 10.94.0.2:7778 --mud-id 8 \
		--reassoc --prev 10.94.0.1 --timeout 20
	assert_output --partial "ASSOC_FAIL"
	assert_output --partial "previous AP node-x does not answer"
	start_agent x
}

@test "agent: 400 junk MUD ids (more than its table) cannot lock a real MUD out" {
	run -0 ip netns exec "$NSY" python3 "$BATS_TEST_DIRNAME/helpers/eh-assoc.py" --to 10.94.0.1:7778 --flood 400
	run -0 ip netns exec "$NSY" python3 "$BATS_TEST_DIRNAME/helpers/eh-assoc.py" --to 10.94.0.1:7778 --mud-id 77
	# Answered for itself (no Docker here), not "serves 256 MUDs already".
	assert_output --partial "ASSOC_FAIL Docker at"
	run -0 st x
	assert [ "$(jq '.muds | length' <<<"$output")" -le 256 ]
}

@test "agent: junk on the MUD port (short, wrong magic, lying length, unknown type) is counted and ignored" {
	local before
	before=$(st x | jq .counters.mud_junk)
	run -0 ip netns exec "$NSY" python3 "$BATS_TEST_DIRNAME/helpers/eh-assoc.py" --to 10.94.0.1:7778 --junk
	run -0 st x
	assert_equal "$(jq .counters.mud_junk <<<"$output")" "$((before + $(python3 "$BATS_TEST_DIRNAME/helpers/eh-assoc.py" --junk-count)))"
}

@test "agent: peer channel refuses a wrong key, a name not in its config, and garbage; then serves a good peer" {
	local before key bad
	before=$(st x | jq .counters.peer_refused)
	key=$(cat "$TMPD/key") bad=$(cat "$TMPD/badkey")
	# openssl's TLS 1.3 external PSK client, as a peer that has the wrong key...
	run ip netns exec "$NSY" timeout 10 openssl s_client -connect 10.94.0.1:7780 -tls1_3 \
		-ciphersuites TLS_AES_128_GCM_SHA256 -psk_identity node-y -psk "$bad" </dev/null
	# ...a name node-x does not know, with the right key...
	run ip netns exec "$NSY" timeout 10 openssl s_client -connect 10.94.0.1:7780 -tls1_3 \
		-ciphersuites TLS_AES_128_GCM_SHA256 -psk_identity node-z -psk "$key" </dev/null
	# ...and bytes that are no TLS at all.
	ip netns exec "$NSY" timeout 10 bash -c 'head -c 4096 /dev/urandom >/dev/tcp/10.94.0.1/7780' || true
	wait_for 10 bash -c "[ \$('$EHS_BIN/edgehop-agent' status --ctl '$TMPD/x.sock' --json | jq .counters.peer_refused) -ge $((before + 3)) ]"
	grep -E "refus|PSK|identity|handshake" "$TMPD/x.log" | tail -5
	# A good peer still gets an answer (node-y asks for a MUD node-x does not know).
	run -0 ip netns exec "$NSX" python3 "$BATS_TEST_DIRNAME/helpers/eh-assoc.py" --to 10.94.0.2:7778 --mud-id 9 \
		--reassoc --prev 10.94.0.1
	assert_output --partial "previous AP node-x: unknown MUD"
}

@test "agent: a migration left in doubt (restore sent, channel lost) is asked of ES-y after a restart: in doubt while ES-y is down, then committed or unknown as ES-y says" {
	# node-x's state as a migration out leaves it when the channel failed after
	# "restore" (control/migr/migr.h: "<id>.doubt"); node-y is down.
	stop_agent x
	stop_agent y
	printf 'cafe\nmud=55\npeer=node-y\nrestore=sent\n' >"$TMPD/x.state/eh-55-1-a.doubt"
	start_agent x
	run -0 st x
	assert_equal "$(jq -c '.muds[] | select(.mud_id == 55) | [.ct_node, .ct_id, .in_doubt.id, .in_doubt.peer, .in_doubt.ct_x]' <<<"$output")" \
		'["node-x","cafe","eh-55-1-a","node-y","cafe"]'
	grep "in doubt since the agent restarted" "$TMPD/x.log"
	wait_for 10 grep -q "asking node-y for the outcome of its migration: node-y does not answer" "$TMPD/x.log"
	# CT-x does not serve the MUD on a guess.
	run -0 ip netns exec "$NSY" python3 "$BATS_TEST_DIRNAME/helpers/eh-assoc.py" --to 10.94.0.1:7778 --mud-id 55
	assert_output --partial "ASSOC_FAIL"
	assert_output --partial "MUD 55's container is in doubt (migration eh-55-1-a to node-y"
	# node-y comes back holding the record: committed. node-x learns it by itself.
	mkdir -p "$TMPD/y.state/outcomes"
	printf '{"id":"eh-55-1-a","outcome":"committed","mud_id":55,"from":"node-x","at":1,"ct_id":"beef","ct_name":"eh-mud-55-eh-55-1-a","ct_addr":"172.17.0.9","ct_image":"edgehop-svc:small"}' \
		>"$TMPD/y.state/outcomes/eh-55-1-a.json"
	start_agent y
	wait_for 30 bash -c "'$EHS_BIN/edgehop-agent' status --ctl '$TMPD/x.sock' --json | jq -e '.muds[] | select(.mud_id == 55) | .in_doubt == null'"
	run -0 st x
	assert_equal "$(jq -c '.muds[] | select(.mud_id == 55) | [.ct_node, .ct_id, .ct_addr]' <<<"$output")" '["node-y","beef","172.17.0.9"]'
	assert_equal "$(jq -c .staged <<<"$output")" "[]"
	grep "resolved after the lost channel: committed" "$TMPD/x.log"
	grep "peer node-x asks the outcome of migration eh-55-1-a: committed" "$TMPD/y.log"
	# A record node-y never heard of: unknown, it never cut over; CT-x's belief stands.
	stop_agent x
	printf 'cafe\nmud=56\npeer=node-y\nrestore=sent\n' >"$TMPD/x.state/eh-56-1-b.doubt"
	start_agent x
	wait_for 30 grep -q "eh-56-1-b to node-y resolved after the lost channel: unknown" "$TMPD/x.log"
	run -0 st x
	assert_equal "$(jq -c '[.muds[] | select(.mud_id == 56 and .in_doubt != null)]' <<<"$output")" "[]"
	assert_equal "$(jq -c .staged <<<"$output")" "[]"
}

# An agent with its dataplane, in a namespace of its own (radio and WAN are
# veths whose peers stay there): what a crash of ES-y during a cut-over left.
@test "agent: migrations in that a crash cut short are steered as their records decide at the next start: committed -> CT-y (LOCAL), undecided -> failed and back to CT-x (FORWARD), others untouched" {
	local nsz=$NSZ pin=$PINZ ap show
	ip netns add "$nsz"
	ip -n "$nsz" link set lo up
	ip -n "$nsz" link add zr0 type veth peer name zr1
	ip -n "$nsz" link add zw0 type veth peer name zw1
	for l in zr0 zr1 zw0 zw1; do ip -n "$nsz" link set "$l" up; done
	ip -n "$nsz" addr add 10.94.9.1/24 dev zr0
	cat >"$TMPD/z.conf" <<-CONF
	NODE = node-z
	DATAPLANE = yes
	RADIO = zr0
	WAN = zw0
	PIN = $pin
	VIP = 10.94.100.1:7777
	AGENT_ADDR = 10.94.9.1
	KEY = $TMPD/key
	CTL = $TMPD/z.sock
	STATE_DIR = $TMPD/z.state
	DOCKER = $TMPD/no-docker.sock
	PEER = node-x 10.94.0.1
	CONF
	ap="$EHS_BIN/edgehop-ap --pin $pin"
	# A first life loads the dataplane (it outlives the agent).
	start_agent z
	run -0 bash -c "'$EHS_BIN/edgehop-agent' status --ctl '$TMPD/z.sock' --json | jq -r .dataplane"
	assert_output true
	stop_agent z
	# What the crashed life left: MUD 57 cut over as far as its commit record,
	# its requests held (BUF_ONLY); MUD 58 in its replay (FWD_BUF), its record
	# still "running"; MUD 59 forwarded and buffered with no migration in.
	$ap set 10.94.8.57 --mode buf-only --backend 10.94.7.7:7777 --mud-id 57
	$ap set 10.94.8.58 --mode fwd-buf --backend 10.94.7.7:7777 --mud-id 58
	$ap set 10.94.8.59 --mode fwd-buf --backend 10.94.7.7:7777 --mud-id 59
	mkdir -p "$TMPD/z.state/outcomes"
	printf 'eh-mud-57-eh-57-1-a\n' >"$TMPD/z.state/eh-57-1-a.in"
	printf '{"id":"eh-57-1-a","outcome":"committed","mud_id":57,"from":"node-x","at":1,"ct_id":"beef57","ct_name":"eh-mud-57-eh-57-1-a","ct_addr":"172.17.0.57","ct_image":"edgehop-svc:small","cmd":["/edgehop-svc","--port","7777"]}' \
		>"$TMPD/z.state/outcomes/eh-57-1-a.json"
	printf 'eh-mud-58-eh-58-1-b\n' >"$TMPD/z.state/eh-58-1-b.in"
	printf '{"id":"eh-58-1-b","outcome":"running","mud_id":58,"from":"node-x","at":1}' \
		>"$TMPD/z.state/outcomes/eh-58-1-b.json"
	start_agent z
	show=$($ap show --json)
	echo "# $show" >&3
	assert_equal "$(jq -c '.[] | select(.mud == "10.94.8.57") | [.mode, .backend, .mud_id]' <<<"$show")" \
		'["local","172.17.0.57:7777",57]'
	assert_equal "$(jq -c '.[] | select(.mud == "10.94.8.58") | [.mode, .backend, .mud_id]' <<<"$show")" \
		'["forward","10.94.7.7:7777",58]'
	assert_equal "$(jq -c '.[] | select(.mud == "10.94.8.59") | [.mode, .backend, .mud_id]' <<<"$show")" \
		'["fwd-buf","10.94.7.7:7777",59]'
	# The undecided one was recorded failed; ES-x asking learns what the steering does.
	assert_equal "$(jq -r .outcome "$TMPD/z.state/outcomes/eh-58-1-b.json")" failed
	assert_equal "$(jq -r .outcome "$TMPD/z.state/outcomes/eh-57-1-a.json")" committed
	# The committed MUD is this agent's again: here, its container CT-y.
	run -0 bash -c "'$EHS_BIN/edgehop-agent' status --ctl '$TMPD/z.sock' --json"
	assert_equal "$(jq -c '.muds[] | select(.mud_id == 57) | [.here, .ct_node, .ct_id, .ct_addr, .mud_addr]' <<<"$output")" \
		'[true,"node-z","beef57","172.17.0.57","10.94.8.57"]'
	grep -q "recovered: MUD 57's steering local -> 172.17.0.57:7777 (was buf-only)" "$TMPD/z.log"
	grep -q "recovered: MUD 58's steering forward -> 10.94.7.7:7777 (was fwd-buf)" "$TMPD/z.log"
	stop_agent z
	nsenter --net=/run/netns/"$nsz" $ap unload --radio zr0 --wan zw0
	ehs_del_ns "$nsz"
	rm -rf "$pin"
}
