# shellcheck shell=bash
# compress.bash — the compression of the page stream (issue 13), measured (source after
# mig.bash, and apps.bash for the applications).
#
# Diskless migrations over the link, each with 'compress pages' yes and no (a ferry.conf.d
# drop-in, both nodes), interleaved:
#   compress_synthetic FILL MB Z REP   the synthetic workload, FILL random (the migrate suite's
#                                      memory: nothing compresses) or compressible (stateful
#                                      --compressible: 7 words in 8 predictable, ~5x under zstd)
#   compress_app APP SIZE Z REP        a real application (bench/lib/apps.bash) migrated once at
#                                      its peak memory; its result must be the same either way
# Each emits to suite "compress" the migration's report (pages_bytes: the pages the source's
# relay sent; pages_sent: what they took on the wire) plus what was measured: fill or app,
# compress, mb or size, rep.

COMPRESS_DROPIN=/etc/ferry/ferry.conf.d/50-ferry-bench-compress.conf

compress_set() { printf '# bench/lib/compress.bash\ncompress pages = %s\n' "$1" >"$COMPRESS_DROPIN"; }
compress_cleanup() { rm -f "$COMPRESS_DROPIN"; }

compress_synthetic() {
	local fill=$1 mb=$2 z=$3 rep=$4 run out verified=0
	compress_set "$z"
	SYNTH_ARGS=$([ "$fill" = compressible ] && echo --compressible) synth_start "$SRC" "$mb"
	run=$(run_id "$PROG")
	out=$(mig_measure diskless "$SRC") || {
		synth_stop
		compress_cleanup
		return 1
	}
	wait_steps "$PROG" 3 60 "$run" && verified=1
	synth_stop
	compress_cleanup
	[ $verified = 1 ] || die "the workload did not check out after a diskless migration (compress $z)"
	echo "$out" | jq -c --arg fill "$fill" --arg z "$z" --argjson mb "$mb" --argjson rep "$rep" \
		--arg link "$LINK" --arg run "${BENCH_RUN_ID:-adhoc}" \
		'. + {suite: "compress", workload: "synthetic", fill: $fill, compress: $z, mb: $mb, rep: $rep,
		      link: $link, run: $run}' >>"$RAW/compress.jsonl"
}

compress_app() {
	local app=$1 size=$2 z=$3 rep=$4
	compress_set "$z"
	APP_SUITE=compress APP_EXTRA="{\"compress\": \"$z\"}" app_measure "$app" "$size" diskless "$rep" ||
		{
			compress_cleanup
			return 1
		}
	compress_cleanup
}

# compress_table [RAW]: the table of bench/REPORT.md's section on compression, from RAW's
# compress.jsonl and floor.jsonl (the link rate B): medians over the repetitions.
compress_table() {
	local raw=${1:-$RAW}
	jq -rs --slurpfile floor "$raw/floor.jsonl" '
		def med: sort | if length == 0 then null elif length % 2 == 1 then .[(length - 1) / 2]
			else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		def r2: (. * 100 | round) / 100;
		($floor | map(select(.what == "link")) | map(.bytes_per_s) | med) as $B
		| "| workload | compress | pages MiB | sent MiB | ratio | dump (the pages\u0027 transfer) s | total s | S/B s | total / (S/B) | total / total without |",
		  "|---|---|---|---|---|---|---|---|---|---|",
		  (group_by(.workload + "/" + (.fill // .app) + "/" + ((.mb // .size) | tostring))[]
		   | (group_by(.compress) | map({(.[0].compress): {pb: (map(.pages_bytes) | med), ps: (map(.pages_sent) | med),
		        dp: (map(.dump_ms) | med), tot: (map(.total_ms) | med), n: length}}) | add) as $m
		   | (if .[0].workload == "synthetic" then "synthetic \(.[0].fill) \(.[0].mb) MiB" else "\(.[0].app) \(.[0].size)" end) as $w
		   | ("yes", "no") as $z | select($m[$z])
		   | $m[$z] as $x
		   | "| \($w) | \($z) | \($x.pb / 1048576 | r2) | \($x.ps / 1048576 | r2) | \($x.pb / $x.ps | r2) | \($x.dp / 1000 | r2) | \($x.tot / 1000 | r2) | \($x.pb / $B | r2) | \($x.tot / 1000 / ($x.pb / $B) | r2) | \(if $m.no then ($x.tot / $m.no.tot | r2 | tostring) else "–" end) |")
	' "$raw/compress.jsonl"
}
