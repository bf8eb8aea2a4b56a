#!/usr/bin/env bats
# A migration that cannot succeed is refused before anything freezes (issue 13): the source asks
# the destination whether the instance fits there (src/ferryd/fit.c), and the destination
# refuses with one line when the image is missing or differs, the user is not the same user
# there, its network policy refuses the instance's network or its address (the user's choice, or
# not on the network's subnets there), its address is taken there, or there
# is not enough tmpfs or memory. Each refusal leaves the job running untouched: the same process,
# never frozen, on nodeA only.
#
# What differs between the nodes is made real: each node's ferryd runs in its own mount namespace
# (ip netns exec), where the test binds another file over the image, /etc/passwd or ferry.conf's
# drop-in, for nodeB alone. Two simulated nodes (tests/lib/nodes.sh, tests/lib/migrate.bash);
# only 198.18.0.0/15, only inside the namespaces they make.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"
load ../lib/migrate

setup_file() {
	mig_file_setup
}

teardown_file() {
	mig_file_teardown ftfit
}

setup() {
	mig_test_setup ftfit
	IPB=198.18.1.$((160 + BATS_TEST_NUMBER))
	FIT_FILES=$(mktemp -d /var/tmp/ft-fit.XXXXXX)
	chmod 0755 "$FIT_FILES"
}

teardown() {
	mig_test_teardown 30
	rm -rf "$FIT_FILES"
}

# on_nodeB_only FILE OVER: FILE bound over OVER in nodeB's ferryd's mount namespace: nodeB's
# ferryd, and the starters it runs, see FILE there; nodeA and the test see OVER as it is.
on_nodeB_only() {
	nsenter -t "${FERRYD_PID[nodeB]}" -m mount --bind "$1" "$2"
}

# assert_refused_untouched NAME PID REASON: ferry migrate said nodeB refused for REASON, the
# instance not touched: the same process runs on nodeA alone, and nothing of a dump was made.
assert_refused_untouched() {
	local name=$1 pid=$2 reason=$3
	assert_ferry_error "nodeB refused: .*$reason.*; the instance was not touched$"
	[ "$(inst_field nodeA "$name" pid)" = "$pid" ] || fail "'$name' is not the same process any more"
	assert_only_on nodeA "$name"
	assert_runs_once "$name"
	! ferryd_log_has nodeA "dumps into" || fail "nodeA dumped '$name'"
	! ferryd_log_has nodeB "receiving '$name'" || fail "nodeB began to receive '$name'"
	[ -z "$(find "$MIG_SHARED" "$MIG_TMPFS-nodeB" -mindepth 2 2>/dev/null)" ] ||
		fail "left: $(find "$MIG_SHARED" "$MIG_TMPFS-nodeB" -mindepth 2)"
}

# refused_in_both_modes NAME REASON: a migration of NAME (pid $PID) is refused for REASON, and
# the instance untouched, in default mode and in diskless mode.
refused_in_both_modes() {
	local mode
	for mode in default diskless; do
		mig_migrate nodeA "$1" --to nodeB --mode "$mode"
		echo "# $mode: $stderr" >&3
		assert_refused_untouched "$1" "$PID" "$2"
	done
}

# fit_launch NAME [MIG_LAUNCH OPTION...]: user 1's workload on nodeA, its pid in PID.
fit_launch() {
	mig_launch nodeA "$1" 16 "${@:2}"
	PID=$(inst_field nodeA "$1" pid)
	[ -n "$PID" ] || fail "no pid for '$1'"
}

@test "fit: the image missing on the destination is refused before anything freezes, in both modes" {
	mig_up
	local name=$T-img
	cp "$IMG" "$FIT_FILES/job.sqsh" && chmod 0644 "$FIT_FILES/job.sqsh"
	fit_launch "$name" --image "$FIT_FILES/job.sqsh"
	touch "$FIT_FILES/empty"
	on_nodeB_only "$FIT_FILES/empty" "$FIT_FILES/job.sqsh"
	refused_in_both_modes "$name" "image '$FIT_FILES/job.sqsh': "
}

@test "fit: an image that differs on the destination (another size or content) is refused, in both modes" {
	mig_up
	local name=$T-other
	cp "$IMG" "$FIT_FILES/job.sqsh" && chmod 0644 "$FIT_FILES/job.sqsh"
	fit_launch "$name" --image "$FIT_FILES/job.sqsh"
	# a real image still, a squashfs with a byte more: what nodeB has is not what nodeA runs
	cp "$IMG" "$FIT_FILES/other.sqsh" && printf x >>"$FIT_FILES/other.sqsh" && chmod 0644 "$FIT_FILES/other.sqsh"
	on_nodeB_only "$FIT_FILES/other.sqsh" "$FIT_FILES/job.sqsh"
	refused_in_both_modes "$name" "is not the one the instance runs from"
}

@test "fit: the destination looks at the image as the user: the same image, readable only by root there, is refused" {
	mig_up
	local name=$T-root
	cp "$IMG" "$FIT_FILES/job.sqsh" && chmod 0644 "$FIT_FILES/job.sqsh"
	fit_launch "$name" --image "$FIT_FILES/job.sqsh"
	# byte for byte the same file on nodeB, but root's alone: root would find it the same image;
	# the user, whose restart would open it, cannot
	cp "$IMG" "$FIT_FILES/rootonly.sqsh" && chmod 0600 "$FIT_FILES/rootonly.sqsh"
	on_nodeB_only "$FIT_FILES/rootonly.sqsh" "$FIT_FILES/job.sqsh"
	refused_in_both_modes "$name" "image '$FIT_FILES/job.sqsh': Permission denied"
}

@test "fit: a user who is someone else on the destination (the same uid, another name) is refused" {
	mig_up
	local name=$T-who
	fit_launch "$name"
	# nodeB's passwd gives user 1's uid to another name
	sed "s/^$U1:/ftfitother:/" /etc/passwd >"$FIT_FILES/passwd"
	chmod 0644 "$FIT_FILES/passwd"
	on_nodeB_only "$FIT_FILES/passwd" /etc/passwd
	mig_migrate nodeA "$name" --to nodeB --mode diskless
	assert_refused_untouched "$name" "$PID" "uid $U1_UID is 'ftfitother' here, not '$U1'"
}

@test "fit: a network the destination's policy refuses the user is refused before anything freezes" {
	mig_up
	local name=$T-pol
	fit_launch "$name" --net "$IPB"
	# nodeB's ferry.conf lets the user join no network
	grep -v '^allow net network' "$FERRY_CONF_D/99-ferry-test.conf" >"$FIT_FILES/conf"
	chmod 0644 "$FIT_FILES/conf"
	on_nodeB_only "$FIT_FILES/conf" "$FERRY_CONF_D/99-ferry-test.conf"
	hup_and_wait nodeB "SIGHUP: ferry.conf and the cluster key read again"
	mig_migrate nodeA "$name" --to nodeB --mode diskless
	echo "# $stderr" >&3
	assert_refused_untouched "$name" "$PID" "network 'ftmac': "
}

@test "fit: an address the user chose, which the destination does not let users choose, is refused before anything freezes" {
	mig_up
	local name=$T-rng
	fit_launch "$name" --net "$IPB"
	# nodeB's users may choose addresses only from another range ...
	sed 's#^allow net ip range.*#allow net ip range = 198.18.2.0/24#' "$FERRY_CONF_D/99-ferry-test.conf" >"$FIT_FILES/conf"
	chmod 0644 "$FIT_FILES/conf"
	on_nodeB_only "$FIT_FILES/conf" "$FERRY_CONF_D/99-ferry-test.conf"
	hup_and_wait nodeB "SIGHUP: ferry.conf and the cluster key read again"
	mig_migrate nodeA "$name" --to nodeB --mode diskless
	echo "# $stderr" >&3
	assert_refused_untouched "$name" "$PID" "network 'ftmac': IP=$IPB/16, kept from the instance's checkpoint.*'allow net ip range'"
	# ... or none at all
	sed 's#^allow net args.*#allow net args = no#' "$FERRY_CONF_D/99-ferry-test.conf" >"$FIT_FILES/conf"
	hup_and_wait nodeB "SIGHUP: ferry.conf and the cluster key read again"
	mig_migrate nodeA "$name" --to nodeB --mode default
	echo "# $stderr" >&3
	assert_refused_untouched "$name" "$PID" "network 'ftmac': IP=$IPB/16, kept from the instance's checkpoint.*'allow net args'"
}

@test "fit: an address kept from the instance that the destination's network does not have is refused before anything freezes" {
	mig_up
	local name=$T-sub
	fit_launch "$name" --net "$IPB"
	# on nodeB the network 'ftmac' is another subnet: its starter would refuse the restart of the
	# kept address; its ferryd asks the same ferry-net, before the source freezes anything
	write_test_network "$FIT_FILES/ftmac.conflist" ftmac 198.19.0.0/16
	on_nodeB_only "$FIT_FILES/ftmac.conflist" "$NETCONF"
	refused_in_both_modes "$name" "network 'ftmac' on this node does not have the address kept from the instance's checkpoint \\(IP=$IPB/16; its subnets: 198\\.19\\.0\\.0/16\\)"
	# the same network as nodeA's again: the instance moves, with its address
	nsenter -t "${FERRYD_PID[nodeB]}" -m umount "$NETCONF"
	mig_migrate nodeA "$name" --to nodeB --mode diskless
	assert_success
	assert_only_on nodeB "$name"
	[ "$(inst_field nodeB "$name" ip)" = "$IPB/16" ] || fail "'$name' on nodeB has '$(inst_field nodeB "$name" ip)', not $IPB/16"
}

@test "fit: the instance's address taken on the destination by another instance is refused, in both modes" {
	mig_up
	local name=$T-addr mac
	fit_launch "$name" --net "$IPB"
	mac=$(inst_field nodeA "$name" mac)
	[ -n "$mac" ] || fail "no MAC for '$name'"
	# user 2 holds that MAC on nodeB (another address of the range)
	run on_as nodeB "$U2" "$FERRY" instance start --net --network ftmac \
		--network-args "IP=198.18.1.250/16;MAC=$mac" "$IMG" "$T-squat" sleep 1000
	assert_success
	refused_in_both_modes "$name" "another instance here has the instance's address $IPB/16 \\(MAC $mac\\)"
	listed_on nodeB "$T-squat" "$U2" || fail "user 2's instance on nodeB was touched"
}

@test "fit: a destination tmpfs smaller than the instance is refused before anything freezes" {
	mkdir -p "$MIG_SMALL" && chmod 0755 "$MIG_SMALL"
	mount -t tmpfs -o size=16m,mode=0755 ft-migrate-small "$MIG_SMALL"
	mig_conf
	ferryd_start nodeA
	ferryd_start nodeB --tmpfs-dir "$MIG_SMALL/mig"
	local name=$T-small
	mig_launch nodeA "$name" 96
	PID=$(inst_field nodeA "$name" pid)
	mig_migrate nodeA "$name" --to nodeB --mode diskless
	echo "# $stderr" >&3
	assert_refused_untouched "$name" "$PID" "the tmpfs directory '$MIG_SMALL/mig' has 1[0-9] MiB free, the instance needs (9[6-9]|1[0-9][0-9]) MiB"
	# default mode needs no tmpfs: the same instance moves
	mig_migrate nodeA "$name" --to nodeB --mode default
	[ "$status" -eq 0 ] || fail "default migration failed: $stderr"
	assert_only_on nodeB "$name"
}

@test "fit: a destination whose CRIU cannot restore (Debian 12's 3.17.1 fails 'criu check' here) is refused, in both modes" {
	local old=/var/cache/ferry/criu-debian/usr/sbin/criu name=$T-criu
	[ -x "$old" ] || fail "no $old: run 'make setup'"
	mig_up
	fit_launch "$name"
	# nodeB's CRIU is that one; ferryd learns it again at SIGHUP
	on_nodeB_only "$old" "$(criu_path)"
	hup_and_wait nodeB "CRIU fails here"
	refused_in_both_modes "$name" "CRIU fails here \\(.*\\)"
}

# cpuinfo_hex DIR [FOREIGN]: the hex of 'criu cpuinfo dump's image of this CPU, made in DIR;
# FOREIGN: with xsave features this CPU lacks (bits set in the x86 entry's xfeatures_mask,
# field 8, its varint kept as long), as a source with another CPU would send.
cpuinfo_hex() {
	"$(criu_path)" cpuinfo dump -D "$1" || fail "criu cpuinfo dump failed"
	python3 - "$1/cpuinfo.img" "${2:-}" <<-'EOF2'
		import sys
		b = bytearray(open(sys.argv[1], "rb").read())
		def varint(i):
		    v = s = 0
		    while True:
		        v |= (b[i] & 0x7F) << s; s += 7; i += 1
		        if not b[i - 1] & 0x80: return v, i
		if sys.argv[2]:
		    # magics (8 bytes), the entry's size (4), then cpuinfo_entry: field 1, the x86 entry
		    assert b[12] == 0x0A
		    n, i = varint(13)
		    end = i + n
		    while i < end:
		        tag, i = varint(i)
		        if tag == (8 << 3):  # xfeatures_mask, a varint
		            first = b[i] | 0x7F
		            if first != b[i]: b[i] = first
		            else:  # (every low bit this CPU has: the next seven)
		                assert b[i] & 0x80, "xfeatures_mask is 127: make it longer"
		                b[i + 1] |= 0x7F
		            break
		        if tag & 7 == 0: _, i = varint(i)
		        elif tag & 7 == 2: n2, i = varint(i); i += n2
		        else: raise SystemExit("unexpected wire type in cpuinfo.img")
		    else: raise SystemExit("no xfeatures_mask in cpuinfo.img")
		print(b.hex())
	EOF2
}

@test "fit: a source with this node's own CPU image is ready; one with xsave features this CPU lacks is refused by 'criu cpuinfo check'" {
	mig_up
	local key=/etc/ferry/cluster.key own foreign
	own=$(cpuinfo_hex "$FIT_FILES")
	foreign=$(cpuinfo_hex "$FIT_FILES" foreign)
	[ -n "$own" ] && [ -n "$foreign" ] && [ "$own" != "$foreign" ] || fail "no foreign CPU image made"
	local -a prep=(type=prepare uid="$U1_UID" user="$U1" instance="$T-x" mode=diskless from=nodeA
		image="$IMG" fingerprint="$(image_fingerprint "$IMG")" networks= ip= mac= mem=0
		criu_version="$(criu_version)")
	# the very bytes nodeB's CRIU made of this CPU: ready (checked once, when ferryd started,
	# and compared, not checked, here)
	run on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" "$key" \
		msg "${prep[@]}" id=00aa11bb22c1 cpuinfo="$own" recv
	assert_line --regexp "^reply type=ready( dir=[^ ]+)?( busy_ms=[0-9]+)?$"
	# another CPU's: 'criu cpuinfo check' runs, and refuses it with CRIU's own line
	run on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" "$key" \
		msg "${prep[@]}" id=00aa11bb22c2 cpuinfo="$foreign" recv
	assert_line --regexp "^reply type=error message=this CPU lacks what the instance may use on the source's \(criu cpuinfo check: .*xfeatures has unsupported bits.*\) id=00aa11bb22c2$"
	refute_output --partial "type=ready"
	ferryd_alive nodeB || fail "ferryd on nodeB died"
}
