/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fit.c — whether an instance fits the destination, asked before anything of it stops (ferryd.h).
 *
 * The source: the starter lists the user's instances (their records are root's), and a child
 * that is the user for good (ferryd_as_user) parses that list, finds the instance, adds up the
 * memory of its processes and answers with a fixed layout, which root checks field by field.
 * The destination: root checks what needs no path a user names (the network policy, the MAC
 * held by another instance or the node, the memory and the tmpfs free); a child that is the
 * user for good opens the image as the restart would and compares its fingerprint. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/securebits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "criu.h"
#include "ferryd.h"
#include "fs.h"
#include "image.h"
#include "instance.h"
#include "manifest.h"
#include "net.h"
#include "privs.h"
#include "spawn.h"

#define FIT_DEADLINE 20 /* seconds for a child's answer */
#define FIT_MAX_PROCS 65536 /* processes of the node looked at for the instance's tree */

/* ---- this node's CRIU ---- */

#define CRIU_FACT_TIMEOUT 30 /* seconds for each of CRIU's answers */

/* CRIU (ferry.conf's 'criu path') as root with @argv, for what needs no input of anyone's: its
 * stdout in *ret_out (stderr's last line in the error). */
static int criu_root(const struct ferryd *d, char *const argv[], char **ret_out, struct ferry_error **err)
{
	size_t len = 0;
	struct ferry_spawn_opts o = {.stdin_fd = FERRY_SPAWN_DEVNULL,
				     .output = ret_out,
				     .output_len = &len,
				     .capture_stderr = true,
				     .timeout = CRIU_FACT_TIMEOUT};
	return ferry_spawn(d->cfg->criu_path, argv, NULL, &o, NULL, err);
}

#define KDAT_MAX 65536

/* The child of kdat_learn: a root 'criu check --feature uffd-noncoop' in a mount namespace of its
 * own whose /run is a fresh tmpfs (CRIU keeps its kernel facts only on a tmpfs, in /run), its
 * criu.kdat written to @out. */
static _noreturn_ void kdat_child(const struct ferryd *d, int out)
{
	struct ferry_error *err = NULL;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=0755") < 0)
		_exit(2);
	char *const argv[] = {"criu", "check", "--feature", "uffd-noncoop", NULL};
	_cleanup_free_ char *o = NULL, *buf = NULL;
	size_t len = 0;
	if (criu_root(d, argv, &o, &err) < 0) {
		(void)ferry_write_all(out, err->message, strlen(err->message));
		_exit(1);
	}
	int fd = open("/run/criu.kdat", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || ferry_read_all(fd, KDAT_MAX, &buf, &len, &err) < 0 || len == 0 ||
	    ferry_write_all(out, buf, len) < 0)
		_exit(3);
	_exit(0);
}

/* Post-copy's CRIU kernel facts (criu.h, FERRY_CRIU_KDAT_DIR), recorded for this boot: 0, or -1
 * with why in @why (this node then takes no live migration). */
static int kdat_learn(const struct ferryd *d, char *why, size_t n)
{
	char dir[256];
	int p[2];
	if (ferry_criu_kdat_dir(dir, sizeof(dir)) < 0 || pipe2(p, O_CLOEXEC) < 0)
		return snprintf(why, n, "no boot id"), -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		kdat_child(d, p[1]);
	}
	close(p[1]);
	struct ferry_error *err = NULL;
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = pid < 0 ? -1 : ferry_read_all(p[0], KDAT_MAX, &data, &len, &err);
	ferry_error_free(err);
	err = NULL;
	close(p[0]);
	int st = 0;
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (pid < 0 || r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(why, n, "'criu check --feature uffd-noncoop' fails here%s%.*s",
			 WIFEXITED(st) && WEXITSTATUS(st) == 1 ? ": " : "",
			 WIFEXITED(st) && WEXITSTATUS(st) == 1 ? (int)(len < 400 ? len : 400) : 0,
			 data ? data : "");
		return -1;
	}
	/* root's, readable by all (it is the kernel's facts, nothing secret), made anew at each
	 * start: CRIU trusts it without checking it against the kernel */
	_cleanup_close_ int base = -1, dfd = -1;
	if ((mkdir(FERRY_CRIU_KDAT_DIR, 0755) < 0 && errno != EEXIST) ||
	    (base = open(FERRY_CRIU_KDAT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fchown(base, 0, 0) < 0 || fchmod(base, 0755) < 0 ||
	    (mkdirat(base, strrchr(dir, '/') + 1, 0755) < 0 && errno != EEXIST) ||
	    (dfd = openat(base, strrchr(dir, '/') + 1, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
		0 ||
	    fchown(dfd, 0, 0) < 0 || fchmod(dfd, 0755) < 0 ||
	    ferry_write_file_atomic(dfd, "criu.kdat", data, len, 0644, &err) < 0) {
		snprintf(why, n, "cannot record CRIU's kernel facts in '%s': %s", dir,
			 err ? err->message : strerror(errno));
		ferry_error_free(err);
		return -1;
	}
	return 0;
}

/* A CRIU version: digits and dots, a digit first ("4.2.1"). */
static bool version_ok(const char *v)
{
	return isdigit((unsigned char)v[0]) && strspn(v, "0123456789.") == strlen(v);
}

/* "Version: 4.2.1" (and more lines) into "4.2.1"; false when it is not one. */
static bool version_of(const char *out, char *ret, size_t n)
{
	const char *v = out ? strstr(out, "Version: ") : NULL;
	if (!v)
		return false;
	v += strlen("Version: ");
	size_t len = strspn(v, "0123456789.");
	if (len >= n)
		return false;
	memcpy(ret, v, len);
	ret[len] = '\0';
	return version_ok(ret);
}

/* <0, 0, >0 as version @a is older, the same, newer than @b ("4.2.1" against "4.10"). */
static int version_cmp(const char *a, const char *b)
{
	for (int part = 0; part < 8 && (*a || *b); part++) {
		char *ea, *eb;
		unsigned long x = strtoul(a, &ea, 10), y = strtoul(b, &eb, 10);
		if (x != y)
			return x < y ? -1 : 1;
		a = *ea == '.' ? ea + 1 : ea;
		b = *eb == '.' ? eb + 1 : eb;
	}
	return 0;
}

static int cpuinfo_check(const struct ferryd *d, const unsigned char *img, size_t len, char *why, size_t n);

void ferryd_criu_learn(struct ferryd *d)
{
	struct ferryd_criu *c = &d->criu;
	*c = (struct ferryd_criu){0};
	struct ferry_error *err = NULL;
	_cleanup_free_ char *out = NULL;
	char *const vargv[] = {"criu", "--version", NULL};
	if (criu_root(d, vargv, &out, &err) < 0 || !version_of(out, c->version, sizeof(c->version)))
		snprintf(c->check, sizeof(c->check), "%s --version: %s", d->cfg->criu_path,
			 err ? err->message : "no version");
	ferry_error_free(err);
	err = NULL;
	char *const cargv[] = {"criu", "check", NULL};
	_cleanup_free_ char *cout = NULL;
	if (!c->check[0] && criu_root(d, cargv, &cout, &err) < 0)
		snprintf(c->check, sizeof(c->check), "%s", err->message);
	ferry_error_free(err);
	err = NULL;
	/* the CPU as CRIU sees it, for a destination's 'criu cpuinfo check' */
	char dir[] = "/tmp/ferryd-cpuinfo.XXXXXX";
	if (!c->check[0] && mkdtemp(dir)) {
		char *const dargv[] = {"criu", "cpuinfo", "dump", "-D", dir, NULL};
		_cleanup_free_ char *dout = NULL, *img = xasprintf("%s/cpuinfo.img", dir);
		int fd =
		    criu_root(d, dargv, &dout, &err) < 0 ? -1 : open(img, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, c->cpuinfo, sizeof(c->cpuinfo));
		c->cpuinfo_len = n > 0 && (size_t)n < sizeof(c->cpuinfo) ? (uint32_t)n : 0;
		if (fd >= 0)
			close(fd);
		unlink(img);
		rmdir(dir);
		if (!c->cpuinfo_len)
			ferryd_log(NULL, "criu cpuinfo dump: %s: destinations cannot check this CPU",
				   err ? err->message : "no image");
		ferry_error_free(err);
		/* the check of this CPU's own image, once: a source that sends the same bytes then
		 * costs no CRIU run at each migration's prepare (a homogeneous cluster's every one) */
		char why[512];
		c->cpuinfo_self_ok =
		    c->cpuinfo_len && cpuinfo_check(d, c->cpuinfo, c->cpuinfo_len, why, sizeof(why)) == 0;
		if (c->cpuinfo_len && !c->cpuinfo_self_ok)
			ferryd_log(NULL,
				   "criu cpuinfo check of this CPU's own image fails here (%s): each "
				   "source's is checked",
				   why);
	}
	if (c->check[0])
		snprintf(c->lazy, sizeof(c->lazy), "CRIU fails here");
	else if (kdat_learn(d, c->lazy, sizeof(c->lazy)) < 0)
		ferryd_log(NULL, "this node takes no live migration: %s", c->lazy);
	if (c->check[0])
		ferryd_log(NULL, "CRIU fails here (%s): this node can neither send nor take a migration",
			   c->check);
	else
		ferryd_log(NULL, "CRIU %s here ('criu check' passes)", c->version);
}

/* The last line of @buf that says something (trailing blanks cut), in place. */
static const char *last_line(char *buf)
{
	char *end = buf + strlen(buf);
	while (end > buf && (end[-1] == '\n' || end[-1] == ' '))
		*--end = '\0';
	char *line = strrchr(buf, '\n');
	return line ? line + 1 : buf;
}

/* In the child of cpuinfo_check: CRIU as nobody for good, CAP_CHECKPOINT_RESTORE alone. */
static _noreturn_ void cpuinfo_child(const struct ferryd *d, const struct passwd *pw, int out, char *dir)
{
	struct ferry_privs p = {.uid = pw->pw_uid, .gid = pw->pw_gid};
	static const int keep[] = {CAP_CHECKPOINT_RESTORE};
	char *const argv[] = {"criu", "cpuinfo", "check", "--unprivileged", "-D", dir, NULL};
	char *const envp[] = {FERRY_SPAWN_PATH, NULL};
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(126);
	ferry_close_fds(3, (const int[]){-1});
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (ferry_privs_drop(&p, keep, ARRAY_SIZE(keep), NULL) < 0)
		_exit(126);
	execve(d->cfg->criu_path, argv, envp);
	_exit(127);
}

/* 'criu cpuinfo check' of the source's CPU image @img here. CRIU parses bytes a peer sent (the
 * link authenticated them first), so it runs as nobody for good, with CAP_CHECKPOINT_RESTORE
 * alone (CRIU asks for it even to check), on a copy in a directory of root's. 0, or -1 with
 * CRIU's last line in @why. */
static int cpuinfo_check(const struct ferryd *d, const unsigned char *img, size_t len, char *why, size_t n)
{
	char dir[] = "/tmp/ferryd-cpucheck.XXXXXX";
	if (!mkdtemp(dir)) {
		snprintf(why, n, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	_cleanup_free_ char *path = xasprintf("%s/cpuinfo.img", dir);
	const struct passwd *pw = getpwnam("nobody");
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	_cleanup_close_ int out = memfd_create("ferryd-cpucheck", MFD_CLOEXEC);
	int r =
	    fd >= 0 && out >= 0 && pw && ferry_write_all(fd, img, len) == 0 && chmod(dir, 0755) == 0 ? 0 : -1;
	if (r < 0)
		snprintf(why, n, "prepare the check: %s", pw ? strerror(errno) : "no user 'nobody'");
	if (fd >= 0)
		close(fd);
	pid_t pid = r < 0 ? -1 : fork();
	if (pid == 0)
		cpuinfo_child(d, pw, out, dir);
	if (r == 0 && pid < 0) {
		snprintf(why, n, "fork: %s", strerror(errno));
		r = -1;
	}
	if (pid > 0) {
		int status = 0, pfd = (int)syscall(SYS_pidfd_open, pid, 0);
		struct pollfd pf = {.fd = pfd, .events = POLLIN};
		if (pfd < 0 || poll(&pf, 1, CRIU_FACT_TIMEOUT * 1000) != 1)
			kill(pid, SIGKILL);
		if (pfd >= 0)
			close(pfd);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			char buf[4096] = "", st[64];
			ssize_t got = pread(out, buf, sizeof(buf) - 1, 0);
			buf[got > 0 ? got : 0] = '\0';
			ferry_spawn_describe_status(status, st, sizeof(st));
			const char *line = last_line(buf);
			const char *say = line[0] ? line : st;
			size_t l = strnlen(say, n - 1); /* (cut to fit: CRIU's line may be long) */
			memcpy(why, say, l);
			why[l] = '\0';
			r = -1;
		}
	}
	unlink(path);
	rmdir(dir);
	return r;
}

/* ---- the source: the probe, as the user ---- */

struct probe_arg {
	const char *list;
	size_t len;
	const char *name;
};

struct proc {
	pid_t pid, ppid;
	uint64_t kb; /* its dump's memory (ferry_proc_status) */
};

static int by_pid(const void *a, const void *b)
{
	pid_t x = ((const struct proc *)a)->pid, y = ((const struct proc *)b)->pid;
	return (x > y) - (x < y);
}

/* Whether @p descends from @root: up its parents (found by pid in the sorted @all), at most 256
 * generations. */
static bool descends(const struct proc *all, size_t n, struct proc p, pid_t root)
{
	for (int depth = 0; depth < 256 && p.ppid > 1; depth++) {
		if (p.ppid == root)
			return true;
		const struct proc key = {.pid = p.ppid}, *up = bsearch(&key, all, n, sizeof(*all), by_pid);
		if (!up)
			return false;
		p = *up;
	}
	return false;
}

/* The memory a dump of the tree under @root holds: anonymous, shared and swapped, in bytes. */
static uint64_t tree_mem(pid_t root)
{
	_cleanup_free_ struct proc *all = xmalloc(FIT_MAX_PROCS * sizeof(*all));
	size_t n = 0;
	DIR *dir = opendir("/proc");
	struct dirent *de;
	while (dir && n < FIT_MAX_PROCS && (de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		struct ferry_proc_status st;
		if (*end || pid <= 0 || ferry_proc_status((pid_t)pid, &st) < 0)
			continue;
		all[n++] = (struct proc){(pid_t)pid, st.ppid, st.dump_kb};
	}
	if (dir)
		closedir(dir);
	qsort(all, n, sizeof(*all), by_pid);
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		if (all[i].pid == root || descends(all, n, all[i], root))
			total += all[i].kb;
	return total * 1024;
}

static void copy_field(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

static int probe_child(void *arg, void *ans)
{
	const struct probe_arg *pa = arg;
	struct ferryd_fit *f = ans;
	f->magic = FERRYD_FIT_MAGIC;
	f->size = sizeof(*f);
	struct ferry_instance **list = NULL;
	struct ferry_error *err = NULL;
	if (ferry_instance_parse_list(pa->list, pa->len, &list, &err) < 0) {
		copy_field(f->message, sizeof(f->message), "the list of your instances is unreadable");
		return 0;
	}
	const struct ferry_instance *inst = NULL;
	for (size_t i = 0; list[i]; i++)
		if (streq(list[i]->name, pa->name))
			inst = list[i];
	if (!inst) {
		snprintf(f->message, sizeof(f->message), "no instance '%s' of yours runs here", pa->name);
		return 0;
	}
	if (!inst->checkpoint || !inst->checkpoint[0]) { /* (the starter's own words) */
		snprintf(f->message, sizeof(f->message),
			 "instance '%s' was not started with --criu-launch: it cannot be checkpointed",
			 pa->name);
		return 0;
	}
	if (strlen(inst->image ?: "") >= sizeof(f->image) ||
	    strlen(inst->image_fingerprint ?: "") >= sizeof(f->fingerprint) ||
	    strlen(inst->networks ?: "") >= sizeof(f->networks) || strlen(inst->ip ?: "") >= sizeof(f->ip) ||
	    strlen(inst->mac ?: "") >= sizeof(f->mac) || strlen(inst->gw ?: "") >= sizeof(f->gw)) {
		snprintf(f->message, sizeof(f->message), "the record of '%s' has a field too long to send",
			 pa->name);
		return 0;
	}
	copy_field(f->image, sizeof(f->image), inst->image);
	copy_field(f->fingerprint, sizeof(f->fingerprint), inst->image_fingerprint);
	copy_field(f->networks, sizeof(f->networks), inst->networks);
	copy_field(f->ip, sizeof(f->ip), inst->ip);
	copy_field(f->mac, sizeof(f->mac), inst->mac);
	copy_field(f->gw, sizeof(f->gw), inst->gw);
	f->ipam = (inst->ipam_ip ? FERRY_REQ_NET_IPAM_IP : 0) | (inst->ipam_mac ? FERRY_REQ_NET_IPAM_MAC : 0);
	f->mem = tree_mem(inst->pid);
	return 0;
}

int ferryd_fit_probe(struct ferryd *d, const struct ferryd_user *u, const char *name, struct ferryd_fit *ret,
		     struct ferry_error **err)
{
	/* (this node's own CRIU first: without it, nothing else needs a look) */
	if (d->criu.check[0])
		return ferry_error_msg(
		    err, ENOTSUP, "CRIU fails on this node (%s): ask the admin; the instance was not touched",
		    d->criu.check);
	struct ferry_request list = {.op = FERRY_OP_INSTANCE_LIST};
	_cleanup_free_ char *out = NULL;
	int r = ferryd_run_starter(d, u, &list, -1, &out, err);
	if (r < 0)
		return r;
	struct probe_arg pa = {.list = out, .len = strlen(out), .name = name};
	r = ferryd_as_user(d, u, "ferryd-probe", -1, probe_child, &pa, ret, sizeof(*ret), FIT_DEADLINE, err);
	if (r < 0)
		return ferry_error_wrap(err, "the look at '%s' before the move", name);
	/* the answer, checked as if anyone had written it */
	if (ret->magic != FERRYD_FIT_MAGIC || ret->size != sizeof(*ret) ||
	    !ferryd_nul_inside(ret->image, sizeof(ret->image)) ||
	    !ferryd_nul_inside(ret->fingerprint, sizeof(ret->fingerprint)) ||
	    !ferryd_nul_inside(ret->networks, sizeof(ret->networks)) ||
	    !ferryd_nul_inside(ret->ip, sizeof(ret->ip)) || !ferryd_nul_inside(ret->mac, sizeof(ret->mac)) ||
	    !ferryd_nul_inside(ret->gw, sizeof(ret->gw)) || (ret->ipam & ~(uint32_t)FERRY_REQ_NET_IPAM) ||
	    !ferryd_nul_inside(ret->message, sizeof(ret->message)))
		return ferry_error_msg(err, EPROTO,
				       "the look at '%s' before the move gave a malformed answer", name);
	if (ret->message[0])
		return ferry_error_msg(err, ENOENT, "%s", ret->message);
	memcpy(ret->criu_version, d->criu.version, sizeof(ret->criu_version));
	memcpy(ret->cpuinfo, d->criu.cpuinfo, d->criu.cpuinfo_len);
	ret->cpuinfo_len = d->criu.cpuinfo_len;
	return 0;
}

/* A number from a /proc/sys file, or -1. */
static long long sysctl_num(const char *path)
{
	_cleanup_free_ char *buf = NULL;
	unsigned long long v = 0;
	if (ferry_read_file(path, 64, &buf, NULL, NULL) < 0)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return parse_uint64(buf, INT64_MAX, &v) < 0 ? -1 : (long long)v;
}

int ferryd_fit_live_source(const struct ferryd *d, const struct ferryd_fit *f, struct ferry_error **err)
{
	if (!d->cfg->allow_live)
		return ferry_error_msg(
		    err, EPERM,
		    "this node sends no live migration ('allow live migration = no' in its "
		    "ferry.conf): use --mode diskless; the instance was not touched");
	/* the dumping CRIU, as the user, keeps the instance's memory in pipes while it serves it
	 * (a page run is tee'd from there on each request: past the soft limit on a user's pipe
	 * pages, a new pipe gets two pages and that fails) and asks for ~3.3 MB pipes */
	long long soft = sysctl_num("/proc/sys/fs/pipe-user-pages-soft");
	long long max = sysctl_num("/proc/sys/fs/pipe-max-size");
	unsigned long long pages = f->mem / 4096 + 4096;
	if (soft != 0 && (soft < 0 || (unsigned long long)soft < pages))
		return ferry_error_msg(
		    err, ENOTSUP,
		    "live mode holds the instance's memory in pipes while it serves it, and "
		    "this node's fs.pipe-user-pages-soft (%lld pages) is too low for it: ask "
		    "the admin to set it to 0 (ferry's setup does), or use --mode diskless; "
		    "the instance was not touched",
		    soft);
	if (max < 4194304)
		return ferry_error_msg(
		    err, ENOTSUP,
		    "live mode needs fs.pipe-max-size >= 4194304 on this node (it is %lld): "
		    "ask the admin (ferry's setup sets it), or use --mode diskless; the "
		    "instance was not touched",
		    max);
	return 0;
}

/* ---- the prepare message ---- */

void ferryd_fit_put(struct ferry_msg *m, const struct ferryd_fit *f)
{
	ferry_msg_set(m, "image", "%s", f->image);
	ferry_msg_set(m, "fingerprint", "%s", f->fingerprint);
	ferry_msg_set(m, "networks", "%s", f->networks);
	ferry_msg_set(m, "ip", "%s", f->ip);
	ferry_msg_set(m, "mac", "%s", f->mac);
	ferry_msg_set(m, "gw", "%s", f->gw);
	ferry_msg_set(m, "ipam", "%s%s", f->ipam & FERRY_REQ_NET_IPAM_IP ? "ip" : "",
		      f->ipam & FERRY_REQ_NET_IPAM_MAC ? "mac" : "");
	ferry_msg_set(m, "mem", "%llu", (unsigned long long)f->mem);
	ferry_msg_set(m, "criu_version", "%s", f->criu_version);
	uint32_t n = f->cpuinfo_len < FERRYD_CPUINFO_MAX ? f->cpuinfo_len : FERRYD_CPUINFO_MAX;
	char hex[2 * FERRYD_CPUINFO_MAX + 1];
	for (uint32_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", f->cpuinfo[i]);
	hex[2 * n] = '\0';
	ferry_msg_set(m, "cpuinfo", "%s", hex);
}

/* Lower-case hex @s of at most @max bytes into @ret. */
static int unhex(const char *s, unsigned char *ret, size_t max, uint32_t *ret_len)
{
	size_t n = strlen(s);
	if (n % 2 || n / 2 > max || strspn(s, "0123456789abcdef") != n)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v = 0;
		sscanf(s + 2 * i, "%2x", &v);
		ret[i] = (unsigned char)v;
	}
	*ret_len = (uint32_t)(n / 2);
	return 0;
}

static int get_field(const struct ferry_msg *m, const char *key, char *dst, size_t n,
		     struct ferry_error **err)
{
	const char *v = ferry_msg_get(m, key);
	if (!v || strlen(v) >= n)
		return ferry_error_msg(err, EPROTO, "bad prepare message: '%s'", key);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

int ferryd_fit_get(const struct ferry_msg *m, struct ferryd_fit *f, struct ferry_error **err)
{
	*f = (struct ferryd_fit){.magic = FERRYD_FIT_MAGIC, .size = sizeof(*f)};
	unsigned long long mem = 0;
	const char *mem_s = ferry_msg_get(m, "mem");
	int r = get_field(m, "image", f->image, sizeof(f->image), err);
	if (r == 0)
		r = get_field(m, "fingerprint", f->fingerprint, sizeof(f->fingerprint), err);
	if (r == 0)
		r = get_field(m, "networks", f->networks, sizeof(f->networks), err);
	if (r == 0)
		r = get_field(m, "ip", f->ip, sizeof(f->ip), err);
	if (r == 0)
		r = get_field(m, "mac", f->mac, sizeof(f->mac), err);
	/* (a source before they existed sends neither: its instance's identity is kept as it was
	 * then, as its checkpoint's is by the starter) */
	const char *ipam = ferry_msg_get(m, "ipam");
	if (r == 0 && ferry_msg_get(m, "gw"))
		r = get_field(m, "gw", f->gw, sizeof(f->gw), err);
	if (r == 0 && ipam && !streq(ipam, "") && !streq(ipam, "ip") && !streq(ipam, "mac") &&
	    !streq(ipam, "ipmac"))
		r = ferry_error_msg(err, EPROTO, "bad prepare message: 'ipam'");
	f->ipam = !ipam ? FERRY_REQ_NET_IPAM_IP | FERRY_REQ_NET_IPAM_MAC
			: (strstr(ipam, "ip") ? FERRY_REQ_NET_IPAM_IP : 0) |
			      (strstr(ipam, "mac") ? FERRY_REQ_NET_IPAM_MAC : 0);
	if (r == 0 && (!mem_s || parse_uint64(mem_s, UINT64_MAX / 4, &mem) < 0))
		r = ferry_error_msg(err, EPROTO, "bad prepare message: 'mem'");
	if (r == 0)
		r = get_field(m, "criu_version", f->criu_version, sizeof(f->criu_version), err);
	if (r == 0 && f->criu_version[0] && !version_ok(f->criu_version))
		r = ferry_error_msg(err, EPROTO, "bad prepare message: 'criu_version'");
	const char *cpu = ferry_msg_get(m, "cpuinfo");
	if (r == 0 && (!cpu || unhex(cpu, f->cpuinfo, sizeof(f->cpuinfo), &f->cpuinfo_len) < 0))
		r = ferry_error_msg(err, EPROTO, "bad prepare message: 'cpuinfo'");
	if (r == 0 && f->image[0] != '/')
		r = ferry_error_msg(err, EPROTO, "bad prepare message: the image is not an absolute path");
	f->mem = mem;
	return r;
}

/* ---- the destination ---- */

struct image_answer {
	uint32_t magic;
	uint32_t ok;
	char message[8192]; /* room for a path of PATH_MAX and the reason */
};

/* As the user for good: the image opens, is one, and is the one the instance runs from. */
static int image_child(void *arg, void *ans)
{
	const struct ferryd_fit *f = arg;
	struct image_answer *a = ans;
	a->magic = FERRYD_FIT_MAGIC;
	struct ferry_error *err = NULL;
	_cleanup_close_ int fd = open(f->image, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct ferry_image_info info;
	_cleanup_free_ char *fp = NULL;
	if (fd < 0)
		snprintf(a->message, sizeof(a->message),
			 "image '%s': %s: make it reachable there as it is here", f->image, strerror(errno));
	else if (ferry_image_probe_fd(fd, &info, &err) < 0 || ferry_image_fingerprint(fd, &fp, &err) < 0)
		snprintf(a->message, sizeof(a->message), "image '%s': %s", f->image, err->message);
	else if (!streq(fp, f->fingerprint))
		snprintf(a->message, sizeof(a->message),
			 "image '%s' is not the one the instance runs from (it differs in size or content): "
			 "make the same image reachable there",
			 f->image);
	else
		a->ok = 1;
	return 0;
}

static char *mib(uint64_t bytes)
{
	return xasprintf("%llu MiB", (unsigned long long)((bytes + (1 << 20) - 1) >> 20));
}

/* In the child of ferry_net_subnets: root without a capability (the bounding set emptied, and
 * SECBIT_NOROOT: its exec gives none back), as the starter runs ferry-net for the subnets. */
static _noreturn_ void subnets_child(const char *network, int out)
{
	static const struct ferry_privs root = {.uid = 0, .gid = 0};
	char *const argv[] = {"ferry-net", "subnets", (char *)network, NULL};
	char *const envp[] = {FERRY_SPAWN_PATH, NULL};
	/* (both above 2 first: either may have landed on a standard fd ferryd had not open) */
	int null = fcntl(open("/dev/null", O_RDWR | O_CLOEXEC), F_DUPFD_CLOEXEC, 3);
	out = fcntl(out, F_DUPFD_CLOEXEC, 3);
	if (null < 0 || out < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(null, 2) < 0)
		_exit(126);
	ferry_close_fds(3, (const int[]){-1});
	signal(SIGPIPE, SIG_DFL); /* (ferryd ignores it) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0, 0) < 0 ||
	    ferry_privs_drop(&root, NULL, 0, NULL) < 0)
		_exit(126);
	execve(FERRY_NET_BIN, argv, envp);
	_exit(127);
}

/* The subnets a restart here will check the instance's kept address against: ferry-net's, which
 * reads the network's conflist (its JSON is no business of a process with capabilities), run as
 * the destination's starter runs it, in ferryd's mount namespace (the starters'). */
int ferry_net_subnets(const struct ferry_config *c, const char *network, struct ferry_net_subnet *ret,
		      size_t max, size_t *ret_n, struct ferry_error **err)
{
	(void)c; /* (ferry-net reads ferry.conf itself, as it does for the starter) */
	if (!ferry_config_word_ok(network, 64))
		return ferry_error_msg(err, EINVAL, "bad network name");
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "pipe");
	pid_t pid = fork();
	if (pid == 0)
		subnets_child(network, p[1]);
	int e = errno;
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return ferry_error_set(err, e, "fork");
	}
	struct ferry_net_reply rep;
	memset(&rep, 0, sizeof(rep));
	int r = ferry_net_reply_read(pid, p[0], FIT_DEADLINE, &rep, err);
	close(p[0]);
	return r < 0 ? r : ferry_net_reply_subnets(&rep, network, ret, max, ret_n, err);
}

/* The instance's networks under this node's policy, and its address nobody's here. */
static int check_network(struct ferryd *d, const struct ferryd_user *u, const struct ferryd_fit *f,
			 struct ferry_error **err)
{
	if (!f->networks[0])
		return 0;
	char **names = NULL;
	/* the kept identity, as the destination's starter will check it (the same function): what
	 * the user chose of it must be what users may choose here, and its address on the network's
	 * subnets of today */
	const struct ferry_net_args kept = {.ip = f->ip[0] ? (char *)f->ip : NULL,
					    .mac = f->mac[0] ? (char *)f->mac : NULL,
					    .gw = f->gw[0] ? (char *)f->gw : NULL,
					    .ipam_ip = f->ipam & FERRY_REQ_NET_IPAM_IP,
					    .ipam_mac = f->ipam & FERRY_REQ_NET_IPAM_MAC};
	int r = ferry_net_names_parse(f->networks, &names, err);
	if (r == 0)
		r = ferry_net_check_policy(d->cfg, u->uid, names, &kept, true, err);
	strv_free(names);
	if (r < 0)
		return ferry_error_wrap(err, "network '%s'", f->networks);
	uint8_t mac[6];
	struct in_addr ip = {0};
	char addr[sizeof(f->ip)]; /* "A.B.C.D/P", as the record has it */
	snprintf(addr, sizeof(addr), "%.*s", (int)strcspn(f->ip, "/"), f->ip);
	if (f->ip[0] && inet_pton(AF_INET, addr, &ip) != 1)
		return ferry_error_msg(err, EPROTO, "bad prepare message: 'ip'");
	if (f->mac[0] && ferry_net_mac_parse(f->mac, mac) < 0)
		return ferry_error_msg(err, EPROTO, "bad prepare message: 'mac'");
	char ifname[IF_NAMESIZE];
	r = ferry_net_node_claims(f->mac[0] ? mac : NULL, ip.s_addr, ifname, err);
	if (r < 0)
		return r;
	if (r == 1)
		return ferry_error_msg(err, EADDRINUSE,
				       "the node's interface %s has the instance's address %s (MAC %s)",
				       ifname, f->ip, f->mac);
	if (!f->mac[0])
		return 0;
	struct ferry_net_mac_lock lock;
	r = ferry_net_mac_reserve(mac, 0, &lock, err);
	if (r == -EADDRINUSE)
		return ferry_error_msg(
		    err, EADDRINUSE,
		    "another instance here has the instance's address %s (MAC %s): stop it "
		    "first",
		    f->ip, f->mac);
	if (r < 0)
		return r;
	ferry_net_mac_release(&lock);
	return 0;
}

/* This node's CRIU restores what the source's dumps, on this CPU. */
static int check_criu(const struct ferryd *d, const struct ferryd_fit *f, struct ferry_error **err)
{
	const struct ferryd_criu *c = &d->criu;
	if (c->check[0])
		return ferry_error_msg(err, ENOTSUP, "CRIU fails here (%s)", c->check);
	const char *src = f->criu_version[0] ? f->criu_version : "?";
	if (!f->criu_version[0] || version_cmp(c->version, f->criu_version) < 0)
		return ferry_error_msg(err, ENOTSUP,
				       "CRIU here is %s, older than the source's %s, whose images it may not "
				       "read: install CRIU %s or later here",
				       c->version, src, src);
	char why[512];
	bool same = c->cpuinfo_self_ok && f->cpuinfo_len == c->cpuinfo_len &&
		    memcmp(f->cpuinfo, c->cpuinfo, c->cpuinfo_len) == 0;
	if (f->cpuinfo_len && !same && cpuinfo_check(d, f->cpuinfo, f->cpuinfo_len, why, sizeof(why)) < 0)
		return ferry_error_msg(err, ENOTSUP,
				       "this CPU lacks what the instance may use on the source's (criu "
				       "cpuinfo check: %s)",
				       why);
	return 0;
}

int ferryd_fit_check(struct ferryd *d, const struct ferryd_user *u, enum ferryd_mode mode,
		     const struct ferryd_fit *f, struct ferry_error **err)
{
	bool diskless = mode != FERRYD_MODE_DEFAULT;
	int r = check_criu(d, f, err);
	if (r == 0 && mode == FERRYD_MODE_LIVE && !d->cfg->allow_live)
		r = ferry_error_msg(err, EPERM,
				    "this node takes no live migration ('allow live migration = no' in its "
				    "ferry.conf): use --mode diskless");
	if (r == 0 && mode == FERRYD_MODE_LIVE && d->criu.lazy[0])
		r = ferry_error_msg(err, ENOTSUP,
				    "this node takes no live migration: %s (use --mode diskless)",
				    d->criu.lazy);
	if (r == 0)
		r = check_network(d, u, f, err);
	if (r < 0)
		return r;
	/* diskless: the copy in the tmpfs, then the restored instance, whose restore frees the copy
	 * as it goes (CRIU's auto-dedup: 1.13 S at the peak, measured); a sixth more than S covers
	 * it. live: the pages go straight into the restored instance */
	uint64_t need = mode == FERRYD_MODE_DISKLESS ? f->mem + f->mem / 6 : f->mem,
		 avail = ferry_meminfo("MemAvailable");
	if (need > avail) {
		_cleanup_free_ char *a = mib(avail), *n = mib(need);
		return ferry_error_msg(err, ENOMEM, "%s of memory is available, the instance needs %s%s", a,
				       n,
				       diskless ? " (its copy in the tmpfs, freed as it is restored)" : "");
	}
	/* (the directory is made at the first migration: until then, the filesystem it will be on) */
	struct statvfs sv;
	_cleanup_free_ char *parent = xstrdup(d->tmpfs_dir);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	int sr = mode == FERRYD_MODE_DISKLESS ? statvfs(d->tmpfs_dir, &sv) : -1;
	if (mode == FERRYD_MODE_DISKLESS && sr < 0 && errno == ENOENT)
		sr = statvfs(parent, &sv);
	if (sr == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < f->mem) {
		_cleanup_free_ char *a = mib((uint64_t)sv.f_bavail * sv.f_frsize), *n = mib(f->mem);
		return ferry_error_msg(err, ENOSPC,
				       "the tmpfs directory '%s' has %s free, the instance needs %s",
				       d->tmpfs_dir, a, n);
	}
	struct image_answer a;
	r = ferryd_as_user(d, u, "ferryd-image", -1, image_child, (void *)f, &a, sizeof(a), FIT_DEADLINE,
			   err);
	if (r < 0)
		return ferry_error_wrap(err, "the look at the image '%s' as %s", f->image, u->name);
	if (a.magic != FERRYD_FIT_MAGIC || a.ok > 1 || !ferryd_nul_inside(a.message, sizeof(a.message)) ||
	    (!a.ok && !a.message[0]))
		return ferry_error_msg(err, EPROTO, "the look at the image '%s' gave a malformed answer",
				       f->image);
	return a.ok ? 0 : ferry_error_msg(err, ENOENT, "%s", a.message);
}
