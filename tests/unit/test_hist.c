// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>
#include "unit.h"
#include "uvscope.h"

static void test_buckets(void)
{
	uint64_t v;
	int i, prev = -1;

	/* exact below 64, then contiguous, monotonic, and within 1.6% */
	for (v = 0; v < 64; v++)
		ASSERT_EQ(uvs_hist__index(v), v);
	for (i = 0; i < UVS_HIST_NB - 1; i++)
		ASSERT_U64_EQ(uvs_hist__upper(i), uvs_hist__lower(i + 1));
	for (v = 1; v < (1ull << 46); v = v * 3 / 2 + 1) {
		int idx = uvs_hist__index(v);

		ASSERT(idx >= prev);
		prev = idx;
		ASSERT(uvs_hist__lower(idx) <= v);
		ASSERT(v < uvs_hist__upper(idx));
		ASSERT((uvs_hist__upper(idx) - uvs_hist__lower(idx)) * 64 <=
		       uvs_hist__lower(idx) + 64);
	}
	ASSERT_EQ(uvs_hist__index(UINT64_MAX), UVS_HIST_NB - 1);
}

static void test_quantiles(void)
{
	static struct uvs_hist h;
	uint64_t i;

	memset(&h, 0, sizeof(h));
	ASSERT_NEAR(uvs_hist__quantile(&h, 0.5), 0, 0);
	/* 1..1000 ms in ns: quantiles within 1% */
	for (i = 1; i <= 1000; i++)
		uvs_hist__add(&h, i * 1000000);
	ASSERT_EQ(h.count, 1000);
	ASSERT_U64_EQ(h.min, 1000000);
	ASSERT_U64_EQ(h.max, 1000000000);
	ASSERT_NEAR(uvs_hist__quantile(&h, 0.5), 500e6, 5e6);
	ASSERT_NEAR(uvs_hist__quantile(&h, 0.9), 900e6, 9e6);
	ASSERT_NEAR(uvs_hist__quantile(&h, 0.99), 990e6, 9.9e6);
	ASSERT_NEAR(uvs_hist__quantile(&h, 1), 1000e6, 0);
	/* a single repeated value comes back exactly (clamped to min/max) */
	memset(&h, 0, sizeof(h));
	for (i = 0; i < 10; i++)
		uvs_hist__add(&h, 30012345);
	ASSERT_NEAR(uvs_hist__quantile(&h, 0.5), 30012345, 0);
	/* small integers (ms timeouts) are exact */
	memset(&h, 0, sizeof(h));
	uvs_hist__add(&h, 99);
	uvs_hist__add(&h, 100);
	uvs_hist__add(&h, 100);
	ASSERT_NEAR(uvs_hist__quantile(&h, 0.5), 100, 0);
	ASSERT_NEAR(uvs_hist__quantile(&h, 0.01), 99, 0);
}

static void test_merge_and_counts(void)
{
	static struct uvs_hist a, b, c;
	static uint32_t prev[UVS_HIST_NB], cur[UVS_HIST_NB];
	int i;

	for (i = 0; i < 100; i++) {
		uvs_hist__add(i % 2 ? &a : &b, 1000 + i * 777);
		cur[uvs_hist__index(1000 + i * 777)]++;
		if (i < 40)
			prev[uvs_hist__index(1000 + i * 777)]++;
	}
	uvs_hist__merge(&a, &b);
	ASSERT_EQ(a.count, 100);
	ASSERT_U64_EQ(a.min, 1000);
	ASSERT_U64_EQ(a.max, 1000 + 99 * 777);
	/* counts taken as differences of two snapshots, as from the kernel */
	uvs_hist__from_counts(&c, cur, prev, 12345);
	ASSERT_EQ(c.count, 60);
	ASSERT_U64_EQ(c.sum, 12345);
	ASSERT(c.min <= 1000 + 40 * 777);
	ASSERT(c.max >= 1000 + 99 * 777);
	ASSERT(c.max < (1000 + 99 * 777) * 1.02);
}

/* Kernel-side counts with their exact sum: the sum narrows the extremes
 * the bucket bounds give, and never past the true ones. */
static void test_counts_with_sum(void)
{
	static struct uvs_hist c;
	static uint32_t cur[UVS_HIST_NB];
	uint64_t sum = 0, lo = UINT64_MAX, hi = 0;
	int i, trial;

	/* a timer's 200 ms timeouts land in [200, 202): 200, not 201 */
	cur[uvs_hist__index(200)] = 6;
	uvs_hist__from_counts(&c, cur, NULL, 1200);
	ASSERT_U64_EQ(c.min, 200);
	ASSERT_U64_EQ(c.max, 200);
	ASSERT_NEAR(uvs_hist__quantile(&c, 0.5), 200, 0);
	for (trial = 0; trial < 1000; trial++) {
		unsigned seed = trial * 2654435761u;
		int n = 1 + trial % 50;

		memset(cur, 0, sizeof(cur));
		sum = 0, lo = UINT64_MAX, hi = 0;
		for (i = 0; i < n; i++) {
			uint64_t v;

			seed = seed * 1103515245u + 12345u;
			v = trial % 3 ? 200 + seed % (trial % 7 + 1)
				      : 1000 + (seed >> 8) % 100000;
			cur[uvs_hist__index(v)]++;
			sum += v;
			lo = v < lo ? v : lo;
			hi = v > hi ? v : hi;
		}
		uvs_hist__from_counts(&c, cur, NULL, sum);
		ASSERT(c.min <= lo && lo <= c.max);
		ASSERT(c.min <= hi && hi <= c.max);
		ASSERT(c.max < hi * 1.02 + 1 && c.min * 1.02 + 1 > lo);
	}
}

int main(void)
{
	test_buckets();
	test_quantiles();
	test_merge_and_counts();
	test_counts_with_sum();
	printf("ok\n");
	return 0;
}
