/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tmp.h — the container's private /tmp, kept with the checkpoint (tmp.c). */
#ifndef FERRY_CRIU_TMP_H
#define FERRY_CRIU_TMP_H

#include "error.h"

/* Writes FERRY_CRIU_TMP_ARCHIVE into @images from the container's /tmp. */
int ferry_criu_tmp_save(int images, struct ferry_error **err);
/* Unpacks FERRY_CRIU_TMP_ARCHIVE from @images into the container's (empty) /tmp. */
int ferry_criu_tmp_restore(int images, struct ferry_error **err);

#endif
