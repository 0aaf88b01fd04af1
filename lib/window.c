// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Probe windows: how a backend keeps its uprobes within a budget of hits
 * per second. Under the budget the probes stay on and every event is
 * seen. Over it they go, and come back for a window about every
 * UVS_WINDOW_PERIOD_NS, once the budget has paid, counted from the start,
 * for every hit so far and for the next window's expected hits: no run,
 * however short, averages above the budget by more than its first
 * (UVS_WINDOW_MIN_NS) window.
 *
 * Attaching and releasing probes costs the target more than the hits of a
 * longer window do (measured with make bench on a Node HTTP server:
 * windows every ~0.7 s cost 5.1% of its requests/s, probes on all the time
 * 3.2%), hence rare windows rather than frequent short ones.
 *
 * The controller only decides; the backend attaches and releases.
 */
#include "uvscope.h"

#define UVS_WINDOW_CHECK_NS 100000000ull  /* how often the budget is checked */
#define UVS_WINDOW_MIN_NS 2000000ull
#define UVS_WINDOW_PERIOD_NS 10000000000ull
#define UVS_WINDOW_MAX_NS 2000000000ull

void uvs_window__init(struct uvs_window *w, uint64_t budget, bool always,
		      uint64_t now)
{
	w->budget = budget;
	w->on = false;
	w->opened_at = now;
	/* The first window is short: the load is not known yet. */
	w->on_len = UVS_WINDOW_MIN_NS;
	w->switch_at = always ? UINT64_MAX : now + UVS_WINDOW_MIN_NS;
	w->on_since = now;
	w->hits_at_on = 0;
	w->covered_ns = 0;
	w->windows = 0;
}

void uvs_window__switched(struct uvs_window *w, bool on, uint64_t now,
			  uint64_t hits)
{
	if (on && !w->on) {
		w->on_since = now;
		w->hits_at_on = hits;
		w->windows++;
		if (w->switch_at != UINT64_MAX)
			w->switch_at = now + w->on_len;
	} else if (!on && w->on) {
		w->covered_ns += now - w->on_since;
	}
	w->on = on;
}

void uvs_window__defer(struct uvs_window *w, uint64_t now)
{
	w->switch_at = now + UVS_WINDOW_MIN_NS;
}

uint64_t uvs_window__covered(const struct uvs_window *w, uint64_t now)
{
	return w->covered_ns + (w->on ? now - w->on_since : 0);
}

enum uvs_window_act uvs_window__step(struct uvs_window *w, uint64_t now,
				     uint64_t hits_total)
{
	uint64_t hits, period, on_ns;
	double span, cost, duty;

	if (now < w->switch_at)
		return UVS_WINDOW_KEEP;
	if (!w->on)
		return UVS_WINDOW_ON;
	span = (now - w->on_since) / 1e9;
	hits = hits_total - w->hits_at_on;
	cost = span > 0 ? hits / span : 0;
	/* Judge on at least a tenth of a second's worth of budget, so that a
	 * burst of a few hits in a short window does not count as load. */
	if (hits <= w->budget * (span > 0.1 ? span : 0.1)) {
		w->switch_at = now + UVS_WINDOW_CHECK_NS;
		return UVS_WINDOW_KEEP;
	}
	duty = w->budget / cost;
	on_ns = (uint64_t)(duty * UVS_WINDOW_PERIOD_NS);
	if (on_ns > UVS_WINDOW_MAX_NS)
		on_ns = UVS_WINDOW_MAX_NS;
	w->on_len = on_ns < UVS_WINDOW_MIN_NS ? UVS_WINDOW_MIN_NS : on_ns;
	period = (uint64_t)((hits_total + cost * w->on_len / 1e9) * 1e9 /
			    w->budget);
	w->switch_at = w->opened_at + period;
	if (w->switch_at < now + UVS_WINDOW_MIN_NS)
		w->switch_at = now + UVS_WINDOW_MIN_NS;
	uvs_debug("probes: %.0f hits/s over budget %llu; %llu hits so far, "
		  "next window in %.0f ms for %.0f ms", cost,
		  (unsigned long long)w->budget,
		  (unsigned long long)hits_total, (w->switch_at - now) / 1e6,
		  w->on_len / 1e6);
	return UVS_WINDOW_OFF;
}

/* Sleeps until the next tick or the next window switch, whichever comes
 * first (a signal ends it early, as it should). */
void uvs_window__sleep(const struct uvs_window *w, int timeout_ms)
{
	uint64_t ns = timeout_ms * 1000000ull, now = uvs_now_ns();
	struct timespec ts;

	if (w->switch_at != UINT64_MAX)
		ns = w->switch_at > now ? (w->switch_at - now < ns ?
					   w->switch_at - now : ns) : 0;
	ts.tv_sec = ns / 1000000000ull;
	ts.tv_nsec = ns % 1000000000ull;
	nanosleep(&ts, NULL);
}
