/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Socket options (sk-opts.c), kept when they differ from a new socket's. */
#pragma once

#include "engine/sockets.h"

/* The option's key in the record's "opts" object. */
const char *sk_opt_key(enum sk_opt o);
int sk_opts_collect(int fd, struct sk_rec *s);
int sk_opts_apply(int fd, const struct sk_rec *s);
/* The socket filter (SO_ATTACH_FILTER, SO_LOCK_FILTER); logs. For inet
 * sockets sk_opts_apply does it, unix ones call it once refilled. */
int sk_filter_apply(int fd, const struct sk_rec *s);
