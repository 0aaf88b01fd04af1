// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Many uprobes in one uprobe_multi link (Linux 6.6). Releasing a link
 * waits for one RCU grace period, where separate perf uprobes wait for one
 * each, one after another, with their breakpoints still trapping
 * meanwhile. Debian 12's headers and libbpf 1.1 predate these links, so
 * the attach is made here, by the book of the UAPI.
 *
 * And the reaper, which releases any command's probes with their grace
 * periods overlapped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "uvscope.h"

int uvs_uprobe_multi__attach(int prog_fd, const char *path, pid_t pid,
			     const uint64_t *offs, const uint64_t *cookies,
			     int n, bool ret)
{
	union {
		struct {
			__u32 prog_fd, target_fd, attach_type, flags;
			__u64 path, offsets, ref_ctr_offsets, cookies;
			__u32 cnt, flags2, pid;
		} lc;
		union bpf_attr attr;
	} a;
	int fd;

	if (!n)
		return -ENODATA; /* nothing to attach: no link */
	memset(&a, 0, sizeof(a));
	a.lc.prog_fd = prog_fd;
	a.lc.attach_type = UVS_TRACE_UPROBE_MULTI;
	a.lc.path = (uintptr_t)path;
	a.lc.offsets = (uintptr_t)offs;
	a.lc.cookies = (uintptr_t)cookies;
	a.lc.cnt = n;
	a.lc.flags2 = ret ? 1 /* BPF_F_UPROBE_MULTI_RETURN */ : 0;
	a.lc.pid = pid;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

static void *uvs__destroy_link(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

static void *uvs__close_fd(void *fd)
{
	close((int)(intptr_t)fd);
	return NULL;
}

static void uvs__reap(struct uvs_reaper *r, void *(*fn)(void *), void *arg)
{
	/* no thread to spare: released here, the wait not overlapped */
	if (r->n >= UVS_MAX_REAP && !uvs_reap_wait(r, false) &&
	    r->n >= UVS_MAX_REAP) {
		fn(arg);
		return;
	}
	if (pthread_create(&r->th[r->n], NULL, fn, arg))
		fn(arg);
	else
		r->n++;
}

void uvs_reap_link(struct uvs_reaper *r, struct bpf_link **link)
{
	if (!*link)
		return;
	uvs__reap(r, uvs__destroy_link, *link);
	*link = NULL;
}

void uvs_reap_fd(struct uvs_reaper *r, int *fd)
{
	if (*fd < 0)
		return;
	uvs__reap(r, uvs__close_fd, (void *)(intptr_t)*fd);
	*fd = -1;
}

void uvs_reap_skel(struct uvs_reaper *r, const struct bpf_object_skeleton *s)
{
	int i;

	for (i = 0; s && i < s->prog_cnt; i++) {
		const struct bpf_prog_skeleton *p = (const void *)
			((const char *)s->progs + (size_t)i * s->prog_skel_sz);

		if (p->link)
			uvs_reap_link(r, p->link);
	}
}

bool uvs_reap_wait(struct uvs_reaper *r, bool wait)
{
	int i, left = 0;

	for (i = 0; i < r->n; i++) {
		if (wait)
			pthread_join(r->th[i], NULL);
		else if (pthread_tryjoin_np(r->th[i], NULL))
			r->th[left++] = r->th[i];
	}
	r->n = left;
	return !left;
}

void uvs_reap_move(struct uvs_reaper *to, struct uvs_reaper *from)
{
	int i;

	for (i = 0; i < from->n; i++) {
		if (to->n < UVS_MAX_REAP)
			to->th[to->n++] = from->th[i];
		else
			pthread_join(from->th[i], NULL);
	}
	from->n = 0;
}

static struct uvs_reaper uvs__shared;

static void uvs__reap_shared(void)
{
	uvs_reap_wait(&uvs__shared, true);
}

struct uvs_reaper *uvs_reaper_shared(void)
{
	static bool registered;

	if (!registered)
		registered = !atexit(uvs__reap_shared);
	return &uvs__shared;
}
