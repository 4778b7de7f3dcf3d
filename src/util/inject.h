/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fault injection for tests: a named point fails with -EIO when the
 * environment says so (STASIS_INJECT_FAIL=name), so the runner can check
 * that a failure at that step undoes everything. */
#pragma once

/* 0, or -EIO (logged) when STASIS_INJECT_FAIL names this point. */
int inject_fail(const char *point);
/* Tests: when STASIS_INJECT_PAUSE names this point, says so on stderr
 * ("paused at NAME") and waits there until a deferred signal comes
 * (util/interrupt.h: then -EINTR) or STASIS_INJECT_PAUSE_MS (default
 * 60000) pass (then 0), so that a test can look at what the dump holds at
 * that moment, or kill it there. */
int inject_pause(const char *point);
