// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
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
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
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
