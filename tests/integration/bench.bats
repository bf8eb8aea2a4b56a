#!/usr/bin/env bats
# bench.bats — `make bench-smoke`: a tiny run of the benchmark harness (bench/run.sh --smoke,
# the same code as `make bench`, with one repetition, small sizes and the smallest application
# points), then checks of what it measured and of the report made from it. The harness itself
# fails on a failed migration or a workload that does not check out; these tests check that the
# measurements are there, plausible and complete, so that a broken harness cannot pass silently.

bats_require_minimum_version 1.5.0

setup_file() {
	export SMOKE=$BATS_FILE_TMPDIR/smoke
	export SMOKE_LOG=$BATS_FILE_TMPDIR/run.log
	# the harness writes its raw results under bench/results/smoke; copy them away
	# (setup_file runs under set -e: a failed run is reported by the first test, with its log)
	local rc=0
	"$BATS_TEST_DIRNAME/../../bench/run.sh" --smoke >"$SMOKE_LOG" 2>&1 || rc=$?
	echo $rc >"$BATS_FILE_TMPDIR/rc"
	rm -rf "$SMOKE"
	cp -a "$BATS_TEST_DIRNAME/../../bench/results/smoke" "$SMOKE" 2>/dev/null || mkdir -p "$SMOKE"
}

# q SUITE JQ-FILTER: the filter over all lines of the suite, as one array
q() { jq -rs "$2" "$SMOKE/$1.jsonl"; }

@test "the smoke run of the harness completes" {
	rc=$(cat "$BATS_FILE_TMPDIR/rc")
	[ "$rc" -eq 0 ] || {
		tail -30 "$SMOKE_LOG"
		false
	}
	jq -e '.link and .cpus > 0 and .criu' "$SMOKE/run.json"
}

@test "smoke: the physical floor is measured (link, disk, tmpfs into fresh memory)" {
	# the link is shaped to 1 Gbit/s: iperf3 sees 100-125 MB/s
	q floor '[.[] | select(.what == "link") | .bytes_per_s] | .[0]' | awk '{ exit !($1 > 90e6 && $1 < 130e6) }'
	# the disk is throttled to 100 MiB/s: a synced write and a cold read are near that
	q floor '[.[] | select(.what == "disk")] | .[0] | .write_bytes_per_s, .read_bytes_per_s' |
		awk '{ if (!($1 > 30e6 && $1 < 115e6)) bad = 1 } END { exit bad }'
	q floor '[.[] | select(.what == "tmpfs_read") | .bytes_per_s] | .[0]' | awk '{ exit !($1 > 50e6) }'
}

@test "smoke: start times of ferry, runc and unshare+chroot are measured" {
	[ "$(q start '[.[].what] | unique | join(",")')" = "ferry,runc,unshare" ]
	[ "$(q start '[.[] | select(.ms > 0)] | length')" -eq "$(q start 'length')" ]
}

@test "smoke: ferry, bare CRIU and runc each checkpoint and restore the same workload" {
	[ "$(q overhead '[.[].what] | unique | join(",")')" = "criu,ferry,runc" ]
	[ "$(q overhead '[.[] | select(.dump_ms > 0 and .restore_ms > 0 and .images_bytes > 32 * 1048576)] | length')" -eq 3 ]
}

@test "smoke: the three migration modes move the synthetic workload, which checks out on the destination" {
	[ "$(q migrate '[.[] | select(.verified == 1 and .ok == 1) | .mode] | unique | join(",")')" = "default,diskless,live" ]
	# the checkpoint holds the workload's memory; the destination's peak covers it
	q migrate '.[] | [.bytes, .rss, .dest_peak, .total_ms, .downtime_ms] | @tsv' |
		awk '{ if (!($1 >= 32 * 1048576 && $2 >= 32 * 1048576 && $3 >= $1 && $4 >= $5 && $5 > 0)) bad = 1 } END { exit bad }'
	q migrate '.[] | select(.mode == "diskless") | .transfer_ms' | grep -qE '^[0-9]+$'
	q migrate '.[] | select(.mode == "default") | .sync_ms' | grep -qE '^[0-9]+$'
	# live: the window's pages, and the workload's pace before (it steps every 500 ms)
	q migrate '.[] | select(.mode == "live") | [.transfer_ms, .postcopy_ms, .pages_demand + .pages_pushed, .rate_before, .rate_postcopy] | @tsv' |
		awk '{ if (!($1 >= 0 && $2 >= 0 && $3 * 4096 >= 16 * 1048576 && $4 > 0 && $5 >= 0)) bad = 1 } END { exit bad }'
}

@test "smoke: periodic checkpoints, staged and direct, and the preemption checkpoint are measured" {
	[ "$(q periodic '[.[].mode] | unique | join(",")')" = "direct,staged" ]
	# the generation holds the workload's memory; the pause and the preemption are measured; a
	# staged generation drains after the job runs again, a direct one has no drain
	q periodic '.[] | [.bytes, .pause_ms, .preempt_ms, .local_bps] | @tsv' |
		awk '{ if (!($1 >= 32 * 1048576 && $2 >= 0 && $3 > 0 && $4 > 1048576)) bad = 1 } END { exit bad }'
	q periodic '.[] | select(.mode == "staged") | .drain_ms' | grep -qE '^[0-9]+$'
	q periodic '.[] | select(.mode == "direct") | .drain_ms' | grep -qx null
}

@test "smoke: a group checkpoint of 1 and 2 members, on one node and across both, is measured against their own checkpoints" {
	[ "$(q group '[.[] | "\(.n)/\(.nodes)"] | sort | join(",")')" = "1/1,2/1,2/2" ]
	# each member's images hold its memory; every time is there; the group's sum of own
	# checkpoints is at least the slowest one
	q group '.[] | [.n, .bytes, .alone_max_ms, .alone_sum_ms, .together_ms, .group_ms] | @tsv' |
		awk '{ if (!($2 >= $1 * 32 * 1048576 && $3 > 0 && $4 >= $3 && $5 > 0 && $6 > 0)) bad = 1 } END { exit bad }'
}

@test "smoke: one rank of a TCP ring moved in each mode; the other ranks' pause is measured against its downtime" {
	[ "$(q rankmove '[.[] | select(.ok == 1 and .instance == "brk-0") | .mode] | unique | join(",")')" = "default,diskless,live" ]
	# the moved rank's memory moved; every other rank (2 of 3) saw the ring stop (a gap of more
	# than 50 ms: it steps every ~1 ms, and did not stop in the second before), and so did the
	# moved rank; the target is its downtime + 100 ms
	q rankmove '.[] | [.bytes, .downtime_ms, .pause_ms, .stalls, (.pauses_ms | length), .own_pause_ms, .before_ms, .msg_ms, .target_ms - .downtime_ms, .gap_ms] | @tsv' |
		awk '{ if (!($1 >= 32 * 1048576 && $2 > 0 && $3 > 50 && $4 >= 1 && $5 == 2 && $6 > 50 && $7 < 50 && $8 > 0 && $9 == 100 && $10 <= $3)) bad = 1 } END { exit bad }'
}

@test "smoke: diskless with and without 'compress pages': random memory goes raw, compressible memory shrinks, both check out" {
	[ "$(q compress 'length')" -eq 4 ] || fail "compress: $(cat "$SMOKE/compress.jsonl")"
	# every one moved the workload, which checked out (the harness dies otherwise)
	[ "$(q compress 'map(select(.ok == 1)) | length')" -eq 4 ] || fail "compress: not all ok"
	# random memory: sent raw either way (a block or two of the process's other memory may shrink)
	[ "$(q compress 'map(select(.fill == "random") | .pages_sent >= .pages_bytes * 0.95) | all')" = true ] ||
		fail "random pages shrank: $(q compress 'map(select(.fill == "random") | [.compress, .pages_bytes, .pages_sent])')"
	# compressible memory: less than half on the wire with compression, all of it without
	[ "$(q compress 'map(select(.fill == "compressible" and .compress == "yes") | .pages_sent < .pages_bytes / 2) | all')" = true ] ||
		fail "compressible pages did not shrink: $(q compress 'map([.fill, .compress, .pages_bytes, .pages_sent])')"
	[ "$(q compress 'map(select(.compress == "no") | .pages_sent == .pages_bytes) | all')" = true ] ||
		fail "'compress pages = no' compressed: $(q compress 'map([.fill, .compress, .pages_bytes, .pages_sent])')"
}

@test "smoke: every application runs without and with a migration, each mode (live too) moves one, with identical results" {
	local apps app
	# HPL, LAMMPS, AutoDock Vina always; GROMACS unless this CPU cannot run Debian's gmx, and
	# then the run says so
	for app in hpl lammps vina; do
		q apps "[.[] | select(.app == \"$app\")] | length" | grep -qv '^0$' || {
			echo "no results of $app"
			false
		}
	done
	if grep -qw rdtscp /proc/cpuinfo; then
		q apps '[.[] | select(.app == "gromacs")] | length' | grep -qv '^0$'
	else
		jq -e '.apps_not_run.gromacs | test("rdtscp")' "$SMOKE/run.json"
	fi
	apps=$(q apps '[.[].app] | unique | length')
	[ "$apps" -ge 3 ]
	# each application: none and one migration (the smoke run's slice; `make bench` runs every
	# mode for each); each mode moved an application
	[ "$(q apps '[group_by(.app)[] | select(([.[].mig] | unique | length) == 2 and any(.[]; .mig == "none"))] | length')" -eq "$apps" ] ||
		fail "not one run without and one with a migration for every application: $(q apps 'map([.app, .mig])')"
	[ "$(q apps '[.[].mig] | unique | join(",")')" = "default,diskless,live,none" ] ||
		fail "not every mode moved an application: $(q apps 'map([.app, .mig])')"
	# a live migration is post-copy: the job ran on the destination before the source let go
	[ "$(q apps 'map(select(.mig == "live") | .postcopy_ms != null and .downtime_ms < .total_ms) | all')" = true ] ||
		fail "a live migration reports no post-copy window: $(q apps 'map(select(.mig == "live"))')"
	[ "$(q apps '[group_by(.app)[] | select(([.[].result] | unique | length) == 1 and .[0].result != "")] | length')" -eq "$apps" ]
}

@test "smoke: the report is made from the measurements (tables and plots)" {
	local out=$BATS_TEST_TMPDIR/report
	mkdir -p "$out"
	REPORT_OUT=$out run "$BATS_TEST_DIRNAME/../../bench/report.sh" "$SMOKE"
	[ "$status" -eq 0 ] || {
		echo "$output"
		false
	}
	grep -q '^| 32 | diskless |' "$out/REPORT.md"
	grep -q '^| 32 | dump |' "$out/REPORT.md"
	jq -e '.migrate | length == 3' "$out/summary.json"
	grep -q '^Live (post-copy): .*32 MiB: downtime' "$out/REPORT.md"
	grep -q '^| 32 | staged |' "$out/REPORT.md"
	grep -q '^Periodic checkpoints: ' "$out/REPORT.md"
	grep -q '^| 2 | 2 | 32 | ' "$out/REPORT.md"
	grep -q '^| 3 | 32 | live | ' "$out/REPORT.md"
	jq -e '(.group | length == 3) and (.rankmove | length == 3)' "$out/summary.json"
	for f in fig12-checkpoint-size fig13-total-time fig14-phases-diskless fig15-phases-default live-downtime \
		fig16-app-runtime fig17-app-migration overhead-vs-peers periodic-pause group-checkpoint rankmove-pause; do
		[ -s "$out/plots/$f.png" ] || {
			echo "no plot $f"
			false
		}
	done
}
