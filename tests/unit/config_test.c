/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>

#include "config.h"

/* ---- helpers ---- */

static struct ferry_config *parse_ok(const char *text)
{
	struct ferry_config *c = NULL;
	struct ferry_error *err = NULL;
	int r = ferry_config_parse(text, strlen(text), &c, &err);
	if (r < 0)
		fail_msg("parse failed: %s\n--- text:\n%s", err ? err->message : "(no message)", text);
	assert_null(err);
	assert_non_null(c);
	return c;
}

/* Parsing must fail with EINVAL and a message containing @want. */
static void parse_bad(const char *text, const char *want)
{
	struct ferry_config *c = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_config_parse(text, strlen(text), &c, &err);
	if (r >= 0)
		fail_msg("parse accepted:\n%s", text);
	assert_null(c);
	assert_non_null(err);
	assert_int_equal(r, -err->code);
	if (!strstr(err->message, want))
		fail_msg("message '%s' lacks '%s'", err->message, want);
}

static void assert_defaults(const struct ferry_config *c)
{
	assert_true(c->allow_setuid);
	assert_true(c->mount_home);
	assert_true(c->mount_tmp);
	assert_true(c->mount_cwd);
	assert_true(c->user_bind_control);
	assert_non_null(c->allow_bind_paths);
	assert_null(c->allow_bind_paths[0]);
	assert_string_equal(c->criu_path, "/usr/local/sbin/criu");
	assert_string_equal(c->mem_dir, "/dev/shm");
	assert_string_equal(c->checkpoint_dir, "~/.ferry/checkpoint");
	assert_int_equal(c->max_instances, 64);
	assert_int_equal(c->criu_timeout, 600);
	assert_int_equal(c->peer_timeout, 30);
	/* the waits that outlast 'criu timeout': 60 s more by default, as before the key */
	assert_int_equal(ferry_config_verdict_wait(c), 600 + 60);
	assert_int_equal(ferry_config_starter_wait(c), 2 * 600 + 60);
	assert_true(c->criu_loopback);
	assert_true(c->allow_live);
	assert_true(c->staging);
	assert_string_equal(c->staging_dir, "/dev/shm/ferry-staging");
	assert_null(c->slurm_checkpoint_dir);
	assert_int_equal(c->slurm_every, 0);
	assert_int_equal(c->slurm_keep, 2);
	assert_int_equal(c->slurm_grace, 120);
}

/* ---- parse ---- */

static void test_defaults(void **state)
{
	_cleanup_(ferry_config_freep) struct ferry_config *d = ferry_config_defaults();
	assert_defaults(d);

	_cleanup_(ferry_config_freep) struct ferry_config *e = parse_ok("");
	assert_defaults(e);

	struct ferry_config *n = NULL;
	assert_int_equal(ferry_config_parse(NULL, 0, &n, NULL), 0);
	assert_defaults(n);
	ferry_config_freep(&n);
	assert_null(n);

	_cleanup_(ferry_config_freep) struct ferry_config *c =
	    parse_ok("# only comments\n\n   # indented comment\n\t\n   \n");
	assert_defaults(c);

	ferry_config_free(NULL);
}

static void test_every_key(void **state)
{
	_cleanup_(ferry_config_freep) struct ferry_config *c = parse_ok("allow setuid = no\n"
									"mount home = no\n"
									"mount tmp = no\n"
									"mount cwd = no\n"
									"user bind control = no\n"
									"allow bind path = /data\n"
									"allow bind path = /srv/scratch\n"
									"allow bind path = /\n"
									"criu path = /opt/criu/sbin/criu\n"
									"mem dir = /run/ferry-mem\n"
									"checkpoint dir = /scratch/ckpt\n"
									"max instances = 4096\n"
									"criu timeout = 86400\n");
	assert_false(c->allow_setuid);
	assert_false(c->mount_home);
	assert_false(c->mount_tmp);
	assert_false(c->mount_cwd);
	assert_false(c->user_bind_control);
	assert_int_equal(strv_length(c->allow_bind_paths), 3);
	assert_string_equal(c->allow_bind_paths[0], "/data");
	assert_string_equal(c->allow_bind_paths[1], "/srv/scratch");
	assert_string_equal(c->allow_bind_paths[2], "/");
	assert_string_equal(c->criu_path, "/opt/criu/sbin/criu");
	assert_string_equal(c->mem_dir, "/run/ferry-mem");
	assert_string_equal(c->checkpoint_dir, "/scratch/ckpt");
	assert_int_equal(c->max_instances, 4096);
	assert_int_equal(c->criu_timeout, 86400);

	_cleanup_(ferry_config_freep) struct ferry_config *y =
	    parse_ok("allow setuid = yes\nmount home = yes\nmax instances = 1\ncriu timeout = 1\n"
		     "checkpoint dir = ~/ckpt/ferry\n");
	assert_true(y->allow_setuid);
	assert_true(y->mount_home);
	assert_int_equal(y->max_instances, 1);
	assert_int_equal(y->criu_timeout, 1);
	assert_string_equal(y->checkpoint_dir, "~/ckpt/ferry");
}

static void test_whitespace(void **state)
{
	/* Leading/trailing blanks, tabs, CRLF, no spaces around '=', no final newline. */
	_cleanup_(ferry_config_freep) struct ferry_config *c = parse_ok("  mount home=no  \r\n"
									"\tmount tmp\t=\tno\t\n"
									"criu path =   /x/criu\r\n"
									"max instances = 7");
	assert_false(c->mount_home);
	assert_false(c->mount_tmp);
	assert_string_equal(c->criu_path, "/x/criu");
	assert_int_equal(c->max_instances, 7);

	/* A value may contain '=' and spaces: only the first '=' separates. */
	_cleanup_(ferry_config_freep) struct ferry_config *d = parse_ok("allow bind path = /a=b/c d\n");
	assert_string_equal(d->allow_bind_paths[0], "/a=b/c d");
}

static void test_comments(void **state)
{
	_cleanup_(ferry_config_freep) struct ferry_config *c =
	    parse_ok("#mount home = no\n   # mount tmp = no\n#\n##\nmount cwd = no\n");
	assert_true(c->mount_home);
	assert_true(c->mount_tmp);
	assert_false(c->mount_cwd);

	/* '#' is a comment only at the start of a line. */
	parse_bad("mount home = no # not a comment\n",
		  "ferry.conf line 1: 'mount home' must be 'yes' or 'no', "
		  "not 'no # not a comment'");
	parse_bad("criu path = /a#b\ncriu path = /c\n",
		  "ferry.conf line 2: 'criu path' is already set on line 1");
}

static void test_unknown_and_malformed(void **state)
{
	parse_bad("\n\n# c\nfoo = bar\n", "ferry.conf line 4: unknown key 'foo' (see ferry.conf(5))");
	parse_bad("Mount Home = no\n", "line 1: unknown key 'Mount Home'");
	parse_bad("mount  home = no\n", "unknown key 'mount  home'");
	parse_bad("mount\thome = no\n", "unknown key 'mount\\x09home'");
	parse_bad("mounthome = no\n", "unknown key 'mounthome'");
	parse_bad("allow bind paths = /x\n", "unknown key 'allow bind paths'");
	parse_bad("= no\n", "unknown key ''");
	parse_bad("mount home\n", "ferry.conf line 1: expected 'key = value', not 'mount home'");
	parse_bad("mount home no\n", "expected 'key = value'");
	parse_bad("[global]\n", "expected 'key = value'");
	parse_bad("mount home =\n", "ferry.conf line 1: 'mount home' has no value");
	parse_bad("mount home =   \t\n", "'mount home' has no value");
	parse_bad("criu path = \n", "'criu path' has no value");
	parse_bad("allow bind path =\n", "'allow bind path' has no value");

	static const char nul[] = "mount home = no\nmount tmp = n\0o\n";
	struct ferry_config *c = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_config_parse(nul, sizeof(nul) - 1, &c, &err), -EINVAL);
	assert_string_equal(err->message, "ferry.conf line 2: contains a NUL byte");
	assert_null(c);
}

static void test_booleans(void **state)
{
	static const char *const bad[] = {"Yes", "YES", "true", "1",	 "0",	"on",
					  "off", "y",	"n",	"no no", "yes!"};
	static const char *const keys[] = {"allow setuid", "mount home", "mount tmp", "mount cwd",
					   "user bind control"};
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			_cleanup_free_ char *text = xasprintf("%s = %s\n", keys[k], bad[i]);
			_cleanup_free_ char *want =
			    xasprintf("'%s' must be 'yes' or 'no', not '%s'", keys[k], bad[i]);
			parse_bad(text, want);
		}
	}
}

static void test_numbers(void **state)
{
	static const char *const bad[] = {
	    "0", "-1", "+5", "4097", "1e3", "12a", "0x10", " 1 2", "99999999999999999999999"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *text = xasprintf("max instances = %s\n", bad[i]);
		parse_bad(text, "'max instances' must be a number from 1 to 4096");
	}
	parse_bad("criu timeout = 86401\n",
		  "line 1: 'criu timeout' must be a number from 1 to 86400, not '86401'");
	parse_bad("criu timeout = 0\n", "'criu timeout' must be a number from 1 to 86400, not '0'");
	parse_bad("criu timeout = ten\n", "not 'ten'");

	_cleanup_(ferry_config_freep) struct ferry_config *c =
	    parse_ok("max instances = 0064\ncriu timeout = 5\n");
	assert_int_equal(c->max_instances, 64);
	assert_int_equal(c->criu_timeout, 5);
}

/* "peer timeout": at least three keepalive periods of ferryd, at most an hour; the waits beyond
 * 'criu timeout' follow it. */
static void test_peer_timeout(void **state)
{
	_cleanup_(ferry_config_freep) struct ferry_config *c =
	    parse_ok("peer timeout = 8\ncriu timeout = 5\n");
	assert_int_equal(c->peer_timeout, 8);
	assert_int_equal(ferry_config_verdict_wait(c), 5 + 16);
	assert_int_equal(ferry_config_starter_wait(c), 10 + 16);
	_cleanup_(ferry_config_freep) struct ferry_config *lo = parse_ok("peer timeout = 6\n");
	assert_int_equal(lo->peer_timeout, FERRY_PEER_TIMEOUT_MIN);
	_cleanup_(ferry_config_freep) struct ferry_config *hi = parse_ok("peer timeout = 3600\n");
	assert_int_equal(hi->peer_timeout, FERRY_PEER_TIMEOUT_MAX);
	/* the largest values do not overflow */
	_cleanup_(ferry_config_freep) struct ferry_config *max =
	    parse_ok("peer timeout = 3600\ncriu timeout = 86400\n");
	assert_int_equal(ferry_config_starter_wait(max), 2 * 86400 + 2 * 3600);

	parse_bad("peer timeout = 5\n", "line 1: 'peer timeout' must be a number from 6 to 3600, not '5'");
	parse_bad("peer timeout = 0\n", "'peer timeout' must be a number from 6 to 3600, not '0'");
	parse_bad("peer timeout = 3601\n", "'peer timeout' must be a number from 6 to 3600, not '3601'");
	parse_bad("peer timeout = 30s\n", "not '30s'");
	parse_bad("peer timeout = -30\n", "not '-30'");
	parse_bad("peer timeout =\n", "'peer timeout' has no value");
	parse_bad("peer timeout = 10\npeer timeout = 20\n", "'peer timeout' is already set on line 1");
}

static void test_criu_network(void **state)
{
	_cleanup_(ferry_config_freep) struct ferry_config *l = parse_ok("criu network = loopback\n");
	assert_true(l->criu_loopback);
	_cleanup_(ferry_config_freep) struct ferry_config *h = parse_ok("criu network = host\n");
	assert_false(h->criu_loopback);
	parse_bad("criu network = none\n", "line 1: 'criu network' must be 'loopback' or 'host', not 'none'");
	_cleanup_(ferry_config_freep) struct ferry_config *nl = parse_ok("allow live migration = no\n");
	assert_false(nl->allow_live);
	_cleanup_(ferry_config_freep) struct ferry_config *st =
	    parse_ok("checkpoint staging = no\ncheckpoint staging dir = /scratch/local/ferry\n");
	assert_false(st->staging);
	assert_string_equal(st->staging_dir, "/scratch/local/ferry");
	parse_bad("checkpoint staging dir = scratch\n", "line 1");
	parse_bad("criu network = Host\n", "not 'Host'");
	parse_bad("criu network = host\ncriu network = loopback\n",
		  "'criu network' is already set on line 1");
}

static void test_paths(void **state)
{
	static const char *const bad[] = {
	    "relative", "./x",	 "../x", "/a/../b", "/a/./b", "/a/..",	    "/a/.",
	    "//a",	"/a//b", "/a/",	 "~/x",	    "/a\x01", "/tab\there", "/del\x7f",
	};
	static const char *const keys[] = {"allow bind path", "criu path", "mem dir"};
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			_cleanup_free_ char *text = xasprintf("%s = %s\n", keys[k], bad[i]);
			_cleanup_free_ char *want = xasprintf("'%s' must be an absolute path", keys[k]);
			parse_bad(text, want);
		}
	}
	parse_bad("mem dir = /a/../b\n", "not '/a/../b'");
	parse_bad("mem dir = /a\x1b[31m\n", "not '/a\\x1b[31m'");

	/* Too long. */
	char *text = xmalloc(PATH_MAX + 64);
	size_t n = (size_t)snprintf(text, 64, "criu path = ");
	for (size_t i = 0; i < PATH_MAX; i++)
		text[n + i] = i % 2 ? 'a' : '/';
	text[n + PATH_MAX] = '\0';
	parse_bad(text, "'criu path' must be an absolute path");
	free(text);

	/* Dots inside names are fine; UTF-8 is fine. */
	_cleanup_(ferry_config_freep) struct ferry_config *c =
	    parse_ok("allow bind path = /a.b/..c/.d/e..\nmem dir = /d\xc3\xa9v\n");
	assert_string_equal(c->allow_bind_paths[0], "/a.b/..c/.d/e..");
	assert_string_equal(c->mem_dir, "/d\xc3\xa9v");
}

static void test_checkpoint_dir(void **state)
{
	static const char *const bad[] = {"~",	  "~/",	  "~user/x",  "~/../x",	 "~/a/../b", "~/./a",
					  "~/a/", "~//a", "relative", "$HOME/x", "/a/../b",  "~/a\x02"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *text = xasprintf("checkpoint dir = %s\n", bad[i]);
		parse_bad(text, "'checkpoint dir' must be an absolute path or start with '~/'");
	}
	_cleanup_(ferry_config_freep) struct ferry_config *c = parse_ok("checkpoint dir = ~/.ferry\n");
	assert_string_equal(c->checkpoint_dir, "~/.ferry");
	_cleanup_(ferry_config_freep) struct ferry_config *d = parse_ok("checkpoint dir = /\n");
	assert_string_equal(d->checkpoint_dir, "/");
}

/* The Slurm section (--ferry-checkpoint's defaults, ferry-slurm(7)). */
static void test_slurm_keys(void **state)
{
	_cleanup_(ferry_config_freep) struct ferry_config *c =
	    parse_ok("slurm checkpoint dir = /scratch/ferry\n"
		     "slurm checkpoint every = 1h30m\n"
		     "slurm keep = 5\n"
		     "slurm grace time = 5m\n");
	assert_string_equal(c->slurm_checkpoint_dir, "/scratch/ferry");
	assert_int_equal(c->slurm_every, 5400);
	assert_int_equal(c->slurm_keep, 5);
	assert_int_equal(c->slurm_grace, 300);
	_cleanup_(ferry_config_freep) struct ferry_config *h =
	    parse_ok("slurm checkpoint dir = ~/ckpt\nslurm checkpoint every = 0\nslurm grace time = 90\n"
		     "slurm keep = 1000\n");
	assert_string_equal(h->slurm_checkpoint_dir, "~/ckpt");
	assert_int_equal(h->slurm_every, 0);
	assert_int_equal(h->slurm_grace, 90);
	assert_int_equal(h->slurm_keep, 1000);

	parse_bad("slurm checkpoint dir = scratch\n", "'slurm checkpoint dir' must be an absolute path");
	parse_bad("slurm checkpoint dir = /scratch/../x\n",
		  "'slurm checkpoint dir' must be an absolute path");
	parse_bad("slurm checkpoint every = soon\n",
		  "line 1: 'slurm checkpoint every' must be a duration such as 90s, 30m, 2h or 1h30m, or 0 "
		  "for none (at most 31622400 s), not 'soon'");
	parse_bad("slurm checkpoint every = 8785h\n", "must be a duration");
	parse_bad("slurm grace time = 0\n",
		  "'slurm grace time' must be a duration such as 90s, 30m, 2h or 1h30m (at most 86400 s), "
		  "not '0'");
	parse_bad("slurm grace time = 25h\n", "'slurm grace time' must be a duration");
	parse_bad("slurm grace time = -5\n", "'slurm grace time' must be a duration");
	parse_bad("slurm keep = 0\n", "'slurm keep' must be a number from 1 to 1000, not '0'");
	parse_bad("slurm keep = 2\nslurm keep = 3\n", "line 2: 'slurm keep' is already set on line 1");
}

static void test_duplicates(void **state)
{
	static const char *const lines[] = {
	    "allow setuid = yes",     "mount home = yes", "mount tmp = no", "mount cwd = yes",
	    "user bind control = no", "criu path = /c",	  "mem dir = /m",   "checkpoint dir = ~/c",
	    "max instances = 3",      "criu timeout = 9"};
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
		_cleanup_free_ char *text = xasprintf("# header\n%s\n\n%s\n", lines[i], lines[i]);
		parse_bad(text, "ferry.conf line 4: '");
		parse_bad(text, "' is already set on line 2");
	}
	/* Even with the same value, and even if the first was the default. */
	parse_bad("mount home = no\nmount home = no\n", "'mount home' is already set on line 1");

	/* List keys repeat; a repeated path is harmless and kept. */
	_cleanup_(ferry_config_freep) struct ferry_config *c =
	    parse_ok("allow bind path = /a\nallow bind path = /b\nallow bind path = /a\n");
	assert_int_equal(strv_length(c->allow_bind_paths), 3);
}

static void test_list_bound(void **state)
{
	size_t cap = 4100 * 32;
	char *text = xmalloc(cap);
	size_t n = 0;
	for (unsigned i = 0; i < 4096; i++)
		n += (size_t)snprintf(text + n, cap - n, "allow bind path = /d/%u\n", i);
	struct ferry_config *c = NULL;
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_config_parse(text, n, &c, &err), 0);
	assert_int_equal(strv_length(c->allow_bind_paths), 4096);
	assert_string_equal(c->allow_bind_paths[4095], "/d/4095");
	ferry_config_freep(&c);

	n += (size_t)snprintf(text + n, cap - n, "allow bind path = /d/last\n");
	assert_int_equal(ferry_config_parse(text, n, &c, &err), -EINVAL);
	assert_string_equal(err->message, "ferry.conf line 4097: more than 4096 'allow bind path' entries");
	ferry_error_freep(&err);
	free(text);
}

static void test_size_bound(void **state)
{
	size_t len = FERRY_CONFIG_MAX + 1;
	char *text = xmalloc(len);
	memset(text, '\n', len);
	struct ferry_config *c = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_config_parse(text, len, &c, &err), -EFBIG);
	assert_null(c);
	assert_int_equal(ferry_config_parse(text, len - 1, &c, NULL), 0);
	ferry_config_freep(&c);
	free(text);
}

static void test_api_misuse(void **state)
{
	struct ferry_config *c = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_config_parse(NULL, 3, &c, &err), -EINVAL);
	assert_null(c);
	assert_int_equal(ferry_config_parse("", 0, NULL, NULL), -EINVAL);
	/* Errors without an err pointer do not crash. */
	assert_int_equal(ferry_config_parse("x = y", 5, &c, NULL), -EINVAL);
	/* The length is honoured: text beyond it is not read. */
	assert_int_equal(ferry_config_parse("mount home = no garbage", 15, &c, NULL), 0);
	assert_false(c->mount_home);
	ferry_config_freep(&c);
}

/* ---- bind_allowed ---- */

static void test_bind_allowed(void **state)
{
	_cleanup_(ferry_config_freep) struct ferry_config *c =
	    parse_ok("allow bind path = /data\nallow bind path = /srv/share\n");
	assert_true(ferry_config_bind_allowed(c, "/data", NULL));
	assert_true(ferry_config_bind_allowed(c, "/data/x", NULL));
	assert_true(ferry_config_bind_allowed(c, "/data/x/y/z", NULL));
	assert_true(ferry_config_bind_allowed(c, "/srv/share/a", NULL));
	assert_false(ferry_config_bind_allowed(c, "/data2", NULL));
	assert_false(ferry_config_bind_allowed(c, "/data2/x", NULL));
	assert_false(ferry_config_bind_allowed(c, "/dat", NULL));
	assert_false(ferry_config_bind_allowed(c, "/srv", NULL));
	assert_false(ferry_config_bind_allowed(c, "/srv/shared", NULL));
	assert_false(ferry_config_bind_allowed(c, "/", NULL));
	assert_false(ferry_config_bind_allowed(c, "/etc", NULL));
	assert_false(ferry_config_bind_allowed(c, "data/x", NULL));
	assert_false(ferry_config_bind_allowed(c, "", NULL));
	assert_false(ferry_config_bind_allowed(c, NULL, NULL));
	assert_false(ferry_config_bind_allowed(NULL, "/data", NULL));
	/* Not normalized: never allowed, whatever the prefix says. */
	assert_false(ferry_config_bind_allowed(c, "/data/../etc", NULL));
	assert_false(ferry_config_bind_allowed(c, "/data/./x", NULL));
	assert_false(ferry_config_bind_allowed(c, "/data//x", NULL));
	assert_false(ferry_config_bind_allowed(c, "/data/", NULL));
	assert_false(ferry_config_bind_allowed(c, "/data/..", NULL));

	/* Home. */
	assert_true(ferry_config_bind_allowed(c, "/home/u", "/home/u"));
	assert_true(ferry_config_bind_allowed(c, "/home/u/work", "/home/u"));
	assert_true(ferry_config_bind_allowed(c, "/home/u/work", "/home/u/"));
	assert_true(ferry_config_bind_allowed(c, "/home/u/work", "/home/u//"));
	assert_false(ferry_config_bind_allowed(c, "/home/uu", "/home/u"));
	assert_false(ferry_config_bind_allowed(c, "/home", "/home/u"));
	assert_false(ferry_config_bind_allowed(c, "/home/v", "/home/u"));
	assert_false(ferry_config_bind_allowed(c, "/etc", "/"));
	assert_false(ferry_config_bind_allowed(c, "/etc", "///"));
	assert_false(ferry_config_bind_allowed(c, "/etc", ""));
	assert_false(ferry_config_bind_allowed(c, "/home/u/x", "home/u"));
	assert_false(ferry_config_bind_allowed(c, "/home/x", "/home/u/.."));
	assert_true(ferry_config_bind_allowed(c, "/data/x", "/home/u"));

	/* An empty list allows only home. */
	_cleanup_(ferry_config_freep) struct ferry_config *d = ferry_config_defaults();
	assert_false(ferry_config_bind_allowed(d, "/data", NULL));
	assert_false(ferry_config_bind_allowed(d, "/tmp", NULL));
	assert_true(ferry_config_bind_allowed(d, "/home/u/x", "/home/u"));

	/* "/" allows every normalized absolute path. */
	_cleanup_(ferry_config_freep) struct ferry_config *r = parse_ok("allow bind path = /\n");
	assert_true(ferry_config_bind_allowed(r, "/", NULL));
	assert_true(ferry_config_bind_allowed(r, "/etc/shadow", NULL));
	assert_false(ferry_config_bind_allowed(r, "/etc/../x", NULL));
	assert_false(ferry_config_bind_allowed(r, "etc", NULL));
}

/* ---- load ---- */

static char *tmpdir;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

static int setup_dir(void **state)
{
	char tmpl[] = "/tmp/ferry-config-test.XXXXXX";
	if (!mkdtemp(tmpl))
		return -1;
	tmpdir = xstrdup(tmpl);
	return 0;
}

static int teardown_dir(void **state)
{
	if (tmpdir) {
		chmod(tmpdir, 0700);
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	free(tmpdir);
	tmpdir = NULL;
	return 0;
}

static char *write_file(const char *name, const char *text, mode_t mode)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void load_bad(const char *path, bool root, int code, const char *want)
{
	struct ferry_config *c = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_config_load(path, root, &c, &err);
	if (r >= 0)
		fail_msg("load of '%s' accepted", path);
	assert_null(c);
	assert_int_equal(r, -code);
	if (!strstr(err->message, want))
		fail_msg("message '%s' lacks '%s'", err->message, want);
}

static void test_load_ok(void **state)
{
	_cleanup_free_ char *path = write_file("ok.conf", "mount home = no\nallow bind path = /data\n", 0644);
	struct ferry_config *c = NULL;
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_config_load(path, false, &c, &err), 0);
	assert_false(c->mount_home);
	assert_string_equal(c->allow_bind_paths[0], "/data");
	ferry_config_freep(&c);

	if (geteuid() == 0) {
		/* Root-owned, 0644 and 0600 and 0444, in a root-owned 0700 dir below the sticky /tmp. */
		static const mode_t modes[] = {0644, 0600, 0444, 0755};
		for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
			assert_int_equal(chmod(path, modes[i]), 0);
			int r = ferry_config_load(path, true, &c, &err);
			if (r < 0)
				fail_msg("%s", err->message);
			assert_false(c->mount_home);
			ferry_config_freep(&c);
		}
	}
}

static void test_load_parse_error_names_file(void **state)
{
	_cleanup_free_ char *path = write_file("bad.conf", "# x\nmount home = maybe\n", 0644);
	_cleanup_free_ char *want =
	    xasprintf("%s line 2: 'mount home' must be 'yes' or 'no', not 'maybe'", path);
	load_bad(path, false, EINVAL, want);
	if (geteuid() == 0)
		load_bad(path, true, EINVAL, want);
}

static void test_load_missing(void **state)
{
	_cleanup_free_ char *path = xasprintf("%s/missing.conf", tmpdir);
	load_bad(path, false, ENOENT, "open '");
	_cleanup_free_ char *deep = xasprintf("%s/nodir/ferry.conf", tmpdir);
	load_bad(deep, false, ENOENT, "nodir");
	if (geteuid() == 0) { /* else the temporary directory, not root's, is refused first */
		load_bad(path, true, ENOENT, "No such file or directory");
		load_bad(deep, true, ENOENT, "nodir");
	}
}

static void test_load_symlink(void **state)
{
	_cleanup_free_ char *target = write_file("target.conf", "mount home = no\n", 0644);
	_cleanup_free_ char *link = xasprintf("%s/link.conf", tmpdir);
	assert_int_equal(symlink(target, link), 0);
	load_bad(link, false, ELOOP, "is a symbolic link");
	if (geteuid() == 0)
		load_bad(link, true, ELOOP, "is a symbolic link");

	/* A symlinked directory on the way is refused when ownership matters. */
	_cleanup_free_ char *realdir = xasprintf("%s/real", tmpdir);
	_cleanup_free_ char *linkdir = xasprintf("%s/linkdir", tmpdir);
	assert_int_equal(mkdir(realdir, 0755), 0);
	assert_int_equal(symlink(realdir, linkdir), 0);
	_cleanup_free_ char *inreal = write_file("real/ferry.conf", "mount tmp = no\n", 0644);
	_cleanup_free_ char *vialink = xasprintf("%s/ferry.conf", linkdir);
	struct ferry_config *c = NULL;
	assert_int_equal(ferry_config_load(vialink, false, &c, NULL), 0);
	ferry_config_freep(&c);
	if (geteuid() == 0) {
		assert_int_equal(ferry_config_load(inreal, true, &c, NULL), 0);
		ferry_config_freep(&c);
		load_bad(vialink, true, ELOOP, "(a directory above");
	}
}

static void test_load_not_regular(void **state)
{
	load_bad(tmpdir, false, EINVAL, "is not a regular file");
	load_bad("/dev/null", false, EINVAL, "'/dev/null' is not a regular file");

	/* A FIFO must not block the loader. */
	_cleanup_free_ char *fifo = xasprintf("%s/fifo.conf", tmpdir);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	load_bad(fifo, false, EINVAL, "is not a regular file");
	if (geteuid() == 0)
		load_bad(fifo, true, EINVAL, "is not a regular file");
}

static void test_load_too_big(void **state)
{
	char *text = xmalloc(FERRY_CONFIG_MAX + 2);
	memset(text, '#', FERRY_CONFIG_MAX + 1);
	text[FERRY_CONFIG_MAX + 1] = '\0';
	_cleanup_free_ char *path = write_file("big.conf", text, 0644);
	load_bad(path, false, EFBIG, "is larger than 262144 bytes");

	/* Exactly the limit is fine. */
	text[FERRY_CONFIG_MAX] = '\0';
	_cleanup_free_ char *path2 = write_file("limit.conf", text, 0644);
	struct ferry_config *c = NULL;
	assert_int_equal(ferry_config_load(path2, false, &c, NULL), 0);
	ferry_config_freep(&c);
	free(text);
}

static void test_load_permissions(void **state)
{
	if (geteuid() != 0) {
		skip();
		return;
	}
	_cleanup_free_ char *path = write_file("perm.conf", "mount home = no\n", 0644);
	_cleanup_free_ char *want = xasprintf("'%s' must be owned by root and not writable by others "
					      "(chown root: %s; chmod 644 %s)",
					      path, path, path);
	static const mode_t bad_modes[] = {0664, 0646, 0666, 0620, 0602, 0777};
	for (size_t i = 0; i < ARRAY_SIZE(bad_modes); i++) {
		assert_int_equal(chmod(path, bad_modes[i]), 0);
		load_bad(path, true, EPERM, want);
		/* Without the ownership requirement (tests, unprivileged tools) it loads. */
		struct ferry_config *c = NULL;
		assert_int_equal(ferry_config_load(path, false, &c, NULL), 0);
		ferry_config_freep(&c);
	}

	/* Owned by someone else, even read-only. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(chown(path, 65534, 0), 0);
	load_bad(path, true, EPERM, want);
	assert_int_equal(chown(path, 0, 65534), 0);
	struct ferry_config *c = NULL;
	assert_int_equal(ferry_config_load(path, true, &c, NULL), 0); /* group is irrelevant at 0644 */
	ferry_config_freep(&c);
}

static void test_load_parent_dirs(void **state)
{
	if (geteuid() != 0) {
		skip();
		return;
	}
	_cleanup_free_ char *sub = xasprintf("%s/etc", tmpdir);
	assert_int_equal(mkdir(sub, 0755), 0);
	_cleanup_free_ char *path = write_file("etc/ferry.conf", "mount home = no\n", 0644);
	struct ferry_config *c = NULL;
	assert_int_equal(ferry_config_load(path, true, &c, NULL), 0);
	ferry_config_freep(&c);

	/* A group-writable directory lets the group swap the file. */
	assert_int_equal(chmod(sub, 0775), 0);
	_cleanup_free_ char *want =
	    xasprintf("'%s' (a directory above '%s') must be owned by root", sub, path);
	load_bad(path, true, EPERM, want);
	assert_int_equal(chmod(sub, 0757), 0);
	load_bad(path, true, EPERM, want);
	/* Sticky (like /tmp): others cannot replace root's entries. */
	assert_int_equal(chmod(sub, 01777), 0);
	assert_int_equal(ferry_config_load(path, true, &c, NULL), 0);
	ferry_config_freep(&c);
	/* A directory owned by a user. */
	assert_int_equal(chmod(sub, 0755), 0);
	assert_int_equal(chown(sub, 65534, 0), 0);
	load_bad(path, true, EPERM, want);
	assert_int_equal(ferry_config_load(path, false, &c, NULL), 0);
	ferry_config_freep(&c);
	assert_int_equal(chown(sub, 0, 0), 0);

	/* Relative or unnormalized paths are refused when ownership matters. */
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(cwd >= 0);
	assert_int_equal(chdir(tmpdir), 0);
	load_bad("etc/ferry.conf", true, EINVAL, "must be absolute");
	assert_int_equal(ferry_config_load("etc/ferry.conf", false, &c, NULL), 0);
	ferry_config_freep(&c);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	_cleanup_free_ char *dotted = xasprintf("%s/etc/../etc/ferry.conf", tmpdir);
	load_bad(dotted, true, EINVAL, "must be absolute");
	_cleanup_free_ char *dbl = xasprintf("%s//etc/ferry.conf", tmpdir);
	load_bad(dbl, true, EINVAL, "must be absolute");
	load_bad("/", true, EINVAL, "must be absolute");
}

static void test_load_default_path(void **state)
{
	/* NULL means the compiled-in path; whatever the machine has, it must not crash. */
	struct ferry_config *c = NULL;
	struct ferry_error *err = NULL;
	int r = ferry_config_load(NULL, true, &c, &err);
	if (r < 0) {
		assert_null(c);
		assert_non_null(strstr(err->message, FERRY_CONFIG_PATH));
		ferry_error_freep(&err);
	} else {
		ferry_config_freep(&c);
	}
}

/* The shipped etc/ferry.conf parses, and its values are the compiled-in defaults (plus /tmp as an
 * allowed bind path), so the comments saying "DEFAULT:" tell the truth. Run from the source tree. */
static void test_shipped_config(void **state)
{
	struct ferry_config *c = NULL;
	struct ferry_error *err = NULL;
	if (access("etc/ferry.conf", R_OK) < 0) {
		skip();
		return;
	}
	if (ferry_config_load("etc/ferry.conf", false, &c, &err) < 0)
		fail_msg("%s", err->message);
	assert_int_equal(strv_length(c->allow_bind_paths), 1);
	assert_string_equal(c->allow_bind_paths[0], "/tmp");
	free(c->allow_bind_paths[0]);
	c->allow_bind_paths[0] = NULL;
	assert_defaults(c);
	ferry_config_freep(&c);
}

/* ---- drop-ins ---- */

/* tmpdir/etc/ferry.conf with @text, and an empty tmpdir/etc/ferry.conf.d; returns the conf path. */
static char *dropin_setup(const char *text)
{
	_cleanup_free_ char *etc = xasprintf("%s/etc", tmpdir);
	_cleanup_free_ char *d = xasprintf("%s/etc/ferry.conf.d", tmpdir);
	assert_int_equal(mkdir(etc, 0755), 0);
	assert_int_equal(mkdir(d, 0755), 0);
	return write_file("etc/ferry.conf", text, 0644);
}

static char *dropin(const char *name, const char *text, mode_t mode)
{
	_cleanup_free_ char *rel = xasprintf("etc/ferry.conf.d/%s", name);
	return write_file(rel, text, mode);
}

static struct ferry_config *load_ok(const char *path, bool root)
{
	struct ferry_config *c = NULL;
	struct ferry_error *err = NULL;
	if (ferry_config_load(path, root, &c, &err) < 0)
		fail_msg("load of '%s' failed: %s", path, err->message);
	return c;
}

static void test_dropin_override(void **state)
{
	_cleanup_free_ char *path = dropin_setup("mount home = no\nmax instances = 5\ncriu timeout = 30\n"
						 "allow bind path = /a\nallow bind path = /b\n");
	free(dropin("10-a.conf", "max instances = 7\nallow bind path = /c\nallow bind path = /d\n", 0644));
	free(dropin("9-b.conf", "max instances = 9\ncriu timeout = 40\n", 0644));
	/* byte order, not the locale's: 'Z' (0x5a) before 'a' (0x61) */
	free(dropin("a.conf", "criu timeout = 50\n", 0644));
	free(dropin("Z.conf", "criu timeout = 60\n", 0644));
	/* not drop-ins: hidden, other suffixes, the bare suffix */
	free(dropin(".hidden.conf", "max instances = 1\n", 0644));
	free(dropin("x.conf.bak", "garbage\n", 0644));
	free(dropin("README", "garbage\n", 0644));
	free(dropin(".conf", "garbage\n", 0644));
	for (int root = 0; root <= (geteuid() == 0); root++) {
		_cleanup_(ferry_config_freep) struct ferry_config *c = load_ok(path, root);
		assert_false(c->mount_home); /* ferry.conf's, untouched by the drop-ins */
		assert_int_equal(c->max_instances, 9); /* 10-a.conf, then 9-b.conf */
		assert_int_equal(c->criu_timeout, 50); /* ... Z.conf, then a.conf */
		/* a list set in a drop-in replaces the list, with all of that file's lines */
		assert_int_equal(strv_length(c->allow_bind_paths), 2);
		assert_string_equal(c->allow_bind_paths[0], "/c");
		assert_string_equal(c->allow_bind_paths[1], "/d");
	}
	/* without the directory, ferry.conf alone */
	_cleanup_free_ char *d = xasprintf("%s/etc/ferry.conf.d", tmpdir);
	struct stat st;
	nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	assert_int_equal(stat(d, &st), -1);
	_cleanup_(ferry_config_freep) struct ferry_config *c = load_ok(path, false);
	assert_int_equal(c->max_instances, 5);
	assert_int_equal(strv_length(c->allow_bind_paths), 2);
}

static void test_dropin_once_per_file(void **state)
{
	_cleanup_free_ char *path = dropin_setup("max instances = 5\n");
	_cleanup_free_ char *dup = dropin("30-dup.conf", "# x\nmax instances = 3\nmax instances = 4\n", 0644);
	_cleanup_free_ char *want = xasprintf("%s line 3: 'max instances' is already set on line 2", dup);
	load_bad(path, false, EINVAL, want);
	assert_int_equal(unlink(dup), 0);
	_cleanup_free_ char *bad = dropin("40-bad.conf", "\nmount home = maybe\n", 0644);
	_cleanup_free_ char *want2 = xasprintf("%s line 2: 'mount home' must be 'yes' or 'no'", bad);
	load_bad(path, false, EINVAL, want2);
	if (geteuid() == 0)
		load_bad(path, true, EINVAL, want2);
}

static void test_dropin_not_regular(void **state)
{
	_cleanup_free_ char *path = dropin_setup("");
	_cleanup_free_ char *sub = xasprintf("%s/etc/ferry.conf.d/dir.conf", tmpdir);
	assert_int_equal(mkdir(sub, 0755), 0);
	load_bad(path, false, EINVAL, "dir.conf' is not a regular file");
	assert_int_equal(rmdir(sub), 0);
	_cleanup_free_ char *fifo = xasprintf("%s/etc/ferry.conf.d/fifo.conf", tmpdir);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	load_bad(path, false, EINVAL, "fifo.conf' is not a regular file");
	assert_int_equal(unlink(fifo), 0);
	/* the directory itself a file */
	_cleanup_free_ char *d = xasprintf("%s/etc/ferry.conf.d", tmpdir);
	assert_int_equal(rmdir(d), 0);
	free(write_file("etc/ferry.conf.d", "max instances = 1\n", 0644));
	load_bad(path, false, ENOTDIR, "ferry.conf.d");
}

static void test_dropin_symlink(void **state)
{
	_cleanup_free_ char *path = dropin_setup("");
	_cleanup_free_ char *target = write_file("target.conf", "max instances = 2\n", 0644);
	_cleanup_free_ char *link = xasprintf("%s/etc/ferry.conf.d/50-link.conf", tmpdir);
	assert_int_equal(symlink(target, link), 0);
	_cleanup_free_ char *want = xasprintf("'%s' is a symbolic link", link);
	load_bad(path, false, ELOOP, want);
	if (geteuid() == 0)
		load_bad(path, true, ELOOP, want);
	assert_int_equal(unlink(link), 0);

	/* the directory a symlink to a directory of the same content */
	_cleanup_free_ char *d = xasprintf("%s/etc/ferry.conf.d", tmpdir);
	_cleanup_free_ char *real = xasprintf("%s/realdir", tmpdir);
	assert_int_equal(rmdir(d), 0);
	assert_int_equal(mkdir(real, 0755), 0);
	assert_int_equal(symlink(real, d), 0);
	_cleanup_free_ char *want2 = xasprintf("'%s' is a symbolic link", d);
	load_bad(path, false, ELOOP, want2);
	if (geteuid() == 0)
		load_bad(path, true, ELOOP, want2);
}

static void test_dropin_permissions(void **state)
{
	if (geteuid() != 0) {
		skip();
		return;
	}
	_cleanup_free_ char *path = dropin_setup("max instances = 5\n");
	_cleanup_free_ char *f = dropin("60-perm.conf", "max instances = 6\n", 0644);
	_cleanup_(ferry_config_freep) struct ferry_config *c = load_ok(path, true);
	assert_int_equal(c->max_instances, 6);
	_cleanup_free_ char *want = xasprintf("'%s' must be owned by root and not writable by others", f);
	static const mode_t bad_modes[] = {0664, 0646, 0666, 0620, 0602};
	for (size_t i = 0; i < ARRAY_SIZE(bad_modes); i++) {
		assert_int_equal(chmod(f, bad_modes[i]), 0);
		load_bad(path, true, EPERM, want);
		ferry_config_freep(&c);
		c = load_ok(path, false); /* tests and unprivileged tools do not care */
	}
	assert_int_equal(chmod(f, 0644), 0);
	assert_int_equal(chown(f, 65534, 0), 0);
	load_bad(path, true, EPERM, want);
	assert_int_equal(chown(f, 0, 0), 0);

	/* the directory: group- or other-writable (even sticky), or a user's */
	_cleanup_free_ char *d = xasprintf("%s/etc/ferry.conf.d", tmpdir);
	_cleanup_free_ char *wantd = xasprintf("'%s' must be owned by root and not writable by others", d);
	static const mode_t bad_dir_modes[] = {0775, 0757, 01777};
	for (size_t i = 0; i < ARRAY_SIZE(bad_dir_modes); i++) {
		assert_int_equal(chmod(d, bad_dir_modes[i]), 0);
		load_bad(path, true, EPERM, wantd);
	}
	assert_int_equal(chmod(d, 0755), 0);
	assert_int_equal(chown(d, 65534, 0), 0);
	load_bad(path, true, EPERM, wantd);
	assert_int_equal(chown(d, 0, 0), 0);
	ferry_config_freep(&c);
	c = load_ok(path, true);
	assert_int_equal(c->max_instances, 6);
}

static void test_dropin_limit(void **state)
{
	_cleanup_free_ char *path = dropin_setup("");
	for (unsigned i = 1; i <= FERRY_CONFIG_DROPIN_MAX; i++) {
		_cleanup_free_ char *name = xasprintf("%03u.conf", i);
		_cleanup_free_ char *text = xasprintf("max instances = %u\n", i);
		free(dropin(name, text, 0644));
	}
	/* other names do not count */
	free(dropin("zzz.conf.disabled", "", 0644));
	free(dropin(".zzz.conf", "", 0644));
	_cleanup_(ferry_config_freep) struct ferry_config *c = load_ok(path, geteuid() == 0);
	assert_int_equal(c->max_instances, FERRY_CONFIG_DROPIN_MAX);
	free(dropin("999.conf", "max instances = 1\n", 0644));
	load_bad(path, false, EMFILE, "holds more than 64 drop-in files; ferry reads at most 64");
}

/* ---- the form ferry-conf sends to the starter (config_policy.c) ---- */

/* @c encoded, decoded, and encoded again to the same bytes; the decoded copy. */
static struct ferry_config *wire_round_trip(const struct ferry_config *c)
{
	_cleanup_free_ char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	struct ferry_config *d = NULL;
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_config_encode(c, &a, &alen), 0);
	assert_true(alen > strlen(FERRY_CONFIG_WIRE_MAGIC));
	if (ferry_config_decode(a, alen, &d, &err) < 0)
		fail_msg("decode: %s", err->message);
	assert_int_equal(ferry_config_encode(d, &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	return d;
}

static void wire_bad(const void *buf, size_t len)
{
	struct ferry_config *d = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_config_decode(buf, len, &d, &err), -EPROTO);
	assert_null(d);
	assert_non_null(strstr(err->message, "ferry-conf"));
}

static void test_wire_round_trip(void **state)
{
	_cleanup_(ferry_config_freep) struct ferry_config *def = ferry_config_defaults();
	_cleanup_(ferry_config_freep) struct ferry_config *d = wire_round_trip(def);
	assert_defaults(d);

	/* every key away from its default, lists of several entries and of none */
	_cleanup_(ferry_config_freep) struct ferry_config *c =
	    parse_ok("allow setuid = no\nmount home = no\nmount tmp = no\nmount cwd = no\n"
		     "user bind control = no\nallow bind path = /data\nallow bind path = /srv/scratch\n"
		     "criu path = /opt/criu\nmem dir = /run/m\ncheckpoint dir = ~/ck\n"
		     "checkpoint staging = no\ncheckpoint staging dir = /run/st\nmax instances = 7\n"
		     "criu timeout = 9\ncriu ghost limit = 3\ncriu network = host\n"
		     "allow live migration = no\ncompress pages = no\nallow net network = a\n"
		     "allow net network = b-2\nallow net args = yes\nallow net ip range = 198.18.0.0/15\n"
		     "network parent = a:eth0\nnetwork config dir = /etc/n\ncni path = /opt/cni\n"
		     "nft path = /sbin/nft\nferryd node = n1\nferryd listen = 127.0.0.1:1\n"
		     "ferryd peer = n2=127.0.0.1:2\nferryd shared dir = /sh\nferryd tmpfs dir = /tm\n"
		     "slurm checkpoint dir = /ck\nslurm checkpoint every = 1h\nslurm keep = 5\n"
		     "slurm grace time = 30s\npeer timeout = 12\n");
	_cleanup_(ferry_config_freep) struct ferry_config *e = wire_round_trip(c);
	assert_int_equal(e->peer_timeout, 12);
	assert_false(e->allow_setuid);
	assert_false(e->criu_loopback);
	assert_int_equal(strv_length(e->allow_bind_paths), 2);
	assert_string_equal(e->allow_bind_paths[1], "/srv/scratch");
	assert_string_equal(e->checkpoint_dir, "~/ck");
	assert_int_equal(e->max_instances, 7);
	assert_int_equal(e->criu_ghost_limit, 3);
	assert_string_equal(e->network_parents[0], "a:eth0");
	assert_string_equal(e->ferryd_node, "n1");
	assert_string_equal(e->slurm_checkpoint_dir, "/ck");
	assert_int_equal(e->slurm_every, 3600);
	assert_int_equal(e->slurm_grace, 30);
	assert_true(ferry_config_ip_allowed(e, 0xc6130001u)); /* 198.19.0.1 */
	assert_false(ferry_config_ip_allowed(e, 0xc6140001u));
}

static void test_wire_bad(void **state)
{
	_cleanup_(ferry_config_freep) struct ferry_config *c = ferry_config_defaults();
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	assert_int_equal(ferry_config_encode(c, &buf, &len), 0);
	/* every cut short, one byte more, another magic */
	for (size_t n = 0; n < len; n++)
		wire_bad(buf, n);
	_cleanup_free_ char *more = xmalloc(len + 1);
	memcpy(more, buf, len);
	more[len] = 0;
	wire_bad(more, len + 1);
	more[0] = 'F';
	wire_bad(more, len);
	/* a bool that is neither 0 nor 1: "allow setuid", the first key, right after the magic */
	memcpy(more, buf, len);
	more[strlen(FERRY_CONFIG_WIRE_MAGIC)] = 2;
	wire_bad(more, len);
	/* a NUL inside a string */
	memcpy(more, buf, len);
	char *criu = memmem(more, len, "/usr/local/sbin/criu", 20);
	assert_non_null(criu);
	criu[4] = '\0';
	wire_bad(more, len);

	/* a number out of its key's range, a list longer than a file may make it */
	_cleanup_free_ char *b2 = NULL;
	c->max_instances = 0;
	assert_int_equal(ferry_config_encode(c, &b2, &len), 0);
	wire_bad(b2, len);
	c->max_instances = 64;
	for (unsigned i = 0; i <= 4096; i++)
		strv_push(&c->allow_net_networks, "n");
	_cleanup_free_ char *b3 = NULL;
	assert_int_equal(ferry_config_encode(c, &b3, &len), 0);
	wire_bad(b3, len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_key),
	    cmocka_unit_test(test_whitespace),
	    cmocka_unit_test(test_comments),
	    cmocka_unit_test(test_unknown_and_malformed),
	    cmocka_unit_test(test_booleans),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_peer_timeout),
	    cmocka_unit_test(test_criu_network),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_checkpoint_dir),
	    cmocka_unit_test(test_slurm_keys),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_list_bound),
	    cmocka_unit_test(test_size_bound),
	    cmocka_unit_test(test_api_misuse),
	    cmocka_unit_test(test_bind_allowed),
	    cmocka_unit_test(test_wire_round_trip),
	    cmocka_unit_test(test_wire_bad),
	    cmocka_unit_test_setup_teardown(test_load_ok, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_load_parse_error_names_file, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_load_missing, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_load_symlink, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_load_not_regular, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_load_too_big, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_load_permissions, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_load_parent_dirs, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_dropin_override, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_dropin_once_per_file, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_dropin_not_regular, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_dropin_symlink, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_dropin_permissions, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_dropin_limit, setup_dir, teardown_dir),
	    cmocka_unit_test(test_load_default_path),
	    cmocka_unit_test(test_shipped_config),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
