#!/usr/bin/env bash
# criu-bundle.sh DEST CRIU FERRY_CRIU — make the CRIU bundle ferry binds into checkpointable
# containers.
#
# ferry runs CRIU inside the container's namespaces (so that CRIU dumps and restores a plain
# process tree and needs no CAP_SYS_ADMIN). The container's image has neither CRIU nor its
# libraries, so the bundle carries both: CRIU and ferry-criu (CRIU's client: libcriu, protobuf-c,
# the page images' hashing; the starter execs it) patched (patchelf) to load their interpreter
# and libraries from /.ferry/criu, where the starter mounts this directory read-only.
set -euo pipefail
usage="usage: criu-bundle.sh DEST CRIU FERRY_CRIU"
dest=${1:?$usage}
criu=${2:?$usage}
client=${3:?$usage}
inside=/.ferry/criu
[ -x "$criu" ] || { echo "criu-bundle: '$criu' is not an executable CRIU" >&2; exit 1; }
[ -x "$client" ] || { echo "criu-bundle: '$client' is not an executable ferry-criu" >&2; exit 1; }
tmp=$(mktemp -d "$(dirname "$dest")/.criu-bundle.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lib"
cp "$criu" "$tmp/criu"
cp "$client" "$tmp/ferry-criu"
[ "$(patchelf --print-interpreter "$criu")" = "$(patchelf --print-interpreter "$client")" ] ||
	{ echo "criu-bundle: '$criu' and '$client' want different loaders" >&2; exit 1; }
ldd "$criu" "$client" | awk '/=>/ && $3 ~ /^\// {print $3} /^\t\/.*ld-linux/ {print $1}' | sort -u | while read -r lib; do
	cp -L "$lib" "$tmp/lib/"
done
# a library's own DT_RPATH/DT_RUNPATH would be searched inside the container, in the image
for lib in "$tmp"/lib/*; do
	if [ -n "$(patchelf --print-rpath "$lib")" ]; then
		echo "criu-bundle: '$lib' has its own library path ($(patchelf --print-rpath "$lib"))" >&2
		exit 1
	fi
done
# libgcc_s: glibc dlopens it by name (thread cancellation, unwinding); it must be found here,
# since the loader below searches nothing else
gcc_s=$(ldconfig -p | awk '/libgcc_s\.so\.1 \(libc6,x86-64\)/ && !p {p = $NF} END {print p}')
[ -n "$gcc_s" ] || { echo "criu-bundle: libgcc_s.so.1 not found (ldconfig -p)" >&2; exit 1; }
cp -L "$gcc_s" "$tmp/lib/"

# CRIU runs inside the container with capabilities, and every path it or its libraries find by
# name resolves in the user's image. So nothing may be looked up there: every file the bundle
# would read or load by a compiled-in path is pointed at a name under $none, which does not
# exist (same length, so the binaries stay valid). The environment (src/lib/criu.c) gives CRIU
# no $HOME, no CRIU_* variables and an empty PATH, so it execs nothing by name.
none=$inside/x
# close_path FILE OLD NEW: the string OLD in FILE becomes NEW, of the same length. Fails unless
# OLD is there, and only as a whole string (a string whose bytes another one shares would change
# both). close_block: the same for a char array of NUL-separated strings ('|' stands for a NUL).
close_path() { OLD=$2 NEW=$3 ANCHOR='(?<=\0)' close_bytes "$1"; }
close_block() { OLD=$2 NEW=$3 ANCHOR='' close_bytes "$1"; }
close_bytes() {
	[ "${#OLD}" = "${#NEW}" ] || { echo "criu-bundle: '$NEW' is not as long as '$OLD'" >&2; exit 1; }
	perl -0777 -pi -e '
		BEGIN { ($o, $n, $a) = @ENV{qw(OLD NEW ANCHOR)}; s/\|/\0/g for $o, $n; }
		my $all = () = /\Q$o\E\0/g;
		my $whole = () = /$a\Q$o\E\0/g;
		die "criu-bundle: no string \"$ENV{OLD}\" in $ARGV\n" unless $all;
		die "criu-bundle: \"$ENV{OLD}\" shares its bytes with another string in $ARGV\n" if $all != $whole;
		s/$a\Q$o\E\0/$n\0/g;' "$1"
}
ldso=$tmp/lib/$(basename "$(patchelf --print-interpreter "$criu")")
# the dynamic loader: no /etc/ld.so.preload, no /etc/ld.so.cache; its default directories are
# the container's /dev and /dev/pts (root's, noexec: nothing can be mapped from there). With
# DT_RPATH below, a library comes from the bundle or not at all.
close_path "$ldso" /etc/ld.so.preload "$none/pre"
close_path "$ldso" /etc/ld.so.cache "$none/c"
close_block "$ldso" "/lib/x86_64-linux-gnu/|/usr/lib/x86_64-linux-gnu/|/lib/|/usr/lib/" \
	"$none/lib_64/|$none/usr_lib_64/|/dev/|/dev/pts/"
# CRIU: its global config (action scripts would run with its capabilities) and its plugin
# directory (every *.so there is dlopened). No $HOME and no CRIU_CONFIG_FILE: no other config.
close_path "$tmp/criu" /etc/criu/default.conf "$inside/none.conf"
close_path "$tmp/criu" /usr/lib/criu/ "$none"
# libraries' own configuration and modules: GnuTLS's system priorities (read when it loads),
# nftables' symbol tables (read by every nft context CRIU's network lock makes), xtables
# extensions and glibc's iconv modules (dlopened by absolute path)
lib_close() { [ ! -e "$tmp/lib/$1" ] || close_path "$tmp/lib/$1" "$2" "$3"; }
lib_close libgnutls.so.30 /etc/gnutls/config "$none/gtl"
lib_close libnftables.so.1 /etc/iproute2/group "$none/grou"
lib_close libnftables.so.1 /etc/iproute2/rt_marks "$none/rtmarks"
lib_close libnftables.so.1 /etc/iproute2/rt_realms "$none/rtrealms"
lib_close libnftables.so.1 /etc/connlabel.conf "$none/conn"
lib_close libxtables.so.12 /usr/lib/x86_64-linux-gnu/xtables "$none/xtables_extensions"
lib_close libc.so.6 /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache "$none/gconv_modules_cache_________________"
lib_close libc.so.6 /usr/lib/x86_64-linux-gnu/gconv "$none/gconv_modules___"
# ferry-criu's libcrypto (the pages' SHA-256; ferry-criu asks it to read no configuration):
# its configuration (OPENSSLDIR/openssl.cnf, which can load providers and engines) and its
# provider and engine directories. OPENSSLDIR becomes the bundle itself, where no openssl.cnf
# is; its CT log list and certificate paths go nowhere too.
lib_close libcrypto.so.3 /usr/lib/ssl "$inside"
for path in /usr/lib/ssl/ct_log_list.cnf /usr/lib/ssl/private /usr/lib/ssl/certs /usr/lib/ssl/cert.pem \
	/usr/lib/x86_64-linux-gnu/engines-3 /usr/lib/x86_64-linux-gnu/ossl-modules; do
	name=$none/$(basename "$path")________________________
	lib_close libcrypto.so.3 "$path" "${name:0:${#path}}"
done
# what CRIU may run by name: nothing (PATH, see FERRY_CRIU_PATH in src/lib/criu.h)
mkdir "$tmp/bin"
interp=$(patchelf --print-interpreter "$criu")

for bin in "$tmp/criu" "$tmp/ferry-criu"; do
	patchelf --set-interpreter "$inside/lib/$(basename "$interp")" --force-rpath --set-rpath "$inside/lib" "$bin"
done
# RPC settings libcriu has no setter for: after a dump the tree stays stopped until ferry has
# published the checkpoint; ferry then ends it, or resumes it when publishing failed.
echo leave-stopped > "$tmp/leave-stopped.conf"
# dumps whose pages go to a receiving starter's page server through a socket ferry passes
# (authenticated by the two starters) at fd 200 (FERRY_CRIU_PS_FD in src/lib/criu.h)
printf 'page-server\nps-socket 200\nleave-stopped\n' > "$tmp/ps-stopped.conf"
printf 'page-server\nps-socket 200\n' > "$tmp/ps-running.conf"
printf 'lazy-pages\nps-socket 200\nstatus-fd 201\nleave-stopped\n' > "$tmp/lazy-stopped.conf"
printf 'lazy-pages\n' > "$tmp/lazy-restore.conf"
chmod 0644 "$tmp"/*.conf
chmod 0755 "$tmp" "$tmp/lib" "$tmp/criu" "$tmp/ferry-criu"
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
