/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "runtime/docker-api.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_REPLY (64u << 20)

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
	if (!inited) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = true;
	}
	CURL *c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	char url[1024];
	snprintf(url, sizeof(url), "http://localhost/v1.41%s", path);
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	struct buf b = { 0 };
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, docker_socket_path());
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, text ? text : "");
	if (!text && streq(method, "GET"))
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	CURLcode cr = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	if (cr != CURLE_OK) {
		free(b.p);
		return log_error_errno(-ECONNREFUSED, "cannot reach the Docker daemon at %s (%s); is dockerd running?",
				       docker_socket_path(), curl_easy_strerror(cr));
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
