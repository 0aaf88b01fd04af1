// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The eBPF backend of `uvscope loop`.
 *
 * The syscall view (epoll tracepoints on the loop thread) is always on and
 * costs ~0.35 us per wait. Phase boundaries are uprobes (~5 us per hit), so
 * they run within a budget of hits per second: while the loop is slow
 * enough they stay attached and every iteration is timed phase by phase;
 * under load they are attached for short windows and the report says which
 * fraction of iterations it timed.
 *
 * Where a boundary's function is inlined (uv__run_pending and
 * uv__run_closing_handles in recent Node builds), the phase is timed from
 * its neighbours: it starts where the previous phase function returns,
 * probed at the return address of the call inside uv_run.
 */
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "uvscope.h"
#include "loop.h"
#include "loop.skel.h"

struct uvs_loop {
	struct loop_bpf *skel;
	struct uvs_target *t;
	struct uvs_loop_opts opts;
	struct uvs_probes pr;	/* the phase probes (tag: the phase) */
	uint32_t expect_mask;
	bool derived[UVS_NPHASES];
	uint64_t opened_at;
	/* the window's edges: the epoll fd the loop thread was blocked in
	 * once the tracepoints were on (-1: none), and when; the waits'
	 * time at the previous collect, and when that was */
	int attach_fd;
	bool polled;
	bool main_done;		/* a launched program's main reported */
	uint64_t polled_at;	/* the first poll: the report's start */
	uint64_t attached_at;
	uint64_t cum_wait, cum_at;
	struct uvs_loop_agg *last; /* snapshot at the previous collect */
	struct uvs_loop_agg *cur;
};

static int uvs__add_site(struct uvs_loop *l, uint64_t addr, int phase,
			 bool ret, const char *fmt, const char *name)
{
	struct uvs_probe_site *s;
	uint64_t off;

	if (uvs_elf__vaddr_to_off(l->t->uv_elf, addr, &off))
		return uvs_seterr(-ENOENT, "%s: no file offset for %s",
				  l->t->uv_file, name);
	s = uvs_probes__add(&l->pr, off, ret);
	if (!s)
		return -E2BIG;
	s->addr = addr;
	s->tag = phase;
	s->cookie = phase;
	snprintf(s->what, sizeof(s->what), fmt, name);
	l->expect_mask |= 1u << phase;
	return 0;
}

/* Phase `phase` begins when `callee` returns to uv_run. A uretprobe shares
 * the entry breakpoint the callee already has and costs one more trap on
 * return. (A uprobe on the return address inside uv_run looks cheaper but
 * must single-step the displaced instruction: measured at 20-30 us a hit
 * on these VMs, against 2-4 us for the uretprobe.) */
static int uvs__add_after(struct uvs_loop *l, const struct uvs_sym *callee,
			  int phase)
{
	return uvs__add_site(l, callee->addr, phase, true,
			     "return from %s (uretprobe)", callee->name);
}

static int uvs__plan_sites(struct uvs_loop *l)
{
	const char *const *names = uvs_uv_run_fns;
	const struct uvs_sym *s[8];
	static const int entry_phase[8] = {
		-1, UVS_PH_TIMERS, UVS_PH_PENDING, UVS_PH_IDLE,
		UVS_PH_PREPARE, UVS_PH_POLL, UVS_PH_CHECK, UVS_PH_CLOSE,
	};
	int i, err;

	uvs_elf__lookup(l->t->uv_elf, names, 8, s);
	for (i = 1; i < 8; i++) {
		if (!s[i] || s[i]->type != STT_FUNC)
			continue;
		err = uvs__add_site(l, s[i]->addr, entry_phase[i], false,
				    "entry of %s", names[i]);
		if (err)
			return err;
	}
	/* Inlined helpers: time them from their neighbours. */
	if (!s[2] && s[1]) {
		err = uvs__add_after(l, s[1], UVS_PH_PENDING);
		if (err)
			return err;
		l->derived[UVS_PH_PENDING] = true;
	}
	if (!s[7] && s[6]) {
		err = uvs__add_after(l, s[6], UVS_PH_CLOSE);
		if (err)
			return err;
		l->derived[UVS_PH_CLOSE] = true;
	}
	return 0;
}

static struct bpf_program *uvs__prog(struct loop_bpf *skel, int phase,
				     bool ret)
{
	struct bpf_program *entry[UVS_NPHASES] = {
		skel->progs.entry_timers, skel->progs.entry_pending,
		skel->progs.entry_idle,	  skel->progs.entry_prepare,
		skel->progs.entry_poll,	  skel->progs.entry_check,
		skel->progs.entry_close,
	};
	struct bpf_program *after[UVS_NPHASES] = {
		skel->progs.return_timers, skel->progs.return_pending,
		skel->progs.return_idle,   skel->progs.return_prepare,
		skel->progs.return_poll,   skel->progs.return_check,
		skel->progs.return_close,
	};

	return ret ? after[phase] : entry[phase];
}

/* Releasing a uprobe removes its breakpoint at once, then waits for an RCU
 * grace period: about 100 ms each on these kernels. The holder (uprobe.c)
 * waits them out, each on a thread of its own. */
static void uvs__probes_off(struct uvs_loop *l)
{
	if (!l->pr.on)
		return;
	l->skel->bss->probes_on = 0;
	l->skel->bss->probe_gen++;
	uvs_probes__off(&l->pr);
}

static int uvs__probes_on(struct uvs_loop *l)
{
	uint64_t t0 = uvs_now_ns();
	int err;

	if (l->pr.on || !l->pr.n)
		return 0;
	err = uvs_probes__on(&l->pr);
	if (err)
		return err;
	l->skel->bss->probe_gen++;
	l->skel->bss->probes_on = 1;
	uvs_debug("phase probes on in %.2f ms", (uvs_now_ns() - t0) / 1e6);
	return 0;
}

int uvs_loop__open(struct uvs_target *t, const struct uvs_loop_opts *opts,
		   struct uvs_loop **out)
{
	struct uvs_features feat;
	struct uvs_loop *l;
	struct loop_bpf *skel;
	struct uvs_layout *ly;
	int err, epfd, i;

	*out = NULL;
	uvs_features__probe(&feat);
	if (!uvs_features__ebpf_ok(&feat))
		return uvs_seterr(-EPERM, "eBPF unavailable: %s", feat.why_not);
	l = calloc(1, sizeof(*l));
	if (!l)
		return uvs_seterr(-ENOMEM, "out of memory");
	l->t = t;
	uvs_probes__init(&l->pr, t->uv_open, t->pid);
	l->opened_at = uvs_now_ns();
	if (opts)
		memcpy(&l->opts, opts,
		       opts->sz < sizeof(l->opts) ? opts->sz : sizeof(l->opts));
	if (!l->opts.probe_budget)
		l->opts.probe_budget = 2000;
	if (!l->opts.phase_floor_ns)
		l->opts.phase_floor_ns = 10000;
	if (t->tier == UVS_TIER_SYMBOLS) {
		err = uvs__plan_sites(l);
		if (err)
			goto fail;
	}
	skel = loop_bpf__open();
	if (!skel) {
		err = uvs_seterr(-errno, "cannot open BPF object: %s",
				 strerror(errno));
		goto fail;
	}
	l->skel = skel;
	skel->rodata->targ_tgid = t->pid;
	skel->rodata->tier_a = t->tier == UVS_TIER_SYMBOLS;
	skel->rodata->phase_floor_ns = l->opts.phase_floor_ns;
	if (!uvs_layout__load(t->libuv_version, &ly)) {
		skel->rodata->backend_fd_off =
			uvs_layout__off(ly, "uv_loop_t", "backend_fd");
		uvs_layout__close(ly);
	}
	if (feat.uprobe_multi) {
		bpf_program__set_expected_attach_type(skel->progs.multi_entry,
						      UVS_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(skel->progs.multi_return,
						      UVS_TRACE_UPROBE_MULTI);
	} else {
		bpf_program__set_autoload(skel->progs.multi_entry, false);
		bpf_program__set_autoload(skel->progs.multi_return, false);
	}
	if (!feat.epoll_pwait2) {
		bpf_program__set_autoload(skel->progs.epoll_pwait2_enter, false);
		bpf_program__set_autoload(skel->progs.epoll_pwait2_exit, false);
	}
	err = loop_bpf__load(skel);
	if (err) {
		err = uvs_seterr(err, "cannot load BPF programs: %s (run with "
				 "-v for the verifier log)", strerror(-err));
		goto fail;
	}
	for (i = 0; i < l->pr.n; i++)
		l->pr.site[i].prog = uvs__prog(skel, l->pr.site[i].tag,
					       l->pr.site[i].ret);
	err = uvs_probes__ready(&l->pr,
				feat.uprobe_multi ? skel->progs.multi_entry : NULL,
				feat.uprobe_multi ? skel->progs.multi_return
						  : NULL,
				&skel->bss->win, bpf_map__fd(skel->maps.win_rb),
				l->opts.probe_budget,
				l->opts.exact || !l->pr.n);
	if (err)
		goto fail;
	skel->bss->loop_tid = l->opts.tid ? (uint32_t)l->opts.tid : (uint32_t)t->loop_tid;
	skel->data->loop_epfd = -1;
	if (t->tier == UVS_TIER_SYSCALLS && !t->launched && !l->opts.tid) {
		/* Without symbols the loop's fd is the process's first epoll
		 * fd that watches any (one created and never run watches
		 * none); a nested loop (execSync) makes a later one. Another
		 * thread's loop (--tid) is learnt at its first wait. */
		epfd = uvs_target__first_epoll_fd(t);
		if (epfd >= 0)
			skel->data->loop_epfd = epfd;
	}
	if (t->tier == UVS_TIER_SYMBOLS && t->uv_bias_known) {
		const struct uvs_sym *dl =
			uvs_elf__find(t->uv_elf, "default_loop_struct");

		if (dl && !l->opts.tid)
			skel->bss->main_loop = t->uv_bias + dl->addr;
	}
	skel->bss->expect_mask = l->expect_mask;
	l->last = calloc(1, sizeof(*l->last));
	l->cur = calloc(1, sizeof(*l->cur));
	if (!l->last || !l->cur) {
		err = uvs_seterr(-ENOMEM, "out of memory");
		goto fail;
	}
	/* the holder's start (a fork) between the tracepoints and the phase
	 * probes would leave an iteration counted and not timed */
	if (l->pr.n)
		uvs_uprobe__start();
	err = loop_bpf__attach(skel);
	if (err) {
		err = uvs_seterr(err, "cannot attach epoll tracepoints: %s",
				 strerror(-err));
		goto fail;
	}
	/* With the tracepoints on, a wait the loop thread is in now ends in
	 * an exit they see (agg.pre_exit) */
	l->attached_at = l->cum_at = uvs_now_ns();
	l->attach_fd = uvs_target__epoll_waiting(t, skel->bss->loop_tid);
	err = uvs__probes_on(l);
	if (err)
		goto fail;
	*out = l;
	return 0;
fail:
	uvs_loop__close(l);
	return err;
}

static void uvs__snapshot(struct uvs_loop *l, struct uvs_loop_agg *c);
static uint64_t uvs__waited(const struct uvs_loop *l,
			    const struct uvs_loop_agg *c, uint64_t now);

int uvs_loop__poll(struct uvs_loop *l, int timeout_ms)
{
	if (!l->polled) {
		/* the report's clock starts with the first poll: its window's
		 * waits are counted from here, not from the attach */
		l->polled = true;
		uvs__snapshot(l, l->cur);
		l->cum_at = l->polled_at = uvs_now_ns();
		l->cum_wait = uvs__waited(l, l->cur, l->cum_at);
	}

	uvs_window__sleep(&l->pr.win, timeout_ms);
	switch (uvs_probes__step(&l->pr)) {
	case UVS_WINDOW_ON:
		return uvs__probes_on(l);
	case UVS_WINDOW_OFF:
		uvs__probes_off(l);
		return 0;
	default:
		return 0;
	}
}

/* The loop's time in waits from attach to now: those that ended, the one
 * in progress, and the part after attach of one it was in then. */
static uint64_t uvs__waited(const struct uvs_loop *l,
			    const struct uvs_loop_agg *c, uint64_t now)
{
	int fd = l->skel->data->loop_epfd;
	uint64_t w = c->wait_all_ns;

	if (c->cur_wait_enter && now > c->cur_wait_enter)
		w += now - c->cur_wait_enter;
	/* a loop fd not learnt yet: the loop thread's own wait is taken as
	 * the loop's */
	if (l->attach_fd >= 0 && (fd < 0 || fd == l->attach_fd)) {
		if (c->pre_exit > l->attached_at)
			w += c->pre_exit - l->attached_at;
		else if (!c->pre_exit && !c->seen_enter && now > l->attached_at)
			w += now - l->attached_at;
	}
	return w;
}

/* Copies the counters between two iterations: the BPF side makes the
 * sequence count odd while it adds one. The scalar counters (a few hundred
 * bytes) are copied consistently; the histograms after them are too large
 * to copy between two iterations of a fast loop (one every 0.4 us), and
 * may hold an iteration more than the counters. */
static void uvs__snapshot(struct uvs_loop *l, struct uvs_loop_agg *c)
{
	volatile struct uvs_loop_agg *a = &l->skel->bss->agg;
	const size_t head = offsetof(struct uvs_loop_agg, wait_h);
	uint64_t s1, s2;
	int tries;

	for (tries = 0; tries < 100000; tries++) {
		s1 = a->seq;
		__sync_synchronize();
		memcpy(c, (const void *)a, head);
		__sync_synchronize();
		s2 = a->seq;
		if (s1 == s2 && !(s1 & 1))
			break;
	}
	memcpy((char *)c + head, (const char *)a + head, sizeof(*c) - head);
}

void uvs_loop__collect(struct uvs_loop *l, struct uvs_report *r)
{
	struct uvs_loop_report *o = &r->loop;
	struct uvs_loop_agg *c = l->cur, *p = l->last, *tmp;
	int i;

	const struct loop_state *st = &l->skel->data->st;
	uint64_t now, since;

	uvs__snapshot(l, c);
	now = uvs_now_ns(); /* after it: no wait in it ends later */
	memset(o, 0, sizeof(*o));
	/* The iteration in progress: a loop stuck in one callback completes
	 * no iteration, and this is the only place that shows it. */
	if (st->it_start) {
		o->now_state = st->in_wait ? UVS_NOW_WAITING : UVS_NOW_BUSY;
		since = st->in_wait ? st->wait_enter :
			(st->last_exit > st->it_start ? st->last_exit : st->it_start);
		o->now_for_ns = now > since ? now - since : 0;
	} else {
		/* no wait seen since we attached: was the loop in one? */
		int fd = uvs_target__epoll_waiting(l->t,
						   l->skel->bss->loop_tid);

		if (fd >= -1) {
			bool waiting = fd >= 0;

			o->now_state = waiting ? UVS_NOW_WAITING : UVS_NOW_BUSY;
			o->now_for_ns = now - l->opened_at;
			o->now_at_least = true;
		}
	}
	/* a launched program: from its start (the trace's) to its loop's
	 * first wait, busy with its main module; reported once, in the
	 * window where it ended (or, if it never polled, in each) */
	if (l->t->launched && !l->main_done && l->polled) {
		uint64_t from = l->polled_at, to = c->seen_enter;

		o->has_main = true;
		o->main_ongoing = !to;
		if (!to)
			to = now;
		o->main_ns = to > from ? to - from : 0;
		l->main_done = !o->main_ongoing;
	}
	o->phases_known = l->t->tier == UVS_TIER_SYMBOLS;
	o->phase_floor_ns = l->opts.phase_floor_ns;
	for (i = 0; i < UVS_NPHASES; i++)
		o->phase_derived[i] = l->derived[i];
#define D(f) (c->f - p->f)
	o->iterations = D(iterations);
	/* busy and waiting over the window itself, cut at its edges: a wait
	 * begun before it or still going counts for its part in it, and a
	 * loop that never came back to poll is busy throughout */
	{
		uint64_t cum = uvs__waited(l, c, now);
		uint64_t wall = now > l->cum_at ? now - l->cum_at : 0;

		o->wait_ns = cum > l->cum_wait ? cum - l->cum_wait : 0;
		if (o->wait_ns > wall)
			o->wait_ns = wall;
		o->busy_ns = wall - o->wait_ns;
		l->cum_wait = cum;
		l->cum_at = now;
	}
	o->timed_out = D(timed_out);
	o->woken = D(woken);
	o->interrupted = D(interrupted);
	o->timeout_infinite = D(timeout_inf);
	o->timeout_zero = D(timeout_zero);
	o->phase_iterations = D(phase_iterations);
	o->probe_hits = D(probe_hits);
	o->nested_ignored = D(nested_ignored);
	o->other_epfd = D(other_epfd);
	uvs_hist__from_counts(&o->wait_ns_h, c->wait_h, p->wait_h, D(wait_ns));
	uvs_hist__from_counts(&o->timeout_ms, c->timeout_h, p->timeout_h,
			      D(timeout_sum));
	for (i = 0; i < UVS_NPHASES; i++) {
		uvs_hist__from_counts(&o->phase[i].ns, c->phase_h[i],
				      p->phase_h[i], D(phase_active_sum[i]));
		o->phase[i].total_ns = D(phase_sum[i]);
	}
#undef D
	tmp = l->last;
	l->last = l->cur;
	l->cur = tmp;
}

void uvs_loop__describe(const struct uvs_loop *l, FILE *out)
{
	int i;

	char fd[48];

	if (l->skel->data->loop_epfd >= 0)
		snprintf(fd, sizeof(fd), "%d", l->skel->data->loop_epfd);
	else
		snprintf(fd, sizeof(fd), "learnt at the first poll");
	fprintf(out, "uvscope: libuv in %s (%s), loop thread %d, epoll fd %s\n",
		l->t->uv_file, uvs_tier_name(l->t->tier),
		l->skel->bss->loop_tid, fd);
	fprintf(out, "uvscope: tracepoints: sys_enter/exit of epoll_wait, "
		"epoll_pwait%s\n", bpf_program__autoload(
			l->skel->progs.epoll_pwait2_enter) ? ", epoll_pwait2" : "");
	if (!l->pr.n)
		fprintf(out, "uvscope: no phase probes: libuv's internal "
			"symbols are stripped, phases are unknown\n");
	for (i = 0; i < l->pr.n; i++)
		fprintf(out, "uvscope: uprobe %-8s at %#llx: %s\n",
			uvs_phase_names[l->pr.site[i].tag],
			(unsigned long long)l->pr.site[i].addr,
			l->pr.site[i].what);
	if (l->pr.n)
		fprintf(out, "uvscope: phase probes as %s\n", l->pr.multi ?
			"two uprobe_multi links (entries, returns)" :
			"one perf uprobe per site");
	if (l->pr.n)
		fprintf(out, "uvscope: phase probes %s (budget %llu hits/s)\n",
			l->opts.exact ? "on every iteration (--exact)"
				      : "windowed under load",
			(unsigned long long)l->opts.probe_budget);
}

void uvs_loop__close(struct uvs_loop *l)
{
	if (!l)
		return;
	/* released with the rest of the command's probes */
	if (l->skel)
		uvs__probes_off(l);
	uvs_probes__close(&l->pr);
	if (l->skel) {
		uvs_reap_skel(uvs_reaper_shared(), l->skel->skeleton);
	}
	loop_bpf__destroy(l->skel);
	free(l->last);
	free(l->cur);
	free(l);
}
