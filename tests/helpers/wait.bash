# wait_for SECONDS CMD...: poll CMD (output discarded) until it succeeds; on
# the deadline say what was not true and return 1. Every WAIT_FOR_POLL
# seconds (default 0.05; the VM suites poll over ssh every second). The one
# definition for every suite and script (tests/helpers/ehs-common.bash,
# tests/dataplane_helper.bash, tests/vm/helpers.bash source it).
wait_for() {
	local secs=$1 deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			echo "wait_for: not true after ${secs}s: $*" >&2
			return 1
		fi
		sleep "${WAIT_FOR_POLL:-0.05}"
	done
}
