# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The ptrace backend (--backend ptrace): loop shares by stack sampling
against fixtures of known shape, exit classified as the eBPF backend does,
and the safety rules: the target is never left stopped or traced, its
signals arrive unchanged, a SIGKILLed uvscope leaves it running."""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from test_pool import assert_sampled_truth
from harness import LoopTruth
from harness import (FIX, JSFIX, UVSCOPE, UVSCOPE_ASAN, Fail, Skip, Target,
                     assert_episodes, assert_episodes_truth, busy_truth,
                     check, eq, kill, node_binaries, run,
                     test, validate, wait_for, within)

NODE = "/usr/bin/node"
TRUTH_TOL = 0.05  # issue 7: 30% +- 5 points


def ploop(args, binary=None, timeout=60):
    rc, out, err = run(["loop", "--json", "--backend", "ptrace"] + args,
                       timeout, binary)
    if rc != 0:
        raise Fail("uvscope loop --backend ptrace %s: exit %d: %s"
                   % (args, rc, err.strip()))
    doc = json.loads(out)
    validate(doc, "ptrace loop JSON")
    eq(doc["target"]["backend"], "ptrace", "backend in the header")
    return doc


def sampled(doc):
    s = doc["loop"].get("sampled")
    check(s is not None, "no loop.sampled in %s" % doc["loop"].keys())
    return s


def assert_share(s, phase, truth, what, tol=TRUTH_TOL):
    p = s["phases"][phase]
    within(p["share"], truth - tol, truth + tol, "%s: %s share" % (what, phase))
    check(p["share_lo"] <= p["share"] <= p["share_hi"],
          "%s: interval %r does not hold its share" % (what, p))
    # a 95% interval of a few hundred samples is a few points wide, no more
    within(p["share_hi"] - p["share_lo"], 0.005, 0.15,
           "%s: %s interval width" % (what, phase))


def assert_samples(s, secs, what):
    within(s["samples"], 0.85 * 99 * secs, 1.05 * 99 * secs,
           "%s: samples in %s s at 99 Hz" % (what, secs))


def tracer_pids(pid):
    """TracerPid of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for ln in f:
                    if ln.startswith("TracerPid:"):
                        out[int(tid)] = int(ln.split()[1])
        except FileNotFoundError:
            pass
    return out


def thread_state(pid, tid=None):
    with open("/proc/%d/task/%d/stat" % (pid, tid or pid)) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def assert_untraced(pid, what):
    tp = tracer_pids(pid)
    bad = {t: p for t, p in tp.items() if p}
    check(not bad, "%s: threads still traced (tid: tracer): %r" % (what, bad))
    for tid in tp:
        try:
            st = thread_state(pid, tid)
        except FileNotFoundError:
            continue
        check(st not in ("t", "T"), "%s: thread %d left stopped (%s)"
              % (what, tid, st))


def ask(port, line, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\n")
        s.settimeout(timeout)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(64)
            if not chunk:
                break
            data += chunk
    return data.decode().strip()


# ---- loop: shares against fixtures of known shape ----

@test(timeout=40)
def ptrace_loop_c_timer_busy_30ms():
    """Timer callback busy 30 ms every 100 ms: timers 30% +- 5 points."""
    with Target([FIX + "/loopfix", "tick", "30", "100"]) as t:
        doc = ploop(["-p", str(t.pid), "-d", "5"])
    s = sampled(doc)
    assert_samples(s, 5, "C timer")
    assert_share(s, "timers", 0.30, "C timer")
    assert_share(s, "poll_wait", 0.70, "C timer")
    within(doc["loop"]["utilization"], 0.25, 0.35, "utilization")
    eq(s["phases"]["outside_loop"]["samples"], 0, "samples outside uv_run")
    eq(s["phases"]["no_stack"]["samples"], 0, "samples not unwound")
    eq(s["inlined"], ["close"], "helpers inlined in Debian's libuv_a")


@test(timeout=40)
def ptrace_loop_c_timer_period_not_disturbed():
    """loopfix timer 30 100 runs its callback every 130 ms (libuv takes
    the poll timeout from the time before the callback): 23% busy on an
    idle machine. A sampler that cut the epoll wait short (EINTR) made it
    100 ms and read 30%: the period and the share must be the undisturbed
    ones, as the fixture timed its own callbacks."""
    with Target([FIX + "/loopfix", "timer", "30", "100"],
                env=dict(os.environ, LOOPFIX_LOG="1"), log=True) as t:
        doc = ploop(["-p", str(t.pid), "-d", "5"])
        t1 = time.monotonic() * 1000
        spins = [tuple(float(x) for x in ln.split()[1:3])
                 for ln in t.finish() if ln.startswith("busy ")]
    # uvscope's 5 s end where the test's window does (attach first)
    a = t1 - 5000
    inside = [(s, e) for s, e in spins if e > a and s < t1]
    check(len(inside) >= 20, "the fixture spun %d times in 5 s: %r"
          % (len(inside), spins[-5:]))
    periods = sorted(y[0] - x[0] for x, y in zip(inside, inside[1:]))
    # never shorter than busy + period; a loaded machine may only delay
    check(periods[len(periods) // 2] >= 129,
          "median callback period %.1f ms: the waits were cut short"
          % periods[len(periods) // 2])
    truth = sum(min(e, t1) - max(s, a) for s, e in inside) / 5000
    assert_share(sampled(doc), "timers", truth,
                 "C timer 30/130 (the fixture's busy share %.3f)" % truth)


@test(timeout=40)
def ptrace_loop_c_without_frame_pointers():
    """Built with -fomit-frame-pointer: only CFI reaches uv_run from
    spin_for_ms (through the vDSO's clock_gettime), and the unwinder
    names the frames."""
    fix = FIX + "/loopfix-nofp"
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", fix],
                         capture_output=True).stdout.decode()
    body = dis.split("<spin_for_ms>:")[1].split("\n\n")[0]
    check("mov    %rsp,%rbp" not in body,
          "fixture spin_for_ms keeps a frame pointer:\n" + body[:400])
    with Target([fix, "tick", "30", "100"]) as t:
        doc = ploop(["-p", str(t.pid), "-d", "5"])
        rc, out, err = run(["loop", "--backend", "ptrace", "-v", "-v", "-v",
                            "-p", str(t.pid), "-d", "1"])
    assert_share(sampled(doc), "timers", 0.30, "no-FP timer")
    eq(rc, 0, "exit status of -vvv run (%s)" % err[-300:])
    stacks = err.split("sample: ")
    named = [st for st in stacks if st.startswith("timers")]
    check(named, "no timers sample in -vvv output:\n" + err[-1500:])
    for want in ("spin_for_ms", "uv__run_timers", "uv_run", "main"):
        check(all(want in st for st in named),
              "a timers stack lacks %s:\n%s" % (want, named[0]))


@test(timeout=40)
def ptrace_loop_c_check_phase():
    """A check handle spinning 10 ms per iteration, woken every 100 ms:
    9% (eBPF measures 10 ms in 27 iterations in 3 s). Each iteration the
    sampler caused (an epoll_wait ended by EINTR) would add 10 ms of
    check: interrupting the wait tripled it before waits were sampled
    without a stop."""
    with Target([FIX + "/loopfix", "check", "10", "100"]) as t:
        doc = ploop(["-p", str(t.pid), "-d", "5"], binary=UVSCOPE_ASAN)
    s = sampled(doc)
    assert_share(s, "check", 0.09, "C check", tol=0.04)
    check(s["without_stop"] > 0.8 * s["phases"]["poll_wait"]["samples"],
          "waits sampled without a stop: %d of %d"
          % (s["without_stop"], s["phases"]["poll_wait"]["samples"]))
    within(s["phases"]["timers"]["share"], 0, 0.02, "timers share")


@test(timeout=40)
def ptrace_loop_node_timer_busy_30ms():
    """Node 20 (official build): JIT frames unwind by frame pointer, the
    rest by CFI; pending and close are inlined there and said so."""
    with Target([NODE, JSFIX + "/loop.js", "timer", "30", "100"]) as t:
        doc = ploop(["-p", str(t.pid), "-d", "5"])
    s = sampled(doc)
    assert_share(s, "timers", 0.30, "Node timer")
    assert_share(s, "poll_wait", 0.70, "Node timer")
    eq(sorted(s["inlined"]), ["close", "pending"], "inlined in Node 20")
    within(s["phases"]["unknown"]["share"], 0, 0.02, "unknown share")


@test(timeout=60)
def ptrace_loop_counts_iterations_where_libuv_does():
    """libuv >= 1.45 counts its default loop's iterations (uv_metrics_t
    loop_count): read from memory at each report, without a stop, they are
    exact. An idle setInterval(100) iterates 10 times a second (the eBPF
    tests assert 9-11 on the same fixture) in Node 20 (libuv 1.46) and
    24 (1.51); Debian's libuv 1.44.2 has no counter and says so."""
    for label, node in node_binaries():
        if label not in ("20-system", "24.11.1"):
            continue
        with Target([node, JSFIX + "/loop.js", "idle", "100"]) as t:
            doc = ploop(["-p", str(t.pid), "-d", "3"])
        s = sampled(doc)
        check(s["iterations_counted"], "node %s: not counted" % label)
        within(doc["loop"]["iterations_per_s"], 9, 11,
               "node %s: iterations/s" % label)
    with Target([FIX + "/loopfix", "idle", "100"]) as t:
        doc = ploop(["-p", str(t.pid), "-d", "1"])
    eq(sampled(doc)["iterations_counted"], False, "libuv 1.44.2 counted")
    eq(doc["loop"]["iterations"], 0, "iterations without a counter")


@test(timeout=40)
def ptrace_loop_launched_and_auto_says_why():
    """-- COMMAND under ptrace: traced from its exec, exit status passed
    on; -v says the backend and why."""
    rc, out, err = run(["loop", "--backend", "ptrace", "-v", "--json",
                        "-d", "3", "--", FIX + "/loopfix", "tick", "30",
                        "100"])
    eq(rc, 0, "exit status (%s)" % err[-300:])
    check("backend: ptrace (chosen by --backend)" in err,
          "-v does not say why ptrace: %s" % err[-500:])
    doc = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][0])
    assert_share(sampled(doc), "timers", 0.30, "launched C timer", tol=0.07)


# ---- exit: the same classes as the eBPF backend (tests/test_exit.py) ----

def pexit(argv, rc_expected=None, binary=None):
    rc, out, err = run(["exit", "--json", "--backend", "ptrace", "--"] + argv,
                       timeout=60, binary=binary)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    check(lines, "no JSON from uvscope exit (exit %d): %s %s"
          % (rc, out[-500:], err[-500:]))
    doc = json.loads(lines[-1])
    validate(doc, "ptrace exit JSON")
    eq(doc["target"]["backend"], "ptrace", "backend")
    if rc_expected is not None:
        eq(rc, rc_expected, "uvscope's exit status (the program's)")
    return doc["exit"]


@test(timeout=60)
def ptrace_exit_node_classes():
    e = pexit([NODE, "-e", "setTimeout(() => {}, 200)"], 0)
    eq((e["reason"], e["code"]), ("drained", 0), "drained node")
    e = pexit([NODE, "-e", "setTimeout(() => process.exit(7), 200)"], 7)
    eq((e["reason"], e["code"]), ("exit", 7), "process.exit(7)")
    st = "\n".join(e["stack"])
    for want in ("node::Environment::Exit", "uv__run_timers", "uv_run"):
        check(want in st, "process.exit stack lacks %s:\n%s" % (want, st))
    e = pexit([NODE, "-e", "setImmediate(() => { throw new Error('b') })"], 1)
    eq((e["reason"], e["code"]), ("uncaught-exception", 1), "uncaught")
    e = pexit([NODE, "--max-old-space-size=16", "-e",
               "const a = []; for (;;) a.push(new Array(1e5).fill(1))"])
    eq((e["reason"], e["detail"], e["signal"]), ("oom", "heap", 6),
       "heap OOM")
    check("heap" in e["message"], "message: %r" % e["message"])
    js = ("const { Worker } = require('worker_threads');"
          "new Worker('process.exit(3)', { eval: true })"
          ".on('exit', () => setTimeout(() => {}, 300));")
    e = pexit([NODE, "-e", js], 0)
    eq((e["reason"], e["code"]), ("drained", 0), "worker's exit(3)")


@test(timeout=60)
def ptrace_exit_reads_a_stderr_file():
    """Where the target's stderr is a regular file (a log), ptrace exit
    reads back what was written there since tracing began: the uncaught
    exception's message and JS frames, V8's FATAL ERROR line, as the eBPF
    backend reports them; lines written before the attach are not taken."""
    def with_log(argv, rc_expected, before=b""):
        fd, log = tempfile.mkstemp(suffix=".log")
        try:
            os.write(fd, before)
            os.lseek(fd, 0, os.SEEK_END)
            p = subprocess.run([UVSCOPE, "exit", "--json", "--backend",
                                "ptrace", "--"] + argv, stdout=subprocess.PIPE,
                               stderr=fd, timeout=60)
            eq(p.returncode, rc_expected, "uvscope's exit status")
            doc = json.loads([ln for ln in p.stdout.decode().splitlines()
                              if ln.startswith("{")][-1])
            validate(doc, "ptrace exit JSON")
            return doc["exit"]
        finally:
            os.close(fd)
            os.unlink(log)

    e = with_log([NODE, "-e", "setImmediate(() => { throw new Error('boom')"
                  " })"], 1, b"Error: an old line, not this run's\n")
    eq((e["reason"], e["code"]), ("uncaught-exception", 1), "uncaught")
    check("Error: boom" in e["message"], "message: %r" % e["message"])
    check("processImmediate" in e["js_stack"],
          "JS stack as printed: %r" % e["js_stack"])
    check("old line" not in e["stderr_tail"],
          "tail holds what came before: %r" % e["stderr_tail"])
    e = with_log([NODE, "--max-old-space-size=16", "-e",
                  "const a = []; for (;;) a.push(new Array(1e5).fill(1))"],
                 134)
    eq((e["reason"], e["detail"]), ("oom", "heap"), "heap OOM")
    check(e["message"].startswith("FATAL ERROR:") and "heap" in e["message"],
          "message: %r" % e["message"])


@test(timeout=60)
def ptrace_exit_c_classes():
    e = pexit([FIX + "/loopfix", "abort", "200"], 134)
    eq((e["reason"], e["signal"]), ("abort", signal.SIGABRT), "abort")
    check(e["stack"] and "libc" in e["stack"][0], "stack: %r" % e["stack"])
    check(any("abort_from_timer" in f for f in e["stack"]),
          "abort stack lacks abort_from_timer: %r" % e["stack"])
    e = pexit([FIX + "/loopfix", "exit", "7", "200"], 7, binary=UVSCOPE_ASAN)
    eq((e["reason"], e["code"]), ("exit", 7), "C exit(7) from a timer")
    e = pexit([FIX + "/loopfix", "drain", "200"], 0)
    eq((e["reason"], e["code"]), ("drained", 0), "C drain")
    within(e["at_ms"], 150, 1000, "ended at (ms)")


@test(timeout=40)
def ptrace_exit_signal_sender_and_pid_mode():
    """A signal's sender from siginfo; an exit code in -p mode from the
    main thread's wait status (the tracer waits for it)."""
    with Target([NODE, "-e", "setInterval(() => {}, 1000); "
                 "console.log('ready')"]) as t:
        p = subprocess.Popen([UVSCOPE, "exit", "--json", "--backend",
                              "ptrace", "-p", str(t.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.0)
        os.kill(t.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=15)
    eq(p.returncode, 0, "exit status (%s)" % err.decode())
    e = json.loads(out)["exit"]
    eq((e["reason"], e["signal"]), ("signal", signal.SIGTERM), "SIGTERM")
    check(e["sender"] is not None, "no sender")
    eq(e["sender"]["pid"], os.getpid(), "sender pid")
    with open("/proc/self/comm") as f:
        eq(e["sender"]["comm"], f.read().strip(), "sender comm")
    with Target([NODE, "-e", "console.log('ready'); "
                 "setTimeout(() => process.exit(5), 1500)"]) as t:
        rc, out, err = run(["exit", "--json", "--backend", "ptrace", "-p",
                            str(t.pid)], timeout=20)
    eq(rc, 0, "exit status (%s)" % err)
    e = json.loads(out)["exit"]
    eq((e["reason"], e["code"]), ("exit", 5), "pid mode process.exit(5)")


@test(timeout=40)
def ptrace_exit_kernel_oom_killer():
    """The OOM kill, told by the cgroup's oom_kill counter."""
    from test_exit import kernel_oom
    kernel_oom(["--backend", "ptrace"])


# ---- safety ----

class Traced:
    """uvscope loop --backend ptrace on pid, in the background."""

    def __init__(self, pid, extra=(), env=None, user=None):
        pre = None
        if user is not None:
            def pre():
                os.setgid(user)
                os.setuid(user)
        self.p = subprocess.Popen([UVSCOPE, "loop", "--json", "-v"] +
                                  list(extra) + ["-p", str(pid)],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env,
                                  preexec_fn=pre)
        self.pid = pid
        wait_for(lambda: self.p.poll() is not None or
                 any(v == self.p.pid for v in tracer_pids(pid).values()),
                 10, "uvscope to seize pid %d" % pid)
        if self.p.poll() is not None:
            raise Fail("uvscope ended: %s"
                       % self.p.stderr.read().decode()[-500:])

    def stop(self, sig=signal.SIGINT):
        self.p.send_signal(sig)
        out, err = self.p.communicate(timeout=15)
        return self.p.returncode, out.decode(), err.decode()


@test(timeout=60)
def ptrace_sigkill_mid_sample_leaves_20_threads_running():
    """20 threads traced for 10 s while the fixture answers; signals sent
    to it reach its handler; a thread created while traced is traced too.
    Then uvscope is SIGKILLed while the loop thread sits in a sample's
    stop (a test hook holds each stop 30 ms): the kernel detaches, and the
    target answers with TracerPid 0 on every thread."""
    env = dict(os.environ, UVSCOPE_TEST_PTRACE_HOLD_US="30000")
    with Target([FIX + "/threadfix", "20"]) as t:
        port = int(t.ready[2])
        eq(len(os.listdir("/proc/%d/task" % t.pid)), 20, "threads")
        tr = Traced(t.pid, ["--backend", "ptrace", "--rate", "10"], env=env)
        wait_for(lambda: len([v for v in tracer_pids(t.pid).values()
                              if v == tr.p.pid]) == 20, 5,
                 "all 20 threads seized")
        t0 = time.monotonic()
        for i in range(3):
            os.kill(t.pid, signal.SIGUSR2)
            time.sleep(0.2)
        eq(ask(port, "sigs"), "3", "SIGUSR2 handled while traced")
        tid = int(ask(port, "spawn"))
        wait_for(lambda: tracer_pids(t.pid).get(tid) == tr.p.pid, 3,
                 "thread %d created while traced to be traced" % tid)
        while time.monotonic() - t0 < 10:
            eq(ask(port, "ping"), "pong", "answer while traced")
            time.sleep(0.5)
        check(tr.p.poll() is None, "uvscope ended early")
        wait_for(lambda: thread_state(t.pid) == "t", 5,
                 "the loop thread in a sample's stop")
        tr.p.kill()
        tr.p.wait()
        wait_for(lambda: not any(tracer_pids(t.pid).values()), 5,
                 "the kernel to detach every thread")
        eq(ask(port, "ping"), "pong", "answer after uvscope's SIGKILL")
        assert_untraced(t.pid, "after SIGKILL")
        eq(len(os.listdir("/proc/%d/task" % t.pid)), 21, "threads after")
        os.kill(t.pid, signal.SIGUSR2)
        time.sleep(0.1)
        eq(ask(port, "sigs"), "4", "SIGUSR2 after")


@test(timeout=60)
def ptrace_detach_on_sigint_sigterm_sighup():
    with Target([FIX + "/threadfix", "4"]) as t:
        port = int(t.ready[2])
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            tr = Traced(t.pid, ["--backend", "ptrace", "--rate", "999"])
            time.sleep(0.5)
            rc, out, err = tr.stop(sig)
            eq(rc, 0, "exit status on %s (%s)" % (sig.name, err[-300:]))
            check(json.loads(out)["loop"]["sampled"]["samples"] > 100,
                  "report printed on %s" % sig.name)
            assert_untraced(t.pid, "after %s" % sig.name)
            eq(ask(port, "ping"), "pong", "answer after %s" % sig.name)


@test(timeout=40)
def ptrace_group_stop_kept_and_exec_detaches():
    """SIGSTOP stops the target as it would untraced (PTRACE_LISTEN), and
    SIGCONT resumes it; an exec ends tracing with every thread detached."""
    with Target([FIX + "/threadfix", "4"]) as t:
        port = int(t.ready[2])
        tr = Traced(t.pid, ["--backend", "ptrace"])
        os.kill(t.pid, signal.SIGSTOP)
        # a tracee listening in its group-stop shows as 't'
        wait_for(lambda: thread_state(t.pid) in ("t", "T"), 3, "group stop")
        time.sleep(0.5)
        try:
            ask(port, "ping", timeout=0.5)
            raise Fail("the target answered while SIGSTOPped")
        except socket.timeout:
            pass
        check(tr.p.poll() is None, "uvscope ended at the group stop")
        os.kill(t.pid, signal.SIGCONT)
        eq(ask(port, "ping"), "pong", "answer after SIGCONT")
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"exec\n")
        out, err = tr.p.communicate(timeout=10)
        s.close()
        eq(tr.p.returncode, 0, "uvscope's status after the exec (%s)"
           % err.decode()[-300:])
        wait_for(lambda: open("/proc/%d/comm" % t.pid).read().strip() ==
                 "sleep", 3, "the exec")
        assert_untraced(t.pid, "after exec")


def test_user():
    name = "uvscopetest"
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], check=True)
        return pwd.getpwnam(name).pw_uid


@test(timeout=40)
def ptrace_non_root_user_on_own_process():
    """A user without capabilities: auto falls back to ptrace (and -v says
    why), and traces the user's own process."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = int(f.read())
    except FileNotFoundError:
        scope = None  # no Yama: plain uid checks
    if scope is not None and scope >= 1:
        raise Skip("Yama ptrace_scope %d forbids tracing a "
                   "non-descendant" % scope)
    uid = test_user()
    for path in (UVSCOPE, FIX + "/threadfix"):
        check(os.access(path, os.X_OK), "%s not executable" % path)
    with Target([FIX + "/threadfix", "4"], user=uid) as t:
        tr = Traced(t.pid, [], user=uid)
        time.sleep(2)
        rc, out, err = tr.stop()
    eq(rc, 0, "exit status as uid %d (%s)" % (uid, err[-300:]))
    check("backend: ptrace (chosen by feature probes: eBPF unavailable"
          in err, "-v does not say why: %s" % err[-600:])
    # no CAP_SYS_NICE nor RLIMIT_RTPRIO: it samples at normal priority
    check("sampling at normal priority" in err, "-v does not say the "
          "sampler's priority: %s" % err[-600:])
    doc = json.loads(out)
    eq(doc["target"]["backend"], "ptrace", "backend")
    within(sampled(doc)["phases"]["poll_wait"]["share"], 0.9, 1.0,
           "idle fixture: waiting share")
    # record, as in a CI container without BPF: all three sections
    d = tempfile.mkdtemp()
    os.chown(d, uid, uid)
    path = os.path.join(d, "run.json")

    def pre():
        os.setgid(uid)
        os.setuid(uid)
    p = subprocess.run([UVSCOPE, "record", "-o", path, "-d", "2", "--",
                        FIX + "/loopfix", "timer", "40", "200"],
                       capture_output=True, preexec_fn=pre, timeout=30)
    try:
        eq(p.returncode, 0, "record as uid %d (%s)"
           % (uid, p.stderr.decode()[-300:]))
        with open(path) as f:
            rec = json.load(f)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    validate(rec, "non-root recording")
    eq(rec["target"]["backend"], "ptrace", "record's backend")
    check(rec["blocked"]["count"] >= 5 and rec["pool"]["sampled"],
          "record without BPF: blocked %d episodes, pool %r"
          % (rec["blocked"]["count"], rec["pool"]["sampled"]))


def sched_policy(pid):
    """A process's scheduling policy and real-time priority (proc(5))."""
    with open("/proc/%d/stat" % pid) as f:
        f = f.read().rsplit(")", 1)[1].split()
    return int(f[38]), int(f[37])  # policy (field 41), rt_priority (40)


@test(timeout=40)
def ptrace_sampler_realtime_not_passed_on():
    """The ptrace sampler runs at SCHED_FIFO 1 (its samples on time on a
    loaded machine); the program it launches, and one it attaches to,
    keep their own policy (SCHED_OTHER, 0); UVSCOPE_NO_REALTIME=1 keeps
    uvscope at its own."""
    FIFO = 1
    for env, want in ((None, (FIFO, 1)),
                      (dict(os.environ, UVSCOPE_NO_REALTIME="1"), (0, 0))):
        p = subprocess.Popen([UVSCOPE, "loop", "-v", "--backend", "ptrace",
                              "-d", "2", "--", FIX + "/loopfix", "timer",
                              "5", "50"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        try:
            # the policy changes once the launched program runs
            time.sleep(1)
            kids = [int(x) for x in open("/proc/%d/task/%d/children"
                                         % (p.pid, p.pid)).read().split()]
            check(kids, "no launched program")
            eq(sched_policy(p.pid), want, "uvscope's policy")
            for k in kids:
                eq(sched_policy(k), (0, 0), "the launched program's policy")
        finally:
            _, err = p.communicate(timeout=15)
        eq(p.returncode, 0, "uvscope: %s" % err.decode()[-300:])
        check(("sampling at SCHED_FIFO priority 1" in err.decode())
              == (env is None), "-v on the priority: %s"
              % err.decode()[-300:])
    with Target([FIX + "/loopfix", "timer", "5", "50"]) as t:
        tr = Traced(t.pid, ["--backend", "ptrace"])
        time.sleep(1)
        eq(sched_policy(tr.p.pid), (FIFO, 1), "uvscope's policy attached")
        eq(sched_policy(t.pid), (0, 0), "the target's policy")
        rc, _, err = tr.stop()
        eq(rc, 0, "uvscope -p: %s" % err[-300:])
        eq(sched_policy(t.pid), (0, 0), "the target's policy after")


@test(timeout=40)
def ptrace_record_and_report_again():
    """A ptrace recording renders again with its shares (report_read.c)."""
    path = "/tmp/uvscope-ptrace-record-%d.json" % os.getpid()
    try:
        with Target([FIX + "/loopfix", "tick", "30", "100"]) as t:
            rc, out, err = run(["record", "--backend", "ptrace", "-o", path,
                                "-d", "3", "-p", str(t.pid)])
        eq(rc, 0, "record (%s)" % err)
        with open(path) as f:
            rec = json.load(f)
        rc, out, err = run(["report", "--json", path])
        eq(rc, 0, "report --json (%s)" % err)
        again = json.loads(out)
        eq(again["loop"]["sampled"]["phases"], rec["loop"]["sampled"]["phases"],
           "shares read back")
        within(again["loop"]["utilization"],
               rec["loop"]["utilization"] - 1e-6,
               rec["loop"]["utilization"] + 1e-6, "utilization read back")
        rc, out, err = run(["report", path])
        eq(rc, 0, "report (%s)" % err)
        check("95% INTERVAL" in out and "timers" in out,
              "text report of a ptrace recording:\n" + out)
    finally:
        if os.path.exists(path):
            os.unlink(path)


def precord(cmd, env=None):
    """record --backend ptrace for 3 s of a launched fixture: the document,
    validated, and the same read back by report --json."""
    path = "/tmp/uvscope-ptrace-record-%d.json" % os.getpid()
    try:
        rc, out, err = run(["record", "--backend", "ptrace", "-o", path,
                            "-d", "3", "--"] + cmd, env=env)
        eq(rc, 0, "record (%s)" % err)
        with open(path) as f:
            rec = json.load(f)
        validate(rec, "ptrace recording")
        rc, rout, err = run(["report", "--json", path])
        eq(rc, 0, "report --json (%s)" % err)
        precord.printed = out.splitlines()
        return rec, json.loads(rout)
    finally:
        if os.path.exists(path):
            os.unlink(path)


@test(timeout=40)
def ptrace_record_carries_blocked_and_pool():
    """record --backend ptrace writes blocked (episodes from the loop's
    own samples: 40 ms spins, within the bounds the samples around them
    give) and pool (its state read from memory: 5 tasks of 1 ms every
    10 ms on one thread, as pool_sampled_without_ebpf asserts), each
    against what the fixture timed itself, and report reads both back."""
    rec, again = precord([FIX + "/loopfix", "timer", "40", "200"],
                         env=dict(os.environ, LOOPFIX_LOG="1"))
    eq(rec["target"]["backend"], "ptrace", "backend")
    assert_episodes_truth(rec, busy_truth(precord.printed), "timers", 8,
                          "record spin")
    check(any("spin_for_ms" in k for k in rec["blocked"]["stacks"]),
          "spin_for_ms not on the stacks: %s" % list(rec["blocked"]["stacks"]))
    eq(again["blocked"]["episodes"], rec["blocked"]["episodes"],
       "episodes read back")
    p = rec["pool"]
    check(p["sampled"] and p["idle"], "a pool never started: %r" % p)

    rec, again = precord([FIX + "/poolfix", "burst", "5", "1", "100", "10"],
                         env=dict(os.environ, UV_THREADPOOL_SIZE="1",
                                  POOLFIX_LOG="1"))
    p = rec["pool"]
    check(p["sampled"] and p["sampled"]["samples"] >= 200,
          "sampled: %r" % p["sampled"])
    eq(p["threads"], 1, "pool threads")
    check(not p["idle"], "a working pool reported idle")
    # over the trace's own window (a pool falling behind on a loaded
    # machine is busier later: the window must be the one sampled)
    lines = precord.printed
    a = rec["start_monotonic_s"] * 1000
    assert_sampled_truth(p, lines, a, a + rec["duration_s"] * 1000,
                         "recorded pool")
    # its loop never blocks: each iteration is short (libuv 1.44 spins in
    # sched_yield in uv__async_io, and 99 Hz samples can miss its waits,
    # but not the loop's clock moving between them)
    eq(rec["blocked"]["count"], 0, "episodes of a loop that never blocks")
    for k in ("sampled", "mean_busy_threads", "saturation", "max_queue_depth",
              "slow_io_limit"):
        eq(again["pool"][k], p[k], "pool.%s read back" % k)


@test(timeout=60)
def ptrace_and_ebpf_agree_with_a_fast_loop():
    """A timer every millisecond (some 750 iterations/s, a few percent
    busy), and a tier-B build of it: utilization from both backends
    against the busy share the fixture timed itself (its waits, from each
    prepare phase to the next callback): eBPF within a point of it, and
    the ptrace interval holding it. A sample that cut a wait short would
    add iterations (EINTR) and busy time; the fixture's iteration rate
    must be the same whether ptrace samples it or not."""
    for fix in ("/loopfix", "/loopfix-shared"):
        rates = {}
        # eBPF's reference is its syscall view: the phase probes' own
        # traps, within their budget (2000 hits/s, ~1% of a core: see
        # make bench), would land in this 1 ms loop's busy time
        for backend in (["--probe-budget", "1"], ["--backend", "ptrace"]):
            with Target([FIX + fix, "timer", "0", "1"],
                        env=dict(os.environ, LOOPFIX_LOG="1"),
                        log=True) as t:
                rc, out, err = run(["loop", "--json", "-d", "2", "-p",
                                    str(t.pid)] + backend)
                end = time.monotonic() * 1000
                lines = t.finish()
            eq(rc, 0, "uvscope loop %s (%s)" % (backend, err[-300:]))
            doc = json.loads(out)
            truth = LoopTruth(lines, end - doc["duration_s"] * 1000, end)
            ptrace = "ptrace" in backend
            what = "%s %s" % (fix[1:], "ptrace" if ptrace else "ebpf")
            u = doc["loop"]["utilization"]
            if ptrace:
                w = sampled(doc)["phases"]["poll_wait"]
                lo, hi = 1 - w["share_hi"], 1 - w["share_lo"]
                # waiting for a CPU, the thread is busy to a sampler
                # too: the interval meets [busy, busy + that]
                check(lo - 0.01 <= truth.busy_share + truth.delay_share and
                      truth.busy_share <= hi + 0.01,
                      "%s: utilization %.3f [%.3f, %.3f] does not hold the "
                      "fixture's busy share %.3f (%.3f more waiting for a "
                      "CPU)" % (what, u, lo, hi, truth.busy_share,
                                truth.delay_share))
            else:
                # a loaded machine keeps the thread from its CPU in its
                # busy part, or as it wakes: busy for the tracer, either
                # for the fixture's clock
                within(u, truth.busy_share - 0.01,
                       truth.busy_share + truth.delay_share + 0.01,
                       "%s: utilization (the fixture's busy share %.3f, "
                       "%.3f more waiting for a CPU)"
                       % (what, truth.busy_share, truth.delay_share))
                within(doc["loop"]["iterations_per_s"],
                       0.95 * truth.iterations_per_s,
                       1.05 * truth.iterations_per_s,
                       "%s: iterations/s (the fixture's %.1f)"
                       % (what, truth.iterations_per_s))
            rates[what] = truth.iterations_per_s
        a, b = rates.values()
        within(b, 0.9 * a, 1.1 * a, "%s: the fixture's iterations/s under "
               "ptrace (%.1f) against under eBPF (%.1f)" % (fix, b, a))


@test(timeout=40)
def ptrace_launched_program_ends_and_gives_its_status():
    """pool --backend ptrace reads memory and traces nothing, so no tracer
    reaps a launched program: uvscope must (it waited for ever). And
    Ctrl-C under ptrace goes on to the program, which ends by it: its
    status is the program's (the tracer reaped it while detaching and
    uvscope said 0), for every subcommand with a ptrace backend."""
    t0 = time.monotonic()
    rc, out, err = run(["pool", "--backend", "ptrace", "--",
                        FIX + "/loopfix", "exit", "3", "300"], timeout=20)
    eq(rc, 3, "pool's exit status: the program's (%s)" % err[-200:])
    check(time.monotonic() - t0 < 5, "pool took %.1f s to see the program "
          "end" % (time.monotonic() - t0))
    for cmd in (["loop"], ["blocked"], ["record", "-o", os.devnull]):
        p = subprocess.Popen([UVSCOPE] + cmd + ["--backend", "ptrace", "--",
                             FIX + "/loopfix", "timer", "30", "100"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(1.5)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=15)
        finally:
            if p.poll() is None:
                p.kill()
        eq(p.returncode, 128 + signal.SIGINT, "%s: exit status after Ctrl-C "
           "(the program's, ended by the SIGINT passed on) %s"
           % (cmd[0], err.decode()[-200:]))


@test(timeout=40)
def ptrace_tierb_luv_waits_not_cut_short():
    """luv on luajit: a stripped libuv, loaded with dlopen. With no phase
    to tell its waits apart, every sample stopped the loop thread, in its
    epoll wait too: each stop ended the wait with EINTR and libuv, whose
    clock is in milliseconds, waited up to one less (the program's 4 ms
    spin every 50 ms came every 51 ms where it comes every 54: its timer
    is re-armed from the time before the callback). The loop thread seen
    blocked in epoll names the fd, and waits are sampled without a stop:
    the period is never shorter than 54 ms (a loaded machine may only
    make it longer), and the utilization interval holds the busy share
    the program timed."""
    if not shutil.which("luajit"):
        raise Skip("luajit is not installed (make deps installs it)")
    with Target([shutil.which("luajit"), JSFIX + "/loop.lua", "timer", "4",
                 "50"], log=True) as t:
        doc = ploop(["-p", str(t.pid), "-d", "3"])
        end = time.monotonic() * 1000
        lines = t.finish()
    traced = LoopTruth(lines, end - doc["duration_s"] * 1000, end)
    starts = sorted(float(ln.split()[1]) for ln in lines
                    if ln.startswith("busy ") and
                    end - doc["duration_s"] * 1000 <= float(ln.split()[1]))
    periods = sorted(b - a for a, b in zip(starts, starts[1:]))
    check(len(periods) >= 20, "the program spun %d times in 3 s"
          % len(starts))
    check(periods[len(periods) // 2] >= 53.5, "median period %.1f ms under "
          "ptrace, shorter than 4 + 50: waits were cut short"
          % periods[len(periods) // 2])
    s = sampled(doc)
    check(s["without_stop"] >= 0.7 * s["phases"]["poll_wait"]["samples"],
          "waits sampled without a stop: %d of %d"
          % (s["without_stop"], s["phases"]["poll_wait"]["samples"]))
    w = s["phases"]["poll_wait"]
    lo, hi = 1 - w["share_hi"], 1 - w["share_lo"]
    check(lo - 0.01 <= traced.busy_share <= hi + 0.01,
          "utilization [%.3f, %.3f] does not hold the program's busy share "
          "%.3f" % (lo, hi, traced.busy_share))
