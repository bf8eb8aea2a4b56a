/* SPDX-License-Identifier: GPL-2.0-or-later */
/* slurm.c — what 'ferry run/exec' knows of Slurm: the job's setting from '--ferry-checkpoint'
 * (FERRY_SLURM_CHECKPOINT, set in the job's tasks by the SPANK plugin, src/spank/) with the
 * administrator's defaults (ferry.conf's "slurm ..." keys), and the job's state and time left
 * from scontrol. All of it as the user, with no privilege: see ferry-slurm(7). */
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>

#include "ckspec.h"
#include "config.h"
#include "ferry.h"
#include "fs.h"
#include "spawn.h"

#define SLURM_ENV "FERRY_SLURM_CHECKPOINT"

extern char **environ;

char *slurm_scontrol(void)
{
	const char *path = secure_getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(path && *path ? path : "/usr/bin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *p = xasprintf("%s/scontrol", d);
		if (d[0] == '/' && access(p, X_OK) == 0)
			return TAKE_PTR(p);
	}
	return NULL;
}

/* What scontrol with @argv prints, NULL when it fails. */
static char *scontrol_output(const char *scontrol, char *const argv[])
{
	char *out = NULL;
	size_t len = 0;
	struct ferry_spawn_opts opts = {
	    .output = &out, .output_len = &len, .capture_stderr = true, .timeout = 30};
	struct ferry_error *err = NULL;
	int status = 0;
	if (ferry_spawn(scontrol, argv, environ, &opts, &status, &err) < 0 || status != 0) {
		ferry_error_free(err);
		free(out);
		return NULL;
	}
	return out;
}

char *slurm_job_show(const char *scontrol, const char *job)
{
	char *const argv[] = {"scontrol", "-o", "show", "job", (char *)job, NULL};
	return scontrol_output(scontrol, argv);
}

char **slurm_job_nodes(void)
{
	const char *list = secure_getenv("SLURM_JOB_NODELIST");
	_cleanup_free_ char *scontrol = list && *list ? slurm_scontrol() : NULL;
	if (!scontrol)
		return NULL;
	char *const argv[] = {"scontrol", "show", "hostnames", (char *)list, NULL};
	_cleanup_free_ char *out = scontrol_output(scontrol, argv);
	if (!out)
		return NULL;
	char **nodes = NULL;
	for (char *save = NULL, *t = strtok_r(out, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
		strv_push(&nodes, t);
	return nodes;
}

char *slurm_field(const char *show, const char *field)
{
	_cleanup_free_ char *key = xasprintf(" %s=", field);
	const char *p = show ? strstr(show, key) : NULL;
	if (!p && show && startswith(show, key + 1))
		p = show - 1; /* the first field has no space before it */
	if (!p)
		return NULL;
	p += strlen(key);
	return xstrndup(p, strcspn(p, " \n"));
}

/* Slurm's [DAYS-]HOURS:MINUTES:SECONDS (or MINUTES:SECONDS) in seconds; -1 when not that. */
static long long slurm_seconds(const char *s)
{
	unsigned long long days = 0, part[3] = {0, 0, 0};
	const char *dash = strchr(s, '-');
	if (dash) {
		_cleanup_free_ char *d = xstrndup(s, (size_t)(dash - s));
		if (parse_uint64(d, 100000, &days) < 0)
			return -1;
		s = dash + 1;
	}
	_cleanup_free_ char *copy = xstrdup(s);
	char *save = NULL;
	int n = 0;
	for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
		if (n == 3 || parse_uint64(t, 1000000, &part[n]) < 0)
			return -1;
		n++;
	}
	if (n < 2)
		return -1;
	unsigned long long h = n == 3 ? part[0] : 0, m = part[n - 2], sec = part[n - 1];
	return (long long)(days * 86400 + h * 3600 + m * 60 + sec);
}

long long slurm_time_left(const char *scontrol, const char *job)
{
	_cleanup_free_ char *show = slurm_job_show(scontrol, job);
	_cleanup_free_ char *limit = slurm_field(show, "TimeLimit");
	_cleanup_free_ char *ran = slurm_field(show, "RunTime");
	if (!limit || !ran)
		return -2;
	long long l = slurm_seconds(limit), r = slurm_seconds(ran);
	if (l < 0 || r < 0)
		return -1; /* UNLIMITED, Partition_Limit */
	return l > r ? l - r : 0;
}

/* The base of the job's checkpoints from "slurm checkpoint dir": "~/..." in the home, an absolute
 * path with a directory of the user's own in it (made 0700, and then it must be theirs and not
 * writable by others: the base is shared by every user). NULL, said, on failure. */
static char *user_base(const char *conf_dir)
{
	struct passwd *pw = getpwuid(getuid());
	struct ferry_error *err = NULL;
	if (!pw || !pw->pw_name || !pw->pw_dir || pw->pw_dir[0] != '/') {
		cli_fail("you have no entry with a home directory in the password database: give the "
			 "checkpoint as a path with 'ferry run --checkpoint PATH'");
		return NULL;
	}
	_cleanup_free_ char *base = startswith(conf_dir, "~/") ? xasprintf("%s/%s", pw->pw_dir, conf_dir + 2)
							       : xasprintf("%s/%s", conf_dir, pw->pw_name);
	if (startswith(conf_dir, "~/")) {
		if (ferry_mkdir_p(base, 0700, &err) < 0)
			return cli_error(err), NULL;
		return TAKE_PTR(base);
	}
	if (mkdir(base, 0700) < 0 && errno != EEXIST) {
		cli_fail(
		    "create '%s': %s (ferry.conf's 'slurm checkpoint dir' is '%s': ask your administrator)",
		    base, strerror(errno), conf_dir);
		return NULL;
	}
	_cleanup_close_ int fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != getuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		cli_fail("'%s' is not a directory of yours that only you can write: remove it or ask your "
			 "administrator (ferry.conf's 'slurm checkpoint dir')",
			 base);
		return NULL;
	}
	return TAKE_PTR(base);
}

/* The default NAME: JOBNAME-JOBID, JOBNAME made a valid name (names.h) and cut to fit, with
 * room for the "-" and 8 hex digits of the command that run.c adds, and for the "run-" of the
 * instance's name. */
static char *default_name(const char *job)
{
	const char *jn = secure_getenv("SLURM_JOB_NAME");
	size_t room = FERRY_CKSPEC_NAME_MAX - 4 - 9 - strlen(job) - 1;
	char out[FERRY_CKSPEC_NAME_MAX + 1];
	size_t j = 0;
	for (const char *p = jn ? jn : ""; *p && j < room; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			  *p == '_' || (j > 0 && (*p == '.' || *p == '-'));
		out[j++] = ok ? *p : '_';
	}
	if (j == 0)
		return xasprintf("job-%s", job);
	out[j] = '\0';
	return xasprintf("%s-%s", out, job);
}

int slurm_run_opts(struct run_opts *ro)
{
	const char *spec = secure_getenv(SLURM_ENV);
	if (!spec || !*spec)
		return 0;
	struct ferry_ckspec c;
	char msg[512];
	if (ferry_ckspec_parse(spec, &c, msg, sizeof(msg)) < 0)
		return cli_fail("%s (from --ferry-checkpoint): %s; see 'man ferry-slurm'", SLURM_ENV, msg);
	const char *job = secure_getenv("SLURM_JOB_ID");
	unsigned long long id = 0;
	if (job && parse_uint64(job, UINT32_MAX, &id) < 0)
		job = NULL;
	_cleanup_(ferry_config_freep) struct ferry_config *conf = NULL;
	struct ferry_error *err = NULL;
	if (ferry_config_load(FERRY_CONFIG_PATH, true, &conf, &err) < 0)
		return cli_error(err);

	ro->slurm = true;
	ro->requeue = true;
	if (!ro->every)
		ro->every = c.every_set ? c.every : conf->slurm_every;
	if (!ro->keep)
		ro->keep = c.keep ? c.keep : conf->slurm_keep;
	ro->end_grace = c.grace ? c.grace : conf->slurm_grace;
	if (ro->checkpoint)
		return 0; /* the command line's name (or path) */
	if (!c.name[0] && !job)
		return cli_fail("%s is set but this is no Slurm job (no SLURM_JOB_ID): give it name=NAME, or "
				"use 'ferry run --checkpoint NAME'",
				SLURM_ENV);
	/* a name of the job's own is of no use once its program ended: it goes then */
	_cleanup_free_ char *name = c.name[0] ? xstrdup(c.name) : default_name(job);
	if (!c.name[0]) {
		ro->delete_at_end = true;
		ro->per_command = true; /* each ferry command of the job script its own (run.c) */
	}
	if (!conf->slurm_checkpoint_dir) {
		ro->owned_checkpoint = TAKE_PTR(name); /* in the user's 'checkpoint dir' */
	} else {
		_cleanup_free_ char *base = user_base(conf->slurm_checkpoint_dir);
		if (!base)
			return 255;
		ro->owned_checkpoint = xasprintf("%s/%s", base, name);
	}
	ro->checkpoint = ro->owned_checkpoint;
	return 0;
}
