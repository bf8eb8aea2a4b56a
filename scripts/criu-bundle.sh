#!/usr/bin/env bash
# criu-bundle.sh DEST CRIU — make the CRIU bundle ferry binds into checkpointable containers.
#
# ferry runs CRIU inside the container's namespaces (so that CRIU dumps and restores a plain
# process tree and needs no CAP_SYS_ADMIN). The container's image has neither CRIU nor its
# libraries, so the bundle carries both: CRIU patched (patchelf) to load its interpreter and
# libraries from /.ferry/criu, where the starter mounts this directory read-only.
set -euo pipefail
dest=${1:?usage: criu-bundle.sh DEST CRIU}
criu=${2:?usage: criu-bundle.sh DEST CRIU}
inside=/.ferry/criu
[ -x "$criu" ] || { echo "criu-bundle: '$criu' is not an executable CRIU" >&2; exit 1; }
tmp=$(mktemp -d "$(dirname "$dest")/.criu-bundle.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lib"
cp "$criu" "$tmp/criu"
ldd "$criu" | awk '/=>/ && $3 ~ /^\// {print $3} /^\t\/.*ld-linux/ {print $1}' | sort -u | while read -r lib; do
	cp -L "$lib" "$tmp/lib/"
done
# CRIU reads /etc/criu/default.conf: inside a container that is the user's image, so the
# user could hand CRIU options (action scripts run with CRIU's capabilities). Point the
# bundled CRIU at a path that does not exist (same length, so the binary stays valid).
# ($HOME is not set for CRIU, so no user config is read either.)
perl -0777 -pi -e 's#/etc/criu/default\.conf\0#/.ferry/criu/none.conf\0#g' "$tmp/criu"
if [ "$(grep -c -a -F '/.ferry/criu/none.conf' "$tmp/criu")" != 1 ] || grep -q -a -F '/etc/criu/default.conf' "$tmp/criu"; then
	echo "criu-bundle: could not disable CRIU's global config path in '$criu'" >&2
	exit 1
fi
interp=$(patchelf --print-interpreter "$criu")

patchelf --set-interpreter "$inside/lib/$(basename "$interp")" --force-rpath --set-rpath "$inside/lib" "$tmp/criu"
# RPC settings libcriu has no setter for: after a dump the tree stays stopped until ferry has
# published the checkpoint; ferry then ends it, or resumes it when publishing failed.
echo leave-stopped > "$tmp/leave-stopped.conf"
# dumps whose pages go to a receiving starter's page server through a socket ferry passes
# (authenticated by the two starters) at fd 200 (FERRY_CRIU_PS_FD in src/lib/criu.h)
printf 'page-server\nps-socket 200\nleave-stopped\n' > "$tmp/ps-stopped.conf"
printf 'page-server\nps-socket 200\n' > "$tmp/ps-running.conf"
chmod 0644 "$tmp"/*.conf
chmod 0755 "$tmp" "$tmp/lib" "$tmp/criu"
chmod 0644 "$tmp"/lib/*
chmod 0755 "$tmp/lib/$(basename "$interp")"
chown -R root:root "$tmp"
if [ ! -d "$dest" ]; then
	mv "$tmp" "$dest"
	trap - EXIT
elif ! diff -r "$tmp" "$dest" >/dev/null 2>&1; then
	# Update in place: running checkpointable instances have this very directory bound at
	# /.ferry/criu, so it must stay the same directory (new files, same directory inode).
	cp -a --remove-destination "$tmp/." "$dest/"
	(cd "$dest" && find . -depth -mindepth 1 | while read -r f; do
		[ -e "$tmp/$f" ] || [ -L "$tmp/$f" ] || rm -rf -- "$f"
	done)
fi
