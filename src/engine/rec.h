/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers for the per-process JSON records (docs/FORMAT.md). Values
 * that may use all 64 bits (signal masks, rlimits) are kept as 16-digit hex
 * strings, since JSON integers here are signed 64-bit. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "image/image.h"

int json_set_x64(json_t *obj, const char *key, uint64_t v);
int json_get_x64(const json_t *obj, const char *key, uint64_t *ret);
int json_set_u64(json_t *obj, const char *key, uint64_t v);
int json_set_str(json_t *obj, const char *key, const char *s);

/* Fail-injection points for tests (env STASIS_INJECT_FAIL=name). */
int inject_fail(const char *point);
