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
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "uvscope.h"
#include "loop.h"
#include "loop.skel.h"

#define UVS_MAX_SITES 24
#define UVS_WINDOW_NS 100000000ull /* phase-probe window under load */

const char *const uvs_phase_names[7] = {
	"timers", "pending", "idle", "prepare", "poll", "check", "close",
};

struct uvs__site {
	uint64_t addr;	/* link-time address in the libuv file */
	uint64_t off;	/* file offset for the uprobe */
	int phase;
	bool retsite;	/* return address inside uv_run */
	bool uretprobe; /* fallback when no call site was found */
	char what[96];
};

struct uvs_loop {
	struct loop_bpf *skel;
	struct ring_buffer *rb;
	struct uvs_target *t;
	struct uvs_loop_opts opts;
	struct uvs__site sites[UVS_MAX_SITES];
	struct bpf_link *links[UVS_MAX_SITES];
	int nsites;
	uint32_t expect_mask;
	bool derived[UVS_NPHASES];
	bool on;
	uint64_t switch_at;	/* when the window state changes next */
	uint64_t on_since;
	uint64_t hits_at_on;
	uint64_t iters_at_on;
	uint64_t total_iters;
	double hits_per_iter;	/* measured while on */
	uint64_t windows;
	struct uvs_loop_report acc;
	struct uvs_loop_stats last;
};

static int uvs__add_site(struct uvs_loop *l, uint64_t addr, int phase,
			 bool retsite, bool uretprobe, const char *fmt,
			 const char *name)
{
	struct uvs__site *s;

	if (l->nsites == UVS_MAX_SITES)
		return -E2BIG;
	s = &l->sites[l->nsites];
	if (uvs_elf__vaddr_to_off(l->t->uv_elf, addr, &s->off))
		return uvs_seterr(-ENOENT, "%s: no file offset for %s",
				  l->t->uv_file, name);
	s->addr = addr;
	s->phase = phase;
	s->retsite = retsite;
	s->uretprobe = uretprobe;
	snprintf(s->what, sizeof(s->what), fmt, name);
	l->expect_mask |= 1u << phase;
	l->nsites++;
	return 0;
}

/* Phase `phase` begins when `callee` returns to uv_run: probe the return
 * addresses, or failing that a uretprobe on the callee. */
static int uvs__add_after(struct uvs_loop *l, const struct uvs_sym *uv_run,
			  const struct uvs_sym *callee, int phase)
{
	uint64_t ret[8];
	int n, i, err;

	n = uvs_elf__call_sites(l->t->uv_elf, uv_run->addr, uv_run->size,
				callee->addr, ret, 8);
	for (i = 0; i < n; i++) {
		err = uvs__add_site(l, ret[i], phase, true, false,
				    "return site of %s in uv_run",
				    callee->name);
		if (err)
			return err;
	}
	if (n)
		return 0;
	return uvs__add_site(l, callee->addr, phase, true, true,
			     "uretprobe on %s", callee->name);
}

static int uvs__plan_sites(struct uvs_loop *l)
{
	static const char *const names[] = {
		"uv_run", "uv__run_timers", "uv__run_pending", "uv__run_idle",
		"uv__run_prepare", "uv__io_poll", "uv__run_check",
		"uv__run_closing_handles",
	};
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
				    false, "entry of %s", names[i]);
		if (err)
			return err;
	}
	/* Inlined helpers: time them from their neighbours. */
	if (!s[2] && s[0] && s[1]) {
		err = uvs__add_after(l, s[0], s[1], UVS_PH_PENDING);
		if (err)
			return err;
		l->derived[UVS_PH_PENDING] = true;
	}
	if (!s[7] && s[0] && s[6]) {
		err = uvs__add_after(l, s[0], s[6], UVS_PH_CLOSE);
		if (err)
			return err;
		l->derived[UVS_PH_CLOSE] = true;
	}
	return 0;
}

static struct bpf_program *uvs__prog(struct loop_bpf *skel, int phase,
				     bool retsite)
{
	struct bpf_program *entry[UVS_NPHASES] = {
		skel->progs.entry_timers, skel->progs.entry_pending,
		skel->progs.entry_idle,	  skel->progs.entry_prepare,
		skel->progs.entry_poll,	  skel->progs.entry_check,
		skel->progs.entry_close,
	};
	struct bpf_program *ret[UVS_NPHASES] = {
		skel->progs.retsite_timers, skel->progs.retsite_pending,
		skel->progs.retsite_idle,   skel->progs.retsite_prepare,
		skel->progs.retsite_poll,   skel->progs.retsite_check,
		skel->progs.retsite_close,
	};

	return retsite ? ret[phase] : entry[phase];
}

static void uvs__probes_off(struct uvs_loop *l)
{
	int i;

	if (!l->on)
		return;
	l->skel->bss->probes_on = 0;
	l->skel->bss->probe_gen++;
	for (i = 0; i < l->nsites; i++) {
		bpf_link__destroy(l->links[i]);
		l->links[i] = NULL;
	}
	l->on = false;
}

static int uvs__probes_on(struct uvs_loop *l)
{
	int i, err;

	if (l->on || !l->nsites)
		return 0;
	for (i = 0; i < l->nsites; i++) {
		struct uvs__site *s = &l->sites[i];
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = s->uretprobe);

		l->links[i] = bpf_program__attach_uprobe_opts(
			uvs__prog(l->skel, s->phase, s->retsite), l->t->pid,
			l->t->uv_open, s->off, &uo);
		if (!l->links[i]) {
			err = -errno;
			l->on = true; /* so that off releases what attached */
			uvs__probes_off(l);
			return uvs_seterr(err, "cannot attach uprobe (%s) in "
					  "%s: %s", s->what, l->t->uv_file,
					  strerror(-err));
		}
	}
	l->skel->bss->probe_gen++;
	l->skel->bss->probes_on = 1;
	l->on = true;
	l->on_since = uvs_now_ns();
	l->hits_at_on = l->skel->bss->stats.probe_hits;
	l->iters_at_on = l->total_iters;
	l->windows++;
	return 0;
}

static int uvs__on_iter(void *ctx, void *data, size_t len)
{
	struct uvs_loop *l = ctx;
	struct uvs_loop_report *a = &l->acc;
	const struct uvs_iter *it = data;
	uint64_t dur, busy;
	int i;

	if (len < sizeof(*it))
		return 0;
	dur = it->end_ns - it->start_ns;
	busy = dur > it->wait_ns ? dur - it->wait_ns : 0;
	l->total_iters++;
	a->iterations++;
	a->busy_ns += busy;
	a->wait_ns += it->wait_ns;
	uvs_hist__add(&a->wait_ns_h, it->wait_ns);
	if (it->timeout_ms < 0) {
		a->timeout_infinite++;
	} else {
		if (it->timeout_ms == 0)
			a->timeout_zero++;
		uvs_hist__add(&a->timeout_ms, (uint64_t)it->timeout_ms);
	}
	if (it->flags & UVS_IT_TIMEDOUT)
		a->timed_out++;
	else if (it->flags & UVS_IT_WOKEN)
		a->woken++;
	else
		a->interrupted++;
	if (it->flags & UVS_IT_PHASES) {
		a->phase_iterations++;
		for (i = 0; i < UVS_NPHASES; i++)
			uvs_hist__add(&a->phase[i].ns, it->phase_ns[i]);
	}
	return 0;
}

int uvs_loop__open(struct uvs_target *t, const struct uvs_loop_opts *opts,
		   struct uvs_loop **out)
{
	struct uvs_features feat;
	struct uvs_loop *l;
	struct loop_bpf *skel;
	int err, epfd;

	*out = NULL;
	uvs_features__probe(&feat);
	if (!uvs_features__ebpf_ok(&feat))
		return uvs_seterr(-EPERM, "eBPF unavailable: %s", feat.why_not);
	l = calloc(1, sizeof(*l));
	if (!l)
		return uvs_seterr(-ENOMEM, "out of memory");
	l->t = t;
	if (opts)
		memcpy(&l->opts, opts,
		       opts->sz < sizeof(l->opts) ? opts->sz : sizeof(l->opts));
	if (!l->opts.probe_budget)
		l->opts.probe_budget = 2000;
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
	skel->bss->loop_tid = l->opts.tid ? (uint32_t)l->opts.tid : (uint32_t)t->loop_tid;
	skel->data->loop_epfd = -1;
	if (t->tier == UVS_TIER_SYSCALLS && !t->launched) {
		/* Without symbols the loop's fd is the process's first epoll
		 * fd; a nested loop (execSync) makes a later one. */
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
	l->rb = ring_buffer__new(bpf_map__fd(skel->maps.events), uvs__on_iter,
				 l, NULL);
	if (!l->rb) {
		err = uvs_seterr(-errno, "cannot create ring buffer: %s",
				 strerror(errno));
		goto fail;
	}
	err = loop_bpf__attach(skel);
	if (err) {
		err = uvs_seterr(err, "cannot attach epoll tracepoints: %s",
				 strerror(-err));
		goto fail;
	}
	l->hits_per_iter = l->nsites + 1;
	err = uvs__probes_on(l);
	if (err)
		goto fail;
	if (l->opts.exact || !l->nsites)
		l->switch_at = UINT64_MAX;
	else
		l->switch_at = uvs_now_ns() + UVS_WINDOW_NS;
	*out = l;
	return 0;
fail:
	uvs_loop__close(l);
	return err;
}

/* Decides, at the end of each window, whether the phase probes stay. */
static int uvs__window(struct uvs_loop *l)
{
	uint64_t now = uvs_now_ns(), hits, iters;
	double span, rate, duty, cost;

	if (now < l->switch_at)
		return 0;
	if (!l->on) {
		l->switch_at = now + UVS_WINDOW_NS;
		return uvs__probes_on(l);
	}
	span = (now - l->on_since) / 1e9;
	hits = l->skel->bss->stats.probe_hits - l->hits_at_on;
	iters = l->total_iters - l->iters_at_on;
	if (iters > 10)
		l->hits_per_iter = (double)hits / iters;
	rate = iters / span;
	cost = hits / span;
	if (cost <= (double)l->opts.probe_budget) {
		/* light load: keep timing every iteration */
		l->switch_at = now + UVS_WINDOW_NS;
		return 0;
	}
	duty = l->opts.probe_budget / (rate * l->hits_per_iter);
	if (duty > 1)
		duty = 1;
	uvs__probes_off(l);
	l->switch_at = now + (uint64_t)(UVS_WINDOW_NS / duty) - UVS_WINDOW_NS;
	uvs_debug("phase probes: %.0f hits/s over budget %llu, off for %.2f s",
		  cost, (unsigned long long)l->opts.probe_budget,
		  (l->switch_at - now) / 1e9);
	return 0;
}

int uvs_loop__poll(struct uvs_loop *l, int timeout_ms)
{
	int err = ring_buffer__poll(l->rb, timeout_ms);

	if (err < 0 && err != -EINTR)
		return uvs_seterr(err, "ring buffer: %s", strerror(-err));
	if (l->switch_at != UINT64_MAX)
		return uvs__window(l);
	return 0;
}

void uvs_loop__collect(struct uvs_loop *l, struct uvs_report *r)
{
	struct uvs_loop_stats now;
	struct uvs_loop_report *a = &l->acc;
	int i;

	ring_buffer__consume(l->rb);
	memcpy(&now, &l->skel->bss->stats, sizeof(now));
	a->phases_known = l->t->tier == UVS_TIER_SYMBOLS;
	for (i = 0; i < UVS_NPHASES; i++)
		a->phase_derived[i] = l->derived[i];
	a->probe_hits = now.probe_hits - l->last.probe_hits;
	a->nested_ignored = now.nested_ignored - l->last.nested_ignored;
	a->other_epfd = now.other_epfd - l->last.other_epfd;
	r->lost_events += now.lost - l->last.lost;
	l->last = now;
	memcpy(&r->loop, a, sizeof(*a));
	memset(a, 0, sizeof(*a));
}

void uvs_loop__describe(const struct uvs_loop *l, FILE *out)
{
	int i;

	fprintf(out, "uvscope: libuv in %s (%s), loop thread %d, epoll fd %d\n",
		l->t->uv_file, uvs_tier_name(l->t->tier),
		l->skel->bss->loop_tid, l->skel->data->loop_epfd);
	fprintf(out, "uvscope: tracepoints: sys_enter/exit of epoll_wait, "
		"epoll_pwait%s\n", bpf_program__autoload(
			l->skel->progs.epoll_pwait2_enter) ? ", epoll_pwait2" : "");
	if (!l->nsites)
		fprintf(out, "uvscope: no phase probes: libuv's internal "
			"symbols are stripped, phases are unknown\n");
	for (i = 0; i < l->nsites; i++)
		fprintf(out, "uvscope: uprobe %-8s at %#llx: %s\n",
			uvs_phase_names[l->sites[i].phase],
			(unsigned long long)l->sites[i].addr, l->sites[i].what);
	if (l->nsites)
		fprintf(out, "uvscope: phase probes %s (budget %llu hits/s)\n",
			l->opts.exact ? "on every iteration (--exact)"
				      : "windowed under load",
			(unsigned long long)l->opts.probe_budget);
}

void uvs_loop__close(struct uvs_loop *l)
{
	if (!l)
		return;
	if (l->skel)
		uvs__probes_off(l);
	ring_buffer__free(l->rb);
	loop_bpf__destroy(l->skel);
	free(l);
}
