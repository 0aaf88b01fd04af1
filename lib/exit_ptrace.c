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
	char frames[UVS_EXIT_MAX_FRAMES][160];
	int nframes;
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
	k->seen = true;
	k->nframes = 0;
	for (i = 0;
	     x->syms && i < e->nframes && k->nframes < UVS_EXIT_MAX_FRAMES; i++)
		/* a return address may lie past its function (noreturn
		 * calls): name the call */
		uvs_syms__name(x->syms, e->ip[i] - (i ? 1 : 0),
			       k->frames[k->nframes++], sizeof(k->frames[0]));
}

static bool uvs__has(const struct uvs__pstack *k, const char *what)
{
	int i;

	for (i = 0; i < k->nframes; i++)
		if (strstr(k->frames[i], what))
			return true;
	return false;
}

/* a frame of uv_run itself ("uv_run+0x7f (node)") */
static bool uvs__in_uv_run(const struct uvs__pstack *k)
{
	int i;

	for (i = 0; i < k->nframes; i++)
		if (!strncmp(k->frames[i], "uv_run+", 7) ||
		    !strncmp(k->frames[i], "uv_run ", 7))
			return true;
	return false;
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

static void uvs__copy(struct uvs_exit_report *o, const struct uvs__pstack *k)
{
	int i;

	o->nstack = k->nframes;
	for (i = 0; i < k->nframes; i++)
		snprintf(o->stack[i], sizeof(o->stack[i]), "%s", k->frames[i]);
}

/* The decision of uvs_exit__finish (lib/exit.c), step for step. */
void uvs_pexit__finish(struct uvs_pexit *x, const int *wait_status,
		       bool running, struct uvs_report *r)
{
	struct uvs_exit_report *o = &r->exit;
	const struct uvs__pstack *eg = &x->exit_group;
	const int *st = wait_status	 ? wait_status
			: x->leader_gone ? &x->leader_status
					 : NULL;
	long long cg, sys;
	int sig = 0;

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
	if (st && WIFSIGNALED(*st))
		sig = WTERMSIG(*st);
	else if (!st && x->deliver.seen)
		sig = x->deliver.sig;
	cg = uvs__oom_kills(x->oom_file);
	sys = uvs__oom_kills("/proc/vmstat");
	if (sig == SIGKILL && ((x->oom_cg0 >= 0 && cg > x->oom_cg0) ||
			       (!x->oom_file[0] && sys > x->oom_sys0))) {
		o->reason = UVS_EXIT_OOM;
		snprintf(o->detail, sizeof(o->detail), "kernel");
		snprintf(o->message, sizeof(o->message),
			 "killed by the kernel's OOM killer (oom_kill of %s "
			 "went up)",
			 x->oom_file[0] ? x->oom_file : "/proc/vmstat");
		o->signal = SIGKILL;
		return;
	}
	if (sig) {
		const struct uvs__sender *s;

		o->signal = sig;
		if (x->deliver.seen && x->deliver.sig == sig)
			uvs__copy(o, &x->deliver);
		if (sig == SIGABRT &&
		    (uvs__has(&x->deliver, "OOMErrorHandler") ||
		     uvs__has(&x->deliver, "FatalProcessOutOfMemory"))) {
			o->reason = UVS_EXIT_OOM;
			snprintf(o->detail, sizeof(o->detail), "heap");
			if (!uvs_exit__fatal_line(x->tail, o))
				snprintf(o->message, sizeof(o->message),
					 "JavaScript heap out of memory (V8's "
					 "out-of-memory handler is on the "
					 "stack)");
		} else {
			o->reason =
			    sig == SIGABRT ? UVS_EXIT_ABORT : UVS_EXIT_SIGNAL;
			if (o->reason == UVS_EXIT_ABORT)
				uvs_exit__fatal_line(x->tail, o);
		}
		s = x->sender_ext[sig].seen ? &x->sender_ext[sig]
					    : &x->sender[sig];
		if (s->seen) {
			o->has_sender = true;
			o->sender.pid = s->pid;
			o->sender.tid = s->pid;
			o->sender.uid = s->uid;
			memcpy(o->sender.comm, s->comm, sizeof(o->sender.comm));
		}
		return;
	}
	if (st && WIFEXITED(*st)) {
		o->has_code = true;
		o->code = WEXITSTATUS(*st);
	} else if (eg->seen) {
		o->has_code = true;
		o->code = eg->code;
	}
	if (!o->has_code) {
		o->reason = UVS_EXIT_UNKNOWN;
		return;
	}
	if (x->handled) {
		/* exited with a code after a fatal signal it handled */
		const struct uvs__sender *s = &x->sender[x->handled];

		o->handled_signal = x->handled;
		o->has_sender = true;
		o->sender.pid = o->sender.tid = s->pid;
		o->sender.uid = s->uid;
		memcpy(o->sender.comm, s->comm, sizeof(o->sender.comm));
	}
	if (o->code && uvs__has(eg, "TriggerUncaughtException")) {
		o->reason = UVS_EXIT_UNCAUGHT;
		if (!uvs_exit__uncaught(x->tail, o))
			snprintf(o->message, sizeof(o->message),
				 "uncaught exception (its text went to the "
				 "process's stderr, %s)",
				 x->err_file ? "but not to its file"
					     : "a pipe or terminal the ptrace "
					       "backend cannot read back");
		uvs__copy(o, eg);
		return;
	}
	if (uvs__has(eg, "node::Environment::Exit")) {
		o->reason = UVS_EXIT_EXIT;
		uvs__copy(o, eg);
		return;
	}
	/* exit_group from outside uv_run: main returned after its loop
	 * ran out of work (eBPF sees uv_run return; ptrace, the stack).
	 * With a code other than 0 it is an exit all the same, as in
	 * lib/exit.c: a program that closes its loop to end (neovim's
	 * ":cquit 3", Python's sys.exit(3) on uvloop) drains it first. */
	if (eg->seen && !uvs__in_uv_run(eg) && !o->code) {
		o->reason = UVS_EXIT_DRAINED;
		uvs__copy(o, eg);
		return;
	}
	o->reason = UVS_EXIT_EXIT;
	if (eg->seen)
		uvs__copy(o, eg);
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
