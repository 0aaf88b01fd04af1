// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer harness for the folded stacks reader (uvscope flame reads the
 * files anyone hands it): any bytes give stacks, or one error whose line
 * has no byte a terminal acts on. What was read (up to an error) is
 * written back as folded text, which reads again to the same stacks and
 * the same text, and is rendered as a flame graph and speedscope JSON.
 * The input, escaped for a terminal, has nothing a terminal acts on, and
 * escaping into a short buffer cuts between escapes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "uvscope.h"
#include "flame.h"

/* Text a terminal shows as it is: no C0 control but tab (and newline with
 * lines), no DEL, no C1 control. */
static void uvs__fuzz_printable(const char *s, size_t len, bool lines)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i;

	for (i = 0; i < len; i++) {
		if ((p[i] < 0x20 && p[i] != '\t' && !(lines && p[i] == '\n')) ||
		    p[i] == 0x7f)
			abort();
		if (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 &&
		    p[i + 1] < 0xa0)
			abort();
	}
}

/* The stacks as folded text; the caller frees *text. */
static size_t uvs__fuzz_folded(const struct uvs_stacks *s, char **text)
{
	size_t len = 0;
	FILE *m = open_memstream(text, &len);

	if (!m || uvs_stacks__write_folded(s, m))
		abort();
	fclose(m);
	return len;
}

static void uvs__fuzz_escape(const unsigned char *data, size_t size)
{
	char *big = malloc(4 * size + 1), *line = malloc(4 * size + 1);
	char small[37], *put = NULL;
	size_t n = 0, cut;
	FILE *m;

	if (!big || !line)
		abort();
	uvs_text_esc(big, 4 * size + 1, (const char *)data, size, true);
	uvs__fuzz_printable(big, strlen(big), true);
	/* uvs_text_put writes what uvs_text_esc does when it is not cut */
	m = open_memstream(&put, &n);
	if (!m)
		abort();
	uvs_text_put(m, (const char *)data, size, true);
	fclose(m);
	if (n != strlen(big) || memcmp(put, big, n))
		abort();
	/* one line: no newline left; cut short, a prefix of the whole that
	 * stops only where the next escape or character would not fit */
	uvs_text_esc(line, 4 * size + 1, (const char *)data, size, false);
	uvs__fuzz_printable(line, strlen(line), false);
	uvs_text_esc(small, sizeof(small), (const char *)data, size, false);
	cut = strlen(small);
	if (strncmp(small, line, cut) ||
	    (cut < strlen(line) && cut + 4 < sizeof(small) - 1))
		abort();
	free(big);
	free(line);
	free(put);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct uvs_stacks *s = NULL, *again = NULL;
	char *text = NULL, *text2 = NULL;
	static FILE *null;
	size_t len, len2;
	FILE *f;
	int err;

	uvs__fuzz_escape(data, size);
	if (!size)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (!f || uvs_stacks__new(&s) || uvs_stacks__new(&again))
		abort();
	err = uvs_stacks__read_folded_fp(s, f, "fuzz");
	fclose(f);
	if (err)
		uvs__fuzz_printable(uvs_errmsg(), strlen(uvs_errmsg()), false);

	len = uvs__fuzz_folded(s, &text);
	f = fmemopen(text, len ? len : 1, "r");
	if (!f)
		abort();
	if (len && uvs_stacks__read_folded_fp(again, f, "again"))
		abort(); /* uvscope reads what it writes */
	fclose(f);
	len2 = uvs__fuzz_folded(again, &text2);
	if (uvs_stacks__total(again) != uvs_stacks__total(s) ||
	    uvs_stacks__count(again) != uvs_stacks__count(s) || len2 != len ||
	    memcmp(text, text2, len))
		abort();

	if (!null)
		null = fopen("/dev/null", "w");
	if (!null || uvs_flame__write_svg(s, NULL, null) ||
	    uvs_flame__write_speedscope(s, NULL, null))
		abort();
	free(text);
	free(text2);
	uvs_stacks__free(s);
	uvs_stacks__free(again);
	return 0;
}
