/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Scope-bound ownership helpers (__attribute__((cleanup))).
 * Destructors accept NULL / -1 so a variable may be handed over with
 * TAKE_PTR / TAKE_FD and its cleanup then does nothing. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static inline void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Hand ownership over: returns the value and leaves NULL / -1 behind. */
#define TAKE_PTR(p)                             \
	({                                      \
		__typeof__(p) _tp = (p);        \
		(p) = NULL;                     \
		_tp;                            \
	})
#define TAKE_FD(fd)                             \
	({                                      \
		int _tf = (fd);                 \
		(fd) = -1;                      \
		_tf;                            \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
