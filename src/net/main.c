/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-net — the starter's network helper: reads the admin's CNI conflists and runs the CNI
 * plugins, so that neither JSON nor the plugins' output is parsed by the setuid starter.
 *
 * Not setuid and without file capabilities. The starter runs it by fd (the installed file,
 * checked) with a fixed environment, as uid 0 with SECBIT_NOROOT locked and no_new_privs, so
 * that it holds only the capabilities it is given as ambient ones, which the plugins inherit:
 * none for `subnets`; CAP_NET_ADMIN, CAP_SYS_ADMIN (setns into the instance's namespace) and
 * CAP_NET_RAW (iptables) for `add`, `check` and `del`. Run by anyone else it refuses at once.
 *     ferry-net subnets NETWORK
 *     ferry-net add|check|del NETWORK CONTAINER_ID IFNAME IP MAC GW    ("-": not given)
 *     ferry-net probe|probe-kept|announce IFNAME A.B.C.D  (ARP, with add's capabilities; a
 *                                        probe goes out from a temporary MAC; probe-kept is a
 *                                        restart's: its own MAC is not another host's, arp.h)
 *     ferry-net lock|unlock network|loopback NFT (the restore's lock of the instance's
 *                                                 network, with NFT, add's capabilities)
 * fd 1: the reply (struct ferry_net_reply, net.h), fd 3: the instance's network namespace,
 * fd 4: the ADD result the starter keeps for CHECK and DEL. It reads ferry.conf and the network
 * config dir and plugins it names (all root's), never its environment. */
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "arp.h"
#include "cni.h"
#include "fs.h"
#include "net.h"
#include "spawn.h"

/* The reply: the error (if any) in it, exactly once on fd 1. */
static int answer(struct ferry_net_reply *rep, struct ferry_error *err)
{
	rep->magic = FERRY_NET_REPLY_MAGIC;
	if (err) {
		rep->error = err->code > 0 && err->code < 4096 ? (uint32_t)err->code : EIO;
		snprintf(rep->message, sizeof(rep->message), "%s", err->message ? err->message : "failed");
		ferry_error_free(err);
	}
	return ferry_write_all(1, rep, sizeof(*rep)) < 0 ? 1 : 0;
}

/* fd @fd is a network namespace. */
static bool is_netns(int fd)
{
	return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

/* IP, MAC and GW ("-": none) through the same parser as the user's --network-args. */
static int args_of(char **v, struct ferry_net_args *ret, struct ferry_error **err)
{
	static const char *const keys[] = {"IP", "MAC", "GW"};
	_cleanup_free_ char *s = xstrdup("");
	for (size_t i = 0; i < 3; i++) {
		if (streq(v[i], "-"))
			continue;
		if (strchr(v[i], ';'))
			return ferry_error_msg(err, EINVAL, "bad %s '%s'", keys[i], v[i]);
		char *t = xasprintf("%s%s%s=%s", s, *s ? ";" : "", keys[i], v[i]);
		free(s);
		s = t;
	}
	return ferry_net_args_parse(s, ret, err);
}

/* add, check, del: argv[2..7] checked, then the plugins. */
static int attachment(const struct ferry_config *c, char **argv, struct ferry_net_reply *rep,
		      struct ferry_error **err)
{
	const char *verb = argv[1];
	if (!ferry_config_word_ok(argv[3], 128) || !ferry_config_word_ok(argv[4], IF_NAMESIZE - 1))
		return ferry_error_msg(err, EINVAL, "bad container id or interface name");
	bool has_netns = is_netns(FERRY_NET_FD_NETNS);
	if (!has_netns && !streq(verb, "del"))
		return ferry_error_msg(err, EINVAL, "fd %d is not a network namespace", FERRY_NET_FD_NETNS);
	struct stat st;
	if (streq(verb, "add") && (fstat(FERRY_NET_FD_RESULT, &st) < 0 || !S_ISREG(st.st_mode)))
		return ferry_error_msg(err, EINVAL, "fd %d is not a file for the result",
				       FERRY_NET_FD_RESULT);
	struct ferry_net_args a = {0};
	int r = args_of(argv + 5, &a, err);
	if (r < 0)
		return r;
	/* the plugins open the namespace themselves: each gets it as its own fd 3, a name that is
	 * the same for every call of this attachment (CHECK compares it with ADD's "sandbox") */
	const char *netns = has_netns ? "/proc/self/fd/3" : NULL;
	struct cni_call k = {.network = argv[2],
			     .container_id = argv[3],
			     .netns = netns,
			     .ifname = argv[4],
			     .args = (a.ip || a.mac || a.gw) ? &a : NULL};
	if (streq(verb, "add"))
		r = cni_add(c, &k, FERRY_NET_FD_RESULT, rep, err);
	else
		r = cni_check_del(c, streq(verb, "check") ? "CHECK" : "DEL", &k, FERRY_NET_FD_RESULT, err);
	ferry_net_args_clear(&a);
	return r;
}

/* probe, probe-kept, announce: ARP for argv[3] on argv[2] in the instance's namespace. */
static int arp(char **argv, struct ferry_net_reply *rep, struct ferry_error **err)
{
	uint32_t ip = 0;
	if (!ferry_config_word_ok(argv[2], IF_NAMESIZE - 1) || ferry_config_ipv4_parse(argv[3], &ip) < 0 ||
	    !ip)
		return ferry_error_msg(err, EINVAL, "bad interface name or address");
	if (!is_netns(FERRY_NET_FD_NETNS))
		return ferry_error_msg(err, EINVAL, "fd %d is not a network namespace", FERRY_NET_FD_NETNS);
	if (setns(FERRY_NET_FD_NETNS, CLONE_NEWNET) < 0)
		return ferry_error_set(err, errno, "join the instance's network namespace");
	enum arp_mode m = streq(argv[1], "probe")	 ? ARP_PROBE
			  : streq(argv[1], "probe-kept") ? ARP_PROBE_KEPT
							 : ARP_ANNOUNCE;
	int r = arp_run(argv[2], ip, m, 300, err);
	if (r < 0)
		return r;
	rep->claimed = r == 1;
	return 0;
}

/* While CRIU restores TCP connections, packets for them must not reach the new namespace:
 * the kernel would answer a retransmission with a reset before the socket exists. CRIU locks
 * only the namespace it dumped from (it never left the instance's), so ferry locks the new one
 * itself (CRIU's own repair packets carry SOCCR_MARK and pass) and unlocks it once the
 * restore is done. Only what comes in is held: a restored socket's own segments go out (its
 * retransmission timer runs from the moment CRIU refilled its send queue, and a retransmission
 * dropped here doubles the wait for the next one: seconds of stall after every restore), and
 * the answers to them come in (conntrack saw the segment leave: "established"). A segment that
 * no restored socket asked for, such as a peer's own retransmission before its socket exists
 * here, is still dropped. */
#define RESTORE_LOCK_TABLE "inet ferry_restore_lock"
#define SOCCR_MARK "0xc114"

/* The restart of a loopback-only instance: CRIU brings its TCP connections back one socket at a
 * time, and a segment a restored socket sends before its peer is back would be answered with a
 * reset (a full send queue, a FIN). CRIU locks connections only in the namespace it dumped them
 * from, gone by now; the lock above lets lo pass. So there a TCP segment that arrives is dropped
 * until the restore is done (TCP retransmits it then) unless it is CRIU's own (SOCCR_MARK) or
 * belongs to a connection made since, such as CRIU's probe of TCP repair (a SYN, then what
 * conntrack saw answered): a restored connection's segments are neither. */
#define LOOPBACK_LOCK_TABLE "inet ferry_loopback_lock"

static const struct lock_table {
	const char *script, *unlock, *what;
} lock_tables[2] = {
    {"table " RESTORE_LOCK_TABLE " {\n"
     "  chain in { type filter hook input priority 0; policy drop; iif lo accept; meta mark " SOCCR_MARK
     " accept; ct state established,related accept; }\n"
     "}\n",
     "delete table " RESTORE_LOCK_TABLE "\n", "lock the instance's network for the restore"},
    {"table " LOOPBACK_LOCK_TABLE " {\n"
     "  chain in {\n"
     "    type filter hook input priority 0; policy accept;\n"
     "    meta l4proto tcp ct state established,related accept\n"
     "    tcp flags & (syn | ack) == syn accept\n"
     "    meta l4proto tcp meta mark != " SOCCR_MARK " drop\n"
     "  }\n"
     "}\n",
     "delete table " LOOPBACK_LOCK_TABLE "\n", "lock the instance's loopback for the restore"},
};

/* lock, unlock: the table of argv[2] added to (or deleted from) the instance's namespace by
 * nft (argv[3], ferry.conf's 'nft path', an absolute path), run there with our capabilities,
 * the script on its stdin. */
static int lock(char **argv, struct ferry_error **err)
{
	bool loopback = streq(argv[2], "loopback");
	if ((!loopback && !streq(argv[2], "network")) || argv[3][0] != '/')
		return ferry_error_msg(err, EINVAL, "usage: ferry-net lock|unlock network|loopback NFT");
	const struct lock_table *l = &lock_tables[loopback];
	const char *script = streq(argv[1], "lock") ? l->script : l->unlock;
	char *const nft[] = {"nft", "-f", "-", NULL};
	struct ferry_spawn_opts o = {.input = script,
				     .input_len = strlen(script),
				     .netns_fd = FERRY_NET_FD_NETNS,
				     .capture_stderr = true,
				     .timeout = 30};
	int r = ferry_spawn(argv[3], nft, NULL, &o, NULL, err);
	return r < 0 ? ferry_error_wrap(err, "%s", l->what) : 0;
}

static int run(int argc, char **argv, struct ferry_net_reply *rep, struct ferry_error **err)
{
	if (argc == 4 && (streq(argv[1], "lock") || streq(argv[1], "unlock")))
		return lock(argv, err);
	if (argc == 4 &&
	    (streq(argv[1], "probe") || streq(argv[1], "probe-kept") || streq(argv[1], "announce")))
		return arp(argv, rep, err);
	bool subnets = argc == 3 && streq(argv[1], "subnets");
	bool call = argc == 8 && (streq(argv[1], "add") || streq(argv[1], "check") || streq(argv[1], "del"));
	if (!subnets && !call)
		return ferry_error_msg(err, EINVAL,
				       "usage: ferry-net subnets NETWORK | "
				       "add|check|del NETWORK ID IFNAME IP MAC GW");
	if (!ferry_config_word_ok(argv[2], 64))
		return ferry_error_msg(err, EINVAL, "bad network name");
	_cleanup_(ferry_config_freep) struct ferry_config *c = NULL;
	int r = ferry_config_load(FERRY_CONFIG_PATH, true, &c, err);
	if (r < 0)
		return r;
	if (call)
		return attachment(c, argv, rep, err);
	size_t n = 0;
	r = ferry_net_subnets(c, argv[2], rep->subnets, FERRY_NET_SUBNETS_MAX, &n, err);
	rep->n_subnets = (uint32_t)n;
	return r;
}

int main(int argc, char **argv)
{
	struct stat st;
	/* only the starter runs it: as root, its reply going into a pipe */
	if (getuid() != 0 || geteuid() != 0 || getgid() != 0 || getegid() != 0 || fstat(1, &st) < 0 ||
	    !S_ISFIFO(st.st_mode)) {
		fprintf(stderr, "ferry-net is run by ferry-starter (as root), not directly\n");
		return 2;
	}
	clearenv();
	struct ferry_net_reply rep = {0};
	struct ferry_error *err = NULL;
	(void)run(argc, argv, &rep, &err);
	return answer(&rep, err);
}
