/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared between bpf/exit.bpf.c and lib/exit.c: the events around a
 * process's end. All are rare, so each goes to user space as it happens. */
#ifndef UVS_BPF_EXIT_H
#define UVS_BPF_EXIT_H

#define UVS_STACK_MAX 48
#define UVS_TEXT_MAX 512

enum uvs_exit_ev {
	UVS_EV_EXIT_GROUP = 1, /* exit_group(code): the process exits */
	UVS_EV_THREAD_EXIT,    /* exit(code) of one thread */
	UVS_EV_SIGNAL_GEN,     /* a signal sent to the target */
	UVS_EV_SIGNAL_DELIVER, /* a signal taken by a target thread */
	UVS_EV_OOM_VICTIM,     /* the kernel's OOM killer chose the target */
	UVS_EV_STDERR,	       /* a write to fd 2 */
	UVS_EV_RUNTIME_EXIT,   /* the runtime's exit path (process.exit) */
	UVS_EV_LOOP_DONE,      /* uv_run of the main loop returned 0: drained */
	UVS_EV_TASK_EXIT,      /* a thread is gone (group_dead: the process) */
	UVS_EV_EXEC,	       /* the process exec'd (text: the new program) */
	UVS_EV_LOOP_STOP,      /* uv_stop of the main loop with work in it */
};

struct uvs_exit_event {
	__u32 type;
	__u32 tid;	 /* thread of the target concerned */
	__u64 ts_ns;
	__s32 code;	 /* exit code, or si_code for signals */
	__s32 sig;
	__u32 sender_pid, sender_tid, sender_uid;
	__s32 result;	 /* signal_generate: delivered, ignored... */
	__u64 handler;	 /* signal_deliver: the action (0 = SIG_DFL) */
	__u32 group_dead;
	/* exit_group: the main loop as the process exits (loop_read) */
	__u32 loop_read, loop_handles, loop_reqs;
	__s32 nstack;	 /* user frames in stack[] */
	char comm[16];	 /* sender's comm for signals, else the thread's */
	__u64 stack[UVS_STACK_MAX];
	__u32 text_len;
	char text[UVS_TEXT_MAX];
};

#endif
