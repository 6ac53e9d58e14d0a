#!/usr/bin/env bats
# The AP dataplane for real: programs loaded in the kernel on veth inside
# namespaces, a MUD, two APs joined by a WAN veth, and the offloading service
# standing in for each AP's container (topology in dataplane_helper.bash).
# EH_ATTACH=xdp bats tests/10-dataplane.bats: both APs at XDP instead of TC.

bats_require_minimum_version 1.5.0

setup_file() {
	load dataplane_helper
	# auto: TC on these veths; EH_ATTACH=xdp runs the whole suite at XDP.
	dp_topo_up
	# For the test with three different ports (VIP, CT-x, CT-y).
	start_svc ehd-esx ct-x2 7001
	start_svc ehd-esy ct-y2 7002
}

teardown_file() {
	load dataplane_helper
	topo_down
	cleanup_roundtrip
	cleanup_shared
}

# The round-trip test's own namespace, also after a failed run.
cleanup_roundtrip() {
	if [ -e /run/netns/ehd-rt ]; then
		nsenter --net=/run/netns/ehd-rt "$BIN/edgehop-ap" --pin /sys/fs/bpf/ehd-rt unload --radio r0 --wan w0 >/dev/null 2>&1
		ip netns del ehd-rt
	fi
	rm -rf /sys/fs/bpf/ehd-rt
}

setup() {
	load dataplane_helper
	bats_load_library bats-support
	bats_load_library bats-assert
}

# mud ID COUNT [extra edgehop-mud options]: runs the MUD from ehd-mud against the VIP.
mud() {
	local id=$1 count=$2; shift 2
	in_ns ehd-mud "$BIN/edgehop-mud" --svc $VIP:$VPORT --mud-id "$id" --count "$count" \
		--rate 0 --timeout-ms 200 --quiet --json "$BATS_TEST_TMPDIR/mud-$id.json" "$@"
}
mudj() { jq -r "$2" "$BATS_TEST_TMPDIR/mud-$1.json"; }
svc_status() { in_ns "$1" "$BIN/edgehop-svcctl" status 127.0.0.1:$VPORT --json; }

@test "make load on veth shows the counters in bpftool; make unload leaves the interfaces as they were" {
	cleanup_roundtrip
	ip netns add ehd-rt
	ip -n ehd-rt link add r0 type veth peer name r1
	ip -n ehd-rt link add w0 type veth peer name w1
	for d in r0 r1 w0 w1; do ip -n ehd-rt link set $d up; done
	snapshot() {
		ip -n ehd-rt -d link show | sed 's/ \(prog\/xdp\|xdp\).*//'
		ip -n ehd-rt -d link show | grep -c 'prog/xdp' || true
		ip netns exec ehd-rt tc qdisc show
		ip netns exec ehd-rt tc filter show dev r0 egress
		ls /sys/fs/bpf/ehd-rt 2>&1 || true
	}
	before=$(snapshot)
	run -0 timeout 60 nsenter --net=/run/netns/ehd-rt make -s -C "$TOP" load RADIO=r0 WAN=w0 VIP=10.92.0.1:7777 PIN=/sys/fs/bpf/ehd-rt
	run -0 bpftool -j map dump pinned /sys/fs/bpf/ehd-rt/eh_counters
	assert [ "$(echo "$output" | jq length)" -eq "$(counter_names | wc -l)" ]
	run -0 bpftool map dump pinned /sys/fs/bpf/ehd-rt/eh_counters
	assert_output --partial '"packets":'
	# On veth, "auto" attaches at TC ingress (XDP would convert and copy every frame).
	run -0 ip netns exec ehd-rt tc filter show dev r0 ingress
	assert_output --partial 'eh_tc_radio'
	run -0 ip netns exec ehd-rt tc filter show dev w0 ingress
	assert_output --partial 'eh_tc_wan'
	run -0 ip netns exec ehd-rt tc filter show dev r0 egress
	assert_output --partial 'eh_tc_radio_egr'
	run -0 nsenter --net=/run/netns/ehd-rt "$BIN/edgehop-ap" --pin /sys/fs/bpf/ehd-rt stats --json
	# Both veths' peers are in the same namespace: no bpf_redirect_peer
	# (the kernel would drop it), plain redirects.
	assert_equal "$(echo "$output" | jq -c .hook)" \
		'{"radio":"tc","wan":"tc","fast_return":true,"wan_peer":false,"radio_peer":false}'
	# --attach xdp moves both sides to XDP, and the TC ingress filters go.
	run -0 timeout 60 nsenter --net=/run/netns/ehd-rt "$BIN/edgehop-ap" --pin /sys/fs/bpf/ehd-rt \
		load --radio r0 --wan w0 --vip 10.92.0.1:7777 --attach xdp
	assert_output --partial 'radio r0 (xdp), WAN w0 (xdp)'
	run -0 ip -n ehd-rt link show r0
	assert_output --partial 'eh_xdp_radio'
	run -0 ip -n ehd-rt link show w0
	assert_output --partial 'eh_xdp_wan'
	run -0 ip netns exec ehd-rt tc filter show dev r0 ingress
	refute_output --partial 'eh_tc_radio'
	run -0 ip netns exec ehd-rt tc filter show dev w0 ingress
	refute_output --partial 'eh_tc_wan'
	# Idempotent: a second load (same values, from a config file) changes
	# nothing visible but the programs.
	printf 'RADIO = r0\nWAN = w0\nVIP = 10.92.0.1:7777\nPIN = /sys/fs/bpf/ehd-rt\n' >"$BATS_TEST_TMPDIR/ap.conf"
	run -0 timeout 60 nsenter --net=/run/netns/ehd-rt make -s -C "$TOP" load CONFIG="$BATS_TEST_TMPDIR/ap.conf"
	run -0 ip netns exec ehd-rt tc filter show dev r0 egress
	assert_equal "$(echo "$output" | grep -c 'handle 0xe4')" 1
	run -0 timeout 60 nsenter --net=/run/netns/ehd-rt make -s -C "$TOP" unload RADIO=r0 WAN=w0 PIN=/sys/fs/bpf/ehd-rt
	after=$(snapshot)
	ip netns del ehd-rt
	assert_equal "$after" "$before"
	assert [ ! -e /sys/fs/bpf/ehd-rt ]
}

@test "load refuses clearly: missing interface, someone else's program (at either hook), bad VIP, not root; a refused load leaves the interfaces as they were" {
	before=$(hooks ehd-apy radio0 wan0)
	# AP-y's own three: radio and WAN (XDP or TC ingress), radio TC egress.
	assert_equal "$(grep -c 'name eh_' <<<"$before")" 3
	run -1 ap_y load --radio nosuch0 --wan wan0 --vip $VIP:$VPORT
	assert_output --partial 'radio interface nosuch0 not found'
	# A program edgehop did not attach (here: another instance's) is left
	# alone, at whichever hook the other instance tries: it refuses on the
	# first hook AP-y holds, and takes off what it attached before that (at
	# the hook AP-y does not use: XDP when AP-y is at TC, TC ingress when at XDP).
	rm -rf /sys/fs/bpf/ehd-other	# a stale one from an aborted run
	for hook in auto xdp tc; do
		run -1 in_ns ehd-apy "$BIN/edgehop-ap" --pin /sys/fs/bpf/ehd-other load \
			--radio radio0 --wan wan0 --vip $VIP:$VPORT --attach $hook
		assert_output --regexp 'already has an? (XDP|TC ingress|TC egress) program'
		assert_output --partial 'did not attach'
		assert_equal "$(hooks ehd-apy radio0 wan0)" "$before"
		assert [ ! -e /sys/fs/bpf/ehd-other ]
	done
	run -1 ap_y load --radio radio0 --wan wan0 --vip 10.91.255.1
	assert_output --partial 'is not IPV4:PORT'
	run -1 nsenter --net=/run/netns/ehd-apy setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$BIN/edgehop-ap" --pin /sys/fs/bpf/ehd-x load --radio radio0 --wan wan0 --vip $VIP:$VPORT
	assert_output --partial 'needs root'
	# The refused loads left nothing behind and the running dataplane working.
	assert_equal "$(hooks ehd-apy radio0 wan0)" "$before"
	assert [ ! -e /sys/fs/bpf/ehd-other ]
	assert [ ! -e /sys/fs/bpf/ehd-x ]
	run -0 ap_y stats
}

@test "LOCAL: MUD -> AP-y -> CT-y, every answer from the VIP; bpftool counters equal what the MUD saw" {
	ap_y set $MUD_IP --mode local --backend $CTY_IP:$VPORT --mud-id 101
	local_before=$(counter $PIN_Y LOCAL)
	rw_before=$(counter $PIN_Y TX_REWRITE)
	run -0 mud 101 1000
	assert_equal "$(mudj 101 .answered)" 1000
	assert_equal "$(mudj 101 '.servers|join(",")')" ct-y
	# The MUD's socket is not connected: an answer from any address but
	# VIP:port is counted foreign and fails its run (run -0 above).
	assert_equal "$(mudj 101 .foreign)" 0
	sent=$(mudj 101 .transmissions)
	assert_equal $(( $(counter $PIN_Y LOCAL) - local_before )) "$sent"
	assert_equal $(( $(counter $PIN_Y TX_REWRITE) - rw_before )) "$(mudj 101 .answered)"
}

@test "FORWARD: MUD -> AP-y -> (in-kernel redirect over the WAN) -> AP-x -> CT-x and back, answers from the VIP" {
	ap_y set $MUD_IP --mode forward --backend $CTX_IP:$VPORT --mud-id 102
	fwd_before=$(counter $PIN_Y FORWARD)
	slow_before=$(counter $PIN_Y FWD_SLOW)
	ret_before=$(counter $PIN_Y RET_FAST)
	rw_before=$(counter $PIN_Y TX_REWRITE)
	peer_before=$(counter $PIN_Y FWD_PEER)
	rpeer_before=$(counter $PIN_Y RET_PEER)
	neigh_before=$(counter $PIN_Y FWD_NEIGH)
	run -0 mud 102 1000
	assert_equal "$(mudj 102 .answered)" 1000
	assert_equal "$(mudj 102 '.servers|join(",")')" ct-x
	fwd=$(( $(counter $PIN_Y FORWARD) - fwd_before ))
	slow=$(( $(counter $PIN_Y FWD_SLOW) - slow_before ))
	assert_equal $((fwd + slow)) "$(mudj 102 .transmissions)"
	# The in-kernel redirect carried them, not the kernel's forwarding path,
	# and the answers came back WAN -> radio in XDP too.
	assert [ "$fwd" -ge 990 ]
	ret=$(( $(counter $PIN_Y RET_FAST) - ret_before ))
	rw=$(( $(counter $PIN_Y TX_REWRITE) - rw_before ))
	assert_equal $((ret + rw)) "$(mudj 102 .answered)"
	assert [ "$ret" -ge 990 ]
	run -0 svc_status ehd-esx
	assert_equal "$(echo "$output" | jq '.muds[]|select(.mud_id==102)|.applied')" 1000
	# At TC (auto on veth) both veths' peers are in other namespaces: each
	# request entered AP-x's wan0, each answer the MUD's mud0, directly
	# (bpf_redirect_peer), but for those that met AP-x's MAC unresolved
	# (the first, on a fresh topology: bpf_redirect_neigh); at XDP there is
	# no such thing.
	run -0 ap_y stats --json
	if [ "$(echo "$output" | jq -r .hook.radio)" = tc ]; then
		assert_equal "$(echo "$output" | jq -c '[.hook.wan_peer,.hook.radio_peer]')" '[true,true]'
		assert_equal $(( $(counter $PIN_Y FWD_PEER) - peer_before +
			$(counter $PIN_Y FWD_NEIGH) - neigh_before )) "$fwd"
		assert [ $(( $(counter $PIN_Y FWD_PEER) - peer_before )) -ge 990 ]
		assert_equal $(( $(counter $PIN_Y RET_PEER) - rpeer_before )) "$ret"
	else
		assert_equal "$(echo "$output" | jq -c '[.hook.wan_peer,.hook.radio_peer]')" '[false,false]'
		assert_equal "$(counter $PIN_Y FWD_PEER)" "$peer_before"
	fi
}

@test "FORWARD with the next hop not resolved: TC has the kernel resolve it (bpf_redirect_neigh), XDP hands it to the kernel; nothing lost" {
	ap_y set $MUD_IP --mode forward --backend $CTX_IP:$VPORT --mud-id 115
	# AP-y forgets AP-x's MAC: the FIB lookup answers "no neighbour".
	ip -n ehd-apy neigh flush dev wan0
	run -0 ip -n ehd-apy neigh show dev wan0 nud reachable
	assert_output ''
	fwd_before=$(counter $PIN_Y FORWARD)
	neigh_before=$(counter $PIN_Y FWD_NEIGH)
	slow_before=$(counter $PIN_Y FWD_SLOW)
	run -0 mud 115 200
	assert_equal "$(mudj 115 '[.answered,.lost,.mismatches]|join(",")')" 200,0,0
	assert_equal "$(mudj 115 '.servers|join(",")')" ct-x
	neigh=$(( $(counter $PIN_Y FWD_NEIGH) - neigh_before ))
	slow=$(( $(counter $PIN_Y FWD_SLOW) - slow_before ))
	fwd=$(( $(counter $PIN_Y FORWARD) - fwd_before ))
	assert_equal $((fwd + slow)) "$(mudj 115 .transmissions)"
	run -0 ap_y stats --json
	if [ "$(echo "$output" | jq -r .hook.radio)" = tc ]; then
		# The first request waited in the neighbour's queue; the rest
		# found AP-x's MAC in the FIB. None took the kernel's path.
		assert [ "$neigh" -ge 1 ]
		assert_equal "$slow" 0
	else
		assert [ "$slow" -ge 1 ]
		assert_equal "$neigh" 0
	fi
	run -0 ip -n ehd-apy neigh show dev wan0 10.91.100.1
	assert_output --partial lladdr
}

@test "FORWARD+BUFFER: the ring holds exactly the forwarded requests, in order" {
	ap_y ring --drain --timeout-ms 0 >/dev/null	# start from an empty ring
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 103
	run -0 mud 103 500
	assert_equal "$(mudj 103 .retries)" 0
	# Looking consumes nothing: a second look sees the same records.
	run -0 ap_y ring $MUD_IP --peek --json --timeout-ms 200
	ring=$output
	run -0 ap_y ring $MUD_IP --json --timeout-ms 0
	assert_equal "$output" "$ring"
	assert_equal "$(echo "$ring" | jq length)" 500
	assert_equal "$(echo "$ring" | jq -c '[.[].seq]')" "$(jq -nc '[range(0;500)]')"
	assert_equal "$(echo "$ring" | jq '[.[]|select(.forwarded and .mud_id==103 and .mud=="'$MUD_IP'")]|length')" 500
	run -0 ap_y show --json
	assert_equal "$(echo "$output" | jq '.[0].buffered - .[0].lost_buf >= 500')" true
	assert_equal "$(echo "$output" | jq '.[0].overflow')" false
	run -0 --separate-stderr ap_y ring $MUD_IP --drain --json --timeout-ms 0
	assert_equal "$(echo "$output" | jq length)" 500
	assert_equal "$stderr" "edgehop-ap: consumed 500 records from the replay buffer of $MUD_IP"
	run -0 ap_y ring $MUD_IP --peek --json --timeout-ms 0
	assert_equal "$output" "[]"
}

@test "cut-over: FORWARD+BUFFER to CT-x, replay into CT-y, BUFFER-ONLY, switch to LOCAL: 20,000 requests, none lost, doubled or reordered" {
	ap_y ring --drain --timeout-ms 0 >/dev/null
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 104
	buf_before=$(counter $PIN_Y BUFFERED)
	rep_before=$(counter $PIN_Y REPLAYED)
	# Paced so that the switch lands mid-run (unpaced, 20,000 take ~0.3 s).
	mud 104 20000 --rate 4000 & mud_pid=$!
	wait_for 30 bash -c "[ \$(nsenter --net=/run/netns/ehd-apy $BIN/edgehop-ap --pin $PIN_Y show --json | jq '.[]|select(.mud_id==104)|.buffered') -ge 3000 ]"
	run -0 ap_y cutover $MUD_IP --to $CTY_IP:$VPORT --mud-id 104 --json
	cut=$output
	echo "$cut"
	assert_equal "$(echo "$cut" | jq .ok)" true
	wait "$mud_pid"	# non-zero (loss, mismatch) fails the test
	# The MUD checked every answer's digest against its own chain.
	assert_equal "$(mudj 104 .answered)" 20000
	assert_equal "$(mudj 104 .lost)" 0
	assert_equal "$(mudj 104 .mismatches)" 0
	assert_equal "$(mudj 104 '.servers|sort|join(",")')" ct-x,ct-y
	# CT-y applied every request exactly once, in order: same digest as the MUD.
	run -0 svc_status ehd-esy
	assert_equal "$(echo "$output" | jq -c '.muds[]|select(.mud_id==104)|[.last_seq,.applied,.digest]')" \
		"$(jq -c '[19999,20000,.final_digest]' "$BATS_TEST_TMPDIR/mud-104.json")"
	# CT-x stopped receiving at the switch.
	run -0 svc_status ehd-esx
	x_last=$(echo "$output" | jq '.muds[]|select(.mud_id==104)|.last_seq')
	assert [ "$x_last" -lt 19999 ]
	# Counters read with bpftool: everything buffered was replayed, nothing lost.
	buffered=$(( $(counter $PIN_Y BUFFERED) - buf_before ))
	replayed=$(( $(counter $PIN_Y REPLAYED) - rep_before ))
	assert_equal "$replayed" "$(echo "$cut" | jq .consumed)"
	assert_equal "$buffered" "$replayed"
	# Each seq replayed once, every answer chained from the one before.
	assert_equal "$(echo "$cut" | jq '.replayed + .dups == .consumed and .verified == .replayed')" true
	assert_equal "$(counter $PIN_Y RING_FULL)" 0
	assert_equal "$(counter $PIN_Y BUF_DROP)" 0
	run -0 ap_y show --json
	assert_equal "$(echo "$output" | jq -r '.[]|select(.mud_id==104)|.mode')" local
}

@test "BUFFER-ONLY: held requests are answered from CT-y through the replay, from the VIP" {
	ap_y ring --drain --timeout-ms 0 >/dev/null
	ap_y set $MUD_IP --mode buf-only --mud-id 105
	mud 105 300 --window 8 --timeout-ms 2000 & mud_pid=$!
	wait_for 30 bash -c "[ \$(nsenter --net=/run/netns/ehd-apy $BIN/edgehop-ap --pin $PIN_Y show --json | jq '.[]|select(.mud_id==105)|.buffered') -ge 8 ]"
	run -0 ap_y cutover $MUD_IP --to $CTY_IP:$VPORT --mud-id 105 --json
	assert_equal "$(echo "$output" | jq '.relayed >= 8')" true
	wait "$mud_pid"	# non-zero (loss, mismatch) fails the test
	assert_equal "$(mudj 105 .answered)" 300
	assert_equal "$(mudj 105 .mismatches)" 0
	run -0 svc_status ehd-esy
	assert_equal "$(echo "$output" | jq '.muds[]|select(.mud_id==105)|.applied')" 300
}

@test "ring full: counted, the MUD's entry flagged, requests still forwarded; cut-over refuses and CT-x keeps serving" {
	ap_y ring --drain --timeout-ms 0 >/dev/null
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 106
	full_before=$(counter $PIN_Y RING_FULL)
	# Nobody consumes: 14,000 records of 1.5 KB overflow the 16 MiB ring.
	run -0 mud 106 14000
	assert_equal "$(mudj 106 .lost)" 0
	full=$(( $(counter $PIN_Y RING_FULL) - full_before ))
	assert [ "$full" -gt 0 ]
	run -0 ap_y show --json
	entry=$(echo "$output" | jq -c '.[]|select(.mud_id==106)')
	assert_equal "$(echo "$entry" | jq .overflow)" true
	assert_equal "$(echo "$entry" | jq .lost_buf)" "$full"
	run -1 ap_y cutover $MUD_IP --to $CTY_IP:$VPORT --mud-id 106
	assert_output --partial 'lost requests from the replay buffer'
	run -0 ap_y show --json
	assert_equal "$(echo "$output" | jq -r '.[]|select(.mud_id==106)|.mode')" fwd-buf
	# CT-x still serves the MUD.
	run -0 mud 106 100 --start-seq 14000 --initial-digest "$(mudj 106 .final_digest)"
	assert_equal "$(mudj 106 '.servers|join(",")')" ct-x
	ap_y ring --drain --timeout-ms 0 >/dev/null
	ap_y clear-flags $MUD_IP
}

# feed_y MUD_ID COUNT: CT-y restored from a checkpoint that holds the MUD's first
# COUNT requests (sent to it directly: same ids and seqs, same payloads).
feed_y() {
	in_ns ehd-esy "$BIN/edgehop-mud" --svc 127.0.0.1:$VPORT --mud-id "$1" --count "$2" \
		--rate 0 --timeout-ms 200 --quiet --json "$BATS_TEST_TMPDIR/feed-$1.json"
}
ydigest() { svc_status ehd-esy | jq -c ".muds[]|select(.mud_id==$1)|[.last_seq,.applied,.digest]"; }

@test "cut-over when CT-y already holds 200 of the 300 buffered requests (beyond its 32-answer cache): skipped, not waited for" {
	ap_y ring --drain --timeout-ms 0 >/dev/null
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 107
	run -0 mud 107 300
	run -0 feed_y 107 200
	run -0 ap_y cutover $MUD_IP --to $CTY_IP:$VPORT --mud-id 107 --json
	cut=$output
	echo "$cut"
	assert_equal "$(echo "$cut" | jq -c '[.ok,.skipped,.replayed,.first_seq,.last_seq,.verified]')" '[true,200,100,200,299,100]'
	run -0 mud 107 100 --start-seq 300 --initial-digest "$(mudj 107 .final_digest)"
	assert_equal "$(mudj 107 '[.answered,.lost,.mismatches,.stale_errors]|join(",")')" 100,0,0,0
	assert_equal "$(mudj 107 '.servers|join(",")')" ct-y
	assert_equal "$(ydigest 107)" "$(jq -c '[399,400,.final_digest]' "$BATS_TEST_TMPDIR/mud-107.json")"
}

@test "cut-over of a window-4 MUD with 5% radio loss: retransmissions land out of order, replayed in seq order" {
	ap_y ring --drain --timeout-ms 0 >/dev/null
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 108
	# The radio loses 5% of the MUD's requests (answers get through).
	in_ns ehd-mud nft -f - <<-'NFT'
	table ip ehd_loss {
		chain out { type filter hook output priority 0; udp dport 7777 numgen random mod 100 < 5 drop; }
	}
	NFT
	# The entry's counters outlive earlier tests (same MUD address): 1500
	# more than now, else the cut-over may start before this MUD's first request.
	base=$(ap_y show --json | jq '[.[]|select(.mud_id==108)|.buffered][0] // 0')
	mud 108 4000 --window 4 --rate 1000 & mud_pid=$!
	wait_for 30 bash -c "[ \$(nsenter --net=/run/netns/ehd-apy $BIN/edgehop-ap --pin $PIN_Y show --json | jq '.[]|select(.mud_id==108)|.buffered') -ge $((base + 1500)) ]"
	run ap_y cutover $MUD_IP --to $CTY_IP:$VPORT --mud-id 108 --json
	cut=$output
	wait "$mud_pid" || true
	in_ns ehd-mud nft delete table ip ehd_loss
	echo "$cut"
	assert_equal "$(echo "$cut" | jq .ok)" true
	assert [ "$(mudj 108 .retries)" -gt 0 ]
	assert_equal "$(mudj 108 '[.answered,.lost,.mismatches,.stale_errors]|join(",")')" 4000,0,0,0
	assert_equal "$(mudj 108 '.servers|sort|join(",")')" ct-x,ct-y
	assert_equal "$(ydigest 108)" "$(jq -c '[3999,4000,.final_digest]' "$BATS_TEST_TMPDIR/mud-108.json")"
	assert_equal "$(echo "$cut" | jq '.verified == .replayed')" true
}

@test "BUFFER-ONLY with retransmissions: each seq replayed and answered once, held answers bounded" {
	ap_y ring --drain --timeout-ms 0 >/dev/null
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 109
	mud 109 400 --window 8 --rate 200 --timeout-ms 100 & mud_pid=$!
	wait_for 30 bash -c "[ \$(nsenter --net=/run/netns/ehd-apy $BIN/edgehop-ap --pin $PIN_Y show --json | jq '.[]|select(.mud_id==109)|.buffered') -ge 100 ]"
	# CT-x stops answering: the MUD's window fills and it retransmits it, 10 times a second.
	ap_y set $MUD_IP --mode buf-only --backend $CTX_IP:$VPORT --mud-id 109
	sleep 1
	run -0 ap_y cutover $MUD_IP --to $CTY_IP:$VPORT --mud-id 109 --json
	cut=$output
	echo "$cut"
	wait "$mud_pid"
	# One answer relayed per seq only buffered (CT-x applied the forwarded ones).
	x_applied=$(svc_status ehd-esx | jq '.muds[]|select(.mud_id==109)|.applied')
	assert [ "$(echo "$cut" | jq .dups)" -ge 8 ]
	assert_equal "$(echo "$cut" | jq .relayed)" $(( $(echo "$cut" | jq .replayed) - x_applied ))
	assert_equal "$(mudj 109 '[.answered,.lost,.mismatches,.stale_errors]|join(",")')" 400,0,0,0
	assert_equal "$(ydigest 109)" "$(jq -c '[399,400,.final_digest]' "$BATS_TEST_TMPDIR/mud-109.json")"
}

@test "a gap nobody buffered: the cut-over refuses loudly (ENODATA), rolls back, CT-x keeps serving, nothing lost" {
	ap_y ring --drain --timeout-ms 0 >/dev/null
	ap_y set $MUD_IP --mode forward --backend $CTX_IP:$VPORT --mud-id 110
	run -0 mud 110 100
	run -0 feed_y 110 50
	# Buffering starts at seq 100: 50..99 are only in CT-x.
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 110
	run -0 mud 110 100 --start-seq 100 --initial-digest "$(mudj 110 .final_digest)"
	entry() { ap_y show --json | jq -c '.[]|select(.mud=="'$MUD_IP'")|{mode,mud_id,backend,prev_backend}'; }
	before=$(entry)
	run -1 ap_y cutover $MUD_IP --to $CTY_IP:$VPORT --mud-id 110 --json
	assert_output --partial 'seq 50 is in nobody'
	assert_output --partial '"error":"No data available"'
	# Rolled back to the entry as it was, mud id and previous backend included.
	assert_equal "$(entry)" "$before"
	run -0 ap_y show --json
	assert_equal "$(echo "$output" | jq -r '.[]|select(.mud_id==110)|[.mode,.backend]|join(" ")')" "fwd-buf $CTX_IP:$VPORT"
	run -0 mud 110 50 --start-seq 200 --initial-digest "$(mudj 110 .final_digest)"
	assert_equal "$(mudj 110 '[.answered,.lost,.mismatches]|join(",")')" 50,0,0
	assert_equal "$(mudj 110 '.servers|join(",")')" ct-x
	run -0 svc_status ehd-esx
	assert_equal "$(echo "$output" | jq -r '.muds[]|select(.mud_id==110)|.digest')" "$(mudj 110 .final_digest)"
	ap_y ring --drain --timeout-ms 0 >/dev/null
}

@test "rollback restores the entry as it was: an entry without a mud-id check stays without one" {
	ap_y ring --drain --timeout-ms 0 >/dev/null
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT
	run -0 mud 112 20
	entry() { ap_y show --json | jq -c '.[]|select(.mud=="'$MUD_IP'")|{mode,mud_id,backend,prev_backend}'; }
	before=$(entry)
	assert_equal "$(echo "$before" | jq .mud_id)" 0
	# Nothing listens there: the replay times out, the cut-over rolls back.
	run -1 ap_y cutover $MUD_IP --to $CTY_IP:7999 --mud-id 112
	assert_output --partial 'aborted'
	assert_equal "$(entry)" "$before"
	# And a cut-over never loosens a check: another MUD id is refused up front.
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 112
	run -1 ap_y cutover $MUD_IP --to $CTY_IP:$VPORT --mud-id 113
	assert_output --partial 'accepts only MUD id 112'
	ap_y ring --drain --timeout-ms 0 >/dev/null
}

@test "three ports (VIP 7777, CT-x 7001, CT-y 7002): cut-over without --mud-id keeps the check; every answer reaches the MUD from the VIP" {
	ap_y ring --drain --timeout-ms 0 >/dev/null
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:7001 --mud-id 111
	rw_before=$(counter $PIN_Y TX_REWRITE)
	ret_before=$(counter $PIN_Y RET_FAST)
	foreign_before=$(counter $PIN_Y TX_FOREIGN)
	mud 111 6000 --rate 2000 --window 8 & mud_pid=$!
	wait_for 30 bash -c "[ \$(nsenter --net=/run/netns/ehd-apy $BIN/edgehop-ap --pin $PIN_Y show --json | jq '.[]|select(.mud_id==111)|.buffered') -ge 1500 ]"
	run -0 ap_y cutover $MUD_IP --to $CTY_IP:7002 --json
	cut=$output
	echo "$cut"
	wait "$mud_pid"	# non-zero (loss, mismatch) fails the test
	assert_equal "$(mudj 111 '[.answered,.lost,.mismatches,.stale_errors]|join(",")')" 6000,0,0,0
	assert_equal "$(mudj 111 '.servers|sort|join(",")')" ct-x2,ct-y2
	run -0 ap_y show --json
	entry=$(echo "$output" | jq -c '.[]|select(.mud=="'$MUD_IP'")')
	assert_equal "$(echo "$entry" | jq -r '[.mode,.mud_id,.backend,.prev_backend]|join(" ")')" \
		"local 111 $CTY_IP:7002 $CTX_IP:7001"
	# Every answer the MUD got was rewritten by us (it only hears the VIP), none foreign.
	rw=$(( $(counter $PIN_Y TX_REWRITE) - rw_before + $(counter $PIN_Y RET_FAST) - ret_before ))
	assert [ "$rw" -ge "$(( 6000 - $(echo "$cut" | jq .relayed) ))" ]
	assert_equal "$(counter $PIN_Y TX_FOREIGN)" "$foreign_before"
	run -0 in_ns ehd-esy "$BIN/edgehop-svcctl" status 127.0.0.1:7002 --json
	assert_equal "$(echo "$output" | jq -c '.muds[]|select(.mud_id==111)|[.last_seq,.applied,.digest]')" \
		"$(jq -c '[5999,6000,.final_digest]' "$BATS_TEST_TMPDIR/mud-111.json")"
}

@test "a spoofer routed through the AP answers from the service's ports: AP-y drops it, the MUD never hears it, tx_foreign counts it" {
	ap_y set $MUD_IP --mode local --backend $CTY_IP:$VPORT --mud-id 114
	foreign_before=$(counter $PIN_Y TX_FOREIGN)
	rw_before=$(counter $PIN_Y TX_REWRITE)
	# An unconnected socket on the MUD: prints the source of every datagram it gets.
	in_ns ehd-mud python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7900))
s.settimeout(2)
try:
    while True:
        d, a = s.recvfrom(2048)
        print(a[0], a[1], flush=True)
except socket.timeout:
    pass' >"$BATS_TEST_TMPDIR/heard" & lpid=$!
	wait_for 5 bash -c "nsenter --net=/run/netns/ehd-mud ss -Huln 'sport = :7900' | grep -q 7900"
	# From the backend's (= the VIP's) port, and from the VIP's address... of its own.
	in_ns ehd-spf python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7777))
for i in range(20):
    s.sendto(b"EHOP-not-an-answer", ("'$MUD_IP'", 7900))'
	wait "$lpid"
	cat "$BATS_TEST_TMPDIR/heard"
	# Dropped at AP-y's radio egress: a steered MUD hears the service only from the VIP.
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/heard")" 0
	assert_equal $(( $(counter $PIN_Y TX_FOREIGN) - foreign_before )) 20
	assert_equal "$(counter $PIN_Y TX_REWRITE)" "$rw_before"
	# The MUD itself is served as before, by CT-y only.
	run -0 mud 114 100
	assert_equal "$(mudj 114 '[.answered,.lost,.mismatches]|join(",")')" 100,0,0
	assert_equal "$(mudj 114 '.servers|join(",")')" ct-y
}

# The VM fault "foreign datagrams around the cut-over" (P-Migr, ~1 run in 4):
# CRIU resumes CT-y's service where CT-x's checkpoint caught it, sometimes
# between taking a request of the MUD and sending its answer; the restored
# CT-y then answers it from its own address while AP-y still forwards the MUD
# to CT-x (CT-x, left running, answers it too, from the VIP). Here CT-y's
# namespace sends those answers from the service port to the MUD's request
# socket mid-run, before the cut-over; the MUD fails on any foreign datagram.
tx_foreign_ge() { [ "$(counter $PIN_Y TX_FOREIGN)" -ge "$1" ]; }

@test "a restored CT-y answering the MUD from its own address before its cut-over: dropped at AP-y, the MUD never hears it; the cut-over as usual" {
	ap_y ring --drain --timeout-ms 0 >/dev/null
	# As at node-y: the entry created at the reassociation, no previous backend
	# (one naming CT-y would have CT-y's answers rewritten, from the VIP).
	run ap_y del $MUD_IP
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 131
	assert_equal "$(ap_y show --json | jq -r '.[]|select(.mud_id==131)|.prev_backend')" 0.0.0.0:0
	foreign_before=$(counter $PIN_Y TX_FOREIGN)
	mud 131 5000 --rate 1000 & mud_pid=$!
	wait_for 30 bash -c "[ \$(nsenter --net=/run/netns/ehd-apy $BIN/edgehop-ap --pin $PIN_Y show --json | jq '.[]|select(.mud_id==131)|.buffered') -ge 200 ]"
	# The MUD's request socket, from a buffered request.
	run -0 ap_y ring $MUD_IP --peek --count 1 --json
	port=$(jq -s 'flatten|.[0].mud_port' <<<"$output")
	assert [ "$port" -gt 0 ]
	# CT-y's service port (SO_REUSEADDR, like edgehop-svc): "answers" to the MUD.
	in_ns ehd-esy python3 -c '
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("'$CTY_IP'", '$VPORT'))
for seq in range(3):
    s.sendto(struct.pack("!IBBHII", 0x45484f50, 1, 2, 0, 131, seq) + bytes(80), ("'$MUD_IP'", '$port'))'
	wait_for 10 tx_foreign_ge $((foreign_before + 3))
	run -0 ap_y cutover $MUD_IP --to $CTY_IP:$VPORT --mud-id 131 --json
	assert_equal "$(jq .ok <<<"$output")" true
	wait "$mud_pid"	# non-zero on any foreign datagram, loss or mismatch
	assert_equal "$(mudj 131 '[.answered,.lost,.mismatches,.foreign]|join(",")')" 5000,0,0,0
	assert_equal "$(mudj 131 '.servers|sort|join(",")')" ct-x,ct-y
	assert_equal $(( $(counter $PIN_Y TX_FOREIGN) - foreign_before )) 3
}

# mud2 ID COUNT [options]: the second MUD (ehd-mud2, same radio), like mud().
mud2() {
	local id=$1 count=$2; shift 2
	in_ns ehd-mud2 "$BIN/edgehop-mud" --svc $VIP:$VPORT --mud-id "$id" --count "$count" \
		--rate 0 --timeout-ms 200 --quiet --json "$BATS_TEST_TMPDIR/mud-$id.json" "$@"
}
buffered() { ap_y show --json | jq ".[]|select(.mud_id==$1)|.buffered"; }

@test "two MUDs migrating into one AP at once: a ring each, neither waits for the other; 0 lost, 0 mismatches each" {
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 120
	ap_y set $MUD2_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 121
	rep_before=$(counter $PIN_Y REPLAYED)
	buf_before=$(counter $PIN_Y BUFFERED)
	mud 120 8000 --rate 2000 --window 8 & p1=$!
	mud2 121 8000 --rate 2000 --window 8 & p2=$!
	wait_for 30 bash -c "[ \$(nsenter --net=/run/netns/ehd-apy $BIN/edgehop-ap --pin $PIN_Y show --json | jq '[.[]|select(.mud_id==120 or .mud_id==121)|.buffered]|min') -ge 2000 ]"
	# Both rings hold records, interleaved in time: the old shared ring gave -EXDEV here.
	ap_y cutover $MUD_IP --to $CTY_IP:$VPORT --json >"$BATS_TEST_TMPDIR/cut-120" & c1=$!
	ap_y cutover $MUD2_IP --to $CTY_IP:$VPORT --json >"$BATS_TEST_TMPDIR/cut-121" & c2=$!
	wait "$c1"
	wait "$c2"
	wait "$p1"
	wait "$p2"
	cat "$BATS_TEST_TMPDIR"/cut-12?
	for id in 120 121; do
		assert_equal "$(jq .ok "$BATS_TEST_TMPDIR/cut-$id")" true
		assert_equal "$(jq '.verified == .replayed and .replayed > 0' "$BATS_TEST_TMPDIR/cut-$id")" true
		assert_equal "$(mudj $id '[.answered,.lost,.mismatches,.stale_errors]|join(",")')" 8000,0,0,0
		assert_equal "$(mudj $id '.servers|sort|join(",")')" ct-x,ct-y
		assert_equal "$(ydigest $id)" "$(jq -c '[7999,8000,.final_digest]' "$BATS_TEST_TMPDIR/mud-$id.json")"
	done
	# Each MUD's ring went with its switch to LOCAL; the replayers' adds did not undo each other.
	run -0 ap_y ring --json --timeout-ms 0
	assert_equal "$output" "[]"
	consumed=$(jq -s 'map(.consumed)|add' "$BATS_TEST_TMPDIR"/cut-12?)
	assert_equal $(( $(counter $PIN_Y REPLAYED) - rep_before )) "$consumed"
	assert_equal $(( $(counter $PIN_Y BUFFERED) - buf_before )) "$consumed"
}

@test "ring sizes per MUD: a 16 KiB ring overflows for one MUD, flagged and counted for it only; the other's default ring replays whole" {
	ap_y del $MUD_IP
	ap_y del $MUD2_IP
	run -1 ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 122 --ring-bytes 10000
	assert_output --partial 'Invalid replay buffer size 10000'
	ap_y set $MUD_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 122 --ring-bytes 16384
	ap_y set $MUD2_IP --mode fwd-buf --backend $CTX_IP:$VPORT --mud-id 123
	run -0 ap_y show --json
	assert_equal "$(echo "$output" | jq -c '.[]|select(.mud_id==122)|[.ring,.ring_bytes]')" '[true,16384]'
	assert_equal "$(echo "$output" | jq -c '.[]|select(.mud_id==123)|[.ring,.ring_bytes]')" "[true,$((16 << 20))]"
	full_before=$(counter $PIN_Y RING_FULL)
	mud 122 300 & p1=$!
	mud2 123 300 & p2=$!
	wait "$p1"
	wait "$p2"
	# 16 KiB hold 10 records of 1512 bytes: 290 lost for that MUD, none for the other.
	run -0 ap_y show --json
	assert_equal "$(echo "$output" | jq -c '.[]|select(.mud_id==122)|[.overflow,.buffered,.lost_buf,.ring_used]')" \
		'[true,10,290,15120]'
	assert_equal "$(echo "$output" | jq -c '.[]|select(.mud_id==123)|[.overflow,.buffered,.lost_buf]')" '[false,300,0]'
	assert_equal $(( $(counter $PIN_Y RING_FULL) - full_before )) 290
	run -0 ap_y cutover $MUD2_IP --to $CTY_IP:$VPORT --json
	cut=$output
	echo "$cut"
	assert_equal "$(echo "$cut" | jq -c '[.ok,.replayed,.verified,.first_seq,.last_seq]')" '[true,300,300,0,299]'
	assert_equal "$(ydigest 123)" "$(jq -c '[299,300,.final_digest]' "$BATS_TEST_TMPDIR/mud-123.json")"
	run -1 ap_y cutover $MUD_IP --to $CTY_IP:$VPORT
	assert_output --partial 'lost requests from the replay buffer'
	run -0 ap_y show --json
	assert_equal "$(echo "$output" | jq -c '.[]|select(.mud_id==122)|[.mode,.ring_bytes,.overflow]')" '["fwd-buf",16384,true]'
	assert_equal "$(echo "$output" | jq -c '.[]|select(.mud_id==123)|[.mode,.ring,.overflow]')" '["local",false,false]'
	ap_y del $MUD_IP
	ap_y del $MUD2_IP
}

@test "the other hook: AP-y reloaded at XDP (then TC) forwards and returns the same way, same counters, entries kept" {
	other=xdp
	[ "${EH_ATTACH:-auto}" = xdp ] && other=tc
	ap_y set $MUD_IP --mode forward --backend $CTX_IP:$VPORT --mud-id 130
	# AP-y's XDP_REDIRECT into its WAN veth needs NAPI on the peer: AP-x at
	# TC has no XDP there, GRO provides it (docs/dataplane.md).
	ip netns exec ehd-apx ethtool -K wan0 gro on >/dev/null
	start=0 digest=
	for hook in $other "${EH_ATTACH:-auto}"; do
		run -0 ap_y load --radio radio0 --wan wan0 --vip $VIP:$VPORT --fast-return on --attach $hook
		run -0 ap_y stats --json
		want=$hook; [ "$hook" = auto ] && want=tc
		assert_equal "$(echo "$output" | jq -r '.hook.radio + " " + .hook.wan')" "$want $want"
		fwd_before=$(counter $PIN_Y FORWARD)
		ret_before=$(counter $PIN_Y RET_FAST)
		run -0 mud 130 300 --start-seq $start ${digest:+--initial-digest $digest}
		digest=$(mudj 130 .final_digest)
		start=$((start + 300))
		assert_equal "$(mudj 130 '[.answered,.lost,.mismatches]|join(",")')" 300,0,0
		assert_equal "$(mudj 130 '.servers|join(",")')" ct-x
		assert [ $(( $(counter $PIN_Y FORWARD) - fwd_before )) -ge 290 ]
		assert [ $(( $(counter $PIN_Y RET_FAST) - ret_before )) -ge 290 ]
	done
	run -0 ap_y show --json
	assert_equal "$(echo "$output" | jq -r '.[]|select(.mud_id==130)|.mode')" forward
}

@test "two instances share AP-y's WAN, one at TC and one at XDP: unloading the other takes none of AP-y's filters; AP-y still forwards and returns fast" {
	run -0 ap_y stats --json
	ywan=$(echo "$output" | jq -r .hook.wan)
	other=xdp
	[ "$ywan" = xdp ] && other=tc
	before=$(hooks ehd-apy radio0 wan0)
	rm -rf /sys/fs/bpf/ehd-other	# a stale one from an aborted run
	# Another instance (its own pins, VIP, radio) on AP-y's WAN at the hook
	# AP-y does not use there: the two do not collide, so the load succeeds.
	run -0 in_ns ehd-apy "$BIN/edgehop-ap" --pin /sys/fs/bpf/ehd-other load \
		--radio spf0 --wan wan0 --vip 10.91.255.2:$VPORT --attach $other
	run -0 hooks ehd-apy wan0
	assert_output --partial 'name eh_xdp_wan'
	assert_output --partial 'name eh_tc_wan'
	run -0 in_ns ehd-apy "$BIN/edgehop-ap" --pin /sys/fs/bpf/ehd-other unload --radio spf0 --wan wan0
	unload_out=$output
	assert_equal "$(hooks ehd-apy radio0 wan0)" "$before"
	if [ "$ywan" = tc ]; then
		# AP-y's filter at the shared handle is named, with its owner.
		run echo "$unload_out"
		assert_output --regexp "left eh_tc_wan \(program id [0-9]+\) at TC ingress of wan0: another instance's: its (program|map) is pinned at $PIN_Y/"
	fi
	run -0 hooks ehd-apy spf0
	refute_output --partial 'name eh_'
	assert [ ! -e /sys/fs/bpf/ehd-other ]
	# AP-y's programs run as before: requests forwarded in the kernel, the
	# answers returned WAN -> radio by its WAN program (without it they
	# would take the kernel's path and the radio egress: tx_rewritten).
	ap_y set $MUD_IP --mode forward --backend $CTX_IP:$VPORT --mud-id 132
	fwd_before=$(counter $PIN_Y FORWARD)
	ret_before=$(counter $PIN_Y RET_FAST)
	run -0 mud 132 300
	assert_equal "$(mudj 132 '[.answered,.lost,.mismatches,.foreign]|join(",")')" 300,0,0,0
	assert_equal "$(mudj 132 '.servers|join(",")')" ct-x
	assert [ $(( $(counter $PIN_Y FORWARD) - fwd_before )) -ge 290 ]
	assert [ $(( $(counter $PIN_Y RET_FAST) - ret_before )) -ge 290 ]
	ap_y del $MUD_IP
}

# The shared-interface test's own namespace and pins, also after a failed run.
cleanup_shared() {
	if [ -e /run/netns/ehd-sh ]; then
		for p in a b none; do
			nsenter --net=/run/netns/ehd-sh "$BIN/edgehop-ap" --pin /sys/fs/bpf/ehd-sh-$p \
				unload --radio r0 --wan w0 >/dev/null 2>&1
		done
		ip netns del ehd-sh
	fi
	rm -rf /sys/fs/bpf/ehd-sh-a /sys/fs/bpf/ehd-sh-b /sys/fs/bpf/ehd-sh-none
}

@test "unload takes only its own TC filters: not another instance's on a shared interface, nor the clsact they sit on; a crashed instance's (pins gone) still" {
	cleanup_shared
	ip netns add ehd-sh
	for p in r0 r2 w0; do ip -n ehd-sh link add $p type veth peer name ${p}p; done
	for d in r0 r0p r2 r2p w0 w0p; do ip -n ehd-sh link set $d up; done
	sh_ap() { local p=$1; shift; timeout 60 nsenter --net=/run/netns/ehd-sh "$BIN/edgehop-ap" --pin /sys/fs/bpf/ehd-sh-$p "$@"; }
	filters() { local d; for d in "$@"; do ip netns exec ehd-sh tc filter show dev ${d% *} ${d#* }; done; }
	# A at TC on r0/w0, B at XDP on r2 and the same WAN w0.
	run -0 sh_ap a load --radio r0 --wan w0 --vip 10.92.0.1:7777 --attach tc
	run -0 sh_ap b load --radio r2 --wan w0 --vip 10.92.0.2:7777 --attach xdp
	a_tc=$(filters 'r0 ingress' 'r0 egress' 'w0 ingress')
	assert_equal "$(grep -c 'handle 0xe4 eh_tc' <<<"$a_tc")" 3
	# B's unload leaves A's filter on w0 and says whose it is.
	run -0 sh_ap b unload --radio r2 --wan w0
	assert_equal "$(filters 'r0 ingress' 'r0 egress' 'w0 ingress')" "$a_tc"
	assert_output --partial "left eh_tc_wan"
	assert_output --partial "pinned at /sys/fs/bpf/ehd-sh-a/"
	run -0 ip -n ehd-sh link show w0
	refute_output --partial 'prog/xdp'
	# A moves to XDP (its filter on w0 goes, the clsact it created stays),
	# B attaches at TC on that clsact. A's unload must not destroy it.
	run -0 sh_ap a load --radio r0 --wan w0 --vip 10.92.0.1:7777 --attach xdp
	run -0 sh_ap b load --radio r2 --wan w0 --vip 10.92.0.2:7777 --attach tc
	b_tc=$(filters 'r2 ingress' 'r2 egress' 'w0 ingress')
	assert_equal "$(grep -c 'handle 0xe4 eh_tc' <<<"$b_tc")" 3
	run -0 sh_ap a unload --radio r0 --wan w0
	assert_equal "$(filters 'r2 ingress' 'r2 egress' 'w0 ingress')" "$b_tc"
	assert_output --partial "left the clsact qdisc on w0 (created by this instance): 1 other filter is on it"
	run -0 ip netns exec ehd-sh tc qdisc show dev r0
	refute_output --partial clsact
	# B crashes and its pins are removed: its filters stay on the interfaces.
	rm -rf /sys/fs/bpf/ehd-sh-b
	assert_equal "$(filters 'r2 ingress' 'r2 egress' 'w0 ingress')" "$b_tc"
	# A live instance again on r0 (its pins in place). An unload whose pins
	# do not exist, naming A's interfaces, takes nothing of A's...
	run -0 sh_ap a load --radio r0 --wan w0p --vip 10.92.0.1:7777 --attach tc
	a_tc=$(filters 'r0 ingress' 'r0 egress' 'w0p ingress')
	run -0 sh_ap none unload --radio r0 --wan w0p
	assert_equal "$(filters 'r0 ingress' 'r0 egress' 'w0p ingress')" "$a_tc"
	assert_equal "$(grep -c "another instance's: its .* is pinned at /sys/fs/bpf/ehd-sh-a/" <<<"$output")" 3
	# ... while the crashed B's filters, pinned nowhere, go.
	run -0 sh_ap b unload --radio r2 --wan w0
	assert_equal "$(grep -c 'pinned nowhere' <<<"$output")" 3
	assert_equal "$(filters 'r2 ingress' 'r2 egress' 'w0 ingress')" ""
	assert_equal "$(filters 'r0 ingress' 'r0 egress' 'w0p ingress')" "$a_tc"
	run -0 sh_ap a unload --radio r0 --wan w0p
	assert_equal "$(filters 'r0 ingress' 'r0 egress' 'w0p ingress')" ""
	ip netns del ehd-sh
	assert [ ! -e /sys/fs/bpf/ehd-sh-a ]
}
