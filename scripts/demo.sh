#!/usr/bin/env bash
# ferry demo: builds a small image and runs a workload in an instance, as an
# unprivileged user. Run through `make demo` (which installs ferry first).
set -euo pipefail

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates a demo user)" >&2; exit 1; }
user=ferrydemo
id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$user"
work=/var/tmp/ferry-demo
rm -rf "$work"
mkdir -p "$work/rootfs/bin" "$work/rootfs/.singularity.d"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in $("$work/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$work/rootfs/bin/$a"; done
cat > "$work/rootfs/.singularity.d/runscript" <<'RS'
#!/bin/sh
echo "hello from the runscript of a ferry image; args: $*"
RS
chmod 755 "$work/rootfs/.singularity.d/runscript"
chown -R "$user:" "$work"

as() { runuser -u "$user" -- env -C "$work" "$@"; }

say "build a SIF image from a directory, as user '$user'"
as ferry build "$work/busybox.sif" "$work/rootfs"
as ferry inspect "$work/busybox.sif"

say "run, exec: you are yourself inside, with no capabilities"
as ferry run "$work/busybox.sif" a b
as ferry exec "$work/busybox.sif" sh -c 'id; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status; echo "pid $$"'

say "an instance with a workload that counts"
as ferry instance stop demo1 >/dev/null 2>&1 || true
as ferry instance start "$work/busybox.sif" demo1 sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/ferry-demo-counter; sleep 0.2; done'
as ferry instance list
sleep 1
as ferry exec instance://demo1 sh -c 'echo "counter inside: $(cat /tmp/ferry-demo-counter)"; ps'
as ferry instance stop demo1

say "checkpoint it, and bring it back where it was"
as ferry checkpoint delete demock >/dev/null 2>&1 || true
as ferry checkpoint create demock
as ferry instance start --criu-launch demock "$work/busybox.sif" demo2 sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/ferry-demo-counter; sleep 0.2; done'
sleep 1
echo "counter before the dump: $(cat /tmp/ferry-demo-counter)"
as ferry checkpoint instance --criu demo2
as ferry checkpoint list
echo "counter after the dump (instance gone): $(cat /tmp/ferry-demo-counter)"
as ferry instance start --criu-restart demock
sleep 1
echo "counter after the restart: $(cat /tmp/ferry-demo-counter)"
as ferry exec instance://demo2 ps
as ferry instance stop demo2
as ferry checkpoint delete demock

say "two simulated nodes (network namespaces nodeA, nodeB, peer on a bridge), a ferryd on each"
# shellcheck source=../tests/lib/nodes.sh
source "$(dirname "$0")/../tests/lib/nodes.sh"
ferryd_pids=()
asn() { local n=$1; shift; on_node "$n" runuser -u "$user" -- env -C "$work" "$@"; }
# named to sort after every other drop-in (ferry.conf(5): byte order of the names), so that its
# keys are the ones in force for the demo's time whatever else the directory holds: an admin's
# drop-in, or the one a test run that was killed could not remove (99-ferry-test.conf)
dropin=/etc/ferry/ferry.conf.d/zz-ferry-demo.conf
demo_conf() {
	install -d -o root -g root -m 0755 /etc/ferry/ferry.conf.d
	printf '%s\n' "# make demo's settings (scripts/demo.sh); removed when it ends" \
		"allow net network = demonet" "allow net args = yes" "allow net ip range = 198.18.1.0/24" \
		>"$work/demo.conf"
	install -o root -g root -m 0644 "$work/demo.conf" "$dropin"
}
cleanup() {
	local n
	for n in nodeA nodeB; do
		asn "$n" ferry instance stop --all >/dev/null 2>&1 || true
	done
	as ferry instance stop --all >/dev/null 2>&1 || true
	[ "${#ferryd_pids[@]}" -eq 0 ] || kill "${ferryd_pids[@]}" 2>/dev/null || true
	[ -z "${peer_pid:-}" ] || kill "$peer_pid" 2>/dev/null || true
	rm -f /etc/ferry/network/demonet.conflist "$dropin"
	nodes_down
}
trap cleanup EXIT
# killed or interrupted: the cleanup runs all the same (bash runs the EXIT trap on exit)
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP
nodes_up
gcc -static -O2 -o "$work/tcpstream" "$(dirname "$0")/../tests/workloads/tcpstream.c" 2>/dev/null
cat >/etc/ferry/network/demonet.conflist <<'JSON'
{"cniVersion": "1.0.0", "name": "demonet",
 "plugins": [{"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": {"type": "static", "subnet": "198.18.0.0/16"}}]}
JSON
# The demo's policy for its network, for the time of the demo: a drop-in of its own
# (ferry.conf(5), DROP-INS), whose keys replace whatever the installed ferry.conf says; the
# admin's ferry.conf is never touched, and the drop-in goes on exit.
demo_conf
# the shared filesystem of the two nodes: a directory of root's (ferryd keeps nothing below a
# directory a user owns)
shared=/var/tmp/ferry-demo-shared
rm -rf "$shared" && mkdir -p "$shared" && chmod 0755 "$shared"
on_node nodeA ferryd --node demoA --listen 198.18.0.1:7780 --peer demoB=198.18.0.2:7780 --shared-dir "$shared" 2>"$work/ferryd-A.log" &
ferryd_pids+=($!)
on_node nodeB ferryd --node demoB --listen 198.18.0.2:7780 --peer demoA=198.18.0.1:7780 --shared-dir "$shared" 2>"$work/ferryd-B.log" &
ferryd_pids+=($!)
sleep 0.5

say "a server in 'peer' counts the numbers an instance on nodeA streams to it over one TCP connection"
on_node peer "$work/tcpstream" serve 198.18.0.3:7000 "$work/peer.txt" &
peer_pid=$!
sleep 0.2
as ferry checkpoint delete demomig >/dev/null 2>&1 || true
as ferry checkpoint create demomig
asn nodeA ferry instance start --criu-launch demomig --net --network demonet \
	--network-args "IP=198.18.1.10/16" "$work/busybox.sif" job1 "$work/tcpstream" send 198.18.0.3:7000 /tmp/ferry-demo-stream 20
sleep 1
asn nodeA ferry instance list
echo "peer has received: $(cat "$work/peer.txt")"

say "migrate job1 nodeA -> nodeB, diskless (pages straight into nodeB's tmpfs)"
asn nodeA ferry migrate job1 --to demoB --mode diskless
sleep 1
echo "peer has received: $(cat "$work/peer.txt")   (same connection, no gap: it checks)"
asn nodeB ferry instance list

say "and back nodeB -> nodeA, default mode (through the shared filesystem)"
asn nodeB ferry migrate job1 --to demoA --mode default
sleep 1
echo "peer has received: $(cat "$work/peer.txt")"
asn nodeA ferry instance list

say "live nodeA -> nodeB (post-copy: runs on nodeB at once, its pages follow), then live back"
asn nodeA ferry migrate job1 --to demoB --mode live
sleep 1
echo "peer has received: $(cat "$work/peer.txt")"
asn nodeB ferry migrate job1 --to demoA --mode live
sleep 1
echo "peer has received: $(cat "$work/peer.txt")"
asn nodeA ferry instance list
asn nodeA ferry instance stop job1
as ferry checkpoint delete demomig
say "demo done"
