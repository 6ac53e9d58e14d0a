# Link and network-namespace teardown that is correct whatever the kernel's
# timing (sourced, bash; no side effects). Used by vm/testbed, vm/vagrant/testbed,
# tests/dataplane_helper.bash, tests/helpers/ehs-common.bash, tests/bench/run and
# tested by tests/05-teardown.bats.
#
# Why: deleting a network namespace returns at once; the kernel removes the
# namespace's devices later, in a work queue, and with each veth its peer in the
# namespace that survives. So "ip link show X && ip link del X" can see X and
# then fail to delete it ("Cannot find device", or ENODEV "No such device" when
# it vanishes between ip's name lookup and its delete by index), and "X is gone" cannot be read
# from "its namespace is deleted". Here: a device or namespace that is already
# gone counts as deleted (only that error), and whoever needs it gone waits for
# it, with a deadline.
#
#   links_del [-n NS] DEV...          delete links; a device gone is success,
#                                     any other error is reported and fails (after
#                                     trying every DEV)
#   links_wait_gone [-n NS] SECS DEV...  poll until no DEV exists; fails naming the ones left
#   links_down [-n NS] DEV...         both: delete, then wait (NETDEV_DEADLINE s, default 10)
#   netns_kill SECS NS...             SIGTERM to every process in NS (but timeout(1)s), wait SECS,
#                                     SIGKILL, wait
#   netns_del NS...                   delete namespaces; one already gone is success

NETDEV_DEADLINE=${NETDEV_DEADLINE:-10}

links_del() {
	local ns=() dev err rc=0
	if [ "${1:-}" = -n ]; then ns=(-n "$2"); shift 2; fi
	for dev in "$@"; do
		err=$(ip "${ns[@]}" link del "$dev" 2>&1) && continue
		case $err in
		# gone already (its namespace's cleanup, say): before ip looked its
		# name up ("Cannot find device"), or between that lookup and the
		# delete by index (ENODEV, "No such device")
		*"Cannot find device"* | *"No such device"*) ;;
		*) echo "links_del: $dev${ns[1]:+ (netns ${ns[1]})}: $err" >&2; rc=1 ;;
		esac
	done
	return $rc
}

links_wait_gone() {
	local ns=() secs dev left t_end
	if [ "${1:-}" = -n ]; then ns=(-n "$2"); shift 2; fi
	secs=$1; shift
	t_end=$((SECONDS + secs))
	while :; do
		left=()
		for dev in "$@"; do
			ip "${ns[@]}" link show "$dev" >/dev/null 2>&1 && left+=("$dev")
		done
		[ ${#left[@]} -eq 0 ] && return 0
		if [ $SECONDS -ge $t_end ]; then
			echo "links_wait_gone: still there after ${secs}s${ns[1]:+ (netns ${ns[1]})}: ${left[*]}" >&2
			return 1
		fi
		sleep 0.05
	done
}

links_down() {
	local ns=() rc=0
	if [ "${1:-}" = -n ]; then ns=(-n "$2"); shift 2; fi
	links_del "${ns[@]}" "$@" || rc=1
	links_wait_gone "${ns[@]}" "$NETDEV_DEADLINE" "$@" || rc=1
	return $rc
}

netns_kill() {
	local secs=$1 ns p pids=() t_end; shift
	for ns in "$@"; do
		[ -e "/run/netns/$ns" ] || continue
		for p in $(ip netns pids "$ns" 2>/dev/null); do pids+=("$p"); done
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	# Not to a timeout(1): it exits with its program, and it would follow the
	# SIGTERM with a SIGCONT to its group, which leaves a program stopped for
	# its leak check (make SAN=1: LeakSanitizer) waiting for good.
	for p in "${pids[@]}"; do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = timeout ] || kill -TERM "$p" 2>/dev/null || true
	done
	t_end=$((SECONDS + secs))
	for p in "${pids[@]}"; do
		while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $t_end ]; do sleep 0.05; done
	done
	kill -KILL "${pids[@]}" 2>/dev/null || true
	# a SIGKILLed process is gone within moments (not waiting on a zombie: not ours)
	for p in "${pids[@]}"; do
		t_end=$((SECONDS + 5))
		while [ -d "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] \
			&& [ $SECONDS -lt $t_end ]; do sleep 0.05; done
	done
	return 0
}

netns_del() {
	local ns err rc=0
	for ns in "$@"; do
		err=$(ip netns del "$ns" 2>&1) && continue
		case $err in
		*"No such file or directory"*) ;;	# gone already
		*) echo "netns_del: $ns: $err" >&2; rc=1 ;;
		esac
	done
	return $rc
}
