/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsers of the per-process objects on /proc text captured on Linux 6.18:
 * POSIX timers (/proc/PID/timers), file locks and inotify watches (fdinfo),
 * and their image records read back. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sysmacros.h>
#include <cmocka.h>

#include "engine/files.h"
#include "engine/inotify.h"
#include "engine/locks.h"
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
	json_t *core = json_object();
	assert_int_equal(timers_to_json(&t, core), 0);
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

	json_t *core = json_object();
	struct locks_rec back;
	assert_int_equal(locks_to_json(&l, core), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_parse), cmocka_unit_test(test_timers_json),
		cmocka_unit_test(test_locks_parse), cmocka_unit_test(test_inotify_parse),
		cmocka_unit_test(test_inotify_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
