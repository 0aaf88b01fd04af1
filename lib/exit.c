// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The eBPF backend of `uvscope exit`: watches a process at near-zero cost
 * until it ends, then says why. Everything the BPF side sends is rare (the
 * process's own writes to stderr, signals aimed at it, its exit calls);
 * stacks are named as they arrive, while the process's files are still
 * there to read.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "uvscope.h"
#include "exit.h"
#include "exit.skel.h"

struct uvs__ev_stack {
	bool seen;
	struct uvs_exit_event ev;
	struct uvs_exit_frames f; /* its stack, named as it came */
};

struct uvs_exit {
	struct exit_bpf *skel;
	struct ring_buffer *rb;
	struct uvs_target *t;
	struct uvs_syms *syms;
	int ulinks[4]; /* uprobe handles (uprobe.c), -1 if none */
	char runtime_exit_sym[128];
	uint64_t t0, last_refresh;
	struct uvs__ev_stack exit_group, runtime_exit, deliver;
	struct uvs_exit_event gen[65]; /* last signal_generate per signal */
	bool gen_seen[65];
	struct uvs_exit_event gen_ext[65]; /* last one from another process */
	bool gen_ext_seen[65];
	bool oom_victim;
	uint64_t loop_done_ns, gone_ns;
	uint64_t loop_stop_ns; /* uv_stop with work in the loop */
	uint32_t stop_handles, stop_reqs;
	int gone_status; /* the status a wait would get, with gone_ns */
	uint64_t exec_ns; /* the program watched exec'd another: its end */
	char exec_path[UVS_TEXT_MAX];
	bool launch_exec_seen; /* a launched program's own first exec */
	char tail[2048];
	size_t tail_len;
	struct uvs_exit_report threads; /* only the thread list is used */
};

/* Frames are named against a snapshot of the target's mappings, refreshed
 * often enough to know what it loaded; the files stay open, so a stack
 * that arrives as the process dies can still be named. */
static void uvs__syms_current(struct uvs_exit *x, unsigned max_age_ms)
{
	uvs_syms__current(&x->syms, x->t->pid, &x->last_refresh, max_age_ms);
}

static void uvs__keep_stack(struct uvs_exit *x, struct uvs__ev_stack *k,
			    const struct uvs_exit_event *e)
{
	int i;

	k->seen = k->f.seen = true;
	k->ev = *e;
	k->f.nframes = 0;
	/* Frame-pointer unwinding breaks in code built without them (libc):
	 * stop at the first address that is not code, drop repeats. */
	for (i = 0; x->syms && i < e->nstack && i < UVS_STACK_MAX &&
		    k->f.nframes < UVS_EXIT_MAX_FRAMES; i++) {
		if (!uvs_syms__in_code(x->syms, e->stack[i]))
			break;
		if (i && e->stack[i] == e->stack[i - 1])
			continue;
		uvs_syms__name(x->syms, e->stack[i],
			       k->f.frames[k->f.nframes++],
			       sizeof(k->f.frames[0]));
	}
}

static void uvs__tail(struct uvs_exit *x, const char *s, size_t n)
{
	size_t cap = sizeof(x->tail) - 1;

	if (n >= cap) {
		s += n - cap;
		n = cap;
	}
	if (x->tail_len + n > cap) {
		size_t drop = x->tail_len + n - cap;

		memmove(x->tail, x->tail + drop, x->tail_len - drop);
		x->tail_len -= drop;
	}
	memcpy(x->tail + x->tail_len, s, n);
	x->tail_len += n;
	x->tail[x->tail_len] = '\0';
}

static int uvs__on_event(void *ctx, void *data, size_t len)
{
	struct uvs_exit *x = ctx;
	const struct uvs_exit_event *e = data;
	struct uvs_exit_report *th = &x->threads;

	if (len < sizeof(*e))
		return 0;
	/* after an exec the process runs another program: not ours */
	if (x->exec_ns)
		return 0;
	if (e->nstack)
		uvs__syms_current(x, 50);
	switch (e->type) {
	case UVS_EV_EXIT_GROUP:
		uvs__keep_stack(x, &x->exit_group, e);
		break;
	case UVS_EV_RUNTIME_EXIT:
		/* a worker's process.exit() ends the worker, not the process */
		if ((pid_t)e->tid == x->t->pid)
			uvs__keep_stack(x, &x->runtime_exit, e);
		break;
	case UVS_EV_SIGNAL_DELIVER:
		/* Only a default action can end the process, and only the
		 * first fatal one counts: once the process is going down the
		 * kernel sends SIGKILL to its other threads. */
		if (e->handler == 0 /* SIG_DFL */ && !x->deliver.seen &&
		    !x->exit_group.seen && uvs_signal_fatal_by_default(e->sig))
			uvs__keep_stack(x, &x->deliver, e);
		break;
	case UVS_EV_SIGNAL_GEN:
		if (e->sig > 0 && e->sig <= 64) {
			x->gen[e->sig] = *e;
			x->gen_seen[e->sig] = true;
			if ((pid_t)e->sender_pid != x->t->pid) {
				x->gen_ext[e->sig] = *e;
				x->gen_ext_seen[e->sig] = true;
			}
		}
		break;
	case UVS_EV_OOM_VICTIM:
		x->oom_victim = true;
		break;
	case UVS_EV_STDERR:
		uvs__tail(x, e->text, e->text_len < UVS_TEXT_MAX ?
					      e->text_len : UVS_TEXT_MAX);
		break;
	case UVS_EV_LOOP_DONE:
		x->loop_done_ns = e->ts_ns;
		break;
	case UVS_EV_LOOP_STOP:
		if (!x->loop_stop_ns) {
			x->loop_stop_ns = e->ts_ns;
			x->stop_handles = e->loop_handles;
			x->stop_reqs = e->loop_reqs;
		}
		break;
	case UVS_EV_THREAD_EXIT:
		if ((pid_t)e->tid != x->t->pid &&
		    th->nthreads < UVS_EXIT_MAX_THREADS) {
			th->threads[th->nthreads].tid = e->tid;
			th->threads[th->nthreads].code = e->code;
			th->threads[th->nthreads].at_ms =
				(e->ts_ns - x->t0) / 1e6;
			th->nthreads++;
		}
		break;
	case UVS_EV_TASK_EXIT:
		uvs_debug("exit: the last thread out, tid %u, status 0x%x",
			  e->tid, e->code);
		x->gone_ns = e->ts_ns;
		x->gone_status = e->code;
		break;
	case UVS_EV_EXEC:
		if (x->t->launched && !x->launch_exec_seen) {
			x->launch_exec_seen = true;
			break;
		}
		x->exec_ns = e->ts_ns;
		snprintf(x->exec_path, sizeof(x->exec_path), "%.*s",
			 (int)(e->text_len < UVS_TEXT_MAX ? e->text_len
							  : UVS_TEXT_MAX),
			 e->text);
		break;
	}
	return 0;
}

/* Node's process.exit() path is node::Environment::Exit (its argument type
 * changed from int to ExitCode in Node 20; the mangled prefix is stable). */
static const struct uvs_sym *uvs__runtime_exit(struct uvs_elf *elf)
{
	static const char *const names[] = {
		"_ZN4node11Environment4ExitENS_8ExitCodeE",
		"_ZN4node11Environment4ExitEi",
	};
	const struct uvs_sym *s[2];

	uvs_elf__lookup(elf, names, 2, s);
	return s[0] ? s[0] : s[1];
}

static int uvs__uprobe(struct uvs_exit *x, struct bpf_program *p,
		       uint64_t addr, bool ret)
{
	uint64_t off;
	int h;

	if (uvs_elf__vaddr_to_off(x->t->uv_elf, addr, &off))
		return -1;
	h = uvs_uprobe__attach(bpf_program__fd(p), x->t->uv_open, x->t->pid,
			       off, ret, 0);
	return h >= 0 ? h : -1;
}

int uvs_exit__open(struct uvs_target *t, struct uvs_exit **out)
{
	struct uvs_features feat;
	const struct uvs_sym *s;
	struct uvs_exit *x;
	struct uvs_layout *ly;
	int err;

	*out = NULL;
	uvs_features__probe(&feat);
	if (!uvs_features__ebpf_ok(&feat))
		return uvs_seterr(-EPERM, "eBPF unavailable: %s", feat.why_not);
	x = calloc(1, sizeof(*x));
	if (!x)
		return uvs_seterr(-ENOMEM, "out of memory");
	x->t = t;
	x->ulinks[0] = x->ulinks[1] = x->ulinks[2] = x->ulinks[3] = -1;
	x->t0 = uvs_now_ns();
	x->skel = exit_bpf__open();
	if (!x->skel) {
		err = uvs_seterr(-errno, "cannot open BPF object");
		goto fail;
	}
	x->skel->rodata->targ_tgid = t->pid;
	/* where the loop keeps its counts: read as the process exits */
	if (!uvs_layout__load(t->libuv_version, &ly)) {
		x->skel->rodata->loop_handles_off =
			uvs_layout__off(ly, "uv_loop_t", "active_handles");
		x->skel->rodata->loop_reqs_off =
			uvs_layout__off(ly, "uv_loop_t", "active_reqs.count");
		uvs_layout__close(ly);
	}
	err = exit_bpf__load(x->skel);
	if (err) {
		err = uvs_seterr(err, "cannot load BPF programs: %s (run with "
				 "-v for the verifier log)", strerror(-err));
		goto fail;
	}
	if (t->uv_bias_known) {
		s = uvs_elf__find(t->uv_elf, "default_loop_struct");
		if (s)
			x->skel->bss->main_loop = t->uv_bias + s->addr;
	}
	x->rb = ring_buffer__new(bpf_map__fd(x->skel->maps.events),
				 uvs__on_event, x, NULL);
	if (!x->rb) {
		err = uvs_seterr(-errno, "cannot create ring buffer");
		goto fail;
	}
	uvs_uprobe__start(); /* before the tracepoints, as loop does */
	err = exit_bpf__attach(x->skel);
	if (err) {
		err = uvs_seterr(err, "cannot attach tracepoints: %s",
				 strerror(-err));
		goto fail;
	}
	/* Uprobes that fire once or twice in a process's life: uv_run's
	 * entry and return (the main loop drained), uv_stop (the program
	 * ended its loop), and the runtime's exit. */
	s = uvs_elf__find(t->uv_elf, "uv_run");
	if (s) {
		x->ulinks[0] = uvs__uprobe(x, x->skel->progs.run_enter,
					   s->addr, false);
		x->ulinks[1] = uvs__uprobe(x, x->skel->progs.run_return,
					   s->addr, true);
	}
	s = uvs_elf__find(t->uv_elf, "uv_stop");
	if (s && x->skel->rodata->loop_handles_off >= 0)
		x->ulinks[3] = uvs__uprobe(x, x->skel->progs.loop_stop,
					   s->addr, false);
	s = uvs__runtime_exit(t->uv_elf);
	if (s) {
		x->ulinks[2] = uvs__uprobe(x, x->skel->progs.runtime_exit,
					   s->addr, false);
		snprintf(x->runtime_exit_sym, sizeof(x->runtime_exit_sym),
			 "%s", s->name);
	}
	/* a launched program is not exec'd yet: its mappings come later */
	if (!t->launched)
		uvs__syms_current(x, 0);
	*out = x;
	return 0;
fail:
	uvs_exit__close(x);
	return err;
}

void uvs_exit__set_loop(struct uvs_exit *x, uint64_t loop)
{
	if (loop && x->skel->bss->main_loop != loop) {
		uvs_debug("exit: the loop at %#llx is read as the process "
			  "exits", (unsigned long long)loop);
		x->skel->bss->main_loop = loop;
	}
}

int uvs_exit__poll(struct uvs_exit *x, int timeout_ms)
{
	int err = ring_buffer__poll(x->rb, timeout_ms);

	if (err < 0 && err != -EINTR)
		return uvs_seterr(err, "ring buffer: %s", strerror(-err));
	/* what came without a wakeup (an exec) */
	ring_buffer__consume(x->rb);
	/* a young process is still mapping its libraries */
	uvs__syms_current(x, uvs_now_ns() - x->t0 < 2000000000ull ? 0 : 250);
	return 0;
}

bool uvs_exit__execd(const struct uvs_exit *x)
{
	return x->exec_ns != 0;
}

static void uvs__sender_of(const struct uvs_exit_event *g,
			   struct uvs_exit_sender *s)
{
	s->seen = true;
	s->pid = g->sender_pid;
	s->tid = g->sender_tid;
	s->uid = g->sender_uid;
	memcpy(s->comm, g->comm, sizeof(s->comm));
}

/* An exit with a code after a fatal signal from outside: the program
 * handled it (a SIGTERM handler that cleans up and exits). The last such
 * signal the kernel delivered is named, with its sender. */
static void uvs__handled(const struct uvs_exit *x,
			 struct uvs_exit_evidence *ev)
{
	const struct uvs_exit_event *g = NULL;
	int s;

	for (s = 1; s <= 64; s++)
		if (s != SIGKILL && x->gen_ext_seen[s] &&
		    uvs_signal_fatal_by_default(s) &&
		    x->gen_ext[s].result == 0 /* delivered */ &&
		    (!g || x->gen_ext[s].ts_ns >= g->ts_ns))
			g = &x->gen_ext[s];
	if (!g)
		return;
	ev->handled_sig = g->sig;
	uvs__sender_of(g, &ev->handled_sender);
}

void uvs_exit__finish(struct uvs_exit *x, const int *wait_status,
		      bool running, struct uvs_report *r)
{
	struct uvs_exit_report *o = &r->exit;
	struct uvs_exit_evidence ev;
	uint64_t end;
	int sig;

	ring_buffer__consume(x->rb);
	/* An end seen in /proc without the group's death is not sure: a
	 * thread that is not the leader execs once the leader is dead, and
	 * the leader is a zombie until then. Its exec, or the process's
	 * real end, is in the ring within moments. */
	if (!running && !wait_status) {
		end = uvs_now_ns() + 500000000ull;
		while (!x->gone_ns && !x->exec_ns && uvs_now_ns() < end) {
			ring_buffer__poll(x->rb, 10);
			/* the exec's event wakes no one: a poll that saw no
			 * wakeup does not read it */
			ring_buffer__consume(x->rb);
		}
	}
	memset(o, 0, sizeof(*o));
	r->has_exit = true;
	r->lost_events = x->skel->bss->lost;
	o->drained_at_ms = x->loop_done_ns ? (x->loop_done_ns - x->t0) / 1e6
					   : -1;
	o->nthreads = x->threads.nthreads;
	memcpy(o->threads, x->threads.threads, sizeof(o->threads));
	snprintf(o->stderr_tail, sizeof(o->stderr_tail), "%s", x->tail);
	if (x->exec_ns) {
		/* the program ended there, the process did not */
		r->target_exited = false;
		o->reason = UVS_EXIT_UNKNOWN;
		o->at_ms = (x->exec_ns - x->t0) / 1e6;
		snprintf(o->message, sizeof(o->message),
			 "the process exec'd %s; uvscope detached",
			 x->exec_path[0] ? x->exec_path : "another program");
		return;
	}
	if (running) {
		o->reason = UVS_EXIT_RUNNING;
		return;
	}
	end = x->gone_ns ? x->gone_ns : uvs_now_ns();
	o->at_ms = (end - x->t0) / 1e6;
	/* not our child: the status the kernel kept for its parent */
	if (!wait_status && x->gone_ns)
		wait_status = &x->gone_status;
	memset(&ev, 0, sizeof(ev));
	ev.status = wait_status;
	if (x->deliver.seen && uvs_signal_fatal_by_default(x->deliver.ev.sig))
		ev.fatal_sig = x->deliver.ev.sig;
	ev.deliver = x->deliver.f;
	ev.deliver_sig = x->deliver.ev.sig;
	if (x->oom_victim)
		ev.oom_kill = "";
	sig = uvs_exit__signal(&ev);
	if (sig > 0 && sig <= 64 && x->gen_seen[sig])
		/* Node's SIGTERM/SIGINT handlers reset the terminal and
		 * raise the signal again: name who sent it first */
		uvs__sender_of(x->gen_ext_seen[sig] ? &x->gen_ext[sig]
						    : &x->gen[sig],
			       &ev.sender);
	uvs__handled(x, &ev);
	ev.exit_group = x->exit_group.f;
	ev.exit_group_seen = x->exit_group.seen;
	ev.exit_group_code = x->exit_group.ev.code;
	ev.runtime_exit = x->runtime_exit.f;
	ev.tail = x->tail;
	ev.loop_returned = x->loop_done_ns != 0;
	ev.loop_stopped = x->loop_stop_ns != 0;
	ev.stop_handles = x->stop_handles;
	ev.stop_reqs = x->stop_reqs;
	if (x->exit_group.seen && x->exit_group.ev.loop_read)
		ev.loop = x->exit_group.ev.loop_handles ||
				  x->exit_group.ev.loop_reqs
			  ? UVS_LOOP_ALIVE : UVS_LOOP_EMPTY;
	uvs_exit__classify(&ev, o);
}

void uvs_exit__describe(const struct uvs_exit *x, FILE *out)
{
	fprintf(out, "uvscope: tracepoints: exit_group, exit, write/writev "
		"to fd 2; raw tracepoints: signal_generate, "
		"signal_deliver, mark_victim, sched_process_exit, "
		"sched_process_exec\n");
	fprintf(out, "uvscope: uprobes: uv_run entry and return%s%s%s\n",
		x->ulinks[3] >= 0 ? ", uv_stop" : "",
		x->runtime_exit_sym[0] ? ", " : "", x->runtime_exit_sym);
}

/* Released all at once, the grace periods of the perf-based probes
 * overlap, in part (the kernel takes one lock for perf tracepoints); the
 * raw tracepoints do not wait. */
static void uvs__detach_all(struct uvs_exit *x)
{
	struct uvs_reaper *r = uvs_reaper_shared();
	size_t i;

	uvs_reap_skel(r, x->skel->skeleton);
	for (i = 0; i < sizeof(x->ulinks) / sizeof(x->ulinks[0]); i++)
		uvs_uprobe__release(&x->ulinks[i]);
}

void uvs_exit__close(struct uvs_exit *x)
{
	if (!x)
		return;
	if (x->skel)
		uvs__detach_all(x);
	ring_buffer__free(x->rb);
	exit_bpf__destroy(x->skel);
	uvs_syms__close(x->syms);
	free(x);
}
