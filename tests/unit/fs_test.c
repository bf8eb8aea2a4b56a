/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry_root_dir_at: squatters moved aside, our own directories kept, never a symlink followed;
 * ferry_close_fds: every fd but the kept ones, in any order. */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "fs.h"

struct ctx {
	char tmp[64];
	int fd;
};

static int setup(void **state)
{
	struct ctx *c = xzalloc(sizeof(*c));
	snprintf(c->tmp, sizeof(c->tmp), "/tmp/ferry-fs-test.XXXXXX");
	if (!mkdtemp(c->tmp))
		return -1;
	c->fd = open(c->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*state = c;
	return c->fd < 0 ? -1 : 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	return remove(path) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	close(c->fd);
	nftw(c->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
	return 0;
}

/* ferry_root_dir_at(@name) succeeds with a directory of ours, mode @mode; returns what moved. */
static char *get(struct ctx *c, const char *name, mode_t mode)
{
	int fd = -1;
	char *moved = NULL;
	struct ferry_error *err = NULL;
	int r = ferry_root_dir_at(c->fd, name, mode, geteuid(), getegid(), &fd, &moved, &err);
	if (r < 0)
		fail_msg("ferry_root_dir_at '%s': %s", name, err ? err->message : "?");
	struct stat st, by_name;
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(fstatat(c->fd, name, &by_name, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(st.st_ino == by_name.st_ino && st.st_dev == by_name.st_dev);
	assert_false(st.st_mode & 022 & ~mode);
	close(fd);
	return moved;
}

static void test_made_with_exact_mode(void **state)
{
	struct ctx *c = *state;
	mode_t old = umask(077);
	char *moved = get(c, "base", 0711);
	umask(old);
	assert_null(moved);
	struct stat st;
	assert_int_equal(fstatat(c->fd, "base", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0711);
}

static void test_own_dir_kept(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(mkdirat(c->fd, "mine", 0755), 0);
	int fd = openat(c->fd, "mine/keep", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_null(get(c, "mine", 0711));
	struct stat st;
	assert_int_equal(fstatat(c->fd, "mine/keep", &st, 0), 0); /* the same directory */
	assert_int_equal(fstatat(c->fd, "mine", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0755); /* its mode kept */
}

static void assert_moved(struct ctx *c, const char *name, char *moved, mode_t type)
{
	assert_non_null(moved);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), ".%s.moved-", name);
	assert_true(strncmp(moved, prefix, strlen(prefix)) == 0);
	struct stat st;
	assert_int_equal(fstatat(c->fd, moved, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & S_IFMT, type);
	free(moved);
}

static void test_symlink_moved_not_followed(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(mkdirat(c->fd, "target", 0700), 0);
	assert_int_equal(symlinkat("target", c->fd, "link"), 0);
	assert_moved(c, "link", get(c, "link", 0711), S_IFLNK);
	struct stat st;
	assert_int_equal(fstatat(c->fd, "target", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0700); /* the target untouched */
}

static void test_file_moved(void **state)
{
	struct ctx *c = *state;
	int fd = openat(c->fd, "file", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_moved(c, "file", get(c, "file", 0711), S_IFREG);
}

static void test_writable_dir_moved(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(mkdirat(c->fd, "open", 0700), 0);
	assert_int_equal(fchmodat(c->fd, "open", 0777, 0), 0);
	assert_moved(c, "open", get(c, "open", 0711), S_IFDIR);
}

static void test_other_owner_moved(void **state)
{
	struct ctx *c = *state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(mkdirat(c->fd, "theirs", 0700), 0);
	assert_int_equal(fchownat(c->fd, "theirs", 65534, 65534, AT_SYMLINK_NOFOLLOW), 0);
	assert_moved(c, "theirs", get(c, "theirs", 0711), S_IFDIR);
}

static void test_bad_names(void **state)
{
	struct ctx *c = *state;
	static const char *const bad[] = {"", ".", "..", "a/b", "../x"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int fd = -1;
		_cleanup_error_ struct ferry_error *err = NULL;
		assert_int_equal(ferry_root_dir_at(c->fd, bad[i], 0711, 0, 0, &fd, NULL, &err), -EINVAL);
		assert_int_equal(fd, -1);
	}
}

/* ferry_fd_open_elsewhere: another fd on the same inode, in this process or a child, is seen;
 * the fd itself and other files are not. */
static void test_open_elsewhere(void **state)
{
	struct ctx *c = *state;
	int a = openat(c->fd, "f", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int other = openat(c->fd, "g", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(a >= 0 && other >= 0);
	assert_int_equal(ferry_fd_open_elsewhere(a), 0);
	int b = openat(c->fd, "f", O_RDONLY | O_CLOEXEC);
	assert_int_equal(ferry_fd_open_elsewhere(a), 1);
	close(b);
	assert_int_equal(ferry_fd_open_elsewhere(a), 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) { /* a child keeps its own open file of "f" (and not the one it inherited) */
		close(a);
		int k = openat(c->fd, "f", O_WRONLY);
		(void)!write(p[1], "x", 1);
		pause();
		_exit(k < 0);
	}
	char x;
	assert_int_equal(read(p[0], &x, 1), 1);
	assert_int_equal(ferry_fd_open_elsewhere(a), 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(ferry_fd_open_elsewhere(a), 0);
	close(p[0]);
	close(p[1]);
	close(a);
	close(other);
}

/* In a child (the closes are for good): fds 40..47 open, then ferry_close_fds(41, KEEP): bit i
 * of the exit status says fd 40 + i is still open. */
static int open_after_close(const int *keep)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int fd = 40; fd < 48; fd++)
			if (dup2(0, fd) != fd)
				_exit(255);
		ferry_close_fds(41, keep);
		int open = 0;
		for (int fd = 40; fd < 48; fd++)
			if (fcntl(fd, F_GETFD) >= 0)
				open |= 1 << (fd - 40);
		_exit(open);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_close_fds(void **state)
{
	(void)state;
	/* nothing kept: everything from 41 up goes, 40 stays */
	assert_int_equal(open_after_close(NULL), 0x01);
	assert_int_equal(open_after_close((const int[]){-1}), 0x01);
	/* kept ones, unsorted, one below @from and one past the others, two next to each other */
	assert_int_equal(open_after_close((const int[]){46, 43, 44, 12, 1000, -1}),
			 0x01 | 0x08 | 0x10 | 0x40);
	/* the first and the last of the range */
	assert_int_equal(open_after_close((const int[]){47, 41, -1}), 0x01 | 0x02 | 0x80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_made_with_exact_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_own_dir_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlink_moved_not_followed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_moved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_writable_dir_moved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_owner_moved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_elsewhere, setup, teardown),
	    cmocka_unit_test(test_close_fds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
