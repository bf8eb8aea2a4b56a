/* SPDX-License-Identifier: GPL-2.0-or-later */
/* helper.c — opening and executing the starter's helpers (see helper.h). */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "fs.h"
#include "helper.h"
#include "privs.h"
#include "spawn.h"
#include "util.h"

int helper_open(const char *name, struct ferry_error **err)
{
	_cleanup_free_ char *dirs = xstrdup(FERRY_LIBEXECDIR);
	_cleanup_free_ char *path = xasprintf("%s/%s", FERRY_LIBEXECDIR, name);
	_cleanup_close_ int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	char *save = NULL;
	for (char *p = strtok_r(dirs, "/", &save); fd >= 0; p = strtok_r(NULL, "/", &save)) {
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022))
			return ferry_error_msg(err, EPERM, "'%s' must be root's and not writable by others",
					       FERRY_LIBEXECDIR);
		int next = openat(fd, p ? p : name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (p ? O_DIRECTORY : 0));
		close(fd);
		fd = next;
		if (!p)
			break;
	}
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return ferry_error_set(err, errno, "open '%s'", path);
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (022 | S_ISUID | S_ISGID)))
		return ferry_error_msg(
		    err, EPERM, "'%s' must be root's, not writable by others, not setuid or setgid", path);
	return TAKE_FD(fd);
}

int helper_open_private(const char *name, const char *holds, struct ferry_error **err)
{
	_cleanup_close_ int exe = helper_open(name, err);
	struct stat st;
	if (exe < 0)
		return exe;
	if (fstat(exe, &st) < 0)
		return ferry_error_set(err, errno, "fstat %s", name);
	if (st.st_mode & 0044)
		return ferry_error_msg(err, EPERM,
				       "'%s/%s' must not be readable by others (mode 0711): it holds %s "
				       "(run 'make install')",
				       FERRY_LIBEXECDIR, name, holds);
	return TAKE_FD(exe);
}

int helper_become_caller(const void *privs)
{
	if (ferry_privs_drop(privs, NULL, 0, NULL) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return -EPERM;
	return 0;
}

_noreturn_ void helper_exec(const int *src, int n, int exe, char *const argv[], int (*become)(const void *),
			    const void *arg)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int null = fcntl(open("/dev/null", O_RDWR | O_CLOEXEC), F_DUPFD_CLOEXEC, 100);
	int high[HELPER_MAX_FDS];
	if (n > HELPER_MAX_FDS)
		_exit(127);
	for (int i = 0; i < n; i++)
		high[i] = src[i] >= 0 ? fcntl(src[i], F_DUPFD_CLOEXEC, 100) : -1;
	int hexe = fcntl(exe, F_DUPFD_CLOEXEC, 100);
	if (null < 0 || hexe < 0)
		_exit(127);
	for (int i = 0; i < n; i++) {
		int r = high[i] >= 0 ? dup2(high[i], i) : i < 3 ? dup2(null, i) : 0;
		if (r < 0)
			_exit(127);
		if (high[i] < 0 && i >= 3)
			close(i);
	}
	if (dup3(hexe, n, O_CLOEXEC) < 0)
		_exit(127);
	ferry_close_fds(n + 1, NULL);
	if (become(arg) < 0)
		_exit(127);
	char *const envp[] = {FERRY_SPAWN_PATH, NULL};
	syscall(SYS_execveat, n, "", argv, envp, AT_EMPTY_PATH);
	_exit(127);
}
