/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/process.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/cleanup.h"
#include "util/log.h"

void process_rec_free(struct process_rec *p)
{
	for (size_t i = 0; p->threads && i < p->nthreads; i++)
		thread_rec_free(&p->threads[i]);
	free(p->threads);
	p->threads = NULL;
	mm_rec_free(&p->mm);
	files_rec_free(&p->files);
	task_rec_free(&p->task);
	signals_rec_free(&p->sig);
	timers_rec_free(&p->timers);
	locks_rec_free(&p->locks);
}

static void core_to_json(const struct process_rec *p, struct json_builder *core)
{
	jb_int(core, "pid", p->pid);
	json_t *threads = jb_array(core, "threads");
	for (size_t i = 0; threads && i < p->nthreads; i++) {
		struct json_builder t;
		jb_begin(&t);
		thread_to_json(&p->threads[i], &t);
		jb_append_obj(core, threads, &t);
	}
	task_to_json(&p->task, core);
	creds_to_json(&p->creds, core);
	signals_to_json(&p->sig, core);
	timers_to_json(&p->timers, core);
	locks_to_json(&p->locks, core);
	prctl_to_json(&p->prctl, core);
}

static int write_core(struct image *img, const struct process_rec *p)
{
	_cleanup_json_ json_t *core = NULL;
	char name[IMAGE_NAME_MAX];
	struct json_builder b;

	jb_begin(&b);
	core_to_json(p, &b);
	int r = jb_end(&b, &core);
	if (r < 0)
		return log_error_errno(r, "cannot encode the state of pid %d (%s): %m", p->pid, jb_key(&b));
	return image_put_json(img, image_name_core(name, p->pid), core);
}

static int write_mm(struct image *img, const struct process_rec *p)
{
	_cleanup_json_ json_t *mm = NULL;
	char name[IMAGE_NAME_MAX];
	struct json_builder b;

	jb_begin(&b);
	mm_to_json(&p->mm, &b);
	int r = jb_end(&b, &mm);
	if (r < 0)
		return log_error_errno(r, "cannot encode the memory map of pid %d (%s): %m", p->pid, jb_key(&b));
	return image_put_json(img, image_name_mm(name, p->pid), mm);
}

int process_write(struct image *img, const struct process_rec *p)
{
	_cleanup_json_ json_t *fds = NULL;
	char name[IMAGE_NAME_MAX];
	int r;

	if ((r = write_core(img, p)) < 0 || (r = write_mm(img, p)) < 0 || (r = files_to_json(&p->files, &fds)) < 0)
		return r;
	return image_put_json(img, image_name_fds(name, p->pid), fds);
}

static int bad_record(int r, pid_t pid, const char *what)
{
	return log_error_errno(r == -ENOMEM ? r : -EBADMSG, "image record %s of pid %d is damaged or unsupported",
			       what, pid);
}

static int read_core(struct image *img, struct process_rec *p)
{
	_cleanup_json_ json_t *core = NULL;
	json_t *threads;
	char name[IMAGE_NAME_MAX];
	int r = image_get_json(img, image_name_core(name, p->pid), &core);
	if (r < 0)
		return r;
	if (json_get_array(core, "threads", 65536, &threads) < 0 || json_array_size(threads) == 0)
		return bad_record(-EBADMSG, p->pid, "core (threads)");
	p->threads = calloc(json_array_size(threads), sizeof(*p->threads));
	if (!p->threads)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(threads); i++) {
		p->nthreads = i + 1;
		if ((r = thread_from_json(json_array_get(threads, i), &p->threads[i])) < 0)
			return bad_record(r, p->pid, "core (thread)");
	}
	if (p->threads[0].tid != p->pid)
		return bad_record(-EBADMSG, p->pid, "core (main thread)");
	if ((r = task_from_json(core, &p->task)) < 0)
		return bad_record(r, p->pid, "core (task)");
	if ((r = creds_from_json(core, &p->creds)) < 0)
		return bad_record(r, p->pid, "core (creds)");
	if ((r = signals_from_json(core, &p->sig)) < 0)
		return bad_record(r, p->pid, "core (signals)");
	if ((r = timers_from_json(core, &p->timers)) < 0)
		return bad_record(r, p->pid, "core (posix_timers)");
	if ((r = locks_from_json(core, &p->locks)) < 0)
		return bad_record(r, p->pid, "core (file_locks)");
	if ((r = prctl_from_json(core, &p->prctl)) < 0)
		return bad_record(r, p->pid, "core (prctl)");
	return 0;
}

int process_read(struct image *img, pid_t pid, struct process_rec *p)
{
	_cleanup_json_ json_t *mm = NULL, *fds = NULL;
	char name[IMAGE_NAME_MAX];
	int r;

	p->pid = pid;
	if ((r = read_core(img, p)) < 0 || (r = image_get_json(img, image_name_mm(name, pid), &mm)) < 0)
		return r;
	if ((r = mm_from_json(mm, &p->mm)) < 0)
		return bad_record(r, pid, "mm");
	if ((r = image_get_json(img, image_name_fds(name, pid), &fds)) < 0)
		return r;
	if ((r = files_from_json(fds, &p->files)) < 0)
		return bad_record(r, pid, "fds");
	return 0;
}
