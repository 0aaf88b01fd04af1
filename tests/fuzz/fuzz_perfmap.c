// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer harness for the perf map reader: /tmp/perf-PID.map is in a
 * directory anyone can write, and uvscope reads it as root. Any bytes give
 * symbols that are whole (a name of at most a line, without '\n' or NUL, a
 * size, an end within 64 bits), never more of them than there are lines,
 * and a cursor that resumes where it stopped: the bytes read in two
 * pieces, as a map V8 is still writing is, give the same symbols as read
 * at once. Their names then print on a terminal with nothing it acts on.
 * An input starting with 0xff is written twice, 66 KiB of 'x' between
 * the copies: a line longer than any taken, across reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "uvscope.h"
#include "flame.h"

struct uvs__fuzz_pm {
	uint64_t n, hash;
	uint64_t stop_at; /* fn stops the read after this many (0: never) */
};

static void uvs__fuzz_mix(uint64_t *h, const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < len; i++)
		*h = (*h ^ s[i]) * 0x100000001b3ull;
}

/* Nothing a terminal acts on: no C0 control but tab, DEL or C1 control. */
static void uvs__fuzz_no_controls(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f ||
		    (p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0))
			abort();
}

static int uvs__fuzz_sym(const struct uvs_perfmap_sym *sym, void *ctx)
{
	struct uvs__fuzz_pm *c = ctx;
	char text[512];

	if (!sym->len || sym->len > UVS_PERFMAP_LINE_MAX || !sym->size ||
	    sym->start + sym->size < sym->start ||
	    memchr(sym->name, '\n', sym->len) || memchr(sym->name, 0, sym->len))
		abort();
	uvs_text_esc(text, sizeof(text), sym->name, sym->len, false);
	uvs__fuzz_no_controls(text);
	c->n++;
	uvs__fuzz_mix(&c->hash, &sym->start, sizeof(sym->start));
	uvs__fuzz_mix(&c->hash, &sym->size, sizeof(sym->size));
	uvs__fuzz_mix(&c->hash, sym->name, sym->len);
	return c->stop_at && c->n == c->stop_at;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static int fd = -1;
	struct uvs_perfmap_cursor one = {0}, two = {0}, three = {0};
	struct uvs__fuzz_pm a = {0}, b = {0}, c = {0};
	static char xs[66 << 10];
	size_t len = size, i, lines = 0, cut;

	if (fd < 0) {
		fd = memfd_create("perfmap", MFD_CLOEXEC);
		memset(xs, 'x', sizeof(xs));
	}
	if (fd < 0 || ftruncate(fd, 0))
		abort();
	if (size && data[0] == 0xff) {
		data++;
		size--;
		len = 2 * size + sizeof(xs);
		if (pwrite(fd, data, size, 0) != (ssize_t)size ||
		    pwrite(fd, xs, sizeof(xs), size) != (ssize_t)sizeof(xs) ||
		    pwrite(fd, data, size, size + sizeof(xs)) != (ssize_t)size)
			abort();
	} else if (size && pwrite(fd, data, size, 0) != (ssize_t)size) {
		abort();
	}
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (len != size)
		lines *= 2; /* '\n's in the file */

	/* at once */
	if (uvs_perfmap__read(fd, &one, len, uvs__fuzz_sym, &a))
		abort();
	if (a.n > lines || one.lines > lines || one.bad > lines + 1 ||
	    a.n + one.bad < one.lines || one.off > len)
		abort();
	/* in two pieces, cut anywhere */
	cut = size ? (data[size - 1] * 257u + size) % (len + 1) : len / 2;
	if (uvs_perfmap__read(fd, &two, cut, uvs__fuzz_sym, &b) ||
	    two.off > cut ||
	    uvs_perfmap__read(fd, &two, len, uvs__fuzz_sym, &b))
		abort();
	if (b.n != a.n || b.hash != a.hash || two.off != one.off ||
	    two.lines != one.lines || two.bad != one.bad ||
	    two.skip != one.skip)
		abort();
	/* stopped by its callback after the first symbol, then resumed */
	c.stop_at = 1;
	if (uvs_perfmap__read(fd, &three, len, uvs__fuzz_sym, &c))
		abort();
	c.stop_at = 0;
	if (uvs_perfmap__read(fd, &three, len, uvs__fuzz_sym, &c) ||
	    c.n != a.n || c.hash != a.hash || three.off != one.off ||
	    three.lines != one.lines || three.bad != one.bad)
		abort();
	return 0;
}
