/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsers of the per-process objects on /proc text captured on Linux 6.18:
 * POSIX timers (/proc/PID/timers), file locks and inotify watches (fdinfo),
 * resource limits (/proc/PID/limits),
 * and their image records read back. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <cmocka.h>

#include "engine/files.h"
#include "engine/inotify.h"
#include "engine/locks.h"
#include "engine/task.h"
#include "engine/timers.h"

static const char timers_text[] = "ID: 2\n"
				  "signal: 12/0000000000001234\n"
				  "notify: signal/tid.649\n"
				  "ClockID: 7\n"
				  "ID: 1\n"
				  "signal: 34/0000000000001234\n"
				  "notify: none/pid.649\n"
				  "ClockID: 0\n"
				  "ID: 0\n"
				  "signal: 34/00007ffd12345678\n"
				  "notify: signal/pid.649\n"
				  "ClockID: 1\n";

static void test_timers_parse(void **state)
{
	struct timers_rec t;
	assert_int_equal(timers_parse(timers_text, sizeof(timers_text) - 1, &t), 0);
	assert_int_equal(t.n, 3);
	assert_int_equal(t.t[0].id, 0); /* sorted by id */
	assert_int_equal(t.t[0].notify, SIGEV_SIGNAL);
	assert_int_equal(t.t[0].signo, 34);
	assert_true(t.t[0].sigval == 0x7ffd12345678ULL);
	assert_int_equal(t.t[0].clockid, 1);
	assert_int_equal(t.t[0].tid, 0);
	assert_int_equal(t.t[1].notify, SIGEV_NONE);
	assert_int_equal(t.t[2].id, 2);
	assert_int_equal(t.t[2].notify, SIGEV_SIGNAL | 4 /* SIGEV_THREAD_ID */);
	assert_int_equal(t.t[2].tid, 649);
	assert_int_equal(t.t[2].clockid, 7);
	timers_rec_free(&t);

	assert_int_equal(timers_parse("", 0, &t), 0);
	assert_int_equal(t.n, 0);
	timers_rec_free(&t);
	/* incomplete, unknown notify, duplicate id */
	static const char cut[] = "ID: 0\nsignal: 14/0\n";
	assert_int_equal(timers_parse(cut, sizeof(cut) - 1, &t), -EBADMSG);
	static const char odd[] = "ID: 0\nsignal: 14/0\nnotify: carrier/pid.1\nClockID: 0\n";
	assert_int_equal(timers_parse(odd, sizeof(odd) - 1, &t), -EBADMSG);
	static const char dup[] = "ID: 3\nsignal: 14/0\nnotify: none/pid.1\nClockID: 0\n"
				  "ID: 3\nsignal: 14/0\nnotify: none/pid.1\nClockID: 0\n";
	assert_int_equal(timers_parse(dup, sizeof(dup) - 1, &t), -EBADMSG);
}

static void test_timers_json(void **state)
{
	struct timers_rec t, back;
	assert_int_equal(timers_parse(timers_text, sizeof(timers_text) - 1, &t), 0);
	t.t[2].value_ns = 1500000000ULL;
	t.t[2].interval_ns = 20000000ULL;
	json_t *core = NULL;
	struct json_builder b;
	jb_begin(&b);
	timers_to_json(&t, &b);
	assert_int_equal(jb_end(&b, &core), 0);
	assert_int_equal(timers_from_json(core, &back), 0);
	assert_int_equal(back.n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(back.t[i].id, t.t[i].id);
		assert_int_equal(back.t[i].clockid, t.t[i].clockid);
		assert_int_equal(back.t[i].notify, t.t[i].notify);
		assert_int_equal(back.t[i].signo, t.t[i].signo);
		assert_true(back.t[i].sigval == t.t[i].sigval);
		assert_int_equal(back.t[i].tid, t.t[i].tid);
		assert_true(back.t[i].value_ns == t.t[i].value_ns);
		assert_true(back.t[i].interval_ns == t.t[i].interval_ns);
	}
	timers_rec_free(&back);
	/* a tid without SIGEV_THREAD_ID is refused */
	json_object_set_new(json_array_get(json_object_get(core, "posix_timers"), 0), "tid", json_integer(5));
	assert_int_equal(timers_from_json(core, &back), -EBADMSG);
	timers_rec_free(&back);
	json_decref(core);
	/* absent: none */
	core = json_object();
	assert_int_equal(timers_from_json(core, &back), 0);
	assert_int_equal(back.n, 0);
	json_decref(core);
	timers_rec_free(&t);
}

static void test_locks_parse(void **state)
{
	static const char posix[] = "pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t10953079\n"
				    "lock:\t1: POSIX  ADVISORY  WRITE 649 fe:00:10953079 10 29\n"
				    "lock:\t2: POSIX  ADVISORY  READ 649 fe:00:10953079 100 EOF\n"
				    "lock:\t3: POSIX  ADVISORY  WRITE 700 fe:00:10953079 200 300\n"
				    "lock:\t4: -> POSIX  ADVISORY  WRITE 649 fe:00:10953079 0 EOF\n";
	static const char other[] = "lock:\t1: FLOCK  ADVISORY  WRITE 12 fe:00:10953078 0 EOF\n"
				    "lock:\t2: OFDLCK ADVISORY  READ -1 fe:00:10953080 0 4\n";
	struct locks_rec l = { 0 };
	assert_int_equal(locks_parse_fdinfo(posix, sizeof(posix) - 1, 5, 649, &l), 0);
	assert_int_equal(l.n, 2); /* pid 700's and the waiting one skipped */
	assert_int_equal(l.l[0].fd, 5);
	assert_int_equal(l.l[0].kind, LOCK_KIND_POSIX);
	assert_true(l.l[0].write);
	assert_int_equal(l.l[0].start, 10);
	assert_int_equal(l.l[0].len, 20);
	assert_false(l.l[1].write);
	assert_int_equal(l.l[1].start, 100);
	assert_int_equal(l.l[1].len, 0);
	assert_int_equal(locks_parse_fdinfo(other, sizeof(other) - 1, 7, 649, &l), 0);
	assert_int_equal(l.n, 4); /* flock and OFD whatever their pid */
	assert_int_equal(l.l[2].kind, LOCK_KIND_FLOCK);
	assert_true(l.l[2].write);
	assert_int_equal(l.l[2].len, 0);
	assert_int_equal(l.l[3].kind, LOCK_KIND_OFD);
	assert_false(l.l[3].write);
	assert_int_equal(l.l[3].len, 5);

	json_t *core = NULL;
	struct locks_rec back;
	struct json_builder b;
	jb_begin(&b);
	locks_to_json(&l, &b);
	assert_int_equal(jb_end(&b, &core), 0);
	assert_int_equal(locks_from_json(core, &back), 0);
	assert_int_equal(back.n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(back.l[i].fd, l.l[i].fd);
		assert_int_equal(back.l[i].kind, l.l[i].kind);
		assert_int_equal(back.l[i].write, l.l[i].write);
		assert_int_equal(back.l[i].start, l.l[i].start);
		assert_int_equal(back.l[i].len, l.l[i].len);
	}
	locks_rec_free(&back);
	json_decref(core);
	locks_rec_free(&l);

	static const char lease[] = "lock:\t1: LEASE  ACTIVE    READ 649 fe:00:10953078 0 EOF\n";
	assert_int_equal(locks_parse_fdinfo(lease, sizeof(lease) - 1, 3, 649, &l), -EOPNOTSUPP);
	static const char junk[] = "lock:\t1: POSIX  ADVISORY  WRITE 649 fe:00:1 30 10\n";
	assert_int_equal(locks_parse_fdinfo(junk, sizeof(junk) - 1, 3, 649, &l), -EBADMSG);
	locks_rec_free(&l);
}

static void test_inotify_parse(void **state)
{
	static const char text[] =
		"pos:\t0\nflags:\t04000\nmnt_id:\t17\nino:\t1039\n"
		"inotify wd:4 ino:a72176 sdev:fe00000 mask:80000002 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 "
		"f_handle:7621a700099c6c60\n"
		"inotify wd:1 ino:a7216c sdev:800001 mask:300 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 "
		"f_handle:6c21a700d5f84ce7\n";
	struct inotify_rec o = { 0 };
	assert_int_equal(inotify_parse_fdinfo(text, sizeof(text) - 1, &o), 0);
	assert_int_equal(o.nwatches, 2);
	assert_int_equal(o.watches[0].wd, 1);
	assert_int_equal(o.watches[0].mask, 0x300);
	assert_int_equal(o.watches[0].ino, 0xa7216c);
	assert_true(o.watches[0].dev == makedev(8, 1));
	assert_int_equal(o.watches[1].wd, 4);
	assert_true(o.watches[1].mask == 0x80000002u);
	assert_true(o.watches[1].dev == makedev(254, 0));
	assert_int_equal(o.watches[1].handle_bytes, 8);
	assert_int_equal(o.watches[1].handle_type, 1);
	assert_int_equal(o.watches[1].handle[0], 0x76);
	assert_int_equal(o.watches[1].handle[7], 0x60);
	inotify_rec_free(&o);

	static const char bad[] = "inotify wd:1 ino:1 sdev:1 mask:1 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 "
				  "f_handle:6c21\n";
	assert_int_equal(inotify_parse_fdinfo(bad, sizeof(bad) - 1, &o), -EBADMSG);
	inotify_rec_free(&o);
}

static void test_inotify_json(void **state)
{
	struct inotify_rec o = { 0 }, back = { 0 };
	struct inotify_watch w[2] = { { .wd = 1, .mask = 0x300, .ino = 5, .dev = 7, .path = (char *)"/tmp/a" },
				      { .wd = 3, .mask = 0x80000002u, .ino = 6, .dev = 7, .path = (char *)"/tmp/b" } };
	o.watches = w;
	o.nwatches = 2;
	struct json_builder b;
	json_t *j = NULL;
	jb_begin(&b);
	inotify_to_json(&o, &b);
	assert_int_equal(jb_end(&b, &j), 0);
	assert_int_equal(inotify_from_json(j, &back), 0);
	assert_int_equal(back.nwatches, 2);
	assert_int_equal(back.watches[1].wd, 3);
	assert_true(back.watches[1].mask == 0x80000002u);
	assert_string_equal(back.watches[0].path, "/tmp/a");
	inotify_rec_free(&back);
	/* wds must ascend */
	json_object_set_new(json_array_get(json_object_get(j, "watches"), 1), "wd", json_integer(1));
	assert_int_equal(inotify_from_json(j, &back), -EBADMSG);
	inotify_rec_free(&back);
	json_decref(j);
}

/* One record of every fd kind as format 2 writes it (taken from images of
 * the ZDTM workloads): read and written again, it must come back equal. */
static const char fds_v2[] =
	"[{\"fd\":0,\"kind\":\"external\",\"path\":\"pipe:[302840]\",\"flags\":0,\"pos\":0,\"desc\":1,\"shared\":true},"
	"{\"fd\":1,\"kind\":\"reg\",\"path\":\"/tmp/x.log\",\"flags\":33793,\"pos\":6,\"desc\":2},"
	"{\"fd\":2,\"kind\":\"reg\",\"path\":\"/tmp/x.log\",\"flags\":33793,\"pos\":6,\"dup_of\":1,\"desc\":2},"
	"{\"fd\":3,\"kind\":\"eventfd\",\"path\":\"anon_inode:[eventfd]\",\"flags\":2050,\"pos\":0,\"desc\":3,"
	"\"anon\":\"8967452301000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\"},"
	"{\"fd\":5,\"kind\":\"signalfd\",\"path\":\"anon_inode:[signalfd]\",\"flags\":2050,\"pos\":0,\"desc\":5,"
	"\"anon\":\"0000000000000000000000000000000000080000000000000000000000000000000000000000000000000000000000000000000000000000\"},"
	"{\"fd\":6,\"kind\":\"timerfd\",\"path\":\"anon_inode:[timerfd]\",\"flags\":2050,\"pos\":0,\"desc\":6,"
	"\"anon\":\"00000000000000000000000000000000000000000000000001000000000000000000000000000000270ffdf70600000000863ba101000000\"},"
	"{\"fd\":7,\"kind\":\"dir\",\"path\":\"/tmp/work\",\"flags\":622592,\"pos\":0,\"desc\":7},"
	"{\"fd\":8,\"kind\":\"epoll\",\"path\":\"anon_inode:[eventpoll]\",\"flags\":524290,\"pos\":0,\"desc\":8,\"targets\":"
	"[{\"tfd\":3,\"events\":25,\"data\":\"feedfacecafe0001\"},{\"tfd\":6,\"events\":2147483673,\"data\":\"feedfacecafe0002\"}]},"
	"{\"fd\":9,\"kind\":\"chr\",\"path\":\"/dev/null\",\"flags\":32769,\"pos\":0,\"desc\":9,\"rdev\":259},"
	"{\"fd\":10,\"kind\":\"reg\",\"path\":\"/memfd:zdtm-shm (deleted)\",\"flags\":557058,\"pos\":0,"
	"\"obj\":{\"dev\":1,\"ino\":1505,\"size\":262144},\"desc\":10,\"shared\":true},"
	"{\"fd\":11,\"kind\":\"pipe\",\"path\":\"pipe:[300005]\",\"flags\":0,\"pos\":0,\"desc\":11,\"shared\":true,"
	"\"anon\":\"ZERO\",\"pipe_id\":300005,\"pipe_size\":65536},"
	"{\"fd\":12,\"kind\":\"pipe\",\"path\":\"/tmp/work/fifo\",\"flags\":559104,\"pos\":0,\"desc\":12,"
	"\"anon\":\"ZERO\",\"pipe_id\":10955507,\"pipe_size\":131072},"
	"{\"fd\":13,\"kind\":\"inotify\",\"path\":\"anon_inode:inotify\",\"flags\":526336,\"pos\":0,\"desc\":13,"
	"\"anon\":\"ZERO\",\"watches\":[{\"wd\":1,\"mask\":\"0000000000000300\",\"ino\":10956204,\"dev\":65024,"
	"\"path\":\"/tmp/work/wdir\"}]},"
	"{\"fd\":14,\"kind\":\"socket\",\"path\":\"socket:[304254]\",\"flags\":2,\"pos\":0,\"socket\":{\"ino\":304254,"
	"\"family\":\"inet\",\"type\":\"stream\",\"protocol\":6,\"state\":\"listen\",\"peer_ino\":0,"
	"\"connect_by_name\":false,\"backlog\":5,\"shutdown\":0,\"name\":\"020094bd7f0000010000000000000000\","
	"\"name_text\":\"127.0.0.1:38077\",\"opts\":{\"reuseaddr\":1,\"nodelay\":1},\"queue\":\"\"},\"desc\":14,"
	"\"anon\":\"ZERO\"},"
	"{\"fd\":15,\"kind\":\"socket\",\"path\":\"socket:[304259]\",\"flags\":2,\"pos\":0,\"socket\":{\"ino\":304259,"
	"\"family\":\"unix\",\"type\":\"dgram\",\"protocol\":0,\"state\":\"connected\",\"peer_ino\":304260,"
	"\"connect_by_name\":false,\"backlog\":0,\"shutdown\":0,\"name\":\"0100\",\"name_text\":\"(unbound)\","
	"\"peer_name\":\"0100\",\"peer_name_text\":\"(unbound)\",\"opts\":{},\"queue\":\"616263\",\"msgs\":[3]},"
	"\"desc\":15,\"anon\":\"ZERO\"}]";

static json_t *load_fds(const char *text)
{
	/* "ZERO": the all-zero anon, too long to spell out each time */
	char *s = strdup(text), *z;
	assert_non_null(s);
	while ((z = strstr(s, "\"ZERO\""))) {
		size_t at = (size_t)(z - s);
		char *n = malloc(strlen(s) + 112);
		assert_non_null(n);
		snprintf(n, strlen(s) + 112, "%.*s\"%0112d\"%s", (int)at, s, 0, z + 6);
		free(s);
		s = n;
	}
	json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
	free(s);
	assert_non_null(j);
	return j;
}

static void test_fds_json(void **state)
{
	json_t *j = load_fds(fds_v2), *out = NULL;
	struct files_rec f = { 0 };
	assert_int_equal(files_from_json(j, &f), 0);
	assert_int_equal(f.n, 15);
	assert_string_equal(fd_kind_name(&f.fds[0]), "external");
	assert_true(fd_is_external(&f.fds[0]));
	assert_int_equal(f.fds[2].dup_of, 1);
	assert_string_equal(fd_kind_name(&f.fds[14]), "socket");
	assert_int_equal(files_to_json(&f, &out), 0);
	assert_true(json_equal(j, out));
	files_rec_free(&f);
	json_decref(out);

	/* format 2 wrote no rdev: the path fixes it */
	json_object_del(json_array_get(j, 8), "rdev");
	assert_int_equal(files_from_json(j, &f), 0);
	files_rec_free(&f);
	json_object_set_new(json_array_get(j, 8), "rdev", json_integer(259));

	/* damaged one field at a time */
	static const struct {
		int fd;
		const char *key, *value; /* NULL value: the key removed */
	} bad[] = {
		{ 1, "kind", "\"banana\"" }, { 1, "path", "\"relative\"" }, { 9, "path", "\"dev/null\"" },
		{ 11, "anon", NULL },        { 11, "pipe_size", "100" },    { 3, "anon", "\"00\"" },
		{ 8, "targets", NULL },      { 13, "watches", NULL },       { 14, "socket", NULL },
		{ 2, "dup_of", "2" },        { 1, "desc", "0" },            { 10, "obj", "{}" },
		/* what a dump never writes: another device, a path not normal,
		 * flags open() drops (O_TRUNC), a directory open for writing, a
		 * pipe named for another pipe */
		{ 9, "rdev", "5" },          { 9, "path", "\"/etc/shadow\"" }, { 1, "flags", "33281" },
		{ 1, "path", "\"/tmp/../etc/shadow\"" }, { 1, "path", "\"/tmp//x.log\"" }, { 7, "flags", "622594" },
		{ 11, "path", "\"pipe:[1]\"" }, { 12, "path", "\"/tmp/./fifo\"" }, { 1, "flags", "3" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *o = NULL;
		for (size_t k = 0; k < json_array_size(j); k++)
			if (json_integer_value(json_object_get(json_array_get(j, k), "fd")) == bad[i].fd)
				o = json_array_get(j, k);
		assert_non_null(o);
		json_t *keep = json_incref(json_object_get(o, bad[i].key));
		if (bad[i].value)
			json_object_set_new(o, bad[i].key, json_loads(bad[i].value, JSON_DECODE_ANY, NULL));
		else
			json_object_del(o, bad[i].key);
		struct files_rec g = { 0 };
		if (files_from_json(j, &g) != -EBADMSG)
			fail_msg("fd %d with %s = %s was taken", bad[i].fd, bad[i].key, bad[i].value ?: "(none)");
		files_rec_free(&g);
		json_object_set_new(o, bad[i].key, keep);
	}
	json_decref(j);
}

/* /proc/PID/limits of Linux 6.18, two limits lowered. */
static const char limits_text[] =
	"Limit                     Soft Limit           Hard Limit           Units     \n"
	"Max cpu time              unlimited            unlimited            seconds   \n"
	"Max file size             unlimited            unlimited            bytes     \n"
	"Max data size             unlimited            unlimited            bytes     \n"
	"Max stack size            8388608              unlimited            bytes     \n"
	"Max core file size        0                    unlimited            bytes     \n"
	"Max resident set          unlimited            unlimited            bytes     \n"
	"Max processes             63704                63704                processes \n"
	"Max open files            1024                 1048576              files     \n"
	"Max locked memory         8388608              8388608              bytes     \n"
	"Max address space         unlimited            unlimited            bytes     \n"
	"Max file locks            unlimited            unlimited            locks     \n"
	"Max pending signals       63704                63704                signals   \n"
	"Max msgqueue size         819200               819200               bytes     \n"
	"Max nice priority         0                    0                    \n"
	"Max realtime priority     0                    0                    \n"
	"Max realtime timeout      unlimited            unlimited            us        \n";

static void test_limits_parse(void **state)
{
	struct task_rec t = { 0 };
	(void)state;
	assert_int_equal(task_parse_limits(limits_text, sizeof(limits_text) - 1, &t), 0);
	assert_true(t.rlim[RLIMIT_CPU].cur == UINT64_MAX && t.rlim[RLIMIT_CPU].max == UINT64_MAX);
	assert_true(t.rlim[RLIMIT_STACK].cur == 8388608 && t.rlim[RLIMIT_STACK].max == UINT64_MAX);
	assert_true(t.rlim[RLIMIT_CORE].cur == 0);
	assert_true(t.rlim[RLIMIT_NOFILE].cur == 1024 && t.rlim[RLIMIT_NOFILE].max == 1048576);
	assert_true(t.rlim[RLIMIT_RTPRIO].max == 0);
	assert_true(t.rlim[RLIMIT_RTTIME].cur == UINT64_MAX);
	/* cut short, or a value that is not a number: the dump asks the process */
	assert_int_equal(task_parse_limits(limits_text, sizeof(limits_text) - 80, &t), -EBADMSG);
	char bad[sizeof(limits_text)];
	memcpy(bad, limits_text, sizeof(bad));
	memcpy(strstr(bad, "1024 "), "10x4", 4);
	assert_int_equal(task_parse_limits(bad, sizeof(bad) - 1, &t), -EBADMSG);
	assert_int_equal(task_parse_limits("", 0, &t), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_parse), cmocka_unit_test(test_timers_json),
		cmocka_unit_test(test_locks_parse), cmocka_unit_test(test_inotify_parse),
		cmocka_unit_test(test_inotify_json), cmocka_unit_test(test_fds_json),
		cmocka_unit_test(test_limits_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
