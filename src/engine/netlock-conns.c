/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which connections the network lock covers (netlock.h): the TCP sockets
 * the tree's processes hold, found by inode in /proc/PID/net/tcp and tcp6,
 * which show the process's own network namespace; and their record in the
 * manifest. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/netlock.h"
#include "engine/proc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_SOCKETS (1u << 20)

/* TCP states (include/net/tcp_states.h) of a socket that has a peer. */
static bool has_peer(unsigned st)
{
	switch (st) {
	case 1: case 2: case 3: case 4: case 5: /* ESTABLISHED .. FIN_WAIT2 */
	case 8: case 9: case 11:                /* CLOSE_WAIT, LAST_ACK, CLOSING */
		return true;
	default:
		return false;
	}
}

/* "0100007F:1F90": the address as the kernel's u32 words in hex. */
static int parse_endpoint(const char *s, int family, uint8_t addr[16], uint16_t *port)
{
	size_t words = family == AF_INET ? 1 : 4;
	for (size_t i = 0; i < words; i++) {
		char hex[9];
		memcpy(hex, s + 8 * i, 8);
		hex[8] = 0;
		char *end;
		errno = 0;
		uint32_t w = (uint32_t)strtoul(hex, &end, 16);
		if (errno || end != hex + 8)
			return -EBADMSG;
		memcpy(addr + 4 * i, &w, 4);
	}
	if (s[8 * words] != ':')
		return -EBADMSG;
	unsigned long p = strtoul(s + 8 * words + 1, NULL, 16);
	if (p > 0xffff)
		return -EBADMSG;
	*port = (uint16_t)p;
	return 0;
}

/* ::ffff:a.b.c.d is IPv4 on the wire. */
static void unmap_v4(struct netlock_conn *c)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (c->family != AF_INET6 || memcmp(c->src, prefix, 12) || memcmp(c->dst, prefix, 12))
		return;
	memmove(c->src, c->src + 12, 4);
	memmove(c->dst, c->dst + 12, 4);
	memset(c->src + 4, 0, 12);
	memset(c->dst + 4, 0, 12);
	c->family = AF_INET;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int append(struct netlock_conn **v, size_t *n, const struct netlock_conn *c)
{
	if (*n >= NETLOCK_MAX_CONNS)
		return -E2BIG;
	struct netlock_conn *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = *c;
	*v = nv;
	return 0;
}

/* One line: "sl local rem st tx:rx tr:when retr uid timeout inode ...". */
static int parse_line(const char *line, int family, const uint64_t *inos, size_t ninos, struct netlock_conn **v,
		      size_t *n)
{
	char local[64], rem[64];
	unsigned st;
	uint64_t ino;
	if (sscanf(line, " %*[0-9]: %63s %63s %x %*s %*s %*s %*s %*s %" SCNu64, local, rem, &st, &ino) != 4)
		return 0; /* the header */
	if (!has_peer(st) || !bsearch(&ino, inos, ninos, sizeof(*inos), cmp_u64))
		return 0;
	struct netlock_conn c = { .family = family };
	if (strlen(local) != (family == AF_INET ? 13u : 37u) || strlen(rem) != strlen(local) ||
	    parse_endpoint(local, family, c.src, &c.sport) < 0 || parse_endpoint(rem, family, c.dst, &c.dport) < 0)
		return -EBADMSG;
	unmap_v4(&c);
	return append(v, n, &c);
}

int netlock_parse_proc(const char *buf, size_t len, int family, const uint64_t *inos, size_t ninos,
		       struct netlock_conn **v, size_t *n)
{
	char line[512];
	size_t pos = 0;
	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		int r = parse_line(line, family, inos, ninos, v, n);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The socket inodes among pid's fds, appended to *inos. */
static int socket_inodes(pid_t pid, uint64_t **inos, size_t *n)
{
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	_cleanup_closedir_ DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	for (struct dirent *e; (e = readdir(d));) {
		uint64_t ino;
		ssize_t l = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		if (sscanf(link, "socket:[%" SCNu64 "]", &ino) != 1)
			continue;
		if (*n >= MAX_SOCKETS)
			return -E2BIG;
		uint64_t *nv = realloc(*inos, (*n + 1) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		nv[(*n)++] = ino;
		*inos = nv;
	}
	return 0;
}

int netlock_find(const pid_t *pids, size_t npids, struct netlock_conn **ret, size_t *ret_n)
{
	static const struct { const char *file; int family; } tables[] = { { "tcp", AF_INET }, { "tcp6", AF_INET6 } };
	_cleanup_free_ uint64_t *inos = NULL;
	struct netlock_conn *v = NULL;
	size_t ninos = 0, n = 0;
	int r = 0;
	for (size_t i = 0; i < npids && r >= 0; i++)
		r = socket_inodes(pids[i], &inos, &ninos);
	if (r < 0 || !ninos || !npids)
		goto out;
	qsort(inos, ninos, sizeof(*inos), cmp_u64);
	for (size_t t = 0; t < 2 && r >= 0; t++) {
		_cleanup_free_ char *buf = NULL;
		size_t len;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/net/%s", pids[0], tables[t].file);
		r = read_file_at(AT_FDCWD, path, 256u << 20, &buf, &len);
		if (r == -ENOENT) { /* no IPv6 in this kernel */
			r = 0;
			continue;
		}
		if (r >= 0)
			r = netlock_parse_proc(buf, len, tables[t].family, inos, ninos, &v, &n);
	}
out:
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* --- the manifest's record --- */

static void conn_to_json(const struct netlock_conn *c, struct json_builder *b, json_t *arr)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	struct json_builder o;
	inet_ntop(c->family, c->src, src, sizeof(src));
	inet_ntop(c->family, c->dst, dst, sizeof(dst));
	jb_begin(&o);
	jb_str(&o, "src", src);
	jb_int(&o, "sport", c->sport);
	jb_str(&o, "dst", dst);
	jb_int(&o, "dport", c->dport);
	jb_append_obj(b, arr, &o);
}

void netlock_to_json(const struct netlock *l, bool handed_over, struct json_builder *body)
{
	struct json_builder b;
	if (!l || !l->n)
		return;
	jb_begin(&b);
	if (handed_over) {
		char name[NETLOCK_NAME_MAX];
		netlock_image_name(name, sizeof(name));
		jb_str(&b, "table", name);
	}
	jb_u64(&b, "locked_at_ns", l->locked_real_ns);
	json_t *arr = jb_array(&b, "conns");
	for (size_t i = 0; arr && i < l->n; i++)
		conn_to_json(&l->conns[i], &b, arr);
	jb_obj(body, "netlock", &b);
}

/* "stasis-image-<digits>-<digits>": nothing else may reach nftables. */
static bool valid_image_table(const char *s)
{
	const char *p = s;
	if (strlen(s) >= NETLOCK_NAME_MAX || !startswith(s, "stasis-image-"))
		return false;
	p += strlen("stasis-image-");
	size_t a = strspn(p, "0123456789");
	if (!a || p[a] != '-')
		return false;
	p += a + 1;
	size_t b = strspn(p, "0123456789");
	return b && p[b] == 0;
}

static int conn_from_json(const json_t *j, struct netlock_conn *c)
{
	const char *src, *dst;
	int sport, dport;
	if (json_get_str(j, "src", &src) < 0 || json_get_str(j, "dst", &dst) < 0 ||
	    json_get_int(j, "sport", &sport) < 0 || json_get_int(j, "dport", &dport) < 0)
		return -EBADMSG;
	if (sport < 1 || sport > 65535 || dport < 1 || dport > 65535)
		return -EBADMSG;
	*c = (struct netlock_conn){ .family = strchr(src, ':') ? AF_INET6 : AF_INET, .sport = (uint16_t)sport,
				    .dport = (uint16_t)dport };
	if (inet_pton(c->family, src, c->src) != 1 || inet_pton(c->family, dst, c->dst) != 1)
		return -EBADMSG;
	return 0;
}

int netlock_from_json(const json_t *j, struct netlock *ret)
{
	const char *table = NULL;
	json_t *arr;
	*ret = (struct netlock){ 0 };
	if (!j)
		return 0;
	if (!json_is_object(j) || json_get_u64(j, "locked_at_ns", &ret->locked_real_ns) < 0 ||
	    json_get_array(j, "conns", NETLOCK_MAX_CONNS, &arr) < 0)
		return -EBADMSG;
	if (json_object_get(j, "table") && (json_get_str(j, "table", &table) < 0 || !valid_image_table(table)))
		return -EBADMSG;
	if (table)
		snprintf(ret->image_table, sizeof(ret->image_table), "%s", table);
	size_t n = json_array_size(arr);
	ret->conns = calloc(n ? n : 1, sizeof(*ret->conns));
	if (!ret->conns)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r = conn_from_json(json_array_get(arr, i), &ret->conns[i]);
		if (r < 0)
			return r;
		ret->n = i + 1;
	}
	return 0;
}

void netlock_free(struct netlock *l)
{
	if (!l)
		return;
	free(l->conns);
	l->conns = NULL;
	l->n = 0;
}
