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

#include "hist.h"

/*
 * Everything is aggregated in the kernel: at hundreds of thousands of
 * iterations per second a record per iteration would cost more than the
 * tracepoints themselves. Counters only grow; user space reads snapshots
 * and takes differences, so nothing is reset under the BPF side's feet.
 */
struct uvs_loop_agg {
	__u64 seq;		/* odd while an iteration is being added */
	__u64 iterations;
	__u64 busy_ns;		/* outside epoll */
	__u64 wait_ns;		/* blocked in epoll */
	__u64 timed_out;	/* last wait of the iteration returned 0 */
	__u64 woken;		/* ... returned events */
	__u64 interrupted;	/* ... failed (EINTR) */
	__u64 exact;		/* boundary from uv__io_poll, not heuristic */
	__u64 timeout_inf;
	__u64 timeout_zero;
	__u64 timeout_sum;	/* ms, finite ones */
	__u64 phase_iterations;	/* iterations timed phase by phase */
	__u64 phase_sum[UVS_NPHASES];	/* all timed iterations */
	__u64 phase_active_sum[UVS_NPHASES]; /* those over the floor */
	__u64 probe_hits;	/* phase-boundary uprobe hits */
	__u64 nested_ignored;	/* hits from another loop on the loop thread */
	__u64 other_epfd;	/* waits on another epoll fd (nested loop) */
	/* The loop's waits as time, whatever iteration they belong to, so
	 * that a window's wait (and busy) time is cut at its edges: */
	__u64 wait_all_ns;	/* every wait on the loop's fd that ended */
	__u64 cur_wait_enter;	/* the one in progress began (0: none) */
	__u64 seen_enter;	/* when the first wait on the loop's fd since
				 * attach began (0: none yet) */
	__u64 pre_exit;		/* the loop thread's first epoll exit, if
				 * before any such begin: the end of a wait
				 * begun before attach, if it was in one */
	__u32 wait_h[UVS_HIST_NB];		/* ns per iteration */
	__u32 timeout_h[UVS_HIST_NB];		/* ms, finite */
	__u32 phase_h[UVS_NPHASES][UVS_HIST_NB];	/* ns, over the floor */
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
	__s32 poll_timeout;	/* uv__io_poll's timeout argument */
};

#endif
