/* SPDX-License-Identifier: GPL-2.0-or-later */
/* manifest: signing, verification, tampering, strict parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/mman.h>

#include "manifest.h"

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
static const char sha_a[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char sha_b[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static char *signed_text(void)
{
	struct ferry_manifest m = {.ferry_version = "0.1.0",
				   .uid = 1001,
				   .gid = 1002,
				   .instance = "job1",
				   .image = "/img/a.sif",
				   .image_fingerprint = "10:abc",
				   .created = 1700000000,
				   .pid = 10000,
				   .node = "nodeA",
				   .netns = "loopback",
				   .lazy_pages = true,
				   .group = "0123456789abcdef0123456789abcdef/4"};
	ferry_manifest_add_file(&m, "core-10000.img", 2269, sha_a);
	ferry_manifest_add_file(&m, "pages-1.img", 73728, sha_b);
	char *text = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_manifest_sign(&m, key, sizeof(key), &text, &err), 0);
	for (size_t i = 0; i < m.n_files; i++)
		free(m.files[i].name);
	free(m.files);
	return text;
}

static void test_round_trip(void **state)
{
	_cleanup_free_ char *text = signed_text();
	struct ferry_manifest *m = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_manifest_verify(text, strlen(text), key, sizeof(key), &m, &err), 0);
	assert_int_equal(m->uid, 1001);
	assert_int_equal(m->gid, 1002);
	assert_string_equal(m->instance, "job1");
	assert_string_equal(m->image, "/img/a.sif");
	assert_string_equal(m->node, "nodeA");
	assert_string_equal(m->netns, "loopback");
	assert_true(m->lazy_pages);
	assert_string_equal(m->group, "0123456789abcdef0123456789abcdef/4");
	assert_int_equal(m->pid, 10000);
	assert_int_equal(m->n_files, 2);
	const struct ferry_manifest_file *f = ferry_manifest_find(m, "pages-1.img");
	assert_non_null(f);
	assert_int_equal(f->size, 73728);
	assert_string_equal(f->sha256, sha_b);
	assert_null(ferry_manifest_find(m, "nope"));
	ferry_manifest_free(m);
}

static void expect_refused(const char *text, size_t len, const char *what)
{
	struct ferry_manifest *m = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_manifest_verify(text, len, key, sizeof(key), &m, &err);
	if (r == 0)
		fail_msg("accepted: %s", what);
	assert_null(m);
	assert_non_null(err);
}

static void test_every_byte_flip_refused(void **state)
{
	_cleanup_free_ char *text = signed_text();
	size_t len = strlen(text);
	for (size_t i = 0; i < len; i++) {
		char saved = text[i];
		text[i] = (char)(saved ^ 0x01);
		expect_refused(text, len, "flipped byte");
		text[i] = saved;
	}
}

static void test_every_truncation_refused(void **state)
{
	_cleanup_free_ char *text = signed_text();
	size_t len = strlen(text);
	for (size_t n = 0; n < len; n++) {
		/* exact-size copies so ASan catches any over-read */
		char *copy = xmalloc(n ? n : 1);
		memcpy(copy, text, n);
		expect_refused(copy, n, "truncated");
		free(copy);
	}
}

static void test_unsigned_and_wrong_key(void **state)
{
	_cleanup_free_ char *text = signed_text();
	char *hmac = strstr(text, "hmac=");
	assert_non_null(hmac);
	expect_refused(text, (size_t)(hmac - text), "hmac removed");
	unsigned char other[32];
	memcpy(other, key, sizeof(other));
	other[0] ^= 1;
	struct ferry_manifest *m = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_manifest_verify(text, strlen(text), other, sizeof(other), &m, &err) < 0);
	assert_non_null(strstr(err->message, "signature"));
	/* a short key is refused for signing and verifying */
	ferry_error_free(err);
	err = NULL;
	assert_true(ferry_manifest_verify(text, strlen(text), key, 8, &m, &err) < 0);
}

static void test_rewritten_manifest_refused(void **state)
{
	/* the attack: edit an image, rewrite its sha256 in the manifest, keep the old hmac */
	_cleanup_free_ char *text = signed_text();
	char *p = strstr(text, sha_a);
	assert_non_null(p);
	memset(p, 'c', 64);
	expect_refused(text, strlen(text), "rewritten sha");
	/* and the uid changed to root */
	_cleanup_free_ char *t2 = signed_text();
	char *u = strstr(t2, "uid=1001");
	memcpy(u, "uid=0000", 8);
	expect_refused(t2, strlen(t2), "uid rewritten");
}

static void test_parse_strict(void **state)
{
	static const char *const bad[] = {
	    "",
	    "not a manifest\n",
	    "ferry-manifest 1\nuid=x\n",
	    "ferry-manifest 1\nfile=../etc/passwd 1 "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nuid=1\n",
	    "ferry-manifest 1\nfile=a 1 zz\nuid=1\n",
	    "ferry-manifest 1\nfile=a 1 "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa extra\nuid=1\n",
	    "ferry-manifest 1\nfile=a 1 "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nfile=a 2 "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nuid=1\n",
	    "ferry-manifest 1\nnoequals\nuid=1\n",
	    "ferry-manifest 1\ngid=2\n", /* no uid */
	    "ferry-manifest 1\nuid=1\nnetns=bridge\n",
	    "ferry-manifest 1\nuid=1\nnetns=host\nnetns=host\n",
	    "ferry-manifest 1\nuid=1\npages=all\n",
	    "ferry-manifest 1\nuid=1\npages=lazy\npages=lazy\n",
	    "ferry-manifest 1\nuid=1\ngroup=0123456789abcdef0123456789abcdef\n",
	    "ferry-manifest 1\nuid=1\ngroup=0123456789abcdef0123456789abcdef/0\n",
	    "ferry-manifest 1\nuid=1\ngroup=0123456789ABCDEF0123456789abcdef/2\n",
	    "ferry-manifest 1\nuid=1\ngroup=0123456789abcdef0123456789abcdef/2\ngroup=0123456789abcdef0123456789abcdef/2\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct ferry_manifest *m = NULL;
		_cleanup_error_ struct ferry_error *err = NULL;
		if (ferry_manifest_parse_unverified(bad[i], strlen(bad[i]), &m, &err) == 0)
			fail_msg("accepted bad manifest %zu", i);
	}
	assert_true(ferry_manifest_name_ok("pages-1.img"));
	assert_true(ferry_manifest_name_ok("tmpfs-dev-42.tar.gz.img"));
	assert_false(ferry_manifest_name_ok(".hidden"));
	assert_false(ferry_manifest_name_ok("a/b"));
	assert_false(ferry_manifest_name_ok(""));
	/* a manifest from before ferry recorded the network namespace still parses */
	struct ferry_manifest *old = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_manifest_parse_unverified("ferry-manifest 1\nuid=1\n", 23, &old, &err), 0);
	assert_null(old->netns);
	assert_false(old->lazy_pages);
	assert_null(old->group);
	ferry_manifest_free(old);
}

static void test_sign_rejects_bad_names(void **state)
{
	struct ferry_manifest m = {.uid = 1};
	ferry_manifest_add_file(&m, "../x", 1, sha_a);
	char *text = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_manifest_sign(&m, key, sizeof(key), &text, &err) < 0);
	assert_null(text);
	free(m.files[0].name);
	free(m.files);
	struct ferry_manifest m2 = {.uid = 1, .instance = "a\nuid=0"};
	ferry_error_free(err);
	err = NULL;
	assert_true(ferry_manifest_sign(&m2, key, sizeof(key), &text, &err) < 0);
}

static void test_sha256_fd(void **state)
{
	int fd = memfd_create("t", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	uint64_t size = 0;
	char hex[65];
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_sha256_fd(fd, &size, hex, &err), 0);
	assert_int_equal(size, 3);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	close(fd);
}

/* Fed in pieces up to an end (as ferry-criu's paced page check and the dump's growing files
 * are): the same digest as whole; an end at or behind what is hashed reads nothing. */
static void test_sha256_feed_to_end(void **state)
{
	int fd = memfd_create("t", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	_cleanup_error_ struct ferry_error *err = NULL;
	struct ferry_sha256 h;
	char hex[65];
	assert_int_equal(ferry_sha256_begin(&h, &err), 0);
	assert_int_equal(ferry_sha256_feed(&h, fd, 1, &err), 0);
	assert_int_equal(h.size, 1);
	assert_int_equal(ferry_sha256_feed(&h, fd, 1, &err), 0); /* at the end */
	assert_int_equal(ferry_sha256_feed(&h, fd, 0, &err), 0); /* behind it */
	assert_int_equal(h.size, 1);
	assert_int_equal(ferry_sha256_feed(&h, fd, 2, &err), 0);
	assert_int_equal(ferry_sha256_feed(&h, fd, UINT64_MAX, &err), 0); /* the rest */
	assert_int_equal(h.size, 3);
	assert_int_equal(ferry_sha256_end(&h, hex, &err), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_every_byte_flip_refused),
	    cmocka_unit_test(test_every_truncation_refused),
	    cmocka_unit_test(test_unsigned_and_wrong_key),
	    cmocka_unit_test(test_rewritten_manifest_refused),
	    cmocka_unit_test(test_parse_strict),
	    cmocka_unit_test(test_sign_rejects_bad_names),
	    cmocka_unit_test(test_sha256_fd),
	    cmocka_unit_test(test_sha256_feed_to_end),
	};
	return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}
