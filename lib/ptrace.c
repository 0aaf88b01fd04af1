// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The ptrace tracer behind the ptrace backend (see ptrace.h).
 *
 * Rules it keeps, so the target runs as it would without us:
 * - PTRACE_SEIZE, never PTRACE_ATTACH: no SIGSTOP is ever sent.
 * - Every stop is answered at once: PTRACE_INTERRUPT's stop after the
 *   sample, a signal-delivery-stop by re-injecting the very signal, a
 *   group-stop (the target was stopped with SIGSTOP/SIGTSTP) with
 *   PTRACE_LISTEN, so it stays stopped until its SIGCONT as it would.
 * - Memory is only read (process_vm_readv); registers only read.
 * - No PTRACE_O_EXITKILL: if uvscope dies, even by SIGKILL, the kernel
 *   detaches every thread and one stopped by PTRACE_INTERRUPT resumes.
 * - Closing detaches every thread: each is interrupted, and detached from
 *   whichever stop it reports (a pending signal goes with the detach).
 *
 * Stops are waited for with a signalfd on SIGCHLD (a tracer gets SIGCHLD
 * for each tracee stop), so one thread both keeps the sampling clock and
 * answers stops without spinning. (Awaiting a sample's stop awake saved
 * nothing measurable on these VMs: the time from PTRACE_INTERRUPT to the
 * stop, 40-80 us, is the target's, not our wake-up.) A sample copies the
 * stack while the thread is stopped and unwinds the copy after resuming
 * it.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "uvscope.h"
#include "ptrace.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

struct uvs__thr {
	pid_t tid;
	bool gone;
	bool detached;
	bool stopped;	  /* in a stop we have not answered (close) */
	int stop_sig;	  /* signal to pass on when detaching from it */
	bool irq_pending; /* PTRACE_INTERRUPT sent, its stop not seen yet */
	bool want_sample;
	uint64_t irq_at;
};

struct uvs_pt {
	pid_t pid;
	pid_t loop_tid;
	struct uvs_pt_opts o;
	uvs_pt_sample_fn on_sample;
	uvs_pt_event_fn on_event;
	void *ctx;
	struct {
		uvs_pt_sample_fn fn;
		void *ctx;
	} also[UVS_PT_LISTENERS]; /* more readers of the samples */
	int nalso;
	struct uvs__thr *thr;
	int nthr, cap;
	unsigned long ptopts;
	int sfd;
	sigset_t oldmask;
	bool mask_set;
	bool detaching;
	struct uvs_unwind *uw;
	uint64_t period_ns, next_ns;
	int wait_fd;
	struct uvs_pt_marks marks;
	bool ended, execd, first_exec_seen, leader_reaped;
	int leader_status;
	struct uvs_pt_stats st;
	struct uvs_pt_sample sample; /* big: kept here, not on the stack */
	struct user_regs_struct sample_regs; /* of the sample being taken */
	bool sample_regs_ok;
	struct uvs_pt_event ev;
};

static struct uvs__thr *uvs__thr(struct uvs_pt *p, pid_t tid, bool add)
{
	struct uvs__thr *t;
	int i;

	for (i = 0; i < p->nthr; i++)
		if (p->thr[i].tid == tid)
			return &p->thr[i];
	if (!add)
		return NULL;
	if (p->nthr == p->cap) {
		int cap = p->cap ? p->cap * 2 : 64;

		t = realloc(p->thr, cap * sizeof(*t));
		if (!t)
			return NULL;
		p->thr = t;
		p->cap = cap;
	}
	t = &p->thr[p->nthr++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	p->st.threads_seen++;
	return t;
}

/* Seizes every thread listed in /proc/PID/task; returns how many were
 * new, or -errno. Threads created meanwhile by a seized thread are
 * reported by PTRACE_EVENT_CLONE; by one not yet seized, by the next pass. */
static int uvs__seize_all(struct uvs_pt *p)
{
	char path[64];
	struct dirent *de;
	int added = 0, err = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", p->pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		pid_t tid = strtol(de->d_name, NULL, 10);
		struct uvs__thr *t;

		if (tid <= 0 || uvs__thr(p, tid, false))
			continue;
		if (ptrace(PTRACE_SEIZE, tid, 0, p->ptopts)) {
			if (errno == ESRCH)
				continue; /* it exited meanwhile */
			err = -errno;
			break;
		}
		t = uvs__thr(p, tid, true);
		if (!t) {
			err = -ENOMEM;
			break;
		}
		added++;
	}
	closedir(d);
	return err ? err : added;
}

static void uvs__cont(struct uvs_pt *p, struct uvs__thr *t, int req, int sig)
{
	if (ptrace(req, t->tid, 0, (void *)(long)sig) && errno == ESRCH)
		t->gone = true; /* killed (SIGKILL) while stopped */
	t->stopped = false;
	(void)p;
}

static void uvs__detach(struct uvs__thr *t, int sig)
{
	ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)sig);
	t->detached = true;
	t->stopped = false;
}

static long uvs__regs(pid_t tid, struct user_regs_struct *r)
{
	if (ptrace(PTRACE_GETREGS, tid, 0, r))
		return -errno;
	return 0;
}

static int uvs__unwind(struct uvs_pt *p, const struct user_regs_struct *r,
		       uint64_t *ips)
{
	uint64_t t0 = uvs_now_ns(), r0 = uvs_unwind__reads(p->uw);
	int n = uvs_unwind__stack(p->uw, r, ips, UVS_PT_MAX_FRAMES);

	uvs_hist__add(&p->st.unwind_ns, uvs_now_ns() - t0);
	if (uvs_verbose >= 2)
		fprintf(stderr, "unwind: %d frames, %.1f us, %llu reads\n", n,
			(uvs_now_ns() - t0) / 1e3,
			(unsigned long long)(uvs_unwind__reads(p->uw) - r0));
	return n < 0 ? 0 : n;
}

static void uvs__deliver(struct uvs_pt *p, const struct uvs_pt_sample *s)
{
	int i;

	if (p->on_sample)
		p->on_sample(s, p->ctx);
	for (i = 0; i < p->nalso; i++)
		p->also[i].fn(s, p->also[i].ctx);
}

/* The last process this tracer reaped, and how it ended: a wait status is
 * the process's to take once, and a tracer that takes it (its detach, say)
 * keeps it here for whoever started that process (uvs_pt__reaped). */
static pid_t uvs__reaped_pid;
static int uvs__reaped_status;

bool uvs_pt__reaped(pid_t pid, int *status)
{
	if (!pid || pid != uvs__reaped_pid)
		return false;
	*status = uvs__reaped_status;
	return true;
}

/* An interrupt not answered by a stop in this long is taken as lost (a
 * second one while the first is pending is harmless: one stop answers
 * both). */
#define UVS__IRQ_LOST_NS (50 * 1000000ull)

/* The loop's marks, in one system call. A failed read (the loop freed,
 * the process gone) leaves the sample without marks. */
static void uvs__read_marks(struct uvs_pt *p, struct uvs_pt_sample *s)
{
	struct iovec loc[2], rem[2];
	int n = 0;

	s->iter.have = 0;
	if (p->marks.time_addr) {
		loc[n] = (struct iovec){&s->iter.time, 8};
		rem[n++] = (struct iovec){(void *)p->marks.time_addr, 8};
	}
	if (p->marks.count_addr) {
		loc[n] = (struct iovec){&s->iter.count, 8};
		rem[n++] = (struct iovec){(void *)p->marks.count_addr, 8};
	}
	if (n && process_vm_readv(p->pid, loc, n, rem, n, 0) == n * 8)
		s->iter.have = (p->marks.time_addr ? UVS_PT_MARK_TIME : 0) |
			   (p->marks.count_addr ? UVS_PT_MARK_COUNT : 0);
}

bool uvs_pt__new_iteration(const struct uvs_pt_iter *a,
			   const struct uvs_pt_iter *b)
{
	unsigned both = a->have & b->have;

	/* the counter is exact; the clock moves at each poll, and also when
	 * a callback calls uv_update_time (Node's timers do), so it is only
	 * used where there is no counter */
	if (both & UVS_PT_MARK_COUNT)
		return a->count != b->count;
	if (both & UVS_PT_MARK_TIME)
		return a->time != b->time;
	return false;
}

void uvs_pt__set_marks(struct uvs_pt *p, const struct uvs_pt_marks *m)
{
	if (m)
		p->marks = *m;
	else
		memset(&p->marks, 0, sizeof(p->marks));
}

/* A sample, in two halves around the resume: while the thread is
 * stopped, its registers and a copy of its stack (uvs_unwind__snapshot);
 * once it runs again, the unwind of that copy. The stop costs the thread
 * the copy, not the unwind. */
static void uvs__take_sample(struct uvs_pt *p, struct uvs__thr *t)
{
	struct uvs_pt_sample *s = &p->sample;

	s->ts_ns = uvs_now_ns();
	s->tid = t->tid;
	s->nframes = 0;
	s->syscall = -1;
	s->in_wait = false;
	p->sample_regs_ok = !uvs__regs(t->tid, &p->sample_regs);
	if (p->sample_regs_ok) {
		s->syscall = (long)p->sample_regs.orig_rax;
		s->arg0 = (long)p->sample_regs.rdi;
		uvs_unwind__snapshot(p->uw, &p->sample_regs);
	}
	uvs__read_marks(p, s);
	if (p->o.hold_us)
		usleep(p->o.hold_us);
	/* what the thread paid, up to the resume that follows */
	s->stopped_ns = uvs_now_ns() - t->irq_at;
}

static void uvs__finish_sample(struct uvs_pt *p)
{
	struct uvs_pt_sample *s = &p->sample;

	if (p->sample_regs_ok)
		s->nframes = uvs__unwind(p, &p->sample_regs, s->ip);
	p->st.samples++;
	p->st.unwound += s->nframes > 0;
	uvs_hist__add(&p->st.stopped_ns, s->stopped_ns);
	uvs__deliver(p, s);
}

static bool uvs__stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN ||
	       sig == SIGTTOU;
}

/* Whether the process leaves sig to its default action (no handler, not
 * ignored), from /proc/PID/status: the dispositions are per process. */
static bool uvs__default_action(pid_t pid, int sig)
{
	struct uvs_proc_status st;

	if (uvs_proc_status(pid, 0, &st) || !(st.have & UVS_ST_SIGS))
		return true;
	return !((st.sig_cgt | st.sig_ign) >> (sig - 1) & 1);
}

static void uvs__emit(struct uvs_pt *p)
{
	if (p->on_event)
		p->on_event(&p->ev, p->ctx);
}

static void uvs__ev_init(struct uvs_pt *p, enum uvs_pt_event_type type,
			 pid_t tid)
{
	struct uvs_pt_event *e = &p->ev;

	memset(e, 0, offsetof(struct uvs_pt_event, ip));
	e->type = type;
	e->tid = tid;
	e->ts_ns = uvs_now_ns();
	e->syscall = -1;
}

static void uvs__on_signal_stop(struct uvs_pt *p, struct uvs__thr *t, int sig)
{
	struct uvs_pt_event *e = &p->ev;
	struct user_regs_struct r;
	siginfo_t si;

	p->st.signals++;
	uvs__ev_init(p, UVS_PT_SIGNAL, t->tid);
	e->sig = sig;
	if (!ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si)) {
		e->sig_code = si.si_code;
		/* si_pid is the sender's for signals a process sent (kill,
		 * tgkill, sigqueue: si_code <= 0) */
		if (si.si_code <= 0) {
			char path[64];
			int n;

			e->sender_pid = si.si_pid;
			e->sender_uid = si.si_uid;
			snprintf(path, sizeof(path), "/proc/%d/comm",
				 si.si_pid);
			n = uvs_read_file(path, e->comm, sizeof(e->comm));
			if (n > 0)
				e->comm[strcspn(e->comm, "\n")] = '\0';
			else
				e->comm[0] = '\0';
		}
	}
	e->default_action = uvs__default_action(p->pid, sig);
	if (p->o.exit_events && e->default_action &&
	    uvs_signal_fatal_by_default(sig) && !uvs__regs(t->tid, &r)) {
		e->syscall = (long)r.orig_rax;
		e->nframes = uvs__unwind(p, &r, e->ip);
	}
	uvs__emit(p);
}

static void uvs__on_exit_stop(struct uvs_pt *p, struct uvs__thr *t)
{
	struct uvs_pt_event *e = &p->ev;
	struct user_regs_struct r;
	unsigned long msg = 0;

	uvs__ev_init(p, UVS_PT_EXIT, t->tid);
	ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &msg);
	e->status = (int)msg;
	if (!uvs__regs(t->tid, &r)) {
		e->syscall = (long)r.orig_rax;
		e->nframes = uvs__unwind(p, &r, e->ip);
	}
	uvs__emit(p);
}

/* Answers one wait status while tracing. */
static void uvs__handle(struct uvs_pt *p, pid_t tid, int status)
{
	struct uvs__thr *t = uvs__thr(p, tid, true);
	int sig, event;
	bool sampled;

	if (!t)
		return;
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		t->gone = true;
		t->stopped = false;
		uvs__ev_init(p, UVS_PT_GONE, tid);
		p->ev.status = status;
		uvs__emit(p);
		if (tid == p->pid) {
			/* the main thread is reported last: the process is
			 * gone */
			p->ended = true;
			p->leader_reaped = true;
			p->leader_status = status;
			uvs__reaped_pid = tid;
			uvs__reaped_status = status;
		}
		return;
	}
	if (!WIFSTOPPED(status))
		return;
	sig = WSTOPSIG(status);
	event = status >> 16;
	t->stopped = true;
	t->stop_sig = 0;
	if (p->detaching) {
		unsigned long msg;

		if (event == PTRACE_EVENT_CLONE &&
		    !ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg))
			uvs__thr(p, (pid_t)msg, true);
		uvs__detach(t, event == 0 ? sig : 0);
		return;
	}
	switch (event) {
	case PTRACE_EVENT_STOP:
		if (uvs__stop_signal(sig)) {
			/* group-stop: stay stopped, as without us, but let
			 * us see the SIGCONT that ends it */
			p->st.group_stops++;
			t->irq_pending = false;
			uvs__cont(p, t, PTRACE_LISTEN, 0);
			return;
		}
		sampled = t->irq_pending && t->want_sample;
		if (sampled)
			uvs__take_sample(p, t);
		t->irq_pending = false;
		uvs__cont(p, t, PTRACE_CONT, 0);
		if (sampled)
			uvs__finish_sample(p);
		return;
	case PTRACE_EVENT_CLONE: {
		unsigned long msg = 0;

		if (!ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg))
			uvs__thr(p, (pid_t)msg, true);
		uvs__cont(p, t, PTRACE_CONT, 0);
		return;
	}
	case PTRACE_EVENT_EXEC:
		if (p->o.launched && !p->first_exec_seen) {
			p->first_exec_seen = true;
			/* a new address space: the fork's vDSO is gone */
			uvs_unwind__flush(p->uw);
			uvs__cont(p, t, PTRACE_CONT, 0);
			return;
		}
		/* another program now: not what we were asked to trace;
		 * left stopped for the detach that follows */
		p->execd = true;
		p->ended = true;
		uvs__ev_init(p, UVS_PT_EXEC, tid);
		uvs__emit(p);
		return;
	case PTRACE_EVENT_EXIT:
		if (p->o.exit_events)
			uvs__on_exit_stop(p, t);
		uvs__cont(p, t, PTRACE_CONT, 0);
		return;
	case 0:
		/* signal-delivery-stop: the signal goes on unchanged */
		uvs__on_signal_stop(p, t, sig);
		uvs__cont(p, t, PTRACE_CONT, sig);
		return;
	default:
		uvs__cont(p, t, PTRACE_CONT, 0);
		return;
	}
}

static void uvs__drain_sfd(struct uvs_pt *p)
{
	struct signalfd_siginfo si[8];

	while (read(p->sfd, si, sizeof(si)) > 0)
		;
}

/* Takes every wait status ready now; returns how many. */
static int uvs__drain(struct uvs_pt *p)
{
	int status, n = 0;
	pid_t tid;

	uvs__drain_sfd(p);
	while ((tid = waitpid(-1, &status, WNOHANG | __WALL)) > 0) {
		uvs__handle(p, tid, status);
		n++;
	}
	return n;
}

static int uvs__wait_ns(struct uvs_pt *p, uint64_t ns)
{
	struct pollfd pfd = {.fd = p->sfd, .events = POLLIN};
	struct timespec ts = {ns / 1000000000ull, ns % 1000000000ull};
	int n = ppoll(&pfd, 1, &ts, NULL);

	return n < 0 ? -errno : n;
}

int uvs_pt__open(pid_t pid, const struct uvs_pt_opts *opts,
		 uvs_pt_sample_fn on_sample, uvs_pt_event_fn on_event,
		 void *ctx, struct uvs_pt **out)
{
	struct uvs_pt *p;
	sigset_t chld;
	int err, i;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return uvs_seterr(-ENOMEM, "out of memory");
	p->sfd = -1;
	p->wait_fd = -1;
	p->pid = pid;
	memcpy(&p->o, opts, opts->sz < sizeof(p->o) ? opts->sz : sizeof(p->o));
	p->loop_tid = p->o.tid ? p->o.tid : pid;
	p->on_sample = on_sample;
	p->on_event = on_event;
	p->ctx = ctx;
	p->ptopts = PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC;
	if (p->o.exit_events)
		p->ptopts |= PTRACE_O_TRACEEXIT;
	if (p->o.rate_hz > 0)
		p->period_ns = 1e9 / p->o.rate_hz;
	/* Stops arrive as SIGCHLD; blocked, they wait in the signalfd. Only
	 * now: a program we launch must not inherit the mask. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, &p->oldmask)) {
		err = uvs_seterr(-errno, "sigprocmask: %s", strerror(errno));
		goto fail;
	}
	p->mask_set = true;
	p->sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (p->sfd < 0) {
		err = uvs_seterr(-errno, "signalfd: %s", strerror(errno));
		goto fail;
	}
	err = uvs_unwind__open(pid, &p->uw);
	if (err)
		goto fail;
	for (i = 0; i < 100; i++) {
		err = uvs__seize_all(p);
		if (err <= 0)
			break;
	}
	if (err < 0) {
		if (err == -EPERM)
			err = uvs_seterr(err,
					 "ptrace of pid %d refused: it is "
					 "another user's, or already traced "
					 "(TracerPid in /proc/%d/status), or "
					 "ptrace_scope forbids it; run as its "
					 "user or with sudo (CAP_SYS_PTRACE)",
					 pid, pid);
		else
			err = uvs_seterr(err, "ptrace of pid %d: %s", pid,
					 strerror(-err));
		goto fail;
	}
	if (!p->nthr) {
		err = uvs_seterr(-ESRCH, "pid %d has no threads to trace", pid);
		goto fail;
	}
	for (i = 0; i < p->nthr; i++)
		if (p->thr[i].tid == p->loop_tid)
			p->thr[i].want_sample = true;
	p->next_ns = uvs_now_ns() + p->period_ns;
	*out = p;
	return 0;
fail:
	uvs_pt__close(p);
	return err;
}

void uvs_pt__set_wait_fd(struct uvs_pt *p, int fd)
{
	p->wait_fd = fd;
}

/* A sample without a stop, if the thread is blocked in epoll on the wait
 * fd: /proc/PID/task/TID/syscall shows a blocked thread's system call and
 * arguments ("running" otherwise). */
static bool uvs__peek(struct uvs_pt *p, struct uvs__thr *t)
{
	struct uvs_pt_sample *s = &p->sample;
	long nr, fd;

	/* the test hook wants stops to hold */
	if (p->wait_fd < 0 || p->o.hold_us)
		return false;
	if (uvs_proc_syscall(p->pid, t->tid, &nr, &fd) != 1 ||
	    !uvs_is_epoll_wait(nr) || fd != p->wait_fd)
		return false;
	s->ts_ns = uvs_now_ns();
	s->tid = t->tid;
	s->syscall = nr;
	s->arg0 = fd;
	s->in_wait = true;
	s->nframes = 0;
	s->stopped_ns = 0;
	uvs__read_marks(p, s);
	p->st.samples++;
	p->st.peeked++;
	uvs__deliver(p, s);
	return true;
}

int uvs_pt__poll(struct uvs_pt *p, int timeout_ms)
{
	uint64_t now = uvs_now_ns(), end = now + timeout_ms * 1000000ull;
	struct uvs__thr *lt;
	int n;

	while (!p->ended) {
		uvs__drain(p);
		if (p->ended)
			break;
		now = uvs_now_ns();
		if (p->period_ns && now >= p->next_ns) {
			lt = uvs__thr(p, p->loop_tid, false);
			if (lt && !lt->gone && !lt->irq_pending &&
			    uvs__peek(p, lt)) {
				/* taken without a stop */
			} else if (lt && !lt->gone && !lt->irq_pending) {
				lt->want_sample = true;
				lt->irq_at = now;
				if (!ptrace(PTRACE_INTERRUPT, lt->tid, 0, 0))
					lt->irq_pending = true;
				else if (errno == ESRCH)
					lt->gone = true;
			} else if (lt && lt->irq_pending) {
				p->st.missed++;
				/* an interrupt whose stop never came (another
				 * stop took its place: a launched program's
				 * exec raced it) must not end the sampling */
				if (now - lt->irq_at > UVS__IRQ_LOST_NS)
					lt->irq_pending = false;
			}
			p->next_ns += p->period_ns;
			if (p->next_ns <= now)
				p->next_ns = now + p->period_ns;
			continue;
		}
		if (now >= end)
			break;
		n = uvs__wait_ns(
		    p, (p->period_ns && p->next_ns < end ? p->next_ns : end) -
			   now);
		if (n == -EINTR)
			return 0; /* uvscope's own signal: let the caller look
				   */
		if (n < 0)
			return uvs_seterr(n, "ppoll: %s", strerror(-n));
	}
	return 0;
}

bool uvs_pt__ended(const struct uvs_pt *p, bool *reaped, int *status)
{
	if (reaped)
		*reaped = p->leader_reaped;
	if (status)
		*status = p->leader_status;
	return p->ended;
}

bool uvs_pt__execd(const struct uvs_pt *p)
{
	return p->execd;
}

void uvs_pt__stats(const struct uvs_pt *p, struct uvs_pt_stats *out)
{
	int i;

	*out = p->st;
	out->threads = 0;
	for (i = 0; i < p->nthr; i++)
		out->threads += !p->thr[i].gone && !p->thr[i].detached;
}

int uvs_pt__listen(struct uvs_pt *p, uvs_pt_sample_fn fn, void *ctx)
{
	if (p->nalso == UVS_PT_LISTENERS)
		return uvs_seterr(-ENOSPC, "ptrace: more than %d readers of "
				  "one sampler", UVS_PT_LISTENERS);
	p->also[p->nalso].fn = fn;
	p->also[p->nalso++].ctx = ctx;
	return 0;
}

double uvs_pt__rate_hz(const struct uvs_pt *p)
{
	return p->o.rate_hz;
}

struct uvs_unwind *uvs_pt__unwinder(struct uvs_pt *p)
{
	return p->uw;
}

static int uvs__attached(const struct uvs_pt *p)
{
	int i, n = 0;

	for (i = 0; i < p->nthr; i++)
		n += !p->thr[i].gone && !p->thr[i].detached;
	return n;
}

void uvs_pt__close(struct uvs_pt *p)
{
	uint64_t deadline;
	int i;

	if (!p)
		return;
	p->detaching = true;
	/* Threads in a stop we did not answer (an exec) are detached now;
	 * the others are interrupted and detached from the stop they
	 * report, whatever it is. */
	for (i = 0; i < p->nthr; i++) {
		struct uvs__thr *t = &p->thr[i];

		if (t->gone || t->detached)
			continue;
		if (t->stopped) {
			uvs__detach(t, t->stop_sig);
		} else if (!t->irq_pending) {
			t->irq_pending = true;
			if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) &&
			    errno == ESRCH)
				t->gone = true;
		}
	}
	deadline = uvs_now_ns() + 3000000000ull;
	while (p->sfd >= 0 && uvs__attached(p) && uvs_now_ns() < deadline) {
		uvs__drain(p);
		/* threads seen first during the detach (clones) */
		for (i = 0; i < p->nthr; i++) {
			struct uvs__thr *t = &p->thr[i];

			if (!t->gone && !t->detached && !t->irq_pending &&
			    !t->stopped) {
				t->irq_pending = true;
				if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) &&
				    errno == ESRCH)
					t->gone = true;
			}
		}
		if (uvs__attached(p))
			uvs__wait_ns(p, 10000000ull);
	}
	if (uvs__attached(p))
		uvs_warn("%d thread(s) of pid %d did not stop to be detached; "
			 "the kernel detaches them when uvscope exits",
			 uvs__attached(p), p->pid);
	/* a tracee we launched may have ended during the detach: its
	 * status stays for the caller's waitpid */
	if (p->sfd >= 0)
		close(p->sfd);
	if (p->mask_set)
		sigprocmask(SIG_SETMASK, &p->oldmask, NULL);
	uvs_unwind__close(p->uw);
	free(p->thr);
	free(p);
}
