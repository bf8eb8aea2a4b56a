#!/usr/bin/env bats
# exec, run and shell: in all three image forms, as root and as a test user;
# environment, working directory, hostname, --contain, the container's view.

load ../lib/common

setup_file() { ferry_suite_setup; }
teardown_file() { ferry_suite_teardown; }
setup() { ferry_test_setup; }
teardown() { ferry_teardown; }

@test "exec runs a command in every image form, as root and as a user" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for who in as_root as_user1; do
			echo "# $who"
			run --separate-stderr $who ferry exec "$IMG" cat /etc/ferry-test-image
			assert_success
			assert_output "ferry busybox test image"
			[ -z "$stderr" ] || fail "unexpected stderr: $stderr"
		done
	done
}

@test "exec passes arguments unchanged and returns the command's exit status" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry exec "$IMG" sh -c 'printf "[%s]" "$@"; exit 7' sh 'a b' '' '$HOME' '*'
		assert_equal "$status" 7
		assert_output '[a b][][$HOME][*]'
	done
	use_image sqsh
	run as_root ferry exec "$IMG" false
	assert_equal "$status" 1
}

@test "exec: a command killed by a signal gives 128+N" {
	use_image dir
	run as_user1 ferry exec "$IMG" sh -c 'kill -KILL $$'
	assert_equal "$status" 137
}

@test "exec: stdin and stdout are the caller's" {
	use_image sqsh
	run as_user1 sh -c "printf 'line1\nline2\n' | ferry exec '$IMG' wc -l"
	assert_success
	assert_output "2"
}

@test "exec: a command not in the image gives 127 and a one-line error" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run -127 --separate-stderr as_user1 ferry exec "$IMG" /no/such/command
		assert_ferry_error "no/such/command" 127
		run -127 --separate-stderr as_root ferry exec "$IMG" no-such-command
		assert_ferry_error "no-such-command" 127
	done
}

@test "run executes the runscript with the arguments and the image's environment" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for who in as_root as_user1; do
			run --separate-stderr $who ferry run "$IMG" one "two words"
			assert_success
			assert_line --index 0 "runscript args: one two words"
			assert_line --index 1 "FOO_FROM_IMAGE=1"
		done
	done
}

@test "run without arguments runs the runscript with none" {
	use_image sqsh
	run as_user1 ferry run "$IMG"
	assert_success
	assert_line --index 0 "runscript args: "
}

@test "shell reads commands from stdin and returns their exit status" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for who in as_root as_user1; do
			run $who sh -c "echo 'echo hi; exit 3' | ferry shell '$IMG'"
			assert_equal "$status" 3
			assert_output "hi"
		done
	done
}

@test "shell takes no command" {
	use_image dir
	run --separate-stderr as_user1 ferry shell "$IMG" ls
	assert_ferry_error "shell"
}

@test "the image is read-only; /tmp, home and /dev work" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry exec "$IMG" sh -c 'touch /newfile'
		assert_failure
		run as_root ferry exec "$IMG" sh -c 'touch /newfile'
		assert_failure
		run as_root ferry exec "$IMG" sh -c 'touch /sys/x || mkdir /sys/x'
		assert_failure
		run as_user1 ferry exec "$IMG" sh -c '
			set -e
			for d in null zero full random urandom tty; do [ -c /dev/$d ]; done
			[ -d /dev/pts ] && [ -d /dev/shm ]
			echo discard > /dev/null
			[ "$(head -c 4 /dev/zero | od -An -tx1 | tr -d " ")" = 00000000 ]
			echo x > /tmp/ft-file-$$ && rm /tmp/ft-file-$$
			echo y > "$HOME/ft-home-$$" && rm "$HOME/ft-home-$$"
			echo ok'
		assert_success
		assert_output "ok"
	done
}

@test "the image's files are not changed by running it (sandbox stays as built)" {
	use_image dir
	before=$(find "$IMG" -printf '%p %m %s %T@\n' | sort | sha256sum)
	run as_root ferry exec "$IMG" sh -c 'echo > /etc/passwd; rm -f /bin/ls; true'
	after=$(find "$IMG" -printf '%p %m %s %T@\n' | sort | sha256sum)
	assert_equal "$after" "$before"
}

@test "pid namespace: the command is pid 2 under ferry's init, ps sees only the container" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for who in as_root as_user1; do
			run $who ferry exec "$IMG" sh -c 'echo $$'
			assert_success
			assert_output "2"
			run $who ferry exec "$IMG" ps -o pid,comm
			assert_success
			# header + init + sh/ps: never the host's processes
			n=$(($(echo "$output" | wc -l) - 1))
			[ "$n" -ge 2 ] && [ "$n" -le 3 ] || fail "ps inside shows $n processes: $output"
			assert_line --regexp '^ *1 '
			refute_line --partial systemd
			refute_line --partial bats
		done
	done
}

@test "pid namespace: the container cannot signal host processes" {
	use_image dir
	sleep 60 3>&- &
	host_pid=$!
	run as_root ferry exec "$IMG" sh -c "kill -TERM $host_pid 2>/dev/null; ls /proc/$host_pid >/dev/null 2>&1 && echo visible; true"
	kill -0 "$host_pid" || fail "a container killed host pid $host_pid"
	kill "$host_pid"
	wait "$host_pid" || true
	refute_output "visible"
}

@test "--hostname sets the container's hostname, not the host's" {
	host_before=$(hostname)
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry exec --hostname ft-box "$IMG" hostname
		assert_success
		assert_output "ft-box"
		run as_user1 ferry exec "$IMG" hostname
		assert_output "$host_before"
	done
	assert_equal "$(hostname)" "$host_before"
}

@test "--hostname rejects an invalid name" {
	use_image dir
	run --separate-stderr as_user1 ferry exec --hostname 'bad/host' "$IMG" true
	assert_ferry_error "hostname"
	run --separate-stderr as_user1 ferry exec --hostname "$(printf 'h%.0s' {1..65})" "$IMG" true
	assert_ferry_error "hostname"
}

@test "working directory: the current directory by default, --pwd when given" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 sh -c "cd '$U1_TMP' && ferry exec '$IMG' pwd"
		assert_success
		assert_output "$U1_TMP"
		run as_user1 ferry exec --pwd /etc "$IMG" pwd
		assert_success
		assert_output "/etc"
		run as_root sh -c "cd /var/tmp && ferry exec --pwd /bin '$IMG' pwd"
		assert_output "/bin"
	done
}

@test "the current directory is bound when it is outside home" {
	use_image sqsh
	d=$(mktemp -d /var/tmp/ft-cwd.XXXXXX)
	chown "$U1:" "$d"
	echo "cwd content" >"$d/f"
	chmod 0644 "$d/f"
	run as_user1 sh -c "cd '$d' && ferry exec '$IMG' sh -c 'pwd; cat f'"
	rm -rf "$d"
	assert_success
	assert_line --index 0 "$d"
	assert_line --index 1 "cwd content"
}

@test "--pwd to a directory missing in the container is an error" {
	use_image dir
	run --separate-stderr as_user1 ferry exec --pwd /no/such/dir "$IMG" true
	assert_ferry_error "/no/such/dir"
	run --separate-stderr as_user1 ferry exec --pwd relative/dir "$IMG" true
	assert_ferry_error "pwd"
}

@test "\$HOME, /tmp and the current directory are the host's by default" {
	marker=/tmp/ft-host-tmp.$$
	echo "host tmp" >"$marker"
	chmod 0644 "$marker"
	echo "home file" | as_user1 sh -c "cat > '$U1_TMP/h'"
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry exec "$IMG" sh -c "cat '$marker' '$U1_TMP/h'; echo \$HOME"
		assert_success
		assert_line --index 0 "host tmp"
		assert_line --index 1 "home file"
		assert_line --index 2 "$U1_HOME"
		# and what the container writes there is on the host
		run as_user1 ferry exec "$IMG" sh -c "echo written > '$U1_TMP/w-$f'"
		assert_success
		assert_equal "$(cat "$U1_TMP/w-$f")" "written"
	done
	rm -f "$marker"
}

@test "--contain: empty home, private /tmp, no current directory" {
	marker=/tmp/ft-host-tmp.$$
	echo "host tmp" >"$marker"
	echo "home file" | as_user1 sh -c "cat > '$U1_TMP/h'"
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for opt in -c --contain; do
			run as_user1 ferry exec $opt "$IMG" sh -c "ls -A \"\$HOME\" | wc -l; ls -A /tmp | wc -l; [ -e '$marker' ] && echo tmp-visible; [ -e '$U1_TMP/h' ] && echo home-visible; echo contained > /tmp/inside.$$; cat /tmp/inside.$$; echo h > \"\$HOME/h.$$\" && echo home-writable"
			assert_success
			assert_line --index 0 "0"
			assert_line --index 1 "0"
			refute_line "tmp-visible"
			refute_line "home-visible"
			assert_line "contained"
		done
		[ ! -e "/tmp/inside.$$" ] || fail "--contain's /tmp wrote to the host's /tmp"
		[ ! -e "$U1_HOME/h.$$" ] || fail "--contain's home wrote to the host home"
		d=$(mktemp -d /var/tmp/ft-cwd.XXXXXX)
		chmod 0755 "$d"
		touch "$d/cwdfile"
		run as_user1 sh -c "cd '$d' && ferry exec -c '$IMG' sh -c 'ls $d/cwdfile 2>/dev/null; pwd'"
		rm -rf "$d"
		refute_line "$d/cwdfile"
	done
	rm -f "$marker"
}

@test "--no-home does not bind the home directory" {
	echo "home file" | as_user1 sh -c "cat > '$U1_TMP/h'"
	use_image sqsh
	# from outside home (the current directory is bound, like Apptainer's --no-home)
	run as_user1 sh -c "cd / && ferry exec --no-home '$IMG' sh -c 'cat $U1_TMP/h 2>/dev/null || echo not-visible'"
	assert_output "not-visible"
}

@test "environment: host variables pass, PATH is the container's, --env and FERRYENV_ set variables" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for who in as_root as_user1; do
			run $who env FT_HOST_VAR=hostval FERRYENV_FT_FROM_PREFIX=prefixval \
				ferry exec --env FT_OPT=optval --env 'FT_SPACES=a b  c' "$IMG" \
				sh -c 'echo "$FT_HOST_VAR|$FT_FROM_PREFIX|$FT_OPT|$FT_SPACES|$PATH"; env | grep -c "^FERRYENV_" || true'
			assert_success
			assert_line --index 0 "hostval|prefixval|optval|a b  c|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
			assert_line --index 1 "0"
		done
	done
}

@test "environment: --env wins over FERRYENV_ and the host" {
	use_image dir
	run as_user1 env FT_X=host FERRYENV_FT_X=prefix ferry exec --env FT_X=opt "$IMG" sh -c 'echo $FT_X'
	assert_output "opt"
	run as_user1 env FT_X=host FERRYENV_FT_X=prefix ferry exec "$IMG" sh -c 'echo $FT_X'
	assert_output "prefix"
}

@test "environment: --cleanenv drops host variables but keeps HOME and --env" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for opt in -e --cleanenv; do
			run as_user1 env FT_HOST_VAR=hostval FERRYENV_FT_P=p ferry exec $opt --env FT_OPT=optval "$IMG" \
				sh -c 'echo "host=${FT_HOST_VAR:-unset} opt=$FT_OPT p=${FT_P:-unset} home=$HOME"'
			assert_success
			assert_output "host=unset opt=optval p=p home=$U1_HOME"
		done
	done
}

@test "environment: --env without '=' is refused" {
	use_image dir
	run --separate-stderr as_user1 ferry exec --env NOVALUE "$IMG" true
	assert_ferry_error "env"
}

@test "identity: uid, gid and groups inside are the caller's" {
	out_host=$(as_user1 sh -c 'id -u; id -g; id -G | tr " " "\n" | sort -n | tr "\n" " "')
	[[ "$out_host" == *"$(getent group "$TEST_GROUP" | cut -d: -f3)"* ]] || fail "test user lacks its supplementary group"
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry exec "$IMG" sh -c 'id -u; id -g; id -G | tr " " "\n" | sort -n | tr "\n" " "'
		assert_success
		assert_output "$out_host"
		run as_user2 ferry exec "$IMG" id -u
		assert_output "$U2_UID"
		run as_root ferry exec "$IMG" sh -c 'id -u; id -g'
		assert_output "0
0"
	done
}

@test "identity: no capabilities and no_new_privs, for root too" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for who in as_root as_user1; do
			run $who ferry exec "$IMG" grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status
			assert_success
			assert_line --regexp '^CapEff:[[:space:]]+0000000000000000$'
			assert_line --regexp '^CapPrm:[[:space:]]+0000000000000000$'
			assert_line --regexp '^CapBnd:[[:space:]]+0000000000000000$'
			assert_line --regexp '^CapAmb:[[:space:]]+0000000000000000$'
			assert_line --regexp '^CapInh:[[:space:]]+0000000000000000$'
			assert_line --regexp '^NoNewPrivs:[[:space:]]+1$'
			# and the init (pid 1) too
			run $who ferry exec "$IMG" grep -E '^(CapEff|CapBnd|Uid):' /proc/1/status
			assert_line --regexp '^CapEff:[[:space:]]+0000000000000000$'
			assert_line --regexp '^CapBnd:[[:space:]]+0000000000000000$'
		done
	done
}

@test "identity: root in the container cannot mount or change its identity" {
	use_image sqsh
	run as_root ferry exec "$IMG" sh -c 'mount -t tmpfs none /tmp'
	assert_failure
	run as_root ferry exec "$IMG" sh -c 'hostname evil'
	assert_failure
	run as_user1 ferry exec "$IMG" sh -c 'su -c id root </dev/null'
	assert_failure
}

@test "exec from a directory that is not in the container starts in home" {
	use_image dir
	run as_user1 sh -c "cd /usr/share && ferry exec '$IMG' pwd"
	assert_success
	assert_output "$U1_HOME"
	run as_user1 sh -c "cd / && ferry exec '$IMG' pwd"
	assert_success
	assert_output "/"
}

@test "containers of one user run side by side" {
	use_image sqsh
	as_user1 ferry exec "$IMG" sleep 2 3>&- &
	p1=$!
	as_user1 ferry exec "$IMG" sleep 2 3>&- &
	p2=$!
	run as_user1 ferry exec "$IMG" echo third
	assert_output "third"
	wait "$p1"
	wait "$p2"
}

@test "version and help" {
	run ferry version
	assert_success
	assert_output --regexp '^ferry version [0-9]'
	run ferry --help
	assert_success
	assert_output --partial "Usage: ferry"
	run ferry exec --help
	assert_success
	assert_output --partial "Usage: ferry exec"
	run ferry instance --help
	assert_success
	assert_output --partial "instance start"
}

@test "the user has a passwd and group entry inside (whoami works); the image's own files are untouched" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry exec "$IMG" sh -c 'whoami; grep "^root:" /etc/passwd; tail -n 1 /etc/passwd; tail -n 1 /etc/group'
		assert_success
		assert_line --index 0 "$U1"
		assert_line --index 1 --regexp '^root:x:0:0:'
		assert_line --index 2 "$U1:x:$U1_UID:$(id -g "$U1")::$U1_HOME:/bin/sh"
		assert_line --index 3 "$U1:x:$(id -g "$U1"):"
		# root is in the image already: nothing added for root
		run as_root ferry exec "$IMG" sh -c 'grep -c "^root:" /etc/passwd'
		assert_output 1
	done
	# the sandbox's own file did not change
	run grep -c "^$U1:" "$IMAGES/busybox.sandbox/etc/passwd"
	assert_output 0
}
