/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ckspec.h — the value of Slurm's '--ferry-checkpoint=SPEC' (the SPANK plugin, src/spank/) and
 * the durations of ferry's options and ferry.conf.
 *
 * libc only, no allocation: the same code checks SPEC in sbatch/srun (inside the plugin, where
 * the user sees the error at once) and in 'ferry run' (as the user, which acts on it). */
#ifndef FERRY_CKSPEC_H
#define FERRY_CKSPEC_H

#include <stdbool.h>
#include <stddef.h>

#define FERRY_CKSPEC_MAX 256 /* bytes of SPEC */
#define FERRY_CKSPEC_NAME_MAX 64 /* as names.h's FERRY_NAME_MAX */
#define FERRY_CKSPEC_KEEP_MAX 1000
#define FERRY_CKSPEC_GRACE_MAX 86400ULL
#define FERRY_DURATION_MAX (366ULL * 86400)

/* SPEC = ITEM[,ITEM]...; ITEM = INTERVAL | 0 | default | every=INTERVAL | keep=N | name=NAME |
 * grace=DURATION. What is not given stays unset (the admin's defaults, ferry.conf(5)). */
struct ferry_ckspec {
	bool every_set; /* INTERVAL, 0 or every=: */
	unsigned long long every; /* seconds between checkpoints, 0: none */
	unsigned long long keep; /* 0: not given */
	unsigned long long grace; /* seconds before the time limit, 0: not given */
	char name[FERRY_CKSPEC_NAME_MAX + 1]; /* "": not given */
};

/* A duration: N, Ns, Nm, Nh, or a sum of them written together (1h30m, 2m30s); 1 second to 366
 * days. 0 on success, -1 when @s is not one. */
int ferry_duration_parse(const char *s, unsigned long long *ret);

/* Parses @spec into *@ret (zeroed first). On error returns -1 with a one-line message in @msg
 * (what is wrong and what to write instead), which does not name the option. */
int ferry_ckspec_parse(const char *spec, struct ferry_ckspec *ret, char *msg, size_t msglen);

#endif
