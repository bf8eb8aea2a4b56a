#!/bin/bash
# ferry setup: installs everything ferry needs to build, test and benchmark on
# Debian 12 (bookworm), and a CRIU >= 4.1 with libcriu. Run as root.
#
# Idempotent and fast when everything is in place: it installs only missing
# packages and builds CRIU only when no working one (with libcriu) exists.
#
# Environment (all optional):
#   FERRY_CRIU_VERSION  upstream CRIU version to build (default 4.2.1)
#   FERRY_CRIU_SUITES   Debian suites whose sources offer it (default "trixie sid")
#   FERRY_SETUP_LOG     log file for apt/make output (default /var/log/ferry-setup.log)
set -euo pipefail

LOG=${FERRY_SETUP_LOG:-/var/log/ferry-setup.log}
CACHE=/var/cache/ferry/criu
CRIU_WANT=${FERRY_CRIU_VERSION:-4.2.1}
CRIU_MIN=4.1
CRIU_SUITES=${FERRY_CRIU_SUITES:-trixie sid}
# sha256 of Debian's criu_4.2.1.orig.tar.xz (also verified by apt against the
# signed Sources index); other versions rely on apt's verification alone.
declare -A CRIU_SHA256=(
	[4.2.1]=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
)
PIPE_MAX=4194304

PACKAGES=(
	# build and unit tests
	gcc make pkg-config libcap-dev libcmocka-dev libssl-dev libarchive-dev libzstd-dev
	clang libclang-rt-14-dev clang-format clang-tidy file patchelf
	# images, containers, integration tests
	squashfs-tools busybox-static debootstrap bats bats-assert bats-support
	containernetworking-plugins iproute2 iptables nftables iputils-arping libjson-c-dev util-linux procps psmisc kmod runc
	acl strace python3-cryptography
	# CRIU's own test runner (tests/zdtm/bare.sh)
	python3-yaml
	# the test cluster of slurm.bats (tests/lib/slurm.bash): Slurm 22.05 and munge, started by
	# the tests themselves; libslurm-dev for <slurm/spank.h>
	slurm-wlm slurm-wlm-basic-plugins munge libslurm-dev
	# the self-checking MPI program of mpi.bats (tests/workloads/mpi/mpiring.c: mpicc, Open MPI 4.1,
	# the same as the bench image's, where it runs)
	libopenmpi-dev
	# benchmarks
	iperf3 gnuplot-nox jq
	# CRIU build (and runtime) dependencies
	libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler python3-protobuf
	libnl-3-dev libnet1-dev libbsd-dev libnftables-dev libgnutls28-dev uuid-dev python3 xz-utils
)

say() { printf 'setup: %s\n' "$*"; }
die() {
	printf 'setup: error: %s\n' "$*" >&2
	exit 1
}

# run LABEL CMD...: run CMD with its output going to the log; on failure show
# the tail of that output and stop.
run() {
	local label=$1 rc=0 out
	shift
	out=$(mktemp)
	"$@" >"$out" 2>&1 || rc=$?
	{
		printf '\n### %s: %s\n### %s\n' "$(date -Is)" "$label" "$*"
		cat "$out"
	} >>"$LOG"
	if [ "$rc" -ne 0 ]; then
		printf 'setup: error: %s failed (exit %d); last lines (all in %s):\n' "$label" "$rc" "$LOG" >&2
		tail -n 25 "$out" | sed 's/^/    /' >&2
		rm -f "$out"
		exit 1
	fi
	rm -f "$out"
}

[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo make setup)"
if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
	die "needs a Debian system (apt-get, dpkg-query not found)"
fi

# The criu found on the caller's PATH, before we pin PATH to the system's
# directories (a pyenv or similar python3 must not leak into CRIU's build).
USER_CRIU=$(command -v criu 2>/dev/null || true)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive
# Do not let a calling make (make check -j4 CC=...) leak its flags into CRIU's.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES CFLAGS CPPFLAGS LDFLAGS
umask 022

mkdir -p "$(dirname "$LOG")"
: >>"$LOG"
# One setup at a time (two CI jobs, or make check next to make demo).
exec 9>/run/lock/ferry-setup.lock
flock 9

APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

# ---------------------------------------------------------------- packages
install_packages() {
	local missing=() p installed
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null |
		awk '$2 == "installed" { print $1 }' || true)
	for p in "${PACKAGES[@]}"; do
		grep -qxF "$p" <<<"$installed" || missing+=("$p")
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		say "all ${#PACKAGES[@]} packages present"
		return
	fi
	say "installing ${#missing[@]} packages: ${missing[*]}"
	run "apt-get update" apt-get "${APT_OPTS[@]}" update
	run "apt-get install" apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "${missing[@]}"
}

# ------------------------------------------------------------------- CRIU
# criu_version BIN: print BIN's version if it is >= CRIU_MIN and `criu check`
# passes on this kernel; fail otherwise.
criu_version() {
	local bin=$1 ver out
	[ -x "$bin" ] || return 1
	ver=$(timeout 20 "$bin" --version 2>/dev/null | sed -n 's/^Version: *//p' | head -n 1) || return 1
	[ -n "$ver" ] && dpkg --compare-versions "$ver" ge "$CRIU_MIN" || return 1
	# `criu check` may print a harmless rlimit "Error" line (no CAP_SYS_RESOURCE
	# here): judge by its verdict, not by its exit status.
	out=$(timeout 60 "$bin" check 2>&1 || true)
	grep -q 'Looks good' <<<"$out" || return 1
	printf '%s\n' "$ver"
}

# libcriu_ok: libcriu's header and library are usable with -lcriu.
libcriu_ok() {
	local d rc=0
	d=$(mktemp -d)
	cat >"$d/t.c" <<-'EOF'
		#include <criu/criu.h>
		int main(void)
		{
			return criu_init_opts() < 0;
		}
	EOF
	gcc -o "$d/t" "$d/t.c" -lcriu >/dev/null 2>&1 && "$d/t" || rc=1
	rm -rf "$d"
	return "$rc"
}

# criu_tarball: set CRIU_TARBALL to a cached or freshly fetched
# criu_<ver>.orig.tar.xz from Debian's sources.
criu_tarball() {
	local f ver best="" work list lists s avail debver v
	f=$CACHE/criu_$CRIU_WANT.orig.tar.xz
	if [ -s "$f" ] && tarball_verified "$f" "$CRIU_WANT"; then
		CRIU_TARBALL=$f
		return
	fi
	say "fetching CRIU sources from Debian ($CRIU_SUITES)"
	work=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: $work is local
	trap "rm -rf '$work'" EXIT
	list=$work/sources.list
	lists=$work/lists
	mkdir -p "$lists/partial" "$work/dl"
	# Let apt download as its unprivileged _apt user, as it prefers.
	chmod 0755 "$work"
	if id _apt >/dev/null 2>&1; then
		chown -R _apt:root "$lists" "$work/dl"
	fi
	for s in $CRIU_SUITES; do
		printf 'deb-src http://deb.debian.org/debian %s main\n' "$s"
	done >"$list"
	local O=(-o Dir::Etc::sourcelist="$list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$lists")
	run "apt-get update (CRIU sources: $CRIU_SUITES)" apt-get "${O[@]}" "${APT_OPTS[@]}" update
	# Debian versions on offer, e.g. "4.1.1-1 4.2.1-1"; prefer CRIU_WANT, else
	# the newest one >= CRIU_MIN.
	avail=$(apt-cache "${O[@]}" showsrc criu 2>/dev/null | sed -n 's/^Version: *//p' | sort -u)
	debver=""
	for v in $avail; do
		ver=${v#*:}
		ver=${ver%-*}
		if [ "$ver" = "$CRIU_WANT" ]; then
			debver=$v
			best=$ver
			break
		fi
		if dpkg --compare-versions "$ver" ge "$CRIU_MIN" &&
			{ [ -z "$best" ] || dpkg --compare-versions "$ver" gt "$best"; }; then
			best=$ver
			debver=$v
		fi
	done
	[ -n "$debver" ] || die "no CRIU >= $CRIU_MIN in Debian $CRIU_SUITES sources (found: ${avail:-none})"
	[ "$best" = "$CRIU_WANT" ] || say "CRIU $CRIU_WANT not offered by $CRIU_SUITES; using $best"
	# The .dsc/.debian.tar.xz may answer 404 here: only the orig tarball
	# matters, so check for it rather than apt-get's exit status.
	(cd "$work/dl" && apt-get "${O[@]}" "${APT_OPTS[@]}" source --download-only "criu=$debver") >>"$LOG" 2>&1 || true
	f=$work/dl/criu_$best.orig.tar.xz
	[ -s "$f" ] || {
		tail -n 15 "$LOG" | sed 's/^/    /' >&2
		die "could not download criu_$best.orig.tar.xz (see $LOG)"
	}
	tarball_verified "$f" "$best" || die "checksum mismatch for $f"
	mkdir -p "$CACHE"
	mv -f "$f" "$CACHE/"
	rm -rf "$work"
	trap - EXIT
	CRIU_TARBALL=$CACHE/criu_$best.orig.tar.xz
}

# tarball_verified FILE VER: FILE matches the pinned checksum, if one is known.
tarball_verified() {
	local want=${CRIU_SHA256[$2]:-}
	[ -z "$want" ] && return 0
	[ "$(sha256sum "$1" | cut -d' ' -f1)" = "$want" ]
}

build_criu() {
	local tarball ver src
	criu_tarball
	tarball=$CRIU_TARBALL
	ver=$(basename "$tarball" .orig.tar.xz)
	ver=${ver#criu_}
	src=$CACHE/criu-$ver
	if [ ! -f "$src/.ferry-built" ]; then
		say "building CRIU $ver (about 30 s; log: $LOG)"
		rm -rf "$src"
		run "unpack CRIU" tar -C "$CACHE" -xf "$tarball"
		[ -d "$src" ] || die "$tarball did not unpack to $src"
		# Only the binary and libcriu: no docs (asciidoc/xmlto), no plugins.
		run "build CRIU" make -C "$src" -j"$(nproc)" PYTHON=/usr/bin/python3 criu lib
		touch "$src/.ferry-built"
	fi
	# LIBDIR: /usr/local/lib rather than CRIU's multiarch default;
	# SKIP_PIP_INSTALL: no pycriu (not needed, and pip would touch the system).
	run "install CRIU" make -C "$src" PYTHON=/usr/bin/python3 PREFIX=/usr/local LIBDIR=/usr/local/lib \
		SKIP_PIP_INSTALL=1 install-criu install-lib
	run "ldconfig" ldconfig
}

setup_criu() {
	local bin ver seen="" why=""
	# A CRIU already on PATH (the caller's, or ours from an earlier run).
	for bin in "$USER_CRIU" "$(command -v criu 2>/dev/null || true)"; do
		if [ -z "$bin" ] || [ "$bin" = "$seen" ]; then
			continue
		fi
		seen=$bin
		if ! ver=$(criu_version "$bin"); then
			why="$bin is older than $CRIU_MIN or fails 'criu check' here"
		elif ! libcriu_ok; then
			why="CRIU $ver ($bin) is fine but libcriu is missing"
		else
			say "CRIU $ver ok ($bin, libcriu: -lcriu)"
			return
		fi
	done
	[ -z "$why" ] || say "$why"
	build_criu
	bin=/usr/local/sbin/criu
	ver=$(criu_version "$bin") || {
		timeout 60 "$bin" check 2>&1 | tail -n 10 | sed 's/^/    /' >&2 || true
		die "$bin check failed"
	}
	libcriu_ok || die "libcriu does not link: gcc t.c -lcriu (/usr/local/include/criu/criu.h, /usr/local/lib/libcriu.so)"
	say "CRIU $ver ok ($bin, libcriu: -lcriu)"
}

# ----------------------------------------------------------------- an old CRIU, for the tests
# Debian 12's own criu package (3.17.1), unpacked, never installed: it fails
# 'criu check' on kernels >= 6.13, so the tests use it as a node whose CRIU
# cannot restore (tests/integration/migrate-fit.bats). Kept in the cache.
OLD_CRIU_DIR=/var/cache/ferry/criu-debian
setup_old_criu() {
	if [ -x "$OLD_CRIU_DIR/usr/sbin/criu" ]; then
		return
	fi
	local work
	work=$(mktemp -d)
	chmod 0755 "$work"
	# (apt's _apt user cannot write in a root-only temp directory: it warns and
	# downloads as root, which is what we want here)
	(cd "$work" && apt-get download criu) >>"$LOG" 2>&1 || {
		rm -rf "$work"
		die "could not download Debian's criu package (see $LOG)"
	}
	rm -rf "$OLD_CRIU_DIR"
	run "unpack Debian's criu" dpkg-deb -x "$work"/criu_*.deb "$OLD_CRIU_DIR"
	rm -rf "$work"
	say "Debian's CRIU $("$OLD_CRIU_DIR/usr/sbin/criu" --version | sed -n 's/^Version: //p') unpacked for the tests ($OLD_CRIU_DIR)"
}

# ----------------------------------------------------------------- sysctl
setup_sysctl() {
	# Live migration (CRIU lazy pages): the dumping CRIU, as the user, keeps the job's whole
	# memory in pipes while it serves it, and asks for a ~3.3 MB pipe. Without
	# CAP_SYS_RESOURCE, the default 1 MiB pipe-max-size makes it fail, and so does the soft
	# limit on a user's pipe pages (16384 = 64 MiB): past it, new pipes get 2 pages and
	# CRIU's tee of a page run fails. 0 lifts the soft limit (pipe pages are charged to the
	# user's memory cgroup like the job's own memory).
	local cur
	cur=$(cat /proc/sys/fs/pipe-max-size)
	if [ "$cur" -lt "$PIPE_MAX" ]; then
		run "sysctl" sysctl -w fs.pipe-max-size="$PIPE_MAX"
		say "fs.pipe-max-size=$PIPE_MAX"
	fi
	if [ "$(cat /proc/sys/fs/pipe-user-pages-soft)" != 0 ]; then
		run "sysctl" sysctl -w fs.pipe-user-pages-soft=0
		say "fs.pipe-user-pages-soft=0"
	fi
	if [ -d /etc/sysctl.d ] && ! grep -qs pipe-user-pages-soft /etc/sysctl.d/60-ferry.conf; then
		printf '# ferry: CRIU lazy pages (live migration) need a pipe of about 3.3 MB, and pipes\n# that hold the whole job'"'"'s memory while it is served\nfs.pipe-max-size = %s\nfs.pipe-user-pages-soft = 0\n' \
			"$PIPE_MAX" >/etc/sysctl.d/60-ferry.conf
	fi
}

start=$(date +%s.%N)
install_packages
setup_criu
setup_old_criu
setup_sysctl
say "done in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"
