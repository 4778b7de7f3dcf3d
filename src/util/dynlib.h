/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Libraries that only some commands need (libcurl for Docker, libarchive
 * for container file systems, libnftables for the network lock) are
 * loaded on first use: linked, their ~40 dependencies would be mapped and
 * relocated by every `stasis` run, which is most of a small dump's time.
 *
 * The user keeps a table of function pointers (DYNLIB_TABLE) next to its
 * code; dynlib_load() fills it from soname once. On failure it logs one
 * line naming the library, what needs it and the package to install, and
 * returns -ENOPKG (again on later calls, without a new line). */
struct dynlib {
	const char *soname;  /* "libcurl.so.4" */
	const char *needed;  /* "for the Docker Engine API" */
	const char *package; /* Debian package: "libcurl4" */
	const char *const *names;
	void **fns;
	size_t n;
	int state; /* 0 not tried, 1 loaded, -errno failed */
};

/* X-macro helpers: LIST(X) names each function once, as X(name). */
#define DYNLIB_PTR(f) __typeof__(f) *f;
#define DYNLIB_NAME(f) #f,

int dynlib_load(struct dynlib *l);
