/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cni.c — ferry-net's CNI side: the admin's conflists (JSON) and the plugins, run as the CNI
 * spec says (CNI_COMMAND/CONTAINERID/NETNS/IFNAME/PATH/ARGS, the plugin config on stdin, the
 * result on stdout, JSON both). Nothing here is linked into the setuid starter. */
#include <fcntl.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "cni.h"
#include "fs.h"
#include "spawn.h"

#define CONFLIST_MAX (256 * 1024)
#define PLUGIN_TIMEOUT 60

static uint32_t mask_of(unsigned prefix)
{
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

/* A plugin is root's and not writable by others (it runs with our capabilities). */
static int check_plugin(const char *path, struct ferry_error **err)
{
	_cleanup_close_ int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return ferry_error_set(err, errno, "CNI plugin '%s'", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
		return ferry_error_msg(
		    err, EPERM, "CNI plugin '%s' must be a root-owned file not writable by others", path);
	return 0;
}

static int load_conflist(const struct ferry_config *c, const char *network, json_object **ret,
			 struct ferry_error **err)
{
	if (!ferry_config_word_ok(network, 64))
		return ferry_error_msg(err, EINVAL, "bad network name '%s'", network);
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
		      const struct cni_call *k, const char *cni_args, const char *config, char **ret_out,
		      struct ferry_error **err)
{
	if (!ferry_config_word_ok(type, 64))
		return ferry_error_msg(err, EINVAL, "bad CNI plugin type '%s'", type);
	_cleanup_free_ char *path = xasprintf("%s/%s", c->cni_path, type);
	int r = check_plugin(path, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *e_cmd = xasprintf("CNI_COMMAND=%s", command);
	_cleanup_free_ char *e_id = xasprintf("CNI_CONTAINERID=%s", k->container_id);
	_cleanup_free_ char *e_ns = xasprintf("CNI_NETNS=%s", k->netns ? k->netns : "");
	_cleanup_free_ char *e_if = xasprintf("CNI_IFNAME=%s", k->ifname);
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
				     /* the namespace, which CNI_NETNS names as the plugin's own fd 3 */
				     .pass_fds = k->netns ? (const int[]){FERRY_NET_FD_NETNS} : NULL,
				     .n_pass_fds = k->netns ? 1 : 0,
				     .timeout = PLUGIN_TIMEOUT};
	r = ferry_spawn(path, argv, envp, &o, &status, err);
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

static int subnets_of(json_object *list, const char *network, struct ferry_net_subnet *ret, size_t max,
		      size_t *ret_n, struct ferry_error **err)
{
	json_object *plugins = NULL;
	json_object_object_get_ex(list, "plugins", &plugins);
	size_t n = 0;
	int r = 0;
	for (size_t i = 0; r == 0 && i < json_object_array_length(plugins); i++)
		r = ipam_subnets(json_object_array_get_idx(plugins, i), ret, max, &n);
	if (r < 0)
		return ferry_error_msg(
		    err, EINVAL,
		    "network '%s': a \"subnet\" or \"gateway\" of its ipam is not A.B.C.D/P "
		    "or A.B.C.D (or there are more than %zu)",
		    network, max);
	*ret_n = n;
	return 0;
}

/* What ADD gave the instance: the first IPv4 address of @res and the MAC of our interface
 * @ifname (the one in the sandbox). */
static void result_of(const char *result, const char *ifname, struct ferry_net_reply *ret)
{
	json_object *res = json_tokener_parse(result);
	json_object *ips = NULL, *ifs = NULL;
	if (res && json_object_object_get_ex(res, "ips", &ips) && json_object_is_type(ips, json_type_array))
		for (size_t i = 0; i < json_object_array_length(ips) && !ret->ip; i++) {
			const char *ip = jstr(json_object_array_get_idx(ips, i), "address");
			uint32_t addr = 0;
			unsigned prefix = 0;
			if (ip && ferry_config_cidr_parse(ip, &addr, &prefix) == 0 && addr && prefix) {
				ret->ip = addr;
				ret->prefix = prefix;
			}
		}
	if (res && json_object_object_get_ex(res, "interfaces", &ifs) &&
	    json_object_is_type(ifs, json_type_array))
		for (size_t i = 0; i < json_object_array_length(ifs); i++) {
			json_object *itf = json_object_array_get_idx(ifs, i);
			const char *name = jstr(itf, "name"), *mac = jstr(itf, "mac");
			if (name && mac && streq(name, ifname) && jstr(itf, "sandbox") &&
			    ferry_net_mac_parse(mac, ret->mac) == 0) {
				ret->has_mac = !(ret->mac[0] & 1);
				break;
			}
		}
	json_object_put(res);
}

/* The ADD result into the starter's memfd @fd, from its start. */
static int put_result(int fd, const char *result, struct ferry_error **err)
{
	size_t len = strlen(result);
	if (len > FERRY_NET_RESULT_MAX)
		return ferry_error_msg(err, E2BIG, "the plugins' result is over %u bytes",
				       FERRY_NET_RESULT_MAX);
	if (ftruncate(fd, 0) < 0)
		return ferry_error_set(err, errno, "keep the plugins' result");
	for (size_t off = 0; off < len;) {
		ssize_t n = pwrite(fd, result + off, len - off, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ferry_error_set(err, n < 0 ? errno : EIO, "keep the plugins' result");
		off += (size_t)n;
	}
	return 0;
}

/* The ADD result the starter kept (NULL: none). */
static char *get_result(int fd)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0 || (size_t)st.st_size > FERRY_NET_RESULT_MAX)
		return NULL;
	char *buf = xmalloc((size_t)st.st_size + 1);
	ssize_t n = pread(fd, buf, (size_t)st.st_size, 0);
	if (n != st.st_size || memchr(buf, '\0', (size_t)n)) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* Every plugin of @list in order, ADD; *ret_prev the last result. */
static int add_all(const struct ferry_config *c, json_object *list, const struct cni_call *k, char **ret_prev,
		   struct ferry_error **err)
{
	json_object *plugins = NULL;
	json_object_object_get_ex(list, "plugins", &plugins);
	_cleanup_free_ char *args = cni_args_of(k->args);
	char *prev = NULL;
	int r = 0;
	size_t n = json_object_array_length(plugins);
	for (size_t i = 0; r == 0 && i < n; i++) {
		json_object *plugin = json_object_array_get_idx(plugins, i);
		const char *type = jstr(plugin, "type");
		if (!type) {
			r = ferry_error_msg(err, EINVAL, "network '%s': plugin %zu has no type", k->network,
					    i);
			break;
		}
		_cleanup_free_ char *cfg = plugin_config(c, list, plugin, k->network, prev);
		char *out = NULL;
		r = run_plugin(c, type, "ADD", k, args, cfg, &out, err);
		if (r == 0) {
			free(prev);
			prev = out;
		}
	}
	if (r < 0) {
		free(prev);
		return r;
	}
	*ret_prev = prev;
	return 0;
}

int cni_add(const struct ferry_config *c, const struct cni_call *k, int result_fd,
	    struct ferry_net_reply *ret, struct ferry_error **err)
{
	json_object *list = NULL;
	int r = load_conflist(c, k->network, &list, err);
	if (r < 0)
		return r;
	size_t n = 0;
	r = subnets_of(list, k->network, ret->subnets, FERRY_NET_SUBNETS_MAX, &n, err);
	ret->n_subnets = (uint32_t)n;
	/* lo first: every instance with its own network has a working loopback */
	_cleanup_free_ char *lo_out = NULL;
	struct cni_call lo = *k;
	lo.ifname = "lo";
	lo.args = NULL;
	if (r == 0)
		r = run_plugin(c, "loopback", "ADD", &lo, NULL,
			       "{\"cniVersion\":\"0.4.0\",\"name\":\"lo\",\"type\":\"loopback\"}", &lo_out,
			       err);
	_cleanup_free_ char *prev = NULL;
	if (r == 0)
		r = add_all(c, list, k, &prev, err);
	json_object_put(list);
	if (r == 0 && prev)
		r = put_result(result_fd, prev, err);
	if (r < 0)
		return ferry_error_wrap(err, "network '%s'", k->network);
	if (prev)
		result_of(prev, k->ifname, ret);
	return 0;
}

/* CHECK or DEL: every plugin of the network with the ADD result as prevResult. DEL goes in
 * reverse order and keeps going after a failure (each plugin gets its DEL; the first failure
 * is reported); CHECK stops at the first. */
int cni_check_del(const struct ferry_config *c, const char *command, const struct cni_call *k, int result_fd,
		  struct ferry_error **err)
{
	bool del = streq(command, "DEL");
	json_object *list = NULL;
	int r = load_conflist(c, k->network, &list, err);
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
	_cleanup_free_ char *args = cni_args_of(k->args);
	_cleanup_free_ char *prev = get_result(result_fd);
	size_t n = json_object_array_length(plugins);
	int first = 0;
	for (size_t i = 0; i < n && (del || first == 0); i++) {
		json_object *plugin = json_object_array_get_idx(plugins, del ? n - 1 - i : i);
		const char *type = jstr(plugin, "type");
		if (!type)
			continue;
		_cleanup_free_ char *cfg = plugin_config(c, list, plugin, k->network, prev);
		_cleanup_free_ char *out = NULL;
		struct ferry_error *e = NULL;
		if (run_plugin(c, type, command, k, args, cfg, &out, &e) < 0 && !first)
			first = ferry_error_msg(err, e->code, "network '%s': %s", k->network, e->message);
		ferry_error_free(e);
	}
	json_object_put(list);
	return first;
}
int ferry_net_subnets(const struct ferry_config *c, const char *network, struct ferry_net_subnet *ret,
		      size_t max, size_t *ret_n, struct ferry_error **err)
{
	json_object *list = NULL;
	int r = load_conflist(c, network, &list, err);
	if (r < 0)
		return r;
	r = subnets_of(list, network, ret, max, ret_n, err);
	json_object_put(list);
	return r;
}
