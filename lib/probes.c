// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A set of uprobes in one file, attached and released together, in
 * windows within a budget (window.c): loop's phase probes and pool's task
 * probes. Two uprobe_multi links (entries, returns) where the kernel has
 * them (6.6), else one perf uprobe per site; every link is made and held
 * by the holder (uprobe.c), which is told to release a window's links the
 * moment its probes end it on the budget (bpf/window.h).
 */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "uvscope.h"

static int uvs__no_record(void *ctx, void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return 0;
}

void uvs_probes__init(struct uvs_probes *p, const char *path, pid_t pid)
{
	int i;

	memset(p, 0, sizeof(*p));
	p->path = path;
	p->pid = pid;
	p->mlinks[0] = p->mlinks[1] = -1;
	for (i = 0; i < UVS_MAX_SITES; i++)
		p->links[i] = -1;
	/* until ready: a window with no bucket of its own */
	uvs_window__init(&p->win, 1, true, uvs_now_ns(), NULL);
}

struct uvs_probe_site *uvs_probes__add(struct uvs_probes *p, uint64_t off,
				       bool ret)
{
	struct uvs_probe_site *s;

	if (p->n == UVS_MAX_SITES)
		return NULL;
	s = &p->site[p->n++];
	memset(s, 0, sizeof(*s));
	s->off = off;
	s->ret = ret;
	return s;
}

int uvs_probes__ready(struct uvs_probes *p, struct bpf_program *multi_entry,
		      struct bpf_program *multi_return, struct uvs_win *bw,
		      int win_rb_fd, uint64_t budget, bool always)
{
	p->multi = multi_entry && multi_return;
	p->multi_prog[0] = multi_entry;
	p->multi_prog[1] = multi_return;
	p->ring_fd = win_rb_fd;
	p->ring = ring_buffer__new(win_rb_fd, uvs__no_record, NULL, NULL);
	if (!p->ring)
		return uvs_seterr(-errno, "cannot open the probes' ring "
				  "buffer: %s", strerror(errno));
	uvs_window__init(&p->win, budget, always, uvs_now_ns(), bw);
	return 0;
}

static int uvs__attach_multi(struct uvs_probes *p, bool ret)
{
	uint64_t offs[UVS_MAX_SITES], cookies[UVS_MAX_SITES];
	int i, n = 0;

	for (i = 0; i < p->n; i++) {
		if (p->site[i].ret != ret)
			continue;
		offs[n] = p->site[i].off;
		cookies[n++] = p->site[i].cookie;
	}
	return uvs_uprobe_multi__attach(bpf_program__fd(p->multi_prog[ret]),
					p->path, p->pid, offs, cookies, n,
					ret);
}

void uvs_probes__off(struct uvs_probes *p)
{
	int i;

	if (!p->on)
		return;
	p->win.bw->open = 0;
	for (i = 0; i < 2; i++)
		uvs_uprobe__release(&p->mlinks[i]);
	for (i = 0; i < p->n; i++)
		uvs_uprobe__release(&p->links[i]);
	p->on = false;
	uvs_window__switched(&p->win, false, uvs_now_ns());
}

int uvs_probes__on(struct uvs_probes *p)
{
	int i, fd, err;

	if (p->on || !p->n)
		return 0;
	/* the last window's probes released first: one program run by
	 * two links at a boundary would count it twice */
	uvs_uprobe__settle(1000);
	/* the ring empty, so that the holder waits for this window's end */
	ring_buffer__consume(p->ring);
	uvs_window__arm(&p->win);
	for (i = 0; p->multi && i < 2; i++) {
		fd = uvs__attach_multi(p, i == 1);
		if (fd >= 0 || fd == -ENODATA) {
			p->mlinks[i] = fd >= 0 ? fd : -1;
			continue;
		}
		/* an older kernel, or a refusal: one perf uprobe per site */
		uvs_debug("uprobe_multi unavailable (%s): one uprobe per site",
			  strerror(-fd));
		if (i == 1)
			uvs_uprobe__release(&p->mlinks[0]);
		p->multi = false;
	}
	for (i = 0; !p->multi && i < p->n; i++) {
		struct uvs_probe_site *s = &p->site[i];

		err = uvs_uprobe__attach(bpf_program__fd(s->prog), p->path,
					 p->pid, s->off, s->ret, s->one_cookie);
		p->links[i] = err >= 0 ? err : -1;
		if (err < 0) {
			p->on = true; /* so that off releases what attached */
			uvs_probes__off(p);
			return uvs_seterr(err, "cannot attach uprobe at %s in "
					  "%s: %s", s->what, p->path,
					  strerror(-err));
		}
	}
	p->on = true;
	uvs_window__switched(&p->win, true, uvs_now_ns());
	if (!p->win.always) {
		int h[2 + UVS_MAX_SITES];

		memcpy(h, p->mlinks, sizeof(p->mlinks));
		memcpy(h + 2, p->links, p->n * sizeof(int));
		/* else the probes stop recording at the window's end all
		 * the same, and are released at uvscope's next step */
		err = uvs_uprobe__watch(p->ring_fd, h, 2 + p->n);
		if (err)
			uvs_debug("the holder cannot watch the window's end: "
				  "%s", strerror(-err));
	}
	return 0;
}

enum uvs_window_act uvs_probes__step(struct uvs_probes *p)
{
	uint64_t now = uvs_now_ns();
	enum uvs_window_act a = uvs_window__step(&p->win, now);

	/* the last window's probes are still being released */
	if (a == UVS_WINDOW_ON && !uvs_uprobe__settled()) {
		uvs_window__defer(&p->win, now);
		return UVS_WINDOW_KEEP;
	}
	return a;
}

void uvs_probes__close(struct uvs_probes *p)
{
	uvs_probes__off(p);
	ring_buffer__free(p->ring);
	p->ring = NULL;
}
