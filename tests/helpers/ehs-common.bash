# Helpers for the service / MUD / logrepo namespace suites (tests/2*-*.bats).
# Namespaces are named ehs-<suite>-<pid> so that parallel runs never collide.

EHS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# EDGEHOP_BUILD: the build tree whose programs the suites run (default build/;
# tests/run-all san sets build-san/, the make SAN=1 tree).
EHS_BUILD=${EDGEHOP_BUILD:-$EHS_TOP/build}
EHS_BIN=$EHS_BUILD/bin
# shellcheck source=scripts/netdev.sh
source "$EHS_TOP/scripts/netdev.sh"

# shellcheck source=tests/helpers/wait.bash
source "$EHS_TOP/tests/helpers/wait.bash"

# ehs_sanitized: the programs under test are a make SAN=1 build (ASan).
ehs_sanitized() {
	ldd "$EHS_BIN/edgehop-svcctl" 2>/dev/null | grep -q libasan
}

# mem_limited <KiB> <command...>: the command with that much memory at most:
# ulimit -v, or for ASan, which reserves terabytes of address space at start,
# its hard_rss_limit_mb (passing it is a report and an abort).
mem_limited() {
	local kb=$1; shift
	if ehs_sanitized; then
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}hard_rss_limit_mb=$((kb / 1024)) "$@"
	else
		(ulimit -v "$kb" && exec "$@")
	fi
}

# ehs_term <pid>: SIGTERM to the program started as `timeout N program` (pid:
# the timeout, or an `ip netns exec` that became it), not to timeout itself:
# timeout follows the SIGTERM with a SIGCONT to its process group, and a SIGCONT
# that lands while LeakSanitizer stops the exiting program for its leak check
# (the san tier, make SAN=1) leaves the program waiting for good. Without a
# timeout in between, the pid itself. ehs_signal <SIG> <pid>: another signal,
# to the same program.
ehs_signal() {
	local s=$1 p=$2 c
	while [ "$(cat "/proc/$p/comm" 2>/dev/null)" = timeout ] && c=$(pgrep -P "$p" | head -1) &&
		[ -n "$c" ]; do
		p=$c
	done
	kill "-$s" "$p" 2>/dev/null
}

ehs_term() {
	ehs_signal TERM "$1"
}

# ehs_pair <nsA> <nsB> <ipA> <ipB> [ifA ifB]: two namespaces joined by a veth
# pair, addresses in 10.x/24, loopbacks up.
ehs_pair() {
	local a=$1 b=$2 ipa=$3 ipb=$4 ifa=${5:-veth0} ifb=${6:-veth0}
	ip netns list | grep -qw "$a" || ip netns add "$a"
	ip netns list | grep -qw "$b" || ip netns add "$b"
	local tmp=eh$$$RANDOM
	ip link add "${tmp}a" netns "$a" type veth peer name "${tmp}b" netns "$b"
	ip -n "$a" link set "${tmp}a" name "$ifa"
	ip -n "$b" link set "${tmp}b" name "$ifb"
	ip -n "$a" addr add "$ipa/24" dev "$ifa"
	ip -n "$b" addr add "$ipb/24" dev "$ifb"
	ip -n "$a" link set lo up; ip -n "$a" link set "$ifa" up
	ip -n "$b" link set lo up; ip -n "$b" link set "$ifb" up
}

# ehs_del_ns <ns>...: stop what runs there (and wait for it), delete the namespaces.
ehs_del_ns() {
	netns_kill 5 "$@"
	netns_del "$@" || true
	return 0
}

# svc_status_field <ns> <addr:port> <jq filter>
svc_status() {
	timeout 5 ip netns exec "$1" "$EHS_BIN/edgehop-svcctl" status "$2" --json
}
