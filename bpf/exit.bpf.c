// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Why a process ended: exit_group and exit syscalls, signals sent to it and
 * taken by it, the OOM killer's choice, its last writes to stderr, the
 * runtime's exit path, the main loop draining, and an exec (the end of
 * the program watched, though not of the process). Every program filters on
 * the target first; only the target's own rare events reach user space, so
 * the cost while it runs is a tracepoint hit per write() on the system.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "exit.h"

/* the kernel's pseudo-pointers for siginfo, and the codes they mean */
#define SEND_SIG_NOINFO	0
#define SEND_SIG_PRIV	1
#define SI_USER		0
#define SI_KERNEL	0x80

const volatile __u32 targ_tgid = 0;
__u64 main_loop = 0; /* set by user space; 0 = any loop */
/* uv_loop_t's active_handles and active_reqs.count (layout profile) */
const volatile __s64 loop_handles_off = -1;
const volatile __s64 loop_reqs_off = -1;
__u64 lost = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* uv_run's loop argument, per thread, for its return. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} run_loop SEC(".maps");

static __always_inline bool is_target(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

static __always_inline struct uvs_exit_event *reserve(__u32 type)
{
	struct uvs_exit_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return NULL;
	}
	__builtin_memset(e, 0, offsetof(struct uvs_exit_event, stack));
	e->type = type;
	e->ts_ns = bpf_ktime_get_ns();
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->text_len = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

/* What is left in a loop: its active handles and requests; 0, or -1 if
 * unknown (no layout) or unreadable. */
static __always_inline int read_loop(__u64 loop, __u32 *handles,
				     __u32 *reqs)
{
	if (!loop || loop_handles_off < 0 || loop_reqs_off < 0 ||
	    bpf_probe_read_user(handles, sizeof(*handles),
				(void *)(loop + loop_handles_off)) ||
	    bpf_probe_read_user(reqs, sizeof(*reqs),
				(void *)(loop + loop_reqs_off)))
		return -1;
	return 0;
}

static __always_inline void user_stack(void *ctx, struct uvs_exit_event *e)
{
	long n = bpf_get_stack(ctx, e->stack, sizeof(e->stack),
			       BPF_F_USER_STACK);

	e->nstack = n > 0 ? (__u64)n / 8 : 0;
}

SEC("tp/syscalls/sys_enter_exit_group")
int exit_group(struct trace_event_raw_sys_enter *ctx)
{
	struct uvs_exit_event *e;

	if (!is_target() || !(e = reserve(UVS_EV_EXIT_GROUP)))
		return 0;
	e->code = ctx->args[0];
	/* what is left in the loop as the process exits: nothing, and it
	 * drained; work, and the program ended it */
	if (!read_loop(main_loop, &e->loop_handles, &e->loop_reqs))
		e->loop_read = 1;
	user_stack(ctx, e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_exit")
int thread_exit(struct trace_event_raw_sys_enter *ctx)
{
	struct uvs_exit_event *e;

	if (!is_target() || !(e = reserve(UVS_EV_THREAD_EXIT)))
		return 0;
	e->code = ctx->args[0];
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* The tracepoints that are not system calls are taken raw, as the task
 * pointers the kernel passes: no record formatted for each, and no wait
 * for a grace period when released (a perf tracepoint's release waits
 * for one, each after the other: with the target dead, uvscope took over
 * a second to let go). */

/* si_code as the signal tracepoints' own records give it */
static __always_inline int si_code(struct kernel_siginfo *info)
{
	if ((unsigned long)info == SEND_SIG_NOINFO)
		return SI_USER;
	if ((unsigned long)info == SEND_SIG_PRIV)
		return SI_KERNEL;
	return BPF_CORE_READ(info, si_code);
}

SEC("raw_tp/signal_generate")
int BPF_PROG(signal_generate, int sig, struct kernel_siginfo *info,
	     struct task_struct *task, int group, int result)
{
	struct uvs_exit_event *e;
	__u64 id;

	if ((__u32)BPF_CORE_READ(task, tgid) != targ_tgid)
		return 0;
	if (!(e = reserve(UVS_EV_SIGNAL_GEN)))
		return 0;
	id = bpf_get_current_pid_tgid();
	e->tid = BPF_CORE_READ(task, pid);
	e->sig = sig;
	e->code = si_code(info);
	e->result = result;
	e->sender_pid = id >> 32;
	e->sender_tid = (__u32)id;
	e->sender_uid = (__u32)bpf_get_current_uid_gid();
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("raw_tp/signal_deliver")
int BPF_PROG(signal_deliver, int sig, struct kernel_siginfo *info,
	     struct k_sigaction *ka)
{
	struct uvs_exit_event *e;

	if (!is_target() || !(e = reserve(UVS_EV_SIGNAL_DELIVER)))
		return 0;
	e->sig = sig;
	e->code = si_code(info);
	e->handler = (__u64)BPF_CORE_READ(ka, sa.sa_handler);
	user_stack(ctx, e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("raw_tp/mark_victim")
int BPF_PROG(oom_victim, struct task_struct *task)
{
	struct uvs_exit_event *e;

	if ((__u32)BPF_CORE_READ(task, tgid) != targ_tgid ||
	    !(e = reserve(UVS_EV_OOM_VICTIM)))
		return 0;
	e->tid = BPF_CORE_READ(task, pid);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* The last thread out: the kernel counts the group's live threads down
 * before this tracepoint (the argument saying so is recent; the count
 * is not). Its status is the one a parent's wait gets, read as
 * wait_task_zombie() does: a group exit's code (exit_group, or the signal
 * that killed it, which a fatal signal's fast path turns into SIGKILLs
 * to every thread: the deliver then says SIGKILL), else the thread's. */
#define UVS_SIGNAL_GROUP_EXIT 0x00000004
SEC("raw_tp/sched_process_exit")
int BPF_PROG(task_exit, struct task_struct *p)
{
	struct uvs_exit_event *e;

	if (!is_target() || BPF_CORE_READ(p, signal, live.counter))
		return 0;
	/* a thread's exec kills the others, and the count can reach 0
	 * before the exec'ing thread is done (measured: the fault trials'
	 * texec read as a death): the process goes on */
	if (bpf_core_field_exists(p->signal->group_exec_task) &&
	    BPF_CORE_READ(p, signal, group_exec_task))
		return 0;
	if (!(e = reserve(UVS_EV_TASK_EXIT)))
		return 0;
	e->group_dead = 1;
	e->code = BPF_CORE_READ(p, signal, flags) & UVS_SIGNAL_GROUP_EXIT
			  ? BPF_CORE_READ(p, signal, group_exit_code)
			  : BPF_CORE_READ(p, exit_code);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* An exec ends the program watched: from any thread, the kernel first
 * kills the others (the leader too, which /proc shows as a zombie for a
 * moment) and gives the exec'ing thread the process's pid. */
SEC("raw_tp/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	struct uvs_exit_event *e;
	long n;

	if (!is_target() || !(e = reserve(UVS_EV_EXEC)))
		return 0;
	n = bpf_probe_read_kernel_str(e->text, sizeof(e->text),
				      BPF_CORE_READ(bprm, filename));
	e->text_len = n > 0 ? n - 1 : 0;
	e->code = old_pid;
	/* read at the next poll: a launched program's own exec comes first,
	 * and must not have uvscope look at a process not yet set up */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

static __always_inline int stderr_write(const void *buf, __u64 len)
{
	struct uvs_exit_event *e;
	__u32 n;

	if (!(e = reserve(UVS_EV_STDERR)))
		return 0;
	n = len < UVS_TEXT_MAX ? len : UVS_TEXT_MAX;
	if (n > UVS_TEXT_MAX || bpf_probe_read_user(e->text, n, buf))
		n = 0;
	e->text_len = n;
	e->code = len;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_write")
int write_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[0] != 2 || !is_target())
		return 0;
	return stderr_write((const void *)ctx->args[1], ctx->args[2]);
}

SEC("tp/syscalls/sys_enter_writev")
int writev_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct iovec iov;

	if (ctx->args[0] != 2 || !is_target())
		return 0;
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)ctx->args[1]))
		return 0;
	return stderr_write(iov.iov_base, iov.iov_len);
}

/* The runtime's exit path (node::Environment::Exit): process.exit(). */
SEC("uprobe")
int BPF_KPROBE(runtime_exit, __u64 a0, __u64 code)
{
	struct uvs_exit_event *e;

	if (!is_target() || !(e = reserve(UVS_EV_RUNTIME_EXIT)))
		return 0;
	e->code = (int)code;
	user_stack(ctx, e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(run_enter, __u64 loop)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (is_target())
		bpf_map_update_elem(&run_loop, &tid, &loop, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(run_return, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct uvs_exit_event *e;
	__u64 *loop;

	if (!is_target())
		return 0;
	loop = bpf_map_lookup_elem(&run_loop, &tid);
	if (!loop)
		return 0;
	if (ret == 0 && (!main_loop || *loop == main_loop) &&
	    (e = reserve(UVS_EV_LOOP_DONE)))
		bpf_ringbuf_submit(e, 0);
	bpf_map_delete_elem(&run_loop, &tid);
	return 0;
}

/* uv_stop: the program ends its loop itself. With handles or requests
 * still active in it, the loop did not drain, whatever the runtime does
 * after (luv closes every handle and runs the loop dry as Lua closes). */
SEC("uprobe")
int BPF_KPROBE(loop_stop, __u64 loop)
{
	struct uvs_exit_event *e;
	__u32 h = 0, r = 0;

	if (!is_target() || (main_loop && loop != main_loop) ||
	    read_loop(loop, &h, &r) || (!h && !r) ||
	    !(e = reserve(UVS_EV_LOOP_STOP)))
		return 0;
	e->loop_read = 1;
	e->loop_handles = h;
	e->loop_reqs = r;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
