/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Handing fds to the processes being restored (DESIGN.md §2.3): objects
 * the controller makes itself (pipes, sockets) or takes out of another
 * restored process are sent with SCM_RIGHTS over a socketpair whose other
 * end every stub inherits, and received by a remote recvmsg(). */
#pragma once

#include <sys/types.h>

#include "engine/remote.h"

/* The fd number the transport has in a freshly started stub. */
#define FDPASS_STUB_FD 3

/* Makes the socketpair: *ret_ctl stays with us, *ret_stub goes to the stub. */
int fdpass_open(int *ret_ctl, int *ret_stub);
/* Sends our fd over ctl and has tid receive it on tfd; returns the fd
 * number it got there (close-on-exec) or -errno. */
long fdpass_push(struct remote *r, pid_t tid, int ctl, int tfd, int fd);
/* A copy of fd `fd` of the process behind pidfd, for us. */
int fdpass_take(int pidfd, int fd);
