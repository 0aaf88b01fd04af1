// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The eBPF backend of `uvscope blocked`: the loop thread's busy periods of
 * at least the threshold, with their stacks on CPU (cpu-clock samples of
 * that thread) and off CPU (sched_switch), rooted at the loop phase they
 * ran in, so a flame graph reads like the event loop.
 *
 * bpf/blocked.bpf.c sends every sample taken while the loop is busy, with
 * the busy period's sequence number, and a record when a period that
 * reached the threshold ends. Samples of a period are held here, merged by
 * identical stacks, until it either ends long (an episode) or a new
 * period starts (it was short: they go).
 *
 * The phase of a stack is the libuv phase function nearest the loop on
 * it. Where the function is inlined into uv_run (uv__run_pending and
 * uv__run_closing_handles in Node 20), the return address inside uv_run
 * says where in uv_run the code was: after the call to uv__run_timers and
 * before uv__run_idle is pending, after uv__run_check is close.
 */
#include <elf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "uvscope.h"
#include "flame.h"
#include "loop.h"
#include "blocked.h"
#include "blocked.skel.h"
#include "ptrace.h"

#define UVS_PEND_MAX 4096 /* distinct stacks held for one busy period */

/* One distinct stack of the current busy period. */
struct uvs__pend {
	uint64_t hash;
	uint64_t weight;   /* samples, or ns off CPU */
	bool off;
	int n;
	uint64_t *pcs;	   /* user frames, innermost first */
	int nk;
	uint64_t *kpcs;
	uint64_t scan[UVS_BLK_SCAN]; /* of its first occurrence */
	uint64_t chain[UVS_BLK_CHAIN];
	int nchain, chain_at;
	bool fixed;		     /* the caller fix-up was tried */
	bool truncated, failed, scanned;
};

struct uvs__range {
	uint64_t lo, hi;
	int phase;
};

struct uvs_blocked {
	struct blocked_bpf *skel;
	struct uvs_target *t;
	struct uvs_blocked_opts opts;
	struct ring_buffer *rb;
	struct uvs_syms *syms;
	struct uvs_layout *ly;
	int nperf;		/* one cpu-clock event per CPU */
	int *perf_fd;
	struct bpf_link **perf_link;
	uint64_t t0, period_ns;
	uint64_t started_ns;	/* the first poll: the report's window begins */
	pid_t tid;
	/* where the phases are */
	struct uvs__range ranges[8];
	int nranges;
	uint64_t uvrun_lo, uvrun_hi;
	uint64_t calls[16]; /* return addresses of uv_run's phase calls */
	int call_phase[16];
	int ncalls;
	bool pending_inlined, close_inlined;
	bool located;
	/* the busy period being collected */
	uint64_t cur_seq;
	struct uvs__pend *pend;
	int npend;
	uint64_t pend_dropped;
	uint64_t best_off_ns;
	uint32_t waker_pid;
	char waker_comm[16];
	/* what the next report gets */
	struct uvs_blocked_report *acc;
	uint64_t lost_seen;
	int epfd;		/* the loop's own epoll fd, -1 until known */
	/* the ptrace backend: busy periods are runs of busy samples */
	struct uvs_pt *pt;
	bool shared_pt; /* pt is another reader's (record): not ours to close */
	struct uvs_blk_event *ev; /* scratch, for a sample as an event */
	bool in_run;
	bool pt_waited;		/* a sample found the loop in its wait */
	bool in_main;		/* folding a launched program's first period */
	uint64_t syms_at;	/* when its maps were last read */
	uint64_t run_first, run_samples, run_off;
	/* a run lasts from halfway between the sample before it and its
	 * first, to halfway between its last and the sample after it: the
	 * samples' own times, since the sampler itself may run late */
	uint64_t run_last, prev_ts, run_prev;
	uint64_t ep_lo_ns, ep_hi_ns; /* bounds of the episode being added */
	/* the loop's marks (uvs_pt_iter): a run never spans two iterations */
	int marks_state; /* 0 still looking, 1 read with samples, -1 none */
	uint64_t marks_tried_ns;
	struct uvs_pt_iter run_iter; /* of the run's last busy sample */
	uint64_t iter_splits;	     /* runs ended by a mark, not a wait */
};

static uint64_t uvs__hash_pcs(const uint64_t *pcs, int n, const uint64_t *k,
			      int nk, bool off)
{
	uint64_t h = off ? 0x9e3779b97f4a7c15ull : 0x12345ull;
	int i;

	for (i = 0; i < n; i++)
		h = (h ^ pcs[i]) * 0x100000001b3ull;
	for (i = 0; i < nk; i++)
		h = (h ^ k[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static void uvs__pend_clear(struct uvs_blocked *b)
{
	int i;

	for (i = 0; i < b->npend; i++) {
		free(b->pend[i].pcs);
		free(b->pend[i].kpcs);
	}
	b->npend = 0;
	b->pend_dropped = 0;
	b->best_off_ns = 0;
	b->waker_pid = 0;
	b->waker_comm[0] = '\0';
}

/* ---- where the phases are, in the libuv file ---- */

static void uvs__plan_phases(struct uvs_blocked *b)
{
	const struct uvs_sym *f[8], *s[8];
	unsigned char code[8192];
	uint64_t n, i;
	int k, j;

	uvs_elf__lookup(b->t->uv_elf, uvs_uv_run_fns, 8, f);
	/* here the phases first (s[phase]), uv_run last */
	for (k = 0; k < 7; k++)
		s[k] = f[1 + k];
	s[7] = f[0];
	for (k = 0; k < 7; k++) {
		if (!s[k] || s[k]->type != STT_FUNC || !s[k]->size)
			continue;
		b->ranges[b->nranges].lo = b->t->uv_bias + s[k]->addr;
		b->ranges[b->nranges].hi = b->t->uv_bias + s[k]->addr + s[k]->size;
		b->ranges[b->nranges].phase = k;
		b->nranges++;
	}
	b->pending_inlined = !s[1];
	b->close_inlined = !s[6];
	if (!s[7] || !s[7]->size)
		return;
	b->uvrun_lo = b->t->uv_bias + s[7]->addr;
	b->uvrun_hi = b->uvrun_lo + s[7]->size;
	n = s[7]->size < sizeof(code) ? s[7]->size : sizeof(code);
	if (uvs_elf__read(b->t->uv_elf, s[7]->addr, code, n))
		return;
	/* the calls uv_run makes to the phase functions, in code order */
	for (i = 0; i + 5 <= n && b->ncalls < 16; i++) {
		int32_t rel;
		uint64_t to;

		if (code[i] != 0xe8)
			continue;
		memcpy(&rel, code + i + 1, 4);
		to = s[7]->addr + i + 5 + rel;
		for (j = 0; j < 7; j++)
			if (s[j] && to == s[j]->addr)
				break;
		if (j == 7)
			continue;
		b->calls[b->ncalls] = b->t->uv_bias + s[7]->addr + i + 5;
		b->call_phase[b->ncalls++] = j;
	}
}

/* The phase of a return address inside uv_run, from the calls before it. */
static int uvs__uvrun_phase(const struct uvs_blocked *b, uint64_t ra)
{
	int i, last = -1;

	for (i = 0; i < b->ncalls; i++) {
		if (b->calls[i] == ra)
			return b->call_phase[i];
		if (b->calls[i] < ra)
			last = b->call_phase[i];
	}
	if (last == UVS_PH_TIMERS && b->pending_inlined)
		return UVS_PH_PENDING;
	if (last == UVS_PH_CHECK && b->close_inlined)
		return UVS_PH_CLOSE;
	return -1;
}

/* The index of the outermost frame that decides the phase, and the phase;
 * -1 if no frame does. */
static int uvs__stack_phase(const struct uvs_blocked *b, const uint64_t *pcs,
			    int n, int *phase)
{
	int i, k;

	/* the phase function nearest the loop, where it has a frame */
	for (i = n - 1; i >= 0; i--) {
		uint64_t a = i ? pcs[i] - 1 : pcs[i];

		for (k = 0; k < b->nranges; k++)
			if (a >= b->ranges[k].lo && a < b->ranges[k].hi) {
				*phase = b->ranges[k].phase;
				return i;
			}
	}
	/* else a return into uv_run: code inlined between two calls */
	for (i = n - 1; i > 0; i--)
		if (pcs[i] - 1 >= b->uvrun_lo && pcs[i] - 1 < b->uvrun_hi) {
			*phase = uvs__uvrun_phase(b, pcs[i]);
			if (*phase >= 0)
				return i;
		}
	*phase = -1;
	return -1;
}

/* ---- the caller a frame-pointer walk skips ---- */

/* True if the instruction before addr in the target's code is a call. */
static bool uvs__after_call(struct uvs_blocked *b, uint64_t addr)
{
	unsigned char c[8];

	if (!uvs_syms__in_code(b->syms, addr) ||
	    uvs_mem_read(b->t->pid, addr - 7, c, sizeof(c) - 1))
		return false;
	/* call rel32; call *reg; call *disp8(reg); call *disp32(rip/reg) */
	return c[2] == 0xe8 || (c[5] == 0xff && (c[6] & 0x38) == 0x10) ||
	       (c[4] == 0xff && (c[5] & 0x38) == 0x10) ||
	       (c[1] == 0xff && (c[2] & 0x38) == 0x10);
}

/* A PLT stub (named "x@plt" or "[plt]" from the ELF's relocations) is a
 * frameless leaf of any module: its caller's return address is on top of
 * the stack, and the frame pointer still its caller's caller's. */
static bool uvs__in_plt(struct uvs_blocked *b, uint64_t pc)
{
	char name[256];

	if (!b->syms)
		return false;
	uvs_syms__name(b->syms, pc, name, sizeof(name));
	return strstr(name, "@plt") || !strncmp(name, "[plt]", 5);
}

/* A leaf in code built without frame pointers (libc, and what the vDSO
 * calls from) leaves the frame pointer to an earlier caller: the walk
 * skips the function that made the call. Its return address is still on
 * the stack, a few words above the stack pointer, between the return
 * addresses the walk did find: the first word there that returns just
 * after a call instruction, and is not one of them, is that frame (or,
 * inside the library, the frames down to it). */
static void uvs__fix_caller(struct uvs_blocked *b, struct uvs__pend *p)
{
	uint64_t *np;
	int i, j = 1, leaf, lib, added = 0;
	bool vdso;

	p->fixed = true;
	if (p->n < 2)
		return;
	leaf = uvs_syms__file_of(b->syms, p->pcs[0]);
	vdso = uvs_syms__is_vdso(b->syms, p->pcs[0]);
	if ((leaf < 0 && !vdso) ||
	    (!vdso && leaf == uvs_syms__file_of(b->syms, p->pcs[1] - 1) &&
	     !uvs__in_plt(b, p->pcs[0])))
		return; /* JIT code and code with frame pointers walk fine */
	/* the library without frame pointers the walk went through */
	lib = vdso ? uvs_syms__file_of(b->syms, p->pcs[1] - 1) : leaf;
	for (i = 0; i < UVS_BLK_SCAN && j < p->n && j < 3 + added &&
		    added < 4; i++) {
		uint64_t w = p->scan[i];

		if (w == p->pcs[j]) {
			j++;
			continue;
		}
		if (!w || !uvs__after_call(b, w))
			continue;
		np = realloc(p->pcs, (p->n + 1) * sizeof(*np));
		if (!np)
			return;
		memmove(np + j + 1, np + j, (p->n - j) * sizeof(*np));
		np[j++] = w;
		p->pcs = np;
		p->n++;
		p->scanned = true;
		added++;
		/* out of the library: that is the caller the walk skipped */
		if (uvs_syms__file_of(b->syms, w - 1) != lib)
			return;
	}
}

/* Where the kernel's walk stopped short, the chain BPF found from a frame
 * pointer saved on the stack: the leaf, the return addresses scanned
 * before that saved word, then the chain, as far as every return address
 * follows a call. Used only if it is longer than what the kernel found. */
static bool uvs__recover_chain(struct uvs_blocked *b, struct uvs__pend *p)
{
	uint64_t out[1 + UVS_BLK_SCAN + UVS_BLK_CHAIN];
	int i, n = 0, valid = 0;

	if (!p->nchain || p->n < 1)
		return false;
	out[n++] = p->pcs[0];
	for (i = 0; i < p->chain_at; i++)
		if (p->scan[i] && uvs__after_call(b, p->scan[i]))
			out[n++] = p->scan[i];
	for (i = 0; i < p->nchain; i++) {
		if (!uvs__after_call(b, p->chain[i]))
			break;
		out[n++] = p->chain[i];
		valid++;
	}
	if (valid < 2 || n <= p->n)
		return false;
	free(p->pcs);
	p->pcs = malloc(n * sizeof(*out));
	if (!p->pcs) {
		p->n = 0;
		return false;
	}
	memcpy(p->pcs, out, n * sizeof(*out));
	p->n = n;
	p->scanned = true;
	return true;
}

static void uvs__add_pend(struct uvs_blocked *b, const struct uvs_blk_event *e,
			  bool off)
{
	const uint64_t *pcs = (const uint64_t *)e->frames;
	struct uvs__pend *p;
	int n = e->nframes > 0 ? e->nframes : 0, nk = off ? e->nkframes : 0;
	uint64_t h;
	int i;

	if (n > UVS_BLK_FRAMES)
		n = UVS_BLK_FRAMES;
	if (nk > UVS_BLK_KFRAMES || nk < 0)
		nk = 0;
	h = uvs__hash_pcs(pcs, n, (const uint64_t *)e->kframes, nk, off);
	if (e->nchain > 0 && e->nchain <= UVS_BLK_CHAIN)
		h ^= uvs__hash_pcs((const uint64_t *)e->chain, e->nchain, NULL,
				   0, false) * 31;
	for (i = 0; i < b->npend; i++)
		if (b->pend[i].hash == h && b->pend[i].off == off)
			break;
	if (i == b->npend) {
		if (b->npend == UVS_PEND_MAX) {
			b->pend_dropped++;
			return;
		}
		p = &b->pend[b->npend];
		memset(p, 0, sizeof(*p));
		p->pcs = malloc(n * sizeof(*pcs) + 1);
		p->kpcs = malloc(nk * sizeof(*pcs) + 1);
		if (!p->pcs || !p->kpcs) {
			free(p->pcs);
			free(p->kpcs);
			b->pend_dropped++;
			return;
		}
		memcpy(p->pcs, pcs, n * sizeof(*pcs));
		memcpy(p->kpcs, e->kframes, nk * sizeof(*pcs));
		p->n = n;
		p->nk = nk;
		p->hash = h;
		p->off = off;
		memcpy(p->scan, e->scan, sizeof(p->scan));
		p->nchain = e->nchain > 0 && e->nchain <= UVS_BLK_CHAIN ?
			    e->nchain : 0;
		p->chain_at = e->chain_at < UVS_BLK_SCAN ? e->chain_at : 0;
		memcpy(p->chain, e->chain, sizeof(p->chain));
		p->truncated = e->nframes >= UVS_BLK_FRAMES;
		p->failed = e->nframes <= 0;
		b->npend++;
	}
	b->pend[i].weight += off ? e->dur : 1;
}

/* ---- turning a period's stacks into an episode ---- */

struct uvs__folded {
	char *s;
	size_t len, cap;
};

static void uvs__fold_add(struct uvs__folded *f, const char *frame)
{
	size_t n = strlen(frame);

	if (f->len + n + 2 > f->cap) {
		size_t cap = (f->len + n + 2) * 2;
		char *ns = realloc(f->s, cap);

		if (!ns)
			return;
		f->s = ns;
		f->cap = cap;
	}
	if (f->len)
		f->s[f->len++] = ';';
	memcpy(f->s + f->len, frame, n);
	f->len += n;
	f->s[f->len] = '\0';
}

/* "phase;outermost;...;innermost" for one stack, from the phase down. */
static int uvs__fold(struct uvs_blocked *b, const struct uvs__pend *p,
		     struct uvs__folded *f, int *phase, bool *microtasks,
		     char top[][160], int *ntop)
{
	char name[512], last[512] = "";
	int from, i, nt = 0;

	f->len = 0;
	*microtasks = false;
	from = uvs__stack_phase(b, p->pcs, p->n, phase);
	uvs__fold_add(f, *phase >= 0 ? uvs_phase_names[*phase]
				     : b->in_main ? "main" : "unknown");
	/* below the phase function (or everything, when there is none) */
	for (i = from >= 0 ? from - 1 : p->n - 1; i >= 0; i--) {
		uvs_syms__frame(b->syms, p->pcs[i], i > 0, name, sizeof(name));
		/* JIT code with no perf map: one [jit] frame for a run */
		if (!strcmp(name, "[jit]") && !strcmp(last, "[jit]"))
			continue;
		if (strstr(name, "RunMicrotasks"))
			*microtasks = true;
		uvs__fold_add(f, name);
		snprintf(last, sizeof(last), "%s", name);
	}
	if (p->off) {
		for (i = p->nk - 1; i >= 0; i--) {
			uvs_syms__kernel_frame(p->kpcs[i], name, sizeof(name));
			uvs__fold_add(f, name);
		}
		uvs__fold_add(f, "off-cpu");
	}
	if (top) {
		for (i = 0; i < p->n && nt < UVS_BLK_TOP; i++) {
			uvs_syms__frame(b->syms, p->pcs[i], i > 0, name,
					sizeof(name));
			snprintf(top[nt++], 160, "%s", name);
		}
		*ntop = nt;
	}
	return 0;
}

/* An episode from the event that ended it, or (ongoing) from one made up
 * as tracing ends while the thread is still busy: its duration so far, and
 * the stacks of its samples so far, which stay for the rest of it. */
static void uvs__episode(struct uvs_blocked *b, const struct uvs_blk_event *ev,
			 bool ongoing)
{
	struct uvs_blk_event clip, *e = &clip;
	struct uvs_blocked_report *a = b->acc;
	struct uvs_blocked_episode *ep = NULL;
	struct uvs__folded f = { 0 };
	uint64_t phase_w[8] = { 0 }, heaviest = 0, samples = 0, micro = 0;
	int i, k, phase, best;
	bool mt;

	/* only its part in the trace's window: one begun before tracing
	 * began (or the loop busy as it began) is seen from there */
	clip.ts = ev->ts;
	clip.dur = ev->dur;
	clip.off_ns = ev->off_ns;
	if (b->started_ns && ev->ts - ev->dur < b->started_ns) {
		clip.dur = ev->ts > b->started_ns ? ev->ts - b->started_ns : 0;
		if (b->pt && b->ep_hi_ns > clip.dur)
			b->ep_hi_ns = clip.dur;
		if (b->pt && b->ep_lo_ns > clip.dur)
			b->ep_lo_ns = clip.dur;
		/* off CPU spread evenly over it: what the cut leaves */
		if (ev->dur)
			clip.off_ns = (uint64_t)((double)ev->off_ns * clip.dur /
						 ev->dur);
	}
	if (!b->syms && uvs_syms__open(b->t->pid, &b->syms))
		b->syms = NULL;
	else if (b->syms)
		uvs_syms__refresh(b->syms);
	a->count++;
	a->blocked_ns += e->dur;
	a->off_cpu_ns += e->off_ns < e->dur ? e->off_ns : e->dur;
	a->on_cpu_ns += e->off_ns < e->dur ? e->dur - e->off_ns : 0;
	uvs_hist__add(&a->duration_ns, e->dur);
	if (a->nepisodes < UVS_BLK_EPISODES) {
		ep = &a->episodes[a->nepisodes++];
		memset(ep, 0, sizeof(*ep));
		/* signed: a run begun as the trace began (half a sample
		 * before its first) would wrap to thousands of years */
		ep->start_ms = (int64_t)(e->ts - e->dur - b->t0) / 1e6;
		if (ep->start_ms < 0)
			ep->start_ms = 0;
		ep->duration_ms = e->dur / 1e6;
		ep->duration_lo_ms = ep->duration_hi_ms = ep->duration_ms;
		if (b->pt) {
			ep->duration_lo_ms = b->ep_lo_ns / 1e6;
			ep->duration_hi_ms = b->ep_hi_ns / 1e6;
		}
		ep->off_cpu_ms = (e->off_ns < e->dur ? e->off_ns : e->dur) / 1e6;
		ep->on_cpu_ms = ep->duration_ms - ep->off_cpu_ms;
		ep->ongoing = ongoing;
		ep->waker_pid = b->waker_pid;
		memcpy(ep->waker_comm, b->waker_comm, sizeof(ep->waker_comm));
	}
	/* a launched program's first busy period, from its start to its
	 * loop's first wait: its main module's synchronous run (a CLI's
	 * whole life), the phase "main" where no loop phase is on its
	 * stacks */
	b->in_main = b->t->launched && (b->pt ? !b->pt_waited : ev->seq == 0);
	for (i = 0; b->syms && i < b->npend; i++) {
		struct uvs__pend *p = &b->pend[i];
		uint64_t w = p->off ? (p->weight + b->period_ns / 2) / b->period_ns
				    : p->weight;
		char top[UVS_BLK_TOP][160];
		int ntop = 0;

		if (p->off && !w)
			w = 1; /* a short wait still shows */
		if (!p->fixed && !uvs__recover_chain(b, p))
			uvs__fix_caller(b, p);
		p->fixed = true;
		uvs__fold(b, p, &f, &phase, &mt, top, &ntop);
		if (f.s && a->stacks)
			uvs_stacks__add(a->stacks, f.s, w);
		phase_w[phase >= 0 ? phase : 7] += w;
		if (!p->off) {
			samples += p->weight;
			micro += mt ? p->weight : 0;
			a->samples += p->weight;
			a->truncated += p->truncated ? p->weight : 0;
			a->unwind_failed += p->failed ? p->weight : 0;
			a->scanned += p->scanned ? p->weight : 0;
			a->no_phase += phase < 0 ? p->weight : 0;
		}
		if (ep && w > heaviest) {
			heaviest = w;
			ep->ntop = ntop;
			for (k = 0; k < ntop; k++)
				memcpy(ep->top_frames[k], top[k], 160);
		}
	}
	free(f.s);
	if (!ep)
		return;
	ep->samples = samples;
	ep->microtasks = samples ? (double)micro / samples : 0;
	for (best = 7, k = 0; k < 7; k++)
		if (phase_w[k] > phase_w[best])
			best = k;
	snprintf(ep->phase, sizeof(ep->phase), "%s",
		 best < 7 && phase_w[best] ? uvs_phase_names[best]
		 : b->in_main ? "main" : "unknown");
	b->in_main = false;
}

static int uvs__on_event(void *ctx, void *data, size_t len)
{
	struct uvs_blocked *b = ctx;
	const struct uvs_blk_event *e = data;

	if (len < sizeof(*e))
		return 0;
	if (e->seq != b->cur_seq) {
		/* a new busy period: the last one was short */
		uvs__pend_clear(b);
		b->cur_seq = e->seq;
	}
	switch (e->type) {
	case UVS_BEV_SAMPLE:
		uvs__add_pend(b, e, false);
		break;
	case UVS_BEV_OFFCPU:
		uvs__add_pend(b, e, true);
		if (e->dur > b->best_off_ns) {
			b->best_off_ns = e->dur;
			b->waker_pid = e->waker_pid;
			memcpy(b->waker_comm, e->waker_comm,
			       sizeof(b->waker_comm));
		}
		break;
	case UVS_BEV_BUSY:
		uvs__episode(b, e, false);
		uvs__pend_clear(b);
		break;
	}
	return 0;
}

/* ---- the loop's epoll fd, read from its uv_loop_t ---- */

static void uvs__set_epfd(struct uvs_blocked *b, int fd)
{
	b->epfd = fd;
	if (b->skel)
		b->skel->data->loop_epfd = fd;
	if (b->pt)
		uvs_pt__set_wait_fd(b->pt, fd);
}

static void uvs__find_epfd(struct uvs_blocked *b)
{
	uint64_t loop = 0;
	int32_t fd = -1;
	long off;

	if (b->epfd >= 0 || uvs_target__locate(b->t))
		return;
	if (b->tid && b->tid != b->t->pid) {
		/* another thread's loop (a Node worker's): not the default
		 * loop's fd but the one that thread waits in, once it is seen
		 * waiting (until then its busy time is not known) */
		fd = uvs_target__epoll_waiting(b->t, b->tid);
		if (fd >= 0) {
			uvs__set_epfd(b, fd);
			uvs_debug("loop epoll fd %d (the one thread %d waits in)",
				  fd, b->tid);
		}
		return;
	}
	if (!b->located) {
		uvs__plan_phases(b);
		b->located = true;
	}
	off = b->ly ? uvs_layout__off(b->ly, "uv_loop_t", "backend_fd") : -1;
	/* an epoll fd, or the loop is not set up yet (a launched program
	 * still starting, or not yet exec'd): later */
	if (off >= 0 && !uvs_target__default_loop(b->t, &loop) && loop &&
	    !uvs_mem_read(b->t->pid, loop + off, &fd, sizeof(fd)) && fd >= 0 &&
	    uvs_target__is_epoll_fd(b->t, fd)) {
		uvs__set_epfd(b, fd);
		uvs_debug("loop epoll fd %d (the default loop's backend_fd)", fd);
		return;
	}
	if (!b->ly || b->t->tier == UVS_TIER_SYSCALLS) {
		/* no layout: the process's first epoll fd, as loop does */
		fd = uvs_target__first_epoll_fd(b->t);
		if (fd >= 0) {
			uvs__set_epfd(b, fd);
			uvs_debug("loop epoll fd %d (the first one that "
				  "watches any fd)", fd);
		}
	}
}

static struct uvs_blocked_report *uvs__acc(struct uvs_blocked *b)
{
	if (!b->acc) {
		b->acc = calloc(1, sizeof(*b->acc));
		if (!b->acc)
			return NULL;
		if (uvs_stacks__new(&b->acc->stacks))
			b->acc->stacks = NULL;
	}
	return b->acc;
}


/* A run of busy samples as an episode, if it lasted the threshold: ended
 * by the sample at now (idle, or in the next iteration), or (ongoing)
 * still busy as tracing ends at now. A target gone busy is seen by no
 * sample after: its end is taken as for a sample a period later, but the
 * episode is ongoing. */
static void uvs__run_episode(struct uvs_blocked *b, uint64_t now,
			     bool ongoing)
{
	struct uvs_blk_event *e = b->ev;
	bool gone = ongoing && uvs_pt__ended(b->pt, NULL, NULL);
	uint64_t start = b->run_first - (b->run_first - b->run_prev) / 2;
	uint64_t end, dur;

	if (gone)
		now = b->run_last + b->period_ns;
	end = ongoing && !gone ? now : b->run_last + (now - b->run_last) / 2;
	dur = end > start ? end - start : 0;

	if (!b->in_run || dur < b->opts.threshold_ns)
		return;
	b->ep_lo_ns = b->run_last - b->run_first;
	b->ep_hi_ns = now - b->run_prev;
	memset(e, 0, sizeof(*e));
	e->type = UVS_BEV_BUSY;
	e->ts = end;
	e->dur = dur;
	/* the share of its samples found in a system call */
	e->off_ns = dur * b->run_off / b->run_samples;
	uvs__episode(b, e, ongoing);
}

static void uvs__end_run(struct uvs_blocked *b, uint64_t now)
{
	uvs__run_episode(b, now, false);
	uvs__pend_clear(b);
	b->in_run = false;
}

/* Where the loop thread is as tracing begins (eBPF): blocked in the loop's
 * own epoll wait, the wait's end begins a busy period; anywhere else, it
 * is busy since before the trace, and a callback that never returns
 * completes no wait to tell. Set against what the programs may have seen
 * meanwhile: a wait begun since is left as they saw it. */
static void uvs__initial_state(struct uvs_blocked *b, pid_t tid)
{
	struct blk_state *st = &b->skel->bss->st;
	long nr, fd;
	int in;

	/* a launched program not yet in its loop: busy from its start */
	if (b->epfd < 0 && !b->t->launched)
		return;
	in = uvs_proc_syscall(b->t->pid, tid, &nr, &fd);
	if (in < 0)
		return;
	if (in == 1 && uvs_is_epoll_wait(nr) && fd == b->epfd) {
		/* had it left the wait meanwhile, its next one resets it */
		__sync_bool_compare_and_swap(&st->in_wait, 0, 1);
		return;
	}
	if (!__sync_bool_compare_and_swap(&st->busy_since, 0, b->started_ns))
		return;
	if (__atomic_load_n(&st->in_wait, __ATOMIC_SEQ_CST)) {
		__sync_bool_compare_and_swap(&st->busy_since, b->started_ns, 0);
		return;
	}
	/* blocked in a system call (execSync's nested wait, a sleep): off
	 * CPU from here, its stack not known (taken as it went to sleep) */
	if (in == 1) {
		st->preempted = 1;
		__sync_bool_compare_and_swap(&st->switched_out, 0,
					     b->started_ns);
	}
	uvs_debug("the loop thread is busy as tracing begins (%s)",
		  in == 1 ? "blocked in a system call" : "running");
}

/* The busy period still going as tracing ends (eBPF), as an episode so
 * far: a loop stuck in a callback ends no period, and this is the only
 * place it shows. */
static void uvs__ongoing(struct uvs_blocked *b)
{
	volatile struct blk_state *st = &b->skel->bss->st;
	struct uvs_blk_event *e = b->ev;
	uint64_t since = st->busy_since, seq = st->seq, off = st->off_ns;
	uint64_t out = st->switched_out, now = uvs_now_ns();

	/* the thread exited busy: its period ended there */
	if (st->exited_at && st->exited_at < now)
		now = st->exited_at;

	if (!since || st->in_wait || now <= since ||
	    now - since < b->opts.threshold_ns)
		return;
	if (seq != b->cur_seq) {
		/* no sample of it has come yet */
		uvs__pend_clear(b);
		b->cur_seq = seq;
	}
	memset(e, 0, sizeof(*e));
	e->type = UVS_BEV_BUSY;
	e->ts = now;
	e->seq = seq;
	e->dur = now - since;
	e->off_ns = off + (out && now > out ? now - out : 0);
	uvs__episode(b, e, true);
}

/* The loop's marks, read by the sampler with each sample; looked for
 * again (every 100 ms) until the loop exists. */
static void uvs__find_marks(struct uvs_blocked *b, uint64_t now)
{
	struct uvs_pt_marks m;
	int err;

	b->marks_tried_ns = now;
	err = uvs_ploop__find_marks(b->t, b->opts.tid, &m);
	if (err == -EAGAIN)
		return;
	if (err) {
		b->marks_state = -1;
		uvs_debug("ptrace: the loop's iteration marks are not known "
			  "(a busy period may span a wait shorter than the "
			  "sample period)");
		return;
	}
	uvs_pt__set_marks(b->pt, &m);
	b->marks_state = 1;
	uvs_debug("ptrace: busy periods end where the loop's %s changes",
		  m.count_addr ? "iteration count" : "clock");
}

/* The ptrace backend's samples: a run of busy samples (not waiting in
 * the loop's own epoll) is a busy period, as long as its samples; the
 * samples taken inside a system call are its time off CPU. */
static void uvs__on_pt_sample(const struct uvs_pt_sample *s, void *ctx)
{
	struct uvs_blocked *b = ctx;
	struct uvs_blk_event *e = b->ev;
	bool idle, off;
	int n;

	/* a launched program's loop is set up between two polls: look for
	 * its epoll fd as soon as a sample waits in one */
	if (b->epfd < 0 && uvs_is_epoll_wait(s->syscall))
		uvs__find_epfd(b);
	idle = s->in_wait || (uvs_is_epoll_wait(s->syscall) && b->epfd >= 0 &&
			      s->arg0 == b->epfd);

	if (!uvs__acc(b))
		return;
	if (b->marks_state == 0 &&
	    s->ts_ns - b->marks_tried_ns >= 100 * 1000000ull)
		uvs__find_marks(b, s->ts_ns);
	if (idle) {
		uvs__end_run(b, s->ts_ns);
		b->pt_waited = true;
		b->prev_ts = s->ts_ns;
		return;
	}
	/* the loop went through poll since the last busy sample, in a wait
	 * too short for the sampler to see: two busy periods, not one */
	if (b->in_run && uvs_pt__new_iteration(&b->run_iter, &s->iter)) {
		uvs__end_run(b, s->ts_ns);
		b->iter_splits++;
	}
	b->run_iter = s->iter;
	if (!b->in_run) {
		uvs__pend_clear(b);
		b->in_run = true;
		b->run_first = s->ts_ns;
		b->run_prev = b->prev_ts && b->prev_ts < s->ts_ns
				  ? b->prev_ts
				  : s->ts_ns - b->period_ns;
		b->run_samples = b->run_off = 0;
	}
	b->run_last = s->ts_ns;
	b->prev_ts = s->ts_ns;
	off = s->syscall >= 0;
	b->run_samples++;
	b->run_off += off;
	memset(e, 0, sizeof(*e));
	e->ts = s->ts_ns;
	e->dur = off ? b->period_ns : 0;
	n = s->nframes < UVS_BLK_FRAMES ? s->nframes : UVS_BLK_FRAMES;
	e->nframes = n > 0 ? n : -1;
	memcpy(e->frames, s->ip, (n > 0 ? n : 0) * sizeof(e->frames[0]));
	uvs__add_pend(b, e, off);
	if (off && e->dur > b->best_off_ns)
		b->best_off_ns = e->dur;
}

static int uvs__open_ptrace(struct uvs_blocked *b, pid_t tid)
{
	struct uvs_pt_opts po = { .sz = sizeof(po), .tid = tid,
				  .rate_hz = b->opts.sample_hz,
				  .launched = b->t->launched };

	b->ev = calloc(1, sizeof(*b->ev));
	if (!b->ev)
		return uvs_seterr(-ENOMEM, "out of memory");
	if (b->opts.pt) {
		/* another reader's sampler: its rate is the period */
		b->shared_pt = true;
		b->pt = b->opts.pt;
		return uvs_pt__listen(b->pt, uvs__on_pt_sample, b);
	}
	return uvs_pt__open(b->t->pid, &po, uvs__on_pt_sample, NULL, b, &b->pt);
}

static int uvs__open_ebpf(struct uvs_blocked *b, pid_t tid)
{
	struct perf_event_attr pa;
	struct uvs_features feat;
	struct blocked_bpf *skel;
	int err, i;

	b->ev = calloc(1, sizeof(*b->ev));
	if (!b->ev)
		return uvs_seterr(-ENOMEM, "out of memory");
	uvs_features__probe(&feat);
	if (!uvs_features__ebpf_ok(&feat))
		return uvs_seterr(-EPERM, "eBPF unavailable: %s", feat.why_not);
	skel = blocked_bpf__open();
	if (!skel)
		return uvs_seterr(-errno, "cannot open BPF object: %s",
				  strerror(errno));
	b->skel = skel;
	skel->rodata->targ_tgid = b->t->pid;
	skel->rodata->threshold_ns = b->opts.threshold_ns;
	skel->rodata->kernel_stacks = b->opts.kernel;
	/* a launched program's loop is set up after the attach: its first
	 * wait ends its first busy period (its main), however soon it comes */
	skel->rodata->learn_epfd = b->t->launched && tid == b->t->pid;
	if (!feat.epoll_pwait2) {
		bpf_program__set_autoload(skel->progs.epoll_pwait2_enter, false);
		bpf_program__set_autoload(skel->progs.epoll_pwait2_exit, false);
	}
	err = blocked_bpf__load(skel);
	if (err)
		return uvs_seterr(err, "cannot load BPF programs: %s (run with "
				  "-v for the verifier log)", strerror(-err));
	skel->bss->loop_tid = tid;
	skel->data->loop_epfd = -1;
	b->rb = ring_buffer__new(bpf_map__fd(skel->maps.events),
				 uvs__on_event, b, NULL);
	if (!b->rb)
		return uvs_seterr(-errno, "cannot open the ring buffer: %s",
				  strerror(errno));
	err = blocked_bpf__attach(skel);
	if (err)
		return uvs_seterr(err, "cannot attach tracepoints: %s",
				  strerror(-err));
	/* Software cpu-clock (these VMs have no hardware PMU), one event per
	 * CPU, the program keeping the loop thread's samples. An event on
	 * the thread itself would stop and re-arm its timer at every switch
	 * of the thread: on a VM each re-arm is a trap to the hypervisor,
	 * and a loaded server's loop switches tens of thousands of times a
	 * second (measured: a quarter of its requests/s at 997 Hz). */
	b->nperf = libbpf_num_possible_cpus();
	if (b->nperf <= 0)
		return uvs_seterr(-EINVAL, "cannot count the CPUs");
	b->perf_fd = calloc(b->nperf, sizeof(*b->perf_fd));
	b->perf_link = calloc(b->nperf, sizeof(*b->perf_link));
	if (!b->perf_fd || !b->perf_link)
		return uvs_seterr(-ENOMEM, "out of memory");
	for (i = 0; i < b->nperf; i++)
		b->perf_fd[i] = -1;
	memset(&pa, 0, sizeof(pa));
	pa.size = sizeof(pa);
	pa.type = PERF_TYPE_SOFTWARE;
	pa.config = PERF_COUNT_SW_CPU_CLOCK;
	pa.sample_period = b->period_ns; /* ns, for cpu-clock */
	for (i = 0; i < b->nperf; i++) {
		b->perf_fd[i] = syscall(__NR_perf_event_open, &pa, -1, i, -1,
					PERF_FLAG_FD_CLOEXEC);
		if (b->perf_fd[i] < 0) {
			if (errno == ENODEV)
				continue; /* a CPU that is not online */
			return uvs_seterr(-errno, "cannot sample CPU %d "
					  "(perf_event_open cpu-clock): %s", i,
					  strerror(errno));
		}
		b->perf_link[i] = bpf_program__attach_perf_event(
			skel->progs.on_cpu, b->perf_fd[i]);
		if (!b->perf_link[i])
			return uvs_seterr(-errno, "cannot attach to the perf "
					  "event of CPU %d: %s", i,
					  strerror(errno));
	}
	return 0;
}

int uvs_blocked__open(struct uvs_target *t, const struct uvs_blocked_opts *o,
		      struct uvs_blocked **out)
{
	struct uvs_blocked *b;
	pid_t tid;
	int err;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return uvs_seterr(-ENOMEM, "out of memory");
	b->t = t;
	b->epfd = -1;
	if (o)
		memcpy(&b->opts, o, o->sz < sizeof(b->opts) ? o->sz
							  : sizeof(b->opts));
	if (!b->opts.threshold_ns)
		b->opts.threshold_ns = 20000000;
	if (b->opts.ptrace && b->opts.pt)
		b->opts.sample_hz = uvs_pt__rate_hz(b->opts.pt);
	if (!b->opts.sample_hz)
		b->opts.sample_hz = b->opts.ptrace ? UVS_PT_DEFAULT_HZ : 997;
	b->period_ns = 1000000000ull / b->opts.sample_hz;
	b->pend = calloc(UVS_PEND_MAX, sizeof(*b->pend));
	if (!b->pend) {
		err = uvs_seterr(-ENOMEM, "out of memory");
		goto fail;
	}
	b->cur_seq = UINT64_MAX;
	/* a layout lets the loop's own epoll fd be read; without one (an
	 * unknown version) the first epoll fd stands in */
	if (t->libuv_version[0] && uvs_layout__load(t->libuv_version, &b->ly))
		b->ly = NULL;
	tid = b->opts.tid ? b->opts.tid : t->loop_tid;
	err = b->opts.ptrace ? uvs__open_ptrace(b, tid) : uvs__open_ebpf(b, tid);
	if (err)
		goto fail;
	if (uvs_syms__open(t->pid, &b->syms))
		b->syms = NULL; /* a launched program: opened at first need */
	b->t0 = uvs_now_ns();
	b->tid = tid;
	uvs__find_epfd(b);
	*out = b;
	return 0;
fail:
	uvs_blocked__close(b);
	return err;
}

int uvs_blocked__poll(struct uvs_blocked *b, int timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000,
			       (timeout_ms % 1000) * 1000000L };
	int n;

	if (!uvs__acc(b))
		return uvs_seterr(-ENOMEM, "out of memory");
	if (!b->started_ns) {
		/* the report's clock starts with the first poll */
		b->started_ns = uvs_now_ns();
		if (b->skel)
			uvs__initial_state(b, b->tid);
	}
	/* a launched program maps its code as it starts: read while it runs,
	 * for an episode that ends at its exit (then nothing is left to
	 * read, and its frames were [unknown]) */
	if (b->t->launched)
		uvs_syms__current(&b->syms, b->t->pid, &b->syms_at,
				  uvs_now_ns() - b->t0 < 2000000000ull ? 0
									: 250);
	if (b->pt) {
		uvs__find_epfd(b);
		/* a shared sampler is polled by its owner */
		return b->shared_pt ? 0 : uvs_pt__poll(b->pt, timeout_ms);
	}
	nanosleep(&ts, NULL); /* a signal ends it early, as it should */
	uvs__find_epfd(b);
	n = ring_buffer__consume(b->rb);
	if (n < 0 && n != -EINTR)
		return uvs_seterr(n, "reading the ring buffer: %s",
				  strerror(-n));
	return 0;
}

int uvs_blocked__collect(struct uvs_blocked *b, struct uvs_report *r)
{
	struct uvs_blocked_report *a = uvs__acc(b);

	if (!a)
		return uvs_seterr(-ENOMEM, "out of memory");
	if (b->rb) {
		ring_buffer__consume(b->rb);
		uvs__ongoing(b);
	} else if (b->pt && b->in_run) {
		uvs__run_episode(b, uvs_now_ns(), true);
	}
	a->threshold_ns = b->opts.threshold_ns;
	a->sample_hz = b->opts.sample_hz;
	a->kernel = b->opts.kernel;
	uvs_stacks__free(r->blocked.stacks);
	memcpy(&r->blocked, a, sizeof(*a));
	r->has_blocked = true;
	/* episodes' starts from the report's start, not this source's
	 * opening: one clock for every source of a report */
	if (r->start_monotonic_s > 0) {
		double shift = b->t0 / 1e6 - r->start_monotonic_s * 1e3;
		int i;

		for (i = 0; i < r->blocked.nepisodes; i++) {
			double *at = &r->blocked.episodes[i].start_ms;

			/* begun in the last moments of the attach: as
			 * tracing began */
			*at += shift;
			if (*at < 0)
				*at = 0;
		}
	}
	if (b->skel) {
		r->lost_events += b->skel->bss->lost - b->lost_seen;
		b->lost_seen = b->skel->bss->lost;
	}
	free(a);
	b->acc = NULL;
	return 0;
}

bool uvs_blocked__ended(const struct uvs_blocked *b, bool *reaped,
			int *status)
{
	*reaped = false;
	return b->pt && uvs_pt__ended(b->pt, reaped, status);
}

void uvs_blocked__describe(const struct uvs_blocked *b, FILE *out)
{
	fprintf(out, "uvscope: loop thread %d, epoll fd %d%s; threshold %.1f "
		"ms; %s samples at %u Hz\n", b->opts.tid ? b->opts.tid :
		b->t->loop_tid, b->epfd, b->epfd < 0 ? " (not known yet)" : "",
		b->opts.threshold_ns / 1e6, b->pt ? "ptrace" : "cpu-clock",
		b->opts.sample_hz);
	if (b->pt)
		fprintf(out, "uvscope: ptrace: busy periods are runs of busy "
			"samples, to one sample period (%.1f ms); samples in a "
			"system call are off CPU\n", b->period_ns / 1e6);
	else
		fprintf(out, "uvscope: tracepoints: epoll waits, sched_switch, "
			"sched_wakeup, sched_process_exit\n");
	fprintf(out, "uvscope: phases from %d libuv functions on the stack%s\n",
		b->nranges, b->ncalls ? " and uv_run's call sites" : "");
}

void uvs_blocked__close(struct uvs_blocked *b)
{
	struct uvs_reaper *r = uvs_reaper_shared();
	int i;

	if (!b)
		return;
	/* detached first: the target runs on whatever happens next */
	if (!b->shared_pt)
		uvs_pt__close(b->pt);
	if (b->pt && b->marks_state > 0)
		uvs_debug("ptrace: %llu busy runs ended where the loop's marks "
			  "changed between two busy samples",
			  (unsigned long long)b->iter_splits);
	free(b->ev);
	for (i = 0; i < b->nperf; i++) {
		/* a perf event link closes its event's fd itself */
		if (b->perf_link && b->perf_link[i]) {
			uvs_reap_link(r, &b->perf_link[i]);
			if (b->perf_fd)
				b->perf_fd[i] = -1;
		}
		if (b->perf_fd)
			uvs_reap_fd(r, &b->perf_fd[i]);
	}
	if (b->skel)
		uvs_reap_skel(r, b->skel->skeleton);
	free(b->perf_link);
	free(b->perf_fd);
	ring_buffer__free(b->rb);
	blocked_bpf__destroy(b->skel);
	if (b->pend)
		uvs__pend_clear(b);
	free(b->pend);
	if (b->acc) {
		uvs_stacks__free(b->acc->stacks);
		free(b->acc);
	}
	uvs_syms__close(b->syms);
	uvs_layout__close(b->ly);
	free(b);
}
