#!/usr/bin/env bats
# Issue 11, F3: the user's image runs code inside CRIU while CRIU holds capabilities.
#
# CRIU runs inside the instance (its root is the user's image) as the user with
# CAP_CHECKPOINT_RESTORE (+CAP_SETPCAP at restore). Whatever CRIU, its dynamic loader or its
# libraries find by a compiled-in path or by PATH resolves in the image, which the user made. The
# attacker here is ferrytest1 with an image of their own (a copy of the busybox sandbox): every
# way we know for an image to feed a process code or configuration is planted in it, with a
# payload that records where it ran, as which uid, with which effective capabilities. The class
# holds when no payload ever runs, and no planted file is ever read, in a process that holds a
# capability, through a dump and a restart.
#
# The images' own programs are static (busybox, the stateful workload), so a run of the shared
# payload can only come from a dynamic program: CRIU (or the starter's processes in the
# container). The workload may load what it likes (it is the user's, without capabilities), so
# only runs with a non-zero CapEff, or in a CRIU, count.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"

NETCONF=/etc/ferry/network/ftcs.conflist

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
}

teardown_file() {
	ferry_suite_teardown
	rm -rf "$U1_HOME"/.ferry/checkpoint/ftcs-*
}

setup() {
	ferry_test_setup
	NODE=
	T=ftcs-$BATS_TEST_NUMBER
	rm -rf "$U1_HOME/.ferry/checkpoint/$T"
	EVIL_LOG=$U1_TMP/evil.log
	WATCH_PID=
}

teardown() {
	[ -z "$WATCH_PID" ] || { touch "$BATS_TEST_TMPDIR/watch.stop" && wait "$WATCH_PID" 2>/dev/null; } || true
	u1 "$FERRY" instance stop --all >/dev/null 2>&1 || true
	conf_restore
	if [ -n "$NODE" ]; then
		nodes_down
		rm -f "$NETCONF"
	fi
	ferry_teardown
}

# u1 CMD...: CMD as user1, from their home, in the network namespace of node $NODE if set
u1() {
	if [ -n "$NODE" ]; then
		on_node "$NODE" runuser -u "$U1" -- env -C "$U1_HOME" "$@"
	else
		as_user1 "$@"
	fi
}

# u1_gone INST: the instance has ended (its node's list no longer has it)
u1_gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		u1 "$FERRY" instance list | awk 'NR > 1 {print $1}' | grep -qx "$1" || return 0
		sleep 0.1
	done
	fail "instance '$1' of $U1 is still running"
}

# payload VECTOR OUT [SONAME]: a shared object whose constructor appends one line to $EVIL_LOG:
# "VECTOR pid=P uid=U exe=E CapEff=C". It does nothing else: CRIU goes on as if nothing ran.
payload() {
	local vector=$1 out=$2 soname=${3:-}
	cat >"$BATS_TEST_TMPDIR/payload.c" <<-'EOF'
		#include <fcntl.h>
		#include <stdio.h>
		#include <string.h>
		#include <unistd.h>
		__attribute__((constructor)) static void payload(void)
		{
			char st[8192] = "", exe[256] = "?", cap[32] = "?";
			int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				ssize_t n = read(fd, st, sizeof(st) - 1);
				st[n > 0 ? n : 0] = 0;
				close(fd);
			}
			char *c = strstr(st, "CapEff:\t");
			if (c)
				sscanf(c + 8, "%31s", cap);
			ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
			if (n > 0)
				exe[n] = 0;
			fd = open(LOG, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
			if (fd >= 0) {
				dprintf(fd, "%s pid=%d uid=%d exe=%s CapEff=%s\n", VECTOR, getpid(), getuid(), exe, cap);
				close(fd);
			}
		}
	EOF
	gcc -shared -fPIC -O2 -o "$out" ${soname:+-Wl,-soname,"$soname"} \
		-DLOG="\"$EVIL_LOG\"" -DVECTOR="\"$vector\"" "$BATS_TEST_TMPDIR/payload.c" ||
		fail "cannot build the payload"
	chmod 0755 "$out"
}

# user_image DIR: user1's own copy of the busybox sandbox at DIR (owned by user1)
user_image() {
	as_user1 cp -a "$(image_path dir)" "$1" || fail "cannot copy the image as $U1"
}

# plant SRC DST-IN-IMAGE: user1 writes SRC's bytes into the image at DST (making directories)
plant() {
	as_user1 sh -c 'mkdir -p "${1%/*}" && rm -f "$1" && cat >"$1"' sh "$IMGDIR$2" <"$1" ||
		fail "cannot plant $2"
}

# evil_runs: the payload runs that count (a capability, or a CRIU), one a line
evil_runs() {
	[ -e "$EVIL_LOG" ] || return 0
	grep -v 'CapEff=0000000000000000' "$EVIL_LOG" || true
	grep 'CapEff=0000000000000000' "$EVIL_LOG" | grep -F 'exe=/.ferry/criu/' || true
}

# dump_and_restart INST CKPT: dump the running instance, restart it; both must succeed and the
# workload must go on where it was (the image must not break CRIU either)
dump_and_restart() {
	local inst=$1 ck=$2 prog=$3
	run --separate-stderr u1 "$FERRY" checkpoint instance --criu "$inst"
	DUMP_STATUS=$status DUMP_ERR=$stderr
	u1_gone "$inst"
	run --separate-stderr u1 "$FERRY" instance start --criu-restart "$ck"
	RESTART_STATUS=$status RESTART_ERR=$stderr
}

# start_in_image INST CKPT PROGRESS [OPTIONS...]: the stateful workload in a --criu-launch
# instance of $IMGDIR
start_in_image() {
	local inst=$1 ck=$2 prog=$3
	shift 3
	u1 "$FERRY" checkpoint create "$ck" >/dev/null
	run --separate-stderr u1 "$FERRY" instance start --criu-launch "$ck" "$@" "$IMGDIR" "$inst" \
		"$STATEFUL" --interval 100 --mb 8 "$prog"
	[ "$status" -eq 0 ] || fail "start failed: $stderr"
	wait_step "$prog" 2
}

assert_dump_and_restart_ok() {
	local prog=$1 at
	[ "$DUMP_STATUS" -eq 0 ] || fail "dump failed: $DUMP_ERR"
	[ "$RESTART_STATUS" -eq 0 ] || fail "restart failed: $RESTART_ERR"
	at=$(step_of "$prog")
	wait_step "$prog" $((at + 2))
	assert_progress_ok "$prog"
}

@test "F3: an image's /etc/ld.so.preload never runs in the dumping or the restoring CRIU" {
	local inst=ftcs-pre prog=$U1_TMP/progress
	IMGDIR=$U1_TMP/img
	user_image "$IMGDIR"
	payload preload "$BATS_TEST_TMPDIR/preload.so"
	plant "$BATS_TEST_TMPDIR/preload.so" /opt/evil/preload.so
	as_user1 sh -c 'echo /opt/evil/preload.so >"$1/etc/ld.so.preload"' sh "$IMGDIR"

	start_in_image "$inst" "$T" "$prog"
	dump_and_restart "$inst" "$T" "$prog"
	runs=$(evil_runs)
	[ -z "$runs" ] || fail "the image's preload ran with capabilities or in CRIU:
$runs"
	assert_dump_and_restart_ok "$prog"
	u1 "$FERRY" instance stop "$inst"
}

# The audit of the other ways in. Each payload names its vector; a watcher (root, from outside)
# samples every process of user1 that holds a capability while the dump and the restart run:
#   - every shared object it maps must be a host file (the bundle's, or the starter's own
#     libraries), never a file of the image;
#   - planted configuration files are FIFOs: whoever opens one to read it blocks until the
#     watcher opens it for writing, which it can only do while a reader waits; it records the
#     file and lets the reader go on (end of file).
# Files planted as FIFOs, read by no process the image does not run itself:
CONFIG_FIFOS="/etc/gnutls/config /etc/iproute2/group /etc/iproute2/rt_marks /etc/iproute2/rt_realms
/etc/connlabel.conf /etc/localtime /etc/gai.conf /etc/host.conf /etc/hosts /etc/resolv.conf
/etc/protocols /etc/services /etc/pkcs11/pkcs11.conf /etc/ssl/openssl.cnf /usr/lib/locale/locale-archive
/usr/share/locale/locale.alias /run/criu.kdat /etc/ethertypes"

start_watch() {
	local out=$1
	rm -f "$out" "$BATS_TEST_TMPDIR/watch.stop"
	# shellcheck disable=SC2086 # one argument a file
	python3 - "$U1_UID" "$out" "$BATS_TEST_TMPDIR/watch.stop" $CONFIG_FIFOS <<-'EOF' &
		import os, stat, sys, time
		uid, out, stop, fifos = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
		found, seen = set(), {}
		end = time.time() + 300
		def capable(p):
		    st = open("/proc/%s/status" % p).read()
		    f = dict(l.split(":", 1) for l in st.splitlines() if ":" in l)
		    if f["Uid"].split()[0] != uid:
		        return None
		    eff = f["CapEff"].strip()
		    return eff if int(eff, 16) else None
		def foreign_libs(p):
		    bad = []
		    for l in open("/proc/%s/maps" % p):
		        x = l.split(None, 5)
		        if len(x) < 6 or ".so" not in x[5]:
		            continue
		        path, ino = x[5].strip(), int(x[4])
		        # the bundle, as the container sees it, is this host directory
		        host = path
		        if path.startswith("/.ferry/criu/"):
		            host = "/usr/local/libexec/ferry/criu/" + path[len("/.ferry/criu/"):]
		        try:
		            ok = os.stat(host).st_ino == ino
		        except OSError:
		            ok = False
		        if not ok:
		            bad.append(path)
		    return bad
		def waits_in_fifo(q):
		    try:
		        return "fifo" in open("/proc/%s/wchan" % q).read()
		    except OSError:
		        return False
		while time.time() < end and not os.path.exists(stop):
		    for p in os.listdir("/proc"):
		        if not p.isdigit():
		            continue
		        try:
		            eff = capable(p)
		            if not eff:
		                continue
		            comm = open("/proc/%s/comm" % p).read().strip()
		            seen[p] = "%s CapEff=%s" % (comm, eff)
		            for path in foreign_libs(p):
		                found.add("maps: %s of pid %s (%s CapEff=%s)" % (path, p, comm, eff))
		            for f in fifos:
		                where = "/proc/%s/root%s" % (p, f)
		                try:
		                    if not stat.S_ISFIFO(os.stat(where).st_mode):
		                        continue
		                    fd = os.open(where, os.O_WRONLY | os.O_NONBLOCK)
		                except OSError:
		                    continue
		                # the reader waits in open(): name it
		                who = [q for q in list(seen) if q != p and waits_in_fifo(q)] + ([p] if waits_in_fifo(p) else [])
		                os.close(fd)
		                by = ", ".join("pid %s (%s)" % (q, seen[q]) for q in who) or "a reader (while pid %s, %s, ran)" % (p, seen[p])
		                found.add("read: %s by %s" % (f, by))
		        except (OSError, KeyError, ValueError):
		            continue
		    time.sleep(0.002)
		with open(out + ".tmp", "w") as o:
		    o.write("capable %d\n" % len(seen))
		    o.write("".join(sorted(x + "\n" for x in found)))
		os.rename(out + ".tmp", out)
	EOF
	WATCH_PID=$!
}

stop_watch() {
	touch "$BATS_TEST_TMPDIR/watch.stop"
	wait "$WATCH_PID" || true
	WATCH_PID=
	rm -f "$BATS_TEST_TMPDIR/watch.stop"
}

# plant_everything: user1's image $U1_TMP/img (IMGDIR) with every way in we know
plant_everything() {
	local p d f so
	IMGDIR=$U1_TMP/img
	user_image "$IMGDIR"
	# CRIU's plugin directory: every *.so there is dlopened
	payload plugin "$BATS_TEST_TMPDIR/plugin.so"
	plant "$BATS_TEST_TMPDIR/plugin.so" /usr/lib/criu/evil.so
	plant "$BATS_TEST_TMPDIR/plugin.so" /opt/evil/plugins/evil.so
	# CRIU's config: an action script, and a plugin directory of our own
	printf '#!/bin/busybox sh\nwhile read k v; do [ "$k" = CapEff: ] && c=$v; done </proc/$$/status\necho "action-script pid=$$ uid=$(id -u) exe=$0 CapEff=$c" >>%s\n' "$EVIL_LOG" >"$BATS_TEST_TMPDIR/action"
	plant "$BATS_TEST_TMPDIR/action" /opt/evil/action
	printf 'action-script /opt/evil/action\nlibdir /opt/evil/plugins\n' >"$BATS_TEST_TMPDIR/criu.conf"
	plant "$BATS_TEST_TMPDIR/criu.conf" /etc/criu/default.conf
	# programs CRIU runs by name (cr_system: execvp on its PATH), first on any PATH ferry sets
	printf '#!/bin/busybox sh\nwhile read k v; do [ "$k" = CapEff: ] && c=$v; done </proc/$$/status\necho "exec:${0##*/} pid=$$ uid=$(id -u) exe=$0 CapEff=$c" >>%s\n[ "${0##*/}" != sh ] || exec /bin/busybox sh "$@"\nexit 1\n' "$EVIL_LOG" >"$BATS_TEST_TMPDIR/tool"
	for p in sh iptables ip6tables iptables-save iptables-restore ip6tables-restore ip nft tar apparmor_parser; do
		for d in /usr/local/sbin /usr/local/bin; do
			plant "$BATS_TEST_TMPDIR/tool" "$d/$p"
			as_user1 chmod 0755 "$IMGDIR$d/$p"
		done
	done
	as_user1 chmod 0755 "$IMGDIR/opt/evil/action"
	# NSS: a module of our own first for every database, in every directory the loader searches
	payload nss "$BATS_TEST_TMPDIR/nss.so" libnss_evil.so.2
	printf '%s: evil files\n' passwd group shadow hosts networks protocols services ethers rpc netgroup >"$BATS_TEST_TMPDIR/nsswitch.conf"
	plant "$BATS_TEST_TMPDIR/nsswitch.conf" /etc/nsswitch.conf
	for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /lib /usr/lib; do
		plant "$BATS_TEST_TMPDIR/nss.so" "$d/libnss_evil.so.2"
	done
	# ld.so.cache: the libraries glibc loads by name (NSS, libgcc_s) mapped to payloads
	as_user1 mkdir -p "$IMGDIR/opt/evil/cache"
	for so in libgcc_s.so.1 libnss_files.so.2 libnss_dns.so.2; do
		payload "ld.so.cache:$so" "$BATS_TEST_TMPDIR/$so" "$so"
		plant "$BATS_TEST_TMPDIR/$so" "/opt/evil/cache/$so"
	done
	ldconfig -X -r "$IMGDIR" -C /etc/ld.so.cache.ft -f /etc/ld.so.conf.ft /opt/evil/cache 2>/dev/null
	[ -s "$IMGDIR/etc/ld.so.cache.ft" ] || fail "no ld.so.cache made"
	plant "$IMGDIR/etc/ld.so.cache.ft" /etc/ld.so.cache
	rm -f "$IMGDIR/etc/ld.so.cache.ft"
	# iconv: gconv modules of our own
	payload gconv "$BATS_TEST_TMPDIR/gconv.so"
	printf 'module EVIL// INTERNAL EVIL 1\nmodule INTERNAL EVIL// EVIL 1\nalias UTF-8// EVIL//\n' >"$BATS_TEST_TMPDIR/gconv-modules"
	for d in /usr/lib/x86_64-linux-gnu/gconv /usr/lib/gconv /usr/lib64/gconv; do
		plant "$BATS_TEST_TMPDIR/gconv.so" "$d/EVIL.so"
		plant "$BATS_TEST_TMPDIR/gconv-modules" "$d/gconv-modules"
	done
	# OpenSSL (the starter's processes inside the container hash with libcrypto): a provider
	payload openssl "$BATS_TEST_TMPDIR/ossl.so"
	plant "$BATS_TEST_TMPDIR/ossl.so" /opt/evil/ossl.so
	printf 'openssl_conf = c\n[c]\nproviders = p\nengines = e\n[p]\nevil = ps\n[ps]\nmodule = /opt/evil/ossl.so\nactivate = 1\n[e]\nevil = es\n[es]\ndynamic_path = /opt/evil/ossl.so\ninit = 1\n' >"$BATS_TEST_TMPDIR/openssl.cnf"
	plant "$BATS_TEST_TMPDIR/openssl.cnf" /usr/lib/ssl/openssl.cnf
	# configuration files: FIFOs (see above)
	for f in $CONFIG_FIFOS; do
		as_user1 mkdir -p "$IMGDIR$(dirname "$f")"
		as_user1 rm -f "$IMGDIR$f"
		as_user1 mkfifo -m 0644 "$IMGDIR$f"
	done
}

# audit INST PROGRESS [START OPTIONS...]: start, dump and restart an instance of $IMGDIR under the
# watcher; no payload may run with a capability, no planted file may be read, and the instance
# must come back
audit() {
	local inst=$1 prog=$2 watch=$BATS_TEST_TMPDIR/watch runs found n
	shift 2
	start_in_image "$inst" "$T" "$prog" "$@"
	start_watch "$watch"
	dump_and_restart "$inst" "$T" "$prog"
	stop_watch
	runs=$(evil_runs)
	echo "# watcher: $(head -n1 "$watch") processes with capabilities seen"
	found=$(tail -n +2 "$watch")
	[ -z "$runs$found" ] || fail "the image reached a process with capabilities:
$runs
$found"
	read -r _ n <"$watch"
	[ "$n" -gt 0 ] || fail "the watcher saw no process with capabilities: it looked at nothing"
	assert_dump_and_restart_ok "$prog"
	u1 "$FERRY" instance stop "$inst"
}

@test "F3: nothing else in the image reaches a process with capabilities (plugins, programs run by name, NSS, ld.so.cache, iconv, OpenSSL, CRIU config, config files)" {
	plant_everything
	# a reader the watcher misses would wait for good: bound it
	conf_set "criu timeout = 60"
	audit ftcs-all "$U1_TMP/progress"
}

@test "F3, --net: nothing in the image reaches CRIU holding CAP_NET_ADMIN (nftables' tables, the same ways in)" {
	nodes_up
	write_test_network "$NETCONF"
	sed -i 's/"ftmac"/"ftcs"/' "$NETCONF"
	NODE=nodeA
	plant_everything
	conf_set "criu timeout = 60" "allow net network = ftcs" "allow net args = yes" \
		"allow net ip range = 198.18.1.0/24"
	audit ftcs-net "$U1_TMP/progress" --net --network ftcs --network-args "IP=198.18.1.70/16"
}

# Issue 11, part 2: CRIU's client code (libcriu, protobuf-c) runs in ferry-criu, a helper of the
# bundle the starter execs inside the container after the permanent drop, not in the setuid
# starter.
BUNDLE=/usr/local/libexec/ferry/criu

@test "ferry-criu: the setuid starter links no CRIU client; ferry-criu is root's, not setuid, without file capabilities" {
	local starter=/usr/local/libexec/ferry/ferry-starter fc=$BUNDLE/ferry-criu lib
	run ldd "$starter"
	assert_success
	refute_output --partial libcriu
	refute_output --partial protobuf
	run nm -D --undefined-only "$starter"
	assert_success
	refute_output --regexp '(criu_|protobuf_c_)'
	[ -f "$fc" ] || fail "no ferry-criu in the bundle"
	run stat -c '%U:%G %a' "$fc" "$BUNDLE" "$BUNDLE/lib"
	assert_output $'root:root 755\nroot:root 755\nroot:root 755'
	run getcap "$fc"
	assert_success
	assert_output ""
	# it loads the bundle's loader and libraries, never the container's
	run patchelf --print-interpreter --print-rpath "$fc"
	assert_output $'/.ferry/criu/lib/ld-linux-x86-64.so.2\n/.ferry/criu/lib'
	for lib in libcriu.so.2 libprotobuf-c.so.1 libcrypto.so.3; do
		run stat -c '%U %a' "$BUNDLE/lib/$lib"
		assert_output "root 644"
	done
	# the bundle's libcrypto has no configuration or module directory the image could fill
	run strings -a "$BUNDLE/lib/libcrypto.so.3"
	refute_output --regexp $'(^|\n)(/usr/lib/ssl|/usr/lib/x86_64-linux-gnu/(engines-3|ossl-modules))($|\n)'
}

# watch_criu OUT: records each process of user1 named ferry-criu or criu (by its name and its
# argv[0]) while it runs: its mode (argv[1]), capabilities, no_new_privs and whether its program
# is the bundle's file
watch_criu() {
	local out=$1
	rm -f "$out" "$BATS_TEST_TMPDIR/watch.stop"
	python3 - "$U1_UID" "$out" "$BATS_TEST_TMPDIR/watch.stop" "$BUNDLE" <<-'EOF' &
		import os, sys, time
		uid, out, stop, bundle = sys.argv[1:5]
		seen = set()
		end = time.time() + 300
		while time.time() < end and not os.path.exists(stop):
		    for p in os.listdir("/proc"):
		        if not p.isdigit():
		            continue
		        try:
		            comm = open("/proc/%s/comm" % p).read().strip()
		            if comm not in ("ferry-criu", "criu"):
		                continue
		            st = open("/proc/%s/status" % p).read()
		            f = dict(l.split(":", 1) for l in st.splitlines() if ":" in l)
		            if f["Uid"].split()[0] != uid:
		                continue
		            argv = open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")
		            # a task CRIU is restoring is named criu until its own name comes back, while
		            # its argv and program are already the dumped process's: not CRIU itself
		            if os.path.basename(argv[0].decode(errors="replace")) != comm:
		                continue
		            mode = argv[1].decode() if len(argv) > 1 else "?"
		            ino = os.stat("/proc/%s/exe" % p).st_ino
		            exe = "bundle" if ino == os.stat(os.path.join(bundle, comm)).st_ino else "OTHER"
		            seen.add("%s %s CapEff=%s CapAmb=%s NoNewPrivs=%s exe=%s" % (comm, mode,
		                f["CapEff"].strip(), f["CapAmb"].strip(), f["NoNewPrivs"].strip(), exe))
		        except (OSError, KeyError, IndexError):
		            continue
		    time.sleep(0.002)
		with open(out + ".tmp", "w") as o:
		    o.write("".join(sorted(x + "\n" for x in seen)))
		os.rename(out + ".tmp", out)
	EOF
	WATCH_PID=$!
}

@test "ferry-criu: an image's own /.ferry/criu, ld.so.preload and the user's LD_* never run in ferry-criu or CRIU; they run from the bundle with exactly the step's capabilities" {
	local inst=ftcs-fc prog=$U1_TMP/progress watch=$BATS_TEST_TMPDIR/watch so
	IMGDIR=$U1_TMP/img
	user_image "$IMGDIR"
	# the image brings its own ferry-criu, CRIU and their libraries where the bundle is bound
	printf '#!/bin/busybox sh\necho "fake:$0 pid=$$ uid=$(id -u) exe=$0 CapEff=?" >>%s\nexit 1\n' "$EVIL_LOG" >"$BATS_TEST_TMPDIR/fake"
	plant "$BATS_TEST_TMPDIR/fake" /.ferry/criu/ferry-criu
	plant "$BATS_TEST_TMPDIR/fake" /.ferry/criu/criu
	as_user1 chmod 0755 "$IMGDIR/.ferry/criu/ferry-criu" "$IMGDIR/.ferry/criu/criu"
	for so in libcriu.so.2 libprotobuf-c.so.1 libcrypto.so.3; do
		payload "lib:$so" "$BATS_TEST_TMPDIR/$so" "$so"
		plant "$BATS_TEST_TMPDIR/$so" "/.ferry/criu/lib/$so"
		plant "$BATS_TEST_TMPDIR/$so" "/opt/evil/lib/$so"
	done
	payload preload "$BATS_TEST_TMPDIR/preload.so"
	plant "$BATS_TEST_TMPDIR/preload.so" /opt/evil/preload.so
	as_user1 sh -c 'echo /opt/evil/preload.so >"$1/etc/ld.so.preload"' sh "$IMGDIR"

	start_in_image "$inst" "$T" "$prog"
	watch_criu "$watch"
	# the user's loader variables name the image's payloads (the host has no /opt/evil)
	run --separate-stderr u1 env LD_PRELOAD=/opt/evil/preload.so LD_LIBRARY_PATH=/opt/evil/lib \
		"$FERRY" checkpoint instance --criu "$inst"
	DUMP_STATUS=$status DUMP_ERR=$stderr
	u1_gone "$inst"
	run --separate-stderr u1 env LD_PRELOAD=/opt/evil/preload.so LD_LIBRARY_PATH=/opt/evil/lib \
		"$FERRY" instance start --criu-restart "$T"
	RESTART_STATUS=$status RESTART_ERR=$stderr
	touch "$BATS_TEST_TMPDIR/watch.stop"
	wait "$WATCH_PID" || true
	WATCH_PID=
	echo "# seen:" && sed 's/^/#   /' "$watch"
	runs=$(evil_runs)
	[ -z "$runs" ] || fail "the image's code ran in ferry-criu or CRIU:
$runs"
	assert_dump_and_restart_ok "$prog"
	# ferry-criu ran for both steps, from the bundle, as the user with exactly the step's
	# capabilities (CAP_CHECKPOINT_RESTORE; + CAP_SETPCAP to restore; + CAP_NET_ADMIN over the
	# instance's loopback-only network, 'criu network = loopback', and to restore there
	# CAP_NET_RAW for the FIN of a half-closed connection), all ambient, no_new_privs
	grep -qx 'ferry-criu dump CapEff=0000010000001000 CapAmb=0000010000001000 NoNewPrivs=1 exe=bundle' "$watch" ||
		fail "no ferry-criu dump from the bundle with CAP_CHECKPOINT_RESTORE and CAP_NET_ADMIN only"
	grep -qx 'ferry-criu restore CapEff=0000010000003100 CapAmb=0000010000003100 NoNewPrivs=1 exe=bundle' "$watch" ||
		fail "no ferry-criu restore from the bundle with CAP_CHECKPOINT_RESTORE, CAP_SETPCAP, CAP_NET_ADMIN and CAP_NET_RAW only"
	# and CRIU (swrk, started by ferry-criu) from the bundle with the same capabilities, no more
	run grep -Ev -e '^ferry-criu dump CapEff=0000010000001000 CapAmb=0000010000001000 NoNewPrivs=1 exe=bundle$' \
		-e '^ferry-criu restore CapEff=0000010000003100 CapAmb=0000010000003100 NoNewPrivs=1 exe=bundle$' \
		-e '^criu [^ ]* CapEff=(0000010000001000|0000010000003100) CapAmb=(0000010000001000|0000010000003100) NoNewPrivs=1 exe=bundle$' "$watch"
	assert_output ""
	u1 "$FERRY" instance stop "$inst"
}

@test "ferry-criu: a page image altered after the seal stops the restore before any restored process runs" {
	local inst=ftcs-pg prog=$U1_TMP/progress gen img at
	IMGDIR=$U1_TMP/img
	user_image "$IMGDIR"
	start_in_image "$inst" "$T" "$prog"
	run --separate-stderr u1 "$FERRY" checkpoint instance --criu "$inst"
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	u1_gone "$inst"
	at=$(step_of "$prog")
	# root (only root can write a sealed file) flips one byte in the middle of the largest
	# page image: its size stays, only its SHA-256 tells
	gen=$U1_HOME/.ferry/checkpoint/$T/$(readlink "$U1_HOME/.ferry/checkpoint/$T/current")
	img=$(ls -S "$gen"/pages-*.img | head -n1)
	python3 -c 'import sys
f = open(sys.argv[1], "r+b"); n = f.seek(0, 2) // 2; f.seek(n); b = f.read(1); f.seek(n); f.write(bytes([b[0] ^ 1]))' "$img"
	run --separate-stderr u1 "$FERRY" instance start --criu-restart "$T"
	assert_failure
	[[ "$stderr" == *"file '${img##*/}' of the checkpoint was altered: the restore was stopped before any process ran"* ]] ||
		fail "unexpected error: $stderr"
	u1_gone "$inst"
	[ "$(step_of "$prog")" = "$at" ] || fail "the restored workload ran"
}

# watch_tmp_saver OUT: as user1 (the attacker), until watch.stop: every ferry-criu of user1 that
# holds no capability (the child that saves /tmp) is recorded with the owner of its /proc/PID/fd
# ("seen PID fd-owner=UID"), and every fd of it the user can open as a directory is recorded with
# what it is ("OPENED PID FD -> TARGET"): the images directory, open to the user before the seal,
# would let them forge the images root then signs
watch_tmp_saver() {
	local out=$1
	rm -f "$out" "$U1_TMP/watch.stop"
	as_user1 python3 - "$U1_UID" "$out" "$U1_TMP/watch.stop" <<-'EOF2' &
		import os, sys, time
		uid, out, stop = sys.argv[1:4]
		seen = set()
		end = time.time() + 300
		while time.time() < end and not os.path.exists(stop):
		    for p in os.listdir("/proc"):
		        if not p.isdigit():
		            continue
		        try:
		            if open("/proc/%s/comm" % p).read().strip() != "ferry-criu":
		                continue
		            st = open("/proc/%s/status" % p).read()
		            f = dict(l.split(":", 1) for l in st.splitlines() if ":" in l)
		            if f["Uid"].split()[0] != uid or int(f["CapEff"], 16) != 0:
		                continue
		            seen.add("seen %s fd-owner=%d" % (p, os.stat("/proc/%s/fd" % p).st_uid))
		            for fd in os.listdir("/proc/%s/fd" % p):
		                try:
		                    d = os.open("/proc/%s/fd/%s" % (p, fd), os.O_RDONLY | os.O_DIRECTORY)
		                except OSError:
		                    continue
		                n = len(os.listdir(d))
		                os.close(d)
		                seen.add("OPENED %s %s -> %s (%d entries)" % (p, fd,
		                    os.readlink("/proc/%s/fd/%s" % (p, fd)), n))
		        except (OSError, KeyError, ValueError):
		            continue
		    time.sleep(0.001)
		with open(out + ".tmp", "w") as o:
		    o.write("".join(sorted(x + "\n" for x in seen)))
		os.rename(out + ".tmp", out)
	EOF2
	WATCH_PID=$!
}

@test "--private-tmp: the child that saves /tmp is not dumpable and holds no fd of the images: the user cannot write into the images before the seal" {
	local inst=ftcs-tmpfd prog=$U1_TMP/count watch=$U1_TMP/watch i
	u1 "$FERRY" checkpoint create "$T" >/dev/null
	# 20,000 files in /tmp: the saving takes long enough to be seen, as an attacker would make it
	run --separate-stderr u1 "$FERRY" instance start --private-tmp --criu-launch "$T" "$(image_path dir)" "$inst" \
		sh -c 'mkdir /tmp/many && cd /tmp/many && i=0 && while [ $i -lt 20000 ]; do echo $i >f$i; i=$((i + 1)); done && i=0 && while :; do i=$((i + 1)); echo "$i" >"$1"; sleep 0.1; done' sh "$prog"
	[ "$status" -eq 0 ] || fail "instance start: $stderr"
	for ((i = 0; i < 600; i++)); do [ -s "$prog" ] && break; sleep 0.1; done
	[ -s "$prog" ] || fail "the workload does not count"
	watch_tmp_saver "$watch"
	run --separate-stderr u1 timeout 120 "$FERRY" checkpoint instance --criu "$inst"
	DUMP_STATUS=$status DUMP_ERR=$stderr
	touch "$U1_TMP/watch.stop"
	wait "$WATCH_PID" || true
	WATCH_PID=
	echo "# seen:" && sed 's/^/#   /' "$watch"
	[ "$DUMP_STATUS" -eq 0 ] || fail "dump failed: $DUMP_ERR"
	u1_gone "$inst"
	! grep '^OPENED' "$watch" || fail "the user opened a directory the saving child holds"
	grep -q '^seen ' "$watch" || fail "the saving child was never seen (the test proves nothing)"
	! grep -v 'fd-owner=0$' "$watch" || fail "the saving child is dumpable (its /proc/PID/fd is the user's)"
}

# victim_tree DIR: DIR, user1's, holding a directory of user2's with a file of user2's in it, as
# user1 gets it when user2 makes a directory in one both can write (a shared project directory)
victim_tree() {
	mkdir "$1" && chown "$U1:" "$1"
	mkdir "$1/u2" && echo precious >"$1/u2/file" && chown -R "$U2:" "$1/u2"
}

@test "a dump's staging swapped by the user for a tree holding another user's directory: root removes nothing of the other user's" {
	local inst=ftcs-swap prog=$U1_TMP/progress ck=$U1_HOME/.ferry/checkpoint/$T evil=$U1_HOME/.ferry/checkpoint/$T-evil
	rm -rf "$evil"
	victim_tree "$evil"
	u1 "$FERRY" checkpoint create "$T" >/dev/null
	run --separate-stderr u1 "$FERRY" instance start --criu-launch "$T" "$(image_path dir)" "$inst" \
		"$STATEFUL" --interval 100 --mb 8 "$prog"
	[ "$status" -eq 0 ] || fail "start failed: $stderr"
	wait_step "$prog" 2
	# user1, as soon as the root-owned staging appears, renames it away in their own directory
	# and moves their tree in under its name
	as_user1 timeout 60 python3 - "$ck" "$evil" >"$BATS_TEST_TMPDIR/swapped" <<-'EOF2' &
		import os, sys, time
		ck, evil = sys.argv[1:3]
		while True:
		    for n in os.listdir(ck):
		        if n.startswith(".staging-"):
		            os.rename(os.path.join(ck, n), os.path.join(ck, ".moved"))
		            os.rename(evil, os.path.join(ck, n))
		            print(n)
		            sys.exit(0)
		    time.sleep(0.0005)
	EOF2
	local swap=$!
	run --separate-stderr u1 timeout 120 "$FERRY" checkpoint instance --criu "$inst"
	echo "# dump: $status $stderr"
	wait "$swap" || fail "the staging was never swapped (the test proves nothing)"
	echo "# swapped: $(cat "$BATS_TEST_TMPDIR/swapped")"
	[ "$(cat "$ck/$(cat "$BATS_TEST_TMPDIR/swapped")/u2/file" 2>/dev/null)" = precious ] ||
		fail "root removed $U2's file through the swapped staging"
	u1 "$FERRY" instance stop --all >/dev/null 2>&1 || true
	rm -rf "$ck" "$evil"
}

@test "'ferry checkpoint delete' racing the user's exchange of a generation with a tree holding another user's directory: root removes nothing of the other user's" {
	local ck=$U1_HOME/.ferry/checkpoint/$T end=$((SECONDS + 30)) n=0 f
	u1 "$FERRY" checkpoint create "$T" >/dev/null
	victim_tree "$ck/evil"
	# user1 exchanges a root-owned generation and their tree, over and over (renameat2
	# RENAME_EXCHANGE), while root prunes the generations
	as_user1 timeout 40 python3 - "$ck" "$U1_TMP/xchg.stop" <<-'EOF2' &
		import ctypes, os, sys
		libc = ctypes.CDLL(None, use_errno=True)
		ck, stop = sys.argv[1:3]
		fd = os.open(ck, os.O_RDONLY | os.O_DIRECTORY)
		i = 0
		while i % 1000 or not os.path.exists(stop):
		    libc.renameat2(fd, b"gen-000001", fd, b"evil", 2)
		    i += 1
	EOF2
	local xchg=$!
	while [ $SECONDS -lt $end ]; do
		# a generation as a dump leaves it: root's, with a file (the name the tree is not under)
		for f in gen-000001 evil; do
			mkdir "$ck/$f" 2>/dev/null && echo sealed >"$ck/$f/core-1.img"
		done
		run as_user1 "$FERRY" checkpoint delete "$ck"
		n=$((n + 1))
		[ -e "$ck/gen-000001/u2/file" ] || [ -e "$ck/evil/u2/file" ] || break
	done
	touch "$U1_TMP/xchg.stop"
	wait "$xchg" || true
	echo "# $n deletes"
	[ -e "$ck/gen-000001/u2/file" ] || [ -e "$ck/evil/u2/file" ] || fail "root removed $U2's file after $n deletes"
	rm -rf "$ck"
}

# starters_below PID: the ferry-starter processes below PID (the user's own)
starters_below() {
	local p c
	for p in $(ps -e -o pid=,comm= | awk '$2 == "ferry-starter" {print $1}'); do
		c=$p
		while [ -n "$c" ] && [ "$c" -gt 1 ]; do
			c=$(ps -o ppid= -p "$c" | tr -d ' ')
			[ "$c" != "$1" ] || { echo "$p" && break; }
		done
	done
}

# has_staging DIR: DIR holds a .staging-* directory
has_staging() {
	ls -A "$1" | grep -q '^\.staging-'
}

@test "a dump's starter killed before its guard exists (waiting for a page server that never answers): the next dump removes the staging it left" {
	local inst=ftcs-stale prog=$U1_TMP/progress ck=$U1_HOME/.ferry/checkpoint/$T port srv pid st
	u1 "$FERRY" checkpoint create "$T" >/dev/null
	run --separate-stderr u1 "$FERRY" instance start --criu-launch "$T" "$(image_path dir)" "$inst" \
		"$STATEFUL" --interval 100 --mb 8 "$prog"
	[ "$status" -eq 0 ] || fail "start failed: $stderr"
	wait_step "$prog" 2
	# a page server that takes the connection (the kernel's backlog) and never answers
	timeout 120 python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8); print(s.getsockname()[1], flush=True); time.sleep(120)' \
		>"$BATS_TEST_TMPDIR/port" &
	srv=$!
	wait_for test -s "$BATS_TEST_TMPDIR/port" || fail "no page server"
	port=$(cat "$BATS_TEST_TMPDIR/port")
	as_user1 timeout 120 "$FERRY" checkpoint instance --criu --page-server "127.0.0.1:$port" "$inst" 2>/dev/null &
	pid=$!
	wait_for has_staging "$ck" || fail "the dump made no staging"
	# the user kills their own starter (it waits for the page server's handshake)
	for st in $(starters_below "$pid"); do as_user1 kill -KILL "$st" || true; done
	wait "$pid" || true
	kill "$srv" && wait "$srv" || true
	has_staging "$ck" || fail "the killed dump left no staging (the test proves nothing)"
	instance_running "$U1" "$inst" || fail "the instance stopped"
	run --separate-stderr u1 "$FERRY" checkpoint instance --criu "$inst"
	[ "$status" -eq 0 ] || fail "the next dump failed: $stderr"
	u1_gone "$inst"
	! has_staging "$ck" || fail "a staging is left: $(ls -lA "$ck")"
	rm -rf "$ck"
}
