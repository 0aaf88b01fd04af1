// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer harness for the libuv layout profiles (profiles/libuv/VERSION.json,
 * or any directory UVSCOPE_PROFILES names): any text is a layout or one
 * error, and an accepted layout only gives offsets inside their struct,
 * which readers add to addresses in the target unchecked. The lookups
 * are those why, pool, blocked and the ptrace loop make. */
#include <stdlib.h>
#include "uvscope.h"

static const char *const uvs__fields[][2] = {
	{ "uv_handle_t", "handle_queue" },  { "uv_handle_t", "loop" },
	{ "uv_handle_t", "type" },	    { "uv_handle_t", "flags" },
	{ "uv_loop_t", "handle_queue" },    { "uv_loop_t", "active_reqs.count" },
	{ "uv_loop_t", "wq_async" },	    { "uv_loop_t", "backend_fd" },
	{ "uv_loop_t", "time" },	    { "uv_loop_t", "internal_fields" },
	{ "uv_timer_t", "timeout" },	    { "uv_fs_poll_t", "poll_ctx" },
	{ "uv_tcp_t", "io_watcher.fd" },    { "uv_fs_t", "work_req" },
	{ "uv_fs_t", "fs_type" },	    { "uv_work_t", "work_cb" },
	{ "uv_work_t", "work_req" },	    { "uv_req_t", "type" },
	{ "struct uv__work", "wq" },	    { "struct uv__work", "loop" },
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct uvs_layout *l;
	size_t i;
	long v;

	if (uvs_layout__parse("fuzz", (const char *)data, size, &l))
		return 0;
	for (i = 0; i < sizeof(uvs__fields) / sizeof(uvs__fields[0]); i++) {
		long off = uvs_layout__off(l, uvs__fields[i][0],
					   uvs__fields[i][1]);
		long sz = uvs_layout__size(l, uvs__fields[i][0]);

		if (off >= 0 && (sz < 0 || off > sz))
			abort();
	}
	uvs_layout__enum(l, "uv_req_type", "UV_FS");
	v = uvs_layout__enum(l, "uv_handle_type", "UV_HANDLE_TYPE_MAX");
	uvs_layout__enum_name(l, "uv_handle_type", v);
	for (v = -1; v < 40; v++)
		uvs_layout__enum_name(l, "uv_fs_type", v);
	uvs_layout__path(l);
	uvs_layout__close(l);
	return 0;
}
