// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Event-loop iterations of one libuv loop thread.
 *
 * Always on (cheap syscall tracepoints): epoll_wait/epoll_pwait/epoll_pwait2
 * on the loop's own epoll fd give iterations, requested timeouts, time
 * waited and events returned.
 *
 * Tier A adds uprobes at phase boundaries (see lib/loop.c for where they go).
 * They are attached in windows chosen by user space, which bumps probe_gen
 * whenever the set changes; an iteration carries phase times only if the
 * probes covered all of it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "loop.h"
#include "window.h"

#define EINTR 4
/* Node's UV_METRICS_IDLE_TIME makes libuv poll with timeout 0 first and then
 * again with the real timeout; that second call follows within microseconds. */
#define CONT_GAP_NS 50000ULL

const volatile __u32 targ_tgid = 0;
const volatile bool tier_a = false;
/* uv_loop_t's backend_fd (layout profile), or -1 */
const volatile __s64 backend_fd_off = -1;
/* libuv calls every phase function every iteration; a phase that ran no
 * callback takes a few microseconds (most of it the probe itself). The
 * distributions keep the iterations where a phase took at least this long,
 * so that empty runs do not bury the ones that did work. */
const volatile __u64 phase_floor_ns = 10000;

/* Set by user space after load. */
__u32 loop_tid = 0;
__s32 loop_epfd = -1;
__u64 main_loop = 0;
__u32 probe_gen = 0;
__u32 probes_on = 0;
__u32 learn_backend = 0; /* a window ended with no poll entry seen
			  * (set where it ends: boundary) */
__u32 expect_mask = 0;

struct uvs_loop_agg agg = {};

struct loop_state st = { .cur_phase = UVS_PH_NONE, .last_ret = -1 };

static __always_inline bool on_loop_thread(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	return (id >> 32) == targ_tgid && (__u32)id == loop_tid;
}

static __always_inline void hist_add(__u32 *h, __u64 v)
{
	int i = uvs_hist_index(v);

	if (i >= 0 && i < UVS_HIST_NB)
		h[i]++;
}

/* Accounts the iteration that ends now. Only the loop thread gets here,
 * so plain increments are safe. */
static __always_inline void account(__u64 now)
{
	__u64 dur = now - st.it_start;
	int i;

	/* a sequence count lets user space take a consistent snapshot */
	__sync_fetch_and_add(&agg.seq, 1);
	agg.iterations++;
	agg.wait_ns += st.wait_ns;
	agg.busy_ns += dur > st.wait_ns ? dur - st.wait_ns : 0;
	hist_add(agg.wait_h, st.wait_ns);
	if (st.timeout < 0) {
		agg.timeout_inf++;
	} else {
		if (st.timeout == 0)
			agg.timeout_zero++;
		agg.timeout_sum += st.timeout;
		hist_add(agg.timeout_h, st.timeout);
	}
	if (st.last_ret == 0)
		agg.timed_out++;
	else if (st.last_ret > 0)
		agg.woken++;
	else
		agg.interrupted++;
	if (st.it_exact)
		agg.exact++;
	if (st.done_ok && st.done_gen == probe_gen && probes_on &&
	    (st.done_seen & expect_mask) == expect_mask) {
		agg.phase_iterations++;
		for (i = 0; i < UVS_NPHASES; i++) {
			agg.phase_sum[i] += st.done[i];
			if (st.done[i] < phase_floor_ns)
				continue;
			agg.phase_active_sum[i] += st.done[i];
			hist_add(agg.phase_h[i], st.done[i]);
		}
	}
	st.done_ok = 0;
	__sync_fetch_and_add(&agg.seq, 1);
}

static __always_inline bool continues_iteration(__u64 now, __s32 timeout)
{
	/* While the phase probes cover the loop, uv__io_poll's entry marks
	 * each iteration exactly. */
	if (probes_on && st.it_exact && st.poll_entry_gen == probe_gen)
		return !st.poll_entry_pending;
	if (st.poll_entry_pending && st.poll_entry_gen == probe_gen && probes_on)
		return false;
	if (st.last_ret == -EINTR)
		return true;
	if (st.last_ret == 0 && st.last_timeout == 0 && timeout != 0 &&
	    now - st.last_exit < CONT_GAP_NS)
		return true;
	if (st.last_ret > 0 && (__u32)st.last_ret == st.last_maxevents &&
	    timeout == 0 && now - st.last_exit < CONT_GAP_NS)
		return true;
	return false;
}

static __always_inline int wait_enter(int epfd, int maxevents, __s32 timeout)
{
	__u64 now;

	if (!on_loop_thread())
		return 0;
	if (loop_epfd < 0) {
		/* In tier A the loop's fd is the one polled right after the
		 * main loop enters uv__io_poll, or, once a window of phase
		 * probes ended before one was seen (learn_backend), the one
		 * the main loop's backend_fd says; otherwise the first one
		 * seen. */
		if (tier_a && !st.poll_entry_pending) {
			__s32 bfd = -1;

			if (!learn_backend || !main_loop || backend_fd_off < 0 ||
			    bpf_probe_read_user(&bfd, sizeof(bfd),
						(void *)(main_loop +
							 backend_fd_off)) ||
			    bfd != epfd)
				return 0;
		}
		loop_epfd = epfd;
	}
	if (epfd != loop_epfd) {
		agg.other_epfd++;
		return 0;
	}
	now = bpf_ktime_get_ns();
	if (!st.it_start || !continues_iteration(now, timeout)) {
		if (st.it_start)
			account(now);
		st.it_start = now;
		st.wait_ns = 0;
		st.nwaits = 0;
		st.timeout = timeout;
		st.it_exact = st.poll_entry_pending &&
			      st.poll_entry_gen == probe_gen && probes_on;
		if (st.it_exact)
			st.timeout = st.poll_timeout;
	} else if (!st.it_exact && st.timeout >= 0 &&
		   (timeout < 0 || timeout > st.timeout)) {
		st.timeout = timeout;
	}
	st.poll_entry_pending = 0;
	st.cur_timeout = timeout;
	st.cur_maxevents = maxevents;
	st.wait_enter = now;
	st.in_wait = 1;
	__sync_fetch_and_add(&agg.seq, 1);
	agg.cur_wait_enter = now;
	if (!agg.seen_enter)
		agg.seen_enter = now;
	__sync_fetch_and_add(&agg.seq, 1);
	return 0;
}

static __always_inline int wait_exit(long ret)
{
	__u64 now;

	if (!on_loop_thread())
		return 0;
	now = bpf_ktime_get_ns();
	if (!st.in_wait) {
		if (!agg.seen_enter && !agg.pre_exit) {
			__sync_fetch_and_add(&agg.seq, 1);
			agg.pre_exit = now;
			__sync_fetch_and_add(&agg.seq, 1);
		}
		return 0;
	}
	__sync_fetch_and_add(&agg.seq, 1);
	agg.wait_all_ns += now - st.wait_enter;
	agg.cur_wait_enter = 0;
	__sync_fetch_and_add(&agg.seq, 1);
	st.in_wait = 0;
	st.wait_ns += now - st.wait_enter;
	st.nwaits++;
	st.last_ret = ret;
	st.last_timeout = st.cur_timeout;
	st.last_maxevents = st.cur_maxevents;
	st.last_exit = now;
	return 0;
}

SEC("tp/syscalls/sys_enter_epoll_wait")
int epoll_wait_enter(struct trace_event_raw_sys_enter *ctx)
{
	return wait_enter(ctx->args[0], ctx->args[2], ctx->args[3]);
}

SEC("tp/syscalls/sys_enter_epoll_pwait")
int epoll_pwait_enter(struct trace_event_raw_sys_enter *ctx)
{
	return wait_enter(ctx->args[0], ctx->args[2], ctx->args[3]);
}

SEC("tp/syscalls/sys_enter_epoll_pwait2")
int epoll_pwait2_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct __kernel_timespec ts;
	const void *uts = (const void *)ctx->args[3];
	__s32 ms = -1;

	if (uts && !bpf_probe_read_user(&ts, sizeof(ts), uts))
		ms = (__u64)ts.tv_sec * 1000 +
		     ((__u64)ts.tv_nsec + 999999) / 1000000;
	return wait_enter(ctx->args[0], ctx->args[2], ms);
}

SEC("tp/syscalls/sys_exit_epoll_wait")
int epoll_wait_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_exit(ctx->ret);
}

SEC("tp/syscalls/sys_exit_epoll_pwait")
int epoll_pwait_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_exit(ctx->ret);
}

SEC("tp/syscalls/sys_exit_epoll_pwait2")
int epoll_pwait2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_exit(ctx->ret);
}

static __always_inline int boundary(struct pt_regs *ctx, __u32 phase,
				    bool entry)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	__u64 now;
	int i;

	if ((id >> 32) != targ_tgid)
		return 0;
	/* every thread's hit costs the target a trap */
	__sync_fetch_and_add(&agg.probe_hits, 1);
	if (!win_hit()) {
		/* the window ended on its budget: nothing is timed from here
		 * until the next one (the iteration under way is dropped) */
		if (probes_on) {
			probes_on = 0;
			probe_gen++;
		}
		/* no poll entry to learn the loop's fd from until the next */
		if (loop_epfd < 0)
			learn_backend = 1;
		return 0;
	}
	if (entry) {
		__u64 loop = PT_REGS_PARM1(ctx);

		if (!main_loop) {
			if (tid != loop_tid)
				return 0;
			main_loop = loop;
		}
		if (loop != main_loop) {
			agg.nested_ignored++;
			return 0;
		}
		loop_tid = tid;
		if (phase == UVS_PH_TIMERS || phase == UVS_PH_CHECK)
			st.uvrun_sp = PT_REGS_SP(ctx) + 8;
	} else {
		/* uretprobe: back in uv_run, whose frame tells the main loop's
		 * uv_run from a nested one (execSync) */
		if (tid != loop_tid)
			return 0;
		if (PT_REGS_SP(ctx) != st.uvrun_sp) {
			agg.nested_ignored++;
			return 0;
		}
	}
	now = bpf_ktime_get_ns();
	i = st.cur_phase;
	if (i >= 0 && i < UVS_NPHASES)
		st.acc[i] += now - st.phase_t;
	st.cur_phase = phase;
	st.phase_t = now;
	st.acc_seen |= 1u << phase;
	if (phase == UVS_PH_POLL) {
		for (i = 0; i < UVS_NPHASES; i++) {
			st.done[i] = st.acc[i];
			st.acc[i] = 0;
		}
		st.done_seen = st.acc_seen;
		st.done_gen = st.acc_gen;
		st.done_ok = st.acc_ok;
		st.acc_seen = 1u << UVS_PH_POLL;
		st.acc_gen = probe_gen;
		st.acc_ok = probes_on;
		st.poll_entry_pending = 1;
		st.poll_entry_gen = probe_gen;
		/* With UV_METRICS_IDLE_TIME (Node) libuv polls with timeout 0
		 * first and never passes its real timeout on when events are
		 * ready: uv__io_poll's argument is what the loop asked for. */
		st.poll_timeout = (__s32)PT_REGS_PARM2(ctx);
	}
	return 0;
}

/* Phase <name> begins at a function's entry (loop in arg 1) or when a
 * function returns to uv_run (uretprobe); lib/loop.c chooses which
 * program goes where. */
#define PHASE_PROGS(name, ph)                                             \
	SEC("uprobe")                                                     \
	int BPF_KPROBE(entry_##name) { return boundary(ctx, ph, true); }  \
	SEC("uretprobe")                                                  \
	int BPF_KRETPROBE(return_##name) { return boundary(ctx, ph, false); }

/* The same, as one uprobe_multi link for all entries and one for all
 * returns, the phase in each probe's cookie: releasing a link waits for
 * one RCU grace period, where separate uprobes wait for one each, one
 * after another, with their breakpoints still trapping meanwhile. */
SEC("uprobe")
int BPF_KPROBE(multi_entry)
{
	__u64 ph = bpf_get_attach_cookie(ctx);

	return ph < UVS_NPHASES ? boundary(ctx, ph, true) : 0;
}

SEC("uprobe")
int BPF_KPROBE(multi_return)
{
	__u64 ph = bpf_get_attach_cookie(ctx);

	return ph < UVS_NPHASES ? boundary(ctx, ph, false) : 0;
}

PHASE_PROGS(timers, UVS_PH_TIMERS)
PHASE_PROGS(pending, UVS_PH_PENDING)
PHASE_PROGS(idle, UVS_PH_IDLE)
PHASE_PROGS(prepare, UVS_PH_PREPARE)
PHASE_PROGS(poll, UVS_PH_POLL)
PHASE_PROGS(check, UVS_PH_CHECK)
PHASE_PROGS(close, UVS_PH_CLOSE)

char LICENSE[] SEC("license") = "Dual BSD/GPL";
