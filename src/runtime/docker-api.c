/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "runtime/docker-api.h"

/* The calls go through lc below (no type-checking macros around them). */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/dynlib.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_REPLY (64u << 20)

/* libcurl and its TLS/HTTP2/LDAP chain are loaded only for Docker (see
 * util/dynlib.h). */
#define CURL_FNS(X)                                                                  \
	X(curl_global_init) X(curl_easy_init) X(curl_easy_setopt) X(curl_easy_perform) \
	X(curl_easy_getinfo) X(curl_easy_cleanup) X(curl_easy_strerror)                \
	X(curl_slist_append) X(curl_slist_free_all)

static struct {
	CURL_FNS(DYNLIB_PTR)
} lc;
static const char *const lc_names[] = { CURL_FNS(DYNLIB_NAME) };
static struct dynlib lc_lib = { "libcurl.so.4", "for the Docker Engine API", "libcurl4", lc_names,
				(void **)&lc, ARRAY_SIZE(lc_names), 0 };

struct buf {
	char *p;
	size_t len;
};

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t add = size * n;
	if (b->len + add > MAX_REPLY)
		return 0;
	char *np = realloc(b->p, b->len + add + 1);
	if (!np)
		return 0;
	memcpy(np + b->len, data, add);
	b->p = np;
	b->len += add;
	b->p[b->len] = 0;
	return add;
}

const char *docker_socket_path(void)
{
	const char *h = getenv("DOCKER_HOST");
	if (h && startswith(h, "unix://"))
		return h + 7;
	return "/var/run/docker.sock";
}

int docker_call(const char *method, const char *path, const json_t *body, json_t **ret)
{
	static bool inited;
	int r = dynlib_load(&lc_lib);
	if (r < 0)
		return r;
	if (!inited) {
		lc.curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = true;
	}
	CURL *c = lc.curl_easy_init();
	if (!c)
		return -ENOMEM;
	char url[1024];
	snprintf(url, sizeof(url), "http://localhost/v1.41%s", path);
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct curl_slist *hdr = lc.curl_slist_append(NULL, "Content-Type: application/json");
	struct buf b = { 0 };
	lc.curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, docker_socket_path());
	lc.curl_easy_setopt(c, CURLOPT_URL, url);
	lc.curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	lc.curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	lc.curl_easy_setopt(c, CURLOPT_POSTFIELDS, text ? text : "");
	if (!text && streq(method, "GET"))
		lc.curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	lc.curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	lc.curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	lc.curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	CURLcode cr = lc.curl_easy_perform(c);
	long status = 0;
	lc.curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	lc.curl_slist_free_all(hdr);
	lc.curl_easy_cleanup(c);
	if (cr != CURLE_OK) {
		free(b.p);
		return log_error_errno(-ECONNREFUSED, "cannot reach the Docker daemon at %s (%s); is dockerd running?",
				       docker_socket_path(), lc.curl_easy_strerror(cr));
	}
	if (ret)
		*ret = b.p ? json_loads(b.p, 0, NULL) : NULL;
	free(b.p);
	return (int)status;
}

const char *docker_message(const json_t *reply)
{
	const char *m = json_string_value(json_object_get(reply, "message"));
	return m ? m : "no message";
}
