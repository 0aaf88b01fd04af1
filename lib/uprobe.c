// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Many uprobes in one uprobe_multi link (Linux 6.6). Releasing a link
 * waits for one RCU grace period, where separate perf uprobes wait for one
 * each, one after another, with their breakpoints still trapping
 * meanwhile. Debian 12's headers and libbpf 1.1 predate these links, so
 * the attach is made here, by the book of the UAPI.
 *
 * Every uprobe is attached and released by a holder process: the kernel
 * writes a uprobe's breakpoint into the target's code from the thread
 * that asks, and gives up on the write when that thread has a SIGKILL
 * pending (get_user_pages stops on a fatal signal). A registration cut
 * short that way rolls back with the same failing write and leaves its
 * breakpoints in the target, which then dies of SIGTRAP at the next hit
 * (seen: `pool` SIGKILLed 52 ms into its attach left an int3 at
 * uv__work_submit). The holder is a child of a child, in a session of its
 * own, ignoring the signals a terminal sends: a SIGKILL of uvscope, or
 * Ctrl-C, reaches no thread of it. It holds every uprobe link uvscope
 * made; when uvscope's end of their socket closes, whatever the way it
 * ended, the holder releases them all, calmly, and exits.
 *
 * And the reaper, which releases any command's other probes with their
 * grace periods overlapped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/perf_event.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "uvscope.h"

static int uvs__attach_multi(int prog_fd, const char *path, pid_t pid,
			     const uint64_t *offs, const uint64_t *cookies,
			     int n, bool ret)
{
	union {
		struct {
			__u32 prog_fd, target_fd, attach_type, flags;
			__u64 path, offsets, ref_ctr_offsets, cookies;
			__u32 cnt, flags2, pid;
		} lc;
		union bpf_attr attr;
	} a;
	int fd;

	if (!n)
		return -ENODATA; /* nothing to attach: no link */
	memset(&a, 0, sizeof(a));
	a.lc.prog_fd = prog_fd;
	a.lc.attach_type = UVS_TRACE_UPROBE_MULTI;
	a.lc.path = (uintptr_t)path;
	a.lc.offsets = (uintptr_t)offs;
	a.lc.cookies = (uintptr_t)cookies;
	a.lc.cnt = n;
	a.lc.flags2 = ret ? 1 /* BPF_F_UPROBE_MULTI_RETURN */ : 0;
	a.lc.pid = pid;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

static void *uvs__destroy_link(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

static void *uvs__close_fd(void *fd)
{
	close((int)(intptr_t)fd);
	return NULL;
}

static void uvs__reap(struct uvs_reaper *r, void *(*fn)(void *), void *arg)
{
	/* no thread to spare: released here, the wait not overlapped */
	if (r->n >= UVS_MAX_REAP && !uvs_reap_wait(r, false) &&
	    r->n >= UVS_MAX_REAP) {
		fn(arg);
		return;
	}
	if (pthread_create(&r->th[r->n], NULL, fn, arg))
		fn(arg);
	else
		r->n++;
}

void uvs_reap_link(struct uvs_reaper *r, struct bpf_link **link)
{
	if (!*link)
		return;
	uvs__reap(r, uvs__destroy_link, *link);
	*link = NULL;
}

void uvs_reap_fd(struct uvs_reaper *r, int *fd)
{
	if (*fd < 0)
		return;
	uvs__reap(r, uvs__close_fd, (void *)(intptr_t)*fd);
	*fd = -1;
}

void uvs_reap_skel(struct uvs_reaper *r, const struct bpf_object_skeleton *s)
{
	int i;

	for (i = 0; s && i < s->prog_cnt; i++) {
		const struct bpf_prog_skeleton *p = (const void *)
			((const char *)s->progs + (size_t)i * s->prog_skel_sz);

		if (p->link)
			uvs_reap_link(r, p->link);
	}
}

bool uvs_reap_wait(struct uvs_reaper *r, bool wait)
{
	int i, left = 0;

	for (i = 0; i < r->n; i++) {
		if (wait)
			pthread_join(r->th[i], NULL);
		else if (pthread_tryjoin_np(r->th[i], NULL))
			r->th[left++] = r->th[i];
	}
	r->n = left;
	return !left;
}

static struct uvs_reaper uvs__shared;

static void uvs__reap_shared(void)
{
	uvs_reap_wait(&uvs__shared, true);
}

struct uvs_reaper *uvs_reaper_shared(void)
{
	static bool registered;

	if (!registered)
		registered = !atexit(uvs__reap_shared);
	return &uvs__shared;
}

/* ---- the uprobe holder ---- */

enum { UVS__H_MULTI = 1, UVS__H_ONE, UVS__H_RELEASE, UVS__H_SETTLED,
       UVS__H_END, UVS__H_WATCH };
#define UVS__H_MAX 64

struct uvs__hreq {
	uint32_t op;
	int32_t handle; /* release: the link */
	int32_t pid;
	uint32_t n;
	uint32_t ret;
	uint64_t offs[UVS__H_MAX];
	uint64_t cookies[UVS__H_MAX];
	char path[4096];
};

struct uvs__hrep {
	int32_t val; /* a handle, 0, or -errno */
	int32_t pid; /* the hello: the holder's pid */
};

/* One perf uprobe (the uprobe PMU: Linux 4.17) running prog_fd, as a
 * link (5.15; before it, the event itself, set to run the program). */
static int uvs__attach_one(int prog_fd, const char *path, pid_t pid,
			   uint64_t off, bool ret, uint64_t cookie)
{
	static int type = -1, retbit = -1;
	struct perf_event_attr a;
	char buf[64];
	int pfd, lfd;

	if (type < 0) {
		if (uvs_read_file("/sys/bus/event_source/devices/uprobe/type",
				  buf, sizeof(buf)) <= 0)
			return -EOPNOTSUPP;
		type = atoi(buf);
		if (uvs_read_file("/sys/bus/event_source/devices/uprobe/"
				  "format/retprobe", buf, sizeof(buf)) > 0 &&
		    !strncmp(buf, "config:", 7))
			retbit = atoi(buf + 7);
	}
	if (ret && (retbit < 0 || retbit > 63))
		return -EOPNOTSUPP;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = type;
	a.config = ret ? 1ull << retbit : 0;
	a.config1 = (uintptr_t)path; /* uprobe_path */
	a.config2 = off;	     /* probe_offset */
	pfd = syscall(__NR_perf_event_open, &a, pid, pid < 0 ? 0 : -1, -1,
		      PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0)
		return -errno;
	{
		LIBBPF_OPTS(bpf_link_create_opts, lo,
			    .perf_event.bpf_cookie = cookie);

		lfd = bpf_link_create(prog_fd, pfd, BPF_PERF_EVENT, &lo);
	}
	if (lfd >= 0) {
		/* the link holds the event */
		close(pfd);
		return lfd;
	}
	if (ioctl(pfd, PERF_EVENT_IOC_SET_BPF, prog_fd) ||
	    ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0)) {
		int err = -errno;

		close(pfd);
		return err;
	}
	return pfd;
}

static ssize_t uvs__recv(int sock, void *buf, size_t len, int *fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} c;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = c.b,
			    .msg_controllen = sizeof(c.b) };
	struct cmsghdr *h;
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	for (h = CMSG_FIRSTHDR(&m); n >= 0 && h; h = CMSG_NXTHDR(&m, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
		    h->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(h), sizeof(int));
	return n;
}

/* The links the holder holds, each under an id of its own (never reused:
 * a window's links released by the watch thread may be released by
 * uvscope again, later, when their fds are another window's). */
struct uvs__held {
	pthread_mutex_t mu;	/* the main thread's and the watch thread's */
	struct uvs_reaper r;
	int fd[1024];
	int id[1024];
	int n, next_id;
	/* windows to close when their probes say so (UVS__H_WATCH) */
	struct uvs__watch {
		int ring;	/* readable: the window ended */
		int n;
		int id[UVS__H_MAX];
	} w[8];
	int nw;
	int wake[2];		/* the watch thread's: the watches changed */
	pthread_t th;
	bool th_on, end;
};

static int uvs__hold(struct uvs__held *h, int fd)
{
	if (fd < 0)
		return fd;
	if (h->n == (int)(sizeof(h->fd) / sizeof(h->fd[0]))) {
		close(fd);
		return -EMFILE;
	}
	if (h->next_id == INT32_MAX)
		h->next_id = 0;
	h->fd[h->n] = fd;
	h->id[h->n] = ++h->next_id;
	return h->id[h->n++];
}

/* Called with h->mu held. */
static int uvs__unhold(struct uvs__held *h, int id)
{
	int i, fd;

	for (i = 0; i < h->n; i++)
		if (h->id[i] == id) {
			fd = h->fd[i];
			h->n--;
			h->fd[i] = h->fd[h->n];
			h->id[i] = h->id[h->n];
			uvs_reap_fd(&h->r, &fd);
			return 0;
		}
	return -EBADF;
}

static bool uvs__holds(struct uvs__held *h, int id)
{
	int i;

	for (i = 0; i < h->n; i++)
		if (h->id[i] == id)
			return true;
	return false;
}

/* The watch thread: releases a window's links the moment its probes say
 * the window's budget is spent (a record in their ring). It runs at
 * real-time priority where it may, so that a window ends on time when
 * the CPUs are busy; it only ever sleeps in poll or closes links. */
static void *uvs__watcher(void *arg)
{
	struct uvs__held *h = arg;
	struct pollfd pf[9];
	int i, j, k, n;
	char b[64];

	for (;;) {
		pthread_mutex_lock(&h->mu);
		/* drop the watches whose links are all gone already */
		for (i = 0; i < h->nw; i++) {
			for (j = k = 0; j < h->w[i].n; j++)
				k += uvs__holds(h, h->w[i].id[j]);
			if (k)
				continue;
			close(h->w[i].ring);
			h->w[i--] = h->w[--h->nw];
		}
		if (h->end) {
			pthread_mutex_unlock(&h->mu);
			return NULL;
		}
		pf[0].fd = h->wake[0];
		pf[0].events = POLLIN;
		for (i = 0; i < h->nw; i++) {
			pf[i + 1].fd = h->w[i].ring;
			pf[i + 1].events = POLLIN;
		}
		n = h->nw + 1;
		pthread_mutex_unlock(&h->mu);
		if (poll(pf, n, -1) < 0 && errno != EINTR)
			return NULL;
		if (pf[0].revents & POLLIN)
			while (read(h->wake[0], b, sizeof(b)) > 0)
				;
		pthread_mutex_lock(&h->mu);
		/* the watches are as polled: only this thread removes them,
		 * and the main thread adds at the end */
		for (i = n - 2; i >= 0; i--) {
			if (!(pf[i + 1].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			for (j = 0; j < h->w[i].n; j++)
				uvs__unhold(h, h->w[i].id[j]);
			close(h->w[i].ring);
			h->w[i] = h->w[--h->nw];
		}
		pthread_mutex_unlock(&h->mu);
	}
}

static void uvs__wake(struct uvs__held *h)
{
	if (h->th_on && write(h->wake[1], "", 1) < 0 && errno != EAGAIN)
		uvs_debug("holder: cannot wake its watch thread: %s",
			  strerror(errno));
}

/* Watches ring (taken) for the end of the window of n links; called with
 * h->mu held. */
static int uvs__watch(struct uvs__held *h, int ring, const uint64_t *ids,
		      int n)
{
	struct sched_param sp = { .sched_priority = 1 };
	struct uvs__watch *w;
	int i;

	if (n < 0 || n > UVS__H_MAX || ring < 0)
		return -EINVAL;
	if (h->nw == (int)(sizeof(h->w) / sizeof(h->w[0])))
		return -EBUSY;
	if (!h->th_on) {
		if (pipe2(h->wake, O_CLOEXEC | O_NONBLOCK))
			return -errno;
		if (pthread_create(&h->th, NULL, uvs__watcher, h)) {
			close(h->wake[0]);
			close(h->wake[1]);
			return -EAGAIN;
		}
		/* real time where allowed (root); else as it is */
		pthread_setschedparam(h->th, SCHED_FIFO, &sp);
		h->th_on = true;
	}
	w = &h->w[h->nw++];
	w->ring = ring;
	w->n = n;
	for (i = 0; i < n; i++)
		w->id[i] = (int)ids[i];
	uvs__wake(h);
	return 0;
}

static void uvs__holder_serve(int sock)
{
	struct uvs__hreq *q = malloc(sizeof(*q));
	struct uvs__held *h = calloc(1, sizeof(*h));
	struct uvs__hrep rep = { 0, getpid() };
	struct sigaction sa;
	int fd, pfd, devnull;

	/* nothing of uvscope's but the socket: its pipes (a test's, a
	 * shell's) close when uvscope ends, not when the holder does */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (fd = 0; fd < 3; fd++)
		if (devnull >= 0 && devnull != fd)
			dup2(devnull, fd);
	if (sock > 3)
		syscall(__NR_close_range, 3, sock - 1, 0);
	syscall(__NR_close_range, sock + 1, ~0u, 0);
	setsid();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	prctl(PR_SET_NAME, "uvscope-uprobes", 0, 0, 0);
	if (!q || !h || send(sock, &rep, sizeof(rep), 0) < 0)
		_exit(1);
	pthread_mutex_init(&h->mu, NULL);
	for (;;) {
		ssize_t n = uvs__recv(sock, q, sizeof(*q), &pfd);
		bool end = false;

		if (n <= 0)
			break; /* uvscope is gone, whatever the way */
		rep.val = -EINVAL;
		q->path[sizeof(q->path) - 1] = '\0';
		pthread_mutex_lock(&h->mu);
		switch (n == sizeof(*q) ? q->op : 0) {
		case UVS__H_MULTI:
			if (pfd >= 0 && q->n <= UVS__H_MAX)
				rep.val = uvs__hold(h, uvs__attach_multi(
					pfd, q->path, q->pid, q->offs,
					q->cookies, q->n, q->ret));
			break;
		case UVS__H_ONE:
			if (pfd >= 0)
				rep.val = uvs__hold(h, uvs__attach_one(
					pfd, q->path, q->pid, q->offs[0],
					q->ret, q->cookies[0]));
			break;
		case UVS__H_RELEASE:
			rep.val = uvs__unhold(h, q->handle);
			uvs__wake(h);
			break;
		case UVS__H_WATCH:
			rep.val = uvs__watch(h, pfd, q->offs, q->n);
			if (!rep.val)
				pfd = -1; /* the watch's now */
			break;
		case UVS__H_SETTLED:
			rep.val = uvs_reap_wait(&h->r, false);
			break;
		case UVS__H_END:
			end = true;
			break;
		}
		pthread_mutex_unlock(&h->mu);
		if (pfd >= 0)
			close(pfd);
		if (end)
			break;
		if (send(sock, &rep, sizeof(rep), 0) < 0)
			break;
	}
	/* every link released here, each by a thread with no signal
	 * pending, and none running when the process exits */
	pthread_mutex_lock(&h->mu);
	h->end = true;
	uvs__wake(h);
	while (h->n)
		uvs__unhold(h, h->id[0]);
	pthread_mutex_unlock(&h->mu);
	if (h->th_on)
		pthread_join(h->th, NULL);
	uvs_reap_wait(&h->r, true);
	rep.val = 0;
	send(sock, &rep, sizeof(rep), MSG_NOSIGNAL);
	_exit(0);
}

static struct {
	pthread_mutex_t mu;
	int sock;
	pid_t pid;
	int err; /* the holder could not be started, or is gone */
} uvs__h = { PTHREAD_MUTEX_INITIALIZER, -1, 0, 0 };

/* Starts the holder: a child of a child (no zombie of uvscope's, nothing
 * uvscope's waits can reap). Called with the lock held. */
static int uvs__holder_start(void)
{
	struct uvs__hrep hello;
	int sv[2], status, fd;
	pid_t c;

	if (uvs__h.sock >= 0 || uvs__h.err)
		return uvs__h.err;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return uvs__h.err = -errno;
	c = fork();
	if (c < 0) {
		uvs__h.err = -errno;
		close(sv[0]);
		close(sv[1]);
		return uvs__h.err;
	}
	if (!c) {
		close(sv[0]);
		c = fork();
		if (!c)
			uvs__holder_serve(sv[1]);
		_exit(c < 0);
	}
	close(sv[1]);
	while (waitpid(c, &status, 0) < 0 && errno == EINTR)
		;
	if (uvs__recv(sv[0], &hello, sizeof(hello), &fd) != sizeof(hello)) {
		close(sv[0]);
		return uvs__h.err = -ECHILD;
	}
	uvs__h.sock = sv[0];
	uvs__h.pid = hello.pid;
	/* at uvscope's end: all released before it exits */
	atexit(uvs_uprobe__end);
	uvs_debug("uprobes held by pid %d (uvscope-uprobes)", hello.pid);
	return 0;
}

/* One request, with a program's fd to pass (or -1); its answer. */
static int uvs__ask(struct uvs__hreq *q, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} c;
	struct iovec iov = { q, sizeof(*q) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct uvs__hrep rep;
	int err, got;
	ssize_t n;

	pthread_mutex_lock(&uvs__h.mu);
	err = uvs__holder_start();
	if (err)
		goto out;
	if (fd >= 0) {
		memset(&c, 0, sizeof(c));
		m.msg_control = c.b;
		m.msg_controllen = sizeof(c.b);
		c.h.cmsg_level = SOL_SOCKET;
		c.h.cmsg_type = SCM_RIGHTS;
		c.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&c.h), &fd, sizeof(int));
	}
	do
		n = sendmsg(uvs__h.sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(*q))
		n = uvs__recv(uvs__h.sock, &rep, sizeof(rep), &got);
	else
		n = -1;
	if (n != (ssize_t)sizeof(rep)) {
		/* killed by someone: what it held, the kernel released */
		uvs__h.err = -EPIPE;
		close(uvs__h.sock);
		uvs__h.sock = -1;
		err = uvs_seterr(-EPIPE, "uvscope's uprobe holder (pid %d) "
				 "is gone", uvs__h.pid);
		goto out;
	}
	err = rep.val;
out:
	pthread_mutex_unlock(&uvs__h.mu);
	return err;
}

int uvs_uprobe__start(void)
{
	int err;

	pthread_mutex_lock(&uvs__h.mu);
	err = uvs__holder_start();
	pthread_mutex_unlock(&uvs__h.mu);
	return err;
}

static struct uvs__hreq *uvs__req(uint32_t op, const char *path, pid_t pid,
				  bool ret)
{
	struct uvs__hreq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->op = op;
	q->pid = pid;
	q->ret = ret;
	if (path && snprintf(q->path, sizeof(q->path), "%s", path) >=
			    (int)sizeof(q->path)) {
		free(q);
		errno = ENAMETOOLONG;
		return NULL;
	}
	return q;
}

int uvs_uprobe_multi__attach(int prog_fd, const char *path, pid_t pid,
			     const uint64_t *offs, const uint64_t *cookies,
			     int n, bool ret)
{
	struct uvs__hreq *q;
	int err;

	if (!n)
		return -ENODATA; /* nothing to attach: no link */
	if (n < 0 || n > UVS__H_MAX)
		return -E2BIG;
	q = uvs__req(UVS__H_MULTI, path, pid, ret);
	if (!q)
		return -errno;
	q->n = n;
	memcpy(q->offs, offs, n * sizeof(*offs));
	memcpy(q->cookies, cookies, n * sizeof(*cookies));
	err = uvs__ask(q, prog_fd);
	free(q);
	return err;
}

int uvs_uprobe__attach(int prog_fd, const char *path, pid_t pid,
		       uint64_t off, bool ret, uint64_t cookie)
{
	struct uvs__hreq *q = uvs__req(UVS__H_ONE, path, pid, ret);
	int err;

	if (!q)
		return -errno;
	q->offs[0] = off;
	q->cookies[0] = cookie;
	err = uvs__ask(q, prog_fd);
	free(q);
	return err;
}

void uvs_uprobe__release(int *handle)
{
	struct uvs__hreq *q;

	if (*handle < 0)
		return;
	q = uvs__req(UVS__H_RELEASE, NULL, 0, false);
	if (q) {
		q->handle = *handle;
		uvs__ask(q, -1);
		free(q);
	}
	*handle = -1;
}

int uvs_uprobe__watch(int ring_fd, const int *handles, int n)
{
	struct uvs__hreq *q;
	int i, k, err;

	if (n < 0 || n > UVS__H_MAX)
		return -E2BIG;
	q = uvs__req(UVS__H_WATCH, NULL, 0, false);
	if (!q)
		return -errno;
	for (i = k = 0; i < n; i++)
		if (handles[i] >= 0)
			q->offs[k++] = handles[i];
	q->n = k;
	err = k ? uvs__ask(q, ring_fd) : 0;
	free(q);
	return err;
}

bool uvs_uprobe__settled(void)
{
	struct uvs__hreq *q;
	bool running;
	int err;

	pthread_mutex_lock(&uvs__h.mu);
	running = uvs__h.sock >= 0;
	pthread_mutex_unlock(&uvs__h.mu);
	if (!running)
		return true;
	q = uvs__req(UVS__H_SETTLED, NULL, 0, false);
	if (!q)
		return false;
	err = uvs__ask(q, -1);
	free(q);
	return err != 0;
}

void uvs_uprobe__settle(int timeout_ms)
{
	uint64_t end = uvs_now_ns() + timeout_ms * 1000000ull;

	while (!uvs_uprobe__settled() && uvs_now_ns() < end)
		usleep(1000);
}

void uvs_uprobe__end(void)
{
	struct uvs__hreq *q;

	pthread_mutex_lock(&uvs__h.mu);
	if (uvs__h.sock >= 0 && (q = uvs__req(UVS__H_END, NULL, 0, false))) {
		struct uvs__hrep rep;
		int fd;

		/* its answer comes once all it held is released */
		if (send(uvs__h.sock, q, sizeof(*q), MSG_NOSIGNAL) ==
		    (ssize_t)sizeof(*q))
			uvs__recv(uvs__h.sock, &rep, sizeof(rep), &fd);
		free(q);
	}
	if (uvs__h.sock >= 0)
		close(uvs__h.sock);
	uvs__h.sock = -1;
	pthread_mutex_unlock(&uvs__h.mu);
}
