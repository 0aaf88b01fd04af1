# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Real programs from Debian that run libuv, with a small script of known
behaviour each, traced as a user would trace them (issue 12).

neovim creates libuv's default loop and never runs it: its own loop is a
second one (epoll fd 9 where the default loop's is 3). uvscope took the
first epoll fd and saw nothing: 0 iterations, no episode of a 300 ms busy
callback. Its libuv is Debian's stripped libuv.so.1 (tier B)."""
import json
import os
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
