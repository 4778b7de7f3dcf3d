# SPDX-License-Identifier: LGPL-2.1-or-later
"""Containers of many processes and many threads (issue 9): restored as new
containers, every process and thread keeps its pid, which only works when
stasis's own helpers stay off the pids the image needs (DESIGN.md §5a).
Real runc, dockerd and its containerd, containers built offline from
busybox-static and from Debian's redis-server. The Docker and containerd
scenarios are those of lib/ctrcases.py (Podman runs them in t_podman.py);
the runc ones read the files straight from the bundle. Used by run.py."""
import json
import os
import shutil
import subprocess

import dockerd
from containers import Containers, make_bundle, runc
from ctrcases import (LOOP_FILES, MULTI, at_dump, check_files, check_tasks, expect_multi, image_tree, multi_case,
                      ns_tasks, redis_case, wait_files)
from engines import DockerEngine
from runner import Test, TestFail as ContainerFail, TestSkip as ContainerSkip

# Four threads, each appending "tid count" to its file.
THREADS_C = r'''
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *count(void *arg)
{
	char path[32];
	snprintf(path, sizeof(path), "/data/t%ld", (long)arg);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	for (long i = 1;; i++) {
		dprintf(fd, "%d %ld\n", gettid(), i);
		usleep(200000);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[4];
	for (long k = 0; k < 4; k++)
		pthread_create(&t[k], NULL, count, (void *)(k + 1));
	for (;;)
		pause();
}
'''


def read_files(d, names):
    return {n: open(os.path.join(d, n)).read() for n in names}


def runc_pid(cid):
    return json.loads(runc('state', cid).stdout)['pid']


def runc_case(ctx, args, names, expect, prepare=None):
    """A runc container running args: dumped, then restored as a new
    container; every pid and tid comes back and each file counts on."""
    cs = Containers(ctx)
    out = open(ctx.path('container.out'), 'ab')
    try:
        bundle = ctx.path('bundle')
        os.mkdir(bundle)
        rootfs = make_bundle(bundle, args)
        if prepare:
            prepare(rootfs)
        data = os.path.join(rootfs, 'data')
        old, new = cs.name('a'), cs.name('b')
        subprocess.run(['runc', 'run', '-d', '--bundle', bundle, old], stdin=subprocess.DEVNULL, stdout=out,
                       stderr=out, check=True, timeout=30)
        wait_files(lambda: read_files(data, names), names, 3)
        img = ctx.path('img')
        res = ctx.stasis(['dump', '--type', 'runc', '--id', old, '-D', img, '-v', '--log-file', img + '-dump.log'])
        if res.rc != 0:
            raise ContainerFail('dump %s' % res.what())
        tree = image_tree(img, expect)
        before = at_dump(read_files(data, names))
        rc = subprocess.run([ctx.r.stasis, 'restore', '-D', img, '--id', new, '-v', '--log-file',
                             img + '-restore.log'], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            timeout=60).returncode
        if rc != 0:
            raise ContainerFail('restore exit %d: %s' % (rc, open(img + '-restore.log').read()[-400:]))
        check_tasks(tree, ns_tasks(runc_pid(new)))
        files = wait_files(lambda: read_files(data, names), names, max(b[1] for b in before.values()) + 5)
        check_files(files, before, 'runc')
        runc('kill', new, 'KILL')
    finally:
        cs.cleanup()
        out.close()


def expect_threads(tree):
    return None if len(tree[0]['threads']) == 5 else 'threads %s, expected 5' % tree[0]['threads']


def t_runc_multi(ctx):
    runc_case(ctx, ['sh', '-c', MULTI], LOOP_FILES, expect_multi)


def build_threads(ctx, dest):
    if not shutil.which('gcc'):
        raise ContainerSkip('gcc is not installed')
    src = ctx.path('threads.c')
    with open(src, 'w') as f:
        f.write(THREADS_C)
    r = subprocess.run(['gcc', '-static', '-O2', '-pthread', '-o', dest, src], capture_output=True, text=True)
    if r.returncode != 0:
        raise ContainerFail('cannot build the threaded program: %s' % r.stderr[-300:])


def t_runc_threads(ctx):
    names = ['t%d' % k for k in range(1, 5)]
    runc_case(ctx, ['/bin/threads'], names, expect_threads,
              prepare=lambda rootfs: build_threads(ctx, os.path.join(rootfs, 'bin', 'threads')))


def t_multi(ctx, containerd):
    multi_case(ctx, DockerEngine(dockerd.shared(ctx), containerd))


def t_redis(ctx, containerd):
    redis_case(ctx, DockerEngine(dockerd.shared(ctx), containerd))


TESTS = [
    Test('runc:pids:9-processes', t_runc_multi, 90),
    Test('runc:pids:threads', t_runc_threads, 90),
    Test('docker:pids:9-processes', t_multi, 150, False),
    Test('docker:pids:redis', t_redis, 150, False),
    # Dumped through Docker's containerd (--type containerd --namespace
    # moby), restored as a Docker container.
    Test('containerd:pids:9-processes', t_multi, 150, True),
    Test('containerd:pids:redis', t_redis, 150, True),
]
