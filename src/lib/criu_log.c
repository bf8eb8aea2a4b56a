/* SPDX-License-Identifier: GPL-2.0-or-later */
/* criu_log.c — what went wrong, from a CRIU log. No libcriu here: the setuid starter reads the
 * page server's log with it, and links no CRIU client code (that is ferry-criu's, src/criu/). */
#include <fcntl.h>

#include "criu.h"
#include "fs.h"

static bool harmless(const char *line)
{
	/* printed on every run here: root's bounding set lacks CAP_SYS_RESOURCE (FACTS.md); and
	 * CRIU's probe for iptables' "-w" (sh -c "iptables -w ..."), which finds no sh on its PATH
	 * (ferry locks the network with nftables, through libnftables) */
	return strstr(line, "RLIMIT_NOFILE") || strstr(line, "Unable to create tun") ||
	       strstr(line, "iptables-restore") || strstr(line, "execvp(\"sh\", ...) failed");
}

char *ferry_criu_log_errors(int fd, int max)
{
	/* (fd -1: the read below fails, and there is nothing) */
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	/* logs can be long: look at the last 256 KiB only */
	off_t size = lseek(fd, 0, SEEK_END);
	if (size > 256 * 1024)
		lseek(fd, size - 256 * 1024, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	if (ferry_read_all(fd, 512 * 1024, &buf, &len, NULL) < 0)
		return NULL;
	char *lines[16];
	int n = 0;
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *e = strstr(l, "Error (");
		if (!e || harmless(l))
			continue;
		/* the first error (usually the cause) and the last ones (where CRIU gave up) */
		if (n == max && max > 1) {
			memmove(lines + 1, lines + 2, (size_t)(max - 2) * sizeof(char *));
			n--;
		}
		if (n < max && n < (int)ARRAY_SIZE(lines))
			lines[n++] = e;
	}
	if (n == 0)
		return NULL;
	char *out = xstrdup("");
	for (int i = 0; i < n; i++) {
		char *next = xasprintf("%s%s%s", out, i ? "; " : "", lines[i]);
		free(out);
		out = next;
	}
	return out;
}

int ferry_criu_kdat_dir(char *buf, size_t n)
{
	char id[64] = "";
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t len = fd < 0 ? -1 : read(fd, id, sizeof(id) - 1);
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (len <= 0)
		return -(e ? e : EIO);
	id[strcspn(id, "\n")] = '\0';
	if (!id[0] || strspn(id, "0123456789abcdef-") != strlen(id))
		return -EINVAL;
	snprintf(buf, n, "%s/%s", FERRY_CRIU_KDAT_DIR, id);
	return 0;
}
