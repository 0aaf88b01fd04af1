// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What keeps a loop alive, read from the target's memory with
 * process_vm_readv, without stopping it: walk the loop's handle queue with
 * the layout of the target's libuv version, check the walk as it goes (a
 * proper circular list, every handle pointing back at the loop, types in
 * range), and describe each handle the way a user knows it.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "uvscope.h"

/* libuv's handle flags (src/uv-common.h), the same from 1.44 to 1.51 */
#define UVH_CLOSING 0x01
#define UVH_CLOSED 0x02
#define UVH_ACTIVE 0x04
#define UVH_REF 0x08
#define UVH_INTERNAL 0x10
#define UVS_MAX_HANDLES 100000

int uvs_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

struct uvs__why {
	pid_t pid;
	struct uvs_layout *ly;
	struct uvs_syms *syms;
	long h_queue, h_loop, h_type, h_flags, l_queue, l_time, l_reqs;
	long l_wq_async, l_backend_fd;
	long type_max;
};

static int uvs__rd64(struct uvs__why *w, uint64_t a, uint64_t *v)
{
	return uvs_mem_read(w->pid, a, v, 8);
}

static int uvs__rd32(struct uvs__why *w, uint64_t a, uint32_t *v)
{
	return uvs_mem_read(w->pid, a, v, 4);
}

/* A member of the struct at a, where the profile puts it: 0, or -1 (and
 * *v zeroed) when the profile lacks it or the target's memory does not
 * read; a missing offset is never read as -1 bytes before the struct. */
static int uvs__fld(struct uvs__why *w, uint64_t a, const char *type,
		    const char *field, void *v, size_t n)
{
	long off = uvs_layout__off(w->ly, type, field);

	if (off >= 0 && a && !uvs_mem_read(w->pid, a + off, v, n))
		return 0;
	memset(v, 0, n);
	return -1;
}

/* The request whose work_req is at wk; 0 when the profile lacks it (the
 * reads from 0 that follow fail and leave their values empty). */
static uint64_t uvs__container(struct uvs__why *w, uint64_t wk,
			       const char *type)
{
	long off = uvs_layout__off(w->ly, type, "work_req");

	return off >= 0 && wk > (uint64_t)off ? wk - off : 0;
}

static void uvs__cstr(struct uvs__why *w, uint64_t a, char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	if (!a || uvs_mem_read(w->pid, a, buf, len - 1)) {
		/* a string near the end of a mapping: byte by byte */
		for (i = 0; a && i < len - 1; i++)
			if (uvs_mem_read(w->pid, a + i, buf + i, 1) || !buf[i])
				break;
		buf[a ? i : 0] = '\0';
	}
	buf[len - 1] = '\0';
}

static const char *uvs__type_name(int t)
{
	static const char *const n[] = {
		"unknown", "async", "check", "fs_event", "fs_poll", "handle",
		"idle", "pipe", "poll", "prepare", "process", "stream", "tcp",
		"timer", "tty", "udp", "signal", "file",
	};

	return t >= 0 && t < 18 ? n[t] : "unknown";
}

static void uvs__cb_name(struct uvs__why *w, uint64_t cb, char *buf,
			 size_t len)
{
	if (!cb || !w->syms) {
		buf[0] = '\0';
		return;
	}
	uvs_syms__callback(w->syms, cb, buf, len);
}

/* /proc/net/tcp6 prints an address as four 32-bit words in host order. */
static void uvs__ip6(const char *hex, char *out, size_t len)
{
	unsigned char b[16];
	char txt[INET6_ADDRSTRLEN];
	int i;

	for (i = 0; i < 4; i++) {
		char word[9];
		uint32_t v;

		memcpy(word, hex + i * 8, 8);
		word[8] = '\0';
		v = strtoul(word, NULL, 16);
		memcpy(b + i * 4, &v, 4);
	}
	if (!inet_ntop(AF_INET6, b, txt, sizeof(txt)))
		snprintf(txt, sizeof(txt), "?");
	snprintf(out, len, "[%s]", txt);
}

/* Finds the socket with this inode in /proc/PID/net/{tcp,tcp6,udp,udp6}
 * and describes it. */
static bool uvs__inet(struct uvs__why *w, unsigned long ino, bool udp,
		      char *buf, size_t len)
{
	static const char *const tabs[2][2] = { { "tcp", "tcp6" },
						 { "udp", "udp6" } };
	char path[64], line[512];
	int t;

	for (t = 0; t < 2; t++) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/net/%s", w->pid,
			 tabs[udp][t]);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			char la[64], ra[64];
			unsigned lp, rp, st;
			unsigned long i;
			char lh[64], rh[64];

			if (sscanf(line, " %*d: %63[0-9A-F]:%x %63[0-9A-F]:%x %x "
				   "%*s %*s %*s %*s %*s %lu", la, &lp, ra, &rp,
				   &st, &i) != 6 || i != ino)
				continue;
			if (strlen(la) == 8) {
				unsigned a = strtoul(la, NULL, 16),
					 b = strtoul(ra, NULL, 16);

				snprintf(lh, sizeof(lh), "%u.%u.%u.%u", a & 255,
					 (a >> 8) & 255, (a >> 16) & 255, a >> 24);
				snprintf(rh, sizeof(rh), "%u.%u.%u.%u", b & 255,
					 (b >> 8) & 255, (b >> 16) & 255, b >> 24);
			} else {
				uvs__ip6(la, lh, sizeof(lh));
				uvs__ip6(ra, rh, sizeof(rh));
			}
			if (udp)
				snprintf(buf, len, "bound to %s:%u", lh, lp);
			else if (st == 0x0A)
				snprintf(buf, len, "listening on %s:%u", lh, lp);
			else
				snprintf(buf, len, "connected %s:%u -> %s:%u", lh,
					 lp, rh, rp);
			fclose(f);
			return true;
		}
		fclose(f);
	}
	return false;
}

/* A unix socket: its path if it has one (from /proc/PID/net/unix). */
static bool uvs__unix(struct uvs__why *w, unsigned long ino, int fd,
		      char *buf, size_t len)
{
	char path[64], line[4400];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/unix", w->pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long i;
		unsigned st;
		char p[4096] = "";

		if (sscanf(line, "%*s %*s %*s %*s %*s %x %lu %4095s", &st, &i,
			   p) < 2 || i != ino)
			continue;
		fclose(f);
		if (p[0])
			snprintf(buf, len, "%s %s (fd %d)", st == 1 ?
				 "listening on" : "unix socket", p, fd);
		else
			snprintf(buf, len, "unix socket, unnamed (fd %d): a "
				 "socketpair, as for a child's stdio", fd);
		return true;
	}
	fclose(f);
	return false;
}

static void uvs__fd_detail(struct uvs__why *w, int type, int fd, char *buf,
			   size_t len)
{
	char path[64], link[512];
	unsigned long ino;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", w->pid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0) {
		snprintf(buf, len, "fd %d", fd);
		return;
	}
	link[n] = '\0';
	if (sscanf(link, "socket:[%lu]", &ino) == 1) {
		if ((type == 12 || type == 15) &&
		    uvs__inet(w, ino, type == 15, buf, len))
			return;
		if (type == 7 && uvs__unix(w, ino, fd, buf, len))
			return;
	}
	snprintf(buf, len, "fd %d: %s", fd, link);
}

static void uvs__describe(struct uvs__why *w, uint64_t h, int type,
			  struct uvs_why_handle *o)
{
	static const char *const st[] = {
		[7] = "uv_pipe_t", [12] = "uv_tcp_t", [14] = "uv_tty_t",
		[15] = "uv_udp_t", [8] = "uv_poll_t",
	};
	uint64_t v = 0, cb = 0;
	uint32_t u = 0;
	long off;
	char tmp[256];

	switch (type) {
	case 13: { /* timer */
		uint64_t timeout = 0, repeat = 0;
		struct timespec ts;
		int64_t now, due;

		if (uvs__fld(w, h, "uv_timer_t", "timeout", &timeout, 8) ||
		    uvs__fld(w, h, "uv_timer_t", "repeat", &repeat, 8)) {
			snprintf(o->detail, sizeof(o->detail), "(unreadable)");
			break;
		}
		uvs__fld(w, h, "uv_timer_t", "timer_cb", &cb, 8);
		/* loop->time is CLOCK_MONOTONIC_COARSE in ms */
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		now = ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		due = (int64_t)timeout - now;
		o->due_ms = due;
		o->repeat_ms = repeat;
		if (o->flags & UVH_ACTIVE)
			snprintf(o->detail, sizeof(o->detail), "due in %lld ms%s",
				 (long long)(due > 0 ? due : 0),
				 repeat ? ", repeats" : "");
		else
			snprintf(o->detail, sizeof(o->detail), "stopped");
		if (repeat) {
			size_t l = strlen(o->detail);

			snprintf(o->detail + l, sizeof(o->detail) - l,
				 " every %llu ms", (unsigned long long)repeat);
		}
		break;
	}
	case 16: /* signal */
		if (uvs__fld(w, h, "uv_signal_t", "signum", &u, 4)) {
			snprintf(o->detail, sizeof(o->detail), "(unreadable)");
			break;
		}
		o->signum = u;
		if (u && sigabbrev_np(u))
			snprintf(o->detail, sizeof(o->detail), "SIG%s",
				 sigabbrev_np(u));
		else
			snprintf(o->detail, sizeof(o->detail), "no signal set");
		break;
	case 10: { /* process */
		char path[96], cmd[256];
		int n, i;

		if (uvs__fld(w, h, "uv_process_t", "pid", &u, 4)) {
			snprintf(o->detail, sizeof(o->detail), "(unreadable)");
			break;
		}
		o->child_pid = u;
		/* the pid is the target's namespace's: its own /proc names
		 * it (the host's /proc, a stranger with that number) */
		snprintf(path, sizeof(path), "/proc/%d/root/proc/%u/cmdline",
			 w->pid, u);
		n = uvs_read_file(path, cmd, sizeof(cmd));
		for (i = 0; i < n - 1; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		snprintf(o->detail, sizeof(o->detail), "child pid %u: %s", u,
			 n > 0 ? cmd : "(exited)");
		break;
	}
	case 3: /* fs_event */
		uvs__fld(w, h, "uv_fs_event_t", "path", &v, 8);
		uvs__cstr(w, v, tmp, sizeof(tmp));
		snprintf(o->detail, sizeof(o->detail), "watching %s",
			 tmp[0] ? tmp : "(path unreadable)");
		break;
	case 4: { /* fs_poll: the path is at the end of libuv's private
		   * struct poll_ctx (src/fs-poll.c), laid out from the sizes of
		   * its members, which the profile has */
		long tsz = uvs_layout__size(w->ly, "uv_timer_t");
		long fsz = uvs_layout__size(w->ly, "uv_fs_t");
		long ssz = 160; /* uv_stat_t: 12 uint64 + 4 timespecs */
		uint64_t ctx = 0;
		uint32_t interval = 0;

		off = uvs_layout__off(w->ly, "uv_fs_poll_t", "poll_ctx");
		if (off < 0 || tsz < 0 || fsz < 0 ||
		    uvs__rd64(w, h + off, &ctx) || !ctx)
			break;
		/* parent, busy_polling, interval, start_time, loop, poll_cb */
		uvs__rd32(w, ctx + 12, &interval);
		uvs__cstr(w, ctx + 40 + ((tsz + 7) & ~7L) + ((fsz + 7) & ~7L) +
			  ssz + 8, tmp, sizeof(tmp));
		snprintf(o->detail, sizeof(o->detail), "polling %s every %u ms",
			 tmp[0] ? tmp : "(path unreadable)", interval);
		break;
	}
	case 7: case 8: case 12: case 14: case 15:
		off = uvs_layout__off(w->ly, st[type], "io_watcher.fd");
		if (off >= 0 && !uvs__rd32(w, h + off, &u)) {
			o->fd = (int)u;
			uvs__fd_detail(w, type, (int)u, o->detail,
				       sizeof(o->detail));
		}
		break;
	case 1: case 2: case 6: case 9: { /* async check idle prepare */
		static const char *const t[10][2] = {
			[1] = { "uv_async_t", "async_cb" },
			[2] = { "uv_check_t", "check_cb" },
			[6] = { "uv_idle_t", "idle_cb" },
			[9] = { "uv_prepare_t", "prepare_cb" },
		};

		uvs__fld(w, h, t[type][0], t[type][1], &cb, 8);
		break;
	}
	}
	uvs__cb_name(w, cb, o->callback, sizeof(o->callback));
	/* callback[] is shorter than detail[] */
	if (!o->detail[0] && o->callback[0])
		memcpy(o->detail, o->callback, strlen(o->callback) + 1);
}

/* Walks one loop's handle queue into out (as loop number idx), or, with
 * out NULL, only checks that it is one. Every step is checked, so that a
 * layout that does not fit is refused rather than printed. */
static int uvs__walk(struct uvs__why *w, const struct uvs_target *t,
		     uint64_t loop, struct uvs_why_report *out, int idx)
{
	uint64_t head = loop + w->l_queue, node, prev = head;
	uint32_t count = 0;
	int n = 0;

	if (uvs__rd32(w, loop + w->l_reqs, &count) || uvs__rd64(w, head, &node))
		return out ? uvs_seterr(-EFAULT, "cannot read the loop at %#llx "
					"in pid %d", (unsigned long long)loop,
					t->pid) : -EFAULT;
	if (out) {
		out->loops[idx].active_reqs = count;
		if (!idx)
			out->active_reqs = count;
	}
	while (node != head) {
		struct uvs_why_handle *o;
		uint64_t h = node - w->h_queue, hl = 0, back = 0;
		uint32_t type = 0, flags = 0;

		if (++n > UVS_MAX_HANDLES || !node ||
		    uvs__rd64(w, h + w->h_loop, &hl) ||
		    uvs__rd32(w, h + w->h_type, &type) ||
		    uvs__rd32(w, h + w->h_flags, &flags) ||
		    uvs__rd64(w, node + 8, &back))
			return out ? uvs_seterr(-EFAULT, "the handle queue of the "
						"loop at %#llx could not be walked "
						"(the process ended, or its memory "
						"changed under the walk)",
						(unsigned long long)loop) : -EFAULT;
		if (hl != loop || !type || type >= (uint32_t)w->type_max ||
		    back != prev)
			return out ? uvs_seterr(-EINVAL, "libuv %s layout check "
						"failed at handle %#llx (loop %#llx, "
						"type %u): refusing to guess",
						t->libuv_version,
						(unsigned long long)h,
						(unsigned long long)hl, type)
				   : -EINVAL;
		if (out && out->nhandles < UVS_WHY_MAX) {
			o = &out->handles[out->nhandles++];
			o->addr = h;
			o->loop = idx;
			o->type = type;
			o->flags = flags;
			o->fd = -1;
			snprintf(o->type_name, sizeof(o->type_name), "%s",
				 uvs__type_name(type));
			uvs__describe(w, h, type, o);
			if (flags & (UVH_CLOSING | UVH_CLOSED))
				o->why_not = "closing";
			else if (!(flags & UVH_ACTIVE))
				o->why_not = "inactive";
			else if (flags & UVH_INTERNAL)
				o->why_not = "libuv's own";
			else if (!(flags & UVH_REF))
				o->why_not = "unref'd";
			else if (idx)
				out->loops[idx].keepers++;
			else
				out->keepers++;
		} else if (out) {
			out->truncated = true;
		}
		prev = node;
		if (uvs__rd64(w, node, &node))
			return out ? uvs_seterr(-EFAULT, "cannot read pid %d's "
						"memory", t->pid) : -EFAULT;
	}
	return 0;
}

/* The thread waiting in epoll on this loop's fd, from /proc's record of
 * each thread's system call (first argument), or 0. */
static pid_t uvs__loop_thread(struct uvs__why *w, uint64_t loop)
{
	char path[96];
	struct dirent *de;
	uint32_t fd;
	pid_t found = 0;
	DIR *d;

	if (uvs__rd32(w, loop + w->l_backend_fd, &fd))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", w->pid);
	d = opendir(path);
	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		long nr, a0;
		pid_t tid = atoi(de->d_name);

		if (tid > 0 && uvs_proc_syscall(w->pid, tid, &nr, &a0) == 1 &&
		    uvs_is_epoll_wait(nr) && a0 == (long)fd)
			found = tid;
	}
	closedir(d);
	return found;
}

/* Whether the loop's thread is waiting in its poll or busy (running a
 * callback, or the program's code before the loop's first poll), and for
 * a busy one how long at least: since the loop's clock (uv_now, updated
 * as each poll returns) last moved. A hung callback keeps the loop's
 * handles as they were, so they are read all the same. */
static void uvs__loop_state(struct uvs__why *w, uint64_t loop, pid_t tid,
			    int *state, double *busy_ms)
{
	uint64_t ms = 0;
	struct timespec now;
	long nr, fd;
	uint32_t lfd;
	int in;

	*state = UVS_LOOP_UNKNOWN;
	*busy_ms = -1;
	if (!tid || uvs__rd32(w, loop + w->l_backend_fd, &lfd))
		return;
	in = uvs_proc_syscall(w->pid, tid, &nr, &fd);
	if (in < 0)
		return;
	if (in == 1 && uvs_is_epoll_wait(nr) && fd == (long)lfd) {
		*state = UVS_LOOP_WAITING;
		return;
	}
	*state = UVS_LOOP_BUSY;
	if (w->l_time >= 0 && !uvs__rd64(w, loop + w->l_time, &ms) && ms &&
	    !clock_gettime(CLOCK_MONOTONIC, &now)) {
		double t = now.tv_sec * 1e3 + now.tv_nsec / 1e6;

		if (t >= (double)ms)
			*busy_ms = t - (double)ms;
	}
}

/* Other loops (Node worker threads run one each) are found by what every
 * initialised loop holds: its wq_async handle points back at the loop.
 * The process's private writable memory is scanned for that one pointer,
 * and each candidate must then walk as a loop. */
struct uvs__loop_scan {
	struct uvs__why *w;
	const struct uvs_target *t;
	uint64_t main, scanned;
	struct uvs_why_report *out;
};

static int uvs__scan_map(const struct uvs_map_line *l, void *ctx)
{
	struct uvs__loop_scan *sc = ctx;
	struct uvs__why *w = sc->w;
	struct uvs_why_report *out = sc->out;
	const uint64_t k = w->l_wq_async + w->h_loop;
	static uint64_t buf[1 << 17]; /* 1 MiB */
	uint64_t pos;

	if (strcmp(l->perms, "rw-p") || (l->path[0] && strcmp(l->path, "[heap]")))
		return 0;
	for (pos = l->start; pos < l->end && sc->scanned < UVS_WHY_SCAN_MAX;
	     pos += sizeof(buf)) {
		size_t len = l->end - pos < sizeof(buf) ? l->end - pos : sizeof(buf);
		size_t i;

		if (uvs_mem_read(w->pid, pos, buf, len))
			continue;
		sc->scanned += len;
		for (i = 0; i < len / 8; i++) {
			uint64_t cand = pos + i * 8 - k;
			int j;

			if (buf[i] != cand || cand == sc->main)
				continue;
			for (j = 0; j < out->nloops; j++)
				if (out->loops[j].addr == cand)
					break;
			if (j < out->nloops || uvs__walk(w, sc->t, cand, NULL, 0))
				continue;
			out->loops[out->nloops].addr = cand;
			out->loops[out->nloops].tid = uvs__loop_thread(w, cand);
			uvs__loop_state(w, cand, out->loops[out->nloops].tid,
					&out->loops[out->nloops].state,
					&out->loops[out->nloops].busy_ms);
			if (uvs__walk(w, sc->t, cand, out, out->nloops))
				continue;
			if (++out->nloops == UVS_WHY_LOOPS)
				return 1;
		}
	}
	return 0;
}

static void uvs__other_loops(struct uvs__why *w, const struct uvs_target *t,
			     uint64_t main, struct uvs_why_report *out)
{
	struct uvs__loop_scan sc = { w, t, main, 0, out };

	uvs_proc_maps(w->pid, uvs__scan_map, &sc);
	out->scanned_mb = sc.scanned / 1048576.0;
}

/* The loop the program runs: the default loop, unless the loop thread
 * waits in an epoll fd that is not the default loop's (neovim creates the
 * default loop and runs one of its own), or there is no default loop (the
 * loop then on the process's first epoll fd that watches any). Every loop
 * in memory is found as other loops are, and the one on that fd is it; a
 * nested loop (execSync's, on the stack) is not among them. */
static uint64_t uvs__running_loop(struct uvs__why *w, struct uvs_target *t,
				  uint64_t dflt)
{
	struct uvs_why_report *all;
	int fd = uvs_target__epoll_waiting(t, t->loop_tid);
	uint64_t found = 0;
	int32_t dfd = -1;
	int i;

	/* a loop on a thread of its own (not the main thread's), busy
	 * now: its wait is caught within 100 ms, unless it is hung */
	for (i = 0; fd < 0 && t->loop_tid != t->pid && i < 20; i++) {
		usleep(5000);
		fd = uvs_target__epoll_waiting(t, t->loop_tid);
	}

	/* a default loop is left only for a loop the thread is seen in */
	if (dflt && (fd < 0 || (!uvs__rd32(w, dflt + w->l_backend_fd,
					   (uint32_t *)&dfd) && dfd == fd)))
		return dflt;
	if (fd < 0)
		fd = uvs_target__first_epoll_fd(t);
	if (fd < 0)
		return dflt;
	/* that fd scanned for before: none found (a nested loop's, on the
	 * stack), or the one found, if still on it */
	if (t->run_loop_scanned && t->run_loop_fd == fd) {
		if (!t->run_loop)
			return dflt;
		if (!uvs__rd32(w, t->run_loop + w->l_backend_fd,
			       (uint32_t *)&dfd) && dfd == fd)
			return t->run_loop;
	}
	if (!(all = calloc(1, sizeof(*all))))
		return dflt;
	uvs__other_loops(w, t, 0, all);
	for (i = 0; i < all->nloops && !found; i++)
		if (!uvs__rd32(w, all->loops[i].addr + w->l_backend_fd,
			       (uint32_t *)&dfd) && dfd == fd)
			found = all->loops[i].addr;
	uvs_debug("why: the loop on epoll fd %d: %s%#llx (%d loops in %.1f "
		  "MB of memory)", fd, found ? "" : "none; the default loop ",
		  (unsigned long long)(found ? found : dflt), all->nloops,
		  all->scanned_mb);
	free(all);
	t->run_loop = found;
	t->run_loop_fd = fd;
	t->run_loop_scanned = true;
	return found ? found : dflt;
}

/* Requests waiting in the thread pool's queues (libuv's static wq and
 * slow_io_pending_wq, shared by every loop of the process): what they are
 * and for whom. Requests already running on a worker, and other kinds
 * (writes, connects), are only counted, in loop->active_reqs. */
static void uvs__queued_work(struct uvs__why *w, const struct uvs_target *t,
			     struct uvs_why_report *out)
{
	static const char *const names[] = {
		"wq", "slow_io_pending_wq", "exit_message",
		"run_slow_work_message", "uv__fs_work", "uv__getaddrinfo_work",
		"uv__getnameinfo_work", "uv__queue_work", "uv__random_work",
	};
	static const char *const kinds[] = {
		"fs", "getaddrinfo", "getnameinfo", "work", "random",
	};
	const struct uvs_sym *s[9];
	long w_wq = uvs_layout__off(w->ly, "struct uv__work", "wq");
	long w_loop = uvs_layout__off(w->ly, "struct uv__work", "loop");
	int q, i, k;

	uvs_elf__lookup(t->uv_elf, names, 9, s);
	if (!s[0] || w_wq < 0 || w_loop < 0) {
		out->reqs_unlisted = true;
		return;
	}
	for (q = 0; q < 2 && s[q]; q++) {
		uint64_t head = t->uv_bias + s[q]->addr, node, prev = head;
		int n = 0;

		if (uvs__rd64(w, head, &node))
			break;
		while (node && node != head && n++ < 10000) {
			uint64_t wk = node - w_wq, fn = 0, lp = 0, back = 0;
			uint64_t req, p = 0;
			char tmp[200] = "", *d;

			if (uvs__rd64(w, node + 8, &back) || back != prev) {
				out->reqs_unlisted = true; /* moved under us */
				return;
			}
			prev = node;
			if ((s[2] && node == t->uv_bias + s[2]->addr) ||
			    (s[3] && node == t->uv_bias + s[3]->addr) ||
			    uvs__rd64(w, wk, &fn) || uvs__rd64(w, wk + w_loop, &lp))
				goto next;
			for (k = 0; k < 5; k++)
				if (s[4 + k] && fn == t->uv_bias + s[4 + k]->addr)
					break;
			if (out->nreqs == 64)
				break;
			d = out->reqs[out->nreqs].detail;
			snprintf(out->reqs[out->nreqs].type, 16, "%s",
				 k < 5 ? kinds[k] : "work");
			for (i = 0; i < out->nloops; i++)
				if (out->loops[i].addr == lp)
					break;
			out->reqs[out->nreqs].loop = i < out->nloops ? i : -1;
			if (k == 0) {
				uint32_t ft = 0;
				const char *fname;

				req = uvs__container(w, wk, "uv_fs_t");
				uvs__fld(w, req, "uv_fs_t", "fs_type", &ft, 4);
				uvs__fld(w, req, "uv_fs_t", "path", &p, 8);
				uvs__cstr(w, p, tmp, sizeof(tmp));
				fname = uvs_layout__enum_name(w->ly, "uv_fs_type",
							      (int32_t)ft);
				snprintf(d, 256, "%s %s", fname ? fname + 6 : "?",
					 tmp);
				for (; *d && *d != ' '; d++)
					*d = *d >= 'A' && *d <= 'Z' ? *d + 32 : *d;
			} else if (k == 1) {
				req = uvs__container(w, wk, "uv_getaddrinfo_t");
				uvs__fld(w, req, "uv_getaddrinfo_t", "hostname", &p, 8);
				uvs__cstr(w, p, tmp, sizeof(tmp));
				snprintf(d, 256, "%s", tmp);
			} else if (k == 3) {
				req = uvs__container(w, wk, "uv_work_t");
				uvs__fld(w, req, "uv_work_t", "work_cb", &p, 8);
				uvs__cb_name(w, p, d, 256);
			} else if (k == 5) {
				uvs__cb_name(w, fn, d, 256);
			}
			out->nreqs++;
next:
			if (uvs__rd64(w, node, &node))
				break;
		}
	}
}

int uvs_why__snapshot(struct uvs_target *t, struct uvs_why_report *out,
		      unsigned flags)
{
	struct uvs__why w = { .pid = t->pid };
	uint64_t loop;
	int err, dflt_err;

	memset(out, 0, sizeof(*out));
	/* -EAGAIN: not yet (a launched program before it maps libuv or
	 * creates its loop); worth asking again */
	if (!t->uv_bias_known)
		return uvs_seterr(-EAGAIN, "where %s is loaded in pid %d is "
				  "unknown", t->uv_file, t->pid);
	dflt_err = uvs_target__default_loop(t, &loop);
	if (dflt_err)
		loop = 0;
	err = uvs_layout__load(t->libuv_version, &w.ly);
	if (err)
		return err;
	snprintf(out->profile, sizeof(out->profile), "%s",
		 uvs_layout__path(w.ly));
	w.h_queue = uvs_layout__off(w.ly, "uv_handle_t", "handle_queue");
	w.h_loop = uvs_layout__off(w.ly, "uv_handle_t", "loop");
	w.h_type = uvs_layout__off(w.ly, "uv_handle_t", "type");
	w.h_flags = uvs_layout__off(w.ly, "uv_handle_t", "flags");
	w.l_queue = uvs_layout__off(w.ly, "uv_loop_t", "handle_queue");
	w.l_reqs = uvs_layout__off(w.ly, "uv_loop_t", "active_reqs.count");
	w.l_time = uvs_layout__off(w.ly, "uv_loop_t", "time");
	w.type_max = uvs_layout__enum(w.ly, "uv_handle_type",
				      "UV_HANDLE_TYPE_MAX");
	w.l_wq_async = uvs_layout__off(w.ly, "uv_loop_t", "wq_async");
	w.l_backend_fd = uvs_layout__off(w.ly, "uv_loop_t", "backend_fd");
	if (w.h_queue < 0 || w.h_loop < 0 || w.h_type < 0 || w.h_flags < 0 ||
	    w.l_queue < 0 || w.l_reqs < 0 || w.type_max < 0 ||
	    w.l_wq_async < 0 || w.l_backend_fd < 0) {
		err = uvs_seterr(-EINVAL, "%s lacks a field why needs",
				 uvs_layout__path(w.ly));
		goto out;
	}
	if (flags & UVS_WHY_NAMES) {
		err = uvs_syms__open(t->pid, &w.syms);
		if (err) {
			err = uvs_seterr(err, "cannot read /proc/%d/maps",
					 t->pid);
			goto out;
		}
	}
	loop = uvs__running_loop(&w, t, loop);
	if (!loop && dflt_err) {
		err = uvs_seterr(dflt_err, "cannot find the default loop in %s "
				 "(no default_loop_struct, and uv_default_loop "
				 "could not be read), nor another loop in pid "
				 "%d's memory", t->uv_file, t->pid);
		goto out;
	}
	if (!loop) {
		err = uvs_seterr(-EAGAIN, "pid %d has not created libuv's "
				 "default loop, nor another that uvscope "
				 "could find", t->pid);
		goto out;
	}
	out->loop_addr = loop;
	err = uvs__walk(&w, t, loop, out, 0);
	if (err)
		goto out;
	out->nloops = 1;
	out->loops[0].addr = loop;
	out->loops[0].tid = uvs__loop_thread(&w, loop);
	uvs__loop_state(&w, loop, out->loops[0].tid ? out->loops[0].tid
						    : t->loop_tid,
			&out->loops[0].state, &out->loops[0].busy_ms);
	if (flags & UVS_WHY_ALL_LOOPS)
		uvs__other_loops(&w, t, loop, out);
	if (flags & UVS_WHY_REQUESTS)
		uvs__queued_work(&w, t, out);
	err = 0;
out:
	uvs_syms__close(w.syms);
	uvs_layout__close(w.ly);
	return err;
}
