/* SPDX-License-Identifier: GPL-2.0-or-later */
/* util.h — cleanup attributes, ownership transfer, allocation that aborts on OOM. */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_strv_ _cleanup_(strv_freep)
#define _unused_ __attribute__((unused))
#define _noreturn_ __attribute__((noreturn))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Hand over ownership: returns the value and resets the variable. */
#define TAKE_PTR(p)                                                                                          \
	({                                                                                                   \
		__typeof__(p) _p = (p);                                                                      \
		(p) = NULL;                                                                                  \
		_p;                                                                                          \
	})
#define TAKE_FD(fd)                                                                                          \
	({                                                                                                   \
		int _fd = (fd);                                                                              \
		(fd) = -1;                                                                                   \
		_fd;                                                                                         \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

void strv_free(char **v);
static inline void strv_freep(char ***v)
{
	strv_free(*v);
}
size_t strv_length(char *const *v);
/* Whether @v (NULL-terminated, or NULL) holds a string equal to @s. */
bool strv_contains(char *const *v, const char *s);
/* Appends a copy of s; *v may be NULL. */
void strv_push(char ***v, const char *s);

_noreturn_ void ferry_oom(void);
void *xmalloc(size_t n);
void *xzalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);

static inline bool streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}
static inline bool startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Wall-clock milliseconds (CLOCK_REALTIME: comparable between nodes), for timings. */
long long ferry_now_ms(void);
/* Milliseconds of CLOCK_MONOTONIC, for deadlines (the wall clock may jump). */
long long ferry_monotonic_ms(void);
/* /proc/meminfo's @key ("MemAvailable", "MemTotal"), in bytes; UINT64_MAX when unknown. */
uint64_t ferry_meminfo(const char *key);

/* Strict decimal parsing: the whole string, no sign surprises, range-checked. */

/* Little-endian integers of wire formats and on-disk headers (request, SIF, transfer). */
static inline uint16_t ferry_get_le16(const void *p)
{
	const unsigned char *b = p;
	return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t ferry_get_le32(const void *p)
{
	const unsigned char *b = p;
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}
static inline uint64_t ferry_get_le64(const void *p)
{
	const unsigned char *b = p;
	return (uint64_t)ferry_get_le32(b) | ((uint64_t)ferry_get_le32(b + 4) << 32);
}
static inline void ferry_put_le16(void *p, uint16_t v)
{
	unsigned char *b = p;
	b[0] = (unsigned char)v;
	b[1] = (unsigned char)(v >> 8);
}
static inline void ferry_put_le32(void *p, uint32_t v)
{
	unsigned char *b = p;
	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

/* A copy of @s safe to print on a terminal or in a log: bytes outside printable ASCII become \xNN,
 * quotes and backslashes are escaped, and a string longer than @max is cut with "...". */
char *ferry_shown(const char *s, size_t max);
int parse_uint64(const char *s, unsigned long long max, unsigned long long *ret);

#endif
