# Shell helpers the benchmark scripts share (tests/bench/run, tests/bench/run-vm); sourced.

# slurp FILE FILTER: FILTER over all of FILE's JSON values (jq -s), or null
# when FILE is missing or empty. Not "jq -s ... FILE || echo null": on a
# missing file jq 1.6 prints null *and* fails, which gives two values.
slurp() {
	if [ -s "$1" ]; then jq -s "$2" "$1"; else echo null; fi
}
