// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `uvscope loop` by stack sampling (the ptrace backend).
 *
 * Each sample of the loop thread is put in one state: the libuv phase
 * function called by the outermost uv_run on its stack (so a nested loop,
 * as execSync runs, counts as the phase of the main loop that ran it), and
 * for uv__io_poll whether the thread sits in the loop's own epoll wait
 * (the system call it was stopped in, from orig_rax) or runs callbacks.
 * Where a phase helper is inlined into uv_run (Node 20: uv__run_pending,
 * uv__run_closing_handles), the frame below uv_run names no phase: such
 * samples are "unknown", never guessed. Shares come with their sampling
 * error: a 95% binomial (Wilson) interval.
 */
#include <elf.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include "uvscope.h"
#include "ptrace.h"


/* indexes of uvs_phase_names */
enum {
	UVS_PH_TIMERS_IDX,
	UVS_PH_PENDING_IDX,
	UVS_PH_IDLE_IDX,
	UVS_PH_PREPARE_IDX,
	UVS_PH_POLL_IDX,
	UVS_PH_CHECK_IDX,
	UVS_PH_CLOSE_IDX,
};

struct uvs__range {
	uint64_t lo, hi;
};

struct uvs_ploop {
	struct uvs_target *t;
	struct uvs_pt *pt;
	struct uvs_ploop_opts o;
	bool ranges_ready;
	bool phases_known;
	struct uvs__range run;
	struct uvs__range ph[7];
	bool inlined[7];
	uint64_t n[UVS_SP_NSTATES], samples;
	struct uvs_pt_stats last; /* stats at the previous collect */
	/* libuv >= 1.45 counts the default loop's iterations itself
	 * (uv_metrics_t.loop_count, in its internal fields): read at each
	 * collect, the iterations are exact without a stop */
	int counter;		/* 1 readable, 0 not yet, -1 never */
	uint64_t counter_addr;
	uint64_t count_base;	/* at the previous collect */
	bool wait_fd_known;	/* learnt without phases (uvs__learn_wait_fd) */
	/* a launched program's main, from the trace's start (its first
	 * poll) to the first sample in uv_run: the last sample outside it
	 * and that one bound where it ended */
	uint64_t start_ns, main_out_ns, main_in_ns;
	bool main_done;
};

/* uv__loop_internal_fields_t (src/uv-common.h, libuv 1.45 to 1.51):
 * unsigned int flags, then uv__loop_metrics_t, whose first member is the
 * public uv_metrics_t: loop_count is 8 bytes in. */
#define UVS__LOOP_COUNT_OFF 8

static bool uvs__has_loop_count(const char *v)
{
	int major = 0, minor = 0;

	return sscanf(v, "%d.%d", &major, &minor) == 2 &&
	       (major > 1 || (major == 1 && minor >= 45));
}

int uvs_ploop__find_marks(struct uvs_target *t, pid_t tid,
			  struct uvs_pt_marks *m)
{
	struct uvs_layout *ly = NULL;
	uint64_t loop = 0, fields = 0;
	long toff, foff;

	memset(m, 0, sizeof(*m));
	if (tid && tid != t->pid)
		return -ENOENT; /* a loop other than the default one */
	if (!t->libuv_version[0] || uvs_layout__load(t->libuv_version, &ly))
		return -ENOENT;
	toff = uvs_layout__off(ly, "uv_loop_t", "time");
	foff = uvs_layout__off(ly, "uv_loop_t", "internal_fields");
	uvs_layout__close(ly);
	if (toff < 0)
		return -ENOENT;
	if (uvs_target__locate(t) || uvs_target__default_loop(t, &loop) ||
	    !loop)
		return -EAGAIN; /* not created yet */
	if (uvs__has_loop_count(t->libuv_version) && foff >= 0) {
		if (uvs_mem_read(t->pid, loop + foff, &fields,
				 sizeof(fields)) ||
		    !fields)
			return -EAGAIN;
		m->count_addr = fields + UVS__LOOP_COUNT_OFF;
	}
	m->time_addr = loop + toff;
	return 0;
}

/* Finds the default loop's loop_count once the loop exists. */
static void uvs__find_counter(struct uvs_ploop *l)
{
	struct uvs_pt_marks m;
	int err;

	if (l->counter)
		return;
	err = uvs_ploop__find_marks(l->t, l->o.tid, &m);
	if (err == -EAGAIN)
		return; /* later */
	if (err || !m.count_addr) {
		l->counter = -1; /* another loop, or a libuv without it */
		return;
	}
	l->counter_addr = m.count_addr;
	if (uvs_mem_read(l->t->pid, l->counter_addr, &l->count_base,
			 sizeof(l->count_base)))
		return;
	l->counter = 1;
	uvs_debug("ptrace: iterations from libuv's loop_count at %#llx (%llu)",
		  (unsigned long long)l->counter_addr,
		  (unsigned long long)l->count_base);
}

/* libuv's functions as the target has them mapped; a launched program
 * maps libuv after its first instructions, so this is retried. */
static void uvs__ranges(struct uvs_ploop *l)
{
	const char *const *names = uvs_uv_run_fns;
	const struct uvs_sym *s[8];
	struct uvs_target *t = l->t;
	int i, found = 0;

	if (l->ranges_ready || !t->uv_elf)
		return;
	if (!t->uv_bias_known && uvs_target__locate(t))
		return;
	uvs_elf__lookup(t->uv_elf, names, 8, s);
	if (s[0]) {
		l->run.lo = t->uv_bias + s[0]->addr;
		l->run.hi = l->run.lo + (s[0]->size ? s[0]->size : 1);
	}
	for (i = 1; i < 8; i++) {
		if (!s[i] || s[i]->type != STT_FUNC)
			continue;
		l->ph[i - 1].lo = t->uv_bias + s[i]->addr;
		l->ph[i - 1].hi = l->ph[i - 1].lo + s[i]->size;
		found++;
	}
	/* uv_run, timers and poll found: the build has phase symbols; a
	 * phase then missing was inlined into uv_run */
	l->phases_known = s[0] && s[1] && s[5];
	for (i = 0; l->phases_known && i < 7; i++)
		l->inlined[i] = !l->ph[i].lo;
	l->ranges_ready = true;
	uvs_debug("ptrace: uv_run at %#llx, %d phase functions%s%s",
		  (unsigned long long)l->run.lo, found,
		  l->inlined[UVS_PH_PENDING_IDX] ? ", pending inlined" : "",
		  l->inlined[UVS_PH_CLOSE_IDX] ? ", close inlined" : "");
}

static bool uvs__in(const struct uvs__range *r, uint64_t ip)
{
	return r->lo && ip >= r->lo && ip < r->hi;
}

static bool uvs__epoll_wait(long nr)
{
	return nr == SYS_epoll_wait || nr == SYS_epoll_pwait
#ifdef SYS_epoll_pwait2
	       || nr == SYS_epoll_pwait2
#endif
	    ;
}

/* The code address of frame i: return addresses point after the call. */
static uint64_t uvs__pc(const struct uvs_pt_sample *s, int i)
{
	return i ? s->ip[i] - 1 : s->ip[i];
}

static int uvs__classify(struct uvs_ploop *l, const struct uvs_pt_sample *s)
{
	int i, outer = -1, runs = 0, ph = -1, polls = 0;
	uint64_t pc;

	if (s->in_wait)
		return UVS_SP_POLL_WAIT; /* blocked on the loop's epoll fd */
	if (!s->nframes)
		return UVS_SP_NOSTACK;
	for (i = 0; i < s->nframes; i++) {
		pc = uvs__pc(s, i);
		if (uvs__in(&l->run, pc)) {
			outer = i;
			runs++;
		}
		if (uvs__in(&l->ph[UVS_PH_POLL_IDX], pc))
			polls++;
	}
	if (outer < 0)
		return UVS_SP_OUTSIDE;
	if (!l->phases_known) {
		/* stripped libuv: only the wait is known, and only when no
		 * nested loop is on the stack */
		return runs == 1 && uvs__epoll_wait(s->syscall)
			   ? UVS_SP_POLL_WAIT
			   : UVS_SP_UNKNOWN;
	}
	if (outer == 0)
		return UVS_SP_UNKNOWN; /* in uv_run itself */
	pc = uvs__pc(s, outer - 1);
	for (i = 0; i < 7; i++)
		if (uvs__in(&l->ph[i], pc))
			ph = i;
	switch (ph) {
	case UVS_PH_TIMERS_IDX:
		return UVS_SP_TIMERS;
	case UVS_PH_PENDING_IDX:
		return UVS_SP_PENDING;
	case UVS_PH_IDLE_IDX:
		return UVS_SP_IDLE;
	case UVS_PH_PREPARE_IDX:
		return UVS_SP_PREPARE;
	case UVS_PH_POLL_IDX:
		/* waiting: in epoll, and that epoll is this uv__io_poll's
		 * (no loop nested in a callback) */
		return uvs__epoll_wait(s->syscall) && runs == 1 && polls == 1
			   ? UVS_SP_POLL_WAIT
			   : UVS_SP_POLL_CB;
	case UVS_PH_CHECK_IDX:
		return UVS_SP_CHECK;
	case UVS_PH_CLOSE_IDX:
		return UVS_SP_CLOSE;
	}
	return UVS_SP_UNKNOWN;
}

/* -vvv: each sample, named (slow: for debugging the classification) */
static void uvs__debug_sample(struct uvs_ploop *l,
			      const struct uvs_pt_sample *s, int state)
{
	struct uvs_syms *sy = NULL;
	char buf[256];
	int i;

	if (uvs_syms__open(l->t->pid, &sy))
		return;
	fprintf(stderr, "sample: %s, syscall %ld, %d frames, stopped %.0f us\n",
		uvs_sample_state_names[state], s->syscall, s->nframes,
		s->stopped_ns / 1e3);
	for (i = 0; i < s->nframes; i++)
		fprintf(stderr, "  %s\n",
			uvs_syms__name(sy, s->ip[i], buf, sizeof(buf)));
	uvs_syms__close(sy);
}

/* A stripped libuv names no phase that tells a wait from the loop's own
 * code: the loop thread found blocked in an epoll wait (its /proc syscall
 * line, read without a stop) shows its loop's fd, and later waits on it
 * are sampled without a stop. Each stop of a wait ends it with EINTR, and
 * libuv, whose clock is in milliseconds, then waits up to a millisecond
 * less: luv's 50 ms timer ran 19.5 times a second where it runs 17.8. */
static void uvs__learn_wait_fd(struct uvs_ploop *l, pid_t tid)
{
	int fd = uvs_target__epoll_waiting(l->t, tid);

	if (fd < 0 || !uvs_target__is_epoll_fd(l->t, fd))
		return;
	l->wait_fd_known = true;
	uvs_debug("ptrace: the loop waits on epoll fd %d (seen blocked in "
		  "it)", fd);
	uvs_pt__set_wait_fd(l->pt, fd);
}

static void uvs__on_sample(const struct uvs_pt_sample *s, void *ctx)
{
	struct uvs_ploop *l = ctx;

	int state;

	if (!l->ranges_ready)
		uvs__ranges(l);
	if (!l->counter)
		uvs__find_counter(l);
	state = uvs__classify(l, s);
	if (l->t->launched && l->start_ns && !l->main_in_ns) {
		if (state == UVS_SP_OUTSIDE)
			l->main_out_ns = s->ts_ns;
		else if (state != UVS_SP_NOSTACK)
			l->main_in_ns = s->ts_ns;
	}
	/* the loop's own epoll fd, learnt from a wait seen on the stack:
	 * later waits on it are sampled without a stop */
	if (state == UVS_SP_POLL_WAIT && !s->in_wait && l->phases_known) {
		uvs_debug("ptrace: the loop waits on epoll fd %ld", s->arg0);
		uvs_pt__set_wait_fd(l->pt, s->arg0);
	} else if (!l->phases_known && !l->wait_fd_known)
		uvs__learn_wait_fd(l, s->tid);
	l->n[state]++;
	l->samples++;
	if (uvs_verbose >= 3)
		uvs__debug_sample(l, s, state);
	else if (uvs_verbose >= 2)
		fprintf(stderr,
			"sample: %s, syscall %ld, %d frames, stopped "
			"%.0f us\n",
			uvs_sample_state_names[state], s->syscall, s->nframes,
			s->stopped_ns / 1e3);
}

int uvs_ploop__open(struct uvs_target *t, const struct uvs_ploop_opts *opts,
		    struct uvs_ploop **out)
{
	struct uvs_pt_opts po = {.sz = sizeof(po)};
	struct uvs_ploop *l;
	int err;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return uvs_seterr(-ENOMEM, "out of memory");
	l->t = t;
	memcpy(&l->o, opts, opts->sz < sizeof(l->o) ? opts->sz : sizeof(l->o));
	if (l->o.rate_hz <= 0)
		l->o.rate_hz = UVS_PT_DEFAULT_HZ;
	po.rate_hz = l->o.rate_hz;
	po.tid = l->o.tid ? l->o.tid : t->loop_tid;
	po.launched = t->launched;
	po.hold_us = l->o.hold_us;
	if (!t->launched) {
		uvs__ranges(l);
		uvs__find_counter(l);
	}
	err = uvs_pt__open(t->pid, &po, uvs__on_sample, NULL, l, &l->pt);
	if (err) {
		free(l);
		return err;
	}
	/* before the first sample, so that it does not cut a wait short */
	if (!l->phases_known)
		uvs__learn_wait_fd(l, po.tid ? po.tid : t->pid);
	*out = l;
	return 0;
}

int uvs_ploop__poll(struct uvs_ploop *l, int timeout_ms)
{
	if (!l->start_ns)
		l->start_ns = uvs_now_ns(); /* the report's start, as eBPF's */
	return uvs_pt__poll(l->pt, timeout_ms);
}

bool uvs_ploop__ended(const struct uvs_ploop *l, bool *reaped, int *status)
{
	return uvs_pt__ended(l->pt, reaped, status);
}

void uvs_ploop__collect(struct uvs_ploop *l, struct uvs_report *r)
{
	struct uvs_loop_sampling *o = &r->loop.sampled;
	struct uvs_pt_stats st;
	struct uvs_hist d;
	double wait_share, lo, hi;
	uint64_t wall;
	int i;

	uvs_pt__stats(l->pt, &st);
	memset(o, 0, sizeof(*o));
	o->on = true;
	o->rate_hz = l->o.rate_hz;
	o->samples = l->samples;
	o->missed = st.missed - l->last.missed;
	o->unstopped = st.peeked - l->last.peeked;
	memcpy(o->n, l->n, sizeof(o->n));
	o->phases_known = l->phases_known;
	memcpy(o->inlined, l->inlined, sizeof(o->inlined));
	o->threads = st.threads;
	/* the cost of the samples since the last collect */
	d = st.stopped_ns;
	for (i = 0; i < UVS_HIST_NB; i++)
		d.b[i] -= l->last.stopped_ns.b[i];
	d.count -= l->last.stopped_ns.count;
	d.sum -= l->last.stopped_ns.sum;
	o->cost_us_p50 = uvs_hist__quantile(&d, 0.5) / 1e3;
	o->cost_us_p99 = uvs_hist__quantile(&d, 0.99) / 1e3;
	o->cost_us_mean = d.count ? (double)d.sum / d.count / 1e3 : 0;
	d = st.unwind_ns;
	for (i = 0; i < UVS_HIST_NB; i++)
		d.b[i] -= l->last.unwind_ns.b[i];
	d.count -= l->last.unwind_ns.count;
	o->unwind_us_p50 = uvs_hist__quantile(&d, 0.5) / 1e3;
	l->last = st;
	/* the exact fields: busy and wait as the shares estimate them */
	uvs_share_interval(o->n[UVS_SP_POLL_WAIT], o->samples, &wait_share, &lo,
			   &hi);
	wall = r->duration_s > 0 ? r->duration_s * 1e9 : 0;
	r->loop.wait_ns = wall * wait_share;
	r->loop.busy_ns = o->samples ? wall - r->loop.wait_ns : 0;
	r->loop.wall_ns = wall;
	r->loop.phases_known = false;
	/* the iterations libuv counted since the last collect */
	o->iterations_counted = false;
	if (!l->counter)
		uvs__find_counter(l);
	if (l->counter > 0) {
		uint64_t now_count;

		if (!uvs_mem_read(l->t->pid, l->counter_addr, &now_count,
				  sizeof(now_count)) &&
		    now_count >= l->count_base) {
			r->loop.iterations = now_count - l->count_base;
			o->iterations_counted = true;
			l->count_base = now_count;
		}
	}
	/* a launched program: its main module's run, to the first sample
	 * in uv_run (halfway from the last one outside it: within half a
	 * sample period); reported once, in the window where it ended */
	if (l->t->launched && l->start_ns && !l->main_done) {
		uint64_t end = uvs_now_ns();

		if (l->main_in_ns)
			end = l->main_out_ns > l->start_ns
				      ? l->main_out_ns +
					    (l->main_in_ns - l->main_out_ns) / 2
				      : l->main_in_ns;
		r->loop.has_main = true;
		r->loop.main_ongoing = !l->main_in_ns;
		r->loop.main_ns = end > l->start_ns ? end - l->start_ns : 0;
		l->main_done = l->main_in_ns != 0;
	}
	memset(l->n, 0, sizeof(l->n));
	l->samples = 0;
}

void uvs_ploop__describe(const struct uvs_ploop *l, FILE *out)
{
	fprintf(out,
		"uvscope: ptrace: sampling thread %d at %.0f Hz; "
		"phases from %s\n",
		l->o.tid ? l->o.tid : l->t->loop_tid, l->o.rate_hz,
		!l->ranges_ready ? "libuv's symbols (once mapped)"
		: l->phases_known
		    ? "libuv's phase functions on the stack"
		    : "nothing (libuv is stripped): poll wait only");
}

struct uvs_pt *uvs_ploop__sampler(struct uvs_ploop *l)
{
	return l->pt;
}

void uvs_ploop__close(struct uvs_ploop *l)
{
	if (!l)
		return;
	uvs_pt__close(l->pt);
	free(l);
}
