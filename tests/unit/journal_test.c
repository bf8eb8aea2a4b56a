/* SPDX-License-Identifier: GPL-2.0-or-later */
/* journal: ferryd's record of a migration (src/ferryd/journal.c): written whole and read back,
 * strictly; the decision byte; the lock; the bounds on unsettled migrations, a user's and the
 * node's. Runs as root (the records must be root's): skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../../src/ferryd/ferryd.h"
#include "../../src/ferryd/journal.h"
#include "fs.h"

static char dir[] = "/tmp/ferry-journal-test.XXXXXX";
static struct ferryd d = {.node = "nodeT", .shared_dir = "/shared", .tmpfs_dir = "/tmpfs"};

static int setup(void **state)
{
	if (geteuid() != 0)
		return 0;
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0700);
	d.jfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return d.jfd < 0;
}

static int teardown(void **state)
{
	char cmd[128];
	if (geteuid() == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}

static struct ferryd_jrec sample(const char *id)
{
	struct ferryd_jrec r = {.source = true, .diskless = true, .uid = 1001, .state = FERRYD_J_PREPARED};
	memcpy(r.id, id, 13);
	r.user = xstrdup("alice");
	r.instance = xstrdup("job1");
	r.peer = xstrdup("nodeB");
	r.peer_dir = xstrdup("/dev/shm/x/1001/job1-0123456789ab");
	return r;
}

static void write_raw(const char *name, const char *text, mode_t mode)
{
	int fd = openat(d.jfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(ferry_write_all(fd, text, strlen(text)), 0);
	fchmod(fd, mode);
	close(fd);
}

static void refused(const char *text, mode_t mode)
{
	struct ferryd_jrec r = {0};
	struct ferry_error *err = NULL;
	write_raw("00000000000f", text, mode);
	if (ferryd_journal_get(&d, "00000000000f", &r, &err) == 0)
		fail_msg("accepted: %s", text);
	ferry_error_free(err);
	unlinkat(d.jfd, "00000000000f", 0);
}

static void test_roundtrip(void **state)
{
	if (geteuid() != 0)
		skip();
	struct ferryd_jrec r = sample("0123456789ab"), back = {0};
	struct ferry_error *err = NULL;
	int lock = -1;
	assert_int_equal(ferryd_journal_begin(&d, &r, &lock, &err), 0);
	assert_int_equal(ferryd_journal_get(&d, "0123456789ab", &back, &err), 0);
	assert_string_equal(back.instance, "job1");
	assert_string_equal(back.peer, "nodeB");
	assert_string_equal(back.peer_dir, r.peer_dir);
	assert_true(back.source && back.diskless);
	assert_int_equal(back.uid, 1001);
	assert_int_equal(back.state, FERRYD_J_PREPARED);
	/* the lock is held: nobody else takes it */
	assert_int_equal(ferryd_journal_trylock(&d, "0123456789ab"), -EWOULDBLOCK);
	/* the decision */
	assert_false(ferryd_journal_decided(lock));
	assert_int_equal(ferryd_journal_decide(lock), 0);
	assert_true(ferryd_journal_decided(lock));
	close(lock);
	lock = ferryd_journal_trylock(&d, "0123456789ab");
	assert_true(lock >= 0);
	assert_true(ferryd_journal_decided(lock));
	close(lock);
	/* replaced whole */
	back.state = FERRYD_J_COMMITTED;
	assert_int_equal(ferryd_journal_put(&d, &back, &err), 0);
	ferryd_jrec_clear(&back);
	assert_int_equal(ferryd_journal_get(&d, "0123456789ab", &back, &err), 0);
	assert_int_equal(back.state, FERRYD_J_COMMITTED);
	ferryd_jrec_clear(&back);
	ferryd_journal_drop(&d, "0123456789ab");
	assert_int_equal(ferryd_journal_get(&d, "0123456789ab", &back, &err), -ENOENT);
	ferryd_jrec_clear(&r);
}

#define HEAD0 "ferry-proto 1\nid=00000000000f\nrole=source\nmode=default\nuid=7\nuser=u\n"
#define HEAD HEAD0 "begun=1764900000\n"

static void test_strict(void **state)
{
	if (geteuid() != 0)
		skip();
	refused(HEAD "instance=job\npeer=nodeB\nstate=prepared\nextra=1\n", 0600); /* unknown key */
	refused(HEAD "instance=../job\npeer=nodeB\nstate=prepared\n", 0600); /* not a name */
	refused(HEAD "instance=job\npeer=node/B\nstate=prepared\n", 0600);
	refused(HEAD "instance=job\npeer=nodeB\nstate=done\n", 0600); /* no such state */
	refused(HEAD "instance=job\npeer=nodeB\n", 0600); /* no state */
	refused(HEAD0 "instance=job\npeer=nodeB\nstate=prepared\n", 0600); /* no begun */
	refused(HEAD0 "begun=-1\ninstance=job\npeer=nodeB\nstate=prepared\n", 0600);
	/* the same, well made, is a record */
	write_raw("00000000000f", HEAD "instance=job\npeer=nodeB\nstate=prepared\n", 0600);
	struct ferryd_jrec ok = {0};
	struct ferry_error *ok_err = NULL;
	assert_int_equal(ferryd_journal_get(&d, "00000000000f", &ok, &ok_err), 0);
	assert_int_equal(ok.begun, 1764900000);
	ferryd_jrec_clear(&ok);
	unlinkat(d.jfd, "00000000000f", 0);
	refused(HEAD "instance=job\npeer=nodeB\nstate=prepared\npeer_dir=relative\n", 0600);
	refused(HEAD "instance=job\npeer=nodeB\nstate=prepared\npeer_dir=/a/../b\n", 0600);
	refused(
	    "ferry-proto 1\nid=00000000000e\nrole=source\nmode=default\nuid=7\nuser=u\nbegun=1\ninstance=job\npeer=n\nstate=prepared\n",
	    0600); /* another id */
	refused(HEAD "instance=job\npeer=nodeB\nstate=prepared\n", 0644); /* readable by others */
	/* a symlink is not followed */
	write_raw("target", HEAD "instance=job\npeer=nodeB\nstate=prepared\n", 0600);
	assert_int_equal(symlinkat("target", d.jfd, "00000000000d"), 0);
	struct ferryd_jrec r = {0};
	struct ferry_error *err = NULL;
	assert_true(ferryd_journal_get(&d, "00000000000d", &r, &err) < 0);
	ferry_error_free(err);
	err = NULL;
	unlinkat(d.jfd, "00000000000d", 0);
	/* too long */
	char *big = xmalloc(FERRYD_JOURNAL_SIZE + 64);
	memset(big, 'a', FERRYD_JOURNAL_SIZE + 63);
	big[FERRYD_JOURNAL_SIZE + 63] = '\0';
	refused(big, 0600);
	free(big);
	/* a bad id is not even opened */
	assert_true(ferryd_journal_get(&d, "../etc/passw", &r, &err) < 0);
	ferry_error_free(err);
	assert_false(ferryd_id_ok("0123456789AB"));
	assert_false(ferryd_id_ok("0123456789a"));
}

/* A migration of @uid begun (its record and lock): the result of ferryd_journal_begin. */
static int begin_as(uid_t uid, unsigned n, struct ferry_error **err)
{
	char id[13];
	int lock = -1;
	snprintf(id, sizeof(id), "%012x", n);
	struct ferryd_jrec r = sample(id);
	r.uid = uid;
	int ret = ferryd_journal_begin(&d, &r, &lock, err);
	if (lock >= 0)
		close(lock);
	ferryd_jrec_clear(&r);
	return ret;
}

static void test_bounded(void **state)
{
	if (geteuid() != 0)
		skip();
	struct ferry_error *err = NULL;
	char id[13];
	/* 40 records of one user, more than their share (as left from before): they count for 32
	 * against the others */
	for (unsigned i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "%012x", 0x4000 + i);
		struct ferryd_jrec r = sample(id);
		r.uid = 4000;
		assert_int_equal(ferryd_journal_put(&d, &r, &err), 0);
		ferryd_jrec_clear(&r);
	}
	/* 7 other users, a share each: the node's 256 */
	for (unsigned i = 0; i < FERRYD_JOURNAL_MAX - FERRYD_JOURNAL_PER_USER; i++)
		assert_int_equal(begin_as(2000 + i / FERRYD_JOURNAL_PER_USER, 0x100 + i, &err), 0);
	/* a user at their share is told so, and how many they have */
	assert_int_equal(begin_as(2000, 0xf001, &err), -EUSERS);
	assert_non_null(strstr(err->message, "has 32 unsettled migrations of alice (at most 32 a user)"));
	ferry_error_free(err);
	err = NULL;
	assert_int_equal(begin_as(4000, 0xf002, &err), -EUSERS);
	assert_non_null(strstr(err->message, "has 40 unsettled"));
	ferry_error_free(err);
	err = NULL;
	/* and a user with none, when the node has its 256 */
	assert_int_equal(begin_as(3000, 0xf003, &err), -EBUSY);
	assert_non_null(strstr(err->message, "not yet settled"));
	ferry_error_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_strict),
	    cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
