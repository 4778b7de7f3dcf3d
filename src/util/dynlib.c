/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/dynlib.h"

#include <dlfcn.h>
#include <errno.h>

#include "util/log.h"

static int fail(struct dynlib *l, const char *why)
{
	l->state = log_error_errno(-ENOPKG, "cannot load %s, needed %s (%s); install the %s package",
				   l->soname, l->needed, why, l->package);
	return l->state;
}

int dynlib_load(struct dynlib *l)
{
	if (l->state)
		return l->state < 0 ? l->state : 0;
	/* RTLD_NODELETE: the pointers stay valid for the life of the process;
	 * the handle is never closed. */
	void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!h)
		return fail(l, dlerror());
	for (size_t i = 0; i < l->n; i++) {
		l->fns[i] = dlsym(h, l->names[i]);
		if (!l->fns[i])
			return fail(l, dlerror());
	}
	l->state = 1;
	return 0;
}
