// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Why a process ended: one decision for both backends. The eBPF backend
 * (exit.c) and the ptrace backend (exit_ptrace.c) each gather what they
 * saw into a struct uvs_exit_evidence: the wait status, the fatal signal
 * and its sender, the exit's own stack, the runtime's exit, what the
 * process wrote to stderr, and the state of its loop as it exited.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include "uvscope.h"

static void uvs__frames(struct uvs_exit_report *o,
			const struct uvs_exit_frames *k)
{
	int i;

	if (!k->seen)
		return;
	o->nstack = k->nframes;
	for (i = 0; i < k->nframes; i++)
		snprintf(o->stack[i], sizeof(o->stack[i]), "%s", k->frames[i]);
}

static void uvs__sender(struct uvs_exit_report *o,
			const struct uvs_exit_sender *s)
{
	if (!s->seen)
		return;
	o->has_sender = true;
	o->sender.pid = s->pid;
	o->sender.tid = s->tid ? s->tid : s->pid;
	o->sender.uid = s->uid;
	memcpy(o->sender.comm, s->comm, sizeof(o->sender.comm));
}

/* a frame of uv_run itself ("uv_run+0x7f (node)") */
static bool uvs__in_uv_run(const struct uvs_exit_frames *k)
{
	int i;

	for (i = 0; i < k->nframes; i++)
		if (!strncmp(k->frames[i], "uv_run+", 7) ||
		    !strncmp(k->frames[i], "uv_run ", 7))
			return true;
	return false;
}

/* The loop ran out of work: not if the program stopped it with work in
 * it (a runtime may close every handle after: luv does, as Lua closes);
 * uv_run returned 0 on it; else, read as the process exited, no active
 * handle nor request in it; else (no loop read) the exit came from
 * outside uv_run, main having returned. */
static bool uvs__drained(const struct uvs_exit_evidence *ev)
{
	if (ev->loop_stopped)
		return false;
	if (ev->loop_returned)
		return true;
	if (ev->loop != UVS_LOOP_UNREAD)
		return ev->loop == UVS_LOOP_EMPTY;
	return ev->exit_group_seen && ev->exit_group.nframes &&
	       !uvs__in_uv_run(&ev->exit_group);
}

int uvs_exit__signal(const struct uvs_exit_evidence *ev)
{
	if (!ev->status)
		return ev->fatal_sig;
	return WIFSIGNALED(*ev->status) ? WTERMSIG(*ev->status) : 0;
}

void uvs_exit__classify(const struct uvs_exit_evidence *ev,
			struct uvs_exit_report *o)
{
	const char *tail = ev->tail ? ev->tail : "";
	int sig = uvs_exit__signal(ev);

	if (ev->oom_kill) {
		o->reason = UVS_EXIT_OOM;
		snprintf(o->detail, sizeof(o->detail), "kernel");
		snprintf(o->message, sizeof(o->message),
			 "killed by the kernel's OOM killer%s%s%s",
			 ev->oom_kill[0] ? " (" : "", ev->oom_kill,
			 ev->oom_kill[0] ? ")" : "");
		o->signal = SIGKILL;
		return;
	}
	if (sig) {
		o->signal = sig;
		/* the fast path of a fatal signal delivers SIGKILL in its
		 * stead: where the thread was all the same */
		if (ev->deliver.seen && (ev->deliver_sig == sig ||
					 ev->deliver_sig == SIGKILL))
			uvs__frames(o, &ev->deliver);
		if (sig == SIGABRT && (strstr(tail, "heap out of memory") ||
				       ev->heap_oom_stack)) {
			o->reason = UVS_EXIT_OOM;
			snprintf(o->detail, sizeof(o->detail), "heap");
			if (!uvs_exit__fatal_line(tail, o))
				snprintf(o->message, sizeof(o->message),
					 "JavaScript heap out of memory (V8's "
					 "out-of-memory handler is on the "
					 "stack)");
		} else {
			o->reason = sig == SIGABRT ? UVS_EXIT_ABORT
						   : UVS_EXIT_SIGNAL;
			if (o->reason == UVS_EXIT_ABORT)
				uvs_exit__fatal_line(tail, o);
		}
		uvs__sender(o, &ev->sender);
		return;
	}
	if (ev->status && WIFEXITED(*ev->status)) {
		o->has_code = true;
		o->code = WEXITSTATUS(*ev->status);
	} else if (ev->exit_group_seen) {
		o->has_code = true;
		o->code = ev->exit_group_code & 0xff;
	}
	if (!o->has_code) {
		o->reason = UVS_EXIT_UNKNOWN;
		return;
	}
	if (ev->handled_sig) {
		/* exited with a code after a fatal signal it handled */
		o->handled_signal = ev->handled_sig;
		uvs__sender(o, &ev->handled_sender);
	}
	if (o->code && (uvs_exit__uncaught(tail, o) || ev->uncaught_stack)) {
		o->reason = UVS_EXIT_UNCAUGHT;
		if (!o->message[0])
			snprintf(o->message, sizeof(o->message),
				 "uncaught exception (its text went to the "
				 "process's stderr, %s)",
				 ev->tail_unreadable ? ev->tail_unreadable
						     : "unread");
		uvs__frames(o, ev->runtime_exit.seen ? &ev->runtime_exit
						     : &ev->exit_group);
		return;
	}
	if (ev->runtime_exit.seen) {
		o->reason = UVS_EXIT_EXIT;
		uvs__frames(o, &ev->runtime_exit);
		return;
	}
	/* A drained loop and code 0. With another code it is an exit
	 * (drained_at_ms says when the loop had drained): a program that
	 * closes its loop to end drains it first (neovim's ":cquit 3",
	 * Python's sys.exit(3) on uvloop: were "drained, code 3"). */
	o->reason = !o->code && uvs__drained(ev) ? UVS_EXIT_DRAINED
						 : UVS_EXIT_EXIT;
	if (ev->loop_stopped) {
		/* a drain after it is the runtime's teardown */
		o->drained_at_ms = -1;
		snprintf(o->message, sizeof(o->message),
			 "the program stopped its loop (uv_stop) with %u "
			 "active handle%s and %u request%s in it",
			 ev->stop_handles, ev->stop_handles == 1 ? "" : "s",
			 ev->stop_reqs, ev->stop_reqs == 1 ? "" : "s");
	}
	uvs__frames(o, &ev->exit_group);
}

/* Node prints an uncaught exception as: source line, caret, blank line,
 * "Error: message", "    at ..." lines, blank line, "Node.js vX.Y.Z". */
bool uvs_exit__uncaught(const char *tail, struct uvs_exit_report *o)
{
	const char *end = strstr(tail, "\nNode.js v"), *p, *line;
	size_t n;

	if (!end)
		return false;
	/* the error line: the last line before the trailer that is not a
	 * frame and has "Error" or "Exception" before a colon */
	o->message[0] = '\0';
	o->js_stack[0] = '\0';
	for (p = tail; p < end; p = line + n + 1) {
		const char *colon;

		line = p;
		n = strcspn(line, "\n");
		if (line + n > end)
			n = end - line;
		if (!strncmp(line, "    at ", 7)) {
			size_t have = strlen(o->js_stack);

			snprintf(o->js_stack + have, sizeof(o->js_stack) - have,
				 "%.*s\n", (int)n, line);
			continue;
		}
		colon = memchr(line, ':', n);
		if (colon && (memmem(line, colon - line, "Error", 5) ||
			      memmem(line, colon - line, "Exception", 9) ||
			      !strncmp(line, "Uncaught", 8))) {
			snprintf(o->message, sizeof(o->message), "%.*s", (int)n,
				 line);
			o->js_stack[0] = '\0'; /* frames follow their error */
		}
		if (line + n >= end)
			break;
	}
	if (!o->message[0]) {
		/* thrown non-Error values: "Uncaught 'x'" or the raw value */
		snprintf(o->message, sizeof(o->message), "uncaught exception");
	}
	return true;
}

/* V8's "FATAL ERROR: ..." line (heap out of memory, a failed CHECK) as the
 * message of an abort; false (the message left alone) without one. */
bool uvs_exit__fatal_line(const char *tail, struct uvs_exit_report *o)
{
	const char *f = strstr(tail, "FATAL ERROR:");

	if (!f)
		return false;
	snprintf(o->message, sizeof(o->message), "%.*s", (int)strcspn(f, "\n"),
		 f);
	return true;
}

