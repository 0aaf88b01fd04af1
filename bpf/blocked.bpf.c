// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What blocked a libuv loop thread: its busy periods (from one return of
 * epoll_wait on the loop's own epoll fd to the next call), and, within
 * them, stacks on CPU (a perf event sampling the thread) and off CPU (the
 * scheduler switching it out, with whoever woke it).
 *
 * Only the loop's own epoll fd ends a busy period: a nested loop on the
 * same thread (execSync runs one) waits on another fd, and that wait is
 * time the main loop is blocked.
 *
 * Every sample taken while busy goes to user space with its period's
 * sequence number; user space keeps those of periods that reach the
 * threshold. At ~1000 samples a second this costs nothing next to the
 * samples themselves.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "blocked.h"

const volatile __u32 targ_tgid = 0;
const volatile __u64 threshold_ns = 20000000;
const volatile bool kernel_stacks = false;
const volatile __u64 min_off_ns = 10000; /* shorter switches: preemption */
/* Off-CPU stacks taken per second at most: a loaded server's loop thread
 * sleeps on the pool's mutexes thousands of times a second, and a stack
 * costs a few microseconds; the time off CPU is counted all the same. */
const volatile __u64 offstack_per_s = 1000;

__u32 loop_tid = 0;
__s32 loop_epfd = -1; /* set by user space once the loop is known */
/* a launched program: its loop thread's first epoll wait is its loop's
 * (user space, reading the loop's memory later, has the last word) */
const volatile bool learn_epfd = false;
__u64 lost = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct blk_state st = {};

/* the off-CPU stack, taken as the thread leaves the CPU */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct uvs_blk_event);
} offstack SEC(".maps");

static __always_inline bool is_loop(__u32 tid)
{
	return loop_tid && tid == loop_tid;
}

/* The kernel walks frame pointers from the thread's rbp; a libc
 * function that uses rbp for itself (epoll_pwait does) ends that walk at
 * the first frame. The frame pointer of the code that called into libc is
 * usually saved on the stack just above: take the first word there that
 * points a little higher up the stack at a plausible frame record, and
 * walk from it. User space checks every return address it yields. */
static __always_inline void chain_walk(struct uvs_blk_event *e, __u64 sp)
{
	__u64 rec[2], fp = 0;
	int k, i;

	e->nchain = 0;
	e->chain_at = 0;
	for (k = 0; k < UVS_BLK_SCAN; k++) {
		__u64 v = e->scan[k];

		if (v <= sp || v > sp + (1 << 20) || (v & 7))
			continue;
		if (bpf_probe_read_user(rec, sizeof(rec), (void *)v))
			continue;
		if (rec[0] <= v || rec[0] > v + (1 << 22) || rec[1] < 0x1000)
			continue;
		fp = v;
		e->chain_at = k;
		break;
	}
	if (!fp)
		return;
	for (i = 0; i < UVS_BLK_CHAIN; i++) {
		if (bpf_probe_read_user(rec, sizeof(rec), (void *)fp))
			break;
		e->chain[i & (UVS_BLK_CHAIN - 1)] = rec[1];
		e->nchain = i + 1;
		if (rec[0] <= fp || rec[0] > fp + (1 << 22))
			break;
		fp = rec[0];
	}
}

static __always_inline void user_stack(void *ctx, struct uvs_blk_event *e,
				       struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 sp = 0;
	long n;

	n = bpf_get_stack(ctx, e->frames, sizeof(e->frames), BPF_F_USER_STACK);
	e->nframes = n < 0 ? n : (__s32)((__u64)n / 8);
	if (regs)
		sp = BPF_CORE_READ(regs, sp);
	e->nchain = 0;
	e->chain_at = 0;
	if (!sp || bpf_probe_read_user(e->scan, sizeof(e->scan), (void *)sp))
		__builtin_memset(e->scan, 0, sizeof(e->scan));
	else if (e->nframes < 4)
		chain_walk(e, sp);
	e->nkframes = 0;
	if (kernel_stacks) {
		n = bpf_get_stack(ctx, e->kframes, sizeof(e->kframes), 0);
		e->nkframes = n < 0 ? 0 : (__s32)((__u64)n / 8);
	}
}

/* ---- busy periods, from the loop's epoll waits ---- */

static __always_inline int wait_enter(int epfd)
{
	__u64 id = bpf_get_current_pid_tgid(), now, dur;
	struct uvs_blk_event *e;

	if ((id >> 32) != targ_tgid || !is_loop((__u32)id))
		return 0;
	if (loop_epfd < 0 && learn_epfd)
		loop_epfd = epfd;
	if (loop_epfd < 0 || epfd != loop_epfd)
		return 0;
	now = bpf_ktime_get_ns();
	if (st.busy_since) {
		dur = now - st.busy_since;
		if (dur >= threshold_ns) {
			e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
			if (e) {
				e->type = UVS_BEV_BUSY;
				e->ts = now;
				e->seq = st.seq;
				e->dur = dur;
				e->off_ns = st.off_ns;
				e->nframes = 0;
				e->nkframes = 0;
				e->waker_pid = 0;
				bpf_ringbuf_submit(e, 0);
			} else {
				__sync_fetch_and_add(&lost, 1);
			}
		}
	}
	st.busy_since = 0;
	st.in_wait = 1;
	return 0;
}

static __always_inline int wait_exit(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	if ((id >> 32) != targ_tgid || !is_loop((__u32)id) || !st.in_wait)
		return 0;
	st.in_wait = 0;
	st.seq++;
	st.busy_since = bpf_ktime_get_ns();
	st.off_ns = 0;
	return 0;
}

SEC("tp/syscalls/sys_enter_epoll_wait")
int epoll_wait_enter(struct trace_event_raw_sys_enter *ctx)
{
	return wait_enter(ctx->args[0]);
}

SEC("tp/syscalls/sys_enter_epoll_pwait")
int epoll_pwait_enter(struct trace_event_raw_sys_enter *ctx)
{
	return wait_enter(ctx->args[0]);
}

SEC("tp/syscalls/sys_enter_epoll_pwait2")
int epoll_pwait2_enter(struct trace_event_raw_sys_enter *ctx)
{
	return wait_enter(ctx->args[0]);
}

SEC("tp/syscalls/sys_exit_epoll_wait")
int epoll_wait_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_exit();
}

SEC("tp/syscalls/sys_exit_epoll_pwait")
int epoll_pwait_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_exit();
}

SEC("tp/syscalls/sys_exit_epoll_pwait2")
int epoll_pwait2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_exit();
}

/* ---- on CPU: the perf event's samples ---- */

SEC("perf_event")
int on_cpu(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct uvs_blk_event *e;

	if ((id >> 32) != targ_tgid || !is_loop((__u32)id) || !st.busy_since)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return 0;
	}
	e->type = UVS_BEV_SAMPLE;
	e->ts = bpf_ktime_get_ns();
	e->seq = st.seq;
	e->dur = 0;
	e->off_ns = 0;
	e->waker_pid = 0;
	user_stack(ctx, e, bpf_get_current_task_btf());
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* ---- off CPU: the scheduler ---- */

/* The scheduler's tracepoints as raw tracepoints: a busy machine switches
 * tasks 100,000 times a second, and the classic tracepoint formats a
 * record for each before the program even looks (measured: ~0.5 us a
 * switch, several % of a loaded server's CPU). The raw one hands over the
 * task pointers. */
SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	struct uvs_blk_event *e, *s;
	pid_t prev_pid, next_pid;
	__u32 zero = 0;
	__u64 now;

	if (!loop_tid)
		return 0;
	/* the task switching out is the one running this: no read of it,
	 * and the next one is read only while the loop is switched out */
	prev_pid = (__u32)bpf_get_current_pid_tgid();
	if (is_loop(prev_pid) && st.busy_since &&
	    (bpf_get_current_pid_tgid() >> 32) == targ_tgid) {
		now = bpf_ktime_get_ns();
		st.switched_out = now;
		st.waker_pid = 0;
		/* Preempted, it waits for a CPU, not for something it asked
		 * for: the time counts off CPU, its stack is the one it was
		 * running (the on-CPU samples have it). A busy server's loop
		 * is preempted thousands of times a second by its own pool
		 * threads: a stack for each would cost it dearly. */
		st.preempted = preempt;
		if (st.preempted)
			return 0;
		/* a token bucket of offstack_per_s, up to a second's worth */
		st.tokens += (now - st.tokens_at) * offstack_per_s;
		st.tokens_at = now;
		if (st.tokens > offstack_per_s * 1000000000ull)
			st.tokens = offstack_per_s * 1000000000ull;
		if (st.tokens < 1000000000ull) {
			st.nostack++;
			st.preempted = 1; /* no stack: only its time counts */
			return 0;
		}
		st.tokens -= 1000000000ull;
		/* going to sleep while busy: keep its stack for later */
		s = bpf_map_lookup_elem(&offstack, &zero);
		if (!s)
			return 0;
		s->ts = now;
		s->seq = st.seq;
		user_stack(ctx, s, bpf_get_current_task_btf());
		return 0;
	}
	if (!st.switched_out)
		return 0;
	next_pid = BPF_CORE_READ(next, pid);
	if (!is_loop(next_pid))
		return 0;
	now = bpf_ktime_get_ns();
	st.off_ns += now - st.switched_out;
	if (st.preempted) {
		st.switched_out = 0;
		return 0;
	}
	s = bpf_map_lookup_elem(&offstack, &zero);
	if (!s || s->seq != st.seq) {
		st.switched_out = 0;
		return 0;
	}
	s->dur = now - st.switched_out;
	st.switched_out = 0;
	if (s->dur < min_off_ns)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return 0;
	}
	/* too large for an inlined copy */
	bpf_probe_read_kernel(e, sizeof(*e), s);
	e->type = UVS_BEV_OFFCPU;
	e->off_ns = 0;
	e->waker_pid = st.waker_pid;
	__builtin_memcpy(e->waker_comm, st.waker_comm, sizeof(e->waker_comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* The loop thread's end: a busy period still going then ends there, not
 * when uvscope notices. Fires once a thread exits, system-wide: cheap. */
SEC("tp/sched/sched_process_exit")
int loop_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if ((id >> 32) == targ_tgid && is_loop((__u32)id) && !st.exited_at)
		st.exited_at = bpf_ktime_get_ns();
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	if (!st.switched_out || !is_loop(BPF_CORE_READ(p, pid)))
		return 0;
	st.waker_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(st.waker_comm, sizeof(st.waker_comm));
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
