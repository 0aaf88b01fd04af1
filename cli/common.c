// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Target selection, launching, signals: what every subcommand shares. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdarg.h>
#include <bpf/libbpf.h>
#include "cli.h"
#include "ptrace.h"

volatile sig_atomic_t uvs_cli_stop;
static volatile sig_atomic_t uvs__child_pid;

/* The temporary files of the outputs being written (uvs_cli__out_open),
 * owned here so that an exit by a second signal, or an error path that
 * forgot one, removes them: a slot is in use when its path is not "". */
static char uvs__tmp[UVS_CLI_OUTS][4096];

static void uvs__on_signal(int sig)
{
	int i;

	/* Probes are fds: exiting releases every one of them. */
	if (uvs_cli_stop) {
		for (i = 0; i < UVS_CLI_OUTS; i++)
			if (uvs__tmp[i][0])
				unlink(uvs__tmp[i]);
		_exit(128 + sig);
	}
	uvs_cli_stop = sig;
	if (uvs__child_pid > 0)
		kill(uvs__child_pid, sig);
}

/* What the signals uvscope changes were when it started (the shell's), so
 * that a launched program gets them back: an ignored signal stays ignored
 * across exec (nohup's SIGHUP, a background job's SIGINT), and uvscope's
 * own SIG_IGN of SIGPIPE would too. */
static const int uvs__sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD};
static struct sigaction uvs__sig_orig[5];
static bool uvs__sig_saved[5];

void uvs_cli__signals(void)
{
	struct sigaction sa;
	size_t i;

	for (i = 0; i < 5; i++)
		uvs__sig_saved[i] = !sigaction(uvs__sigs[i], NULL,
					       &uvs__sig_orig[i]);
	/* Installed unconditionally: a shell that starts us in the
	 * background hands us SIGINT ignored. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = uvs__on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
	/* An inherited SIG_IGN of SIGCHLD has the kernel reap a launched
	 * program at once: its status lost, waitpid never saw it end. */
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
}

/* The number at the start of s, by strtod, with where it ends; false for
 * no number, NaN, an infinity, or out of double's range. Blanks before it
 * (which strtod skips) are refused: what was typed is what is read. */
static bool uvs__strtod(const char *s, double *v, char **end)
{
	if (!*s || isspace((unsigned char)*s))
		return false;
	errno = 0;
	*v = strtod(s, end);
	return *end != s && !errno && isfinite(*v);
}

int uvs_cli__parse_time(const char *what, const char *s, double unit,
			double lo, double hi, double *out)
{
	const char *like = unit < 1 ? "milliseconds, like 20, 20ms or 0.5s"
				    : "seconds, like 10, 0.5 or 500ms";
	double v;
	char *end;

	if (!uvs__strtod(s, &v, &end)) {
		uvs_error("bad %s '%s': %s", what, s, like);
		return -1;
	}
	if (!strcmp(end, "ms"))
		v /= 1000;
	else if (!strcmp(end, "s"))
		;
	else if (!*end)
		v *= unit;
	else {
		uvs_error("bad %s '%s': %s", what, s, like);
		return -1;
	}
	if (v < lo || v > hi) {
		if (unit < 1)
			uvs_error("bad %s '%s': %.15g to %.15g ms", what, s,
				  lo * 1000, hi * 1000);
		else
			uvs_error("bad %s '%s': %.15g to %.15g s", what, s, lo,
				  hi);
		return -1;
	}
	*out = v;
	return 0;
}

int uvs_cli__parse_seconds(const char *what, const char *s, double lo,
			   double hi, double *out)
{
	return uvs_cli__parse_time(what, s, 1, lo, hi, out);
}

int uvs_cli__parse_uint(const char *what, const char *s,
			unsigned long long lo, unsigned long long hi,
			unsigned long long *out)
{
	unsigned long long v;
	char *end;

	/* strtoull takes "-1" as 2^64-1, and skips blanks: digits only */
	if (!isdigit((unsigned char)*s)) {
		uvs_error("bad %s '%s': a whole number, %llu to %llu", what, s,
			  lo, hi);
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi) {
		uvs_error("bad %s '%s': a whole number, %llu to %llu", what, s,
			  lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

int uvs_cli__parse_pid(const char *what, const char *s, pid_t *out)
{
	unsigned long long v;
	char *end;

	/* the kernel's PID_MAX_LIMIT: larger ones were cut to pid_t and
	 * named another process */
	errno = 0;
	v = isdigit((unsigned char)*s) ? strtoull(s, &end, 10) : 0;
	if (!v || errno || *end || v > UVS_CLI_PID_MAX) {
		uvs_error("bad %s '%s': a process or thread id, 1 to %d", what,
			  s, UVS_CLI_PID_MAX);
		return -1;
	}
	*out = (pid_t)v;
	return 0;
}

int uvs_cli__parse_double(const char *what, const char *s, const char *unit,
			  double lo, double hi, double *out)
{
	double v;
	char *end;

	if (!uvs__strtod(s, &v, &end) ||
	    (*end && (!unit || strcmp(end, unit))) || v < lo || v > hi) {
		uvs_error("bad %s '%s': a number%s%s%s, %.15g to %.15g", what,
			  s, unit ? " (optionally with '" : "",
			  unit ? unit : "", unit ? "')" : "", lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

int uvs_cli__out_open(struct uvs_cli_out *o, const char *path)
{
	const char *slash, *base, *real = o->dest;
	struct stat st;
	char *tmp;
	mode_t mask;
	int fd, slot, n;

	memset(o, 0, sizeof(*o));
	o->slot = -1;
	o->path = path;
	if (!path)
		return 0;
	if (!*path) {
		uvs_error("cannot write '': no file name");
		return -1;
	}
	if (!stat(path, &st)) {
		if (S_ISDIR(st.st_mode)) {
			uvs_error("cannot write %s: %s", path, strerror(EISDIR));
			return -1;
		}
		if (access(path, W_OK)) {
			uvs_error("cannot write %s: %s", path, strerror(errno));
			return -1;
		}
		/* a device, a pipe (/dev/stdout, >(cmd)): written as it is */
		if (!S_ISREG(st.st_mode)) {
			o->f = fopen(path, "we");
			if (!o->f) {
				uvs_error("cannot write %s: %s", path,
					  strerror(errno));
				return -1;
			}
			return 0;
		}
		/* through a symbolic link to the file it names */
		if (!realpath(path, o->dest)) {
			uvs_error("cannot write %s: %s", path, strerror(errno));
			return -1;
		}
	} else if (errno != ENOENT) {
		uvs_error("cannot write %s: %s", path, strerror(errno));
		return -1;
	} else {
		snprintf(o->dest, sizeof(o->dest), "%s", path);
	}
	for (slot = 0; slot < UVS_CLI_OUTS && uvs__tmp[slot][0]; slot++)
		;
	if (slot == UVS_CLI_OUTS) {
		uvs_error("cannot write %s: more than %d output files", path,
			  UVS_CLI_OUTS);
		return -1;
	}
	/* beside it, so that the rename is within one file system */
	tmp = uvs__tmp[slot];
	slash = strrchr(real, '/');
	base = slash ? slash + 1 : real;
	n = snprintf(tmp, sizeof(uvs__tmp[0]), "%.*s.%s.uvscope-XXXXXX",
		     (int)(base - real), real, base);
	if (n >= (int)sizeof(uvs__tmp[0])) {
		tmp[0] = '\0';
		uvs_error("cannot write %s: %s", path, strerror(ENAMETOOLONG));
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		tmp[0] = '\0';
		uvs_error("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	/* the mode the file has, or would have had from fopen */
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, !stat(real, &st) ? st.st_mode & 07777 : 0666 & ~mask))
		uvs_debug("chmod %s: %s", tmp, strerror(errno));
	o->f = fdopen(fd, "w");
	if (!o->f) {
		uvs_error("cannot write %s: %s", path, strerror(errno));
		close(fd);
		unlink(tmp);
		tmp[0] = '\0';
		return -1;
	}
	o->slot = slot;
	return 0;
}

int uvs_cli__out_close(struct uvs_cli_out *o, int err)
{
	char *tmp = o->slot >= 0 ? uvs__tmp[o->slot] : NULL;
	int e = 0;

	if (!o->f)
		return 0;
	if (fflush(o->f) || ferror(o->f))
		e = errno ? errno : EIO;
	if (fclose(o->f) && !e)
		e = errno;
	o->f = NULL;
	if (!err && !e && tmp && rename(tmp, o->dest))
		e = errno;
	if (tmp) {
		if (err || e)
			unlink(tmp);
		tmp[0] = '\0';
		o->slot = -1;
	}
	if (err || e) {
		uvs_error("cannot write %s: %s", o->path,
			  err ? uvs_errmsg() : strerror(e));
		return -1;
	}
	return 0;
}

void uvs_cli__out_discard(struct uvs_cli_out *o)
{
	if (!o || !o->f)
		return;
	fclose(o->f);
	o->f = NULL;
	if (o->slot >= 0) {
		unlink(uvs__tmp[o->slot]);
		uvs__tmp[o->slot][0] = '\0';
		o->slot = -1;
	}
}

void uvs_cli__out_cleanup(void)
{
	int i;

	for (i = 0; i < UVS_CLI_OUTS; i++) {
		if (uvs__tmp[i][0])
			unlink(uvs__tmp[i]);
		uvs__tmp[i][0] = '\0';
	}
}

int uvs_cli__common_opt(struct uvs_cli *c, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;

#define NEED_VAL                                                        \
	do {                                                            \
		if (!val) {                                             \
			uvs_error("option %s needs a value", a);   \
			return -1;                                      \
		}                                                       \
		(*i)++;                                                 \
	} while (0)

	if (!strcmp(a, "-p") || !strcmp(a, "--pid")) {
		NEED_VAL;
		return uvs_cli__parse_pid("pid", val, &c->pid) ? -1 : 1;
	}
	if (!strcmp(a, "--tid")) {
		NEED_VAL;
		return uvs_cli__parse_pid("tid", val, &c->tid) ? -1 : 1;
	}
	if (!strcmp(a, "-d") || !strcmp(a, "--duration")) {
		NEED_VAL;
		if (uvs_cli__parse_seconds("duration", val, 0.001, 1e7,
					   &c->duration))
			return -1;
		return 1;
	}
	if (!strcmp(a, "-i") || !strcmp(a, "--interval")) {
		NEED_VAL;
		if (uvs_cli__parse_seconds("interval", val, 0.05, 1e7,
					   &c->interval))
			return -1;
		return 1;
	}
	if (!strcmp(a, "--backend")) {
		NEED_VAL;
		if (strcmp(val, "auto") && strcmp(val, "ebpf") &&
		    strcmp(val, "ptrace")) {
			uvs_error("bad backend '%s': auto, ebpf or ptrace", val);
			return -1;
		}
		c->backend = val;
		return 1;
	}
	if (!strcmp(a, "--json")) {
		c->json = true;
		return 1;
	}
	if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
		uvs_verbose++;
		return 1;
	}
#undef NEED_VAL
	return 0;
}

int uvs_cli__check_target(const struct uvs_cli *c, const char *cmd)
{
	if (c->pid && c->cmd) {
		uvs_error("give either -p PID or -- COMMAND, not both");
		return -1;
	}
	if (!c->pid && !c->cmd) {
		uvs_error("no target: give -p PID or -- COMMAND (see "
			       "uvscope %s --help)", cmd);
		return -1;
	}
	if (c->tid && c->cmd) {
		uvs_error("--tid names a thread of a running process (-p PID); "
			  "a launched program's threads do not exist yet");
		return -1;
	}
	return 0;
}

/* --tid is one of the target's threads, or refused before anything is
 * attached: a thread of no one would be watched, silently, for nothing. */
static int uvs__check_tid(const struct uvs_cli *c)
{
	char path[64];

	if (!c->tid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d", c->target->pid,
		 c->tid);
	if (!access(path, F_OK))
		return 0;
	uvs_error("--tid %d is not a thread of pid %d (its threads are in "
		  "/proc/%d/task)", c->tid, c->target->pid, c->target->pid);
	return -1;
}

int uvs_cli__backend_check(struct uvs_cli *c)
{
	struct uvs_features f;
	bool ptrace = c->backend && !strcmp(c->backend, "ptrace");
	bool ebpf = c->backend && !strcmp(c->backend, "ebpf");

	uvs_features__probe(&f);
	if (uvs_verbose)
		uvs_features__print(&f, stderr);
	if (ptrace && !c->ptrace_ok) {
		uvs_error("the ptrace backend does not cover this subcommand "
			  "yet; use --backend ebpf");
		return -1;
	}
	if (ptrace) {
		c->use_ptrace = true;
		uvs_debug("backend: ptrace (chosen by --backend)");
		return 0;
	}
	if (!uvs_features__ebpf_ok(&f)) {
		if (ebpf || !c->ptrace_ok) {
			uvs_error("eBPF unavailable: %s", f.why_not);
			return -1;
		}
		c->use_ptrace = true;
		uvs_debug("backend: ptrace (chosen by feature probes: eBPF "
			  "unavailable: %s)", f.why_not);
		return 0;
	}
	uvs_debug("backend: ebpf (chosen by %s)",
		  ebpf ? "--backend" : "feature probes");
	return 0;
}

/* A package manager's runner (npm, npx, yarn, pnpm): it runs the
 * program in a child process of its own (npm run: sh -c ..., then node),
 * and would be the process traced. Its name, or NULL. */
static const char *uvs__runner(const char *path)
{
	static const char *const names[] = {
		"npm-cli.js", "npx-cli.js", "npm", "npx", "yarn", "yarn.js",
		"yarn.cjs", "pnpm", "pnpm.cjs", "pnpx",
	};
	char real[4096];
	const char *base;
	size_t i;

	if (!realpath(path, real))
		snprintf(real, sizeof(real), "%s", path);
	base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(base, names[i]))
			return names[i];
	return NULL;
}

static int uvs__launch(struct uvs_cli *c)
{
	char path[4096];
	int go[2], eerr[2], err;
	pid_t pid;

	err = uvs_find_program(c->cmd[0], path, sizeof(path));
	if (err) {
		uvs_error("cannot run %s: %s", c->cmd[0], strerror(-err));
		return -1;
	}
	if (uvs__runner(path)) {
		uvs_error("%s runs the program in a child process, which "
			  "uvscope does not follow: launch what it runs "
			  "(-- node app.js), or start it with %s and attach to "
			  "that node process with -p PID", c->cmd[0], c->cmd[0]);
		return -1;
	}
	if (pipe2(go, O_CLOEXEC) || pipe2(eerr, O_CLOEXEC)) {
		uvs_error("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		uvs_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		size_t i;
		char b;

		close(go[1]);
		close(eerr[0]);
		/* Wait until the probes are in place, so tracing starts at
		 * the first instruction; EOF means uvscope gave up. */
		if (read(go[0], &b, 1) != 1)
			_exit(127);
		/* The program starts as the shell would have started it:
		 * handlers reset on exec, but uvscope's SIG_IGN would not,
		 * nor would a SIG_IGN it replaced come back. */
		for (i = 0; i < 5; i++)
			if (uvs__sig_saved[i])
				sigaction(uvs__sigs[i], &uvs__sig_orig[i],
					  NULL);
		execv(path, c->cmd);
		err = errno;
		if (write(eerr[1], &err, sizeof(err)) < 0)
			_exit(127);
		_exit(127);
	}
	close(go[0]);
	close(eerr[1]);
	c->child = pid;
	uvs__child_pid = pid;
	c->go_fd = go[1];
	c->exec_err_fd = eerr[0];
	err = uvs_target__open_exec(path, pid, &c->target);
	if (err) {
		uvs_error("%s", uvs_errmsg());
		close(c->go_fd);
		c->go_fd = -1;
		close(c->exec_err_fd);
		c->exec_err_fd = -1;
		waitpid(pid, NULL, 0);
		/* gone: nothing for uvs_cli__finish to end */
		c->child = 0;
		uvs__child_pid = 0;
		return -1;
	}
	return 0;
}

/* The image pid runs now: 0, or -1 when its auxiliary vector cannot be
 * read or is not filled in yet (an exec under way). */
static int uvs__image(pid_t pid, struct uvs_cli_image *im)
{
	uint64_t auxv[2 * 64];
	char path[64];
	struct stat st;
	ssize_t n;
	size_t i;
	int fd;

	memset(im, 0, sizeof(*im));
	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, auxv, sizeof(auxv));
	close(fd);
	for (i = 0; n > 0 && i + 1 < (size_t)n / sizeof(auxv[0]); i += 2) {
		if (auxv[i] == AT_ENTRY)
			im->entry = auxv[i + 1];
		else if (auxv[i] == AT_RANDOM)
			im->random = auxv[i + 1];
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	if (!im->entry || !im->random || stat(path, &st))
		return -1;
	im->dev = st.st_dev;
	im->ino = st.st_ino;
	im->rnd_known = !uvs_mem_read(pid, im->random, im->rnd,
				       sizeof(im->rnd));
	im->known = true;
	return 0;
}

/* Reads the image the trace begins on; an exec just done (a launched
 * program's) may not have filled in its auxiliary vector yet: it is
 * given up to tries ms. Without it, an exec goes unseen (said with -v). */
static void uvs__image_start(struct uvs_cli *c, int tries)
{
	struct stat want;
	int i;

	for (i = 1; uvs__image(c->target->pid, &c->image) && i < tries; i++)
		usleep(1000);
	/* A launched "#!/usr/bin/env node" script runs env first, which
	 * execs the program uvscope read (its probes wait on that file):
	 * the trace begins on that image, given up to 2 s to appear. */
	if (c->child && !stat(c->target->exe, &want))
		for (i = 0; i < 2000 && (!c->image.known ||
					 c->image.dev != want.st_dev ||
					 c->image.ino != want.st_ino) &&
			    uvs_target__alive(c->target); i++) {
			usleep(1000);
			if (uvs__image(c->target->pid, &c->image))
				c->image.known = false;
		}
	if (!c->image.known)
		uvs_debug("cannot read /proc/%d/auxv: an exec of it would go "
			  "unseen", c->target->pid);
}

bool uvs_cli__execd(struct uvs_cli *c)
{
	struct uvs_cli_image now;
	const struct uvs_cli_image *was = &c->image;
	char path[64];
	ssize_t n;

	if (c->execd)
		return true;
	if (!was->known || uvs__image(c->target->pid, &now))
		return false;
	if (now.entry == was->entry && now.random == was->random &&
	    now.dev == was->dev && now.ino == was->ino &&
	    (!now.rnd_known || !was->rnd_known ||
	     !memcmp(now.rnd, was->rnd, sizeof(now.rnd))))
		return false;
	c->execd = true;
	snprintf(path, sizeof(path), "/proc/%d/exe", c->target->pid);
	n = readlink(path, c->exec_path, sizeof(c->exec_path) - 1);
	if (n < 0)
		snprintf(c->exec_path, sizeof(c->exec_path), "?");
	else
		c->exec_path[n] = '\0';
	return true;
}

int uvs_cli__start(struct uvs_cli *c)
{
	int err;

	if (c->cmd)
		return uvs__launch(c);
	err = uvs_target__open_pid(c->pid, &c->target);
	if (err) {
		uvs_error("%s", uvs_errmsg());
		return -1;
	}
	if (uvs__check_tid(c)) {
		uvs_target__close(c->target);
		c->target = NULL;
		return -1;
	}
	if (c->tid) {
		c->target->loop_tid = c->tid;
	} else {
		/* a process whose loops run on threads of their own: one of
		 * them, said, and watched as if named with --tid */
		char note[512];
		pid_t tid = uvs_target__pick_loop_thread(c->target, note,
							 sizeof(note));

		if (tid > 0) {
			uvs_warn("%s", note);
			c->tid = c->target->loop_tid = tid;
		}
	}
	uvs__image_start(c, 1);
	uvs_debug("target pid %d (%s): %s, libuv %s in %s, %s",
		  c->target->pid, c->target->comm, c->target->runtime,
		  c->target->libuv_version[0] ? c->target->libuv_version : "?",
		  c->target->uv_file, uvs_tier_name(c->target->tier));
	return 0;
}

int uvs_cli__release(struct uvs_cli *c)
{
	int e = 0;
	ssize_t n;

	if (!c->child)
		return 0;
	if (write(c->go_fd, "g", 1) != 1) {
		uvs_error("cannot start %s: %s", c->cmd[0], strerror(errno));
		return -1;
	}
	close(c->go_fd);
	c->go_fd = -1;
	/* The error pipe closes on a successful exec. */
	n = read(c->exec_err_fd, &e, sizeof(e));
	close(c->exec_err_fd);
	if (n == sizeof(e)) {
		uvs_error("cannot run %s: %s", c->cmd[0], strerror(e));
		waitpid(c->child, NULL, 0);
		c->child_reaped = true;
		return -1;
	}
	uvs__image_start(c, 200);
	return 0;
}

/* The ptrace backend samples at times of its own: a stop of the loop
 * thread at 99 Hz, the pool's state read at jittered times. On a loaded
 * machine a sampler of normal priority runs when a CPU comes free, which
 * is when the target's threads go to sleep: its reads lean to an idle
 * pool (measured: 0.35 busy threads read against 0.48 timed), and a
 * stopped target waits for it to get a CPU back. So it samples at the
 * lowest real-time priority, as perf record -r does, for the few
 * microseconds each sample takes; not passed on to anything it starts.
 * Without the privilege (a container without CAP_SYS_NICE) it samples as
 * before and says so under -v. */
void uvs_cli__sampler_priority(struct uvs_cli *c)
{
	struct sched_param sp = { .sched_priority = 1 };

	if (!c->use_ptrace || getenv("UVSCOPE_NO_REALTIME"))
		return;
	if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp))
		uvs_debug("sampling at normal priority: SCHED_FIFO: %s",
			  strerror(errno));
	else
		uvs_debug("sampling at SCHED_FIFO priority 1");
}

bool uvs_cli__target_alive(struct uvs_cli *c)
{
	/* a traced child's statuses are the tracer's to reap */
	if (c->child && c->use_ptrace && !c->reads_only)
		return !c->child_reaped;
	if (c->child) {
		if (c->child_reaped)
			return false;
		if (waitpid(c->child, &c->child_status, WNOHANG) == c->child) {
			c->child_reaped = true;
			return false;
		}
		return true;
	}
	return uvs_target__alive(c->target);
}

static int uvs__status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

void uvs_cli__reaped(struct uvs_cli *c, bool reaped, int status)
{
	if (c->child && reaped) {
		c->child_reaped = true;
		c->child_status = status;
	}
}

bool uvs_cli__done(struct uvs_cli *c, uint64_t t0, uint64_t now,
		   bool *exited)
{
	if (uvs_cli_stop)
		return true;
	if (!uvs_cli__target_alive(c)) {
		*exited = true;
		return true;
	}
	/* a poll is 100 ms or less; a few reads of /proc each time cost the
	 * target nothing, but need not be done more often than that */
	if (now - c->image_checked_ns >= 50000000ull) {
		c->image_checked_ns = now;
		if (uvs_cli__execd(c))
			return true;
	}
	return c->duration && now - t0 >= c->duration * 1e9;
}

struct uvs_report *uvs_cli__new_report(const struct uvs_cli *c,
				       const char *command,
				       const char *backend, uint64_t *t0)
{
	struct uvs_report *r = malloc(sizeof(*r));

	if (!r) {
		uvs_error("out of memory");
		return NULL;
	}
	/* the window begins as the sources are first polled, right after */
	uvs_report__init(r, command, c->target, backend);
	*t0 = uvs_now_ns();
	r->attach_ms = (*t0 - uvs_cli_t0) / 1e6;
	r->start_monotonic_s = *t0 / 1e9;
	uvs_debug("attached in %.1f ms", r->attach_ms);
	return r;
}

int uvs_cli__end(struct uvs_cli *c, bool exited, const char *how,
		 double secs)
{
	int ret;

	if (c->execd)
		uvs_error("pid %d exec'd %s; trace ended", c->target->pid,
			  c->exec_path);
	else if (exited && how && !c->cmd)
		uvs_error("pid %d %s after %.1f s", c->pid, how, secs);
	ret = c->cmd ? uvs_cli__finish(c) : 0;
	c->child = 0;
	return ret;
}

int uvs_cli__finish(struct uvs_cli *c)
{
	int i;

	if (!c->child)
		return 0;
	/* the ptrace tracer may have reaped it as it let go (Ctrl-C
	 * forwarded to the program ends it while uvscope detaches) */
	if (!c->child_reaped &&
	    uvs_pt__reaped(c->child, &c->child_status))
		c->child_reaped = true;
	/* Ctrl-C (or SIGTERM) went on to the program: it ends by it, as it
	 * would have without uvscope, and that is its status */
	for (i = 0; uvs_cli_stop && !c->child_reaped && i < 20; i++) {
		pid_t w = waitpid(c->child, &c->child_status, WNOHANG);

		if (w == c->child || (w < 0 && errno == ECHILD))
			c->child_reaped = w == c->child;
		if (w != 0)
			break;
		usleep(100000);
	}
	if (!c->child_reaped) {
		/* -d ran out: end the program we started, politely first.
		 * Its status is then ours to decide: a run that went as
		 * asked exits 0. */
		kill(c->child, SIGTERM);
		for (i = 0; i < 50; i++) {
			pid_t w = waitpid(c->child, &c->child_status, WNOHANG);

			if (w == c->child || (w < 0 && errno == ECHILD))
				break;
			usleep(100000);
		}
		if (i == 50) {
			kill(c->child, SIGKILL);
			waitpid(c->child, &c->child_status, 0);
		}
		c->child_reaped = true;
		if (!uvs_cli_stop)
			return 0;
	}
	return uvs__status(c->child_status);
}

static int uvs__libbpf_print(enum libbpf_print_level level, const char *fmt,
			     va_list ap)
{
	if (!uvs_verbose || (level == LIBBPF_DEBUG && uvs_verbose < 2))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void uvs_cli__libbpf_log(void)
{
	libbpf_set_print(uvs__libbpf_print);
}

int uvs_cli__parse(struct uvs_cli *c, int argc, char **argv, const char *cmd,
		   void (*help)(FILE *out), uvs_cli_opt_fn extra, void *ctx)
{
	int i, k;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			if (i + 1 >= argc) {
				uvs_error("no program after --");
				return -1;
			}
			c->cmd = argv + i + 1;
			break;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			help(stdout);
			return 1;
		}
		k = extra ? extra(c, argc, argv, &i, ctx) : 0;
		if (!k)
			k = uvs_cli__common_opt(c, argc, argv, &i);
		if (k < 0)
			return -1;
		if (!k) {
			uvs_error("unknown option '%s' (see uvscope %s --help)",
				  argv[i], cmd);
			return -1;
		}
	}
	return uvs_cli__check_target(c, cmd) ? -1 : 0;
}

int uvs_cli__prepare(struct uvs_cli *c)
{
	uvs_cli__signals();
	uvs_cli__libbpf_log();
	if (uvs_cli__backend_check(c))
		return -1;
	return uvs_cli__start(c);
}

/* Another tracer of one of pid's threads (TracerPid in their status, not
 * uvscope), or 0; its name in comm. */
static pid_t uvs__other_tracer(pid_t pid, char *comm, size_t len)
{
	char path[64];
	struct dirent *e;
	pid_t tracer = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while (!tracer && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		struct uvs_proc_status st;
		char *end;
		long tid = strtol(e->d_name, &end, 10);

		if (*end || tid <= 0 || tid > INT32_MAX ||
		    uvs_proc_status(pid, tid, &st))
			continue;
		tracer = st.tracer_pid;
		if (tracer == getpid())
			tracer = 0;
	}
	closedir(d);
	snprintf(path, sizeof(path), "/proc/%d/comm", tracer);
	if (!tracer || uvs_read_file(path, comm, len) <= 0)
		snprintf(comm, len, "?");
	comm[strcspn(comm, "\n")] = '\0';
	return tracer;
}

/* The target runs another executable than the one uvscope read: an exec
 * since (its path then in c->exec_path). */
bool uvs_cli__exe_changed(struct uvs_cli *c)
{
	if (uvs_target__exe_changed(c->target, c->exec_path,
				    sizeof(c->exec_path)) != 1)
		return false;
	c->execd = true;
	return true;
}

void uvs_cli__attach_failed(struct uvs_cli *c)
{
	char comm[64];
	pid_t tracer;

	if (!c->cmd && !uvs_target__alive(c->target)) {
		uvs_error("pid %d exited during attach", c->pid);
		return;
	}
	/* probes placed in the old program, or ptrace refused by the exec:
	 * either way, say what happened, not what it broke. An exec under
	 * way as uvscope started may have given it the new image to start
	 * from: the executable it read tells then. */
	if (!c->cmd && (uvs_cli__execd(c) || uvs_cli__exe_changed(c))) {
		uvs_error("pid %d exec'd %s during attach; nothing was traced",
			  c->pid, c->exec_path);
		return;
	}
	/* ptrace refused: one tracer to a thread, so name the one there */
	tracer = c->use_ptrace ? uvs__other_tracer(c->target->pid, comm,
						   sizeof(comm)) : 0;
	if (tracer)
		uvs_error("pid %d is already traced by pid %d (%s): a thread "
			  "has one tracer at a time; detach that one first%s",
			  c->target->pid, tracer, comm,
			  c->backend && !strcmp(c->backend, "ptrace")
				  ? ", or use --backend ebpf"
				  : "");
	else
		uvs_error("%s", uvs_errmsg());
}
