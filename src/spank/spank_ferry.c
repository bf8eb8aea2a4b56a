/* SPDX-License-Identifier: GPL-2.0-or-later */
/* spank_ferry.c — Slurm's '--ferry-checkpoint=SPEC' (sbatch, salloc, srun): a job whose
 * 'ferry run' and 'ferry exec' are resumable without options of their own (ferry-slurm(7)).
 *
 * The plugin only carries the user's word from the submission to the job, and does nothing
 * with privilege:
 *   - sbatch, salloc, srun (the user's own process): registers the option and checks SPEC, so
 *     that a bad value stops the submission with one line saying why;
 *   - slurmstepd (root): registers the option, and its callback returns at once: nothing of
 *     the user's is parsed, opened or run as root;
 *   - the task, after slurmstepd made it the user for good (setreuid) and before it execs the
 *     job: copies SPEC into the task's environment as FERRY_SLURM_CHECKPOINT.
 * 'ferry run' reads that variable as the user, with the administrator's defaults of ferry.conf
 * (the plugin reads no file); the checkpoint before the time limit, the requeue and the
 * periodic checkpoints are ferry's (src/ferry/slurm.c). */
#include <string.h>

#include <slurm/spank.h>

#include "ckspec.h"

#define ENV_NAME "FERRY_SLURM_CHECKPOINT"
/* The copy of the option that sbatch keeps in the job's environment under a SLURM_ name: with
 * '--export=NONE' Slurm passes only SLURM_* variables, and the option's own variable (which
 * spank_option_getopt reads) is not among them. */
#define JOB_ENV_COPY "SLURM_SPANK__SLURM_SPANK_OPTION_ferry_ferry_checkpoint"

/* what Slurm looks up in the plugin; everything else stays hidden (-fvisibility=hidden) */
#pragma GCC visibility push(default)
SPANK_PLUGIN(ferry, 1);
int slurm_spank_init(spank_t sp, int ac, char **av);
int slurm_spank_task_init(spank_t sp, int ac, char **av);
#pragma GCC visibility pop

static int check_spec(int val, const char *optarg, int remote);

static struct spank_option option = {
    .name = "ferry-checkpoint",
    .arginfo = "SPEC",
    .usage = "make this job's 'ferry run' and 'ferry exec' resumable: checkpointed before the time "
	     "limit and at preemption, requeued, resumed. SPEC: INTERVAL (30m; 0: none), default, "
	     "keep=N, name=NAME, grace=DURATION, comma-separated (man ferry-slurm)",
    .has_arg = 1,
    .val = 0,
    .cb = check_spec,
};

static int check_spec(int val, const char *optarg, int remote)
{
	if (remote)
		return 0; /* slurmstepd, as root: the task takes it (slurm_spank_task_init) */
	struct ferry_ckspec c;
	char msg[512];
	if (ferry_ckspec_parse(optarg, &c, msg, sizeof(msg)) == 0)
		return 0;
	slurm_error("--ferry-checkpoint: %s (see 'man ferry-slurm')", msg);
	return -1;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();
	if (ctx != S_CTX_LOCAL && ctx != S_CTX_ALLOCATOR && ctx != S_CTX_REMOTE)
		return 0;
	spank_err_t e = spank_option_register(sp, &option);
	if (e != ESPANK_SUCCESS) {
		slurm_error("spank_ferry: cannot register --ferry-checkpoint: %s", spank_strerror(e));
		return -1;
	}
	return 0;
}

/* In the task, as the user (slurmstepd's exec_task, after its permanent drop). */
int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	char *arg = NULL, copy[512];
	if (spank_option_getopt(sp, &option, &arg) != ESPANK_SUCCESS || !arg) {
		if (spank_getenv(sp, JOB_ENV_COPY, copy, sizeof(copy)) != ESPANK_SUCCESS)
			return 0;
		arg = copy; /* checked again by ferry, which reads it as the user */
	}
	spank_err_t e = spank_setenv(sp, ENV_NAME, arg, 1);
	if (e != ESPANK_SUCCESS) {
		slurm_error("spank_ferry: cannot set %s: %s", ENV_NAME, spank_strerror(e));
		return -1;
	}
	return 0;
}
