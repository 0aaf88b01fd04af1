// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer harness for the ptrace unwinder: the ELF header, program
 * headers and .eh_frame_hdr it reads where a target has a file mapped,
 * the CFI that libunwind then interprets, and the stack it walks are all
 * the target's. The unwinder reads this process: the input's image is
 * mapped from a memfd (a file mapping, executable, as a module is), its
 * last bytes are a stack and registers, and the sample is taken as the
 * ptrace backend takes one (snapshot, then unwind), through the same
 * process_vm_readv page cache.
 *
 * Input: ELF image, then a trailer of UVS__TRAILER bytes: u32 rip, rsp,
 * rbp (image offset, stack slot, stack slot), u32 unused, and stack
 * words; a word below the image's size (but 0) is an image offset,
 * rebased, so seeds do not depend on where the image is mapped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "ptrace.h"

#define UVS__TRAILER 256
#define UVS__NWORDS ((UVS__TRAILER - 16) / 8)
#define UVS__PAGE 4096ul
/* fixed addresses, so a run can be replayed: clear of ASan's shadow and
 * allocator, and of where the kernel puts libraries and stacks */
#define UVS__IMAGE_AT 0x7e0000000000ul
#define UVS__STACK_AT 0x7d0000000000ul
#define UVS__STACK_PAGES 4

static struct uvs_unwind *u;
static int fd = -1;
static uint64_t *stack;
static void *image;
static size_t image_len;

static void *uvs__map_at(unsigned long at, size_t len, int prot, int flags,
			 int mfd)
{
	void *p = mmap((void *)at, len, prot, flags | MAP_FIXED_NOREPLACE,
		       mfd, 0);

	if (p == MAP_FAILED) /* taken: anywhere (runs differ, no harm) */
		p = mmap(NULL, len, prot, flags, mfd, 0);
	if (p == MAP_FAILED)
		abort();
	return p;
}

static void uvs__init(void)
{
	fd = memfd_create("uvs-fuzz-unwind", MFD_CLOEXEC);
	if (fd < 0 || uvs_unwind__open(getpid(), &u))
		abort();
	stack = uvs__map_at(UVS__STACK_AT, UVS__STACK_PAGES * UVS__PAGE,
			    PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct user_regs_struct r;
	uint32_t h[4];
	uint64_t ips[64], base;
	size_t len, i;
	int n;

	if (size < UVS__TRAILER + 64)
		return 0;
	if (fd < 0)
		uvs__init();
	len = size - UVS__TRAILER;
	if (image)
		munmap(image, image_len);
	if (ftruncate(fd, 0) || pwrite(fd, data, len, 0) != (ssize_t)len)
		abort();
	image_len = (len + UVS__PAGE - 1) & ~(UVS__PAGE - 1);
	image = uvs__map_at(UVS__IMAGE_AT, image_len, PROT_READ | PROT_EXEC,
			    MAP_PRIVATE, fd);
	base = (uintptr_t)image;

	memcpy(h, data + len, sizeof(h));
	memset(stack, 0, UVS__STACK_PAGES * UVS__PAGE);
	for (i = 0; i < UVS__NWORDS; i++) {
		uint64_t w;

		memcpy(&w, data + len + 16 + i * 8, 8);
		stack[i] = w && w < len ? base + w : w;
	}
	memset(&r, 0, sizeof(r));
	r.rip = base + h[0] % len;
	r.rsp = (uintptr_t)&stack[h[1] % UVS__NWORDS];
	r.rbp = (uintptr_t)&stack[h[2] % UVS__NWORDS];

	/* a new image where the last one was: what an exec does to the
	 * unwinder, and what it is told then */
	uvs_unwind__flush(u);
	uvs_unwind__snapshot(u, &r);
	n = uvs_unwind__stack(u, &r, ips, 64);
	if (n > 64 || (n > 0 && ips[0] != r.rip))
		abort();
	return 0;
}
