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

from harness import (JSFIX, Fail, LoopTruth, Target, assert_episodes_truth,
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
