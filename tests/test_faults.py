# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Faults (issue 14): the target is exactly as it was.

- A launched program is exactly as a shell would have launched it: signal
  dispositions and mask, file descriptors, environment, limits.
- uvscope SIGKILLed at random moments (attach included), every tracing
  subcommand on both backends: the target runs on, no thread stopped or
  traced, no breakpoint left in its code, no BPF program or link left.
- Targets that exit or exec while uvscope attaches: one clear line or a
  report, never a hang or a crash.
- Two uvscopes on one target: each works, or refuses in one line.
- A target in its own pid and mount namespaces, traced from the host.

Trials are random with a seed printed on failure; UVSCOPE_FAULT_SEED
replays one, UVSCOPE_FAULT_TRIALS sets how many SIGKILLs each
subcommand and backend takes (20 by default, `make fuzz` more).
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from harness import (in_container, FIX, ROOT, UVSCOPE, UVSCOPE_ASAN, Fail, Skip, Target,
                     check, eq, one_line_error, run, test, wait_for, within)
from test_ptrace import assert_untraced, tracer_pids
from test_safety import children
from test_why import assert_c_keepers

TRIALS = int(os.environ.get("UVSCOPE_FAULT_TRIALS", "20"))
SEED = int(os.environ.get("UVSCOPE_FAULT_SEED") or
           int.from_bytes(os.urandom(4), "little"))
KILL_WITHIN_S = 1.5
LOOPFIX = FIX + "/loopfix"

# every subcommand that attaches, with the backends it has (why reads the
# target's memory and has none)
COMBOS = [(cmd, be) for cmd in ("loop", "pool", "blocked", "exit", "record")
          for be in ("ebpf", "ptrace")] + [("why", None)]


def replay():
    return ("seed %d (UVSCOPE_FAULT_SEED=%d python3 tests/run.py NAME "
            "replays the same moments)" % (SEED, SEED))


def uvscope_args(cmd, be, pid, outdir=None, extra=()):
    a = [cmd]
    if cmd == "record":
        a += ["-o", os.path.join(outdir, "run.json")]
    if be:
        a += ["--backend", be]
    return a + list(extra) + ["-p", str(pid)]


def run_parallel(jobs, workers):
    """Runs each job (a callable) on one of `workers` threads, every one
    of them whatever others found; then fails with what they found."""
    jobs = list(jobs)
    errors = []
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not jobs:
                    return
                job = jobs.pop(0)
            try:
                job()
            except Exception as e:  # a Fail, or a bug of the test
                with lock:
                    errors.append(e)
    ths = [threading.Thread(target=worker, daemon=True)
           for _ in range(workers)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    bugs = [e for e in errors if not isinstance(e, Fail)]
    if bugs:
        raise bugs[0]
    if errors:
        raise Fail("%d failure(s):\n%s" % (len(errors), "\n".join(
            str(e) for e in errors[:6])))


# ---- what the target is: code, BPF objects, probes ----

_FILES = {}


def _file_bytes(path, off, n):
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, off, n)
    if key not in _FILES:
        with open(path, "rb") as f:
            f.seek(off)
            _FILES[key] = f.read(n)
    return _FILES[key]


def code_diffs(pid):
    """Where the code pid runs differs from its files (a uprobe is a
    breakpoint written over an instruction): one line per mapping, empty
    when every executable file mapping is byte for byte its file."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for ln in maps:
            p = ln.split(None, 5)
            if len(p) < 6 or "x" not in p[1] or not p[5].startswith("/"):
                continue
            lo, hi = (int(x, 16) for x in p[0].split("-"))
            # the very file mapped, in whatever mount namespace (its
            # path there may name nothing, or another file, here)
            path = "/proc/%d/map_files/%s" % (pid, p[0])
            try:
                want = _file_bytes(path, int(p[2], 16), hi - lo)
            except OSError:
                continue
            mem.seek(lo)
            have = mem.read(len(want))
            if have != want:
                i = next(i for i in range(len(want)) if have[i] != want[i])
                out.append("%s+%#x: %s in memory, %s in the file"
                           % (p[5], int(p[2], 16) + i, have[i:i + 1].hex(),
                              want[i:i + 1].hex()))
    return out


def assert_code_intact(pid, what):
    d = code_diffs(pid)
    check(not d, "%s: the target's code differs from its files (a "
          "breakpoint left?): %s" % (what, d[:4]))


def our_prog_names():
    """The names of uvscope's BPF programs as the kernel keeps them (15
    characters), from the objects it is built from."""
    names = set()
    out = os.path.join(ROOT, ".output")
    for f in os.listdir(out):
        if f.endswith(".bpf.o"):
            r = subprocess.run(["nm", os.path.join(out, f)],
                               capture_output=True, text=True)
            for ln in r.stdout.splitlines():
                p = ln.split()
                if len(p) == 3 and p[1] == "T":
                    names.add(p[2][:15])
    check(names, "no BPF program names in %s/*.bpf.o" % out)
    return names


def bpf_held():
    """Ids of the BPF programs and links some process holds a descriptor
    of (what bpftool's pids column says, where it has it)."""
    progs, links = set(), set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                kind = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                if kind not in ("anon_inode:bpf-prog",
                                "anon_inode:bpf_link"):
                    continue
                with open("/proc/%s/fdinfo/%s" % (pid, fd)) as f:
                    info = f.read()
            except OSError:
                continue
            for ln in info.splitlines():
                k, _, v = ln.partition(":")
                if k == "prog_id":
                    progs.add(int(v))
                elif k == "link_id":
                    links.add(int(v))
    return progs, links


def bpftool(what):
    r = subprocess.run(["bpftool", what, "show", "-j"], capture_output=True,
                       text=True, timeout=20)
    check(r.returncode == 0, "bpftool %s show: %s" % (what, r.stderr))
    return json.loads(r.stdout or "[]")


def bpf_orphans(names, since):
    """uvscope's programs (by name) loaded since `since` (epoch s), and
    links to them, that no process holds: what a killed uvscope would
    have left in the kernel."""
    progs = {p["id"]: p for p in bpftool("prog")
             if p.get("name") in names and p.get("loaded_at", 0) >= since}
    links = [ln for ln in bpftool("link") if ln.get("prog_id") in progs]
    held_p, held_l = bpf_held()
    out = {}
    for ln in links:
        if ln["id"] not in held_l:
            out["link %d" % ln["id"]] = "link %d (%s) to program %d %s" % (
                ln["id"], ln.get("type"), ln["prog_id"],
                progs[ln["prog_id"]]["name"])
        else:
            held_p.add(ln["prog_id"])
    for i, p in progs.items():
        if i not in held_p:
            out["prog %d" % i] = "program %d %s (%s, loaded at %s)" % (
                i, p["name"], p.get("type"), p.get("loaded_at"))
    return out


def assert_no_bpf_left(names, since, what):
    """Orphans vanish as the kernel frees them (one dying uvscope, ours or
    another test's, leaves some for a moment); one that stays is a leak."""
    first = bpf_orphans(names, since)
    if not first:
        return
    end = time.monotonic() + 5
    left = first
    while left and time.monotonic() < end:
        time.sleep(0.25)
        now = bpf_orphans(names, since)
        left = {k: v for k, v in first.items() if k in now}
    check(not left, "%s: BPF objects of uvscope's that no process holds, "
          "for 5 s: %s" % (what, sorted(left.values())[:6]))


def tracefs_events():
    """uprobe and kprobe events defined in tracefs (libbpf's legacy
    attach names them libbpf_PID_...)."""
    out = []
    for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        for f in ("uprobe_events", "kprobe_events"):
            try:
                with open(os.path.join(d, f)) as fh:
                    out += fh.read().splitlines()
            except OSError:
                pass
    return out


def assert_no_tracefs_probe(pid, what):
    mine = [e for e in tracefs_events() if "libbpf_%d_" % pid in e]
    check(not mine, "%s: probes of uvscope (pid %d) left in tracefs: %s"
          % (what, pid, mine[:4]))


def assert_runs_on(t, what, timeout=3):
    """The fixture prints a line per iteration (LOOPFIX_LOG) or pool task
    (POOLFIX_LOG): a new one shows its loop turning."""
    n = len(t.lines)
    wait_for(lambda: len(t.lines) > n, timeout,
             "%s: the target's loop to turn again" % what)


def holder_of(err):
    """The pid of the process holding uvscope's uprobes, from its -v
    lines (None before it started one)."""
    m = re.search(r"uprobes held by pid (\d+)", err)
    return int(m.group(1)) if m else None


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


def assert_holder_gone(err, what, timeout=5):
    """uvscope's uprobes are held by a process of their own, which
    releases them all once uvscope has ended, however it ended (each
    release waits for a grace period: tens of ms)."""
    h = holder_of(err)
    if h is not None:
        wait_for(lambda: not alive(h), timeout, "%s: uvscope's uprobe "
                 "holder (pid %d) to release them and exit" % (what, h))


def assert_target_as_it_was(t, uvs_pid, what, err=""):
    check(t.p.poll() is None, "%s: the target died (status %s)"
          % (what, t.p.returncode))
    assert_untraced(t.pid, what)
    assert_holder_gone(err, what)
    # a holder uvscope started but had no time to name: its releases
    # take moments too
    if code_diffs(t.pid):
        wait_for(lambda: not code_diffs(t.pid), 3, "%s: the target's code "
                 "to be its files' again" % what)
    assert_code_intact(t.pid, what)
    assert_no_tracefs_probe(uvs_pid, what)
    assert_runs_on(t, what)


# ---- 1. a launched program is as a shell would have launched it ----

def _shell_like():
    """The state a shell hands a program it starts in the background with
    nohup: SIGHUP, SIGINT and SIGQUIT ignored, a signal blocked; and
    SIGCHLD ignored, which some supervisors do."""
    for s in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1,
              signal.SIGCHLD):
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2,
                                              signal.SIGWINCH})
    os.umask(0o027)
    os.nice(1)


STATUS_KEYS = ("SigBlk", "SigIgn", "SigCgt", "ShdPnd", "SigPnd", "NoNewPrivs",
               "Seccomp", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
               "Cpus_allowed_list", "Mems_allowed_list", "Umask",
               "Speculation_Store_Bypass")


def launch_state(pid):
    """What a program inherits from whoever starts it, as /proc shows it."""
    s = {}
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            k, _, v = ln.partition(":")
            if k in STATUS_KEYS:
                s[k] = v.strip()
    fds = {}
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                flags = [ln for ln in f if ln.startswith("flags:")][0]
        except OSError:
            continue
        # pipes and sockets the program made are its own: their kind counts
        for kind in ("pipe:", "socket:"):
            if link.startswith(kind):
                link = kind
        fds[int(fd)] = (link, flags.split()[1])
    s["fds"] = fds
    with open("/proc/%d/environ" % pid, "rb") as f:
        s["environ"] = f.read().split(b"\0")
    for name in ("limits", "personality", "oom_score_adj", "timerslack_ns",
                 "cgroup", "loginuid", "sessionid"):
        try:
            with open("/proc/%d/%s" % (pid, name)) as f:
                s[name] = f.read()
        except OSError as e:
            s[name] = str(e)
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    # process group, session, terminal, nice, scheduling policy
    s["pgrp,session,tty,nice,policy"] = (st[2], st[3], st[4], st[16], st[38])
    s["cwd"] = os.readlink("/proc/%d/cwd" % pid)
    s["root"] = os.readlink("/proc/%d/root" % pid)
    return s


def launched_state(argv, out, prefix=()):
    """Starts argv (behind uvscope ARGS -- when prefix is given) the way
    the tests' shell would, with out as stdout and stderr; returns the
    state of the program once it has said ready, and its TracerPid."""
    with open(out, "w"):
        pass
    fh = open(out, "ab")
    p = subprocess.Popen(list(prefix) + argv, stdin=subprocess.DEVNULL,
                         stdout=fh, stderr=fh, preexec_fn=_shell_like)
    try:
        def ready():
            with open(out) as f:
                return "ready" in f.read()
        wait_for(ready, 10, "%s to say ready" % argv[0])
        pid = children(p.pid)[0] if prefix else p.pid
        with open("/proc/%d/comm" % pid) as f:
            eq(f.read().strip(), os.path.basename(argv[0])[:15],
               "the program launched")
        return launch_state(pid), tracer_pids(pid).get(pid)
    finally:
        if prefix:
            for k in children(p.pid):
                os.kill(k, signal.SIGKILL)
        p.kill()
        p.wait()
        fh.close()


@test(timeout=90)
def faults_launch_as_a_shell_would():
    """uvscope CMD -- PROGRAM gives PROGRAM what a shell would have: every
    signal disposition (SIGHUP, SIGINT, SIGQUIT ignored, as nohup and a
    background job have them: uvscope's own handlers replaced them, and
    came to the program as SIG_DFL), the signal mask, umask, nice, limits,
    environment, capabilities, and the shell's descriptors only: no pipe,
    epoll, BPF or perf descriptor of uvscope's. Compared with the same
    program started by the same parent without uvscope."""
    d = tempfile.mkdtemp(prefix="uvs-faults-")
    argv = [LOOPFIX, "timer", "30", "100"]
    try:
        log = os.path.join(d, "out.log")
        want, tracer = launched_state(argv, log)
        eq(tracer, 0, "TracerPid of the program started directly")
        for cmd in (["loop"], ["blocked", "--backend", "ptrace"],
                    ["exit"], ["pool", "--backend", "ptrace"],
                    ["record", "-o", os.path.join(d, "run.json")],
                    ["exit", "--backend", "ptrace"]):
            have, tracer = launched_state(argv, log,
                                          [UVSCOPE] + cmd + ["--"])
            what = "uvscope %s -- loopfix" % " ".join(cmd)
            for k in want:
                eq(have[k], want[k], "%s: the program's %s" % (what, k))
            # loop, blocked and exit on ptrace trace their program; pool's
            # reads its memory only; eBPF does not trace
            check((tracer != 0) == ("ptrace" in cmd and cmd[0] != "pool"),
                  "%s: TracerPid %d" % (what, tracer))
    finally:
        shutil.rmtree(d)


@test(timeout=60)
def faults_launch_with_sigchld_ignored():
    """Started with SIGCHLD ignored (a supervisor's habit), uvscope still
    sees its program end, and exits with its status: the kernel reaped
    the program at once, and `uvscope exit` (eBPF) waited for ever."""
    def pre():
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for be in ("ebpf", "ptrace"):
        for cmd in (["exit"], ["loop", "-d", "5"], ["blocked", "-d", "5"]):
            args = [UVSCOPE] + cmd + ["--backend", be, "--", LOOPFIX, "exit",
                                      "7", "300"]
            try:
                p = subprocess.run(args, capture_output=True, timeout=15,
                                   preexec_fn=pre)
            except subprocess.TimeoutExpired:
                raise Fail("%s: still running 15 s after its program ended"
                           % " ".join(args[1:4]))
            eq(p.returncode, 7, "%s --backend %s: status (the program's; "
               "%s)" % (cmd[0], be, p.stderr.decode()[-300:]))


# ---- 2. SIGKILLed at random moments ----

def fault_target(cmd):
    """A fixture whose loop turns every 20 ms and says so; for pool, one
    whose pool runs two 1 ms tasks every 20 ms."""
    if cmd == "pool":
        return Target([FIX + "/poolfix", "burst", "2", "1", "0", "20"],
                      env=dict(os.environ, POOLFIX_LOG="1"), log=True)
    return Target([LOOPFIX, "idle", "20"],
                  env=dict(os.environ, LOOPFIX_LOG="1"), log=True)


def sigkill_trials(cmd, be, trials, stats):
    name = "%s/%s" % (cmd, be or "-")
    rng = random.Random("%d/%s" % (SEED, name))
    outdir = tempfile.mkdtemp(prefix="uvs-faults-")
    try:
        with fault_target(cmd) as t:
            for i in range(trials):
                # half of them in the first 0.4 s: the loading and
                # attaching, which the rest of the 1.5 s would seldom hit
                delay = rng.uniform(0, KILL_WITHIN_S if rng.random() < 0.5
                                    else 0.4)
                args = uvscope_args(cmd, be, t.pid, outdir, ["-v"])
                p = subprocess.Popen([UVSCOPE] + args,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
                t0 = time.monotonic()
                time.sleep(max(0, t0 + delay - time.monotonic()))
                p.kill()
                try:
                    _, err = p.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    raise Fail("%s trial %d: uvscope not gone 20 s after "
                               "SIGKILL; %s" % (name, i, replay()))
                err = err.decode(errors="replace")
                ended = p.returncode != -signal.SIGKILL
                when = ("after it ended" if ended else
                        "attached" if "attached in" in err else
                        "before it said attached")
                what = ("uvscope %s SIGKILLed %.3f s after it started (trial "
                        "%d, %s); %s" % (" ".join(args[:-2]), delay, i, when,
                                         replay()))
                assert_target_as_it_was(t, p.pid, what, err)
                stats.append((name, delay, when))
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


@test(timeout=120 + 6 * TRIALS)
def faults_sigkill_at_random_moments():
    """uvscope SIGKILLed at a random moment in its first 1.5 s (loading,
    attaching, seizing, or tracing; half of the moments in its first
    0.4 s), UVSCOPE_FAULT_TRIALS times (20) for every subcommand on both
    backends, against a running fixture by pid: after each kill the
    fixture runs on (a new iteration), no thread is
    stopped or traced, its code is byte for byte its files' (no uprobe
    breakpoint left), no probe of that uvscope in tracefs; and at the end
    no BPF program or link of uvscope's that no process holds."""
    if not shutil.which("bpftool"):
        raise Skip("no bpftool to list the kernel's BPF programs")
    names = our_prog_names()
    since = int(time.time()) - 1
    # the checks see a probe where there is one: uvscope loop's uprobes
    with fault_target("loop") as t:
        p = subprocess.Popen([UVSCOPE, "loop", "-p", str(t.pid)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: code_diffs(t.pid), 10, "a uprobe to be seen "
                     "in the target's code")
            check(any("loopfix+" in d for d in code_diffs(t.pid)),
                  "uprobes seen elsewhere: %s" % code_diffs(t.pid))
        finally:
            p.send_signal(signal.SIGINT)
            p.wait()
        assert_code_intact(t.pid, "after uvscope loop's Ctrl-C")
    stats = []
    jobs = [lambda c=c, b=b: sigkill_trials(c, b, TRIALS, stats)
            for c, b in COMBOS]
    # the subcommands in parallel, each on its own fixture: a kill waits
    # on the kernel's detaching more than on a CPU
    run_parallel(jobs, 6)
    assert_no_bpf_left(names, since, "after %d SIGKILLs; %s"
                       % (len(stats), replay()))
    for c, b in COMBOS:
        n = [s for s in stats if s[0] == "%s/%s" % (c, b or "-")]
        check(len(n) >= TRIALS, "%s/%s: %d trials" % (c, b, len(n)))
    # loop, pool, blocked and record say when they have attached (-v)
    early = [s for s in stats if s[2] == "before it said attached" and
             s[0].split("/")[0] in ("loop", "pool", "blocked", "record")]
    check(len(early) >= TRIALS // 2, "only %d kills came before an attach "
          "was done" % len(early))


def uprobe_links(pid):
    """The BPF links pid holds whose program is a uprobe's (the kprobe
    program type: uvscope has no kprobes, the kernel none to give)."""
    kprobe = {p["id"] for p in bpftool("prog") if p.get("type") == "kprobe"}
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != \
                    "anon_inode:bpf_link":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                info = dict(ln.split(":", 1) for ln in f.read().splitlines()
                            if ":" in ln)
        except OSError:
            continue
        if int(info.get("prog_id", "0")) in kprobe:
            out.append((fd, info.get("link_type", "").strip()))
    return out


@test(timeout=60)
def faults_uprobes_held_apart_from_uvscope():
    """The kernel writes a uprobe's breakpoint from the thread that asks,
    and a SIGKILL pending there fails the write: a registration cut short
    left an int3 in the target once (pool killed 52 ms into its attach).
    So uvscope's uprobes are attached and held by a process of their own:
    in a session of its own (no terminal's signal, no SIGKILL of uvscope
    reaches it), holding every uprobe link while uvscope holds none; when
    uvscope is SIGKILLed, it releases them and exits, and the target's
    code is its files' again."""
    if not shutil.which("bpftool"):
        raise Skip("no bpftool to tell uprobe links from others")
    with fault_target("pool") as t:
        p = subprocess.Popen([UVSCOPE, "record", "-v", "-o", os.devnull,
                              "-p", str(t.pid)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(
            ln.decode(errors="replace") for ln in p.stderr), daemon=True)
        reader.start()
        try:
            wait_for(lambda: any("attached in" in ln for ln in lines), 10,
                     "uvscope to attach")
            h = holder_of("".join(lines))
            check(h is not None, "no holder named in -v: %s" % lines)
            check(code_diffs(t.pid), "no uprobe in the target's code")
            mine, held = uprobe_links(p.pid), uprobe_links(h)
            check(not mine, "uvscope itself holds uprobe links: %s" % mine)
            check(held, "the holder (pid %d) holds no uprobe link" % h)
            check(os.getsid(h) == h and os.getsid(p.pid) != h,
                  "the holder's session %d, uvscope's %d"
                  % (os.getsid(h), os.getsid(p.pid)))
        finally:
            p.kill()
            p.wait()
            reader.join(10)
        what = "uvscope record SIGKILLed while attached"
        assert_target_as_it_was(t, p.pid, what, "".join(lines))


# ---- 3. targets that exit or exec while uvscope attaches ----

# what a line says when the target ended or changed under uvscope: its
# pid gone, a zombie, exited, exec'd, or now a program that is not libuv's
# (/bin/sleep) or whose libuv has no layout (threadfix's)
CLEAR = ("no such process", "has exited (zombie)", "exited during attach",
         "exec'd", "is not a libuv process", "libuv version is unknown")


def race_one(cmd, be, kind, rng, binary, clear=False):
    """Starts a target that exits or execs about when uvscope -p is
    started on it (either first, by a random offset); uvscope must end
    with a report or one line, neither hang nor crash; with clear, the
    line must say what became of the target."""
    offset = rng.uniform(0, 0.6)
    outdir = tempfile.mkdtemp(prefix="uvs-faults-")
    if kind == "exit":
        argv = [LOOPFIX, "exit", "3", "400"]
    elif kind == "exec":
        argv = [FIX + "/execfix", "400", "20", "0", "20"]
    else:
        argv = [FIX + "/threadfix", "4"]
    tp = subprocess.Popen(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
    ready = tp.stdout.readline().decode().split()
    # reaped as soon as it ends, as a shell would: its pid then is gone
    reaper = threading.Thread(target=tp.wait, daemon=True)
    reaper.start()
    what = ("uvscope %s%s on a target that %ss %.0f ms after uvscope "
            "starts; %s" % (cmd, " --backend " + be if be else "", kind,
                            400 - offset * 1000, replay()))
    try:
        time.sleep(offset)
        if kind == "texec":
            def later():
                time.sleep(0.4 - min(offset, 0.4))
                try:
                    s = socket.create_connection(("127.0.0.1",
                                                  int(ready[2])))
                    s.sendall(b"texec\n")
                    s.close()
                except OSError:
                    pass
            threading.Thread(target=later, daemon=True).start()
        extra = ["--json"] + (["-d", "2"] if cmd != "why" else [])
        args = uvscope_args(cmd, be, tp.pid, outdir, extra)
        try:
            r = subprocess.run([binary] + args, capture_output=True,
                               timeout=30)
        except subprocess.TimeoutExpired:
            raise Fail("%s: still running after 30 s" % what)
        out, err = r.stdout.decode(), r.stderr.decode(errors="replace")
        check("Sanitizer" not in err and "runtime error" not in err,
              "%s: %s" % (what, err[-1500:]))
        check(r.returncode in (0, 2), "%s: exit status %d (a crash?): %s"
              % (what, r.returncode, err[-500:]))
        if r.returncode == 2:
            line = one_line_error(r.returncode, err, what)
            check(not clear or any(c in line for c in CLEAR), "%s: the "
                  "line does not say the target exited or exec'd: %r"
                  % (what, line))
        else:
            lines = [ln for ln in err.splitlines() if ln.strip()]
            said = [ln for ln in lines
                    if not ln.startswith("uvscope: warning: ")]
            check(len(said) <= 1 and all(ln.startswith("uvscope: ")
                                         for ln in lines),
                  "%s: a report, and at most one line on stderr (but "
                  "warnings): %r" % (what, lines))
            if cmd == "record":
                with open(os.path.join(outdir, "run.json")) as f:
                    json.load(f)
            else:
                check(out.strip(), "%s: exit status 0 and no report" % what)
                json.loads(out)
        try:
            if tp.poll() is None:
                assert_untraced(tp.pid, what)
                assert_code_intact(tp.pid, what)
        except (FileNotFoundError, ProcessLookupError):
            pass  # it has exited since (as it was to)
    finally:
        if tp.poll() is None:
            tp.kill()
        reaper.join(5)
        shutil.rmtree(outdir, ignore_errors=True)


@test(timeout=240 + 6 * TRIALS)
def faults_target_exits_or_execs_during_attach():
    """Every subcommand on both backends, against targets that exit (code
    3), exec from their loop thread, or exec from another thread, up to
    0.2 s before uvscope starts and up to 0.4 s after (in its attach, or
    just after): each run ends with its report or with one line (status
    2), within bounds, and the ASan build finds nothing; a target that
    lives on (an exec) is left untraced and unprobed. Four races for each
    (UVSCOPE_FAULT_TRIALS / 5: more with make fuzz)."""
    jobs = []
    for c, b in COMBOS:
        rng = random.Random("%d/race/%s/%s" % (SEED, c, b))
        for kind in ("exit", "exec", "texec", "exit") * max(1, TRIALS // 20):
            jobs.append(lambda c=c, b=b, k=kind, r=rng:
                        race_one(c, b, k, r, UVSCOPE_ASAN))
    run_parallel(jobs, 4)


@test(timeout=120)
def faults_attach_race_lines_say_why():
    """The line that ends an attach the target's exit or exec has cut short
    says so (or that its pid is gone, or what it now runs).

    Lines that were unclear: an exec from a thread that is not the leader,
    during the attach, read as "cannot attach uprobe (entry of
    uv__run_timers) ...: Invalid argument" (eBPF) or "ptrace ... refused:
    another user's, or already traced" (the leader a zombie for a
    moment); why on a target that exits as it reads, as "cannot read the
    loop at 0x... in pid N"."""
    jobs = []
    for c, b, kind in (("loop", "ebpf", "texec"), ("record", "ebpf", "texec"),
                       ("blocked", "ptrace", "texec"), ("why", None, "exit"),
                       ("exit", "ptrace", "texec"), ("pool", "ebpf", "exit")):
        rng = random.Random("%d/clear/%s/%s" % (SEED, c, b))
        for i in range(4):
            jobs.append(lambda c=c, b=b, k=kind, r=rng:
                        race_one(c, b, k, r, UVSCOPE, clear=True))
    run_parallel(jobs, 4)


def exit_on_exec(be, kind):
    """uvscope exit -d 3 on a target that execs 1 s in; (status, report,
    stderr, seconds from the exec to uvscope's end)."""
    argv = [FIX + "/threadfix", "4"]
    with Target(argv) as t:
        p = subprocess.Popen([UVSCOPE, "exit", "--json", "-d", "3",
                              "--backend", be, "-p", str(t.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1)
        t0 = time.monotonic()
        s = socket.create_connection(("127.0.0.1", int(t.ready[2])))
        s.sendall(kind.encode() + b"\n")
        out, err = p.communicate(timeout=20)
        took = time.monotonic() - t0
        s.close()
        check(t.p.poll() is None, "the target (now sleep) died")
        wait_for(lambda: open("/proc/%d/comm" % t.pid).read().strip() ==
                 "sleep", 3, "the exec")
        assert_untraced(t.pid, "after the exec")
    return p.returncode, json.loads(out), err.decode(), took


@test(timeout=90)
def faults_exit_exec_is_not_an_exit():
    """An exec, from the loop thread or from another (which has the kernel
    kill every other thread, the leader too, and show it as a zombie for
    a moment), ends the program watched, not the process: `uvscope exit`
    says so, when it happened and what runs now, and not "signal SIGKILL,
    target exited" as the eBPF backend did for an exec from another
    thread (one time in two)."""
    for be, kind in (("ebpf", "exec"), ("ebpf", "texec"), ("ebpf", "texec"),
                     ("ptrace", "exec"), ("ptrace", "texec")):
        rc, doc, err, took = exit_on_exec(be, kind)
        what = "exit --backend %s, %s" % (be, kind)
        eq(rc, 0, "%s: status (%s)" % (what, err))
        e = doc["exit"]
        eq(e["reason"], "unknown", what + ": reason")
        check("exec'd /usr/bin/sleep" in e["message"] or
              "exec'd /bin/sleep" in e["message"],
              "%s: message %r" % (what, e["message"]))
        eq(doc["target_exited"], False, what + ": target_exited")
        eq(e["signal"], None, what + ": signal")
        within(e["at_ms"], 900, 2500, what + ": at_ms (the exec)")


@test(timeout=60)
def faults_exit_ends_at_an_exec():
    """The watch ends at the exec, as the other subcommands' traces do.

    The eBPF watch went on after an exec until -d or Ctrl-C (its report
    then said exec'd, rightly)."""
    for be in ("ptrace", "ebpf"):
        for kind in ("exec", "texec"):
            rc, doc, err, took = exit_on_exec(be, kind)
            what = "exit --backend %s, %s" % (be, kind)
            check(took < 1.5, "%s: uvscope went on %.1f s after the exec "
                  "(-d 3)" % (what, took))
            check("exec'd /usr/bin/sleep; trace ended" in err,
                  "%s: stderr %r" % (what, err))


@test(timeout=40)
def faults_exit_lets_go_when_the_target_is_killed():
    """The target SIGKILLed: uvscope exit reports it and is gone within
    0.8 s (the eBPF backend took 1.0-1.3 s: each tracepoint and uprobe
    released after the other, each waiting for a grace period; 0.3-0.5 s
    now, the perf-based probes left released at once)."""
    for be in ("ebpf", "ptrace"):
        for i in range(3):
            with fault_target("exit") as t:
                p = subprocess.Popen([UVSCOPE, "exit", "--json", "--backend",
                                      be, "-p", str(t.pid)],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
                wait_for(lambda: be == "ptrace" and any(
                    v == p.pid for v in tracer_pids(t.pid).values())
                    or be == "ebpf" and code_diffs(t.pid), 10,
                    "uvscope exit to attach")
                time.sleep(0.3)
                t0 = time.monotonic()
                t.p.kill()
                out, err = p.communicate(timeout=10)
                took = time.monotonic() - t0
            eq(p.returncode, 0, "exit --backend %s: status (%s)" % (be, err))
            e = json.loads(out)["exit"]
            eq((e["reason"], e["signal"]), ("signal", 9), "%s: reason" % be)
            within(took, 0, 0.8, "exit --backend %s: seconds from the "
                   "target's SIGKILL to uvscope's end" % be)


# ---- 4. two uvscopes on one target ----

def attached(pid, be, uvs_pid):
    if be == "ptrace":
        return tracer_pids(pid).get(pid) == uvs_pid
    return bool(code_diffs(pid))


def pair(first, second):
    """uvscope FIRST, then SECOND while the first traces: ((cmd, backend),
    (cmd, backend)). Returns (first's status, stdout, stderr), (second's),
    the first's pid."""
    (c1, b1), (c2, b2) = first, second
    with Target([LOOPFIX, "timer", "30", "100"]) as t:
        p = subprocess.Popen([UVSCOPE, c1, "--json", "-d", "4", "--backend",
                              b1, "-p", str(t.pid)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        wait_for(lambda: p.poll() is not None or attached(t.pid, b1, p.pid),
                 10, "the first uvscope to attach")
        time.sleep(0.3)
        r = subprocess.run([UVSCOPE_ASAN, c2, "--json", "-d", "1.5",
                            "--backend", b2, "-p", str(t.pid)],
                           capture_output=True, timeout=30)
        out, err = p.communicate(timeout=20)
        check(t.p.poll() is None, "the target died")
        assert_untraced(t.pid, "after both")
        assert_code_intact(t.pid, "after both")
    return ((p.returncode, out.decode(), err.decode()),
            (r.returncode, r.stdout.decode(), r.stderr.decode()), p.pid)


def assert_traced(res, cmd, be, what):
    rc, out, err = res
    eq(rc, 0, "%s: status (%s)" % (what, err[-400:]))
    doc = json.loads(out)
    eq(doc["target"]["backend"], "ptrace" if be == "ptrace"
       else "ebpf-symbols", what + ": backend")
    if cmd == "loop" and be == "ptrace":
        check(doc["loop"]["sampled"]["samples"] > 50, what + ": samples")
    elif cmd == "loop":
        check(doc["loop"]["iterations"] >= 8, what + ": iterations %d"
              % doc["loop"]["iterations"])
    elif cmd == "blocked":
        check(doc["blocked"]["count"] >= 5, what + ": episodes %d"
              % doc["blocked"]["count"])


@test(timeout=90)
def faults_two_uvscopes_on_one_target():
    """Two at once, both backends, both orders: eBPF beside eBPF or ptrace
    works, each report whole; ptrace after ptrace is refused in one line
    naming the tracer that holds the target (one tracer a thread), and
    the first goes on unharmed."""
    cases = [(("loop", "ebpf"), ("loop", "ebpf")),
             (("loop", "ebpf"), ("loop", "ptrace")),
             (("loop", "ptrace"), ("loop", "ebpf")),
             (("loop", "ptrace"), ("loop", "ptrace")),
             (("exit", "ptrace"), ("blocked", "ptrace")),
             (("blocked", "ptrace"), ("blocked", "ebpf"))]
    results = {}

    def job(a, b):
        results[(a, b)] = pair(a, b)
    run_parallel([lambda a=a, b=b: job(a, b) for a, b in cases], 3)
    for a, b in cases:
        r1, r2, pid1 = results[(a, b)]
        what = "%s --backend %s, then %s --backend %s" % (a + b)
        if a[0] != "exit":
            assert_traced(r1, a[0], a[1], what + ": the first")
        else:
            eq(r1[0], 0, what + ": the first's status (%s)" % r1[2])
        if a[1] == b[1] == "ptrace":
            line = one_line_error(r2[0], r2[2], what + ": the second")
            check("already traced by pid %d (uvscope)" % pid1 in line,
                  "%s: the line should name the tracer %d: %r"
                  % (what, pid1, line))
        else:
            assert_traced(r2, b[0], b[1], what + ": the second")


# ---- 5. a target in its own pid and mount namespaces ----

def in_namespaces(argv, setup=""):
    """argv in new pid and mount namespaces, /proc of its own and a
    private tmpfs on /tmp, as a container has them."""
    return Target(in_container(argv, setup))


def ns_pid(t):
    kids = children(t.pid)
    eq(len(kids), 1, "children of unshare")
    with open("/proc/%d/status" % kids[0]) as f:
        nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")][0]
    eq(nspid, [str(kids[0]), "1"], "NSpid of the target")
    return kids[0]


@test(timeout=90)
def faults_target_in_its_own_namespaces():
    """A loop in its own pid and mount namespaces (a private /tmp) traced
    from the host by its host pid: phases by symbols (eBPF) and by stacks
    (ptrace), its handles by `why` (a child process by its pid in there,
    a watch on its /tmp), and `exit` of it on both backends."""
    with in_namespaces([LOOPFIX, "timer", "30", "100"]) as t:
        pid = ns_pid(t)
        rc, out, err = run(["loop", "--json", "-d", "2", "-p", str(pid)])
        eq(rc, 0, "loop: status (%s)" % err)
        doc = json.loads(out)
        eq(doc["target"]["backend"], "ebpf-symbols", "loop backend")
        tm = doc["loop"]["phases"]["timers"]
        within(tm["count"], 10, 18, "timer phases in 2 s (every 130 ms)")
        within(tm["p50_ms"], 28, 40, "timers phase p50 (30 ms spins)")
        rc, out, err = run(["loop", "--json", "-d", "2", "--backend",
                            "ptrace", "-p", str(pid)])
        eq(rc, 0, "loop --backend ptrace: status (%s)" % err)
        s = json.loads(out)["loop"]["sampled"]["phases"]
        within(s["timers"]["share"], 0.13, 0.33, "timers share (23%)")
        check(t.p.poll() is None, "the target died")
        assert_untraced(pid, "after both")
        assert_code_intact(pid, "after both")
        for be in ("ebpf", "ptrace"):
            p = subprocess.Popen([UVSCOPE, "exit", "--json", "--backend", be,
                                  "-p", str(pid)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            wait_for(lambda: be == "ptrace" and any(
                v == p.pid for v in tracer_pids(pid).values()) or
                be == "ebpf" and code_diffs(pid), 10, "exit to attach")
            if be == "ptrace":
                # init of its namespace: only SIGKILL ends it from here
                os.kill(pid, signal.SIGKILL)
            else:
                time.sleep(1)
                p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=15)
            eq(p.returncode, 0, "exit --backend %s (%s)" % (be, err))
            e = json.loads(out)["exit"]
            want = ("signal", signal.SIGKILL) if be == "ptrace" else \
                ("running", None)
            eq((e["reason"], e["signal"]), want, "exit --backend %s" % be)
    with in_namespaces([LOOPFIX, "keepers", "/tmp/w"], "mkdir /tmp/w &&") as t:
        pid = ns_pid(t)
        check(not os.path.exists("/tmp/w") or
              os.stat("/tmp/w").st_ino != os.stat(
                  "/proc/%d/root/tmp/w" % pid).st_ino,
              "the namespace's /tmp is the host's")
        rc, out, err = run(["why", "--json", "-p", str(pid)])
        eq(rc, 0, "why: status (%s)" % err)
        k = {h["type"]: h for h in json.loads(out)["why"]["keepers"]}
        eq(sorted(k), ["fs_event", "process", "signal", "tcp", "timer"],
           "keepers")
        eq(k["tcp"]["detail"], "listening on 127.0.0.1:%s" % t.ready[4],
           "tcp keeper")
        eq(k["fs_event"]["detail"], "watching /tmp/w", "fs_event keeper")
        eq(k["signal"]["detail"], "SIGUSR2", "signal keeper")
        eq(k["process"]["child_pid"], int(t.ready[5]),
           "the child's pid (in the namespace)")


@test(timeout=30)
def faults_why_names_a_child_in_its_namespace():
    """why names a child process by its command line, read in the
    target's own /proc.

    The child's pid, read from the target's memory, is a pid of the
    target's namespace: read at the host's /proc/PID/cmdline it gave
    "child pid 4: (exited)", or the command of an unrelated host process
    with that pid."""
    with in_namespaces([LOOPFIX, "keepers", "/tmp/w"], "mkdir /tmp/w &&") as t:
        pid = ns_pid(t)
        rc, out, err = run(["why", "--json", "-p", str(pid)])
        eq(rc, 0, "why: status (%s)" % err)
        assert_c_keepers(json.loads(out)["why"], t, "/tmp/w",
                         "in its own namespaces")
