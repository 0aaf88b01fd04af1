/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libuvscope: the library behind the uvscope CLI.
 *
 * Functions return 0 or a negative errno; on failure they leave one line
 * saying what and why in uvs_errmsg(), and print nothing themselves.
 */
#ifndef UVSCOPE_H
#define UVSCOPE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <sys/types.h>
#include <linux/types.h>
#include "hist.h"

#define UVS_VERSION "0.1.0"
#define UVS_SCHEMA "uvscope/1"

/* ---- errors and logging (util.c) ---- */
const char *uvs_errmsg(void);
int uvs_seterr(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
extern int uvs_verbose;
void uvs_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void uvs_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The CLI's one-line error: "uvscope: what and why". */
void uvs_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True for a signal whose default action ends the process. */
bool uvs_signal_fatal_by_default(int sig);
uint64_t uvs_now_ns(void); /* CLOCK_MONOTONIC, the clock bpf_ktime_get_ns uses */
int uvs_read_file(const char *path, char *buf, size_t len);
/* A program as execvp would find it (PATH searched for a bare name), as
 * its real path in out (PATH_MAX bytes); 0 or -errno. */
int uvs_find_program(const char *prog, char *out, size_t len);
struct uvs_map_line {
	uint64_t start, end, off;
	char perms[8];	  /* "r-xp" */
	const char *path; /* "" for anonymous memory, "[heap]"... */
};
/* Non-zero from fn stops the walk (negative: an error, returned). */
typedef int (*uvs_map_fn)(const struct uvs_map_line *m, void *ctx);
/* Calls fn for each line of /proc/PID/maps; 0 or -errno. */
int uvs_proc_maps(pid_t pid, uvs_map_fn fn, void *ctx);
/* The same for text in the format of /proc/PID/maps, read from f. */
int uvs_maps__parse(FILE *f, uvs_map_fn fn, void *ctx);

/* What uvscope reads of /proc/PID/status (the one parser of it). */
#define UVS_ST_TRACER 1u
#define UVS_ST_NSPID 2u
#define UVS_ST_UID 4u
#define UVS_ST_SIGS 8u /* SigBlk, SigIgn and SigCgt all read */
struct uvs_proc_status {
	unsigned have;	  /* UVS_ST_* found */
	pid_t tracer_pid; /* TracerPid: 0 when not traced */
	pid_t nspid;	  /* the last NSpid: as its own namespace numbers it */
	uid_t uid;	  /* the real uid */
	uint64_t sig_blk, sig_ign, sig_cgt;
};
/* Parses len bytes of status text (not NUL-terminated); lines it does
 * not know, or cannot read, are skipped. Always 0. */
int uvs_status__parse(const char *buf, size_t len, struct uvs_proc_status *st);
/* /proc/PID/status, or with tid /proc/PID/task/TID/status. 0 or -errno. */
int uvs_proc_status(pid_t pid, pid_t tid, struct uvs_proc_status *st);

/* ---- ELF symbols (elf.c) ---- */
struct uvs_elf;
struct uvs_sym {
	const char *name; /* owned by the uvs_elf */
	uint64_t addr;	  /* link-time virtual address */
	uint64_t size;
	unsigned char type; /* STT_* */
};
int uvs_elf__open(const char *path, struct uvs_elf **out);
void uvs_elf__close(struct uvs_elf *elf);
bool uvs_elf__is_pie(const struct uvs_elf *elf);
bool uvs_elf__has_symtab(const struct uvs_elf *elf);
size_t uvs_elf__nsyms(const struct uvs_elf *elf);
/* Looks up n names in one pass over the symbols; out[i] is NULL if absent. */
void uvs_elf__lookup(const struct uvs_elf *elf, const char *const *names,
		     size_t n, const struct uvs_sym **out);
const struct uvs_sym *uvs_elf__find(const struct uvs_elf *elf,
				    const char *name);
int uvs_elf__vaddr_to_off(const struct uvs_elf *elf, uint64_t vaddr,
			  uint64_t *off);
/* Copies len bytes of the file image at a link-time address. */
int uvs_elf__read(const struct uvs_elf *elf, uint64_t vaddr, void *buf,
		  size_t len);
/* Lowest PT_LOAD p_vaddr, page aligned: runtime bias = map start - this. */
uint64_t uvs_elf__base_vaddr(const struct uvs_elf *elf);
/* Finds prefix followed by "X.Y.Z" in the file's read-only data and copies
 * "X.Y.Z" to buf. */
int uvs_elf__find_version_string(const struct uvs_elf *elf,
				 const char *prefix, char *buf, size_t len);
int uvs_elf__off_to_vaddr(const struct uvs_elf *elf, uint64_t off,
			  uint64_t *vaddr);
/* The function or object containing a link-time address, or NULL. Sorts
 * the symbols by address on first use (lookups by name stay valid). */
const struct uvs_sym *uvs_elf__symbolize(struct uvs_elf *elf, uint64_t vaddr);
/* DT_NEEDED entries, up to max; returns how many. */
int uvs_elf__needed(const struct uvs_elf *elf, char names[][256], int max);
/* ---- target discovery (target.c) ---- */
enum uvs_tier {
	UVS_TIER_SYMBOLS,  /* libuv internals in .symtab: phase uprobes */
	UVS_TIER_SYSCALLS, /* stripped libuv: epoll tracepoints only */
};

struct uvs_target {
	pid_t pid;
	bool launched;		/* started by uvscope with -- COMMAND */
	char comm[32];
	char exe[4096];		/* as the target sees it */
	char uv_file[4096];	/* file holding libuv, as the target sees it */
	char uv_open[4200];	/* same file, openable by uvscope */
	uint64_t uv_bias;	/* runtime address = bias + symbol address */
	bool uv_bias_known;
	struct uvs_elf *uv_elf;
	enum uvs_tier tier;
	char runtime[32];	  /* "node" or "libuv" */
	char runtime_version[32]; /* "v20.20.2", or "" when unknown */
	char libuv_version[32];	  /* "1.46.0", or "" when unknown */
	pid_t loop_tid;
	/* the loop why found on an epoll fd not the default loop's, by a
	 * scan of memory, and that fd: asked again (exit's snapshots, twice
	 * a second), a read of its backend_fd stands for a new scan */
	uint64_t run_loop;	/* 0: none found */
	int run_loop_fd;
	bool run_loop_scanned;	/* run_loop_fd was scanned for */
};
const char *uvs_tier_name(enum uvs_tier tier);
/* Discovers a running process. */
int uvs_target__open_pid(pid_t pid, struct uvs_target **out);
/* Discovers a program about to be exec'd by child pid. */
int uvs_target__open_exec(const char *path, pid_t child,
			  struct uvs_target **out);
void uvs_target__close(struct uvs_target *t);
bool uvs_target__alive(const struct uvs_target *t);
/* Learns where libuv is loaded, once a launched program has mapped it:
 * 0 when uv_bias is known, or -errno. */
int uvs_target__locate(struct uvs_target *t);
/* What thread tid of pid is doing (/proc/PID/task/TID/syscall): 1, the
 * system call it is blocked in and its first argument (arg0 may be NULL),
 * 0 if it is running, or -errno. */
int uvs_proc_syscall(pid_t pid, pid_t tid, long *nr, long *arg0);
/* 1 if the target runs another executable than the one it was opened on
 * (an exec since; its path in now), 0 if the same, or -errno. */
int uvs_target__exe_changed(const struct uvs_target *t, char *now,
			    size_t len);
bool uvs_is_epoll_wait(long nr);
/* The epoll fd thread tid is blocked waiting in, -1 if none (running, or
 * in another call), or -errno (< -1) if it cannot be read. */
int uvs_target__epoll_waiting(const struct uvs_target *t, pid_t tid);
/* The thread to watch in a process whose main thread runs no loop (bind9's
 * named waits for signals while loop threads work): of the threads seen
 * waiting in epoll over 100 ms, the one that took the most CPU; note says
 * so. 0 (the main thread's loop) for Node, a launched program, or a main
 * thread in epoll or running. */
pid_t uvs_target__pick_loop_thread(struct uvs_target *t, char *note,
				   size_t len);
/* Where libuv's default loop is (0 if not created yet); 0 or -errno.
 * Needs uv_bias. */
int uvs_target__default_loop(struct uvs_target *t, uint64_t *loop);
/* Whether the process's fd is an epoll instance (/proc/PID/fd). */
bool uvs_target__is_epoll_fd(const struct uvs_target *t, int fd);
/* The process's lowest epoll fd that watches any fd (a loop that has run:
 * neovim creates libuv's default loop and runs another), else its lowest
 * epoll fd, or -1. */
int uvs_target__first_epoll_fd(const struct uvs_target *t);

/* ---- native and JIT symbols of a process (symbolize.c) ---- */
struct uvs_syms;
/* Snapshots pid's executable mappings and opens their files (so frames
 * can be named after the process is gone). */
int uvs_syms__open(pid_t pid, struct uvs_syms **out);
/* Opens *s, or refreshes it when older than max_age_ms (*last: when it
 * was last brought up to date). The files stay open, so a stack that
 * arrives as the process dies can still be named. */
void uvs_syms__current(struct uvs_syms **s, pid_t pid, uint64_t *last,
		       unsigned max_age_ms);
/* Picks up mappings made since (dlopen, a new perf map). */
int uvs_syms__refresh(struct uvs_syms *s);
/* "function+0x1f (module)", "[jit] 0x...", or "0x... (module)"; demangled. */
const char *uvs_syms__name(struct uvs_syms *s, uint64_t addr, char *buf,
			   size_t len);
/* A stack frame's name for flame graphs: the function alone (demangled,
 * no offset), the perf map's name for JIT code, "[jit]" for JIT code
 * without one, "[module]" where a file has no symbol. ret: addr is a
 * return address, so the call before it is named. */
const char *uvs_syms__frame(struct uvs_syms *s, uint64_t addr, bool ret,
			    char *buf, size_t len);
/* Index of the file mapped at addr (the same for two addresses in one
 * file), or -1 for anonymous (JIT) code or no mapping. */
int uvs_syms__file_of(const struct uvs_syms *s, uint64_t addr);
bool uvs_syms__is_vdso(const struct uvs_syms *s, uint64_t addr);
/* A kernel address as "function_[k]" (/proc/kallsyms, read once). */
const char *uvs_syms__kernel_frame(uint64_t addr, char *buf, size_t len);
/* The same for a function pointer: "function (module)", no "+0". */
const char *uvs_syms__callback(struct uvs_syms *s, uint64_t addr, char *buf,
			       size_t len);
/* True if addr lies in an executable mapping (file or JIT code). */
bool uvs_syms__in_code(const struct uvs_syms *s, uint64_t addr);
void uvs_syms__close(struct uvs_syms *s);

/* ---- probe windows within a budget of hits per second (window.c) ---- */
#include "window.h" /* bpf/: the bucket the probes keep */
/*
 * A bucket of hits that fills at the budget's rate, kept by the probes
 * (bpf/window.h): a window opens once the bucket holds its share and ends
 * on the hit that empties it. Under the budget the probes stay on.
 */
struct uvs_window {
	uint64_t budget;     /* hits per second */
	bool always;	     /* no budget (--exact) */
	bool on;
	uint64_t next_cap;   /* hits the bucket must hold to open the next */
	uint64_t defer_to;   /* not before (the last probes in release) */
	uint64_t on_since;
	uint64_t covered_ns; /* time with probes on, closed windows */
	uint64_t windows;
	struct uvs_win *bw;  /* the bucket: the BPF side's, or local */
	struct uvs_win local;
};
enum uvs_window_act { UVS_WINDOW_KEEP, UVS_WINDOW_ON, UVS_WINDOW_OFF };
/* always: probes on all the time, whatever they cost (--exact). bw: the
 * BPF side's bucket (NULL: none, the window only counts time). */
void uvs_window__init(struct uvs_window *w, uint64_t budget, bool always,
		      uint64_t now, struct uvs_win *bw);
/* What the backend should do with its probes now. */
enum uvs_window_act uvs_window__step(struct uvs_window *w, uint64_t now);
/* Before the probes of a window are attached: the bucket lets them
 * record. */
void uvs_window__arm(struct uvs_window *w);
/* The backend attached (on) or released its probes. */
void uvs_window__switched(struct uvs_window *w, bool on, uint64_t now);
/* It could not switch on yet (the last probes are still being released). */
void uvs_window__defer(struct uvs_window *w, uint64_t now);
/* The hits the bucket holds now. */
uint64_t uvs_window__tokens(const struct uvs_window *w, uint64_t now);
/* Time the probes were on, so far. */
uint64_t uvs_window__covered(const struct uvs_window *w, uint64_t now);
void uvs_window__sleep(const struct uvs_window *w, int timeout_ms);

/* ---- a set of uprobes in one file, attached together in budget windows:
 * loop's phase probes, pool's task probes (probes.c) ---- */
#define UVS_MAX_SITES 24
struct bpf_program;
struct ring_buffer;
struct uvs_probe_site {
	uint64_t addr;	     /* link-time address (for -v) */
	uint64_t off;	     /* file offset */
	bool ret;	     /* a uretprobe */
	uint64_t cookie;     /* in a uprobe_multi link */
	uint64_t one_cookie; /* as a perf uprobe of its own ... */
	struct bpf_program *prog; /* ... running this program */
	int tag;	     /* the owner's (loop: the phase) */
	char what[96];
};
struct uvs_probes {
	const char *path;
	pid_t pid;
	struct uvs_probe_site site[UVS_MAX_SITES];
	int n;
	bool multi;	     /* as two uprobe_multi links */
	struct bpf_program *multi_prog[2]; /* entries, returns */
	int mlinks[2], links[UVS_MAX_SITES]; /* holder handles, or -1 */
	bool on;
	struct uvs_window win;
	struct ring_buffer *ring; /* win_rb: a window ended */
	int ring_fd;
};
/* Empty, for probes in path of pid. */
void uvs_probes__init(struct uvs_probes *p, const char *path, pid_t pid);
/* A site; NULL if full (UVS_MAX_SITES). */
struct uvs_probe_site *uvs_probes__add(struct uvs_probes *p, uint64_t off,
				       bool ret);
/* Once the BPF object is loaded: its uprobe_multi programs (NULL: none,
 * one perf uprobe per site), its bucket and ring (win, win_rb), the
 * budget. */
int uvs_probes__ready(struct uvs_probes *p, struct bpf_program *multi_entry,
		      struct bpf_program *multi_return, struct uvs_win *bw,
		      int win_rb_fd, uint64_t budget, bool always);
/* Attaches every site (a window opens); 0 or -errno, with the error set. */
int uvs_probes__on(struct uvs_probes *p);
/* Releases them (the window closes). */
void uvs_probes__off(struct uvs_probes *p);
/* What to do now: ON and OFF are the caller's to carry out (with on/off
 * and its own bookkeeping). */
enum uvs_window_act uvs_probes__step(struct uvs_probes *p);
void uvs_probes__close(struct uvs_probes *p);

/* ---- uprobes, attached and held by a holder process (uprobe.c) ---- */
#define UVS_TRACE_UPROBE_MULTI 48 /* BPF_TRACE_UPROBE_MULTI */
/* One link for n probes in path (entries, or returns with ret), each
 * with its cookie; returns the link's handle, -ENODATA for n == 0, or
 * -errno (an older kernel: fall back to one perf uprobe per site). */
int uvs_uprobe_multi__attach(int prog_fd, const char *path, pid_t pid,
			     const uint64_t *offs, const uint64_t *cookies,
			     int n, bool ret);
/* One perf uprobe (a uretprobe with ret) at file offset off, with its
 * cookie: a handle or -errno. */
int uvs_uprobe__attach(int prog_fd, const char *path, pid_t pid,
		       uint64_t off, bool ret, uint64_t cookie);
/* Starts the holder now (else at the first attach): before tracepoints
 * that a late uprobe would leave counting alone meanwhile. 0 or -errno. */
int uvs_uprobe__start(void);
/* Releases a handle (the holder waits out the grace period); sets it to
 * -1. */
void uvs_uprobe__release(int *handle);
/* Has the holder release the n links (handles; -1s skipped) the moment
 * ring_fd (a BPF ring buffer, empty now) is written to, from a thread at
 * real-time priority: a window's probes end it on their budget
 * (bpf/window.h). 0 or -errno. */
int uvs_uprobe__watch(int ring_fd, const int *handles, int n);
/* No release still waiting for its grace period. */
bool uvs_uprobe__settled(void);
/* Waits until it is so, for timeout_ms at most. */
void uvs_uprobe__settle(int timeout_ms);
/* Everything the holder holds released, and the holder gone: at exit. */
void uvs_uprobe__end(void);

struct bpf_link;
struct bpf_object_skeleton;
/* Releasing a perf-based probe (a syscall tracepoint, a uprobe) or a
 * uprobe_multi link waits for the kernel's grace periods: 40-100 ms each
 * on these kernels, over a second for a command's probes one after
 * another. A reaper releases each on a thread of its own, so that the
 * waits overlap; what it is handed is set to NULL (-1) at once. */
#define UVS_MAX_REAP 96
struct uvs_reaper {
	pthread_t th[UVS_MAX_REAP];
	int n;
};
void uvs_reap_link(struct uvs_reaper *r, struct bpf_link **link);
void uvs_reap_fd(struct uvs_reaper *r, int *fd);
/* Every link a skeleton's programs hold (skel->skeleton). */
void uvs_reap_skel(struct uvs_reaper *r, const struct bpf_object_skeleton *s);
/* Collects the threads done; with wait, blocks for all of them. Returns
 * true when none is left. */
bool uvs_reap_wait(struct uvs_reaper *r, bool wait);
/* The one a command's closing probes go to (from one thread): released
 * together, whatever their kind, and all gone when uvscope exits (it
 * waits for them at exit). */
struct uvs_reaper *uvs_reaper_shared(void);

/* ---- libuv struct layouts from profiles/ (layout.c) ---- */
struct uvs_layout;
/* Loads the profile of exactly this libuv version, or fails naming the
 * closest one. */
int uvs_layout__load(const char *version, struct uvs_layout **out);
/* The same from a profile's text in memory (name: for messages). */
int uvs_layout__parse(const char *name, const char *buf, size_t len,
		      struct uvs_layout **out);
/* Offset of a member ("io_watcher.fd" for nested ones), or -1. */
long uvs_layout__off(const struct uvs_layout *l, const char *type,
		     const char *field);
long uvs_layout__size(const struct uvs_layout *l, const char *type);
long uvs_layout__enum(const struct uvs_layout *l, const char *type,
		      const char *name);
/* The enumerator of type with this value ("UV_FS_STAT"), or NULL. */
const char *uvs_layout__enum_name(const struct uvs_layout *l,
				  const char *type, long value);
const char *uvs_layout__path(const struct uvs_layout *l);
void uvs_layout__close(struct uvs_layout *l);

/* ---- feature probes (features.c) ---- */
struct uvs_features {
	bool root_caps;	  /* CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN */
	bool btf;	  /* /sys/kernel/btf/vmlinux */
	bool uprobe_pmu;  /* uprobes through perf_event_open */
	bool tracefs;	  /* syscall tracepoints reachable */
	bool epoll_pwait2; /* tracepoint exists on this kernel */
	bool uprobe_multi; /* BPF uprobe_multi links (Linux 6.6) */
	char why_not[256];
};
int uvs_features__probe(struct uvs_features *f);
bool uvs_features__ebpf_ok(const struct uvs_features *f);
void uvs_features__print(const struct uvs_features *f, FILE *out);

/* ---- histograms (hist.c) ---- */
/* Log-linear: exact below 64, then 64 buckets per power of two (<1.6% wide).
 * Values are integers in the histogram's unit (ns or ms). */
struct uvs_hist {
	uint64_t count, sum, min, max;
	uint32_t b[UVS_HIST_NB];
};
void uvs_hist__add(struct uvs_hist *h, uint64_t v);
void uvs_hist__merge(struct uvs_hist *dst, const struct uvs_hist *src);
double uvs_hist__quantile(const struct uvs_hist *h, double q);
int uvs_hist__index(uint64_t v);
/* Builds a histogram from bucket counts (cur minus prev, prev may be NULL),
 * as the BPF side keeps them. */
void uvs_hist__from_counts(struct uvs_hist *h, const uint32_t *cur,
			   const uint32_t *prev, uint64_t sum);
uint64_t uvs_hist__lower(int idx);
uint64_t uvs_hist__upper(int idx); /* exclusive */
/* Prints a log2 bar chart (bcc style); scale divides values for display. */
void uvs_hist__print_log2(const struct uvs_hist *h, FILE *out,
			  const char *unit, uint64_t scale);

/* ---- the report model (report.c) ---- */
struct uvs_phase_stats {
	struct uvs_hist ns; /* per iteration, where the phase took >= floor */
	uint64_t total_ns;  /* in all timed iterations */
};

/* Where the loop thread was when sampled (the ptrace backend): the phase
 * function nearest the outermost uv_run on its stack. */
enum uvs_sample_state {
	UVS_SP_TIMERS,
	UVS_SP_PENDING,
	UVS_SP_IDLE,
	UVS_SP_PREPARE,
	UVS_SP_POLL_WAIT, /* blocked in the loop's epoll wait */
	UVS_SP_POLL_CB,	  /* in uv__io_poll, running I/O callbacks */
	UVS_SP_CHECK,
	UVS_SP_CLOSE,
	UVS_SP_UNKNOWN,	  /* in uv_run, phase not on the stack (inlined) */
	UVS_SP_OUTSIDE,	  /* no uv_run on the stack (startup, teardown) */
	UVS_SP_NOSTACK,	  /* the stack could not be unwound */
	UVS_SP_NSTATES,
};
extern const char *const uvs_sample_state_names[UVS_SP_NSTATES];
struct uvs_loop_sampling {
	bool on;
	double rate_hz;
	uint64_t samples, missed;
	uint64_t unstopped; /* blocked in the loop's epoll: read from /proc */
	uint64_t n[UVS_SP_NSTATES];
	bool phases_known; /* libuv's phase functions are in its symbols */
	bool inlined[7];   /* phase helper inlined: its samples are unknown */
	double cost_us_p50, cost_us_p99, cost_us_mean; /* thread stopped */
	double unwind_us_p50;
	int threads;	   /* traced */
	bool iterations_counted; /* loop.iterations is libuv's own count */
};
/* Share k/n and its 95% Wilson interval. */
void uvs_share_interval(uint64_t k, uint64_t n, double *share, double *lo,
			double *hi);
struct uvs_report;
struct json_t;
/* The line of a launched program's main, if the report has one. */
struct uvs_loop_report;
void uvs_report__text_main(const struct uvs_loop_report *l, FILE *out);
/* The sampled loop report's text and JSON (report_sampled.c). */
void uvs_report__text_sampled(const struct uvs_report *r, FILE *out);
struct json_t *uvs_report__json_sampled(const struct uvs_report *r);

struct uvs_loop_report {
	uint64_t iterations;	 /* all iterations seen */
	uint64_t phase_iterations; /* iterations with phase times */
	uint64_t busy_ns, wait_ns, wall_ns;
	bool phases_known;	 /* tier A */
	uint64_t phase_floor_ns;
	bool phase_derived[7];	 /* phase timed from its neighbours */
	struct uvs_phase_stats phase[7];
	struct uvs_hist timeout_ms; /* finite requested timeouts */
	uint64_t timeout_infinite, timeout_zero;
	struct uvs_hist wait_ns_h;  /* time waited per iteration */
	uint64_t timed_out, woken, interrupted;
	uint64_t probe_hits, nested_ignored, other_epfd;
	enum { UVS_NOW_UNKNOWN, UVS_NOW_WAITING, UVS_NOW_BUSY } now_state;
	uint64_t now_for_ns; /* how long in now_state, at the report */
	bool now_at_least;   /* in that state since before tracing began */
	/* a launched program's time from its start to its loop's first poll
	 * (its main module's synchronous run), in the report whose window
	 * holds its end; main_ongoing: no poll yet when the report was made */
	bool has_main, main_ongoing;
	uint64_t main_ns;
	struct uvs_loop_sampling sampled; /* the ptrace backend's estimate */
};

enum uvs_exit_reason {
	UVS_EXIT_UNKNOWN,
	UVS_EXIT_DRAINED,
	UVS_EXIT_EXIT,
	UVS_EXIT_SIGNAL,
	UVS_EXIT_UNCAUGHT,
	UVS_EXIT_ABORT,
	UVS_EXIT_OOM,
	UVS_EXIT_RUNNING, /* still running when uvscope stopped watching */
};
#define UVS_EXIT_MAX_FRAMES 48
#define UVS_EXIT_MAX_THREADS 32

struct uvs_exit_report {
	enum uvs_exit_reason reason;
	bool has_code, has_sender;
	int code, signal;
	/* a fatal signal it received from outside and survived (handled),
	 * before it exited with a code; sender says who sent it */
	int handled_signal;
	struct {
		pid_t pid, tid;
		uid_t uid;
		char comm[16];
	} sender;
	char detail[64];     /* "heap" or "kernel" for oom, signal name... */
	char message[512];   /* the error line, or what the runtime printed */
	char js_stack[2048]; /* "    at ..." lines the runtime printed */
	char stack[UVS_EXIT_MAX_FRAMES][160]; /* native frames, innermost first */
	int nstack;
	double at_ms;	     /* when it ended, since tracing began */
	double drained_at_ms; /* main loop ran out of work, or -1 */
	int nthreads;	     /* other threads that exited (workers) */
	struct { pid_t tid; int code; double at_ms; } threads[UVS_EXIT_MAX_THREADS];
	char stderr_tail[2048];
	char last_keeper[320]; /* drained: what kept the loop alive last */
	double last_keeper_ms;	/* when it was last seen */
};

#define UVS_WHY_MAX 512
#define UVS_WHY_LOOPS 16
#define UVS_WHY_SCAN_MAX (1024ull << 20) /* memory scanned for loops */
struct uvs_why_handle {
	uint64_t addr;
	int loop; /* index in loops[]: 0 is the main loop */
	int type, fd, signum, child_pid;
	uint32_t flags;
	int64_t due_ms;
	uint64_t repeat_ms;
	const char *why_not; /* NULL: it keeps the loop alive */
	char type_name[16];
	char detail[256];
	char callback[160];
};
enum { UVS_LOOP_UNKNOWN, UVS_LOOP_WAITING, UVS_LOOP_BUSY };
struct uvs_why_report {
	char profile[256];
	uint64_t loop_addr;
	int nloops, nhandles, keepers;
	bool truncated;
	uint32_t active_reqs;
	struct {
		uint64_t addr;
		pid_t tid;	/* thread waiting on it, 0 if none now */
		int keepers;	/* for loops other than the main one */
		uint32_t active_reqs;
		int state;	/* UVS_LOOP_*: its thread in its poll, or not */
		double busy_ms;	/* busy: since its clock moved (-1: unknown) */
	} loops[UVS_WHY_LOOPS];
	double scanned_mb;
	int nreqs;		/* requests listed (queued for the pool) */
	bool reqs_unlisted;	/* the pool's queue could not be read */
	struct {
		char type[16];	/* fs, getaddrinfo, getnameinfo, work, random */
		char detail[256];
		int loop;
	} reqs[64];
	struct uvs_why_handle handles[UVS_WHY_MAX];
};

/* ---- the thread pool (pool.c fills it) ---- */
#define UVS_POOL_KINDS 48
#define UVS_POOL_SLOWEST 16
#define UVS_POOL_TIMELINE 600
enum uvs_pool_via {
	UVS_VIA_POOL,	  /* queued, run by a worker, done on the loop */
	UVS_VIA_IO_URING, /* an fs op libuv sent to io_uring instead */
	UVS_VIA_LOOP,	  /* a sync fs call, run on the loop thread itself */
};
struct uvs_pool_kind {
	char name[80];	   /* "fs.read", "crypto.pbkdf2", "work my_cb (app)" */
	enum uvs_pool_via via;
	bool slow_io;	   /* libuv's slow-I/O class (DNS) */
	uint64_t count;	   /* completed */
	uint64_t cancelled;
	struct uvs_hist queue_ns; /* submitted -> picked up by a worker */
	struct uvs_hist run_ns;	  /* on the worker (io_uring: in the ring) */
	struct uvs_hist done_ns;  /* worker done -> callback on the loop */
};
struct uvs_pool_task {
	char kind[80];
	double submit_ms; /* since tracing began */
	double queue_ms, run_ms, done_ms;
	pid_t worker;
};
struct uvs_pool_tick {
	double t_s;	   /* start, since tracing began */
	double len_s;
	uint32_t submitted, completed, queue_max; /* while traced */
	double covered;	   /* share of the tick the probes were on */
	double busy_mean;  /* threads, while traced */
	double saturated;  /* share of the traced time */
};
struct uvs_pool_report {
	int threads;	   /* libuv's nthreads (UV_THREADPOOL_SIZE), 0 if
			    * the pool was never started */
	int threads_seen;  /* workers that ran a task */
	int slow_io_limit; /* workers allowed on slow I/O at once */
	uint64_t submitted, completed, cancelled;
	uint64_t queued_now, running_now; /* at the end of the report */
	double oldest_queued_ms;	  /* how long the oldest has waited */
	uint64_t max_queue_depth, max_slow_queue_depth;
	double mean_queue_depth, mean_busy, saturation; /* over the run */
	double sampled_hz;	  /* no eBPF: state read at this rate, 0 if
				   * every task was traced */
	uint64_t samples;
	uint64_t torn;		  /* queue reads torn by a change under every
				   * retry (the previous depth was kept) */
	bool windowed;		  /* over budget: probes on in windows */
	double traced_share;	  /* of the time, probes on (windows) */
	uint64_t windows;
	uint64_t probe_budget;	  /* hits/s; 0 with --exact */
	uint64_t cut;		  /* in flight when a window closed */
	uint64_t unmatched_start; /* started before tracing began */
	uint64_t unmatched_done;  /* done, never seen submitted */
	uint64_t sync_on_loop;	  /* sync fs calls on a loop thread */
	uint64_t io_uring_ops;
	bool io_uring;		  /* the process has an io_uring ring */
	int nkinds;
	struct uvs_pool_kind kinds[UVS_POOL_KINDS];
	bool kinds_truncated;
	int nslowest;
	struct uvs_pool_task slowest[UVS_POOL_SLOWEST];
	int ntimeline;
	struct uvs_pool_tick timeline[UVS_POOL_TIMELINE];
};

/* ---- what blocked the loop thread (blocked.c fills it) ---- */
#define UVS_BLK_EPISODES 256
#define UVS_BLK_TOP 8
struct uvs_blocked_episode {
	double start_ms;	/* since tracing began */
	double duration_ms, on_cpu_ms, off_cpu_ms;
	/* what it lasted at least and at most: the same as duration_ms where
	 * measured (eBPF); by samples, from its first to its last busy
	 * sample, and from the sample before it to the one after it */
	double duration_lo_ms, duration_hi_ms;
	char phase[16];		/* timers ... close, "main" or "unknown" */
	uint32_t samples;	/* on-CPU samples */
	double microtasks;	/* share of samples under RunMicrotasks */
	pid_t waker_pid;	/* woke it from its longest off-CPU wait */
	char waker_comm[16];
	bool ongoing;		/* still busy as tracing ended: so far */
	int ntop;
	char top_frames[UVS_BLK_TOP][160]; /* heaviest stack, leaf first */
};
struct uvs_stacks;
struct uvs_blocked_report {
	uint64_t threshold_ns;
	unsigned sample_hz;
	bool kernel;			/* kernel frames off CPU */
	uint64_t count;			/* episodes seen */
	uint64_t blocked_ns, on_cpu_ns, off_cpu_ns;
	struct uvs_hist duration_ns;
	int nepisodes;			/* kept, up to UVS_BLK_EPISODES */
	struct uvs_blocked_episode episodes[UVS_BLK_EPISODES];
	uint64_t samples;		/* in episodes */
	uint64_t truncated;		/* stacks cut at UVS_BLK_FRAMES */
	uint64_t no_phase;		/* stacks that did not reach a phase */
	uint64_t unwind_failed;		/* the frame-pointer walk failed */
	uint64_t scanned;		/* caller restored from the stack */
	/* Folded stacks of all episodes, rooted at their phase; on CPU one
	 * count a sample, off CPU one count a sample period of time, under
	 * an "off-cpu" frame. Owned by the report: uvs_report__fini(). */
	struct uvs_stacks *stacks;
};

struct uvs_env {
	char kernel[128];
	char cpu_model[128];
	char recorded_at[32]; /* UTC, ISO 8601 */
};

struct uvs_report {
	const char *command; /* "loop" or "record" */
	struct uvs_env env;
	pid_t pid;
	char exe[4096], runtime[32], runtime_version[32], libuv_version[32];
	char backend[32];
	double duration_s;
	double attach_ms; /* uvscope start to probes in place */
	pid_t loop_tid;	  /* the loop's thread */
	uint64_t lost_events;
	bool target_exited;
	double interval_start_s; /* with -i: offset of this interval */
	/* CLOCK_MONOTONIC when tracing began (s; 0: not said): lines the
	 * report's times up with this machine's other monotonic clocks (a
	 * program's own, perf's, the kernel's) */
	double start_monotonic_s;
	struct uvs_loop_report loop;
	bool has_loop, has_exit, has_why, has_pool, has_blocked;
	struct uvs_pool_report pool;
	struct uvs_blocked_report blocked;
	struct uvs_exit_report exit;
	struct uvs_why_report why;
};

extern const char *const uvs_phase_names[7];
/* libuv's functions, once: uv_run, then the one that runs each phase
 * (uvs_uv_run_fns[1 + phase]); a build may inline some (pending, close). */
extern const char *const uvs_uv_run_fns[8];
const char *uvs_exit_reason_name(enum uvs_exit_reason r);
void uvs_report__init(struct uvs_report *r, const char *command,
		      const struct uvs_target *t, const char *backend);
void uvs_report__print_text(const struct uvs_report *r, FILE *out);
/* Frees what the report owns (blocked stacks); the struct stays. */
void uvs_report__fini(struct uvs_report *r);
/* Returns a new jansson object the caller must json_decref(). */
void uvs_report__print_pool_tick(const struct uvs_pool_tick *k, bool header,
				 FILE *out);
struct json_t;
struct json_t *uvs_report__to_json(const struct uvs_report *r);
int uvs_report__print_json(const struct uvs_report *r, FILE *out);
/* Reads a uvscope/1 document back into the model (report_read.c). */
int uvs_report__read(const char *file, struct uvs_report *r);
/* The same from memory; name is used in messages. */
int uvs_report__parse(const char *name, const char *buf, size_t len,
		      struct uvs_report *r);

/* ---- comparing runs (check.c) ---- */
#define UVS_CHECK_MAX_BASE 32
enum uvs_check_verdict {
	UVS_CHECK_OK,
	UVS_CHECK_REGRESSION,
	UVS_CHECK_IMPROVED,
	UVS_CHECK_INFO,	   /* compared, never a failure (poll wait) */
	UVS_CHECK_SKIPPED, /* too few samples for this quantile */
};
struct uvs_check_row {
	char name[48], unit[8];
	double base;		/* median of the baselines */
	double base_min, base_max, noise;
	double run, change;	/* change relative to base */
	bool from_zero;		/* base 0, run not: change is no ratio */
	/* What is compared: the least the run's value may be and the most
	 * the baselines' may be, by the rank of a quantile or the margin of
	 * a threshold; the same as run and base_max where neither applies. */
	double run_low, base_high;
	double limit;		/* above this, a regression */
	enum uvs_check_verdict verdict;
};
struct uvs_check_opts {
	double max_regression;	/* relative, 0.10 = 10% */
	double min_change_ms;	/* absolute floor */
};
struct uvs_check {
	struct uvs_check_opts opts;
	struct uvs_check_row *rows; /* nrows of them: uvs_check__fini() */
	int nrows, cap, regressions;
};
/* 0, -EINVAL (number of baselines) or -ENOMEM; rows are kept until
 * uvs_check__fini(). */
int uvs_check__compare(struct uvs_check *c,
		       const struct uvs_report *const *base, int nb,
		       const struct uvs_report *run);
void uvs_check__fini(struct uvs_check *c);
const char *uvs_check__verdict(enum uvs_check_verdict v);

/* ---- what keeps a loop alive, from memory (why.c) ---- */
/* Reads len bytes of pid's memory (process_vm_readv); 0 or -errno. */
int uvs_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len);
#define UVS_WHY_NAMES 0x1	 /* name callbacks (reads the ELF files) */
#define UVS_WHY_ALL_LOOPS 0x2 /* scan memory for other loops (~100 ms) */
#define UVS_WHY_REQUESTS 0x4	 /* list requests queued for the pool */
/* Walks the main loop's handles, and with the flags above more; refuses
 * an unknown layout. */
int uvs_why__snapshot(struct uvs_target *t, struct uvs_why_report *out,
		      unsigned flags);

/* ---- the eBPF exit backend (exit.c) ---- */
struct uvs_exit;
int uvs_exit__open(struct uvs_target *t, struct uvs_exit **out);
/* Takes events for up to timeout_ms. */
int uvs_exit__poll(struct uvs_exit *x, int timeout_ms);
/* The process exec'd: the program watched has ended (the process has
 * not; /proc cannot tell an exec from a thread that is not the leader
 * from an exit for a moment), and the watch ends with it. */
bool uvs_exit__execd(const struct uvs_exit *x);
/* Decides why the target ended. wait_status is the status from waitpid
 * when uvscope launched it, else NULL; running says it has not ended. */
void uvs_exit__finish(struct uvs_exit *x, const int *wait_status,
		      bool running, struct uvs_report *r);
void uvs_exit__describe(const struct uvs_exit *x, FILE *out);
void uvs_exit__close(struct uvs_exit *x);
/* Has the backend read the loop's state (its active handles and
 * requests) as the process exits: the loop that runs, found by `why`. */
void uvs_exit__set_loop(struct uvs_exit *x, uint64_t loop);

/* ---- why a process ended, from either backend's evidence
 * (exit_reason.c) ---- */
struct uvs_exit_frames {
	bool seen;
	int nframes;
	char frames[UVS_EXIT_MAX_FRAMES][160];
};
struct uvs_exit_sender {
	bool seen;
	pid_t pid, tid;
	uid_t uid;
	char comm[16];
};
enum uvs_loop_at_exit {
	UVS_LOOP_UNREAD, /* no loop known, or not read */
	UVS_LOOP_EMPTY,	 /* no active handle nor request: drained */
	UVS_LOOP_ALIVE,	 /* work left: the program ended it */
};
struct uvs_exit_evidence {
	const int *status;	/* the wait status, where known */
	int fatal_sig;		/* else: a fatal signal delivered, or 0 */
	struct uvs_exit_frames deliver; /* its stack (and its signal) */
	int deliver_sig;
	struct uvs_exit_sender sender; /* of the signal that killed it */
	const char *oom_kill;	/* the kernel's OOM killer took it: how known */
	bool heap_oom_stack;	/* V8's OOM handler under the abort */
	int handled_sig;	/* a fatal signal it handled, and from whom */
	struct uvs_exit_sender handled_sender;
	struct uvs_exit_frames exit_group; /* the exit's own stack */
	bool exit_group_seen;
	int exit_group_code;
	struct uvs_exit_frames runtime_exit; /* the runtime's exit, if seen */
	bool uncaught_stack;	/* Node's uncaught-exception path on it */
	const char *tail;	/* what it wrote to stderr (may be "") */
	const char *tail_unreadable; /* why the tail was not seen, or NULL */
	bool loop_returned;	/* uv_run returned 0 on the main loop */
	bool loop_stopped;	/* uv_stop on it with work in it (eBPF) */
	unsigned stop_handles, stop_reqs; /* that work */
	enum uvs_loop_at_exit loop;
};
/* Decides reason, code, signal, sender, message and stack of o (at_ms,
 * threads and the tail are the caller's). The order, for both backends:
 * an OOM kill; a fatal signal (abort, heap OOM); the code, with a fatal
 * signal handled before it; an uncaught exception; the runtime's exit;
 * a drained loop (code 0 and nothing left in it); else an exit. */
void uvs_exit__classify(const struct uvs_exit_evidence *ev,
			struct uvs_exit_report *o);
/* The signal that ended it: the wait status's, else the fatal signal
 * delivered (status and fatal_sig set); 0 if none. */
int uvs_exit__signal(const struct uvs_exit_evidence *ev);
/* What the runtime printed on stderr, read by both backends: Node's
 * uncaught-exception text (message and JS frames into o; false if the
 * tail has none), V8's "FATAL ERROR:" line (as o->message). */
bool uvs_exit__uncaught(const char *tail, struct uvs_exit_report *o);
bool uvs_exit__fatal_line(const char *tail, struct uvs_exit_report *o);

/* ---- the eBPF loop backend (loop.c) ---- */
struct uvs_loop_opts {
	size_t sz;
	bool exact;		 /* phase probes on every iteration */
	uint64_t probe_budget;	 /* phase-probe hits per second when not exact */
	pid_t tid;		 /* loop thread; 0 = the process's main thread */
	uint64_t phase_floor_ns; /* shortest phase run kept in distributions */
};
struct uvs_loop;
int uvs_loop__open(struct uvs_target *t, const struct uvs_loop_opts *opts,
		   struct uvs_loop **out);
/* Consumes events for up to timeout_ms; adjusts the phase-probe window. */
int uvs_loop__poll(struct uvs_loop *l, int timeout_ms);
/* Moves what was collected since the last call into r->loop. */
void uvs_loop__collect(struct uvs_loop *l, struct uvs_report *r);
void uvs_loop__describe(const struct uvs_loop *l, FILE *out);
void uvs_loop__close(struct uvs_loop *l);

/* ---- the eBPF thread-pool backend (pool.c) ---- */
struct uvs_pool_opts {
	size_t sz;
	double tick_s;		/* timeline resolution (default 1 s) */
	uint64_t probe_budget;	/* uprobe hits per second (default 2000) */
	bool exact;		/* probes on all the time, whatever they cost */
	bool sampled;		/* no eBPF: read the pool's state from memory */
	double sample_hz;	/* ... this often (default 100) */
};
struct uvs_pool;
/* Fails (naming what was looked for) where libuv's internal symbols or a
 * layout profile are missing. */
int uvs_pool__open(struct uvs_target *t, const struct uvs_pool_opts *opts,
		   struct uvs_pool **out);
/* Takes the events of the last timeout_ms. Sampled (no eBPF): reads the
 * pool's state whenever one is due within timeout_ms (0: only if due). */
int uvs_pool__poll(struct uvs_pool *p, int timeout_ms);
/* Sampled: when the next read is due (uvs_now_ns's clock); 0 otherwise. */
uint64_t uvs_pool__due_ns(const struct uvs_pool *p);
/* Fills r->pool with what was seen since the last collect (the timeline
 * and tasks in flight carry over). */
void uvs_pool__collect(struct uvs_pool *p, struct uvs_report *r);
/* The run's timeline so far (ticks of opts.tick_s, coarsened to fit
 * UVS_POOL_TIMELINE); the last tick may be partial. Returns how many. */
int uvs_pool__timeline(struct uvs_pool *p, struct uvs_pool_tick *out, int max);
void uvs_pool__describe(const struct uvs_pool *p, FILE *out);
void uvs_pool__close(struct uvs_pool *p);

/* ---- the eBPF blocked-thread backend (blocked.c) ---- */
struct uvs_blocked_opts {
	size_t sz;
	uint64_t threshold_ns;	/* shortest busy period reported (20 ms) */
	unsigned sample_hz;	/* on-CPU sampling rate (997) */
	bool kernel;		/* kernel frames for off-CPU stacks */
	pid_t tid;		/* loop thread; 0 = the main thread */
	bool ptrace;		/* sample with ptrace instead (no eBPF) */
	struct uvs_pt *pt;	/* with ptrace: read this sampler's samples
				 * (its owner polls and closes it; record) */
};
struct uvs_pt;
struct uvs_blocked;
int uvs_blocked__open(struct uvs_target *t, const struct uvs_blocked_opts *o,
		      struct uvs_blocked **out);
int uvs_blocked__poll(struct uvs_blocked *b, int timeout_ms);
/* Moves the episodes and stacks seen since the last call into r. */
int uvs_blocked__collect(struct uvs_blocked *b, struct uvs_report *r);
/* With ptrace: true once the target ended (*status its wait status when
 * it was reaped here, as the tracer must for a launched one). */
bool uvs_blocked__ended(const struct uvs_blocked *b, bool *reaped,
			int *status);
void uvs_blocked__describe(const struct uvs_blocked *b, FILE *out);
void uvs_blocked__close(struct uvs_blocked *b);

#endif
