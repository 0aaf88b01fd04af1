// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uvscope why: what keeps a process's loop alive, read from its memory. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static void why_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope why [--json] [-v] -p PID\n"
"\n"
"Explains why a process will not exit: walks its libuv loop's handles in\n"
"its memory (process_vm_readv; the process is not stopped) with the\n"
"struct layout of its libuv version (profiles/libuv/), and lists what\n"
"keeps the loop alive -- servers and sockets with their addresses,\n"
"timers with when they are due, signals, child processes, watched paths,\n"
"and the runtime's own handles by their callbacks -- and, apart, the\n"
"handles that do not (unref'd, stopped, closing). A libuv version\n"
"without a profile is refused, naming the closest one.\n"
"\n"
"EXAMPLES:\n"
"  uvscope why -p $(pgrep -n node)\n"
"  uvscope why --json -p 1234 | jq .why.keepers\n");
}

int cmd_why(int argc, char **argv)
{
	struct uvs_cli c = { .go_fd = -1, .exec_err_fd = -1 };
	struct uvs_report *r;
	int k, err;

	k = uvs_cli__parse(&c, argc, argv, "why", why_help, NULL, NULL);
	if (k)
		return k > 0 ? 0 : UVS_EXIT_ERR;
	if (c.cmd) {
		uvs_error("why looks at a running process: use -p PID");
		return UVS_EXIT_ERR;
	}
	if (c.duration || c.interval || c.tid || c.backend) {
		uvs_error("why takes a snapshot: -d, -i, --tid and --backend "
			  "do not apply");
		return UVS_EXIT_ERR;
	}
	if (uvs_cli__start(&c))
		return UVS_EXIT_ERR;
	r = malloc(sizeof(*r));
	if (!r) {
		uvs_error("out of memory");
		uvs_target__close(c.target);
		return UVS_EXIT_ERR;
	}
	uvs_report__init(r, "why", c.target, "memory");
	err = uvs_why__snapshot(c.target, &r->why, UVS_WHY_NAMES |
				UVS_WHY_ALL_LOOPS | UVS_WHY_REQUESTS);
	if (err) {
		/* a target that ended or exec'd while being read says so */
		uvs_cli__attach_failed(&c);
		free(r);
		uvs_target__close(c.target);
		return UVS_EXIT_ERR;
	}
	uvs_debug("layout: %s", r->why.profile);
	if (c.json)
		uvs_report__print_json(r, stdout);
	else
		uvs_report__print_text(r, stdout);
	free(r);
	uvs_target__close(c.target);
	return 0;
}
