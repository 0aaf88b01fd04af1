// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uvscope report and uvscope check: work on recorded files. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "flame.h"

static void report_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope report [--json] [--flame SVG] [--folded F] [--speedscope F]\n"
"                      FILE\n"
"\n"
"Renders a run recorded by 'uvscope record' (or saved from 'uvscope loop\n"
"--json') again, from the histograms' buckets: the same text report, or\n"
"the same JSON.\n"
"\n"
"EXAMPLES:\n"
"  uvscope report run.json\n"
"  uvscope report --json run.json | jq .loop.phases.timers\n"
"  uvscope report --flame blocked.svg run.json   # the blocked stacks\n");
}

int cmd_report(int argc, char **argv)
{
	struct uvs_report *r = NULL;
	const char *file = NULL, *out[3] = { NULL, NULL, NULL };
	struct uvs_cli_out outs[3] = { { .slot = -1 }, { .slot = -1 },
				       { .slot = -1 } };
	bool json = false;
	int i, err;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			report_help(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--flame") ||
			   !strcmp(argv[i], "--folded") ||
			   !strcmp(argv[i], "--speedscope")) {
			if (i + 1 >= argc) {
				uvs_error("%s needs a file", argv[i]);
				return UVS_EXIT_ERR;
			}
			out[argv[i][2] == 'f' ? (argv[i][3] == 'l' ? 0 : 1) : 2] =
				argv[i + 1];
			i++;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			uvs_error("unknown option '%s' (see uvscope report "
				  "--help)", argv[i]);
			return UVS_EXIT_ERR;
		} else if (file) {
			uvs_error("one file at a time");
			return UVS_EXIT_ERR;
		} else {
			file = argv[i];
		}
	}
	if (!file) {
		uvs_error("no file: uvscope report FILE");
		return UVS_EXIT_ERR;
	}
	for (i = 0; i < 3; i++)
		if (uvs_cli__out_open(&outs[i], out[i]))
			goto fail;
	r = malloc(sizeof(*r));
	if (!r) {
		uvs_error("out of memory");
		goto fail;
	}
	err = uvs_report__read(file, r);
	if (err) {
		uvs_error("%s", uvs_errmsg());
		free(r);
		r = NULL;
		goto fail;
	}
	if ((out[0] || out[1] || out[2]) && !r->has_blocked) {
		uvs_error("%s has no blocked stacks to draw (record them with "
			  "uvscope record or uvscope blocked --json)", file);
		goto fail;
	}
	if (uvs_cli__write_stacks(r, outs))
		goto fail;
	if (json)
		err = uvs_report__print_json(r, stdout);
	else
		uvs_report__print_text(r, stdout);
	uvs_report__fini(r);
	free(r);
	return err ? UVS_EXIT_ERR : 0;
fail:
	for (i = 0; i < 3; i++)
		uvs_cli__out_discard(&outs[i]);
	uvs_report__fini(r);
	free(r);
	return UVS_EXIT_ERR;
}

static void check_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope check --baseline BASE.json [--baseline ...] RUN.json\n"
"\n"
"Compares a run with one or more baselines: per phase p50 and p99, loop\n"
"utilization, poll wait, pool queue waits, blocked time and episodes. A\n"
"metric regresses when the run exceeds the largest baseline by more than\n"
"the largest of: --max-regression of the baselines' median, --min-change,\n"
"and the spread between the baselines (give several to measure run-to-run\n"
"noise). Where chance moves a number across an edge, each side is a range:\n"
"a quantile as far as its rank is uncertain, blocked time with the\n"
"threshold's margin (--max-regression) either side of it (docs/ci.md).\n"
"Quantiles from too few samples are not compared. Exits 1 on a\n"
"regression, 0 otherwise, 2 on bad input.\n"
"\n"
"Options:\n"
"  -b, --baseline FILE    a baseline run (repeatable, up to 32)\n"
"  --max-regression PCT   relative threshold (default 10%%)\n"
"  --min-change MS        absolute floor in milliseconds (default 1)\n"
"  --format text|github   github: annotations for GitHub Actions\n"
"  --junit FILE           also write JUnit XML\n"
"  --json                 the comparison as JSON\n"
"\n"
"EXAMPLES:\n"
"  uvscope check --baseline base.json run.json\n"
"  uvscope check -b b1.json -b b2.json -b b3.json run.json\n"
"  uvscope check --format github --junit check.xml -b base.json run.json\n");
}

/* The change as a percentage, or "new" where the baseline was 0 (a ratio
 * to 0 is none). */
static const char *check_change(const struct uvs_check_row *r, char *buf,
				size_t sz)
{
	if (r->from_zero)
		return "new";
	snprintf(buf, sz, "%+.1f%%", r->change * 100);
	return buf;
}

static void print_text(const struct uvs_check *c, int nb, const char *run)
{
	char chg[32];
	int i;

	printf("uvscope check: %s against %d baseline%s (max regression "
	       "%.0f%%, min change %.3g ms)\n\n", run, nb, nb > 1 ? "s" : "",
	       c->opts.max_regression * 100, c->opts.min_change_ms);
	printf("%-20s %10s %10s %8s %10s  %s\n", "METRIC", "BASELINE", "RUN",
	       "CHANGE", "LIMIT", "VERDICT");
	for (i = 0; i < c->nrows; i++) {
		const struct uvs_check_row *r = &c->rows[i];

		if (r->from_zero)
			snprintf(chg, sizeof(chg), "(new)");
		else
			check_change(r, chg, sizeof(chg));
		printf("%-20s %10.3f %10.3f %8s %10.3f  %s\n", r->name,
		       r->base, r->run, chg, r->limit,
		       uvs_check__verdict(r->verdict));
	}
	printf("\n%d regression%s\n", c->regressions,
	       c->regressions == 1 ? "" : "s");
}

static void print_github(const struct uvs_check *c, const char *run)
{
	char chg[32];
	int i;

	for (i = 0; i < c->nrows; i++) {
		const struct uvs_check_row *r = &c->rows[i];

		if (r->verdict != UVS_CHECK_REGRESSION)
			continue;
		printf("::error file=%s,title=uvscope check::%s regressed: "
		       "%.3f -> %.3f (%s, limit %.3f)\n", run, r->name,
		       r->base, r->run, check_change(r, chg, sizeof(chg)),
		       r->limit);
	}
	printf("::notice title=uvscope check::%d regression%s in %d "
	       "metrics\n", c->regressions, c->regressions == 1 ? "" : "s",
	       c->nrows);
}

static void xml_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

static int write_junit(const struct uvs_check *c, struct uvs_cli_out *out,
		       const char *run)
{
	FILE *f = out->f;
	int i, skipped = 0;
	char chg[32];

	for (i = 0; i < c->nrows; i++)
		skipped += c->rows[i].verdict == UVS_CHECK_SKIPPED;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<testsuites>\n<testsuite name=\"uvscope check\" tests=\"%d\" "
		"failures=\"%d\" skipped=\"%d\">\n", c->nrows, c->regressions,
		skipped);
	for (i = 0; i < c->nrows; i++) {
		const struct uvs_check_row *r = &c->rows[i];

		fprintf(f, "  <testcase classname=\"");
		xml_escape(f, run);
		fprintf(f, "\" name=\"");
		xml_escape(f, r->name);
		fprintf(f, "\">");
		if (r->verdict == UVS_CHECK_REGRESSION)
			fprintf(f, "<failure message=\"%.3f -&gt; %.3f (%s,"
				" limit %.3f)\"/>", r->base, r->run,
				check_change(r, chg, sizeof(chg)), r->limit);
		else if (r->verdict == UVS_CHECK_SKIPPED)
			fprintf(f, "<skipped message=\"too few samples\"/>");
		fprintf(f, "</testcase>\n");
	}
	fprintf(f, "</testsuite>\n</testsuites>\n");
	return uvs_cli__out_close(out, 0);
}

static void print_json(const struct uvs_check *c, const char *run)
{
	json_t *o = json_object(), *rows = json_array();
	int i;

	json_object_set_new(o, "schema", json_string(UVS_SCHEMA));
	json_object_set_new(o, "command", json_string("check"));
	json_object_set_new(o, "run", json_string(run));
	json_object_set_new(o, "max_regression",
			    json_real(c->opts.max_regression));
	json_object_set_new(o, "min_change_ms", json_real(c->opts.min_change_ms));
	for (i = 0; i < c->nrows; i++) {
		const struct uvs_check_row *r = &c->rows[i];

		/* from 0: "change" is null and "new" true, as the text's
		 * "(new)" */
		json_array_append_new(rows, json_pack(
			"{s:s,s:f,s:f,s:f,s:f,s:o,s:b,s:f,s:f,s:f,s:s}",
			"metric", r->name, "baseline", r->base, "baseline_min",
			r->base_min, "baseline_max", r->base_max, "run", r->run,
			"change", r->from_zero ? json_null() :
						 json_real(r->change),
			"new", r->from_zero, "baseline_high", r->base_high,
			"run_low", r->run_low, "limit", r->limit, "verdict",
			uvs_check__verdict(r->verdict)));
	}
	json_object_set_new(o, "rows", rows);
	json_object_set_new(o, "regressions", json_integer(c->regressions));
	json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(12));
	putchar('\n');
	json_decref(o);
}

int cmd_check(int argc, char **argv)
{
	const char *files[UVS_CHECK_MAX_BASE], *run = NULL, *junit = NULL;
	struct uvs_cli_out jout = { .slot = -1 };
	struct uvs_report *reps[UVS_CHECK_MAX_BASE + 1] = { 0 };
	struct uvs_check *c = NULL;
	const char *format = "text";
	int nb = 0, i, ret = UVS_EXIT_ERR;
	bool json = false;

	c = calloc(1, sizeof(*c));
	if (!c) {
		uvs_error("out of memory");
		return UVS_EXIT_ERR;
	}
	c->opts.max_regression = 0.10;
	c->opts.min_change_ms = 1.0;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			check_help(stdout);
			ret = 0;
			goto out;
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "-b") || !strcmp(a, "--baseline")) {
			if (!v || nb == UVS_CHECK_MAX_BASE) {
				uvs_error("--baseline needs a file (at most %d)",
					  UVS_CHECK_MAX_BASE);
				goto out;
			}
			files[nb++] = v;
			i++;
		} else if (!strcmp(a, "--max-regression")) {
			double p;

			if (!v) {
				uvs_error("--max-regression needs a percentage "
					  "like 10%%");
				goto out;
			}
			if (uvs_cli__parse_double("--max-regression", v, "%", 0,
						  1000, &p))
				goto out;
			c->opts.max_regression = p / 100;
			i++;
		} else if (!strcmp(a, "--min-change")) {
			if (!v) {
				uvs_error("--min-change needs milliseconds");
				goto out;
			}
			if (uvs_cli__parse_double("--min-change", v, "ms", 0,
						  3.6e6, &c->opts.min_change_ms))
				goto out;
			i++;
		} else if (!strcmp(a, "--format")) {
			if (!v || (strcmp(v, "text") && strcmp(v, "github"))) {
				uvs_error("--format is text or github");
				goto out;
			}
			format = v;
			i++;
		} else if (!strcmp(a, "--junit")) {
			if (!v) {
				uvs_error("--junit needs a file");
				goto out;
			}
			junit = v;
			i++;
		} else if (a[0] == '-') {
			uvs_error("unknown option '%s' (see uvscope check "
				  "--help)", a);
			goto out;
		} else if (run) {
			uvs_error("one run to check; baselines go with "
				  "--baseline");
			goto out;
		} else {
			run = a;
		}
	}
	if (!nb || !run) {
		uvs_error("usage: uvscope check --baseline BASE.json RUN.json");
		goto out;
	}
	if (uvs_cli__out_open(&jout, junit))
		goto out;
	for (i = 0; i <= nb; i++) {
		reps[i] = malloc(sizeof(*reps[i]));
		if (!reps[i] ||
		    uvs_report__read(i < nb ? files[i] : run, reps[i])) {
			uvs_error("%s", reps[i] ? uvs_errmsg() : "out of memory");
			goto out;
		}
	}
	if (uvs_check__compare(c, (const struct uvs_report *const *)reps, nb,
			       reps[nb])) {
		uvs_error("%s", uvs_errmsg());
		goto out;
	}
	if (json)
		print_json(c, run);
	else if (!strcmp(format, "github"))
		print_github(c, run);
	else
		print_text(c, nb, run);
	if (junit && write_junit(c, &jout, run))
		goto out;
	ret = c->regressions ? 1 : 0;
out:
	uvs_cli__out_discard(&jout);
	for (i = 0; i <= UVS_CHECK_MAX_BASE; i++) {
		if (reps[i])
			uvs_report__fini(reps[i]);
		free(reps[i]);
	}
	uvs_check__fini(c);
	free(c);
	return ret;
}

static void diff_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope diff BASE.json RUN.json --flame DIFF.svg\n"
"\n"
"A differential flame graph of two recorded runs' blocked stacks (from\n"
"'uvscope record' or 'uvscope blocked --json'): frames sized by RUN,\n"
"red where they grew and blue where they shrank, as shares of each run's\n"
"total, so runs of different lengths compare. Prints the frames whose\n"
"share moved most.\n"
"\n"
"EXAMPLES:\n"
"  uvscope diff base.json run.json --flame diff.svg\n"
"  uvscope record -o run.json -d 20 -p 1234 && \\\n"
"    uvscope diff base.json run.json --flame diff.svg\n");
}

struct diff_list {
	struct {
		const char *s;
		uint64_t n;
	} *e;
	size_t n, cap;
};

static int diff_collect(const char *folded, uint64_t count, void *ctx)
{
	struct diff_list *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		void *ne = realloc(l->e, cap * sizeof(*l->e));

		if (!ne)
			return -ENOMEM;
		l->e = ne;
		l->cap = cap;
	}
	l->e[l->n].s = folded;
	l->e[l->n++].n = count;
	return 0;
}

static int diff_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The stacks whose share of their run's total moved most, base to run
 * (foreach gives them in one order for both, so a merge finds pairs). */
static void diff_moved(const struct uvs_stacks *base,
		       const struct uvs_stacks *run)
{
	struct diff_list l[2] = { { 0 }, { 0 } };
	double tb = uvs_stacks__total(base), tr = uvs_stacks__total(run);
	struct {
		const char *s;
		double d;
	} top[5] = { { 0 } };
	size_t i = 0, j = 0;
	int k, m;

	if (!tb || !tr) {
		printf("no blocked stacks in %s: nothing to compare\n",
		       !tb ? "the base" : "the run");
		return;
	}
	if (uvs_stacks__foreach(base, diff_collect, &l[0]) ||
	    uvs_stacks__foreach(run, diff_collect, &l[1]))
		goto out;
	qsort(l[0].e, l[0].n, sizeof(*l[0].e), diff_cmp);
	qsort(l[1].e, l[1].n, sizeof(*l[1].e), diff_cmp);
	while (i < l[0].n || j < l[1].n) {
		int c = i == l[0].n ? 1 : j == l[1].n ? -1 :
			strcmp(l[0].e[i].s, l[1].e[j].s);
		double d = (c >= 0 ? l[1].e[j].n / tr : 0) -
			   (c <= 0 ? l[0].e[i].n / tb : 0);
		const char *s = c <= 0 ? l[0].e[i].s : l[1].e[j].s;

		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
		for (k = 0; k < 5; k++)
			if (!top[k].s || fabs(d) > fabs(top[k].d))
				break;
		if (k == 5)
			continue;
		for (m = 4; m > k; m--)
			top[m] = top[m - 1];
		top[k].s = s;
		top[k].d = d;
	}
	printf("moved most (share of each run's total, base -> run):\n");
	for (k = 0; k < 5 && top[k].s; k++) {
		size_t len = strlen(top[k].s);
		const char *tail = len > 66 ? top[k].s + len - 63 : top[k].s;

		/* frame names come from the target or a file: escaped */
		printf("  %+6.1f%%  %s", 100 * top[k].d, len > 66 ? "..." : "");
		uvs_text_put(stdout, tail, strlen(tail), false);
		putchar('\n');
	}
out:
	free(l[0].e);
	free(l[1].e);
}

int cmd_diff(int argc, char **argv)
{
	struct uvs_report *r[2] = { NULL, NULL };
	const char *files[2] = { NULL, NULL }, *svg = NULL;
	struct uvs_flame_opts fo = { .sz = sizeof(fo) };
	struct uvs_cli_out out = { .slot = -1 };
	int i, nf = 0, ret = UVS_EXIT_ERR;
	char title[200];

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			diff_help(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--flame")) {
			if (i + 1 >= argc) {
				uvs_error("--flame needs a file");
				return UVS_EXIT_ERR;
			}
			svg = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			uvs_error("unknown option '%s' (see uvscope diff --help)",
				  argv[i]);
			return UVS_EXIT_ERR;
		} else if (nf == 2) {
			uvs_error("two files: BASE.json RUN.json");
			return UVS_EXIT_ERR;
		} else {
			files[nf++] = argv[i];
		}
	}
	if (nf != 2 || !svg) {
		uvs_error("usage: uvscope diff BASE.json RUN.json --flame DIFF.svg");
		return UVS_EXIT_ERR;
	}
	if (uvs_cli__out_open(&out, svg))
		return UVS_EXIT_ERR;
	for (i = 0; i < 2; i++) {
		r[i] = calloc(1, sizeof(*r[i]));
		if (!r[i] || uvs_report__read(files[i], r[i])) {
			uvs_error("%s", r[i] ? uvs_errmsg() : "out of memory");
			goto out;
		}
		if (!r[i]->has_blocked || !r[i]->blocked.stacks) {
			uvs_error("%s has no blocked stacks (record them with "
				  "uvscope record or uvscope blocked --json)",
				  files[i]);
			goto out;
		}
	}
	snprintf(title, sizeof(title), "uvscope diff: %s -> %s", files[0],
		 files[1]);
	fo.title = title;
	fo.subtitle = "width: the run; red: a larger share than in the base, "
		      "blue: a smaller one";
	if (uvs_cli__out_close(&out, uvs_flame__write_diff_svg(
					     r[0]->blocked.stacks,
					     r[1]->blocked.stacks, &fo, out.f)))
		goto out;
	printf("uvscope diff: %s (%llu counts) -> %s (%llu counts): %s\n",
	       files[0], (unsigned long long)uvs_stacks__total(
				 r[0]->blocked.stacks),
	       files[1], (unsigned long long)uvs_stacks__total(
				 r[1]->blocked.stacks), svg);
	printf("blocked: %.1f -> %.1f ms/s, %llu -> %llu episodes\n",
	       r[0]->blocked.blocked_ns / 1e6 /
		       (r[0]->duration_s > 0 ? r[0]->duration_s : 1),
	       r[1]->blocked.blocked_ns / 1e6 /
		       (r[1]->duration_s > 0 ? r[1]->duration_s : 1),
	       (unsigned long long)r[0]->blocked.count,
	       (unsigned long long)r[1]->blocked.count);
	diff_moved(r[0]->blocked.stacks, r[1]->blocked.stacks);
	ret = 0;
out:
	uvs_cli__out_discard(&out);
	for (i = 0; i < 2; i++) {
		uvs_report__fini(r[i]);
		free(r[i]);
	}
	return ret;
}
