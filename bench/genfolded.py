#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Writes a synthetic but realistic folded-stack set, deterministic for a
seed: stacks rooted at loop phases, walking a call graph of JavaScript,
libuv, native C++ and kernel frames, so they share prefixes the way real
ones do; counts follow a long-tailed distribution summing exactly to the
requested number of samples.

    genfolded.py [--samples N] [--stacks N] [--depth N] [--seed N] > x.folded
"""
import argparse
import random
import sys

PHASES = ["timers", "pending", "idle", "prepare", "poll", "check", "close",
          "microtasks", "off-cpu"]


def names(rng, n):
    out = []
    for i in range(n):
        r = rng.random()
        if r < 0.35:
            out.append("LazyCompile:*%s%d /srv/app/lib/m%d.js:%d" % (
                rng.choice(["handle", "parse", "render", "compute",
                            "burnCpu", "listOnTimeout", "processTicks"]),
                i, i % 40, rng.randrange(1, 900)))
        elif r < 0.5:
            out.append("uv__%s_%d" % (rng.choice(["io_poll", "run_timers",
                                                  "stream_io", "fs_work",
                                                  "work_done"]), i))
        elif r < 0.85:
            out.append("v8::internal::%s<%s>::Run%d(v8::internal::Isolate*)"
                       % (rng.choice(["Heap", "Builtins", "Runtime",
                                      "Compiler", "Parser"]),
                          rng.choice(["int", "Object&", "Smi"]), i))
        else:
            out.append("%s_%d_[k]" % (rng.choice(["do_syscall_64",
                                                  "ep_poll", "vfs_read",
                                                  "schedule",
                                                  "tcp_sendmsg"]), i))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000000)
    ap.add_argument("--stacks", type=int, default=20000)
    ap.add_argument("--depth", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    fn = names(rng, 3000)
    # each function calls a few others: the call graph stacks walk
    callees = [[rng.randrange(len(fn)) for _ in range(rng.randrange(1, 6))]
               for _ in fn]
    entry = {p: [rng.randrange(len(fn)) for _ in range(8)] for p in PHASES}
    stacks = set()
    while len(stacks) < a.stacks:
        phase = rng.choice(PHASES)
        depth = min(a.depth, 1 + int(rng.expovariate(1 / 18.0)))
        cur = rng.choice(entry[phase])
        st = [phase, fn[cur]]
        while len(st) < depth:
            cur = rng.choice(callees[cur])
            st.append(fn[cur])
        stacks.add(";".join(st))
    stacks = sorted(stacks)
    rng.shuffle(stacks)
    w = [rng.paretovariate(1.2) for _ in stacks]
    s = sum(w)
    counts = [max(1, int(x / s * a.samples)) for x in w]
    # adjust the largest so the total is exact
    i = counts.index(max(counts))
    counts[i] += a.samples - sum(counts)
    if counts[i] < 1:
        sys.exit("genfolded: too few samples for that many stacks")
    out = sys.stdout
    for st, c in zip(stacks, counts):
        out.write("%s %d\n" % (st, c))


if __name__ == "__main__":
    main()
