// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Many uprobes in one uprobe_multi link (Linux 6.6). Releasing a link
 * waits for one RCU grace period, where separate perf uprobes wait for one
 * each, one after another, with their breakpoints still trapping
 * meanwhile. Debian 12's headers and libbpf 1.1 predate these links, so
 * the attach is made here, by the book of the UAPI.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "uvscope.h"

int uvs_uprobe_multi__attach(int prog_fd, const char *path, pid_t pid,
			     const uint64_t *offs, const uint64_t *cookies,
			     int n, bool ret)
{
	union {
		struct {
			__u32 prog_fd, target_fd, attach_type, flags;
			__u64 path, offsets, ref_ctr_offsets, cookies;
			__u32 cnt, flags2, pid;
		} lc;
		union bpf_attr attr;
	} a;
	int fd;

	if (!n)
		return -ENODATA; /* nothing to attach: no link */
	memset(&a, 0, sizeof(a));
	a.lc.prog_fd = prog_fd;
	a.lc.attach_type = UVS_TRACE_UPROBE_MULTI;
	a.lc.path = (uintptr_t)path;
	a.lc.offsets = (uintptr_t)offs;
	a.lc.cookies = (uintptr_t)cookies;
	a.lc.cnt = n;
	a.lc.flags2 = ret ? 1 /* BPF_F_UPROBE_MULTI_RETURN */ : 0;
	a.lc.pid = pid;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}
