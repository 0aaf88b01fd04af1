// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Noise-aware comparison of a run with one or more baselines.
 *
 * A metric regresses when the run exceeds the largest baseline by more than
 * the largest of: the relative threshold of the baselines' median, the
 * absolute floor (a 0.1 ms -> 0.2 ms change is not a regression), and the
 * spread the baselines show among themselves (run-to-run noise).
 * Quantiles drawn from too few samples are not compared.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "uvscope.h"

#define UVS_MIN_P50 5
#define UVS_MIN_P99 50

static int uvs__cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void uvs__row(struct uvs_check *c, const char *name, const char *unit,
		     const double *base, int nb, double run, double floor,
		     bool fails, uint64_t min_n, const uint64_t *bn,
		     uint64_t rn)
{
	struct uvs_check_row *r;
	double sorted[UVS_CHECK_MAX_BASE], slack;
	int i;

	uint64_t any = rn;

	for (i = 0; i < nb; i++)
		any += bn[i];
	if (!any || c->nrows == UVS_CHECK_MAX_ROWS)
		return; /* nothing on either side: nothing to say */
	r = &c->rows[c->nrows++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	r->run = run;
	for (i = 0; i < nb; i++)
		sorted[i] = base[i];
	qsort(sorted, nb, sizeof(double), uvs__cmp_d);
	r->base = nb % 2 ? sorted[nb / 2]
			 : (sorted[nb / 2 - 1] + sorted[nb / 2]) / 2;
	r->base_min = sorted[0];
	r->base_max = sorted[nb - 1];
	r->noise = r->base_max - r->base_min;
	r->change = r->base > 0 ? (run - r->base) / r->base : 0;
	slack = fmax(fmax(c->opts.max_regression * r->base, floor), r->noise);
	r->limit = r->base_max + slack;
	for (i = 0; i < nb; i++)
		if (bn[i] < min_n)
			r->verdict = UVS_CHECK_SKIPPED;
	if (rn < min_n)
		r->verdict = UVS_CHECK_SKIPPED;
	if (r->verdict == UVS_CHECK_SKIPPED)
		return;
	if (!fails)
		r->verdict = UVS_CHECK_INFO;
	else if (run > r->limit)
		r->verdict = UVS_CHECK_REGRESSION;
	else if (run < r->base_min - slack)
		r->verdict = UVS_CHECK_IMPROVED;
	else
		r->verdict = UVS_CHECK_OK;
	if (r->verdict == UVS_CHECK_REGRESSION)
		c->regressions++;
}

static void uvs__hist_rows(struct uvs_check *c, const char *name,
			   const struct uvs_hist *const *b, int nb,
			   const struct uvs_hist *run, double scale,
			   double floor, bool fails)
{
	static const struct { double q; const char *n; uint64_t min; } qs[] = {
		{ 0.5, "p50", UVS_MIN_P50 }, { 0.99, "p99", UVS_MIN_P99 },
	};
	double base[UVS_CHECK_MAX_BASE];
	uint64_t bn[UVS_CHECK_MAX_BASE];
	char label[64];
	size_t k;
	int i;

	for (k = 0; k < 2; k++) {
		for (i = 0; i < nb; i++) {
			base[i] = uvs_hist__quantile(b[i], qs[k].q) / scale;
			bn[i] = b[i]->count;
		}
		snprintf(label, sizeof(label), "%s %s", name, qs[k].n);
		uvs__row(c, label, "ms", base, nb,
			 uvs_hist__quantile(run, qs[k].q) / scale, floor, fails,
			 qs[k].min, bn, run->count);
	}
}

static const struct uvs_pool_kind *uvs__kind(const struct uvs_pool_report *p,
					    const char *name)
{
	int i;

	for (i = 0; i < p->nkinds; i++)
		if (p->kinds[i].via == UVS_VIA_POOL &&
		    !strcmp(p->kinds[i].name, name))
			return &p->kinds[i];
	return NULL;
}

/* Queue wait per kind of pool work, where every run has that kind. */
static void uvs__pool_rows(struct uvs_check *c,
			   const struct uvs_report *const *base, int nb,
			   const struct uvs_report *run)
{
	const struct uvs_hist *h[UVS_CHECK_MAX_BASE];
	const struct uvs_pool_kind *k;
	char name[96];
	int i, j;

	if (!run->has_pool)
		return;
	for (i = 0; i < nb; i++)
		if (!base[i]->has_pool)
			return;
	for (j = 0; j < run->pool.nkinds; j++) {
		if (run->pool.kinds[j].via != UVS_VIA_POOL)
			continue;
		for (i = 0; i < nb; i++) {
			k = uvs__kind(&base[i]->pool, run->pool.kinds[j].name);
			if (!k)
				break;
			h[i] = &k->queue_ns;
		}
		if (i < nb)
			continue;
		snprintf(name, sizeof(name), "%.30s queue",
			 run->pool.kinds[j].name);
		uvs__hist_rows(c, name, h, nb, &run->pool.kinds[j].queue_ns,
			       1e6, c->opts.min_change_ms, true);
	}
}

/* Blocked time per second, episodes per minute, episode durations. */
static void uvs__blocked_rows(struct uvs_check *c,
			      const struct uvs_report *const *base, int nb,
			      const struct uvs_report *run)
{
	const struct uvs_hist *h[UVS_CHECK_MAX_BASE];
	double v[UVS_CHECK_MAX_BASE];
	uint64_t n[UVS_CHECK_MAX_BASE];
	double d;
	int i;

	if (!run->has_blocked)
		return;
	for (i = 0; i < nb; i++)
		if (!base[i]->has_blocked)
			return;
	for (i = 0; i < nb; i++) {
		d = base[i]->duration_s > 0 ? base[i]->duration_s : 1;
		v[i] = base[i]->blocked.blocked_ns / 1e6 / d;
		n[i] = UVS_MIN_P50; /* a rate over the run: always compared */
	}
	d = run->duration_s > 0 ? run->duration_s : 1;
	uvs__row(c, "blocked ms/s", "ms", v, nb,
		 run->blocked.blocked_ns / 1e6 / d, c->opts.min_change_ms, true,
		 UVS_MIN_P50, n, UVS_MIN_P50);
	for (i = 0; i < nb; i++) {
		d = base[i]->duration_s > 0 ? base[i]->duration_s : 1;
		v[i] = base[i]->blocked.count * 60.0 / d;
	}
	d = run->duration_s > 0 ? run->duration_s : 1;
	uvs__row(c, "blocked episodes/min", "", v, nb,
		 run->blocked.count * 60.0 / d, 1, true, UVS_MIN_P50, n,
		 UVS_MIN_P50);
	for (i = 0; i < nb; i++)
		h[i] = &base[i]->blocked.duration_ns;
	uvs__hist_rows(c, "blocked episode", h, nb,
		       &run->blocked.duration_ns, 1e6, c->opts.min_change_ms,
		       true);
}

/* Half the width of the 95% interval of a share of n samples. */
static double uvs__half_width(uint64_t k, uint64_t n)
{
	double sh, lo, hi;

	uvs_share_interval(k, n, &sh, &lo, &hi);
	return fmax(hi - sh, sh - lo);
}

/* The ptrace backend's shares of wall time per phase, from stack samples:
 * the floor is the sampling error of the difference (the 95% half-widths
 * of the run's and the widest baseline's shares, added in quadrature), so
 * that two recordings of the same program do not differ by chance. Poll
 * wait is shown, never failed. */
static void uvs__sampled_rows(struct uvs_check *c,
			      const struct uvs_report *const *base, int nb,
			      const struct uvs_report *run)
{
	const struct uvs_loop_sampling *rs = &run->loop.sampled, *bs;
	double v[UVS_CHECK_MAX_BASE], bw, rw;
	uint64_t n[UVS_CHECK_MAX_BASE], any;
	char name[64];
	int i, st;

	if (!run->has_loop || !rs->on || !rs->samples)
		return;
	for (i = 0; i < nb; i++)
		if (!base[i]->has_loop || !base[i]->loop.sampled.on ||
		    !base[i]->loop.sampled.samples)
			return;
	for (st = 0; st < UVS_SP_NSTATES; st++) {
		any = rs->n[st];
		bw = 0;
		for (i = 0; i < nb; i++) {
			bs = &base[i]->loop.sampled;
			v[i] = (double)bs->n[st] / bs->samples;
			n[i] = bs->samples;
			any += bs->n[st];
			bw = fmax(bw, uvs__half_width(bs->n[st], bs->samples));
		}
		if (!any)
			continue; /* never seen on either side */
		rw = uvs__half_width(rs->n[st], rs->samples);
		snprintf(name, sizeof(name), "%s share",
			 uvs_sample_state_names[st]);
		uvs__row(c, name, "", v, nb, (double)rs->n[st] / rs->samples,
			 fmax(0.02, hypot(rw, bw)), st != UVS_SP_POLL_WAIT,
			 UVS_MIN_P50, n, rs->samples);
	}
}

int uvs_check__compare(struct uvs_check *c,
		       const struct uvs_report *const *base, int nb,
		       const struct uvs_report *run)
{
	const struct uvs_hist *h[UVS_CHECK_MAX_BASE];
	double v[UVS_CHECK_MAX_BASE];
	uint64_t n[UVS_CHECK_MAX_BASE];
	bool phases = run->loop.phases_known;
	int i, p;

	if (nb < 1 || nb > UVS_CHECK_MAX_BASE)
		return uvs_seterr(-EINVAL, "between 1 and %d baselines",
				  UVS_CHECK_MAX_BASE);
	c->nrows = 0;
	c->regressions = 0;
	for (i = 0; i < nb; i++)
		phases = phases && base[i]->loop.phases_known &&
			 base[i]->has_loop;
	phases = phases && run->has_loop;
	for (p = 0; phases && p < 7; p++) {
		for (i = 0; i < nb; i++)
			h[i] = &base[i]->loop.phase[p].ns;
		uvs__hist_rows(c, uvs_phase_names[p], h, nb,
			       &run->loop.phase[p].ns, 1e6,
			       c->opts.min_change_ms, p != 4);
	}
	for (i = 0; i < nb; i++) {
		const struct uvs_loop_report *l = &base[i]->loop;

		v[i] = l->busy_ns + l->wait_ns ?
			(double)l->busy_ns / (l->busy_ns + l->wait_ns) : 0;
		n[i] = l->iterations;
	}
	if (run->has_loop) {
		uvs__row(c, "loop utilization", "", v, nb,
			 run->loop.busy_ns + run->loop.wait_ns ?
				 (double)run->loop.busy_ns /
					 (run->loop.busy_ns + run->loop.wait_ns) :
				 0,
			 0.02, true, UVS_MIN_P50, n, run->loop.iterations);
		for (i = 0; i < nb; i++)
			h[i] = &base[i]->loop.wait_ns_h;
		/* Waiting longer is not worse by itself: shown, never
		 * failed. */
		uvs__hist_rows(c, "poll wait", h, nb, &run->loop.wait_ns_h,
			       1e6, c->opts.min_change_ms, false);
	}
	uvs__sampled_rows(c, base, nb, run);
	uvs__pool_rows(c, base, nb, run);
	uvs__blocked_rows(c, base, nb, run);
	return 0;
}

const char *uvs_check__verdict(enum uvs_check_verdict v)
{
	switch (v) {
	case UVS_CHECK_OK: return "ok";
	case UVS_CHECK_REGRESSION: return "REGRESSION";
	case UVS_CHECK_IMPROVED: return "improved";
	case UVS_CHECK_INFO: return "info";
	case UVS_CHECK_SKIPPED: return "too few samples";
	}
	return "?";
}
