# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""uvscope exit: each way of ending classified exactly."""
import json
import os
import signal
import subprocess
import time

from harness import (FIX, JSFIX, UVSCOPE, UVSCOPE_ASAN, Fail, Target, check,
                     eq, read_mem, run, runtime_addr, test, validate,
                     wait_for, within)

NODE = "/usr/bin/node"


def exit_json(argv, binary=None, rc_expected=None):
    rc, out, err = run(["exit", "--json", "--"] + argv, timeout=60,
                       binary=binary)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    check(lines, "no JSON from uvscope exit (exit %d): %s %s"
          % (rc, out[-500:], err[-500:]))
    doc = json.loads(lines[-1])
    validate(doc, "exit JSON")
    if rc_expected is not None:
        eq(rc, rc_expected, "uvscope's exit status (the program's)")
    return doc["exit"], doc


def frames(e):
    return "\n".join(e["stack"])


@test(timeout=30)
def exit_node_drained():
    e, doc = exit_json([NODE, "-e", "setTimeout(() => {}, 200)"],
                       rc_expected=0)
    eq(e["reason"], "drained", "reason")
    eq(e["code"], 0, "code")
    check(e["drained_at_ms"] is not None, "when the loop drained")
    within(e["at_ms"] - e["drained_at_ms"], 0, 100,
           "exit follows the drain (ms)")


@test(timeout=30)
def exit_node_drained_names_last_keeper():
    """A server closed after 1.2 s: the loop drains, and the report names
    what kept it alive last (from memory snapshots while it ran)."""
    e, doc = exit_json([NODE, "-e", "const s = require('net').createServer()"
                        ".listen(0, '127.0.0.1'); setTimeout(() => s.close(),"
                        " 1200)"], rc_expected=0)
    eq(e["reason"], "drained", "reason")
    check(e["last_keeper"] is not None, "no last keeper")
    check("tcp listening on 127.0.0.1:" in e["last_keeper"]["what"],
          "last keeper: %r" % e["last_keeper"])
    within(e["last_keeper"]["seen_at_ms"], 400, e["drained_at_ms"],
           "last seen (ms)")


@test(timeout=30)
def exit_node_process_exit_in_timer():
    e, doc = exit_json([NODE, "-e", "setTimeout(() => process.exit(7), 200)"],
                       rc_expected=7)
    eq(e["reason"], "exit", "reason")
    eq(e["code"], 7, "code")
    st = frames(e)
    for want in ("node::Environment::Exit", "uv__run_timers", "uv_run"):
        check(want in st, "stack lacks %s:\n%s" % (want, st))


@test(timeout=30)
def exit_node_uncaught_exception():
    e, doc = exit_json([NODE, "-e",
                        "setImmediate(() => { throw new Error('boom') })"],
                       rc_expected=1)
    eq(e["reason"], "uncaught-exception", "reason")
    eq(e["code"], 1, "code")
    check("boom" in e["message"], "message: %r" % e["message"])
    check("processImmediate" in e["js_stack"],
          "JS stack as printed: %r" % e["js_stack"])


@test(timeout=30)
def exit_node_heap_oom():
    e, doc = exit_json([NODE, "--max-old-space-size=16", "-e",
                        "const a = []; for (;;) a.push(new Array(1e5).fill(1))"])
    eq(e["reason"], "oom", "reason")
    eq(e["detail"], "heap", "detail")
    eq(e["signal_name"], "SIGABRT", "signal name")
    eq(e["signal"], signal.SIGABRT, "signal")
    check("heap" in e["message"], "message: %r" % e["message"])


def memory_cgroup(limit):
    """A memory cgroup of our own (v1 or v2) and a function that puts the
    calling process in it."""
    for base, knob in (("/sys/fs/cgroup/memory", "memory.limit_in_bytes"),
                       ("/sys/fs/cgroup", "memory.max")):
        if os.path.exists(os.path.join(base, knob if base.endswith("memory")
                                       else "cgroup.controllers")):
            cg = os.path.join(base, "uvscope-test-oom")
            os.makedirs(cg, exist_ok=True)
            with open(os.path.join(cg, knob), "w") as f:
                f.write(str(limit))

            def join():
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            return cg, join
    raise Fail("no memory cgroup controller on this machine")


def kernel_oom(extra=()):
    """Memory outside V8's heap (Buffers) grows past a cgroup's limit: the
    kernel's OOM killer ends it; uvscope exit -p (with extra options) must
    say so. Returns its report's exit section."""
    cg, join = memory_cgroup(128 << 20)
    try:
        p = subprocess.Popen([NODE, "-e", "console.log('ready');"
                              "setTimeout(() => { const a = []; for (;;) "
                              "a.push(Buffer.alloc(1 << 20, 1)) }, 1500)"],
                             stdout=subprocess.PIPE, preexec_fn=join)
        p.stdout.readline()
        rc, out, err = run(["exit", "--json"] + list(extra) +
                           ["-p", str(p.pid)], timeout=30)
        p.wait()
        eq(rc, 0, "exit status (%s)" % err)
        e = json.loads(out)["exit"]
        eq((e["reason"], e["detail"], e["signal"]),
           ("oom", "kernel", signal.SIGKILL), "kernel OOM")
        return e
    finally:
        try:
            os.rmdir(cg)
        except OSError:
            pass


@test(timeout=40)
def exit_kernel_oom_killer():
    """The OOM kill, told by oom:mark_victim."""
    kernel_oom()


def exit_after_sigterm(argv, backend="ebpf"):
    """uvscope exit -p on a fixture, a second, then kill -TERM from a
    process of its own: (the validated exit section, the kill's pid)."""
    with Target(argv) as t:
        p = subprocess.Popen([UVSCOPE, "exit", "--json", "--backend",
                              backend, "-p", str(t.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.0)
        killer = subprocess.Popen(["kill", "-TERM", str(t.pid)])
        killer.wait()
        out, err = p.communicate(timeout=15)
    eq(p.returncode, 0, "%s: exit status (%s)" % (backend, err.decode()))
    doc = json.loads(out)
    validate(doc, "exit JSON")
    return doc["exit"], killer.pid


@test(timeout=30)
def exit_sigterm_sender_named():
    e, killer = exit_after_sigterm([NODE, "-e", "setInterval(() => {}, "
                                    "1000); console.log('ready')"])
    eq(e["reason"], "signal", "reason")
    eq(e["signal"], signal.SIGTERM, "signal")
    check(e["sender"] is not None, "no sender")
    eq(e["sender"]["pid"], killer, "sender pid")
    eq(e["sender"]["comm"], "kill", "sender comm")


@test(timeout=40)
def exit_sigterm_single_threaded_luv_both_backends():
    """A single-threaded process (luajit with luv) killed by SIGTERM: the
    kernel's fast path for a fatal signal delivers SIGKILL to its threads
    instead, and the eBPF backend said "SIGKILL, no sender". The status
    the kernel keeps for the parent says SIGTERM, and the sender is
    named, on both backends."""
    if not os.path.exists("/usr/bin/luajit"):
        raise Fail("luajit missing: run scripts/deps.sh")
    for be in ("ebpf", "ptrace"):
        e, killer = exit_after_sigterm(["/usr/bin/luajit",
                                        JSFIX + "/loop.lua", "timer", "1",
                                        "100"], be)
        eq((e["reason"], e["signal"]), ("signal", signal.SIGTERM),
           be + ": reason")
        check(e["sender"] is not None, be + ": no sender")
        eq(e["sender"]["pid"], killer, be + ": sender pid")


@test(timeout=40)
def exit_handled_sigterm_then_code_both_backends():
    """A SIGTERM handler that exits 3: both the code and the signal it
    handled, with its sender ("SIGTERM from pid N (kill), handled; then
    exit code 3"); it was "exit, code 3" with the signal never said."""
    js = ("process.on('SIGTERM', () => process.exit(3)); "
          "setInterval(() => {}, 1000); console.log('ready')")
    for be in ("ebpf", "ptrace"):
        e, killer = exit_after_sigterm([NODE, "-e", js], be)
        eq((e["reason"], e["code"], e["signal"]), ("exit", 3, None),
           be + ": reason, code, signal")
        eq(e["handled_signal"], signal.SIGTERM, be + ": handled signal")
        check(e["sender"] is not None, be + ": no sender")
        eq(e["sender"]["pid"], killer, be + ": sender pid")


@test(timeout=30)
def exit_c_abort():
    e, doc = exit_json([FIX + "/loopfix", "abort", "200"], rc_expected=134)
    eq(e["reason"], "abort", "reason")
    eq(e["signal"], signal.SIGABRT, "signal")
    check(e["stack"], "no native stack")
    check("libc" in e["stack"][0], "innermost frame: %r" % e["stack"][0])


@test(timeout=30)
def exit_c_exit_code_and_drain():
    e, doc = exit_json([FIX + "/loopfix", "exit", "7", "200"],
                       binary=UVSCOPE_ASAN, rc_expected=7)
    eq(e["reason"], "exit", "reason (C exit from a timer)")
    eq(e["code"], 7, "code")
    e, doc = exit_json([FIX + "/loopfix", "drain", "200"], rc_expected=0)
    eq(e["reason"], "drained", "reason (C loop ran out of work)")
    within(e["drained_at_ms"], 150, 600, "drained at (ms)")


@test(timeout=30)
def exit_pid_mode_exit_code():
    """Not launched by uvscope: the code comes from the exit call."""
    with Target([NODE, "-e", "console.log('ready'); "
                 "setTimeout(() => process.exit(5), 1500)"]) as t:
        rc, out, err = run(["exit", "--json", "-p", str(t.pid)], timeout=20)
    eq(rc, 0, "exit status (%s)" % err)
    e = json.loads(out)["exit"]
    eq(e["reason"], "exit", "reason")
    eq(e["code"], 5, "code")
    eq(e["handled_signal"], None, "no signal was handled")


@test(timeout=30)
def exit_worker_thread_is_not_the_process():
    js = ("const { Worker } = require('worker_threads');"
          "new Worker('process.exit(3)', { eval: true })"
          ".on('exit', () => setTimeout(() => {}, 300));")
    e, doc = exit_json([NODE, "-e", js], rc_expected=0)
    eq(e["reason"], "drained", "the process itself drained")
    eq(e["code"], 0, "process exit code")


@test(timeout=30)
def exit_ctrl_c_leaves_target_unaffected():
    fix = FIX + "/loopfix"
    with Target([fix, "idle", "100"]) as t:
        addr = runtime_addr(t.pid, fix, "uv_run")
        before = read_mem(t.pid, addr, 1)
        p = subprocess.Popen([UVSCOPE, "exit", "--json", "-p", str(t.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: read_mem(t.pid, addr, 1) == b"\xcc", 5,
                 "the uv_run uprobe")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        eq(p.returncode, 0, "exit status (%s)" % err.decode())
        eq(json.loads(out)["exit"]["reason"], "running", "reason")
        eq(read_mem(t.pid, addr, 1), before, "uv_run's first byte after")
        check(t.p.poll() is None, "target died")
        rc, out, err = run(["loop", "--json", "-d", "1", "-p", str(t.pid)])
        within(json.loads(out)["loop"]["iterations"], 8, 11,
               "target's loop still runs")
