/* SPDX-License-Identifier: GPL-2.0-or-later */
/* net_args.c — parsing the user's --network names and --network-args (see net.h): done by the
 * CLI, ferry-plan (as the caller) and ferry-net, never by the setuid starter, which takes the
 * plan's values and checks them with ferry_net_check_policy. */
#include <ctype.h>

#include "config.h"
#include "net.h"

void ferry_net_args_clear(struct ferry_net_args *a)
{
	free(a->ip);
	free(a->mac);
	free(a->gw);
	memset(a, 0, sizeof(*a));
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
