/* SPDX-License-Identifier: GPL-2.0-or-later */
/* net_test.c — what users may ask of a network (issue 11, F9): MACs, the network's subnets from
 * its conflist, and the address rules (prefix, network/broadcast address, gateway). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "net.h"

/* 198.18.0.0/16 (no gateway) and 198.19.1.0/24 with its gateway .1 */
static const struct ferry_net_subnet SUBS[] = {
    {.net = 0xc6120000, .prefix = 16},
    {.net = 0xc6130100, .prefix = 24, .gw = 0xc6130101},
};

/* ferry_net_check_address with IP @ip and GW @gw on SUBS: 0, or the error's message in @msg. */
static int check(const char *ip, const char *gw, char msg[512])
{
	struct ferry_net_args a = {.ip = (char *)ip, .gw = (char *)gw};
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_net_check_address("ftmac", SUBS, ARRAY_SIZE(SUBS), &a, &err);
	snprintf(msg, 512, "%s", err ? err->message : "");
	if (r == 0)
		assert_null(err);
	return r;
}

static void assert_refused(const char *ip, const char *gw, const char *says)
{
	char msg[512];
	if (check(ip, gw, msg) == 0)
		fail_msg("IP=%s GW=%s accepted", ip ? ip : "-", gw ? gw : "-");
	if (!strstr(msg, says))
		fail_msg("IP=%s GW=%s: '%s' lacks '%s'", ip ? ip : "-", gw ? gw : "-", msg, says);
}

static void test_mac_parse(void **state)
{
	uint8_t b[6];
	assert_int_equal(ferry_net_mac_parse("02:00:C6:12:01:fe", b), 0);
	assert_memory_equal(b, ((uint8_t[]){2, 0, 0xc6, 0x12, 1, 0xfe}), 6);
	assert_int_equal(ferry_net_mac_parse("02:00:c6:12:01", b), -EINVAL);
	assert_int_equal(ferry_net_mac_parse("02:00:c6:12:01:fe:", b), -EINVAL);
	assert_int_equal(ferry_net_mac_parse("02-00-c6-12-01-fe", b), -EINVAL);
	assert_int_equal(ferry_net_mac_parse("02:00:c6:12:01:g0", b), -EINVAL);
	assert_int_equal(ferry_net_mac_parse("+2:00:c6:12:01:00", b), -EINVAL);
	/* the syntax check of --network-args: unicast, not zero */
	struct ferry_net_args a = {0};
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_net_args_parse("MAC=01:00:5e:00:00:01", &a, &err), -EINVAL);
	ferry_error_free(TAKE_PTR(err));
	assert_int_equal(ferry_net_args_parse("MAC=00:00:00:00:00:00", &a, &err), -EINVAL);
	ferry_error_free(TAKE_PTR(err));
	assert_int_equal(ferry_net_args_parse("IP=198.18.1.5/16;MAC=02:00:c6:12:01:05", &a, &err), 0);
	ferry_net_args_clear(&a);
}

static void test_address_ok(void **state)
{
	char msg[512];
	assert_int_equal(check("198.18.1.10/16", NULL, msg), 0);
	assert_int_equal(check("198.18.0.2/16", "198.18.0.3", msg), 0);
	assert_int_equal(check("198.18.255.254/16", NULL, msg), 0);
	assert_int_equal(check("198.19.1.2/24", "198.19.1.1", msg), 0);
	assert_int_equal(check(NULL, "198.19.1.1", msg), 0);
	assert_int_equal(check(NULL, NULL, msg), 0);
}

static void test_prefix(void **state)
{
	assert_refused("198.18.1.10/1", NULL,
		       "network 'ftmac' is 198.18.0.0/16, so its prefix must be /16 (IP=198.18.1.10/16)");
	assert_refused("198.18.1.10/24", NULL, "prefix must be /16");
	assert_refused("198.18.1.10/32", NULL, "prefix must be /16");
	assert_refused("198.19.1.10/16", NULL, "prefix must be /24");
	assert_refused("10.0.0.1/8", NULL, "is not on network 'ftmac' (198.18.0.0/16, 198.19.1.0/24)");
	assert_refused("198.18.1.10", NULL, "must be A.B.C.D/PREFIX");
}

static void test_network_broadcast_gateway(void **state)
{
	assert_refused("198.18.0.0/16", NULL, "is the network address of network 'ftmac' (198.18.0.0/16)");
	assert_refused("198.18.255.255/16", NULL, "is the broadcast address");
	assert_refused("198.19.1.0/24", NULL, "network address");
	assert_refused("198.19.1.255/24", NULL, "broadcast address");
	assert_refused("198.19.1.1/24", NULL, "is the gateway of network 'ftmac'");
	assert_refused("198.18.1.10/16", "198.19.1.1",
		       "gateway '198.19.1.1' is not on network 'ftmac' (198.18.0.0/16)");
	assert_refused("198.18.1.10/16", "198.18.255.255", "broadcast address");
	assert_refused("198.18.1.10/16", "198.18.1.10", "the instance's own address");
	assert_refused(NULL, "10.0.0.1", "is not on network");
	/* a /31 or /32 has neither a network nor a broadcast address */
	static const struct ferry_net_subnet p2p[] = {{.net = 0xc6120a00, .prefix = 31}};
	struct ferry_net_args a = {.ip = "198.18.10.0/31"};
	assert_int_equal(ferry_net_check_address("p2p", p2p, 1, &a, NULL), 0);
	a.ip = "198.18.10.1/31";
	assert_int_equal(ferry_net_check_address("p2p", p2p, 1, &a, NULL), 0);
}

static void test_no_subnet(void **state)
{
	struct ferry_net_args a = {.ip = "198.18.1.10/16"};
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_net_check_address("ftmac", NULL, 0, &a, &err), -EPERM);
	assert_non_null(strstr(err->message, "declares no subnet"));
	assert_non_null(strstr(err->message, "\"subnet\": \"A.B.C.D/P\" to the ipam of ftmac.conflist"));
	/* nothing chosen: nothing to check */
	struct ferry_net_args none = {.mac = "02:00:00:00:00:01"};
	assert_int_equal(ferry_net_check_address("ftmac", NULL, 0, &none, NULL), 0);
}

/* A network directory with conflists, for ferry_net_subnets and the whole policy. The
 * conflists must be root's: only as root. */
static char netdir[] = "/tmp/ferry-net-test.XXXXXX";

static void put(const char *name, const char *text)
{
	_cleanup_free_ char *path = xasprintf("%s/%s.conflist", netdir, name);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ferry_write_all(fd, text, strlen(text)), 0);
}

static int dir_setup(void **state)
{
	if (geteuid() != 0)
		return 0;
	if (!mkdtemp(netdir))
		return -1;
	put("st",
	    "{\"cniVersion\":\"1.0.0\",\"name\":\"st\",\"plugins\":[{\"type\":\"macvlan\","
	    "\"ipam\":{\"type\":\"static\",\"subnet\":\"198.18.7.9/16\",\"gateway\":\"198.18.0.254\"}}]}");
	put("hl",
	    "{\"cniVersion\":\"1.0.0\",\"name\":\"hl\",\"plugins\":[{\"type\":\"bridge\",\"ipam\":"
	    "{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":\"198.19.1.0/24\"},"
	    "{\"subnet\":\"198.19.2.0/25\",\"gateway\":\"198.19.2.100\"}]]}}, {\"type\":\"firewall\"}]}");
	put("none", "{\"cniVersion\":\"1.0.0\",\"name\":\"none\",\"plugins\":[{\"type\":\"macvlan\","
		    "\"ipam\":{\"type\":\"static\"}}]}");
	put("bad", "{\"cniVersion\":\"1.0.0\",\"name\":\"bad\",\"plugins\":[{\"type\":\"macvlan\","
		   "\"ipam\":{\"type\":\"static\",\"subnet\":\"198.18.0.0\"}}]}");
	return 0;
}

static int dir_teardown(void **state)
{
	if (geteuid() != 0)
		return 0;
	const char *names[] = {"st", "hl", "none", "bad"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s.conflist", netdir, names[i]);
		unlink(p);
	}
	rmdir(netdir);
	return 0;
}

static void test_subnets_of_conflists(void **state)
{
	if (geteuid() != 0)
		skip();
	struct ferry_config c = {.network_dir = netdir};
	struct ferry_net_subnet s[FERRY_NET_SUBNETS_MAX];
	size_t n = 0;
	assert_int_equal(ferry_net_subnets(&c, "st", s, ARRAY_SIZE(s), &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].net, 0xc6120000); /* masked */
	assert_int_equal(s[0].prefix, 16);
	assert_int_equal(s[0].gw, 0xc61200fe);
	assert_int_equal(ferry_net_subnets(&c, "hl", s, ARRAY_SIZE(s), &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_int_equal(s[0].gw, 0xc6130101); /* host-local's default: the first address */
	assert_int_equal(s[1].prefix, 25);
	assert_int_equal(s[1].gw, 0xc6130264);
	assert_int_equal(ferry_net_subnets(&c, "none", s, ARRAY_SIZE(s), &n, NULL), 0);
	assert_int_equal(n, 0);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_net_subnets(&c, "bad", s, ARRAY_SIZE(s), &n, &err), -EINVAL);
	assert_non_null(strstr(err->message, "network 'bad'"));
	ferry_error_free(TAKE_PTR(err));
	assert_int_equal(ferry_net_subnets(&c, "hl", s, 1, &n, &err), -EINVAL);
}

/* The policy a user meets, end to end: @s parsed as --network-args on @network; @kept: as a
 * restart's identity whose IP and MAC the network's IPAM chose (its GW is the user's), on a node
 * whose users may choose only from 10.0.0.0/8. */
static int policy_of(const char *network, const char *s, bool kept, char msg[512])
{
	char *nets[] = {(char *)network, NULL};
	char *ranges[] = {kept ? "10.0.0.0/8" : "198.18.0.0/15", NULL};
	char *allowed[] = {"st", "hl", "none", NULL};
	struct ferry_config c = {.network_dir = netdir,
				 .allow_net_args = true,
				 .allow_net_ranges = ranges,
				 .allow_net_networks = allowed};
	struct ferry_net_args a = {0};
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_net_args_parse(s, &a, &err);
	a.ipam_ip = a.ipam_mac = kept;
	if (r == 0)
		r = ferry_net_check_policy(&c, 1000, nets, &a, kept, &err);
	snprintf(msg, 512, "%s", err ? err->message : "");
	ferry_net_args_clear(&a);
	return r;
}

/* @s as a restart's identity whose IP (@ipam_ip) or MAC (@ipam_mac) the network chose, the rest
 * the user's, on a node whose users may choose (@args) from 198.18.1.0/24. */
static int policy_chosen(const char *s, bool ipam_ip, bool ipam_mac, bool args, char msg[512])
{
	char *nets[] = {"st", NULL};
	char *ranges[] = {"198.18.1.0/24", NULL};
	char *allowed[] = {"st", NULL};
	struct ferry_config c = {.network_dir = netdir,
				 .allow_net_args = args,
				 .allow_net_ranges = ranges,
				 .allow_net_networks = allowed};
	struct ferry_net_args a = {0};
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_net_args_parse(s, &a, &err);
	a.ipam_ip = ipam_ip;
	a.ipam_mac = ipam_mac;
	if (r == 0)
		r = ferry_net_check_policy(&c, 1000, nets, &a, true, &err);
	snprintf(msg, 512, "%s", err ? err->message : "");
	ferry_net_args_clear(&a);
	return r;
}

static int policy(const char *network, const char *s, char msg[512])
{
	return policy_of(network, s, false, msg);
}

static void test_policy(void **state)
{
	if (geteuid() != 0)
		skip();
	char msg[512];
	assert_int_equal(policy("st", "IP=198.18.1.10/16;MAC=02:00:c6:12:01:0a", msg), 0);
	assert_int_equal(policy("st", "MAC=0a:00:c6:12:01:0a", msg), 0);
	assert_int_equal(policy("hl", "IP=198.19.2.1/25", msg), 0);
	assert_int_equal(policy("none", "MAC=02:00:c6:12:01:0a", msg), 0);
	assert_int_equal(policy("st", "IP=198.18.1.10/1", msg), -EINVAL);
	assert_non_null(strstr(msg, "prefix must be /16"));
	assert_int_equal(policy("st", "IP=198.18.0.254/16", msg), -EINVAL);
	assert_non_null(strstr(msg, "gateway"));
	assert_int_equal(policy("st", "IP=198.18.0.0/16", msg), -EINVAL);
	assert_int_equal(policy("hl", "IP=198.19.2.100/25", msg), -EINVAL);
	assert_int_equal(policy("none", "IP=198.18.1.10/16", msg), -EPERM);
	assert_non_null(strstr(msg, "declares no subnet"));
	/* the ranges come first, as before */
	assert_int_equal(policy("st", "IP=10.0.0.1/8", msg), -EPERM);
	assert_non_null(strstr(msg, "outside the ranges"));
	/* globally administered MACs are network cards' */
	assert_int_equal(policy("st", "MAC=00:16:3e:12:01:0a", msg), -EPERM);
	assert_non_null(strstr(msg, "locally administered"));
	/* root may */
	char *nets[] = {"none", NULL};
	struct ferry_config c = {.network_dir = netdir};
	struct ferry_net_args a = {.ip = "10.0.0.0/1", .mac = "00:16:3e:12:01:0a"};
	assert_int_equal(ferry_net_check_policy(&c, 0, nets, &a, false, NULL), 0);
}

/* A restart's identity (kept) that the network's IPAM chose: the networks still open to users and
 * the address on today's subnets; what users may choose (args, ranges, MAC kind) does not apply. */
static void test_policy_kept(void **state)
{
	if (geteuid() != 0)
		skip();
	char msg[512];
	assert_int_equal(policy_of("st", "IP=198.18.1.10/16;MAC=00:16:3e:12:01:0a", true, msg), 0);
	assert_int_equal(policy_of("hl", "IP=198.19.2.1/25", true, msg), 0);
	assert_int_equal(policy_of("st", "IP=198.19.1.10/24", true, msg), -EPERM);
	assert_string_equal(msg, "network 'st' on this node does not have the address kept from the "
				 "instance's checkpoint (IP=198.19.1.10/24; its subnets: 198.18.0.0/16): "
				 "restart it on a node whose network has that address, or ask your admin");
	/* the prefix, the network and broadcast addresses, the gateway: the same words */
	const char *refused[][2] = {{"st", "IP=198.18.1.10/24"},
				    {"st", "IP=198.18.255.255/16"},
				    {"st", "IP=198.18.0.254/16"},
				    {"hl", "IP=198.19.1.0/24"},
				    {"hl", "IP=198.19.1.5/24;GW=10.0.0.1"},
				    {"none", "IP=198.18.1.10/16"}};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		assert_int_equal(policy_of(refused[i][0], refused[i][1], true, msg), -EPERM);
		assert_non_null(strstr(msg, "does not have the address kept from the instance's checkpoint"));
	}
	assert_non_null(strstr(msg, "IP=198.18.1.10/16; its subnets: none declared"));
	assert_int_equal(policy_of("hl", "IP=198.19.1.5/24;GW=10.0.0.1", true, msg), -EPERM);
	assert_non_null(
	    strstr(msg, "(IP=198.19.1.5/24;GW=10.0.0.1; its subnets: 198.19.1.0/24, 198.19.2.0/25)"));
	/* a network closed to users stays closed */
	assert_int_equal(policy_of("closed", "IP=198.18.1.10/16", true, msg), -EPERM);
	assert_non_null(strstr(msg, "network 'closed' is not open to users"));
}

/* A restart's identity the user chose (and one from a checkpoint that does not say who chose it,
 * which counts as the user's): this node's 'allow net args', 'allow net ip range' and the MAC rule
 * apply to it, as to a start's, and the one line says it was kept and what to do. */
static void test_policy_kept_chosen(void **state)
{
	if (geteuid() != 0)
		skip();
	char msg[512];
	const char *id = "IP=198.18.1.10/16;MAC=02:00:c6:12:01:0a";
	assert_int_equal(policy_chosen(id, false, false, true, msg), 0);
	assert_int_equal(policy_chosen(id, false, false, false, msg), -EPERM);
	assert_string_equal(msg, "IP=198.18.1.10/16;MAC=02:00:c6:12:01:0a, kept from the instance's "
				 "checkpoint, was chosen with --network-args at launch, and here "
				 "--network-args is not allowed for users on this node ('allow net args' in "
				 "ferry.conf): restart it on a node that lets users choose it, or ask your "
				 "admin");
	/* the IP the network's, the MAC the user's: only the MAC counts as a choice */
	assert_int_equal(policy_chosen(id, true, false, false, msg), -EPERM);
	assert_non_null(strstr(msg, "MAC=02:00:c6:12:01:0a, kept from"));
	assert_null(strstr(msg, "IP="));
	assert_int_equal(policy_chosen(id, true, true, false, msg), 0);
	/* out of the users' ranges here: the IP the user's, the gateway (always the user's) */
	assert_int_equal(policy_chosen("IP=198.18.2.10/16", false, true, true, msg), -EPERM);
	assert_string_equal(msg, "IP=198.18.2.10/16, kept from the instance's checkpoint, was chosen "
				 "with --network-args at launch, and here address '198.18.2.10/16' is "
				 "outside the ranges users may ask for ('allow net ip range' in "
				 "ferry.conf): restart it on a node that lets users choose it, or ask your "
				 "admin");
	assert_int_equal(policy_chosen("IP=198.18.2.10/16", true, true, true, msg), 0);
	assert_int_equal(policy_chosen("IP=198.18.2.10/16;GW=198.18.2.1", true, true, true, msg), -EPERM);
	assert_non_null(strstr(msg, "gateway '198.18.2.1' is outside the ranges"));
	/* a globally administered MAC the user chose (a launch refuses it; an older one did not) */
	assert_int_equal(policy_chosen("MAC=00:16:3e:12:01:0a", true, false, true, msg), -EPERM);
	assert_non_null(strstr(msg, "locally administered"));
	assert_int_equal(policy_chosen("MAC=00:16:3e:12:01:0a", true, true, true, msg), 0);
	/* a chosen address that passes the ranges still meets today's subnet */
	assert_int_equal(policy_chosen("IP=198.18.1.10/24", false, false, true, msg), -EPERM);
	assert_non_null(strstr(msg, "does not have the address kept from the instance's checkpoint"));
}

/* A ferry-net stand-in for ferry_net_reply_read: writes a valid reply, then @extra (a byte more),
 * @hang (keeps its pipe and never ends) or exits with @status. */
static pid_t fake_net(int fd[2], bool reply, bool extra, bool hang, int status)
{
	assert_int_equal(pipe2(fd, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ferry_net_reply r = {.magic = FERRY_NET_REPLY_MAGIC};
		if (reply && write(fd[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(99);
		if (extra && write(fd[1], "x", 1) != 1)
			_exit(99);
		while (hang)
			pause();
		_exit(status);
	}
	close(fd[1]);
	return pid;
}

/* ferry-net's reply is read within the time given, and so is its end after it: one that keeps
 * its pipe open after replying is killed and reported, not waited for. */
static void test_reply_read(void **state)
{
	(void)state;
	struct ferry_net_reply rep;
	int fd[2];
	alarm(30); /* a reader that waits for ever ends this test (SIGALRM), not the whole run's hang */
	struct {
		bool reply, extra, hang;
		int status, want;
		const char *msg;
	} cases[] = {
	    {true, false, false, 0, 0, NULL},
	    {true, true, false, 0, -EPROTO, "said more than its reply"},
	    {true, false, false, 3, -EPROTO, "failed after its reply"},
	    {false, false, false, 3, -EIO, "gave no reply"},
	    {true, false, true, 0, -ETIMEDOUT, "did not end within 1 s of its reply"},
	    {false, false, true, 0, -EIO, "gave no reply"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_error_ struct ferry_error *err = NULL;
		pid_t pid = fake_net(fd, cases[i].reply, cases[i].extra, cases[i].hang, cases[i].status);
		time_t t0 = time(NULL);
		assert_int_equal(ferry_net_reply_read(pid, fd[0], 1, &rep, &err), cases[i].want);
		assert_true(time(NULL) - t0 <= 3);
		close(fd[0]);
		if (cases[i].msg)
			assert_non_null(strstr(err->message, cases[i].msg));
		/* reaped: nothing of it is left */
		assert_int_equal(kill(pid, 0), -1);
	}
	alarm(0);
}

/* What the starter takes from ferry-net: exactly one reply, its numbers in range. */
static void test_reply_check(void **state)
{
	struct ferry_net_reply r = {.magic = FERRY_NET_REPLY_MAGIC,
				    .n_subnets = 1,
				    .subnets = {{.net = 0xc6120000, .prefix = 16}},
				    .ip = 0xc6120105,
				    .prefix = 16,
				    .mac = {2, 0, 0xc6, 0x12, 1, 5},
				    .has_mac = 1};
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_net_reply_check(&r, sizeof(r), NULL), 0);
	assert_int_equal(ferry_net_reply_check(&r, sizeof(r) - 1, NULL), -EPROTO);
	struct ferry_net_reply bad = r;
	bad.magic++;
	assert_int_equal(ferry_net_reply_check(&bad, sizeof(bad), NULL), -EPROTO);
	bad = r;
	memset(bad.message, 'x', sizeof(bad.message)); /* no NUL */
	assert_int_equal(ferry_net_reply_check(&bad, sizeof(bad), NULL), -EPROTO);
	bad = r;
	bad.n_subnets = FERRY_NET_SUBNETS_MAX + 1;
	assert_int_equal(ferry_net_reply_check(&bad, sizeof(bad), NULL), -EPROTO);
	bad = r;
	bad.subnets[0].net = 0xc6120001; /* not masked */
	assert_int_equal(ferry_net_reply_check(&bad, sizeof(bad), NULL), -EPROTO);
	bad = r;
	bad.subnets[0].prefix = 33;
	assert_int_equal(ferry_net_reply_check(&bad, sizeof(bad), NULL), -EPROTO);
	bad = r;
	bad.prefix = 0; /* an address without its prefix */
	assert_int_equal(ferry_net_reply_check(&bad, sizeof(bad), NULL), -EPROTO);
	bad = r;
	bad.mac[0] = 1; /* multicast */
	assert_int_equal(ferry_net_reply_check(&bad, sizeof(bad), NULL), -EPROTO);
	/* ferry-net's own error, its control characters shown harmless */
	bad = r;
	bad.error = EPERM;
	snprintf(bad.message, sizeof(bad.message), "no\x1b[2Jway");
	assert_int_equal(ferry_net_reply_check(&bad, sizeof(bad), &err), -EPERM);
	assert_string_equal(err->message, "no?[2Jway");
	_cleanup_free_ char *cidr = ferry_net_cidr_str(0xc6120105, 16);
	_cleanup_free_ char *mac = ferry_net_mac_str(r.mac);
	assert_string_equal(cidr, "198.18.1.5/16");
	assert_string_equal(mac, "02:00:c6:12:01:05");
}

static void test_node_claims(void **state)
{
	char ifname[IF_NAMESIZE] = "";
	assert_int_equal(ferry_net_node_claims(NULL, 0x7f000001, ifname, NULL), 1);
	assert_string_equal(ifname, "lo");
	static const uint8_t nobody[6] = {0x02, 0xfe, 0xed, 0x00, 0x00, 0x01};
	assert_int_equal(ferry_net_node_claims(nobody, 0xc613fffe, ifname, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mac_parse),
	    cmocka_unit_test(test_address_ok),
	    cmocka_unit_test(test_prefix),
	    cmocka_unit_test(test_network_broadcast_gateway),
	    cmocka_unit_test(test_no_subnet),
	    cmocka_unit_test(test_subnets_of_conflists),
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_policy_kept),
	    cmocka_unit_test(test_policy_kept_chosen),
	    cmocka_unit_test(test_node_claims),
	    cmocka_unit_test(test_reply_check),
	    cmocka_unit_test(test_reply_read),
	};
	return cmocka_run_group_tests(tests, dir_setup, dir_teardown);
}
