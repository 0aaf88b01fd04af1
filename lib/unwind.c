// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Remote stack unwinding for the ptrace backend: libunwind-ptrace's DWARF
 * CFI unwinder (so frames built without frame pointers unwind too; where
 * there is no CFI, as in JIT code, libunwind follows the frame-pointer
 * chain), with accessors of our own that make a sample cheap:
 *
 * - registers come from one PTRACE_GETREGS snapshot, not one
 *   PTRACE_PEEKUSER per register;
 * - memory is read a page at a time with process_vm_readv and kept for
 *   the rest of the unwind, not one PTRACE_PEEKDATA per word;
 * - the address space caches each IP's unwind rule (UNW_CACHE_GLOBAL, a
 *   large cache), so a frame seen before costs no lookup in its module's
 *   .eh_frame_hdr; _UPT_find_proc_info keeps the last module's image.
 *
 * Nothing is ever written: register and memory writes are refused.
 */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <libunwind-ptrace.h>
#include "uvscope.h"
#include "ptrace.h"

#define UVS__PAGES 512 /* 2 MiB: read-only pages stay across samples */
#define UVS__PAGE  4096ull
/* The stack copied at a stop: what the last unwinds read above sp, and
 * a margin, within these bounds (pages). */
#define UVS__SNAP_MIN 4
#define UVS__SNAP_MAX 64
#define UVS__SNAP_MARGIN (8 * 1024)

struct uvs__page {
	uint64_t addr; /* page address; 0 = empty */
	uint64_t gen;
	bool bad; /* unreadable: reads fail fast */
	bool ro;  /* in a read-only file mapping: valid across unwinds */
	unsigned char data[UVS__PAGE];
};

/* libunwind's search of an .eh_frame_hdr table (exported, not declared) */
int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip,
				       unw_dyn_info_t *di, unw_proc_info_t *pi,
				       int need_unwind_info, void *arg);

struct uvs__xmap {
	uint64_t lo, hi;
	uint64_t base; /* start of the module's mapping at file offset 0 */
	int state;     /* 0: not looked at, 1: di is its table, -1: none */
	unw_dyn_info_t di;
};

struct uvs_unwind {
	pid_t pid;
	/* executable file mappings: an IP elsewhere (JIT code) has no CFI
	 * to look for, and libunwind would read /proc/PID/maps to say so */
	struct uvs__xmap *xmaps;
	int nxmaps, capxmaps;
	struct uvs__xmap *romaps; /* read-only file mappings (lo, hi) */
	int nromaps, capromaps;
	struct uvs__xmap *jmaps; /* executable, no file: JIT code, vDSO */
	int njmaps, capjmaps;
	uint64_t mod_base; /* of the file being listed */
	char mod_path[512];
	uint64_t xmaps_at;
	uint64_t vdso_lo, vdso_hi;
	unw_dyn_info_t vdso_di; /* its .eh_frame_hdr, in the target */
	bool vdso_ok;
	unw_addr_space_t as;
	void *upt;
	unw_accessors_t acc;
	const struct user_regs_struct *regs; /* of the unwind in progress */
	uint64_t gen; /* bumps per unwind: pages expire */
	bool snapped;	   /* the stack of the next unwind was copied */
	uint64_t snap_sp;  /* the sp it was copied from */
	uint64_t span;	   /* bytes above sp the last unwind read */
	uint64_t span_hint; /* what the next copy takes (decays) */
	struct uvs__page pages[UVS__PAGES];
	uint64_t reads;	  /* process_vm_readv calls */
	uint64_t lookups; /* unwind-info lookups (rule cache misses) */
};

/* libunwind hands the accessors the argument of whichever layer called
 * them: ours from unw_init_remote, the UPT's from inside
 * _UPT_find_proc_info. Unwinds are one at a time, so the one in progress
 * is kept here. */
static struct uvs_unwind *uvs__cur;

static int uvs__push(struct uvs__xmap **a, int *n, int *cap,
		     const struct uvs_map_line *m, uint64_t base)
{
	struct uvs__xmap *x;

	if (*n == *cap) {
		int c = *cap ? *cap * 2 : 64;

		x = realloc(*a, c * sizeof(*x));
		if (!x)
			return -ENOMEM;
		*a = x;
		*cap = c;
	}
	x = &(*a)[(*n)++];
	memset(x, 0, sizeof(*x));
	x->lo = m->start;
	x->hi = m->end;
	x->base = base;
	return 0;
}

static int uvs__add_xmap(const struct uvs_map_line *m, void *ctx)
{
	struct uvs_unwind *u = ctx;

	if (m->path[0] != '/')
		return m->perms[2] == 'x' ? uvs__push(&u->jmaps, &u->njmaps,
						      &u->capjmaps, m, 0)
					  : 0;
	/* a file's mappings follow the one at offset 0 (its ELF header) */
	if (m->off == 0 || strcmp(m->path, u->mod_path)) {
		u->mod_base = m->off == 0 ? m->start : 0;
		snprintf(u->mod_path, sizeof(u->mod_path), "%s", m->path);
	}
	if (m->perms[1] != 'w' &&
	    uvs__push(&u->romaps, &u->nromaps, &u->capromaps, m, 0))
		return -ENOMEM;
	if (m->perms[2] != 'x')
		return 0;
	return uvs__push(&u->xmaps, &u->nxmaps, &u->capxmaps, m, u->mod_base);
}

static void uvs__read_xmaps(struct uvs_unwind *u)
{
	int i;

	/* what stays cached must still be mapped */
	for (i = 0; i < UVS__PAGES; i++)
		u->pages[i].ro = false;
	u->nxmaps = 0;
	u->nromaps = 0;
	u->njmaps = 0;
	u->mod_path[0] = '\0';
	u->xmaps_at = uvs_now_ns();
	uvs_proc_maps(u->pid, uvs__add_xmap, u);
}

static struct uvs__xmap *uvs__find(struct uvs__xmap *a, int n, uint64_t ip)
{
	int lo = 0, hi = n;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (ip < a[mid].lo)
			hi = mid;
		else if (ip >= a[mid].hi)
			lo = mid + 1;
		else
			return &a[mid];
	}
	return NULL;
}

/* The executable file mapping holding ip, or NULL (JIT code). An ip in
 * no known mapping was mapped since (a young process, dlopen, a new JIT
 * region): the maps are read again, at most every 10 ms. */
static struct uvs__xmap *uvs__file_code(struct uvs_unwind *u, uint64_t ip)
{
	struct uvs__xmap *x = uvs__find(u->xmaps, u->nxmaps, ip);

	if (x || uvs__find(u->jmaps, u->njmaps, ip) ||
	    uvs_now_ns() - u->xmaps_at < 10000000ull)
		return x;
	uvs__read_xmaps(u);
	return uvs__find(u->xmaps, u->nxmaps, ip);
}

static int uvs__eh_table(struct uvs_unwind *u, uint64_t base, uint64_t lo,
			 uint64_t hi, unw_dyn_info_t *di);

static int uvs__find_proc_info(unw_addr_space_t as, unw_word_t ip,
			       unw_proc_info_t *pi, int need, void *arg)
{
	struct uvs_unwind *u = uvs__cur;
	struct uvs__xmap *x;

	(void)arg;
	u->lookups++;
	/* The vDSO has no file to open: its table is read in place. */
	if (u->vdso_ok && ip >= u->vdso_lo && ip < u->vdso_hi)
		return _Ux86_64_dwarf_search_unwind_table(as, ip, &u->vdso_di,
							  pi, need, u);
	x = uvs__file_code(u, ip);
	if (!x)
		return -UNW_ENOINFO; /* JIT: the frame-pointer chain */
	/* The module's .eh_frame_hdr is read where the target has it
	 * mapped, through the page cache: no file to open and map, as
	 * _UPT_find_proc_info would for each change of module. */
	if (!x->state)
		x->state =
		    x->base && !uvs__eh_table(u, x->base, x->lo, x->hi, &x->di)
			? 1
			: -1;
	if (x->state > 0)
		return _Ux86_64_dwarf_search_unwind_table(as, ip, &x->di, pi,
							  need, u);
	return _UPT_find_proc_info(as, ip, pi, need, u->upt);
}

static void uvs__put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi,
				 void *arg)
{
	(void)arg;
	_UPT_put_unwind_info(as, pi, uvs__cur->upt);
}

/* Dynamic unwind info (_U_dyn_register) is used by no runtime we trace;
 * looking for it would scan every module on each miss. */
static int uvs__get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr,
				       void *arg)
{
	(void)as;
	(void)addr;
	(void)arg;
	return -UNW_ENOINFO;
}

static struct uvs__page *uvs__page(struct uvs_unwind *u, uint64_t page)
{
	struct uvs__page *p = &u->pages[(page / UVS__PAGE) % UVS__PAGES];
	struct iovec l, r;

	if (p->addr == page && (p->gen == u->gen || p->ro))
		return p->bad ? NULL : p;
	p->addr = page;
	p->gen = u->gen;
	p->ro = uvs__find(u->romaps, u->nromaps, page) != NULL;
	l.iov_base = p->data;
	l.iov_len = UVS__PAGE;
	r.iov_base = (void *)(uintptr_t)page;
	r.iov_len = UVS__PAGE;
	u->reads++;
	p->bad =
	    process_vm_readv(u->pid, &l, 1, &r, 1, 0) != (ssize_t)UVS__PAGE;
	return p->bad ? NULL : p;
}

int uvs_unwind__read(struct uvs_unwind *u, uint64_t addr, void *buf, size_t len)
{
	unsigned char *out = buf;

	/* how far above sp the stack is read, for the next copy's size */
	if (u->regs && addr >= u->regs->rsp &&
	    addr + len - u->regs->rsp > u->span &&
	    addr - u->regs->rsp < (UVS__SNAP_MAX + 64) * UVS__PAGE)
		u->span = addr + len - u->regs->rsp;

	while (len) {
		uint64_t page = addr & ~(UVS__PAGE - 1);
		size_t off = addr - page, n = UVS__PAGE - off;
		struct uvs__page *p = uvs__page(u, page);

		if (!p)
			return -EFAULT;
		if (n > len)
			n = len;
		memcpy(out, p->data + off, n);
		out += n;
		addr += n;
		len -= n;
	}
	return 0;
}

static int uvs__access_mem(unw_addr_space_t as, unw_word_t addr,
			   unw_word_t *val, int write, void *arg)
{
	(void)as;
	(void)arg;
	if (write)
		return -UNW_EREADONLYREG;
	if (uvs_unwind__read(uvs__cur, addr, val, sizeof(*val)))
		return -UNW_EINVAL;
	return 0;
}

static int uvs__access_reg(unw_addr_space_t as, unw_regnum_t reg,
			   unw_word_t *val, int write, void *arg)
{
	const struct user_regs_struct *r = uvs__cur->regs;

	(void)as;
	(void)arg;
	if (write)
		return -UNW_EREADONLYREG;
	switch (reg) {
	case UNW_X86_64_RAX:
		*val = r->rax;
		break;
	case UNW_X86_64_RDX:
		*val = r->rdx;
		break;
	case UNW_X86_64_RCX:
		*val = r->rcx;
		break;
	case UNW_X86_64_RBX:
		*val = r->rbx;
		break;
	case UNW_X86_64_RSI:
		*val = r->rsi;
		break;
	case UNW_X86_64_RDI:
		*val = r->rdi;
		break;
	case UNW_X86_64_RBP:
		*val = r->rbp;
		break;
	case UNW_X86_64_RSP:
		*val = r->rsp;
		break;
	case UNW_X86_64_R8:
		*val = r->r8;
		break;
	case UNW_X86_64_R9:
		*val = r->r9;
		break;
	case UNW_X86_64_R10:
		*val = r->r10;
		break;
	case UNW_X86_64_R11:
		*val = r->r11;
		break;
	case UNW_X86_64_R12:
		*val = r->r12;
		break;
	case UNW_X86_64_R13:
		*val = r->r13;
		break;
	case UNW_X86_64_R14:
		*val = r->r14;
		break;
	case UNW_X86_64_R15:
		*val = r->r15;
		break;
	case UNW_X86_64_RIP:
		*val = r->rip;
		break;
	default:
		return -UNW_EBADREG;
	}
	return 0;
}

static int uvs__access_fpreg(unw_addr_space_t as, unw_regnum_t reg,
			     unw_fpreg_t *val, int write, void *arg)
{
	(void)as;
	(void)reg;
	(void)val;
	(void)write;
	(void)arg;
	return -UNW_EBADREG;
}

static int uvs__resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
	(void)as;
	(void)c;
	(void)arg;
	return -UNW_EINVAL; /* we never change where the target runs */
}

static int uvs__proc_name(unw_addr_space_t as, unw_word_t ip, char *buf,
			  size_t len, unw_word_t *off, void *arg)
{
	(void)as;
	(void)ip;
	(void)buf;
	(void)len;
	(void)off;
	(void)arg;
	return -UNW_ENOINFO; /* frames are named by lib/symbolize.c */
}

static int uvs__find_vdso(const struct uvs_map_line *m, void *ctx)
{
	struct uvs_unwind *u = ctx;

	if (strcmp(m->path, "[vdso]"))
		return 0;
	u->vdso_lo = m->start;
	u->vdso_hi = m->end;
	return 1;
}

/* The .eh_frame_hdr table of the ELF image whose header the target has
 * mapped at base, as libunwind's remote table for code in [lo, hi). */
static int uvs__eh_table(struct uvs_unwind *u, uint64_t base, uint64_t lo,
			 uint64_t hi, unw_dyn_info_t *di)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint64_t bias = 0, hdr = 0;
	unsigned char h[12];
	uint32_t count;
	bool have_bias = false;
	int i;

	if (uvs_unwind__read(u, base, &eh, sizeof(eh)) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_phnum > 128)
		return -ENOENT;
	for (i = 0; i < eh.e_phnum; i++) {
		if (uvs_unwind__read(
			u, base + eh.e_phoff + i * (uint64_t)eh.e_phentsize,
			&ph, sizeof(ph)))
			return -EFAULT;
		if (ph.p_type == PT_LOAD && !have_bias) {
			bias = base - (ph.p_vaddr & ~0xfffull);
			have_bias = true;
		}
		if (ph.p_type == PT_GNU_EH_FRAME)
			hdr = ph.p_vaddr;
	}
	if (!have_bias || !hdr)
		return -ENOENT;
	hdr += bias;
	/* version 1; eh_frame_ptr pcrel|sdata4, fde_count udata4, table
	 * datarel|sdata4: what every linker writes */
	if (uvs_unwind__read(u, hdr, h, sizeof(h)) || h[0] != 1 ||
	    h[2] != 0x03 || h[3] != 0x3b)
		return -ENOENT;
	memcpy(&count, h + 8, 4);
	memset(di, 0, sizeof(*di));
	di->format = UNW_INFO_FORMAT_REMOTE_TABLE;
	di->start_ip = lo;
	di->end_ip = hi;
	di->u.rti.segbase = hdr;
	di->u.rti.table_data = hdr + 12;
	di->u.rti.table_len = count * 8ull / sizeof(unw_word_t);
	return 0;
}

/* The target's vDSO (clock_gettime runs there: a Node process is often
 * sampled in it) has no file: its table is found the same way. */
static void uvs__vdso(struct uvs_unwind *u)
{
	u->gen++;
	if (uvs_proc_maps(u->pid, uvs__find_vdso, u) < 0 || !u->vdso_lo)
		return;
	if (uvs__eh_table(u, u->vdso_lo, u->vdso_lo, u->vdso_hi, &u->vdso_di))
		return;
	u->vdso_ok = true;
	uvs_debug("ptrace: vDSO at %#llx", (unsigned long long)u->vdso_lo);
}

int uvs_unwind__open(pid_t pid, struct uvs_unwind **out)
{
	struct uvs_unwind *u;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return uvs_seterr(-ENOMEM, "out of memory");
	u->pid = pid;
	u->acc.find_proc_info = uvs__find_proc_info;
	u->acc.put_unwind_info = uvs__put_unwind_info;
	u->acc.get_dyn_info_list_addr = uvs__get_dyn_info_list_addr;
	u->acc.access_mem = uvs__access_mem;
	u->acc.access_reg = uvs__access_reg;
	u->acc.access_fpreg = uvs__access_fpreg;
	u->acc.resume = uvs__resume;
	u->acc.get_proc_name = uvs__proc_name;
	u->as = unw_create_addr_space(&u->acc, 0);
	u->upt = _UPT_create(pid);
	if (!u->as || !u->upt) {
		uvs_unwind__close(u);
		return uvs_seterr(-ENOMEM, "libunwind: cannot create an "
					   "address space");
	}
	unw_set_caching_policy(u->as, UNW_CACHE_GLOBAL);
	/* 2^14 unwind rules: a Node server's hot frames all fit */
	unw_set_cache_size(u->as, 1u << 14, 0);
	uvs__vdso(u);
	uvs__read_xmaps(u);
	*out = u;
	return 0;
}

/* Copies the stopped thread's stack from its sp up, as many pages as the
 * last unwinds read and a margin, into the page cache in one system call,
 * so that the thread can be resumed before the unwind that follows reads
 * the copy. What the unwind wants above the copy is read live: outer
 * frames, which the thread is unlikely to have left by then. */
int uvs_unwind__snapshot(struct uvs_unwind *u, const struct user_regs_struct *r)
{
	struct iovec l[UVS__SNAP_MAX], rv[UVS__SNAP_MAX];
	uint64_t first = r->rsp & ~(UVS__PAGE - 1), want;
	ssize_t got;
	int n, i;

	want = u->span_hint + UVS__SNAP_MARGIN + (r->rsp - first);
	n = (int)((want + UVS__PAGE - 1) / UVS__PAGE);
	if (n < UVS__SNAP_MIN)
		n = UVS__SNAP_MIN;
	if (n > UVS__SNAP_MAX)
		n = UVS__SNAP_MAX;
	u->gen++;
	for (i = 0; i < n; i++) {
		uint64_t page = first + i * UVS__PAGE;
		struct uvs__page *p =
		    &u->pages[(page / UVS__PAGE) % UVS__PAGES];

		l[i].iov_base = p->data;
		l[i].iov_len = UVS__PAGE;
		rv[i].iov_base = (void *)(uintptr_t)page;
		rv[i].iov_len = UVS__PAGE;
	}
	u->reads++;
	got = process_vm_readv(u->pid, l, n, rv, n, 0);
	for (i = 0; i < n; i++) {
		uint64_t page = first + i * UVS__PAGE;
		struct uvs__page *p =
		    &u->pages[(page / UVS__PAGE) % UVS__PAGES];

		/* a page past the end of the stack is not copied: a later
		 * read tries it live and finds it bad */
		p->addr = got >= (ssize_t)((i + 1) * UVS__PAGE) ? page : 0;
		p->gen = u->gen;
		p->ro = false;
		p->bad = false;
	}
	u->snapped = true;
	u->snap_sp = r->rsp;
	return got < 0 ? -errno : 0;
}

int uvs_unwind__stack(struct uvs_unwind *u, const struct user_regs_struct *r,
		      uint64_t *ips, int max)
{
	unw_cursor_t c;
	unw_word_t ip, sp, last_sp = 0;
	int n = 0, err;

	u->regs = r;
	/* a new generation, unless the stack was copied for this unwind */
	if (!u->snapped || u->snap_sp != r->rsp)
		u->gen++;
	u->snapped = false;
	u->span = 0;
	uvs__cur = u;
	err = unw_init_remote(&c, u->as, u);
	if (err) {
		uvs__cur = NULL;
		return uvs_seterr(-EINVAL, "libunwind: init: %d", err);
	}
	do {
		if (unw_get_reg(&c, UNW_REG_IP, &ip) || !ip)
			break;
		unw_get_reg(&c, UNW_REG_SP, &sp);
		/* a broken chain can loop: frames only move up the stack */
		if (n && sp < last_sp)
			break;
		last_sp = sp;
		ips[n++] = ip;
	} while (n < max && (err = unw_step(&c)) > 0);
	if (uvs_verbose >= 3)
		fprintf(stderr,
			"unwind: stopped after %d frames (step %d, ip "
			"%#llx sp %#llx)\n",
			n, err, (unsigned long long)ip, (unsigned long long)sp);
	uvs__cur = NULL;
	u->regs = NULL;
	/* the next copy: the widest of recent unwinds, shrinking slowly */
	u->span_hint = u->span > u->span_hint ? u->span
		       : u->span_hint > UVS__PAGE ? u->span_hint - UVS__PAGE / 8
						 : u->span;
	return n;
}

/* Forgets cached unwind rules and finds the vDSO again: after an exec
 * (or dlclose + dlopen), a rule for a reused address would be wrong. */
void uvs_unwind__flush(struct uvs_unwind *u)
{
	unw_flush_cache(u->as, 0, 0);
	u->vdso_ok = false;
	u->vdso_lo = u->vdso_hi = 0;
	uvs__vdso(u);
	uvs__read_xmaps(u);
}

uint64_t uvs_unwind__reads(const struct uvs_unwind *u)
{
	return u->reads;
}

void uvs_unwind__close(struct uvs_unwind *u)
{
	if (!u)
		return;
	if (u->as)
		unw_destroy_addr_space(u->as);
	if (u->upt)
		_UPT_destroy(u->upt);
	free(u->xmaps);
	free(u->romaps);
	free(u->jmaps);
	free(u);
}
