// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Noise-aware comparison of a run with one or more baselines.
 *
 * A metric regresses when the run exceeds the largest baseline by more than
 * the largest of: the relative threshold of the baselines' median, the
 * absolute floor (a 0.1 ms -> 0.2 ms change is not a regression), and the
 * spread the baselines show among themselves (run-to-run noise).
 * Quantiles drawn from too few samples are not compared.
 *
 * Each side of a comparison is a range, not a number, where the number
 * sits on an edge that chance moves it across: a quantile of n samples is
 * read at the ends of the interval its rank may be in (the p50 of a queue
 * whose waits are 0, 10, 20 and 30 ms sits on the edge between 10 and 20,
 * and a window that cuts one burst more moves it there); blocked time and
 * episodes, counted over a threshold that the durations may hover at,
 * count at the low end only the episodes over the threshold plus the
 * --max-regression margin, and at the high end the stretches within that
 * margin under it too (from the loop's phases). The run regresses when
 * the low end of its range is above the high end of the baselines' by
 * more than the slack above.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "uvscope.h"

#define UVS_MIN_P50 5
#define UVS_MIN_P99 50
/* Each side's rank moved by 1.6 standard errors: for two runs of the same
 * size their difference is then 1.6 sqrt(2) = 2.26 standard errors, which
 * chance exceeds about 1% of the time, where no slack covers it (few
 * samples, a gap between two modes, a long tail). At 2 standard errors,
 * 16 queue waits of four 60 ms items a burst did not regress against
 * 20 ms ones one time in four. */
#define UVS_RANK_Z 1.6

/* One side of a row: its value, and the least and most it may be. */
struct uvs__side {
	double v, lo, hi;
	uint64_t n; /* samples behind it */
};

static int uvs__cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static struct uvs__side uvs__exact(double v, uint64_t n)
{
	return (struct uvs__side){ .v = v, .lo = v, .hi = v, .n = n };
}

/* 0, or -ENOMEM: a row that cannot be kept fails the whole check, it is
 * never left out of the gate. */
static int uvs__row(struct uvs_check *c, const char *name, const char *unit,
		    const struct uvs__side *b, int nb,
		    const struct uvs__side *run, double floor, bool fails,
		    uint64_t min_n)
{
	struct uvs_check_row *r;
	double sorted[UVS_CHECK_MAX_BASE], slack, low;
	uint64_t any = run->n;
	int i;

	for (i = 0; i < nb; i++)
		any += b[i].n;
	if (!any)
		return 0; /* nothing on either side: nothing to say */
	if (c->nrows == c->cap) {
		int cap = c->cap ? c->cap * 2 : 64;
		void *rows = realloc(c->rows, cap * sizeof(*c->rows));

		if (!rows)
			return uvs_seterr(-ENOMEM, "check: %d rows", cap);
		c->rows = rows;
		c->cap = cap;
	}
	r = &c->rows[c->nrows++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	r->run = run->v;
	r->run_low = run->lo;
	r->base_high = b[0].hi;
	low = b[0].lo;
	for (i = 0; i < nb; i++) {
		sorted[i] = b[i].v;
		r->base_high = fmax(r->base_high, b[i].hi);
		low = fmin(low, b[i].lo);
	}
	qsort(sorted, nb, sizeof(double), uvs__cmp_d);
	r->base = nb % 2 ? sorted[nb / 2]
			 : (sorted[nb / 2 - 1] + sorted[nb / 2]) / 2;
	r->base_min = sorted[0];
	r->base_max = sorted[nb - 1];
	r->noise = r->base_max - r->base_min;
	r->from_zero = r->base == 0 && run->v > 0;
	r->change = r->base > 0 ? (run->v - r->base) / r->base : 0;
	slack = fmax(fmax(c->opts.max_regression * r->base, floor), r->noise);
	/* in the run's own terms, so that the text's RUN > LIMIT reads as
	 * the verdict: the run's range below its value widens the limit */
	r->limit = r->base_high + slack + (run->v - run->lo);
	for (i = 0; i < nb; i++)
		if (b[i].n < min_n)
			r->verdict = UVS_CHECK_SKIPPED;
	if (run->n < min_n)
		r->verdict = UVS_CHECK_SKIPPED;
	if (r->verdict == UVS_CHECK_SKIPPED)
		return 0;
	if (!fails)
		r->verdict = UVS_CHECK_INFO;
	else if (run->lo > r->base_high + slack)
		r->verdict = UVS_CHECK_REGRESSION;
	else if (run->hi < low - slack)
		r->verdict = UVS_CHECK_IMPROVED;
	else
		r->verdict = UVS_CHECK_OK;
	if (r->verdict == UVS_CHECK_REGRESSION)
		c->regressions++;
	return 0;
}

/* The q quantile of h, and the least and most it may be: read at the ends
 * of the Wilson interval of the rank q of n at UVS_RANK_Z, which unlike
 * q +- z sqrt(q(1-q)/n) stays wide near the tail: of 100 samples the p50
 * lies between the 43rd and the 58th; of 60 the p99 is the largest, and
 * its low end the fourth largest: a few slow samples are not a
 * regression. */
static struct uvs__side uvs__quantile(const struct uvs_hist *h, double q,
				      double scale)
{
	double n = h->count, z2 = UVS_RANK_Z * UVS_RANK_Z, d, mid, w;

	if (!h->count)
		return (struct uvs__side){ 0 };
	d = 1 + z2 / n;
	mid = (q + z2 / (2 * n)) / d;
	w = UVS_RANK_Z / d * sqrt(q * (1 - q) / n + z2 / (4 * n * n));
	return (struct uvs__side){
		.v = uvs_hist__quantile(h, q) / scale,
		.lo = uvs_hist__quantile(h, mid - w) / scale,
		.hi = uvs_hist__quantile(h, mid + w) / scale,
		.n = h->count,
	};
}

static int uvs__hist_rows(struct uvs_check *c, const char *name,
			  const struct uvs_hist *const *b, int nb,
			  const struct uvs_hist *run, double scale,
			  double floor, bool fails)
{
	static const struct { double q; const char *n; uint64_t min; } qs[] = {
		{ 0.5, "p50", UVS_MIN_P50 }, { 0.99, "p99", UVS_MIN_P99 },
	};
	struct uvs__side base[UVS_CHECK_MAX_BASE], rs;
	char label[64];
	size_t k;
	int i, err;

	for (k = 0; k < 2; k++) {
		for (i = 0; i < nb; i++)
			base[i] = uvs__quantile(b[i], qs[k].q, scale);
		rs = uvs__quantile(run, qs[k].q, scale);
		snprintf(label, sizeof(label), "%s %s", name, qs[k].n);
		err = uvs__row(c, label, "ms", base, nb, &rs, floor, fails,
			       qs[k].min);
		if (err)
			return err;
	}
	return 0;
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
static int uvs__pool_rows(struct uvs_check *c,
			  const struct uvs_report *const *base, int nb,
			  const struct uvs_report *run)
{
	const struct uvs_hist *h[UVS_CHECK_MAX_BASE];
	const struct uvs_pool_kind *k;
	char name[96];
	int i, j, err;

	if (!run->has_pool)
		return 0;
	for (i = 0; i < nb; i++)
		if (!base[i]->has_pool)
			return 0;
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
		err = uvs__hist_rows(c, name, h, nb,
				     &run->pool.kinds[j].queue_ns, 1e6,
				     c->opts.min_change_ms, true);
		if (err)
			return err;
	}
	return 0;
}

/* Episodes of a blocked report that lasted at least cut_ns: how many and
 * how long in all, from the buckets (each at its middle, within its
 * 1.5%), exactly when every episode is over the cut. */
static void uvs__over(const struct uvs_blocked_report *b, double cut_ns,
		      double *n, double *ns)
{
	const struct uvs_hist *h = &b->duration_ns;
	double mid;
	int i;

	if (cut_ns <= h->min) {
		*n = b->count;
		*ns = b->blocked_ns;
		return;
	}
	*n = *ns = 0;
	for (i = 0; i < UVS_HIST_NB; i++) {
		if (!h->b[i])
			continue;
		mid = (uvs_hist__lower(i) + (double)uvs_hist__upper(i)) / 2;
		mid = fmin(fmax(mid, h->min), h->max);
		if (mid < cut_ns)
			continue;
		*n += h->b[i];
		*ns += h->b[i] * mid;
	}
}

/* The loop's phases (but poll, whose time is mostly its wait) that lasted
 * at least lo_ns: how many and how long in all, from their buckets (one
 * that reaches past lo_ns counts in full, at its upper end). Each lies in
 * a busy stretch at least as long, so at least as many stretches lasted
 * lo_ns: this sees the stretches just under the threshold, which the
 * blocked section does not list. */
static void uvs__phases_over(const struct uvs_report *r, double lo_ns,
			     double *n, double *ns)
{
	const struct uvs_hist *h;
	int p, i;

	*n = *ns = 0;
	if (!r->has_loop || !r->loop.phases_known)
		return;
	for (p = 0; p < 7; p++) {
		if (p == 4)
			continue;
		h = &r->loop.phase[p].ns;
		for (i = 0; h->count && i < UVS_HIST_NB; i++) {
			if (!h->b[i] || uvs_hist__upper(i) <= lo_ns)
				continue;
			*n += h->b[i];
			*ns += h->b[i] * fmin((double)uvs_hist__upper(i),
					      h->max);
		}
	}
}

/* Blocked time per second and episodes per minute of one report, as
 * ranges, with the threshold's margin (--max-regression) on either side
 * of it: the high end counts every episode recorded or, where they say
 * more, the loop's phases that lasted the threshold less the margin; the
 * low end only the episodes over the threshold plus the margin, and of
 * those not the longest. A stretch that hovers at the threshold is an
 * episode one time and not the next, and a window catches one episode
 * more or fewer by chance: neither is a regression. Stretches of 15 ms
 * that became 25 ms, against a threshold of 20 and a margin of 10%,
 * are. */
static void uvs__blocked_sides(const struct uvs_report *r, double margin,
			       struct uvs__side *ms, struct uvs__side *ep)
{
	const struct uvs_blocked_report *b = &r->blocked;
	double d = r->duration_s > 0 ? r->duration_s : 1, n, ns, pn, pns;

	uvs__over(b, b->threshold_ns * (1 + margin), &n, &ns);
	if (n > 0) {
		n -= 1;
		ns = fmax(0, ns - b->duration_ns.max);
	}
	uvs__phases_over(r, b->threshold_ns * (1 - margin), &pn, &pns);
	/* a rate over the run: always compared */
	*ms = (struct uvs__side){ .v = b->blocked_ns / 1e6 / d,
				  .lo = ns / 1e6 / d,
				  .hi = fmax(b->blocked_ns, pns) / 1e6 / d,
				  .n = UVS_MIN_P50 };
	*ep = (struct uvs__side){ .v = b->count * 60.0 / d,
				  .lo = n * 60.0 / d,
				  .hi = fmax(b->count, pn) * 60.0 / d,
				  .n = UVS_MIN_P50 };
}

/* Blocked time per second, episodes per minute, episode durations. */
static int uvs__blocked_rows(struct uvs_check *c,
			     const struct uvs_report *const *base, int nb,
			     const struct uvs_report *run)
{
	const struct uvs_hist *h[UVS_CHECK_MAX_BASE];
	struct uvs__side ms[UVS_CHECK_MAX_BASE], ep[UVS_CHECK_MAX_BASE];
	struct uvs__side rms, rep;
	double m = c->opts.max_regression;
	int i, err;

	if (!run->has_blocked)
		return 0;
	for (i = 0; i < nb; i++)
		if (!base[i]->has_blocked)
			return 0;
	for (i = 0; i < nb; i++)
		uvs__blocked_sides(base[i], m, &ms[i], &ep[i]);
	uvs__blocked_sides(run, m, &rms, &rep);
	err = uvs__row(c, "blocked ms/s", "ms", ms, nb, &rms,
		       c->opts.min_change_ms, true, UVS_MIN_P50);
	if (!err)
		err = uvs__row(c, "blocked episodes/min", "", ep, nb, &rep, 1,
			       true, UVS_MIN_P50);
	if (err)
		return err;
	for (i = 0; i < nb; i++)
		h[i] = &base[i]->blocked.duration_ns;
	return uvs__hist_rows(c, "blocked episode", h, nb,
			      &run->blocked.duration_ns, 1e6,
			      c->opts.min_change_ms, true);
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
static int uvs__sampled_rows(struct uvs_check *c,
			     const struct uvs_report *const *base, int nb,
			     const struct uvs_report *run)
{
	const struct uvs_loop_sampling *rs = &run->loop.sampled, *bs;
	struct uvs__side v[UVS_CHECK_MAX_BASE], rv;
	double bw, rw;
	uint64_t any;
	char name[64];
	int i, st, err;

	if (!run->has_loop || !rs->on || !rs->samples)
		return 0;
	for (i = 0; i < nb; i++)
		if (!base[i]->has_loop || !base[i]->loop.sampled.on ||
		    !base[i]->loop.sampled.samples)
			return 0;
	for (st = 0; st < UVS_SP_NSTATES; st++) {
		any = rs->n[st];
		bw = 0;
		for (i = 0; i < nb; i++) {
			bs = &base[i]->loop.sampled;
			v[i] = uvs__exact((double)bs->n[st] / bs->samples,
					  bs->samples);
			any += bs->n[st];
			bw = fmax(bw, uvs__half_width(bs->n[st], bs->samples));
		}
		if (!any)
			continue; /* never seen on either side */
		rw = uvs__half_width(rs->n[st], rs->samples);
		rv = uvs__exact((double)rs->n[st] / rs->samples, rs->samples);
		snprintf(name, sizeof(name), "%s share",
			 uvs_sample_state_names[st]);
		err = uvs__row(c, name, "", v, nb, &rv,
			       fmax(0.02, hypot(rw, bw)),
			       st != UVS_SP_POLL_WAIT, UVS_MIN_P50);
		if (err)
			return err;
	}
	return 0;
}

/* The busy fraction of the loop's wall time. */
static double uvs__util(const struct uvs_loop_report *l)
{
	uint64_t t = l->busy_ns + l->wait_ns;

	return t ? (double)l->busy_ns / t : 0;
}

int uvs_check__compare(struct uvs_check *c,
		       const struct uvs_report *const *base, int nb,
		       const struct uvs_report *run)
{
	const struct uvs_hist *h[UVS_CHECK_MAX_BASE];
	struct uvs__side v[UVS_CHECK_MAX_BASE], rv;
	bool phases = run->loop.phases_known;
	int i, p, err = 0;

	if (nb < 1 || nb > UVS_CHECK_MAX_BASE)
		return uvs_seterr(-EINVAL, "between 1 and %d baselines",
				  UVS_CHECK_MAX_BASE);
	c->nrows = 0;
	c->regressions = 0;
	for (i = 0; i < nb; i++)
		phases = phases && base[i]->loop.phases_known &&
			 base[i]->has_loop;
	phases = phases && run->has_loop;
	for (p = 0; phases && !err && p < 7; p++) {
		for (i = 0; i < nb; i++)
			h[i] = &base[i]->loop.phase[p].ns;
		err = uvs__hist_rows(c, uvs_phase_names[p], h, nb,
				     &run->loop.phase[p].ns, 1e6,
				     c->opts.min_change_ms, p != 4);
	}
	if (!err && run->has_loop) {
		for (i = 0; i < nb; i++)
			v[i] = uvs__exact(uvs__util(&base[i]->loop),
					  base[i]->loop.iterations);
		rv = uvs__exact(uvs__util(&run->loop), run->loop.iterations);
		err = uvs__row(c, "loop utilization", "", v, nb, &rv, 0.02,
			       true, UVS_MIN_P50);
		for (i = 0; i < nb; i++)
			h[i] = &base[i]->loop.wait_ns_h;
		/* Waiting longer is not worse by itself: shown, never
		 * failed. */
		if (!err)
			err = uvs__hist_rows(c, "poll wait", h, nb,
					     &run->loop.wait_ns_h, 1e6,
					     c->opts.min_change_ms, false);
	}
	if (!err)
		err = uvs__sampled_rows(c, base, nb, run);
	if (!err)
		err = uvs__pool_rows(c, base, nb, run);
	if (!err)
		err = uvs__blocked_rows(c, base, nb, run);
	return err;
}

void uvs_check__fini(struct uvs_check *c)
{
	if (!c)
		return;
	free(c->rows);
	c->rows = NULL;
	c->nrows = c->cap = 0;
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
