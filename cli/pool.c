// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uvscope pool: thread-pool queueing, run time and completion delay. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static void pool_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope pool [OPTIONS] (-p PID | -- PROGRAM [ARGS...])\n"
"\n"
"Is libuv's thread pool the bottleneck, and who waits? For every task\n"
"that passes through it: queue wait (submitted -> picked up by a worker),\n"
"run time on the worker, and completion delay (worker done -> callback on\n"
"the loop thread), grouped by kind of work: fs.read, dns.lookup,\n"
"crypto.pbkdf2, zlib, or uv_queue_work's callback by name. Also the pool\n"
"size, busy threads, saturation (all threads busy while work waited),\n"
"queue depth, fs ops sent to io_uring, and sync fs calls made on the\n"
"loop thread itself.\n"
"\n"
"Options:\n"
"  -p, --pid PID         trace a running process\n"
"  -- PROGRAM [ARGS]     launch PROGRAM, trace from its first instruction,\n"
"                        forward signals, exit with its status\n"
"  -d, --duration SECS   stop after SECS (default: Ctrl-C or target exit)\n"
"  -i, --interval SECS   a timeline line every SECS (with --json: one\n"
"                        document per interval)\n"
"      --json            JSON output (schema uvscope/1)\n"
"      --probe-budget N  probe hits per second allowed (default 2000, about\n"
"                        1%% of a core; a task costs about 5): over it,\n"
"                        tasks are traced in windows and the report says\n"
"                        which share of the time it saw\n"
"      --exact           every task, whatever it costs the target\n"
"      --backend B       auto (default), ebpf or ptrace (no eBPF: queue\n"
"                        depth and busy threads read from memory at\n"
"                        100 Hz; no per-task times)\n"
"  -v, --verbose         show features and every probe attached\n"
"  -h, --help            this text\n"
"\n"
"Ctrl-C (or SIGTERM) stops and prints the report; a second one exits.\n"
"\n"
"EXAMPLES:\n"
"  uvscope pool -p 1234 -d 10            # 10 s, then the report\n"
"  uvscope pool -p 1234 -i 1             # a timeline line every second\n"
"  UV_THREADPOOL_SIZE=8 uvscope pool -d 5 -- node app.js\n"
"  uvscope pool --json -d 5 -p 1234      # machine-readable\n");
}

static int pool_opt(struct uvs_cli *c, int argc, char **argv, int *i,
		    void *ctx)
{
	struct uvs_pool_opts *po = ctx;
	const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	unsigned long long n;

	(void)c;
	if (!strcmp(o, "--exact")) {
		po->exact = true;
		return 1;
	}
	if (strcmp(o, "--probe-budget"))
		return 0;
	if (!v) {
		uvs_error("option %s needs a value", o);
		return -1;
	}
	if (uvs_cli__parse_uint("--probe-budget", v, 1, 1000000000, &n))
		return -1;
	po->probe_budget = n;
	(*i)++;
	return 1;
}

static const char *pool_backend(const struct uvs_cli *c)
{
	return c->use_ptrace ? "ptrace" : uvs_tier_name(c->target->tier);
}

/* Afresh for the next interval; the attach time stays. */
static void pool_report_init(struct uvs_report *r, const struct uvs_cli *c,
			     double attach_ms)
{
	uvs_report__init(r, "pool", c->target, pool_backend(c));
	r->attach_ms = attach_ms;
}

int cmd_pool(int argc, char **argv)
{
	struct uvs_pool_opts po = { .sz = sizeof(po) };
	struct uvs_cli c = { .go_fd = -1, .exec_err_fd = -1 };
	struct uvs_report *r = NULL;
	struct uvs_pool *p = NULL;
	struct uvs_pool_tick *ticks = NULL;
	uint64_t t0, last, shown_at, now;
	double attach_ms;
	bool exited = false;
	int k, shown = 0, n, ret = UVS_EXIT_ERR, err;

	k = uvs_cli__parse(&c, argc, argv, "pool", pool_help, pool_opt, &po);
	if (k)
		return k > 0 ? 0 : UVS_EXIT_ERR;
	if (c.tid) {
		uvs_error("pool watches the process's whole thread pool (its "
			  "workers and the loop that submits to them): --tid "
			  "does not apply");
		return UVS_EXIT_ERR;
	}
	c.ptrace_ok = true;
	c.reads_only = true; /* sampled from memory: nothing is traced */
	if (uvs_cli__prepare(&c))
		return UVS_EXIT_ERR;
	po.sampled = c.use_ptrace;
	po.tick_s = c.interval > 0 && !c.json ? c.interval : 1;
	err = uvs_pool__open(c.target, &po, &p);
	if (err) {
		uvs_cli__attach_failed(&c);
		goto out;
	}
	if (uvs_verbose)
		uvs_pool__describe(p, stderr);
	if (uvs_cli__release(&c))
		goto out;
	uvs_cli__sampler_priority(&c);
	ticks = calloc(UVS_POOL_TIMELINE, sizeof(*ticks));
	if (!ticks) {
		uvs_error("out of memory");
		goto out;
	}
	r = uvs_cli__new_report(&c, "pool", pool_backend(&c), &t0);
	if (!r)
		goto out;
	last = shown_at = t0;
	attach_ms = r->attach_ms;
	while (!uvs_cli_stop) {
		err = uvs_pool__poll(p, 100);
		if (err) {
			uvs_error("%s", uvs_errmsg());
			goto out;
		}
		now = uvs_now_ns();
		if (uvs_cli__done(&c, t0, now, &exited))
			break;
		if (!c.interval || now - (c.json ? last : shown_at) <
					   c.interval * 1e9)
			continue;
		if (c.json) {
			uvs_pool__collect(p, r);
			r->duration_s = (now - last) / 1e9;
			r->interval_start_s = (last - t0) / 1e9;
			uvs_report__print_json(r, stdout);
			pool_report_init(r, &c, attach_ms);
			last = now;
		} else {
			/* every tick that has ended since the last line */
			n = uvs_pool__timeline(p, ticks, UVS_POOL_TIMELINE);
			if (n < shown)
				shown = 0; /* coarsened: start over */
			for (; shown < n - 1; shown++)
				uvs_report__print_pool_tick(&ticks[shown],
							    shown == 0, stdout);
			shown_at = now;
		}
	}
	now = uvs_now_ns();
	uvs_pool__collect(p, r);
	r->duration_s = (now - last) / 1e9;
	r->interval_start_s = (last - t0) / 1e9;
	r->target_exited = exited;
	uvs_pool__close(p);
	p = NULL;
	if (c.json) {
		uvs_report__print_json(r, stdout);
	} else {
		if (shown)
			fputc('\n', stdout);
		uvs_report__print_text(r, stdout);
	}
	ret = uvs_cli__end(&c, exited, "exited", (now - t0) / 1e9);
out:
	uvs_pool__close(p);
	if (c.child)
		uvs_cli__finish(&c);
	uvs_target__close(c.target);
	free(ticks);
	free(r);
	return ret;
}
