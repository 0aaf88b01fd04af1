// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer harness for the /proc/PID/status parser: a target cannot
 * write its status, but its comm (Name:) and a kernel's future lines are
 * text uvscope did not choose, read as root. Any bytes parse, in bounds,
 * and what is found is in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "uvscope.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct uvs_proc_status st;
	/* an exact copy, so ASan sees a read past the end */
	char *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (uvs_status__parse(buf, size, &st))
		abort();
	if (st.have & ~(UVS_ST_TRACER | UVS_ST_NSPID | UVS_ST_UID |
			UVS_ST_SIGS))
		abort();
	if (st.tracer_pid < 0 || st.nspid < 0 ||
	    (!(st.have & UVS_ST_NSPID) && st.nspid) ||
	    (!(st.have & UVS_ST_TRACER) && st.tracer_pid))
		abort();
	free(buf);
	return 0;
}
