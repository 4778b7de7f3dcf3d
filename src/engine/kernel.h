/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kernel features stasis needs, probed once (for `stasis check`). */
#pragma once

#include <stdbool.h>
#include <stdio.h>

struct kfeature {
	const char *name;
	const char *why;
	bool required;
	bool present;
};

/* Probes everything; returns the table and its length. */
const struct kfeature *kernel_features(size_t *ret_n);
