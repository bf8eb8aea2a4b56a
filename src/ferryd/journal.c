/* SPDX-License-Identifier: GPL-2.0-or-later */
/* journal.c — each side's durable record of its migrations (journal.h). */
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "ferryd.h"
#include "fs.h"
#include "journal.h"
#include "names.h"

#define JDIR_MODE 0700
#define LOCK_SUFFIX ".commit"

static const char *const state_names[] = {[FERRYD_J_PREPARED] = "prepared",
					  [FERRYD_J_COMMITTED] = "committed",
					  [FERRYD_J_INDOUBT] = "indoubt",
					  [FERRYD_J_ABORTED] = "aborted"};

const char *ferryd_jstate_name(enum ferryd_jstate s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

void ferryd_jrec_clear(struct ferryd_jrec *r)
{
	free(r->user);
	free(r->instance);
	free(r->peer);
	free(r->peer_dir);
	*r = (struct ferryd_jrec){0};
}

bool ferryd_id_ok(const char *id)
{
	return id && strlen(id) == 12 && strspn(id, "0123456789abcdef") == 12;
}

char *ferryd_jrec_leaf(const struct ferryd_jrec *r)
{
	return xasprintf("%s-%s%s", r->instance, r->id, r->source && r->diskless ? "-out" : "");
}

char *ferryd_jrec_dir(const struct ferryd *d, const struct ferryd_jrec *r)
{
	_cleanup_free_ char *leaf = ferryd_jrec_leaf(r);
	return xasprintf("%s/%u/%s", r->diskless ? d->tmpfs_dir : d->shared_dir, (unsigned)r->uid, leaf);
}

/* One directory of root's alone at @name in @parent, made if missing. */
static int root_dir(int parent, const char *name, const char *shown, int *ret, struct ferry_error **err)
{
	if (mkdirat(parent, name, JDIR_MODE) < 0 && errno != EEXIST)
		return ferry_error_set(err, errno, "create '%s'", shown);
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return ferry_error_set(err, errno, "open '%s'", shown);
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 077)) {
		close(fd);
		return ferry_error_msg(err, EPERM, "'%s' is not a directory of root's alone (0700): fix it",
				       shown);
	}
	*ret = fd;
	return 0;
}

int ferryd_journal_open(struct ferryd *d, struct ferry_error **err)
{
	if (ferry_name_check(d->node, "node", err) < 0)
		return ferry_error_wrap(err, "the journal");
	_cleanup_close_ int state = open(FERRY_STATEDIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (state < 0)
		return ferry_error_set(err, errno, "open '%s' (make install creates it)", FERRY_STATEDIR);
	if (fstat(state, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022))
		return ferry_error_msg(err, EPERM, "'%s' is writable by others than root", FERRY_STATEDIR);
	_cleanup_close_ int top = -1;
	int r = root_dir(state, "ferryd", FERRY_STATEDIR "/ferryd", &top, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *shown = xasprintf("%s/ferryd/%s", FERRY_STATEDIR, d->node);
	return root_dir(top, d->node, shown, &d->jfd, err);
}

static char *lock_name(const char *id)
{
	return xasprintf("%s%s", id, LOCK_SUFFIX);
}

/* The record's text. */
static int encode(const struct ferryd_jrec *r, char **ret, size_t *ret_len, struct ferry_error **err)
{
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "id", "%s", r->id);
	ferry_msg_set(&m, "role", "%s", r->source ? "source" : "destination");
	ferry_msg_set(&m, "mode", "%s", r->live ? "live" : r->diskless ? "diskless" : "default");
	ferry_msg_set(&m, "uid", "%u", (unsigned)r->uid);
	ferry_msg_set(&m, "user", "%s", r->user);
	ferry_msg_set(&m, "instance", "%s", r->instance);
	ferry_msg_set(&m, "peer", "%s", r->peer);
	ferry_msg_set(&m, "begun", "%lld", r->begun);
	if (r->peer_dir)
		ferry_msg_set(&m, "peer_dir", "%s", r->peer_dir);
	ferry_msg_set(&m, "state", "%s", ferryd_jstate_name(r->state));
	int ret_code = ferry_msg_encode(&m, 0, ret, ret_len, err);
	ferry_msg_clear(&m);
	if (ret_code == 0 && *ret_len > FERRYD_JOURNAL_SIZE) {
		free(*ret);
		*ret = NULL;
		return ferry_error_msg(err, E2BIG, "migration %s: its record is too long", r->id);
	}
	return ret_code;
}

int ferryd_journal_put(struct ferryd *d, const struct ferryd_jrec *r, struct ferry_error **err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int ret = encode(r, &text, &len, err);
	if (ret < 0)
		return ret;
	_cleanup_free_ char *tmp = xasprintf(".%s.new", r->id);
	unlinkat(d->jfd, tmp, 0);
	_cleanup_close_ int fd =
	    openat(d->jfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ferry_error_set(err, errno, "journal: create the record of %s", r->id);
	if (ferry_write_all(fd, text, len) < 0 || fsync(fd) < 0 || renameat(d->jfd, tmp, d->jfd, r->id) < 0 ||
	    fsync(d->jfd) < 0) {
		int e = errno;
		unlinkat(d->jfd, tmp, 0);
		return ferry_error_set(err, e, "journal: write the record of %s", r->id);
	}
	return 0;
}

/* A value that must be a name (instance, user, node). */
static int field_name(const struct ferry_msg *m, const char *key, char **ret, struct ferry_error **err)
{
	const char *v = ferry_msg_get(m, key);
	if (!v || strlen(v) > FERRY_NAME_MAX || ferry_name_check(v, NULL, NULL) < 0)
		return ferry_error_msg(err, EINVAL, "bad '%s'", key);
	*ret = xstrdup(v);
	return 0;
}

/* One of @n words of @names for @key's value: its index. */
static int field_enum(const struct ferry_msg *m, const char *key, const char *const *names, size_t n,
		      struct ferry_error **err)
{
	const char *v = ferry_msg_get(m, key);
	for (size_t i = 0; v && i < n; i++)
		if (names[i] && streq(v, names[i]))
			return (int)i;
	return ferry_error_msg(err, EINVAL, "bad '%s'", key);
}

/* Only the keys a record has (an unknown one is not a record of this version). */
static int known_keys(const struct ferry_msg *m, struct ferry_error **err)
{
	static const char *const keys[] = {"id",       "role", "mode",	   "uid",   "user",
					   "instance", "peer", "peer_dir", "state", "begun"};
	for (size_t i = 0; i < m->n; i++) {
		size_t k = 0;
		while (k < ARRAY_SIZE(keys) && !streq(keys[k], m->keys[i]))
			k++;
		if (k == ARRAY_SIZE(keys))
			return ferry_error_msg(err, EINVAL, "unknown key '%s'", m->keys[i]);
	}
	return 0;
}

static int decode(const char *text, size_t len, struct ferryd_jrec *r, struct ferry_error **err)
{
	struct ferry_msg m = {0};
	int ret = ferry_msg_parse(text, len, &m, err);
	if (ret == 0)
		ret = known_keys(&m, err);
	static const char *const roles[] = {"destination", "source"}, *const modes[] = {"default", "diskless",
											"live"};
	unsigned long long uid = 0, begun = 0;
	const char *id = ferry_msg_get(&m, "id"), *uid_s = ferry_msg_get(&m, "uid"),
		   *pd = ferry_msg_get(&m, "peer_dir"), *begun_s = ferry_msg_get(&m, "begun");
	int role = ret < 0 ? ret : field_enum(&m, "role", roles, 2, err);
	int mode = role < 0 ? role : field_enum(&m, "mode", modes, 3, err);
	int state = mode < 0 ? mode : field_enum(&m, "state", state_names, ARRAY_SIZE(state_names), err);
	ret = state;
	if (ret >= 0 &&
	    (!ferryd_id_ok(id) || !uid_s || parse_uint64(uid_s, UINT32_MAX - 1, &uid) < 0 || !begun_s ||
	     parse_uint64(begun_s, INT64_MAX, &begun) < 0 || (pd && (pd[0] != '/' || strstr(pd, "/..")))))
		ret = ferry_error_msg(err, EINVAL, "bad 'id', 'uid', 'begun' or 'peer_dir'");
	if (ret >= 0) {
		memcpy(r->id, id, 13);
		r->source = role == 1;
		r->diskless = mode >= 1;
		r->live = mode == 2;
		r->state = (enum ferryd_jstate)state;
		r->uid = (uid_t)uid;
		r->begun = (long long)begun;
		r->peer_dir = pd ? xstrdup(pd) : NULL;
		ret = field_name(&m, "user", &r->user, err);
	}
	if (ret >= 0)
		ret = field_name(&m, "instance", &r->instance, err);
	if (ret >= 0)
		ret = field_name(&m, "peer", &r->peer, err);
	ferry_msg_clear(&m);
	return ret < 0 ? ret : 0;
}

int ferryd_journal_get(struct ferryd *d, const char *id, struct ferryd_jrec *ret, struct ferry_error **err)
{
	if (!ferryd_id_ok(id))
		return ferry_error_msg(err, EINVAL, "journal: bad migration id");
	_cleanup_close_ int fd = openat(d->jfd, id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : ferry_error_set(err, errno, "journal: open %s", id);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) ||
	    st.st_nlink != 1 || st.st_size > FERRYD_JOURNAL_SIZE)
		return ferry_error_msg(err, EPERM, "journal: '%s' is not a record of ferryd's", id);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = ferry_read_all(fd, FERRYD_JOURNAL_SIZE, &text, &len, err);
	struct ferryd_jrec rec = {0};
	if (r == 0)
		r = decode(text, len, &rec, err);
	if (r == 0 && !streq(rec.id, id))
		r = ferry_error_msg(err, EINVAL, "another migration's id");
	if (r < 0) {
		ferryd_jrec_clear(&rec);
		return ferry_error_wrap(err, "journal: the record of %s", id);
	}
	*ret = rec;
	return 0;
}

/* The lock file of @id, opened (made when @create). */
static int open_lock(struct ferryd *d, const char *id, bool create)
{
	_cleanup_free_ char *name = lock_name(id);
	int fd = openat(d->jfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	struct stat st;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || st.st_nlink != 1) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int ferryd_journal_trylock(struct ferryd *d, const char *id)
{
	int fd = open_lock(d, id, false);
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* The unsettled records: @uid's, all of them, in *ret_mine; all, each user's counted up to their share (one
 * user's beyond it count against that user alone), in *ret_all. A record that cannot be read is
 * counted as nobody's (uid -1). */
static void journal_count(struct ferryd *d, uid_t uid, size_t *ret_mine, size_t *ret_all)
{
	struct {
		uid_t uid;
		size_t n;
	} users[FERRYD_JOURNAL_MAX];
	size_t n_users = 0, all = 0;
	*ret_mine = 0;
	DIR *dir = ferry_opendir_at(d->jfd);
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		if (!ferryd_id_ok(de->d_name))
			continue;
		struct ferryd_jrec rec = {0};
		struct ferry_error *e = NULL;
		int r = ferryd_journal_get(d, de->d_name, &rec, &e);
		ferry_error_free(e);
		if (r == -ENOENT) /* (settled meanwhile) */
			continue;
		uid_t owner = r < 0 ? (uid_t)-1 : rec.uid;
		ferryd_jrec_clear(&rec);
		size_t i = 0;
		while (i < n_users && users[i].uid != owner)
			i++;
		if (i == n_users && n_users < FERRYD_JOURNAL_MAX)
			users[n_users++] = (typeof(users[0])){.uid = owner};
		if (owner == uid)
			(*ret_mine)++;
		if (i < n_users && users[i].n++ >= FERRYD_JOURNAL_PER_USER)
			continue; /* past that user's share */
		all++;
	}
	if (dir)
		closedir(dir);
	*ret_all = all;
}

int ferryd_journal_begin(struct ferryd *d, const struct ferryd_jrec *r, int *ret_lock,
			 struct ferry_error **err)
{
	/* one handler at a time counts and adds (an open file of its own: the lock is per open
	 * file, and every handler shares d->jfd's) */
	_cleanup_close_ int excl = openat(d->jfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (excl < 0 || flock(excl, LOCK_EX) < 0)
		return ferry_error_set(err, errno, "journal: lock %s's journal", d->node);
	size_t mine = 0, all = 0;
	journal_count(d, r->uid, &mine, &all);
	if (mine >= FERRYD_JOURNAL_PER_USER)
		return ferry_error_msg(
		    err, EUSERS,
		    "%s has %zu unsettled migrations of %s (at most %d a user): each settles "
		    "once its peer answers (%s's ferryd log says where its instance is); "
		    "try again then",
		    d->node, mine, r->user, FERRYD_JOURNAL_PER_USER, d->node);
	if (all >= FERRYD_JOURNAL_MAX)
		return ferry_error_msg(
		    err, EBUSY, "%s has %d migrations not yet settled with their peers: try again later",
		    d->node, FERRYD_JOURNAL_MAX);
	int fd = open_lock(d, r->id, true);
	if (fd < 0)
		return ferry_error_set(err, -fd, "journal: the lock of %s", r->id);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || ftruncate(fd, 0) < 0) {
		int e = errno;
		close(fd);
		return ferry_error_set(err, e, "journal: the lock of %s", r->id);
	}
	int ret = ferryd_journal_put(d, r, err);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	*ret_lock = fd;
	return 0;
}

void ferryd_journal_drop(struct ferryd *d, const char *id)
{
	_cleanup_free_ char *name = lock_name(id);
	unlinkat(d->jfd, id, 0);
	unlinkat(d->jfd, name, 0);
	(void)fsync(d->jfd);
}

int ferryd_journal_decide(int lock)
{
	if (pwrite(lock, "C", 1, 0) != 1 || fdatasync(lock) < 0)
		return errno ? -errno : -EIO;
	return 0;
}

bool ferryd_journal_decided(int lock)
{
	char c = 0;
	return lock >= 0 && pread(lock, &c, 1, 0) == 1 && c == 'C';
}

size_t ferryd_journal_list(struct ferryd *d, char (*ids)[13], size_t max)
{
	DIR *dir = ferry_opendir_at(d->jfd);
	size_t n = 0;
	if (!dir)
		return 0;
	struct dirent *de;
	while ((de = readdir(dir)))
		if (ferryd_id_ok(de->d_name) && n < max)
			memcpy(ids[n++], de->d_name, 13);
		else if (ferryd_id_ok(de->d_name))
			n++;
	closedir(dir);
	return n;
}
