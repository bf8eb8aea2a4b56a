/* SPDX-License-Identifier: GPL-2.0-or-later */
/* build.c — ferry build: a SIF, squashfs or sandbox image from a directory, a squashfs file or a
 * definition file ("Bootstrap: debootstrap", as root). Helpers run through ferry_spawn only. */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "deffile.h"
#include "ferry.h"
#include "fs.h"
#include "sif.h"
#include "spawn.h"

#define MKSQUASHFS "/usr/bin/mksquashfs"
#define DEBOOTSTRAP "/usr/sbin/debootstrap"
#define CHROOT "/usr/sbin/chroot"
#define CP "/bin/cp"

static const char build_help[] =
    "Usage: ferry build [OPTIONS] OUTPUT SOURCE\n"
    "\n"
    "Build a container image.\n"
    "\n"
    "SOURCE is one of:\n"
    "  a directory          a root filesystem, packed as it is (any user can do this; files become\n"
    "                       owned by root inside the image; the directory is not modified)\n"
    "  a squashfs file      wrapped into a SIF as it is\n"
    "  a definition file    an Apptainer definition file with 'Bootstrap: debootstrap': a Debian or\n"
    "                       Ubuntu system is installed with debootstrap, %files copied in, %post run\n"
    "                       in it (chroot), and %environment, %runscript, %startscript, %test,\n"
    "                       %labels and %help stored under /.singularity.d (needs root)\n"
    "\n"
    "OUTPUT is a SIF file (the default; readable by Apptainer and SingularityCE), a squashfs file\n"
    "when its name ends in .sqsh or .squashfs, or a directory with --sandbox.\n"
    "\n"
    "Options:\n"
    "  -f, --force            replace OUTPUT if it exists\n"
    "      --format FORMAT    'sif' or 'squashfs', whatever OUTPUT's name\n"
    "  -s, --sandbox          build a directory (from a definition file)\n"
    "  -h, --help             show this help\n"
    "\n"
    "The image is written next to OUTPUT under a temporary name and renamed into place when it is\n"
    "complete: a failed or interrupted build leaves neither a partial image nor temporary files.\n"
    "Needs /usr/bin/mksquashfs (squashfs-tools) and, for definition files, /usr/sbin/debootstrap.\n"
    "\n"
    "Examples:\n"
    "  ferry build app.sif rootfs/                   # directory -> SIF\n"
    "  ferry build app.sqsh rootfs/                  # directory -> squashfs\n"
    "  ferry build app.sif app.sqsh                  # squashfs -> SIF\n"
    "  sudo ferry build lammps.sif lammps.def        # definition file -> SIF\n"
    "  sudo ferry build --sandbox lammps/ lammps.def # definition file -> directory\n"
    "\n"
    "Exit status: 0 when the image was built, 255 on any error.\n"
    "See ferry-build(1).\n";

enum format { FORMAT_AUTO, FORMAT_SIF, FORMAT_SQUASHFS, FORMAT_SANDBOX };

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* While building, SIGINT/SIGTERM/SIGHUP only set a flag: a helper in our process group dies of the
 * terminal's SIGINT by itself, we notice and clean up. */
static void catch_signals(bool on)
{
	struct sigaction sa = {.sa_handler = on ? on_signal : SIG_DFL};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static int check_interrupted(struct ferry_error **err)
{
	if (!interrupted)
		return 0;
	return ferry_error_msg(err, EINTR, "interrupted (%s)", strsignal(interrupted));
}

/* A helper that failed because we were interrupted is reported as the interruption. */
static int helper_result(int r, struct ferry_error **err)
{
	if (r >= 0 || !interrupted)
		return r < 0 ? r : check_interrupted(err);
	ferry_error_freep(err);
	return check_interrupted(err);
}

static char *human_size(uint64_t n)
{
	if (n < 1024)
		return xasprintf("%" PRIu64 " bytes", n);
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	double v = (double)n / 1024;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	return xasprintf("%.1f %s", v, units[u]);
}

static bool endswith(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && streq(s + n - m, suffix);
}

/* The directory part of @path ("." when none) and its last component. */
static void split_path(const char *path, char **ret_dir, char **ret_base)
{
	_cleanup_free_ char *p = xstrdup(path);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	char *slash = strrchr(p, '/');
	if (!slash) {
		*ret_dir = xstrdup(".");
		*ret_base = xstrdup(p);
	} else {
		*ret_base = xstrdup(slash + 1);
		*ret_dir = slash == p ? xstrdup("/") : xstrndup(p, (size_t)(slash - p));
	}
}

static int need_helper(const char *path, const char *package, struct ferry_error **err)
{
	if (access(path, X_OK) == 0)
		return 0;
	return ferry_error_set(err, errno, "'%s' is needed: install the %s package", path, package);
}

/* ---- removing a temporary tree (no symlink following, no crossing into other filesystems) ---- */

static int rm_rf_at(int parent, const char *name, dev_t dev, unsigned depth)
{
	if (depth > 4096)
		return -ELOOP;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOTDIR && errno != ELOOP)
			return errno == ENOENT ? 0 : -errno;
		return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_dev != dev) {
		close(fd);
		return -EXDEV; /* a mount point: leave it alone */
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	int ret = 0;
	for (struct dirent *de; (de = readdir(d));) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		int r = rm_rf_at(dirfd(d), de->d_name, dev, depth + 1);
		if (r < 0 && ret == 0)
			ret = r;
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && ret == 0)
		ret = -errno;
	return ret;
}

static int rm_rf(const char *path, struct ferry_error **err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : ferry_error_set(err, errno, "stat '%s'", path);
	_cleanup_free_ char *dir = NULL, *base = NULL;
	split_path(path, &dir, &base);
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ferry_error_set(err, errno, "open '%s'", dir);
	int r = rm_rf_at(dfd, base, st.st_dev, 0);
	if (r < 0)
		return ferry_error_set(err, -r, "remove '%s'", path);
	return 0;
}

/* ---- writing inside the new root filesystem: component by component, never through a symlink ---- */

static int open_dir_in_root(int rootfd, const char *path, bool create, struct ferry_error **err)
{
	int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return ferry_error_set(err, errno, "dup");
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		_cleanup_free_ char *comp = xstrndup(p, (size_t)(e - p));
		p = e;
		if (streq(comp, "."))
			continue;
		if (streq(comp, "..")) {
			close(cur);
			return ferry_error_msg(err, EINVAL, "'..' in '%s'", path);
		}
		if (create && mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
			int e2 = errno;
			close(cur);
			return ferry_error_set(err, e2, "create directory '%s' in the image", path);
		}
		int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e2 = errno;
		close(cur);
		if (next < 0)
			return ferry_error_set(err, e2, "open '%s' in the image (a symlink?)", path);
		cur = next;
	}
	return cur;
}

static int write_in_root(int rootfd, const char *dir, const char *name, const char *data, size_t len,
			 mode_t mode, struct ferry_error **err)
{
	_cleanup_close_ int dfd = open_dir_in_root(rootfd, dir, true, err);
	if (dfd < 0)
		return dfd;
	_cleanup_close_ int fd =
	    openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
	if (fd < 0)
		return ferry_error_set(err, errno, "create '%s/%s' in the image", dir, name);
	if (fchmod(fd, mode) < 0)
		return ferry_error_set(err, errno, "chmod '%s/%s'", dir, name);
	int r = ferry_write_all(fd, data, len);
	if (r < 0)
		return ferry_error_set(err, -r, "write '%s/%s' in the image", dir, name);
	return 0;
}

static int write_script(int rootfd, const char *name, const char *body, struct ferry_error **err)
{
	_cleanup_free_ char *text =
	    xasprintf("#!/bin/sh\n\n%s%s", body, endswith(body, "\n") || !*body ? "" : "\n");
	return write_in_root(rootfd, "/.singularity.d", name, text, strlen(text), 0755, err);
}

/* JSON string contents for @s. */
static void json_escape(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
}

static char *labels_json(const struct ferry_deffile *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		ferry_oom();
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	const char *fixed[][2] = {
	    {"org.label-schema.schema-version", "1.0"},
	    {"org.label-schema.build-date", date},
	    {"org.label-schema.usage.singularity.deffile.bootstrap", d->bootstrap},
	    {"org.label-schema.usage.singularity.deffile.osversion", d->os_version},
	    {"org.label-schema.usage.singularity.deffile.mirrorurl", d->mirror_url},
	    {"org.label-schema.build-tool", "ferry " FERRY_VERSION},
	};
	fputs("{\n", f);
	bool first = true;
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++) {
		fprintf(f, "%s\t\"", first ? "" : ",\n");
		json_escape(f, fixed[i][0]);
		fputs("\": \"", f);
		json_escape(f, fixed[i][1]);
		fputc('"', f);
		first = false;
	}
	for (size_t i = 0; i < d->n_labels; i++) {
		fputs(",\n\t\"", f);
		json_escape(f, d->labels[i].key);
		fputs("\": \"", f);
		json_escape(f, d->labels[i].value);
		fputc('"', f);
	}
	fputs("\n}\n", f);
	if (fclose(f) != 0)
		ferry_oom();
	return buf;
}

/* ---- helpers ---- */

static int run_mksquashfs(const char *src, const char *dst, bool all_root, struct ferry_error **err)
{
	int r = need_helper(MKSQUASHFS, "squashfs-tools", err);
	if (r < 0)
		return r;
	/* mksquashfs's own warnings ("Could not open X, skipping...") go straight to the user. */
	const char *argv[] = {MKSQUASHFS,
			      src,
			      dst,
			      "-noappend",
			      "-comp",
			      "gzip",
			      "-quiet",
			      "-no-progress",
			      all_root ? "-all-root" : NULL,
			      NULL};
	r = ferry_spawn(MKSQUASHFS, (char *const *)argv, NULL, NULL, NULL, err);
	return helper_result(r, err);
}

/* Renames @tmp over @name in @dirfd; refuses to replace unless @replace. */
static int rename_into_place(int dirfd, const char *tmp, const char *name, bool replace, const char *shown,
			     struct ferry_error **err)
{
	if (replace) {
		if (renameat(dirfd, tmp, dirfd, name) < 0)
			return ferry_error_set(err, errno, "rename into '%s'", shown);
		return 0;
	}
	if (renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST)
		return ferry_error_msg(err, EEXIST, "'%s' already exists (use --force to replace it)", shown);
	if (errno != EINVAL && errno != ENOSYS)
		return ferry_error_set(err, errno, "rename into '%s'", shown);
	if (linkat(dirfd, tmp, dirfd, name, 0) < 0)
		return ferry_error_set(err, errno, "link into '%s'", shown);
	(void)unlinkat(dirfd, tmp, 0);
	return 0;
}

struct job {
	const char *out;
	const char *src;
	enum format format;
	bool force;
	char *out_dir; /* directory of OUT */
	char *out_base; /* last component of OUT */
	int out_dirfd;
	char *tmp_sqsh; /* name in out_dir of the temporary squashfs, while it exists */
	char *tmp_tree; /* path of the temporary build directory, while it exists */
};

static void job_cleanup(struct job *j)
{
	if (j->tmp_sqsh && j->out_dirfd >= 0)
		(void)unlinkat(j->out_dirfd, j->tmp_sqsh, 0);
	if (j->tmp_tree) {
		struct ferry_error *e = NULL;
		if (rm_rf(j->tmp_tree, &e) < 0) {
			fprintf(stderr, "ferry: warning: could not remove the temporary directory: %s\n",
				e->message);
			ferry_error_free(e);
		}
	}
	free(j->tmp_sqsh);
	free(j->tmp_tree);
	free(j->out_dir);
	free(j->out_base);
	if (j->out_dirfd >= 0)
		close(j->out_dirfd);
}

/* Packs @tree (a directory) into OUT in the job's format. */
static int pack(struct job *j, const char *tree, bool all_root, struct ferry_error **err)
{
	/* mksquashfs writes a temporary file next to OUT. */
	_cleanup_free_ char *tmpl = xasprintf("%s/.%s.XXXXXX.sqsh", j->out_dir, j->out_base);
	_cleanup_close_ int tfd = mkostemps(tmpl, 5, O_CLOEXEC);
	if (tfd < 0)
		return ferry_error_set(err, errno, "create a temporary file in '%s'", j->out_dir);
	j->tmp_sqsh = xstrdup(strrchr(tmpl, '/') + 1);
	int r = run_mksquashfs(tree, tmpl, all_root, err);
	if (r < 0)
		return ferry_error_wrap(err, "pack '%s'", tree);

	_cleanup_close_ int sfd = openat(j->out_dirfd, j->tmp_sqsh, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (sfd < 0)
		return ferry_error_set(err, errno, "open '%s'", tmpl);
	if (j->format == FORMAT_SIF) {
		r = ferry_sif_create(j->out, sfd, j->force, NULL, err);
		if (r < 0)
			return r;
		return 0;
	}
	/* A plain squashfs: make it world-readable (less the umask), as a normal new file. */
	mode_t um = umask(022);
	umask(um);
	if (fchmod(sfd, 0644 & ~um) < 0 || fsync(sfd) < 0)
		return ferry_error_set(err, errno, "finish '%s'", tmpl);
	r = rename_into_place(j->out_dirfd, j->tmp_sqsh, j->out_base, j->force, j->out, err);
	if (r < 0)
		return r;
	free(j->tmp_sqsh);
	j->tmp_sqsh = NULL;
	(void)fsync(j->out_dirfd);
	return 0;
}

static int build_from_squashfs(struct job *j, int srcfd, struct ferry_error **err)
{
	if (j->format != FORMAT_SIF)
		return ferry_error_msg(err, EINVAL,
				       "'%s' is already a squashfs: build a SIF from it, or copy it", j->src);
	return ferry_sif_create(j->out, srcfd, j->force, NULL, err);
}

static char *const post_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND=noninteractive",
    "HOME=/root",
    "LC_ALL=C",
    "APPTAINER_ROOTFS=/",
    "SINGULARITY_ROOTFS=/",
    "APPTAINER_ENVIRONMENT=/.singularity.d/env/91-environment.sh",
    "SINGULARITY_ENVIRONMENT=/.singularity.d/env/91-environment.sh",
    NULL,
};

static int copy_files(const struct ferry_deffile *d, int rootfd, struct ferry_error **err)
{
	for (size_t i = 0; i < d->n_files; i++) {
		const struct ferry_deffile_file *f = &d->files[i];
		_cleanup_free_ char *dst = xstrdup(f->dst);
		size_t n = strlen(dst);
		while (n > 1 && dst[n - 1] == '/')
			dst[--n] = '\0';
		char *slash = strrchr(dst, '/');
		const char *base = slash ? slash + 1 : dst;
		_cleanup_free_ char *parent = slash ? xstrndup(dst, (size_t)(slash - dst)) : xstrdup("/");
		if (!*base || streq(base, "/"))
			base = ".";
		/* The destination's parent is opened inside the image and handed to cp as fd 3, so no symlink
		 * in the image can send the copy elsewhere. */
		_cleanup_close_ int pfd = open_dir_in_root(rootfd, parent, true, err);
		if (pfd < 0)
			return ferry_error_wrap(err, "%%files line %u", f->line);
		_cleanup_free_ char *target = xasprintf("/proc/self/fd/3/%s", base);
		const char *argv[] = {CP, "-fLr", "--", f->src, target, NULL};
		struct ferry_spawn_opts o = {.pass_fds = &pfd, .n_pass_fds = 1};
		int r = helper_result(ferry_spawn(CP, (char *const *)argv, NULL, &o, NULL, err), err);
		if (r < 0)
			return interrupted ? r
					   : ferry_error_wrap(err, "%%files line %u: copy '%s' to '%s'",
							      f->line, f->src, f->dst);
	}
	return 0;
}

static int write_metadata(const struct ferry_deffile *d, const char *text, int rootfd,
			  struct ferry_error **err)
{
	int r;
	if (d->environment) {
		_cleanup_free_ char *env = xasprintf(
		    "#!/bin/sh\n# Custom environment shell code should follow\n\n%s", d->environment);
		r = write_in_root(rootfd, "/.singularity.d/env", "90-environment.sh", env, strlen(env), 0755,
				  err);
		if (r < 0)
			return r;
	}
	if (d->runscript && (r = write_script(rootfd, "runscript", d->runscript, err)) < 0)
		return r;
	if (d->startscript && (r = write_script(rootfd, "startscript", d->startscript, err)) < 0)
		return r;
	if (d->test && (r = write_script(rootfd, "test", d->test, err)) < 0)
		return r;
	if (d->help && (r = write_in_root(rootfd, "/.singularity.d", "runscript.help", d->help,
					  strlen(d->help), 0644, err)) < 0)
		return r;
	_cleanup_free_ char *labels = labels_json(d);
	r = write_in_root(rootfd, "/.singularity.d", "labels.json", labels, strlen(labels), 0644, err);
	if (r < 0)
		return r;
	return write_in_root(rootfd, "/.singularity.d", "Singularity", text, strlen(text), 0644, err);
}

static int build_from_deffile(struct job *j, struct ferry_error **err)
{
	_cleanup_(ferry_deffile_freep) struct ferry_deffile *d = NULL;
	_cleanup_free_ char *text = NULL;
	int r = ferry_deffile_load(j->src, &d, &text, err);
	if (r < 0)
		return r;
	if (geteuid() != 0)
		return ferry_error_msg(
		    err, EPERM,
		    "building from a definition file needs root: run 'sudo ferry build ...', or "
		    "build from a directory ('ferry build OUT.sif DIR')");
	if ((r = need_helper(DEBOOTSTRAP, "debootstrap", err)) < 0 ||
	    (j->format != FORMAT_SANDBOX && (r = need_helper(MKSQUASHFS, "squashfs-tools", err)) < 0))
		return r;

	_cleanup_free_ char *tmpl = xasprintf("%s/.%s.build-XXXXXX", j->out_dir, j->out_base);
	if (!mkdtemp(tmpl))
		return ferry_error_set(err, errno, "create a temporary directory in '%s'", j->out_dir);
	j->tmp_tree = xstrdup(tmpl);
	_cleanup_free_ char *rootfs = xasprintf("%s/rootfs", tmpl);

	/* 1. The base system. */
	_cleanup_strv_ char **argv = NULL;
	strv_push(&argv, DEBOOTSTRAP);
	strv_push(&argv, "--variant=minbase");
	if (d->include) {
		_cleanup_free_ char *inc = xstrdup("--include=");
		for (char **p = d->include; *p; p++) {
			char *n = xasprintf("%s%s%s", inc, p == d->include ? "" : ",", *p);
			free(inc);
			inc = n;
		}
		strv_push(&argv, inc);
	}
	strv_push(&argv, d->os_version);
	strv_push(&argv, rootfs);
	strv_push(&argv, d->mirror_url);
	static char *const bootstrap_env[] = {FERRY_SPAWN_PATH, "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C",
					      "HOME=/root", NULL};
	r = helper_result(ferry_spawn(DEBOOTSTRAP, argv, bootstrap_env, NULL, NULL, err), err);
	if (r < 0)
		return r;

	_cleanup_close_ int rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0)
		return ferry_error_set(err, errno, "open '%s'", rootfs);

	/* 2. The Apptainer metadata directory, and the file %post may append environment to. */
	static const char *const dirs[] = {"/.singularity.d/env", "/.singularity.d/actions",
					   "/.singularity.d/libs"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		int fd = open_dir_in_root(rootfd, dirs[i], true, err);
		if (fd < 0)
			return fd;
		close(fd);
	}
	r = write_in_root(rootfd, "/.singularity.d/env", "91-environment.sh", "", 0, 0755, err);
	if (r < 0)
		return r;

	/* 3. %files, then 4. %post, in the new system. */
	r = copy_files(d, rootfd, err);
	if (r < 0)
		return r;
	if (d->post) {
		const char *shell = d->post_shell ? d->post_shell : "/bin/sh";
		const char *pargv[] = {CHROOT, rootfs, shell, "-e", "-c", d->post, NULL};
		r = helper_result(ferry_spawn(CHROOT, (char *const *)pargv, post_env, NULL, NULL, err), err);
		if (r < 0)
			return interrupted ? r : ferry_error_wrap(err, "%%post failed");
	}

	/* 5. The sections ferry and Apptainer read at run time. */
	r = write_metadata(d, text, rootfd, err);
	if (r < 0)
		return r;

	if (j->format != FORMAT_SANDBOX)
		return pack(j, rootfs, false, err);

	/* A sandbox: the tree itself becomes OUT. */
	struct stat st;
	if (j->force && lstat(j->out, &st) == 0) {
		r = S_ISDIR(st.st_mode) ? rm_rf(j->out, err) : (unlink(j->out) < 0 ? -errno : 0);
		if (r < 0)
			return ferry_error_set(err, -r, "remove the old '%s'", j->out);
	}
	if (rename(rootfs, j->out) < 0)
		return ferry_error_set(err, errno, "rename into '%s'", j->out);
	return 0;
}

static int do_build(struct job *j, struct ferry_error **err)
{
	struct stat st;
	if (stat(j->src, &st) < 0)
		return ferry_error_set(err, errno, "source '%s'", j->src);

	if (j->format == FORMAT_AUTO)
		j->format =
		    endswith(j->out, ".sqsh") || endswith(j->out, ".squashfs") ? FORMAT_SQUASHFS : FORMAT_SIF;

	struct stat ost;
	if (lstat(j->out, &ost) == 0) {
		if (!j->force)
			return ferry_error_msg(err, EEXIST, "'%s' already exists (use --force to replace it)",
					       j->out);
		if (S_ISDIR(ost.st_mode) && j->format != FORMAT_SANDBOX)
			return ferry_error_msg(err, EISDIR,
					       "'%s' is a directory; remove it first or choose another name",
					       j->out);
	}
	split_path(j->out, &j->out_dir, &j->out_base);
	if (streq(j->out_base, "/") || streq(j->out_base, ".") || streq(j->out_base, ".."))
		return ferry_error_msg(err, EINVAL, "'%s' cannot be an output name", j->out);
	j->out_dirfd = open(j->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->out_dirfd < 0)
		return ferry_error_set(err, errno, "output directory '%s'", j->out_dir);

	if (S_ISDIR(st.st_mode)) {
		if (j->format == FORMAT_SANDBOX)
			return ferry_error_msg(err, EINVAL,
					       "'%s' is already a directory: --sandbox builds from a "
					       "definition file",
					       j->src);
		return pack(j, j->src, true, err);
	}
	if (!S_ISREG(st.st_mode))
		return ferry_error_msg(err, EINVAL, "source '%s' is neither a directory nor a file", j->src);

	_cleanup_close_ int sfd = open(j->src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (sfd < 0)
		return ferry_error_set(err, errno, "open '%s'", j->src);
	char magic[4] = {0};
	if (pread(sfd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) && memcmp(magic, "hsqs", 4) == 0) {
		return build_from_squashfs(j, sfd, err);
	}
	return build_from_deffile(j, err);
}

int cmd_build(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"format", required_argument, NULL, 'F'},
	    {"sandbox", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct job j = {.out_dirfd = -1};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "fsh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			j.force = true;
			break;
		case 'F':
			if (streq(optarg, "sif"))
				j.format = FORMAT_SIF;
			else if (streq(optarg, "squashfs") || streq(optarg, "sqsh"))
				j.format = FORMAT_SQUASHFS;
			else
				return cli_fail("--format '%s': use 'sif' or 'squashfs'", optarg);
			break;
		case 's':
			j.format = FORMAT_SANDBOX;
			break;
		case 'h':
			fputs(build_help, stdout);
			return 0;
		default:
			if (optopt == 'F')
				return cli_fail("--format needs a value: 'sif' or 'squashfs'");
			return cli_fail("unknown option '%s' for 'ferry build': see 'ferry build --help'",
					argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return cli_fail(
		    "usage: ferry build [--force] [--format sif|squashfs] [--sandbox] OUTPUT SOURCE "
		    "(see 'ferry build --help')");
	j.out = argv[optind];
	j.src = argv[optind + 1];

	struct ferry_error *err = NULL;
	interrupted = 0;
	catch_signals(true);
	int r = do_build(&j, &err);
	job_cleanup(&j);
	catch_signals(false);
	if (r < 0) {
		ferry_error_wrap(&err, "build '%s'", j.out);
		return cli_error(err);
	}

	struct stat st;
	const char *what = j.format == FORMAT_SIF	 ? "SIF"
			   : j.format == FORMAT_SQUASHFS ? "squashfs"
							 : "sandbox";
	if (j.format != FORMAT_SANDBOX && stat(j.out, &st) == 0) {
		_cleanup_free_ char *size = human_size((uint64_t)st.st_size);
		printf("Built '%s' (%s, %s).\n", j.out, what, size);
	} else {
		printf("Built '%s' (%s).\n", j.out, what);
	}
	return 0;
}
