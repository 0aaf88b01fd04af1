// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uvscope exit: wait for a process to end, then say why. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "cli.h"
#include "ptrace.h"

static void exit_help(FILE *out)
{
	fprintf(out,
"Usage: uvscope exit [OPTIONS] (-p PID | -- PROGRAM [ARGS...])\n"
"\n"
"Watches a process, at near-zero cost to it, until it ends; then reports\n"
"why: drained (its loop ran out of work), exit (code, and the stack of\n"
"the exit call: process.exit in Node), uncaught-exception (the message\n"
"and stack the runtime printed), signal (which, and who sent it), abort\n"
"(with the native stack) or oom (Node's heap limit, or the kernel's OOM\n"
"killer). Threads that exit on their own (workers) are listed apart.\n"
"\n"
"Options:\n"
"  -p, --pid PID         watch a running process\n"
"  -- PROGRAM [ARGS]     launch PROGRAM and watch it from the start\n"
"  -d, --duration SECS   stop watching after SECS (it keeps running)\n"
"      --json            the report as JSON (schema uvscope/1)\n"
"      --backend B       auto (default), ebpf or ptrace (no eBPF needed:\n"
"                        exit and signal stops; see docs/backends.md)\n"
"  -v, --verbose         show what is traced\n"
"\n"
"Ctrl-C stops watching and leaves the process as it was.\n"
"\n"
"EXAMPLES:\n"
"  uvscope exit -p 1234                  # wait for it to end, say why\n"
"  uvscope exit --json -- node app.js    # run it, explain its end\n"
"  uvscope exit --backend ptrace -p 1234 # without eBPF\n");
}

/* Keeps a description of the keepers of the latest snapshot that had any. */
static void remember_keeper(const struct uvs_why_report *w, char *buf,
			    size_t len)
{
	size_t used = 0;
	int i;

	if (!w->keepers)
		return;
	buf[0] = '\0';
	for (i = 0; i < w->nhandles && used + 1 < len; i++) {
		const struct uvs_why_handle *h = &w->handles[i];

		if (h->why_not)
			continue;
		used += snprintf(buf + used, len - used, "%s%s %s",
				 used ? "; " : "", h->type_name, h->detail);
	}
}

/* The ptrace backend: exit and signal-delivery stops (exit_ptrace.c). */
static int exit_ptrace(struct uvs_cli *c)
{
	struct uvs_report *r = NULL;
	struct uvs_pexit *x = NULL;
	struct uvs_why_report *snap = NULL;
	bool ended = false, have_layout = true, reaped;
	uint64_t t0, last_snap = 0;
	char keeper[320] = "";
	double keeper_ms = 0;
	int ret = UVS_EXIT_ERR, st;

	if (uvs_pexit__open(c->target, c->child != 0, &x)) {
		uvs_cli__attach_failed(c);
		goto out;
	}
	if (uvs_verbose)
		uvs_pexit__describe(x, stderr);
	if (uvs_cli__release(c))
		goto out;
	r = malloc(sizeof(*r));
	snap = malloc(sizeof(*snap));
	if (!r) {
		uvs_error("out of memory");
		goto out;
	}
	t0 = uvs_now_ns();
	while (!uvs_cli_stop) {
		if (uvs_pexit__poll(x, 100)) {
			uvs_error("%s", uvs_errmsg());
			goto out;
		}
		if (uvs_pexit__ended(x, &reaped, &st)) {
			uvs_cli__reaped(c, reaped, st);
			ended = true;
			/* an exec ends the tracer: the same line as the
			 * other subcommands' (its report says it too) */
			uvs_cli__execd(c);
			break;
		}
		if (snap && have_layout && uvs_now_ns() - last_snap > 500000000ull) {
			last_snap = uvs_now_ns();
			int e = uvs_why__snapshot(c->target, snap, 0);

			/* a loop not created yet is asked for again; a
			 * libuv without a layout, never */
			if (e && e != -EAGAIN) {
				have_layout = false;
				uvs_debug("no keeper snapshots: %s", uvs_errmsg());
			} else if (!e) {
				remember_keeper(snap, keeper, sizeof(keeper));
				keeper_ms = (last_snap - t0) / 1e6;
				uvs_pexit__set_loop(x, snap->loop_addr);
			}
		}
		if (c->duration && uvs_now_ns() - t0 >= c->duration * 1e9)
			break;
	}
	uvs_report__init(r, "exit", c->target, "ptrace");
	r->duration_s = (uvs_now_ns() - t0) / 1e9;
	r->target_exited = ended && !c->execd;
	uvs_pexit__finish(x, c->child && c->child_reaped ? &c->child_status
							  : NULL, !ended, r);
	if (r->exit.reason == UVS_EXIT_DRAINED && keeper[0]) {
		snprintf(r->exit.last_keeper, sizeof(r->exit.last_keeper), "%s",
			 keeper);
		r->exit.last_keeper_ms = keeper_ms;
	}
	uvs_pexit__close(x);
	x = NULL;
	if (c->json)
		uvs_report__print_json(r, stdout);
	else
		uvs_report__print_text(r, stdout);
	ret = uvs_cli__end(c, ended, NULL, 0);
out:
	uvs_pexit__close(x);
	if (c->child)
		uvs_cli__finish(c);
	uvs_target__close(c->target);
	free(snap);
	free(r);
	return ret;
}

/* The exec's event came: the process runs another image, which may not
 * be readable yet (its auxiliary vector is filled in as the exec ends).
 * Given 200 ms to read it; an exec all the same. */
static void execd(struct uvs_cli *c)
{
	int i;

	for (i = 0; i < 200 && !uvs_cli__execd(c); i++)
		usleep(1000);
	if (c->execd || uvs_cli__exe_changed(c))
		return;
	c->execd = true;
	snprintf(c->exec_path, sizeof(c->exec_path), "another program");
}

int cmd_exit(int argc, char **argv)
{
	struct uvs_cli c = { .go_fd = -1, .exec_err_fd = -1 };
	struct uvs_report *r = NULL;
	struct uvs_exit *x = NULL;
	struct uvs_why_report *snap = NULL;
	bool ended = false, have_layout = true;
	uint64_t t0, last_snap = 0;
	char keeper[320] = "";
	double keeper_ms = 0;
	int k, err, ret = UVS_EXIT_ERR;

	k = uvs_cli__parse(&c, argc, argv, "exit", exit_help, NULL, NULL);
	if (k)
		return k > 0 ? 0 : UVS_EXIT_ERR;
	if (c.interval || c.tid) {
		uvs_error("exit: -i and --tid do not apply");
		return UVS_EXIT_ERR;
	}
	c.ptrace_ok = true;
	if (uvs_cli__prepare(&c))
		return UVS_EXIT_ERR;
	if (c.use_ptrace)
		return exit_ptrace(&c);
	err = uvs_exit__open(c.target, &x);
	if (err) {
		uvs_cli__attach_failed(&c);
		goto out;
	}
	if (uvs_verbose)
		uvs_exit__describe(x, stderr);
	if (uvs_cli__release(&c))
		goto out;
	r = malloc(sizeof(*r));
	if (!r) {
		uvs_error("out of memory");
		goto out;
	}
	t0 = uvs_now_ns();
	snap = malloc(sizeof(*snap));
	while (!uvs_cli_stop) {
		if (uvs_exit__poll(x, 100)) {
			uvs_error("%s", uvs_errmsg());
			goto out;
		}
		if (!uvs_cli__target_alive(&c)) {
			ended = true;
			/* an exec from a thread other than the leader shows
			 * the leader a zombie for a moment: the exec's own
			 * event tells it from an end */
			uvs_exit__poll(x, 50);
			if (uvs_exit__execd(x))
				execd(&c);
			break;
		}
		/* an exec ends the program watched: the same line as the
		 * other subcommands' (its report says it too) */
		if (uvs_exit__execd(x)) {
			ended = true;
			execd(&c);
			break;
		}
		/* Twice a second, what keeps the main loop alive (a read of
		 * a few hundred bytes of its memory, nothing named or scanned):
		 * if it drains, the last keeper seen is named. */
		if (snap && have_layout && uvs_now_ns() - last_snap > 500000000ull) {
			last_snap = uvs_now_ns();
			int e = uvs_why__snapshot(c.target, snap, 0);

			/* a loop not created yet is asked for again; a
			 * libuv without a layout, never */
			if (e && e != -EAGAIN) {
				have_layout = false;
				uvs_debug("no keeper snapshots: %s", uvs_errmsg());
			} else if (!e) {
				remember_keeper(snap, keeper, sizeof(keeper));
				keeper_ms = (last_snap - t0) / 1e6;
				/* the loop that runs: read as it exits */
				uvs_exit__set_loop(x, snap->loop_addr);
			}
		}
		if (c.duration && uvs_now_ns() - t0 >= c.duration * 1e9)
			break;
	}
	uvs_report__init(r, "exit", c.target, uvs_tier_name(c.target->tier));
	r->duration_s = (uvs_now_ns() - t0) / 1e9;
	/* the kernel may still be delivering the last events */
	if (ended)
		uvs_exit__poll(x, 50);
	/* after an exec the process runs on: not an end to classify */
	uvs_exit__finish(x, c.cmd && c.child_reaped ? &c.child_status : NULL,
			 !ended || c.execd, r);
	/* finish waits for an end the leader's zombie only hinted at: an
	 * exec whose event came late is an exec all the same */
	if (ended && !c.execd && uvs_exit__execd(x))
		execd(&c);
	r->target_exited = ended && !c.execd;
	if (r->exit.reason == UVS_EXIT_DRAINED && keeper[0]) {
		snprintf(r->exit.last_keeper, sizeof(r->exit.last_keeper), "%s",
			 keeper);
		r->exit.last_keeper_ms = keeper_ms;
	}
	uvs_exit__close(x);
	x = NULL;
	if (c.json)
		uvs_report__print_json(r, stdout);
	else
		uvs_report__print_text(r, stdout);
	ret = uvs_cli__end(&c, ended, NULL, 0);
out:
	uvs_exit__close(x);
	if (c.child)
		uvs_cli__finish(&c);
	uvs_target__close(c.target);
	free(snap);
	free(r);
	return ret;
}
