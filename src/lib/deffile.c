/* SPDX-License-Identifier: GPL-2.0-or-later */
/* deffile.c — definition-file parser. See deffile.h. */
#include <ctype.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>

#include "deffile.h"

enum section {
	SEC_NONE = 0,
	SEC_POST,
	SEC_ENVIRONMENT,
	SEC_RUNSCRIPT,
	SEC_STARTSCRIPT,
	SEC_TEST,
	SEC_HELP,
	SEC_LABELS,
	SEC_FILES,
	SEC_COUNT_,
};

static const char *const section_names[SEC_COUNT_] = {
    [SEC_POST] = "post",	   [SEC_ENVIRONMENT] = "environment",
    [SEC_RUNSCRIPT] = "runscript", [SEC_STARTSCRIPT] = "startscript",
    [SEC_TEST] = "test",	   [SEC_HELP] = "help",
    [SEC_LABELS] = "labels",	   [SEC_FILES] = "files",
};

/* Sections Apptainer knows that ferry refuses: host-side scripts and SCIF apps. */
static const char *const refused_sections[] = {
    "setup",	 "pre",	     "arguments", "appinstall", "appenv",   "apphelp",
    "applabels", "appfiles", "apprun",	  "apptest",	"appstart",
};

void ferry_deffile_free(struct ferry_deffile *d)
{
	if (!d)
		return;
	free(d->bootstrap);
	free(d->os_version);
	free(d->mirror_url);
	strv_free(d->include);
	free(d->post);
	free(d->post_shell);
	free(d->environment);
	free(d->runscript);
	free(d->startscript);
	free(d->test);
	free(d->help);
	free(d->labels_text);
	free(d->files_text);
	for (size_t i = 0; i < d->n_files; i++) {
		free(d->files[i].src);
		free(d->files[i].dst);
	}
	free(d->files);
	for (size_t i = 0; i < d->n_labels; i++) {
		free(d->labels[i].key);
		free(d->labels[i].value);
	}
	free(d->labels);
	free(d);
}

static char **section_slot(struct ferry_deffile *d, enum section s)
{
	switch (s) {
	case SEC_POST:
		return &d->post;
	case SEC_ENVIRONMENT:
		return &d->environment;
	case SEC_RUNSCRIPT:
		return &d->runscript;
	case SEC_STARTSCRIPT:
		return &d->startscript;
	case SEC_TEST:
		return &d->test;
	case SEC_HELP:
		return &d->help;
	case SEC_LABELS:
		return &d->labels_text;
	case SEC_FILES:
		return &d->files_text;
	default:
		return NULL;
	}
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* A trimmed copy of [s, s+n). */
static char *trimmed(const char *s, size_t n)
{
	while (n > 0 && is_space(*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_space(s[n - 1]))
		n--;
	return xstrndup(s, n);
}

/* A printable, bounded rendering of user text for messages. */

static bool valid_os_version(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > 64 || !isalnum((unsigned char)v[0]))
		return false;
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
			return false;
	return true;
}

static bool valid_url(const char *v)
{
	if (strlen(v) > 1024)
		return false;
	if (!startswith(v, "http://") && !startswith(v, "https://") && !startswith(v, "file:///"))
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return false;
	return true;
}

/* Debian policy: lowercase letters, digits, '+', '-', '.'; at least two; starts alphanumeric. */
static bool valid_package(const char *v)
{
	size_t n = strlen(v);
	if (n < 2 || n > 128 || !(islower((unsigned char)v[0]) || isdigit((unsigned char)v[0])))
		return false;
	for (const char *p = v; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '+' && *p != '-' &&
		    *p != '.')
			return false;
	return true;
}

static int parse_include(struct ferry_deffile *d, const char *value, unsigned line, struct ferry_error **err)
{
	const char *p = value;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *start = p;
		while (*p && *p != ' ' && *p != '\t' && *p != ',')
			p++;
		if (p == start)
			break;
		_cleanup_free_ char *pkg = xstrndup(start, (size_t)(p - start));
		if (!valid_package(pkg)) {
			_cleanup_free_ char *s = ferry_shown(pkg, 40);
			return ferry_error_msg(err, EINVAL, "line %u: '%s' is not a Debian package name",
					       line, s);
		}
		strv_push(&d->include, pkg);
	}
	return 0;
}

static int header_line(struct ferry_deffile *d, const char *s, size_t n, unsigned line, unsigned seen[4],
		       struct ferry_error **err)
{
	_cleanup_free_ char *l = trimmed(s, n);
	if (l[0] == '\0' || l[0] == '#')
		return 0;
	char *colon = strchr(l, ':');
	if (!colon) {
		_cleanup_free_ char *sh = ferry_shown(l, 40);
		return ferry_error_msg(
		    err, EINVAL, "line %u: expected 'Keyword: value' before the first section, got '%s'",
		    line, sh);
	}
	_cleanup_free_ char *key = trimmed(l, (size_t)(colon - l));
	_cleanup_free_ char *value = trimmed(colon + 1, strlen(colon + 1));

	static const char *const keys[] = {"bootstrap", "osversion", "mirrorurl", "include"};
	size_t k = 0;
	while (k < ARRAY_SIZE(keys) && strcasecmp(key, keys[k]) != 0)
		k++;
	if (k == ARRAY_SIZE(keys)) {
		_cleanup_free_ char *sh = ferry_shown(key, 40);
		return ferry_error_msg(
		    err, EINVAL,
		    "line %u: header keyword '%s' is not supported (ferry knows Bootstrap, OSVersion, "
		    "MirrorURL and Include)",
		    line, sh);
	}
	if (seen[k])
		return ferry_error_msg(err, EINVAL, "line %u: '%s' appears twice (first on line %u)", line,
				       key, seen[k]);
	seen[k] = line;
	if (value[0] == '\0' && k != 3)
		return ferry_error_msg(err, EINVAL, "line %u: '%s' needs a value", line, key);

	_cleanup_free_ char *sv = ferry_shown(value, 40);
	switch (k) {
	case 0:
		if (strcasecmp(value, "debootstrap") != 0)
			return ferry_error_msg(
			    err, EINVAL,
			    "line %u: bootstrap agent '%s' is not supported (ferry builds only "
			    "'Bootstrap: debootstrap'; build other images from a directory)",
			    line, sv);
		d->bootstrap = xstrdup("debootstrap");
		return 0;
	case 1:
		if (!valid_os_version(value))
			return ferry_error_msg(err, EINVAL,
					       "line %u: '%s' is not a valid OSVersion (a release name such "
					       "as 'bookworm')",
					       line, sv);
		d->os_version = TAKE_PTR(value);
		return 0;
	case 2:
		if (!valid_url(value))
			return ferry_error_msg(
			    err, EINVAL,
			    "line %u: MirrorURL '%s' must be an http://, https:// or file:/// URL "
			    "without spaces",
			    line, sv);
		d->mirror_url = TAKE_PTR(value);
		return 0;
	default:
		return parse_include(d, value, line, err);
	}
}

/* Recognizes a section line: '%' then a name at the start of the line. Returns the section, 0 when the
 * line is no section line (text of the current section), or a negative errno with *err set. */
static int section_line(const char *s, size_t n, unsigned line, bool in_header, char **ret_args,
			struct ferry_error **err)
{
	if (n < 2 || s[0] != '%' || !isalpha((unsigned char)s[1]))
		return 0;
	size_t e = 1;
	while (e < n && (isalnum((unsigned char)s[e]) || s[e] == '_'))
		e++;
	if (e < n && !is_space(s[e]))
		return 0; /* "%foo=bar" and the like: text */
	_cleanup_free_ char *name = xstrndup(s + 1, e - 1);
	for (int i = 1; i < SEC_COUNT_; i++) {
		if (strcasecmp(name, section_names[i]) == 0) {
			*ret_args = trimmed(s + e, n - e);
			return i;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(refused_sections); i++)
		if (strcasecmp(name, refused_sections[i]) == 0)
			return ferry_error_msg(err, ENOTSUP,
					       "line %u: section '%%%s' is not supported by ferry", line,
					       refused_sections[i]);
	if (in_header) {
		_cleanup_free_ char *sh = ferry_shown(name, 40);
		return ferry_error_msg(err, EINVAL, "line %u: unknown section '%%%s'", line, sh);
	}
	return 0;
}

static bool has_dotdot(const char *path)
{
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *c = p;
		while (*p && *p != '/')
			p++;
		if (p - c == 2 && c[0] == '.' && c[1] == '.')
			return true;
	}
	return false;
}

static int files_line(struct ferry_deffile *d, const char *s, size_t n, unsigned line,
		      struct ferry_error **err)
{
	_cleanup_free_ char *l = trimmed(s, n);
	if (l[0] == '\0' || l[0] == '#')
		return 0;
	char *tok[3] = {NULL, NULL, NULL};
	size_t nt = 0;
	char *save = NULL;
	for (char *t = strtok_r(l, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (nt == 2)
			return ferry_error_msg(
			    err, EINVAL,
			    "line %u: expected 'SRC [DST]' in %%files (paths with spaces are not supported)",
			    line);
		tok[nt++] = t;
	}
	if (nt == 0)
		return 0;
	const char *dst = nt == 2 ? tok[1] : tok[0];
	if (has_dotdot(dst)) {
		_cleanup_free_ char *sh = ferry_shown(dst, 40);
		return ferry_error_msg(
		    err, EINVAL, "line %u: '..' is not allowed in the %%files destination '%s'", line, sh);
	}
	d->files = xrealloc(d->files, (d->n_files + 1) * sizeof(*d->files));
	d->files[d->n_files++] = (struct ferry_deffile_file){
	    .src = xstrdup(tok[0]),
	    .dst = xstrdup(dst),
	    .line = line,
	};
	return 0;
}

static int labels_line(struct ferry_deffile *d, const char *s, size_t n, unsigned line,
		       struct ferry_error **err)
{
	_cleanup_free_ char *l = trimmed(s, n);
	if (l[0] == '\0' || l[0] == '#')
		return 0;
	size_t k = 0;
	while (l[k] && l[k] != ' ' && l[k] != '\t')
		k++;
	_cleanup_free_ char *key = xstrndup(l, k);
	_cleanup_free_ char *value = trimmed(l + k, strlen(l + k));
	for (size_t i = 0; i < d->n_labels; i++) {
		if (streq(d->labels[i].key, key)) {
			free(d->labels[i].value);
			d->labels[i].value = TAKE_PTR(value);
			return 0;
		}
	}
	d->labels = xrealloc(d->labels, (d->n_labels + 1) * sizeof(*d->labels));
	d->labels[d->n_labels++] =
	    (struct ferry_deffile_label){.key = TAKE_PTR(key), .value = TAKE_PTR(value)};
	return 0;
}

static int section_args(struct ferry_deffile *d, enum section sec, const char *args, unsigned line,
			struct ferry_error **err)
{
	if (args[0] == '\0' || args[0] == '#')
		return 0;
	if (sec == SEC_POST && startswith(args, "-c") && (args[2] == ' ' || args[2] == '\t')) {
		_cleanup_free_ char *shell = trimmed(args + 3, strlen(args + 3));
		if (shell[0] != '/' || strpbrk(shell, " \t")) {
			_cleanup_free_ char *sh = ferry_shown(shell, 40);
			return ferry_error_msg(
			    err, EINVAL, "line %u: '%%post -c' needs an absolute interpreter path, got '%s'",
			    line, sh);
		}
		d->post_shell = TAKE_PTR(shell);
		return 0;
	}
	if (sec == SEC_FILES && startswith(args, "from"))
		return ferry_error_msg(
		    err, ENOTSUP, "line %u: multi-stage builds ('%%files from') are not supported", line);
	_cleanup_free_ char *sh = ferry_shown(args, 40);
	return ferry_error_msg(err, EINVAL, "line %u: unexpected arguments '%s' after '%%%s'", line, sh,
			       section_names[sec]);
}

/* A definition file is text, and not too large. */
static int check_text(const char *text, size_t len, struct ferry_error **err)
{
	if (len > FERRY_DEFFILE_MAX)
		return ferry_error_msg(err, EFBIG, "definition file larger than %u KiB",
				       FERRY_DEFFILE_MAX / 1024);
	const char *nul = memchr(text, '\0', len);
	if (nul) {
		unsigned line = 1;
		for (const char *p = text; p < nul; p++)
			line += *p == '\n';
		return ferry_error_msg(err, EINVAL, "line %u: NUL byte (not a text file?)", line);
	}
	return 0;
}

/* The headers a build cannot do without are there. */
static int check_headers(const struct ferry_deffile *d, struct ferry_error **err)
{
	if (!d->bootstrap)
		return ferry_error_msg(err, EINVAL,
				       "no 'Bootstrap:' header (ferry builds 'Bootstrap: debootstrap')");
	if (!d->os_version)
		return ferry_error_msg(err, EINVAL,
				       "no 'OSVersion:' header (the Debian or Ubuntu release to install, "
				       "e.g. 'OSVersion: bookworm')");
	if (!d->mirror_url)
		return ferry_error_msg(
		    err, EINVAL, "no 'MirrorURL:' header (e.g. 'MirrorURL: http://deb.debian.org/debian')");
	return 0;
}

int ferry_deffile_parse(const char *text, size_t len, struct ferry_deffile **ret, struct ferry_error **err)
{
	int r = check_text(text, len, err);
	if (r < 0)
		return r;

	_cleanup_(ferry_deffile_freep) struct ferry_deffile *d = xzalloc(sizeof(*d));
	unsigned seen_key[4] = {0};
	unsigned seen_sec[SEC_COUNT_] = {0};
	enum section cur = SEC_NONE;
	size_t body_start = 0;
	unsigned line = 0;
	size_t pos = 0;

	/* Ends the current section at @end (exclusive). */
#define CLOSE_SECTION(end)                                                                                   \
	do {                                                                                                 \
		if (cur != SEC_NONE)                                                                         \
			*section_slot(d, cur) = xstrndup(text + body_start, (end)-body_start);               \
	} while (0)

	while (pos < len) {
		line++;
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		size_t next = pos + n + (nl ? 1 : 0);

		_cleanup_free_ char *args = NULL;
		int sec = section_line(s, n, line, cur == SEC_NONE, &args, err);
		if (sec < 0)
			return sec;
		if (sec > 0) {
			if (seen_sec[sec])
				return ferry_error_msg(
				    err, EINVAL, "line %u: section '%%%s' appears twice (first on line %u)",
				    line, section_names[sec], seen_sec[sec]);
			seen_sec[sec] = line;
			r = section_args(d, (enum section)sec, args, line, err);
			if (r < 0)
				return r;
			CLOSE_SECTION(pos);
			cur = (enum section)sec;
			body_start = next;
		} else if (cur == SEC_NONE) {
			r = header_line(d, s, n, line, seen_key, err);
			if (r < 0)
				return r;
		} else if (cur == SEC_FILES) {
			r = files_line(d, s, n, line, err);
			if (r < 0)
				return r;
		} else if (cur == SEC_LABELS) {
			r = labels_line(d, s, n, line, err);
			if (r < 0)
				return r;
		}
		pos = next;
	}
	CLOSE_SECTION(len);
#undef CLOSE_SECTION

	r = check_headers(d, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(d);
	return 0;
}

int ferry_deffile_load(const char *path, struct ferry_deffile **ret, char **ret_text,
		       struct ferry_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ferry_error_set(err, errno, "open '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ferry_error_set(err, errno, "stat '%s'", path);
	if (!S_ISREG(st.st_mode))
		return ferry_error_msg(err, EINVAL, "'%s' is not a regular file", path);
	if (st.st_size > (off_t)FERRY_DEFFILE_MAX)
		return ferry_error_msg(err, EFBIG, "'%s': definition file larger than %u KiB", path,
				       FERRY_DEFFILE_MAX / 1024);

	/* Read up to one byte past the limit: the file may have grown since fstat. */
	_cleanup_free_ char *buf = xmalloc(FERRY_DEFFILE_MAX + 2);
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, FERRY_DEFFILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ferry_error_set(err, errno, "read '%s'", path);
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > FERRY_DEFFILE_MAX)
			return ferry_error_msg(err, EFBIG, "'%s': definition file larger than %u KiB", path,
					       FERRY_DEFFILE_MAX / 1024);
	}
	buf[len] = '\0';
	int r = ferry_deffile_parse(buf, len, ret, err);
	if (r < 0)
		return ferry_error_wrap(err, "definition file '%s'", path);
	if (ret_text)
		*ret_text = xstrndup(buf, len);
	return 0;
}
