/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>

#include "fs.h"
#include "instance.h"

static void put(char **buf, size_t *len, const char *key, const char *val)
{
	if (!val)
		return;
	_cleanup_free_ char *clean = xstrdup(val);
	for (char *p = clean; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	_cleanup_free_ char *line = xasprintf("%s=%s\n", key, clean);
	size_t n = strlen(line);
	*buf = xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, line, n + 1);
	*len += n;
}

char *ferry_instance_format(const struct ferry_instance *i)
{
	char *buf = xstrdup("");
	size_t len = 0;
	char num[32];

	put(&buf, &len, "name", i->name);
	snprintf(num, sizeof(num), "%u", (unsigned)i->uid);
	put(&buf, &len, "uid", num);
	snprintf(num, sizeof(num), "%u", (unsigned)i->gid);
	put(&buf, &len, "gid", num);
	snprintf(num, sizeof(num), "%d", (int)i->pid);
	put(&buf, &len, "pid", num);
	snprintf(num, sizeof(num), "%llu", i->starttime);
	put(&buf, &len, "starttime", num);
	snprintf(num, sizeof(num), "%d", (int)i->monitor);
	put(&buf, &len, "monitor", num);
	snprintf(num, sizeof(num), "%lld", i->created);
	put(&buf, &len, "created", num);
	put(&buf, &len, "image", i->image);
	put(&buf, &len, "command", i->command);
	put(&buf, &len, "log_out", i->log_out);
	put(&buf, &len, "log_err", i->log_err);
	put(&buf, &len, "checkpoint", i->checkpoint);
	put(&buf, &len, "image_fingerprint", i->image_fingerprint);
	if (i->node) {
		snprintf(num, sizeof(num), "%llu", i->node);
		put(&buf, &len, "node", num);
	}
	put(&buf, &len, "networks", i->networks);
	if (i->loopback)
		put(&buf, &len, "netns", "loopback");
	if (i->private_tmp)
		put(&buf, &len, "tmp", "private");
	put(&buf, &len, "ip", i->ip);
	put(&buf, &len, "mac", i->mac);
	put(&buf, &len, "gw", i->gw);
	static const char *const who[] = {"none", "mac", "ip", "ip,mac"};
	if (i->ip) /* who chose them: the network's IPAM, or the user ("none") */
		put(&buf, &len, "ipam", who[i->ipam_ip * 2 + i->ipam_mac]);
	if (i->workload > 0) {
		snprintf(num, sizeof(num), "%lld", i->workload);
		put(&buf, &len, "workload", num);
	}
	return buf;
}

void ferry_instance_free(struct ferry_instance *i)
{
	if (!i)
		return;
	free(i->name);
	free(i->image);
	free(i->command);
	free(i->log_out);
	free(i->log_err);
	free(i->checkpoint);
	free(i->image_fingerprint);
	free(i->networks);
	free(i->ip);
	free(i->mac);
	free(i->gw);
	free(i);
}

static int num_field(const char *key, const char *val, unsigned long long max, unsigned long long *ret,
		     struct ferry_error **err)
{
	if (parse_uint64(val, max, ret) < 0)
		return ferry_error_msg(err, EINVAL, "instance record: bad %s '%s'", key, val);
	return 0;
}

static int bad_value(const char *key, const char *val, struct ferry_error **err)
{
	return ferry_error_msg(err, EINVAL, "instance record: bad %s '%s'", key, val);
}

int ferry_instance_parse(const char *text, size_t len, struct ferry_instance **ret, struct ferry_error **err)
{
	if (len > FERRY_INSTANCE_RECORD_MAX)
		return ferry_error_msg(err, EFBIG, "instance record too large");
	_cleanup_(ferry_instance_freep) struct ferry_instance *i = xzalloc(sizeof(*i));
	_cleanup_free_ char *copy = xstrndup(text, len);
	char *save = NULL;
	bool said = false;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq)
			return ferry_error_msg(err, EINVAL, "instance record: malformed line '%s'", line);
		*eq = '\0';
		const char *k = line, *v = eq + 1;
		unsigned long long n = 0;
		int r = 0;
		if (streq(k, "name"))
			free(i->name), i->name = xstrdup(v);
		else if (streq(k, "image"))
			free(i->image), i->image = xstrdup(v);
		else if (streq(k, "command"))
			free(i->command), i->command = xstrdup(v);
		else if (streq(k, "log_out"))
			free(i->log_out), i->log_out = xstrdup(v);
		else if (streq(k, "log_err"))
			free(i->log_err), i->log_err = xstrdup(v);
		else if (streq(k, "checkpoint"))
			free(i->checkpoint), i->checkpoint = xstrdup(v);
		else if (streq(k, "image_fingerprint"))
			free(i->image_fingerprint), i->image_fingerprint = xstrdup(v);
		else if (streq(k, "node") && (r = num_field(k, v, ULLONG_MAX, &n, err)) == 0)
			i->node = n;
		else if (streq(k, "networks"))
			free(i->networks), i->networks = xstrdup(v);
		else if (streq(k, "netns") && (r = streq(v, "loopback") ? 0 : bad_value(k, v, err)) == 0)
			i->loopback = true;
		else if (streq(k, "tmp") && (r = streq(v, "private") ? 0 : bad_value(k, v, err)) == 0)
			i->private_tmp = true;
		else if (streq(k, "ip"))
			free(i->ip), i->ip = xstrdup(v);
		else if (streq(k, "mac"))
			free(i->mac), i->mac = xstrdup(v);
		else if (streq(k, "gw"))
			free(i->gw), i->gw = xstrdup(v);
		else if (streq(k, "ipam") &&
			 (r = streq(v, "ip") || streq(v, "mac") || streq(v, "ip,mac") || streq(v, "none")
				  ? 0
				  : bad_value(k, v, err)) == 0)
			said = true, i->ipam_ip = strstr(v, "ip"), i->ipam_mac = strstr(v, "mac");

		else if (streq(k, "workload") && (r = num_field(k, v, INT32_MAX, &n, err)) == 0)
			i->workload = (long long)n;
		else if (streq(k, "uid") && (r = num_field(k, v, UINT32_MAX - 1, &n, err)) == 0)
			i->uid = (uid_t)n;
		else if (streq(k, "gid") && (r = num_field(k, v, UINT32_MAX - 1, &n, err)) == 0)
			i->gid = (gid_t)n;
		else if (streq(k, "pid") && (r = num_field(k, v, INT32_MAX, &n, err)) == 0)
			i->pid = (pid_t)n;
		else if (streq(k, "monitor") && (r = num_field(k, v, INT32_MAX, &n, err)) == 0)
			i->monitor = (pid_t)n;
		else if (streq(k, "starttime") && (r = num_field(k, v, ULLONG_MAX, &n, err)) == 0)
			i->starttime = n;
		else if (streq(k, "created") && (r = num_field(k, v, INT64_MAX, &n, err)) == 0)
			i->created = (long long)n;
		/* unknown keys are skipped: newer starters may add fields */
		if (r < 0)
			return r;
	}
	if (!i->name || i->pid <= 0)
		return ferry_error_msg(err, EINVAL, "instance record: missing name or pid");
	if (i->ip && !said) /* a record of a starter before it said: its identity kept, as then */
		i->ipam_ip = i->ipam_mac = true;
	*ret = TAKE_PTR(i);
	return 0;
}

int ferry_proc_starttime(pid_t pid, unsigned long long *ret)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_free_ char *buf = NULL;
	if (ferry_read_file(path, 4096, &buf, NULL, NULL) < 0)
		return -ESRCH;
	/* comm may contain anything, including ") ": fields resume after the LAST ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	p++;
	/* after ')' come fields 3..: state is field 3, starttime field 22 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EINVAL;
	}
	char *endp = NULL;
	errno = 0;
	unsigned long long v = strtoull(p + 1, &endp, 10);
	if (errno || endp == p + 1)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* The value after "\nKEY:" in a /proc/PID/status text, or NULL. */
static const char *status_field(const char *buf, const char *key)
{
	char pat[32];
	snprintf(pat, sizeof(pat), "\n%s:", key);
	const char *p = strstr(buf, pat);
	return p ? p + strlen(pat) : NULL;
}

int ferry_proc_status(pid_t pid, struct ferry_proc_status *ret)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	_cleanup_free_ char *buf = NULL;
	if (ferry_read_file(path, 65536, &buf, NULL, NULL) < 0)
		return -ESRCH;
	static const char *const caps[] = {"CapInh", "CapPrm", "CapEff", "CapAmb"};
	const char *pp = status_field(buf, "PPid"), *u = status_field(buf, "Uid"),
		   *g = status_field(buf, "Gid"), *state = status_field(buf, "State"),
		   *ns = status_field(buf, "NSpid");
	if (!state || sscanf(state, " %c", &ret->state) != 1)
		return -EINVAL;
	/* NSpid: the pid in each namespace from the outermost on; the last one is its own */
	ret->nspid = 0;
	for (char *end = NULL; ns; ns = end) {
		ns += strspn(ns, " \t");
		errno = 0;
		long v = strtol(ns, &end, 10);
		if (end == ns || errno || v <= 0 || v > INT32_MAX)
			break;
		ret->nspid = (pid_t)v;
	}
	if (!pp || !u || !g || sscanf(pp, " %d", &ret->ppid) != 1 ||
	    sscanf(u, " %u %u %u %u", &ret->uid[0], &ret->uid[1], &ret->uid[2], &ret->uid[3]) != 4 ||
	    sscanf(g, " %u %u %u %u", &ret->gid[0], &ret->gid[1], &ret->gid[2], &ret->gid[3]) != 4)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(caps); i++) {
		const char *c = status_field(buf, caps[i]);
		if (!c || sscanf(c, " %llx", &ret->caps[i]) != 1)
			return -EINVAL;
	}
	static const char *const mem[] = {"RssAnon", "RssShmem", "VmSwap"};
	ret->dump_kb = 0;
	for (size_t i = 0; i < ARRAY_SIZE(mem); i++) {
		const char *m = status_field(buf, mem[i]);
		unsigned long long kb = 0;
		if (m && sscanf(m, " %llu", &kb) == 1)
			ret->dump_kb += kb;
	}
	return 0;
}

bool ferry_instance_alive(const struct ferry_instance *inst)
{
	unsigned long long st = 0;
	return ferry_proc_starttime(inst->pid, &st) == 0 && st == inst->starttime;
}

unsigned long long ferry_node_id(void)
{
	struct stat st;
	if (stat("/proc/self/ns/net", &st) < 0)
		return 0;
	return (unsigned long long)st.st_ino;
}

int ferry_open_rundir(uid_t uid, bool create, struct ferry_error **err)
{
	char u[32], node[32];
	snprintf(u, sizeof(u), "%u", (unsigned)uid);
	snprintf(node, sizeof(node), "n%llu", ferry_node_id());
	const char *parts[] = {FERRY_RUNDIR, u, node};
	return ferry_open_root_dirs(parts, ARRAY_SIZE(parts), create, err);
}

void ferry_ferryd_node_dir(char buf[FERRY_FERRYD_NODE_MAX])
{
	snprintf(buf, FERRY_FERRYD_NODE_MAX, "n%llu", ferry_node_id());
}

#define TREE_MAX 65536

int ferry_signal_tree(pid_t init, int sig)
{
	_cleanup_free_ pid_t *done = xmalloc(TREE_MAX * sizeof(*done));
	_cleanup_free_ pid_t *pids = xmalloc(TREE_MAX * sizeof(*pids));
	_cleanup_free_ pid_t *ppids = xmalloc(TREE_MAX * sizeof(*ppids));
	size_t n_done = 0;
	if (kill(init, sig) < 0)
		return -errno;
	done[n_done++] = init;
	for (bool more = true; more;) {
		more = false;
		size_t n = 0;
		DIR *d = opendir("/proc");
		if (!d)
			return -errno;
		struct dirent *de;
		struct ferry_proc_status ps;
		unsigned long long p = 0;
		while ((de = readdir(d)) && n < TREE_MAX)
			if (parse_uint64(de->d_name, INT32_MAX, &p) == 0 &&
			    ferry_proc_status((pid_t)p, &ps) == 0) {
				pids[n] = (pid_t)p;
				ppids[n++] = ps.ppid;
			}
		closedir(d);
		/* a generation a pass down from what is signalled; a new one means another pass */
		for (bool grew = true; grew;) {
			grew = false;
			for (size_t i = 0; i < n; i++) {
				bool in = false, under = false;
				for (size_t j = 0; j < n_done && !(in && under); j++) {
					in = in || done[j] == pids[i];
					under = under || done[j] == ppids[i];
				}
				if (in || !under || n_done == TREE_MAX)
					continue;
				if (kill(pids[i], sig) == 0 || errno == ESRCH) {
					done[n_done++] = pids[i];
					grew = more = true;
				}
			}
		}
	}
	return (int)n_done;
}
