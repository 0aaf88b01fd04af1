// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Log-linear histograms: exact below 64, then 64 sub-buckets per power of
 * two, so any quantile is within 1.6% of the truth while report and check
 * can rebuild it from the buckets alone.
 */
#include <math.h>
#include <string.h>
#include "uvscope.h"

int uvs_hist__index(uint64_t v)
{
	return uvs_hist_index(v);
}

uint64_t uvs_hist__lower(int idx)
{
	int k = idx / UVS_HIST_SUB, sub = idx % UVS_HIST_SUB;

	if (k == 0)
		return sub;
	return (uint64_t)(UVS_HIST_SUB + sub) << (k - 1);
}

uint64_t uvs_hist__upper(int idx)
{
	int k = idx / UVS_HIST_SUB;

	return uvs_hist__lower(idx) + (k == 0 ? 1 : 1ull << (k - 1));
}

void uvs_hist__add(struct uvs_hist *h, uint64_t v)
{
	if (!h->count || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += v;
	h->b[uvs_hist__index(v)]++;
}

void uvs_hist__merge(struct uvs_hist *dst, const struct uvs_hist *src)
{
	int i;

	if (!src->count)
		return;
	if (!dst->count || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
	for (i = 0; i < UVS_HIST_NB; i++)
		dst->b[i] += src->b[i];
}

double uvs_hist__quantile(const struct uvs_hist *h, double q)
{
	uint64_t rank, seen = 0;
	double v = 0;
	int i;

	if (!h->count)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (!rank)
		rank = 1;
	for (i = 0; i < UVS_HIST_NB; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t lo = uvs_hist__lower(i), hi = uvs_hist__upper(i);

			v = hi - lo == 1 ? (double)lo : (lo + hi) / 2.0;
			break;
		}
	}
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

void uvs_hist__print_log2(const struct uvs_hist *h, FILE *out,
			  const char *unit, uint64_t scale)
{
	uint64_t slots[64] = { 0 }, maxc = 0;
	int i, first = -1, last = -1;

	if (!h->count)
		return;
	for (i = 0; i < UVS_HIST_NB; i++) {
		uint64_t v;
		int s;

		if (!h->b[i])
			continue;
		v = uvs_hist__lower(i) / (scale ? scale : 1);
		s = v ? 64 - __builtin_clzll(v) : 0;
		slots[s] += h->b[i];
	}
	for (i = 0; i < 64; i++) {
		if (!slots[i])
			continue;
		if (first < 0)
			first = i;
		last = i;
		if (slots[i] > maxc)
			maxc = slots[i];
	}
	fprintf(out, "%*s%-8s: count    distribution\n", 14, "", unit);
	for (i = first; i <= last; i++) {
		uint64_t lo = i ? 1ull << (i - 1) : 0, hi = (1ull << i) - 1;
		int w = (int)((slots[i] * 40 + maxc - 1) / maxc), j;
		char bar[41];

		for (j = 0; j < 40; j++)
			bar[j] = j < w ? '*' : ' ';
		bar[40] = '\0';
		fprintf(out, "%10llu -> %-10llu: %-8llu|%s|\n",
			(unsigned long long)lo, (unsigned long long)hi,
			(unsigned long long)slots[i], bar);
	}
}

void uvs_hist__from_counts(struct uvs_hist *h, const uint32_t *cur,
			   const uint32_t *prev, uint64_t sum)
{
	int i;

	memset(h, 0, sizeof(*h));
	for (i = 0; i < UVS_HIST_NB; i++) {
		uint32_t c = cur[i] - (prev ? prev[i] : 0);

		if (!c)
			continue;
		if (!h->count)
			h->min = uvs_hist__lower(i);
		h->max = uvs_hist__upper(i) - 1;
		h->count += c;
		h->b[i] = c;
	}
	/* Kernel-side counts keep no exact extremes: the bucket bounds are
	 * within 1.6% of them. The sum is exact, and bounds them closer: no
	 * value is more than the sum less the others at their least, nor
	 * less than the sum less the others at their most. A timer's 200 ms
	 * timeouts all land in [200, 202): the bounds alone said 201, the
	 * sum says 200. */
	h->sum = sum;
	if (h->count) {
		unsigned __int128 n1 = h->count - 1;
		unsigned __int128 lo = n1 * h->min, hi = n1 * h->max;
		uint64_t mx = h->max, mn = h->min;

		if (lo <= sum && sum - lo < mx)
			mx = sum - lo;
		if (hi <= sum && sum - hi > mn)
			mn = sum - hi;
		/* counts and sum read apart (a torn read): the bounds alone */
		if (mn <= mx) {
			h->min = mn;
			h->max = mx;
		}
	}
}
