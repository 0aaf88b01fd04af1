// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uvscope loop: event-loop phase latency, poll timeouts and waits. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "cli.h"
#include "ptrace.h"

static void loop_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope loop [OPTIONS] (-p PID | -- PROGRAM [ARGS...])\n"
"\n"
"Measures a libuv event loop: time per phase (timers, pending, idle,\n"
"prepare, poll, check, close) per iteration, iterations per second, loop\n"
"utilization, the timeout each poll asked for and the time it waited.\n"
"\n"
"Options:\n"
"  -p, --pid PID         trace a running process\n"
"  -- PROGRAM [ARGS]     launch PROGRAM, trace from its first instruction,\n"
"                        forward signals, exit with its status\n"
"  -d, --duration SECS   stop after SECS (default: Ctrl-C or target exit)\n"
"  -i, --interval SECS   print a report every SECS, then start afresh\n"
"      --json            one JSON document per report (schema uvscope/1)\n"
"      --exact           time phases in every iteration, whatever the cost\n"
"      --probe-budget N  phase-probe hits per second allowed (default 2000,\n"
"                        about 1%% of a core); over it, phases are timed in\n"
"                        sampled windows and the report says which share\n"
"      --phase-floor US  phase runs shorter than US microseconds (empty\n"
"                        runs) are left out of the distributions (10)\n"
"      --tid TID         the loop's thread, if not the main thread\n"
"      --backend B       auto (default), ebpf or ptrace; auto takes ptrace\n"
"                        where eBPF is not allowed (see docs/backends.md)\n"
"      --rate HZ         ptrace: samples of the loop thread per second (99)\n"
"  -v, --verbose         show features, probes attached and why\n"
"  -h, --help            this text\n"
"\n"
"Ctrl-C (or SIGTERM) stops and prints the report; a second one exits.\n"
"\n"
"EXAMPLES:\n"
"  uvscope loop -p 1234                  # until Ctrl-C, then the report\n"
"  uvscope loop -p 1234 -d 10 --json     # 10 seconds, JSON on stdout\n"
"  uvscope loop -p 1234 -i 1             # a report every second\n"
"  uvscope loop -d 5 -- node server.js   # launch, trace 5 s, stop it\n"
"  uvscope loop --backend ptrace -p 1234 # no eBPF: sample the stack\n");
}

static void record_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope record -o FILE [OPTIONS] (-p PID | -- PROGRAM [ARGS...])\n"
"\n"
"Records what the backend measures into one JSON document (schema\n"
"uvscope/1, histograms with their buckets, target and environment), for\n"
"'uvscope report', 'uvscope check' and 'uvscope diff': the loop (as\n"
"'uvscope loop'), the thread pool (as 'uvscope pool', where libuv's\n"
"internal symbols allow) and blocked episodes with their stacks (as\n"
"'uvscope blocked').\n"
"\n"
"Options: -o, --output FILE; --no-pool, --no-blocked to leave a section\n"
"out; -t, --threshold MS for blocked episodes (20); and those of\n"
"'uvscope loop' except -i.\n"
"\n"
"EXAMPLES:\n"
"  uvscope record -o run.json -d 30 -p 1234\n"
"  uvscope record -o run.json -d 20 -- node server.js\n"
"  uvscope check --baseline base.json run.json\n");
}

/* Prints r, or with out (record's -o, opened before the trace), writes it
 * there as JSON. */
static int emit(struct uvs_report *r, bool json, struct uvs_cli_out *out)
{
	if (!out || !out->f) {
		if (json)
			return uvs_report__print_json(r, stdout);
		uvs_report__print_text(r, stdout);
		return 0;
	}
	if (uvs_cli__out_close(out, uvs_report__print_json(r, out->f)))
		return -1;
	printf("uvscope: recorded %.1f s of pid %d (%s, %s) to %s\n",
	       r->duration_s, r->pid, r->runtime, r->backend, out->path);
	return 0;
}

struct loop_args {
	struct uvs_loop_opts *lo;
	const char **out; /* record's -o; NULL for loop */
	bool no_pool, no_blocked;
	uint64_t threshold_ns;
	double rate_hz;	  /* --rate, for the ptrace backend */
};

static int loop_opt(struct uvs_cli *c, int argc, char **argv, int *i,
		    void *ctx)
{
	struct loop_args *a = ctx;
	const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	bool rec = a->out != NULL;
	unsigned long long n;
	double d;

	(void)c;
	if (rec && !strcmp(o, "--no-pool")) {
		a->no_pool = true;
		return 1;
	}
	if (rec && !strcmp(o, "--no-blocked")) {
		a->no_blocked = true;
		return 1;
	}
	if (!strcmp(o, "--exact")) {
		a->lo->exact = true;
		return 1;
	}
	if (!(rec && (!strcmp(o, "-t") || !strcmp(o, "--threshold") ||
		      !strcmp(o, "-o") || !strcmp(o, "--output"))) &&
	    strcmp(o, "--probe-budget") && strcmp(o, "--phase-floor") &&
	    strcmp(o, "--rate"))
		return 0;
	if (!v) {
		uvs_error("option %s needs a value", o);
		return -1;
	}
	if (rec && (!strcmp(o, "-t") || !strcmp(o, "--threshold"))) {
		if (uvs_cli__parse_time("threshold", v, 0.001, 1e-4, 3600, &d))
			return -1;
		a->threshold_ns = d * 1e9;
	} else if (rec && (!strcmp(o, "-o") || !strcmp(o, "--output"))) {
		*a->out = v;
	} else if (!strcmp(o, "--probe-budget")) {
		if (uvs_cli__parse_uint("--probe-budget", v, 1, 1000000000,
					&n))
			return -1;
		a->lo->probe_budget = n;
	} else if (!strcmp(o, "--phase-floor")) {
		/* in microseconds: a floor of 0 would mean the default */
		if (uvs_cli__parse_double("--phase-floor", v, "us", 0.001, 1e7,
					  &d))
			return -1;
		a->lo->phase_floor_ns = d * 1000;
	} else if (!strcmp(o, "--rate")) {
		if (uvs_cli__parse_double("--rate", v, NULL, 1, 10000,
					  &a->rate_hz))
			return -1;
	}
	(*i)++;
	return 1;
}

/* How long the sampler may poll before the pool's next read is due. */
static int pool_wait_ms(const struct uvs_pool *pl, int max_ms)
{
	uint64_t due = pl ? uvs_pool__due_ns(pl) : 0, now = uvs_now_ns();
	uint64_t ms;

	if (!due)
		return max_ms;
	ms = due > now ? (due - now + 999999) / 1000000 : 0;
	return ms < (uint64_t)max_ms ? (int)ms : max_ms;
}

/* The loop section's source: uprobes and tracepoints (eBPF), or the
 * ptrace backend's stack samples (lib/loop_ptrace.c). */
struct loop_src {
	struct uvs_loop *ebpf;
	struct uvs_ploop *pt;
};

static int src_open(struct loop_src *s, struct uvs_cli *c,
		    const struct loop_args *la)
{
	struct uvs_ploop_opts po = { .sz = sizeof(po), .rate_hz = la->rate_hz,
				     .tid = c->tid };
	const char *hold = getenv("UVSCOPE_TEST_PTRACE_HOLD_US");

	if (!c->use_ptrace) {
		if (la->rate_hz)
			return uvs_seterr(-EINVAL, "--rate is for the ptrace "
					  "backend (--backend ptrace)");
		la->lo->tid = c->tid;
		return uvs_loop__open(c->target, la->lo, &s->ebpf);
	}
	if (hold)
		po.hold_us = strtoul(hold, NULL, 10); /* a test's hook */
	return uvs_ploop__open(c->target, &po, &s->pt);
}

static int src_poll(struct loop_src *s, int timeout_ms)
{
	return s->pt ? uvs_ploop__poll(s->pt, timeout_ms)
		     : uvs_loop__poll(s->ebpf, timeout_ms);
}

/* Moves what was seen since the last call into r (whose duration_s is
 * set: the sampled shares become time with it). */
static void src_collect(struct loop_src *s, struct uvs_report *r)
{
	if (s->pt)
		uvs_ploop__collect(s->pt, r);
	else
		uvs_loop__collect(s->ebpf, r);
}

static void src_close(struct loop_src *s)
{
	uvs_ploop__close(s->pt);
	uvs_loop__close(s->ebpf);
	s->pt = NULL;
	s->ebpf = NULL;
}

/* Whether to stop: Ctrl-C, -d, or the target's end. The ptrace tracer
 * reaps a launched child itself, and says how it ended. */
static bool src_done(struct loop_src *s, struct uvs_cli *c, uint64_t t0,
		     uint64_t now, bool *exited)
{
	bool reaped = false;
	int st;

	if (s->pt && uvs_ploop__ended(s->pt, &reaped, &st)) {
		uvs_cli__reaped(c, reaped, st);
		/* the tracer ends at an exec too */
		*exited = !uvs_cli__execd(c);
		return true;
	}
	return uvs_cli__done(c, t0, now, exited);
}

/* `loop` prints; `record` writes the same report, as JSON, to -o FILE,
 * with the pool and blocked sections beside the loop's. With ptrace, the
 * blocked section reads the loop's own samples and the pool is read from
 * memory between the sampler's polls (lib/pool.c's sampled mode). */
static int loop_main(int argc, char **argv, const char *command)
{
	const char *out = NULL;
	struct uvs_cli_out of = { .slot = -1 };
	struct uvs_loop_opts lo = { .sz = sizeof(lo) };
	struct uvs_pool_opts po = { .sz = sizeof(po) };
	struct uvs_blocked_opts bo = { .sz = sizeof(bo) };
	struct uvs_pool *pl = NULL;
	struct uvs_blocked *bl = NULL;
	struct uvs_cli c = { .go_fd = -1, .exec_err_fd = -1 };
	struct uvs_report *r = NULL;
	struct loop_src src = { 0 };
	const char *backend;
	uint64_t t0, last, now;
	double attach_ms;
	bool exited = false;
	int k, ret = UVS_EXIT_ERR, err;

	struct loop_args la = { .lo = &lo, .out = strcmp(command, "record") ?
						NULL : &out };

	k = uvs_cli__parse(&c, argc, argv, command, strcmp(command, "record") ?
			   loop_help : record_help, loop_opt, &la);
	if (k)
		return k > 0 ? 0 : UVS_EXIT_ERR;
	if (!strcmp(command, "record")) {
		if (!out) {
			uvs_error("record needs -o FILE");
			return UVS_EXIT_ERR;
		}
		if (c.interval) {
			uvs_error("record writes one document: -i does not "
				  "apply");
			return UVS_EXIT_ERR;
		}
		if (uvs_cli__out_open(&of, out))
			return UVS_EXIT_ERR;
	}
	c.ptrace_ok = true;
	if (uvs_cli__prepare(&c))
		goto out;
	backend = c.use_ptrace ? "ptrace" : uvs_tier_name(c.target->tier);
	if (src_open(&src, &c, &la)) {
		uvs_cli__attach_failed(&c);
		goto out;
	}
	if (uvs_verbose && src.pt)
		uvs_ploop__describe(src.pt, stderr);
	else if (uvs_verbose)
		uvs_loop__describe(src.ebpf, stderr);
	po.sampled = c.use_ptrace;
	if (out && !la.no_pool &&
	    (c.use_ptrace || c.target->tier == UVS_TIER_SYMBOLS) &&
	    uvs_pool__open(c.target, &po, &pl))
		uvs_warn("record: no pool section: %s", uvs_errmsg());
	bo.threshold_ns = la.threshold_ns;
	bo.tid = c.tid;
	bo.ptrace = c.use_ptrace;
	bo.pt = src.pt ? uvs_ploop__sampler(src.pt) : NULL;
	if (out && !la.no_blocked && uvs_blocked__open(c.target, &bo, &bl))
		uvs_warn("record: no blocked section: %s", uvs_errmsg());
	if (uvs_cli__release(&c))
		goto out;
	uvs_cli__sampler_priority(&c);
	r = uvs_cli__new_report(&c, command, backend, &t0);
	if (!r)
		goto out;
	last = t0;
	while (!uvs_cli_stop) {
		/* a sampled pool is read between polls when due: at its own
		 * jittered times, not aliased with the sampler's period */
		err = src_poll(&src, pool_wait_ms(pl, 100));
		if (!err && pl)
			err = uvs_pool__poll(pl, 0);
		if (!err && bl)
			err = uvs_blocked__poll(bl, 0);
		if (err) {
			uvs_error("%s", uvs_errmsg());
			goto out;
		}
		now = uvs_now_ns();
		if (src_done(&src, &c, t0, now, &exited))
			break;
		if (c.interval && now - last >= c.interval * 1e9) {
			r->duration_s = (now - last) / 1e9;
			r->interval_start_s = (last - t0) / 1e9;
			src_collect(&src, r);
			emit(r, c.json, NULL);
			if (!c.json)
				fputc('\n', stdout);
			attach_ms = r->attach_ms;
			uvs_report__init(r, command, c.target, backend);
			r->attach_ms = attach_ms;
			last = now;
		}
	}
	now = uvs_now_ns();
	r->duration_s = (now - last) / 1e9;
	r->interval_start_s = (last - t0) / 1e9;
	src_collect(&src, r);
	if (pl)
		uvs_pool__collect(pl, r);
	if (bl && uvs_blocked__collect(bl, r)) {
		uvs_error("%s", uvs_errmsg());
		goto out;
	}
	r->target_exited = exited;
	/* detached before anything is printed or the child is ended;
	 * blocked may read the loop's sampler, so it goes first */
	uvs_blocked__close(bl);
	bl = NULL;
	src_close(&src);
	uvs_pool__close(pl);
	pl = NULL;
	if (emit(r, c.json, &of))
		goto out;
	ret = uvs_cli__end(&c, exited, "exited", (now - t0) / 1e9);
out:
	uvs_cli__out_discard(&of);
	uvs_blocked__close(bl);
	src_close(&src);
	uvs_pool__close(pl);
	uvs_report__fini(r);
	if (c.child)
		uvs_cli__finish(&c);
	uvs_target__close(c.target);
	free(r);
	return ret;
}

int cmd_loop(int argc, char **argv)
{
	return loop_main(argc, argv, "loop");
}

int cmd_record(int argc, char **argv)
{
	return loop_main(argc, argv, "record");
}
