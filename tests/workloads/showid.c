/* SPDX-License-Identifier: GPL-2.0-or-later */
/* showid — prints the process's real and effective ids and whether it can become root.
 * Built statically by the integration tests (tests/lib/common.bash) and put into images
 * setuid root, to check that ferry's mounts are nosuid: "ruid=R euid=E setuid0=ok|fail". */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	uid_t r = getuid(), e = geteuid();
	int ok = setuid(0) == 0;
	printf("ruid=%u euid=%u setuid0=%s\n", (unsigned)r, (unsigned)e, ok ? "ok" : "fail");
	return 0;
}
