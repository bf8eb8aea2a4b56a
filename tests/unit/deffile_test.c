/* SPDX-License-Identifier: GPL-2.0-or-later */
/* deffile_test.c — the definition-file parser: good files, and bad ones with their line numbers. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "deffile.h"

static struct ferry_deffile *parse_ok(const char *text)
{
	struct ferry_deffile *d = NULL;
	struct ferry_error *err = NULL;
	int r = ferry_deffile_parse(text, strlen(text), &d, &err);
	if (r < 0)
		fail_msg("parse failed: %s", err ? err->message : "(no message)");
	assert_null(err);
	assert_non_null(d);
	return d;
}

static void expect_error(const char *text, const char *needle)
{
	struct ferry_deffile *d = NULL;
	struct ferry_error *err = NULL;
	int r = ferry_deffile_parse(text, strlen(text), &d, &err);
	if (r >= 0)
		fail_msg("accepted, expected an error containing '%s'", needle);
	assert_null(d);
	assert_non_null(err);
	if (!strstr(err->message, needle))
		fail_msg("error '%s' does not contain '%s'", err->message, needle);
	ferry_error_free(err);
}

#define HEADER "Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://deb.debian.org/debian\n"

static const char full[] = "# A full example\n"
			   "BootStrap:   DebootStrap   \n"
			   "osversion: bookworm\n"
			   "\n"
			   "MIRRORURL: https://deb.debian.org/debian\n"
			   "Include: python3, less  vim-tiny,,g++\n"
			   "  # indented comment\n"
			   "%files\n"
			   "    /etc/hosts\n"
			   "    data/input.txt /opt/input.txt\n"
			   "    # not a file\n"
			   "\n"
			   "%environment\n"
			   "    export LC_ALL=C\n"
			   "    export PATH=/opt/bin:$PATH\n"
			   "%post -c /bin/bash\n"
			   "    apt-get install -y gcc\n"
			   "printf '%s\\n' x\n"
			   "%d and %% are no sections\n"
			   "    echo done\n"
			   "%runscript\n"
			   "    exec python3 \"$@\"\n"
			   "%startscript\n"
			   "    exec server\n"
			   "%test\n"
			   "    python3 -c 'print(1)'\n"
			   "%labels\n"
			   "    Author Jane Doe <jane@example.org>\n"
			   "    Version 1.0\n"
			   "    Empty\n"
			   "    Version 2.0\n"
			   "%help\n"
			   "    Runs python.\n"
			   "%HELP_NOT_A_SECTION stays text\n";

static void test_full(void **state)
{
	struct ferry_deffile *d = parse_ok(full);
	assert_string_equal(d->bootstrap, "debootstrap");
	assert_string_equal(d->os_version, "bookworm");
	assert_string_equal(d->mirror_url, "https://deb.debian.org/debian");
	assert_non_null(d->include);
	assert_int_equal(strv_length(d->include), 4);
	assert_string_equal(d->include[0], "python3");
	assert_string_equal(d->include[1], "less");
	assert_string_equal(d->include[2], "vim-tiny");
	assert_string_equal(d->include[3], "g++");

	assert_int_equal(d->n_files, 2);
	assert_string_equal(d->files[0].src, "/etc/hosts");
	assert_string_equal(d->files[0].dst, "/etc/hosts");
	assert_int_equal(d->files[0].line, 9);
	assert_string_equal(d->files[1].src, "data/input.txt");
	assert_string_equal(d->files[1].dst, "/opt/input.txt");
	assert_int_equal(d->files[1].line, 10);
	assert_string_equal(d->files_text,
			    "    /etc/hosts\n    data/input.txt /opt/input.txt\n    # not a file\n\n");

	assert_string_equal(d->environment, "    export LC_ALL=C\n    export PATH=/opt/bin:$PATH\n");
	assert_string_equal(
	    d->post,
	    "    apt-get install -y gcc\nprintf '%s\\n' x\n%d and %% are no sections\n    echo done\n");
	assert_string_equal(d->post_shell, "/bin/bash");
	assert_string_equal(d->runscript, "    exec python3 \"$@\"\n");
	assert_string_equal(d->startscript, "    exec server\n");
	assert_string_equal(d->test, "    python3 -c 'print(1)'\n");
	assert_string_equal(d->help, "    Runs python.\n%HELP_NOT_A_SECTION stays text\n");

	assert_int_equal(d->n_labels, 3);
	assert_string_equal(d->labels[0].key, "Author");
	assert_string_equal(d->labels[0].value, "Jane Doe <jane@example.org>");
	assert_string_equal(d->labels[1].key, "Version");
	assert_string_equal(d->labels[1].value, "2.0"); /* the last value, in the first place */
	assert_string_equal(d->labels[2].key, "Empty");
	assert_string_equal(d->labels[2].value, "");
	ferry_deffile_free(d);
}

static void test_minimal(void **state)
{
	struct ferry_deffile *d = parse_ok(HEADER);
	assert_null(d->include);
	assert_null(d->post);
	assert_null(d->post_shell);
	assert_null(d->environment);
	assert_null(d->runscript);
	assert_null(d->startscript);
	assert_null(d->test);
	assert_null(d->help);
	assert_null(d->labels_text);
	assert_null(d->files_text);
	assert_int_equal(d->n_files, 0);
	assert_int_equal(d->n_labels, 0);
	ferry_deffile_free(d);

	/* No final newline; CRLF header lines; an empty section at the end; empty Include. */
	d = parse_ok(
	    "Bootstrap: debootstrap\r\nOSVersion: jammy\r\nMirrorURL: file:///srv/mirror\r\nInclude:\n"
	    "%post\n  echo a\n  echo b\n%runscript");
	assert_string_equal(d->os_version, "jammy");
	assert_string_equal(d->mirror_url, "file:///srv/mirror");
	assert_null(d->include);
	assert_string_equal(d->post, "  echo a\n  echo b\n");
	assert_string_equal(d->runscript, "");
	ferry_deffile_free(d);

	d = parse_ok(HEADER "%post\necho last");
	assert_string_equal(d->post, "echo last");
	ferry_deffile_free(d);
}

static void test_header_errors(void **state)
{
	expect_error("", "no 'Bootstrap:' header");
	expect_error("# only a comment\n", "no 'Bootstrap:' header");
	expect_error("OSVersion: bookworm\nMirrorURL: http://x/\n", "no 'Bootstrap:' header");
	expect_error(
	    "Bootstrap: docker\nFrom: ubuntu\n",
	    "line 1: bootstrap agent 'docker' is not supported (ferry builds only 'Bootstrap: debootstrap'");
	expect_error("Bootstrap: debootstrap\nMirrorURL: http://x/\n", "no 'OSVersion:' header");
	expect_error("Bootstrap: debootstrap\nOSVersion: bookworm\n", "no 'MirrorURL:' header");
	expect_error("Bootstrap: debootstrap\nFrom: debian\n",
		     "line 2: header keyword 'From' is not supported");
	expect_error("Bootstrap: debootstrap\nBootstrap: debootstrap\n",
		     "line 2: 'Bootstrap' appears twice (first on line 1)");
	expect_error("Bootstrap: debootstrap\n\nosversion: a\nOSVERSION: b\n",
		     "line 4: 'OSVERSION' appears twice (first on line 3)");
	expect_error("Bootstrap: debootstrap\nthis is not a header\n", "line 2: expected 'Keyword: value'");
	expect_error("Bootstrap:\n", "line 1: 'Bootstrap' needs a value");
	expect_error("Bootstrap: debootstrap\nOSVersion:  \n", "line 2: 'OSVersion' needs a value");
	expect_error("Bootstrap: debootstrap\nOSVersion: -rf\n", "line 2: '-rf' is not a valid OSVersion");
	expect_error("Bootstrap: debootstrap\nOSVersion: a b\n", "is not a valid OSVersion");
	expect_error("Bootstrap: debootstrap\nOSVersion: ../x\n", "is not a valid OSVersion");
	expect_error("Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: ftp://x/\n",
		     "line 3: MirrorURL 'ftp://x/' must be an http://, https:// or file:/// URL");
	expect_error("Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://a b/\n",
		     "must be an http://");
	expect_error("Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: --keyring=/x\n",
		     "must be an http://");
	expect_error(HEADER "Include: gcc, Bad\n", "line 4: 'Bad' is not a Debian package name");
	expect_error(HEADER "Include: a;rm\n", "is not a Debian package name");
	expect_error(HEADER "Include: --foo\n", "is not a Debian package name");
	expect_error(HEADER "Include: x\n", "'x' is not a Debian package name");
	/* Control characters are not echoed. */
	expect_error("Bootstrap: deboot\x1b[31mstrap\n", "bootstrap agent 'deboot\\x1b[31mstrap'");
}

static void test_section_errors(void **state)
{
	expect_error(HEADER "%setup\n  touch $ROOTFS/x\n",
		     "line 4: section '%setup' is not supported by ferry");
	expect_error(HEADER "%appinstall foo\n  make\n", "line 4: section '%appinstall' is not supported");
	expect_error(HEADER "%pre\n", "section '%pre' is not supported");
	expect_error(HEADER "%bogus\n", "line 4: unknown section '%bogus'");
	expect_error(HEADER "%post\na\n%post\nb\n",
		     "line 6: section '%post' appears twice (first on line 4)");
	expect_error(HEADER "%POST\na\n%post\nb\n", "appears twice");
	expect_error(HEADER "%runscript -c /bin/bash\n",
		     "line 4: unexpected arguments '-c /bin/bash' after '%runscript'");
	expect_error(HEADER "%post -c bash\n",
		     "line 4: '%post -c' needs an absolute interpreter path, got 'bash'");
	expect_error(HEADER "%post -x\n", "unexpected arguments '-x' after '%post'");
	expect_error(HEADER "%files from build\n", "line 4: multi-stage builds");
	expect_error(HEADER "%files\n  a b c\n", "line 5: expected 'SRC [DST]' in %files");
	expect_error(HEADER "%files\n  a /opt/../../etc/passwd\n",
		     "line 5: '..' is not allowed in the %files destination");
	expect_error(HEADER "%files\n  ../secret\n", "'..' is not allowed");
	/* A section name must stand alone on its line start. */
	struct ferry_deffile *d = parse_ok(HEADER "%post\n%post2 is text\n %post is text too\n");
	assert_string_equal(d->post, "%post2 is text\n %post is text too\n");
	ferry_deffile_free(d);
	/* Comments after a section name are allowed. */
	d = parse_ok(HEADER "%environment # set things\nexport A=1\n");
	assert_string_equal(d->environment, "export A=1\n");
	ferry_deffile_free(d);
}

static void test_limits(void **state)
{
	struct ferry_deffile *d = NULL;
	struct ferry_error *err = NULL;
	/* NUL bytes, with the line they are on */
	static const char nul[] = HEADER "%post\necho a\0b\n";
	assert_true(ferry_deffile_parse(nul, sizeof(nul) - 1, &d, &err) < 0);
	assert_string_equal(err->message, "line 5: NUL byte (not a text file?)");
	ferry_error_free(err);
	err = NULL;

	/* exactly 1 MiB is fine, one more byte is not */
	size_t n = FERRY_DEFFILE_MAX;
	_cleanup_free_ char *big = xmalloc(n + 2);
	memset(big, '#', n + 1);
	memcpy(big, HEADER "%post\n", strlen(HEADER "%post\n"));
	assert_int_equal(ferry_deffile_parse(big, n, &d, &err), 0);
	assert_int_equal(strlen(d->post), n - strlen(HEADER "%post\n"));
	ferry_deffile_free(d);
	d = NULL;
	assert_int_equal(ferry_deffile_parse(big, n + 1, &d, &err), -EFBIG);
	assert_non_null(strstr(err->message, "larger than 1024 KiB"));
	ferry_error_free(err);
	err = NULL;

	/* The text need not be NUL-terminated: parse a prefix of a longer buffer. */
	const char *two = HEADER "%post\necho one\n%runscript\necho two\n";
	size_t cut = strlen(HEADER "%post\necho one\n");
	assert_int_equal(ferry_deffile_parse(two, cut, &d, &err), 0);
	assert_string_equal(d->post, "echo one\n");
	assert_null(d->runscript);
	ferry_deffile_free(d);
}

static void test_load(void **state)
{
	char dir[] = "/tmp/deffile_test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	_cleanup_free_ char *path = xasprintf("%s/x.def", dir);
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs(full, f);
	fclose(f);

	struct ferry_deffile *d = NULL;
	struct ferry_error *err = NULL;
	char *text = NULL;
	assert_int_equal(ferry_deffile_load(path, &d, &text, &err), 0);
	assert_string_equal(text, full);
	assert_int_equal(d->n_files, 2);
	ferry_deffile_free(d);
	free(text);
	d = NULL;

	/* errors carry the path and the line */
	f = fopen(path, "we");
	fputs("Bootstrap: yum\n", f);
	fclose(f);
	assert_true(ferry_deffile_load(path, &d, NULL, &err) < 0);
	_cleanup_free_ char *want = xasprintf("definition file '%s': line 1: bootstrap agent 'yum'", path);
	assert_non_null(strstr(err->message, want));
	ferry_error_free(err);
	err = NULL;

	/* too large */
	assert_int_equal(truncate(path, FERRY_DEFFILE_MAX + 1), 0);
	assert_int_equal(ferry_deffile_load(path, &d, NULL, &err), -EFBIG);
	ferry_error_free(err);
	err = NULL;

	/* not a regular file, missing */
	assert_true(ferry_deffile_load(dir, &d, NULL, &err) < 0);
	assert_non_null(strstr(err->message, "not a regular file"));
	ferry_error_free(err);
	err = NULL;
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ferry_deffile_load(path, &d, NULL, &err), -ENOENT);
	ferry_error_free(err);
	assert_int_equal(rmdir(dir), 0);
	ferry_deffile_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full),	  cmocka_unit_test(test_minimal),
	    cmocka_unit_test(test_header_errors), cmocka_unit_test(test_section_errors),
	    cmocka_unit_test(test_limits),	  cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
