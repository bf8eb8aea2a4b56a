/* SPDX-License-Identifier: GPL-2.0-or-later */
/* exec.c — ferry exec, run and shell. */
#include "ferry.h"

#define OPTIONS_HELP                                                                                           \
	"Options:\n"                                                                                           \
	"  -B, --bind SRC[:DST[:ro|rw]]  bind a host path into the container (repeatable, or comma-\n"         \
	"                                separated); users may bind paths under their home and the\n"          \
	"                                'allow bind path' entries of ferry.conf\n"                            \
	"  -c, --contain                 do not bind $HOME, the current directory and /tmp; give the\n"        \
	"                                container a private /tmp (and an empty $HOME)\n"                      \
	"      --private-tmp             a private /tmp instead of the host's (a tmpfs of the container);\n"   \
	"                                a checkpointable instance's checkpoints keep what it holds\n"         \
	"  -e, --cleanenv                do not pass the host environment (only HOME, USER, TERM, LANG...)\n"  \
	"      --env KEY=VALUE           set a variable inside (repeatable); FERRYENV_KEY=VALUE on the host\n" \
	"                                does the same\n"                                                      \
	"      --pwd DIR                 working directory inside (default: the current directory when\n"      \
	"                                it is visible inside, else $HOME, else /)\n"                          \
	"      --hostname NAME           the container's hostname (own UTS namespace)\n"                       \
	"      --no-home                 do not bind $HOME\n"                                                  \
	"  -h, --help                    show this help\n"

#define RESUME_HELP                                                                                           \
	"Resumable runs (run and exec):\n"                                                                    \
	"      --checkpoint NAME         run resumably with checkpoint NAME (a name, or a path with a '/',\n" \
	"                                e.g. on a shared filesystem): resume from its newest complete\n"     \
	"                                generation if it has one, else start\n"                              \
	"      --checkpoint-every INTERVAL  also checkpoint every INTERVAL (90s, 30m, 2h, 1h30m), the\n"      \
	"                                program left running\n"                                              \
	"      --keep N                  keep the newest N complete generations (default 2)\n"                \
	"      --checkpoint-signal SIG   the signal that checkpoints and stops the run (default USR1, as\n"   \
	"                                sent by 'sbatch --signal=B:USR1@SECONDS'); TERM and INT do too\n"    \
	"      --requeue                 after that checkpoint, 'scontrol requeue' the Slurm job\n"           \
	"      --delete-at-end           delete the checkpoint when the program ends by itself\n"             \
	"      --net, --network NAME[,NAME], --network-args ARGS  the instance's own network, as for\n"       \
	"                                'ferry instance start' (an MPI job's mpirun: ferry-mpi(7))\n"        \
	"  The program runs in a checkpointable instance 'run-NAME'; its output is copied to ferry's.\n"      \
	"  Exit status: the program's when it ends by itself (128+N when signal N killed it); 75 when\n"      \
	"  it was checkpointed and stopped (run the same command again to resume: the options of the\n"       \
	"  first start are kept); 255 with a one-line message when ferry itself failed.\n"                    \
	"  An MPI job whose mpirun starts its daemons with ferry-rsh is checkpointed whole, every\n"          \
	"  daemon's instance at one cut, and resumed whole (see 'man ferry-mpi').\n"                          \
	"  In a Slurm job with '--ferry-checkpoint' (FERRY_SLURM_CHECKPOINT set) run and exec are\n"          \
	"  resumable without these options: see 'man ferry-slurm'.\n"

#define ABOUT                                                                                                \
	"The container has its own mount, pid, ipc and uts namespaces; inside, you are yourself (same\n"     \
	"uid, gid and groups) with no capabilities and no_new_privs. The image is mounted read-only.\n"      \
	"IMAGE is a sandbox directory, a squashfs file or a SIF file.\n"

static const char exec_help[] =
    "Usage: ferry exec [OPTIONS] IMAGE COMMAND [ARGS...]\n"
    "       ferry exec [OPTIONS] instance://NAME COMMAND [ARGS...]\n"
    "\n"
    "Run COMMAND in a new container made from IMAGE, or inside the running instance NAME.\n"
    "The exit status is COMMAND's (128+N when killed by signal N; 255 for ferry's own errors).\n\n" ABOUT
    "\n" OPTIONS_HELP "\n" RESUME_HELP "\n"
    "Examples:\n"
    "  ferry exec lammps.sif lmp -in in.lj\n"
    "  ferry exec -B /data/run1:/work --pwd /work image.sif ./simulate\n"
    "  ferry exec instance://job1 ps\n"
    "  ferry exec --checkpoint sim --checkpoint-every 10m image.sif ./simulate\n";

static const char run_help[] =
    "Usage: ferry run [OPTIONS] IMAGE [ARGS...]\n"
    "\n"
    "Run the image's runscript (/.singularity.d/runscript, from %runscript in its definition file)\n"
    "with ARGS, after sourcing /.singularity.d/env/*.sh. Without a runscript, run ARGS, or a shell.\n\n" ABOUT
    "\n" OPTIONS_HELP "\n" RESUME_HELP "\n"
    "Examples:\n"
    "  ferry run lammps.sif -in in.lj\n"
    "  ferry run --checkpoint lj --checkpoint-every 30m --keep 2 lammps.sif -in in.lj\n"
    "  exec ferry run --checkpoint lj --requeue lammps.sif -in in.lj   # in an sbatch script, with\n"
    "                                      # #SBATCH --signal=B:USR1@300 --requeue --open-mode=append\n";

static const char shell_help[] =
    "Usage: ferry shell [OPTIONS] IMAGE\n"
    "\n"
    "Start an interactive /bin/sh in a new container made from IMAGE.\n\n" ABOUT "\n" OPTIONS_HELP;

static const char run_wrapper[] =
    "for f in /.singularity.d/env/*.sh; do [ -r \"$f\" ] && . \"$f\"; done\n"
    "if [ -x /.singularity.d/runscript ]; then exec /.singularity.d/runscript \"$@\"; fi\n"
    "if [ $# -gt 0 ]; then exec \"$@\"; fi\n"
    "exec /bin/sh\n";

enum mode { MODE_EXEC, MODE_RUN, MODE_SHELL };

static int run_verb(int argc, char **argv, enum mode mode)
{
	const char *help = mode == MODE_EXEC ? exec_help : mode == MODE_RUN ? run_help : shell_help;
	_cleanup_(container_opts_free) struct container_opts o = {0};
	int status = 0;
	int i = parse_container_opts(argc, argv, help, &o, &status);
	if (i <= 0)
		return status;
	if (i >= argc)
		return cli_fail("missing IMAGE: see 'ferry %s --help'", argv[0]);
	const char *image = argv[i++];
	if (mode == MODE_EXEC && i >= argc)
		return cli_fail("missing COMMAND after '%s': see 'ferry exec --help'", image);
	if (mode == MODE_SHELL && i < argc)
		return cli_fail("'ferry shell' takes no command: use 'ferry exec %s %s'", image, argv[i]);

	/* in a Slurm job with --ferry-checkpoint (the SPANK plugin), a resumable run by default */
	if (mode != MODE_SHELL && !startswith(image, "instance://")) {
		int st = slurm_run_opts(&o.run);
		if (st != 0)
			return st;
	}
	if ((o.req.flags & FERRY_REQ_NET) && !o.run.checkpoint)
		return cli_fail("--net, --network and --network-args belong to a resumable run's instance "
				"(--checkpoint NAME) and to 'ferry instance start'");
	if (o.run.checkpoint) {
		if (startswith(image, "instance://"))
			return cli_fail("--checkpoint makes a container of its own: give an IMAGE, not '%s'",
					image);
		return resumable_run(&o, image, argv + i, mode == MODE_EXEC);
	}
	if (startswith(image, "instance://")) {
		if (mode != MODE_EXEC)
			return cli_fail(
			    "'ferry %s' needs an image; use 'ferry exec instance://NAME CMD' for instances",
			    argv[0]);
		if (o.req.n_binds || o.req.hostname ||
		    (o.req.flags & (FERRY_REQ_CONTAIN | FERRY_REQ_PRIVATE_TMP)))
			return cli_fail("--bind, --contain, --private-tmp and --hostname apply when a "
					"container is created, not to instance://");
		o.req.op = FERRY_OP_INSTANCE_JOIN;
		o.req.instance = xstrdup(image + strlen("instance://"));
		build_env(&o, NULL);
	} else {
		o.req.op = FERRY_OP_EXEC;
		o.req.image = absolute_path(image);
		build_env(&o, o.req.image);
	}
	if (mode == MODE_EXEC) {
		for (; i < argc; i++)
			strv_push(&o.req.argv, argv[i]);
	} else if (mode == MODE_RUN) {
		strv_push(&o.req.argv, "/bin/sh");
		strv_push(&o.req.argv, "-c");
		strv_push(&o.req.argv, run_wrapper);
		strv_push(&o.req.argv, "ferry-run");
		for (; i < argc; i++)
			strv_push(&o.req.argv, argv[i]);
	} else {
		strv_push(&o.req.argv, "/bin/sh");
		char **e = o.req.env;
		strv_push(&e, "PS1=Ferry> ");
		o.req.env = e;
	}
	return exec_starter(&o.req);
}

int cmd_exec(int argc, char **argv)
{
	return run_verb(argc, argv, MODE_EXEC);
}

int cmd_run(int argc, char **argv)
{
	return run_verb(argc, argv, MODE_RUN);
}

int cmd_shell(int argc, char **argv)
{
	return run_verb(argc, argv, MODE_SHELL);
}
