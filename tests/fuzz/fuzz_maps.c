// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer harness for the /proc/PID/maps reader: the target decides
 * what its maps say (file names, made-up paths), and target discovery,
 * the symboliser and the unwinder all read them. Any text gives lines
 * that are whole and in bounds, never more mappings than it has lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "uvscope.h"

struct uvs__fuzz_maps {
	size_t lines, max;
};

static int uvs__fuzz_line(const struct uvs_map_line *m, void *ctx)
{
	struct uvs__fuzz_maps *c = ctx;

	/* one mapping a line: a long line read in pieces would give the
	 * target a say in what else is mapped */
	if (++c->lines > c->max || !m->path ||
	    strnlen(m->perms, sizeof(m->perms)) == sizeof(m->perms) ||
	    strlen(m->path) >= 4096)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct uvs__fuzz_maps c = { 0 };
	FILE *f;
	size_t i;

	if (!size)
		return 0;
	for (i = 0; i < size; i++)
		c.max += data[i] == '\n';
	c.max += data[size - 1] != '\n';
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	if (uvs_maps__parse(f, uvs__fuzz_line, &c))
		abort(); /* the callback never fails */
	fclose(f);
	return 0;
}
