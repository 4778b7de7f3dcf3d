/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the engine's record writers share besides image/json.h. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "image/image.h"

/* Fail-injection points for tests (env STASIS_INJECT_FAIL=name). */
int inject_fail(const char *point);
