#!/usr/bin/env bats
# Issue 12: configuration drop-ins in /etc/ferry/ferry.conf.d. The setuid starter takes its
# policy from them too, so it must trust one only when root alone can have written it, as it
# does ferry.conf: a drop-in owned by a user, or writable by a group a user is in, or a symbolic
# link (to anything), or a directory a user can write into, would let that user grant themselves
# 'allow bind path = /'. Each is refused by the starter, run as the unprivileged test user, with
# one line naming the file. On a ferry that does not read drop-ins the planted file is silently
# ignored and these tests fail (the command runs).

load ../lib/common

EVIL=/etc/ferry/ferry.conf.d/50-ft-evil.conf

setup_file() { ferry_suite_setup; }
teardown_file() { ferry_suite_teardown; }

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	install -d -o root -g root -m 0755 "$FERRY_CONF_D"
}

teardown() {
	rm -f "$EVIL" "$FERRY_CONF_D/51-ft-user.conf"
	chown root:root "$FERRY_CONF_D"
	chmod 0755 "$FERRY_CONF_D"
	ferry_teardown
}

# the user's try: see the host's /etc through a bind that only 'allow bind path = /' permits
try_bind_root() {
	run --separate-stderr as_user1 "$FERRY" exec -B /etc:/hostetc "$IMG" cat /hostetc/hostname
}

@test "attack: a drop-in owned by the user is refused, with one line naming it" {
	as_user1 sh -c "echo 'allow bind path = /' >'$U1_TMP/evil.conf'"
	cp "$U1_TMP/evil.conf" "$EVIL"
	chown "$U1:" "$EVIL"
	chmod 0644 "$EVIL"
	try_bind_root
	assert_ferry_error "'$EVIL' must be owned by root and not writable by others"
	# the same file root's: read (so the refusal above is the owner's doing)
	chown root:root "$EVIL"
	run --separate-stderr as_user1 "$FERRY" exec -B /etc:/hostetc "$IMG" true
	assert_success
}

@test "attack: a root drop-in writable by a group of the user's is refused" {
	printf 'mount tmp = yes\n' >"$EVIL"
	chown "root:$TEST_GROUP" "$EVIL"
	chmod 0664 "$EVIL"
	# the user can indeed rewrite it
	as_user1 sh -c "echo 'allow bind path = /' >'$EVIL'"
	try_bind_root
	assert_ferry_error "'$EVIL' must be owned by root and not writable by others"
	chmod 0646 "$EVIL"
	try_bind_root
	assert_ferry_error "'$EVIL' must be owned by root"
}

@test "attack: a drop-in that is a symbolic link is refused, whatever it points to" {
	as_user1 sh -c "echo 'allow bind path = /' >'$U1_TMP/evil.conf'"
	ln -s "$U1_TMP/evil.conf" "$EVIL"
	try_bind_root
	assert_ferry_error "'$EVIL' is a symbolic link"
	# even to a file of root's
	rm -f "$EVIL"
	ln -s /etc/ferry/ferry.conf "$EVIL"
	try_bind_root
	assert_ferry_error "'$EVIL' is a symbolic link"
}

@test "attack: a drop-in directory the user can write into is refused" {
	chown "root:$TEST_GROUP" "$FERRY_CONF_D"
	chmod 0775 "$FERRY_CONF_D"
	as_user1 sh -c "echo 'allow bind path = /' >'$FERRY_CONF_D/51-ft-user.conf'"
	try_bind_root
	assert_ferry_error "'$FERRY_CONF_D' must be owned by root and not writable by others"
	# sticky does not excuse it (a user's own file in it is theirs)
	chmod 01777 "$FERRY_CONF_D"
	try_bind_root
	assert_ferry_error "'$FERRY_CONF_D' must be owned by root"
}
