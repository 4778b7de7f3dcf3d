/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "socket" object of an fd record (docs/FORMAT.md). Addresses are the
 * raw sockaddr bytes in hex, with a readable copy beside them that readers
 * ignore. The queue is hex; "msgs" splits it into datagrams. */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "engine/sk-opts.h"
#include "engine/sockets.h"
#include "util/cleanup.h"
#include "util/util.h"

static const char *const family_names[] = { "unix", "inet", "inet6" };
static const int families[] = { AF_UNIX, AF_INET, AF_INET6 };
static const char *const type_names[] = { "stream", "dgram", "seqpacket", "raw" };
static const int types[] = { SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW };
static const char *const state_names[SK_STATE_MAX] = { "unconnected", "listen", "connected" };

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (streq(names[i], s))
			return (int)i;
	return -1;
}

static int value_index(const int *v, size_t n, int x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return (int)i;
	return -1;
}

/* The key's string must outlive the builder (it names the first error). */
static void addr_to_json(struct json_builder *b, const char *key, const char *tkey, int family,
			 const struct sk_addr *a)
{
	char text[256];
	if (a->len == 0)
		return;
	sk_addr_format(family, a, text, sizeof(text));
	jb_hex(b, key, &a->ss, a->len);
	jb_str(b, tkey, text);
}

static int addr_from_json(const json_t *j, const char *key, int family, struct sk_addr *a)
{
	_cleanup_free_ void *buf = NULL;
	size_t len;
	sa_family_t f;

	if (!json_object_get(j, key))
		return 0;
	int r = json_get_hex_alloc(j, key, sizeof(a->ss), &buf, &len);
	if (r < 0)
		return r;
	if (len < sizeof(f))
		return -EBADMSG;
	memcpy(&f, buf, sizeof(f));
	if (f != family || (family == AF_UNIX && len > sizeof(struct sockaddr_un)) ||
	    (family == AF_INET && len != sizeof(struct sockaddr_in)) ||
	    (family == AF_INET6 && len != sizeof(struct sockaddr_in6)))
		return -EBADMSG;
	memcpy(&a->ss, buf, len);
	a->len = (socklen_t)len;
	return 0;
}

static void opts_to_json(const struct sk_rec *s, struct json_builder *b)
{
	struct json_builder o;
	jb_begin(&o);
	for (int i = 0; i < SK_OPT_MAX; i++)
		if (s->opts_set & (1u << i))
			jb_int(&o, sk_opt_key(i), s->opts[i]);
	jb_obj(b, "opts", &o);
}

static int opts_from_json(const json_t *j, struct sk_rec *s)
{
	json_t *o = json_object_get(j, "opts");
	if (!json_is_object(o))
		return -EBADMSG;
	for (int i = 0; i < SK_OPT_MAX; i++) {
		if (!json_object_get(o, sk_opt_key(i)))
			continue;
		int r = json_get_int(o, sk_opt_key(i), &s->opts[i]);
		if (r < 0)
			return r;
		s->opts_set |= 1u << i;
	}
	return 0;
}

static void pending_to_json(const struct sk_rec *s, struct json_builder *b)
{
	if (!s->npending)
		return;
	json_t *a = jb_array(b, "pending");
	for (size_t i = 0; a && i < s->npending; i++)
		jb_append(b, a, json_integer((json_int_t)s->pending[i]));
}

/* The socket filter, optional: whole instructions, at most BPF_MAXINSNS
 * (the kernel checks the program itself when it is attached). */
static int filter_from_json(const json_t *j, struct sk_rec *s)
{
	void *buf;
	size_t len;
	int r;
	if (json_object_get(j, "filter_locked") && (r = json_get_bool(j, "filter_locked", &s->filter_locked)) < 0)
		return r;
	if (!json_object_get(j, "filter"))
		return 0;
	if ((r = json_get_hex_alloc(j, "filter", SK_MAX_FILTER * sizeof(*s->filter), &buf, &len)) < 0)
		return r;
	s->filter = buf;
	if (!len || len % sizeof(*s->filter))
		return -EBADMSG;
	s->filter_len = (uint16_t)(len / sizeof(*s->filter));
	return 0;
}

/* An absolute directory, optional. */
static int dir_from_json(const json_t *j, const char *key, char **ret)
{
	const char *d;
	int r;
	if (!json_object_get(j, key))
		return 0;
	if ((r = json_get_str(j, key, &d)) < 0)
		return r;
	if (d[0] != '/' || strlen(d) >= PATH_MAX)
		return -EBADMSG;
	*ret = strdup(d);
	return *ret ? 0 : -ENOMEM;
}

/* Both optional (Version 4 additions in FORMAT.md). */
static int pending_from_json(const json_t *j, struct sk_rec *s)
{
	json_t *a;
	int r;
	if (json_object_get(j, "pending_connect") && (r = json_get_bool(j, "pending_connect", &s->pending_connect)) < 0)
		return r;
	if (!json_object_get(j, "pending"))
		return 0;
	if ((r = json_get_array(j, "pending", SK_MAX_PENDING, &a)) < 0)
		return r;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const json_t *v = json_array_get(a, i);
		if (!json_is_integer(v) || json_integer_value(v) <= 0)
			return -EBADMSG;
		s->pending[s->npending++] = (uint64_t)json_integer_value(v);
	}
	return 0;
}

static void queue_to_json(const struct sk_rec *s, struct json_builder *b)
{
	jb_hex(b, "queue", s->queue, s->queue_len);
	if (s->type == SOCK_STREAM)
		return;
	json_t *a = jb_array(b, "msgs");
	for (size_t i = 0; a && i < s->nmsgs; i++)
		jb_append(b, a, json_integer(s->msg_len[i]));
}

static int queue_from_json(const json_t *j, struct sk_rec *s)
{
	void *q;
	json_t *a;
	int r = json_get_hex_alloc(j, "queue", SK_MAX_QUEUE, &q, &s->queue_len);
	if (r < 0)
		return r;
	s->queue = q;
	if (s->type == SOCK_STREAM)
		return json_object_get(j, "msgs") ? -EBADMSG : 0;
	if ((r = json_get_array(j, "msgs", SK_MAX_MSGS, &a)) < 0)
		return r;
	size_t n = json_array_size(a), total = 0;
	s->msg_len = calloc(n ? n : 1, sizeof(*s->msg_len));
	if (!s->msg_len)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(a, i);
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > SK_MAX_QUEUE)
			return -EBADMSG;
		s->msg_len[i] = (uint32_t)json_integer_value(v);
		total += s->msg_len[i];
		s->nmsgs = i + 1;
	}
	return total == s->queue_len ? 0 : -EBADMSG;
}

void sk_to_json(const struct sk_rec *s, struct json_builder *b)
{
	int fi = value_index(families, ARRAY_SIZE(families), s->family);
	int ti = value_index(types, ARRAY_SIZE(types), s->type);
	if (fi < 0 || ti < 0 || s->state >= SK_STATE_MAX) {
		jb_fail(b, "socket", -EINVAL);
		return;
	}
	struct json_builder j;
	jb_begin(&j);
	jb_u64(&j, "ino", s->ino);
	jb_str(&j, "family", family_names[fi]);
	jb_str(&j, "type", type_names[ti]);
	jb_int(&j, "protocol", s->protocol);
	jb_str(&j, "state", state_names[s->state]);
	jb_u64(&j, "peer_ino", s->peer_ino);
	jb_bool(&j, "connect_by_name", s->connect_by_name);
	jb_int(&j, "backlog", s->backlog);
	jb_int(&j, "shutdown", s->shutdown);
	addr_to_json(&j, "name", "name_text", s->family, &s->name);
	addr_to_json(&j, "peer_name", "peer_name_text", s->family, &s->peer_name);
	if (s->name_gone)
		jb_bool(&j, "name_gone", true);
	if (s->pending_connect)
		jb_bool(&j, "pending_connect", true);
	if (s->dir)
		jb_str(&j, "dir", s->dir);
	if (s->filter_len)
		jb_hex(&j, "filter", s->filter, s->filter_len * sizeof(*s->filter));
	if (s->filter_locked)
		jb_bool(&j, "filter_locked", true);
	if (s->peer_dir)
		jb_str(&j, "peer_dir", s->peer_dir);
	pending_to_json(s, &j);
	opts_to_json(s, &j);
	queue_to_json(s, &j);
	sk_scm_to_json(s, &j);
	jb_obj(b, "socket", &j);
}

/* Combinations the restore code relies on. */
static bool consistent(const struct sk_rec *s)
{
	if (s->family == AF_UNIX ? s->protocol != 0 || s->type == SOCK_RAW
				 : !sk_raw_handles(s) && (s->type == SOCK_SEQPACKET ||
					   s->protocol != (s->type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP)))
		return false;
	if (s->state == SK_LISTEN && (s->type == SOCK_DGRAM || s->type == SOCK_RAW))
		return false;
	if (s->family != AF_UNIX && (s->peer_ino || s->connect_by_name || s->queue_len || s->nmsgs ||
				     (s->state == SK_CONNECTED && (s->type == SOCK_STREAM || !s->peer_name.len))))
		return false;
	if (s->connect_by_name && (s->type != SOCK_DGRAM || s->state != SK_CONNECTED || s->peer_name.len <=
				   offsetof(struct sockaddr_un, sun_path)))
		return false;
	if ((s->npending && (s->family != AF_UNIX || s->state != SK_LISTEN)) ||
	    (s->pending_connect && (s->family != AF_UNIX || s->state != SK_CONNECTED || s->type == SOCK_DGRAM ||
				    s->peer_name.len <= offsetof(struct sockaddr_un, sun_path) || s->queue_len)))
		return false;
	return s->backlog >= 0 && s->backlog <= SK_MAX_BACKLOG && s->shutdown >= 0 && s->shutdown <= 3;
}

int sk_from_json(const json_t *obj, struct sk_rec *s)
{
	const char *family, *type, *state;
	const json_t *j = json_object_get(obj, "socket");
	int r, fi, ti, si;

	*s = (struct sk_rec){ 0 };
	if (!json_is_object(j))
		return -EBADMSG;
	if ((r = json_get_u64(j, "ino", &s->ino)) < 0 || (r = json_get_str(j, "family", &family)) < 0 ||
	    (r = json_get_str(j, "type", &type)) < 0 || (r = json_get_int(j, "protocol", &s->protocol)) < 0 ||
	    (r = json_get_str(j, "state", &state)) < 0 || (r = json_get_u64(j, "peer_ino", &s->peer_ino)) < 0 ||
	    (r = json_get_bool(j, "connect_by_name", &s->connect_by_name)) < 0 ||
	    (r = json_get_int(j, "backlog", &s->backlog)) < 0 || (r = json_get_int(j, "shutdown", &s->shutdown)) < 0)
		return r;
	fi = name_index(family_names, ARRAY_SIZE(family_names), family);
	ti = name_index(type_names, ARRAY_SIZE(type_names), type);
	si = name_index(state_names, ARRAY_SIZE(state_names), state);
	if (fi < 0 || ti < 0 || si < 0)
		return -EBADMSG;
	s->family = families[fi];
	s->type = types[ti];
	s->state = (enum sk_state)si;
	if ((json_object_get(j, "name_gone") && (r = json_get_bool(j, "name_gone", &s->name_gone)) < 0) ||
	    (r = pending_from_json(j, s)) < 0 || (r = dir_from_json(j, "dir", &s->dir)) < 0 ||
	    (r = dir_from_json(j, "peer_dir", &s->peer_dir)) < 0 || (r = filter_from_json(j, s)) < 0)
		return r;
	if ((r = addr_from_json(j, "name", s->family, &s->name)) < 0 ||
	    (r = addr_from_json(j, "peer_name", s->family, &s->peer_name)) < 0 || (r = opts_from_json(j, s)) < 0 ||
	    (r = queue_from_json(j, s)) < 0 || (r = sk_scm_from_json(j, s)) < 0)
		return r;
	return consistent(s) ? 0 : -EBADMSG;
}
