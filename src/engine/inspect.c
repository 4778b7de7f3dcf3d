/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `stasis inspect`: what an image holds, read through the same validated
 * readers as the restore (tree_from_json, process_read), so a record that
 * restore would refuse is refused here too, with the same message. */
#include "engine/inspect.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "engine/process.h"
#include "engine/sockets.h"
#include "engine/tree.h"
#include "util/cleanup.h"
#include "util/log.h"

static void print_node(FILE *out, const struct tree_node *n)
{
	fprintf(out, "  pid %-7d parent %-7d group %-7d session %-7d %s%s\n", n->pid, n->ppid, n->pgid, n->sid, n->comm,
		n->zombie ? " (zombie)" : "");
}

static void print_vmas(FILE *out, const struct mm_rec *m)
{
	fprintf(out, "  memory map (%zu mappings, %" PRIu64 " pages saved", m->nvmas, m->pages);
	if (m->parent_pages) /* saved by the parent, named here */
		fprintf(out, ", %" PRIu64 " shared with its parent", m->parent_pages);
	fprintf(out, "):\n");
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma_rec *v = &m->vmas[i];
		fprintf(out, "    %012" PRIx64 "-%012" PRIx64 " %c%c%c%c %8" PRIu64 " KiB %-11s %s\n", v->start, v->end,
			v->prot & 1 ? 'r' : '-', v->prot & 2 ? 'w' : '-', v->prot & 4 ? 'x' : '-', v->shared ? 's' : 'p',
			(v->end - v->start) / 1024, vma_kind_name(v->kind), v->path ? v->path : "");
	}
}

static void print_fds(FILE *out, const struct files_rec *f)
{
	char conn[512];
	fprintf(out, "  file descriptors:\n");
	for (size_t i = 0; i < f->n; i++) {
		const struct fd_rec *o = &f->fds[i];
		fprintf(out, "    %4d %-8s pos %-10" PRIu64 " flags 0%o %s%s\n", o->fd, fd_kind_name(o), o->pos,
			(unsigned)o->flags, o->path ? o->path : "", o->shared ? " [shared with other processes]" : "");
		if (o->dup_of < 0 && sk_fd_describe(o, conn, sizeof(conn)))
			fprintf(out, "         connection: %s\n", conn);
	}
}

static void print_process(FILE *out, const struct tree_node *n, const struct process_rec *p)
{
	fprintf(out, "process %d (%s), parent %d, %zu thread(s):", n->pid, p->task.comm, n->ppid, p->nthreads);
	for (size_t k = 0; k < p->nthreads; k++)
		fprintf(out, " %d", p->threads[k].tid);
	fprintf(out, "\n  cwd %s, exe %s\n", p->task.cwd ? p->task.cwd : "?", p->mm.exe ? p->mm.exe : "?");
	print_vmas(out, &p->mm);
	print_fds(out, &p->files);
}

/* The process as JSON: the validated records written out again. */
static int process_json(const struct tree_node *n, const struct process_rec *p, json_t **ret)
{
	struct json_builder b, mm;
	json_t *fds = NULL;
	jb_begin(&b);
	jb_int(&b, "pid", n->pid);
	jb_str(&b, "comm", p->task.comm);
	json_t *threads = jb_array(&b, "threads");
	for (size_t k = 0; k < p->nthreads; k++)
		jb_append(&b, threads, json_integer(p->threads[k].tid));
	jb_begin(&mm);
	mm_to_json(&p->mm, &mm);
	jb_obj(&b, "mm", &mm);
	jb_fail(&b, "fds", files_to_json(&p->files, &fds));
	jb_put(&b, "fds", fds);
	return jb_end(&b, ret);
}

static int inspect_one(struct image *img, const struct tree_node *n, json_t *procs, FILE *out)
{
	struct process_rec p = { 0 };
	int r = process_read(img, n->pid, &p);
	if (r >= 0 && procs) {
		json_t *j = NULL;
		r = process_json(n, &p, &j);
		if (r < 0 || json_array_append_new(procs, j) < 0)
			r = log_error_errno(r < 0 ? r : -ENOMEM, "cannot show pid %d as JSON: %m", n->pid);
	} else if (r >= 0) {
		print_process(out, n, &p);
	}
	process_rec_free(&p);
	return r;
}

int inspect_image(struct image *img, bool as_json, FILE *out)
{
	json_t *man = image_manifest(img);
	struct tree t = { 0 };
	const char *type = NULL, *created = NULL, *kernel = NULL, *version = NULL;
	if (json_get_str(man, "type", &type) < 0 || tree_from_json(json_object_get(man, "tree"), &t) < 0)
		return log_error_errno(-EBADMSG, "manifest.json in %s: missing or bad type/tree", image_dir(img));
	_cleanup_json_ json_t *all = as_json ? json_pack("{s:O,s:[]}", "manifest", man, "processes") : NULL;
	json_t *procs = all ? json_object_get(all, "processes") : NULL;
	int r = as_json && !all ? -ENOMEM : 0;
	if (!as_json) {
		(void)json_get_str(man, "created", &created), (void)json_get_str(man, "kernel", &kernel);
		(void)json_get_str(man, "stasis_version", &version);
		fprintf(out, "image %s: type %s, made %s on kernel %s by stasis %s\n", image_dir(img), type,
			created ? created : "?", kernel ? kernel : "?", version ? version : "?");
		fprintf(out, "process tree (%zu):\n", t.n);
		for (size_t i = 0; i < t.n; i++)
			print_node(out, &t.v[i]);
	}
	for (size_t i = 0; r >= 0 && i < t.n; i++)
		if (!t.v[i].zombie)
			r = inspect_one(img, &t.v[i], procs, out);
	if (r >= 0 && all)
		json_dumpf(all, out, JSON_INDENT(2)), fputc('\n', out);
	tree_free(&t);
	return r;
}
