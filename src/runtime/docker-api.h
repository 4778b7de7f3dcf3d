/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Docker Engine API over its unix socket (libcurl): $DOCKER_HOST when
 * it is unix://PATH, else /var/run/docker.sock. */
#pragma once

#include <jansson.h>

/* METHOD path (e.g. "/containers/ID/json"), with a JSON body or NULL.
 * Returns the HTTP status (>= 100) and the reply parsed as JSON when it is
 * (else NULL), or -errno when the daemon cannot be reached (logged). */
int docker_call(const char *method, const char *path, const json_t *body, json_t **ret);
/* The daemon's error message in a reply, or a placeholder. */
const char *docker_message(const json_t *reply);
/* The Docker socket's path: $DOCKER_HOST's when it is unix://PATH, else
 * /var/run/docker.sock. */
const char *docker_socket_path(void);
