#!/usr/bin/env bash
# run-fuzz.sh — build every libFuzzer target in tests/fuzz/ (clang, ASan+UBSan) and run each
# for FUZZ_SECONDS (default 10) from its corpus. Ends with "unit: N passed, N failed" so
# tests/run-all.sh counts each target as one test: a crash, a sanitizer report or a build
# failure is a failure. These are the parsers of untrusted input: the starter's request,
# ferry.conf, images, manifests, definition files, the protocol and the checkpoint stream.
#
# The library modules are compiled once (instrumented, -fsanitize=fuzzer-no-link) and linked
# into every target; the compiles, and then the targets, run nproc at a time (FUZZ_JOBS to
# change it), each target alone on a core for its whole time, so a target gets the same
# executions as when they ran one after another, in a fraction of the wall time.
#
# The corpus kept in the repository (tests/fuzz/corpus/NAME) seeds every run. FUZZ_RUNS=N
# (make fuzz-long: 10 million) runs each target for N executions instead of a time, then
# merges what it found into the repository's corpus (only inputs that add coverage).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
secs=${FUZZ_SECONDS:-10}
jobs=${FUZZ_JOBS:-$(nproc)}
out=build-fuzz
mkdir -p "$out/obj"
cflags=(-std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=address,undefined -Isrc/lib
	-DFERRY_VERSION='"fuzz"' -DFERRY_SYSCONFDIR='"/etc/ferry"' -DFERRY_LIBEXECDIR='"/x"'
	-DFERRY_STATEDIR='"/x"' -DFERRY_RUNDIR='"/x"' -DFERRY_BINDIR='"/x"' -Wno-format-nonliteral)
# every library module but those that need libcriu (not a parser), and ferry-net's conflist
# reader (ferry_net_subnets: the starter's own asks ferry-net)
libs="$(ls src/lib/*.c | grep -v -e '/criu\.c$') src/net/cni.c"

# throttle: wait until fewer than $jobs background jobs run
throttle() {
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
}

# compile_lib SRC: one library module into $out/obj; the log says why it failed
compile_lib() {
	local o
	o="$out/obj/$(echo "$1" | tr / _).o"
	clang "${cflags[@]}" -fsanitize=fuzzer-no-link -c "$1" -o "$o" 2>"$o.log" || rm -f "$o"
}

# fuzz_one NAME: link target NAME and run it; its one result line goes to $out/NAME.result
fuzz_one() {
	local name=$1 corpus kept limit dict runs how
	local res="$out/$name.result"
	if ! clang "${cflags[@]}" -fsanitize=fuzzer "tests/fuzz/$name.c" "${objs[@]}" \
		-lcap -lcrypto -ljson-c -larchive -lzstd -o "$out/$name" 2>"$out/$name.build.log"; then
		{ echo "FAIL $name: build failed"; tail -n 20 "$out/$name.build.log"; } >"$res"
		return
	fi
	corpus="$out/$name.corpus"
	kept="tests/fuzz/corpus/${name#fuzz_}"
	mkdir -p "$corpus" "$kept"
	limit=(-max_total_time="$secs")
	[ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
	dict=()
	[ -f "tests/fuzz/${name#fuzz_}.dict" ] && dict=(-dict="tests/fuzz/${name#fuzz_}.dict")
	if "$out/$name" "${dict[@]}" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/$name-" "$corpus" "$kept" >"$out/$name.log" 2>&1; then
		runs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$out/$name.log" | awk '{print $2}' || true)
		how=" in ${secs}s"
		if [ -n "${FUZZ_RUNS:-}" ]; then
			"$out/$name" -merge=1 "$kept" "$corpus" >>"$out/$name.log" 2>&1
			how=", corpus merged into $kept"
		fi
		echo "PASS $name: $runs runs$how" >"$res"
	else
		{
			echo "FAIL $name: see $out/$name.log"
			grep -E 'ERROR|SUMMARY|crash|leak' "$out/$name.log" | head -n 10
		} >"$res"
	fi
}

rm -f "$out"/obj/*.o "$out"/*.result
for src in $libs; do
	throttle
	compile_lib "$src" &
done
wait
objs=()
for src in $libs; do
	o="$out/obj/$(echo "$src" | tr / _).o"
	if [ ! -e "$o" ]; then
		echo "FAIL: $src does not compile for the fuzzers:"
		tail -n 20 "$o.log"
		echo "unit: 0 passed, 1 failed"
		exit 1
	fi
	objs+=("$o")
done

names=()
for src in tests/fuzz/fuzz_*.c; do
	names+=("$(basename "$src" .c)")
	throttle
	fuzz_one "${names[-1]}" &
done
wait

pass=0 fail=0
for name in "${names[@]}"; do
	if [ ! -s "$out/$name.result" ]; then
		echo "FAIL $name: it gave no result (see $out/$name.log)"
		fail=$((fail + 1))
		continue
	fi
	cat "$out/$name.result"
	if head -n 1 "$out/$name.result" | grep -q '^PASS '; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
