// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Probe windows: how a backend keeps its uprobes within a budget of hits
 * per second.
 *
 * The budget is a bucket of hits that fills at the budget's rate and holds
 * at most UVS_WINDOW_BURST_NS of it; every hit of the probes, in any
 * thread, is charged to it by the probes themselves (bpf/window.h). Under
 * the budget the bucket never empties and the probes stay on: every event
 * is seen. Over it, the hit that empties the bucket ends the window there
 * and then, and the holder releases the probes (lib/uprobe.c); the next
 * window opens once the bucket holds its share again. Shares start at
 * UVS_WINDOW_FIRST_NS of budget and double up to the bucket's size, so
 * that a run of any length is charged at most its budget plus the first
 * share (and the hits of the releases), and windows come rarely:
 * attaching and releasing probes costs the target more than the hits of a
 * longer window do (measured with make bench on a Node HTTP server:
 * windows every ~0.7 s cost 5.1% of its requests/s, probes on all the
 * time 3.2%).
 *
 * The window ends where the probes count, not where uvscope looks: a
 * window closed by uvscope's own thread, when a CPU hog kept it off-CPU,
 * ran on for 100 ms at 700,000 hits/s.
 *
 * The controller only decides; the backend attaches and releases.
 */
#include <string.h>
#include "uvscope.h"

#define UVS_WINDOW_FIRST_NS 500000000ull   /* the first share of budget */
#define UVS_WINDOW_BURST_NS 10000000000ull /* the bucket's size */
#define UVS_WINDOW_DEFER_NS 2000000ull

void uvs_window__init(struct uvs_window *w, uint64_t budget, bool always,
		      uint64_t now, struct uvs_win *bw)
{
	memset(w, 0, sizeof(*w));
	w->budget = budget ? budget : 1;
	w->always = always;
	w->bw = bw ? bw : &w->local;
	w->bw->open = 0;
	w->bw->ended = 0;
	w->bw->ns_per_hit = always ? 0 : 1000000000ull / w->budget;
	if (!w->bw->ns_per_hit && !always)
		w->bw->ns_per_hit = 1; /* a budget over 1e9 hits/s */
	w->bw->burst_ns = UVS_WINDOW_BURST_NS;
	if (always)
		return;
	/* the bucket holds the first share */
	w->next_cap = UVS_WINDOW_FIRST_NS / w->bw->ns_per_hit;
	w->bw->tat = now + UVS_WINDOW_BURST_NS - UVS_WINDOW_FIRST_NS;
}

uint64_t uvs_window__tokens(const struct uvs_window *w, uint64_t now)
{
	uint64_t tat = w->bw->tat, lag;

	if (w->always)
		return UINT64_MAX;
	lag = tat > now ? tat - now : 0;
	if (lag >= w->bw->burst_ns)
		return 0;
	return (w->bw->burst_ns - lag) / w->bw->ns_per_hit;
}

/* When the bucket will hold the next window's share (not always). */
static uint64_t uvs__ready_at(const struct uvs_window *w)
{
	uint64_t need = w->next_cap * w->bw->ns_per_hit, at;

	if (need > w->bw->burst_ns)
		need = w->bw->burst_ns;
	/* tokens >= cap  <=>  tat - t <= burst - need */
	at = w->bw->tat + need > w->bw->burst_ns
		     ? w->bw->tat + need - w->bw->burst_ns : 0;
	if (at < w->defer_to)
		at = w->defer_to;
	return at;
}

/* Where the open window ended: where the probes emptied the bucket, or
 * now. */
static uint64_t uvs__window_end(const struct uvs_window *w, uint64_t now)
{
	return w->bw->ended && w->bw->ended_ns > w->on_since &&
	       w->bw->ended_ns < now ? w->bw->ended_ns : now;
}

void uvs_window__arm(struct uvs_window *w)
{
	w->bw->ended = 0;
	w->bw->ended_ns = 0;
	w->bw->open = 1;
}

void uvs_window__switched(struct uvs_window *w, bool on, uint64_t now)
{
	if (on && !w->on) {
		w->on_since = now;
		w->windows++;
		/* the next share, twice this one's */
		w->next_cap *= 2;
		if (w->always)
			w->next_cap = 0;
		else if (w->next_cap * w->bw->ns_per_hit > UVS_WINDOW_BURST_NS)
			w->next_cap = UVS_WINDOW_BURST_NS / w->bw->ns_per_hit;
	} else if (!on && w->on) {
		w->bw->open = 0;
		w->covered_ns += uvs__window_end(w, now) - w->on_since;
	}
	w->on = on;
}

void uvs_window__defer(struct uvs_window *w, uint64_t now)
{
	w->defer_to = now + UVS_WINDOW_DEFER_NS;
}

uint64_t uvs_window__covered(const struct uvs_window *w, uint64_t now)
{
	if (!w->on)
		return w->covered_ns;
	return w->covered_ns + (uvs__window_end(w, now) - w->on_since);
}

enum uvs_window_act uvs_window__step(struct uvs_window *w, uint64_t now)
{
	if (w->always)
		return w->on ? UVS_WINDOW_KEEP : UVS_WINDOW_ON;
	if (w->on)
		return w->bw->ended ? UVS_WINDOW_OFF : UVS_WINDOW_KEEP;
	if (now < uvs__ready_at(w))
		return UVS_WINDOW_KEEP;
	uvs_debug("probes: window %llu opens with %llu hits of budget "
		  "(%llu hits/s)", (unsigned long long)w->windows + 1,
		  (unsigned long long)uvs_window__tokens(w, now),
		  (unsigned long long)w->budget);
	return UVS_WINDOW_ON;
}

/* Sleeps until the next tick or the next window, whichever comes first (a
 * signal ends it early, as it should). */
void uvs_window__sleep(const struct uvs_window *w, int timeout_ms)
{
	uint64_t ns = timeout_ms * 1000000ull, now = uvs_now_ns(), at;
	struct timespec ts;

	if (!w->on && !w->always) {
		at = uvs__ready_at(w);
		if (at <= now)
			ns = 0;
		else if (at - now < ns)
			ns = at - now;
	}
	ts.tv_sec = ns / 1000000000ull;
	ts.tv_nsec = ns % 1000000000ull;
	nanosleep(&ts, NULL);
}
