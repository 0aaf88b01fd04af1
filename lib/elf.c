// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ELF symbols and bytes with libelf: .symtab and .dynsym, PIE, file offsets. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "uvscope.h"

struct uvs_elf {
	int fd;
	Elf *e;
	GElf_Ehdr ehdr;
	bool has_symtab;
	struct uvs_sym *syms;
	size_t nsyms;
	GElf_Phdr *loads;
	size_t nloads;
	/* syms by address, for symbolisation: an index, built at the first
	 * uvs_elf__symbolize, so that syms keeps its order and a symbol
	 * handed out (uvs_elf__find) stays the same symbol */
	const struct uvs_sym **by_addr;
	char *plt_names; /* "name@plt" strings of the synthesized symbols */
};

/* A GOT slot and the symbol a relocation binds it to. */
struct uvs__got {
	uint64_t slot;
	const char *name; /* NULL: no symbol (IRELATIVE) */
};

static int uvs__got_cmp(const void *a, const void *b)
{
	const struct uvs__got *x = a, *y = b;

	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* JUMP_SLOT and GLOB_DAT relocations of a SHT_RELA section: which
 * symbol each GOT slot holds. */
static int uvs__got_slots(struct uvs_elf *elf, Elf_Scn *scn,
			  const GElf_Shdr *sh, struct uvs__got **got,
			  size_t *ngot)
{
	Elf_Data *data = elf_getdata(scn, NULL), *symd;
	Elf_Scn *symscn = elf_getscn(elf->e, sh->sh_link);
	GElf_Shdr symsh;
	size_t n, i;
	struct uvs__got *g;

	if (!data || !sh->sh_entsize || !symscn ||
	    !gelf_getshdr(symscn, &symsh) ||
	    !(symd = elf_getdata(symscn, NULL)))
		return 0;
	n = sh->sh_size / sh->sh_entsize;
	if (!n) /* realloc to 0 bytes frees: *got would dangle */
		return 0;
	g = realloc(*got, (*ngot + n) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	*got = g;
	for (i = 0; i < n; i++) {
		GElf_Rela r;
		GElf_Sym sym;
		unsigned type;

		if (!gelf_getrela(data, i, &r))
			continue;
		type = GELF_R_TYPE(r.r_info);
		if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT &&
		    type != R_X86_64_IRELATIVE)
			continue;
		g[*ngot].slot = r.r_offset;
		g[*ngot].name = NULL;
		if (GELF_R_SYM(r.r_info) &&
		    gelf_getsym(symd, GELF_R_SYM(r.r_info), &sym))
			g[*ngot].name = elf_strptr(elf->e, symsh.sh_link,
						   sym.st_name);
		(*ngot)++;
	}
	return 0;
}

/* The GOT slot an x86-64 PLT entry jumps through ("jmp *disp32(%rip)",
 * ff 25, after an endbr64 and a bnd prefix where IBT builds have them),
 * or 0. */
static uint64_t uvs__plt_slot(const unsigned char *e, size_t len,
			      uint64_t addr)
{
	size_t i;
	int32_t disp;

	for (i = 0; i + 6 <= len && i <= 6; i++)
		if (e[i] == 0xff && e[i + 1] == 0x25) {
			memcpy(&disp, e + i + 2, 4);
			return addr + i + 6 + (int64_t)disp;
		}
	return 0;
}

/* Symbols for the PLT stubs (.plt, .plt.sec, .plt.got), which have
 * none: without them a call through the PLT is named after the symbol
 * before it, _init (sizeless), as in "spin_for_ms;_init". Each entry is
 * named "name@plt" after the symbol its GOT slot is relocated to (as perf
 * names them), "[plt]" where there is none (PLT0, IRELATIVE). */
static int uvs__plt_syms(struct uvs_elf *elf)
{
	struct uvs__got *got = NULL;
	size_t ngot = 0, shstrndx, i, need, used, nent = 0;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	struct {
		uint64_t addr, size, ent;
		Elf_Data *d;
	} plt[3];
	int nplt = 0, k, err = 0;
	struct uvs_sym *s;

	if (elf_getshdrstrndx(elf->e, &shstrndx))
		return 0;
	while ((scn = elf_nextscn(elf->e, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf->e, shstrndx, sh.sh_name);
		if (!name)
			continue;
		if (sh.sh_type == SHT_RELA &&
		    (!strcmp(name, ".rela.plt") || !strcmp(name, ".rela.dyn")))
			err = uvs__got_slots(elf, scn, &sh, &got, &ngot);
		else if (nplt < 3 && sh.sh_type == SHT_PROGBITS &&
			 (sh.sh_flags & SHF_EXECINSTR) &&
			 (!strcmp(name, ".plt") || !strcmp(name, ".plt.sec") ||
			  !strcmp(name, ".plt.got"))) {
			plt[nplt].addr = sh.sh_addr;
			plt[nplt].size = sh.sh_size;
			plt[nplt].ent = sh.sh_entsize ? sh.sh_entsize : 16;
			plt[nplt].d = elf_getdata(scn, NULL);
			if (plt[nplt].d && plt[nplt].d->d_size >= sh.sh_size)
				nplt++;
		}
		if (err)
			goto out;
	}
	if (!nplt)
		goto out;
	if (ngot) /* got is NULL without relocations: qsort wants an array */
		qsort(got, ngot, sizeof(*got), uvs__got_cmp);
	/* one symbol an entry; the names in one buffer, "[plt]" first, then
	 * at most one "name@plt" a relocated slot */
	for (k = 0; k < nplt; k++)
		nent += plt[k].size / plt[k].ent;
	if (!nent) /* empty PLT sections: realloc to 0 bytes would free syms */
		goto out;
	need = sizeof("[plt]");
	for (i = 0; i < ngot; i++)
		need += got[i].name ? strlen(got[i].name) + sizeof("@plt") : 0;
	elf->plt_names = malloc(need);
	s = realloc(elf->syms, (elf->nsyms + nent) * sizeof(*s));
	if (!elf->plt_names || !s) {
		if (s)
			elf->syms = s;
		err = -ENOMEM;
		goto out;
	}
	elf->syms = s;
	strcpy(elf->plt_names, "[plt]");
	used = sizeof("[plt]");
	for (k = 0; k < nplt; k++) {
		const unsigned char *b = plt[k].d->d_buf;
		uint64_t off;

		for (off = 0; off + plt[k].ent <= plt[k].size;
		     off += plt[k].ent) {
			uint64_t slot = uvs__plt_slot(b + off, plt[k].ent,
						      plt[k].addr + off);
			struct uvs__got key = { slot, NULL }, *hit = NULL;
			const char *name = elf->plt_names;

			if (slot && ngot)
				hit = bsearch(&key, got, ngot, sizeof(*got),
					      uvs__got_cmp);
			if (hit && hit->name && *hit->name &&
			    used + strlen(hit->name) + sizeof("@plt") <= need) {
				name = elf->plt_names + used;
				used += sprintf(elf->plt_names + used, "%s@plt",
						hit->name) + 1;
			}
			s[elf->nsyms++] = (struct uvs_sym){
				name, plt[k].addr + off, plt[k].ent, STT_FUNC };
		}
	}
out:
	free(got);
	return err;
}

static int uvs__elf_syms(struct uvs_elf *elf, Elf_Scn *scn, GElf_Shdr *sh)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t n, i;
	struct uvs_sym *s;

	if (!data || !sh->sh_entsize)
		return 0;
	n = sh->sh_size / sh->sh_entsize;
	/* realloc to 0 bytes (an empty table, and none before it) frees
	 * syms, which would then be freed again */
	if (!n)
		return 0;
	s = realloc(elf->syms, (elf->nsyms + n) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	elf->syms = s;
	for (i = 0; i < n; i++) {
		GElf_Sym sym;
		const char *name;
		unsigned char type;

		if (!gelf_getsym(data, i, &sym))
			continue;
		type = GELF_ST_TYPE(sym.st_info);
		if (type != STT_FUNC && type != STT_OBJECT &&
		    type != STT_GNU_IFUNC)
			continue;
		if (sym.st_shndx == SHN_UNDEF || !sym.st_value)
			continue;
		name = elf_strptr(elf->e, sh->sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		s[elf->nsyms++] = (struct uvs_sym){ name, sym.st_value,
						    sym.st_size, type };
	}
	return 0;
}

static int uvs__sym_addr_cmp(const void *a, const void *b)
{
	const struct uvs_sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* prefer sized functions when two names share an address */
	return (y->size > 0) - (x->size > 0);
}

int uvs_elf__open(const char *path, struct uvs_elf **out)
{
	struct uvs_elf *elf;
	Elf_Scn *scn = NULL;
	size_t phnum, i;
	int err;

	*out = NULL;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return uvs_seterr(-EINVAL, "libelf: %s", elf_errmsg(-1));
	elf = calloc(1, sizeof(*elf));
	if (!elf)
		return uvs_seterr(-ENOMEM, "out of memory");
	elf->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (elf->fd < 0) {
		err = -errno;
		free(elf);
		return uvs_seterr(err, "cannot open %s: %s", path,
				  strerror(-err));
	}
	elf->e = elf_begin(elf->fd, ELF_C_READ_MMAP, NULL);
	if (!elf->e || elf_kind(elf->e) != ELF_K_ELF ||
	    !gelf_getehdr(elf->e, &elf->ehdr)) {
		uvs_elf__close(elf);
		return uvs_seterr(-ENOEXEC, "%s is not an ELF file", path);
	}
	if (elf->ehdr.e_machine != EM_X86_64) {
		uvs_elf__close(elf);
		return uvs_seterr(-ENOEXEC, "%s: not an x86-64 ELF file",
				  path);
	}
	if (elf_getphdrnum(elf->e, &phnum))
		phnum = 0;
	elf->loads = calloc(phnum ? phnum : 1, sizeof(GElf_Phdr));
	if (!elf->loads) {
		uvs_elf__close(elf);
		return uvs_seterr(-ENOMEM, "out of memory");
	}
	for (i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf->e, i, &ph) && ph.p_type == PT_LOAD)
			elf->loads[elf->nloads++] = ph;
	}
	while ((scn = elf_nextscn(elf->e, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)
			continue;
		if (sh.sh_type == SHT_SYMTAB)
			elf->has_symtab = true;
		err = uvs__elf_syms(elf, scn, &sh);
		if (err) {
			uvs_elf__close(elf);
			return uvs_seterr(err, "out of memory");
		}
	}
	err = uvs__plt_syms(elf);
	if (err) {
		uvs_elf__close(elf);
		return uvs_seterr(err, "out of memory");
	}
	*out = elf;
	return 0;
}

void uvs_elf__close(struct uvs_elf *elf)
{
	if (!elf)
		return;
	if (elf->e)
		elf_end(elf->e);
	if (elf->fd >= 0)
		close(elf->fd);
	free(elf->syms);
	free(elf->by_addr);
	free(elf->loads);
	free(elf->plt_names);
	free(elf);
}

bool uvs_elf__is_pie(const struct uvs_elf *elf)
{
	return elf->ehdr.e_type == ET_DYN;
}

bool uvs_elf__has_symtab(const struct uvs_elf *elf)
{
	return elf->has_symtab;
}

size_t uvs_elf__nsyms(const struct uvs_elf *elf)
{
	return elf->nsyms;
}

void uvs_elf__lookup(const struct uvs_elf *elf, const char *const *names,
		     size_t n, const struct uvs_sym **out)
{
	size_t i, j;

	for (j = 0; j < n; j++)
		out[j] = NULL;
	for (i = 0; i < elf->nsyms; i++) {
		const struct uvs_sym *s = &elf->syms[i];

		/* Cheap first-byte filter: we look up few names among
		 * hundreds of thousands of symbols. */
		for (j = 0; j < n; j++) {
			if (!out[j] && s->name[0] == names[j][0] &&
			    !strcmp(s->name, names[j]))
				out[j] = s;
		}
	}
}

const struct uvs_sym *uvs_elf__find(const struct uvs_elf *elf,
				    const char *name)
{
	const struct uvs_sym *s;

	uvs_elf__lookup(elf, &name, 1, &s);
	return s;
}

static const GElf_Phdr *uvs__elf_seg(const struct uvs_elf *elf,
				     uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < elf->nloads; i++) {
		const GElf_Phdr *p = &elf->loads[i];

		if (vaddr >= p->p_vaddr && vaddr < p->p_vaddr + p->p_filesz)
			return p;
	}
	return NULL;
}

int uvs_elf__vaddr_to_off(const struct uvs_elf *elf, uint64_t vaddr,
			  uint64_t *off)
{
	const GElf_Phdr *p = uvs__elf_seg(elf, vaddr);

	if (!p)
		return -ENOENT;
	*off = vaddr - p->p_vaddr + p->p_offset;
	return 0;
}

int uvs_elf__read(const struct uvs_elf *elf, uint64_t vaddr, void *buf,
		  size_t len)
{
	const GElf_Phdr *p = uvs__elf_seg(elf, vaddr);
	uint64_t off;
	ssize_t n;

	if (!p || vaddr + len > p->p_vaddr + p->p_filesz)
		return -ENOENT;
	off = vaddr - p->p_vaddr + p->p_offset;
	n = pread(elf->fd, buf, len, off);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

uint64_t uvs_elf__base_vaddr(const struct uvs_elf *elf)
{
	uint64_t lo = UINT64_MAX;
	size_t i;

	for (i = 0; i < elf->nloads; i++)
		if (elf->loads[i].p_vaddr < lo)
			lo = elf->loads[i].p_vaddr;
	return lo == UINT64_MAX ? 0 : lo & ~0xfffull;
}

/* Copies "X.Y.Z" at p (digits and two dots) into buf; false if not one. */
static bool uvs__take_version(const char *p, const char *end, char *buf,
			      size_t len)
{
	size_t i = 0;
	int dots = 0;

	while (p + i < end && i + 1 < len &&
	       (isdigit((unsigned char)p[i]) || p[i] == '.')) {
		if (p[i] == '.' && (!i || p[i - 1] == '.'))
			return false;
		dots += p[i] == '.';
		i++;
	}
	if (dots != 2 || p[i - 1] == '.')
		return false;
	memcpy(buf, p, i);
	buf[i] = '\0';
	return true;
}

int uvs_elf__find_version_string(const struct uvs_elf *elf,
				 const char *prefix, char *buf, size_t len)
{
	size_t plen = strlen(prefix);
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf->e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		const char *p, *end;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_ALLOC) || (sh.sh_flags & SHF_EXECINSTR))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		p = d->d_buf;
		end = p + d->d_size;
		while ((p = memmem(p, end - p, prefix, plen))) {
			p += plen;
			if (uvs__take_version(p, end, buf, len))
				return 0;
		}
	}
	return -ENOENT;
}

int uvs_elf__needed(const struct uvs_elf *elf, char names[][256], int max)
{
	Elf_Scn *scn = NULL;
	int n = 0;

	while ((scn = elf_nextscn(elf->e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t i;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !sh.sh_entsize)
			continue;
		for (i = 0; i < sh.sh_size / sh.sh_entsize && n < max; i++) {
			GElf_Dyn dyn;
			const char *s;

			if (!gelf_getdyn(d, i, &dyn) || dyn.d_tag != DT_NEEDED)
				continue;
			s = elf_strptr(elf->e, sh.sh_link, dyn.d_un.d_val);
			if (s) {
				snprintf(names[n], 256, "%s", s);
				n++;
			}
		}
	}
	return n;
}

int uvs_elf__off_to_vaddr(const struct uvs_elf *elf, uint64_t off,
			  uint64_t *vaddr)
{
	size_t i;

	for (i = 0; i < elf->nloads; i++) {
		const GElf_Phdr *p = &elf->loads[i];

		if (off >= p->p_offset && off < p->p_offset + p->p_filesz) {
			*vaddr = off - p->p_offset + p->p_vaddr;
			return 0;
		}
	}
	return -ENOENT;
}


static int uvs__sym_ptr_cmp(const void *a, const void *b)
{
	return uvs__sym_addr_cmp(*(const struct uvs_sym *const *)a,
				 *(const struct uvs_sym *const *)b);
}

const struct uvs_sym *uvs_elf__symbolize(struct uvs_elf *elf, uint64_t vaddr)
{
	const struct uvs_sym **ix = elf->by_addr, *s;
	size_t lo = 0, hi, i;

	if (!ix && elf->nsyms) {
		ix = malloc(elf->nsyms * sizeof(*ix));
		if (!ix)
			return NULL;
		for (i = 0; i < elf->nsyms; i++)
			ix[i] = &elf->syms[i];
		qsort(ix, elf->nsyms, sizeof(*ix), uvs__sym_ptr_cmp);
		elf->by_addr = ix;
	}
	hi = ix ? elf->nsyms : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ix[mid]->addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	s = ix[lo - 1];
	/* walk back over same-address aliases to the sized one */
	while (lo > 1 && ix[lo - 2]->addr == s->addr && !s->size)
		s = ix[--lo - 1];
	if (s->size && vaddr >= s->addr + s->size)
		return NULL;
	if (!s->size && vaddr - s->addr > 4096)
		return NULL;
	return s;
}
