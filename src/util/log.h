/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging. Errors go to stderr as one line "stasis: ..." (only the first
 * error of a run, unless -v) and to the log
 * file; info and debug go to stderr only with -v, and always to the log
 * file when one is open. Messages may use %m: errno is set from the error
 * code before formatting. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

enum log_level {
	LOG_QUIET = -1, /* nothing on stderr, not even errors (fuzzers) */
	LOG_ERR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

/* Sets the level; the first call also sets up the count of errors shown,
 * shared with the children forked later. */
void log_set_level(int level);
int log_get_level(void);
/* Errors shown on stderr so far: at the default level only the first of
 * them is, the rest go to the log file (one failure, one line). */
unsigned log_errors_shown(void);
/* Opens (appends to) a log file that receives every message at debug level. */
int log_open_file(const char *path);
/* The log file's fd (-1: none), and the same log taken over by a process
 * of ours that executed itself (the lazy filler), from that fd. */
int log_file_fd(void);
int log_open_fd(int fd);
void log_close_file(void);
/* True when a debug message goes anywhere (-vv, or a log file is open):
 * lets log_debug skip formatting otherwise. */
bool log_debug_enabled(void);
void log_msg(int level, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* While set (not NULL nor ""), every message starts with p: the context
 * of code that logs about something as its own (an fd in flight is
 * described as an fd of ours: sk-scm.c says whose queue it is in). */
void log_set_prefix(const char *p);
/* While set (fn not NULL), errors and warnings go to fn instead of stderr,
 * uncounted (the log file still gets them): `stasis check` reports what
 * a dump would refuse or lose in the dump's own words. */
void log_set_sink(void (*fn)(int level, const char *msg, void *arg), void *arg);

/* Log at ERR level with errno set to -r (or r) and return -abs(r). */
#define log_error_errno(r, ...)                                 \
	({                                                      \
		int _le = (r) < 0 ? -(r) : (r);                 \
		log_msg(LOG_ERR, _le, __VA_ARGS__);             \
		-_le;                                           \
	})
#define log_warn_errno(r, ...)                                  \
	({                                                      \
		int _le = (r) < 0 ? -(r) : (r);                 \
		log_msg(LOG_WARN, _le, __VA_ARGS__);            \
		-_le;                                           \
	})
#define log_error(...) log_msg(LOG_ERR, 0, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, 0, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...)                                          \
	do {                                                    \
		if (log_debug_enabled())                        \
			log_msg(LOG_DEBUG, 0, __VA_ARGS__);     \
	} while (0)
