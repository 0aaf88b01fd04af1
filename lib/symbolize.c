// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Naming a process's code addresses: ELF symbols of each mapped file (C++
 * demangled), JIT code from the perf map the runtime writes (node
 * --perf-basic-prof) in its /tmp, else "[jit]". Files are opened while the
 * process lives, so a stack captured at its exit can still be named
 * afterwards.
 *
 * The perf map is in a directory anyone can write, and uvscope is root: it
 * is opened without following a link or blocking (a FIFO), read only if it
 * is a regular file of the target's user (or root) with no other name,
 * and read up to a bound, incrementally as the runtime appends to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "uvscope.h"
#include "flame.h"

extern char *__cxa_demangle(const char *mangled, char *buf, size_t *n,
			    int *status);

struct uvs__mapping {
	uint64_t start, end, off;
	int file; /* index in files, or -1 for anonymous code */
	bool vdso;
	bool anon; /* no name at all: JIT code */
};

struct uvs__file {
	char path[4096];
	struct uvs_elf *elf; /* NULL if it could not be read */
};

struct uvs__jit {
	uint64_t start, size;
	size_t seq; /* order read: of two at one address, the later is named */
	char *name;
};

/* Bytes of a perf map read at most: Node's for a large app is tens of MB. */
#define UVS__PERFMAP_MAX (256ull << 20)

/* Why the perf map is not read, as last said with -v. */
enum uvs__pm_why {
	UVS__PM_READ,
	UVS__PM_NONE,
	UVS__PM_NSPID, /* the target's pid in its namespace is unknown */
	UVS__PM_NS,    /* its /tmp cannot be opened */
	UVS__PM_ERROR,
	UVS__PM_LINK, /* the reasons from here on are refusals */
	UVS__PM_TYPE,
	UVS__PM_NLINK,
	UVS__PM_OWNER,
};

struct uvs__perfmap {
	pid_t nspid;   /* the target's pid in its own namespace */
	char name[96]; /* the map as the target names it, for messages */
	dev_t dev;     /* the file read */
	ino_t ino;
	uint64_t seen; /* its size, up to UVS__PERFMAP_MAX, when read */
	struct uvs_perfmap_cursor cur;
	unsigned refused; /* reads refused (a link, a FIFO...) */
	enum uvs__pm_why why;
	bool warned_owner, warned_bad, said_cap;
};

struct uvs_syms {
	pid_t pid;
	struct uvs__mapping *maps;
	int nmaps;
	struct uvs__file *files;
	int nfiles;
	struct uvs__jit *jit;
	size_t njit, cap_jit;
	struct uvs__perfmap pm;
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

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void uvs__jit_clear(struct uvs_syms *s)
{
	size_t i;

	for (i = 0; i < s->njit; i++)
		free(s->jit[i].name);
	s->njit = 0;
}

static int uvs__jit_add(const struct uvs_perfmap_sym *sym, void *ctx)
{
	struct uvs_syms *s = ctx;
	struct uvs__jit *j;

	if (s->njit == s->cap_jit) {
		size_t cap = s->cap_jit ? s->cap_jit * 2 : 1024;

		j = realloc(s->jit, cap * sizeof(*j));
		if (!j)
			return -ENOMEM;
		s->jit = j;
		s->cap_jit = cap;
	}
	j = &s->jit[s->njit];
	j->name = strndup(sym->name, sym->len);
	if (!j->name)
		return -ENOMEM;
	j->start = sym->start;
	j->size = sym->size;
	j->seq = s->njit++;
	return 0;
}

/* The -v line saying why the map is not read: once for each new reason. */
static void __attribute__((format(printf, 3, 4)))
uvs__pm_refuse(struct uvs_syms *s, enum uvs__pm_why why, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	s->pm.refused += why >= UVS__PM_LINK;
	if (why == s->pm.why)
		return;
	s->pm.why = why;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	uvs_debug("perf map %s: %s; its JIT frames are [jit]", s->pm.name, msg);
}

/* pid as its own pid namespace numbers it (the last field of NSpid), which
 * names its perf map; 0 where /proc does not say (Linux < 4.1). */
static pid_t uvs__nspid(pid_t pid)
{
	struct uvs_proc_status st;

	if (uvs_proc_status(pid, 0, &st) || !(st.have & UVS_ST_NSPID))
		return 0;
	return st.nspid;
}

/* Whether it has anonymous code (JIT) that a perf map would name. */
static bool uvs__has_jit_code(const struct uvs_syms *s)
{
	int i;

	for (i = 0; i < s->nmaps; i++)
		if (s->maps[i].anon)
			return true;
	return false;
}

/* Opens the map in the target's /tmp, through /proc/PID/root: a target in
 * a container has its own /tmp and numbers itself in its own pid
 * namespace. Neither /tmp nor the map is followed if it is a link, and a
 * FIFO does not block the open. Returns the fd, or -1 (said). */
static int uvs__pm_open(struct uvs_syms *s)
{
	char path[64], file[32];
	int dfd, fd;

	if (!s->pm.nspid) {
		s->pm.nspid = uvs__nspid(s->pid);
		snprintf(s->pm.name, sizeof(s->pm.name), "/tmp/perf-%d.map",
			 s->pm.nspid ? s->pm.nspid : s->pid);
		if (s->pm.nspid && s->pm.nspid != s->pid)
			snprintf(s->pm.name + strlen(s->pm.name),
				 sizeof(s->pm.name) - strlen(s->pm.name),
				 " (pid %d's namespaces)", s->pid);
	}
	if (!s->pm.nspid) {
		uvs__pm_refuse(s, UVS__PM_NSPID,
			       "/proc/%d/status has no NSpid: the target's "
			       "pid in its namespace is unknown",
			       s->pid);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/root/tmp", s->pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		uvs__pm_refuse(s, UVS__PM_NS,
			       "the target's /tmp (%s) cannot be opened in "
			       "its mount namespace: %s",
			       path,
			       errno == ELOOP || errno == ENOTDIR
				   ? "not a directory (a symbolic link is not "
				     "followed)"
				   : strerror(errno));
		return -1;
	}
	snprintf(file, sizeof(file), "perf-%d.map", s->pm.nspid);
	fd = openat(dfd, file,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	/* no map is news only where there is JIT code to name */
	if (fd < 0 && errno == ENOENT && uvs__has_jit_code(s))
		uvs__pm_refuse(s, UVS__PM_NONE,
			       "none (node --perf-basic-prof writes one)");
	else if (fd < 0 && errno == ELOOP)
		uvs__pm_refuse(s, UVS__PM_LINK,
			       "a symbolic link: not followed");
	else if (fd < 0 && errno != ENOENT)
		uvs__pm_refuse(s, UVS__PM_ERROR, "%s", strerror(errno));
	close(dfd);
	return fd;
}

static void uvs__read_perfmap(struct uvs_syms *s)
{
	struct uvs__perfmap *pm = &s->pm;
	struct stat st, pst;
	char proc[32];
	uint64_t end;
	int fd, err;

	fd = uvs__pm_open(s);
	if (fd < 0)
		return;
	snprintf(proc, sizeof(proc), "/proc/%d", s->pid);
	if (fstat(fd, &st) || stat(proc, &pst)) {
		uvs__pm_refuse(s, UVS__PM_ERROR, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		uvs__pm_refuse(s, UVS__PM_TYPE, "not a regular file: not read");
		goto out;
	}
	/* a hard link to a file someone else may not read */
	if (st.st_nlink != 1) {
		uvs__pm_refuse(s, UVS__PM_NLINK,
			       "%ju names for the file (hard links): not read",
			       (uintmax_t)st.st_nlink);
		goto out;
	}
	/* a map anyone could have written is not to be believed */
	if (st.st_uid != pst.st_uid && st.st_uid != 0) {
		if (!pm->warned_owner)
			uvs_warn("ignoring %s: not owned by the target's user",
				 pm->name);
		pm->warned_owner = true;
		uvs__pm_refuse(s, UVS__PM_OWNER,
			       "owned by uid %u, the target runs as %u: "
			       "not read",
			       st.st_uid, pst.st_uid);
		goto out;
	}
	end = (uint64_t)st.st_size < UVS__PERFMAP_MAX ? (uint64_t)st.st_size
						      : UVS__PERFMAP_MAX;
	if (st.st_dev != pm->dev || st.st_ino != pm->ino || end < pm->cur.off) {
		/* a new file, or this one rewritten: read from the start */
		uvs__jit_clear(s);
		memset(&pm->cur, 0, sizeof(pm->cur));
		pm->dev = st.st_dev;
		pm->ino = st.st_ino;
		pm->seen = 0;
		pm->said_cap = false;
	}
	pm->why = UVS__PM_READ;
	if (end == pm->seen)
		goto out;
	err = uvs_perfmap__read(fd, &pm->cur, end, uvs__jit_add, s);
	pm->seen = end;
	if (err)
		uvs_debug("perf map %s: %s (read up to byte %ju)", pm->name,
			  strerror(-err), (uintmax_t)pm->cur.off);
	if (pm->cur.bad && !pm->warned_bad) {
		/* one warning, however often it is read again */
		uvs_warn("%s: %ju lines that are not \"ADDR SIZE NAME\" were "
			 "ignored",
			 pm->name, (uintmax_t)pm->cur.bad);
		pm->warned_bad = true;
	}
	if ((uint64_t)st.st_size > UVS__PERFMAP_MAX && !pm->said_cap) {
		uvs_debug("perf map %s: %ju MiB, only its first %llu MiB read",
			  pm->name, (uintmax_t)st.st_size >> 20,
			  UVS__PERFMAP_MAX >> 20);
		pm->said_cap = true;
	}
	qsort(s->jit, s->njit, sizeof(*s->jit), uvs__jit_cmp);
out:
	close(fd);
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
	sc->m[sc->n].file =
	    l->path[0] == '/' ? uvs__file_index(sc->s, l->path) : -1;
	sc->m[sc->n].vdso = !strcmp(l->path, "[vdso]");
	sc->m[sc->n].anon = !l->path[0];
	sc->n++;
	return 0;
}

int uvs_syms__refresh(struct uvs_syms *s)
{
	struct uvs__scan sc = {.s = s};
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
	int map;		/* index in maps, or -1 */
	struct uvs__file *file; /* NULL for anonymous code */
	const struct uvs_sym *sym;
	uint64_t vaddr; /* link-time address in file */
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
		    !uvs_elf__off_to_vaddr(
			w->file->elf, a - s->maps[i].start + s->maps[i].off,
			&w->vaddr))
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

	*tofree = sym->name[0] == '_' && sym->name[1] == 'Z'
		      ? __cxa_demangle(sym->name, NULL, NULL, &st)
		      : NULL;
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

	if (!s)
		return;
	if (s->pm.refused)
		uvs_debug("perf map %s: %u reads refused", s->pm.name,
			  s->pm.refused);
	for (i = 0; i < s->nfiles; i++)
		uvs_elf__close(s->files[i].elf);
	uvs__jit_clear(s);
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
