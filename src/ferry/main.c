/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry — the command line. Runs as the user; privileged work goes through ferry-starter. */
#include <stdarg.h>

#include "ferry.h"

static const char usage[] =
    "Usage: ferry COMMAND [OPTIONS] ...\n"
    "\n"
    "ferry runs HPC containers that can be checkpointed, restarted and migrated with CRIU.\n"
    "\n"
    "Commands:\n"
    "  exec IMAGE CMD [ARGS...]        run a command in a container (IMAGE or instance://NAME)\n"
    "  run IMAGE [ARGS...]             run the image's runscript\n"
    "  shell IMAGE                     start an interactive shell in a container\n"
    "  instance start|list|stop        manage background instances\n"
    "  checkpoint create|list|delete|instance   checkpoint instances with CRIU\n"
    "  migrate INSTANCE --to NODE      move an instance to another node (through ferryd)\n"
    "  build OUT SRC                   build a SIF or squashfs image from a directory or definition file\n"
    "  inspect IMAGE                   show what an image is\n"
    "  version                         print the version\n"
    "\n"
    "IMAGE is a sandbox directory, a squashfs file or a SIF file, detected automatically.\n"
    "Run 'ferry COMMAND --help' for a command's options, 'man ferry' for the manual.\n";

int cli_error(struct ferry_error *err)
{
	fprintf(stderr, "ferry: %s\n", err && err->message ? err->message : "unknown error");
	ferry_error_free(err);
	return 255;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ferry: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 255;
}

bool cli_is_help(const char *arg)
{
	return arg && (streq(arg, "-h") || streq(arg, "--help"));
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} verbs[] = {
    {"exec", cmd_exec},
    {"run", cmd_run},
    {"shell", cmd_shell},
    {"instance", cmd_instance},
    {"checkpoint", cmd_checkpoint},
    {"migrate", cmd_migrate},
    {"build", cmd_build},
    {"inspect", cmd_inspect},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	const char *verb = argv[1];
	if (cli_is_help(verb) || streq(verb, "help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (streq(verb, "version") || streq(verb, "--version")) {
		printf("ferry version %s\n", FERRY_VERSION);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (streq(verb, verbs[i].name))
			return verbs[i].fn(argc - 1, argv + 1);
	return cli_fail("unknown command '%s': see 'ferry --help'", verb);
}
