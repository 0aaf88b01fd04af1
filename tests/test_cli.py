# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The command line: help, bad input, signals, and leaving the target as
it was found."""
import json
import os
import signal
import subprocess
import time

from harness import (FIX, UVSCOPE, UVSCOPE_ASAN, Target, check, eq,
                     one_line_error, read_mem, run, runtime_addr, test,
                     wait_for, within)


def commands():
    """The subcommands uvscope --help lists."""
    rc, out, err = run(["--help"])
    body = out.split("Commands:", 1)[1].split("\n\n", 1)[0]
    return [ln.split()[0] for ln in body.splitlines() if ln.strip()]


@test(timeout=20)
def cli_help_has_examples():
    cmds = commands()
    for c in ("loop", "pool", "blocked", "why", "exit", "record", "report",
              "check", "diff", "flame"):
        check(c in cmds, "%s missing from uvscope --help: %s" % (c, cmds))
    for args in [["--help"]] + [[c, "--help"] for c in cmds]:
        rc, out, err = run(args)
        eq(rc, 0, "exit status of uvscope %s" % " ".join(args))
        check("EXAMPLES" in out, "no EXAMPLES in %s" % args)
        check(out.rstrip().splitlines()[-1].strip().startswith("uvscope"),
              "help should end with examples")
        for ln in out.splitlines():
            check(len(ln) <= 80, "help line over 80 columns: %r" % ln)


@test(timeout=10)
def cli_usage_errors():
    for args, what in ((["frobnicate"], "unknown command"),
                       (["loop", "--frob"], "unknown option"),
                       (["loop"], "no target"),
                       (["loop", "-p", "12x"], "bad pid"),
                       (["loop", "-p", "1", "--", "true"], "pid and command"),
                       (["loop", "-d", "soon", "-p", "1"], "bad duration"),
                       (["loop", "--backend", "magic", "-p", "1"],
                        "bad backend")):
        rc, out, err = run(args, binary=UVSCOPE_ASAN)
        one_line_error(rc, err, what)
        eq(out, "", "stdout for %s" % what)


def free_pid():
    pid = 4000000
    while os.path.exists("/proc/%d" % pid):
        pid += 1
    return pid


@test(timeout=10)
def cli_no_such_pid():
    rc, out, err = run(["loop", "-p", str(free_pid())], binary=UVSCOPE_ASAN)
    line = one_line_error(rc, err, "no such pid")
    check("no such process" in line, line)


@test(timeout=10)
def cli_not_a_libuv_process():
    p = subprocess.Popen(["sleep", "30"])
    try:
        rc, out, err = run(["loop", "-p", str(p.pid)], binary=UVSCOPE_ASAN)
    finally:
        p.kill()
        p.wait()
    line = one_line_error(rc, err, "sleep")
    check("not a libuv process" in line and "uv_run" in line,
          "should say what was looked for: " + line)


@test(timeout=10)
def cli_not_root():
    """--backend ebpf without the capabilities: one line naming them.
    (With auto, uvscope falls back to ptrace: tests/test_ptrace.py.)"""
    nobody = 65534
    with Target([FIX + "/loopfix", "idle", "100"], user=nobody) as t:
        p = subprocess.run([UVSCOPE, "loop", "--backend", "ebpf", "-p",
                            str(t.pid)],
                           capture_output=True, preexec_fn=lambda: (
                               os.setgid(nobody), os.setuid(nobody)))
    line = one_line_error(p.returncode, p.stderr.decode(), "not root")
    check("CAP_BPF" in line and "sudo" in line,
          "should name the capability and sudo: " + line)


@test(timeout=10)
def cli_launch_missing_program():
    rc, out, err = run(["loop", "--", "/nonexistent/prog"])
    line = one_line_error(rc, err, "missing program")
    check("/nonexistent/prog" in line, line)
    rc, out, err = run(["loop", "--", "/bin/true"])
    line = one_line_error(rc, err, "not libuv program")
    check("not a libuv program" in line, line)


@test(timeout=20)
def cli_target_exits_mid_trace():
    with Target([FIX + "/loopfix", "idle", "100"]) as t:
        p = subprocess.Popen([UVSCOPE, "loop", "-p", str(t.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.5)
        t.p.kill()
        t.p.wait()
        out, err = p.communicate(timeout=10)
    eq(p.returncode, 0, "exit status")
    out, err = out.decode(), err.decode()
    check("iterations:" in out, "no report of what was collected:\n" + out)
    check("target exited" in out, "report should say the target exited")
    check("pid %d exited after" % t.pid in err, "stderr: %r" % err)


def uprobe_byte(pid, path, sym):
    return read_mem(pid, runtime_addr(pid, path, sym), 1)


@test(timeout=30)
def cli_sigkill_leaves_target_unprobed():
    """SIGKILL gives uvscope no chance to clean up: the kernel must, since
    every probe is held by a file descriptor."""
    fix = FIX + "/loopfix"
    with Target([fix, "idle", "100"]) as t:
        before = uprobe_byte(t.pid, fix, "uv__run_timers")
        check(before != b"\xcc", "breakpoint already there")
        p = subprocess.Popen([UVSCOPE, "loop", "-p", str(t.pid)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        wait_for(lambda: uprobe_byte(t.pid, fix, "uv__run_timers") == b"\xcc",
                 5, "the uprobe to be installed")
        p.kill()
        p.wait()
        wait_for(lambda: uprobe_byte(t.pid, fix, "uv__run_timers") == before,
                 5, "the uprobe to be removed")
        check(t.p.poll() is None, "target died")
        # and it still runs its loop as before
        rc, out, err = run(["loop", "--json", "-d", "1", "-p", str(t.pid)])
        eq(rc, 0, "second attach: " + err)
        within(json.loads(out)["loop"]["iterations"], 8, 11,
               "iterations in 1 s after the kill")


@test(timeout=20)
def cli_sigint_when_started_with_sigint_ignored():
    """A script that backgrounds uvscope hands it SIGINT ignored; Ctrl-C
    semantics must hold anyway, and the probes must go."""
    fix = FIX + "/loopfix"
    with Target([fix, "idle", "100"]) as t:
        before = uprobe_byte(t.pid, fix, "uv__run_timers")
        p = subprocess.Popen(["sh", "-c", 'trap "" INT; exec "$@"', "sh",
                              UVSCOPE, "loop", "--json", "-p", str(t.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: uprobe_byte(t.pid, fix, "uv__run_timers") == b"\xcc",
                 5, "the uprobe to be installed")
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        eq(p.returncode, 0, "exit status after SIGINT (%s)" % err.decode())
        doc = json.loads(out)
        within(doc["loop"]["iterations"], 8, 14, "iterations before SIGINT")
        eq(uprobe_byte(t.pid, fix, "uv__run_timers"), before,
           "code byte after exit")


@test(timeout=20)
def cli_sigterm_prints_report():
    with Target([FIX + "/loopfix", "idle", "100"]) as t:
        p = subprocess.Popen([UVSCOPE, "loop", "-p", str(t.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.2)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
    eq(p.returncode, 0, "exit status (%s)" % err.decode())
    check(b"iterations:" in out, "no report after SIGTERM")


@test(timeout=60)
def cli_demo_script():
    env = dict(os.environ, UVSCOPE_DEMO_SECONDS="2")
    p = subprocess.run(["sh", "scripts/demo.sh"], capture_output=True,
                       env=env, timeout=50,
                       cwd=os.path.dirname(UVSCOPE))
    eq(p.returncode, 0, "demo exit status (%s)" % p.stderr.decode())
    out = p.stdout.decode()
    check("timers" in out and "PHASE" in out, "demo output:\n" + out)


