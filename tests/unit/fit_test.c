/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fit: the check before a migration's freeze (src/ferryd/fit.c) and the child that is a user for
 * good that it runs (ferryd_as_user, src/ferryd/ask.c): the prepare message's fields read
 * strictly; the child has the user's ids, no capability and no_new_privs; a child that fails,
 * crashes or says nothing is told apart; the destination's refusals. The children run as
 * 'nobody': root only, skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "../../src/ferryd/ferryd.h"
#include "config.h"
#include "instance.h"

static struct ferryd d = {.node = "nodeT", .tmpfs_dir = "/dev/shm"};
static struct ferryd_user nobody;

static bool as_root(void)
{
	if (geteuid() == 0)
		return true;
	print_message("(skipped: needs root)\n");
	return false;
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0)
		return 0;
	struct ferry_error *err = NULL;
	if (ferryd_user_lookup(65534, &nobody, &err) < 0)
		return 1;
	d.cfg = ferry_config_defaults();
	ferryd_criu_learn(&d);
	return 0;
}

static void fit_sample(struct ferryd_fit *f)
{
	*f = (struct ferryd_fit){.magic = FERRYD_FIT_MAGIC, .size = sizeof(*f), .mem = 12345};
	strcpy(f->image, "/images/job.sqsh");
	strcpy(f->fingerprint, "4096:abcdef");
	strcpy(f->networks, "ftmac");
	strcpy(f->ip, "198.18.1.5");
	strcpy(f->mac, "02:00:00:00:00:01");
	strcpy(f->criu_version, "4.2.1");
	f->cpuinfo_len = 3;
	memcpy(f->cpuinfo, "\x19\x00\xff", 3);
}

static void test_message_round_trip(void **state)
{
	(void)state;
	struct ferryd_fit f, back;
	fit_sample(&f);
	struct ferry_msg m = {0};
	ferryd_fit_put(&m, &f);
	struct ferry_error *err = NULL;
	assert_int_equal(ferryd_fit_get(&m, &back, &err), 0);
	assert_memory_equal(&f, &back, sizeof(f));
	ferry_msg_clear(&m);
}

/* Each field missing, too long, or bad, is a bad prepare message that names it. */
static void test_message_strict(void **state)
{
	(void)state;
	static const char *const keys[] = {"image", "fingerprint", "networks",	   "ip",
					   "mac",   "mem",	   "criu_version", "cpuinfo"};
	struct ferryd_fit f, back;
	fit_sample(&f);
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		for (int how = 0; how < 2; how++) {
			struct ferry_msg m = {0};
			ferryd_fit_put(&m, &f);
			/* how 0: the key left out; 1: a value one byte too long for its field */
			struct ferry_msg cut = {0};
			for (size_t i = 0; i < m.n; i++) {
				if (!streq(m.keys[i], keys[k]))
					ferry_msg_set(&cut, m.keys[i], "%s", m.vals[i]);
				else if (how == 1)
					ferry_msg_set(&cut, m.keys[i], "/%*s", 8192, "x");
			}
			struct ferry_error *err = NULL;
			assert_int_equal(ferryd_fit_get(&cut, &back, &err), -EPROTO);
			assert_non_null(strstr(err->message, keys[k]));
			ferry_error_free(err);
			ferry_msg_clear(&m);
			ferry_msg_clear(&cut);
		}
	}
	/* a relative image, a negative or huge memory */
	const char *bad[][2] = {{"image", "images/job.sqsh"},
				{"mem", "-1"},
				{"mem", "99999999999999999999999"},
				{"mem", "12x"},
				{"criu_version", "4.2.1-rc1"},
				{"criu_version", ".4"},
				{"cpuinfo", "abc"},
				{"cpuinfo", "ABCD"},
				{"cpuinfo", "zz"}};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct ferry_msg m = {0};
		ferryd_fit_put(&m, &f);
		ferry_msg_set(&m, bad[i][0], "%s", bad[i][1]);
		struct ferry_error *err = NULL;
		assert_int_equal(ferryd_fit_get(&m, &back, &err), -EPROTO);
		ferry_error_free(err);
		ferry_msg_clear(&m);
	}
}

struct who {
	uid_t uid, euid, suid;
	gid_t gid;
	int nnp, status;
	unsigned long long caps[4]; /* inheritable, permitted, effective, ambient */
};

static int who_child(void *arg, void *ans)
{
	(void)arg;
	struct who *w = ans;
	getresuid(&w->uid, &w->euid, &w->suid);
	w->gid = getgid();
	w->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	struct ferry_proc_status st;
	w->status = ferry_proc_status(getpid(), &st);
	memcpy(w->caps, st.caps, sizeof(w->caps));
	return 0;
}

static void test_as_user_is_the_user(void **state)
{
	(void)state;
	if (!as_root())
		return;
	struct who w;
	struct ferry_error *err = NULL;
	assert_int_equal(
	    ferryd_as_user(&d, &nobody, "fit-test", -1, who_child, NULL, &w, sizeof(w), 10, &err), 0);
	assert_int_equal(w.uid, 65534);
	assert_int_equal(w.euid, 65534);
	assert_int_equal(w.suid, 65534);
	assert_int_equal(w.gid, nobody.gid);
	assert_int_equal(w.nnp, 1);
	assert_int_equal(w.status, 0);
	assert_int_equal(w.caps[2], 0); /* no effective capability (nor any other) */
	assert_int_equal(w.caps[0] | w.caps[1] | w.caps[3], 0);
}

static int fails(void *arg, void *ans)
{
	(void)arg, (void)ans;
	return -1;
}

static int crashes(void *arg, void *ans)
{
	(void)arg, (void)ans;
	raise(SIGKILL); /* (cmocka catches SIGSEGV, in the child too) */
	return 0;
}

static int says_nothing(void *arg, void *ans)
{
	(void)arg, (void)ans;
	sleep(30);
	return 0;
}

static void test_as_user_failures(void **state)
{
	(void)state;
	if (!as_root())
		return;
	struct who w;
	struct ferry_error *err = NULL;
	assert_int_equal(ferryd_as_user(&d, &nobody, "fit-test", -1, fails, NULL, &w, sizeof(w), 10, &err),
			 -ECHILD);
	assert_string_equal(err->message, "exited with status 1");
	ferry_error_free(err);
	err = NULL;
	assert_int_equal(ferryd_as_user(&d, &nobody, "fit-test", -1, crashes, NULL, &w, sizeof(w), 10, &err),
			 -ECHILD);
	assert_string_equal(err->message, "was killed by signal 9");
	ferry_error_free(err);
	err = NULL;
	assert_int_equal(
	    ferryd_as_user(&d, &nobody, "fit-test", -1, says_nothing, NULL, &w, sizeof(w), 1, &err),
	    -ETIMEDOUT);
	ferry_error_free(err);
}

/* The destination's refusals that need no network: the image (looked at as the user) and the
 * memory. */
static void test_check(void **state)
{
	(void)state;
	if (!as_root())
		return;
	char dir[] = "/tmp/ferry-fit-test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0755);
	struct ferryd_fit f = {.magic = FERRYD_FIT_MAGIC, .size = sizeof(f), .mem = 1 << 20};
	memcpy(f.criu_version, d.criu.version, sizeof(f.criu_version));
	memcpy(f.cpuinfo, d.criu.cpuinfo, d.criu.cpuinfo_len);
	f.cpuinfo_len = d.criu.cpuinfo_len;
	/* a directory image: there, readable by the user */
	snprintf(f.image, sizeof(f.image), "%s", dir);
	struct ferry_error *err = NULL;
	assert_int_equal(ferryd_fit_check(&d, &nobody, true, &f, &err), 0);
	/* gone */
	snprintf(f.image, sizeof(f.image), "%s/none", dir);
	assert_int_equal(ferryd_fit_check(&d, &nobody, false, &f, &err), -ENOENT);
	assert_non_null(strstr(err->message, "/none': No such file or directory"));
	ferry_error_free(err);
	err = NULL;
	/* there for root, not for the user: the look is the user's */
	char secret[64];
	snprintf(secret, sizeof(secret), "%s/secret", dir);
	assert_int_equal(mkdir(secret, 0700), 0);
	snprintf(f.image, sizeof(f.image), "%s", secret);
	assert_int_equal(ferryd_fit_check(&d, &nobody, false, &f, &err), -ENOENT);
	assert_non_null(strstr(err->message, "Permission denied"));
	ferry_error_free(err);
	err = NULL;
	/* a file that is no image */
	char junk[64];
	snprintf(junk, sizeof(junk), "%s/junk", dir);
	FILE *j = fopen(junk, "w");
	assert_non_null(j);
	fputs("not an image\n", j);
	fclose(j);
	chmod(junk, 0644);
	snprintf(f.image, sizeof(f.image), "%s", junk);
	assert_int_equal(ferryd_fit_check(&d, &nobody, false, &f, &err), -ENOENT);
	assert_non_null(strstr(err->message, "not a ferry image"));
	ferry_error_free(err);
	err = NULL;
	/* more memory than the node has */
	snprintf(f.image, sizeof(f.image), "%s", dir);
	f.mem = 1ULL << 50;
	assert_int_equal(ferryd_fit_check(&d, &nobody, true, &f, &err), -ENOMEM);
	assert_non_null(strstr(err->message, "of memory is available, the instance needs"));
	ferry_error_free(err);
	err = NULL;
	/* diskless does not need twice its memory: the restore frees the tmpfs copy as it goes */
	f.mem = ferry_meminfo("MemAvailable") / 10 * 6;
	if (ferryd_fit_check(&d, &nobody, true, &f, &err) < 0) {
		assert_null(strstr(err->message, "of memory is available"));
		ferry_error_free(err);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A varint at @p (at most 10 bytes): its value, its length in *n. */
static uint64_t varint(const unsigned char *p, size_t *n)
{
	uint64_t v = 0;
	for (*n = 0; *n < 10; (*n)++) {
		v |= (uint64_t)(p[*n] & 0x7f) << (7 * *n);
		if (!(p[*n] & 0x80)) {
			(*n)++;
			return v;
		}
	}
	return v;
}

/* The image of a CPU with every xsave feature: this node's, its x86 entry's xfeatures_mask
 * (field 8) set to 0xffffffff (CRIU's images: two magics, a u32 size, the message). */
static size_t other_cpu(const struct ferryd_criu *c, unsigned char *out)
{
	const unsigned char *msg = c->cpuinfo + 12;
	size_t n, len = c->cpuinfo_len - 12, at = 0;
	assert_int_equal(msg[0], 0x0a); /* field 1: the x86 entry */
	size_t entry_len = (size_t)varint(msg + 1, &n);
	const unsigned char *e = msg + 1 + n;
	assert_int_equal(1 + n + entry_len, len);
	unsigned char entry[FERRYD_CPUINFO_MAX];
	size_t k = 0;
	while (at < entry_len) {
		size_t tn, vn, start = at;
		uint64_t tag = varint(e + at, &tn);
		at += tn;
		uint64_t v = varint(e + at, &vn);
		at += vn + ((tag & 7) == 2 ? v : 0);
		assert_true((tag & 7) == 0 || (tag & 7) == 2);
		if (tag == (8 << 3)) {
			memcpy(entry + k, "\x40\xff\xff\xff\xff\x0f", 6);
			k += 6;
		} else {
			memcpy(entry + k, e + start, at - start);
			k += at - start;
		}
	}
	assert_true(k < 128);
	memcpy(out, c->cpuinfo, 8);
	uint32_t size = (uint32_t)(2 + k);
	memcpy(out + 8, &size, 4);
	out[12] = 0x0a;
	out[13] = (unsigned char)k;
	memcpy(out + 14, entry, k);
	return 14 + k;
}

/* This node's CRIU is learned; a destination with an older CRIU, or a CPU that lacks what the
 * source's had, refuses. */
static void test_criu(void **state)
{
	(void)state;
	if (!as_root())
		return;
	assert_string_equal(d.criu.check, "");
	assert_true(d.criu.version[0] >= '1' && d.criu.version[0] <= '9');
	assert_true(d.criu.cpuinfo_len > 12);
	struct ferryd_fit f = {.magic = FERRYD_FIT_MAGIC, .size = sizeof(f), .mem = 1 << 20};
	strcpy(f.image, "/");
	memcpy(f.criu_version, d.criu.version, sizeof(f.criu_version));
	memcpy(f.cpuinfo, d.criu.cpuinfo, d.criu.cpuinfo_len);
	f.cpuinfo_len = d.criu.cpuinfo_len;
	struct ferry_error *err = NULL;
	assert_int_equal(ferryd_fit_check(&d, &nobody, false, &f, &err), 0);
	/* an older source is fine, a newer one is not */
	strcpy(f.criu_version, "3.17.1");
	assert_int_equal(ferryd_fit_check(&d, &nobody, false, &f, &err), 0);
	strcpy(f.criu_version, "99.1");
	assert_int_equal(ferryd_fit_check(&d, &nobody, false, &f, &err), -ENOTSUP);
	assert_non_null(strstr(err->message, "older than the source's 99.1"));
	ferry_error_free(err);
	err = NULL;
	memcpy(f.criu_version, d.criu.version, sizeof(f.criu_version));
	/* another CPU, with xsave features this one lacks: CRIU says so */
	f.cpuinfo_len = (uint32_t)other_cpu(&d.criu, f.cpuinfo);
	assert_int_equal(ferryd_fit_check(&d, &nobody, false, &f, &err), -ENOTSUP);
	assert_non_null(strstr(err->message, "this CPU lacks what the instance may use"));
	assert_non_null(strstr(err->message, "xfeatures"));
	ferry_error_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_message_round_trip),
	    cmocka_unit_test(test_message_strict),
	    cmocka_unit_test(test_as_user_is_the_user),
	    cmocka_unit_test(test_as_user_failures),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_criu),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
