// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `uvscope exit` with the ptrace backend: the same classes as the eBPF
 * backend (lib/exit.c), decided in the same order, from what ptrace
 * stops show instead of tracepoints:
 *
 * - the exit status itself: as the tracer we wait for the main thread, so
 *   code and terminating signal are the kernel's own;
 * - PTRACE_EVENT_EXIT: the stack of the thread that calls exit_group
 *   (orig_rax says which system call exits), and each thread's exit;
 * - signal-delivery-stops: the signal, its sender (siginfo si_pid/si_uid,
 *   and /proc/PID/comm read as it arrives), the stack of a fatal one.
 *
 * What eBPF saw in the target's writes to stderr, ptrace sees on the
 * stack: an uncaught exception is node::errors::TriggerUncaughtException
 * under the exit, a heap OOM is V8's out-of-memory handler under the
 * abort. The message the runtime printed is read where stderr is a
 * regular file (a log): at the exit stop the file is still open, and what
 * was written to it since tracing began is read back through
 * /proc/PID/fd/2; a pipe or a terminal cannot be read again, so there
 * the message is not seen. An OOM kill is a SIGKILL, which no stop shows:
 * it is told by the oom_kill counter of the target's memory cgroup (or
 * the system's) going up while it died.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "uvscope.h"
#include "ptrace.h"

struct uvs__pstack {
	bool seen;
	int code, sig;
	struct uvs_exit_frames f;
};

struct uvs__sender {
	bool seen;
	pid_t pid;
	uid_t uid;
	char comm[16];
	bool handled;	/* delivered to a handler */
	uint64_t ts;
};

struct uvs_pexit {
	struct uvs_target *t;
	struct uvs_pt *pt;
	struct uvs_syms *syms;
	uint64_t t0, last_refresh, gone_ns;
	struct uvs__pstack exit_group, deliver;
	struct uvs__sender sender[65], sender_ext[65];
	int handled; /* the last fatal signal from outside it handled */
	/* the loop that runs (found by why), read at the exit_group stop */
	uint64_t loop;
	long loop_handles_off, loop_reqs_off;
	enum uvs_loop_at_exit loop_at_exit;
	bool leader_gone;
	int leader_status;
	uint64_t exec_ns; /* the program watched exec'd another: its end */
	char exec_path[4096];
	char oom_file[4200]; /* memory.events or memory.oom_control */
	/* stderr, if a regular file: which, and its offset when tracing
	 * began; what was written since, as of the last exit stop */
	bool err_file;
	dev_t err_dev;
	ino_t err_ino;
	long long err_start;
	char tail[2048];
	long long oom_cg0, oom_sys0;
	struct uvs_exit_report threads; /* only the thread list is used */
};

static void uvs__syms_current(struct uvs_pexit *x, unsigned max_age_ms)
{
	uvs_syms__current(&x->syms, x->t->pid, &x->last_refresh, max_age_ms);
}

static void uvs__keep(struct uvs_pexit *x, struct uvs__pstack *k,
		      const struct uvs_pt_event *e)
{
	int i;

	uvs__syms_current(x, 50);
	k->seen = k->f.seen = true;
	k->f.nframes = 0;
	for (i = 0; x->syms && i < e->nframes &&
		    k->f.nframes < UVS_EXIT_MAX_FRAMES; i++)
		/* a return address may lie past its function (noreturn
		 * calls): name the call */
		uvs_syms__name(x->syms, e->ip[i] - (i ? 1 : 0),
			       k->f.frames[k->f.nframes++],
			       sizeof(k->f.frames[0]));
}

static bool uvs__has(const struct uvs__pstack *k, const char *what)
{
	int i;

	for (i = 0; i < k->f.nframes; i++)
		if (strstr(k->f.frames[i], what))
			return true;
	return false;
}

/* What is left in the loop as the process exits (the thread is stopped
 * in its exit; its memory is all there still). */
static void uvs__read_loop(struct uvs_pexit *x)
{
	uint32_t h, r;

	if (!x->loop || x->loop_handles_off < 0 || x->loop_reqs_off < 0 ||
	    uvs_mem_read(x->t->pid, x->loop + x->loop_handles_off, &h,
			 sizeof(h)) ||
	    uvs_mem_read(x->t->pid, x->loop + x->loop_reqs_off, &r, sizeof(r)))
		return;
	x->loop_at_exit = h || r ? UVS_LOOP_ALIVE : UVS_LOOP_EMPTY;
}

void uvs_pexit__set_loop(struct uvs_pexit *x, uint64_t loop)
{
	x->loop = loop;
}

/* The file offset of the target's fd 2 (/proc/PID/fdinfo/2), or -1. */
static long long uvs__err_pos(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/2", pid);
	if (uvs_read_file(path, buf, sizeof(buf)) <= 0 ||
	    !(p = strstr(buf, "pos:")))
		return -1;
	return atoll(p + 4);
}

/* Whether the target's stderr is a regular file, and which. */
static bool uvs__err_file(pid_t pid, dev_t *dev, ino_t *ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/fd/2", pid);
	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return false;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return true;
}

/* At an exit stop: the last bytes written to a stderr file since tracing
 * began (the file is opened anew through /proc, only read). */
static void uvs__read_err(struct uvs_pexit *x)
{
	char path[64];
	long long pos, from;
	dev_t dev;
	ino_t ino;
	ssize_t n;
	int fd;

	if (!x->err_file || !uvs__err_file(x->t->pid, &dev, &ino) ||
	    dev != x->err_dev || ino != x->err_ino)
		return;
	pos = uvs__err_pos(x->t->pid);
	if (pos <= x->err_start)
		return;
	from = pos - (long long)(sizeof(x->tail) - 1);
	if (from < x->err_start)
		from = x->err_start;
	snprintf(path, sizeof(path), "/proc/%d/fd/2", x->t->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return;
	n = pread(fd, x->tail, pos - from, from);
	close(fd);
	x->tail[n > 0 ? n : 0] = '\0';
	/* a NUL written to stderr must not hide what follows it */
	for (; n > 0; n--)
		if (!x->tail[n - 1])
			x->tail[n - 1] = ' ';
}

static void uvs__on_event(const struct uvs_pt_event *e, void *ctx)
{
	struct uvs_pexit *x = ctx;
	struct uvs_exit_report *th = &x->threads;

	switch (e->type) {
	case UVS_PT_SIGNAL:
		if (e->sig <= 0 || e->sig > 64)
			break;
		if (e->sender_pid || e->sig_code <= 0) {
			struct uvs__sender s = {true, e->sender_pid,
						e->sender_uid, "",
						!e->default_action,
						uvs_now_ns()};

			memcpy(s.comm, e->comm, sizeof(s.comm));
			x->sender[e->sig] = s;
			if (e->sender_pid != x->t->pid &&
			    !x->sender_ext[e->sig].seen)
				x->sender_ext[e->sig] = s;
			if (e->sender_pid != x->t->pid && s.handled &&
			    uvs_signal_fatal_by_default(e->sig) &&
			    e->sig != SIGKILL &&
			    (!x->handled || s.ts >= x->sender[x->handled].ts))
				x->handled = e->sig;
		}
		/* the first fatal one with no handler ends the process */
		if (e->default_action && !x->deliver.seen &&
		    !x->exit_group.seen && uvs_signal_fatal_by_default(e->sig)) {
			uvs__keep(x, &x->deliver, e);
			x->deliver.sig = e->sig;
			uvs__read_err(x);
		}
		break;
	case UVS_PT_EXIT:
		if (e->syscall == SYS_exit_group || e->tid == x->t->pid)
			uvs__read_err(x);
		if (e->syscall == SYS_exit_group && !x->exit_group.seen &&
		    WIFEXITED(e->status)) {
			uvs__keep(x, &x->exit_group, e);
			x->exit_group.code = WEXITSTATUS(e->status);
			uvs__read_loop(x);
		} else if (e->syscall == SYS_exit && e->tid != x->t->pid &&
			   th->nthreads < UVS_EXIT_MAX_THREADS) {
			th->threads[th->nthreads].tid = e->tid;
			th->threads[th->nthreads].code = WEXITSTATUS(e->status);
			th->threads[th->nthreads].at_ms =
			    (e->ts_ns - x->t0) / 1e6;
			th->nthreads++;
		}
		break;
	case UVS_PT_GONE:
		if (e->tid == x->t->pid) {
			x->leader_gone = true;
			x->leader_status = e->status;
			x->gone_ns = e->ts_ns;
		}
		break;
	case UVS_PT_EXEC: {
		/* stopped at the exec's event: the new program is in place */
		char path[64];
		ssize_t n;

		x->exec_ns = e->ts_ns;
		snprintf(path, sizeof(path), "/proc/%d/exe", x->t->pid);
		n = readlink(path, x->exec_path, sizeof(x->exec_path) - 1);
		x->exec_path[n > 0 ? n : 0] = '\0';
		break;
	}
	}
}

/* oom_kill of a cgroup (v2 memory.events, v1 memory.oom_control) or of
 * the system (/proc/vmstat), or -1 */
static long long uvs__oom_kills(const char *file)
{
	char buf[4096], *p;

	if (!file[0] || uvs_read_file(file, buf, sizeof(buf)) <= 0)
		return -1;
	p = strstr(buf, "oom_kill ");
	return p ? atoll(p + 9) : -1;
}

static void uvs__oom_file(struct uvs_pexit *x)
{
	char path[64], buf[4096], *l, *save;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", x->t->pid);
	if (uvs_read_file(path, buf, sizeof(buf)) <= 0)
		return;
	for (l = strtok_r(buf, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *c = strchr(l, ':'), *d = c ? strchr(c + 1, ':') : NULL;

		if (!d)
			continue;
		if (!strncmp(c, "::", 2))
			snprintf(x->oom_file, sizeof(x->oom_file),
				 "/sys/fs/cgroup%s/memory.events", d + 1);
		else if (strstr(c, "memory"))
			snprintf(x->oom_file, sizeof(x->oom_file),
				 "/sys/fs/cgroup/memory%s/memory.oom_control",
				 d + 1);
		else
			continue;
		if (uvs__oom_kills(x->oom_file) >= 0)
			return;
	}
	x->oom_file[0] = '\0';
}

int uvs_pexit__open(struct uvs_target *t, bool launched, struct uvs_pexit **out)
{
	struct uvs_pt_opts po = {.sz = sizeof(po)};
	const struct uvs_sym *dl;
	struct uvs_layout *ly;
	struct uvs_pexit *x;
	int err;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return uvs_seterr(-ENOMEM, "out of memory");
	x->t = t;
	x->t0 = uvs_now_ns();
	po.exit_events = true;
	po.launched = launched;
	uvs__oom_file(x);
	x->oom_cg0 = uvs__oom_kills(x->oom_file);
	x->oom_sys0 = uvs__oom_kills("/proc/vmstat");
	x->err_file = uvs__err_file(t->pid, &x->err_dev, &x->err_ino);
	if (x->err_file)
		x->err_start = uvs__err_pos(t->pid);
	x->err_file = x->err_file && x->err_start >= 0;
	/* where the loop keeps its counts, read at the exit stop; the loop
	 * itself the default one until why finds the one that runs */
	x->loop_handles_off = x->loop_reqs_off = -1;
	if (!uvs_layout__load(t->libuv_version, &ly)) {
		x->loop_handles_off =
			uvs_layout__off(ly, "uv_loop_t", "active_handles");
		x->loop_reqs_off =
			uvs_layout__off(ly, "uv_loop_t", "active_reqs.count");
		uvs_layout__close(ly);
	}
	if (t->uv_bias_known && t->uv_elf &&
	    (dl = uvs_elf__find(t->uv_elf, "default_loop_struct")))
		x->loop = t->uv_bias + dl->addr;
	err = uvs_pt__open(t->pid, &po, NULL, uvs__on_event, x, &x->pt);
	if (err) {
		free(x);
		return err;
	}
	if (!launched)
		uvs__syms_current(x, 0);
	*out = x;
	return 0;
}

int uvs_pexit__poll(struct uvs_pexit *x, int timeout_ms)
{
	int err = uvs_pt__poll(x->pt, timeout_ms);

	/* a young process is still mapping its libraries */
	if (!uvs_pt__ended(x->pt, NULL, NULL))
		uvs__syms_current(
		    x, uvs_now_ns() - x->t0 < 2000000000ull ? 0 : 250);
	return err;
}

bool uvs_pexit__ended(const struct uvs_pexit *x, bool *reaped, int *status)
{
	return uvs_pt__ended(x->pt, reaped, status);
}

static void uvs__sender_of(const struct uvs__sender *s,
			   struct uvs_exit_sender *o)
{
	o->seen = s->seen;
	o->pid = o->tid = s->pid;
	o->uid = s->uid;
	memcpy(o->comm, s->comm, sizeof(o->comm));
}

/* What the stops showed, for the one decision (exit_reason.c). */
void uvs_pexit__finish(struct uvs_pexit *x, const int *wait_status,
		       bool running, struct uvs_report *r)
{
	struct uvs_exit_report *o = &r->exit;
	const struct uvs__pstack *eg = &x->exit_group;
	const int *st = wait_status	 ? wait_status
			: x->leader_gone ? &x->leader_status
					 : NULL;
	struct uvs_exit_evidence ev;
	char oom[4300];
	long long cg, sys;
	int sig;

	memset(o, 0, sizeof(*o));
	r->has_exit = true;
	o->drained_at_ms = -1; /* no stop marks uv_run's return */
	snprintf(o->stderr_tail, sizeof(o->stderr_tail), "%s", x->tail);
	o->nthreads = x->threads.nthreads;
	memcpy(o->threads, x->threads.threads, sizeof(o->threads));
	if (running) {
		o->reason = UVS_EXIT_RUNNING;
		return;
	}
	if (uvs_pt__execd(x->pt)) {
		/* the program ended there, the process did not */
		r->target_exited = false;
		o->reason = UVS_EXIT_UNKNOWN;
		o->at_ms =
		    ((x->exec_ns ? x->exec_ns : uvs_now_ns()) - x->t0) / 1e6;
		snprintf(o->message, sizeof(o->message),
			 "the process exec'd %s; uvscope detached",
			 x->exec_path[0] ? x->exec_path : "another program");
		return;
	}
	o->at_ms = ((x->gone_ns ? x->gone_ns : uvs_now_ns()) - x->t0) / 1e6;
	memset(&ev, 0, sizeof(ev));
	ev.status = st;
	if (x->deliver.seen)
		ev.fatal_sig = x->deliver.sig;
	ev.deliver = x->deliver.f;
	ev.deliver_sig = x->deliver.sig;
	sig = uvs_exit__signal(&ev);
	/* an OOM kill is a SIGKILL no stop shows: the oom_kill counter of
	 * the target's memory cgroup (or the system's) went up */
	cg = uvs__oom_kills(x->oom_file);
	sys = uvs__oom_kills("/proc/vmstat");
	if (sig == SIGKILL && ((x->oom_cg0 >= 0 && cg > x->oom_cg0) ||
			       (!x->oom_file[0] && sys > x->oom_sys0))) {
		snprintf(oom, sizeof(oom), "oom_kill of %s went up",
			 x->oom_file[0] ? x->oom_file : "/proc/vmstat");
		ev.oom_kill = oom;
	}
	ev.heap_oom_stack = uvs__has(&x->deliver, "OOMErrorHandler") ||
			    uvs__has(&x->deliver, "FatalProcessOutOfMemory");
	if (sig > 0 && sig <= 64)
		uvs__sender_of(x->sender_ext[sig].seen ? &x->sender_ext[sig]
						       : &x->sender[sig],
			       &ev.sender);
	if (x->handled) {
		ev.handled_sig = x->handled;
		uvs__sender_of(&x->sender[x->handled], &ev.handled_sender);
	}
	ev.exit_group = eg->f;
	ev.exit_group_seen = eg->seen;
	ev.exit_group_code = eg->code;
	/* Node's own paths, on the exit's stack */
	ev.uncaught_stack = uvs__has(eg, "TriggerUncaughtException");
	if (uvs__has(eg, "node::Environment::Exit"))
		ev.runtime_exit = eg->f;
	ev.tail = x->tail;
	ev.tail_unreadable = x->err_file ? "but not to its file"
			     : "a pipe or terminal the ptrace backend "
			       "cannot read back";
	ev.loop = x->loop_at_exit;
	uvs_exit__classify(&ev, o);
}

void uvs_pexit__describe(const struct uvs_pexit *x, FILE *out)
{
	fprintf(out,
		"uvscope: ptrace: every thread seized; stops on "
		"exit (PTRACE_O_TRACEEXIT) and signal delivery; oom_kill "
		"counter: %s\n",
		x->oom_file[0] ? x->oom_file : "/proc/vmstat");
}

void uvs_pexit__close(struct uvs_pexit *x)
{
	if (!x)
		return;
	uvs_pt__close(x->pt);
	uvs_syms__close(x->syms);
	free(x);
}
