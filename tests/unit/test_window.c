// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The probe budget: window.c's controller with bpf/window.h's charge, the
 * one the probes run, over simulated targets and a uvscope that looks
 * rarely. The truth is the bucket's: a run is charged at most its budget
 * for its duration, plus the first share (0.5 s of budget), plus the hits
 * that trap while the holder releases each window.
 */
#include <string.h>
#include "unit.h"
#include "uvscope.h"

#define S 1000000000ull
#define BUDGET 2000

struct sim {
	struct uvs_window w;
	struct uvs_win bw;
	uint64_t now, start;
	uint64_t hits, recorded, windows_ended;
	uint64_t release_at; /* the holder's release of an ended window */
	bool attached;
};

static void sim_init(struct sim *s, bool always)
{
	memset(s, 0, sizeof(*s));
	s->start = s->now = 1000 * S;
	uvs_window__init(&s->w, BUDGET, always, s->now, &s->bw);
}

/* uvscope's step: as lib/probes.c does it */
static void sim_step(struct sim *s)
{
	switch (uvs_window__step(&s->w, s->now)) {
	case UVS_WINDOW_ON:
		uvs_window__arm(&s->w);
		s->attached = true;
		s->release_at = 0;
		uvs_window__switched(&s->w, true, s->now);
		break;
	case UVS_WINDOW_OFF:
		s->attached = false;
		uvs_window__switched(&s->w, false, s->now);
		break;
	default:
		break;
	}
}

/* The target hits the probes rate times a second for dur ns; uvscope
 * steps every tick ns; the holder releases lat ns after a window ends. */
static void sim_run(struct sim *s, uint64_t rate, uint64_t dur,
		    uint64_t tick, uint64_t lat)
{
	uint64_t end = s->now + dur, gap = S / rate;
	uint64_t next_hit = s->now, next_tick = s->now;

	for (;;) {
		if ((next_tick < next_hit ? next_tick : next_hit) >= end)
			break;
		if (next_tick <= next_hit) {
			s->now = next_tick;
			sim_step(s);
			next_tick += tick;
			continue;
		}
		s->now = next_hit;
		next_hit += gap;
		if (s->release_at && s->now >= s->release_at) {
			s->attached = false;
			s->release_at = 0;
		}
		if (!s->attached)
			continue;
		s->hits++;
		switch (uvs_win_charge(&s->bw, s->now)) {
		case 1:
			s->recorded++;
			break;
		case -1:
			s->windows_ended++;
			s->release_at = s->now + lat;
			break;
		}
	}
}

/* How many hits sim_run makes in dur at rate. */
static uint64_t hits_in(uint64_t dur, uint64_t rate)
{
	uint64_t gap = S / rate;

	return (dur + gap - 1) / gap;
}

/* A spinning loop (700,000 hits/s) for 10 s, uvscope looking every
 * 100 ms, the holder 0.3 ms late: windows at 0, 1, 3 and 7 s of 1000,
 * 2000, 4000 and 8000 hits. */
static void test_over_budget(void)
{
	struct sim s;
	uint64_t over = 700000 * 3 / 10000 + 1; /* hits in 0.3 ms */

	sim_init(&s, false);
	sim_run(&s, 700000, 10 * S, S / 10, 3 * S / 10000);
	ASSERT_EQ(s.w.windows, 4);
	ASSERT_EQ(s.windows_ended, 4);
	/* a window opens at uvscope's first look after the bucket holds its
	 * share: up to a tick's budget (200 hits) more */
	ASSERT(s.recorded >= 15000 - 4);
	ASSERT(s.recorded <= 15000 + 4 * (BUDGET / 10 + 1));
	ASSERT(s.hits <= BUDGET * 10 + BUDGET / 2 + 4 * over);
	ASSERT(s.hits >= s.recorded);
	/* the time covered is the windows' (each ends where the probes ended
	 * it, not at uvscope's next look): 15000 hits at 700,000 a second */
	ASSERT_NEAR(uvs_window__covered(&s.w, s.now) / 1e9,
		    s.recorded / 700000.0, 0.0001);
}

/* uvscope stepping once every 2 s changes when windows open, not what
 * they cost. */
static void test_late_uvscope(void)
{
	struct sim s;
	uint64_t over = 700000 / 1000 + 1; /* hits in 1 ms */

	sim_init(&s, false);
	sim_run(&s, 700000, 10 * S, 2 * S, S / 1000);
	ASSERT(s.w.windows >= 3);
	ASSERT(s.hits <= BUDGET * 10 + BUDGET / 2 + s.w.windows * over);
}

/* Under the budget the first window never ends: every hit recorded. */
static void test_under_budget(void)
{
	struct sim s;

	sim_init(&s, false);
	sim_run(&s, BUDGET * 3 / 4, 60 * S, S / 10, S / 1000);
	ASSERT_EQ(s.w.windows, 1);
	ASSERT_EQ(s.windows_ended, 0);
	ASSERT_U64_EQ(s.recorded, s.hits);
	ASSERT_U64_EQ(s.hits, hits_in(60 * S, BUDGET * 3 / 4));
}

/* An hour's credit is not a burst: after a long quiet spell the bucket
 * holds its size (10 s of budget) and no more. */
static void test_burst_after_quiet(void)
{
	struct sim s;
	uint64_t before;

	sim_init(&s, false);
	sim_run(&s, 10, 3600 * S, S / 10, S / 1000);
	ASSERT_EQ(s.windows_ended, 0);
	before = s.hits;
	sim_run(&s, 700000, S, S / 10, S / 1000);
	ASSERT_EQ(s.windows_ended, 1);
	ASSERT(s.hits - before <= BUDGET * 10 + BUDGET + 701);
	ASSERT(s.hits - before >= BUDGET * 10);
}

/* --exact: no budget, the probes never end a window. */
static void test_always(void)
{
	struct sim s;

	sim_init(&s, true);
	sim_run(&s, 700000, S, S / 10, S / 1000);
	ASSERT_EQ(s.w.windows, 1);
	ASSERT_U64_EQ(s.recorded, s.hits);
	ASSERT_U64_EQ(s.hits, hits_in(S, 700000));
}

int main(void)
{
	test_over_budget();
	test_late_uvscope();
	test_under_budget();
	test_burst_after_quiet();
	test_always();
	printf("window: ok\n");
	return 0;
}
