/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared between bpf/blocked.bpf.c and lib/blocked.c. */
#ifndef UVS_BPF_BLOCKED_H
#define UVS_BPF_BLOCKED_H

#define UVS_BLK_FRAMES 96  /* user frames kept per stack */
#define UVS_BLK_SCAN 32	   /* words above the user stack pointer, for the
			    * caller a frame-pointer walk skips */
#define UVS_BLK_KFRAMES 24 /* kernel frames, off-CPU, with --kernel */
#define UVS_BLK_CHAIN 64   /* frames of a chain found from a scanned word */

enum uvs_blk_ev {
	UVS_BEV_SAMPLE,	 /* on-CPU sample of the loop thread, busy */
	UVS_BEV_OFFCPU,	 /* the loop thread was off CPU while busy */
	UVS_BEV_BUSY,	 /* a busy period ended (at least the threshold) */
};

struct uvs_blk_event {
	__u64 ts;	/* sample: when; offcpu: switched out; busy: ended */
	__u64 seq;	/* busy period it belongs to */
	__u64 dur;	/* offcpu: ns off CPU; busy: ns busy */
	__u64 off_ns;	/* busy: ns off CPU within it (all of it) */
	__u32 type;
	__u32 waker_pid;  /* offcpu: who woke it, 0 if nobody did */
	char waker_comm[16];
	__s32 nframes;	  /* user frames; -errno when the walk failed */
	__s32 nkframes;
	__s32 nchain;	  /* frames in chain[], found where the kernel's walk
			   * stopped short: from the saved frame pointer
			   * at scan[chain_at] */
	__u32 chain_at;
	__u64 scan[UVS_BLK_SCAN];
	__u64 chain[UVS_BLK_CHAIN];
	__u64 kframes[UVS_BLK_KFRAMES];
	__u64 frames[UVS_BLK_FRAMES];
};

/* The loop thread's state; only the loop thread and the scheduler's
 * switches of it write here. */
struct blk_state {
	__u64 seq;
	__u64 busy_since; /* 0 while waiting in the loop's epoll */
	__u64 off_ns;	  /* of the current busy period */
	__u64 switched_out;
	__u32 in_wait;
	__u32 waker_pid;
	char waker_comm[16];
	__u32 pending_fd_enter;
	__u32 preempted;	/* switched out still runnable, or no stack */
	__u64 tokens, tokens_at; /* off-CPU stacks allowed, x 1e9 */
	__u64 nostack;		/* voluntary switches left without a stack */
	__u64 exited_at;	/* the loop thread exited (0: not seen) */
};

#endif
