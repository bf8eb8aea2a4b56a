/* SPDX-License-Identifier: GPL-2.0-or-later */
/* minictr — the smallest container CRIU can checkpoint whole, for the bare-CRIU baseline of
 * ferry's benchmarks (bench/lib/baselines.bash). Run as root:
 *
 *   minictr ROOTFS HOSTNAME CMD [ARG...]
 *
 * It unshares a pid namespace and forks the container's init (pid 1 there), which unshares mount,
 * ipc and uts namespaces, calls setsid() (CRIU needs the session leader inside), binds ROOTFS
 * read-only onto itself in its private mount namespace, mounts tmpfs on dev/ (null, zero,
 * random, urandom) and tmp/, pivot_roots into it, mounts /proc and execs CMD with stdin from
 * /dev/null and stdout/stderr appended to /tmp/out.log (all inside, so CRIU needs no external
 * files). Nothing changes outside the container.
 *
 * minictr prints the init's pid (as the host sees it) on stdout, closes it, then waits for the
 * init and exits with its status (128+N when killed by signal N): it is the container's reaper. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *what, const char *arg)
{
	int e = errno;
	fprintf(stderr, "minictr: %s '%s': %s\n", what, arg, strerror(e));
	_exit(1);
}

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		       const char *data)
{
	if (mount(src, dst, type, flags, data) < 0)
		fail("mount", dst);
}

static void make_dev(const char *name, unsigned maj, unsigned min)
{
	if (mknod(name, S_IFCHR | 0666, makedev(maj, min)) < 0 || chmod(name, 0666) < 0)
		fail("mknod", name);
}

static void container_init(const char *rootfs, const char *hostname, char **cmd)
{
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		fail("unshare", "mnt/ipc/uts");
	if (setsid() < 0)
		fail("setsid", "init");
	if (sethostname(hostname, strlen(hostname)) < 0)
		fail("sethostname", hostname);
	must_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	must_mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL);
	must_mount(NULL, rootfs, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
	if (chdir(rootfs) < 0)
		fail("chdir", rootfs);
	must_mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m");
	make_dev("dev/null", 1, 3);
	make_dev("dev/zero", 1, 5);
	make_dev("dev/random", 1, 8);
	make_dev("dev/urandom", 1, 9);
	must_mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	/* pivot_root(".", "."): the old root ends up on top, detached at once */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail("pivot_root", rootfs);
	if (umount2(".", MNT_DETACH) < 0)
		fail("umount", "old root");
	if (chdir("/") < 0)
		fail("chdir", "/");
	must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);

	int in = open("/dev/null", O_RDONLY);
	int out = open("/tmp/out.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (in < 0 || out < 0)
		fail("open", "/dev/null or /tmp/out.log");
	fflush(stderr);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		fail("dup2", "stdio");
	close(in);
	close(out);
	syscall(SYS_close_range, 3, ~0u, 0);
	execv(cmd[0], cmd);
	fail("exec", cmd[0]); /* into /tmp/out.log */
}

int main(int argc, char **argv)
{
	if (argc < 4 || argv[1][0] != '/' || argv[3][0] != '/') {
		fprintf(stderr, "usage: minictr /ROOTFS HOSTNAME /CMD [ARG...]\n");
		return 2;
	}
	if (unshare(CLONE_NEWPID) < 0)
		fail("unshare", "pid");
	/* no PR_SET_PDEATHSIG for the init: CRIU would restore it, and the restored init would die
	 * with `criu restore -d` */
	pid_t pid = fork();
	if (pid < 0)
		fail("fork", "init");
	if (pid == 0)
		container_init(argv[1], argv[2], argv + 3);
	printf("%d\n", (int)pid);
	if (fflush(stdout) != 0)
		fail("write", "pid");
	fclose(stdout);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			fail("waitpid", "init");
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
