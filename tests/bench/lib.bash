# Shell helpers the benchmark scripts share (tests/bench/run, tests/bench/run-vm); sourced.

# slurp FILE FILTER: FILTER over all of FILE's JSON values (jq -s), or null
# when FILE is missing or empty. Not "jq -s ... FILE || echo null": on a
# missing file jq 1.6 prints null *and* fails, which gives two values.
slurp() {
	if [ -s "$1" ]; then jq -s "$2" "$1"; else echo null; fi
}

# --- the dataplane benchmark's runs ----------------------------------------------
# bench_rounds KIND ARGS...: REPEATS rounds over VARIANTS, the variants
# interleaved so that drift hits them alike; each run is the script's
# "variant_up V; blast V KIND ROUND ARGS...; variant_down V".
# shellcheck disable=SC2153 # REPEATS, VARIANTS: the script's knobs
bench_rounds() {
	local kind=$1 rep v
	shift
	for rep in $(seq 1 "$REPEATS"); do
		for v in $VARIANTS; do
			variant_up "$v"
			blast "$v" "$kind" "$rep" "$@"
			variant_down "$v"
		done
	done
}

# --- the dataplane report ---------------------------------------------------------
# A run's raw results, RUNS: one JSON line per measurement, eh-blast's report
# plus {variant, kind: sat|lat|prof, rep} and whatever the script adds (CPU use).
# The saturation runs are "sat", the latency runs "lat"; "prof" runs (PROFILE=1)
# count in a variant's runs and lost, in no median.

# jq definitions of the report.
# median(f): the median of f over the input array, nulls left out (of an even
# count, the lower of the two middle ones); null when there is none.
# bench_ratios($v; $relay_only): per edgehop variant (xdp, tc) present in the
# variants object $v, its rates and latencies over the relay's and its rate
# over routing's, those of the two that ran; with $relay_only, none at all
# (null) when the relay did not run.
# shellcheck disable=SC2016 # jq's, not the shell's
BENCH_JQ='
def median(f): [.[] | f | select(. != null)] | sort
	| if length == 0 then null else .[(length - 1) / 2 | floor] end;
def bench_ratios($v; $relay_only):
	[("xdp", "tc") as $h | select($v[$h] and ($v.relay or ($relay_only | not))) |
	 {($h): ((if $v.relay then {rate_over_relay: ($v[$h].sat_rps / $v.relay.sat_rps),
	                            p50_over_relay: ($v[$h].lat_p50_us / $v.relay.lat_p50_us),
	                            p99_over_relay: ($v[$h].lat_p99_us / $v.relay.lat_p99_us)}
	          else {} end) +
	         (if $v.route then {rate_over_route: ($v[$h].sat_rps / $v.route.sat_rps)} else {} end))}]
	| add;
'

# bench_median RUNS VARIANT KIND PATH: the median of the jq PATH (.rps,
# .cpu.host.host_busy_pct, ...) over VARIANT's KIND runs.
bench_median() {
	jq -s --arg v "$2" --arg k "$3" \
		"$BENCH_JQ map(select(.variant == \$v and .kind == \$k)) | median($4)" "$1"
}

# bench_variants RUNS VARIANTS [EXTRA]: the report's "variants" object, one
# entry per variant of the list VARIANTS: the medians of the saturation rate
# and latencies and of the latency runs' latencies, then the fields of the jq
# object EXTRA (a script's own: in it, $s is the object so far, med(KIND; PATH)
# a median over the variant's runs), the requests lost over all its runs, and
# its runs. null when VARIANTS is empty.
bench_variants() {
	local runs=$1 variants=$2 extra=${3:-'{}'}
	# shellcheck disable=SC2086 # VARIANTS is a list
	jq -n --slurpfile runs "$runs" "$BENCH_JQ
		[\$ARGS.positional[] as \$v |
		 (\$runs | map(select(.variant == \$v))) as \$mine |
		 def med(\$k; f): \$mine | map(select(.kind == \$k)) | median(f);
		 {sat_rps: med(\"sat\"; .rps), sat_p50_us: med(\"sat\"; .p50_us),
		  sat_p99_us: med(\"sat\"; .p99_us), lat_p50_us: med(\"lat\"; .p50_us),
		  lat_p99_us: med(\"lat\"; .p99_us), lat_p999_us: med(\"lat\"; .p999_us)} as \$s |
		 {(\$v): (\$s + ($extra) + {lost: (\$mine | map(.lost) | add), runs: \$mine})}]
		| add" --args $variants
}

# bench_json DIR HEAD VARIANTS RELAY_ONLY [EXTRA]: the report's JSON: the
# object HEAD (the script's: when, where, the parameters), the variants object
# VARIANTS and their ratios (bench_ratios, RELAY_ONLY true or false), the
# fields of the jq object EXTRA (over $v, the variants), then the last
# edgehop-ap stats of the xdp and the tc runs (DIR/xdp-stats.json,
# DIR/tc-stats.json) and the BPF programs' run times (DIR/progs.jsonl), each
# null when missing.
bench_json() {
	local dir=$1 head=$2 variants=$3 relay_only=$4 extra=${5:-'{}'}
	jq -n --argjson head "$head" --argjson v "$variants" --argjson relay_only "$relay_only" \
		--argjson xc "$(slurp "$dir/xdp-stats.json" 'last')" \
		--argjson tcc "$(slurp "$dir/tc-stats.json" 'last')" \
		--argjson progs "$(slurp "$dir/progs.jsonl" 'if length == 0 then null else . end')" \
		"$BENCH_JQ \$head + {variants: \$v, ratios: bench_ratios(\$v; \$relay_only)} + ($extra) +
		 {xdp_counters_last_run: \$xc, tc_counters_last_run: \$tcc, bpf_programs: \$progs}"
}

# bench_table JSON VARIANTS ROW FORMAT: the table's lines, one per variant of
# VARIANTS: the jq array ROW over the report's .variants[$v] (up to 16 fields),
# printed by awk's printf with FORMAT.
bench_table() {
	local v
	for v in $2; do
		jq -r --arg v "$v" ".variants[\$v] | $3 | @tsv" "$1" |
			awk -F'\t' -v fmt="$4" '{ printf fmt, $1, $2, $3, $4, $5, $6, $7, $8,
				$9, $10, $11, $12, $13, $14, $15, $16 }'
	done
}

# bench_programs JSON: a line per BPF program measured (PROFILE=1).
bench_programs() {
	jq -r '.bpf_programs // [] | .[] | "program \(.variant) \(.prog): \(.ns_per_run) ns/run (\(.runs) runs)"' "$1"
}
