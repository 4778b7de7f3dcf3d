/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* restore --keep-ip for Docker: the new container asks for the address the
 * original had on its network, as `docker run --ip` does (the create
 * request's NetworkingConfig). Docker gives fixed addresses only on
 * user-defined networks, and an address to one container at a time: both
 * are checked before anything is created, so that the refusal says what
 * stands in the way; Docker's own errors name neither. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "image/json.h"
#include "runtime/docker-api.h"
#include "runtime/moby.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key)) ?: "";
}

/* The original's endpoint on its network (HostConfig.NetworkMode: a
 * network's name or id), and that network's name. */
static int endpoint(const json_t *insp, const char *cname, const char **ret_net, json_t **ret_ep)
{
	const char *mode = str(json_object_get(insp, "HostConfig"), "NetworkMode"), *k;
	json_t *ep;
	if (!*mode || streq(mode, "default") || streq(mode, "bridge"))
		return log_error_errno(-EOPNOTSUPP, "container '%s' was on Docker's default bridge, where Docker gives "
				       "no fixed address; run it on a user-defined network with a subnet (docker "
				       "network create --subnet ..., docker run --network NET --ip ADDR) to use --keep-ip",
				       cname);
	if (streq(mode, "host") || streq(mode, "none") || startswith(mode, "container:"))
		return log_error_errno(-EOPNOTSUPP, "container '%s' has no address of its own (network mode %s); "
				       "restore it without --keep-ip", cname, mode);
	json_object_foreach(json_object_get(json_object_get(insp, "NetworkSettings"), "Networks"), k, ep) {
		if (streq(k, mode) || startswith(str(ep, "NetworkID"), mode)) {
			*ret_net = k;
			*ret_ep = ep;
			return 0;
		}
	}
	return log_error_errno(-EBADMSG, "the image has no address of container '%s' on its network '%s'", cname, mode);
}

/* "172.30.7.5/24" holds addr "172.30.7.5". */
static bool same_addr(const char *cidr, const char *addr)
{
	size_t l = strlen(addr);
	return *addr && strncmp(cidr, addr, l) == 0 && (cidr[l] == '/' || !cidr[l]);
}

/* No container on net holds addr (Docker lists the running ones). */
static int check_free(const char *net, const char *addr, const char *cname)
{
	char path[512];
	_cleanup_json_ json_t *reply = NULL;
	const char *k;
	json_t *c;
	snprintf(path, sizeof(path), "/networks/%s", net);
	int st = docker_call("GET", path, NULL, &reply);
	if (st < 0)
		return st;
	if (st == 404)
		return log_error_errno(-ENOENT, "network '%s' of container '%s' is gone; create it again, with its "
				       "subnet, to restore with --keep-ip", net, cname);
	if (st != 200) {
		log_error("docker network inspect %s: HTTP %d: %s", net, st, docker_message(reply));
		return -EIO;
	}
	json_object_foreach(json_object_get(reply, "Containers"), k, c)
		if (same_addr(str(c, "IPv4Address"), addr) || same_addr(str(c, "IPv6Address"), addr))
			return log_error_errno(-EADDRINUSE, "address %s on network '%s' is held by container '%s' "
					       "(the original, still running?); stop or remove it, or restore "
					       "without --keep-ip", addr, net, str(c, "Name"));
	return 0;
}

/* The endpoint's IPAMConfig: the original's, with the addresses it had. */
static json_t *ipam_config(const json_t *ep, const char *v4, const char *v6)
{
	json_t *ipam = json_is_object(json_object_get(ep, "IPAMConfig")) ?
			       json_deep_copy(json_object_get(ep, "IPAMConfig")) : json_object();
	if (ipam && *v4 && json_object_set_new(ipam, "IPv4Address", json_string(v4)) < 0)
		json_decref(TAKE_PTR(ipam));
	if (ipam && *v6 && json_object_set_new(ipam, "IPv6Address", json_string(v6)) < 0)
		json_decref(TAKE_PTR(ipam));
	return ipam;
}

int moby_keep_ip(const json_t *insp, json_t *body)
{
	const char *cname = str(insp, "Name"), *net;
	json_t *ep;
	cname += cname[0] == '/';
	int r = endpoint(insp, cname, &net, &ep);
	if (r < 0)
		return r;
	const char *v4 = str(ep, "IPAddress"), *v6 = str(ep, "GlobalIPv6Address");
	if (!*v4 && !*v6)
		return log_error_errno(-EBADMSG, "container '%s' had no address on network '%s'", cname, net);
	if ((r = check_free(net, *v4 ? v4 : v6, cname)) < 0 || (*v4 && *v6 && (r = check_free(net, v6, cname)) < 0))
		return r;
	json_t *ipam = ipam_config(ep, v4, v6);
	json_t *nc = ipam ? json_pack("{s:{s:{s:o}}}", "EndpointsConfig", net, "IPAMConfig", ipam) : NULL;
	if (!nc || json_object_set_new(body, "NetworkingConfig", nc) < 0)
		return -ENOMEM;
	log_info("container '%s' keeps its address %s%s%s on network '%s'", cname, *v4 ? v4 : "", *v4 && *v6 ? ", " : "",
		 v6, net);
	return 0;
}
