// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Naming a process's code addresses: ELF symbols of each mapped file (C++
 * demangled), JIT code from /tmp/perf-PID.map when the runtime writes one
 * (node --perf-basic-prof) and it belongs to the target's user, else
 * "[jit]". Files are opened while the process lives, so a stack captured at
 * its exit can still be named afterwards.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "uvscope.h"

extern char *__cxa_demangle(const char *mangled, char *buf, size_t *n,
			    int *status);

struct uvs__mapping {
	uint64_t start, end, off;
	int file; /* index in files, or -1 for anonymous code */
	bool vdso;
};

struct uvs__file {
	char path[4096];
	struct uvs_elf *elf; /* NULL if it could not be read */
};

struct uvs__jit {
	uint64_t start, size;
	char *name;
};

struct uvs_syms {
	pid_t pid;
	struct uvs__mapping *maps;
	int nmaps;
	struct uvs__file *files;
	int nfiles;
	struct uvs__jit *jit;
	size_t njit;
	long perfmap_size; /* size when last read */
	bool perfmap_warned;
};

static int uvs__file_index(struct uvs_syms *s, const char *path)
{
	struct uvs__file *nf;
	char open_path[4200];
	int i;

	for (i = 0; i < s->nfiles; i++)
		if (!strcmp(s->files[i].path, path))
			return i;
	nf = realloc(s->files, (s->nfiles + 1) * sizeof(*nf));
	if (!nf)
		return -1;
	s->files = nf;
	nf = &s->files[s->nfiles];
	snprintf(nf->path, sizeof(nf->path), "%s", path);
	snprintf(open_path, sizeof(open_path), "/proc/%d/root%s", s->pid, path);
	if (uvs_elf__open(open_path, &nf->elf))
		nf->elf = NULL;
	return s->nfiles++;
}

static int uvs__jit_cmp(const void *a, const void *b)
{
	const struct uvs__jit *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void uvs__read_perfmap(struct uvs_syms *s)
{
	char path[64], line[4096];
	struct stat st, pst;
	FILE *f;
	size_t i;
	int bad = 0;

	snprintf(path, sizeof(path), "/tmp/perf-%d.map", s->pid);
	if (stat(path, &st) || st.st_size == s->perfmap_size)
		return;
	snprintf(line, sizeof(line), "/proc/%d", s->pid);
	/* a map anyone could have written is not to be believed */
	if (stat(line, &pst) || st.st_uid != pst.st_uid) {
		if (!s->perfmap_warned)
			uvs_warn("ignoring %s: not owned by the target's user",
				 path);
		s->perfmap_warned = true;
		s->perfmap_size = st.st_size;
		return;
	}
	f = fopen(path, "re");
	if (!f)
		return;
	for (i = 0; i < s->njit; i++)
		free(s->jit[i].name);
	s->njit = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, n;
		int off = 0;
		struct uvs__jit *nj;

		if (sscanf(line, "%llx %llx %n", &a, &n, &off) < 2 || !off ||
		    !n || a + n < a) {
			bad++;
			continue;
		}
		line[strcspn(line, "\n")] = '\0';
		nj = realloc(s->jit, (s->njit + 1) * sizeof(*nj));
		if (!nj)
			break;
		s->jit = nj;
		s->jit[s->njit].start = a;
		s->jit[s->njit].size = n;
		s->jit[s->njit].name = strdup(line + off);
		if (s->jit[s->njit].name)
			s->njit++;
	}
	fclose(f);
	if (bad && !s->perfmap_warned) {
		/* one warning, however often it is read again */
		uvs_warn("%s: %d lines that are not \"ADDR SIZE NAME\" were "
			 "ignored", path, bad);
		s->perfmap_warned = true;
	}
	qsort(s->jit, s->njit, sizeof(*s->jit), uvs__jit_cmp);
	s->perfmap_size = st.st_size;
}

struct uvs__scan {
	struct uvs_syms *s;
	struct uvs__mapping *m;
	int n, cap;
};

static int uvs__code_map(const struct uvs_map_line *l, void *ctx)
{
	struct uvs__scan *sc = ctx;

	if (l->perms[2] != 'x')
		return 0;
	if (sc->n == sc->cap) {
		struct uvs__mapping *nm;

		sc->cap = sc->cap ? sc->cap * 2 : 64;
		nm = realloc(sc->m, sc->cap * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		sc->m = nm;
	}
	sc->m[sc->n].start = l->start;
	sc->m[sc->n].end = l->end;
	sc->m[sc->n].off = l->off;
	sc->m[sc->n].file = l->path[0] == '/' ? uvs__file_index(sc->s, l->path)
					      : -1;
	sc->m[sc->n].vdso = !strcmp(l->path, "[vdso]");
	sc->n++;
	return 0;
}

int uvs_syms__refresh(struct uvs_syms *s)
{
	struct uvs__scan sc = { .s = s };
	int err = uvs_proc_maps(s->pid, uvs__code_map, &sc);

	if (err || !sc.n) {
		/* a process in exit has no mappings left: keep what we had */
		free(sc.m);
		return err ? err : -ESRCH;
	}
	free(s->maps);
	s->maps = sc.m;
	s->nmaps = sc.n;
	uvs__read_perfmap(s);
	return 0;
}

int uvs_syms__open(pid_t pid, struct uvs_syms **out)
{
	struct uvs_syms *s = calloc(1, sizeof(*s));
	int err;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->pid = pid;
	s->perfmap_size = -1;
	err = uvs_syms__refresh(s);
	if (err) {
		uvs_syms__close(s);
		return err;
	}
	*out = s;
	return 0;
}

static const char *uvs__base(const char *p)
{
	const char *b = strrchr(p, '/');

	return b ? b + 1 : p;
}

bool uvs_syms__in_code(const struct uvs_syms *s, uint64_t addr)
{
	int i;

	for (i = 0; i < s->nmaps; i++)
		if (addr >= s->maps[i].start && addr < s->maps[i].end)
			return true;
	return false;
}

/* What an address is: in a mapped file (and which symbol, if any), in
 * JIT code named by the perf map, or neither. */
struct uvs__where {
	int map;			/* index in maps, or -1 */
	struct uvs__file *file;		/* NULL for anonymous code */
	const struct uvs_sym *sym;
	uint64_t vaddr;			/* link-time address in file */
	const struct uvs__jit *jit;
};

static void uvs__resolve(struct uvs_syms *s, uint64_t a, struct uvs__where *w)
{
	size_t lo = 0, hi = s->njit;
	int i;

	memset(w, 0, sizeof(*w));
	w->map = -1;
	for (i = 0; i < s->nmaps; i++)
		if (a >= s->maps[i].start && a < s->maps[i].end) {
			w->map = i;
			break;
		}
	if (w->map >= 0 && s->maps[i].file >= 0) {
		w->file = &s->files[s->maps[i].file];
		if (w->file->elf &&
		    !uvs_elf__off_to_vaddr(w->file->elf, a - s->maps[i].start +
					   s->maps[i].off, &w->vaddr))
			w->sym = uvs_elf__symbolize(w->file->elf, w->vaddr);
		return;
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->jit[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && a < s->jit[lo - 1].start + s->jit[lo - 1].size)
		w->jit = &s->jit[lo - 1];
}

/* The symbol's name, demangled when it is C++; *tofree is what to free. */
static const char *uvs__demangle(const struct uvs_sym *sym, char **tofree)
{
	int st = -1;

	*tofree = sym->name[0] == '_' && sym->name[1] == 'Z' ?
		  __cxa_demangle(sym->name, NULL, NULL, &st) : NULL;
	return st == 0 && *tofree ? *tofree : sym->name;
}

const char *uvs_syms__name(struct uvs_syms *s, uint64_t addr, char *buf,
			   size_t len)
{
	struct uvs__where w;
	char *d;

	uvs__resolve(s, addr, &w);
	if (w.sym) {
		snprintf(buf, len, "%s+%#llx (%s)", uvs__demangle(w.sym, &d),
			 (unsigned long long)(w.vaddr - w.sym->addr),
			 uvs__base(w.file->path));
		free(d);
	} else if (w.file) {
		snprintf(buf, len, "%#llx (%s)", (unsigned long long)addr,
			 uvs__base(w.file->path));
	} else if (w.jit) {
		snprintf(buf, len, "%s", w.jit->name);
	} else {
		snprintf(buf, len, "[jit] %#llx", (unsigned long long)addr);
	}
	return buf;
}

const char *uvs_syms__frame(struct uvs_syms *s, uint64_t addr, bool ret,
			    char *buf, size_t len)
{
	struct uvs__where w;
	char *semi, *d;

	uvs__resolve(s, ret && addr ? addr - 1 : addr, &w);
	if (w.sym) {
		snprintf(buf, len, "%s", uvs__demangle(w.sym, &d));
		free(d);
	} else if (w.file) {
		snprintf(buf, len, "[%s]", uvs__base(w.file->path));
	} else if (w.map >= 0 && s->maps[w.map].vdso) {
		snprintf(buf, len, "[vdso]");
	} else if (w.jit) {
		snprintf(buf, len, "%s", w.jit->name);
	} else {
		snprintf(buf, len, w.map >= 0 ? "[jit]" : "[unknown]");
	}
	/* ';' separates frames in folded stacks */
	for (semi = strchr(buf, ';'); semi; semi = strchr(semi, ';'))
		*semi = ':';
	return buf;
}

void uvs_syms__current(struct uvs_syms **s, pid_t pid, uint64_t *last,
			unsigned max_age_ms)
{
	uint64_t now = uvs_now_ns();

	if (!*s) {
		if (uvs_syms__open(pid, s))
			return;
	} else if (now - *last > max_age_ms * 1000000ull) {
		uvs_syms__refresh(*s);
	} else {
		return;
	}
	*last = now;
}

const char *uvs_syms__callback(struct uvs_syms *s, uint64_t addr, char *buf,
			       size_t len)
{
	char *plus;

	uvs_syms__name(s, addr, buf, len);
	/* "name+0 (module)": a callback is a function's start */
	plus = strstr(buf, "+0 (");
	if (plus)
		memmove(plus, plus + 2, strlen(plus + 2) + 1);
	return buf;
}

void uvs_syms__close(struct uvs_syms *s)
{
	int i;
	size_t j;

	if (!s)
		return;
	for (i = 0; i < s->nfiles; i++)
		uvs_elf__close(s->files[i].elf);
	for (j = 0; j < s->njit; j++)
		free(s->jit[j].name);
	free(s->files);
	free(s->maps);
	free(s->jit);
	free(s);
}

int uvs_syms__file_of(const struct uvs_syms *s, uint64_t addr)
{
	int i;

	for (i = 0; i < s->nmaps; i++)
		if (addr >= s->maps[i].start && addr < s->maps[i].end)
			return s->maps[i].file;
	return -1;
}

bool uvs_syms__is_vdso(const struct uvs_syms *s, uint64_t addr)
{
	int i;

	for (i = 0; i < s->nmaps; i++)
		if (addr >= s->maps[i].start && addr < s->maps[i].end)
			return s->maps[i].vdso;
	return false;
}

/* ---- kernel symbols, from /proc/kallsyms (read once) ---- */

struct uvs__ksym {
	uint64_t addr;
	char *name;
};
static struct uvs__ksym *uvs__ksyms;
static size_t uvs__nksyms;
static bool uvs__ksyms_read;

static int uvs__ksym_cmp(const void *a, const void *b)
{
	const struct uvs__ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void uvs__read_kallsyms(void)
{
	char line[512], name[256], type;
	unsigned long long a;
	size_t cap = 0;
	FILE *f;

	uvs__ksyms_read = true;
	f = fopen("/proc/kallsyms", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		struct uvs__ksym *n;

		if (sscanf(line, "%llx %c %255s", &a, &type, name) != 3 || !a ||
		    (type != 't' && type != 'T'))
			continue;
		if (uvs__nksyms == cap) {
			cap = cap ? cap * 2 : 65536;
			n = realloc(uvs__ksyms, cap * sizeof(*n));
			if (!n)
				break;
			uvs__ksyms = n;
		}
		uvs__ksyms[uvs__nksyms].addr = a;
		uvs__ksyms[uvs__nksyms].name = strdup(name);
		if (uvs__ksyms[uvs__nksyms].name)
			uvs__nksyms++;
	}
	fclose(f);
	qsort(uvs__ksyms, uvs__nksyms, sizeof(*uvs__ksyms), uvs__ksym_cmp);
}

const char *uvs_syms__kernel_frame(uint64_t addr, char *buf, size_t len)
{
	size_t lo = 0, hi;

	if (!uvs__ksyms_read)
		uvs__read_kallsyms();
	hi = uvs__nksyms;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (uvs__ksyms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Brendan Gregg's suffix for kernel frames */
	snprintf(buf, len, "%s_[k]", lo ? uvs__ksyms[lo - 1].name : "[kernel]");
	return buf;
}
