// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The life of each libuv thread-pool task, as edges keyed on its
 * struct uv__work pointer: submitted (loop thread), started and ended
 * (worker), done (loop thread, just before the callback). User space pairs
 * them up; a task costs four uprobe traps and a return trap.
 *
 * Pool tasks are far rarer than loop iterations (each is a mutex, a
 * condition variable and a wake-up of the loop), so one ring-buffer record
 * per edge is cheap beside the traps; keeping records lets user space
 * derive queue depth, busy threads and saturation exactly.
 *
 * fs operations that libuv hands to io_uring instead (UV_USE_IO_URING)
 * never reach the pool: they are seen at io_uring's own tracepoints.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pool.h"
#include "window.h"

#define IORING_OP_EPOLL_CTL 29

const volatile __u32 targ_tgid = 0;
/* From struct uv__work to the fields that name the task (layout profile). */
const volatile __s64 fs_type_off = 0;	 /* w -> uv_fs_t.fs_type */
const volatile __s64 work_cb_off = 0;	 /* w -> uv_work_t.work_cb */
const volatile __s64 req_from_w = 0;	 /* w -> uv_work_t */
/* For io_uring, from the uv_fs_t in user_data. */
const volatile __s64 req_type_off = 8;	 /* uv_req_t.type */
const volatile __s64 req_fs_type_off = 64; /* uv_fs_t.fs_type */
const volatile __s32 uv_fs_req_type = 6;	 /* UV_FS */
/* The runtime's own named work (Node's ThreadPoolWork): these work_cb
 * values mean a char * name at uv_work_t + tag_str_off. */
/* Runtime addresses, set once libuv is located. */
__u64 tag_cb[4] = {};
__u64 queue_work_fn = 0; /* uv__queue_work */
const volatile __s64 tag_str_off = 0;
/* ... and two words that tell such work apart, from the uv_work_t: the
 * object's vtable pointer and, for Node-API work, its execute callback */
const volatile __s64 tag_aux_off[2] = {};

__u64 lost = 0;

/* io_uring requests of libuv's in flight, so that completions of other
 * rings' requests (or libuv's epoll_ctl batches) cost no record. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} uring_reqs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

static __always_inline struct uvs_pool_event *ev_new(__u8 type, __u8 fn)
{
	struct uvs_pool_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return NULL;
	}
	e->ts = bpf_ktime_get_ns();
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->type = type;
	e->fn = fn;
	e->kind = 0;
	e->pad = 0;
	e->sub = 0;
	e->pad2 = 0;
	e->w = 0;
	e->arg = 0;
	e->tag[0] = 0;
	e->aux[0] = 0;
	e->aux[1] = 0;
	return e;
}

static __always_inline bool ours(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

/* A uprobe of ours fired: counts against the budget. */
static __always_inline bool hit(void)
{
	if (!ours())
		return false;
	return win_hit();
}

static __always_inline int submit(struct pt_regs *ctx, __u64 fn)
{
	struct uvs_pool_event *e;

	e = ev_new(UVS_PEV_SUBMIT, fn);
	if (!e)
		return 0;
	if (fn == UVS_PFN_QUEUE_WORK) {
		/* uv_queue_work(loop, req, work_cb, after_work_cb) */
		e->w = PT_REGS_PARM2(ctx) + req_from_w;
		e->arg = 0;
		e->kind = 0; /* UV__WORK_CPU */
		e->aux[0] = PT_REGS_PARM3(ctx);
	} else {
		/* uv__work_submit(loop, w, kind, work, done) */
		e->w = PT_REGS_PARM2(ctx);
		e->kind = (__u8)PT_REGS_PARM3(ctx);
		e->arg = PT_REGS_PARM4(ctx);
		/* uv_queue_work's callback, to name work cancelled before it
		 * ever starts */
		if (e->arg && e->arg == queue_work_fn)
			bpf_probe_read_user(&e->aux[0], sizeof(e->aux[0]),
					    (void *)(e->w + work_cb_off));
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

static __always_inline int start(struct pt_regs *ctx, __u64 fn)
{
	struct uvs_pool_event *e;
	__u64 w, req, cb = 0, name = 0;
	int i;

	e = ev_new(UVS_PEV_START, fn);
	if (!e)
		return 0;
	w = PT_REGS_PARM1(ctx);
	e->w = w;
	if (fn == UVS_PFN_FS) {
		bpf_probe_read_user(&e->sub, sizeof(e->sub),
				    (void *)(w + fs_type_off));
	} else if (fn == UVS_PFN_QUEUE) {
		bpf_probe_read_user(&cb, sizeof(cb), (void *)(w + work_cb_off));
		e->arg = cb;
		req = w - req_from_w;
		for (i = 0; i < 4; i++) {
			if (!tag_cb[i] || tag_cb[i] != cb)
				continue;
			if (!bpf_probe_read_user(&name, sizeof(name),
						 (void *)(req + tag_str_off)) &&
			    name)
				bpf_probe_read_user_str(e->tag, sizeof(e->tag),
							(void *)name);
			bpf_probe_read_user(&e->aux[0], sizeof(e->aux[0]),
					    (void *)(req + tag_aux_off[0]));
			bpf_probe_read_user(&e->aux[1], sizeof(e->aux[1]),
					    (void *)(req + tag_aux_off[1]));
			break;
		}
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

static __always_inline int edge(struct pt_regs *ctx, __u8 type, __u64 fn,
				__u64 w, __u64 arg)
{
	struct uvs_pool_event *e;

	e = ev_new(type, fn);
	if (!e)
		return 0;
	e->w = w;
	e->arg = arg;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

/* One program per role; the function is in the attach cookie. */
SEC("uprobe")
int BPF_KPROBE(pool_submit)
{
	if (!hit())
		return 0;
	return submit(ctx, bpf_get_attach_cookie(ctx));
}

SEC("uprobe")
int BPF_KPROBE(pool_start)
{
	if (!hit())
		return 0;
	return start(ctx, bpf_get_attach_cookie(ctx));
}

SEC("uretprobe")
int BPF_KRETPROBE(pool_end)
{
	if (!hit())
		return 0;
	return edge(ctx, UVS_PEV_END, bpf_get_attach_cookie(ctx), 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(pool_done)
{
	if (!hit())
		return 0;
	return edge(ctx, UVS_PEV_DONE, bpf_get_attach_cookie(ctx),
		    PT_REGS_PARM1(ctx), (__u64)(__s64)(int)PT_REGS_PARM2(ctx));
}

/* The same programs for uprobe_multi links (entries, returns): one link
 * of each kind, released in one grace period. */
SEC("uprobe")
int BPF_KPROBE(pool_multi_entry)
{
	__u64 c = bpf_get_attach_cookie(ctx);

	if (!hit())
		return 0;
	if (c == UVS_PFN_SUBMIT || c == UVS_PFN_QUEUE_WORK)
		return submit(ctx, c);
	if (c < UVS_PFN_N)
		return start(ctx, c);
	if (c >= 32 && c < 32 + UVS_PFN_N)
		return edge(ctx, UVS_PEV_DONE, c - 32, PT_REGS_PARM1(ctx),
			    (__u64)(__s64)(int)PT_REGS_PARM2(ctx));
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pool_multi_return)
{
	if (!hit())
		return 0;
	return edge(ctx, UVS_PEV_END, bpf_get_attach_cookie(ctx), 0, 0);
}

/* io_uring: libuv sets user_data to the uv_fs_t. The submission runs on
 * the loop thread, so the request is readable there; the completion may
 * come from one of io_uring's own workers (threads of the target) or
 * from interrupt context, so it is matched by user_data alone. */
SEC("tp/io_uring/io_uring_submit_req")
int uring_submit(struct trace_event_raw_io_uring_submit_req *ctx)
{
	struct uvs_pool_event *e;
	__u64 req = ctx->user_data;
	__s32 rtype = -1, ftype = -1;
	__u8 op = ctx->opcode;

	if (!ours() || op == IORING_OP_EPOLL_CTL || !req)
		return 0;
	/* only libuv's fs requests: user_data points at a uv_fs_t */
	if (bpf_probe_read_user(&rtype, sizeof(rtype),
				(void *)(req + req_type_off)) ||
	    rtype != uv_fs_req_type)
		return 0;
	bpf_probe_read_user(&ftype, sizeof(ftype),
			    (void *)(req + req_fs_type_off));
	bpf_map_update_elem(&uring_reqs, &req, &op, BPF_ANY);
	e = ev_new(UVS_PEV_URING_SUB, UVS_PFN_FS);
	if (!e)
		return 0;
	e->w = req;
	e->sub = ftype;
	e->arg = op;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("tp/io_uring/io_uring_complete")
int uring_complete(struct trace_event_raw_io_uring_complete *ctx)
{
	__u64 req = ctx->user_data;

	if (!req || !bpf_map_lookup_elem(&uring_reqs, &req))
		return 0;
	bpf_map_delete_elem(&uring_reqs, &req);
	return edge((struct pt_regs *)0, UVS_PEV_URING_END, UVS_PFN_FS, req,
		    (__u64)(__s64)ctx->res);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
