/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry.h — the CLI's verbs. Each cmd_* gets argv with argv[0] = the verb name and returns the
 * process exit status. Only these functions (through main) print to the user. */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include "error.h"
#include "request.h"

struct ferry_instance;

/* Prints "ferry: MESSAGE" (and, when @hint is not NULL, the hint) to stderr; returns 1 or the
 * given status for convenient `return cli_fail(...)`. */
int cli_error(struct ferry_error *err);
/* migrate.c: a connection to this node's ferryd (a daemon of root's), or -1 with errno */
int connect_ferryd(void);
/* group.c: ferry checkpoint group */
int cmd_checkpoint_group(int argc, char **argv);
/* N of a valid group cut "ID/N" (names.h), else 0 */
unsigned group_cut_size(const char *cut);
/* group.c, for a resumable run of an MPI job (run.c): the instances of job @job, [NODE:]NAME,
 * on every node this node's ferryd knows (this node's name in *@ret_node), or on this node only
 * when it runs no ferryd (*@ret_node NULL); NULL after a message. */
char **group_job_members(const char *job, char **ret_node);
/* The members [NODE:]NAME checkpointed at one cut, the first (of this node) into @checkpoint,
 * the others into their launch checkpoints; 0, or 255 after a line naming the one that failed. */
int group_run_checkpoint(char **members, const char *checkpoint, bool leave_running);
/* The members restarted at once: the first here from @checkpoint (and @image), the others
 * [NODE:]NAME from their checkpoints NAME, on NODE; 0, or 255 after a line. */
int group_run_restart(char **members, const char *checkpoint, const char *image);
int cli_fail(const char *fmt, ...) _printf_(1, 2);
/* True when argv[i] is -h/--help. */
bool cli_is_help(const char *arg);

/* launch.c — options shared by exec/run/shell/instance start, and the way to the starter. */
struct container_opts {
	struct ferry_request req; /* filled by parse_container_opts; argv/env added by the verb */
	char **extra_env; /* --env KEY=VALUE */
	const char *criu_launch; /* instance start --criu-launch NAME */
	const char *criu_restart; /* instance start --criu-restart NAME */
	const char *page_server; /* instance start --page-server PORT */
	bool tcp_close; /* instance start --criu-restart --tcp-close */
	bool timings; /* instance start --timings: the starter's "timing" line */
	const char *node; /* instance start --node NODE: started there, through ferryd */
	struct run_opts {
		const char *checkpoint; /* run/exec --checkpoint NAME: a resumable run (run.c) */
		unsigned long long every; /* --checkpoint-every, seconds (0: none) */
		unsigned long long keep; /* --keep N complete generations (0: the default) */
		int signal; /* --checkpoint-signal (0: SIGUSR1) */
		bool requeue; /* --requeue: 'scontrol requeue' the Slurm job after that checkpoint */
		bool delete_at_end; /* --delete-at-end: remove the checkpoint when the program ends */
		bool slurm; /* set from the job's --ferry-checkpoint (slurm.c) */
		unsigned long long end_grace; /* checkpoint and stop this many seconds before the Slurm
					       * job's time limit (0: not) */
		char *owned_checkpoint; /* what checkpoint points to, when slurm.c made it */
		bool per_command; /* the name is the job's: run.c adds the command's digest to it */
	} run;
};
/* Parses the container options at the front of argv (stops at the first non-option). Returns
 * the index of the first operand, or -1 after printing an error (exit status in *ret_status),
 * or 0 with *ret_status = 0 after printing @help for --help. */
int parse_container_opts(int argc, char **argv, const char *help, struct container_opts *o, int *ret_status);
void container_opts_free(struct container_opts *o);
/* Builds the container environment (host env or --cleanenv, PATH, FERRY_*, --env). */
void build_env(struct container_opts *o, const char *image);
/* Makes @path absolute against the current directory (no symlink resolution). */
char *absolute_path(const char *path);
/* The request in a sealed memfd (what the starter reads on fd 3); -1 after printing an error. */
int request_memfd(const struct ferry_request *req);
/* Replaces this process with ferry-starter carrying @req; returns only on failure. */
int exec_starter(const struct ferry_request *req);
/* Same, with @extra_fd passed as fd 4 (a --page-server connection). */
int exec_starter_with(const struct ferry_request *req, int extra_fd);
/* instance.c: @req started on node @node by its ferryd (instance start --node); the starter's
 * exit status there, or 255 after a one-line message. */
int remote_start(const struct ferry_request *req, const char *node);
/* The same, for any request ferryd takes on another node (a start, a list): the starter's
 * stdout into *@ret_out (NUL-terminated) when @ret_out is not NULL. */
int remote_run(const struct ferry_request *req, const char *node, char **ret_out, size_t *ret_len);
/* checkpoint.c: the manifest of the current generation of the checkpoint directory @dirfd,
 * unverified (for listings and messages: the starter verifies); NULL when there is none that
 * can be read. The generation's name into @ret_gen, and an fd of it into *@ret_gfd, when not
 * NULL. */
struct ferry_manifest;
struct ferry_manifest *checkpoint_current_manifest(int dirfd, char ret_gen[64], int *ret_gfd);
/* checkpoint.c: the names in the caller's checkpoint directory (sorted; NULL after a message). */
char **checkpoint_names(void);
/* The nodes this node's ferryd knows: itself first, then its peers; NULL after a message. */
char **ferryd_nodes(void);
struct ferry_instance;
/* The caller's instances on @node (NULL: this node, through the starter; else through ferryd);
 * -1 after a message. */
int cli_list_instances_on(const char *node, struct ferry_instance ***ret);
/* The caller's instances on each of @nodes (ferryd_nodes': the first is this node), all nodes
 * asked at once: a list per node, NULL for a node that failed (after a message). Free with
 * cli_free_node_lists(ret, @nodes' count). */
struct ferry_instance ***cli_list_instances_nodes(char **nodes);
void cli_free_node_lists(struct ferry_instance ***lists, size_t n);
/* pageserver.c: the TCP ends of a --page-server transfer (the starters authenticate it). */
int page_server_connect(const char *host_port, unsigned timeout);
int page_server_accept(const char *spec, unsigned timeout);
/* Runs ferry-starter for @req and collects its stdout; returns its exit status. */
int run_starter_capture(const struct ferry_request *req, char **ret_out, size_t *ret_len);

int cmd_build(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_instance(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
/* checkpoint.c: NAME (or a path) to the checkpoint directory; NULL after an error message. */
char *checkpoint_resolve(const char *name, bool must_exist);
/* checkpoint.c: where NAME (or a path) lives, created (0700) when missing; NULL after an error. */
char *checkpoint_make_path(const char *name);
/* checkpoint.c: removes the checkpoint directory @path (through the starter for its sealed
 * generations, then the rest); 0, or the exit status after printing why not. A resumable run's
 * directory (run.c) goes with every generation in it. */
int checkpoint_remove_dir(const char *path);
/* instance.c: the caller's instances on this node (NULL-terminated); -1 after an error message. */
int cli_list_instances(struct ferry_instance ***ret);
/* instance.c: a signal name (TERM, SIGUSR1) or number; -1 when unknown. */
int cli_parse_signal(const char *s);
/* run.c: 'ferry run/exec --checkpoint NAME': run @args of @image (exec: a command, run: the
 * runscript's arguments) resumably; returns the exit status. */
int resumable_run(struct container_opts *o, const char *image, char **args, bool exec_mode);
/* run.c: true when @path is a resumable run's directory (it holds generations of its own). */
bool run_dir_is(const char *path);
/* run.c: the newest complete generation of a resumable run's directory (its number in *ret_seq),
 * NULL when none. */
char *run_dir_newest(const char *path, unsigned long long *ret_seq);
/* slurm.c: when FERRY_SLURM_CHECKPOINT is set (the SPANK plugin's --ferry-checkpoint), fills
 * what the command line left unset of @ro from it and ferry.conf's "slurm ..." keys, the
 * checkpoint's name and place included; 0, or the exit status after a one-line message. */
int slurm_run_opts(struct run_opts *ro);
/* slurm.c: scontrol from PATH (absolute entries only), NULL when there is none. */
char *slurm_scontrol(void);
/* slurm.c: 'scontrol -o show job @job', NULL when it fails. */
char *slurm_job_show(const char *scontrol, const char *job);
/* slurm.c: the nodes of the Slurm job we run in (SLURM_JOB_NODELIST, through 'scontrol show
 * hostnames'), NULL when not in a job or when they cannot be known. */
char **slurm_job_nodes(void);
/* slurm.c: the value of FIELD=value in @show (NULL-safe), NULL when absent. */
char *slurm_field(const char *show, const char *field);
/* slurm.c: seconds until the job's time limit; -1 when it has none, -2 when unknown. */
long long slurm_time_left(const char *scontrol, const char *job);
/* run.c: removes a resumable run's generations (each through the starter); 0 or exit status. */
int run_dir_remove(const char *path);

#endif
