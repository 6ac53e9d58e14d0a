# bats helpers for the VM tier (load with: load helpers).
#
#   testbed_setup_file [NODE...]   bring the testbed up once per suite (vm/testbed up)
#   testbed_teardown_file          bring it down (keep it with EH_TESTBED_KEEP=1)
#   on NODE CMD...                 run a shell command on a node (with a timeout)
#   copy SRC DST                   copy a file/folder; NODE:PATH on one side
#   wait_for SECS CMD...           poll CMD until it succeeds or the deadline passes
#   collect_logs [NAME]            consoles, journals, dmesg, docker state -> build/test-logs/vm/
#   needs_bin NAME...              fail (never skip: CI counts skips as failures) without build/bin/NAME
#
# Per test, teardown() collects the nodes' logs when the test failed, then runs
# the suite's test_cleanup if it defines one.

bats_require_minimum_version 1.5.0

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The testbed behind the suites: the qemu launcher, or the same nodes through Vagrant.
case ${EDGEHOP_TESTBED:-qemu} in
qemu)	 TESTBED=$TOP/vm/testbed ;;
vagrant) TESTBED=$TOP/vm/vagrant/testbed ;;
*)	 echo "EDGEHOP_TESTBED must be qemu or vagrant, not '$EDGEHOP_TESTBED'" >&2; exit 1 ;;
esac
# shellcheck source=vm/testbed.conf
source "$TOP/vm/testbed.conf"
SHARE=$GUEST_SHARE
BIN=$SHARE/build/bin

on() {
	local n=$1; shift
	timeout "${ON_TIMEOUT:-180}" "$TESTBED" ssh "$n" "$@"
}

copy() { timeout "${ON_TIMEOUT:-180}" "$TESTBED" cp "$1" "$2"; }

# shellcheck source=tests/helpers/wait.bash
source "$TOP/tests/helpers/wait.bash"
WAIT_FOR_POLL=1		# each poll is an ssh round trip

collect_logs() {
	local dir=$TOP/build/test-logs/vm/${1:-$(basename "$BATS_TEST_FILENAME" .bats)}-$(date +%H%M%S)
	"$TESTBED" logs "$dir" >/dev/null 2>&1 || true
	echo "# logs of the nodes: $dir" >&3
}

needs_bin() {
	local b
	for b in "$@"; do
		[ -x "$TOP/build/bin/$b" ] || { echo "build/bin/$b missing: run make" >&2; return 1; }
	done
}

testbed_setup_file() {
	[ "$(id -u)" -eq 0 ] || { echo "the VM tier needs root" >&2; return 1; }
	local t0=$SECONDS
	if ! "$TESTBED" up "$@" >"$BATS_FILE_TMPDIR/up.log" 2>&1; then
		cat "$BATS_FILE_TMPDIR/up.log" >&3
		return 1
	fi
	echo "# testbed up in $((SECONDS - t0)) s ($("$TESTBED" accel))" >&3
}

# nodes_prepare NODE...: the service image on each node, and no container of
# an earlier run's MUDs (node disks outlive the testbed: they would be counted
# as left behind).
nodes_prepare() {
	local n
	for n in "$@"; do
		on "$n" "$SHARE/control/image/svc-image.sh small" >&3 2>&1
		on "$n" "docker ps -aq --filter label=edgehop.mud | xargs -r docker rm -f" >/dev/null
	done
}

testbed_teardown_file() {
	[ "${EH_TESTBED_KEEP:-0}" = 1 ] && return 0
	"$TESTBED" down >/dev/null 2>&1 || true
}

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || collect_logs "$(basename "$BATS_TEST_FILENAME" .bats)-$BATS_TEST_NUMBER"
	# A suite's own per-test cleanup (what a test set up on the host), pass or fail.
	if declare -F test_cleanup >/dev/null; then test_cleanup; fi
}
