// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uvscope report and uvscope check: work on recorded files. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static void report_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope report [--json] FILE\n"
"\n"
"Renders a run recorded by 'uvscope record' (or saved from 'uvscope loop\n"
"--json') again, from the histograms' buckets: the same text report, or\n"
"the same JSON.\n"
"\n"
"EXAMPLES:\n"
"  uvscope report run.json\n"
"  uvscope report --json run.json | jq .loop.phases.timers\n");
}

int cmd_report(int argc, char **argv)
{
	struct uvs_report *r;
	const char *file = NULL;
	bool json = false;
	int i, err;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			report_help(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = true;
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
	r = malloc(sizeof(*r));
	if (!r) {
		uvs_error("out of memory");
		return UVS_EXIT_ERR;
	}
	err = uvs_report__read(file, r);
	if (err) {
		uvs_error("%s", uvs_errmsg());
		free(r);
		return UVS_EXIT_ERR;
	}
	if (json)
		err = uvs_report__print_json(r, stdout);
	else
		uvs_report__print_text(r, stdout);
	free(r);
	return err ? UVS_EXIT_ERR : 0;
}

static void check_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope check --baseline BASE.json [--baseline ...] RUN.json\n"
"\n"
"Compares a run with one or more baselines: per phase p50 and p99, loop\n"
"utilization, poll wait. A metric regresses when the run exceeds the\n"
"largest baseline by more than the largest of: --max-regression of the\n"
"baselines' median, --min-change, and the spread between the baselines\n"
"(give several to measure run-to-run noise). Quantiles from too few\n"
"samples are not compared. Exits 1 on a regression, 0 otherwise, 2 on\n"
"bad input.\n"
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

static void print_text(const struct uvs_check *c, int nb, const char *run)
{
	int i;

	printf("uvscope check: %s against %d baseline%s (max regression "
	       "%.0f%%, min change %.3g ms)\n\n", run, nb, nb > 1 ? "s" : "",
	       c->opts.max_regression * 100, c->opts.min_change_ms);
	printf("%-20s %10s %10s %8s %10s  %s\n", "METRIC", "BASELINE", "RUN",
	       "CHANGE", "LIMIT", "VERDICT");
	for (i = 0; i < c->nrows; i++) {
		const struct uvs_check_row *r = &c->rows[i];

		printf("%-20s %10.3f %10.3f %+7.1f%% %10.3f  %s\n", r->name,
		       r->base, r->run, r->change * 100, r->limit,
		       uvs_check__verdict(r->verdict));
	}
	printf("\n%d regression%s\n", c->regressions,
	       c->regressions == 1 ? "" : "s");
}

static void print_github(const struct uvs_check *c, const char *run)
{
	int i;

	for (i = 0; i < c->nrows; i++) {
		const struct uvs_check_row *r = &c->rows[i];

		if (r->verdict != UVS_CHECK_REGRESSION)
			continue;
		printf("::error file=%s,title=uvscope check::%s regressed: "
		       "%.3f -> %.3f (%+.1f%%, limit %.3f)\n", run, r->name,
		       r->base, r->run, r->change * 100, r->limit);
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

static int write_junit(const struct uvs_check *c, const char *path,
		       const char *run)
{
	FILE *f = fopen(path, "we");
	int i, skipped = 0;

	if (!f) {
		uvs_error("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
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
			fprintf(f, "<failure message=\"%.3f -&gt; %.3f (%+.1f%%,"
				" limit %.3f)\"/>", r->base, r->run,
				r->change * 100, r->limit);
		else if (r->verdict == UVS_CHECK_SKIPPED)
			fprintf(f, "<skipped message=\"too few samples\"/>");
		fprintf(f, "</testcase>\n");
	}
	fprintf(f, "</testsuite>\n</testsuites>\n");
	if (fclose(f)) {
		uvs_error("cannot write %s", path);
		return -1;
	}
	return 0;
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

		json_array_append_new(rows, json_pack(
			"{s:s,s:f,s:f,s:f,s:f,s:f,s:f,s:s}", "metric", r->name,
			"baseline", r->base, "baseline_min", r->base_min,
			"baseline_max", r->base_max, "run", r->run,
			"change", r->change, "limit", r->limit, "verdict",
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
	struct uvs_report *reps[UVS_CHECK_MAX_BASE + 1] = { 0 };
	struct uvs_check *c = NULL;
	const char *format = "text";
	int nb = 0, i, ret = UVS_EXIT_ERR;
	bool json = false;
	char *end;

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
			double p = v ? strtod(v, &end) : -1;

			if (!v || end == v || (*end && strcmp(end, "%")) ||
			    p <= 0 || p > 1000) {
				uvs_error("--max-regression needs a percentage "
					  "like 10%%");
				goto out;
			}
			c->opts.max_regression = p / 100;
			i++;
		} else if (!strcmp(a, "--min-change")) {
			double ms = v ? strtod(v, &end) : -1;

			if (!v || end == v || (*end && strcmp(end, "ms")) ||
			    ms < 0) {
				uvs_error("--min-change needs milliseconds");
				goto out;
			}
			c->opts.min_change_ms = ms;
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
	if (junit && write_junit(c, junit, run))
		goto out;
	ret = c->regressions ? 1 : 0;
out:
	for (i = 0; i <= UVS_CHECK_MAX_BASE; i++)
		free(reps[i]);
	free(c);
	return ret;
}
