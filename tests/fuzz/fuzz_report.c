// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer harness for the uvscope/1 reader: any input gives a report or
 * one error, never a crash, a leak or undefined behaviour. Then the report
 * is printed both ways, so the printers see whatever the reader let in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "uvscope.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static struct uvs_report r;
	FILE *null;

	if (uvs_report__parse("fuzz", (const char *)data, size, &r))
		return 0;
	if (!r.command)
		abort(); /* accepted documents are complete */
	null = fopen("/dev/null", "w");
	if (null) {
		uvs_report__print_text(&r, null);
		uvs_report__print_json(&r, null);
		fclose(null);
	}
	uvs_report__fini(&r);
	return 0;
}
