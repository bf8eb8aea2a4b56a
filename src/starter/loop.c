/* SPDX-License-Identifier: GPL-2.0-or-later */
/* loop.c — attach an image (or a partition of it) to a free loop device, read-only. */
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>

#include "starter.h"

int loop_attach(int file_fd, uint64_t offset, uint64_t size, int *ret_fd, struct ferry_error **err)
{
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return ferry_error_set(err, errno, "open '/dev/loop-control' (is the loop module loaded?)");
	for (int attempt = 0; attempt < 64; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			return ferry_error_set(err, errno, "find a free loop device");
		char path[64];
		snprintf(path, sizeof(path), "/dev/loop%d", n);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return ferry_error_set(err, errno, "open '%s'", path);
		struct loop_config cfg = {
		    .fd = (unsigned)file_fd,
		    .info =
			{
			    .lo_offset = offset,
			    .lo_sizelimit = size,
			    /* AUTOCLEAR: the device frees itself when the last mount goes away, so
				 * a container that dies in any way leaves no loop device behind. */
			    .lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
			},
		};
		if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
			*ret_fd = TAKE_FD(fd);
			return 0;
		}
		if (errno != EBUSY)
			return ferry_error_set(err, errno, "attach image to '%s'", path);
		/* another process took this device between GET_FREE and CONFIGURE: try again */
	}
	return ferry_error_msg(err, EBUSY, "no free loop device after 64 attempts");
}
