// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <unistd.h>
#include "unit.h"
#include "flame.h"
#include "uvscope.h"

/* What a writer wrote, NUL-terminated; the caller frees it. */
struct buf {
	char *p;
	size_t len;
	FILE *f;
};

static FILE *buf_open(struct buf *b)
{
	b->f = open_memstream(&b->p, &b->len);
	ASSERT(b->f);
	return b->f;
}

static char *buf_close(struct buf *b)
{
	ASSERT_EQ(fclose(b->f), 0);
	return b->p;
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (hay = strstr(hay, needle); hay; hay = strstr(hay + 1, needle))
		n++;
	return n;
}

static struct uvs_stacks *stacks(void)
{
	struct uvs_stacks *s;

	ASSERT_EQ(uvs_stacks__new(&s), 0);
	return s;
}

static char *folded_of(const struct uvs_stacks *s)
{
	struct buf b;

	ASSERT_EQ(uvs_stacks__write_folded(s, buf_open(&b)), 0);
	return buf_close(&b);
}

static void test_merge(void)
{
	struct uvs_stacks *s = stacks();
	char *out;

	ASSERT_EQ(uvs_stacks__add(s, "timers;listOnTimeout;burnCpu", 3), 0);
	ASSERT_EQ(uvs_stacks__add(s, "poll;uv__io_poll;epoll_wait_[k]", 5), 0);
	ASSERT_EQ(uvs_stacks__add(s, "timers;listOnTimeout;burnCpu", 4), 0);
	/* a stack given by length, not NUL-terminated */
	ASSERT_EQ(uvs_stacks__add_n(s, "timers;listOnTimeoutXXX", 20, 2), 0);
	ASSERT_EQ(uvs_stacks__add(s, "check;processImmediate", 0), 0);
	ASSERT_EQ(uvs_stacks__count(s), 3);
	ASSERT_U64_EQ(uvs_stacks__total(s), 14);
	out = folded_of(s);
	ASSERT_STR_EQ(out, "poll;uv__io_poll;epoll_wait_[k] 5\n"
			   "timers;listOnTimeout 2\n"
			   "timers;listOnTimeout;burnCpu 7\n");
	free(out);
	/* many distinct stacks: the index grows and every one is found again */
	for (int i = 0; i < 50000; i++) {
		char st[64];

		snprintf(st, sizeof(st), "poll;f%d;g%d", i % 977, i);
		ASSERT_EQ(uvs_stacks__add(s, st, 1 + (i & 1)), 0);
		ASSERT_EQ(uvs_stacks__add(s, st, 1), 0);
	}
	ASSERT_EQ(uvs_stacks__count(s), 3 + 50000);
	ASSERT_U64_EQ(uvs_stacks__total(s), 14 + 25000 * 2 + 25000 * 3);
	/* what is not a stack */
	ASSERT_EQ(uvs_stacks__add(s, "", 1), -EINVAL);
	ASSERT_EQ(uvs_stacks__add(s, "a;;b", 1), -EINVAL);
	ASSERT(strstr(uvs_errmsg(), "empty frame"));
	ASSERT_EQ(uvs_stacks__add(s, ";a", 1), -EINVAL);
	ASSERT_EQ(uvs_stacks__add(s, "a;", 1), -EINVAL);
	ASSERT_EQ(uvs_stacks__add(s, "a\nb", 1), -EINVAL);
	ASSERT_EQ(uvs_stacks__add(s, "a", UINT64_MAX), -EOVERFLOW);
	uvs_stacks__free(s);
}

static int collect(const char *folded, uint64_t count, void *ctx)
{
	char *acc = ctx;

	strcat(acc, folded);
	strcat(acc, "|");
	return count == 99 ? 7 : 0;
}

static void test_order(void)
{
	/* frame-wise: a stack's callers' other stacks come before names
	 * that merely share its first characters */
	static const char *const in[] = {"a0;z",  "b", "a;x", "a",
					 "a;x;y", "A", "a;w"};
	static const char want[] = "A|a|a;w|a;x|a;x;y|a0;z|b|";
	struct uvs_stacks *s1 = stacks(), *s2 = stacks();
	char acc[256] = "", *o1, *o2;
	size_t i, n = sizeof(in) / sizeof(*in);

	for (i = 0; i < n; i++) {
		ASSERT_EQ(uvs_stacks__add(s1, in[i], i + 1), 0);
		ASSERT_EQ(uvs_stacks__add(s2, in[n - 1 - i], n - i), 0);
	}
	ASSERT_EQ(uvs_stacks__foreach(s1, collect, acc), 0);
	ASSERT_STR_EQ(acc, want);
	/* the same multiset, added in another order, writes the same bytes */
	o1 = folded_of(s1);
	o2 = folded_of(s2);
	ASSERT_STR_EQ(o1, o2);
	free(o1);
	free(o2);
	/* fn stops the walk */
	ASSERT_EQ(uvs_stacks__add(s1, "a", 99 - 4), 0);
	acc[0] = 0;
	ASSERT_EQ(uvs_stacks__foreach(s1, collect, acc), 7);
	ASSERT_STR_EQ(acc, "A|a|");
	uvs_stacks__free(s1);
	uvs_stacks__free(s2);
}

static void test_kinds(void)
{
	static const struct {
		const char *f;
		unsigned depth;
		enum uvs_frame_kind k;
	} cases[] = {
	    {"timers", 0, UVS_FRAME_ROOT},
	    {"pending", 0, UVS_FRAME_ROOT},
	    {"idle", 0, UVS_FRAME_ROOT},
	    {"prepare", 0, UVS_FRAME_ROOT},
	    {"poll", 0, UVS_FRAME_ROOT},
	    {"check", 0, UVS_FRAME_ROOT},
	    {"close", 0, UVS_FRAME_ROOT},
	    {"microtasks", 0, UVS_FRAME_ROOT},
	    {"off-cpu", 0, UVS_FRAME_ROOT},
	    {"close", 3, UVS_FRAME_NATIVE}, /* libc's close() */
	    {"timers2", 0, UVS_FRAME_NATIVE},
	    {"time", 0, UVS_FRAME_NATIVE},
	    {"main", 0, UVS_FRAME_NATIVE},
	    {"do_syscall_64_[k]", 5, UVS_FRAME_KERNEL},
	    {"poll_[k]", 0, UVS_FRAME_KERNEL},
	    {"[k]", 2, UVS_FRAME_NATIVE},
	    {"burnCpu_[j]", 4, UVS_FRAME_JS},
	    {"JS:~burnCpu /app/x.js:3", 4, UVS_FRAME_JS},
	    {"LazyCompile:*listOnTimeout node:internal/timers:500", 2,
	     UVS_FRAME_JS},
	    {"Function:^processTicks", 2, UVS_FRAME_JS},
	    {"[jit] 0x7f00-0x7f80", 2, UVS_FRAME_JS},
	    {"Builtin:ArrayMap", 2, UVS_FRAME_JS},
	    {"uv_run", 1, UVS_FRAME_LIBUV},
	    {"uv__io_poll", 1, UVS_FRAME_LIBUV},
	    {"uvx", 1, UVS_FRAME_NATIVE},
	    {"node::Start(int, char**)", 1, UVS_FRAME_NATIVE},
	    {"epoll_wait", 2, UVS_FRAME_NATIVE},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		enum uvs_frame_kind k =
		    uvs_flame__frame_kind(cases[i].f, cases[i].depth);

		ASSERT_BASE(k == cases[i].k, "kind of '%s' at %u: %s, not %s",
			    cases[i].f, cases[i].depth, uvs_frame_kind_name(k),
			    uvs_frame_kind_name(cases[i].k));
	}
	ASSERT_STR_EQ(uvs_frame_kind_name(UVS_FRAME_LIBUV), "libuv");
}

static char *svg_of(const struct uvs_stacks *s)
{
	struct buf b;

	ASSERT_EQ(uvs_flame__write_svg(s, NULL, buf_open(&b)), 0);
	return buf_close(&b);
}

static void test_svg_tree_and_escaping(void)
{
	struct uvs_stacks *s = stacks();
	char *svg, *p;

	ASSERT_EQ(uvs_stacks__add(s,
				  "timers;std::vector<int>::push(a&b)"
				  ";\"q\"",
				  2),
		  0);
	ASSERT_EQ(uvs_stacks__add(s, "timers;bad\xff\xfe utf8\x01;x", 3), 0);
	ASSERT_EQ(uvs_stacks__add(s, "timers;ok \xc3\xa9t\xc3\xa9", 5), 0);
	svg = svg_of(s);
	/* frames merged into a tree: all, timers, and one per other frame */
	ASSERT_EQ(count_of(svg, "<g class=\"f\""), 1 + 1 + 2 + 2 + 1);
	ASSERT_EQ(count_of(svg, "data-n=\"10\""), 2); /* all, timers */
	ASSERT(strstr(svg, "std::vector&lt;int&gt;::push(a&amp;b)"));
	ASSERT(strstr(svg, "&quot;q&quot;"));
	ASSERT(!strstr(svg, "<int>"));
	ASSERT(!strstr(svg, "a&b"));
	/* bytes that are not UTF-8, and control characters, are replaced */
	ASSERT(!strstr(svg, "\xff"));
	ASSERT(!strstr(svg, "\x01"));
	ASSERT(strstr(svg, "bad\xef\xbf\xbd\xef\xbf\xbd utf8\xef\xbf\xbd"));
	ASSERT(strstr(svg, "ok \xc3\xa9t\xc3\xa9"));
	/* the script is one CDATA section, and nothing else has one */
	ASSERT_EQ(count_of(svg, "<![CDATA["), 1);
	ASSERT_EQ(count_of(svg, "]]>"), 1);
	p = strstr(svg, "</svg>");
	ASSERT(p && !strcmp(p, "</svg>\n"));
	free(svg);
	uvs_stacks__free(s);
}

static void test_svg_prune_and_empty(void)
{
	struct uvs_stacks *s = stacks();
	struct uvs_flame_opts o = {.sz = sizeof(o), .title = "T<&>"};
	struct buf b;
	char *svg;

	svg = svg_of(s);
	ASSERT_EQ(count_of(svg, "<g class=\"f\""), 1); /* "all" */
	ASSERT(strstr(svg, "data-total=\"0\""));
	ASSERT(strstr(svg, ">no samples</text>"));
	free(svg);
	/* 1 sample of 10^6 is 0.00118 px wide in 1200 px: left out, said */
	ASSERT_EQ(uvs_stacks__add(s, "poll;big", 999999), 0);
	ASSERT_EQ(uvs_stacks__add(s, "check;tiny;tinier", 1), 0);
	ASSERT_EQ(uvs_flame__write_svg(s, &o, buf_open(&b)), 0);
	svg = buf_close(&b);
	ASSERT(!strstr(svg, "tiny"));
	ASSERT(strstr(svg, ">3 frames narrower than 0.1 px not drawn<"));
	ASSERT(strstr(svg, ">T&lt;&amp;&gt;</text>"));
	free(svg);
	/* a smaller minimum keeps them */
	o.min_width = 0.0001;
	ASSERT_EQ(uvs_flame__write_svg(s, &o, buf_open(&b)), 0);
	svg = buf_close(&b);
	ASSERT(strstr(svg, "tinier"));
	ASSERT(strstr(svg, ">0 frames narrower than"));
	free(svg);
	uvs_stacks__free(s);
}

static void test_diff(void)
{
	struct uvs_stacks *base = stacks(), *run = stacks();
	struct buf b;
	char *svg, *p;

	ASSERT_EQ(uvs_stacks__add(base, "timers;grow", 10), 0);
	ASSERT_EQ(uvs_stacks__add(base, "timers;shrink", 90), 0);
	ASSERT_EQ(uvs_stacks__add(base, "timers;gone", 100), 0);
	/* run has twice the samples: shares, not counts, are compared */
	ASSERT_EQ(uvs_stacks__add(run, "timers;grow", 200), 0);
	ASSERT_EQ(uvs_stacks__add(run, "timers;shrink", 200), 0);
	ASSERT_EQ(uvs_stacks__add(run, "timers;new", 0), 0);
	ASSERT_EQ(uvs_flame__write_diff_svg(base, run, NULL, buf_open(&b)), 0);
	svg = buf_close(&b);
	p = strstr(svg, "<title>grow\n");
	ASSERT(p);
	ASSERT(strstr(p, "base 10 (5.00%) -> run 200 (50.00%)"));
	ASSERT(strstr(p, "change +45.00 points"));
	ASSERT(strstr(p, "fill=\"#ff3737\"")); /* the largest change: red */
	p = strstr(svg, "<title>shrink\n");
	ASSERT(p);
	ASSERT(strstr(p, "change +5.00 points")); /* 45% -> 50% */
	ASSERT(strstr(p, "fill=\"#ffe9e9\""));	  /* faintly red */
	ASSERT(!strstr(svg, "<title>gone"));
	ASSERT(strstr(svg, "1 frames only in base"));
	free(svg);
	/* swapped: grow shrinks by 45 points, blue, 0.9 of the largest
	 * change (gone, new in run: +50 points, full red) */
	ASSERT_EQ(uvs_flame__write_diff_svg(run, base, NULL, buf_open(&b)), 0);
	svg = buf_close(&b);
	p = strstr(svg, "<title>grow\n");
	ASSERT(p && strstr(p, "fill=\"#4b4bff\""));
	p = strstr(svg, "<title>gone\n");
	ASSERT(p && strstr(p, "(new in run)") && strstr(p, "#ff3737"));
	free(svg);
	uvs_stacks__free(base);
	uvs_stacks__free(run);
}

static void test_speedscope(void)
{
	struct uvs_stacks *s = stacks();
	struct buf b;
	char *js;

	ASSERT_EQ(uvs_flame__write_speedscope(s, "empty", buf_open(&b)), 0);
	js = buf_close(&b);
	ASSERT(strstr(js, "\"frames\":[]"));
	ASSERT(strstr(js, "\"samples\":[]"));
	ASSERT(strstr(js, "\"weights\":[]"));
	free(js);
	ASSERT_EQ(uvs_stacks__add(s, "timers;f\"q\\;g", 3), 0);
	ASSERT_EQ(uvs_stacks__add(s, "timers;f\"q\\", 4), 0);
	ASSERT_EQ(uvs_stacks__add(s, "check;g", 5), 0);
	ASSERT_EQ(uvs_flame__write_speedscope(s, "n\x02", buf_open(&b)), 0);
	js = buf_close(&b);
	/* frames once each, in the stacks' order; stacks outermost first */
	ASSERT(strstr(js, "\"frames\":[\n{\"name\":\"check\"},\n"
			  "{\"name\":\"g\"},\n{\"name\":\"timers\"},\n"
			  "{\"name\":\"f\\\"q\\\\\"}]"));
	ASSERT(strstr(js, "\"samples\":[\n[0,1],\n[2,3],\n[2,3,1]]"));
	ASSERT(strstr(js, "\"weights\":[5,4,3]"));
	ASSERT(strstr(js, "\"endValue\":12"));
	ASSERT(strstr(js, "\"name\":\"n\\u0002\""));
	free(js);
	uvs_stacks__free(s);
}

/* Reads text as a folded file; returns the error and leaves the stacks. */
static int read_text_n(struct uvs_stacks *s, const char *text, ssize_t len)
{
	char path[] = "/tmp/uvs-test-flame-XXXXXX";
	int fd = mkstemp(path), err;

	ASSERT(fd >= 0);
	ASSERT_EQ(write(fd, text, len), len);
	close(fd);
	err = uvs_stacks__read_folded(s, path);
	unlink(path);
	return err;
}

static int read_text(struct uvs_stacks *s, const char *text)
{
	return read_text_n(s, text, strlen(text));
}

static void test_read_folded(void)
{
	static const struct {
		const char *text;
		const char *where; /* ":line:" */
		const char *what;
		size_t len; /* 0: up to the NUL */
	} bad[] = {
	    {"a;b 1\nno_count_here\n", ":2:", "found no count", 0},
	    {"a;b 1\n\na;b x12\n", ":3:", "found 'x12'", 0},
	    {"a;b 1.5\n", ":1:", "whole number", 0},
	    {"a;b -3\n", ":1:", "found '-3'", 0},
	    {"a;;b 3\n", ":1:", "empty frame", 0},
	    {"a;b; 3\n", ":1:", "empty frame", 0},
	    {" 3\n", ":1:", "expected a stack", 0},
	    {"a 99999999999999999999\n", ":1:", "does not fit", 0},
	    {"a 18446744073709551615\nb 1\n", ":2:", "overflows", 0},
	    {"\x7f"
	     "ELF\x02\x01\x01\x00\x00 1\n",
	     ":1:", "binary data", 12},
	    {"<html><body>not folded</body></html>\n",
	     ":1:", "expected a whole number", 0},
	};
	struct uvs_stacks *s;
	size_t i;
	char *out;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		s = stacks();
		int want =
			strstr(bad[i].what, "overflow") ? -EOVERFLOW : -EINVAL,
		    got = read_text_n(s, bad[i].text,
				      bad[i].len ? bad[i].len
						 : strlen(bad[i].text));

		ASSERT_BASE(got == want, "case %zu: %d, not %d", i, got, want);
		ASSERT_BASE(strstr(uvs_errmsg(), bad[i].where) &&
				strstr(uvs_errmsg(), bad[i].what),
			    "case %zu: '%s' lacks '%s' or '%s'", i,
			    uvs_errmsg(), bad[i].where, bad[i].what);
		ASSERT(strstr(uvs_errmsg(), "/tmp/uvs-test-flame-"));
		uvs_stacks__free(s);
	}
	/* CRLF, trailing blanks, blank lines, tabs, spaces inside frames */
	s = stacks();
	ASSERT_EQ(read_text(s, "a;b 1\r\n\r\n  \na;b\t2 \t\r\n"
			       "poll;operator new(unsigned long) 3\n"
			       "c;d   0\nlast 7"),
		  0);
	out = folded_of(s);
	ASSERT_STR_EQ(out, "a;b 3\nlast 7\npoll;operator new(unsigned long) "
			   "3\n");
	free(out);
	uvs_stacks__free(s);
	/* an empty file is an empty set */
	s = stacks();
	ASSERT_EQ(read_text(s, ""), 0);
	ASSERT_EQ(uvs_stacks__count(s), 0);
	ASSERT_EQ(uvs_stacks__read_folded(s, "/nonexistent/x.folded"), -ENOENT);
	ASSERT(strstr(uvs_errmsg(), "/nonexistent/x.folded"));
	uvs_stacks__free(s);
}

int main(void)
{
	test_merge();
	test_order();
	test_kinds();
	test_svg_tree_and_escaping();
	test_svg_prune_and_empty();
	test_diff();
	test_speedscope();
	test_read_folded();
	printf("ok\n");
	return 0;
}
