/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-conf — reads and parses the node's ferry.conf (and its drop-ins) for the setuid starter,
 * so that the starter, which runs as root, holds no parser of it.
 *
 * The starter runs it as the caller for good (no capabilities), by fd, from a binary the caller
 * may execute but not read (mode 0711): the kernel makes such a process not dumpable from its
 * exec on, so none of the caller's processes can trace it or change what it sends, while it
 * reads only files root alone can have written (ferry_config_load). On fd 1 it writes the parsed
 * configuration in the form config_policy.c decodes, or "E message" when the file is wrong; exit
 * status 0 when it sent a configuration. It takes no argument and reads nothing else. */
#include <signal.h>
#include <sys/prctl.h>

#include "config.h"
#include "dumpable.h"
#include "fs.h"
#include "util.h"

int main(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "ferry-conf is run by ferry-starter, not directly\n");
		return 2;
	}
	(void)prctl(PR_SET_NAME, "ferry-conf", 0, 0, 0); /* executed by fd, it would be "N" in ps */
	struct ferry_error *err = NULL;
	_cleanup_(ferry_config_freep) struct ferry_config *c = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (ferry_refuse_dumpable("ferry-conf", &err) == 0 &&
	    ferry_config_load(FERRY_CONFIG_PATH, true, &c, &err) == 0 &&
	    ferry_config_encode(c, &buf, &len) < 0)
		ferry_error_msg(&err, EFBIG, "the configuration is larger than ferry-conf can send");
	if (err) {
		_cleanup_free_ char *line = xasprintf("E %s\n", err->message);
		(void)ferry_write_all(STDOUT_FILENO, line, strlen(line));
		ferry_error_free(err);
		return 1;
	}
	return ferry_write_all(STDOUT_FILENO, buf, len) < 0 ? 1 : 0;
}
