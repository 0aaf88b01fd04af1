// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Reading a uvscope/1 JSON document back into the report model, so that
 * report, check and every printer work from the same structure as a live
 * run. Every value is checked for type and range; a bad file gives one
 * message naming the file, where in it, and what was expected.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include "uvscope.h"
#include "flame.h"

struct uvs__rd {
	const char *file;
	char path[256];
	int err;
};

static int uvs__bad(struct uvs__rd *c, const char *what)
{
	if (!c->err)
		c->err = uvs_seterr(-EINVAL, "%s: %s: %s", c->file,
				    c->path[0] ? c->path : "top level", what);
	return c->err;
}

/* Descends into key: the error path grows as we go, like a.b.c. */
static json_t *uvs__get(struct uvs__rd *c, json_t *o, const char *key,
			int type, bool optional, size_t *mark)
{
	json_t *v = o ? json_object_get(o, key) : NULL;
	size_t n = strlen(c->path);

	*mark = n;
	snprintf(c->path + n, sizeof(c->path) - n, "%s%s", n ? "." : "", key);
	if (!v || json_is_null(v)) {
		if (!optional)
			uvs__bad(c, "missing");
		return NULL;
	}
	if (type == JSON_REAL ? !json_is_number(v) :
	    type == JSON_TRUE ? !json_is_boolean(v) : (int)json_typeof(v) != type) {
		static const char *const names[] = {
			"an object", "an array", "a string", "an integer",
			"a number", "a boolean", "a boolean", "null",
		};
		char msg[64];

		snprintf(msg, sizeof(msg), "expected %s", names[type]);
		uvs__bad(c, msg);
		return NULL;
	}
	return v;
}

static void uvs__up(struct uvs__rd *c, size_t mark)
{
	c->path[mark] = '\0';
}

static double uvs__num(struct uvs__rd *c, json_t *o, const char *key,
		       double lo, double hi)
{
	size_t m;
	json_t *v = uvs__get(c, o, key, JSON_REAL, false, &m);
	double d = v ? json_number_value(v) : 0;

	if (v && !(d >= lo && d <= hi))
		uvs__bad(c, "out of range");
	uvs__up(c, m);
	return d;
}

/* A time written in ms (to the ns, as the writer prints it) back in ns:
 * rounded, not truncated, so that 0.125129 ms is 125129 ns again and a
 * report renders the numbers it was written with. */
static uint64_t uvs__ms_ns(struct uvs__rd *c, json_t *o, const char *key,
			   double max_ms)
{
	return (uint64_t)llround(uvs__num(c, o, key, 0, max_ms) * 1e6);
}

static uint64_t uvs__uint(struct uvs__rd *c, json_t *o, const char *key)
{
	size_t m;
	json_t *v = uvs__get(c, o, key, JSON_INTEGER, false, &m);
	json_int_t i = v ? json_integer_value(v) : 0;

	if (v && i < 0)
		uvs__bad(c, "expected a count (>= 0)");
	uvs__up(c, m);
	return i < 0 ? 0 : (uint64_t)i;
}

static void uvs__str(struct uvs__rd *c, json_t *o, const char *key,
		     char *buf, size_t len, bool optional)
{
	size_t m;
	json_t *v = uvs__get(c, o, key, JSON_STRING, optional, &m);

	buf[0] = '\0';
	if (v)
		snprintf(buf, len, "%s", json_string_value(v));
	uvs__up(c, m);
}

static void uvs__hist(struct uvs__rd *c, json_t *o, struct uvs_hist *h,
		      const char *unit)
{
	size_t m, i, m2;
	json_t *hj = uvs__get(c, o, "hist", JSON_OBJECT, false, &m), *b, *e;
	char s[32];
	uint64_t total = 0;

	memset(h, 0, sizeof(*h));
	if (!hj)
		goto out;
	uvs__str(c, hj, "unit", s, sizeof(s), false);
	if (!c->err && strcmp(s, unit)) {
		uvs__bad(c, "unit should be ns or ms as the key says");
		goto out;
	}
	uvs__str(c, hj, "scheme", s, sizeof(s), false);
	if (!c->err && strcmp(s, "log-linear-64")) {
		uvs__bad(c, "unknown histogram scheme (expected log-linear-64)");
		goto out;
	}
	h->count = uvs__uint(c, hj, "count");
	h->sum = uvs__uint(c, hj, "sum");
	h->min = uvs__uint(c, hj, "min");
	h->max = uvs__uint(c, hj, "max");
	b = uvs__get(c, hj, "buckets", JSON_ARRAY, false, &m2);
	if (!b)
		goto out;
	json_array_foreach(b, i, e) {
		json_int_t lo, hi, n;
		int idx;

		if (!json_is_array(e) || json_array_size(e) != 3 ||
		    !json_is_integer(json_array_get(e, 0)) ||
		    !json_is_integer(json_array_get(e, 1)) ||
		    !json_is_integer(json_array_get(e, 2))) {
			snprintf(s, sizeof(s), "[%zu]", i);
			uvs__bad(c, "expected [lower, upper, count] integers");
			goto out;
		}
		lo = json_integer_value(json_array_get(e, 0));
		hi = json_integer_value(json_array_get(e, 1));
		n = json_integer_value(json_array_get(e, 2));
		idx = lo >= 0 ? uvs_hist__index(lo) : -1;
		if (idx < 0 || (json_int_t)uvs_hist__lower(idx) != lo ||
		    (json_int_t)uvs_hist__upper(idx) != hi || n <= 0 ||
		    n > UINT32_MAX || h->b[idx]) {
			uvs__bad(c, "a bucket is not one of log-linear-64's "
				    "(or repeats, or has no count)");
			goto out;
		}
		h->b[idx] = n;
		total += n;
	}
	uvs__up(c, m2);
	if (!c->err && total != h->count)
		uvs__bad(c, "bucket counts do not add up to count");
	if (!c->err && h->count && h->min > h->max)
		uvs__bad(c, "min is above max");
out:
	uvs__up(c, m);
}

/* loop.sampled, the ptrace backend's shares (report_sampled.c) */
static void uvs__read_sampled(struct uvs__rd *c, json_t *sj,
			      struct uvs_loop_report *l, double util)
{
	struct uvs_loop_sampling *s = &l->sampled;
	json_t *ph, *p, *v, *cost;
	size_t m, m2, i;
	double w;

	s->on = true;
	s->rate_hz = uvs__num(c, sj, "rate_hz", 0, 1e6);
	s->samples = uvs__uint(c, sj, "samples");
	s->missed = uvs__uint(c, sj, "missed");
	s->unstopped = uvs__uint(c, sj, "without_stop");
	v = uvs__get(c, sj, "phases_known", JSON_TRUE, false, &m);
	s->phases_known = v && json_is_true(v);
	uvs__up(c, m);
	v = uvs__get(c, sj, "iterations_counted", JSON_TRUE, true, &m);
	s->iterations_counted = v && json_is_true(v);
	uvs__up(c, m);
	ph = uvs__get(c, sj, "phases", JSON_OBJECT, false, &m);
	for (i = 0; ph && i < UVS_SP_NSTATES && !c->err; i++) {
		p = uvs__get(c, ph, uvs_sample_state_names[i], JSON_OBJECT,
			     false, &m2);
		if (p)
			s->n[i] = uvs__uint(c, p, "samples");
		uvs__up(c, m2);
	}
	uvs__up(c, m);
	v = uvs__get(c, sj, "inlined", JSON_ARRAY, false, &m);
	for (i = 0; v && i < json_array_size(v); i++) {
		const char *n = json_string_value(json_array_get(v, i));
		int k;

		for (k = 0; n && k < 7; k++)
			if (!strcmp(n, uvs_phase_names[k]))
				s->inlined[k] = true;
	}
	uvs__up(c, m);
	cost = uvs__get(c, sj, "sample_cost_us", JSON_OBJECT, true, &m);
	if (cost) {
		s->cost_us_p50 = uvs__num(c, cost, "p50", 0, 1e9);
		s->cost_us_p99 = uvs__num(c, cost, "p99", 0, 1e9);
		s->cost_us_mean = uvs__num(c, cost, "mean", 0, 1e9);
		s->unwind_us_p50 = uvs__num(c, cost, "unwind_p50", 0, 1e9);
	}
	uvs__up(c, m);
	/* the utilization the writer derived from the shares; in a double
	 * first, as a tiny one (or one out of range, already refused) gives
	 * what no uint64_t holds */
	w = util > 0 && util <= 1 ? l->busy_ns * (1 - util) / util : 1;
	l->wait_ns = w < 0x1p64 ? (uint64_t)w : UINT64_MAX;
}

static void uvs__read_loop(struct uvs__rd *c, json_t *doc,
			   struct uvs_loop_report *l)
{
	size_t m, m2, m3, m4;
	json_t *lj = uvs__get(c, doc, "loop", JSON_OBJECT, false, &m);
	json_t *ph, *p, *poll, *to, *w, *v;
	int i;

	if (!lj)
		return;
	l->iterations = uvs__uint(c, lj, "iterations");
	l->busy_ns = uvs__ms_ns(c, lj, "busy_ms", 1e12);
	l->phase_iterations = uvs__uint(c, lj, "phase_iterations");
	v = uvs__get(c, lj, "phases_known", JSON_TRUE, false, &m2);
	l->phases_known = v && json_is_true(v);
	uvs__up(c, m2);
	l->phase_floor_ns = uvs__ms_ns(c, lj, "phase_floor_ms", 1e6);
	ph = uvs__get(c, lj, "phases", JSON_OBJECT, true, &m2);
	if (l->phases_known && !ph && !c->err)
		uvs__bad(c, "missing while phases_known is true");
	for (i = 0; ph && i < 7 && !c->err; i++) {
		p = uvs__get(c, ph, uvs_phase_names[i], JSON_OBJECT, false, &m3);
		if (p) {
			l->phase[i].total_ns =
				uvs__ms_ns(c, p, "total_ms", 1e12);
			v = uvs__get(c, p, "derived", JSON_TRUE, false, &m4);
			l->phase_derived[i] = v && json_is_true(v);
			uvs__up(c, m4);
			uvs__hist(c, p, &l->phase[i].ns, "ns");
		}
		uvs__up(c, m3);
	}
	uvs__up(c, m2);
	poll = uvs__get(c, lj, "poll", JSON_OBJECT, false, &m2);
	if (poll) {
		to = uvs__get(c, poll, "timeout_ms", JSON_OBJECT, false, &m3);
		if (to) {
			uvs__hist(c, to, &l->timeout_ms, "ms");
			l->timeout_infinite = uvs__uint(c, to, "infinite");
			l->timeout_zero = uvs__uint(c, to, "zero");
		}
		uvs__up(c, m3);
		w = uvs__get(c, poll, "wait", JSON_OBJECT, false, &m3);
		if (w) {
			uvs__hist(c, w, &l->wait_ns_h, "ns");
			l->wait_ns = l->wait_ns_h.sum;
		}
		uvs__up(c, m3);
		l->timed_out = uvs__uint(c, poll, "timed_out");
		l->woken = uvs__uint(c, poll, "woken");
		l->interrupted = uvs__uint(c, poll, "interrupted");
	}
	uvs__up(c, m2);
	v = uvs__get(c, lj, "sampled", JSON_OBJECT, true, &m2);
	if (v)
		uvs__read_sampled(c, v, l,
				  uvs__num(c, lj, "utilization", 0, 1));
	uvs__up(c, m2);
	v = uvs__get(c, lj, "main", JSON_OBJECT, true, &m2);
	if (v) {
		l->has_main = true;
		l->main_ns = (uint64_t)(uvs__num(c, v, "ms", 0, 1e12) * 1e6);
		l->main_ongoing = json_is_true(json_object_get(v, "ongoing"));
	}
	uvs__up(c, m2);
	l->probe_hits = uvs__uint(c, lj, "probe_hits");
	l->nested_ignored = uvs__uint(c, lj, "nested_ignored");
	uvs__up(c, m);
}

static bool uvs__bool(struct uvs__rd *c, json_t *o, const char *key)
{
	size_t m;
	json_t *v = uvs__get(c, o, key, JSON_TRUE, false, &m);

	uvs__up(c, m);
	return v && json_is_true(v);
}

/* A quantile object ({count, p50_ms, ..., hist}) into h. */
static void uvs__quant(struct uvs__rd *c, json_t *o, const char *key,
		       struct uvs_hist *h)
{
	size_t m;
	json_t *q = uvs__get(c, o, key, JSON_OBJECT, false, &m);

	if (q)
		uvs__hist(c, q, h, "ns");
	uvs__up(c, m);
}

static void uvs__read_pool(struct uvs__rd *c, json_t *pj,
			   struct uvs_pool_report *o)
{
	static const char *const vias[] = { "pool", "io_uring", "loop-thread" };
	size_t m, m2, i;
	json_t *a, *t;
	char via[16];
	int k;

	o->threads = uvs__uint(c, pj, "threads");
	o->threads_seen = uvs__uint(c, pj, "threads_seen");
	o->submitted = uvs__uint(c, pj, "submitted");
	o->completed = uvs__uint(c, pj, "completed");
	o->cancelled = uvs__uint(c, pj, "cancelled");
	o->queued_now = uvs__uint(c, pj, "queued_now");
	o->running_now = uvs__uint(c, pj, "running_now");
	o->max_queue_depth = uvs__uint(c, pj, "max_queue_depth");
	o->mean_queue_depth = uvs__num(c, pj, "mean_queue_depth", 0, 1e9);
	o->mean_busy = uvs__num(c, pj, "mean_busy_threads", 0, 1e6);
	o->saturation = uvs__num(c, pj, "saturation", 0, 1.01);
	o->traced_share = uvs__num(c, pj, "traced_share", 0, 1);
	o->windows = uvs__uint(c, pj, "windows");
	o->windowed = uvs__bool(c, pj, "windowed");
	o->sync_on_loop = uvs__uint(c, pj, "sync_on_loop");
	o->slow_io_limit = uvs__uint(c, pj, "slow_io_limit");
	o->max_slow_queue_depth = uvs__uint(c, pj, "max_slow_queue_depth");
	/* the ptrace backend's reads of the pool's state */
	t = uvs__get(c, pj, "sampled", JSON_OBJECT, true, &m);
	if (t) {
		o->sampled_hz = uvs__num(c, t, "rate_hz", 0.001, 1e6);
		o->samples = uvs__uint(c, t, "samples");
		if (json_object_get(t, "torn_reads"))
			o->torn = uvs__uint(c, t, "torn_reads");
	}
	uvs__up(c, m);
	a = uvs__get(c, pj, "tasks", JSON_ARRAY, false, &m);
	json_array_foreach(a, i, t) {
		struct uvs_pool_kind *kd;

		if (c->err)
			break;
		snprintf(c->path + m, sizeof(c->path) - m, "[%zu]", i);
		/* uvscope writes no more (the last collects the rest): more
		 * is not its document, and dropping rows would hide them */
		if (o->nkinds == UVS_POOL_KINDS) {
			uvs__bad(c, "more task kinds than uvscope writes (48)");
			break;
		}
		if (!json_is_object(t)) {
			uvs__bad(c, "expected an object");
			break;
		}
		kd = &o->kinds[o->nkinds++];
		memset(kd, 0, sizeof(*kd));
		uvs__str(c, t, "kind", kd->name, sizeof(kd->name), false);
		uvs__str(c, t, "via", via, sizeof(via), false);
		for (k = 0; k < 3 && strcmp(via, vias[k]); k++)
			;
		if (!c->err && k == 3)
			uvs__bad(c, "via: expected pool, io_uring or loop-thread");
		kd->via = k < 3 ? k : 0;
		kd->slow_io = uvs__bool(c, t, "slow_io");
		kd->count = uvs__uint(c, t, "count");
		kd->cancelled = uvs__uint(c, t, "cancelled");
		uvs__quant(c, t, "queue_ms", &kd->queue_ns);
		uvs__quant(c, t, "run_ms", &kd->run_ns);
		uvs__quant(c, t, "done_delay_ms", &kd->done_ns);
		c->path[m] = '\0';
		(void)m2;
	}
	uvs__up(c, m);
}

static void uvs__read_blocked(struct uvs__rd *c, json_t *bj,
			      struct uvs_blocked_report *b)
{
	size_t m, i;
	json_t *a, *e, *v;
	const char *key;
	char ph[16];

	b->threshold_ns = uvs__ms_ns(c, bj, "threshold_ms", 3.6e6);
	b->sample_hz = uvs__uint(c, bj, "sample_hz");
	b->count = uvs__uint(c, bj, "count");
	b->blocked_ns = uvs__ms_ns(c, bj, "blocked_ms", 1e12);
	b->on_cpu_ns = uvs__ms_ns(c, bj, "on_cpu_ms", 1e12);
	b->off_cpu_ns = uvs__ms_ns(c, bj, "off_cpu_ms", 1e12);
	b->samples = uvs__uint(c, bj, "samples");
	b->truncated = uvs__uint(c, bj, "stacks_truncated");
	b->no_phase = uvs__uint(c, bj, "stacks_without_phase");
	uvs__quant(c, bj, "duration_ms", &b->duration_ns);
	a = uvs__get(c, bj, "episodes", JSON_ARRAY, false, &m);
	json_array_foreach(a, i, e) {
		struct uvs_blocked_episode *ep;
		json_t *tf, *f;
		size_t m2, j;
		int k;

		if (c->err || b->nepisodes == UVS_BLK_EPISODES)
			break;
		snprintf(c->path + m, sizeof(c->path) - m, "[%zu]", i);
		if (!json_is_object(e)) {
			uvs__bad(c, "expected an object");
			break;
		}
		ep = &b->episodes[b->nepisodes++];
		memset(ep, 0, sizeof(*ep));
		ep->start_ms = uvs__num(c, e, "start_ms", 0, 1e12);
		ep->duration_ms = uvs__num(c, e, "duration_ms", 0, 1e12);
		/* recordings before the bounds: as measured */
		ep->duration_lo_ms = json_object_get(e, "duration_lo_ms")
			? uvs__num(c, e, "duration_lo_ms", 0, 1e12)
			: ep->duration_ms;
		ep->duration_hi_ms = json_object_get(e, "duration_hi_ms")
			? uvs__num(c, e, "duration_hi_ms", 0, 1e12)
			: ep->duration_ms;
		ep->on_cpu_ms = uvs__num(c, e, "on_cpu_ms", 0, 1e12);
		ep->off_cpu_ms = uvs__num(c, e, "off_cpu_ms", 0, 1e12);
		ep->samples = uvs__uint(c, e, "samples");
		ep->microtasks = uvs__num(c, e, "microtasks", 0, 1);
		/* recordings before it: none was */
		ep->ongoing = json_is_true(json_object_get(e, "ongoing"));
		uvs__str(c, e, "phase", ph, sizeof(ph), false);
		for (k = 0; k < 7 && strcmp(ph, uvs_phase_names[k]); k++)
			;
		if (!c->err && k == 7 && strcmp(ph, "unknown") &&
		    strcmp(ph, "main"))
			uvs__bad(c, "phase: expected a loop phase, main or "
				 "unknown");
		snprintf(ep->phase, sizeof(ep->phase), "%s", ph);
		tf = uvs__get(c, e, "top_frames", JSON_ARRAY, false, &m2);
		json_array_foreach(tf, j, f) {
			if (ep->ntop == UVS_BLK_TOP)
				break;
			if (!json_is_string(f)) {
				uvs__bad(c, "expected strings");
				break;
			}
			snprintf(ep->top_frames[ep->ntop++], 160, "%s",
				 json_string_value(f));
		}
		uvs__up(c, m2);
		c->path[m] = '\0';
	}
	uvs__up(c, m);
	a = uvs__get(c, bj, "stacks", JSON_OBJECT, false, &m);
	if (a && !c->err && uvs_stacks__new(&b->stacks))
		uvs__bad(c, "out of memory");
	json_object_foreach(a, key, v) {
		if (c->err)
			break;
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			uvs__bad(c, "expected a count (>= 1) for each stack");
			break;
		}
		if (uvs_stacks__add(b->stacks, key, json_integer_value(v))) {
			uvs__bad(c, "a stack that is not frames joined by ';'");
			break;
		}
	}
	uvs__up(c, m);
}

static int uvs__read_doc(const char *file, json_t *doc,
			 struct uvs_report *r);

/* jansson's message quotes the bytes near the error: escaped for the
 * terminal the error goes to. */
static int uvs__json_err(const char *file, const json_error_t *jerr)
{
	char text[4 * JSON_ERROR_TEXT_LENGTH];

	uvs_text_esc(text, sizeof(text), jerr->text, strlen(jerr->text),
		     false);
	return uvs_seterr(-EINVAL, "%s: line %d, column %d: %s", file,
			  jerr->line, jerr->column, text);
}

int uvs_report__read(const char *file, struct uvs_report *r)
{
	json_error_t jerr;
	json_t *doc;

	memset(r, 0, sizeof(*r));
	doc = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		if (jerr.line < 0 || strstr(jerr.text, "unable to open"))
			return uvs_seterr(-ENOENT, "%s: %s", file, jerr.text);
		return uvs__json_err(file, &jerr);
	}
	return uvs__read_doc(file, doc, r);
}

int uvs_report__parse(const char *name, const char *buf, size_t len,
		      struct uvs_report *r)
{
	json_error_t jerr;
	json_t *doc;

	memset(r, 0, sizeof(*r));
	doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return uvs__json_err(name, &jerr);
	return uvs__read_doc(name, doc, r);
}

/* Takes the reference to doc. */
static int uvs__read_doc(const char *file, json_t *doc, struct uvs_report *r)
{
	struct uvs__rd c = { .file = file };
	json_t *t, *env;
	size_t m;
	char schema[64], cmd[32];

	if (!json_is_object(doc)) {
		json_decref(doc);
		return uvs_seterr(-EINVAL, "%s: expected a JSON object at the "
				  "top level", file);
	}
	uvs__str(&c, doc, "schema", schema, sizeof(schema), false);
	if (!c.err && strcmp(schema, UVS_SCHEMA)) {
		if (!strncmp(schema, "uvscope/", 8))
			uvs__bad(&c, "a schema version this uvscope does not "
				     "know (it reads uvscope/1): written by a "
				     "newer uvscope?");
		else
			uvs__bad(&c, "not a uvscope document (expected "
				     "\"uvscope/1\")");
	}
	uvs__str(&c, doc, "command", cmd, sizeof(cmd), false);
	if (!c.err && strcmp(cmd, "loop") && strcmp(cmd, "record") &&
	    strcmp(cmd, "pool") && strcmp(cmd, "blocked"))
		uvs__bad(&c, "unknown command (expected loop, record, pool or "
			     "blocked)");
	r->command = !strcmp(cmd, "record") ? "record" :
		     !strcmp(cmd, "pool") ? "pool" :
		     !strcmp(cmd, "blocked") ? "blocked" : "loop";
	t = uvs__get(&c, doc, "target", JSON_OBJECT, false, &m);
	if (t) {
		r->pid = uvs__uint(&c, t, "pid");
		uvs__str(&c, t, "exe", r->exe, sizeof(r->exe), false);
		uvs__str(&c, t, "runtime", r->runtime, sizeof(r->runtime), false);
		uvs__str(&c, t, "runtime_version", r->runtime_version,
			 sizeof(r->runtime_version), true);
		uvs__str(&c, t, "libuv_version", r->libuv_version,
			 sizeof(r->libuv_version), true);
		uvs__str(&c, t, "backend", r->backend, sizeof(r->backend), false);
	}
	uvs__up(&c, m);
	env = uvs__get(&c, doc, "environment", JSON_OBJECT, true, &m);
	if (env) {
		uvs__str(&c, env, "kernel", r->env.kernel, sizeof(r->env.kernel), true);
		uvs__str(&c, env, "cpu_model", r->env.cpu_model,
			 sizeof(r->env.cpu_model), true);
		uvs__str(&c, env, "recorded_at", r->env.recorded_at,
			 sizeof(r->env.recorded_at), true);
	}
	uvs__up(&c, m);
	r->duration_s = uvs__num(&c, doc, "duration_s", 0, 1e9);
	r->lost_events = uvs__uint(&c, doc, "lost_events");
	if (strcmp(r->command, "pool") && strcmp(r->command, "blocked")) {
		r->has_loop = true;
		uvs__read_loop(&c, doc, &r->loop);
	}
	t = uvs__get(&c, doc, "pool", JSON_OBJECT, strcmp(r->command, "pool"),
		     &m);
	if (t) {
		r->has_pool = true;
		uvs__read_pool(&c, t, &r->pool);
	}
	uvs__up(&c, m);
	t = uvs__get(&c, doc, "blocked", JSON_OBJECT,
		     strcmp(r->command, "blocked"), &m);
	if (t) {
		r->has_blocked = true;
		uvs__read_blocked(&c, t, &r->blocked);
	}
	uvs__up(&c, m);
	json_decref(doc);
	if (c.err)
		uvs_report__fini(r);
	return c.err;
}
