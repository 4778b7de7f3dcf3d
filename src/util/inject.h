/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fault injection for tests: a named point fails with -EIO when the
 * environment says so (STASIS_INJECT_FAIL=name), so the runner can check
 * that a failure at that step undoes everything. */
#pragma once

/* 0, or -EIO (logged) when STASIS_INJECT_FAIL names this point. */
int inject_fail(const char *point);
