/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Folded stacks and the writers that render them: flame graph SVG,
 * differential flame graph SVG, speedscope JSON, folded text.
 *
 * A folded stack is "root;caller;callee", outermost frame first, as in
 * Brendan Gregg's folded format; uvscope roots its stacks at the loop phase
 * they ran in ("timers;listOnTimeout;burnCpu"). Functions return 0 or a
 * negative errno and leave one line in uvs_errmsg().
 */
#ifndef UVS_FLAME_H
#define UVS_FLAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- a multiset of folded stacks ---- */
struct uvs_stacks;

/* The caller frees *out with uvs_stacks__free. */
int uvs_stacks__new(struct uvs_stacks **out);
void uvs_stacks__free(struct uvs_stacks *s);
/* Adds count samples of a stack (copied), merged with an equal one already
 * held. -EINVAL for an empty stack or frame, or a newline in it; -EOVERFLOW
 * when the total would not fit in 64 bits; -E2BIG past UVS_STACKS_MAX_BYTES
 * of distinct stacks. A count of 0 adds nothing. */
int uvs_stacks__add(struct uvs_stacks *s, const char *folded, uint64_t count);
/* Same, for a stack that is not NUL-terminated. */
int uvs_stacks__add_n(struct uvs_stacks *s, const char *folded, size_t len,
		      uint64_t count);
uint64_t uvs_stacks__total(const struct uvs_stacks *s); /* samples */
size_t uvs_stacks__count(const struct uvs_stacks *s);	/* distinct stacks */
/* Calls fn for every stack in frame-wise order (a caller's stacks together,
 * siblings sorted by name); non-zero from fn stops the walk and is
 * returned. -ENOMEM if the order cannot be made. */
typedef int (*uvs_stack_fn)(const char *folded, uint64_t count, void *ctx);
int uvs_stacks__foreach(const struct uvs_stacks *s, uvs_stack_fn fn, void *ctx);
/* Reads "a;b;c 123" lines (Brendan Gregg's folded format, as uvscope and
 * the stackcollapse scripts for perf and bpftrace write it)
 * and adds them. Blank lines, trailing blanks and CRLF are tolerated;
 * anything else that is not a stack, blanks and a decimal count is an error
 * naming "file:line: what was expected", as is a line longer than
 * UVS_FOLDED_LINE_MAX (read no further than that) and more than
 * UVS_STACKS_MAX_BYTES of distinct stacks. On error, lines read before the
 * bad one stay added. path "-" is not special: use _fp for stdin. path
 * must be a regular file, a pipe or a terminal: a device (/dev/zero) or a
 * directory is refused before it is read. */
#define UVS_FOLDED_LINE_MAX  (64u << 10)
#define UVS_STACKS_MAX_BYTES (1ull << 30)
int uvs_stacks__read_folded(struct uvs_stacks *s, const char *path);
int uvs_stacks__read_folded_fp(struct uvs_stacks *s, FILE *f, const char *name);
/* Writes the stacks back as folded lines in uvs_stacks__foreach order, so
 * equal multisets give byte-equal output. */
int uvs_stacks__write_folded(const struct uvs_stacks *s, FILE *out);

/* ---- JIT frame names: perf maps (/tmp/perf-PID.map) ---- */
/* One line of a perf map, "ADDR SIZE NAME" (hex, as perf reads it). */
struct uvs_perfmap_sym {
	uint64_t start, size;
	const char *name; /* into the line read; not NUL-terminated */
	size_t len;
};
#define UVS_PERFMAP_LINE_MAX (64u << 10)
/* Parses a line without its '\n': 0, or -EINVAL unless it is ADDR and
 * SIZE in hex (at most 16 digits, "0x" allowed), blanks between, a name
 * of at least one byte and no NUL after them, SIZE > 0 and ADDR + SIZE
 * within 64 bits. A '\r' ending the line is not part of the name. */
int uvs_perfmap__parse_line(const char *line, size_t len,
			    struct uvs_perfmap_sym *out);
/* Non-zero from fn stops the read (negative: an error, returned). The
 * name it is given lives until fn returns. */
typedef int (*uvs_perfmap_fn)(const struct uvs_perfmap_sym *sym, void *ctx);
/* Where the reading of a perf map stands, kept between reads of a map that
 * grows (V8 appends to it); zeroed for a new file. */
struct uvs_perfmap_cursor {
	uint64_t off;	/* where to read next */
	bool skip;	/* inside a line over UVS_PERFMAP_LINE_MAX: ignored up
			 * to its '\n' */
	uint64_t lines; /* read whole, good or not (blank lines aside) */
	uint64_t bad;	/* not ADDR SIZE NAME, or over UVS_PERFMAP_LINE_MAX */
};
/*
 * Reads the perf map lines in fd's bytes from c->off up to end (pread:
 * fd's position is not used, and nothing past end is read), calls fn for
 * each good one, and moves c on. A last line without its '\n' is left for
 * the next read: its writer may not be done with it. Memory is bounded by
 * UVS_PERFMAP_LINE_MAX whatever the file holds. 0 or -errno.
 */
int uvs_perfmap__read(int fd, struct uvs_perfmap_cursor *c, uint64_t end,
		      uvs_perfmap_fn fn, void *ctx);

/* ---- text for a terminal ---- */
/*
 * Bytes from input files and from a target's memory (its comm, symbol and
 * perf map names, what it printed) are made safe to print: valid UTF-8
 * stays, but control characters (C0 but tab, and newline only with lines,
 * DEL, C1), Unicode's bidirectional controls and bytes that are not UTF-8
 * become \xNN, each byte. uvs_text_esc writes at most size - 1 bytes and a
 * NUL into buf, cut between escapes, and returns buf.
 */
char *uvs_text_esc(char *buf, size_t size, const char *s, size_t len,
		   bool lines);
void uvs_text_put(FILE *out, const char *s, size_t len, bool lines);

/* ---- frame kinds: what colours a frame ---- */
enum uvs_frame_kind {
	UVS_FRAME_ROOT,	  /* a loop phase or another uvscope root */
	UVS_FRAME_KERNEL, /* "name_[k]" */
	UVS_FRAME_JS,	  /* JavaScript: interpreted, JIT-compiled, builtins */
	UVS_FRAME_LIBUV,  /* "uv_*", "uv__*" */
	UVS_FRAME_NATIVE, /* anything else: C, C++, libc */
	UVS_FRAME_KIND_NR,
};
/*
 * The kind of frame, at index depth of its stack (0 = outermost):
 * - root: depth 0 and one of the loop phases timers, pending, idle,
 *   prepare, poll, check, close, or uvscope's other roots microtasks,
 *   nextTick, off-cpu, gc, unknown. Deeper, these are ordinary names
 *   (libc's close is native);
 * - kernel: ends in "_[k]" (perf's and bpftrace's kernel annotation);
 * - JS: ends in "_[j]", or starts with one of V8's code-event tags
 *   "JS:", "LazyCompile:", "Function:", "InterpretedFunction:", "Builtin:",
 *   "BytecodeHandler:", "Stub:", "RegExp:", "Script:", "Eval:", with
 *   "Builtins_" (V8's embedded builtins, as named in node's symbol table),
 *   or with "[jit]" (unsymbolised JIT code);
 * - libuv: starts with "uv_" (which covers libuv's internal "uv__");
 * - native: everything else.
 */
enum uvs_frame_kind uvs_flame__frame_kind(const char *frame, unsigned depth);
const char *uvs_frame_kind_name(enum uvs_frame_kind kind); /* "root", ... */

/* ---- writers ---- */
struct uvs_flame_opts {
	size_t sz;	       /* sizeof(struct uvs_flame_opts) */
	const char *title;     /* default "Flame Graph" / "Differential..." */
	const char *subtitle;  /* an extra line under the title, or NULL */
	const char *unit;      /* what a count is; default "samples" */
	unsigned width;	       /* image width in px; default 1200 */
	unsigned frame_height; /* px; default 16 */
	double min_width;      /* px; narrower frames are left out (and
				* counted in the image); 0 = 0.1 */
};

/*
 * A self-contained interactive SVG flame graph: widths by count, roots at
 * the bottom, colours by uvs_flame__frame_kind. Hover names a frame with its
 * count and share; a click zooms to it (Reset Zoom, Escape or a click on
 * "all" undo it); Search (or Ctrl-F) takes a regular expression, highlights
 * the frames it matches and states their share of all samples. Frames are
 * merged into a tree first; write with a buffered FILE. opts may be NULL.
 */
int uvs_flame__write_svg(const struct uvs_stacks *s,
			 const struct uvs_flame_opts *opts, FILE *out);
/*
 * A differential flame graph: frames sized by run, red where a frame's share
 * of its set's samples grew from base to run, blue where it shrank (the
 * deeper the colour, the larger the change, relative to the largest one);
 * hover shows both counts and the change. Frames only in base have no
 * width in run and are counted, not drawn.
 */
int uvs_flame__write_diff_svg(const struct uvs_stacks *base,
			      const struct uvs_stacks *run,
			      const struct uvs_flame_opts *opts, FILE *out);
/*
 * speedscope's file format (jlfwong/speedscope, src/lib/file-format-spec.ts):
 * shared.frames holds every distinct frame name once; one "sampled"
 * profile named name ("uvscope" if NULL) has one sample per distinct stack
 * (frame indices, outermost first) weighted by its count, unit "none".
 */
int uvs_flame__write_speedscope(const struct uvs_stacks *s, const char *name,
				FILE *out);

#endif
