// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Folded stacks, and the flame graph, differential flame graph, speedscope
 * and folded writers. The SVG layout and script are uvscope's own; the idea
 * (a rectangle per merged frame, widths by samples, a script for zoom and
 * search) is Brendan Gregg's flamegraph.pl.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "flame.h"
#include "uvscope.h"

/* ---- the multiset: entries in insertion order, an open-addressing index */

struct uvs__stack {
	const char *str; /* NUL-terminated, in the arena */
	size_t len;
	uint64_t count;
	uint64_t hash;
};

struct uvs__chunk {
	struct uvs__chunk *next;
	size_t used, size;
	char data[];
};

struct uvs_stacks {
	struct uvs__stack *ents;
	size_t nents, cap_ents;
	uint32_t *index;  /* entry + 1, 0 = empty */
	size_t cap_index; /* a power of two, at least twice nents */
	uint64_t total;
	struct uvs__chunk *chunks;
	uint64_t bytes; /* of distinct stacks, held in chunks */
};

static uint64_t uvs__hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

int uvs_stacks__new(struct uvs_stacks **out)
{
	struct uvs_stacks *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return uvs_seterr(-ENOMEM, "out of memory");
	*out = s;
	return 0;
}

void uvs_stacks__free(struct uvs_stacks *s)
{
	struct uvs__chunk *c, *next;

	if (!s)
		return;
	for (c = s->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	free(s->ents);
	free(s->index);
	free(s);
}

static char *uvs__copy(struct uvs_stacks *s, const char *str, size_t len)
{
	struct uvs__chunk *c = s->chunks;
	char *p;

	if (!c || c->size - c->used < len + 1) {
		size_t size = len + 1 > (1u << 20) ? len + 1 : (1u << 20);

		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = s->chunks;
		s->chunks = c;
	}
	p = c->data + c->used;
	memcpy(p, str, len);
	p[len] = 0;
	c->used += len + 1;
	return p;
}

static int uvs__grow_index(struct uvs_stacks *s)
{
	size_t cap = s->cap_index ? s->cap_index * 2 : 1024, i, j;
	uint32_t *idx = calloc(cap, sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	for (i = 0; i < s->nents; i++) {
		for (j = s->ents[i].hash & (cap - 1); idx[j];
		     j = (j + 1) & (cap - 1))
			;
		idx[j] = i + 1;
	}
	free(s->index);
	s->index = idx;
	s->cap_index = cap;
	return 0;
}

/* NULL if the stack is well formed, else what is wrong with it. */
static const char *uvs__stack_problem(const char *str, size_t len)
{
	size_t i;

	if (!len)
		return "expected a stack, found nothing";
	if (str[0] == ';' || str[len - 1] == ';')
		return "empty frame (a ';' at an end of the stack)";
	for (i = 0; i < len; i++) {
		if (str[i] == ';' && str[i + 1] == ';')
			return "empty frame (';;' in the stack)";
		if (str[i] == '\n' || str[i] == '\r' || !str[i])
			return "control character in the stack";
	}
	return NULL;
}

int uvs_stacks__add_n(struct uvs_stacks *s, const char *folded, size_t len,
		      uint64_t count)
{
	const char *bad = uvs__stack_problem(folded, len);
	uint64_t h;
	size_t j;

	if (bad)
		return uvs_seterr(-EINVAL, "bad folded stack: %s", bad);
	if (!count)
		return 0;
	if (s->total + count < s->total)
		return uvs_seterr(-EOVERFLOW, "sample count overflows 64 bits");
	h = uvs__hash(folded, len);
	if (s->cap_index) {
		for (j = h & (s->cap_index - 1); s->index[j];
		     j = (j + 1) & (s->cap_index - 1)) {
			struct uvs__stack *e = &s->ents[s->index[j] - 1];

			if (e->hash == h && e->len == len &&
			    !memcmp(e->str, folded, len)) {
				e->count += count;
				s->total += count;
				return 0;
			}
		}
	}
	if (s->bytes + len + 1 > UVS_STACKS_MAX_BYTES)
		return uvs_seterr(-E2BIG,
				  "more than %llu MiB of distinct stacks",
				  UVS_STACKS_MAX_BYTES >> 20);
	if ((s->nents + 1) * 2 > s->cap_index) {
		if (s->nents + 1 >= UINT32_MAX / 4 || uvs__grow_index(s))
			return uvs_seterr(-ENOMEM, "out of memory");
	}
	if (s->nents == s->cap_ents) {
		size_t cap = s->cap_ents ? s->cap_ents * 2 : 256;
		struct uvs__stack *e = realloc(s->ents, cap * sizeof(*e));

		if (!e)
			return uvs_seterr(-ENOMEM, "out of memory");
		s->ents = e;
		s->cap_ents = cap;
	}
	s->ents[s->nents].str = uvs__copy(s, folded, len);
	if (!s->ents[s->nents].str)
		return uvs_seterr(-ENOMEM, "out of memory");
	s->bytes += len + 1;
	s->ents[s->nents].len = len;
	s->ents[s->nents].count = count;
	s->ents[s->nents].hash = h;
	for (j = h & (s->cap_index - 1); s->index[j];
	     j = (j + 1) & (s->cap_index - 1))
		;
	s->index[j] = ++s->nents;
	s->total += count;
	return 0;
}

int uvs_stacks__add(struct uvs_stacks *s, const char *folded, uint64_t count)
{
	return uvs_stacks__add_n(s, folded, strlen(folded), count);
}

uint64_t uvs_stacks__total(const struct uvs_stacks *s)
{
	return s->total;
}

size_t uvs_stacks__count(const struct uvs_stacks *s)
{
	return s->nents;
}

/* Frame-wise order: ';' ends a frame, so it sorts before any byte a name
 * can hold ("a" < "a;x" < "a0"), which keeps a frame's stacks together. */
static int uvs__cmp_folded(const char *a, size_t al, const char *b, size_t bl)
{
	size_t i, n = al < bl ? al : bl;

	for (i = 0; i < n; i++) {
		unsigned char ca = a[i], cb = b[i];

		if (ca == cb)
			continue;
		if (ca == ';')
			return -1;
		if (cb == ';')
			return 1;
		return ca < cb ? -1 : 1;
	}
	return al < bl ? -1 : al > bl;
}

static int uvs__cmp_ent(const void *pa, const void *pb)
{
	const struct uvs__stack *a = *(const struct uvs__stack *const *)pa;
	const struct uvs__stack *b = *(const struct uvs__stack *const *)pb;

	return uvs__cmp_folded(a->str, a->len, b->str, b->len);
}

/* The entries in frame-wise order; the caller frees the array. */
static const struct uvs__stack **uvs__sorted(const struct uvs_stacks *s)
{
	const struct uvs__stack **v = malloc((s->nents + 1) * sizeof(*v));
	size_t i;

	if (!v)
		return NULL;
	for (i = 0; i < s->nents; i++)
		v[i] = &s->ents[i];
	qsort(v, s->nents, sizeof(*v), uvs__cmp_ent);
	return v;
}

int uvs_stacks__foreach(const struct uvs_stacks *s, uvs_stack_fn fn, void *ctx)
{
	const struct uvs__stack **v = uvs__sorted(s);
	size_t i;
	int ret = 0;

	if (!v)
		return uvs_seterr(-ENOMEM, "out of memory");
	for (i = 0; i < s->nents && !ret; i++)
		ret = fn(v[i]->str, v[i]->count, ctx);
	free(v);
	return ret;
}

/* ---- folded text in and out ---- */

static bool uvs__blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Lines of a FILE, none longer than UVS_FOLDED_LINE_MAX held: buf[start,
 * end) is read and not yet returned, with no '\n' in [start, scanned). */
struct uvs__lines {
	FILE *f;
	char *buf;
	size_t cap, start, end, scanned;
	bool eof;
};

/* The next line, without its '\n', at *line: its length, -1 at the end of
 * the file, -2 for a line longer than UVS_FOLDED_LINE_MAX (read no further
 * than that). */
static ssize_t uvs__next_line(struct uvs__lines *r, char **line)
{
	char *nl;
	size_t len;

	for (;;) {
		nl = memchr(r->buf + r->scanned, '\n', r->end - r->scanned);
		len = (nl ? (size_t)(nl - r->buf) : r->end) - r->start;
		if (len > UVS_FOLDED_LINE_MAX)
			return -2;
		if (nl || (r->eof && len)) {
			*line = r->buf + r->start;
			r->start = r->scanned = r->start + len + (nl != NULL);
			return len;
		}
		if (r->eof)
			return -1;
		memmove(r->buf, r->buf + r->start, len);
		r->start = 0;
		r->end = r->scanned = len;
		len = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
		r->end += len;
		r->eof = !len;
	}
}

int uvs_stacks__read_folded_fp(struct uvs_stacks *s, FILE *f, const char *name)
{
	struct uvs__lines r = {.f = f,
			       .cap = UVS_FOLDED_LINE_MAX + (256 << 10)};
	size_t lineno = 0;
	ssize_t got;
	char *line, q[200];
	int err = 0;

	r.buf = malloc(r.cap);
	if (!r.buf)
		return uvs_seterr(-ENOMEM, "%s: out of memory", name);
	while ((got = uvs__next_line(&r, &line)) != -1) {
		size_t len = got, sp, i;
		uint64_t count = 0;
		const char *bad;

		lineno++;
		if (got == -2) {
			err =
			    uvs_seterr(-EINVAL,
				       "%s:%zu: expected folded stacks, found "
				       "a line longer than %u KiB",
				       name, lineno, UVS_FOLDED_LINE_MAX >> 10);
			break;
		}
		if (memchr(line, 0, len)) {
			err =
			    uvs_seterr(-EINVAL,
				       "%s:%zu: expected folded stacks, found "
				       "binary data (a NUL byte)",
				       name, lineno);
			break;
		}
		while (len && uvs__blank(line[len - 1]))
			len--;
		if (!len)
			continue;
		for (sp = len;
		     sp && line[sp - 1] != ' ' && line[sp - 1] != '\t'; sp--)
			;
		if (!sp) {
			err = uvs_seterr(-EINVAL,
					 "%s:%zu: expected 'frame;frame;... "
					 "COUNT', found no count",
					 name, lineno);
			break;
		}
		for (i = sp; i < len; i++) {
			unsigned d = (unsigned char)line[i] - '0';

			/* what is quoted came from the file: escaped */
			if (d > 9) {
				uvs_text_esc(q, sizeof(q), line + sp,
					     len - sp > 40 ? 40 : len - sp,
					     false);
				err = uvs_seterr(-EINVAL,
						 "%s:%zu: expected a whole "
						 "number of samples after the "
						 "last blank, found '%s'",
						 name, lineno, q);
				break;
			}
			if (count > (UINT64_MAX - d) / 10) {
				uvs_text_esc(q, sizeof(q), line + sp,
					     len - sp > 40 ? 40 : len - sp,
					     false);
				err = uvs_seterr(-EINVAL,
						 "%s:%zu: sample count '%s' "
						 "does not fit in 64 bits",
						 name, lineno, q);
				break;
			}
			count = count * 10 + d;
		}
		if (err)
			break;
		while (sp && (line[sp - 1] == ' ' || line[sp - 1] == '\t'))
			sp--;
		bad = uvs__stack_problem(line, sp);
		if (bad) {
			err = uvs_seterr(-EINVAL, "%s:%zu: %s", name, lineno,
					 bad);
			break;
		}
		err = uvs_stacks__add_n(s, line, sp, count);
		if (err == -E2BIG) {
			err = uvs_seterr(err,
					 "%s:%zu: more than %llu MiB of "
					 "distinct stacks: not read further",
					 name, lineno,
					 UVS_STACKS_MAX_BYTES >> 20);
			break;
		}
		if (err) {
			err = uvs_seterr(err, "%s:%zu: %s", name, lineno,
					 err == -EOVERFLOW
					     ? "the total of samples "
					       "overflows 64 bits"
					     : "out of memory");
			break;
		}
	}
	if (!err && ferror(f))
		err = uvs_seterr(-EIO, "%s: read error", name);
	free(r.buf);
	return err;
}

int uvs_stacks__read_folded(struct uvs_stacks *s, const char *path)
{
	struct stat st;
	FILE *f = fopen(path, "re");
	int err;

	if (!f)
		return uvs_seterr(-errno, "%s: %s", path, strerror(errno));
	/* a device may give bytes for ever (/dev/zero): only what ends
	 * (/dev/null does), or what a person types, is read */
	if (fstat(fileno(f), &st) ||
	    !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) ||
	      (S_ISCHR(st.st_mode) &&
	       (st.st_rdev == makedev(1, 3) || isatty(fileno(f)))))) {
		fclose(f);
		return uvs_seterr(-EINVAL,
				  "%s: not a regular file, a pipe or a "
				  "terminal: not read",
				  path);
	}
	err = uvs_stacks__read_folded_fp(s, f, path);
	fclose(f);
	return err;
}

static int uvs__put_folded(const char *folded, uint64_t count, void *ctx)
{
	fprintf(ctx, "%s %" PRIu64 "\n", folded, count);
	return 0;
}

int uvs_stacks__write_folded(const struct uvs_stacks *s, FILE *out)
{
	int err = uvs_stacks__foreach(s, uvs__put_folded, out);

	if (err)
		return err;
	if (ferror(out))
		return uvs_seterr(-EIO, "write error");
	return 0;
}

/* ---- perf maps ---- */

/* A hex number of 1 to 16 digits, "0x" allowed, at *p; moves *p past it. */
static int uvs__hex(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	int n = 0;

	*v = 0;
	if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; s < end; s++, n++) {
		unsigned c = (unsigned char)*s, d;

		if (c - '0' < 10)
			d = c - '0';
		else if ((c | 0x20) - 'a' < 6)
			d = (c | 0x20) - 'a' + 10;
		else
			break;
		if (n == 16)
			return -EINVAL;
		*v = *v << 4 | d;
	}
	*p = s;
	return n ? 0 : -EINVAL;
}

/* At least one blank at *p, skipped. */
static int uvs__blanks(const char **p, const char *end)
{
	const char *s = *p;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s == *p)
		return -EINVAL;
	*p = s;
	return 0;
}

int uvs_perfmap__parse_line(const char *line, size_t len,
			    struct uvs_perfmap_sym *out)
{
	const char *p = line, *end = line + len;

	if (len && end[-1] == '\r')
		end--;
	if (uvs__hex(&p, end, &out->start) || uvs__blanks(&p, end) ||
	    uvs__hex(&p, end, &out->size) || uvs__blanks(&p, end) || p == end ||
	    memchr(p, 0, end - p) || !out->size ||
	    out->start + out->size < out->start)
		return -EINVAL;
	out->name = p;
	out->len = end - p;
	return 0;
}

int uvs_perfmap__read(int fd, struct uvs_perfmap_cursor *c, uint64_t end,
		      uvs_perfmap_fn fn, void *ctx)
{
	/* a line being put together: buf[0, have) is the file's from pos -
	 * have, unless c->skip. buf grows to a line's length, up to the
	 * longest line taken. */
	size_t cap = UVS_PERFMAP_LINE_MAX + 1, have = 0, rest;
	char *buf, *start, *scan, *nl;
	uint64_t pos = c->off;
	int ret = 0;

	if (end > pos && end - pos < cap)
		cap = end - pos < 4096 ? 4096 : end - pos;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	while (pos < end) {
		size_t want = cap - have;
		ssize_t got;

		if (want > end - pos)
			want = end - pos;
		got = pread(fd, buf + have, want, pos);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = -errno;
			break;
		}
		if (!got) /* it shrank under us: what is read is kept */
			break;
		pos += got;
		start = buf;
		scan = buf + have;
		have += got;
		while (!ret && (nl = memchr(scan, '\n', buf + have - scan))) {
			struct uvs_perfmap_sym sym;

			if (c->skip) {
				c->skip = false; /* the long line's end */
			} else if (nl > start) {
				c->lines++;
				if (uvs_perfmap__parse_line(start, nl - start,
							    &sym))
					c->bad++;
				else
					ret = fn(&sym, ctx);
			}
			start = scan = nl + 1;
		}
		rest = buf + have - start;
		if (ret) {
			c->off = pos - rest;
			break;
		}
		if (c->skip || rest > UVS_PERFMAP_LINE_MAX) {
			/* no name is that long: the line is dropped, and
			 * the rest of it when it comes */
			c->bad += !c->skip;
			c->skip = true;
			have = 0;
			c->off = pos;
			continue;
		}
		memmove(buf, start, rest);
		have = rest;
		c->off = pos - rest;
		if (have == cap) {
			char *nb;

			cap = cap * 2 > UVS_PERFMAP_LINE_MAX + 1
				  ? UVS_PERFMAP_LINE_MAX + 1
				  : cap * 2;
			nb = realloc(buf, cap);
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			buf = nb;
		}
	}
	free(buf);
	return ret < 0 ? ret : 0;
}

/* ---- frame kinds ---- */

static bool uvs__starts(const char *f, size_t len, const char *p)
{
	size_t n = strlen(p);

	return len >= n && !memcmp(f, p, n);
}

static bool uvs__ends(const char *f, size_t len, const char *p)
{
	size_t n = strlen(p);

	return len >= n && !memcmp(f + len - n, p, n);
}

static const char *const uvs__roots[] = {
    "timers", "pending",    "idle",	"prepare", "poll", "check",
    "close",  "microtasks", "nextTick", "off-cpu", "gc",   "unknown",
};

static const char *const uvs__js_tags[] = {
    "JS:",
    "LazyCompile:",
    "Function:",
    "InterpretedFunction:",
    "Builtin:",
    "Builtins_",
    "BytecodeHandler:",
    "Stub:",
    "RegExp:",
    "Script:",
    "Eval:",
    "[jit]",
};

static enum uvs_frame_kind uvs__kind(const char *f, size_t len, unsigned depth)
{
	size_t i;

	if (!depth)
		for (i = 0; i < sizeof(uvs__roots) / sizeof(*uvs__roots); i++)
			if (len == strlen(uvs__roots[i]) &&
			    !memcmp(f, uvs__roots[i], len))
				return UVS_FRAME_ROOT;
	if (uvs__ends(f, len, "_[k]"))
		return UVS_FRAME_KERNEL;
	if (uvs__ends(f, len, "_[j]"))
		return UVS_FRAME_JS;
	for (i = 0; i < sizeof(uvs__js_tags) / sizeof(*uvs__js_tags); i++)
		if (uvs__starts(f, len, uvs__js_tags[i]))
			return UVS_FRAME_JS;
	if (uvs__starts(f, len, "uv_"))
		return UVS_FRAME_LIBUV;
	return UVS_FRAME_NATIVE;
}

enum uvs_frame_kind uvs_flame__frame_kind(const char *frame, unsigned depth)
{
	return uvs__kind(frame, strlen(frame), depth);
}

const char *uvs_frame_kind_name(enum uvs_frame_kind kind)
{
	static const char *const names[] = {"root", "kernel", "js", "libuv",
					    "native"};

	return kind < UVS_FRAME_KIND_NR ? names[kind] : "?";
}

/* ---- escaping: XML and JSON text, from bytes that may not be UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s (non-ASCII), or 0. */
static size_t uvs__utf8_len(const unsigned char *s, size_t left)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe ||
	    cp == 0xffff)
		return 0;
	return n;
}

enum uvs__esc { UVS__XML, UVS__JSON };

/* Writes s escaped for XML text and attributes, or for a JSON string;
 * bytes that are not UTF-8, and control characters XML cannot hold,
 * become U+FFFD. */
static void uvs__put_esc(FILE *out, const char *str, size_t len,
			 enum uvs__esc how)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0, n;

	while (i < len) {
		unsigned char c = s[i];
		const char *rep = NULL;
		char buf[8];

		if (c >= 0x80) {
			n = uvs__utf8_len(s + i, len - i);
			if (n) {
				i += n;
				continue;
			}
			rep = "\xef\xbf\xbd";
		} else if (c == '&' && how == UVS__XML) {
			rep = "&amp;";
		} else if (c == '<' && how == UVS__XML) {
			rep = "&lt;";
		} else if (c == '>' && how == UVS__XML) {
			rep = "&gt;";
		} else if (c == '"') {
			rep = how == UVS__XML ? "&quot;" : "\\\"";
		} else if (c == '\\' && how == UVS__JSON) {
			rep = "\\\\";
		} else if (c < 0x20 || c == 0x7f) {
			if (how == UVS__JSON) {
				snprintf(buf, sizeof(buf), "\\u%04x", c);
				rep = buf;
			} else if (c != '\t') {
				rep = "\xef\xbf\xbd";
			}
		}
		if (!rep) {
			i++;
			continue;
		}
		fwrite(s + run, 1, i - run, out);
		fputs(rep, out);
		run = ++i;
	}
	fwrite(s + run, 1, i - run, out);
}

/* ---- text for a terminal ---- */

/* How many bytes at s print as they are, or 0 when s[0] is to be
 * escaped. */
static size_t uvs__text_ok(const unsigned char *s, size_t left, bool lines)
{
	size_t n;

	if (s[0] < 0x80)
		return (s[0] >= 0x20 && s[0] != 0x7f) || s[0] == '\t' ||
		       (lines && s[0] == '\n');
	n = uvs__utf8_len(s, left);
	/* C1 controls, U+0080..U+009F: a terminal may act on them too */
	if (n == 2 && s[0] == 0xc2 && s[1] < 0xa0)
		return 0;
	/* bidirectional controls reorder what is shown: U+061C, U+200E,
	 * U+200F, U+202A..U+202E, U+2066..U+2069 */
	if ((n == 2 && s[0] == 0xd8 && s[1] == 0x9c) ||
	    (n == 3 && s[0] == 0xe2 && s[1] == 0x80 &&
	     (s[2] == 0x8e || s[2] == 0x8f ||
	      (s[2] >= 0xaa && s[2] <= 0xae))) ||
	    (n == 3 && s[0] == 0xe2 && s[1] == 0x81 && s[2] >= 0xa6 &&
	     s[2] <= 0xa9))
		return 0;
	return n;
}

char *uvs_text_esc(char *buf, size_t size, const char *str, size_t len,
		   bool lines)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, o = 0, n;

	if (!size)
		return buf;
	while (i < len) {
		n = uvs__text_ok(s + i, len - i, lines);
		if (n) {
			if (o + n >= size)
				break;
			memcpy(buf + o, s + i, n);
			o += n;
			i += n;
		} else {
			if (o + 4 >= size)
				break;
			snprintf(buf + o, 5, "\\x%02x", s[i++]);
			o += 4;
		}
	}
	buf[o] = '\0';
	return buf;
}

void uvs_text_put(FILE *out, const char *str, size_t len, bool lines)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0, n;

	while (i < len) {
		n = uvs__text_ok(s + i, len - i, lines);
		if (n) {
			i += n;
			continue;
		}
		fwrite(s + run, 1, i - run, out);
		fprintf(out, "\\x%02x", s[i]);
		run = ++i;
	}
	fwrite(s + run, 1, i - run, out);
}

/* ---- the merged tree ---- */

struct uvs__item {
	const char *str;
	size_t len;
	uint64_t n, b; /* run (or only) count, base count */
};

struct uvs__node {
	const char *name;
	uint32_t len, depth; /* depth 0 is "all" */
	uint64_t x;	     /* samples left of the frame */
	uint64_t n, b;
};

struct uvs__tree {
	struct uvs__node *nodes; /* pre-order, drawn frames only */
	size_t nnodes, cap;
	uint64_t total, btotal;
	unsigned maxdepth;
	uint64_t pruned;    /* frames narrower than min_width */
	uint64_t base_only; /* frames with no samples in run */
};

static int uvs__push(struct uvs__tree *t, const struct uvs__node *n)
{
	if (t->nnodes == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4096;
		struct uvs__node *v = realloc(t->nodes, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->nodes = v;
		t->cap = cap;
	}
	t->nodes[t->nnodes++] = *n;
	return 0;
}

/* Items sorted frame-wise, so a frame's stacks are adjacent: a stack opens
 * the frames it does not share with the one before, and closes the rest.
 * A closed frame narrower than min_samples is dropped with its subtree,
 * which is all that follows it in pre-order. */
static int uvs__build(struct uvs__tree *t, const struct uvs__item *items,
		      size_t nitems, double min_samples)
{
	size_t *path = NULL, depth = 0, cap = 64, i;
	struct uvs__node all = {.name = "all", .len = 3};
	uint64_t cum = 0;
	int err = -ENOMEM;

	path = malloc(cap * sizeof(*path));
	if (!path || uvs__push(t, &all))
		goto out;
	path[0] = 0;
	for (i = 0; i <= nitems; i++) {
		const struct uvs__item *it = i < nitems ? &items[i] : NULL;
		const char *p = it ? it->str : "",
			   *end = p + (it ? it->len : 0);
		size_t k = 0, d;

		/* frames shared with the open path */
		while (it && p < end && k < depth) {
			const struct uvs__node *o = &t->nodes[path[k + 1]];
			const char *semi = memchr(p, ';', end - p);
			size_t flen = (semi ? semi : end) - p;

			if (flen != o->len || memcmp(p, o->name, flen))
				break;
			p += flen + (semi != NULL);
			k++;
		}
		/* close the rest, deepest first */
		for (; depth > k; depth--) {
			struct uvs__node *o = &t->nodes[path[depth]];

			if ((double)o->n < min_samples || !o->n) {
				if (o->n)
					t->pruned++;
				else
					t->base_only++;
				t->nnodes = path[depth];
			} else if (o->depth > t->maxdepth) {
				t->maxdepth = o->depth;
			}
		}
		if (!it)
			break;
		/* open its own frames */
		while (p < end) {
			const char *semi = memchr(p, ';', end - p);
			struct uvs__node o = {.name = p,
					      .len = (semi ? semi : end) - p,
					      .depth = depth + 1,
					      .x = cum};

			if (depth + 2 > cap) {
				size_t *v = realloc(path, 2 * cap * sizeof(*v));

				if (!v)
					goto out;
				path = v;
				cap *= 2;
			}
			if (uvs__push(t, &o))
				goto out;
			path[++depth] = t->nnodes - 1;
			p += o.len + (semi != NULL);
		}
		for (d = 0; d <= depth; d++) {
			t->nodes[path[d]].n += it->n;
			t->nodes[path[d]].b += it->b;
		}
		cum += it->n;
	}
	err = 0;
out:
	free(path);
	return err;
}

static int uvs__cmp_item(const void *pa, const void *pb)
{
	const struct uvs__item *a = pa, *b = pb;

	return uvs__cmp_folded(a->str, a->len, b->str, b->len);
}

/* The union of run and base as items, sorted, equal stacks merged. */
static int uvs__items(const struct uvs_stacks *run,
		      const struct uvs_stacks *base, struct uvs__item **out,
		      size_t *nout)
{
	size_t n = run->nents + (base ? base->nents : 0), i, j = 0;
	struct uvs__item *v = malloc((n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (i = 0; i < run->nents; i++)
		v[j++] = (struct uvs__item){run->ents[i].str, run->ents[i].len,
					    run->ents[i].count, 0};
	for (i = 0; base && i < base->nents; i++)
		v[j++] =
		    (struct uvs__item){base->ents[i].str, base->ents[i].len, 0,
				       base->ents[i].count};
	qsort(v, n, sizeof(*v), uvs__cmp_item);
	for (i = j = 0; i < n; i++) {
		if (j && !uvs__cmp_item(&v[j - 1], &v[i])) {
			v[j - 1].n += v[i].n;
			v[j - 1].b += v[i].b;
		} else {
			v[j++] = v[i];
		}
	}
	*out = v;
	*nout = j;
	return 0;
}

/* ---- the SVG ---- */

static void uvs__hsl(double h, double s, double l, unsigned char rgb[3])
{
	double c = (1 - fabs(2 * l - 1)) * s, hp = fmod(h, 360) / 60;
	double x = c * (1 - fabs(fmod(hp, 2) - 1)), m = l - c / 2, r, g, b;

	if (hp < 1)
		r = c, g = x, b = 0;
	else if (hp < 2)
		r = x, g = c, b = 0;
	else if (hp < 3)
		r = 0, g = c, b = x;
	else if (hp < 4)
		r = 0, g = x, b = c;
	else if (hp < 5)
		r = x, g = 0, b = c;
	else
		r = c, g = 0, b = x;
	rgb[0] = lround((r + m) * 255);
	rgb[1] = lround((g + m) * 255);
	rgb[2] = lround((b + m) * 255);
}

/* Hue, saturation, lightness of each kind; a name's hash moves it a little
 * so neighbours differ, and the same name has the same colour everywhere. */
static const double uvs__palette[UVS_FRAME_KIND_NR][3] = {
    [UVS_FRAME_ROOT] = {265, 0.45, 0.68},
    [UVS_FRAME_KERNEL] = {215, 0.35, 0.66},
    [UVS_FRAME_JS] = {105, 0.50, 0.52},
    [UVS_FRAME_LIBUV] = {188, 0.60, 0.52},
    [UVS_FRAME_NATIVE] = {8, 0.80, 0.62},
};

static void uvs__kind_color(enum uvs_frame_kind k, const char *name, size_t len,
			    unsigned char rgb[3])
{
	uint64_t h = uvs__hash(name, len);
	double hue = uvs__palette[k][0], l = uvs__palette[k][2];

	if (k == UVS_FRAME_NATIVE)
		hue += (h & 0xff) / 255.0 * 40; /* red to yellow */
	else
		hue += ((h & 0xff) / 255.0 - 0.5) * 16;
	l += (((h >> 8) & 0xff) / 255.0 - 0.5) * 0.12;
	uvs__hsl(hue + 360, uvs__palette[k][1], l, rgb);
}

/* Red for growth, blue for shrinking, white for none; k in [0, 1]. */
static void uvs__diff_color(double d, double maxabs, unsigned char rgb[3])
{
	double k = maxabs > 0 ? fabs(d) / maxabs : 0;
	unsigned char fade = lround(255 - 200 * (k > 1 ? 1 : k));

	rgb[0] = d > 0 ? 255 : fade;
	rgb[1] = fade;
	rgb[2] = d < 0 ? 255 : fade;
}

static void uvs__put_count(FILE *out, uint64_t v)
{
	char buf[32], grp[40];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, v), i, j = 0;

	for (i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			grp[j++] = ',';
		grp[j++] = buf[i];
	}
	grp[j] = 0;
	fputs(grp, out);
}

/* Number of characters (UTF-8 code points) in the first len bytes. */
static size_t uvs__nchars(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

#define UVS__FONT      12
#define UVS__CHAR_W    (UVS__FONT * 0.59)
#define UVS__PAD       10
#define UVS__TOP       74
#define UVS__BOTTOM    34
#define UVS__HIGHLIGHT "rgb(230,0,230)"

/* The label that fits w px: the name, a shortened one ending in "..", or
 * nothing when fewer than 3 characters fit. The script does the same. */
static void uvs__put_label(FILE *out, const char *name, size_t len, double w)
{
	long fit = (long)((w - 6) / UVS__CHAR_W);
	size_t keep = 0, chars = 0;

	if (fit < 3)
		return;
	if ((long)uvs__nchars(name, len) <= fit) {
		uvs__put_esc(out, name, len, UVS__XML);
		return;
	}
	while (keep < len && chars < (size_t)fit - 2) {
		keep++;
		while (keep < len && ((unsigned char)name[keep] & 0xc0) == 0x80)
			keep++;
		chars++;
	}
	uvs__put_esc(out, name, keep, UVS__XML);
	fputs("..", out);
}

/* Click, hover, search and zoom. Frames are <g class="f"> holding a
 * <title> ("name\ndetails"), a <rect> and maybe a <text>; data-x and data-n
 * are the samples left of the frame and in it, exact integers, so zoom
 * decides what is inside what without rounding. The root <svg> carries the
 * geometry in data-* attributes. Works standalone and inlined in HTML. */
/* clang-format off */
static const char uvs__script[] =
	"(function () {\n"
	"var me = document.currentScript;\n"
	"var svg = me ? me.closest('svg') : document.documentElement;\n"
	"var D = svg.dataset, W = +D.width, PAD = +D.pad, FH = +D.fh,\n"
	"  YB = +D.ybase, TOTAL = +D.total, CW = +D.cw, HL = D.highlight;\n"
	"var q = function (c) { return svg.querySelector('.' + c); };\n"
	"var details = q('uvs-details'), matched = q('uvs-matched'),\n"
	"  unzoom = q('uvs-unzoom'), searchBtn = q('uvs-search');\n"
	"var frames = [], i, els = svg.querySelectorAll('g.f');\n"
	"for (i = 0; i < els.length; i++) {\n"
	"  var g = els[i], r = g.querySelector('rect'),\n"
	"    t = g.querySelector('title').textContent.split('\\n');\n"
	"  g.uvs = {g: g, r: r, x: +g.dataset.x, n: +g.dataset.n,\n"
	"    d: Math.round((YB - +r.getAttribute('y')) / FH), name: t[0],\n"
	"    info: t.slice(1).join(' \\u00b7 '), fill: r.getAttribute('fill')};\n"
	"  frames.push(g.uvs);\n"
	"}\n"
	"function label(f, w) {\n"
	"  var t = f.g.querySelector('text'), fit = Math.floor((w - 6) / CW), s = '';\n"
	"  if (fit >= 3) s = f.name.length <= fit ? f.name :\n"
	"    f.name.slice(0, fit - 2) + '..';\n"
	"  if (!t) {\n"
	"    if (!s) return;\n"
	"    t = document.createElementNS('http://www.w3.org/2000/svg', 'text');\n"
	"    t.setAttribute('y', +f.r.getAttribute('y') + FH * 0.72);\n"
	"    f.g.appendChild(t);\n"
	"  }\n"
	"  t.setAttribute('x', +f.r.getAttribute('x') + 3);\n"
	"  t.textContent = s;\n"
	"}\n"
	"function zoom(z) {\n"
	"  var scale = (W - 2 * PAD) / z.n;\n"
	"  svg.classList.toggle('zoomed', z.d > 0);\n"
	"  for (var i = 0; i < frames.length; i++) {\n"
	"    var f = frames[i], x, w, cl = f.g.classList;\n"
	"    if (f.d < z.d && f.x <= z.x && z.x + z.n <= f.x + f.n) {\n"
	"      x = PAD; w = W - 2 * PAD; cl.add('a'); cl.remove('h');\n"
	"    } else if (f.d >= z.d && f.x >= z.x && f.x + f.n <= z.x + z.n) {\n"
	"      x = PAD + (f.x - z.x) * scale; w = f.n * scale;\n"
	"      cl.remove('a'); cl.remove('h');\n"
	"    } else {\n"
	"      cl.add('h'); continue;\n"
	"    }\n"
	"    f.r.setAttribute('x', x.toFixed(2));\n"
	"    f.r.setAttribute('width', w.toFixed(2));\n"
	"    label(f, w);\n"
	"  }\n"
	"}\n"
	"function percent(v) { return (100 * v / TOTAL).toFixed(2) + '%'; }\n"
	"function search(term) {\n"
	"  var re, spans = [], sum = 0, end = -1, i;\n"
	"  try { re = new RegExp(term); } catch (e) {\n"
	"    re = new RegExp(term.replace(/[.*+?^${}()|[\\]\\\\]/g, '\\\\$&'));\n"
	"  }\n"
	"  for (i = 0; i < frames.length; i++) {\n"
	"    var f = frames[i], hit = f.d > 0 && re.test(f.name);\n"
	"    f.r.setAttribute('fill', hit ? HL : f.fill);\n"
	"    f.g.classList.toggle('m', hit);\n"
	"    if (hit) spans.push([f.x, f.x + f.n]);\n"
	"  }\n"
	"  spans.sort(function (a, b) { return a[0] - b[0]; });\n"
	"  for (i = 0; i < spans.length; i++) {\n"
	"    if (spans[i][0] >= end) { sum += spans[i][1] - spans[i][0]; end = spans[i][1]; }\n"
	"    else if (spans[i][1] > end) { sum += spans[i][1] - end; end = spans[i][1]; }\n"
	"  }\n"
	"  matched.textContent = 'Matched: ' + percent(sum) + ' of ' + TOTAL.toLocaleString('en-US') + ' (' + spans.length + ' frames)';\n"
	"  searchBtn.textContent = 'Reset Search';\n"
	"  svg.classList.add('searching');\n"
	"}\n"
	"function resetSearch() {\n"
	"  for (var i = 0; i < frames.length; i++) {\n"
	"    frames[i].r.setAttribute('fill', frames[i].fill);\n"
	"    frames[i].g.classList.remove('m');\n"
	"  }\n"
	"  matched.textContent = '';\n"
	"  searchBtn.textContent = 'Search';\n"
	"  svg.classList.remove('searching');\n"
	"}\n"
	"function ask() {\n"
	"  if (svg.classList.contains('searching')) { resetSearch(); return; }\n"
	"  var term = window.prompt('Search for (a regular expression):', '');\n"
	"  if (term) search(term);\n"
	"}\n"
	"svg.addEventListener('click', function (e) {\n"
	"  var t = e.target, g = t.closest && t.closest('g.f');\n"
	"  if (g) { zoom(g.uvs); return; }\n"
	"  if (t === unzoom) zoom(frames[0]);\n"
	"  else if (t === searchBtn) ask();\n"
	"});\n"
	"svg.addEventListener('mouseover', function (e) {\n"
	"  var g = e.target.closest && e.target.closest('g.f');\n"
	"  if (g) details.textContent = g.uvs.name + ' \\u2014 ' + g.uvs.info;\n"
	"});\n"
	"svg.addEventListener('mouseout', function (e) {\n"
	"  if (e.target.closest && e.target.closest('g.f')) details.textContent = ' ';\n"
	"});\n"
	"document.addEventListener('keydown', function (e) {\n"
	"  if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); ask(); }\n"
	"  else if (e.key === 'Escape') zoom(frames[0]);\n"
	"});\n"
	"svg.uvsflame = {zoom: function (g) { zoom(g.uvs); }, reset: function () { zoom(frames[0]); },\n"
	"  search: search, resetSearch: resetSearch};\n"
	"})();\n";

static const char uvs__style[] =
	"text { font-family: Verdana, 'DejaVu Sans', sans-serif; "
	"font-size: 12px; fill: #000; }\n"
	".uvs-title { font-size: 17px; text-anchor: middle; }\n"
	".uvs-sub { fill: #555; text-anchor: middle; }\n"
	".uvs-btn { cursor: pointer; fill: #333; text-decoration: underline; }\n"
	".uvs-unzoom { opacity: 0; }\n"
	".zoomed .uvs-unzoom { opacity: 1; }\n"
	"g.f { cursor: pointer; }\n"
	"g.f text { pointer-events: none; }\n"
	"g.f:hover rect { stroke: #000; stroke-width: 0.5; }\n"
	"g.a { opacity: 0.5; }\n"
	"g.h { display: none; }\n";
/* clang-format on */

struct uvs__svg {
	const struct uvs_flame_opts *o;
	const struct uvs__tree *t;
	bool diff;
	double scale, maxabs;
};

static void uvs__put_pct(FILE *out, uint64_t v, uint64_t total)
{
	fprintf(out, "%.2f%%", total ? 100.0 * v / total : 0.0);
}

static void uvs__put_frame(FILE *out, const struct uvs__svg *v,
			   const struct uvs__node *n)
{
	const struct uvs__tree *t = v->t;
	double x = UVS__PAD + n->x * v->scale, w = n->n * v->scale;
	unsigned y = UVS__TOP + (t->maxdepth - n->depth) * v->o->frame_height;
	unsigned char rgb[3];
	const char *unit = v->o->unit;

	if (!n->depth) {
		rgb[0] = rgb[1] = rgb[2] = 200;
	} else if (v->diff) {
		double d = (double)n->n / t->total -
			   (t->btotal ? (double)n->b / t->btotal : 0);

		uvs__diff_color(d, v->maxabs, rgb);
	} else {
		uvs__kind_color(uvs__kind(n->name, n->len, n->depth - 1),
				n->name, n->len, rgb);
	}
	fprintf(out,
		"<g class=\"f\" data-x=\"%" PRIu64 "\" data-n=\"%" PRIu64 "\"",
		n->x, n->n);
	if (v->diff)
		fprintf(out, " data-b=\"%" PRIu64 "\"", n->b);
	fputs("><title>", out);
	uvs__put_esc(out, n->name, n->len, UVS__XML);
	fputc('\n', out);
	if (v->diff) {
		double rs = (double)n->n / t->total,
		       bs = t->btotal ? (double)n->b / t->btotal : 0;

		fputs("base ", out);
		uvs__put_count(out, n->b);
		fputs(" (", out);
		uvs__put_pct(out, n->b, t->btotal);
		fputs(") -> run ", out);
		uvs__put_count(out, n->n);
		fputs(" (", out);
		uvs__put_pct(out, n->n, t->total);
		fprintf(out, ") %s\nchange %+.2f points of share", unit,
			(rs - bs) * 100);
		if (n->b && t->btotal)
			fprintf(out, " (%+.1f%% relative)",
				(rs / bs - 1) * 100);
		else
			fputs(" (new in run)", out);
	} else {
		uvs__put_count(out, n->n);
		fprintf(out, " %s, ", unit);
		uvs__put_pct(out, n->n, t->total);
	}
	fprintf(out,
		"</title><rect x=\"%.2f\" y=\"%u\" width=\"%.2f\" "
		"height=\"%u\" fill=\"#%02x%02x%02x\"/>",
		x, y, w, v->o->frame_height - 1, rgb[0], rgb[1], rgb[2]);
	if ((w - 6) / UVS__CHAR_W >= 3) {
		fprintf(out, "<text x=\"%.2f\" y=\"%.1f\">", x + 3,
			y + v->o->frame_height * 0.72);
		uvs__put_label(out, n->name, n->len, w);
		fputs("</text>", out);
	}
	fputs("</g>\n", out);
}

static void uvs__put_legend(FILE *out, const struct uvs__svg *v)
{
	double x = UVS__PAD;
	unsigned char rgb[3];
	int k;

	if (v->diff) {
		uvs__diff_color(1, 1, rgb);
		fprintf(out,
			"<rect x=\"%.0f\" y=\"50\" width=\"10\" height=\"10\" "
			"fill=\"#%02x%02x%02x\"/><text x=\"%.0f\" y=\"59\">"
			"share grew</text>\n",
			x, rgb[0], rgb[1], rgb[2], x + 14);
		uvs__diff_color(-1, 1, rgb);
		fprintf(out,
			"<rect x=\"%.0f\" y=\"50\" width=\"10\" height=\"10\" "
			"fill=\"#%02x%02x%02x\"/><text x=\"%.0f\" y=\"59\">"
			"share shrank (width: run; colour: run vs base, "
			"each as a share of its own total)</text>\n",
			x + 110, rgb[0], rgb[1], rgb[2], x + 124);
		return;
	}
	for (k = 0; k < UVS_FRAME_KIND_NR; k++) {
		uvs__hsl(uvs__palette[k][0] + (k == UVS_FRAME_NATIVE ? 20 : 0),
			 uvs__palette[k][1], uvs__palette[k][2], rgb);
		fprintf(out,
			"<rect x=\"%.0f\" y=\"50\" width=\"10\" height=\"10\" "
			"fill=\"#%02x%02x%02x\"/><text x=\"%.0f\" y=\"59\">"
			"%s</text>\n",
			x, rgb[0], rgb[1], rgb[2], x + 14,
			k == UVS_FRAME_ROOT ? "loop phase"
			: k == UVS_FRAME_JS ? "JavaScript"
					    : uvs_frame_kind_name(k));
		x += 110;
	}
}

static void uvs__opts(const struct uvs_flame_opts *in, struct uvs_flame_opts *o,
		      bool diff)
{
	memset(o, 0, sizeof(*o));
	if (in)
		memcpy(o, in, in->sz < sizeof(*o) ? in->sz : sizeof(*o));
	o->sz = sizeof(*o);
	if (!o->title)
		o->title = diff ? "Differential Flame Graph" : "Flame Graph";
	if (!o->unit)
		o->unit = "samples";
	if (o->width < 200)
		o->width = o->width ? 200 : 1200;
	if (o->frame_height < 8)
		o->frame_height = o->frame_height ? 8 : 16;
	if (!(o->min_width > 0)) /* 0, negative or NaN */
		o->min_width = 0.1;
}

static int uvs__write_svg(const struct uvs_stacks *base,
			  const struct uvs_stacks *run,
			  const struct uvs_flame_opts *in, FILE *out)
{
	struct uvs_flame_opts o;
	struct uvs__tree t = {0};
	struct uvs__item *items = NULL;
	struct uvs__svg v = {.o = &o, .t = &t, .diff = base != NULL};
	size_t nitems, i;
	unsigned height;
	int err;

	uvs__opts(in, &o, v.diff);
	t.total = run->total;
	t.btotal = base ? base->total : 0;
	v.scale = t.total ? (o.width - 2.0 * UVS__PAD) / t.total : 0;
	err = uvs__items(run, base, &items, &nitems);
	if (!err)
		err = uvs__build(&t, items, nitems,
				 v.scale ? o.min_width / v.scale : 0);
	if (err) {
		free(items);
		free(t.nodes);
		return uvs_seterr(err, "out of memory");
	}
	for (i = 1; v.diff && i < t.nnodes; i++) {
		const struct uvs__node *n = &t.nodes[i];
		double d = (double)n->n / t.total -
			   (t.btotal ? (double)n->b / t.btotal : 0);

		if (fabs(d) > v.maxabs)
			v.maxabs = fabs(d);
	}
	height = UVS__TOP + (t.maxdepth + 1) * o.frame_height + UVS__BOTTOM;

	fprintf(out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		"<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\" "
		"class=\"uvs-flame%s\" data-width=\"%u\" data-pad=\"%d\" "
		"data-fh=\"%u\" data-ybase=\"%u\" data-total=\"%" PRIu64 "\" "
		"data-cw=\"%.3f\" data-highlight=\"%s\">\n"
		"<!-- made by uvscope %s; see docs/flamegraph.md -->\n",
		o.width, height, o.width, height, v.diff ? " uvs-diff" : "",
		o.width, UVS__PAD, o.frame_height,
		UVS__TOP + t.maxdepth * o.frame_height, t.total, UVS__CHAR_W,
		UVS__HIGHLIGHT, UVS_VERSION);
	fprintf(out,
		"<style>\n%s</style>\n"
		"<rect x=\"0\" y=\"0\" width=\"100%%\" height=\"100%%\" "
		"fill=\"#f8f8f4\"/>\n"
		"<text class=\"uvs-title\" x=\"%u\" y=\"24\">",
		uvs__style, o.width / 2);
	uvs__put_esc(out, o.title, strlen(o.title), UVS__XML);
	fprintf(out, "</text>\n<text class=\"uvs-sub\" x=\"%u\" y=\"42\">",
		o.width / 2);
	if (o.subtitle) {
		uvs__put_esc(out, o.subtitle, strlen(o.subtitle), UVS__XML);
		fputs(" \xc2\xb7 ", out);
	}
	uvs__put_count(out, t.total);
	fprintf(out, " %s", o.unit);
	if (v.diff) {
		fputs(" (base ", out);
		uvs__put_count(out, t.btotal);
		fputs(")", out);
	}
	fprintf(out,
		" \xc2\xb7 <tspan class=\"uvs-pruned\">%" PRIu64
		" frames narrower than %g px not drawn</tspan>",
		t.pruned, o.min_width);
	if (v.diff)
		fprintf(out, " \xc2\xb7 %" PRIu64 " frames only in base",
			t.base_only);
	fprintf(out,
		"</text>\n"
		"<text class=\"uvs-btn uvs-unzoom\" x=\"%d\" y=\"24\">"
		"Reset Zoom</text>\n"
		"<text class=\"uvs-btn uvs-search\" x=\"%u\" y=\"24\" "
		"text-anchor=\"end\">Search</text>\n",
		UVS__PAD, o.width - UVS__PAD);
	uvs__put_legend(out, &v);
	if (!t.total)
		fprintf(
		    out,
		    "<text class=\"uvs-sub\" x=\"%u\" y=\"%u\">no %s</text>\n",
		    o.width / 2, UVS__TOP - 2, o.unit);
	fputs("<g class=\"uvs-frames\">\n", out);
	for (i = 0; i < t.nnodes; i++)
		uvs__put_frame(out, &v, &t.nodes[i]);
	fprintf(out,
		"</g>\n"
		"<text class=\"uvs-details\" x=\"%d\" y=\"%u\"> </text>\n"
		"<text class=\"uvs-matched\" x=\"%u\" y=\"%u\" "
		"text-anchor=\"end\"></text>\n"
		"<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n"
		"</svg>\n",
		UVS__PAD, height - 12, o.width - UVS__PAD, height - 12,
		uvs__script);
	free(items);
	free(t.nodes);
	if (ferror(out))
		return uvs_seterr(-EIO, "write error");
	return 0;
}

int uvs_flame__write_svg(const struct uvs_stacks *s,
			 const struct uvs_flame_opts *opts, FILE *out)
{
	return uvs__write_svg(NULL, s, opts, out);
}

int uvs_flame__write_diff_svg(const struct uvs_stacks *base,
			      const struct uvs_stacks *run,
			      const struct uvs_flame_opts *opts, FILE *out)
{
	return uvs__write_svg(base, run, opts, out);
}

/* ---- speedscope ---- */

struct uvs__frames {
	struct uvs__item *v; /* str, len; n = index */
	size_t n, cap;
	uint32_t *index;
	size_t cap_index;
};

/* The index of a frame name, added on first sight; -1 on ENOMEM. */
static long uvs__frame_id(struct uvs__frames *f, const char *p, size_t len)
{
	uint64_t h = uvs__hash(p, len);
	size_t j, i;

	if ((f->n + 1) * 2 > f->cap_index) {
		size_t cap = f->cap_index ? f->cap_index * 2 : 1024;
		uint32_t *idx = calloc(cap, sizeof(*idx));

		if (!idx)
			return -1;
		for (i = 0; i < f->n; i++) {
			for (j = uvs__hash(f->v[i].str, f->v[i].len) &
				 (cap - 1);
			     idx[j]; j = (j + 1) & (cap - 1))
				;
			idx[j] = i + 1;
		}
		free(f->index);
		f->index = idx;
		f->cap_index = cap;
	}
	for (j = h & (f->cap_index - 1); f->index[j];
	     j = (j + 1) & (f->cap_index - 1)) {
		const struct uvs__item *it = &f->v[f->index[j] - 1];

		if (it->len == len && !memcmp(it->str, p, len))
			return f->index[j] - 1;
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 1024;
		struct uvs__item *v = realloc(f->v, cap * sizeof(*v));

		if (!v)
			return -1;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n] = (struct uvs__item){p, len, f->n, 0};
	f->index[j] = ++f->n;
	return f->n - 1;
}

int uvs_flame__write_speedscope(const struct uvs_stacks *s, const char *name,
				FILE *out)
{
	const struct uvs__stack **v = uvs__sorted(s);
	struct uvs__frames fr = {0};
	size_t nids = 0, i, j;
	int err = 0;

	if (!name)
		name = "uvscope";
	if (!v)
		return uvs_seterr(-ENOMEM, "out of memory");
	/* frame ids first, in the stacks' order, so output is deterministic */
	for (i = 0; i < s->nents; i++) {
		const char *p = v[i]->str, *end = p + v[i]->len;

		while (p < end) {
			const char *semi = memchr(p, ';', end - p);
			size_t len = (semi ? semi : end) - p;

			if (uvs__frame_id(&fr, p, len) < 0) {
				err = -ENOMEM;
				goto out;
			}
			p += len + (semi != NULL);
		}
	}
	fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema."
	      "json\",\n\"exporter\":\"uvscope@" UVS_VERSION "\",\"name\":\"",
	      out);
	uvs__put_esc(out, name, strlen(name), UVS__JSON);
	fputs("\",\"activeProfileIndex\":0,\n\"shared\":{\"frames\":[", out);
	for (i = 0; i < fr.n; i++) {
		fputs(i ? ",\n{\"name\":\"" : "\n{\"name\":\"", out);
		uvs__put_esc(out, fr.v[i].str, fr.v[i].len, UVS__JSON);
		fputs("\"}", out);
	}
	fputs("]},\n\"profiles\":[{\"type\":\"sampled\",\"name\":\"", out);
	uvs__put_esc(out, name, strlen(name), UVS__JSON);
	fprintf(out,
		"\",\"unit\":\"none\",\"startValue\":0,\"endValue\":%" PRIu64
		",\n\"samples\":[",
		s->total);
	for (i = 0; i < s->nents; i++) {
		const char *p = v[i]->str, *end = p + v[i]->len;

		nids = 0;
		fputs(i ? ",\n[" : "\n[", out);
		while (p < end) {
			const char *semi = memchr(p, ';', end - p);
			size_t len = (semi ? semi : end) - p;

			fprintf(out, nids++ ? ",%ld" : "%ld",
				uvs__frame_id(&fr, p, len));
			p += len + (semi != NULL);
		}
		fputc(']', out);
	}
	fputs("],\n\"weights\":[", out);
	for (j = 0; j < s->nents; j++)
		fprintf(out, j ? ",%" PRIu64 : "%" PRIu64, v[j]->count);
	fputs("]}]}\n", out);
	if (ferror(out))
		err = uvs_seterr(-EIO, "write error");
out:
	free(v);
	free(fr.v);
	free(fr.index);
	if (err == -ENOMEM)
		return uvs_seterr(err, "out of memory");
	return err;
}
