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
say "demo done"
