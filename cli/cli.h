/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef UVS_CLI_H
#define UVS_CLI_H

#include <signal.h>
#include "uvscope.h"

#define UVS_EXIT_ERR 2

/* What program a process runs, to tell an exec: the entry point and the
 * address of the 16 random bytes of its auxiliary vector (ASLR moves them
 * at every exec), those bytes (new at every exec, ASLR or not) and the
 * inode of /proc/PID/exe. */
struct uvs_cli_image {
	bool known;
	bool rnd_known; /* the bytes were readable */
	uint64_t entry, random;
	unsigned char rnd[16];
	dev_t dev;
	ino_t ino;
};

/* Options every tracing subcommand takes. */
struct uvs_cli {
	pid_t pid;
	char **cmd;		/* argv after "--" */
	double duration;	/* 0 = until Ctrl-C or the target ends */
	double interval;	/* 0 = one report at the end */
	bool json;
	const char *backend;	/* auto | ebpf | ptrace */
	pid_t tid;
	/* filled by uvs_cli__start */
	struct uvs_target *target;
	pid_t child;
	int go_fd;		/* write end of the child's start pipe */
	int exec_err_fd;	/* read end: errno if exec failed */
	int child_status;
	bool child_reaped;
	/* the ptrace backend (ptrace.h) */
	bool ptrace_ok;		/* the subcommand has one */
	bool use_ptrace;	/* chosen by uvs_cli__backend_check */
	bool reads_only;	/* its ptrace backend only reads memory
				 * (pool): no tracer reaps a launched child,
				 * uvscope does */
	/* the program traced, read at attach (uvs_cli__start, or once a
	 * launched one has exec'd), to see it exec another */
	struct uvs_cli_image image;
	uint64_t image_checked_ns;
	bool execd;		  /* seen by uvs_cli__execd */
	char exec_path[4096];	  /* what it exec'd */
};

extern volatile sig_atomic_t uvs_cli_stop;
extern uint64_t uvs_cli_t0; /* when uvscope started */

/* Parses a common option; returns 1 if consumed (and *i advanced past
 * its argument), 0 if not common, -1 on error (message printed). */
int uvs_cli__common_opt(struct uvs_cli *c, int argc, char **argv, int *i);
int uvs_cli__check_target(const struct uvs_cli *c, const char *cmd);
void uvs_cli__signals(void);
/* Finds the target: discovers the pid, or forks the command stopped before
 * exec. Returns 0 or exits with an error message. */
int uvs_cli__start(struct uvs_cli *c);
/* Lets a launched command run (after probes are attached). */
int uvs_cli__release(struct uvs_cli *c);
/* The target runs another executable than the one uvscope read (an exec
 * since): true, with its path in c->exec_path. */
bool uvs_cli__exe_changed(struct uvs_cli *c);
void uvs_cli__sampler_priority(struct uvs_cli *c);
/* True while the target runs; reaps a launched child. */
bool uvs_cli__target_alive(struct uvs_cli *c);
/* The ptrace tracer waits for its tracees, so it reaps a launched child
 * itself: with reaped, status is the child's exit status. */
void uvs_cli__reaped(struct uvs_cli *c, bool reaped, int status);
/* Whether the target has exec'd since attach (another program, or the
 * same one afresh: either way not the process the trace began on): reads
 * its auxiliary vector, cheaply, and remembers a yes (c->execd, with
 * c->exec_path). False when it cannot tell (the target is gone). */
bool uvs_cli__execd(struct uvs_cli *c);
/* After a poll: true when tracing is over (Ctrl-C, the target ended
 * (then *exited), it exec'd (c->execd; *exited stays false), or -d ran
 * out since t0). */
bool uvs_cli__done(struct uvs_cli *c, uint64_t t0, uint64_t now,
		   bool *exited);
/* The report of a run whose probes are in place: *t0 is now, attach_ms
 * the time since uvscope started (said with -v). NULL (said) when out of
 * memory; the caller frees it. */
struct uvs_report *uvs_cli__new_report(const struct uvs_cli *c,
				       const char *command,
				       const char *backend, uint64_t *t0);
/* After the report is out: says so when a pid being traced ended ("pid N
 * <how> after S s"; how NULL: not worth a line) or exec'd ("pid N exec'd
 * PATH; trace ended"), and returns uvscope's exit status (the launched
 * program's, else 0), the child finished (a launched program that
 * exec'd is ended as when -d runs out: status 0). */
int uvs_cli__end(struct uvs_cli *c, bool exited, const char *how,
		 double secs);
/* Ends a launched child still running; returns the exit status to use. */
int uvs_cli__finish(struct uvs_cli *c);
/* Picks the backend: ebpf, or ptrace (c->use_ptrace) when forced or, with
 * auto, when eBPF is unavailable and the subcommand has one. */
int uvs_cli__backend_check(struct uvs_cli *c);

/* Numbers as users type them. Each reads the whole of s (no text after
 * the number, no blanks before it, no sign where none makes sense),
 * refuses NaN, infinities and what is out of [lo, hi], and returns 0 with
 * *out set, or -1 after one error line that names what was asked for
 * ("bad duration '5x': ...") and quotes s. */
#define UVS_CLI_PID_MAX 4194304 /* the kernel's PID_MAX_LIMIT */
/* A length of time, in seconds: a number in unit (1: seconds, 0.001:
 * milliseconds) or with "s" or "ms" after it. */
int uvs_cli__parse_time(const char *what, const char *s, double unit,
			double lo, double hi, double *out);
int uvs_cli__parse_seconds(const char *what, const char *s, double lo,
			   double hi, double *out);
/* Digits only. */
int uvs_cli__parse_uint(const char *what, const char *s,
			unsigned long long lo, unsigned long long hi,
			unsigned long long *out);
/* A process or thread id, 1 to UVS_CLI_PID_MAX. */
int uvs_cli__parse_pid(const char *what, const char *s, pid_t *out);
/* A number, with unit after it or not (NULL: nothing after it). */
int uvs_cli__parse_double(const char *what, const char *s, const char *unit,
			  double lo, double hi, double *out);

/* A file to write (-o, --flame, --folded, --speedscope, --junit), opened
 * before anything is attached, so that a path that cannot be written is
 * said at once and not after the trace. What is written goes to a
 * temporary file beside it (.NAME.uvscope-XXXXXX), renamed over it once
 * whole: an error, or Ctrl-C twice, leaves neither an empty file nor half
 * of one, nor the temporary. A device or pipe (/dev/stdout) is written as
 * it is; a symbolic link, through. */
#define UVS_CLI_OUTS 8 /* open at once */
struct uvs_cli_out {
	const char *path; /* as given; NULL: not asked for */
	FILE *f;	  /* NULL when not asked for or closed */
	int slot;	  /* its temporary file's, or -1 */
	char dest[4096];  /* what the rename replaces */
};
/* path NULL: nothing to write (o->f stays NULL). 0, or -1 (said). */
int uvs_cli__out_open(struct uvs_cli_out *o, const char *path);
/* Puts the file in place, unless err (the writer's result, its message
 * in uvs_errmsg()) is not 0: then it is discarded. 0, or -1 (said). */
int uvs_cli__out_close(struct uvs_cli_out *o, int err);
/* Drops an output not written; NULL-safe, may be called again. */
void uvs_cli__out_discard(struct uvs_cli_out *o);
/* Removes every temporary left (main, after the subcommand). */
void uvs_cli__out_cleanup(void);

/* A subcommand's own option at argv[*i]: 1 if consumed (advance *i past
 * its value), 0 if not its own, -1 on error (message printed). */
typedef int (*uvs_cli_opt_fn)(struct uvs_cli *c, int argc, char **argv,
			      int *i, void *ctx);
/* Parses a tracing subcommand's command line: "--", -h (help printed,
 * returns 1), the subcommand's options, the common ones, then checks the
 * target. 0 to go on, -1 on error. */
int uvs_cli__parse(struct uvs_cli *c, int argc, char **argv, const char *cmd,
		   void (*help)(FILE *out), uvs_cli_opt_fn extra, void *ctx);
/* Signals, libbpf's log, backend choice, and the target. */
int uvs_cli__prepare(struct uvs_cli *c);
/* The one line for a backend that failed to attach. */
void uvs_cli__attach_failed(struct uvs_cli *c);
/* libbpf's messages: silent unless -v (debug ones with -vv). */
void uvs_cli__libbpf_log(void);

int cmd_loop(int argc, char **argv);
int cmd_exit(int argc, char **argv);
int cmd_pool(int argc, char **argv);
int cmd_blocked(int argc, char **argv);
/* Writes r's blocked stacks to the files opened in out: flame graph SVG,
 * folded, speedscope (those whose f is NULL were not asked for), closing
 * each: 0, or -1 (said) with every one discarded. */
int uvs_cli__write_stacks(const struct uvs_report *r,
			  struct uvs_cli_out out[3]);
int cmd_why(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_flame(int argc, char **argv);

#endif
