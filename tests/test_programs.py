# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Real programs from Debian that run libuv, with a small script of known
behaviour each, traced as a user would trace them (issue 12).

neovim creates libuv's default loop and never runs it: its own loop is a
second one (epoll fd 9 where the default loop's is 3). uvscope took the
first epoll fd and saw nothing: 0 iterations, no episode of a 300 ms busy
callback. Its libuv is Debian's stripped libuv.so.1 (tier B), as is
python3-uvloop's."""
import json
import os
import subprocess
import time

from harness import (FIX, JSFIX, Fail, LoopTruth, Target, assert_episodes_truth,
                     busy_truth, check, eq, loop_json, run, test, within)
from test_blocked import blocked_json
from test_loop import assert_idle

NVIM = "/usr/bin/nvim"


def nvim(mode):
    """neovim headless running tests/fixtures/nvim_loop.lua MODE."""
    if not os.path.exists(NVIM):
        raise Fail("neovim missing: run scripts/deps.sh")
    return Target([NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-c",
                   "luafile " + os.path.join(JSFIX, "nvim_loop.lua")],
                  env=dict(os.environ, NVIM_LOOP=mode), log=True)


@test(timeout=40)
def programs_neovim_loop_both_backends():
    """A 100 ms timer in neovim: eBPF finds neovim's loop (not the default
    loop it never runs) and counts its iterations and waits as neovim timed
    them; ptrace sees it waiting."""
    with nvim("idle 100") as t:
        doc = loop_json(["-p", str(t.pid), "-d", "2"])
        end = time.monotonic() * 1000
        pt = loop_json(["-p", str(t.pid), "-d", "2", "--backend", "ptrace"])
        lines = t.finish()
    truth = LoopTruth(lines, end - doc["duration_s"] * 1000, end)
    check(doc["target"]["backend"] == "ebpf-syscalls",
          "backend %s" % doc["target"]["backend"])
    assert_idle(doc, "neovim idle", truth)
    within(doc["loop"]["utilization"], 0, 0.05, "neovim idle: utilization")
    within(pt["loop"]["utilization"], 0, 0.05,
           "neovim idle, ptrace: utilization")


@test(timeout=40)
def programs_neovim_blocked_both_backends():
    """A timer callback in neovim spinning 150 ms every 400 ms: an episode
    for each busy period neovim timed, on both backends."""
    for be, dur in (("ebpf", 2), ("ptrace", 2.5)):
        with nvim("busy 150 400") as t:
            doc, _ = blocked_json(t.pid, dur, ["--backend", be])
            end = blocked_json.end
            lines = t.finish()
        assert_episodes_truth(doc, busy_truth(lines), "unknown", 3,
                              "neovim busy, %s" % be, end=end)


@test(timeout=30)
def programs_neovim_why():
    """`why` on neovim reads the loop neovim runs, not libuv's default loop
    (created, never run; once refused: "has not created libuv's default
    loop"): its 100 ms timer, set from Lua, keeps it alive, and its thread
    waits in it."""
    with nvim("idle 100") as t:
        rc, out, err = run(["why", "--json", "-p", str(t.pid)])
        check(rc == 0, "why: exit %d: %s" % (rc, err))
        w = json.loads(out)["why"]
    main = w["loop_list"][0]
    eq(main["thread"], t.pid, "the main loop's thread")
    eq(main["state"], "waiting", "the main loop's state")
    timers = [k for k in w["keepers"]
              if k["type"] == "timer" and k["repeat_ms"] == 100]
    check(len(timers) == 1 and "luv" in timers[0]["callback"],
          "the script's 100 ms timer among the keepers: %s"
          % [(k["type"], k["detail"], k["callback"]) for k in w["keepers"]])


PY = "/usr/bin/python3"


def uvloop_app(busy, period):
    """asyncio on uvloop (Debian's python3-uvloop): a task spinning busy ms
    then sleeping period ms, timing itself."""
    if subprocess.run([PY, "-c", "import uvloop"],
                      capture_output=True).returncode:
        raise Fail("python3-uvloop missing: run scripts/deps.sh")
    return Target([PY, os.path.join(JSFIX, "uvloop_app.py"), "busy",
                   str(busy), str(period)], log=True)


@test(timeout=40)
def programs_uvloop_loop_and_why():
    """Python with uvloop, attached by pid (python3 loads libuv with
    dlopen): its iterations, utilization and waits as the script timed
    them (eBPF, exact), ptrace's utilization interval holding it, and
    `why` reading its loop."""
    with uvloop_app(60, 140) as t:
        doc = loop_json(["-p", str(t.pid), "-d", "2"])
        end = time.monotonic() * 1000
        pt = loop_json(["-p", str(t.pid), "-d", "3", "--backend", "ptrace"])
        rc, out, err = run(["why", "--json", "-p", str(t.pid)])
        lines = t.finish()
    truth = LoopTruth(lines, end - doc["duration_s"] * 1000, end)
    loop = doc["loop"]
    within(loop["utilization"], truth.busy_share - 0.03,
           truth.busy_share + 0.03,
           "uvloop: utilization (the script's: %.3f)" % truth.busy_share)
    # whole iterations in the window: the script's rate over it, give or
    # take one cut at each edge
    want = truth.iterations_per_s * doc["duration_s"]
    within(loop["iterations"], want - 2, want + 2, "uvloop: iterations in "
           "%.1f s (the script's busy periods: %.2f/s)"
           % (doc["duration_s"], truth.iterations_per_s))
    s = pt["loop"]["sampled"]
    busy = 1 - s["phases"]["poll_wait"]["share"]
    check(abs(pt["loop"]["utilization"] - truth.busy_share) <= 0.1,
          "uvloop, ptrace: utilization %.3f (share busy %.3f), the script's "
          "%.3f" % (pt["loop"]["utilization"], busy, truth.busy_share))
    check(rc == 0, "why: exit %d: %s" % (rc, err))
    w = json.loads(out)["why"]
    eq(w["loop_list"][0]["thread"] in (t.pid, 0), True,
       "why: the main loop's thread (%r)" % w["loop_list"][0]["thread"])
    check(w["loop_list"][0]["keepers"] + w["loop_list"][0]["active_requests"]
          >= 1 or w["keepers"], "why: nothing keeps uvloop's loop alive: %s"
          % w["loop_list"])


@test(timeout=60)
def programs_exit_code_after_closing_the_loop_both_backends():
    """A program that ends by closing its loop drains it first, then exits
    with its code: neovim's ":cquit 3" (launched) and Python's sys.exit(3)
    on uvloop (attached by pid) are "exit, code 3" (they were "drained,
    code 3"); a drain is a drain when the process then ends with 0."""
    for be in ("ebpf", "ptrace"):
        what = "neovim :cquit 3, %s" % be
        rc, out, err = run(["exit", "--json", "--backend", be, "--", NVIM,
                            "--headless", "-u", "NONE", "-i", "NONE", "-c",
                            "luafile " + os.path.join(JSFIX, "nvim_loop.lua")],
                           env=dict(os.environ, NVIM_LOOP="cquit 3 400"),
                           timeout=30)
        eq(rc, 3, "%s: uvscope's status (the program's)" % what)
        e = json.loads([ln for ln in out.splitlines()
                        if ln.startswith("{")][-1])["exit"]
        eq((e["reason"], e["code"]), ("exit", 3), what)
        with Target([PY, os.path.join(JSFIX, "uvloop_app.py"), "exit",
                     "3", "600"]) as t:
            rc, out, err = run(["exit", "--json", "--backend", be, "-p",
                                str(t.pid)], timeout=30)
        what = "uvloop sys.exit(3), %s" % be
        eq(rc, 0, "%s: uvscope's status (%s)" % (what, err))
        e = json.loads(out)["exit"]
        eq((e["reason"], e["code"]), ("exit", 3), what)


@test(timeout=60)
def programs_luv_exit_drained_or_stopped_both_backends():
    """luajit with luv, attached by pid (its uv_run entered long before,
    so no uretprobe sees it return), ends its loop two ways, then exits 0:
    its timers closed, the loop runs out of work ("drained"); or uv.stop()
    with a 100 ms timer still active ("exit", code 0). luv closes every
    handle as Lua closes, and runs the loop dry: the loop read as the
    process exits is empty either way, and uv_stop on a loop with work in
    it is what tells them apart (eBPF). ptrace cannot see uv_stop (it
    writes nothing to the target): a stopped luv loop reads "drained"
    there, as docs/exit.md says, and is not asserted."""
    if not os.path.exists("/usr/bin/luajit"):
        raise Fail("luajit missing: run scripts/deps.sh")
    for mode, be, truth in (("drain", "ebpf", "drained"),
                            ("drain", "ptrace", "drained"),
                            ("stop", "ebpf", "exit")):
        with Target(["/usr/bin/luajit", os.path.join(JSFIX, "loop.lua"),
                     mode, "1500"]) as t:
            rc, out, err = run(["exit", "--json", "--backend", be, "-p",
                                str(t.pid)], timeout=30)
        what = "luv %s, %s" % (mode, be)
        eq(rc, 0, "%s: uvscope's status (%s)" % (what, err))
        e = json.loads(out)["exit"]
        eq((e["reason"], e["code"]), (truth, 0), what)


@test(timeout=90)
def programs_loop_threads_named_like_every_subcommand():
    """A process whose main thread runs no loop (bind9's named waits for
    signals while four loop threads work): loopfix threads, loop 0
    spinning 20 ms every 50 ms, three ticking every 100 ms. uvscope took
    the main thread and read it 100% busy; now it watches the busiest
    loop thread and says so, in every subcommand, on static libuv (tier A)
    and Debian's stripped one (tier B); --tid picks another."""
    for fix in ("loopfix", "loopfix-shared"):
        with Target([os.path.join(FIX, fix), "threads", "4", "20", "50"],
                    log=True) as t:
            loops = dict((int(f[1]), int(f[2])) for f in
                         (ln.split() for ln in t.lines) if f[0] == "loop")
            busy, idle = loops[0], loops[1]
            for be in ("ebpf", "ptrace"):
                what = "%s, %s" % (fix, be)
                rc, out, err = run(["loop", "--json", "-d", "2",
                                    "--backend", be, "-p", str(t.pid)])
                eq(rc, 0, "%s: loop's status (%s)" % (what, err))
                doc = json.loads(out)
                eq(doc["target"]["loop_tid"], busy, what + ": loop thread")
                check("watching %d" % busy in err and "--tid" in err,
                      "%s: the choice said: %r" % (what, err))
                # 20 ms of every 50 (or more under load): never idle
                check(doc["loop"]["utilization"] > 0.1,
                      "%s: utilization %.3f" % (what,
                                                doc["loop"]["utilization"]))
                doc, err = blocked_json(t.pid, 2, ["--backend", be])
                b = doc["blocked"]
                eq(doc["target"]["loop_tid"], busy, what + ": blocked's")
                check(b["count"] >= 5, "%s: %d episodes" % (what, b["count"]))
                for ep in b["episodes"]:
                    check(ep["duration_hi_ms"] >= 20 - 0.05,
                          "%s: an episode of %.1f ms, shorter than the "
                          "20 ms spin" % (what, ep["duration_hi_ms"]))
            # --tid: an idle loop thread, consistently
            doc, err = blocked_json(t.pid, 1.5, ["--tid", str(idle)])
            eq(doc["target"]["loop_tid"], idle, fix + ": --tid")
            eq(doc["blocked"]["count"], 0, fix + ": episodes of the idle "
               "loop thread")
            rc, out, err = run(["why", "--json", "-p", str(t.pid)])
            eq(rc, 0, "%s: why's status (%s)" % (fix, err))
            w = json.loads(out)
            eq(w["target"]["loop_tid"], busy, fix + ": why's loop thread")
            check(any(k.get("repeat_ms") == 50 and k.get("loop") == 0
                      for k in w["why"]["keepers"]),
                  "%s: the 50 ms timer not the main loop's keeper: %s"
                  % (fix, w["why"]["keepers"]))
