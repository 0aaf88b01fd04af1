// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ELF reading on the fixtures, and on files that are not what they claim. */
#include <fcntl.h>
#include <unistd.h>
#include "unit.h"
#include "uvscope.h"

#define FIX ".output/fixtures/loopfix"

static void test_symbols(void)
{
	static const char *const names[] = { "uv_run", "spin_for_ms",
					     "uv__run_timers", "no_such_sym" };
	const struct uvs_sym *s[4];
	struct uvs_elf *e;
	uint64_t off;
	unsigned char b;

	ASSERT_EQ(uvs_elf__open(FIX, &e), 0);
	ASSERT(uvs_elf__is_pie(e));
	ASSERT(uvs_elf__has_symtab(e));
	uvs_elf__lookup(e, names, 4, s);
	ASSERT(s[0] && s[1] && s[2]);
	ASSERT(!s[3]);
	ASSERT(s[0]->size > 0);
	/* a PIE's text: the file offset matches the address */
	ASSERT_EQ(uvs_elf__vaddr_to_off(e, s[0]->addr, &off), 0);
	ASSERT_U64_EQ(off, s[0]->addr);
	ASSERT(uvs_elf__vaddr_to_off(e, 0xffffffffff, &off) < 0);
	ASSERT_EQ(uvs_elf__read(e, s[1]->addr, &b, 1), 0);
	uvs_elf__close(e);
}

/* Calls through the PLT are named after the function they reach, not
 * after _init, the sizeless symbol before .plt. */
static void test_plt(void)
{
	const struct uvs_sym *s, *at, *init;
	struct uvs_elf *e;

	ASSERT_EQ(uvs_elf__open(FIX, &e), 0);
	s = uvs_elf__find(e, "clock_gettime@plt");
	ASSERT(s != NULL);
	ASSERT_U64_EQ(s->size, 16);
	at = uvs_elf__symbolize(e, s->addr + 6);
	ASSERT(at && !strcmp(at->name, "clock_gettime@plt"));
	ASSERT(uvs_elf__find(e, "epoll_wait@plt") != NULL);
	/* _init is just before .plt: no entry is named after it */
	init = uvs_elf__find(e, "_init");
	ASSERT(init != NULL);
	ASSERT(init->addr < s->addr);
	at = uvs_elf__symbolize(e, s->addr - 16);
	ASSERT(at && strcmp(at->name, "_init"));
	uvs_elf__close(e);
}

static void test_stripped_shared(void)
{
	struct uvs_elf *e;
	char needed[8][256];
	int n, i, found = 0;

	ASSERT_EQ(uvs_elf__open(".output/fixtures/loopfix-shared", &e), 0);
	ASSERT(!uvs_elf__find(e, "uv__run_timers"));
	n = uvs_elf__needed(e, needed, 8);
	for (i = 0; i < n; i++)
		found |= !strcmp(needed[i], "libuv.so.1");
	ASSERT(found);
	uvs_elf__close(e);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ASSERT(fd >= 0);
	ASSERT_EQ(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void test_bad_files(void)
{
	char path[] = "/tmp/uvs-unit-XXXXXX";
	static unsigned char img[65536];
	struct uvs_elf *e;
	int fd, i, len;

	ASSERT(uvs_elf__open("/nonexistent", &e) < 0);
	ASSERT(e == NULL);
	ASSERT(strstr(uvs_errmsg(), "/nonexistent"));
	fd = mkstemp(path);
	ASSERT(fd >= 0);
	close(fd);
	write_file(path, "not an elf file\n", 16);
	ASSERT(uvs_elf__open(path, &e) < 0);
	ASSERT(strstr(uvs_errmsg(), "not an ELF file"));
	/* truncations and corruptions of a real file never crash */
	fd = open(FIX, O_RDONLY);
	ASSERT(fd >= 0);
	len = read(fd, img, sizeof(img));
	close(fd);
	ASSERT(len > 1024);
	for (i = 16; i < len; i = i * 2) {
		write_file(path, img, i);
		if (!uvs_elf__open(path, &e)) {
			uvs_elf__find(e, "uv_run");
			uvs_elf__close(e);
		}
	}
	for (i = 0; i < 64; i++) {
		img[(i * 7919) % 64 + 16] ^= 0x5a; /* header bytes */
		write_file(path, img, len);
		if (!uvs_elf__open(path, &e)) {
			uvs_elf__find(e, "uv_run");
			uvs_elf__close(e);
		}
	}
	unlink(path);
}

static void test_target_errors(void)
{
	struct uvs_target *t;

	ASSERT(uvs_target__open_pid(-1, &t) < 0);
	ASSERT(uvs_target__open_pid(4194304 + 7, &t) < 0);
	ASSERT(strstr(uvs_errmsg(), "no such process"));
	/* this test program has no libuv */
	ASSERT(uvs_target__open_pid(getpid(), &t) < 0);
	ASSERT(strstr(uvs_errmsg(), "not a libuv process"));
	ASSERT(t == NULL);
}

int main(void)
{
	test_symbols();
	test_plt();
	test_stripped_shared();
	test_bad_files();
	test_target_errors();
	printf("ok\n");
	return 0;
}
