#!/usr/bin/env bats
# tests/run-all itself, on fake test programs (a fake unit tier in a temporary
# folder, no install, no build): the closing line, skips under CI, a suite that
# hangs (stopped at its deadline, named, the run goes on), results beyond the
# plan, a producer that dies early; the san tier's sanitizer reports from a
# process no test waited for.

bats_require_minimum_version 1.5.0

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
	TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	FAKE=$BATS_TEST_TMPDIR/tests
	mkdir -p "$FAKE"
	export EH_TESTS_BUILD=$FAKE EH_TEST_LOGS=$BATS_TEST_TMPDIR/logs EH_RUN_ALL_NO_BUILD=1
	unset SUITE_TIMEOUT SUITE_TIMEOUT_UNIT SUITE_KILL_AFTER
}

# fake NAME BODY: a unit-tier test program (shell) printing TAP.
fake() {
	printf '#!/bin/sh\n%s\n' "$2" >"$FAKE/unit_$1"
	chmod +x "$FAKE/unit_$1"
}

run_all() { run "$TOP/tests/run-all" unit; }
last_line() { printf '%s\n' "$output" | tail -1; }

@test "run-all: passes and failures add up over suites; the closing line is exactly 'N passed, N failed'" {
	fake a 'echo 1..2; echo "ok 1 x"; echo "ok 2 y"'
	fake b 'echo 1..2; echo "ok 1 x"; echo "not ok 2 y"; exit 1'
	CI=true run_all
	assert_equal "$status" 1
	assert_equal "$(last_line)" "3 passed, 1 failed"
	fake b 'echo 1..1; echo "ok 1 x"'
	CI=true run_all
	assert_equal "$status" 0
	assert_equal "$(last_line)" "3 passed, 0 failed"
}

@test "run-all: a skip is a failure under CI=true, a skip otherwise" {
	fake a 'echo 1..2; echo "ok 1 x"; echo "ok 2 y # skip no thing"'
	CI=true run_all
	assert_equal "$(last_line)" "1 passed, 1 failed"
	CI= run_all
	assert_equal "$(last_line)" "1 passed, 0 failed, 1 skipped"
}

@test "run-all: a hung suite is stopped at its deadline, named, counts as failed, and the next suite runs" {
	# a hang in a child process too (the whole process group is stopped)
	fake a 'echo 1..2; echo "ok 1 x"; sh -c "sleep 300"; echo "ok 2 y"'
	fake b 'echo 1..1; echo "ok 1 z"'
	t0=$SECONDS
	CI=true SUITE_TIMEOUT_UNIT=2 run_all
	assert [ $((SECONDS - t0)) -lt 30 ]
	assert_equal "$status" 1
	assert_output --partial '# unit_a: TIMED OUT after 2s'
	assert_output --partial '## unit_b'
	assert_equal "$(last_line)" "2 passed, 1 failed"
	run ! pgrep -f 'sh -c sleep 300'
	# SUITE_TIMEOUT overrides every tier's deadline; one that ignores SIGTERM is killed
	fake a 'trap "" TERM; echo 1..1; while :; do sleep 1; done'
	t0=$SECONDS
	CI=true SUITE_TIMEOUT=1 SUITE_KILL_AFTER=1 run_all
	assert [ $((SECONDS - t0)) -lt 30 ]
	assert_output --partial '# unit_a: TIMED OUT after 1s'
	assert_equal "$(last_line)" "1 passed, 1 failed"
}

@test "run-all: results beyond the plan count as failures; missing results and a missing plan too" {
	fake a 'echo 1..1; echo "ok 1 x"; echo "ok 2 y"; echo "ok 3 z"'
	CI=true run_all
	assert_output --partial '# unit_a: 2 result(s) beyond its plan of 1'
	assert_equal "$(last_line)" "3 passed, 2 failed"
	fake a 'echo 1..3; echo "ok 1 x"; exit 0'
	CI=true run_all
	assert_output --partial '# unit_a: only 1 of 3 tests reported'
	assert_equal "$(last_line)" "1 passed, 2 failed"
	fake a 'echo "ok 1 x"'
	CI=true run_all
	assert_output --partial '# unit_a: no plan'
	assert_equal "$(last_line)" "1 passed, 1 failed"
}

@test "run-all san: a background process's sanitizer report fails its suite though every test passed" {
	# A "daemon" built as make SAN=1 builds, leaking, started by a suite that
	# passes and does not wait for it: its report goes to no test's output.
	local san=$BATS_TEST_TMPDIR/build-san
	mkdir -p "$san/tests"
	printf '#include <stdlib.h>\nvoid *volatile keep;\nint main(void) { keep = malloc(64); keep = 0; return 0; }\n' \
		>"$BATS_TEST_TMPDIR/leak.c"
	gcc -O0 -g -fsanitize=address,undefined -o "$BATS_TEST_TMPDIR/leak" "$BATS_TEST_TMPDIR/leak.c"
	printf '#!/bin/sh\n"%s" &\necho 1..1; echo "ok 1 x"; wait\n' "$BATS_TEST_TMPDIR/leak" >"$san/tests/unit_daemon"
	printf '#!/bin/sh\necho 1..1; echo "ok 1 y"\n' >"$san/tests/unit_clean"
	chmod +x "$san/tests/unit_daemon" "$san/tests/unit_clean"
	mkdir -p "$BATS_TEST_TMPDIR/no-ns"
	CI=true EH_SAN_BUILD=$san EH_TESTS_NS=$BATS_TEST_TMPDIR/no-ns run "$TOP/tests/run-all" san
	assert_equal "$status" 1
	assert_output --partial '# san-unit_daemon: 1 sanitizer report(s), counted as one failure'
	assert_output --partial 'ERROR: LeakSanitizer: detected memory leaks'
	refute_output --partial '# san-unit_clean: 1 sanitizer'
	assert_equal "$(last_line)" "2 passed, 1 failed"
	# the reports stay in the logs, under the suite's name; a clean suite leaves none
	run -0 find "$EH_TEST_LOGS/san-reports" -type f
	assert_output --partial "san-reports/san-unit_daemon/asan."
	refute [ -e "$EH_TEST_LOGS/san-reports/san-unit_clean" ]
}
