/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared between bpf/pool.bpf.c and lib/pool.c: one record per edge of a
 * thread-pool task's life. */
#ifndef UVS_BPF_POOL_H
#define UVS_BPF_POOL_H

/* What a probe saw. A task is keyed on its struct uv__work pointer. */
enum uvs_pool_ev {
	UVS_PEV_SUBMIT,	   /* uv__work_submit, or uv_queue_work where inlined */
	UVS_PEV_START,	   /* a work function's entry (worker, or loop: sync fs) */
	UVS_PEV_END,	   /* a work function's return (same thread) */
	UVS_PEV_DONE,	   /* a done function's entry, on the loop thread */
	UVS_PEV_URING_SUB, /* io_uring_submit_req for the target */
	UVS_PEV_URING_END, /* io_uring_complete for the target */
};

/* Work and done functions, in the probes' cookies. */
enum uvs_pool_fn {
	UVS_PFN_FS,
	UVS_PFN_QUEUE,
	UVS_PFN_GETADDRINFO,
	UVS_PFN_GETNAMEINFO,
	UVS_PFN_RANDOM,
	UVS_PFN_N,
	UVS_PFN_SUBMIT = 16,	 /* uv__work_submit(loop, w, kind, work, done) */
	UVS_PFN_QUEUE_WORK = 17, /* uv_queue_work(loop, req, work_cb, after) */
};

#define UVS_POOL_TAG 24

struct uvs_pool_event {
	__u64 ts;
	__u64 w;	/* struct uv__work *, or io_uring user_data */
	__u64 arg;	/* SUBMIT: work function; START (queue): work_cb;
			 * DONE: status; URING_END: result */
	__u32 tid;
	__u8 type;	/* enum uvs_pool_ev */
	__u8 fn;	/* enum uvs_pool_fn */
	__u8 kind;	/* SUBMIT: UV__WORK_CPU, _FAST_IO, _SLOW_IO */
	__u8 pad;
	__s32 sub;	/* START (fs): fs_type; URING_SUB: opcode */
	__u32 pad2;
	char tag[UVS_POOL_TAG]; /* START (queue): the runtime's name for it */
	__u64 aux[2];	/* START (queue, named): the object's vtable pointer
			 * and, for Node-API work, its execute callback;
			 * SUBMIT (queue): aux[0] is the work_cb */
};

#endif
