/* SPDX-License-Identifier: GPL-2.0-or-later */
/* migrate.c — ferry migrate: ask this node's ferryd to move an instance to another node. */
#include <getopt.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ferry.h"
#include "names.h"
#include "proto.h"

#define FERRYD_SOCKET_NAME "ferry/ferryd"

static const char migrate_help[] =
    "Usage: ferry migrate INSTANCE --to NODE [--mode default|diskless|live] [--json]\n"
    "\n"
    "Move a running checkpointable instance (started with --criu-launch) to another node, with its\n"
    "state, its network identity and its TCP connections; it runs there as you, under the same\n"
    "name. This node's ferryd does the work with the destination's ferryd, through ferry-starter\n"
    "acting as you on both nodes.\n"
    "\n"
    "  --to NODE       the destination (a peer of this node's ferryd)\n"
    "  --mode default  checkpoint to the shared filesystem (synced), restart there (the default)\n"
    "  --mode diskless memory pages go straight into the destination's tmpfs through CRIU's page\n"
    "                  server, the rest follows over the same connection\n"
    "  --mode live     post-copy: everything but the memory moves, the instance runs on NODE at\n"
    "                  once and its pages follow (those it touches first); the frozen copy here\n"
    "                  goes once the last page is there. Until then, if NODE or the link fails,\n"
    "                  it resumes here; if THIS node dies meanwhile, the instance is lost\n"
    "  --json          the report as JSON\n"
    "\n"
    "Before anything stops, NODE is asked whether it can take the instance; it refuses with one\n"
    "line, and the instance is not touched, when its CRIU fails or is older than this node's, its\n"
    "CPU lacks what the instance may use, your uid is another user there, its ferry.conf does not\n"
    "let you join the instance's networks, its address or MAC is taken there, it has too little\n"
    "memory (or tmpfs, diskless), or the image is not there for you or is not the same file;\n"
    "live, also when its kernel or CRIU cannot serve lazy pages.\n"
    "\n"
    "The report gives the phases (request, prepare, dump, sync or transfer, restore, total), the\n"
    "downtime (from the freeze to the restored instance) and the bytes moved; live, also the\n"
    "post-copy window (running there until the copy here is let go) and the pages the instance\n"
    "asked for against those pushed. If anything fails,\n"
    "the instance runs again on this node (or never stopped) and the exit status is 255.\n"
    "See ferry-migrate(1).\n";

int connect_ferryd(void)
{
	int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path + 1, FERRYD_SOCKET_NAME, strlen(FERRYD_SOCKET_NAME));
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(FERRYD_SOCKET_NAME));
	if (sk < 0 || connect(sk, (struct sockaddr *)&a, len) < 0) {
		if (sk >= 0)
			close(sk);
		return -1;
	}
	/* the abstract name is anyone's to take: talk only to a daemon run by root */
	struct ucred c;
	socklen_t cl = sizeof(c);
	if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &c, &cl) < 0 || c.uid != 0) {
		close(sk);
		errno = EPERM;
		return -1;
	}
	return sk;
}

static void row(const char *phase, const char *v, const char *unit)
{
	if (v)
		printf("  %-12s %10s %s\n", phase, v, unit);
}

int cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"to", required_argument, NULL, 't'},
	    {"mode", required_argument, NULL, 'm'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *to = NULL, *mode = "default";
	bool json = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			to = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			return fputs(migrate_help, stdout), 0;
		default:
			return cli_fail("unknown option '%s' for 'ferry migrate': see 'ferry migrate --help'",
					argv[optind - 1]);
		}
	}
	if (optind != argc - 1 || !to)
		return cli_fail(
		    "usage: ferry migrate INSTANCE --to NODE [--mode default|diskless|live] [--json]");
	if (!streq(mode, "default") && !streq(mode, "diskless") && !streq(mode, "live"))
		return cli_fail("--mode '%s': use default, diskless or live", mode);
	const char *name = argv[optind];
	struct ferry_error *err = NULL;
	if (ferry_name_check(name, "instance", &err) < 0)
		return cli_error(err);
	int sk = connect_ferryd();
	if (sk < 0)
		return cli_fail("no ferryd on this node (%s): start it (see ferryd --help)", strerror(errno));
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "migrate");
	ferry_msg_set(&m, "instance", "%s", name);
	ferry_msg_set(&m, "to", "%s", to);
	ferry_msg_set(&m, "mode", "%s", mode);
	struct ferry_msg r = {0};
	if (ferry_msg_send(sk, &m, &err) < 0)
		return cli_error(err);
	bool tty = isatty(STDERR_FILENO) && !json;
	for (;;) {
		if (ferry_msg_recv(sk, 0, &r, &err) < 0) {
			if (tty)
				fputs("\r\033[K", stderr);
			return cli_error(err);
		}
		if (!streq(ferry_msg_get(&r, "type") ?: "", "progress"))
			break;
		if (tty)
			fprintf(stderr, "\r\033[Kferry: migrating '%s' to %s: %s...", name, to,
				ferry_msg_get(&r, "phase") ?: "");
		ferry_msg_clear(&r);
	}
	if (tty)
		fputs("\r\033[K", stderr);
	const char *type = ferry_msg_get(&r, "type");
	bool ok = type && streq(type, "report") && streq(ferry_msg_get(&r, "ok") ?: "0", "1");
	if (!ok && !ferry_msg_get(&r, "ok")) /* a refusal: --json says "ok": 0 as a failed report does */
		ferry_msg_set(&r, "ok", "0");
	if (json) {
		printf("{");
		for (size_t i = 0; i < r.n; i++) {
			bool num = strspn(r.vals[i], "-0123456789") == strlen(r.vals[i]) && *r.vals[i] &&
				   !streq(r.keys[i], "id") && !streq(r.keys[i], "instance");
			printf("%s\"%s\": %s", i ? ", " : "", r.keys[i], num ? "" : "\"");
			for (const char *p = r.vals[i]; *p; p++)
				printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
			printf("%s", num ? "" : "\"");
		}
		printf("}\n");
	}
	if (!ok) {
		const char *msg = ferry_msg_get(&r, "message");
		fprintf(stderr, "ferry: %s\n", msg ? msg : "the migration failed");
		return 255;
	}
	if (json)
		return 0;
	printf("migrated '%s': %s -> %s (%s), migration %s\n", name, ferry_msg_get(&r, "from"),
	       ferry_msg_get(&r, "to"), ferry_msg_get(&r, "mode"), ferry_msg_get(&r, "id"));
	row("request", ferry_msg_get(&r, "request_ms"), "ms");
	row("prepare", ferry_msg_get(&r, "prepare_ms"), "ms");
	row("dump", ferry_msg_get(&r, "dump_ms"), "ms");
	row("sync", ferry_msg_get(&r, "sync_ms"), "ms");
	row("transfer", ferry_msg_get(&r, "transfer_ms"), "ms");
	row("restore", ferry_msg_get(&r, "restore_ms"), "ms");
	row("total", ferry_msg_get(&r, "total_ms"), "ms");
	row("downtime", ferry_msg_get(&r, "downtime_ms"), "ms");
	row("post-copy", ferry_msg_get(&r, "postcopy_ms"), "ms");
	row("pages asked", ferry_msg_get(&r, "pages_demand"), "pages");
	row("pages pushed", ferry_msg_get(&r, "pages_pushed"), "pages");
	row("bytes moved", ferry_msg_get(&r, "bytes"), "B");
	const char *pb = ferry_msg_get(&r, "pages_bytes"), *ps = ferry_msg_get(&r, "pages_sent");
	unsigned long long plain = pb ? strtoull(pb, NULL, 10) : 0, sent = ps ? strtoull(ps, NULL, 10) : 0;
	if (plain > 0 && ps)
		printf("  %-12s %10s B of pages sent as %s B (%.2fx)\n", "compression", pb, ps,
		       (double)plain / (double)(sent ?: 1));
	return 0;
}
