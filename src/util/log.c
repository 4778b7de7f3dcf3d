/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging to stderr (filtered by level) and to an optional log file (every
 * message, with time and level, so a failed run can be diagnosed later).
 *
 * One failure, one line: at the default verbosity only the first error
 * reaches stderr; what follows it (the callers' view of the same failure,
 * warnings from the cleanup) goes to the log file, and to stderr with -v.
 * The first is the one that knows the cause. The count lives in shared
 * memory so that children we fork (a pid namespace's init, a helper
 * inside a container) and we keep one count between us. */
#include "util/log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"

static int log_level = LOG_WARN; /* errors and warnings until -v */
static FILE *log_file;

static void (*sink)(int level, const char *msg, void *arg);
static void *sink_arg;

static unsigned errors_local;
static unsigned *errors_shown = &errors_local;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static char prefix[256]; /* log_set_prefix */

void log_set_prefix(const char *p)
{
	snprintf(prefix, sizeof(prefix), "%s", p ? p : "");
}

void log_set_level(int level)
{
	log_level = level;
	if (errors_shown == &errors_local) {
		void *p = mmap(NULL, sizeof(unsigned), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			errors_shown = p;
	}
}

void log_set_sink(void (*fn)(int level, const char *msg, void *arg), void *arg)
{
	sink = fn;
	sink_arg = arg;
}

unsigned log_errors_shown(void)
{
	return __atomic_load_n(errors_shown, __ATOMIC_SEQ_CST);
}

/* After the first error, quiet unless -v: see the top of the file. */
static bool shown_on_stderr(int level)
{
	if (level > log_level)
		return false;
	/* Counted at every level: cli_failed() must not add its "without
	 * saying why" line under -v after an error was shown. */
	if (level == LOG_ERR)
		return __atomic_fetch_add(errors_shown, 1, __ATOMIC_SEQ_CST) == 0 || log_level >= LOG_INFO;
	if (level > LOG_WARN || log_level >= LOG_INFO)
		return true;
	return log_errors_shown() == 0;
}

int log_get_level(void)
{
	return log_level;
}

bool log_debug_enabled(void)
{
	return log_level >= LOG_DEBUG || log_file;
}

int log_open_file(const char *path)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "ae");
	if (!f)
		return -errno;
	TAKE_FD(fd);
	setvbuf(f, NULL, _IOLBF, 0);
	log_close_file();
	log_file = f;
	return 0;
}

int log_file_fd(void)
{
	return log_file ? fileno(log_file) : -1;
}

int log_open_fd(int fd)
{
	FILE *f = fdopen(fd, "ae");
	if (!f)
		return -errno;
	setvbuf(f, NULL, _IOLBF, 0);
	log_close_file();
	log_file = f;
	return 0;
}

void log_close_file(void)
{
	if (log_file)
		fclose(log_file);
	log_file = NULL;
}

static void log_to_file(int level, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(log_file, "%s.%06ldZ [%d] %s: %s\n", stamp, ts.tv_nsec / 1000,
		(int)getpid(), level_names[level], msg);
}

static void log_to_stderr(int level, const char *msg)
{
	if (level == LOG_WARN)
		fprintf(stderr, "stasis: warning: %s\n", msg);
	else
		fprintf(stderr, "stasis: %s\n", msg);
}

void log_msg(int level, int err, const char *fmt, ...)
{
	char msg[4096];
	int saved = errno;
	va_list ap;

	if (level < LOG_ERR)
		level = LOG_ERR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	if (level > log_level && !log_file) {
		errno = saved;
		return;
	}
	/* %m in fmt prints strerror(errno): make it the caller's error code. */
	errno = err;
	size_t at = (size_t)snprintf(msg, sizeof(msg), "%s", prefix);
	va_start(ap, fmt);
	vsnprintf(msg + at, sizeof(msg) - at, fmt, ap);
	va_end(ap);
	if (sink && level <= LOG_WARN)
		sink(level, msg, sink_arg);
	else if (shown_on_stderr(level))
		log_to_stderr(level, msg);
	if (log_file)
		log_to_file(level, msg);
	errno = saved;
}
