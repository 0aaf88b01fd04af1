// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uvscope blocked: what blocked the loop thread, with stacks rooted at the
 * loop phase they ran in. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "flame.h"

static void blocked_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope blocked [OPTIONS] (-p PID | -- PROGRAM [ARGS...])\n"
"\n"
"Lists every episode in which the loop thread was busy outside its poll\n"
"wait for at least the threshold: when, how long, in which loop phase, how\n"
"much of it on CPU and off CPU (a sync fs call, a child, a lock; with who\n"
"woke it), and its stack. On-CPU stacks are sampled (cpu-clock perf\n"
"event on the loop thread), off-CPU stacks taken as the scheduler switches\n"
"it out. Stacks are rooted at their phase (timers;listOnTimeout;burnCpu),\n"
"so a flame graph reads like the event loop. JavaScript frames are named\n"
"when node runs with --perf-basic-prof, else shown as [jit].\n"
"\n"
"Options:\n"
"  -p, --pid PID         trace a running process\n"
"  -- PROGRAM [ARGS]     launch PROGRAM, trace from its first instruction\n"
"  -d, --duration SECS   stop after SECS (default: Ctrl-C or target exit)\n"
"  -t, --threshold MS    shortest episode reported (default 20; 20ms, 0.5s)\n"
"  -F, --frequency HZ    samples per second (default 997; ptrace: 99)\n"
"      --kernel          kernel frames in off-CPU stacks\n"
"      --flame FILE.svg  an interactive flame graph of the episodes\n"
"      --folded FILE     the same stacks, folded (Brendan Gregg's format)\n"
"      --speedscope FILE the same for https://www.speedscope.app\n"
"      --json            JSON output (schema uvscope/1)\n"
"      --tid TID         the loop's thread, if not the main thread\n"
"      --backend B       auto (default), ebpf or ptrace (sampling with\n"
"                        ptrace: episodes to one sample period)\n"
"  -v, --verbose         show features and what is attached\n"
"  -h, --help            this text\n"
"\n"
"Ctrl-C (or SIGTERM) stops and prints the report; a second one exits.\n"
"\n"
"EXAMPLES:\n"
"  uvscope blocked -p 1234 -d 30 --threshold 50ms\n"
"  uvscope blocked -p 1234 -d 10 --flame blocked.svg\n"
"  node --perf-basic-prof app.js &     # JS frames by name\n"
"  uvscope blocked -d 20 --folded out.folded -- node --perf-basic-prof app.js\n");
}

struct blocked_args {
	struct uvs_blocked_opts *bo;
	const char *files[3]; /* --flame, --folded, --speedscope */
};

static int blocked_opt(struct uvs_cli *c, int argc, char **argv, int *i,
		       void *ctx)
{
	struct blocked_args *a = ctx;
	const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	unsigned long long hz;
	double s;

	(void)c;
	if (!strcmp(o, "--kernel")) {
		a->bo->kernel = true;
		return 1;
	}
	if (strcmp(o, "-t") && strcmp(o, "--threshold") && strcmp(o, "-F") &&
	    strcmp(o, "--frequency") && strcmp(o, "--flame") &&
	    strcmp(o, "--folded") && strcmp(o, "--speedscope"))
		return 0;
	if (!v) {
		uvs_error("option %s needs a value", o);
		return -1;
	}
	if (!strcmp(o, "-t") || !strcmp(o, "--threshold")) {
		/* milliseconds by default; "20ms" and "0.5s" too */
		if (uvs_cli__parse_time("threshold", v, 0.001, 1e-4, 3600, &s))
			return -1;
		a->bo->threshold_ns = s * 1e9;
	} else if (!strcmp(o, "-F") || !strcmp(o, "--frequency")) {
		if (uvs_cli__parse_uint("frequency", v, 1, 20000, &hz))
			return -1;
		a->bo->sample_hz = hz;
	} else if (!strcmp(o, "--flame")) {
		a->files[0] = v;
	} else if (!strcmp(o, "--folded")) {
		a->files[1] = v;
	} else {
		a->files[2] = v;
	}
	(*i)++;
	return 1;
}

int uvs_cli__write_stacks(const struct uvs_report *r,
			  struct uvs_cli_out out[3])
{
	const struct uvs_stacks *st = r->blocked.stacks;
	char title[160], sub[200];
	int i, err = 0;

	snprintf(title, sizeof(title), "uvscope blocked: pid %d (%s%s%s)",
		 r->pid, r->runtime, r->runtime_version[0] ? " " : "",
		 r->runtime_version);
	snprintf(sub, sizeof(sub), "%llu episodes of >= %.1f ms, %.1f ms "
		 "blocked; one count = one %u Hz sample (off-CPU: its time)",
		 (unsigned long long)r->blocked.count,
		 r->blocked.threshold_ns / 1e6, r->blocked.blocked_ns / 1e6,
		 r->blocked.sample_hz);
	for (i = 0; i < 3; i++) {
		struct uvs_flame_opts fo = { .sz = sizeof(fo), .title = title,
					     .subtitle = sub };

		if (!out[i].f)
			continue;
		if (!st) {
			uvs_error("no stacks to write to %s", out[i].path);
			goto fail;
		}
		if (i == 0)
			err = uvs_flame__write_svg(st, &fo, out[i].f);
		else if (i == 1)
			err = uvs_stacks__write_folded(st, out[i].f);
		else
			err = uvs_flame__write_speedscope(st, title, out[i].f);
		if (uvs_cli__out_close(&out[i], err))
			goto fail;
	}
	return 0;
fail:
	for (i = 0; i < 3; i++)
		uvs_cli__out_discard(&out[i]);
	return -1;
}

int cmd_blocked(int argc, char **argv)
{
	struct uvs_blocked_opts bo = { .sz = sizeof(bo) };
	struct blocked_args ba = { .bo = &bo };
	struct uvs_cli_out out[3] = { { .slot = -1 }, { .slot = -1 },
				      { .slot = -1 } };
	struct uvs_cli c = { .go_fd = -1, .exec_err_fd = -1 };
	struct uvs_report *r = NULL;
	struct uvs_blocked *b = NULL;
	uint64_t t0, now;
	bool exited = false, reaped;
	int i, k, ret = UVS_EXIT_ERR, err, st;

	k = uvs_cli__parse(&c, argc, argv, "blocked", blocked_help,
			   blocked_opt, &ba);
	if (k)
		return k > 0 ? 0 : UVS_EXIT_ERR;
	if (c.interval) {
		uvs_error("blocked lists episodes as they end: -i does not apply");
		return UVS_EXIT_ERR;
	}
	for (i = 0; i < 3; i++)
		if (uvs_cli__out_open(&out[i], ba.files[i]))
			goto out;
	bo.tid = c.tid;
	c.ptrace_ok = true;
	if (uvs_cli__prepare(&c))
		goto out;
	bo.ptrace = c.use_ptrace;
	err = uvs_blocked__open(c.target, &bo, &b);
	if (err) {
		uvs_cli__attach_failed(&c);
		goto out;
	}
	if (uvs_verbose)
		uvs_blocked__describe(b, stderr);
	if (uvs_cli__release(&c))
		goto out;
	uvs_cli__sampler_priority(&c);
	r = uvs_cli__new_report(&c, "blocked", bo.ptrace ? "ptrace" :
				uvs_tier_name(c.target->tier), &t0);
	if (!r)
		goto out;
	while (!uvs_cli_stop) {
		err = uvs_blocked__poll(b, 100);
		if (err) {
			uvs_error("%s", uvs_errmsg());
			goto out;
		}
		now = uvs_now_ns();
		if (uvs_blocked__ended(b, &reaped, &st)) {
			uvs_cli__reaped(&c, reaped, st);
			/* the tracer ends at an exec too */
			exited = !uvs_cli__execd(&c);
			break;
		}
		if (uvs_cli__done(&c, t0, now, &exited))
			break;
	}
	now = uvs_now_ns();
	if (uvs_blocked__collect(b, r)) {
		uvs_error("%s", uvs_errmsg());
		goto out;
	}
	r->duration_s = (now - t0) / 1e9;
	r->target_exited = exited;
	uvs_blocked__close(b);
	b = NULL;
	if (uvs_cli__write_stacks(r, out))
		goto out;
	if (c.json)
		uvs_report__print_json(r, stdout);
	else
		uvs_report__print_text(r, stdout);
	ret = uvs_cli__end(&c, exited, "exited", (now - t0) / 1e9);
out:
	for (i = 0; i < 3; i++)
		uvs_cli__out_discard(&out[i]);
	uvs_blocked__close(b);
	if (c.child)
		uvs_cli__finish(&c);
	uvs_target__close(c.target);
	uvs_report__fini(r);
	free(r);
	return ret;
}
