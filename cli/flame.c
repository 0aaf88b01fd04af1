// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uvscope flame: render folded stacks as a flame graph or speedscope JSON. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "flame.h"

/* clang-format off */
static void flame_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope flame [-o OUT] [--speedscope] [--diff BASE.folded]\n"
"                     [--title T] FOLDED...\n"
"\n"
"Renders folded stacks (\"a;b;c 123\" per line: uvscope's --folded files,\n"
"perf or bpftrace stacks folded by stackcollapse-perf.pl or\n"
"stackcollapse-bpftrace.pl) as one self-contained interactive SVG flame\n"
"graph: hover for counts, click to zoom, Search to highlight. Several\n"
"files are added together; '-' reads standard input. Frames are coloured\n"
"by kind: loop phase, JavaScript, libuv, native, kernel. See\n"
"docs/flamegraph.md.\n"
"\n"
"Options:\n"
"  -o, --output FILE      write there instead of standard output\n"
"  --speedscope           write speedscope JSON (open it at speedscope.app)\n"
"  --diff BASE.folded     differential flame graph: widths from FOLDED,\n"
"                         red where a frame's share grew since BASE, blue\n"
"                         where it shrank\n"
"  --title T              the graph's title (speedscope: the profile name)\n"
"  --width PX             image width (default 1200)\n"
"  --min-width PX         leave out frames narrower than this (default 0.1)\n"
"\n"
"EXAMPLES:\n"
"  perf script | stackcollapse-perf.pl | uvscope flame - > perf.svg\n"
"  uvscope flame --speedscope -o blocked.json blocked.folded\n"
"  uvscope flame --diff before.folded -o diff.svg after.folded\n"
"  uvscope flame -o blocked.svg blocked.folded\n");
}
/* clang-format on */

static int flame_read(struct uvs_stacks *s, const char *path)
{
	if (strcmp(path, "-"))
		return uvs_stacks__read_folded(s, path);
	return uvs_stacks__read_folded_fp(s, stdin, "<stdin>");
}

static double flame_num(const char *s, const char *what)
{
	double v;

	if (uvs_cli__parse_double(what, s, NULL, 1e-9, 100000, &v))
		return -1;
	return v;
}

int cmd_flame(int argc, char **argv)
{
	struct uvs_stacks *run = NULL, *base = NULL;
	struct uvs_flame_opts o = {.sz = sizeof(o)};
	const char *out_path = NULL, *base_path = NULL;
	bool speedscope = false;
	char **files;
	int nfiles = 0, i, err, ret = UVS_EXIT_ERR;
	FILE *out = stdout;
	struct uvs_cli_out file = {.slot = -1};
	/* one buffer for the run, stdout's included: it outlives the call */
	static char obuf[1 << 20];

	files = calloc(argc, sizeof(*files));
	if (!files) {
		uvs_error("out of memory");
		return UVS_EXIT_ERR;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			flame_help(stdout);
			ret = 0;
			goto out;
		} else if (!strcmp(a, "--speedscope")) {
			speedscope = true;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--output") ||
			   !strcmp(a, "--diff") || !strcmp(a, "--title") ||
			   !strcmp(a, "--width") || !strcmp(a, "--min-width")) {
			const char *v = argv[++i];
			double num = 1;

			if (!has_val) {
				uvs_error("%s needs a value (see uvscope "
					  "flame --help)",
					  a);
				goto out;
			}
			if (!strcmp(a, "--diff"))
				base_path = v;
			else if (!strcmp(a, "--title"))
				o.title = v;
			else if (!strcmp(a, "--width"))
				o.width = num = flame_num(v, a);
			else if (!strcmp(a, "--min-width"))
				o.min_width = num = flame_num(v, a);
			else
				out_path = v;
			if (num < 0)
				goto out;
		} else if (a[0] == '-' && a[1]) {
			uvs_error("unknown option '%s' (see uvscope flame "
				  "--help)",
				  a);
			goto out;
		} else {
			files[nfiles++] = argv[i];
		}
	}
	if (!nfiles) {
		uvs_error("no input: uvscope flame FOLDED... (see --help)");
		goto out;
	}
	if (speedscope && base_path) {
		uvs_error("--diff draws an SVG; speedscope has no "
			  "differential view");
		goto out;
	}
	/* the output is checked before any input is read: a path that
	 * cannot be written is said at once */
	if (out_path) {
		if (uvs_cli__out_open(&file, out_path))
			goto out;
		out = file.f;
	}
	if (uvs_stacks__new(&run) || (base_path && uvs_stacks__new(&base))) {
		uvs_error("%s", uvs_errmsg());
		goto out;
	}
	for (i = 0; i < nfiles; i++) {
		err = flame_read(run, files[i]);
		if (err) {
			uvs_error("%s", uvs_errmsg());
			goto out;
		}
	}
	if (base && flame_read(base, base_path)) {
		uvs_error("%s", uvs_errmsg());
		goto out;
	}
	if (out == stdout)
		setvbuf(out, obuf, _IOFBF, sizeof(obuf));
	if (speedscope)
		/* speedscope names the profile; the file's name by default */
		err = uvs_flame__write_speedscope(
		    run, o.title || !strcmp(files[0], "-") ? o.title : files[0],
		    out);
	else if (base)
		err = uvs_flame__write_diff_svg(base, run, &o, out);
	else
		err = uvs_flame__write_svg(run, &o, out);
	if (out_path) {
		/* put in place whole, or said and discarded */
		if (!uvs_cli__out_close(&file, err))
			ret = 0;
		goto out;
	}
	if (fflush(out) && !err)
		err = uvs_seterr(-errno, "%s", strerror(errno));
	if (err)
		uvs_error("<stdout>: %s", uvs_errmsg());
	else
		ret = 0;
out:
	uvs_cli__out_discard(&file);
	uvs_stacks__free(run);
	uvs_stacks__free(base);
	free(files);
	return ret;
}
