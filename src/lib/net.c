/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <json-c/json.h>
#include <linux/if_packet.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "fs.h"
#include "instance.h"
#include "net.h"
#include "spawn.h"

#define CONFLIST_MAX (256 * 1024)
#define PLUGIN_TIMEOUT 60

void ferry_net_args_clear(struct ferry_net_args *a)
{
	free(a->ip);
	free(a->mac);
	free(a->gw);
	memset(a, 0, sizeof(*a));
}

int ferry_net_mac_parse(const char *s, uint8_t ret[6])
{
	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 17; i++) {
		char c = s[i];
		if (i % 3 == 2 ? c != ':' : !isxdigit((unsigned char)c))
			return -EINVAL;
	}
	for (size_t i = 0; i < 6; i++)
		ret[i] = (uint8_t)strtoul(s + 3 * i, NULL, 16);
	return 0;
}

static bool mac_ok(const char *m)
{
	static const uint8_t zero[6] = {0};
	uint8_t b[6];
	return ferry_net_mac_parse(m, b) == 0 && !(b[0] & 1) && memcmp(b, zero, 6) != 0; /* unicast */
}

int ferry_net_args_parse(const char *s, struct ferry_net_args *ret, struct ferry_error **err)
{
	struct ferry_net_args a = {0};
	_cleanup_free_ char *copy = xstrdup(s);
	char *save = NULL;
	for (char *kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			ferry_net_args_clear(&a);
			return ferry_error_msg(
			    err, EINVAL, "--network-args '%s': expected KEY=VALUE pairs joined by ';'", s);
		}
		*eq = '\0';
		const char *k = kv, *v = eq + 1;
		uint32_t ip = 0;
		unsigned prefix = 0;
		char **slot = NULL;
		if (streq(k, "IP")) {
			if (ferry_config_cidr_parse(v, &ip, &prefix) < 0 || prefix == 0 || prefix > 32) {
				ferry_net_args_clear(&a);
				return ferry_error_msg(err, EINVAL,
						       "--network-args: IP '%s' must be A.B.C.D/PREFIX", v);
			}
			slot = &a.ip;
		} else if (streq(k, "MAC")) {
			if (!mac_ok(v)) {
				ferry_net_args_clear(&a);
				return ferry_error_msg(
				    err, EINVAL,
				    "--network-args: MAC '%s' must be a unicast xx:xx:xx:xx:xx:xx", v);
			}
			slot = &a.mac;
		} else if (streq(k, "GW")) {
			if (ferry_config_ipv4_parse(v, &ip) < 0) {
				ferry_net_args_clear(&a);
				return ferry_error_msg(err, EINVAL, "--network-args: GW '%s' must be A.B.C.D",
						       v);
			}
			slot = &a.gw;
		} else {
			ferry_net_args_clear(&a);
			return ferry_error_msg(err, EINVAL,
					       "--network-args: unknown key '%s' (use IP, MAC and GW)", k);
		}
		if (*slot) {
			ferry_net_args_clear(&a);
			return ferry_error_msg(err, EINVAL, "--network-args: '%s' given twice", k);
		}
		*slot = xstrdup(v);
	}
	*ret = a;
	return 0;
}

int ferry_net_names_parse(const char *s, char ***ret, struct ferry_error **err)
{
	char **names = NULL;
	_cleanup_free_ char *copy = xstrdup(s);
	char *save = NULL;
	for (char *n = strtok_r(copy, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
		if (!ferry_config_word_ok(n, 64)) {
			strv_free(names);
			return ferry_error_msg(
			    err, EINVAL, "--network '%s': network names are letters, digits, '_', '.', '-'",
			    n);
		}
		if (strv_length(names) >= FERRY_NET_MAX) {
			strv_free(names);
			return ferry_error_msg(err, EINVAL, "--network: at most %d networks", FERRY_NET_MAX);
		}
		strv_push(&names, n);
	}
	if (!names)
		return ferry_error_msg(err, EINVAL, "--network: no network named");
	*ret = names;
	return 0;
}

static int check_user_args(const struct ferry_config *c, const char *network, const struct ferry_net_args *a,
			   struct ferry_error **err)
{
	uint32_t ip = 0;
	if (a->ip && (ferry_config_cidr_parse(a->ip, &ip, NULL) < 0 || !ferry_config_ip_allowed(c, ip)))
		return ferry_error_msg(
		    err, EPERM,
		    "address '%s' is outside the ranges users may ask for ('allow net ip range' in ferry.conf)",
		    a->ip);
	if (a->gw && (ferry_config_ipv4_parse(a->gw, &ip) < 0 || !ferry_config_ip_allowed(c, ip)))
		return ferry_error_msg(err, EPERM, "gateway '%s' is outside the ranges users may ask for",
				       a->gw);
	uint8_t mac[6];
	/* a globally administered MAC is some network card's: on the wire it would take that
	 * card's traffic (a router's, another node's), which nothing on this node can see */
	if (a->mac && (ferry_net_mac_parse(a->mac, mac) < 0 || !(mac[0] & 2)))
		return ferry_error_msg(err, EPERM,
				       "MAC '%s' must be locally administered (its first byte with bit 0x02 "
				       "set, e.g. 02:xx:xx:xx:xx:xx), or leave MAC out to get one",
				       a->mac);
	if (!a->ip && !a->gw)
		return 0;
	struct ferry_net_subnet subs[FERRY_NET_SUBNETS_MAX];
	size_t n = 0;
	int r = ferry_net_subnets(c, network, subs, ARRAY_SIZE(subs), &n, err);
	if (r < 0)
		return r;
	return ferry_net_check_address(network, subs, n, a, err);
}

int ferry_net_check_policy(const struct ferry_config *c, uid_t uid, char **networks,
			   const struct ferry_net_args *a, struct ferry_error **err)
{
	if (uid == 0)
		return 0;
	for (char **n = networks; n && *n; n++)
		if (!ferry_config_network_allowed(c, *n))
			return ferry_error_msg(
			    err, EPERM,
			    "network '%s' is not open to users on this node (ask your admin: "
			    "'allow net network' in ferry.conf)",
			    *n);
	if (!a->ip && !a->mac && !a->gw)
		return 0;
	if (!c->allow_net_args)
		return ferry_error_msg(
		    err, EPERM,
		    "--network-args is not allowed for users on this node ('allow net args' in ferry.conf)");
	/* the arguments are for the first network (the others get theirs from their IPAM) */
	return check_user_args(c, networks && networks[0] ? networks[0] : "bridge", a, err);
}

static uint32_t mask_of(unsigned prefix)
{
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

static void ipv4_str(uint32_t a, char buf[INET_ADDRSTRLEN])
{
	snprintf(buf, INET_ADDRSTRLEN, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static const struct ferry_net_subnet *subnet_of(const struct ferry_net_subnet *subs, size_t n, uint32_t addr)
{
	for (size_t i = 0; i < n; i++)
		if ((addr & mask_of(subs[i].prefix)) == subs[i].net)
			return &subs[i];
	return NULL;
}

/* "A.B.C.D/P, ..." */
static char *subnets_str(const struct ferry_net_subnet *subs, size_t n)
{
	char *s = xstrdup("");
	for (size_t i = 0; i < n; i++) {
		char a[INET_ADDRSTRLEN];
		ipv4_str(subs[i].net, a);
		char *t = xasprintf("%s%s%s/%u", s, i ? ", " : "", a, subs[i].prefix);
		free(s);
		s = t;
	}
	return s;
}

/* @what ("address", "gateway") @addr must be a host of @sub: not its network or broadcast
 * address (a /31 or /32 has neither). */
static int check_host(const char *network, const struct ferry_net_subnet *sub, uint32_t addr,
		      const char *what, const char *given, struct ferry_error **err)
{
	if (sub->prefix >= 31)
		return 0;
	uint32_t bcast = sub->net | ~mask_of(sub->prefix);
	if (addr != sub->net && addr != bcast)
		return 0;
	_cleanup_free_ char *net = subnets_str(sub, 1);
	return ferry_error_msg(err, EINVAL,
			       "%s '%s' is the %s address of network '%s' (%s): choose a host address in it",
			       what, given, addr == sub->net ? "network" : "broadcast", network, net);
}

static int check_ip(const char *network, const struct ferry_net_subnet *subs, size_t n, const char *ip,
		    const struct ferry_net_subnet **ret_sub, uint32_t *ret_addr, struct ferry_error **err)
{
	uint32_t addr = 0;
	unsigned prefix = 0;
	if (ferry_config_cidr_parse(ip, &addr, &prefix) < 0)
		return ferry_error_msg(err, EINVAL, "--network-args: IP '%s' must be A.B.C.D/PREFIX", ip);
	const struct ferry_net_subnet *sub = subnet_of(subs, n, addr);
	_cleanup_free_ char *all = subnets_str(sub ? sub : subs, sub ? 1 : n);
	if (!sub)
		return ferry_error_msg(err, EPERM,
				       "address '%s' is not on network '%s' (%s): choose one there", ip,
				       network, all);
	char a[INET_ADDRSTRLEN];
	ipv4_str(addr, a);
	if (prefix != sub->prefix)
		return ferry_error_msg(
		    err, EINVAL, "address '%s': network '%s' is %s, so its prefix must be /%u (IP=%s/%u)", ip,
		    network, all, sub->prefix, a, sub->prefix);
	int r = check_host(network, sub, addr, "address", ip, err);
	if (r < 0)
		return r;
	if (sub->gw && addr == sub->gw)
		return ferry_error_msg(err, EINVAL,
				       "address '%s' is the gateway of network '%s': choose another address",
				       ip, network);
	*ret_sub = sub;
	*ret_addr = addr;
	return 0;
}

int ferry_net_check_address(const char *network, const struct ferry_net_subnet *subs, size_t n,
			    const struct ferry_net_args *a, struct ferry_error **err)
{
	if (!a->ip && !a->gw)
		return 0;
	if (n == 0)
		return ferry_error_msg(
		    err, EPERM,
		    "network '%s' declares no subnet, so its addresses cannot be chosen (ask "
		    "your admin to add \"subnet\": \"A.B.C.D/P\" to the ipam of %s.conflist)",
		    network, network);
	const struct ferry_net_subnet *sub = NULL;
	uint32_t ip = 0, gw = 0;
	if (a->ip) {
		int r = check_ip(network, subs, n, a->ip, &sub, &ip, err);
		if (r < 0)
			return r;
	}
	if (!a->gw)
		return 0;
	if (ferry_config_ipv4_parse(a->gw, &gw) < 0)
		return ferry_error_msg(err, EINVAL, "--network-args: GW '%s' must be A.B.C.D", a->gw);
	const struct ferry_net_subnet *gsub = subnet_of(subs, n, gw);
	if (!gsub || (sub && gsub != sub)) {
		_cleanup_free_ char *all = subnets_str(sub ? sub : subs, sub ? 1 : n);
		return ferry_error_msg(err, EPERM,
				       "gateway '%s' is not on network '%s' (%s): give one of its addresses",
				       a->gw, network, all);
	}
	int r = check_host(network, gsub, gw, "gateway", a->gw, err);
	if (r < 0)
		return r;
	if (a->ip && gw == ip)
		return ferry_error_msg(
		    err, EINVAL, "gateway '%s' is the instance's own address: give the network's router",
		    a->gw);
	return 0;
}

void ferry_net_attachment_clear(struct ferry_net_attachment *att)
{
	ferry_net_mac_release(&att->mac_lock);
	free(att->network);
	free(att->ifname);
	free(att->result);
	free(att->ip);
	free(att->mac);
	memset(att, 0, sizeof(*att));
}

/* The conflist of @network: root's, not writable by others, its "name" the file's. */
static int load_conflist(const struct ferry_config *c, const char *network, json_object **ret,
			 struct ferry_error **err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s.conflist", c->network_dir, network);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return ferry_error_msg(err, ENOENT, "no network '%s' on this node (no '%s')", network, path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
		return ferry_error_msg(err, EPERM, "'%s' must be a root-owned file not writable by others",
				       path);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = ferry_read_all(fd, CONFLIST_MAX, &text, &len, err);
	if (r < 0)
		return ferry_error_wrap(err, "read '%s'", path);
	json_tokener *tok = json_tokener_new();
	json_object *root = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	json_object *name = NULL, *plugins = NULL;
	if (!root || jerr != json_tokener_success || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "name", &name) || !json_object_is_type(name, json_type_string) ||
	    !streq(json_object_get_string(name), network) ||
	    !json_object_object_get_ex(root, "plugins", &plugins) ||
	    !json_object_is_type(plugins, json_type_array) || json_object_array_length(plugins) == 0) {
		json_object_put(root);
		return ferry_error_msg(err, EINVAL, "'%s' is not a CNI conflist named '%s' with plugins",
				       path, network);
	}
	*ret = root;
	return 0;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Runs one plugin; *ret_out is its stdout. A failing plugin's CNI error becomes the message. */
static int run_plugin(const struct ferry_config *c, const char *type, const char *command,
		      const char *container_id, const char *netns, const char *ifname, const char *cni_args,
		      const char *config, char **ret_out, struct ferry_error **err)
{
	if (!ferry_config_word_ok(type, 64))
		return ferry_error_msg(err, EINVAL, "bad CNI plugin type '%s'", type);
	_cleanup_free_ char *path = xasprintf("%s/%s", c->cni_path, type);
	_cleanup_free_ char *e_cmd = xasprintf("CNI_COMMAND=%s", command);
	_cleanup_free_ char *e_id = xasprintf("CNI_CONTAINERID=%s", container_id);
	_cleanup_free_ char *e_ns = xasprintf("CNI_NETNS=%s", netns ? netns : "");
	_cleanup_free_ char *e_if = xasprintf("CNI_IFNAME=%s", ifname);
	_cleanup_free_ char *e_path = xasprintf("CNI_PATH=%s", c->cni_path);
	_cleanup_free_ char *e_args = xasprintf("CNI_ARGS=%s", cni_args ? cni_args : "");
	char *const envp[] = {e_cmd, e_id, e_ns, e_if, e_path, e_args, FERRY_SPAWN_PATH, NULL};
	char *const argv[] = {(char *)type, NULL};
	char *out = NULL;
	size_t out_len = 0;
	int status = 0;
	struct ferry_spawn_opts o = {.input = config,
				     .input_len = strlen(config),
				     .output = &out,
				     .output_len = &out_len,
				     .output_max = 1 << 20,
				     .stderr_fd = FERRY_SPAWN_DEVNULL,
				     .timeout = PLUGIN_TIMEOUT};
	int r = ferry_spawn(path, argv, envp, &o, &status, err);
	if (r < 0)
		return ferry_error_wrap(err, "CNI plugin '%s' %s", type, command);
	if (status != 0) {
		json_object *j = out ? json_tokener_parse(out) : NULL;
		const char *msg = jstr(j, "msg");
		r = ferry_error_msg(err, EIO, "CNI plugin '%s' %s failed: %s", type, command,
				    msg ? msg : "(no message)");
		json_object_put(j);
		free(out);
		return r;
	}
	*ret_out = out;
	return 0;
}

static char *cni_args_of(const struct ferry_net_args *a)
{
	char *s = xstrdup("IgnoreUnknown=1");
	const char *keys[] = {"IP", "MAC", "GATEWAY"};
	const char *vals[] = {a ? a->ip : NULL, a ? a->mac : NULL, a ? a->gw : NULL};
	for (size_t i = 0; i < 3; i++) {
		if (!vals[i])
			continue;
		char *n = xasprintf("%s;%s=%s", s, keys[i], vals[i]);
		free(s);
		s = n;
	}
	return s;
}

/* The config a plugin gets: its object plus name, cniVersion, this node's parent, prevResult. */
static char *plugin_config(const struct ferry_config *c, json_object *list, json_object *plugin,
			   const char *network, const char *prev)
{
	json_object *p = NULL;
	json_object_deep_copy(plugin, &p, NULL);
	json_object *v = NULL;
	json_object_object_add(p, "name", json_object_new_string(network));
	if (json_object_object_get_ex(list, "cniVersion", &v))
		json_object_object_add(p, "cniVersion", json_object_get(v));
	const char *parent = ferry_config_network_parent(c, network);
	if (parent && json_object_object_get_ex(p, "master", NULL))
		json_object_object_add(p, "master", json_object_new_string(parent));
	if (prev) {
		json_object *pr = json_tokener_parse(prev);
		if (pr)
			json_object_object_add(p, "prevResult", pr);
	}
	char *s = xstrdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN));
	json_object_put(p);
	return s;
}

int ferry_cni_add(const struct ferry_config *c, const char *network, const char *container_id,
		  const char *netns_path, const char *ifname, const struct ferry_net_args *a,
		  struct ferry_net_attachment *ret, struct ferry_error **err)
{
	json_object *list = NULL;
	int r = load_conflist(c, network, &list, err);
	if (r < 0)
		return r;
	/* lo first: every instance with its own network has a working loopback */
	_cleanup_free_ char *lo_out = NULL;
	r = run_plugin(c, "loopback", "ADD", container_id, netns_path, "lo", NULL,
		       "{\"cniVersion\":\"0.4.0\",\"name\":\"lo\",\"type\":\"loopback\"}", &lo_out, err);
	json_object *plugins = NULL;
	json_object_object_get_ex(list, "plugins", &plugins);
	_cleanup_free_ char *args = cni_args_of(a);
	char *prev = NULL;
	size_t n = json_object_array_length(plugins);
	for (size_t i = 0; r == 0 && i < n; i++) {
		json_object *plugin = json_object_array_get_idx(plugins, i);
		const char *type = jstr(plugin, "type");
		if (!type) {
			r = ferry_error_msg(err, EINVAL, "network '%s': plugin %zu has no type", network, i);
			break;
		}
		_cleanup_free_ char *cfg = plugin_config(c, list, plugin, network, prev);
		char *out = NULL;
		r = run_plugin(c, type, "ADD", container_id, netns_path, ifname, args, cfg, &out, err);
		if (r == 0) {
			free(prev);
			prev = out;
		}
	}
	json_object_put(list);
	if (r < 0) {
		free(prev);
		return ferry_error_wrap(err, "network '%s'", network);
	}
	/* what the instance got: the first address, the MAC of our interface */
	struct ferry_net_attachment att = {
	    .network = xstrdup(network), .ifname = xstrdup(ifname), .result = prev};
	json_object *res = json_tokener_parse(prev);
	json_object *ips = NULL, *ifs = NULL;
	if (res && json_object_object_get_ex(res, "ips", &ips) && json_object_array_length(ips) > 0) {
		const char *ip = jstr(json_object_array_get_idx(ips, 0), "address");
		att.ip = ip ? xstrdup(ip) : NULL;
	}
	if (res && json_object_object_get_ex(res, "interfaces", &ifs))
		for (size_t i = 0; i < json_object_array_length(ifs); i++) {
			json_object *itf = json_object_array_get_idx(ifs, i);
			const char *name = jstr(itf, "name"), *mac = jstr(itf, "mac");
			if (name && mac && streq(name, ifname) && jstr(itf, "sandbox")) {
				att.mac = xstrdup(mac);
				break;
			}
		}
	json_object_put(res);
	*ret = att;
	return 0;
}

/* CHECK or DEL: every plugin of @att's network with the ADD result as prevResult. DEL goes in
 * reverse order and keeps going after a failure (each plugin gets its DEL; the first failure
 * is reported); CHECK stops at the first. */
static int run_all(const struct ferry_config *c, const char *command, const char *container_id,
		   const char *netns_path, const struct ferry_net_attachment *att,
		   const struct ferry_net_args *a, struct ferry_error **err)
{
	bool del = streq(command, "DEL");
	json_object *list = NULL;
	int r = load_conflist(c, att->network, &list, err);
	if (r < 0)
		return r;
	json_object *v = NULL;
	const char *version =
	    json_object_object_get_ex(list, "cniVersion", &v) ? json_object_get_string(v) : "";
	/* CHECK exists from CNI 0.4.0 on */
	if (!del && (!version || startswith(version, "0.1") || startswith(version, "0.2") ||
		     startswith(version, "0.3"))) {
		json_object_put(list);
		return 0;
	}
	json_object *plugins = NULL;
	json_object_object_get_ex(list, "plugins", &plugins);
	_cleanup_free_ char *args = cni_args_of(a);
	size_t n = json_object_array_length(plugins);
	int first = 0;
	for (size_t k = 0; k < n && (del || first == 0); k++) {
		json_object *plugin = json_object_array_get_idx(plugins, del ? n - 1 - k : k);
		const char *type = jstr(plugin, "type");
		if (!type)
			continue;
		_cleanup_free_ char *cfg = plugin_config(c, list, plugin, att->network, att->result);
		_cleanup_free_ char *out = NULL;
		struct ferry_error *e = NULL;
		if (run_plugin(c, type, command, container_id, netns_path, att->ifname, args, cfg, &out, &e) <
			0 &&
		    !first)
			first = ferry_error_msg(err, e->code, "network '%s': %s", att->network, e->message);
		ferry_error_free(e);
	}
	json_object_put(list);
	return first;
}

int ferry_cni_check(const struct ferry_config *c, const char *container_id, const char *netns_path,
		    const struct ferry_net_attachment *att, const struct ferry_net_args *a,
		    struct ferry_error **err)
{
	return run_all(c, "CHECK", container_id, netns_path, att, a, err);
}

int ferry_cni_del(const struct ferry_config *c, const char *container_id, const char *netns_path,
		  const struct ferry_net_attachment *att, const struct ferry_net_args *a,
		  struct ferry_error **err)
{
	return run_all(c, "DEL", container_id, netns_path, att, a, err);
}

/* Adds @o's "subnet" (and "gateway") when it has one: 0, or -EINVAL/-E2BIG. */
static int add_subnet(json_object *o, bool host_local, struct ferry_net_subnet *ret, size_t max, size_t *n)
{
	const char *sub = jstr(o, "subnet"), *gw = jstr(o, "gateway");
	if (!sub)
		return 0;
	uint32_t addr = 0;
	unsigned prefix = 0;
	if (ferry_config_cidr_parse(sub, &addr, &prefix) < 0 || prefix == 0)
		return -EINVAL;
	if (*n >= max)
		return -E2BIG;
	struct ferry_net_subnet s = {.net = addr & mask_of(prefix), .prefix = prefix};
	if (gw && ferry_config_ipv4_parse(gw, &s.gw) < 0)
		return -EINVAL;
	if (!gw && host_local && prefix < 31)
		s.gw = s.net + 1; /* host-local's default gateway */
	ret[(*n)++] = s;
	return 0;
}

/* The subnets of one plugin's "ipam": its own "subnet", and those of its "ranges" (sets of
 * ranges, host-local's). */
static int ipam_subnets(json_object *plugin, struct ferry_net_subnet *ret, size_t max, size_t *n)
{
	json_object *ipam = NULL, *ranges = NULL;
	if (!json_object_object_get_ex(plugin, "ipam", &ipam) || !json_object_is_type(ipam, json_type_object))
		return 0;
	const char *type = jstr(ipam, "type");
	bool host_local = type && streq(type, "host-local");
	int r = add_subnet(ipam, host_local, ret, max, n);
	if (r < 0 || !json_object_object_get_ex(ipam, "ranges", &ranges) ||
	    !json_object_is_type(ranges, json_type_array))
		return r;
	for (size_t i = 0; r == 0 && i < json_object_array_length(ranges); i++) {
		json_object *set = json_object_array_get_idx(ranges, i);
		if (!json_object_is_type(set, json_type_array))
			return -EINVAL;
		for (size_t k = 0; r == 0 && k < json_object_array_length(set); k++)
			r = add_subnet(json_object_array_get_idx(set, k), host_local, ret, max, n);
	}
	return r;
}

int ferry_net_subnets(const struct ferry_config *c, const char *network, struct ferry_net_subnet *ret,
		      size_t max, size_t *ret_n, struct ferry_error **err)
{
	json_object *list = NULL;
	int r = load_conflist(c, network, &list, err);
	if (r < 0)
		return r;
	json_object *plugins = NULL;
	json_object_object_get_ex(list, "plugins", &plugins);
	size_t n = 0;
	for (size_t i = 0; r == 0 && i < json_object_array_length(plugins); i++)
		r = ipam_subnets(json_object_array_get_idx(plugins, i), ret, max, &n);
	json_object_put(list);
	if (r < 0)
		return ferry_error_msg(
		    err, EINVAL,
		    "network '%s': a \"subnet\" or \"gateway\" of its ipam is not A.B.C.D/P "
		    "or A.B.C.D (or there are more than %zu)",
		    network, max);
	*ret_n = n;
	return 0;
}

int ferry_net_node_claims(const uint8_t *mac, uint32_t ip, char ret_ifname[IF_NAMESIZE],
			  struct ferry_error **err)
{
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) < 0)
		return ferry_error_set(err, errno, "list this node's interfaces");
	int found = 0;
	for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (mac && i->ifa_addr->sa_family == AF_PACKET) {
			const struct sockaddr_ll *ll = (const struct sockaddr_ll *)(void *)i->ifa_addr;
			found = ll->sll_halen == 6 && memcmp(ll->sll_addr, mac, 6) == 0;
		} else if (ip && i->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)(void *)i->ifa_addr;
			found = ntohl(in->sin_addr.s_addr) == ip;
		}
		if (found)
			snprintf(ret_ifname, IF_NAMESIZE, "%s", i->ifa_name);
	}
	freeifaddrs(ifs);
	return found;
}

/* FERRY_RUNDIR/net/n<node>: made by root, root's alone. */
static int open_reservations(struct ferry_error **err)
{
	char node[32];
	snprintf(node, sizeof(node), "n%llu", ferry_node_id());
	const char *parts[] = {FERRY_RUNDIR, "net", node};
	return ferry_open_root_dirs(parts, ARRAY_SIZE(parts), true, err);
}

static void reservation_name(const uint8_t mac[6], char name[32])
{
	snprintf(name, 32, "mac-%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

/* 1: @fd (locked) is still the file @name names; 0: its holder removed it in between. */
static int still_named(int dirfd, const char *name, int fd)
{
	struct stat a, b;
	if (fstat(fd, &a) < 0)
		return -errno;
	if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Removes the reservations nobody holds (their monitor was killed): taken and unlinked under
 * the lock, as a release does, so that a reserver that opened the same file retries. */
static void sweep_stale(int dirfd)
{
	DIR *d = ferry_opendir_at(dirfd);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!startswith(de->d_name, "mac-"))
			continue;
		_cleanup_close_ int fd =
		    openat(dirfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && still_named(dirfd, de->d_name, fd) == 1)
			(void)unlinkat(dirfd, de->d_name, 0);
	}
	if (d)
		closedir(d);
}

int ferry_net_mac_reserve(const uint8_t mac[6], unsigned wait_ms, struct ferry_net_mac_lock *ret,
			  struct ferry_error **err)
{
	_cleanup_close_ int dirfd = open_reservations(err);
	if (dirfd < 0)
		return dirfd;
	sweep_stale(dirfd);
	char name[32];
	reservation_name(mac, name);
	long long deadline = ferry_now_ms() + wait_ms;
	for (unsigned tries = 0; tries < 10000; tries++) {
		_cleanup_close_ int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return ferry_error_set(err, errno, "create the MAC reservation '%s'", name);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			int r = still_named(dirfd, name, fd);
			if (r < 0)
				return ferry_error_set(err, -r, "check the MAC reservation '%s'", name);
			if (r == 0)
				continue;
			*ret = (struct ferry_net_mac_lock){.dirfd = TAKE_FD(dirfd), .fd = TAKE_FD(fd)};
			memcpy(ret->mac, mac, 6);
			return 0;
		}
		if (errno != EWOULDBLOCK)
			return ferry_error_set(err, errno, "lock the MAC reservation '%s'", name);
		if (ferry_now_ms() >= deadline)
			return -EADDRINUSE;
		usleep(50 * 1000);
	}
	return -EADDRINUSE;
}

void ferry_net_mac_release(struct ferry_net_mac_lock *l)
{
	if (!l || l->fd <= 0)
		return;
	char name[32];
	reservation_name(l->mac, name);
	/* while still holding it: whoever opens the old file next finds it unnamed and retries */
	(void)unlinkat(l->dirfd, name, 0);
	close(l->fd);
	close(l->dirfd);
	memset(l, 0, sizeof(*l));
}
