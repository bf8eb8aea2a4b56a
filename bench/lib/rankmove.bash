# shellcheck shell=bash
# rankmove.bash — what the other ranks of a job see while one rank is migrated (source after
# cluster.bash, baselines.bash and mig.bash).
#
# rankmove_measure MODE N MB REP: a job of N ranks (bench/tools/tcpring.c, MB MiB each) that talk
# over TCP in a ring, in lockstep (send to the next rank, receive from the previous one, as
# MPI_Sendrecv around a ring: a rank that stops stops them all within a few iterations). Each
# rank is a checkpointable instance of the benchmark user with its own address on the bench's
# macvlan network ($RM_NET, 198.18.1.0/24 on each node's eth0), the even ranks on $SRC, the odd
# ones on $DST. Each rank logs the arrival time of every message it receives (CLOCK_REALTIME,
# one clock on this machine). Once the ring runs steadily, rank 0 is moved from $SRC to $DST with
# `ferry migrate --mode MODE --json`. Emits to suite "rankmove" one line: the migration's report
# (downtime_ms, total_ms, the phases, bytes), plus
#   pause_ms     the pause the job sees while one rank moves: the longest, over the other
#                ranks, from the start of a rank's first long gap between two messages (over
#                RM_LONG = 50 ms; the ring steps every ~1 ms) to the end of its last, from the
#                migration's start to a second after its end (rm_gaps: a restored rank's queued
#                messages can split one pause into two stalls)
#   pause_at_ms, pause_end_ms   when that pause began and ended, from the start of ferry migrate
#   stalls       how many long gaps that pause is made of
#   pauses_ms    each other rank's pause (rank 1 first)
#   gap_ms, gap_at_ms   the longest single gap between two messages of any other rank, and when
#   own_pause_ms, own_gap_ms    the same, as the moved rank itself saw it
#   before_ms    the longest gap any rank saw in the RANKMOVE_CALM seconds before the migration
#                (the ring's own jitter)
#   msg_ms       the mean time between two messages in those seconds (the slowest rank's)
#   target_ms    the issue's target: the moved rank's downtime + 100 ms
# The ring checks itself (a message lost, repeated or from the wrong rank fails the rank), and
# must run on after the move: a rank that fails, or a ring that does not resume, fails the run.

RM_NET=fbench # the bench's macvlan network (as tests/lib/nodes.sh's write_test_network)
RM_NETCONF=/etc/ferry/network/$RM_NET.conflist
RM_DROPIN=/etc/ferry/ferry.conf.d/50-ferry-bench-net.conf
RM_PORT=7600
RM_CALM=${RANKMOVE_CALM:-2}
RM_LONG=50
RM_NAMES=()

# rm_ip I: rank I's address (198.18.1.100 + I)
rm_ip() { echo "198.18.1.$((100 + $1))"; }
# rm_node I: where rank I starts
rm_node() { if (($1 % 2 == 0)); then echo "$SRC"; else echo "$DST"; fi; }

# rankmove_setup: the network users may join (only 198.18.1.0/24 on it), and the ring program
# where every instance finds it (the user's home, which instances bind).
rankmove_setup() {
	bl_tools || die "rankmove: no tcpring"
	cat >"$RM_NETCONF.tmp" <<-JSON
		{"cniVersion": "1.0.0", "name": "$RM_NET",
		 "plugins": [{"type": "macvlan", "master": "eth0", "mode": "bridge",
		              "ipam": {"type": "static", "subnet": "198.18.0.0/16"}}]}
	JSON
	if ! chmod 0644 "$RM_NETCONF.tmp" || ! mv -f "$RM_NETCONF.tmp" "$RM_NETCONF"; then
		die "rankmove: cannot write $RM_NETCONF"
	fi
	cat >"$RM_DROPIN.tmp" <<-CONF
		# bench/lib/rankmove.bash (removed when the suite ends)
		allow net network = $RM_NET
		allow net args = yes
		allow net ip range = 198.18.1.0/24
	CONF
	if ! chmod 0644 "$RM_DROPIN.tmp" || ! mv -f "$RM_DROPIN.tmp" "$RM_DROPIN"; then
		die "rankmove: cannot write $RM_DROPIN"
	fi
	# ferryd reads the policy when it starts (a destination checks the network before a move)
	local n
	for n in "$SRC" "$DST"; do
		ferryd_down "$n"
		mv -f "$BENCH_WORK/ferryd-$n.log" "$BENCH_WORK/ferryd-$n.log.0" 2>/dev/null
		ferryd_up "$n"
	done
	install -d -o "$BUSER" -m 0755 "$BHOME/.bench-bin"
	install -o "$BUSER" -m 0755 "$BL_BIN/tcpring" "$BHOME/.bench-bin/tcpring" ||
		die "rankmove: cannot install tcpring"
}

rankmove_cleanup() {
	rankmove_stop
	rm -f "$RM_DROPIN" "$RM_DROPIN.tmp" "$RM_NETCONF" "$RM_NETCONF.tmp"
}

# rankmove_stop: every rank killed, its checkpoints and log gone.
rankmove_stop() {
	local name n uid
	uid=$(id -u "$BUSER")
	for name in "${RM_NAMES[@]}"; do
		for n in "$SRC" "$DST"; do
			on "$n" "$FERRY" instance stop --signal KILL "$name" >/dev/null 2>&1
		done
		as_buser "$FERRY" checkpoint delete "$name" >/dev/null 2>&1
		rm -rf "${BHOME:?}/.ferry/checkpoint/$name" "$BHOME/.$name.log"
	done
	rm -rf "${SHARED:?}/$uid"
	for n in "$SRC" "$DST"; do rm -rf "$(TMPFS_OF "$n")/${uid:?}"; done
	RM_NAMES=()
}

# rm_last LOG: "ITERATION SECONDS" of the last message LOG has; FAIL if the rank failed
rm_last() {
	if grep -q '^FAIL' "$1" 2>/dev/null; then
		echo FAIL
	else
		tail -n 1 "$1" 2>/dev/null | awk 'NF == 2 && $1 ~ /^[0-9]+$/ { printf "%d %.6f\n", $1, $2 / 1e9 }'
	fi
}

# rm_wait COND_AWK TIMEOUT WHAT: until every rank's last message satisfies COND_AWK (over $1, the
# iteration, and $2, its time in s); dies on a FAIL or the timeout.
rm_wait() {
	local cond=$1 limit=$2 what=$3 t0=$SECONDS name s ok
	while ((SECONDS - t0 < limit)); do
		ok=1
		for name in "${RM_NAMES[@]}"; do
			s=$(rm_last "$BHOME/.$name.log")
			[ "$s" != FAIL ] || die "rankmove: $name failed: $(grep -m1 '^FAIL' "$BHOME/.$name.log")"
			awk "{ exit !($cond) }" <<<"${s:--1 -1}" || ok=0
		done
		[ $ok = 0 ] || return 0
		sleep 0.1
	done
	die "rankmove: $what in $limit s: $(for name in "${RM_NAMES[@]}"; do
		printf '%s: %s; ' "$name" "$(tail -n 1 "$BHOME/.$name.log" 2>/dev/null)"
	done)"
}

# rm_gaps RANK LOG T_MIG T_END: one rank's view, a JSON object (times in ms, from T_MIG, the
# start of `ferry migrate`; T_MIG and T_END in s since the epoch):
#   gap_ms, gap_at    its longest time between two messages that ends after T_MIG and begins
#                     before T_END + 1 s, and when it began
#   pause_ms, pause_at, pause_end, stalls
#                     from the start of its first long gap (> RM_LONG ms) in that window to the
#                     end of its last: the time the rank was held, even when a message or two came
#                     in between (the moved rank's queued messages, delivered at its restore,
#                     before a neighbour's retransmission); stalls counts those long gaps
#   before_ms, msg_ms its longest gap in the RM_CALM s before T_MIG, and the mean one there
rm_gaps() {
	awk -v rank="$1" -v tm="$3" -v te="$4" -v calm="$RM_CALM" -v long="$RM_LONG" '
		NF != 2 || $1 !~ /^[0-9]+$/ { next }
		{ t = $2 / 1e9 }
		p != "" && t > tm && p < te + 1 {
			if (t - p > gap) { gap = t - p; at = p - tm }
			if ((t - p) * 1000 > long) { if (!stalls++) first = p; last = t }
		}
		p != "" && t < tm && p >= tm - calm { n++; sum += t - p; if (t - p > before) before = t - p }
		{ p = t }
		END {
			printf "{\"rank\": %d, \"gap_ms\": %.1f, \"gap_at\": %.1f, \"pause_ms\": %.1f, ", rank, gap * 1000, at * 1000, stalls ? (last - first) * 1000 : 0
			printf "\"pause_at\": %.1f, \"pause_end\": %.1f, \"stalls\": %d, ", stalls ? (first - tm) * 1000 : 0, stalls ? (last - tm) * 1000 : 0, stalls
			printf "\"before_ms\": %.1f, \"msg_ms\": %.3f}\n", before * 1000, n ? sum / n * 1000 : 0
		}' "$2"
}

# rm_start N MB: the ring of N ranks of MB MiB each, running steadily
rm_start() {
	local n=$1 mb=$2 i name node
	RM_NAMES=()
	for ((i = 0; i < n; i++)); do RM_NAMES+=("brk-$i"); done
	rankmove_stop
	for ((i = 0; i < n; i++)); do RM_NAMES+=("brk-$i"); done
	for ((i = 0; i < n; i++)); do
		name=brk-$i
		node=$(rm_node "$i")
		rm -f "$BHOME/.$name.log"
		on "$node" "$FERRY" checkpoint create "$name" >/dev/null || die "rankmove: checkpoint create $name"
		on "$node" "$FERRY" instance start --criu-launch "$name" --net --network "$RM_NET" \
			--network-args "IP=$(rm_ip "$i")/16" "$IMAGE_SIF" "$name" "$BHOME/.bench-bin/tcpring" \
			--mb "$mb" "$i" "$n" "$(rm_ip "$i"):$RM_PORT" "$(rm_ip $(((i + 1) % n))):$RM_PORT" \
			"$BHOME/.$name.log" >/dev/null || die "rankmove: instance start $name on $node"
	done
	# every rank past its first 200 messages, then RM_CALM seconds of the ring alone
	# shellcheck disable=SC2016 # awk's fields
	rm_wait '$1 >= 200' $((30 + n * $(bl_fill_timeout "$mb"))) "the ring did not start"
	sleep "$RM_CALM"
}

rankmove_measure() {
	local mode=$1 n=$2 mb=$3 rep=$4 t_mig t_end out rc i views
	rm_start "$n" "$mb"
	t_mig=$EPOCHREALTIME
	out=$(on "$SRC" "$FERRY" migrate brk-0 --to "$DST" --mode "$mode" --json 2>"$BENCH_WORK/rankmove.err")
	rc=$?
	t_end=$EPOCHREALTIME
	[ $rc -eq 0 ] || die "rankmove: ferry migrate --mode $mode failed: $(cat "$BENCH_WORK/rankmove.err")"
	# the ring runs on: every rank, the moved one too, has a message a second after the move
	rm_wait "\$2 > $t_end + 1" 120 "the ring did not resume after a $mode migration"
	views=$(for ((i = 0; i < n; i++)); do rm_gaps "$i" "$BHOME/.brk-$i.log" "$t_mig" "$t_end"; done | jq -sc .) ||
		die "rankmove: the ranks' logs could not be read"
	out=$(echo "$out" | jq -c --arg run "${BENCH_RUN_ID:-adhoc}" --argjson n "$n" --argjson mb "$mb" \
		--argjson rep "$rep" --argjson v "$views" '
		($v[1:] | max_by(.pause_ms)) as $p | ($v[1:] | max_by(.gap_ms)) as $g
		| . + {suite: "rankmove", run: $run, ranks: $n, mb: $mb, rep: $rep,
		       pause_ms: $p.pause_ms, pause_at_ms: $p.pause_at, pause_end_ms: $p.pause_end, stalls: $p.stalls,
		       gap_ms: $g.gap_ms, gap_at_ms: $g.gap_at, pauses_ms: ($v[1:] | map(.pause_ms)),
		       own_pause_ms: $v[0].pause_ms, own_gap_ms: $v[0].gap_ms,
		       before_ms: ($v | map(.before_ms) | max), msg_ms: ($v | map(.msg_ms) | max),
		       target_ms: (.downtime_ms + 100)}') ||
		die "rankmove: the report of the $mode migration could not be read: $out"
	echo "$out" >>"$RAW/rankmove.jsonl"
	say "rankmove: $n ranks x $mb MiB, $mode: $(echo "$out" | jq -r '"the others paused \(.pause_ms) ms (\(.pause_at_ms) to \(.pause_end_ms) ms, \(.stalls) stall(s), longest gap \(.gap_ms) ms), downtime \(.downtime_ms) ms, total \(.total_ms) ms"')"
	rankmove_stop
}
