# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The command line: help, bad input, signals, and leaving the target as
it was found."""
import json
import os
import re
import signal
import subprocess
import time

from harness import (FIX, UVSCOPE, UVSCOPE_ASAN, Fail, Target, check, eq,
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
def cli_launch_package_runner_says_what_to_run():
    """npm run, npx, yarn and pnpm run the program in a child process:
    uvscope traced npm's own node instead, silently. Now one line says so
    and what to run instead (issue 12); nothing is started."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        marker = os.path.join(d, "ran")
        for name in ("npx", "yarn"):
            prog = os.path.join(d, name)
            with open(prog, "w") as f:
                f.write("#!/bin/sh\ntouch %s\n" % marker)
            os.chmod(prog, 0o755)
            rc, out, err = run(["loop", "-d", "1", "--", prog, "jest"])
            line = one_line_error(rc, err, name)
            check("child process" in line and "-p PID" in line and
                  "node app.js" in line, "%s: %s" % (name, line))
        check(not os.path.exists(marker), "a refused runner was started")
    if os.path.exists("/usr/bin/npm"):
        rc, out, err = run(["blocked", "-d", "1", "--", "npm", "run", "x"])
        line = one_line_error(rc, err, "npm run")
        check(line.startswith("uvscope: npm runs the program"), line)


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




# ---- numbers, thread ids and output paths: refused before attaching ----

@test(timeout=60)
def cli_numbers_refused():
    """Every number typed is read whole, in range, neither NaN nor
    infinite, and a bad one is refused in one line that quotes it (the
    target, a pid that does not exist, is never looked at)."""
    pid = str(free_pid())
    o = "/tmp/uvscope-numbers-%d.json" % os.getpid()
    cases = [
        (["loop", "-d", "nan"], "nan"),
        (["loop", "-d", "inf"], "inf"),
        (["loop", "-d", "5x"], "5x"),
        (["loop", "-d", "-1"], "-1"),
        (["loop", "-d", "0"], "0"),
        (["loop", "-d", "1e400"], "1e400"),
        (["loop", "-d", ""], "''"),
        (["loop", "-i", "nan"], "nan"),
        (["loop", "-i", "0.01"], "0.01"),
        (["pool", "-i", "inf"], "inf"),
        (["loop", "--rate", "nan"], "nan"),
        (["loop", "--rate", "99abc"], "99abc"),
        (["loop", "--rate", "inf"], "inf"),
        (["loop", "--phase-floor", "5abc"], "5abc"),
        (["loop", "--phase-floor", "nan"], "nan"),
        (["loop", "--probe-budget", "-1"], "-1"),
        (["loop", "--probe-budget", " 5"], " 5"),
        (["loop", "--probe-budget", "18446744073709551617"],
         "18446744073709551617"),
        (["loop", "--probe-budget", "0"], "0"),
        (["pool", "--probe-budget", "-1"], "-1"),
        (["record", "-o", o, "-t", "nan"], "nan"),
        (["record", "-o", o, "-t", "5x"], "5x"),
        (["blocked", "-t", "nan"], "nan"),
        (["blocked", "-t", "inf"], "inf"),
        (["blocked", "-t", "5x"], "5x"),
        (["blocked", "-F", "99x"], "99x"),
        (["blocked", "-F", "-1"], "-1"),
        (["blocked", "-F", "4294967393"], "4294967393"),
        (["loop", "--tid", "4294967297"], "4294967297"),
        (["loop", "--tid", "-1"], "-1"),
        (["loop", "--tid", "nan"], "nan"),
        (["exit", "-d", "nan"], "nan"),
    ]
    for args, bad in cases:
        rc, out, err = run(args + ["-p", pid], binary=UVSCOPE_ASAN)
        what = " ".join(args)
        line = one_line_error(rc, err, what)
        check(bad in line, "%s: the line should quote %r: %s"
              % (what, bad, line))
        eq(out, "", "stdout for %s" % what)
    for args, bad in ((["-p", "4294967297"], "4294967297"),
                      (["-p", "-4294967295"], "-4294967295"),
                      (["-p", "+1"], "+1"),
                      (["-p", " 1"], " 1")):
        rc, out, err = run(["loop"] + args, binary=UVSCOPE_ASAN)
        line = one_line_error(rc, err, "loop " + " ".join(args))
        check(bad in line, "should quote %r: %s" % (bad, line))
    check(not os.path.exists(o), "record left %s behind" % o)


@test(timeout=30)
def cli_check_numbers_refused():
    for args, bad in ((["--min-change", "inf"], "inf"),
                      (["--min-change", "nan"], "nan"),
                      (["--min-change", "-1"], "-1"),
                      (["--min-change", "2x"], "2x"),
                      (["--max-regression", "nan"], "nan"),
                      (["--max-regression", "inf%"], "inf%"),
                      (["--max-regression", "10abc"], "10abc")):
        rc, out, err = run(["check"] + args + ["-b", "/nonexistent/b.json",
                                                "/nonexistent/r.json"],
                           binary=UVSCOPE_ASAN)
        line = one_line_error(rc, err, "check " + " ".join(args))
        check(bad in line, "should quote %r: %s" % (bad, line))


@test(timeout=30)
def cli_pid_that_wraps_is_refused():
    """-p 2^32+P was read as P (strtol's long cut to pid_t): a typo must not
    trace another process."""
    with Target([FIX + "/loopfix", "idle", "100"]) as t:
        for opt in (["-p", str(4294967296 + t.pid)],
                    ["-p", str(t.pid), "--tid", str(4294967296 + t.pid)]):
            rc, out, err = run(["loop", "-d", "1"] + opt,
                               binary=UVSCOPE_ASAN)
            line = one_line_error(rc, err, " ".join(opt))
            check(str(4294967296 + t.pid) in line, line)
            eq(out, "", "stdout for %s" % opt)


@test(timeout=60)
def cli_tid_must_be_a_thread_of_the_target():
    """--tid 1 traced nothing for the whole run and exited 0."""
    with Target([FIX + "/loopfix", "idle", "100"]) as t, \
            Target([FIX + "/loopfix", "idle", "100"]) as other:
        for cmd in (["loop"], ["loop", "--backend", "ptrace"], ["blocked"],
                    ["record", "-o", "/tmp/uvscope-tid-%d.json" % os.getpid()]):
            for tid in (1, other.pid):
                t0 = time.monotonic()
                rc, out, err = run(cmd + ["-d", "3", "-p", str(t.pid),
                                          "--tid", str(tid)])
                what = "%s --tid %d" % (" ".join(cmd), tid)
                line = one_line_error(rc, err, what)
                check("%d" % tid in line and "thread" in line
                      and str(t.pid) in line, "%s: %s" % (what, line))
                check(time.monotonic() - t0 < 1.5,
                      "%s: refused only after the trace" % what)
        # its own main thread is one
        rc, out, err = run(["loop", "--json", "-d", "0.5", "-p", str(t.pid),
                            "--tid", str(t.pid)])
        eq(rc, 0, "loop --tid of the main thread: " + err)
    # a launched program's threads are not known before it runs
    rc, out, err = run(["loop", "-d", "1", "--tid", "5", "--",
                        FIX + "/loopfix", "idle", "100"])
    line = one_line_error(rc, err, "--tid with a launched program")
    check("--tid" in line, line)


@test(timeout=20)
def cli_pool_refuses_tid():
    """pool watches the process's whole pool: --tid was accepted and
    ignored."""
    with Target([FIX + "/poolfix", "idle", "100"]) as t:
        rc, out, err = run(["pool", "-d", "1", "-p", str(t.pid), "--tid",
                            str(t.pid)], binary=UVSCOPE_ASAN)
    line = one_line_error(rc, err, "pool --tid")
    check("--tid" in line and "pool" in line, line)


@test(timeout=90)
def cli_output_paths_checked_before_attaching():
    """record -o /nonexistent/d/run.json -d 5 failed after the 5 s, the
    trace lost: every file to write is checked before anything is
    attached (one line, exit 2, the target left untouched)."""
    tmp = "/tmp/uvscope-outpaths-%d" % os.getpid()
    os.makedirs(tmp, exist_ok=True)
    fix = FIX + "/loopfix"
    with Target([fix, "idle", "100"]) as t:
        before = uprobe_byte(t.pid, fix, "uv__run_timers")
        p = str(t.pid)
        for bad in ("/nonexistent/d/run.json", tmp):
            for args in (["record", "-d", "5", "-p", p, "-o", bad],
                         ["blocked", "-d", "5", "-p", p, "--flame", bad],
                         ["blocked", "-d", "5", "-p", p, "--folded", bad],
                         ["blocked", "-d", "5", "-p", p, "--speedscope",
                          bad],
                         ["blocked", "-d", "5", "--backend", "ptrace",
                          "-p", p, "--folded", bad],
                         ["record", "-d", "5", "-o", bad, "--", fix,
                          "idle", "100"]):
                t0 = time.monotonic()
                rc, out, err = run(args)
                what = " ".join(args)
                line = one_line_error(rc, err, what)
                check(bad in line, "%s: should name the file: %s"
                      % (what, line))
                check(time.monotonic() - t0 < 1.5,
                      "%s: the path was checked only after tracing" % what)
                eq(uprobe_byte(t.pid, fix, "uv__run_timers"), before,
                   "code byte after " + what)
        with open("/proc/%d/status" % t.pid) as f:
            check("TracerPid:\t0\n" in f.read(), "target left traced")
        check(t.p.poll() is None, "target died")
    # and the files that read records
    rec = os.path.join(tmp, "run.json")
    rc, out, err = run(["record", "-o", rec, "-d", "1", "--", fix, "idle",
                        "100"])
    eq(rc, 0, "record: " + err)
    for args in (["report", "--flame", "/nonexistent/d/f.svg", rec],
                 ["report", "--folded", tmp, rec],
                 ["check", "--junit", "/nonexistent/d/j.xml", "-b", rec, rec],
                 ["diff", rec, rec, "--flame", "/nonexistent/d/f.svg"]):
        rc, out, err = run(args, binary=UVSCOPE_ASAN)
        line = one_line_error(rc, err, " ".join(args))
        check("/nonexistent/d" in line or tmp in line, line)
        eq(out, "", "stdout for %s" % args)
    # a later error leaves neither an empty file nor a temporary one
    names = set(os.listdir(tmp))
    for args in (["record", "-o", os.path.join(tmp, "new.json"), "-p",
                  str(free_pid())],
                 ["blocked", "--flame", os.path.join(tmp, "new.svg"), "-p",
                  str(free_pid())],
                 ["report", "--flame", os.path.join(tmp, "new.svg"),
                  os.path.join(tmp, "missing.json")]):
        rc, out, err = run(args, binary=UVSCOPE_ASAN)
        one_line_error(rc, err, " ".join(args))
        eq(set(os.listdir(tmp)), names, "files after " + " ".join(args))
    # a file that exists is replaced only once the new one is whole; a
    # device is written as it is
    rc, out, err = run(["report", "--folded", "/dev/null", rec])
    eq(rc, 0, "report --folded /dev/null: " + err)
    check(os.path.exists("/dev/null") and not os.path.isfile("/dev/null"),
          "/dev/null replaced")
    subprocess.run(["rm", "-rf", tmp])


def tracer_of(pid):
    """A process that holds pid PTRACE_SEIZE'd (no stop) until killed."""
    code = ("import ctypes,sys,time\n"
            "libc=ctypes.CDLL(None,use_errno=True)\n"
            "libc.ptrace.argtypes=[ctypes.c_long,ctypes.c_long,"
            "ctypes.c_void_p,ctypes.c_void_p]\n"
            "if libc.ptrace(0x4206,%d,None,None):\n"
            "    sys.exit('seize: %%d' %% ctypes.get_errno())\n"
            "print('seized',flush=True)\n"
            "time.sleep(60)\n" % pid)
    p = subprocess.Popen(["python3", "-c", code], stdout=subprocess.PIPE)
    line = p.stdout.readline()
    if line != b"seized\n":
        p.kill()
        p.wait()
        raise Fail("could not seize %d" % pid)
    return p


@test(timeout=30)
def cli_already_traced_names_the_tracer():
    with Target([FIX + "/loopfix", "idle", "100"]) as t:
        tr = tracer_of(t.pid)
        try:
            for cmd in (["loop"], ["blocked"], ["exit"], ["record", "-o",
                                                          "/dev/null"]):
                rc, out, err = run(cmd + ["--backend", "ptrace", "-d", "1",
                                          "-p", str(t.pid)],
                                   binary=UVSCOPE_ASAN)
                line = one_line_error(rc, err, "%s of a traced pid" % cmd)
                check("already traced by pid %d (python3)" % tr.pid in line,
                      "%s: should name the tracer %d: %s"
                      % (cmd, tr.pid, line))
        finally:
            tr.kill()
            tr.wait()


# ---- a target that execs: the trace ends there ----

EXECFIX = FIX + "/execfix"
# a 100 ms timer spinning 30 ms (10 blocked episodes and pool tasks a
# second, 20 iterations: the timer's and the task's completion) that
# execs itself 2.5 s after it starts, into a 1 ms one (about 32 a second):
# had the trace gone on, the second program's would mix in
EXEC_ARGS = ["2500", "100", "30", "1"]


def exec_traced(args, launch=False):
    """Runs uvscope ARGS --json -d 10 on execfix; returns (status, the
    document, stderr lines, seconds, pid)."""
    t0 = time.monotonic()
    if launch:
        rc, out, err = run(args + ["--json", "-d", "10", "--", EXECFIX] +
                           EXEC_ARGS, timeout=30)
        pid = None
    else:
        with Target([EXECFIX] + EXEC_ARGS) as t:
            t0 = time.monotonic()
            rc, out, err = run(args + ["--json", "-d", "10", "-p",
                                       str(t.pid)], timeout=30)
            pid = t.pid
            check(t.p.poll() is None, "%s: the target died" % args)
    secs = time.monotonic() - t0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    # a launched execfix says "ready" on the same stdout
    out = "".join(ln for ln in out.splitlines(True) if not
                  ln.startswith("ready "))
    try:
        doc = json.loads(out) if out.strip() else None
    except ValueError:
        raise Fail("%s: bad JSON: %r" % (args, out[:300]))
    return rc, doc, lines, secs, pid


def check_exec_ended(args, launch=False, count=None, rate=10):
    """rate: events a second count() finds in the first program (the
    second has 3 times as many)."""
    rc, doc, lines, secs, pid = exec_traced(args, launch)
    what = " ".join(args) + (" -- execfix" if launch else " -p")
    eq(rc, 0, "%s: exit status (%s)" % (what, lines))
    eq(len(lines), 1, "%s: stderr lines" % what)
    m = re.match(r"uvscope: pid (\d+) exec'd (\S+); trace ended$", lines[0])
    check(m, "%s: the line should say the pid exec'd: %r" % (what, lines[0]))
    if pid:
        eq(int(m.group(1)), pid, what + ": pid in the line")
    eq(m.group(2), os.path.realpath(EXECFIX), what + ": program in the line")
    check(secs < 5, "%s: ran %.1f s: the exec at 2.5 s did not end it"
          % (what, secs))
    check(doc is not None, "%s: no report of what was traced" % what)
    within(doc["duration_s"], 0.5, 3, "%s: duration_s (attached in %.0f ms)"
           % (what, doc["target"]["attach_ms"]))
    eq(doc["target_exited"], False, what + ": target_exited")
    if count:
        within(count(doc), 1, rate * doc["duration_s"] + 4,
               "%s: events in %.2f s (the exec'd program's mixed in?)"
               % (what, doc["duration_s"]))
    return doc


@test(timeout=60)
def cli_exec_ends_loop():
    it = lambda d: d["loop"]["iterations"]  # noqa: E731
    check_exec_ended(["loop"], count=it, rate=20)
    check_exec_ended(["loop"], launch=True, count=it, rate=20)
    check_exec_ended(["loop", "--backend", "ptrace"])
    check_exec_ended(["loop", "--backend", "ptrace"], launch=True)


@test(timeout=60)
def cli_exec_ends_record():
    tmp = "/tmp/uvscope-exec-%d.json" % os.getpid()
    try:
        with Target([EXECFIX] + EXEC_ARGS) as t:
            t0 = time.monotonic()
            rc, out, err = run(["record", "-o", tmp, "-d", "10", "-p",
                                str(t.pid)], timeout=30)
            secs = time.monotonic() - t0
        eq(rc, 0, "record: exit status (%s)" % err)
        check(secs < 5, "record ran %.1f s past the exec" % secs)
        check("exec'd" in err, "stderr: %r" % err)
        with open(tmp) as f:
            doc = json.load(f)
        within(doc["loop"]["iterations"], 1, 20 * doc["duration_s"] + 4,
               "recorded iterations in %.2f s" % doc["duration_s"])
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@test(timeout=60)
def cli_exec_ends_blocked():
    n = lambda d: d["blocked"]["count"]  # noqa: E731
    check_exec_ended(["blocked"], count=n)
    check_exec_ended(["blocked", "--backend", "ptrace"])


@test(timeout=60)
def cli_exec_ends_pool():
    def tasks(d):
        return sum(k["count"] for k in d["pool"]["tasks"])
    check_exec_ended(["pool"], count=tasks)
    check_exec_ended(["pool"], launch=True, count=tasks)
    check_exec_ended(["pool", "--backend", "ptrace"])
