/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>

#include "error.h"

__attribute__((format(printf, 4, 0))) static int vset(struct ferry_error **err, int code, bool with_errno,
						      const char *fmt, va_list ap)
{
	int ret = code > 0 ? -code : -EINVAL;
	if (!err || *err)
		return ret;
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		ferry_oom();
	if (with_errno && code > 0) {
		char *full = xasprintf("%s: %s", msg, strerror(code));
		free(msg);
		msg = full;
	}
	struct ferry_error *e = xzalloc(sizeof(*e));
	e->code = code;
	e->message = msg;
	*err = e;
	return ret;
}

int ferry_error_set(struct ferry_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int ret = vset(err, code, true, fmt, ap);
	va_end(ap);
	return ret;
}

int ferry_error_msg(struct ferry_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int ret = vset(err, code, false, fmt, ap);
	va_end(ap);
	return ret;
}

int ferry_error_wrap(struct ferry_error **err, const char *fmt, ...)
{
	if (!err || !*err)
		return -EINVAL;
	char *ctx = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&ctx, fmt, ap) < 0)
		ferry_oom();
	va_end(ap);
	char *full = xasprintf("%s: %s", ctx, (*err)->message);
	free(ctx);
	free((*err)->message);
	(*err)->message = full;
	return (*err)->code > 0 ? -(*err)->code : -EINVAL;
}

void ferry_error_free(struct ferry_error *err)
{
	if (!err)
		return;
	free(err->message);
	free(err);
}
