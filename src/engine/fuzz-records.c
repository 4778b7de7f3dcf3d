/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz hook: every record parser of the engine over one JSON input. The
 * first byte picks the parser; linked only into the fuzzer and its replay
 * (engine_fuzz_sources), never into stasis. */
#include <stdint.h>
#include <string.h>

#include "engine/creds.h"
#include "engine/files.h"
#include "engine/locks.h"
#include "engine/ipc.h"
#include "engine/mm.h"
#include "engine/netlock.h"
#include "engine/signals.h"
#include "engine/task.h"
#include "engine/thread.h"
#include "engine/timers.h"
#include "engine/tree.h"
#include "image/image.h"

int fuzz_records(const uint8_t *data, size_t len);

int fuzz_records(const uint8_t *data, size_t len)
{
	if (len < 1)
		return 0;
	json_t *j = json_loadb((const char *)data + 1, len - 1, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return 0;
	switch (data[0] % 10) {
	case 0: {
		struct thread_rec t;
		thread_from_json(j, &t);
		thread_rec_free(&t);
		break;
	}
	case 1: {
		struct mm_rec m;
		mm_from_json(j, &m);
		mm_rec_free(&m);
		break;
	}
	case 2: {
		struct files_rec f = { 0 };
		files_from_json(j, &f);
		files_rec_free(&f);
		break;
	}
	case 3: {
		struct signals_rec s;
		signals_from_json(j, &s);
		signals_rec_free(&s);
		break;
	}
	case 4: {
		struct task_rec t;
		task_from_json(j, &t);
		task_rec_free(&t);
		break;
	}
	case 6: {
		struct timers_rec t;
		timers_from_json(j, &t);
		timers_rec_free(&t);
		break;
	}
	case 7: {
		struct locks_rec l;
		locks_from_json(j, &l);
		locks_rec_free(&l);
		break;
	}
	case 8: {
		struct tree t = { 0 };
		if (tree_from_json(j, &t) == 0)
			tree_free(&t);
		break;
	}
	case 9: {
		struct ipc_rec i;
		ipc_from_json(j, &i);
		ipc_rec_free(&i);
		break;
	}
	default: {
		struct creds_rec c;
		creds_from_json(j, &c);
		struct netlock l; /* the manifest's "netlock", on the same input */
		netlock_from_json(j, &l);
		netlock_free(&l);
		break;
	}
	}
	json_decref(j);
	return 0;
}
