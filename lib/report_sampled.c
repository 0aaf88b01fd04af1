// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The loop report of the ptrace backend (r->loop.sampled): shares of the
 * loop thread's samples per phase, each with its 95% interval, as text
 * and as JSON from the same numbers. report.c calls these.
 */
#include <jansson.h>
#include <math.h>
#include "uvscope.h"

const char *const uvs_sample_state_names[UVS_SP_NSTATES] = {
    "timers",	 "pending",	   "idle",     "prepare",
    "poll_wait", "poll_callbacks", "check",    "close",
    "unknown",	 "outside_loop",   "no_stack",
};

/* The share k/n with its 95% interval (Wilson's score interval). */
void uvs_share_interval(uint64_t k, uint64_t n, double *share, double *lo,
			double *hi)
{
	const double z = 1.959964;
	double p, d, c, h;

	if (!n) {
		*share = *lo = 0;
		*hi = 1;
		return;
	}
	p = (double)k / n;
	d = 1 + z * z / n;
	c = (p + z * z / (2.0 * n)) / d;
	h = z * sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)) / d;
	*share = p;
	*lo = c - h < 0 ? 0 : c - h;
	*hi = c + h > 1 ? 1 : c + h;
}

/* printed rows: the phases in libuv's order, poll split in two */
static const int uvs__rows[] = {
    UVS_SP_TIMERS, UVS_SP_PENDING,   UVS_SP_IDLE,    UVS_SP_PREPARE,
    -1 /* poll */, UVS_SP_POLL_WAIT, UVS_SP_POLL_CB, UVS_SP_CHECK,
    UVS_SP_CLOSE,  UVS_SP_UNKNOWN,   UVS_SP_OUTSIDE, UVS_SP_NOSTACK,
};

/* the phase index (uvs_phase_names) of a state, or -1 */
static int uvs__phase_of(int state)
{
	switch (state) {
	case UVS_SP_TIMERS:
		return 0;
	case UVS_SP_PENDING:
		return 1;
	case UVS_SP_IDLE:
		return 2;
	case UVS_SP_PREPARE:
		return 3;
	case UVS_SP_CHECK:
		return 5;
	case UVS_SP_CLOSE:
		return 6;
	}
	return -1;
}

static uint64_t uvs__count(const struct uvs_loop_sampling *s, int row)
{
	return row < 0 ? s->n[UVS_SP_POLL_WAIT] + s->n[UVS_SP_POLL_CB]
		       : s->n[row];
}

static const char *uvs__label(int row)
{
	switch (row) {
	case -1:
		return "poll";
	case UVS_SP_POLL_WAIT:
		return "  waiting";
	case UVS_SP_POLL_CB:
		return "  callbacks";
	case UVS_SP_OUTSIDE:
		return "outside loop";
	case UVS_SP_NOSTACK:
		return "no stack";
	}
	return uvs_sample_state_names[row];
}

void uvs_report__text_sampled(const struct uvs_report *r, FILE *out)
{
	const struct uvs_loop_sampling *s = &r->loop.sampled;
	double sh, lo, hi;
	bool star = false;
	size_t i;

	uvs_share_interval(s->n[UVS_SP_POLL_WAIT], s->samples, &sh, &lo, &hi);
	fprintf(out,
		"sampled %llu times at %.0f Hz; shares of wall time "
		"with 95%% intervals\n",
		(unsigned long long)s->samples, s->rate_hz);
	fprintf(out,
		"utilization: %.1f%% (%.1f-%.1f%%): the share not "
		"waiting in the loop's epoll\n",
		100 * (1 - sh), 100 * (1 - hi), 100 * (1 - lo));
	uvs_report__text_main(&r->loop, out);
	if (s->iterations_counted)
		fprintf(out, "iterations: %llu (%.1f/s), counted by libuv "
			"itself (uv_metrics loop_count, read from memory)\n",
			(unsigned long long)r->loop.iterations,
			r->duration_s > 0 ? r->loop.iterations / r->duration_s
					  : 0);
	if (!s->samples) {
		fprintf(out, "no samples: the loop thread did not stop to be "
			     "sampled\n");
		return;
	}
	fprintf(out, "\n%-13s %8s %7s %17s %10s\n", "PHASE", "SAMPLES", "SHARE",
		"95% INTERVAL", "EST ms");
	for (i = 0; i < sizeof(uvs__rows) / sizeof(uvs__rows[0]); i++) {
		int row = uvs__rows[i], ph = uvs__phase_of(row);
		uint64_t k = uvs__count(s, row);
		bool inl = ph >= 0 && s->inlined[ph];

		if (!k && (row == UVS_SP_OUTSIDE || row == UVS_SP_NOSTACK))
			continue;
		if (!s->phases_known && row != UVS_SP_POLL_WAIT &&
		    row != UVS_SP_UNKNOWN && row != UVS_SP_OUTSIDE &&
		    row != UVS_SP_NOSTACK)
			continue;
		uvs_share_interval(k, s->samples, &sh, &lo, &hi);
		star |= inl;
		fprintf(out, "%-13s %8llu %6.1f%% %7.1f%% - %5.1f%% %10.1f%s\n",
			uvs__label(row), (unsigned long long)k, 100 * sh,
			100 * lo, 100 * hi, sh * r->duration_s * 1e3,
			inl ? " *" : "");
	}
	if (star)
		fprintf(out, "* inlined into uv_run in this build: its samples "
			     "count as unknown\n");
	if (!s->phases_known)
		fprintf(out, "phases unknown: libuv's internal symbols are "
			     "stripped; only the wait is told apart\n");
	fprintf(out,
		"\n%llu samples stopped the loop thread, %.0f us (p50), "
		"%.0f us (p99);\n%llu found it waiting in epoll without a "
		"stop",
		(unsigned long long)(s->samples - s->unstopped), s->cost_us_p50,
		s->cost_us_p99, (unsigned long long)s->unstopped);
	if (s->missed)
		fprintf(out,
			"; %llu not taken (the thread did not stop in "
			"time)",
			(unsigned long long)s->missed);
	fputc('\n', out);
}

struct json_t *uvs_report__json_sampled(const struct uvs_report *r)
{
	const struct uvs_loop_sampling *s = &r->loop.sampled;
	json_t *o = json_object(), *ph = json_object(), *inl = json_array();
	size_t i;

	json_object_set_new(o, "method", json_string("ptrace stack samples"));
	json_object_set_new(o, "rate_hz", json_real(s->rate_hz));
	json_object_set_new(o, "samples", json_integer(s->samples));
	json_object_set_new(o, "missed", json_integer(s->missed));
	json_object_set_new(o, "without_stop", json_integer(s->unstopped));
	json_object_set_new(o, "phases_known", json_boolean(s->phases_known));
	json_object_set_new(o, "iterations_counted",
			    json_boolean(s->iterations_counted));
	json_object_set_new(o, "confidence", json_real(0.95));
	for (i = 0; i < sizeof(uvs__rows) / sizeof(uvs__rows[0]); i++) {
		int row = uvs__rows[i];
		uint64_t k = uvs__count(s, row);
		double sh, lo, hi;

		uvs_share_interval(k, s->samples, &sh, &lo, &hi);
		json_object_set_new(
		    ph, row < 0 ? "poll" : uvs_sample_state_names[row],
		    json_pack("{s:I,s:f,s:f,s:f,s:f}", "samples", (json_int_t)k,
			      "share", sh, "share_lo", lo, "share_hi", hi,
			      "est_ms", sh * r->duration_s * 1e3));
	}
	json_object_set_new(o, "phases", ph);
	for (i = 0; i < 7; i++)
		if (s->inlined[i])
			json_array_append_new(inl,
					      json_string(uvs_phase_names[i]));
	json_object_set_new(o, "inlined", inl);
	json_object_set_new(o, "sample_cost_us",
			    json_pack("{s:f,s:f,s:f,s:f}", "p50",
				      s->cost_us_p50, "p99", s->cost_us_p99,
				      "mean", s->cost_us_mean, "unwind_p50",
				      s->unwind_us_p50));
	json_object_set_new(o, "threads_traced", json_integer(s->threads));
	return o;
}
