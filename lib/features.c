// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Feature probes, run once at start; their result picks the backend. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "uvscope.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static bool uvs__has_cap(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return false;
	return d[cap / 32].effective & (1u << (cap % 32));
}

static bool uvs__exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* Syscall tracepoints are attached by id, read from tracefs. A fresh
 * machine may not have it mounted; mount it where the kernel expects. */
static bool uvs__tracefs(void)
{
	static const char *const roots[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	size_t i;

	for (i = 0; i < 2; i++) {
		char p[128];

		snprintf(p, sizeof(p), "%s/events/syscalls", roots[i]);
		if (uvs__exists(p))
			return true;
	}
	if (uvs__exists("/sys/kernel/tracing") &&
	    !mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL)) {
		uvs_debug("mounted tracefs on /sys/kernel/tracing");
		return uvs__exists("/sys/kernel/tracing/events/syscalls");
	}
	return false;
}

static bool uvs__kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma > major || (ma == major && mi >= minor);
}

/* Probed once per process: the CLI chooses the backend with the result,
 * and the backend opened next asks again. */
int uvs_features__probe(struct uvs_features *f)
{
	static struct uvs_features cache;
	static bool done;

	if (done) {
		*f = cache;
		return 0;
	}
	memset(f, 0, sizeof(*f));
	f->root_caps = uvs__has_cap(CAP_SYS_ADMIN) ||
		       (uvs__has_cap(CAP_BPF) && uvs__has_cap(CAP_PERFMON));
	f->btf = uvs__exists("/sys/kernel/btf/vmlinux");
	f->uprobe_pmu = uvs__exists("/sys/bus/event_source/devices/uprobe/type");
	f->tracefs = f->root_caps && uvs__tracefs();
	f->uprobe_multi = uvs__kernel_at_least(6, 6);
	f->epoll_pwait2 = f->tracefs &&
		(uvs__exists("/sys/kernel/tracing/events/syscalls/sys_enter_epoll_pwait2") ||
		 uvs__exists("/sys/kernel/debug/tracing/events/syscalls/sys_enter_epoll_pwait2"));
	if (!f->root_caps)
		snprintf(f->why_not, sizeof(f->why_not),
			 "eBPF needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN "
			 "(run with sudo)");
	else if (!f->uprobe_pmu)
		snprintf(f->why_not, sizeof(f->why_not),
			 "this kernel has no uprobe PMU (CONFIG_UPROBE_EVENTS)");
	else if (!f->tracefs)
		snprintf(f->why_not, sizeof(f->why_not),
			 "syscall tracepoints unavailable: tracefs could not be "
			 "mounted on /sys/kernel/tracing (CONFIG_FTRACE_SYSCALLS?)");
	cache = *f;
	done = true;
	return 0;
}

bool uvs_features__ebpf_ok(const struct uvs_features *f)
{
	return f->root_caps && f->uprobe_pmu && f->tracefs;
}

void uvs_features__print(const struct uvs_features *f, FILE *out)
{
	fprintf(out, "uvscope: features: caps %s, btf %s, uprobes %s, "
		"syscall tracepoints %s, epoll_pwait2 %s, uprobe_multi %s\n",
		f->root_caps ? "yes" : "no", f->btf ? "yes" : "no",
		f->uprobe_pmu ? "yes" : "no", f->tracefs ? "yes" : "no",
		f->epoll_pwait2 ? "yes" : "no", f->uprobe_multi ? "yes" : "no");
}
