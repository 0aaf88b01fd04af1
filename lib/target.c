// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Target discovery: from a pid (or a program about to run) to the file that
 * holds libuv, its load address, the runtime and libuv versions and the tier
 * of probing its symbols allow. Paths go through /proc/PID/root so a target
 * in a container resolves inside its own root.
 */
#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "uvscope.h"
#include "loop.h" /* the phase enum */

const char *uvs_tier_name(enum uvs_tier tier)
{
	return tier == UVS_TIER_SYMBOLS ? "ebpf-symbols" : "ebpf-syscalls";
}

/* The task's state (/proc/PID/stat's third field), 0 if unreadable, and
 * its flags (the ninth; 0 if unreadable) where flags is not NULL. */
static char uvs__proc_stat(pid_t pid, unsigned *flags)
{
	char path[64], buf[512], *p, st;

	if (flags)
		*flags = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (uvs_read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	if (flags && sscanf(p + 1, " %c %*d %*d %*d %*d %*d %u", &st,
			    flags) != 2)
		*flags = 0;
	return p[2];
}

#define UVS_PF_KTHREAD 0x00200000u /* include/linux/sched.h */

bool uvs_target__alive(const struct uvs_target *t)
{
	char s;

	if (kill(t->pid, 0) && errno == ESRCH)
		return false;
	s = uvs__proc_stat(t->pid, NULL);
	return s && s != 'Z' && s != 'X';
}

static void uvs__version_from_code(struct uvs_target *t)
{
	const struct uvs_sym *s = uvs_elf__find(t->uv_elf, "uv_version");
	unsigned char c[12];
	unsigned char *p = c;
	uint32_t v;

	if (!s || uvs_elf__read(t->uv_elf, s->addr, c, sizeof(c)))
		return;
	if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa)
		p += 4; /* endbr64 */
	/* unsigned int uv_version(void) { return UV_VERSION_HEX; } compiles
	 * to "mov $imm32, %eax; ret" in every build we have seen. */
	if (p[0] != 0xb8 || p[5] != 0xc3)
		return;
	memcpy(&v, p + 1, 4);
	if ((v >> 16) != 1 || v > 0x1ffff)
		return;
	snprintf(t->libuv_version, sizeof(t->libuv_version), "%u.%u.%u",
		 v >> 16, (v >> 8) & 0xff, v & 0xff);
}

static void uvs__runtime(struct uvs_target *t, struct uvs_elf *exe)
{
	if (exe && uvs_elf__find(exe, "node_module_register")) {
		snprintf(t->runtime, sizeof(t->runtime), "node");
		/* process.release.sourceUrl: .../release/vX.Y.Z/node-vX.Y.Z.tar.gz */
		t->runtime_version[0] = 'v';
		if (uvs_elf__find_version_string(exe, "/node-v",
						 t->runtime_version + 1,
						 sizeof(t->runtime_version) - 1))
			t->runtime_version[0] = '\0';
	} else {
		snprintf(t->runtime, sizeof(t->runtime), "libuv");
	}
}

static void uvs__classify(struct uvs_target *t)
{
	const struct uvs_sym *s[8];
	size_t i;

	/* libuv's phase functions, all present (but those a build may
	 * inline: pending's and close's): tier A */
	uvs_elf__lookup(t->uv_elf, uvs_uv_run_fns, 8, s);
	t->tier = UVS_TIER_SYMBOLS;
	for (i = 1; i < 8; i++)
		if (i != 1 + UVS_PH_PENDING && i != 1 + UVS_PH_CLOSE &&
		    (!s[i] || s[i]->type != STT_FUNC))
			t->tier = UVS_TIER_SYSCALLS;
	uvs__version_from_code(t);
}

/* Opens path as an ELF file and keeps it if it defines uv_run. */
static bool uvs__try_libuv(struct uvs_target *t, const char *seen,
			   const char *open_path)
{
	struct uvs_elf *elf;

	if (uvs_elf__open(open_path, &elf))
		return false;
	if (!uvs_elf__find(elf, "uv_run")) {
		uvs_elf__close(elf);
		return false;
	}
	t->uv_elf = elf;
	snprintf(t->uv_file, sizeof(t->uv_file), "%s", seen);
	snprintf(t->uv_open, sizeof(t->uv_open), "%s", open_path);
	return true;
}

struct uvs__map {
	uint64_t start, off;
	char path[4096];
};

struct uvs__maps {
	struct uvs__map *m;
	int n, cap;
};

static int uvs__one_map(const struct uvs_map_line *l, void *ctx)
{
	struct uvs__maps *ms = ctx;
	int i;

	if (l->path[0] != '/')
		return 0;
	for (i = 0; i < ms->n; i++) {
		if (!strcmp(ms->m[i].path, l->path)) {
			if (l->start < ms->m[i].start) {
				ms->m[i].start = l->start;
				ms->m[i].off = l->off;
			}
			return 0;
		}
	}
	if (ms->n == ms->cap) {
		struct uvs__map *nm;

		ms->cap = ms->cap ? ms->cap * 2 : 32;
		nm = realloc(ms->m, ms->cap * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		ms->m = nm;
	}
	ms->m[ms->n].start = l->start;
	ms->m[ms->n].off = l->off;
	snprintf(ms->m[ms->n].path, sizeof(ms->m[ms->n].path), "%s", l->path);
	ms->n++;
	return 0;
}

/* Reads the file-backed mappings of pid, one entry per distinct file with
 * its lowest mapping. */
static int uvs__read_maps(pid_t pid, struct uvs__map **out, int *n)
{
	struct uvs__maps ms = { 0 };
	int err = uvs_proc_maps(pid, uvs__one_map, &ms);

	if (err) {
		free(ms.m);
		return err;
	}
	*out = ms.m;
	*n = ms.n;
	return 0;
}

/* Where the libuv file is loaded: runtime address = bias + symbol. */
static void uvs__set_bias(struct uvs_target *t, const struct uvs__map *maps,
			  int nmaps)
{
	int i;

	if (!uvs_elf__is_pie(t->uv_elf)) {
		t->uv_bias = 0;
		t->uv_bias_known = true;
		return;
	}
	for (i = 0; i < nmaps; i++) {
		if (strcmp(maps[i].path, t->uv_file))
			continue;
		t->uv_bias = maps[i].start - maps[i].off -
			     uvs_elf__base_vaddr(t->uv_elf);
		t->uv_bias_known = true;
	}
}

int uvs_target__locate(struct uvs_target *t)
{
	struct uvs__map *maps = NULL;
	int n = 0, err;

	if (t->uv_bias_known)
		return 0;
	err = uvs__read_maps(t->pid, &maps, &n);
	if (!err)
		uvs__set_bias(t, maps, n);
	free(maps);
	if (err)
		return err;
	return t->uv_bias_known ? 0 : -ENOENT;
}

static int uvs__pid_error(pid_t pid, int err, const char *what)
{
	if (err == -ENOENT || err == -ESRCH)
		return uvs_seterr(-ESRCH, "no such process: %d", pid);
	if (err == -EACCES || err == -EPERM)
		return uvs_seterr(-EPERM,
				  "cannot read %s of pid %d: permission denied "
				  "(run as root, or with CAP_SYS_PTRACE)",
				  what, pid);
	return uvs_seterr(err, "cannot read %s of pid %d: %s", what, pid,
			  strerror(-err));
}

/* An exec from a thread that is not the leader shows the leader a zombie,
 * with no exe, for a moment: waits (100 ms at most) until it runs the new
 * program, or is gone. */
static void uvs__await_exec(pid_t pid)
{
	char st;
	int i;

	for (i = 0; i < 20; i++) {
		st = uvs__proc_stat(pid, NULL);
		if (st != 'Z' && st != 'X')
			return;
		usleep(5000);
	}
}

/* The target's executable could not be opened: an exec or an exit in
 * between took the file away (say which), or it cannot be read. */
static int uvs__exe_error(struct uvs_target *t, int err)
{
	char now[sizeof(t->exe)];
	int changed;

	uvs__await_exec(t->pid);
	changed = uvs_target__exe_changed(t, now, sizeof(now));
	if (changed > 0)
		return uvs_seterr(-ESRCH, "pid %d exec'd %s while uvscope read "
				  "its executable %s", t->pid, now, t->exe);
	if (changed < 0 || !uvs_target__alive(t))
		return uvs_seterr(-ESRCH, "pid %d exited during attach (while "
				  "uvscope read its executable)", t->pid);
	return uvs_seterr(err, "cannot read the executable of pid %d (%s): "
			  "%s", t->pid, t->exe, uvs_errmsg());
}

int uvs_target__open_pid(pid_t pid, struct uvs_target **out)
{
	struct uvs_target *t;
	struct uvs__map *maps = NULL;
	struct uvs_elf *exe = NULL;
	char path[4200];
	int nmaps = 0, i, err, pass;
	ssize_t n;
	char st;

	*out = NULL;
	if (pid <= 0)
		return uvs_seterr(-EINVAL, "invalid pid %d", pid);
	if (kill(pid, 0) && errno == ESRCH)
		return uvs_seterr(-ESRCH, "no such process: %d", pid);
	st = uvs__proc_stat(pid, NULL);
	if (!st)
		return uvs_seterr(-ESRCH, "no such process: %d", pid);
	if (st == 'Z' || st == 'X')
		return uvs_seterr(-ESRCH, "process %d has exited (zombie)",
				  pid);
	t = calloc(1, sizeof(*t));
	if (!t)
		return uvs_seterr(-ENOMEM, "out of memory");
	t->pid = pid;
	t->loop_tid = pid;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (uvs_read_file(path, t->comm, sizeof(t->comm)) > 0)
		t->comm[strcspn(t->comm, "\n")] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, t->exe, sizeof(t->exe) - 1);
	if (n < 0 && errno == ENOENT) {
		/* mid-exec: the new program is the target then */
		uvs__await_exec(pid);
		n = readlink(path, t->exe, sizeof(t->exe) - 1);
	}
	if (n < 0) {
		err = -errno;
		unsigned flags;

		uvs__proc_stat(pid, &flags);

		/* no exe: a kernel thread, or a process past the point of
		 * its exit where its memory is gone */
		if (err == -ENOENT && (flags & UVS_PF_KTHREAD))
			err = uvs_seterr(-ENOEXEC,
					 "pid %d (%s) is a kernel thread, not "
					 "a libuv process", pid, t->comm);
		else if (err == -ENOENT)
			err = uvs_seterr(-ESRCH, "pid %d exited during attach "
					 "(while uvscope read its executable)",
					 pid);
		else
			err = uvs__pid_error(pid, err, "/proc/PID/exe");
		goto fail;
	}
	t->exe[n] = '\0';
	/* /proc/PID/exe opens the very file that runs, even if deleted or
	 * replaced since, and inside the target's mount namespace. */
	err = uvs_elf__open(path, &exe);
	if (err) {
		err = uvs__exe_error(t, err);
		goto fail;
	}
	err = uvs__read_maps(pid, &maps, &nmaps);
	if (err) {
		err = uvs__pid_error(pid, err, "/proc/PID/maps");
		goto fail;
	}
	if (uvs_elf__find(exe, "uv_run")) {
		t->uv_elf = exe;
		exe = NULL;
		snprintf(t->uv_file, sizeof(t->uv_file), "%s", t->exe);
		snprintf(t->uv_open, sizeof(t->uv_open), "%s", path);
		err = uvs_elf__open(path, &exe); /* keep one for the runtime */
		if (err) {
			err = uvs__exe_error(t, err);
			goto fail;
		}
	} else {
		/* libuv.so first, then any other mapped object (uvloop and
		 * others link libuv statically into an extension). */
		for (pass = 0; pass < 2 && !t->uv_elf; pass++) {
			for (i = 0; i < nmaps && !t->uv_elf; i++) {
				bool named = strstr(maps[i].path, "libuv") != NULL;

				if ((pass == 0) != named)
					continue;
				snprintf(path, sizeof(path), "/proc/%d/root%s",
					 pid, maps[i].path);
				uvs__try_libuv(t, maps[i].path, path);
			}
		}
	}
	if (!t->uv_elf) {
		err = uvs_seterr(-ENOEXEC,
				 "pid %d (%s) is not a libuv process: no uv_run "
				 "symbol in %s or its %d mapped files",
				 pid, t->comm, t->exe, nmaps);
		goto fail;
	}
	uvs__set_bias(t, maps, nmaps);
	uvs__classify(t);
	uvs__runtime(t, exe);
	uvs_elf__close(exe);
	free(maps);
	*out = t;
	return 0;
fail:
	uvs_elf__close(exe);
	free(maps);
	uvs_target__close(t);
	return err;
}

static bool uvs__find_lib(const char *name, char *out, size_t len)
{
	static const char *const dirs[] = {
		"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
		"/usr/local/lib", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
	};
	const char *llp = getenv("LD_LIBRARY_PATH");
	char buf[4096];
	size_t i;

	if (llp) {
		char *save, *d, *copy = strdup(llp);

		for (d = copy ? strtok_r(copy, ":", &save) : NULL; d;
		     d = strtok_r(NULL, ":", &save)) {
			snprintf(buf, sizeof(buf), "%s/%s", d, name);
			if (!access(buf, R_OK)) {
				snprintf(out, len, "%s", buf);
				free(copy);
				return true;
			}
		}
		free(copy);
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(buf, sizeof(buf), "%s/%s", dirs[i], name);
		if (!access(buf, R_OK)) {
			snprintf(out, len, "%s", buf);
			return true;
		}
	}
	return false;
}

/* A file started with "#!": the kernel runs its interpreter in the same
 * process. 1 and the interpreter's path in out ("#!/usr/bin/env NAME"
 * finds NAME in PATH, as env does; "env -S NAME ARGS" too), 0 if path is
 * no script, or -errno. */
static int uvs__interpreter(const char *path, char *out, size_t len)
{
	char line[256], *p, *word, *save;
	int fd, n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return 0;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	word = strtok_r(line + 2, " \t", &save);
	if (!word || word[0] != '/')
		return -ENOEXEC;
	p = strrchr(word, '/');
	if (strcmp(p + 1, "env")) {
		snprintf(out, len, "%s", word);
		return 1;
	}
	/* env [-S] NAME: the first word that is no option */
	while ((word = strtok_r(NULL, " \t", &save)) && word[0] == '-')
		;
	if (!word || strchr(word, '='))
		return -ENOEXEC;
	n = uvs_find_program(word, out, len);
	return n ? n : 1;
}

int uvs_target__open_exec(const char *script, pid_t child,
			  struct uvs_target **out)
{
	struct uvs_target *t;
	struct uvs_elf *exe = NULL;
	char needed[64][256], lib[4096], interp[2][4096];
	const char *path = script;
	int err, n, i;

	/* a script: its interpreter, up to the kernel's four levels */
	for (i = 0; i < 4; i++) {
		n = uvs__interpreter(path, interp[i & 1],
					   sizeof(interp[0]));
		if (n < 0)
			return uvs_seterr(n, "%s is a #! script whose "
					  "interpreter cannot be found: %s",
					  script, strerror(-n));
		if (!n)
			break;
		path = interp[i & 1];
	}
	if (path != script)
		uvs_debug("%s is a script: %s runs it", script, path);

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return uvs_seterr(-ENOMEM, "out of memory");
	t->pid = child;
	t->loop_tid = child;
	t->launched = true;
	snprintf(t->exe, sizeof(t->exe), "%s", path);
	/* the kernel names a script's process after the script */
	snprintf(t->comm, sizeof(t->comm), "%s",
		 strrchr(script, '/') ? strrchr(script, '/') + 1 : script);
	err = uvs_elf__open(path, &exe);
	if (err)
		goto fail;
	if (!uvs__try_libuv(t, path, path)) {
		n = uvs_elf__needed(exe, needed, 64);
		for (i = 0; i < n && !t->uv_elf; i++) {
			if (!strstr(needed[i], "libuv"))
				continue;
			if (uvs__find_lib(needed[i], lib, sizeof(lib)))
				uvs__try_libuv(t, lib, lib);
		}
	}
	if (!t->uv_elf) {
		/* python3 and luajit load libuv with a module (uvloop, luv):
		 * it is there once the program runs */
		err = uvs_seterr(-ENOEXEC,
				 "%s%s%s%s is not a libuv program: no uv_run "
				 "symbol in it or in a libuv library it needs (if "
				 "it loads libuv at run time, as python3 with "
				 "uvloop or luajit with luv do, start it and "
				 "attach with -p PID)", path, path != script ?
				 " (the interpreter of " : "", path != script ?
				 script : "", path != script ? ")" : "");
		goto fail;
	}
	/* Non-PIE: addresses are final; otherwise the BPF side learns the
	 * loop from its first call. */
	t->uv_bias_known = !uvs_elf__is_pie(t->uv_elf);
	uvs__classify(t);
	uvs__runtime(t, exe);
	uvs_elf__close(exe);
	*out = t;
	return 0;
fail:
	uvs_elf__close(exe);
	uvs_target__close(t);
	return err;
}

void uvs_target__close(struct uvs_target *t)
{
	if (!t)
		return;
	uvs_elf__close(t->uv_elf);
	free(t);
}

bool uvs_target__is_epoll_fd(const struct uvs_target *t, int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = '\0';
	return !strcmp(link, "anon_inode:[eventpoll]");
}

/* Whether an epoll instance watches any fd yet (a "tfd:" line in its
 * fdinfo): libuv adds its first watchers at the loop's first poll, so a
 * loop created and never run watches none. */
static bool uvs__epoll_watches(pid_t pid, int fd)
{
	char path[64], buf[512];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	n = uvs_read_file(path, buf, sizeof(buf));
	return n > 0 && strstr(buf, "\ntfd:");
}

int uvs_target__first_epoll_fd(const struct uvs_target *t)
{
	char path[64];
	struct dirent *de;
	int best = -1, idle = -1;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", t->pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fd = atoi(de->d_name);
		if (!uvs_target__is_epoll_fd(t, fd))
			continue;
		if (uvs__epoll_watches(t->pid, fd)) {
			if (best < 0 || fd < best)
				best = fd;
		} else if (idle < 0 || fd < idle) {
			idle = fd;
		}
	}
	closedir(d);
	return best >= 0 ? best : idle;
}

int uvs_target__exe_changed(const struct uvs_target *t, char *now,
			    size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", t->pid);
	n = readlink(path, now, len - 1);
	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	now[n] = '\0';
	return strcmp(now, t->exe) != 0;
}

int uvs_proc_syscall(pid_t pid, pid_t tid, long *nr, long *arg0)
{
	char path[96], buf[256], *end;
	unsigned long a;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
	n = uvs_read_file(path, buf, sizeof(buf));
	if (n <= 0)
		return n ? n : -EIO;
	if (!strncmp(buf, "running", 7))
		return 0;
	/* "NR 0xARG0 ... SP PC", or "-1 SP PC" outside a system call */
	errno = 0;
	*nr = strtol(buf, &end, 10);
	if (end == buf || errno || *nr < 0)
		return 0;
	if (arg0) {
		a = strtoul(end, &end, 16);
		*arg0 = a <= LONG_MAX ? (long)a : -1;
	}
	return 1;
}

bool uvs_is_epoll_wait(long nr)
{
	return nr == SYS_epoll_wait || nr == SYS_epoll_pwait
#ifdef SYS_epoll_pwait2
	       || nr == SYS_epoll_pwait2
#endif
	    ;
}

int uvs_target__epoll_waiting(const struct uvs_target *t, pid_t tid)
{
	long nr, fd;
	int in = uvs_proc_syscall(t->pid, tid, &nr, &fd);

	if (in < 0)
		return in == -EPERM ? -EACCES : in;
	if (in == 0 || !uvs_is_epoll_wait(nr) || fd < 0 || fd > INT32_MAX)
		return -1;
	return fd;
}

/* CPU time of a thread so far (ns, /proc/PID/task/TID/schedstat's
 * first field), or -1. */
static long long uvs__thread_cpu_ns(pid_t pid, pid_t tid)
{
	char path[96], buf[128];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, tid);
	if (uvs_read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtoll(buf, NULL, 10);
}

pid_t uvs_target__pick_loop_thread(struct uvs_target *t, char *note,
				   size_t len)
{
	enum { MAXC = 64, LOOKS = 10 };
	pid_t cand[MAXC], best = 0;
	long long cpu0[MAXC], cpu, most = -1;
	int n = 0, i, look, in;
	long nr, arg;
	struct dirent *e;
	DIR *d;
	char path[64];
	size_t k;

	note[0] = '\0';
	/* Node's main thread is its loop's, busy or not */
	if (!strcmp(t->runtime, "node") || t->launched)
		return 0;
	/* a main thread in epoll waits on its loop, one that runs may be
	 * a loop busy in a callback (or hung): it is the loop's */
	in = uvs_proc_syscall(t->pid, t->pid, &nr, &arg);
	if (in <= 0 || uvs_is_epoll_wait(nr))
		return 0;
	/* it sleeps elsewhere (named waits for signals): the threads seen
	 * waiting in epoll over 100 ms are the loops; the busiest is taken */
	snprintf(path, sizeof(path), "/proc/%d/task", t->pid);
	for (look = 0; look < LOOKS; look++) {
		d = opendir(path);
		if (!d)
			return 0;
		while ((e = readdir(d)) && n < MAXC) {
			char *end;
			long tid = strtol(e->d_name, &end, 10);

			if (*end || tid <= 0 || tid == t->pid || tid > INT32_MAX)
				continue;
			for (i = 0; i < n && cand[i] != tid; i++)
				;
			if (i < n || uvs_target__epoll_waiting(t, tid) < 0)
				continue;
			cand[n] = tid;
			cpu0[n++] = uvs__thread_cpu_ns(t->pid, tid);
		}
		closedir(d);
		usleep(10000);
	}
	for (i = 0; i < n; i++) {
		cpu = uvs__thread_cpu_ns(t->pid, cand[i]);
		if (cpu >= 0 && cpu0[i] >= 0 && cpu - cpu0[i] > most) {
			most = cpu - cpu0[i];
			best = cand[i];
		}
	}
	if (!best)
		return 0;
	k = snprintf(note, len, "pid %d's main thread runs no loop; %d "
		     "thread%s wait%s in epoll (", t->pid, n, n == 1 ? "" : "s",
		     n == 1 ? "s" : "");
	for (i = 0; i < n && k < len; i++)
		k += snprintf(note + k, len - k, "%s%d", i ? ", " : "",
			      cand[i]);
	if (k < len)
		snprintf(note + k, len - k, "): watching %d%s (--tid TID to "
			 "choose)", best, n > 1 ? ", the busiest over 0.1 s"
						: "");
	return best;
}

/* Where the default loop is: the default_loop_struct symbol, or, in a
 * stripped libuv, default_loop_ptr as read by uv_default_loop() ("mov
 * reg, [rip + disp32]" near its start). 0 if it was never created. */
int uvs_target__default_loop(struct uvs_target *t, uint64_t *loop)
{
	const struct uvs_sym *s = uvs_elf__find(t->uv_elf, "default_loop_struct");
	unsigned char c[48];
	size_t i;

	*loop = 0;
	if (s) {
		*loop = t->uv_bias + s->addr;
		return 0;
	}
	s = uvs_elf__find(t->uv_elf, "uv_default_loop");
	if (!s || uvs_elf__read(t->uv_elf, s->addr, c, sizeof(c)))
		return -ENOENT;
	for (i = 0; i + 7 <= sizeof(c); i++) {
		int32_t disp;
		uint64_t ptr;

		if ((c[i] & 0xf8) != 0x48 || c[i + 1] != 0x8b ||
		    (c[i + 2] & 0xc7) != 0x05)
			continue;
		memcpy(&disp, c + i + 3, 4);
		ptr = t->uv_bias + s->addr + i + 7 + (int64_t)disp;
		if (uvs_mem_read(t->pid, ptr, loop, 8))
			return -EFAULT;
		return 0;
	}
	return -ENOENT;
}
