// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer harness for the ELF reader: the files a target maps are its
 * own to make, and uvscope opens them as root. The input is written to a
 * memfd and opened through its /proc/self/fd path, as target discovery
 * opens /proc/PID/exe: symbols, PLT stubs, program headers, DT_NEEDED,
 * the Node.js version string and libuv's version read from uv_version's
 * code, then everything discovery asks of a launched program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "uvscope.h"

static const char *const uvs__names[] = {
	"uv_run",	  "uv_version",	     "uv__run_timers", "uv__io_poll",
	"uv_default_loop", "default_loop_struct", "node_module_register",
	"uv__work_submit", "malloc@plt",	  "[plt]",
};
#define UVS__NNAMES (sizeof(uvs__names) / sizeof(uvs__names[0]))

static void uvs__use_elf(struct uvs_elf *elf, const unsigned char *data,
			 size_t size)
{
	const struct uvs_sym *s[UVS__NNAMES];
	char needed[8][256], ver[32];
	unsigned char code[16];
	uint64_t off, vaddr, addrs[UVS__NNAMES];
	size_t i;

	uvs_elf__is_pie(elf);
	uvs_elf__has_symtab(elf);
	uvs_elf__nsyms(elf);
	uvs_elf__base_vaddr(elf);
	uvs_elf__find_version_string(elf, "/node-v", ver, sizeof(ver));
	uvs_elf__needed(elf, needed, 8);
	uvs_elf__lookup(elf, uvs__names, UVS__NNAMES, s);
	for (i = 0; i < UVS__NNAMES; i++) {
		if (!s[i])
			continue;
		if (!s[i]->name || strcmp(s[i]->name, uvs__names[i]))
			abort();
		if (!uvs_elf__vaddr_to_off(elf, s[i]->addr, &off))
			uvs_elf__off_to_vaddr(elf, off, &vaddr);
		uvs_elf__read(elf, s[i]->addr, code, sizeof(code));
		addrs[i] = s[i]->addr;
	}
	/* (symbolize sorts the symbols: s[] points elsewhere from here) */
	for (i = 0; i < UVS__NNAMES; i++) {
		const struct uvs_sym *n;

		if (!s[i])
			continue;
		n = uvs_elf__symbolize(elf, addrs[i]);
		if (n && (n->addr > addrs[i] || !n->name))
			abort();
	}
	/* addresses of the input's choosing, as stacks give them */
	for (i = 0; i + 8 <= size && i < 64; i += 8) {
		memcpy(&vaddr, data + i, 8);
		uvs_elf__symbolize(elf, vaddr);
		uvs_elf__symbolize(elf,
				   uvs_elf__base_vaddr(elf) + (vaddr & 0xffff));
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static int fd = -1;
	struct uvs_target *t;
	struct uvs_elf *elf;
	char path[64];
	uint64_t loop;

	if (fd < 0)
		fd = memfd_create("uvs-fuzz-elf", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 0) ||
	    pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (!uvs_elf__open(path, &elf)) {
		uvs__use_elf(elf, data, size);
		uvs_elf__close(elf);
	}
	/* discovery of a program about to run (what open_pid does past the
	 * reading of /proc); the "child" is this process, whose memory is
	 * read where the input points (process_vm_readv, never a fault) */
	if (!uvs_target__open_exec(path, getpid(), &t)) {
		uvs_target__default_loop(t, &loop);
		uvs_target__close(t);
	}
	return 0;
}
