// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include "uvscope.h"
#include "flame.h"

static __thread char errbuf[512];
int uvs_verbose;

const char *uvs_errmsg(void)
{
	return errbuf[0] ? errbuf : "unknown error";
}

int uvs_seterr(int err, const char *fmt, ...)
{
	char msg[sizeof(errbuf)];
	va_list ap;

	/* through a copy: the message may quote the last one (uvs_errmsg) */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(errbuf, msg, sizeof(errbuf));
	return err < 0 ? err : -err;
}

/* A message may carry what a target chose (its comm, a path, a symbol):
 * escaped as every text from it is before it reaches a terminal. */
static void uvs__vprint(const char *prefix, const char *fmt, va_list ap)
{
	char msg[2048], esc[sizeof(msg) * 4];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	fprintf(stderr, "uvscope: %s%s\n", prefix,
		uvs_text_esc(esc, sizeof(esc), msg, n, false));
}

void uvs_debug(const char *fmt, ...)
{
	va_list ap;

	if (!uvs_verbose)
		return;
	va_start(ap, fmt);
	uvs__vprint("", fmt, ap);
	va_end(ap);
}

void uvs_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	uvs__vprint("warning: ", fmt, ap);
	va_end(ap);
}

void uvs_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	uvs__vprint("", fmt, ap);
	va_end(ap);
}

uint64_t uvs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int uvs_find_program(const char *prog, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char *copy, *d, *save;

	if (strchr(prog, '/')) {
		if (access(prog, X_OK))
			return -errno;
		if (!realpath(prog, out))
			return -errno;
		return 0;
	}
	copy = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (!copy)
		return -ENOMEM;
	for (d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char buf[4096];

		snprintf(buf, sizeof(buf), "%s/%s", *d ? d : ".", prog);
		if (!access(buf, X_OK) && realpath(buf, out)) {
			free(copy);
			(void)len;
			return 0;
		}
	}
	free(copy);
	return -ENOENT;
}

/* Reads a small file into a NUL-terminated buffer; returns bytes or -errno. */
int uvs_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n, total = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((size_t)total < len - 1) {
		n = read(fd, buf + total, len - 1 - total);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		total += n;
	}
	buf[total] = '\0';
	close(fd);
	return total;
}

int uvs_maps__parse(FILE *f, uvs_map_fn fn, void *ctx)
{
	char *line = NULL;
	size_t cap = 0;
	int err = 0;

	/* getline, not a fixed buffer: a path can be longer than PATH_MAX
	 * (nested directories), and the rest of a split line would read as
	 * a line of its own, a mapping the target made up */
	while (!err && getline(&line, &cap, f) > 0) {
		struct uvs_map_line m = { .path = "" };
		unsigned long long a, b, off;
		char file[4096] = "";

		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %4095[^\n]", &a, &b,
			   m.perms, &off, file) < 4)
			continue;
		m.start = a;
		m.end = b;
		m.off = off;
		m.path = file;
		err = fn(&m, ctx);
	}
	free(line);
	return err < 0 ? err : 0;
}

int uvs_proc_maps(pid_t pid, uvs_map_fn fn, void *ctx)
{
	char path[64];
	int err;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	err = uvs_maps__parse(f, fn, ctx);
	fclose(f);
	return err;
}

bool uvs_signal_fatal_by_default(int sig)
{
	switch (sig) {
	case SIGCHLD: case SIGCONT: case SIGSTOP: case SIGTSTP:
	case SIGTTIN: case SIGTTOU: case SIGURG: case SIGWINCH:
		return false;
	}
	return sig > 0 && sig < 65;
}

/* One "Key:\tvalue" line of status, bounded: the value's text copied
 * out, NUL-terminated, or NULL when the line is not key's. */
static const char *uvs__st_val(const char *line, size_t n, const char *key,
			       char *out, size_t size)
{
	size_t k = strlen(key);

	if (n <= k || memcmp(line, key, k) || line[k] != ':')
		return NULL;
	line += k + 1;
	n -= k + 1;
	if (n >= size)
		n = size - 1;
	memcpy(out, line, n);
	out[n] = '\0';
	return out;
}

static bool uvs__st_num(const char *s, int base, unsigned long long max,
			unsigned long long *v)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!(base == 16 ? isxdigit((unsigned char)*s)
			 : isdigit((unsigned char)*s)))
		return false;
	errno = 0;
	*v = strtoull(s, &e, base);
	return !errno && e != s && *v <= max;
}

int uvs_status__parse(const char *buf, size_t len, struct uvs_proc_status *st)
{
	unsigned long long v, sigs[3];
	unsigned nsig = 0;
	const char *line = buf, *end = buf + len;
	char val[256];

	memset(st, 0, sizeof(*st));
	while (line < end) {
		const char *nl = memchr(line, '\n', end - line);
		size_t n = (nl ? nl : end) - line;
		const char *s;

		if ((s = uvs__st_val(line, n, "TracerPid", val, sizeof(val))) &&
		    uvs__st_num(s, 10, INT32_MAX, &v)) {
			st->tracer_pid = v;
			st->have |= UVS_ST_TRACER;
		} else if ((s = uvs__st_val(line, n, "NSpid", val,
					    sizeof(val)))) {
			/* the last of the fields, each a pid */
			char *e;

			for (;;) {
				while (*s == ' ' || *s == '\t')
					s++;
				if (!isdigit((unsigned char)*s))
					break;
				errno = 0;
				v = strtoull(s, &e, 10);
				if (errno || v > INT32_MAX)
					break;
				st->nspid = v;
				st->have |= UVS_ST_NSPID;
				s = e;
			}
		} else if ((s = uvs__st_val(line, n, "Uid", val,
					    sizeof(val))) &&
			   uvs__st_num(s, 10, UINT32_MAX - 1, &v)) {
			st->uid = v;
			st->have |= UVS_ST_UID;
		} else if (((s = uvs__st_val(line, n, "SigBlk", val,
					     sizeof(val))) &&
			    uvs__st_num(s, 16, UINT64_MAX, &sigs[0]) &&
			    (nsig |= 1)) ||
			   ((s = uvs__st_val(line, n, "SigIgn", val,
					     sizeof(val))) &&
			    uvs__st_num(s, 16, UINT64_MAX, &sigs[1]) &&
			    (nsig |= 2)) ||
			   ((s = uvs__st_val(line, n, "SigCgt", val,
					     sizeof(val))) &&
			    uvs__st_num(s, 16, UINT64_MAX, &sigs[2]) &&
			    (nsig |= 4))) {
			/* read together below */
		}
		line += n + 1;
	}
	if (nsig == 7) {
		st->sig_blk = sigs[0];
		st->sig_ign = sigs[1];
		st->sig_cgt = sigs[2];
		st->have |= UVS_ST_SIGS;
	}
	return 0;
}

int uvs_proc_status(pid_t pid, pid_t tid, struct uvs_proc_status *st)
{
	char path[64], buf[8192];
	int n;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid,
			 tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
	n = uvs_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	return uvs_status__parse(buf, n, st);
}
