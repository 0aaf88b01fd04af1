// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uvscope: a command table in the manner of bpftool. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

struct uvs_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct uvs_cmd cmds[] = {
	{ "loop", cmd_loop, "event-loop phase latency, poll timeouts and waits" },
	{ "pool", cmd_pool, "thread-pool queue wait, run time, saturation" },
	{ "blocked", cmd_blocked, "what blocked the loop thread: episodes, stacks" },
	{ "why", cmd_why, "what keeps a process from exiting (no stop)" },
	{ "exit", cmd_exit, "wait for a process to end, then say why" },
	{ "record", cmd_record, "record a run into one JSON file" },
	{ "report", cmd_report, "render a recorded run again (text or JSON)" },
	{ "check", cmd_check, "compare a run with baselines; exit 1 on regression" },
	{ "diff", cmd_diff, "differential flame graph of two recorded runs" },
	{ "flame", cmd_flame, "render folded stacks: flame graph SVG, speedscope" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *out)
{
	const struct uvs_cmd *c;

	fprintf(out,
		"Usage: uvscope COMMAND [OPTIONS] (-p PID | -- PROGRAM [ARGS...])\n"
		"\n"
		"Explains what a libuv-based process (Node.js, or any program on\n"
		"libuv) is doing, from the outside, without restarting it.\n"
		"\n"
		"Commands:\n");
	for (c = cmds; c->name; c++)
		fprintf(out, "  %-8s %s\n", c->name, c->summary);
	fprintf(out,
		"\n"
		"Run 'uvscope COMMAND --help' for a command's options.\n"
		"\n"
		"EXAMPLES:\n"
		"  uvscope loop -p $(pgrep -n node)      # phase latency until Ctrl-C\n"
		"  uvscope loop -d 10 --json -p 1234     # 10 s, machine-readable\n"
		"  uvscope loop -- node server.js        # launch and trace from start\n"
		"  uvscope pool -p 1234 -d 10            # is the thread pool the bottleneck?\n"
		"  uvscope blocked -p 1234 --flame b.svg # what blocked the loop, as a flame\n"
		"  uvscope why -p 1234                   # why won't it exit?\n"
		"  uvscope exit -p 1234                  # why did it end?\n"
		"  uvscope record -o run.json -d 30 -p 1234\n"
		"  uvscope check --baseline base.json run.json\n"
		"  uvscope diff base.json run.json --flame diff.svg\n");
}

uint64_t uvs_cli_t0;

int main(int argc, char **argv)
{
	const struct uvs_cmd *c;
	int ret;

	uvs_cli_t0 = uvs_now_ns();

	if (argc < 2) {
		usage(stderr);
		return UVS_EXIT_ERR;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("uvscope %s\n", UVS_VERSION);
		return 0;
	}
	for (c = cmds; c->name; c++) {
		if (!strcmp(argv[1], c->name)) {
			ret = c->fn(argc - 1, argv + 1);
			uvs_cli__out_cleanup();
			return ret;
		}
	}
	fprintf(stderr, "uvscope: unknown command '%s' (see uvscope --help)\n",
		argv[1]);
	return UVS_EXIT_ERR;
}
