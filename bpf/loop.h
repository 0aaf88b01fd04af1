/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared between bpf/loop.bpf.c and lib/loop.c: one record per loop iteration. */
#ifndef UVS_BPF_LOOP_H
#define UVS_BPF_LOOP_H

/* Phases in libuv's order within uv_run. */
enum uvs_phase {
	UVS_PH_TIMERS,
	UVS_PH_PENDING,
	UVS_PH_IDLE,
	UVS_PH_PREPARE,
	UVS_PH_POLL,
	UVS_PH_CHECK,
	UVS_PH_CLOSE,
	UVS_NPHASES,
	UVS_PH_NONE = UVS_NPHASES,
};

/* How a boundary probe is placed: at a function's entry (its first argument
 * is the loop), or at the instruction after a call inside uv_run (the stack
 * pointer identifies uv_run's frame, so a nested loop's uv_run is ignored).
 * A uretprobe on the callee has the same register state as the return site. */
enum uvs_probe_kind {
	UVS_PK_ENTRY,
	UVS_PK_RETSITE,
};

#define UVS_IT_PHASES   (1u << 0) /* phase_ns[] covers the whole iteration */
#define UVS_IT_TIMEDOUT (1u << 1) /* the last wait returned no events */
#define UVS_IT_WOKEN    (1u << 2) /* the last wait returned events */
#define UVS_IT_EXACT    (1u << 3) /* boundary from uv__io_poll, not heuristic */

struct uvs_iter {
	__u64 start_ns;		/* first epoll entry of this iteration */
	__u64 end_ns;		/* first epoll entry of the next one */
	__u64 wait_ns;		/* time blocked in epoll */
	__u64 phase_ns[UVS_NPHASES];
	__s32 timeout_ms;	/* largest requested timeout, -1 = infinite */
	__s32 nevents;		/* result of the last wait */
	__u32 nwaits;		/* epoll calls in this iteration */
	__u32 flags;		/* UVS_IT_* */
	__u32 phase_seen;	/* bit per phase entered */
	__u32 epfd;
};

/* Counters the BPF side keeps for user space (bss). */
struct uvs_loop_stats {
	__u64 lost;		/* ring buffer full: iterations dropped */
	__u64 probe_hits;	/* phase-boundary uprobe hits */
	__u64 nested_ignored;	/* hits from another loop on the loop thread */
	__u64 other_epfd;	/* waits on another epoll fd (nested loop) */
};

/* The BPF side's state for the loop thread (bss; read by user space). */
struct loop_state {
	/* iteration, from the epoll side */
	__u64 it_start;
	__u64 wait_ns;
	__u64 wait_enter;
	__u64 last_exit;
	__s32 timeout;
	__s32 cur_timeout;
	__s32 last_timeout;
	__s32 last_ret;
	__u32 cur_maxevents;
	__u32 last_maxevents;
	__u32 nwaits;
	__u32 in_wait;
	__u32 it_exact;
	/* phases, from the uprobe side */
	__u32 cur_phase;
	__u64 phase_t;
	__u64 uvrun_sp;
	__u64 acc[UVS_NPHASES];
	__u32 acc_seen;
	__u32 acc_gen;
	__u32 acc_ok;
	__u64 done[UVS_NPHASES];
	__u32 done_seen;
	__u32 done_gen;
	__u32 done_ok;
	__u32 poll_entry_pending;
	__u32 poll_entry_gen;
};

#endif
