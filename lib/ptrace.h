/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ptrace backend: a stack sampler of the loop thread and a watcher of
 * a process's end, for where eBPF is not allowed.
 *
 * uvs_pt (ptrace.c) is the tracer: PTRACE_SEIZE on every thread (threads
 * created later follow through PTRACE_O_TRACECLONE), PTRACE_INTERRUPT at a
 * rate, registers and an unwound stack, resumed at once; the target's
 * signals are re-injected unchanged, group-stops are left to PTRACE_LISTEN,
 * an exec ends tracing. Closing it detaches every thread. Its samples and
 * events go to callbacks, so `loop` (loop_ptrace.c), `exit`
 * (exit_ptrace.c) and later `blocked` share one sampler.
 */
#ifndef UVS_PTRACE_H
#define UVS_PTRACE_H

#include <signal.h>
#include <sys/user.h>
#include "uvscope.h"

/* ---- remote unwinding (unwind.c) ---- */
struct uvs_unwind;
int uvs_unwind__open(pid_t pid, struct uvs_unwind **out);
/* Unwinds the thread whose registers are r (it must be stopped); writes
 * up to max instruction pointers, innermost first (the first is the pc,
 * the others return addresses). Returns how many, or -errno. */
int uvs_unwind__stack(struct uvs_unwind *u, const struct user_regs_struct *r,
		      uint64_t *ips, int max);
/* Copies the stack of the stopped thread whose registers are r: the
 * unwind of r that follows reads the copy, and the thread may run on
 * meanwhile. */
int uvs_unwind__snapshot(struct uvs_unwind *u,
			 const struct user_regs_struct *r);
/* Reads the target's memory through the unwind's page cache. */
int uvs_unwind__read(struct uvs_unwind *u, uint64_t addr, void *buf,
		     size_t len);
void uvs_unwind__flush(struct uvs_unwind *u);
uint64_t uvs_unwind__reads(const struct uvs_unwind *u);
void uvs_unwind__close(struct uvs_unwind *u);

/* ---- the tracer (ptrace.c) ---- */
#define UVS_PT_MAX_FRAMES 128
#define UVS_PT_DEFAULT_HZ 99
#define UVS_PT_LISTENERS 4

struct uvs_pt_opts {
	size_t sz;
	double rate_hz;	  /* samples per second of the loop thread; 0: none */
	pid_t tid;	  /* thread to sample; 0 = the process's main thread */
	bool exit_events; /* PTRACE_O_TRACEEXIT, stacks of fatal signals */
	bool launched;	  /* pid is our child, stopped before its exec: the
			   * first exec is its start, not the end */
	/* Test hook: keep each sampled thread stopped this long, so a test
	 * can kill uvscope in the middle of a sample. */
	unsigned hold_us;
};

/* Where the loop is in its iterations. */
struct uvs_pt_iter {
	unsigned have;	/* UVS_PT_MARK_* read */
	uint64_t time;	/* uv_loop_t.time (ms; moves at each poll) */
	uint64_t count; /* uv_metrics_t.loop_count (libuv >= 1.45) */
};

/* One sample of the loop thread. */
struct uvs_pt_sample {
	uint64_t ts_ns;
	pid_t tid;
	long syscall;	     /* system call it is in (orig_rax), or -1 */
	bool in_wait;	     /* seen blocked in epoll on the wait fd without
			      * stopping it (uvs_pt__set_wait_fd): no stack */
	long arg0;	     /* first system call argument (rdi) */
	int nframes;	     /* 0 when the stack could not be unwound */
	uint64_t stopped_ns; /* interrupt to resume: what it cost the thread */
	/* The loop's own marks of its iterations, read from memory as the
	 * sample is taken (uvs_pt__set_marks): two samples with different
	 * marks lie in different iterations, whatever the sampler saw
	 * between them. */
	struct uvs_pt_iter iter;
	uint64_t ip[UVS_PT_MAX_FRAMES]; /* innermost first */
};

#define UVS_PT_MARK_TIME 1u
#define UVS_PT_MARK_COUNT 2u

/* Where a loop keeps its marks; 0 for one it does not have. */
struct uvs_pt_marks {
	uint64_t time_addr;
	uint64_t count_addr;
};

enum uvs_pt_event_type {
	UVS_PT_SIGNAL, /* a signal about to be delivered to a thread */
	UVS_PT_EXIT,   /* a thread is exiting (PTRACE_EVENT_EXIT) */
	UVS_PT_GONE,   /* a thread is gone; status is its wait status */
	UVS_PT_EXEC,   /* the process exec'd: tracing ends */
};

struct uvs_pt_event {
	enum uvs_pt_event_type type;
	pid_t tid;
	uint64_t ts_ns;
	int sig; /* SIGNAL */
	int sig_code;
	pid_t sender_pid; /* sender, for signals sent by a process */
	uid_t sender_uid;
	char comm[16];	     /* the sender's, read from /proc as it arrives */
	bool default_action; /* SIGNAL: the thread has no handler for it */
	int status;	     /* EXIT: PTRACE_GETEVENTMSG (wait-style);
			      * GONE: waitpid's status */
	long syscall;	     /* EXIT: the system call that exits (or -1) */
	int nframes;	     /* EXIT, and SIGNAL with default_action: stack */
	uint64_t ip[UVS_PT_MAX_FRAMES];
};

typedef void (*uvs_pt_sample_fn)(const struct uvs_pt_sample *s, void *ctx);
typedef void (*uvs_pt_event_fn)(const struct uvs_pt_event *e, void *ctx);

struct uvs_pt_stats {
	uint64_t samples, missed; /* missed: the thread did not stop in time */
	uint64_t peeked;	  /* taken from /proc, the thread not stopped */
	uint64_t unwound;	  /* samples with a stack */
	struct uvs_hist stopped_ns; /* per sample, as the thread saw it */
	struct uvs_hist unwind_ns;
	int threads; /* traced now */
	int threads_seen;
	uint64_t signals; /* re-injected */
	uint64_t group_stops;
};

struct uvs_pt;
/* Seizes every thread of pid. Fails (naming why) when ptrace is refused. */
int uvs_pt__open(pid_t pid, const struct uvs_pt_opts *opts,
		 uvs_pt_sample_fn on_sample, uvs_pt_event_fn on_event,
		 void *ctx, struct uvs_pt **out);
/* Samples and handles stops for up to timeout_ms; returns early (0) when
 * a signal interrupts uvscope or the target ends. */
int uvs_pt__poll(struct uvs_pt *p, int timeout_ms);
/* True once the target is gone or exec'd; *status is the main thread's
 * wait status when it was reaped here. */
bool uvs_pt__ended(const struct uvs_pt *p, bool *reaped, int *status);
bool uvs_pt__execd(const struct uvs_pt *p);
void uvs_pt__stats(const struct uvs_pt *p, struct uvs_pt_stats *out);
/* The loop's epoll fd, once known: a sample that finds the loop thread
 * blocked in epoll on it (/proc/PID/task/TID/syscall) is taken without
 * stopping the thread, since an interrupted epoll_wait returns EINTR and
 * libuv would end that poll early. -1 turns it off. */
void uvs_pt__set_wait_fd(struct uvs_pt *p, int fd);
/* The loop's marks to read with every sample (one process_vm_readv while
 * the thread is stopped); NULL turns it off. */
void uvs_pt__set_marks(struct uvs_pt *p, const struct uvs_pt_marks *m);
/* Whether two samples of the loop thread lie in different iterations, as
 * far as their marks tell (false when they cannot tell). */
bool uvs_pt__new_iteration(const struct uvs_pt_iter *a,
			   const struct uvs_pt_iter *b);
/* One sampler for several readers (record: loop and blocked): fn gets
 * every sample after the owner's callback. The owner polls and closes. */
int uvs_pt__listen(struct uvs_pt *p, uvs_pt_sample_fn fn, void *ctx);
double uvs_pt__rate_hz(const struct uvs_pt *p);
/* The unwinder, to read memory the way samples do. */
struct uvs_unwind *uvs_pt__unwinder(struct uvs_pt *p);
/* Detaches from every thread; the target runs on as it would have. */
void uvs_pt__close(struct uvs_pt *p);
/* Whether a tracer of this process reaped pid (a launched program that
 * ended, perhaps while being detached), and its wait status. */
bool uvs_pt__reaped(pid_t pid, int *status);

/* ---- loop by sampling (loop_ptrace.c) ---- */
struct uvs_ploop_opts {
	size_t sz;
	double rate_hz;
	pid_t tid;
	unsigned hold_us;
};
struct uvs_ploop;
/* The marks of the loop thread tid runs (0: the process's main thread):
 * the default loop's clock, and its iteration counter on libuv >= 1.45.
 * 0, -EAGAIN while the loop does not exist yet, -ENOENT for a loop whose
 * marks cannot be found (not the default loop, no layout for its libuv). */
int uvs_ploop__find_marks(struct uvs_target *t, pid_t tid,
			  struct uvs_pt_marks *m);
int uvs_ploop__open(struct uvs_target *t, const struct uvs_ploop_opts *opts,
		    struct uvs_ploop **out);
int uvs_ploop__poll(struct uvs_ploop *l, int timeout_ms);
bool uvs_ploop__ended(const struct uvs_ploop *l, bool *reaped, int *status);
/* Moves the samples since the last call into r->loop. */
void uvs_ploop__collect(struct uvs_ploop *l, struct uvs_report *r);
void uvs_ploop__describe(const struct uvs_ploop *l, FILE *out);
/* Its sampler, for other readers of the same samples (uvs_pt__listen). */
struct uvs_pt *uvs_ploop__sampler(struct uvs_ploop *l);
void uvs_ploop__close(struct uvs_ploop *l);

/* ---- exit by ptrace stops (exit_ptrace.c) ---- */
struct uvs_pexit;
int uvs_pexit__open(struct uvs_target *t, bool launched,
		    struct uvs_pexit **out);
int uvs_pexit__poll(struct uvs_pexit *x, int timeout_ms);
bool uvs_pexit__ended(const struct uvs_pexit *x, bool *reaped, int *status);
/* As uvs_exit__finish: the same classes, decided the same way. */
void uvs_pexit__finish(struct uvs_pexit *x, const int *wait_status,
		       bool running, struct uvs_report *r);
void uvs_pexit__describe(const struct uvs_pexit *x, FILE *out);
/* The loop that runs (found by why): read at the exit stop. */
void uvs_pexit__set_loop(struct uvs_pexit *x, uint64_t loop);
void uvs_pexit__close(struct uvs_pexit *x);

#endif
