// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The report model and its two printers. The text and the JSON are made
 * from the same numbers by the same helpers, so they cannot disagree.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include "uvscope.h"
#include "flame.h"

const char *const uvs_phase_names[7] = {
	"timers", "pending", "idle", "prepare", "poll", "check", "close",
};

/* uv_run, then the function that runs each phase, in phase order */
const char *const uvs_uv_run_fns[8] = {
	"uv_run",	  "uv__run_timers",	     "uv__run_pending",
	"uv__run_idle",	  "uv__run_prepare",	     "uv__io_poll",
	"uv__run_check",  "uv__run_closing_handles",
};

/* A launched program's main: its start to its loop's first poll (both
 * loop reports, exact or sampled). */
void uvs_report__text_main(const struct uvs_loop_report *l, FILE *out)
{
	if (l->has_main)
		fprintf(out, "main: %.1f ms from its start to the loop's first "
			"poll%s (its main module's synchronous run)\n",
			l->main_ns / 1e6, l->main_ongoing ? ", not reached yet"
							  : "");
}

const char *uvs_exit_reason_name(enum uvs_exit_reason r)
{
	static const char *const n[] = {
		"unknown", "drained", "exit", "signal", "uncaught-exception",
		"abort", "oom", "running",
	};

	return r <= UVS_EXIT_RUNNING ? n[r] : "unknown";
}

static void uvs__environment(struct uvs_env *e)
{
	char buf[8192], *p;
	struct utsname u;
	time_t now = time(NULL);
	struct tm tm;

	if (!uname(&u))
		snprintf(e->kernel, sizeof(e->kernel), "%s %s", u.sysname,
			 u.release);
	if (uvs_read_file("/proc/cpuinfo", buf, sizeof(buf)) > 0 &&
	    (p = strstr(buf, "model name"))) {
		p = strchr(p, ':');
		if (p) {
			p += 2;
			p[strcspn(p, "\n")] = '\0';
			snprintf(e->cpu_model, sizeof(e->cpu_model), "%s", p);
		}
	}
	if (gmtime_r(&now, &tm))
		strftime(e->recorded_at, sizeof(e->recorded_at),
			 "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void uvs_report__fini(struct uvs_report *r)
{
	if (!r)
		return;
	uvs_stacks__free(r->blocked.stacks);
	r->blocked.stacks = NULL;
}

void uvs_report__init(struct uvs_report *r, const char *command,
		      const struct uvs_target *t, const char *backend)
{
	memset(r, 0, sizeof(*r));
	r->command = command;
	r->pid = t->pid;
	snprintf(r->exe, sizeof(r->exe), "%s", t->exe);
	snprintf(r->runtime, sizeof(r->runtime), "%s", t->runtime);
	snprintf(r->runtime_version, sizeof(r->runtime_version), "%s",
		 t->runtime_version);
	snprintf(r->libuv_version, sizeof(r->libuv_version), "%s",
		 t->libuv_version);
	snprintf(r->backend, sizeof(r->backend), "%s", backend);
	r->loop_tid = t->loop_tid;
	r->has_loop = !strcmp(command, "loop") || !strcmp(command, "record");
	r->has_why = !strcmp(command, "why");
	uvs__environment(&r->env);
}

struct uvs__q {
	double p50, p90, p99, max, total;
	uint64_t count;
};

static struct uvs__q uvs__quant(const struct uvs_hist *h, double scale)
{
	struct uvs__q q;

	q.count = h->count;
	q.p50 = uvs_hist__quantile(h, 0.5) / scale;
	q.p90 = uvs_hist__quantile(h, 0.9) / scale;
	q.p99 = uvs_hist__quantile(h, 0.99) / scale;
	q.max = h->max / scale;
	q.total = h->sum / scale;
	return q;
}

static double uvs__utilization(const struct uvs_loop_report *l)
{
	uint64_t all = l->busy_ns + l->wait_ns;

	return all ? (double)l->busy_ns / all : 0;
}

static double uvs__measured(const struct uvs_loop_report *l)
{
	return l->iterations ? (double)l->phase_iterations / l->iterations : 0;
}

/* ---- text ---- */

static void uvs__text_loop(const struct uvs_report *r, FILE *out)
{
	const struct uvs_loop_report *l = &r->loop;
	struct uvs__q q;
	int i;

	if (l->sampled.on) {
		uvs_report__text_sampled(r, out);
		return;
	}
	fprintf(out, "iterations: %llu (%.1f/s)   utilization: %.1f%%\n",
		(unsigned long long)l->iterations,
		r->duration_s > 0 ? l->iterations / r->duration_s : 0,
		100 * uvs__utilization(l));
	uvs_report__text_main(l, out);
	if (l->now_state != UVS_NOW_UNKNOWN && !r->target_exited)
		fprintf(out, "now: %s for %s%.1f ms\n",
			l->now_state == UVS_NOW_BUSY ? "busy (outside poll)"
						     : "waiting in poll",
			l->now_at_least ? "at least " : "",
			l->now_for_ns / 1e6);
	if (!l->phases_known) {
		fprintf(out, "phases: unknown (libuv's internal symbols are "
			"stripped; poll and iterations are exact)\n");
	} else {
		fprintf(out, "phases timed in %.*f%% of iterations (%llu of "
			"%llu)\n\n", uvs__measured(l) < 0.01 ? 3 : 1,
			100 * uvs__measured(l),
			(unsigned long long)l->phase_iterations,
			(unsigned long long)l->iterations);
		fprintf(out, "%-9s %8s %10s %8s %8s %8s %8s\n", "PHASE",
			"COUNT", "TOTAL ms", "P50 ms", "P90 ms", "P99 ms",
			"MAX ms");
		for (i = 0; i < 7; i++) {
			q = uvs__quant(&l->phase[i].ns, 1e6);
			q.total = l->phase[i].total_ns / 1e6;
			fprintf(out, "%-9s %8llu %10.1f %8.3f %8.3f %8.3f %8.3f%s\n",
				uvs_phase_names[i], (unsigned long long)q.count,
				q.total, q.p50, q.p90, q.p99, q.max,
				l->phase_derived[i] ? " *" : "");
		}
		for (i = 0; i < 7; i++)
			if (l->phase_derived[i])
				break;
		if (i < 7)
			fprintf(out, "* inlined in this build: timed between "
				"its neighbours' probes\n");
		fprintf(out, "COUNT: iterations where the phase ran >= %.0f us "
			"(quantiles over those);\nTOTAL: all timed iterations. "
			"Calls of a phase in one iteration add up.\n",
			l->phase_floor_ns / 1e3);
	}
	fprintf(out, "\npoll\n");
	if (!l->iterations) {
		fprintf(out, "  no poll completed while traced\n");
		return;
	}
	q = uvs__quant(&l->timeout_ms, 1);
	fprintf(out, "  requested timeout ms: p50 %.0f  p99 %.0f  max %.0f  "
		"infinite %llu  zero %llu\n", q.p50, q.p99, q.max,
		(unsigned long long)l->timeout_infinite,
		(unsigned long long)l->timeout_zero);
	q = uvs__quant(&l->wait_ns_h, 1e6);
	fprintf(out, "  waited ms:            p50 %.3f  p90 %.3f  p99 %.3f  "
		"max %.3f\n", q.p50, q.p90, q.p99, q.max);
	fprintf(out, "  waits: %llu timed out, %llu woken by events",
		(unsigned long long)l->timed_out,
		(unsigned long long)l->woken);
	if (l->interrupted)
		fprintf(out, ", %llu interrupted",
			(unsigned long long)l->interrupted);
	fputc('\n', out);
	if (l->wait_ns_h.count) {
		fprintf(out, "\npoll wait per iteration\n");
		uvs_hist__print_log2(&l->wait_ns_h, out, "usecs", 1000);
	}
	if (!l->phases_known)
		return;
	for (i = 0; i < 7; i++) {
		/* a distribution matters once a phase reaches a millisecond */
		if (l->phase[i].ns.max < 1000000)
			continue;
		fprintf(out, "\n%s per iteration\n", uvs_phase_names[i]);
		uvs_hist__print_log2(&l->phase[i].ns, out, "usecs", 1000);
	}
}

static const char *uvs__signame(int sig)
{
	const char *n = sigabbrev_np(sig);

	return n ? n : "?";
}

static void uvs__text_exit(const struct uvs_report *r, FILE *out)
{
	const struct uvs_exit_report *e = &r->exit;
	int i;

	if (e->reason == UVS_EXIT_RUNNING) {
		fprintf(out, "still running: pid %d did not end while watched\n",
			r->pid);
		return;
	}
	fprintf(out, "reason: %s", uvs_exit_reason_name(e->reason));
	if (e->detail[0])
		fprintf(out, " (%s)", e->detail);
	if (e->has_code)
		fprintf(out, ", code %d", e->code);
	if (e->signal)
		fprintf(out, ", signal SIG%s (%d)", uvs__signame(e->signal),
			e->signal);
	fputc('\n', out);
	if (e->handled_signal)
		fprintf(out, "after: SIG%s (%d), which it handled\n",
			uvs__signame(e->handled_signal), e->handled_signal);
	if (e->has_sender)
		fprintf(out, "sent by: pid %d (%s), uid %u\n", e->sender.pid,
			e->sender.comm, e->sender.uid);
	if (e->message[0])
		fprintf(out, "message: %s\n", e->message);
	if (e->js_stack[0])
		fprintf(out, "%s", e->js_stack);
	fprintf(out, "ended: %.1f ms after uvscope attached", e->at_ms);
	if (e->drained_at_ms >= 0)
		fprintf(out, "; the main loop ran out of work at %.1f ms",
			e->drained_at_ms);
	fputc('\n', out);
	if (e->last_keeper[0])
		fprintf(out, "last keeper: %s (still there at %.0f ms)\n",
			e->last_keeper, e->last_keeper_ms);
	if (e->nstack) {
		fprintf(out, "\nnative stack:\n");
		for (i = 0; i < e->nstack; i++)
			fprintf(out, "  %.76s\n", e->stack[i]);
	}
	for (i = 0; i < e->nthreads; i++)
		fprintf(out, "%sthread %d exited (code %d) at %.1f ms\n",
			i ? "" : "\nother threads:\n", e->threads[i].tid,
			e->threads[i].code, e->threads[i].at_ms);
}

static void uvs__text_why_loop(const struct uvs_why_report *w, int idx,
			       FILE *out)
{
	int i, pass;

	for (pass = 0; pass < 2; pass++) {
		bool any = false;

		for (i = 0; i < w->nhandles; i++) {
			const struct uvs_why_handle *h = &w->handles[i];

			if (h->loop != idx || !h->why_not != !pass)
				continue;
			if (!any)
				fprintf(out, "\n%s:\n", pass ? "not keeping it alive"
							    : "keeping it alive");
			any = true;
			/* whole: a callback's name cut short names nothing */
			fprintf(out, "  %-8s %s%s%s%s\n", h->type_name,
				h->detail, pass ? " (" : "",
				pass ? h->why_not : "", pass ? ")" : "");
			if (h->callback[0] && strcmp(h->callback, h->detail))
				fprintf(out, "  %-8s callback %s\n", "",
					h->callback);
		}
	}
}

/* A loop's thread: waiting in its poll, or busy (what a hung process
 * looks like: its handles are as the running callback left them). */
static void uvs__text_loop_state(const struct uvs_why_report *w, int i,
				 FILE *out)
{
	if (w->loops[i].state != UVS_LOOP_BUSY)
		return;
	if (w->loops[i].busy_ms >= 0)
		fprintf(out, "the loop is BUSY: its thread is not waiting in "
			"its poll, and the loop's clock last moved %.0f ms ago "
			"(a callback, or the program's start, running that long "
			"at least)\n", w->loops[i].busy_ms);
	else
		fprintf(out, "the loop is BUSY: its thread is not waiting in "
			"its poll (it has not polled yet)\n");
}

static const char *uvs__loop_state_name(int state)
{
	return state == UVS_LOOP_WAITING ? "waiting" :
	       state == UVS_LOOP_BUSY ? "busy" : "unknown";
}

static void uvs__text_why(const struct uvs_report *r, FILE *out)
{
	const struct uvs_why_report *w = &r->why;
	int i;

	fprintf(out, "main loop at %#llx: %d handle%s keep%s it alive, "
		"%u active request%s\n", (unsigned long long)w->loop_addr,
		w->keepers, w->keepers == 1 ? "" : "s",
		w->keepers == 1 ? "s" : "", w->active_reqs,
		w->active_reqs == 1 ? "" : "s");
	uvs__text_loop_state(w, 0, out);
	uvs__text_why_loop(w, 0, out);
	if (!w->keepers && !w->active_reqs && w->loops[0].state == UVS_LOOP_BUSY)
		fprintf(out, "\nnothing keeps the loop alive, but it is busy: "
			"it ends its run when the code running now returns to "
			"uv_run, if it ever does\n");
	else if (!w->keepers && !w->active_reqs)
		fprintf(out, "\nnothing keeps the loop alive: it will end its "
			"run as soon as it returns to uv_run\n");
	for (i = 0; i < w->nreqs; i++)
		fprintf(out, "%s  %-11s %s%s\n", i ? "" :
			"\nrequests waiting in the thread pool's queue:\n",
			w->reqs[i].type, w->reqs[i].detail,
			w->reqs[i].loop > 0 ? " (other loop)" : "");
	for (i = 1; i < w->nloops; i++) {
		fprintf(out, "\nother loop at %#llx (thread %d): %d "
			"handle%s keep%s it alive, %u active request%s\n",
			(unsigned long long)w->loops[i].addr, w->loops[i].tid,
			w->loops[i].keepers, w->loops[i].keepers == 1 ? "" : "s",
			w->loops[i].keepers == 1 ? "s" : "",
			w->loops[i].active_reqs,
			w->loops[i].active_reqs == 1 ? "" : "s");
		uvs__text_loop_state(w, i, out);
		uvs__text_why_loop(w, i, out);
	}
	if (w->truncated)
		fprintf(out, "(only the first %d handles are listed)\n",
			UVS_WHY_MAX);
}

struct uvs__topstack {
	const char *s[5];
	uint64_t n[5];
};

static int uvs__top_stack(const char *folded, uint64_t count, void *ctx)
{
	struct uvs__topstack *t = ctx;
	int i, j;

	for (i = 0; i < 5; i++)
		if (!t->s[i] || count > t->n[i])
			break;
	if (i == 5)
		return 0;
	for (j = 4; j > i; j--) {
		t->s[j] = t->s[j - 1];
		t->n[j] = t->n[j - 1];
	}
	t->s[i] = folded;
	t->n[i] = count;
	return 0;
}

/* The frame that says where an episode was, for a person: the innermost
 * JavaScript frame, else the innermost native one that is not a runtime
 * or libc helper ([vdso], __clock_gettime, v8::base::...). */
static const char *uvs__where(const struct uvs_blocked_episode *e)
{
	static char js[160];
	const char *f, *sp, *slash;
	int i;

	for (i = 0; i < e->ntop; i++) {
		f = e->top_frames[i];
		if (uvs_flame__frame_kind(f, 1) != UVS_FRAME_JS ||
		    !strncmp(f, "Builtins_", 9))
			continue;
		/* "JS:*burnCpu /srv/app/server.js:12:3" -> "... server.js:12:3" */
		sp = strchr(f, ' ');
		slash = sp ? strrchr(sp, '/') : NULL;
		if (!slash)
			return f;
		snprintf(js, sizeof(js), "%.*s %s", (int)(sp - f), f, slash + 1);
		return js;
	}
	for (i = 0; i < e->ntop; i++)
		if (e->top_frames[i][0] != '[' && e->top_frames[i][0] != '_' &&
		    strncmp(e->top_frames[i], "v8::base::", 10))
			return e->top_frames[i];
	return e->ntop ? e->top_frames[0] : "-";
}

static void uvs__text_blocked(const struct uvs_report *r, FILE *out)
{
	const struct uvs_blocked_report *b = &r->blocked;
	struct uvs__topstack top = { { 0 }, { 0 } };
	uint64_t total;
	int i;

	if (!strcmp(r->backend, "ptrace"))
		fprintf(out, "threshold %.1f ms; ptrace samples at %u Hz: "
			"episodes to one sample period,\noff CPU where a sample "
			"found it in a system call\n", b->threshold_ns / 1e6,
			b->sample_hz);
	else
		fprintf(out, "threshold %.1f ms; on-CPU samples at %u Hz "
			"(cpu-clock), off-CPU from the scheduler\n",
			b->threshold_ns / 1e6, b->sample_hz);
	if (!b->count) {
		fprintf(out, "no episode: the loop thread was never busy for "
			"%.1f ms at a stretch while traced\n",
			b->threshold_ns / 1e6);
		return;
	}
	fprintf(out, "%llu episodes, %.1f ms blocked (%.1f%% of the time): "
		"%.1f ms on CPU, %.1f ms off\n", (unsigned long long)b->count,
		b->blocked_ns / 1e6, r->duration_s > 0 ?
		b->blocked_ns / 1e7 / r->duration_s : 0, b->on_cpu_ns / 1e6,
		b->off_cpu_ns / 1e6);
	fprintf(out, "stacks: %llu samples; %llu truncated, %llu without a "
		"loop phase, %llu unwind failures\n",
		(unsigned long long)b->samples,
		(unsigned long long)b->truncated,
		(unsigned long long)b->no_phase,
		(unsigned long long)b->unwind_failed);
	fprintf(out, "\n%9s %9s %-8s %8s %8s  %s\n", "START s", "DUR ms",
		"PHASE", "ON ms", "OFF ms", "WHERE");
	for (i = 0; i < b->nepisodes; i++) {
		const struct uvs_blocked_episode *e = &b->episodes[i];

		fprintf(out, "%9.3f %9.3f %-8s %8.1f %8.1f  %s%s%.*s\n",
			e->start_ms / 1e3, e->duration_ms, e->phase,
			e->on_cpu_ms, e->off_cpu_ms,
			e->ongoing ? "ONGOING: " : "",
			e->microtasks >= 0.5 ? "microtasks: " : "",
			e->microtasks >= 0.5 ? 20 : 32, uvs__where(e));
		if (i == 19 && b->nepisodes > 21) {
			fprintf(out, "  ... %d more (--json has them all)\n",
				b->nepisodes - 20);
			break;
		}
	}
	if (b->count > (uint64_t)b->nepisodes)
		fprintf(out, "(the first %d episodes are listed)\n",
			b->nepisodes);
	if (!b->stacks || !uvs_stacks__count(b->stacks))
		return;
	total = uvs_stacks__total(b->stacks);
	uvs_stacks__foreach(b->stacks, uvs__top_stack, &top);
	fprintf(out, "\nTOP STACKS (share of blocked time, leaf last)\n");
	for (i = 0; i < 5 && top.s[i]; i++) {
		const char *f = top.s[i], *tail = f + strlen(f);
		size_t root = strcspn(f, ";");
		int depth = 0;

		/* the phase root, then the innermost frames that fit */
		while (tail > f + root && depth < 4)
			if (*--tail == ';')
				depth++;
		fprintf(out, "%5.1f%%  %.*s%s%.58s\n", 100.0 * top.n[i] / total,
			(int)root, f, tail > f + root ? ";..." : "", tail);
	}
}

static const char *uvs__via_name(enum uvs_pool_via v)
{
	return v == UVS_VIA_IO_URING ? "io_uring" :
	       v == UVS_VIA_LOOP ? "loop-thread" : "pool";
}

static void uvs__text_pool_table(const struct uvs_pool_report *o,
				 const char *title, int which,
				 enum uvs_pool_via via, FILE *out)
{
	struct uvs__q q;
	int i;

	fprintf(out, "\n%-24s %7s %8s %8s %8s %8s\n", title, "COUNT",
		"P50 ms", "P90 ms", "P99 ms", "MAX ms");
	for (i = 0; i < o->nkinds; i++) {
		const struct uvs_pool_kind *k = &o->kinds[i];
		const struct uvs_hist *h = which == 0 ? &k->queue_ns :
					   which == 1 ? &k->run_ns : &k->done_ns;

		if (k->via != via || !k->count)
			continue;
		q = uvs__quant(h, 1e6);
		fprintf(out, "%-24.24s %7llu %8.3f %8.3f %8.3f %8.3f%s\n",
			k->name, (unsigned long long)q.count, q.p50, q.p90,
			q.p99, q.max, k->slow_io && which == 0 ? " slow" : "");
	}
}

static void uvs__text_pool(const struct uvs_report *r, FILE *out)
{
	const struct uvs_pool_report *o = &r->pool;
	bool uring = false, sync = false;
	int i;

	if (o->threads && o->sampled_hz)
		fprintf(out, "pool: %d thread%s (UV_THREADPOOL_SIZE); slow-I/O "
			"limit %d\n", o->threads, o->threads == 1 ? "" : "s",
			o->slow_io_limit);
	else if (o->threads)
		fprintf(out, "pool: %d thread%s (UV_THREADPOOL_SIZE), %d ran "
			"work; slow-I/O limit %d\n", o->threads,
			o->threads == 1 ? "" : "s", o->threads_seen,
			o->slow_io_limit);
	else if (o->threads_seen)
		fprintf(out, "pool: %d thread(s) ran work (its size was not "
			"read: the process had ended)\n", o->threads_seen);
	else
		fprintf(out, "pool: not started (no work has been queued "
			"yet)\n");
	if (o->sampled_hz) {
		fprintf(out, "sampled from memory %llu times at %.0f Hz (no eBPF):"
			" depth and busy threads only;\nper-task times need the "
			"eBPF backend\n", (unsigned long long)o->samples,
			o->sampled_hz);
		if (o->torn)
			fprintf(out, "%llu queue reads changed under every "
				"retry: the depth read before was kept\n",
				(unsigned long long)o->torn);
		fprintf(out, "busy threads: mean %.2f of %d; saturated %.1f%% "
			"(all busy, work waiting)\n", o->mean_busy, o->threads,
			100 * o->saturation);
		fprintf(out, "queue depth: max %llu, mean %.2f; slow-I/O queue "
			"max %llu\n", (unsigned long long)o->max_queue_depth,
			o->mean_queue_depth,
			(unsigned long long)o->max_slow_queue_depth);
		return;
	}
	fprintf(out, "tasks: %llu done, %llu cancelled, %llu submitted; "
		"now %llu queued, %llu running\n",
		(unsigned long long)o->completed,
		(unsigned long long)o->cancelled,
		(unsigned long long)o->submitted,
		(unsigned long long)o->queued_now,
		(unsigned long long)o->running_now);
	if (o->queued_now)
		fprintf(out, "oldest queued task has waited %.1f ms\n",
			o->oldest_queued_ms);
	if (o->windowed)
		fprintf(out, "over budget (%llu probe hits/s): traced %.*f%% of "
			"the time,\nin %llu windows; the figures are of those\n",
			(unsigned long long)o->probe_budget,
			o->traced_share < 0.1 ? 2 : 1, 100 * o->traced_share,
			(unsigned long long)o->windows);
	if (!o->submitted && !o->completed && !o->queued_now &&
	    !o->running_now) {
		fprintf(out, "the pool is idle: no task passed through it "
			"while traced\n");
	} else {
		fprintf(out, "busy threads: mean %.2f of %d; saturated %.1f%% "
			"(all busy, work waiting)\n", o->mean_busy,
			o->threads ? o->threads : o->threads_seen,
			100 * o->saturation);
		fprintf(out, "queue depth: max %llu, mean %.2f; slow-I/O "
			"queue max %llu\n",
			(unsigned long long)o->max_queue_depth,
			o->mean_queue_depth,
			(unsigned long long)o->max_slow_queue_depth);
	}
	for (i = 0; i < o->nkinds; i++)
		if (o->kinds[i].cancelled)
			fprintf(out, "cancelled before they ran: %llu %s\n",
				(unsigned long long)o->kinds[i].cancelled,
				o->kinds[i].name);
	if (o->unmatched_start || o->unmatched_done)
		fprintf(out, "not paired: %llu started, %llu done, submitted "
			"before tracing or a window began\n",
			(unsigned long long)o->unmatched_start,
			(unsigned long long)o->unmatched_done);
	if (o->cut)
		fprintf(out, "cut: %llu tasks in flight when a window closed\n",
			(unsigned long long)o->cut);
	for (i = 0; i < o->nkinds; i++) {
		uring |= o->kinds[i].via == UVS_VIA_IO_URING;
		sync |= o->kinds[i].via == UVS_VIA_LOOP;
	}
	if (o->completed || o->cancelled) {
		uvs__text_pool_table(o, "QUEUE WAIT", 0, UVS_VIA_POOL, out);
		uvs__text_pool_table(o, "RUN (on a worker)", 1, UVS_VIA_POOL, out);
		uvs__text_pool_table(o, "DONE DELAY (to callback)", 2,
				     UVS_VIA_POOL, out);
	}
	if (uring)
		uvs__text_pool_table(o, "IO_URING (not the pool)", 1,
				     UVS_VIA_IO_URING, out);
	else if (o->io_uring)
		fprintf(out, "\nthe process has an io_uring ring; no fs op "
			"went through it while traced\n");
	if (sync)
		uvs__text_pool_table(o, "SYNC ON THE LOOP THREAD", 1,
				     UVS_VIA_LOOP, out);
	if (o->nslowest) {
		fprintf(out, "\n%-24s %9s %9s %9s %9s %7s\n", "SLOWEST TASKS",
			"AT s", "QUEUE ms", "RUN ms", "DONE ms", "WORKER");
		for (i = 0; i < o->nslowest && i < 5; i++)
			fprintf(out, "%-24.24s %9.3f %9.3f %9.3f %9.3f %7d\n",
				o->slowest[i].kind, o->slowest[i].submit_ms / 1e3,
				o->slowest[i].queue_ms, o->slowest[i].run_ms,
				o->slowest[i].done_ms, o->slowest[i].worker);
	}
}

/* One line per tick: the live view of `uvscope pool -i`. */
void uvs_report__print_pool_tick(const struct uvs_pool_tick *k, bool header,
				 FILE *out)
{
	if (header)
		fprintf(out, "%8s %8s %8s %8s %8s %8s %8s\n", "TIME s", "SUBMIT",
			"DONE", "BUSY", "QMAX", "SAT%", "TRACED%");
	if (k->covered <= 0) {
		fprintf(out, "%8.1f %8s %8s %8s %8s %8s %8.1f\n",
			k->t_s + k->len_s, "-", "-", "-", "-", "-", 0.0);
		fflush(out);
		return;
	}
	fprintf(out, "%8.1f %8u %8u %8.2f %8u %8.1f %8.1f\n", k->t_s + k->len_s,
		k->submitted, k->completed, k->busy_mean, k->queue_max,
		100 * k->saturated, 100 * k->covered);
	fflush(out);
}

static void uvs__print_text(const struct uvs_report *r, FILE *out)
{
	char rt[80];

	if (r->runtime_version[0])
		snprintf(rt, sizeof(rt), "%s %s", r->runtime,
			 r->runtime_version);
	else
		snprintf(rt, sizeof(rt), "%s", r->runtime);
	fprintf(out, "uvscope %s: pid %d (%s), libuv %s\n", r->command,
		r->pid, rt, r->libuv_version[0] ? r->libuv_version : "unknown");
	fprintf(out, "backend %s, %.1f s, %llu events lost%s\n\n", r->backend,
		r->duration_s, (unsigned long long)r->lost_events,
		r->target_exited ? ", target exited" : "");
	if (r->has_loop)
		uvs__text_loop(r, out);
	if (r->has_pool)
		uvs__text_pool(r, out);
	if (r->has_blocked)
		uvs__text_blocked(r, out);
	if (r->has_exit)
		uvs__text_exit(r, out);
	if (r->has_why)
		uvs__text_why(r, out);
}

/* The text holds strings the target chose (its comm, exe and symbol names,
 * perf map names, what it printed) or, read back from a file, anyone: the
 * whole of it goes to the terminal escaped, whichever field they are in. */
void uvs_report__print_text(const struct uvs_report *r, FILE *out)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	if (!m) {
		fprintf(out, "uvscope: no report: out of memory\n");
		return;
	}
	uvs__print_text(r, m);
	if (!fclose(m))
		uvs_text_put(out, text, len, true);
	free(text);
	fflush(out);
}

/* ---- JSON ---- */

static json_t *uvs__json_hist(const struct uvs_hist *h, const char *unit)
{
	json_t *o = json_object(), *b = json_array();
	int i;

	json_object_set_new(o, "unit", json_string(unit));
	json_object_set_new(o, "scheme", json_string("log-linear-64"));
	json_object_set_new(o, "count", json_integer(h->count));
	json_object_set_new(o, "sum", json_integer(h->sum));
	json_object_set_new(o, "min", json_integer(h->min));
	json_object_set_new(o, "max", json_integer(h->max));
	for (i = 0; i < UVS_HIST_NB; i++) {
		if (!h->b[i])
			continue;
		json_array_append_new(b, json_pack("[I,I,I]",
			(json_int_t)uvs_hist__lower(i),
			(json_int_t)uvs_hist__upper(i), (json_int_t)h->b[i]));
	}
	json_object_set_new(o, "buckets", b);
	return o;
}

static json_t *uvs__json_q(const struct uvs_hist *h, double scale,
			   const char *unit, bool total)
{
	struct uvs__q q = uvs__quant(h, scale);
	json_t *o = json_object();

	json_object_set_new(o, "count", json_integer(q.count));
	if (total)
		json_object_set_new(o, "total_ms", json_real(q.total));
	json_object_set_new(o, "p50_ms", json_real(q.p50));
	json_object_set_new(o, "p90_ms", json_real(q.p90));
	json_object_set_new(o, "p99_ms", json_real(q.p99));
	json_object_set_new(o, "max_ms", json_real(q.max));
	json_object_set_new(o, "min_ms", json_real(h->min / scale));
	json_object_set_new(o, "hist", uvs__json_hist(h, unit));
	return o;
}

static json_t *uvs__json_loop(const struct uvs_report *r)
{
	const struct uvs_loop_report *l = &r->loop;
	json_t *o = json_object(), *poll = json_object(), *ph, *to;
	int i;

	json_object_set_new(o, "iterations", json_integer(l->iterations));
	json_object_set_new(o, "iterations_per_s",
		json_real(r->duration_s > 0 ? l->iterations / r->duration_s : 0));
	json_object_set_new(o, "utilization", json_real(uvs__utilization(l)));
	json_object_set_new(o, "busy_ms", json_real(l->busy_ns / 1e6));
	json_object_set_new(o, "phases_known", json_boolean(l->phases_known));
	json_object_set_new(o, "phase_iterations",
			    json_integer(l->phase_iterations));
	json_object_set_new(o, "phases_measured", json_real(uvs__measured(l)));
	json_object_set_new(o, "phase_figure", json_string("per-iteration"));
	json_object_set_new(o, "phase_floor_ms",
			    json_real(l->phase_floor_ns / 1e6));
	if (l->phases_known) {
		ph = json_object();
		for (i = 0; i < 7; i++) {
			json_t *p = uvs__json_q(&l->phase[i].ns, 1e6, "ns", true);

			json_object_set_new(p, "total_ms",
					    json_real(l->phase[i].total_ns / 1e6));

			json_object_set_new(p, "derived",
					    json_boolean(l->phase_derived[i]));
			json_object_set_new(ph, uvs_phase_names[i], p);
		}
		json_object_set_new(o, "phases", ph);
	} else {
		json_object_set_new(o, "phases", json_null());
	}
	to = uvs__json_q(&l->timeout_ms, 1, "ms", false);
	json_object_set_new(to, "infinite", json_integer(l->timeout_infinite));
	json_object_set_new(to, "zero", json_integer(l->timeout_zero));
	json_object_set_new(poll, "timeout_ms", to);
	json_object_set_new(poll, "wait",
			    uvs__json_q(&l->wait_ns_h, 1e6, "ns", true));
	json_object_set_new(poll, "timed_out", json_integer(l->timed_out));
	json_object_set_new(poll, "woken", json_integer(l->woken));
	json_object_set_new(poll, "interrupted", json_integer(l->interrupted));
	json_object_set_new(o, "poll", poll);
	if (l->has_main)
		json_object_set_new(o, "main", json_pack("{s:f,s:b}",
			"ms", l->main_ns / 1e6, "ongoing", l->main_ongoing));
	if (l->now_state != UVS_NOW_UNKNOWN && !r->target_exited)
		json_object_set_new(o, "now", json_pack("{s:s,s:f,s:b}",
			"state", l->now_state == UVS_NOW_BUSY ? "busy" : "waiting",
			"for_ms", l->now_for_ns / 1e6,
			"at_least", l->now_at_least));
	if (l->sampled.on)
		json_object_set_new(o, "sampled", uvs_report__json_sampled(r));
	json_object_set_new(o, "probe_hits", json_integer(l->probe_hits));
	json_object_set_new(o, "nested_ignored",
			    json_integer(l->nested_ignored + l->other_epfd));
	return o;
}

static json_t *uvs__json_exit(const struct uvs_report *r)
{
	const struct uvs_exit_report *e = &r->exit;
	json_t *o = json_object(), *st = json_array(), *th = json_array();
	int i;

	json_object_set_new(o, "reason",
			    json_string(uvs_exit_reason_name(e->reason)));
	json_object_set_new(o, "code",
			    e->has_code ? json_integer(e->code) : json_null());
	json_object_set_new(o, "signal",
			    e->signal ? json_integer(e->signal) : json_null());
	json_object_set_new(o, "signal_name", e->signal ?
		json_sprintf("SIG%s", uvs__signame(e->signal)) : json_null());
	json_object_set_new(o, "detail", json_string(e->detail));
	json_object_set_new(o, "handled_signal", e->handled_signal ?
			    json_integer(e->handled_signal) : json_null());
	json_object_set_new(o, "sender", e->has_sender ?
		json_pack("{s:i,s:i,s:i,s:s}", "pid", e->sender.pid, "tid",
			  e->sender.tid, "uid", e->sender.uid, "comm",
			  e->sender.comm) : json_null());
	json_object_set_new(o, "message", json_string(e->message));
	json_object_set_new(o, "js_stack", json_string(e->js_stack));
	for (i = 0; i < e->nstack; i++)
		json_array_append_new(st, json_string(e->stack[i]));
	json_object_set_new(o, "stack", st);
	json_object_set_new(o, "at_ms", json_real(e->at_ms));
	json_object_set_new(o, "drained_at_ms", e->drained_at_ms >= 0 ?
			    json_real(e->drained_at_ms) : json_null());
	for (i = 0; i < e->nthreads; i++)
		json_array_append_new(th, json_pack("{s:i,s:i,s:f}", "tid",
			e->threads[i].tid, "code", e->threads[i].code, "at_ms",
			e->threads[i].at_ms));
	json_object_set_new(o, "thread_exits", th);
	json_object_set_new(o, "stderr_tail", json_string(e->stderr_tail));
	json_object_set_new(o, "last_keeper", e->last_keeper[0] ?
		json_pack("{s:s,s:f}", "what", e->last_keeper, "seen_at_ms",
			  e->last_keeper_ms) : json_null());
	return o;
}

static json_t *uvs__json_why(const struct uvs_report *r)
{
	const struct uvs_why_report *w = &r->why;
	json_t *o = json_object(), *keep = json_array(), *not = json_array();
	json_t *ld = json_array();
	int i;

	for (i = 0; i < w->nhandles; i++) {
		const struct uvs_why_handle *h = &w->handles[i];
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:i}", "type",
				      h->type_name, "detail", h->detail,
				      "callback", h->callback, "handle",
				      "", "flags", h->flags);
		char addr[32];

		snprintf(addr, sizeof(addr), "%#llx", (unsigned long long)h->addr);
		json_object_set_new(j, "handle", json_string(addr));
		json_object_set_new(j, "loop", json_integer(h->loop));
		if (h->fd >= 0)
			json_object_set_new(j, "fd", json_integer(h->fd));
		if (h->type == 13) {
			json_object_set_new(j, "due_ms", json_integer(h->due_ms));
			json_object_set_new(j, "repeat_ms",
					    json_integer(h->repeat_ms));
		}
		if (h->type == 16)
			json_object_set_new(j, "signal", json_integer(h->signum));
		if (h->type == 10)
			json_object_set_new(j, "child_pid",
					    json_integer(h->child_pid));
		if (h->why_not) {
			json_object_set_new(j, "why_not", json_string(h->why_not));
			json_array_append_new(not, j);
		} else {
			json_array_append_new(keep, j);
		}
	}
	json_object_set_new(o, "loops", json_integer(w->nloops));
	for (i = 0; i < w->nloops; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "%#llx",
			 (unsigned long long)w->loops[i].addr);
		json_t *l = json_pack("{s:i,s:s,s:i,s:i,s:i,s:s}",
			"loop", i, "address", addr, "thread", w->loops[i].tid,
			"keepers", i ? w->loops[i].keepers : w->keepers,
			"active_requests", w->loops[i].active_reqs, "state",
			uvs__loop_state_name(w->loops[i].state));

		json_object_set_new(l, "busy_for_ms", w->loops[i].busy_ms >= 0
				    ? json_real(w->loops[i].busy_ms)
				    : json_null());
		json_array_append_new(ld, l);
	}
	json_object_set_new(o, "loop_list", ld);
	json_object_set_new(o, "scanned_mb", json_real(w->scanned_mb));
	json_object_set_new(o, "keepers", keep);
	json_object_set_new(o, "not_keeping", not);
	{
		json_t *reqs = json_pack("[{s:s,s:i,s:s}]", "type", "any",
					 "count", w->active_reqs, "state",
					 "active (loop->active_reqs)");

		for (i = 0; i < w->nreqs; i++)
			json_array_append_new(reqs, json_pack(
				"{s:s,s:s,s:s,s:i}", "type", w->reqs[i].type,
				"detail", w->reqs[i].detail, "state",
				"queued for the thread pool", "loop",
				w->reqs[i].loop));
		json_object_set_new(o, "active_requests", reqs);
	}
	json_object_set_new(o, "profile", json_string(w->profile));
	json_object_set_new(o, "truncated", json_boolean(w->truncated));
	return o;
}

static json_t *uvs__json_pool(const struct uvs_report *r)
{
	const struct uvs_pool_report *o = &r->pool;
	json_t *j = json_object(), *tasks = json_array(), *sl = json_array();
	json_t *tl = json_array();
	int i;

	json_object_set_new(j, "threads", json_integer(o->threads));
	json_object_set_new(j, "threads_seen", json_integer(o->threads_seen));
	json_object_set_new(j, "slow_io_limit", json_integer(o->slow_io_limit));
	/* sampled, no task is seen: busy threads or a queue say it worked */
	json_object_set_new(j, "idle", json_boolean(!o->submitted &&
		!o->completed && !o->queued_now && !o->running_now &&
		!o->mean_busy && !o->max_queue_depth));
	json_object_set_new(j, "submitted", json_integer(o->submitted));
	json_object_set_new(j, "completed", json_integer(o->completed));
	json_object_set_new(j, "cancelled", json_integer(o->cancelled));
	json_object_set_new(j, "queued_now", json_integer(o->queued_now));
	json_object_set_new(j, "running_now", json_integer(o->running_now));
	json_object_set_new(j, "oldest_queued_ms",
			    json_real(o->oldest_queued_ms));
	json_object_set_new(j, "max_queue_depth",
			    json_integer(o->max_queue_depth));
	json_object_set_new(j, "max_slow_queue_depth",
			    json_integer(o->max_slow_queue_depth));
	json_object_set_new(j, "mean_queue_depth",
			    json_real(o->mean_queue_depth));
	json_object_set_new(j, "mean_busy_threads", json_real(o->mean_busy));
	json_object_set_new(j, "saturation", json_real(o->saturation));
	json_object_set_new(j, "sampled", o->sampled_hz ?
		json_pack("{s:f,s:I,s:I}", "rate_hz", o->sampled_hz,
			  "samples", (json_int_t)o->samples, "torn_reads",
			  (json_int_t)o->torn) : json_null());
	json_object_set_new(j, "windowed", json_boolean(o->windowed));
	json_object_set_new(j, "traced_share", json_real(o->traced_share));
	json_object_set_new(j, "windows", json_integer(o->windows));
	json_object_set_new(j, "probe_budget", json_integer(o->probe_budget));
	json_object_set_new(j, "cut", json_integer(o->cut));
	json_object_set_new(j, "unmatched", json_pack("{s:I,s:I}",
		"started_before_attach", (json_int_t)o->unmatched_start,
		"done_without_submit", (json_int_t)o->unmatched_done));
	json_object_set_new(j, "sync_on_loop", json_integer(o->sync_on_loop));
	json_object_set_new(j, "io_uring", json_pack("{s:b,s:I}", "ring",
		o->io_uring, "ops", (json_int_t)o->io_uring_ops));
	for (i = 0; i < o->nkinds; i++) {
		const struct uvs_pool_kind *k = &o->kinds[i];
		json_t *t = json_object();

		json_object_set_new(t, "kind", json_string(k->name));
		json_object_set_new(t, "via", json_string(uvs__via_name(k->via)));
		json_object_set_new(t, "slow_io", json_boolean(k->slow_io));
		json_object_set_new(t, "count", json_integer(k->count));
		json_object_set_new(t, "cancelled", json_integer(k->cancelled));
		json_object_set_new(t, "queue_ms",
				    uvs__json_q(&k->queue_ns, 1e6, "ns", false));
		json_object_set_new(t, "run_ms",
				    uvs__json_q(&k->run_ns, 1e6, "ns", false));
		json_object_set_new(t, "done_delay_ms",
				    uvs__json_q(&k->done_ns, 1e6, "ns", false));
		json_array_append_new(tasks, t);
	}
	json_object_set_new(j, "tasks", tasks);
	json_object_set_new(j, "kinds_truncated",
			    json_boolean(o->kinds_truncated));
	for (i = 0; i < o->nslowest; i++)
		json_array_append_new(sl, json_pack(
			"{s:s,s:f,s:f,s:f,s:f,s:i}", "kind", o->slowest[i].kind,
			"submit_ms", o->slowest[i].submit_ms, "queue_ms",
			o->slowest[i].queue_ms, "run_ms", o->slowest[i].run_ms,
			"done_delay_ms", o->slowest[i].done_ms, "worker",
			o->slowest[i].worker));
	json_object_set_new(j, "slowest", sl);
	for (i = 0; i < o->ntimeline; i++) {
		const struct uvs_pool_tick *k = &o->timeline[i];

		json_array_append_new(tl, json_pack(
			"{s:f,s:f,s:f,s:i,s:i,s:i,s:f,s:f}", "t_s", k->t_s,
			"len_s", k->len_s, "covered", k->covered,
			"submitted", k->submitted, "completed", k->completed,
			"queue_max", k->queue_max, "busy_mean", k->busy_mean,
			"saturated", k->saturated));
	}
	json_object_set_new(j, "timeline", tl);
	return j;
}

static int uvs__json_stack(const char *folded, uint64_t count, void *ctx)
{
	json_object_set_new(ctx, folded, json_integer(count));
	return 0;
}

static json_t *uvs__json_blocked(const struct uvs_report *r)
{
	const struct uvs_blocked_report *b = &r->blocked;
	json_t *j = json_object(), *eps = json_array(), *st = json_object();
	int i, k;

	json_object_set_new(j, "threshold_ms", json_real(b->threshold_ns / 1e6));
	json_object_set_new(j, "sample_hz", json_integer(b->sample_hz));
	json_object_set_new(j, "count", json_integer(b->count));
	json_object_set_new(j, "blocked_ms", json_real(b->blocked_ns / 1e6));
	json_object_set_new(j, "on_cpu_ms", json_real(b->on_cpu_ns / 1e6));
	json_object_set_new(j, "off_cpu_ms", json_real(b->off_cpu_ns / 1e6));
	json_object_set_new(j, "duration_ms",
			    uvs__json_q(&b->duration_ns, 1e6, "ns", false));
	json_object_set_new(j, "samples", json_integer(b->samples));
	json_object_set_new(j, "stacks_truncated", json_integer(b->truncated));
	json_object_set_new(j, "stacks_without_phase",
			    json_integer(b->no_phase));
	json_object_set_new(j, "unwind_failed", json_integer(b->unwind_failed));
	json_object_set_new(j, "callers_restored", json_integer(b->scanned));
	for (i = 0; i < b->nepisodes; i++) {
		const struct uvs_blocked_episode *e = &b->episodes[i];
		json_t *o = json_object(), *tf = json_array();

		for (k = 0; k < e->ntop; k++)
			json_array_append_new(tf, json_string(e->top_frames[k]));
		json_object_set_new(o, "start_ms", json_real(e->start_ms));
		json_object_set_new(o, "duration_ms", json_real(e->duration_ms));
		json_object_set_new(o, "duration_lo_ms",
				    json_real(e->duration_lo_ms));
		json_object_set_new(o, "duration_hi_ms",
				    json_real(e->duration_hi_ms));
		json_object_set_new(o, "phase", json_string(e->phase));
		json_object_set_new(o, "on_cpu_ms", json_real(e->on_cpu_ms));
		json_object_set_new(o, "off_cpu_ms", json_real(e->off_cpu_ms));
		json_object_set_new(o, "samples", json_integer(e->samples));
		json_object_set_new(o, "microtasks", json_real(e->microtasks));
		json_object_set_new(o, "woken_by", e->waker_pid ?
			json_pack("{s:i,s:s}", "pid", e->waker_pid, "comm",
				  e->waker_comm) : json_null());
		json_object_set_new(o, "ongoing", json_boolean(e->ongoing));
		json_object_set_new(o, "top_frames", tf);
		json_array_append_new(eps, o);
	}
	json_object_set_new(j, "episodes", eps);
	json_object_set_new(j, "episodes_truncated",
			    json_boolean(b->count > (uint64_t)b->nepisodes));
	if (b->stacks)
		uvs_stacks__foreach(b->stacks, uvs__json_stack, st);
	json_object_set_new(j, "stacks", st);
	json_object_set_new(j, "stacks_unit", json_pack("{s:s,s:f}", "on_cpu",
		"samples", "off_cpu_ms_per_count", 1e3 / (b->sample_hz ?
							   b->sample_hz : 1)));
	return j;
}

json_t *uvs_report__to_json(const struct uvs_report *r)
{
	json_t *o = json_object(), *t = json_object();

	json_object_set_new(o, "schema", json_string(UVS_SCHEMA));
	json_object_set_new(o, "command", json_string(r->command));
	json_object_set_new(t, "pid", json_integer(r->pid));
	json_object_set_new(t, "exe", json_string(r->exe));
	json_object_set_new(t, "runtime", json_string(r->runtime));
	json_object_set_new(t, "runtime_version",
		r->runtime_version[0] ? json_string(r->runtime_version) : json_null());
	json_object_set_new(t, "libuv_version",
		r->libuv_version[0] ? json_string(r->libuv_version) : json_null());
	json_object_set_new(t, "backend", json_string(r->backend));
	json_object_set_new(t, "attach_ms", json_real(r->attach_ms));
	if (r->loop_tid)
		json_object_set_new(t, "loop_tid", json_integer(r->loop_tid));
	json_object_set_new(o, "target", t);
	json_object_set_new(o, "environment", json_pack("{s:s,s:s,s:s,s:s}",
		"kernel", r->env.kernel, "cpu_model", r->env.cpu_model,
		"recorded_at", r->env.recorded_at,
		"uvscope_version", UVS_VERSION));
	json_object_set_new(o, "duration_s", json_real(r->duration_s));
	json_object_set_new(o, "interval_start_s", json_real(r->interval_start_s));
	if (r->start_monotonic_s > 0)
		json_object_set_new(o, "start_monotonic_s",
				    json_real(r->start_monotonic_s));
	json_object_set_new(o, "lost_events", json_integer(r->lost_events));
	json_object_set_new(o, "target_exited", json_boolean(r->target_exited));
	if (r->has_loop)
		json_object_set_new(o, "loop", uvs__json_loop(r));
	if (r->has_pool)
		json_object_set_new(o, "pool", uvs__json_pool(r));
	if (r->has_blocked)
		json_object_set_new(o, "blocked", uvs__json_blocked(r));
	if (r->has_exit)
		json_object_set_new(o, "exit", uvs__json_exit(r));
	if (r->has_why)
		json_object_set_new(o, "why", uvs__json_why(r));
	return o;
}

int uvs_report__print_json(const struct uvs_report *r, FILE *out)
{
	json_t *o = uvs_report__to_json(r);
	int err;

	if (!o)
		return uvs_seterr(-ENOMEM, "out of memory");
	err = json_dumpf(o, out, JSON_COMPACT | JSON_REAL_PRECISION(12));
	fputc('\n', out);
	fflush(out);
	json_decref(o);
	return err ? uvs_seterr(-EIO, "cannot write JSON") : 0;
}
