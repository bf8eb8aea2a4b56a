#!/usr/bin/env bash
# bench/report.sh — turns the raw measurements of bench/run.sh (bench/results/raw/*.jsonl) into
# bench/results/summary.json (medians, min, max, ratios), the plots bench/plots/*.png (gnuplot)
# and the tables of bench/REPORT.md (between its "<!-- tables -->" markers; the prose around
# them is written by hand and kept).
#
# Usage: bench/report.sh [RAW_DIR]        (no root needed; jq and gnuplot)
# REPORT_OUT=DIR puts summary.json, REPORT.md and plots/ in DIR instead (the smoke test does).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
RAW=${1:-$BENCH_DIR/results/raw}
OUT=${REPORT_OUT:-$BENCH_DIR/results}
PLOTS=${REPORT_OUT:+$REPORT_OUT/plots}
PLOTS=${PLOTS:-$BENCH_DIR/plots}
REPORT=${REPORT_OUT:+$REPORT_OUT/REPORT.md}
REPORT=${REPORT:-$BENCH_DIR/REPORT.md}
mkdir -p "$OUT" "$PLOTS"
[ -f "$RAW/run.json" ] || {
	echo "report: no run in $RAW (bench/run.sh makes one)" >&2
	exit 1
}
cat_suite() { cat "$RAW/$1.jsonl" 2>/dev/null || true; }

# ---------------------------------------------------------------- summary.json
# For every group of measurements: median, min and max of each number, and n.
JQ_LIB='
def med: sort | if length == 0 then null elif length % 2 == 1 then .[(length - 1) / 2]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def stat(f): [.[] | f | select(. != null)] | {med: med, min: min, max: max, n: length};
def r2: if . == null then null else (. * 100 | round) / 100 end;
'
{
	cat_suite floor | jq -sc '{floor: .}'
	cat_suite start | jq -sc '{start: .}'
	cat_suite overhead | jq -sc '{overhead: .}'
	cat_suite migrate | jq -sc '{migrate: .}'
	cat_suite apps | jq -sc '{apps: .}'
	cat_suite periodic | jq -sc '{periodic: .}'
	cat_suite group | jq -sc '{group: .}'
	cat_suite rankmove | jq -sc '{rankmove: .}'
	jq -c '{run: .}' "$RAW/run.json"
} | jq -s 'add' | jq "$JQ_LIB"'
	. as $all
	| ($all.floor | map(select(.what == "link")) | stat(.bytes_per_s)) as $B
	| ($all.floor | map(select(.what == "disk")) | {w: stat(.write_bytes_per_s), r: stat(.read_bytes_per_s)}) as $D
	| {
	run: $all.run,
	floor: {link_bytes_per_s: $B, disk_write_bytes_per_s: $D.w, disk_read_bytes_per_s: $D.r,
		tmpfs_read_bytes_per_s: ($all.floor | map(select(.what == "tmpfs_read")) | group_by(.mb)
			| map({mb: .[0].mb} + stat(.bytes_per_s)))},
	start: ($all.start | group_by(.what) | map({what: .[0].what, ms: stat(.ms)})),
	overhead: ($all.overhead | group_by([.mb, .what]) | map({mb: .[0].mb, what: .[0].what,
		dump_ms: stat(.dump_ms), restore_ms: stat(.restore_ms), images_bytes: stat(.images_bytes)})),
	migrate: ($all.migrate | group_by([.mb, .mode]) | map(
		(.[0].mb) as $mb
		| ($all.floor | map(select(.what == "tmpfs_read" and .mb == $mb)) | stat(.bytes_per_s)) as $F
		| (stat(.bytes).med) as $S
		| {mb: $mb, mode: .[0].mode, n: length,
		   rss: stat(.rss), bytes: stat(.bytes), total_ms: stat(.total_ms), downtime_ms: stat(.downtime_ms),
		   request_ms: stat(.request_ms), prepare_ms: stat(.prepare_ms), dump_ms: stat(.dump_ms),
		   sync_ms: stat(.sync_ms), transfer_ms: stat(.transfer_ms), restore_ms: stat(.restore_ms),
		   overhead_ms: stat(.overhead_ms), dest_peak: stat(.dest_peak), ferryd_hwm: stat(.ferryd_hwm),
		   postcopy_ms: stat(.postcopy_ms), pages_demand: stat(.pages_demand), pages_pushed: stat(.pages_pushed),
		   rate_before: stat(.rate_before), rate_postcopy: stat(.rate_postcopy),
		   floor_ms: (if .[0].mode == "diskless" then
				(if $B.med and $F.med then ($S / $B.med + $S / $F.med) * 1000 else null end)
			else (if $D.w.med and $D.r.med then ($S / $D.w.med + $S / $D.r.med) * 1000 else null end) end)}
		| . + {vs_floor: (if .floor_ms then (.total_ms.med / .floor_ms | r2) else null end),
		       peak_per_S: (if .bytes.med > 0 then (.dest_peak.med / .bytes.med | r2) else null end)})),
	periodic: (($all.periodic // []) | group_by([.mb, .mode]) | map(
		(stat(.bytes).med) as $S | (stat(.local_bps).med) as $L
		| {mb: .[0].mb, mode: .[0].mode, n: length, bytes: stat(.bytes), local_bps: stat(.local_bps),
		   pause_ms: stat(.pause_ms), drain_ms: stat(.drain_ms), preempt_ms: stat(.preempt_ms),
		   target_ms: (if $L > 0 then 1.2 * $S / $L * 1000 else null end)}
		| . + {vs_target: (if .target_ms then (.pause_ms.med / .target_ms | r2) else null end)})),
	# the preemption checkpoint (dump, sync, stop) against its size: preempt_ms = a + b S, least
	# squares over every measurement; the largest S that fits a 60 s grace time at this disk
	preempt_fit: (($all.periodic // []) | map([.bytes, .preempt_ms]) as $p | ($p | length) as $n
		| if $n == 0 then null else
			($p | map(.[0]) | add / $n) as $mx | ($p | map(.[1]) | add / $n) as $my
			| ($p | map((.[0] - $mx) * (.[0] - $mx)) | add) as $sxx
			| (if $sxx > 0 then ($p | map((.[0] - $mx) * (.[1] - $my)) | add) / $sxx else $my / $mx end) as $b
			| (if $sxx > 0 then $my - $b * $mx else 0 end) as $a0
			# a negative fixed cost is noise: then through the origin
			| (if $a0 < 0 then 0 else $a0 end) as $a
			| (if $a0 < 0 then ($p | map(.[0] * .[1]) | add) / ($p | map(.[0] * .[0]) | add) else $b end) as $b
			| {fixed_ms: ($a | round), ms_per_gib: ($b * 1073741824 | round),
			   max_bytes_60s: (if $b > 0 then ((60000 - $a) / $b | floor) else null end)} end),
	# the group checkpoint against the slowest member alone (the target: <= 1.2), and against the
	# members alone started at once (the same dumps, without the coordination)
	group: (($all.group // []) | map(.nodes //= 1) | group_by([.n, .nodes]) | map(
		{n: .[0].n, nodes: .[0].nodes, mb: .[0].mb, count: length, alone_max_ms: stat(.alone_max_ms),
		 alone_sum_ms: stat(.alone_sum_ms), together_ms: stat(.together_ms), group_ms: stat(.group_ms),
		 bytes: stat(.bytes)}
		| . + {vs_max: (if .alone_max_ms.med > 0 then (.group_ms.med / .alone_max_ms.med | r2) else null end),
		       vs_together: (if .together_ms.med > 0 then (.group_ms.med / .together_ms.med | r2) else null end)})),
	# the pause the other ranks see while one moves, against its downtime + 100 ms (the target)
	rankmove: (($all.rankmove // []) | group_by([.ranks, .mb, .mode]) | map(
		{ranks: .[0].ranks, mb: .[0].mb, mode: .[0].mode, n: length, bytes: stat(.bytes),
		 downtime_ms: stat(.downtime_ms), total_ms: stat(.total_ms), pause_ms: stat(.pause_ms),
		 pause_end_ms: stat(.pause_end_ms), gap_ms: stat(.gap_ms), stalls: stat(.stalls),
		 own_pause_ms: stat(.own_pause_ms), before_ms: stat(.before_ms), msg_ms: stat(.msg_ms),
		 excess_ms: stat(.pause_ms - .downtime_ms), met: map(select(.pause_ms <= .downtime_ms + 100)) | length}
		| . + {target_ms: (.downtime_ms.med + 100), vs_target: (.pause_ms.med / (.downtime_ms.med + 100) | r2)})),
	apps: ($all.apps | group_by([.app, .size, .mig]) | map({app: .[0].app, size: .[0].size, mig: .[0].mig,
		n: length, wall_ms: stat(.wall_ms), app_s: stat(.app_s), rss: stat(.rss), bytes: stat(.bytes),
		total_ms: stat(.total_ms), downtime_ms: stat(.downtime_ms), dump_ms: stat(.dump_ms),
		sync_ms: stat(.sync_ms), transfer_ms: stat(.transfer_ms), restore_ms: stat(.restore_ms),
		postcopy_ms: stat(.postcopy_ms), pages_bytes: stat(.pages_bytes), pages_sent: stat(.pages_sent),
		results: (map(.result) | unique)}))
	}' >"$OUT/summary.json"
S=$OUT/summary.json

# ---------------------------------------------------------------- data files for gnuplot
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
jq -r "$JQ_LIB"'.migrate | map(select(.mode == "diskless")) | .[] |
	[.mb, (.rss.med / 1048576 | r2), (.bytes.med / 1048576 | r2)] | @tsv' "$S" >"$D/size-synth.tsv"
jq -r "$JQ_LIB"'.apps | map(select(.mig != "none" and .rss.med != null)) | group_by([.app, .size]) | .[] | .[0] |
	[.app + " " + .size, (.rss.med / 1048576 | r2), (.bytes.med / 1048576 | r2)] | @tsv' "$S" >"$D/size-apps.tsv"
jq -r "$JQ_LIB"'.migrate | group_by(.mb) | .[] | (map({(.mode): .}) | add) as $m |
	select($m.diskless and $m.default) |
	[.[0].mb, ($m.diskless.total_ms.med / 1000), ($m.diskless.total_ms.min / 1000), ($m.diskless.total_ms.max / 1000),
	 ($m.default.total_ms.med / 1000), ($m.default.total_ms.min / 1000), ($m.default.total_ms.max / 1000),
	 (($m.diskless.floor_ms // 0) / 1000), (($m.default.floor_ms // 0) / 1000)] | @tsv' "$S" >"$D/total.tsv"
jq -r "$JQ_LIB"'.migrate | group_by(.mb) | .[] | (map({(.mode): .}) | add) as $m |
	select($m.diskless and $m.default and $m.live) |
	[.[0].mb, ($m.default.downtime_ms.med / 1000), ($m.diskless.downtime_ms.med / 1000),
	 ($m.live.downtime_ms.med / 1000), (($m.live.postcopy_ms.med // 0) / 1000)] | @tsv' "$S" >"$D/downtime.tsv"
for mode in diskless default; do
	jq -r --arg m "$mode" '.migrate | map(select(.mode == $m)) | .[] |
		[.mb, (.dump_ms.med / 1000), (((.sync_ms.med // .transfer_ms.med) // 0) / 1000),
		 (.restore_ms.med / 1000), (.overhead_ms.med / 1000)] | @tsv' "$S" >"$D/phases-$mode.tsv"
done
jq -r '.apps | group_by([.app, .size]) | .[] | (map({(.mig): .}) | add) as $m | select($m.none) |
	[.[0].app + " " + .[0].size, ($m.none.wall_ms.med / 1000),
	 (($m.diskless.wall_ms.med // 0) / 1000), (($m.default.wall_ms.med // 0) / 1000)] | @tsv' "$S" >"$D/apps-run.tsv"
jq -r '.apps | map(select(.mig != "none")) | group_by([.app, .size]) | .[] | (map({(.mig): .}) | add) as $m |
	[.[0].app + " " + .[0].size, (($m.diskless.total_ms.med // 0) / 1000), (($m.default.total_ms.med // 0) / 1000),
	 (($m.diskless.downtime_ms.med // 0) / 1000), (($m.default.downtime_ms.med // 0) / 1000)] | @tsv' "$S" >"$D/apps-mig.tsv"
jq -r '.periodic | group_by(.mb) | .[] | (map({(.mode): .}) | add) as $m | select($m.staged and $m.direct) |
	[.[0].mb, ($m.staged.pause_ms.med / 1000), ($m.direct.pause_ms.med / 1000), ($m.staged.target_ms / 1000),
	 (($m.staged.pause_ms.med + ($m.staged.drain_ms.med // 0)) / 1000)] | @tsv' "$S" >"$D/periodic.tsv"
jq -r '.group | map(select(.nodes == 1)) | .[] | [.n, .group_ms.med, .alone_max_ms.med, (.together_ms.med // 0)] | @tsv' \
	"$S" >"$D/group-1.tsv"
jq -r '.group | map(select(.nodes == 2)) | .[] | [.n, .group_ms.med, .alone_max_ms.med, (.together_ms.med // 0)] | @tsv' \
	"$S" >"$D/group-2.tsv"
jq -r '.rankmove | .[] | ["\(.mode), \(.ranks) x \(.mb) MiB", .downtime_ms.med, .pause_ms.med, .target_ms, .total_ms.med] | @tsv' \
	"$S" >"$D/rankmove.tsv"
jq -r '.overhead | group_by(.mb) | .[] | (map({(.what): .}) | add) as $m |
	[.[0].mb, ($m.ferry.dump_ms.med // 0), ($m.criu.dump_ms.med // 0), ($m.runc.dump_ms.med // 0),
	 ($m.ferry.restore_ms.med // 0), ($m.criu.restore_ms.med // 0), ($m.runc.restore_ms.med // 0)] | @tsv' \
	"$S" >"$D/overhead.tsv"

# ---------------------------------------------------------------- plots
plot() { # NAME GNUPLOT-COMMANDS: a PNG, skipped when its data is empty
	local name=$1 data=$2
	shift 2
	[ -s "$D/$data" ] || return 0
	gnuplot -e "set terminal pngcairo size 800,500 font ',11'; set output '$PLOTS/$name.png';
		set grid; set key top left; set datafile separator '\t'; $*" || echo "report: plot $name failed" >&2
}
plot fig12-checkpoint-size size-synth.tsv "set title 'Checkpoint size vs memory (fig. 12)';
	set xlabel 'resident memory of the instance (MiB)'; set ylabel 'checkpoint size (MiB)';
	plot '$D/size-synth.tsv' using 2:3 with linespoints pt 7 title 'synthetic',
	     x with lines dt 2 title 'size = memory'$([ -s "$D/size-apps.tsv" ] && echo ",
	     '$D/size-apps.tsv' using 2:3 with points pt 5 ps 1.5 title 'applications'")"
plot fig13-total-time total.tsv "set title 'Total migration time, link and disk as in the paper (fig. 13)';
	set xlabel 'workload memory (MiB)'; set ylabel 'seconds'; set logscale x 2;
	plot '$D/total.tsv' using 1:2:3:4 with yerrorlines pt 7 title 'diskless (median, min-max)',
	     '' using 1:5:6:7 with yerrorlines pt 5 title 'default (median, min-max)',
	     '' using 1:8 with lines dt 2 lc 1 title 'diskless floor S/B + S/F',
	     '' using 1:9 with lines dt 2 lc 2 title 'default floor S/Dw + S/Dr'"
plot live-downtime downtime.tsv "set title 'Downtime: live (post-copy) against stop-and-copy';
	set xlabel 'workload memory (MiB)'; set ylabel 'seconds (median)'; set logscale x 2;
	plot '$D/downtime.tsv' using 1:2 with linespoints pt 5 title 'default, downtime',
	     '' using 1:3 with linespoints pt 7 title 'diskless, downtime',
	     '' using 1:4 with linespoints pt 9 title 'live, downtime',
	     '' using 1:5 with linespoints dt 2 pt 9 title 'live, post-copy window (job runs on the destination)'"
for mode in diskless default; do
	fig=14
	[ $mode = default ] && fig=15
	mid=transfer
	[ $mode = default ] && mid=sync
	plot "fig$fig-phases-$mode" "phases-$mode.tsv" "set title 'Phases of a $mode migration (fig. $fig)';
		set style data histograms; set yrange [0:*]; set style histogram rowstacked; set style fill solid 0.8 border -1;
		set boxwidth 0.7; set xlabel 'workload memory (MiB)'; set ylabel 'seconds (median)';
		plot '$D/phases-$mode.tsv' using 2:xtic(1) title 'dump', '' using 3 title '$mid',
		     '' using 4 title 'restore', '' using 5 title 'request + prepare + teardown'"
done
plot fig16-app-runtime apps-run.tsv "set title 'Application run time without and with a migration (fig. 16)';
	set style data histograms; set yrange [0:*]; set style histogram clustered gap 1; set style fill solid 0.8 border -1;
	set ylabel 'seconds (median wall time)'; set xtics rotate by -20;
	plot '$D/apps-run.tsv' using 2:xtic(1) title 'no migration', '' using 3 title 'diskless migration',
	     '' using 4 title 'default migration'"
plot fig17-app-migration apps-mig.tsv "set title 'Migrating real applications (fig. 17)';
	set style data histograms; set yrange [0:*]; set style histogram clustered gap 1; set style fill solid 0.8 border -1;
	set ylabel 'seconds (median)'; set xtics rotate by -20;
	plot '$D/apps-mig.tsv' using 2:xtic(1) title 'total, diskless', '' using 3 title 'total, default',
	     '' using 4 title 'downtime, diskless', '' using 5 title 'downtime, default'"
plot periodic-pause periodic.tsv "set title 'Periodic checkpoint: pause of the job, staged and direct (shared disk)';
	set xlabel 'workload memory (MiB)'; set ylabel 'seconds (median)'; set logscale x 2;
	plot '$D/periodic.tsv' using 1:2 with linespoints pt 7 title 'staged: pause',
	     '' using 1:3 with linespoints pt 5 title 'direct: pause',
	     '' using 1:4 with lines dt 2 title 'target 1.2 S / local write rate',
	     '' using 1:5 with linespoints dt 3 pt 7 title 'staged: until synced on the shared disk'"
plot overhead-vs-peers overhead.tsv "set title 'Checkpoint and restore of the same workload: ferry, bare CRIU, runc';
	set style data histograms; set yrange [0:*]; set style histogram clustered gap 1; set style fill solid 0.8 border -1;
	set xlabel 'workload memory (MiB)'; set ylabel 'ms (median)';
	plot '$D/overhead.tsv' using 2:xtic(1) title 'ferry dump', '' using 3 title 'CRIU dump',
	     '' using 4 title 'runc dump', '' using 5 title 'ferry restore', '' using 6 title 'CRIU restore',
	     '' using 7 title 'runc restore'"
plot group-checkpoint group-1.tsv "set title 'Group checkpoint against each member alone';
	set xlabel 'members'; set ylabel 'ms (median)'; set logscale x 2; set yrange [0:*];
	plot '$D/group-1.tsv' using 1:2 with linespoints pt 7 lc 1 title 'group, one node',
	     '' using 1:3 with lines dt 2 lc 1 title 'slowest own, one node',
	     '' using 1:4 with lines dt 3 lc 1 title 'own, all at once, one node'$([ -s "$D/group-2.tsv" ] && echo ",
	     '$D/group-2.tsv' using 1:2 with linespoints pt 5 lc 2 title 'group, two nodes',
	     '' using 1:3 with lines dt 2 lc 2 title 'slowest own, two nodes',
	     '' using 1:4 with lines dt 3 lc 2 title 'own, all at once, two nodes'")"
plot rankmove-pause rankmove.tsv "set title 'One rank moved: the pause of the other ranks against its downtime';
	set style data histograms; set yrange [0:*]; set style histogram clustered gap 1; set style fill solid 0.8 border -1;
	set ylabel 'ms (median)'; set xtics rotate by -35 font ',9'; set bmargin 7;
	plot '$D/rankmove.tsv' using 2:xtic(1) title 'downtime of the moved rank', '' using 3 title 'pause of the other ranks',
	     '' using 4 title 'target: downtime + 100 ms', '' using 5 title 'ferry migrate, total'"

# ---------------------------------------------------------------- tables
tables() {
	jq -r "$JQ_LIB"'
	def mib: if . == null then "–" else (. / 1048576 | r2 | tostring) end;
	def rate: if . == null then "–" else (. / 1048576 | round | tostring) + " MiB/s" end;
	def s(f): if f.med == null then "–" else "\(f.med / 1000 | r2) (\(f.min / 1000 | r2)–\(f.max / 1000 | r2))" end;
	def ms(f): if f.med == null then "–" else "\(f.med | r2) (\(f.min | r2)–\(f.max | r2))" end;
	def ratio(a; b): if a == null or b == null or b == 0 then "–" else (a / b | r2 | tostring) end;
	.run as $run
	| "Run \($run.run): link \($run.link), shared disk \($run.disk / 1048576 | round) MiB/s, \($run.repeat) repetitions, "
	  + "\($run.cpus) CPUs, \($run.mem / 1073741824 | round) GiB, kernel \($run.kernel), \($run.criu), \($run.runc), ferry \($run.ferry).",
	  "Medians, with (min–max) over the repetitions; times in seconds unless marked.", "",
	  "### Physical floor", "",
	  "| B: link (iperf3) | Dw: disk, synced write | Dr: disk, cold read |", "|---|---|---|",
	  "| \(.floor.link_bytes_per_s.med | rate) | \(.floor.disk_write_bytes_per_s.med | rate) | \(.floor.disk_read_bytes_per_s.med | rate) |", "",
	  "F, a tmpfs file read into fresh memory (measured next to each size): "
	  + ([.floor.tmpfs_read_bytes_per_s[] | "\(.mb) MiB: \(.med | rate) (\(.min | rate)–\(.max | rate))"] | join("; ")) + ".", "",
	  "### Synthetic workload: migration (figs. 12–15)", "",
	  "| MiB | mode | RSS MiB | checkpoint MiB | dump | sync / transfer | restore | total | downtime | floor | total / floor | fixed overhead ms | dest. peak / S | ferryd max RSS MiB |",
	  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
	  (.migrate[] | "| \(.mb) | \(.mode) | \(.rss.med | mib) | \(.bytes.med | mib) | \(s(.dump_ms)) | \(if .mode == "default" then s(.sync_ms) else s(.transfer_ms) end) | \(s(.restore_ms)) | \(s(.total_ms)) | \(s(.downtime_ms)) | \(if .floor_ms then (.floor_ms / 1000 | r2 | tostring) else "–" end) | \(.vs_floor // "–") | \(ms(.overhead_ms)) | \(.peak_per_S // "–") | \(.ferryd_hwm.max | mib) |"),
	  "", "Live (post-copy): the downtime against that of diskless, and the window during which the source still holds the job (post-copy) with the pages the job asked for and those pushed: "
	  + ([.migrate | group_by(.mb)[] | (map({(.mode): .}) | add) as $m | select($m.diskless and $m.live)
	      | "\(.[0].mb) MiB: downtime \(s($m.live.downtime_ms)) against \(s($m.diskless.downtime_ms)) (\(ratio($m.live.downtime_ms.med; $m.diskless.downtime_ms.med))), post-copy \(s($m.live.postcopy_ms)), \($m.live.pages_demand.med // 0) pages asked, \($m.live.pages_pushed.med // 0) pushed, the job at \($m.live.rate_postcopy.med // "–") steps/s during post-copy against \($m.live.rate_before.med // "–") before"] | join("; ")) + ".",
	  "", "Diskless / default, total time: "
	  + ([.migrate | group_by(.mb)[] | (map({(.mode): .}) | add) as $m | select($m.diskless and $m.default)
	      | "\(.[0].mb) MiB: \(ratio($m.diskless.total_ms.med; $m.default.total_ms.med))"] | join("; ")) + ".", "",
	  "### ferry against bare CRIU and runc: checkpoint and restore of the same workload (ms)", "",
	  "| MiB | | ferry | bare CRIU | runc | ferry / CRIU | ferry / runc |", "|---|---|---|---|---|---|---|",
	  (.overhead | group_by(.mb)[] | (map({(.what): .}) | add) as $m
	   | ("| \(.[0].mb) | dump | \(ms($m.ferry.dump_ms)) | \(ms($m.criu.dump_ms)) | \(ms($m.runc.dump_ms)) | \(ratio($m.ferry.dump_ms.med; $m.criu.dump_ms.med)) | \(ratio($m.ferry.dump_ms.med; $m.runc.dump_ms.med)) |",
	      "| \(.[0].mb) | restore | \(ms($m.ferry.restore_ms)) | \(ms($m.criu.restore_ms)) | \(ms($m.runc.restore_ms)) | \(ratio($m.ferry.restore_ms.med; $m.criu.restore_ms.med)) | \(ratio($m.ferry.restore_ms.med; $m.runc.restore_ms.med)) |")),
	  "", "### Start time of a container running /bin/true (ms)", "",
	  "| | median (min–max) | n | / runc |", "|---|---|---|---|",
	  ((.start | map({(.what): .}) | add) as $st | .start[]
	   | "| \(.what) | \(ms(.ms)) | \(.ms.n) | \(ratio(.ms.med; $st.runc.ms.med)) |"),
	  "", "### Periodic checkpoints and preemption (ferry exec --checkpoint-every; SIGTERM)", "",
	  "The checkpoint directory is on the shared disk, whose client holds at most 64 MiB of dirty data (bench/lib/periodic.bash). L: the node-local write rate (tmpfs), measured before each run.", "",
	  "| MiB | mode | checkpoint MiB | L | pause | target 1.2 S / L | pause / target | staged: synced after | preemption checkpoint |",
	  "|---|---|---|---|---|---|---|---|---|",
	  (.periodic[] | "| \(.mb) | \(.mode) | \(.bytes.med | mib) | \(.local_bps.med | rate) | \(s(.pause_ms)) | \(if .target_ms then (.target_ms / 1000 | r2 | tostring) else "–" end) | \(.vs_target // "–") | \(s(.drain_ms)) | \(s(.preempt_ms)) |"),
	  "", "Periodic checkpoints: " + (if .preempt_fit == null then "not measured." else
	    "a preemption checkpoint (dump, sync, stop) took \(.preempt_fit.fixed_ms / 1000 | r2) s + \(.preempt_fit.ms_per_gib / 1000 | r2) s per GiB at this shared disk (\($run.disk / 1048576 | round) MiB/s): the largest job that fits a 60 s grace time is about \(if .preempt_fit.max_bytes_60s then (.preempt_fit.max_bytes_60s / 1073741824 | r2 | tostring) + " GiB" else "–" end)." end),
	  "", "### Group checkpoints (ferry checkpoint group --leave-running; ms)", "",
	  "Each member the synthetic workload, its checkpoints on the tmpfs (`--mem-dir`); on two nodes the odd members on one, the even ones on the other (the group named from the first: `NODE:NAME`). Both nodes are one kernel on \($run.cpus) CPUs.", "",
	  "| members | nodes | MiB each | slowest own | sum of own | own, all at once | group | group / slowest own | group / all at once |",
	  "|---|---|---|---|---|---|---|---|---|",
	  (.group[] | "| \(.n) | \(.nodes) | \(.mb) | \(ms(.alone_max_ms)) | \(ms(.alone_sum_ms)) | \(ms(.together_ms)) | \(ms(.group_ms)) | \(.vs_max // "–") | \(.vs_together // "–") |"),
	  "", "### One rank moved while the job runs: the pause of the other ranks (ms)", "",
	  "A ring of ranks over TCP (bench/tools/tcpring.c), each in its own instance with its own address, on both nodes; rank 0 moved. Pause: from a rank\u0027s first long gap between two messages (> 50 ms) to the end of its last, the longest of the other ranks. Met: repetitions whose pause was within downtime + 100 ms.", "",
	  "| ranks | MiB each | mode | downtime | pause of the others | pause − downtime | target: downtime + 100 | pause / target | met | longest single gap | stalls | the moved rank\u0027s own pause | ferry migrate total | jitter before |",
	  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
	  (.rankmove[] | "| \(.ranks) | \(.mb) | \(.mode) | \(ms(.downtime_ms)) | \(ms(.pause_ms)) | \(ms(.excess_ms)) | \(.target_ms | r2) | \(.vs_target) | \(.met) of \(.n) | \(ms(.gap_ms)) | \(.stalls.med) | \(ms(.own_pause_ms)) | \(ms(.total_ms)) | \(ms(.before_ms)) |"),
	  "", "### Real applications (figs. 16–17)", "",
	  "Compression: the pages\u0027 bytes over what they took on the wire (diskless and live; ferry.conf\u0027s `compress pages = yes`). Post-copy: from running on the destination to the source\u0027s release (live).", "",
	  "| application | size | migration | wall time | RSS MiB | checkpoint MiB | total | downtime | post-copy | compression | results identical |",
	  "|---|---|---|---|---|---|---|---|---|---|---|",
	  (.apps | group_by([.app, .size])[] | (map(.results) | add | unique | length == 1) as $same | .[]
	   | "| \(.app) | \(.size) | \(.mig) | \(s(.wall_ms)) | \(.rss.med | mib) | \(.bytes.med | mib) | \(s(.total_ms)) | \(s(.downtime_ms)) | \(s(.postcopy_ms)) | \(if (.pages_sent.med // 0) > 0 then (.pages_bytes.med / .pages_sent.med | r2) else "–" end) | \(if $same then "yes" else "NO: \(.results | join(" / "))" end) |"),
	  ($run.apps_not_run // {} | to_entries[] | "", "Not run on this machine: \(.key): \(.value).")
	' "$S"
}
if [ -f "$REPORT" ] && grep -q '^<!-- tables -->' "$REPORT"; then
	{
		sed -n '1,/^<!-- tables -->/p' "$REPORT"
		tables
		sed -n '/^<!-- end of tables -->/,$p' "$REPORT"
	} >"$REPORT.tmp"
else
	{
		echo "# ferry benchmarks"
		echo
		echo "<!-- tables -->"
		tables
		echo "<!-- end of tables -->"
	} >"$REPORT.tmp"
fi
mv "$REPORT.tmp" "$REPORT"
echo "report: $REPORT, $S, $PLOTS/"
