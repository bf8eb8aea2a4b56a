# shellcheck shell=bash
# common.bash — loaded by every tests/integration/*.bats file (`load ../lib/common`).
#
# Runs as root against the INSTALLED ferry (/usr/local/bin/ferry and the setuid
# /usr/local/libexec/ferry/ferry-starter). It provides:
#   - bats-support / bats-assert (Debian's packages, /usr/lib/bats/...);
#   - two unprivileged test users, ferrytest1 (also in the supplementary group
#     ferrytestgrp) and ferrytest2, created idempotently, homes mode 0700;
#     as_user1 / as_user2 CMD... run CMD as them from their home;
#   - the busybox-static test image in three forms (sandbox directory, squashfs,
#     SIF), built once and cached in the root-owned FERRY_TEST_IMAGES
#     (rebuilt when missing, when the recipe or busybox changes, and the SIF when
#     the installed ferry is newer than it); each .bats file runs on its own
#     copy in IMAGES (use_image FORM sets IMG);
#   - ferry_teardown: stops every instance the tests made and fails the test
#     when anything is left behind (instance records, processes of the test
#     users, loop devices on the test images, mounts under ferry's stage dir);
#   - assert_ferry_error: "one line on stderr starting 'ferry: ', exit 255";
#   - static test programs from tests/workloads/*.c in IMAGES/bin;
#   - forge_request: a request encoder in bash (src/lib/request.c's format) to
#     talk to ferry-starter directly;
#   - conf_set / conf_restore for tests that need other settings: a drop-in of the
#     tests' own in /etc/ferry/ferry.conf.d, never an edit of ferry.conf;
#   - a lock so that the .bats files of two concurrent runs take turns.
# Nothing here uses the network.

bats_require_minimum_version 1.5.0

load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C

FERRY_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FERRY=/usr/local/bin/ferry
STARTER=/usr/local/libexec/ferry/ferry-starter
FERRY_CONF=/etc/ferry/ferry.conf
FERRY_RUNDIR=/run/ferry
# rundir_of UID: where the starter keeps UID's instance records on this node (the node is the
# network namespace: the simulated nodes of one machine keep apart, see ferry_node_id)
rundir_of() { echo "$FERRY_RUNDIR/$1/n$(stat -L -c %i /proc/self/ns/net)"; }
FERRY_STAGE=/var/lib/ferry/mnt
FERRY_TEST_IMAGES=${FERRY_TEST_IMAGES:-/var/tmp/ferry-test-images}
FERRY_TEST_SHARED=/var/tmp/ferry-test-shared # an 'allow bind path' for binds.bats
IMAGE_RECIPE_VERSION=3                       # bump when the recipe below changes

U1=ferrytest1
U2=ferrytest2
TEST_GROUP=ferrytestgrp
# FERRY_TEST_FORMS="dir sqsh" restricts the image forms the loops go over.
read -ra FORMS <<<"${FERRY_TEST_FORMS:-dir sqsh sif}"
# Names of the instances root starts in the tests: teardown stops only these,
# never another root instance that someone else runs on this machine.
ROOT_INSTANCE_PREFIX=ft-

# ---------------------------------------------------------------- users

ensure_test_users() {
	(
		flock 9
		getent group "$TEST_GROUP" >/dev/null || groupadd "$TEST_GROUP"
		for u in "$U1" "$U2"; do
			if ! id -u "$u" >/dev/null 2>&1; then
				useradd -m -U -s /bin/sh "$u"
			fi
			local h
			h=$(getent passwd "$u" | cut -d: -f6)
			[ -d "$h" ] || { mkdir -p "$h" && cp -rT /etc/skel "$h" && chown -R "$u:" "$h"; }
			chmod 0700 "$h"
		done
		id -nG "$U1" | tr ' ' '\n' | grep -qx "$TEST_GROUP" || usermod -aG "$TEST_GROUP" "$U1"
	) 9>/run/lock/ferry-test-users.lock
	U1_UID=$(id -u "$U1")
	U2_UID=$(id -u "$U2")
	U1_HOME=$(getent passwd "$U1" | cut -d: -f6)
	U2_HOME=$(getent passwd "$U2" | cut -d: -f6)
	export U1_UID U2_UID U1_HOME U2_HOME
}

# as_user USER CMD...: CMD as USER (its groups, HOME, USER, LOGNAME), from its home.
as_user() {
	local u=$1
	shift
	runuser -u "$u" -- sh -c 'cd "$HOME" || exit 99; exec "$@"' ferry-test "$@"
}
as_user1() { as_user "$U1" "$@"; }
as_user2() { as_user "$U2" "$@"; }
# as_root CMD...: same shape as as_user1 for loops over identities.
as_root() { "$@"; }

# ---------------------------------------------------------------- images

# IMAGES: this file's private copy of the cache (see ferry_suite_setup), so
# that nobody else using the cache can be mistaken for a leak of ours.
image_path() {
	case $1 in
	dir) echo "$IMAGES/busybox.sandbox" ;;
	sqsh) echo "$IMAGES/busybox.sqsh" ;;
	sif) echo "$IMAGES/busybox.sif" ;;
	*) return 1 ;;
	esac
}

# make_sandbox DIR: the busybox-static sandbox (DIR must not exist).
make_sandbox() {
	local d=$1 a
	mkdir -p "$d"/{bin,etc,root,proc,sys,dev,.singularity.d/env}
	cp /bin/busybox "$d/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -s busybox "$d/bin/$a"
	done
	ln -s bin "$d/sbin"
	mkdir -p "$d/usr"
	ln -s ../bin "$d/usr/bin"
	ln -s ../bin "$d/usr/sbin"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$d/etc/passwd"
	printf 'root:x:0:\n' >"$d/etc/group"
	printf 'ferry busybox test image\n' >"$d/etc/ferry-test-image"
	cat >"$d/.singularity.d/runscript" <<-'EOF'
		#!/bin/sh
		echo "runscript args: $*"
		echo "FOO_FROM_IMAGE=${FOO_FROM_IMAGE:-unset}"
	EOF
	printf 'export FOO_FROM_IMAGE=1\n' >"$d/.singularity.d/env/90-environment.sh"
	chmod 0755 "$d/.singularity.d/runscript"
	chmod -R a+rX,go-w "$d"
}

_is_sif() {
	[ "$(dd if="$1" bs=1 skip=32 count=9 2>/dev/null)" = SIF_MAGIC ]
}

_build_images_locked() {
	local dir=$FERRY_TEST_IMAGES want have tmp
	if [ -e "$dir" ] && { [ ! -d "$dir" ] || [ -L "$dir" ] || [ "$(stat -c %u "$dir")" != 0 ]; }; then
		rm -rf "$dir"
	fi
	mkdir -p "$dir"
	chown root:root "$dir"
	chmod 0755 "$dir"
	want="recipe $IMAGE_RECIPE_VERSION busybox $(sha256sum /bin/busybox | cut -d' ' -f1)"
	have=$(cat "$dir/stamp" 2>/dev/null || true)
	if [ "$want" != "$have" ]; then
		rm -rf "${dir:?}"/*
	fi
	if [ ! -d "$dir/busybox.sandbox" ]; then
		tmp=$dir/.sandbox.tmp
		rm -rf "$tmp"
		make_sandbox "$tmp"
		mv "$tmp" "$dir/busybox.sandbox"
		rm -f "$dir/busybox.sqsh" "$dir/busybox.sif"
	fi
	if [ ! -s "$dir/busybox.sqsh" ]; then
		rm -f "$dir/.sqsh.tmp"
		mksquashfs "$dir/busybox.sandbox" "$dir/.sqsh.tmp" -all-root -noappend -no-progress -quiet >/dev/null
		chmod 0644 "$dir/.sqsh.tmp"
		mv "$dir/.sqsh.tmp" "$dir/busybox.sqsh"
	fi
	if [ ! -s "$dir/busybox.sif" ] || [ "$FERRY" -nt "$dir/busybox.sif" ] || ! _is_sif "$dir/busybox.sif"; then
		rm -f "$dir/busybox.sif" "$dir/.sif.tmp" "$dir/sif.error"
		if "$FERRY" build "$dir/.sif.tmp" "$dir/busybox.sandbox" >"$dir/sif.log" 2>&1 && _is_sif "$dir/.sif.tmp"; then
			chmod 0644 "$dir/.sif.tmp"
			mv "$dir/.sif.tmp" "$dir/busybox.sif"
		else
			{
				echo "'ferry build $dir/busybox.sif $dir/busybox.sandbox' did not make a SIF:"
				cat "$dir/sif.log"
			} >"$dir/sif.error"
			rm -f "$dir/.sif.tmp"
		fi
	fi
	echo "$want" >"$dir/stamp"
	# small static C programs for the tests (tests/workloads/*.c), in $dir/bin
	local src bin
	mkdir -p "$dir/bin"
	chmod 0755 "$dir/bin"
	for src in "$FERRY_TESTS_DIR"/workloads/*.c; do
		[ -e "$src" ] || continue
		bin=$dir/bin/$(basename "$src" .c)
		if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
			gcc -static -O2 -Wall -o "$bin.tmp" "$src"
			chmod 0755 "$bin.tmp"
			mv "$bin.tmp" "$bin"
		fi
	done
}

build_test_images() {
	(
		flock 9
		_build_images_locked
	) 9>/run/lock/ferry-test-images.lock
}

# use_image FORM: sets IMG to the test image of that form; fails the test when
# that form could not be built (only the SIF can: it needs 'ferry build').
use_image() {
	IMG=$(image_path "$1") || fail "unknown image form '$1'"
	FORM=$1
	echo "# image form: $1 ($IMG)"
	if [ ! -e "$IMG" ]; then
		if [ "$1" = sif ] && [ -e "$FERRY_TEST_IMAGES/sif.error" ]; then
			fail "$(cat "$FERRY_TEST_IMAGES/sif.error")"
		fi
		fail "test image '$IMG' is missing"
	fi
}

# ---------------------------------------------------------------- setup / teardown

# Call from setup_file: users, images, the shared bind dir, a sane start.
ferry_suite_setup() {
	if [ "$(id -u)" != 0 ]; then
		echo "the integration tests run as root" >&2
		return 1
	fi
	if ! [ -x "$FERRY" ] || ! [ -u "$STARTER" ]; then
		echo "ferry is not installed (make && make install)" >&2
		return 1
	fi
	# Two runs at once would share the test users (one's 'instance stop --all'
	# would stop the other's instances): .bats files of concurrent runs take
	# turns. Released in ferry_suite_teardown (or when this file's bats exits).
	exec {FERRY_SUITE_LOCK_FD}>/run/lock/ferry-test-suite.lock
	if ! flock -n "$FERRY_SUITE_LOCK_FD"; then
		echo "# waiting for another ferry test run to finish its .bats file" >&3
		flock -w 1200 "$FERRY_SUITE_LOCK_FD" || {
			echo "another ferry test run holds /run/lock/ferry-test-suite.lock" >&2
			return 1
		}
	fi
	export FERRY_SUITE_LOCK_FD
	ensure_test_users
	build_test_images
	# a private copy for this file (a few MB): the loop-device checks then see
	# only our own containers, whoever else uses the cache
	find /var/tmp -maxdepth 1 -name 'ferry-test-run.*' -mmin +600 -exec rm -rf {} + 2>/dev/null || true
	IMAGES=$(mktemp -d /var/tmp/ferry-test-run.XXXXXX)
	chmod 0755 "$IMAGES"
	cp -a "$FERRY_TEST_IMAGES/busybox.sandbox" "$FERRY_TEST_IMAGES/busybox.sqsh" "$FERRY_TEST_IMAGES/bin" "$IMAGES/"
	[ ! -e "$FERRY_TEST_IMAGES/busybox.sif" ] || cp -a "$FERRY_TEST_IMAGES/busybox.sif" "$IMAGES/"
	export IMAGES
	mkdir -p "$FERRY_TEST_SHARED"
	chmod 0755 "$FERRY_TEST_SHARED"
	echo "shared data" >"$FERRY_TEST_SHARED/shared.txt"
	chmod 0644 "$FERRY_TEST_SHARED/shared.txt"
	# A previous interrupted run may have left instances, or its settings: start from nothing.
	conf_restore
	stop_test_instances
}

# Call from teardown_file.
ferry_suite_teardown() {
	stop_test_instances
	conf_restore
	if [ -n "${IMAGES:-}" ] && [[ "$IMAGES" == /var/tmp/ferry-test-run.* ]]; then
		wait_clean 10 >/dev/null 2>&1 || true
		rm -rf "$IMAGES"
	fi
	if [ -n "${FERRY_SUITE_LOCK_FD:-}" ]; then
		flock -u "$FERRY_SUITE_LOCK_FD" 2>/dev/null || true
	fi
}

# Call from setup.
ferry_test_setup() {
	ensure_test_users
	# a per-test scratch directory in each user's home (homes are bound by default)
	U1_TMP=$(as_user1 mktemp -d "$U1_HOME/ft.XXXXXX")
	U2_TMP=$(as_user2 mktemp -d "$U2_HOME/ft.XXXXXX")
	export U1_TMP U2_TMP
	HOST_MOUNTS_BEFORE=$(host_mounts)
}

# The host's mounts where a container escaping its root would land (other
# people's unrelated mounts elsewhere, e.g. under /tmp/xyz, are not looked at).
host_mounts() {
	awk '{print $5, $9, $10}' /proc/self/mountinfo |
		grep -E '^(/|/etc(/.*)?|/root(/.*)?|/home(/.*)?|/tmp|/var/tmp|/var/tmp/ferry-test[^ ]*|/var/lib/ferry[^ ]*|/proc|/sys|/dev|/usr(/.*)?|/bin|/sbin|/run/ferry[^ ]*) ' |
		sort
}

stop_test_instances() {
	local u n
	for u in "$U1" "$U2"; do
		id -u "$u" >/dev/null 2>&1 || continue
		as_user "$u" "$FERRY" instance stop --all --timeout 3 >/dev/null 2>&1 || true
	done
	for n in $(root_instances); do
		"$FERRY" instance stop --timeout 3 "$n" >/dev/null 2>&1 || true
	done
}

# The names of root's instances that the tests started.
root_instances() {
	"$FERRY" instance list --json 2>/dev/null |
		grep -o "\"instance\": \"${ROOT_INSTANCE_PREFIX}[^\"]*\"" | cut -d'"' -f4 || true
}

# leftovers: prints what the tests left behind (empty when clean).
leftovers() {
	local u uid f l n
	for u in "$U1" "$U2"; do
		uid=$(id -u "$u")
		if [ -d "$(rundir_of "$uid")" ]; then
			for f in "$(rundir_of "$uid")"/*; do
				[ -e "$f" ] && echo "instance record $f"
			done
		fi
		pgrep -u "$u" -a 2>/dev/null | sed "s/^/process of $u: /"
	done
	# root's records, read directly: 'instance list' would drop stale ones
	for f in "$(rundir_of 0)/$ROOT_INSTANCE_PREFIX"*; do
		[ -e "$f" ] && echo "instance record $f"
	done
	for f in "$IMAGES"/*.sqsh "$IMAGES"/*.sif ${EXTRA_IMAGES:-}; do
		[ -f "$f" ] || continue
		l=$(losetup -j "$f" 2>/dev/null)
		[ -z "$l" ] || echo "loop device on $f: $l"
	done
	grep -F " $FERRY_STAGE" /proc/self/mountinfo | sed 's/^/host mount: /'
	true
}

# wait_clean [SECONDS]: waits until nothing is left behind; prints what is when
# it gives up and fails.
wait_clean() {
	local t=${1:-10} i out
	for ((i = 0; i < t * 10; i++)); do
		out=$(leftovers)
		[ -z "$out" ] && return 0
		sleep 0.1
	done
	echo "left behind after ${t}s:" >&2
	echo "$out" >&2
	return 1
}

# Call from teardown: stop what the test started, then fail when anything
# stays (records, processes, loop devices, stage mounts, new host mounts).
ferry_teardown() {
	local rc=0 out
	stop_test_instances
	wait_clean 10 || rc=1
	if [ "$rc" -ne 0 ]; then
		# do not let one test's garbage fail the next ones
		for u in "$U1" "$U2"; do pkill -KILL -u "$u" 2>/dev/null || true; done
		sleep 0.5
	fi
	if [ -n "${HOST_MOUNTS_BEFORE+x}" ]; then
		out=$(diff <(echo "$HOST_MOUNTS_BEFORE") <(host_mounts) | grep '^>' || true)
		if [ -n "$out" ]; then
			echo "new mounts in the host's mount namespace:" >&2
			echo "$out" >&2
			rc=1
		fi
	fi
	[ -z "${U1_TMP:-}" ] || rm -rf "$U1_TMP"
	[ -z "${U2_TMP:-}" ] || rm -rf "$U2_TMP"
	return "$rc"
}

# assert_instance_gone USER NAME: no record, not listed.
assert_instance_gone() {
	local u=$1 name=$2 uid i
	uid=$(id -u "$u")
	for ((i = 0; i < 50; i++)); do
		[ -e "$(rundir_of "$uid")/$name" ] || break
		sleep 0.1
	done
	[ ! -e "$(rundir_of "$uid")/$name" ] || fail "record $(rundir_of "$uid")/$name still there after stop"
	local out
	if [ "$u" = root ]; then out=$("$FERRY" instance list); else out=$(as_user "$u" "$FERRY" instance list); fi
	if grep -qE "^$name( |\$)" <<<"$out"; then
		fail "instance '$name' still listed: $out"
	fi
}

# instance_pid USER NAME: the pid 'instance list --json' gives.
instance_pid() {
	local u=$1 name=$2 out
	if [ "$u" = root ]; then out=$("$FERRY" instance list --json); else out=$(as_user "$u" "$FERRY" instance list --json); fi
	python3 -c 'import json,sys
d = json.load(sys.stdin)
for i in d["instances"]:
    if i["instance"] == sys.argv[1]:
        print(i["pid"])' "$name" <<<"$out"
}

# kill_when_gone WATCH VICTIM: SIGKILL to VICTIM the moment WATCH ends (both pids, held by
# pidfds from the start, so that neither can be another process by then; at most 120 s): a race
# against what VICTIM does next. A VICTIM already gone is no error (the race was lost).
kill_when_gone() {
	python3 -c '
import os, select, signal, sys
w, s = os.pidfd_open(int(sys.argv[1])), os.pidfd_open(int(sys.argv[2]))
select.select([w], [], [], 120)
try:
    signal.pidfd_send_signal(s, signal.SIGKILL)
except ProcessLookupError:
    pass' "$1" "$2"
}

# guarded_starter LIST-CMD...: prints the first pid LIST-CMD prints that has a root ferry-starter
# child (a dumping starter with its guard), asking again for up to 30 s; fails if none came.
guarded_starter() {
	local i p
	for ((i = 0; i < 1500; i++)); do
		for p in $("$@"); do
			! pgrep -P "$p" -U 0 -x ferry-starter >/dev/null || { echo "$p" && return 0; }
		done
		sleep 0.02
	done
	return 1
}

# wait_for COND-CMD... : retries for up to 10 s.
wait_for() {
	local i
	for ((i = 0; i < 100; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- assertions

# After `run --separate-stderr ...`: ferry's own error — exit 255 (or the
# given status), exactly one line on stderr starting "ferry: ", and when a
# pattern is given, that line matches it (grep -E).
assert_ferry_error() {
	local pattern=${1:-} want=${2:-255} nlines
	if [ "$status" -ne "$want" ]; then
		fail "expected exit status $want, got $status (stdout: '$output', stderr: '$stderr')"
	fi
	nlines=$(printf '%s' "$stderr" | grep -c '' || true)
	if [ "$nlines" -ne 1 ]; then
		fail "expected one line on stderr, got $nlines: '$stderr'"
	fi
	[[ "$stderr" == "ferry: "* ]] || fail "stderr does not start with 'ferry: ': '$stderr'"
	if [ -n "$pattern" ] && ! grep -qE -- "$pattern" <<<"$stderr"; then
		fail "stderr '$stderr' does not match /$pattern/"
	fi
	true
}

# ---------------------------------------------------------------- ferry.conf

# The tests never edit the admin's ferry.conf: their settings are a drop-in of their own
# (ferry.conf(5), DROP-INS), which replaces what ferry.conf says for the keys it sets, and which
# conf_restore (and ferry_suite_setup/teardown) removes. They rely on nothing of the installed
# ferry.conf beyond the shipped defaults (etc/ferry.conf).
FERRY_CONF_D=$FERRY_CONF.d
FERRY_TEST_DROPIN=$FERRY_CONF_D/99-ferry-test.conf
FERRY_SHIPPED_CONF=$FERRY_TESTS_DIR/../etc/ferry.conf
# the keys that repeat (src/lib/config.c): a drop-in's lines of one replace the whole list
CONF_LIST_KEYS='allow bind path|allow net network|allow net ip range|network parent|ferryd peer'

_conf_key() { sed -E 's/^[[:space:]]*([^=]*[^=[:space:]])[[:space:]]*=.*/\1/' <<<"$1"; }

# conf_save: kept for its callers; there is nothing to save any more.
conf_save() { :; }

# conf_set 'KEY = VALUE'...: the tests' drop-in holds these settings, and only these (each call
# replaces the previous one's). A scalar key given twice keeps the last; a list key keeps every
# line (several 'allow net network' lines make the list); 'allow bind path' lines add to the
# shipped ferry.conf's (/tmp), as the old conf_set added to the installed file's.
conf_set() {
	local -a keys=() lines=()
	local line i j later tmp=$FERRY_CONF_D/.99-ferry-test.conf.tmp
	for line in "$@"; do
		lines+=("$line")
		keys+=("$(_conf_key "$line")")
	done
	install -d -o root -g root -m 0755 "$FERRY_CONF_D"
	{
		echo "# the test suite's settings (tests/lib/common.bash conf_set); removed when it ends"
		if printf '%s\n' "${keys[@]}" | grep -qx 'allow bind path'; then
			grep -E '^[[:space:]]*allow bind path[[:space:]]*=' "$FERRY_SHIPPED_CONF" || true
		fi
		for ((i = 0; i < ${#lines[@]}; i++)); do
			later=
			if ! grep -qxE "$CONF_LIST_KEYS" <<<"${keys[i]}"; then
				for ((j = i + 1; j < ${#lines[@]}; j++)); do
					[ "${keys[j]}" != "${keys[i]}" ] || later=1
				done
			fi
			[ -n "$later" ] || printf '%s\n' "${lines[i]}"
		done
	} >"$tmp"
	chown root:root "$tmp"
	chmod 0644 "$tmp"
	mv -f "$tmp" "$FERRY_TEST_DROPIN"
}

# conf_restore: the tests' drop-in gone; ferry.conf (never touched) rules again.
conf_restore() {
	rm -f "$FERRY_TEST_DROPIN" "$FERRY_CONF_D/.99-ferry-test.conf.tmp"
}

# ---------------------------------------------------------------- requests

# forge_request OPTIONS... > FILE: a request in src/lib/request.c's encoding:
# "FERRYRQ1", records (u16 tag LE, u32 length LE, bytes), an END record.
#   --op N (1 exec, 2 instance start, 3 join, 4 list)   --flags N
#   --image P  --instance N  --cwd P  --pwd P  --hostname H
#   --arg A (repeatable)  --env K=V (repeatable)  --bind RO SRC DST (repeatable)
_bytes() { # N...: the bytes with these values
	local f
	printf -v f '\\x%02x' "$@"
	printf "$f"
}
_le16() { _bytes $(($1 & 255)) $((($1 >> 8) & 255)); }
_le32() { _bytes $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
_rec_str() { # TAG STRING
	local LC_ALL=C
	_le16 "$1"
	_le32 "${#2}"
	printf '%s' "$2"
}
forge_request() {
	local LC_ALL=C op=0 flags=0
	local -a recs=()
	printf 'FERRYRQ1'
	while [ $# -gt 0 ]; do
		case $1 in
		--op) op=$2; shift 2 ;;
		--flags) flags=$2; shift 2 ;;
		*) break ;;
		esac
	done
	_le16 1; _le32 4; _le32 "$op"
	_le16 2; _le32 4; _le32 "$flags"
	while [ $# -gt 0 ]; do
		case $1 in
		--image) _rec_str 3 "$2"; shift 2 ;;
		--instance) _rec_str 4 "$2"; shift 2 ;;
		--cwd) _rec_str 5 "$2"; shift 2 ;;
		--pwd) _rec_str 6 "$2"; shift 2 ;;
		--hostname) _rec_str 7 "$2"; shift 2 ;;
		--arg) _rec_str 8 "$2"; shift 2 ;;
		--env) _rec_str 9 "$2"; shift 2 ;;
		--checkpoint) _rec_str 11 "$2"; shift 2 ;;
		--networks) _rec_str 13 "$2"; shift 2 ;;
		--network-args) _rec_str 14 "$2"; shift 2 ;;
		--group) _rec_str 15 "$2"; shift 2 ;;
		--bind)
			_le16 10
			_le32 $((1 + 4 + ${#3} + 4 + ${#4}))
			_bytes "$2"
			_le32 "${#3}"
			printf '%s' "$3"
			_le32 "${#4}"
			printf '%s' "$4"
			shift 4
			;;
		*)
			echo "forge_request: unknown option '$1'" >&2
			return 1
			;;
		esac
	done
	_le16 65535
	_le32 0
}

# run_starter USER REQFILE: runs ferry-starter as USER with REQFILE on fd 3.
starter_as() {
	local u=$1 f=$2
	if [ "$u" = root ]; then
		"$STARTER" 3<"$f"
	else
		as_user "$u" sh -c 'exec "$1" 3<"$2"' ferry-test "$STARTER" "$f"
	fi
}
