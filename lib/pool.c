// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The eBPF backend of `uvscope pool`: libuv's thread pool, task by task.
 *
 * bpf/pool.bpf.c reports each edge of a task's life (submitted, started,
 * ended, done) keyed on its struct uv__work pointer. Here they are paired
 * up: queue wait = start - submit, run = end - start, completion delay =
 * done - end, grouped by kind of work as a user knows it (fs.read,
 * crypto.pbkdf2, dns.lookup, the work callback's symbol). Replaying the
 * edges in time order also gives queue depth, busy threads and saturation
 * exactly, with no sampling.
 *
 * Nothing is lost silently: a start or done whose submission came before
 * tracing began is counted as such, and records the ring buffer could not
 * take are reported as lost events.
 */
#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "uvscope.h"
#include "pool.h"
#include "pool.skel.h"

#define UVS_ECANCELED 125
#define UVS_WORK_SLOW_IO 2 /* UV__WORK_SLOW_IO */
#define UVS_MAX_THREADS 1024
#define UVS_CB_CACHE 128

enum { UVS__QUEUED = 1, UVS__RUNNING, UVS__ENDED };

struct uvs__task {
	uint64_t w; /* 0: a free slot */
	uint64_t submit, start, end;
	int16_t kind; /* index in kinds[], valid while gen is the pool's */
	uint8_t state, fn, slow;
	uint32_t gen;
	pid_t worker;
	int32_t sub;  /* fs_type */
	uint64_t cb;  /* uv_queue_work's work_cb */
	char tag[UVS_POOL_TAG];
	uint64_t aux[2];
};

/* Open addressing, linear probing, deletion by backward shift. */
struct uvs__table {
	struct uvs__task *t;
	size_t cap, n; /* cap a power of two */
};

struct uvs__thread {
	pid_t tid;
	bool loop;	/* it submits or completes work: a loop thread */
	bool worker;	/* it ran a submitted task */
	bool running;
	bool sync;	/* running a sync fs call, on a loop thread */
	bool unknown;	/* running a task submitted before tracing */
	bool counted;	/* counted in the pool's busy threads */
	uint64_t w, start;
	int kind;
};

struct uvs__tick {
	uint32_t submitted, completed, queue_max;
	double busy_area, sat_ns; /* thread-ns, ns */
	uint64_t covered_ns;	  /* probes on */
};

struct uvs_pool {
	struct pool_bpf *skel;
	struct uvs_target *t;
	struct uvs_layout *ly;
	struct uvs_syms *syms;
	struct ring_buffer *rb;
	struct uvs_pool_opts opts;
	struct uvs_probes pr;	     /* the task probes, in budget windows */
	bool queue_work_probed; /* uv__work_submit is inlined into it */
	uint64_t fn_addr[UVS_PFN_N]; /* work functions, runtime addresses */
	uint64_t fn_sym[UVS_PFN_N];  /* ... and link-time ones */
	uint64_t nthreads_addr, nthreads_sym;
	uint64_t tag_sym;	     /* Node's ThreadPoolWork work_cb */
	bool located;		     /* runtime addresses are known */
	bool on;		     /* probes attached now (or sampling) */
	uint64_t wq_sym, slow_wq_sym, idle_sym, marker_sym[2];
	long w_wq;		     /* struct uv__work's wq member */
	/* the replay */
	struct uvs__table tasks, uring;
	struct uvs__thread threads[UVS_MAX_THREADS];
	int nthreads_seen_slots;
	int last_thread;
	uint64_t t0, last_ts, period_start;
	uint64_t depth, slow_depth, busy;
	uint64_t busy_unseen; /* busy when tracing began, start not seen */
	uint64_t state_at;    /* when depth and busy were read from memory */
	double area_depth, area_busy, sat_ns;
	int pool_threads;
	/* what the current report gets */
	struct uvs_pool_kind *kinds; /* UVS_POOL_KINDS */
	int nkinds;
	uint32_t gen; /* bumped when kinds[] starts afresh */
	bool kinds_truncated;
	struct uvs_pool_task slowest[UVS_POOL_SLOWEST];
	int nslowest;
	uint64_t submitted, completed, cancelled, max_depth, max_slow_depth;
	uint64_t unmatched_start, unmatched_done, sync_on_loop, uring_ops;
	uint64_t cut; /* in flight when a window closed */
	uint64_t covered_at_start, windows_at_start; /* of this report */
	uint64_t lost_seen;
	uint64_t samples; /* sampled mode: reads of the pool's state */
	uint64_t torn;	  /* of them, queues that changed under every walk */
	uint64_t next_sample; /* when the next one is due */
	/* the timeline, for the whole run */
	struct uvs__tick ticks[UVS_POOL_TIMELINE];
	uint64_t tick_ns;
	int nticks;
	struct {
		uint64_t addr;
		char name[80];
	} cbs[UVS_CB_CACHE];
	int ncbs;
};

/* ---- the task table ---- */

static uint64_t uvs__hash(uint64_t w)
{
	w ^= w >> 33;
	w *= 0xff51afd7ed558ccdull;
	w ^= w >> 33;
	return w;
}

static int uvs__table_grow(struct uvs__table *tb)
{
	struct uvs__table nt;
	size_t i, j;

	nt.cap = tb->cap ? tb->cap * 2 : 1024;
	nt.n = tb->n;
	nt.t = calloc(nt.cap, sizeof(*nt.t));
	if (!nt.t)
		return -ENOMEM;
	for (i = 0; i < tb->cap; i++) {
		if (!tb->t[i].w)
			continue;
		for (j = uvs__hash(tb->t[i].w) & (nt.cap - 1); nt.t[j].w;
		     j = (j + 1) & (nt.cap - 1))
			;
		nt.t[j] = tb->t[i];
	}
	free(tb->t);
	*tb = nt;
	return 0;
}

static struct uvs__task *uvs__find(struct uvs__table *tb, uint64_t w)
{
	size_t j;

	if (!tb->cap || !w)
		return NULL;
	for (j = uvs__hash(w) & (tb->cap - 1); tb->t[j].w;
	     j = (j + 1) & (tb->cap - 1))
		if (tb->t[j].w == w)
			return &tb->t[j];
	return NULL;
}

/* The slot for w, new (zeroed but for w) or the one it had. */
static struct uvs__task *uvs__insert(struct uvs__table *tb, uint64_t w,
				     bool *existed)
{
	size_t j;

	*existed = false;
	if ((tb->n + 1) * 2 > tb->cap && uvs__table_grow(tb))
		return NULL;
	for (j = uvs__hash(w) & (tb->cap - 1); tb->t[j].w;
	     j = (j + 1) & (tb->cap - 1))
		if (tb->t[j].w == w) {
			*existed = true;
			return &tb->t[j];
		}
	memset(&tb->t[j], 0, sizeof(tb->t[j]));
	tb->t[j].w = w;
	tb->t[j].kind = -1;
	tb->n++;
	return &tb->t[j];
}

static void uvs__remove(struct uvs__table *tb, struct uvs__task *e)
{
	size_t i = e - tb->t, j = i, k;

	tb->t[i].w = 0;
	tb->n--;
	/* backward shift: move up entries that probed past the hole */
	for (;;) {
		j = (j + 1) & (tb->cap - 1);
		if (!tb->t[j].w)
			return;
		k = uvs__hash(tb->t[j].w) & (tb->cap - 1);
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			tb->t[i] = tb->t[j];
			tb->t[j].w = 0;
			i = j;
		}
	}
}

/* A launched program maps libuv only after uvscope attached. */
static bool uvs__locate(struct uvs_pool *p)
{
	int i;

	if (p->located)
		return true;
	if (uvs_target__locate(p->t))
		return false;
	for (i = 0; i < UVS_PFN_N; i++)
		p->fn_addr[i] = p->fn_sym[i] ? p->t->uv_bias + p->fn_sym[i] : 0;
	p->nthreads_addr = p->nthreads_sym ? p->t->uv_bias + p->nthreads_sym
					   : 0;
	if (p->skel && p->skel->bss) {
		if (p->tag_sym)
			p->skel->bss->tag_cb[0] = p->t->uv_bias + p->tag_sym;
		p->skel->bss->queue_work_fn = p->fn_addr[UVS_PFN_QUEUE];
	}
	p->located = true;
	return true;
}

/* ---- naming ---- */

static int uvs__kind(struct uvs_pool *p, const char *name,
		     enum uvs_pool_via via, bool slow)
{
	struct uvs_pool_kind *k;
	int i;

	for (i = 0; i < p->nkinds; i++)
		if (p->kinds[i].via == via && !strcmp(p->kinds[i].name, name))
			return i;
	if (p->nkinds == UVS_POOL_KINDS) {
		/* the last slot collects the rest, under its own name */
		p->kinds_truncated = true;
		return UVS_POOL_KINDS - 1;
	}
	k = &p->kinds[p->nkinds];
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->via = via;
	k->slow_io = slow;
	return p->nkinds++;
}

static void uvs__fs_name(struct uvs_pool *p, int fs_type, char *buf,
			 size_t len)
{
	const char *e = uvs_layout__enum_name(p->ly, "uv_fs_type", fs_type);
	char *c;

	if (!e || strncmp(e, "UV_FS_", 6)) {
		snprintf(buf, len, "fs.op%d", fs_type);
		return;
	}
	snprintf(buf, len, "fs.%s", e + 6);
	for (c = buf + 3; *c; c++)
		*c = *c >= 'A' && *c <= 'Z' ? *c + 32 : *c;
}

extern char *__cxa_demangle(const char *mangled, char *buf, size_t *n,
			    int *status);

/* The class of a C++ object in the runtime's executable, from its vtable
 * pointer: "node::crypto::DeriveBitsJob<node::crypto::PBKDF2Traits>". */
static bool uvs__vtable_class(struct uvs_pool *p, uint64_t vptr, char *buf,
			      size_t len)
{
	const struct uvs_sym *s;
	char *d;
	int st = -1;

	if (!vptr || !uvs__locate(p) || vptr < p->t->uv_bias)
		return false;
	s = uvs_elf__symbolize(p->t->uv_elf, vptr - p->t->uv_bias);
	if (!s || strncmp(s->name, "_ZTV", 4))
		return false;
	d = __cxa_demangle(s->name, NULL, NULL, &st);
	if (st || !d) {
		free(d);
		return false;
	}
	snprintf(buf, len, "%s", strncmp(d, "vtable for ", 11) ? d : d + 11);
	free(d);
	return true;
}

/* Node names its own pool work (class ThreadPoolWork's type_): "crypto"
 * for every crypto job, "zlib", "node_api". The job's class tells the
 * crypto operations apart (DeriveBitsJob<PBKDF2Traits>), and Node-API work
 * is named by the addon's execute callback. */
static void uvs__node_work_name(struct uvs_pool *p, const char *tag,
				const uint64_t *aux, char *buf, size_t len)
{
	static const struct {
		const char *traits, *name;
	} ops[] = {
		{ "PBKDF2", "pbkdf2" },	       { "Scrypt", "scrypt" },
		{ "RandomBytes", "randomBytes" }, { "RandomPrime", "generatePrime" },
		{ "CheckPrime", "checkPrime" }, { "HKDF", "hkdf" },
		{ "Hash", "digest" },	       { "Hmac", "hmac" },
		{ "KeyPairGen", "generateKeyPair" }, { "SecretKeyGen", "generateKey" },
		{ "Sign", "sign" },	       { "Cipher", "cipher" },
	};
	char cls[512], id[64], cb[200];
	const char *t, *e;
	size_t i, n;

	if (!strcmp(tag, "crypto") &&
	    uvs__vtable_class(p, aux[0], cls, sizeof(cls))) {
		/* the outermost "...Traits" names the operation */
		t = strstr(cls, "Traits");
		if (t) {
			for (e = t; e > cls && (isalnum((unsigned char)e[-1]) ||
						e[-1] == '_'); e--)
				;
			n = t - e < (long)sizeof(id) - 1 ? (size_t)(t - e)
							 : sizeof(id) - 1;
			memcpy(id, e, n);
			id[n] = '\0';
			for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
				if (!strcmp(id, ops[i].traits)) {
					snprintf(buf, len, "crypto.%s",
						 ops[i].name);
					return;
				}
			for (i = 0; id[i]; i++)
				id[i] = tolower((unsigned char)id[i]);
			snprintf(buf, len, "crypto.%s", id);
			return;
		}
	}
	if (!strcmp(tag, "zlib") &&
	    uvs__vtable_class(p, aux[0], cls, sizeof(cls))) {
		snprintf(buf, len, "%s", strstr(cls, "Brotli") ? "zlib.brotli" :
				   strstr(cls, "Zstd") ? "zlib.zstd" : "zlib");
		return;
	}
	if (!p->syms && uvs_syms__open(p->t->pid, &p->syms))
		p->syms = NULL;
	if (!strcmp(tag, "node_api") && aux[1] && p->syms &&
	    !uvs_syms__refresh(p->syms)) {
		uvs_syms__callback(p->syms, aux[1], cb, sizeof(cb));
		snprintf(buf, len, "napi %s", cb);
		return;
	}
	snprintf(buf, len, "%s", tag);
}

/* "work my_cb (module)": uv_queue_work's callback, by symbol; by address
 * and module where it has none, never dropped. */
static const char *uvs__cb_name(struct uvs_pool *p, uint64_t cb)
{
	char tmp[256];
	int i;

	for (i = 0; i < p->ncbs; i++)
		if (p->cbs[i].addr == cb)
			return p->cbs[i].name;
	/* opened at first need: a launched program has only just exec'd */
	if (!p->syms && uvs_syms__open(p->t->pid, &p->syms))
		p->syms = NULL;
	if (!p->syms || uvs_syms__refresh(p->syms))
		snprintf(tmp, sizeof(tmp), "%#llx", (unsigned long long)cb);
	else
		uvs_syms__callback(p->syms, cb, tmp, sizeof(tmp));
	i = p->ncbs < UVS_CB_CACHE ? p->ncbs++ : UVS_CB_CACHE - 1;
	p->cbs[i].addr = cb;
	snprintf(p->cbs[i].name, sizeof(p->cbs[i].name), "work %s", tmp);
	return p->cbs[i].name;
}

static int uvs__name_kind(struct uvs_pool *p, int fn, int32_t sub,
			  uint64_t cb, const char *tag, const uint64_t *aux,
			  bool slow, enum uvs_pool_via via)
{
	char name[80];
	bool node = !strcmp(p->t->runtime, "node");

	switch (fn) {
	case UVS_PFN_FS:
		if (sub < 0)
			snprintf(name, sizeof(name), "fs");
		else
			uvs__fs_name(p, sub, name, sizeof(name));
		break;
	case UVS_PFN_QUEUE:
		if (tag && tag[0])
			uvs__node_work_name(p, tag, aux, name, sizeof(name));
		else if (cb)
			snprintf(name, sizeof(name), "%s", uvs__cb_name(p, cb));
		else
			snprintf(name, sizeof(name), "work");
		break;
	case UVS_PFN_GETADDRINFO:
		snprintf(name, sizeof(name), node ? "dns.lookup" : "getaddrinfo");
		break;
	case UVS_PFN_GETNAMEINFO:
		snprintf(name, sizeof(name),
			 node ? "dns.lookupService" : "getnameinfo");
		break;
	default:
		snprintf(name, sizeof(name), "random");
		break;
	}
	return uvs__kind(p, name, via, slow);
}

static int uvs__task_kind(struct uvs_pool *p, struct uvs__task *k,
			  enum uvs_pool_via via)
{
	if (k->kind < 0 || k->gen != p->gen) {
		k->kind = uvs__name_kind(p, k->fn, k->sub, k->cb, k->tag,
					 k->aux, k->slow, via);
		k->gen = p->gen;
	}
	return k->kind;
}

/* ---- the replay ---- */

static struct uvs__thread *uvs__thread(struct uvs_pool *p, pid_t tid)
{
	int i;

	if (p->last_thread < p->nthreads_seen_slots &&
	    p->threads[p->last_thread].tid == tid)
		return &p->threads[p->last_thread];
	for (i = 0; i < p->nthreads_seen_slots; i++)
		if (p->threads[i].tid == tid)
			break;
	if (i == p->nthreads_seen_slots) {
		if (i == UVS_MAX_THREADS)
			i = UVS_MAX_THREADS - 1; /* reuse; never overflow */
		else
			p->nthreads_seen_slots++;
		memset(&p->threads[i], 0, sizeof(p->threads[i]));
		p->threads[i].tid = tid;
		p->threads[i].loop = tid == p->t->pid;
	}
	p->last_thread = i;
	return &p->threads[i];
}

static void uvs__read_nthreads(struct uvs_pool *p)
{
	uint32_t n = 0;

	if (!uvs__locate(p))
		return;
	if (p->nthreads_addr && !uvs_mem_read(p->t->pid, p->nthreads_addr,
					      &n, sizeof(n)) && n < 1024)
		p->pool_threads = n;
}

static void uvs__coarsen(struct uvs_pool *p)
{
	int i;

	for (i = 0; i < p->nticks / 2; i++) {
		struct uvs__tick *a = &p->ticks[2 * i], *b = &p->ticks[2 * i + 1];

		a->submitted += b->submitted;
		a->completed += b->completed;
		a->queue_max = a->queue_max > b->queue_max ? a->queue_max
							   : b->queue_max;
		a->busy_area += b->busy_area;
		a->sat_ns += b->sat_ns;
		a->covered_ns += b->covered_ns;
		p->ticks[i] = *a;
	}
	if (p->nticks & 1)
		p->ticks[i++] = p->ticks[p->nticks - 1];
	memset(&p->ticks[i], 0, (UVS_POOL_TIMELINE - i) * sizeof(p->ticks[0]));
	p->nticks = i;
	p->tick_ns *= 2;
}

static struct uvs__tick *uvs__tick(struct uvs_pool *p, uint64_t ts)
{
	uint64_t i = ts > p->t0 ? (ts - p->t0) / p->tick_ns : 0;

	while (i >= UVS_POOL_TIMELINE) {
		uvs__coarsen(p);
		i = ts > p->t0 ? (ts - p->t0) / p->tick_ns : 0;
	}
	if ((int)i >= p->nticks)
		p->nticks = i + 1;
	return &p->ticks[i];
}

/* Integrates depth and busy threads up to ts, tick by tick. */
static void uvs__advance(struct uvs_pool *p, uint64_t ts)
{
	bool sat = p->depth > 0 && p->pool_threads > 0 &&
		   p->busy >= (uint64_t)p->pool_threads;

	if (!p->on) {
		/* nothing is seen between windows */
		if (ts > p->last_ts)
			p->last_ts = ts;
		return;
	}
	while (p->last_ts < ts) {
		uint64_t edge, dt;
		struct uvs__tick *k = uvs__tick(p, p->last_ts);

		edge = p->t0 + (uint64_t)((k - p->ticks) + 1) * p->tick_ns;
		dt = (edge < ts ? edge : ts) - p->last_ts;
		k->busy_area += (double)p->busy * dt;
		k->covered_ns += dt;
		if (sat)
			k->sat_ns += dt;
		p->area_depth += (double)p->depth * dt;
		p->area_busy += (double)p->busy * dt;
		if (sat)
			p->sat_ns += dt;
		p->last_ts += dt;
	}
}

static void uvs__slowest(struct uvs_pool *p, const struct uvs__task *k,
			 uint64_t done)
{
	struct uvs_pool_task *s;
	double total = (done - k->submit) / 1e6;
	int i, min = 0;

	if (p->nslowest < UVS_POOL_SLOWEST) {
		s = &p->slowest[p->nslowest++];
	} else {
		for (i = 1; i < UVS_POOL_SLOWEST; i++)
			if (p->slowest[i].queue_ms + p->slowest[i].run_ms +
				    p->slowest[i].done_ms <
			    p->slowest[min].queue_ms + p->slowest[min].run_ms +
				    p->slowest[min].done_ms)
				min = i;
		s = &p->slowest[min];
		if (s->queue_ms + s->run_ms + s->done_ms >= total)
			return;
	}
	snprintf(s->kind, sizeof(s->kind), "%s", p->kinds[k->kind].name);
	s->submit_ms = (int64_t)(k->submit - p->t0) / 1e6; /* signed */
	s->queue_ms = (k->start - k->submit) / 1e6;
	s->run_ms = (k->end - k->start) / 1e6;
	s->done_ms = (done - k->end) / 1e6;
	s->worker = k->worker;
}

/*
 * Depth and busy threads: read from memory when the probes went in
 * (state_at), then moved by each edge after that instant. An edge from
 * before it is already in the snapshot and moves nothing.
 */
static void uvs__busy(struct uvs_pool *p, struct uvs__thread *th, bool on,
		      uint64_t ts)
{
	if (on) {
		/* libuv counts a thread between two tasks as not idle: the
		 * snapshot may have counted one that only now starts work */
		if (ts >= p->state_at) {
			if (p->busy_unseen && p->pool_threads &&
			    p->busy >= (uint64_t)p->pool_threads)
				p->busy_unseen--;
			else
				p->busy++;
		}
		th->counted = true;
		return;
	}
	if (th->counted) {
		if (ts >= p->state_at && p->busy)
			p->busy--;
	} else if (!th->loop && p->busy_unseen && ts >= p->state_at) {
		/* a task running since before the snapshot ended */
		p->busy_unseen--;
		if (p->busy)
			p->busy--;
	}
	th->counted = false;
}

static void uvs__dequeue(struct uvs_pool *p, bool slow, uint64_t ts)
{
	if (ts < p->state_at)
		return;
	if (p->depth)
		p->depth--;
	if (slow && p->slow_depth)
		p->slow_depth--;
}

static void uvs__on_submit(struct uvs_pool *p, const struct uvs_pool_event *e)
{
	struct uvs__task *k;
	bool existed;
	int i;

	uvs__thread(p, e->tid)->loop = true;
	k = uvs__insert(&p->tasks, e->w, &existed);
	if (!k)
		return;
	if (existed) {
		/* uv_queue_work's own probe and uv__work_submit's, for one
		 * task: keep the first */
		if (k->state == UVS__QUEUED && e->ts - k->submit < 1000000)
			return;
		if (k->state == UVS__QUEUED)
			uvs__dequeue(p, k->slow, e->ts);
		p->unmatched_done++; /* its done was never seen */
		memset(k, 0, sizeof(*k));
		k->w = e->w;
		k->kind = -1;
	}
	k->submit = e->ts;
	k->state = UVS__QUEUED;
	k->slow = e->kind == UVS_WORK_SLOW_IO;
	k->fn = UVS_PFN_QUEUE;
	for (i = 0; uvs__locate(p) && i < UVS_PFN_N; i++)
		if (e->arg && e->arg == p->fn_addr[i])
			k->fn = i;
	if (k->fn == UVS_PFN_QUEUE)
		k->cb = e->aux[0];
	if (e->ts >= p->state_at) {
		p->depth++;
		if (k->slow)
			p->slow_depth++;
	}
	if (p->depth > p->max_depth)
		p->max_depth = p->depth;
	if (p->slow_depth > p->max_slow_depth)
		p->max_slow_depth = p->slow_depth;
	p->submitted++;
	uvs__tick(p, e->ts)->submitted++;
	if (uvs__tick(p, e->ts)->queue_max < p->depth)
		uvs__tick(p, e->ts)->queue_max = p->depth;
}

static void uvs__on_start(struct uvs_pool *p, const struct uvs_pool_event *e)
{
	struct uvs__thread *th = uvs__thread(p, e->tid);
	struct uvs__task *k = uvs__find(&p->tasks, e->w);

	if (!p->pool_threads)
		uvs__read_nthreads(p);
	th->running = true;
	th->start = e->ts;
	th->w = e->w;
	th->sync = false;
	th->unknown = false;
	if (!k || k->state != UVS__QUEUED) {
		/* No submission: a sync fs call on a loop thread, or a task
		 * submitted before tracing (or this window) began, whose
		 * figures are unknown. */
		if (th->loop && e->fn == UVS_PFN_FS) {
			th->sync = true;
			th->kind = uvs__name_kind(p, e->fn, e->sub, 0, NULL,
						  NULL, false, UVS_VIA_LOOP);
			return;
		}
		th->w = 0;
		th->unknown = true;
		uvs__dequeue(p, false, e->ts);
		uvs__busy(p, th, true, e->ts);
		p->unmatched_start++;
		return;
	}
	th->worker = true;
	k->state = UVS__RUNNING;
	k->start = e->ts;
	k->worker = e->tid;
	k->fn = e->fn;
	k->sub = e->sub;
	if (e->fn == UVS_PFN_QUEUE) {
		k->cb = e->arg;
		memcpy(k->tag, e->tag, sizeof(k->tag));
		k->tag[UVS_POOL_TAG - 1] = '\0';
		k->aux[0] = e->aux[0];
		k->aux[1] = e->aux[1];
	}
	uvs__dequeue(p, k->slow, e->ts);
	uvs__busy(p, th, true, e->ts);
}

static void uvs__on_end(struct uvs_pool *p, const struct uvs_pool_event *e)
{
	struct uvs__thread *th = uvs__thread(p, e->tid);
	struct uvs__task *k;
	bool was = th->running;

	th->running = false;
	if (th->sync) {
		struct uvs_pool_kind *kd = &p->kinds[th->kind];

		th->sync = false;
		if (!was)
			return;
		kd->count++;
		uvs_hist__add(&kd->run_ns, e->ts - th->start);
		p->sync_on_loop++;
		return;
	}
	uvs__busy(p, th, false, e->ts);
	if (!was || th->unknown) {
		th->unknown = false;
		return;
	}
	k = uvs__find(&p->tasks, th->w);
	if (!k || k->state != UVS__RUNNING)
		return;
	k->state = UVS__ENDED;
	k->end = e->ts;
}

static void uvs__on_done(struct uvs_pool *p, const struct uvs_pool_event *e)
{
	struct uvs__task *k = uvs__find(&p->tasks, e->w);
	struct uvs_pool_kind *kd;

	uvs__thread(p, e->tid)->loop = true;
	if (!k) {
		p->unmatched_done++;
		return;
	}
	if (k->state == UVS__QUEUED) {
		/* uv_cancel: done with UV_ECANCELED, never run */
		uvs__dequeue(p, k->slow, e->ts);
		if ((int64_t)e->arg == -UVS_ECANCELED) {
			k->sub = -1; /* never started: its fs op is not read */
			p->cancelled++;
			p->kinds[uvs__task_kind(p, k, UVS_VIA_POOL)].cancelled++;
		} else {
			p->unmatched_done++;
		}
		uvs__remove(&p->tasks, k);
		return;
	}
	if (k->state == UVS__RUNNING) {
		/* its end was lost: count it, take no figures */
		p->unmatched_done++;
		uvs__remove(&p->tasks, k);
		return;
	}
	kd = &p->kinds[uvs__task_kind(p, k, UVS_VIA_POOL)];
	kd->count++;
	uvs_hist__add(&kd->queue_ns, k->start - k->submit);
	uvs_hist__add(&kd->run_ns, k->end - k->start);
	uvs_hist__add(&kd->done_ns, e->ts > k->end ? e->ts - k->end : 0);
	uvs__slowest(p, k, e->ts);
	p->completed++;
	uvs__tick(p, e->ts)->completed++;
	uvs__remove(&p->tasks, k);
}

static void uvs__on_uring(struct uvs_pool *p, const struct uvs_pool_event *e)
{
	struct uvs_pool_kind *kd;
	struct uvs__task *k;
	bool existed;

	if (e->type == UVS_PEV_URING_SUB) {
		k = uvs__insert(&p->uring, e->w, &existed);
		if (!k)
			return;
		k->submit = e->ts;
		k->fn = UVS_PFN_FS;
		k->sub = e->sub;
		return;
	}
	k = uvs__find(&p->uring, e->w);
	if (!k)
		return;
	kd = &p->kinds[uvs__task_kind(p, k, UVS_VIA_IO_URING)];
	kd->count++;
	uvs_hist__add(&kd->run_ns, e->ts - k->submit);
	p->uring_ops++;
	uvs__remove(&p->uring, k);
}

static int uvs__on_event(void *ctx, void *data, size_t len)
{
	struct uvs_pool *p = ctx;
	const struct uvs_pool_event *e = data;

	if (len < sizeof(*e))
		return 0;
	/* Records from different CPUs may be out of order by the time it
	 * takes to reserve one; the integrals simply do not go back. */
	if (e->ts > p->last_ts)
		uvs__advance(p, e->ts);
	switch (e->type) {
	case UVS_PEV_SUBMIT:
		uvs__on_submit(p, e);
		break;
	case UVS_PEV_START:
		uvs__on_start(p, e);
		break;
	case UVS_PEV_END:
		uvs__on_end(p, e);
		break;
	case UVS_PEV_DONE:
		uvs__on_done(p, e);
		break;
	default:
		uvs__on_uring(p, e);
		break;
	}
	return 0;
}

/* ---- probes ---- */

/* True if the code of caller calls or jumps to callee (rel32): then
 * callee's own probe sees the calls made through caller. */
static bool uvs__calls(const struct uvs_elf *elf, const struct uvs_sym *caller,
		       const struct uvs_sym *callee)
{
	unsigned char buf[4096];
	uint64_t n = caller->size < sizeof(buf) ? caller->size : sizeof(buf);
	uint64_t i;

	if (!n || uvs_elf__read(elf, caller->addr, buf, n))
		return false;
	for (i = 0; i + 5 <= n; i++) {
		int32_t rel;

		if (buf[i] != 0xe8 && buf[i] != 0xe9)
			continue;
		memcpy(&rel, buf + i + 1, 4);
		if (caller->addr + i + 5 + rel == callee->addr)
			return true;
	}
	return false;
}

static int uvs__site(struct uvs_pool *p, const struct uvs_sym *s,
		     uint64_t cookie, bool ret, struct bpf_program *prog)
{
	struct uvs_probe_site *x;
	uint64_t off;

	if (uvs_elf__vaddr_to_off(p->t->uv_elf, s->addr, &off))
		return uvs_seterr(-ENOENT, "%s: no file offset for %s",
				  p->t->uv_file, s->name);
	x = uvs_probes__add(&p->pr, off, ret);
	if (!x)
		return -E2BIG;
	x->addr = s->addr;
	x->cookie = cookie;
	/* a perf uprobe's program knows its role: the cookie is the
	 * function (done sites are 32 + the function in a multi link) */
	x->one_cookie = cookie >= 32 ? cookie - 32 : cookie;
	x->prog = prog;
	snprintf(x->what, sizeof(x->what), "%s", s->name);
	return 0;
}

static int uvs__plan(struct uvs_pool *p)
{
	static const char *const names[] = {
		"uv__fs_work", "uv__queue_work", "uv__getaddrinfo_work",
		"uv__getnameinfo_work", "uv__random_work", "uv__fs_done",
		"uv__queue_done", "uv__getaddrinfo_done", "uv__getnameinfo_done",
		"uv__random_done", "uv__work_submit", "uv_queue_work", "nthreads",
		"wq", "slow_io_pending_wq", "idle_threads", "exit_message",
		"run_slow_work_message",
	};
	const struct uvs_sym *s[18];
	struct pool_bpf *k = p->skel;
	int i, err = 0;

	uvs_elf__lookup(p->t->uv_elf, names, 18, s);
	if (s[12] && s[12]->type == STT_OBJECT)
		p->nthreads_sym = s[12]->addr;
	p->wq_sym = s[13] ? s[13]->addr : 0;
	p->slow_wq_sym = s[14] ? s[14]->addr : 0;
	p->idle_sym = s[15] ? s[15]->addr : 0;
	p->marker_sym[0] = s[16] ? s[16]->addr : 0;
	p->marker_sym[1] = s[17] ? s[17]->addr : 0;
	if (p->opts.sampled) {
		if (!p->nthreads_sym || !p->wq_sym || !p->idle_sym)
			return uvs_seterr(-ENOENT, "uvscope pool needs libuv's "
					  "threadpool statics (nthreads, wq, "
					  "idle_threads), and %s has them "
					  "stripped", p->t->uv_file);
		return 0; /* read from memory: no probe */
	}
	if (p->t->tier != UVS_TIER_SYMBOLS || (!s[10] && !s[11]) || !s[0] ||
	    !s[5])
		return uvs_seterr(-ENOENT, "uvscope pool needs libuv's internal "
				  "symbols (uv__work_submit, uv__fs_work, "
				  "uv__fs_done...), and %s has them stripped",
				  p->t->uv_file);
	if (s[10])
		err = uvs__site(p, s[10], UVS_PFN_SUBMIT, false,
				k->progs.pool_submit);
	/* Where uv__work_submit is inlined into uv_queue_work (Node), the
	 * latter is probed for the submissions it makes. */
	if (!err && s[11] && s[11]->type == STT_FUNC &&
	    (!s[10] || !uvs__calls(p->t->uv_elf, s[11], s[10]))) {
		err = uvs__site(p, s[11], UVS_PFN_QUEUE_WORK, false,
				k->progs.pool_submit);
		p->queue_work_probed = true;
	}
	for (i = 0; !err && i < UVS_PFN_N; i++) {
		if (!s[i] || s[i]->type != STT_FUNC)
			continue;
		p->fn_sym[i] = s[i]->addr;
		err = uvs__site(p, s[i], i, false, k->progs.pool_start);
		if (!err)
			err = uvs__site(p, s[i], i, true, k->progs.pool_end);
		if (!err && s[5 + i] && s[5 + i]->type == STT_FUNC)
			err = uvs__site(p, s[5 + i], 32 + i, false,
					k->progs.pool_done);
	}
	return err;
}

/* Counts a queue's tasks by walking it in the target's memory while the
 * target runs on: -1 when the walk did not come back to the head, because the
 * queue changed under it (a worker took the node the walk stood on and moved
 * it to the loop's done queue, say) or a cycle without the head showed; 0 <=
 * a count that went from the head back to it with every node's prev link
 * matching. */
static int uvs__walk_queue(struct uvs_pool *p, uint64_t head)
{
	uint64_t node, prev = head, back, mark = head;
	int n = 0, steps = 0, lap = 1;

	if (uvs_mem_read(p->t->pid, head, &node, sizeof(node)))
		return -1;
	if (!node)
		return 0; /* never initialised: the pool has not started */
	while (node != head) {
		if (!node || node == mark || steps >= 100000 ||
		    uvs_mem_read(p->t->pid, node + 8, &back, sizeof(back)) ||
		    back != prev)
			return -1;
		/* libuv's own markers are not tasks */
		if (node != p->t->uv_bias + p->marker_sym[0] &&
		    node != p->t->uv_bias + p->marker_sym[1])
			n++;
		/* Brent: a node seen again before the head is a cycle */
		if (++steps == lap) {
			mark = node;
			lap *= 2;
			steps = 0;
		}
		prev = node;
		if (uvs_mem_read(p->t->pid, node, &node, sizeof(node)))
			return -1;
	}
	return n;
}

/* What the pool holds now (as a window opens, or at each sample without
 * eBPF), read from libuv's statics: tasks waiting in its queues, and
 * threads not idle. A walk the queue moved under is taken again, up to
 * four times; after that the depth read before stands. */
static void uvs__pool_state(struct uvs_pool *p)
{
	uint64_t heads[2] = { p->wq_sym, p->slow_wq_sym };
	int old[2] = { p->depth - p->slow_depth, p->slow_depth };
	int got[2] = { 0, 0 };
	uint32_t idle = 0;
	int q, try;

	p->depth = p->slow_depth = p->busy = p->busy_unseen = 0;
	if (!uvs__locate(p))
		return;
	uvs__read_nthreads(p);
	if (p->idle_sym && p->pool_threads &&
	    !uvs_mem_read(p->t->pid, p->t->uv_bias + p->idle_sym, &idle,
			  sizeof(idle)) &&
	    idle <= (uint32_t)p->pool_threads)
		p->busy = p->busy_unseen = p->pool_threads - idle;
	for (q = 0; q < 2 && p->w_wq >= 0; q++) {
		if (!heads[q])
			continue;
		for (try = 0; try < 4; try++) {
			got[q] = uvs__walk_queue(p, p->t->uv_bias + heads[q]);
			if (got[q] >= 0)
				break;
		}
		if (got[q] < 0) {
			/* torn four times: keep what the last read saw */
			got[q] = old[q];
			p->torn++;
		}
	}
	p->depth = got[0] + got[1];
	p->slow_depth = got[1];
}

static void uvs__detach(struct uvs_pool *p)
{
	struct uvs_win *bw = p->pr.win.bw;
	uint64_t now, end;
	size_t i;
	int j;

	if (!p->on)
		return;
	uvs_probes__off(&p->pr);
	uvs_uprobe__settle(1000);
	/* what the window saw, up to its end (where its probes ended it on
	 * the budget, or now), then forget what it left unfinished */
	now = uvs_now_ns();
	end = bw->ended && bw->ended_ns > p->last_ts && bw->ended_ns < now
		      ? bw->ended_ns : now;
	ring_buffer__consume(p->rb);
	uvs__advance(p, end);
	for (i = 0; i < p->tasks.cap; i++)
		if (p->tasks.t[i].w) {
			p->cut++;
			p->tasks.t[i].w = 0;
		}
	p->tasks.n = 0;
	for (j = 0; j < p->nthreads_seen_slots; j++) {
		p->threads[j].running = false;
		p->threads[j].counted = false;
		p->threads[j].unknown = false;
		p->threads[j].sync = false;
	}
	p->depth = p->slow_depth = p->busy = p->busy_unseen = 0;
	p->on = false;
	uvs__advance(p, now); /* nothing seen from its end to now */
}

static int uvs__attach(struct uvs_pool *p)
{
	int err;

	if (p->on)
		return 0;
	p->last_ts = uvs_now_ns();
	err = uvs_probes__on(&p->pr);
	if (err)
		return err;
	p->on = true;
	/* with the probes in place: what happened before this instant is in
	 * the snapshot, what happens after it in the events */
	uvs__pool_state(p);
	p->state_at = uvs_now_ns();
	return 0;
}

static bool uvs__has_io_uring(pid_t pid)
{
	char path[64], link[64];
	struct dirent *d;
	bool found = false;
	DIR *dir;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return false;
	while (!found && (d = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%.16s", pid, d->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = !strcmp(link, "anon_inode:[io_uring]");
		}
	}
	closedir(dir);
	return found;
}

/* A ThreadPoolWork in Node 18-24: { vptr, env_, uv_work_t work_req_,
 * const char *type_ }; Node-API work (uvimpl::Work) keeps its execute
 * callback 0x18 bytes after type_. Checked in the disassembly of the
 * work_cb lambda and in gdb, in each of the four official builds. */
static void uvs__node_tags(struct uvs_pool *p)
{
	const struct uvs_sym *s;
	long sz = uvs_layout__size(p->ly, "uv_work_t");

	if (strcmp(p->t->runtime, "node") || sz <= 0)
		return;
	s = uvs_elf__find(p->t->uv_elf, "_ZZN4node14ThreadPoolWork12"
			  "ScheduleWorkEvENUlP9uv_work_sE_4_FUNES2_");
	if (s && s->type == STT_FUNC)
		p->tag_sym = s->addr;
	p->skel->rodata->tag_str_off = sz;
	p->skel->rodata->tag_aux_off[0] = -16;
	p->skel->rodata->tag_aux_off[1] = sz + 0x18;
}

/* The next read of the pool's state: jittered (0.5 to 1.5 periods), so
 * that a periodic load is not always seen at the same point of its
 * cycle. */
static void uvs__next_sample(struct uvs_pool *p, uint64_t now)
{
	uint64_t base = 1e9 / p->opts.sample_hz;

	p->next_sample = now + base / 2 + (uint64_t)rand() % base;
}

/* One sample: the state since the last one is integrated, then read. */
static void uvs__sample(struct uvs_pool *p)
{
	uint64_t now = uvs_now_ns();
	struct uvs__tick *k;

	uvs__advance(p, now);
	uvs__pool_state(p);
	p->samples++;
	if (p->depth > p->max_depth)
		p->max_depth = p->depth;
	if (p->slow_depth > p->max_slow_depth)
		p->max_slow_depth = p->slow_depth;
	k = uvs__tick(p, now);
	if (k->queue_max < p->depth)
		k->queue_max = p->depth;
}

/* Without eBPF: the pool's queues and idle threads read from memory at a
 * rate (process_vm_readv, nothing stops): queue depth, busy threads and
 * saturation over time; no per-task figures. */
static int uvs__open_sampled(struct uvs_pool *p, struct uvs_pool **out)
{
	int err;

	if (!p->opts.sample_hz)
		p->opts.sample_hz = 100;
	err = uvs_layout__load(p->t->libuv_version, &p->ly);
	if (!err) {
		p->w_wq = uvs_layout__off(p->ly, "struct uv__work", "wq");
		err = uvs__plan(p);
	}
	if (err) {
		uvs_pool__close(p);
		return err;
	}
	p->t0 = p->last_ts = p->period_start = uvs_now_ns();
	p->state_at = 0;
	p->on = true; /* the integrals run all the time */
	uvs_window__init(&p->pr.win, 1, true, p->t0, NULL);
	uvs_window__switched(&p->pr.win, true, p->t0);
	uvs__sample(p);
	uvs__next_sample(p, p->t0);
	*out = p;
	return 0;
}

int uvs_pool__open(struct uvs_target *t, const struct uvs_pool_opts *opts,
		   struct uvs_pool **out)
{
	struct uvs_features feat;
	struct uvs_pool *p;
	struct pool_bpf *skel;
	long fs_work, fs_type, work_cb, work_req, req_type, uv_fs;
	int err;

	*out = NULL;
	uvs_features__probe(&feat);
	if (!uvs_features__ebpf_ok(&feat) && !(opts && opts->sampled))
		return uvs_seterr(-EPERM, "eBPF unavailable: %s", feat.why_not);
	p = calloc(1, sizeof(*p));
	if (!p)
		return uvs_seterr(-ENOMEM, "out of memory");
	p->kinds = calloc(UVS_POOL_KINDS, sizeof(*p->kinds));
	if (!p->kinds) {
		free(p);
		return uvs_seterr(-ENOMEM, "out of memory");
	}
	p->t = t;
	uvs_probes__init(&p->pr, t->uv_open, t->pid);
	if (opts)
		memcpy(&p->opts, opts,
		       opts->sz < sizeof(p->opts) ? opts->sz : sizeof(p->opts));
	if (p->opts.tick_s <= 0)
		p->opts.tick_s = 1;
	if (!p->opts.probe_budget)
		p->opts.probe_budget = 2000;
	p->tick_ns = p->opts.tick_s * 1e9;
	if (p->opts.sampled)
		return uvs__open_sampled(p, out);
	if (t->tier != UVS_TIER_SYMBOLS) {
		err = uvs_seterr(-ENOENT, "uvscope pool needs libuv's internal "
				 "symbols (uv__work_submit, uv__fs_work, "
				 "uv__fs_done...), and %s has them stripped",
				 t->uv_file);
		goto fail;
	}
	err = uvs_layout__load(t->libuv_version, &p->ly);
	if (err)
		goto fail;
	fs_work = uvs_layout__off(p->ly, "uv_fs_t", "work_req");
	fs_type = uvs_layout__off(p->ly, "uv_fs_t", "fs_type");
	work_cb = uvs_layout__off(p->ly, "uv_work_t", "work_cb");
	work_req = uvs_layout__off(p->ly, "uv_work_t", "work_req");
	req_type = uvs_layout__off(p->ly, "uv_req_t", "type");
	p->w_wq = uvs_layout__off(p->ly, "struct uv__work", "wq");
	uv_fs = uvs_layout__enum(p->ly, "uv_req_type", "UV_FS");
	if (fs_work < 0 || fs_type < 0 || work_cb < 0 || work_req < 0 ||
	    req_type < 0 || uv_fs < 0) {
		err = uvs_seterr(-EINVAL, "%s lacks the uv_fs_t and uv_work_t "
				 "fields uvscope pool reads",
				 uvs_layout__path(p->ly));
		goto fail;
	}
	skel = pool_bpf__open();
	if (!skel) {
		err = uvs_seterr(-errno, "cannot open BPF object: %s",
				 strerror(errno));
		goto fail;
	}
	p->skel = skel;
	skel->rodata->targ_tgid = t->pid;
	skel->rodata->fs_type_off = fs_type - fs_work;
	skel->rodata->work_cb_off = work_cb - work_req;
	skel->rodata->req_from_w = work_req;
	skel->rodata->req_type_off = req_type;
	skel->rodata->req_fs_type_off = fs_type;
	skel->rodata->uv_fs_req_type = uv_fs;
	uvs__node_tags(p);
	err = uvs__plan(p);
	if (err)
		goto fail;
	if (feat.uprobe_multi) {
		bpf_program__set_expected_attach_type(
			skel->progs.pool_multi_entry, UVS_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(
			skel->progs.pool_multi_return, UVS_TRACE_UPROBE_MULTI);
	} else {
		bpf_program__set_autoload(skel->progs.pool_multi_entry, false);
		bpf_program__set_autoload(skel->progs.pool_multi_return, false);
	}
	err = pool_bpf__load(skel);
	if (err) {
		err = uvs_seterr(err, "cannot load BPF programs: %s (run with "
				 "-v for the verifier log)", strerror(-err));
		goto fail;
	}
	p->rb = ring_buffer__new(bpf_map__fd(skel->maps.events),
				 uvs__on_event, p, NULL);
	if (!p->rb) {
		err = uvs_seterr(-errno, "cannot open the ring buffer: %s",
				 strerror(errno));
		goto fail;
	}
	/* io_uring's tracepoints: fs ops libuv sends there (optional) */
	uvs_uprobe__start(); /* before the tracepoints, as loop does */
	skel->links.uring_submit =
		bpf_program__attach(skel->progs.uring_submit);
	skel->links.uring_complete =
		bpf_program__attach(skel->progs.uring_complete);
	if (!skel->links.uring_submit || !skel->links.uring_complete)
		uvs_debug("io_uring tracepoints unavailable: io_uring fs ops "
			  "are not counted");
	p->t0 = p->last_ts = p->period_start = uvs_now_ns();
	uvs__read_nthreads(p); /* locates libuv too, where it is mapped */
	err = uvs_probes__ready(&p->pr,
				feat.uprobe_multi ? skel->progs.pool_multi_entry
						  : NULL,
				feat.uprobe_multi ? skel->progs.pool_multi_return
						  : NULL,
				&skel->bss->win, bpf_map__fd(skel->maps.win_rb),
				p->opts.probe_budget, p->opts.exact);
	if (!err)
		err = uvs__attach(p);
	if (err)
		goto fail;
	*out = p;
	return 0;
fail:
	uvs_pool__close(p);
	return err;
}

int uvs_pool__poll(struct uvs_pool *p, int timeout_ms)
{
	int n;

	if (p->opts.sampled) {
		uint64_t now = uvs_now_ns();
		uint64_t end = now + timeout_ms * 1000000ull;

		for (;;) {
			uint64_t until = p->next_sample < end ? p->next_sample
							      : end;
			struct timespec ts;

			if (now < until) {
				ts.tv_sec = (until - now) / 1000000000ull;
				ts.tv_nsec = (until - now) % 1000000000ull;
				if (nanosleep(&ts, NULL))
					break; /* a signal: report now */
				now = uvs_now_ns();
			}
			if (now >= p->next_sample) {
				uvs__sample(p);
				uvs__next_sample(p, now);
			}
			if (now >= end)
				break;
		}
		return 0;
	}
	uvs_window__sleep(&p->pr.win, timeout_ms);
	uvs__locate(p);
	n = ring_buffer__consume(p->rb);
	if (n < 0 && n != -EINTR)
		return uvs_seterr(n, "reading the ring buffer: %s",
				  strerror(-n));
	switch (uvs_probes__step(&p->pr)) {
	case UVS_WINDOW_ON:
		return uvs__attach(p);
	case UVS_WINDOW_OFF:
		uvs__detach(p);
		return 0;
	default:
		return 0;
	}
}

uint64_t uvs_pool__due_ns(const struct uvs_pool *p)
{
	return p->opts.sampled ? p->next_sample : 0;
}

static int uvs__by_total(const void *a, const void *b)
{
	const struct uvs_pool_task *x = a, *y = b;
	double tx = x->queue_ms + x->run_ms + x->done_ms;
	double ty = y->queue_ms + y->run_ms + y->done_ms;

	return tx < ty ? 1 : tx > ty ? -1 : 0;
}

int uvs_pool__timeline(struct uvs_pool *p, struct uvs_pool_tick *out, int max)
{
	uint64_t now = uvs_now_ns();
	int j;

	if (p->rb)
		ring_buffer__consume(p->rb);
	uvs__advance(p, now);
	for (j = 0; j < p->nticks && j < max; j++) {
		const struct uvs__tick *k = &p->ticks[j];
		struct uvs_pool_tick *d = &out[j];
		uint64_t start = p->t0 + (uint64_t)j * p->tick_ns;
		uint64_t len = j == p->nticks - 1 && now > start &&
				       now - start < p->tick_ns ?
				       now - start : p->tick_ns;

		d->t_s = (start - p->t0) / 1e9;
		d->len_s = len / 1e9;
		d->submitted = k->submitted;
		d->completed = k->completed;
		d->queue_max = k->queue_max;
		d->covered = len ? (double)k->covered_ns / len : 0;
		if (d->covered > 1)
			d->covered = 1;
		d->busy_mean = k->covered_ns ? k->busy_area / k->covered_ns : 0;
		d->saturated = k->covered_ns ? k->sat_ns / k->covered_ns : 0;
	}
	return j;
}

void uvs_pool__collect(struct uvs_pool *p, struct uvs_report *r)
{
	struct uvs_pool_report *o = &r->pool;
	uint64_t now = uvs_now_ns(), span, oldest = 0, covered;
	size_t i;
	int j, workers = 0;

	if (p->rb)
		ring_buffer__consume(p->rb);
	uvs__advance(p, now);
	uvs__read_nthreads(p);
	memset(o, 0, sizeof(*o));
	o->sampled_hz = p->opts.sampled ? p->opts.sample_hz : 0;
	o->samples = p->samples;
	o->torn = p->torn;
	p->samples = 0;
	p->torn = 0;
	r->has_pool = true;
	if (p->skel) {
		r->lost_events += p->skel->bss->lost - p->lost_seen;
		p->lost_seen = p->skel->bss->lost;
	}
	o->threads = p->pool_threads;
	o->slow_io_limit = p->pool_threads ? (p->pool_threads + 1) / 2 : 0;
	for (j = 0; j < p->nthreads_seen_slots; j++)
		workers += p->threads[j].worker;
	o->threads_seen = workers;
	o->submitted = p->submitted;
	o->completed = p->completed;
	o->cancelled = p->cancelled;
	for (i = 0; i < p->tasks.cap; i++) {
		const struct uvs__task *k = &p->tasks.t[i];

		if (!k->w)
			continue;
		if (k->state == UVS__QUEUED) {
			o->queued_now++;
			if (!oldest || k->submit < oldest)
				oldest = k->submit;
		} else if (k->state == UVS__RUNNING) {
			o->running_now++;
		}
	}
	o->oldest_queued_ms = oldest && now > oldest ? (now - oldest) / 1e6 : 0;
	o->max_queue_depth = p->max_depth;
	o->max_slow_queue_depth = p->max_slow_depth;
	span = now > p->period_start ? now - p->period_start : 1;
	covered = uvs_window__covered(&p->pr.win, now) - p->covered_at_start;
	o->traced_share = (double)covered / span;
	if (o->traced_share > 1)
		o->traced_share = 1;
	o->windows = p->pr.win.windows - p->windows_at_start;
	o->windowed = !p->pr.win.always &&
		      (p->pr.win.windows > 1 || !p->on);
	o->probe_budget = p->pr.win.always ? 0 : p->opts.probe_budget;
	o->cut = p->cut;
	if (covered) {
		o->mean_queue_depth = p->area_depth / covered;
		o->mean_busy = p->area_busy / covered;
		o->saturation = p->sat_ns / covered;
	}
	o->unmatched_start = p->unmatched_start;
	o->unmatched_done = p->unmatched_done;
	o->sync_on_loop = p->sync_on_loop;
	o->io_uring_ops = p->uring_ops;
	o->io_uring = uvs__has_io_uring(p->t->pid);
	o->nkinds = p->nkinds;
	memcpy(o->kinds, p->kinds, p->nkinds * sizeof(*o->kinds));
	o->kinds_truncated = p->kinds_truncated;
	o->nslowest = p->nslowest;
	memcpy(o->slowest, p->slowest, sizeof(o->slowest));
	/* submit times from the report's start, not this source's opening:
	 * one clock for every source of a report */
	if (r->start_monotonic_s > 0)
		for (i = 0; i < (size_t)o->nslowest; i++) {
			double *at = &o->slowest[i].submit_ms;

			*at += p->t0 / 1e6 - r->start_monotonic_s * 1e3;
			/* submitted in the last moments of the attach:
			 * as tracing began */
			if (*at < 0)
				*at = 0;
		}
	qsort(o->slowest, o->nslowest, sizeof(o->slowest[0]), uvs__by_total);
	o->ntimeline = uvs_pool__timeline(p, o->timeline, UVS_POOL_TIMELINE);
	/* afresh for the next report; tasks in flight carry over */
	p->nkinds = 0;
	p->kinds_truncated = false;
	p->nslowest = 0;
	p->submitted = p->completed = p->cancelled = 0;
	p->max_depth = p->depth;
	p->max_slow_depth = p->slow_depth;
	p->unmatched_start = p->unmatched_done = p->sync_on_loop = 0;
	p->uring_ops = 0;
	p->area_depth = p->area_busy = p->sat_ns = 0;
	p->cut = 0;
	p->period_start = now;
	p->covered_at_start = uvs_window__covered(&p->pr.win, now);
	p->windows_at_start = p->pr.win.windows;
	p->gen++; /* tasks in flight name their kind again */
}

void uvs_pool__describe(const struct uvs_pool *p, FILE *out)
{
	int i;

	fprintf(out, "uvscope: libuv in %s, pool size %d%s\n", p->t->uv_file,
		p->pool_threads, p->pool_threads ? "" : " (not started yet)");
	if (p->opts.sampled) {
		fprintf(out, "uvscope: no eBPF: the pool's queues and idle "
			"threads read from memory at %.0f Hz\n",
			p->opts.sample_hz);
		return;
	}
	for (i = 0; i < p->pr.n; i++)
		fprintf(out, "uvscope: %s at %s (%#llx)\n",
			p->pr.site[i].ret ? "uretprobe" : "uprobe",
			p->pr.site[i].what,
			(unsigned long long)p->pr.site[i].off);
	if (p->queue_work_probed)
		fprintf(out, "uvscope: uv_queue_work probed for its submissions "
			"(uv__work_submit is inlined into it)\n");
	fprintf(out, "uvscope: probes as %s; io_uring tracepoints %s\n",
		p->pr.multi ? "two uprobe_multi links"
			    : "one perf uprobe per site",
		p->skel->links.uring_submit ? "on" : "unavailable");
	if (p->opts.exact)
		fprintf(out, "uvscope: probes on all the time (--exact)\n");
	else
		fprintf(out, "uvscope: probes within %llu hits/s (about 5 a "
			"task); windowed over that\n",
			(unsigned long long)p->opts.probe_budget);
}

void uvs_pool__close(struct uvs_pool *p)
{
	struct uvs_reaper *r = uvs_reaper_shared();

	if (!p)
		return;
	uvs_probes__close(&p->pr);
	if (p->skel)
		uvs_reap_skel(r, p->skel->skeleton);
	ring_buffer__free(p->rb);
	pool_bpf__destroy(p->skel);
	uvs_syms__close(p->syms);
	uvs_layout__close(p->ly);
	free(p->tasks.t);
	free(p->uring.t);
	free(p->kinds);
	free(p);
}
