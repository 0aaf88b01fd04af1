/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The probe window's budget, kept by the probes themselves (lib/probes.c
 * opens and closes windows; lib/window.c decides when).
 *
 * Every hit of a budgeted uprobe is charged to a bucket of hits that fills
 * at the budget's rate (a GCRA: one "theoretical arrival time", tat, that
 * each hit moves on by ns_per_hit). A window ends on the hit that finds
 * the bucket empty: the probes stop recording at once, and one record in
 * win_rb wakes the holder (lib/uprobe.c), which releases the window's
 * uprobes from a thread of its own at real-time priority. So a window
 * ends on time however late uvscope itself is scheduled: a window closed
 * by uvscope's thread ran on for as long as a CPU hog kept it off-CPU
 * (68,000 hits instead of 2,000 over a second, measured).
 */
#ifndef UVS_BPF_WINDOW_H
#define UVS_BPF_WINDOW_H

struct uvs_win {
	__u64 tat;	  /* the bucket is empty at tat + burst_ns */
	__u64 ns_per_hit; /* 1e9 / budget; 0: no budget (--exact) */
	__u64 burst_ns;	  /* the bucket's size, as time */
	__u64 ended_ns;	  /* when a window ended on an empty bucket */
	__u64 open;	  /* a window is open: its hits are recorded */
	__u64 ended;	  /* it ended on an empty bucket (set once; 64 bits
			   * for the compare-and-swap of BPF ISA v1) */
};

/* Charges one hit at now: 1 if the window is open and may record it, 0
 * if not, -1 if this hit ended it (it found the bucket empty). A hit
 * after its window ended, while the holder releases the probes, is
 * charged all the same. Threads (the pool's) may race on tat: a hit lost
 * in a race moves the bucket by one hit less. Shared with user space's
 * tests (tests/unit/test_window.c). */
static inline int uvs_win_charge(struct uvs_win *w, __u64 now)
{
	__u64 tat;

	if (!w->ns_per_hit)
		return w->open ? 1 : 0;
	tat = w->tat > now ? w->tat : now;
	tat += w->ns_per_hit;
	w->tat = tat;
	if (!w->open)
		return 0;
	if (tat <= now + w->burst_ns)
		return 1;
	if (__sync_val_compare_and_swap(&w->ended, 0, 1) != 0)
		return 0;
	w->ended_ns = now;
	w->open = 0;
	return -1;
}

#ifdef __BPF_TRACING_H__
struct uvs_win win = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} win_rb SEC(".maps");

/* A hit of one of the target's threads (each costs it a trap): true if
 * the window may record it. The hit that ends a window wakes the holder. */
static __always_inline bool win_hit(void)
{
	__u64 now = bpf_ktime_get_ns();
	int r = uvs_win_charge(&win, now);

	if (r < 0)
		bpf_ringbuf_output(&win_rb, &now, sizeof(now), 0);
	return r > 0;
}
#endif

#endif
