# shellcheck shell=bash
# checkpoint.bash — helpers of tests/integration/checkpoint.bats (load after ../lib/common).
#
#   - the stateful workload (tests/workloads/stateful.c) and sysvipc, built into the root-owned
#     CKPT_BIN under /tmp, which every container gets by default ('mount tmp'), at the same path
#     at launch and at restart (CRIU reopens the executable by path);
#   - starting it in a checkpointable instance and reading its progress (the progress file, and
#     the step lines it also prints to the instance's log);
#   - checkpoint directories and their generations, the manifest, and a CRIU image editor
#     (protobuf wire format, no pycriu needed) to forge credentials.

CKPT_BIN=${CKPT_BIN:-/tmp/ferry-test-ckpt-bin}
STATEFUL=$CKPT_BIN/stateful

# Builds the workload once per source change (as root, into a root-owned, world-readable dir).
build_ckpt_workload() {
	(
		flock 9
		if [ -e "$CKPT_BIN" ] && { [ -L "$CKPT_BIN" ] || [ ! -d "$CKPT_BIN" ] || [ "$(stat -c %u "$CKPT_BIN")" != 0 ]; }; then
			rm -rf "$CKPT_BIN"
		fi
		mkdir -p "$CKPT_BIN"
		chown root:root "$CKPT_BIN"
		chmod 0755 "$CKPT_BIN"
		local name src bin
		for name in stateful sysvipc; do
			src=$FERRY_TESTS_DIR/workloads/$name.c
			bin=$CKPT_BIN/$name
			if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
				gcc -static -O2 -Wall -Wextra -Werror -pthread -o "$bin.tmp" "$src" || exit 1
				chmod 0755 "$bin.tmp"
				mv "$bin.tmp" "$bin"
			fi
		done
	) 9>/run/lock/ferry-test-ckpt-bin.lock
}

# as_who USER CMD...: CMD as USER ("root" runs it as root from /root).
as_who() {
	local u=$1
	shift
	if [ "$u" = root ]; then
		(cd /root && "$@")
	else
		as_user "$u" "$@"
	fi
}

home_of() { getent passwd "$1" | cut -d: -f6; }
ckpt_dir() { echo "$(home_of "$1")/.ferry/checkpoint/$2"; }
inst_log() { echo "$(home_of "$1")/.ferry/instances/$(hostname)/$2.$3"; }

# shellcheck disable=SC2154 # status and stderr are set by bats' run
# start_stateful USER CKPT INSTANCE PROGRESS [WORKLOAD ARGS...]: the workload in a --criu-launch
# instance of the squashfs test image; waits for its first step.
start_stateful() {
	local u=$1 ck=$2 inst=$3 prog=$4
	shift 4
	rm -f "$prog"
	run --separate-stderr as_who "$u" "$FERRY" instance start --criu-launch "$ck" "$IMG" "$inst" \
		"$STATEFUL" --interval 100 "$@" "$prog"
	[ "$status" -eq 0 ] || fail "instance start --criu-launch $ck ($inst) as $u failed ($status): $stderr"
	wait_step "$prog" 1 30
}

# step_of FILE: the counter of the progress line in FILE (empty when none).
step_of() {
	local l
	l=$(head -n1 "$1" 2>/dev/null) || return 0
	case $l in
	"step "*) l=${l#step }; echo "${l%% *}" ;;
	esac
}

# field_of FILE KEY: the word after KEY in the progress line.
field_of() {
	head -n1 "$1" 2>/dev/null | awk -v k="$2" '{for (i = 1; i < NF; i++) if ($i == k) {print $(i + 1); exit}}'
}

# assert_progress_ok FILE: the workload's last word is "step N ok ...", never FAIL.
assert_progress_ok() {
	local l
	l=$(head -n1 "$1" 2>/dev/null || true)
	[[ "$l" == "step "*" ok "* ]] || fail "workload progress '$1': '$l'"
}

# wait_step FILE MIN [SECONDS]: until the counter reaches MIN; fails at once on FAIL.
wait_step() {
	local f=$1 min=$2 t=${3:-20} i s
	for ((i = 0; i < t * 20; i++)); do
		if grep -q '^FAIL' "$f" 2>/dev/null; then
			fail "workload failed: $(cat "$f")"
		fi
		s=$(step_of "$f")
		if [ -n "$s" ] && [ "$s" -ge "$min" ]; then
			return 0
		fi
		sleep 0.05
	done
	fail "workload progress '$f' did not reach step $min in ${t}s: '$(cat "$f" 2>/dev/null)'"
}

# wait_full FILE MIN [SECONDS]: until the workload has verified its whole memory MIN times.
wait_full() {
	local f=$1 min=$2 t=${3:-30} i s
	for ((i = 0; i < t * 20; i++)); do
		grep -q '^FAIL' "$f" 2>/dev/null && fail "workload failed: $(cat "$f")"
		s=$(field_of "$f" full)
		[ -n "$s" ] && [ "$s" -ge "$min" ] && return 0
		sleep 0.05
	done
	fail "workload '$f' did not complete $min full memory checks in ${t}s: '$(cat "$f" 2>/dev/null)'"
}

# The step lines an instance's workload printed to its log.
log_steps() { grep -E '^step [0-9]+ ok ' "$(inst_log "$1" "$2" out)" 2>/dev/null || true; }
last_log_step() { log_steps "$1" "$2" | tail -n1 | awk '{print $2}'; }
first_log_step() { log_steps "$1" "$2" | head -n1 | awk '{print $2}'; }

# assert_log_goes_on USER INSTANCE BEFORE: after a restart of the same instance, its log still
# begins with BEFORE (a copy of it taken before the checkpoint) and its steps go on from there
# without a gap or repeat (a restart never truncates the log).
assert_log_goes_on() {
	local f
	f=$(inst_log "$1" "$2" out)
	cmp -s -n "$(stat -c %s "$3")" "$3" "$f" || fail "the restart lost what '$f' held before the checkpoint"
	assert_consecutive "$f"
}

# assert_consecutive FILE: its step lines count 1, 2, 3... or N, N+1, ... without a gap or repeat.
assert_consecutive() {
	awk '/^step / { if (seen && $2 != prev + 1) { printf "step %s after step %s\n", $2, prev; bad = 1; exit 1 } prev = $2; seen = 1 }
		END { if (!seen) { print "no step lines"; exit 1 } }' "$1" ||
		fail "workload log '$1' does not count on by one: $(awk '/^step /{print $2}' "$1" | tr '\n' ' ' | tail -c 300)"
}

# instance_running USER NAME
instance_running() {
	as_who "$1" "$FERRY" instance list | awk 'NR > 1 {print $1}' | grep -qx "$2"
}

# wait_gone USER NAME: the instance stopped and its processes are gone.
wait_gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		instance_running "$1" "$2" || return 0
		sleep 0.1
	done
	fail "instance '$2' of $1 is still running"
}

# ckpt_state USER NAME: the state 'checkpoint list --json' gives.
ckpt_json_field() {
	local u=$1 name=$2 key=$3
	as_who "$u" "$FERRY" checkpoint list --json | python3 -c 'import json,sys
d = json.load(sys.stdin)
for c in d["checkpoints"]:
    if c["name"] == sys.argv[1]:
        print(c[sys.argv[2]])' "$name" "$key"
}

# copy_ckpt USER SRC DST: root copies checkpoint SRC of USER to DST (same user), keeping root's
# ownership of the generations, without the restore log.
copy_ckpt() {
	local u=$1 src dst
	src=$(ckpt_dir "$u" "$2")
	dst=$(ckpt_dir "$u" "$3")
	rm -rf "$dst"
	cp -a "$src" "$dst"
	rm -f "$dst/restore.log" "$dst/stats-restore"
}

# current_gen DIR: the generation directory 'current' points to.
current_gen() { echo "$1/$(readlink "$1/current")"; }

# manifest_set_file MANIFEST NAME FILE: the entry of NAME gets FILE's size and sha256 (the
# signature line is kept as it was).
manifest_set_file() {
	local m=$1 name=$2 f=$3 size sha
	size=$(stat -c %s "$f")
	sha=$(sha256sum "$f" | cut -d' ' -f1)
	grep -q "^file=$name " "$m" || fail "no entry for $name in $m"
	sed -i "s|^file=$name .*|file=$name $size $sha|" "$m"
}

# replace_sealed GEN NAME NEWFILE: puts NEWFILE in place of GEN/NAME as ferry seals files
# (root's, 0444, one link), so only the contents differ.
replace_sealed() {
	local g=$1 name=$2 new=$3
	cp "$new" "$g/.$name.new"
	chown root:root "$g/.$name.new"
	chmod 0444 "$g/.$name.new"
	mv -f "$g/.$name.new" "$g/$name"
}

# launch_flags_clear GEN MASK: root clears the bits MASK of the flags of GEN's sealed launch
# request and seals it again as a starter would (its manifest entry, the HMAC under the cluster
# key): a generation as an older ferry wrote it.
launch_flags_clear() {
	local g=$1 mask=$2
	python3 - "$g/launch.req" "$mask" "$BATS_TEST_TMPDIR/launch.req" <<-'EOF'
		import struct, sys
		b = bytearray(open(sys.argv[1], "rb").read())
		assert b[:8] == b"FERRYRQ1"
		i = 8
		while i < len(b):
		    tag, n = struct.unpack_from("<HI", b, i)
		    if tag == 2:
		        f = struct.unpack_from("<I", b, i + 6)[0] & ~int(sys.argv[2], 0)
		        struct.pack_into("<I", b, i + 6, f)
		    i += 6 + n
		open(sys.argv[3], "wb").write(b)
	EOF
	replace_sealed "$g" launch.req "$BATS_TEST_TMPDIR/launch.req"
	chmod u+w "$g/manifest"
	manifest_set_file "$g/manifest" launch.req "$g/launch.req"
	python3 - "$g/manifest" /etc/ferry/cluster.key <<-'EOF'
		import hashlib, hmac, sys
		text = open(sys.argv[1]).read()
		body = text[: text.rindex("hmac=")]
		mac = hmac.new(open(sys.argv[2], "rb").read(), body.encode(), hashlib.sha256).hexdigest()
		open(sys.argv[1], "w").write(body + "hmac=" + mac + "\n")
	EOF
	chmod 0444 "$g/manifest"
}

# forge_creds IN OUT UID [CAPS]: OUT is the CRIU core image IN with every uid and gid of the
# task's credentials (core_entry.thread_core.creds, see CRIU's images/core.proto and creds.proto)
# set to UID and all capabilities granted (with CAPS: only the inheritable, permitted, effective
# and ambient sets CAPS; ids and the bounding set left). Prints the uid found before. Edits the protobuf wire format
# directly: no crit or pycriu needed.
forge_creds() {
	python3 - "$@" <<-'EOF'
		import struct, sys

		def varint(b, i):
		    v = s = 0
		    while True:
		        c = b[i]; i += 1
		        v |= (c & 0x7f) << s; s += 7
		        if c < 0x80:
		            return v, i

		def enc_varint(v):
		    out = bytearray()
		    while True:
		        c = v & 0x7f; v >>= 7
		        if v:
		            out.append(c | 0x80)
		        else:
		            out.append(c)
		            return bytes(out)

		def parse(b):
		    i, out = 0, []
		    while i < len(b):
		        key, i = varint(b, i)
		        f, t = key >> 3, key & 7
		        if t == 0:
		            v, i = varint(b, i)
		        elif t == 1:
		            v = b[i:i + 8]; i += 8
		        elif t == 2:
		            n, i = varint(b, i); v = b[i:i + n]; i += n
		        elif t == 5:
		            v = b[i:i + 4]; i += 4
		        else:
		            raise SystemExit("unsupported wire type %d" % t)
		        out.append([f, t, v])
		    return out

		def encode(fields):
		    out = bytearray()
		    for f, t, v in fields:
		        out += enc_varint(f << 3 | t)
		        if t == 0:
		            out += enc_varint(v)
		        elif t == 2:
		            out += enc_varint(len(v)) + v
		        else:
		            out += v
		    return bytes(out)

		def sub(fields, num):
		    for x in fields:
		        if x[0] == num and x[1] == 2:
		            return x
		    raise SystemExit("field %d not found" % num)

		src, dst, uid = sys.argv[1], sys.argv[2], int(sys.argv[3])
		caps = int(sys.argv[4], 0) if len(sys.argv) > 4 else None
		data = open(src, "rb").read()
		magic = struct.unpack_from("<I", data, 0)[0]
		hdr = 8 if magic in (0x54564319, 0x55105940) else 4
		size = struct.unpack_from("<I", data, hdr)[0]
		core = parse(data[hdr + 4:hdr + 4 + size])
		tc = sub(core, 5)             # core_entry.thread_core
		tcf = parse(tc[2])
		cr = sub(tcf, 10)             # thread_core_entry.creds
		crf = parse(cr[2])
		old = [v for f, t, v in crf if f == 1][0]
		new, seen = [], {}
		for f, t, v in crf:
		    if 1 <= f <= 8 and caps is None:  # uid gid euid egid suid sgid fsuid fsgid
		        v = uid
		    if f in (9, 10, 11, 12, 19) and caps is None:  # cap_inh prm eff bnd amb: all
		        v = 0xffffffff
		    elif f in (9, 10, 11, 19) and caps is not None:
		        # each set is two 32-bit words, one field each, the low one first
		        v = caps >> (32 * seen.get(f, 0)) & 0xffffffff
		        seen[f] = seen.get(f, 0) + 1
		    new.append([f, t, v])
		cr[2] = encode(new)
		tc[2] = encode(tcf)
		body = encode(core)
		out = data[:hdr] + struct.pack("<I", len(body)) + body + data[hdr + 4 + size:]
		open(dst, "wb").write(out)
		print(old)
	EOF
}

# CRIU processes of a user, sampled from /proc while a dump runs: WATCH_OUT gets the status
# of every process named criu that appears whose real uid is UID or root (root's would be a
# finding; other users' belong to someone else), until WATCH_OUT.stop exists (or SECONDS pass).
start_criu_watch() {
	local uid=$1 out=$2 t=${3:-60}
	rm -f "$out" "$out.stop"
	python3 - "$uid" "$out" "$t" <<-'EOF' &
		import os, sys, time
		uid, out, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
		seen = {}
		end = time.time() + limit
		while time.time() < end:
		    for p in os.listdir("/proc"):
		        if not p.isdigit() or p in seen:
		            continue
		        try:
		            with open("/proc/%s/comm" % p) as f:
		                if f.read().strip() != "criu":
		                    continue
		            with open("/proc/%s/status" % p) as f:
		                st = f.read()
		        except OSError:
		            continue
		        # another user's CRIU (a benchmark beside the tests) is none of ours; a root
		        # one would be, whoever it works for
		        real = [l.split()[1] for l in st.splitlines() if l.startswith("Uid:")]
		        if real and real[0] not in (uid, "0"):
		            continue
		        seen[p] = st
		    if os.path.exists(out + ".stop"):
		        break
		with open(out + ".tmp", "w") as f:
		    for p, st in seen.items():
		        f.write("== pid %s\n%s" % (p, st))
		os.rename(out + ".tmp", out)
	EOF
	CRIU_WATCH_PID=$!
}

stop_criu_watch() {
	local out=$1
	touch "$out.stop"
	wait "$CRIU_WATCH_PID" || true
	rm -f "$out.stop"
}

# generations DIR: the complete generations (ck-N with a 'current') of a resumable run's
# directory (ferry run/exec --checkpoint), one a line.
generations() {
	local d
	for d in "$1"/ck-*; do
		[ -L "$d/current" ] && basename "$d"
	done
	true
}
