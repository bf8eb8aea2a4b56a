/* SPDX-License-Identifier: GPL-2.0-or-later */
/* names.h — validation of names users choose (instances, checkpoints). */
#ifndef FERRY_NAMES_H
#define FERRY_NAMES_H

#include "error.h"

#define FERRY_NAME_MAX 64

/* A name is 1..64 characters of [A-Za-z0-9_.-], starting with a letter, digit or '_'
 * (so never ".", "..", or an option-looking "-x"). @what is "instance" or "checkpoint",
 * used in the message. */
int ferry_name_check(const char *name, const char *what, struct ferry_error **err);

/* A group checkpoint's cut, as its members' generations carry it: "ID/N", ID 32 lowercase hex
 * digits (random, drawn by 'ferry checkpoint group'), N the number of members (1 to
 * FERRY_GROUP_MAX, no leading zero). */
#define FERRY_GROUP_MAX 65536
#define FERRY_GROUP_ID_LEN 32
bool ferry_group_ok(const char *v);

#endif
