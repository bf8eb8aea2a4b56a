/* SPDX-License-Identifier: GPL-2.0-or-later */
/* deffile.h — Apptainer definition files, the subset ferry builds: "Bootstrap: debootstrap".
 *
 *   Bootstrap: debootstrap            header: "Keyword: value" lines, keywords case-insensitive,
 *   OSVersion: bookworm               '#' comment lines and blank lines ignored
 *   MirrorURL: http://deb.debian.org/debian
 *   Include: python3, less            packages, separated by spaces and/or commas
 *
 *   %post                             sections: bodies kept verbatim
 *       apt-get install -y gcc
 *   %environment / %runscript / %startscript / %test / %help / %labels / %files
 *
 * %files lines are "SRC [DST]"; %labels lines are "KEY VALUE". %setup, %pre, %arguments and the
 * %app* sections are refused (ferry does not run host-side scripts or SCIF apps). */
#ifndef FERRY_DEFFILE_H
#define FERRY_DEFFILE_H

#include "error.h"

#define FERRY_DEFFILE_MAX (1u << 20)

struct ferry_deffile_file {
	char *src;
	char *dst; /* the same as src when the line named one path */
	unsigned line;
};

struct ferry_deffile_label {
	char *key;
	char *value; /* may be "" */
};

struct ferry_deffile {
	char *bootstrap; /* "debootstrap" */
	char *os_version; /* e.g. "bookworm" */
	char *mirror_url; /* http://, https:// or file:/// URL */
	char **include; /* NULL-terminated package names, NULL when none */

	/* Section bodies, verbatim (everything after the section line up to the next section), NULL when
	 * the section is absent. */
	char *post;
	char *post_shell; /* from "%post -c /bin/bash"; NULL means /bin/sh */
	char *environment;
	char *runscript;
	char *startscript;
	char *test;
	char *help;
	char *labels_text;
	char *files_text;

	struct ferry_deffile_file *files;
	size_t n_files;
	struct ferry_deffile_label *labels; /* in order; a repeated key keeps its first place, last value */
	size_t n_labels;
};

/* Parses @len bytes of @text (no NUL bytes, at most FERRY_DEFFILE_MAX). Errors start with "line N: ". */
int ferry_deffile_parse(const char *text, size_t len, struct ferry_deffile **ret, struct ferry_error **err);
/* Reads @path (a regular file, at most FERRY_DEFFILE_MAX bytes) and parses it; *ret_text (may be NULL)
 * gets the file's bytes, NUL-terminated. */
int ferry_deffile_load(const char *path, struct ferry_deffile **ret, char **ret_text,
		       struct ferry_error **err);
void ferry_deffile_free(struct ferry_deffile *d);
static inline void ferry_deffile_freep(struct ferry_deffile **d)
{
	ferry_deffile_free(*d);
}

#endif
