/* SPDX-License-Identifier: GPL-2.0-or-later */
/* checkpoint.c — ferry checkpoint create, delete, list, instance. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "ferry.h"
#include "fs.h"
#include "manifest.h"
#include "names.h"

static const char checkpoint_help[] =
    "Usage: ferry checkpoint create [--mem-dir] NAME\n"
    "       ferry checkpoint list [--json]\n"
    "       ferry checkpoint delete NAME\n"
    "       ferry checkpoint instance --criu [--leave-running] [--skip-in-flight]\n"
    "                                        [--page-server HOST:PORT] INSTANCE\n"
    "       ferry checkpoint instance --criu --restore [--tcp-close] INSTANCE\n"
    "       ferry checkpoint group [--leave-running] [NODE:]INSTANCE...\n"
    "\n"
    "A checkpoint is a directory that holds the saved state of one instance: by default\n"
    "~/.ferry/checkpoint/NAME, or with --mem-dir a directory on a tmpfs ('mem dir' in ferry.conf,\n"
    "default /dev/shm) that ~/.ferry/checkpoint/NAME points to. NAME may also be a path (with a\n"
    "'/'), e.g. on a shared filesystem.\n"
    "\n"
    "Start an instance that can be checkpointed with\n"
    "    ferry instance start --criu-launch NAME [OPTIONS] IMAGE INSTANCE COMMAND...\n"
    "save it with\n"
    "    ferry checkpoint instance --criu INSTANCE\n"
    "and bring it back, here or on another node, with\n"
    "    ferry instance start --criu-restart NAME [IMAGE [INSTANCE]]\n"
    "\n"
    "Each dump writes a new generation and switches to it only once it is complete and signed\n"
    "(a manifest of sizes and SHA-256 sums, with an HMAC under the cluster key): a dump that fails\n"
    "leaves the instance running and the previous checkpoint in place, and a checkpoint that is\n"
    "incomplete, altered or someone else's is refused at restart.\n"
    "\n"
    "checkpoint create:\n"
    "      --mem-dir              keep the checkpoint in memory (tmpfs): fast, lost on reboot\n"
    "checkpoint list:\n"
    "      --json                 machine-readable output\n"
    "checkpoint instance:\n"
    "      --criu                 use CRIU (the only method; required, as in the paper)\n"
    "      --leave-running        keep the instance running after the dump (default: it stops)\n"
    "      --page-server HOST:PORT  send memory pages to a CRIU page server instead of the directory\n"
    "      --skip-in-flight       leave out TCP connections not yet accepted (by default such a\n"
    "                             half-open connection makes the dump fail)\n"
    "      --restore              restore the instance's checkpoint into it, an idle instance\n"
    "                             started with --criu-launch and no command\n"
    "      --tcp-close            with --restore: TCP connections come back closed (their\n"
    "                             sockets see the peer gone), for when the peer is not coming back\n"
    "      --timings              print a 'timing' line of the dump's steps (ms; for benchmarks)\n"
    "checkpoint group:\n"
    "      the instances together, at one consistent cut (MPI ranks, a server and its clients):\n"
    "      all are frozen and their networks locked before any lets go; each generation is\n"
    "      published only once all are written, or none is ('ferry checkpoint group --help')\n"
    "\n"
    "Exit status: 0 on success, 255 with a one-line message otherwise.\n";

static int load_config(struct ferry_config **ret)
{
	struct ferry_error *err = NULL;
	if (ferry_config_load(FERRY_CONFIG_PATH, true, ret, &err) < 0)
		return cli_error(err);
	return 0;
}

static char *home_dir(void)
{
	struct passwd *pw = getpwuid(getuid());
	if (pw && pw->pw_dir && pw->pw_dir[0] == '/')
		return xstrdup(pw->pw_dir);
	return NULL;
}

/* The directory where named checkpoints live (their entries may be symlinks to a mem dir). */
static char *checkpoint_base(const struct ferry_config *c)
{
	if (startswith(c->checkpoint_dir, "~/")) {
		_cleanup_free_ char *home = home_dir();
		if (!home)
			return NULL;
		return xasprintf("%s/%s", home, c->checkpoint_dir + 2);
	}
	return xstrdup(c->checkpoint_dir);
}

/* NAME as a path: itself when it has a '/', else under the checkpoint base (made, with @make);
 * NULL (said) when it cannot be. */
static char *checkpoint_name_path(const char *name, bool make)
{
	struct ferry_error *err = NULL;
	if (strchr(name, '/'))
		return absolute_path(name);
	if (ferry_name_check(name, "checkpoint", &err) < 0) {
		cli_error(err);
		return NULL;
	}
	_cleanup_(ferry_config_freep) struct ferry_config *c = NULL;
	if (load_config(&c) != 0)
		return NULL;
	_cleanup_free_ char *base = checkpoint_base(c);
	if (!base) {
		cli_fail("you have no home directory: give the checkpoint as a path");
		return NULL;
	}
	if (make && ferry_mkdir_p(base, 0700, &err) < 0) {
		cli_error(err);
		return NULL;
	}
	return xasprintf("%s/%s", base, name);
}

char *checkpoint_resolve(const char *name, bool must_exist)
{
	_cleanup_free_ char *path = checkpoint_name_path(name, false);
	if (!path)
		return NULL;
	char real[PATH_MAX];
	if (!realpath(path, real)) {
		if (must_exist)
			cli_fail("no checkpoint '%s': create it with 'ferry checkpoint create %s'", name,
				 name);
		return must_exist ? NULL : TAKE_PTR(path);
	}
	return xstrdup(real);
}

char *checkpoint_make_path(const char *name)
{
	_cleanup_free_ char *path = checkpoint_name_path(name, true);
	if (!path)
		return NULL;
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		cli_fail("create checkpoint '%s': %s", path, strerror(errno));
		return NULL;
	}
	return checkpoint_resolve(path, true);
}

static int do_create(int argc, char **argv)
{
	bool mem = false;
	const char *name = NULL;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--mem-dir"))
			mem = true;
		else if (cli_is_help(argv[i]))
			return fputs(checkpoint_help, stdout), 0;
		else if (argv[i][0] == '-')
			return cli_fail("unknown option '%s' for 'ferry checkpoint create'", argv[i]);
		else if (name)
			return cli_fail("'ferry checkpoint create' takes one NAME");
		else
			name = argv[i];
	}
	if (!name)
		return cli_fail("missing NAME: 'ferry checkpoint create [--mem-dir] NAME'");
	struct ferry_error *err = NULL;
	_cleanup_(ferry_config_freep) struct ferry_config *c = NULL;
	if (load_config(&c) != 0)
		return 255;
	if (strchr(name, '/')) {
		if (mem)
			return cli_fail("--mem-dir takes a NAME, not a path");
		_cleanup_free_ char *path = absolute_path(name);
		if (mkdir(path, 0700) < 0)
			return cli_fail("create checkpoint '%s': %s", path, strerror(errno));
		printf("%s\n", path);
		return 0;
	}
	if (ferry_name_check(name, "checkpoint", &err) < 0)
		return cli_error(err);
	_cleanup_free_ char *base = checkpoint_base(c);
	if (!base)
		return cli_fail("you have no home directory: give the checkpoint as a path");
	if (ferry_mkdir_p(base, 0700, &err) < 0)
		return cli_error(err);
	_cleanup_free_ char *entry = xasprintf("%s/%s", base, name);
	struct stat st;
	if (lstat(entry, &st) == 0)
		return cli_fail(
		    "checkpoint '%s' already exists: delete it first ('ferry checkpoint delete %s')", name,
		    name);
	if (!mem) {
		if (mkdir(entry, 0700) < 0)
			return cli_fail("create checkpoint '%s': %s", entry, strerror(errno));
		printf("%s\n", entry);
		return 0;
	}
	/* <mem dir>/ferry-<uid>-NAME-XXXXXX, made with a random part that nobody can guess: a user who
	 * creates names in the shared tmpfs first cannot squat it (mkdtemp tries other names) */
	_cleanup_free_ char *memdir =
	    xasprintf("%s/ferry-%u-%s-XXXXXX", c->mem_dir, (unsigned)getuid(), name);
	if (!mkdtemp(memdir))
		return cli_fail("create checkpoint in '%s': %s", c->mem_dir, strerror(errno));
	if (symlink(memdir, entry) < 0) {
		int e = errno;
		rmdir(memdir);
		return cli_fail("create '%s': %s", entry, strerror(e));
	}
	printf("%s\n", memdir);
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int checkpoint_remove_dir(const char *path)
{
	if (run_dir_is(path)) {
		int st = run_dir_remove(path);
		if (st != 0)
			return st;
	}
	/* the sealed generations are root's: the starter removes them after checking ownership */
	struct ferry_request req = {.op = FERRY_OP_CHECKPOINT_DELETE, .checkpoint = (char *)path};
	_cleanup_free_ char *out = NULL;
	size_t len = 0;
	int st = run_starter_capture(&req, &out, &len);
	if (st != 0)
		return st;
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return cli_fail("remove '%s': %s", path, strerror(errno));
	return 0;
}

static int do_delete(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		if (argc == 2 && cli_is_help(argv[1]))
			return fputs(checkpoint_help, stdout), 0;
		return cli_fail("usage: ferry checkpoint delete NAME");
	}
	const char *name = argv[1];
	_cleanup_free_ char *path = checkpoint_resolve(name, true);
	if (!path)
		return 255;
	int st = checkpoint_remove_dir(path);
	if (st != 0)
		return st;
	if (!strchr(name, '/')) {
		_cleanup_(ferry_config_freep) struct ferry_config *c = NULL;
		if (load_config(&c) == 0) {
			_cleanup_free_ char *base = checkpoint_base(c);
			_cleanup_free_ char *entry = base ? xasprintf("%s/%s", base, name) : NULL;
			if (entry)
				unlink(entry); /* the symlink of a --mem-dir checkpoint */
		}
	}
	return 0;
}

struct ckpt_info {
	char *name, *path, *state, *instance, *generation;
	char *group; /* the current generation's group cut, "ID/N", or NULL */
	unsigned long long size;
	long long created;
};

static unsigned long long dir_size(int dirfd)
{
	unsigned long long total = 0;
	DIR *d = ferry_opendir_at(dirfd);
	struct dirent *de;
	struct stat st;
	while (d && (de = readdir(d)))
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			total += (unsigned long long)st.st_size;
	if (d)
		closedir(d);
	return total;
}

static void describe(const char *name, const char *path, struct ckpt_info *ci);

/* A resumable run's directory: as its newest complete generation (ck-N), or "empty". */
static void describe_run(const char *name, const char *path, struct ckpt_info *ci)
{
	unsigned long long seq = 0;
	_cleanup_free_ char *slot = run_dir_newest(path, &seq);
	if (!slot) {
		describe(name, path, ci);
		return;
	}
	describe(name, slot, ci);
	free(ci->path);
	ci->path = xstrdup(path);
	_cleanup_free_ char *gen = ci->generation;
	ci->generation = xasprintf("ck-%06llu/%s", seq, gen);
}

struct ferry_manifest *checkpoint_current_manifest(int dirfd, char ret_gen[64], int *ret_gfd)
{
	char target[64];
	ssize_t n = readlinkat(dirfd, "current", target, sizeof(target) - 1);
	if (n <= 0)
		return NULL;
	target[n] = '\0';
	_cleanup_close_ int gfd = openat(dirfd, target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int mfd =
	    gfd < 0 ? -1 : openat(gfd, FERRY_MANIFEST_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct ferry_manifest *m = NULL;
	if (mfd < 0 || ferry_read_all(mfd, FERRY_MANIFEST_MAX, &text, &len, NULL) < 0 ||
	    ferry_manifest_parse_unverified(text, len, &m, NULL) < 0)
		return NULL;
	if (ret_gen)
		memcpy(ret_gen, target, (size_t)n + 1);
	if (ret_gfd) {
		*ret_gfd = gfd;
		gfd = -1;
	}
	return m;
}

static void describe(const char *name, const char *path, struct ckpt_info *ci)
{
	if (run_dir_is(path)) {
		struct stat st;
		_cleanup_free_ char *cur = xasprintf("%s/current", path);
		if (lstat(cur, &st) < 0) {
			describe_run(name, path, ci);
			return;
		}
	}
	ci->name = xstrdup(name);
	ci->path = xstrdup(path);
	ci->instance = xstrdup("");
	ci->generation = xstrdup("");
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ci->state = xstrdup("missing");
		return;
	}
	char target[64];
	ssize_t n = readlinkat(fd, "current", target, sizeof(target) - 1);
	bool partial = false;
	DIR *d = ferry_opendir_at(fd);
	struct dirent *de;
	while (d && (de = readdir(d)))
		partial = partial || startswith(de->d_name, "gen-") || startswith(de->d_name, ".staging-");
	if (d)
		closedir(d);
	if (n < 0) {
		ci->state = xstrdup(partial ? "incomplete" : "empty");
		return;
	}
	_cleanup_close_ int gfd = -1;
	struct ferry_manifest *m = checkpoint_current_manifest(fd, target, &gfd);
	if (!m) {
		ci->state = xstrdup("incomplete");
		return;
	}
	ci->state = xstrdup("complete");
	free(ci->instance);
	ci->instance = xstrdup(m->instance ? m->instance : "");
	free(ci->generation);
	ci->generation = xstrdup(target);
	ci->created = m->created;
	ci->size = dir_size(gfd);
	ci->group = m->group ? xstrdup(m->group) : NULL;
	ferry_manifest_free(m);
}

static void json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

char **checkpoint_names(void)
{
	_cleanup_(ferry_config_freep) struct ferry_config *c = NULL;
	if (load_config(&c) != 0)
		return NULL;
	_cleanup_free_ char *base = checkpoint_base(c);
	struct dirent **names = NULL;
	int n = base ? scandir(base, &names, NULL, alphasort) : -1;
	char **ret = xzalloc(sizeof(char *));
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.')
			strv_push(&ret, names[i]->d_name);
		free(names[i]);
	}
	free(names);
	return ret;
}

static int do_list(int argc, char **argv)
{
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--json"))
			json = true;
		else if (cli_is_help(argv[i]))
			return fputs(checkpoint_help, stdout), 0;
		else
			return cli_fail("unknown argument '%s' for 'ferry checkpoint list'", argv[i]);
	}
	_cleanup_(ferry_config_freep) struct ferry_config *c = NULL;
	if (load_config(&c) != 0)
		return 255;
	_cleanup_free_ char *base = checkpoint_base(c);
	struct dirent **names = NULL;
	int n = base ? scandir(base, &names, NULL, alphasort) : -1;
	if (json)
		printf("{\"checkpoints\": [");
	else
		printf("%-20s %-11s %10s %-16s %-20s %s\n", "NAME", "STATE", "SIZE", "INSTANCE", "TIME",
		       "LOCATION");
	int shown = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (name[0] == '.') {
			free(names[i]);
			continue;
		}
		_cleanup_free_ char *entry = xasprintf("%s/%s", base, name);
		char real[PATH_MAX];
		struct ckpt_info ci = {0};
		describe(name, realpath(entry, real) ? real : entry, &ci);
		char when[32] = "-";
		if (ci.created) {
			time_t t = (time_t)ci.created;
			struct tm tm;
			if (localtime_r(&t, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		}
		if (json) {
			printf("%s\n  {\"name\": ", shown ? "," : "");
			json_str(ci.name);
			printf(", \"state\": ");
			json_str(ci.state);
			printf(", \"size\": %llu, \"instance\": ", ci.size);
			json_str(ci.instance);
			printf(", \"generation\": ");
			json_str(ci.generation);
			printf(", \"created\": %lld, \"location\": ", ci.created);
			json_str(ci.path);
			printf(", \"group\": ");
			json_str(ci.group ? ci.group : "");
			printf("}");
		} else {
			printf("%-20s %-11s %10llu %-16s %-20s %s\n", ci.name, ci.state, ci.size,
			       *ci.instance ? ci.instance : "-", when, ci.path);
		}
		shown++;
		free(ci.name);
		free(ci.path);
		free(ci.state);
		free(ci.instance);
		free(ci.generation);
		free(ci.group);
		free(names[i]);
	}
	free(names);
	if (json)
		printf("%s]}\n", shown ? "\n" : "");
	return 0;
}

static int do_instance(int argc, char **argv)
{
	enum { OPT_CRIU = 256, OPT_LEAVE, OPT_PS, OPT_RESTORE, OPT_SKIP, OPT_TCP_CLOSE, OPT_TIMINGS };
	static const struct option longopts[] = {
	    {"criu", no_argument, NULL, OPT_CRIU},
	    {"leave-running", no_argument, NULL, OPT_LEAVE},
	    {"skip-in-flight", no_argument, NULL, OPT_SKIP},
	    {"tcp-close", no_argument, NULL, OPT_TCP_CLOSE},
	    {"page-server", required_argument, NULL, OPT_PS},
	    {"help", no_argument, NULL, 'h'},
	    {"restore", no_argument, NULL, OPT_RESTORE},
	    {"timings", no_argument, NULL, OPT_TIMINGS},
	    {NULL, 0, NULL, 0},
	};
	bool criu = false;
	struct ferry_request req = {.op = FERRY_OP_CHECKPOINT_DUMP};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_CRIU:
			criu = true;
			break;
		case OPT_LEAVE:
			req.flags |= FERRY_REQ_LEAVE_RUNNING;
			break;
		case OPT_SKIP:
			req.flags |= FERRY_REQ_SKIP_IN_FLIGHT;
			break;
		case OPT_TCP_CLOSE:
			req.flags |= FERRY_REQ_TCP_CLOSE;
			break;
		case OPT_PS:
			req.page_server = optarg;
			break;
		case OPT_RESTORE:
			req.op = FERRY_OP_CHECKPOINT_RESTORE;
			break;
		case OPT_TIMINGS:
			req.flags |= FERRY_REQ_TIMINGS;
			break;
		case 'h':
			return fputs(checkpoint_help, stdout), 0;
		default:
			return cli_fail("unknown option '%s' for 'ferry checkpoint instance'",
					argv[optind - 1]);
		}
	}
	if (!criu)
		return cli_fail("'ferry checkpoint instance' needs --criu (the checkpoint method)");
	if (req.op == FERRY_OP_CHECKPOINT_RESTORE && (req.page_server || (req.flags & ~FERRY_REQ_TCP_CLOSE)))
		return cli_fail(
		    "--restore takes neither --page-server, --leave-running, --skip-in-flight nor "
		    "--timings");
	if (req.op == FERRY_OP_CHECKPOINT_DUMP && (req.flags & FERRY_REQ_TCP_CLOSE))
		return cli_fail("--tcp-close belongs to a restore (--restore, or 'ferry instance start "
				"--criu-restart')");
	if (optind != argc - 1)
		return cli_fail(
		    "usage: ferry checkpoint instance --criu [--leave-running] [--skip-in-flight] "
		    "[--page-server HOST:PORT] INSTANCE");
	struct ferry_error *err = NULL;
	if (ferry_name_check(argv[optind], "instance", &err) < 0)
		return cli_error(err);
	req.instance = argv[optind];
	if (!req.page_server)
		return exec_starter(&req);
	int sk = page_server_connect(req.page_server, 600);
	if (sk < 0)
		return 255;
	return exec_starter_with(&req, sk);
}

int cmd_checkpoint(int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(checkpoint_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (streq(argv[1], "create"))
		return do_create(argc - 1, argv + 1);
	if (streq(argv[1], "delete"))
		return do_delete(argc - 1, argv + 1);
	if (streq(argv[1], "list"))
		return do_list(argc - 1, argv + 1);
	if (streq(argv[1], "instance"))
		return do_instance(argc - 1, argv + 1);
	if (streq(argv[1], "group"))
		return cmd_checkpoint_group(argc - 1, argv + 1);
	return cli_fail("unknown checkpoint command '%s': use create, delete, list, instance or group",
			argv[1]);
}
