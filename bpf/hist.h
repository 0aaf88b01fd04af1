/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Histogram bucketing shared by the BPF programs and lib/hist.c, so that
 * counts made in the kernel and in user space land in the same buckets.
 * Log-linear: exact below 64, then 64 sub-buckets per power of two.
 */
#ifndef UVS_BPF_HIST_H
#define UVS_BPF_HIST_H

#define UVS_HIST_SUB 64
#define UVS_HIST_OCTAVES 44
#define UVS_HIST_NB (UVS_HIST_SUB * (UVS_HIST_OCTAVES + 1))

static inline int uvs_hist_msb(__u64 v)
{
	int r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

static inline int uvs_hist_index(__u64 v)
{
	int msb, k;

	if (v < UVS_HIST_SUB)
		return (int)v;
	msb = uvs_hist_msb(v);
	k = msb - 5;
	if (k > UVS_HIST_OCTAVES)
		return UVS_HIST_NB - 1;
	return k * UVS_HIST_SUB + (int)((v >> (msb - 6)) & (UVS_HIST_SUB - 1));
}

#endif
