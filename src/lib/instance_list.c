/* SPDX-License-Identifier: GPL-2.0-or-later */
/* instance_list.c — a list of instance records (instance.h), as the starter's 'instance list'
 * prints it: read by the CLI and ferryd, not linked into the setuid starter. */
#include "instance.h"

void ferry_instance_list_free(struct ferry_instance **list)
{
	for (struct ferry_instance **p = list; p && *p; p++)
		ferry_instance_free(*p);
	free(list);
}

int ferry_instance_parse_list(const char *text, size_t len, struct ferry_instance ***ret,
			      struct ferry_error **err)
{
	struct ferry_instance **list = xzalloc(sizeof(*list));
	size_t n = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *sep = memmem(p, (size_t)(end - p), "\n\n", 2);
		const char *stop = sep ? sep + 1 : end;
		if (stop > p + 1 || (stop == p + 1 && *p != '\n')) {
			struct ferry_instance *i = NULL;
			int r = ferry_instance_parse(p, (size_t)(stop - p), &i, err);
			if (r < 0) {
				ferry_instance_list_free(list);
				return r;
			}
			list = xrealloc(list, (n + 2) * sizeof(*list));
			list[n++] = i;
			list[n] = NULL;
		}
		p = sep ? sep + 2 : end;
	}
	*ret = list;
	return (int)n;
}
