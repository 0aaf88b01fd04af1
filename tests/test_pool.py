# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""uvscope pool against fixtures whose thread-pool work is known."""
import json
import os
import tempfile

from harness import (FIX, JSFIX, UVSCOPE_ASAN, Fail, Target, add_test,
                     check, eq, node_binaries, one_line_error, run, test,
                     validate, within)


def pool_launch(argv, dur, env=None, binary=None, extra=()):
    """Runs `uvscope pool --json -d DUR -- argv`; returns (doc, tasks the
    fixture printed as (kind, submit_ms, done_ms))."""
    e = dict(os.environ)
    e.update(env or {})
    rc, out, err = run(["pool", "--json", "-d", str(dur)] + list(extra) +
                       ["--"] + argv, timeout=60, env=e, binary=binary)
    if rc != 0:
        raise Fail("uvscope pool -- %s: exit %d: %s" % (argv, rc, err))
    doc, tasks = None, []
    for ln in out.splitlines():
        if ln.startswith("{"):
            doc = json.loads(ln)
        elif ln.startswith("task "):
            f = ln.split()
            tasks.append((f[1], float(f[2]), float(f[3])))
    check(doc is not None, "no JSON document in: %r" % out[-500:])
    validate(doc, "pool document")
    return doc, tasks


def kinds(doc, via="pool"):
    return {t["kind"]: t for t in doc["pool"]["tasks"] if t["via"] == via}


def one_kind(doc, prefix):
    ks = [k for k in kinds(doc) if k.startswith(prefix)]
    eq(len(ks), 1, "kinds starting with %r among %s"
       % (prefix, list(kinds(doc))))
    return kinds(doc)[ks[0]]


def assert_serial(doc, n, what, rel, abs_ms):
    """One thread, n tasks submitted at once: each waits for the ones
    before it, so the k-th wait is the sum of the k runs before it."""
    sl = sorted(doc["pool"]["slowest"], key=lambda s: s["queue_ms"])
    eq(len(sl), n, what + ": tasks listed")
    done = 0.0
    for i, s in enumerate(sl):
        tol = max(rel * done, abs_ms)
        within(s["queue_ms"], done - tol, done + tol,
               "%s: queue wait of task %d (runs before it: %.3f ms)"
               % (what, i, done))
        done += s["run_ms"]
    return sl


# ---- C fixture on static libuv ----

def assert_seen_agrees(tasks, slowest, who):
    """Submit-to-callback as the target itself timed it (tasks: (name,
    submit, done) in ms) against uvscope's queue + run + completion delay,
    sorted, each within 2 ms."""
    seen = sorted(d - s for _, s, d in tasks)
    ours = sorted(s["queue_ms"] + s["run_ms"] + s["done_delay_ms"]
                  for s in slowest)
    for a, b in zip(seen, ours):
        within(b, a - 2, a + 2, "uvscope's submit-to-callback vs %s "
               "(%.3f ms)" % (who, a))


@test(timeout=40)
def pool_c_four_items_one_thread():
    """UV_THREADPOOL_SIZE=1, four 20 ms items at once: waits 0, 20, 40,
    60 ms, runs 20 ms, the pool saturated while they waited."""
    doc, tasks = pool_launch([FIX + "/poolfix", "burst", "4", "20", "300"],
                             1.5, {"UV_THREADPOOL_SIZE": "1"})
    p = doc["pool"]
    eq(p["threads"], 1, "pool threads")
    eq(p["threads_seen"], 1, "threads seen working")
    k = one_kind(doc, "work busy_work")
    eq(k["count"], 4, "busy_work tasks")
    eq(k["slow_io"], False, "busy_work is CPU work")
    sl = sorted(p["slowest"], key=lambda s: s["queue_ms"])
    for i, s in enumerate(sl):
        within(s["queue_ms"], 20 * i - 2, 20 * i + 2, "queue wait %d" % i)
        within(s["run_ms"], 19, 21, "run time %d" % i)
        # the loop thread needs a CPU to wake up on, and a worker
        # spins on one of this VM's two
        within(s["done_delay_ms"], 0, 5, "completion delay %d" % i)
    within(k["run_ms"]["p50_ms"], 19, 21, "run p50")
    check(p["max_queue_depth"] in (3, 4),
          "max queue depth %d, expected 3 or 4" % p["max_queue_depth"])
    # all busy while work waited: from the first start to the last start
    sat_ms = p["saturation"] * doc["duration_s"] * 1000
    within(sat_ms, 55, 65, "saturated time ms")
    within(p["mean_busy_threads"] * doc["duration_s"] * 1000, 78, 82,
           "busy thread-ms")
    eq(p["unmatched"], {"started_before_attach": 0,
                        "done_without_submit": 0}, "unpaired edges")
    eq(p["submitted"], 4, "submitted")
    eq(p["completed"], 4, "completed")
    # what the program saw agrees with wait + run + delay
    assert_seen_agrees(tasks, sl, "the program's")


@test(timeout=40)
def pool_c_asan_build():
    """The sanitizer build pairs the same tasks cleanly."""
    doc, _ = pool_launch([FIX + "/poolfix", "burst", "4", "20", "300"],
                         1.5, {"UV_THREADPOOL_SIZE": "1"},
                         binary=UVSCOPE_ASAN)
    eq(one_kind(doc, "work busy_work")["count"], 4, "busy_work tasks")
    assert_serial(doc, 4, "asan", 0.05, 2)


@test(timeout=40)
def pool_c_attach_by_pid():
    """Attached to a running program with bursts every 500 ms: runs of
    20 ms, four per burst, every task paired or counted as unpaired."""
    with Target([FIX + "/poolfix", "burst", "4", "20", "200", "500"],
                env=dict(os.environ, UV_THREADPOOL_SIZE="1")) as t:
        rc, out, err = run(["pool", "--json", "-d", "2.2", "-p",
                            str(t.pid)])
    eq(rc, 0, "exit status (%s)" % err)
    doc = json.loads(out)
    validate(doc, "pool document")
    p = doc["pool"]
    eq(p["threads"], 1, "pool threads")
    k = one_kind(doc, "work busy_work")
    check(k["count"] >= 12, "only %d tasks in 2.2 s" % k["count"])
    within(k["run_ms"]["p50_ms"], 19, 21, "run p50")
    # one thread: the last of each burst waits three runs
    within(k["queue_ms"]["max_ms"], 58, 64, "longest queue wait")
    eq(p["submitted"] - p["completed"] - p["queued_now"] -
       p["running_now"] + p["unmatched"]["done_without_submit"]
       - p["cancelled"], 0, "tasks accounted for")


@test(timeout=40)
def pool_c_kinds_fs_dns_sync():
    """fs.stat x10, fs.open x5, getaddrinfo x3 (slow I/O), and the sync
    fs calls made on the loop thread, each under its own name."""
    d = tempfile.mkdtemp()
    open(os.path.join(d, "f"), "w").close()
    doc, tasks = pool_launch([FIX + "/poolfix", "mix", d, "300"], 1.2)
    eq(len(tasks), 18, "tasks the program completed")
    ks = kinds(doc)
    eq(sorted(ks), ["fs.open", "fs.stat", "getaddrinfo"], "pool kinds")
    eq(ks["fs.stat"]["count"], 10, "fs.stat")
    eq(ks["fs.open"]["count"], 5, "fs.open")
    eq(ks["getaddrinfo"]["count"], 3, "getaddrinfo")
    eq(ks["getaddrinfo"]["slow_io"], True, "getaddrinfo is slow I/O")
    eq(ks["fs.stat"]["slow_io"], False, "fs.stat is fast I/O")
    sync = kinds(doc, "loop-thread")
    eq(sync.get("fs.stat", {}).get("count"), 1, "sync fs.stat on the loop")
    eq(sync.get("fs.close", {}).get("count"), 5, "sync fs.close on the loop")
    eq(doc["pool"]["sync_on_loop"], 6, "sync calls")
    check(doc["pool"]["max_slow_queue_depth"] >= 1, "slow-I/O queue seen")


@test(timeout=40)
def pool_c_cancelled():
    """uv_cancel on three waiting items: counted as cancelled, by name."""
    doc, tasks = pool_launch([FIX + "/poolfix", "cancel", "300"], 1.0,
                             {"UV_THREADPOOL_SIZE": "1"})
    eq(sorted(k for k, _, _ in tasks), ["cancelled"] * 3 + ["work"],
       "what the program saw")
    k = one_kind(doc, "work busy_work")
    eq(k["count"], 1, "completed")
    eq(k["cancelled"], 3, "cancelled")
    eq(doc["pool"]["cancelled"], 3, "cancelled in all")


@test(timeout=30)
def pool_c_idle():
    """A program that never used the pool: an idle report, not an error."""
    doc, _ = pool_launch([FIX + "/poolfix", "idle"], 0.8)
    p = doc["pool"]
    eq(p["idle"], True, "idle")
    eq(p["threads"], 0, "threads (never started)")
    eq(p["tasks"], [], "tasks")
    rc, out, err = run(["pool", "-d", "0.5", "--", FIX + "/poolfix", "idle"])
    eq(rc, 0, "exit status (%s)" % err)
    check("not started" in out and "idle" in out,
          "text should say the pool is idle: %r" % out)


@test(timeout=30)
def pool_c_text_and_timeline():
    """The text report has the three tables; -i prints a timeline."""
    rc, out, err = run(["pool", "-d", "1.6", "-i", "0.5", "--",
                        FIX + "/poolfix", "burst", "4", "20", "300"],
                       env=dict(os.environ, UV_THREADPOOL_SIZE="1"))
    eq(rc, 0, "exit status (%s)" % err)
    for what in ("TIME s", "QUEUE WAIT", "RUN (on a worker)",
                 "DONE DELAY", "work busy_work (poolfix)", "SLOWEST TASKS"):
        check(what in out, "%r missing from:\n%s" % (what, out))
    rows = [ln.split() for ln in out.splitlines()
            if ln[:8].strip().replace(".", "").isdigit()
            and len(ln.split()) == 7]
    check(len(rows) >= 2, "timeline rows: %r" % rows)
    eq(sum(int(r[1]) for r in rows), 4, "submitted in the timeline")
    for ln in out.splitlines():
        check(len(ln) <= 80, "line over 80 columns: %r" % ln)


@test(timeout=60)
def pool_c_budget_windows():
    """Over the probe budget, tasks are traced in windows: the report says
    which share of the time it saw, and what it saw is still right."""
    with Target([FIX + "/poolfix", "burst", "5", "1", "100", "10"],
                env=dict(os.environ, UV_THREADPOOL_SIZE="1")) as t:
        rc, out, err = run(["pool", "--json", "-d", "6.5",
                            "--probe-budget", "1000", "-p", str(t.pid)])
    eq(rc, 0, "exit status (%s)" % err)
    doc = json.loads(out)
    validate(doc, "pool document")
    p = doc["pool"]
    # 500 tasks/s at 4 hits each, against 1000 hits/s: windows of 2 s
    # (the longest) about every 4 s
    check(0.1 < p["traced_share"] < 0.8, "traced share %r"
          % p["traced_share"])
    check(p["windows"] >= 2, "windows: %d" % p["windows"])
    eq(p["probe_budget"], 1000, "budget")
    k = one_kind(doc, "work busy_work")
    check(k["count"] >= 20, "tasks traced: %d" % k["count"])
    within(k["run_ms"]["p50_ms"], 0.9, 1.5, "run p50 (1 ms spins)")
    # one thread, 5 tasks of 1 ms at once, every 10 ms: they wait 0, 1,
    # 2, 3 and 4 ms, and the thread is busy half the time
    within(k["queue_ms"]["p50_ms"], 1.8, 3, "queue wait p50")
    within(k["queue_ms"]["p90_ms"], 3.8, 5.5, "queue wait p90")
    within(p["mean_busy_threads"], 0.45, 0.6, "busy threads while traced")
    check(p["saturation"] <= 0.5, "saturation %r" % p["saturation"])
    check(all(0 <= tk["covered"] <= 1 for tk in p["timeline"]),
          "timeline coverage out of range")


@test(timeout=40)
def pool_sampled_without_ebpf():
    """--backend ptrace: the pool's queue and idle threads read from memory
    (100 Hz, jittered): busy threads, saturation and queue depth agree with
    the truth, 5 tasks of 1 ms every 10 ms on one thread (busy half the
    time; waiting 0+1+2+3+4 ms of every 10: depth 1.0; saturated 0.4)."""
    with Target([FIX + "/poolfix", "burst", "5", "1", "100", "10"],
                env=dict(os.environ, UV_THREADPOOL_SIZE="1")) as t:
        rc, out, err = run(["pool", "--json", "--backend", "ptrace", "-d",
                            "3", "-p", str(t.pid)])
    eq(rc, 0, "exit status (%s)" % err)
    doc = json.loads(out)
    validate(doc, "pool document")
    p = doc["pool"]
    eq(doc["target"]["backend"], "ptrace", "backend")
    check(p["sampled"] and p["sampled"]["samples"] >= 200,
          "sampled: %r" % p["sampled"])
    eq(p["threads"], 1, "pool threads")
    within(p["mean_busy_threads"], 0.38, 0.62, "busy threads")
    within(p["saturation"], 0.28, 0.52, "saturation")
    within(p["mean_queue_depth"], 0.7, 1.3, "mean queue depth")
    eq(p["tasks"], [], "per-task figures (none without eBPF)")


@test(timeout=30)
def pool_errors():
    """Stripped libuv, no such pid: one line, exit 2."""
    with Target([FIX + "/loopfix-shared", "idle", "100"]) as t:
        rc, out, err = run(["pool", "-d", "1", "-p", str(t.pid)])
    line = one_line_error(rc, err, "pool on a stripped libuv")
    check("uv__work_submit" in line, "should say what was looked for: %r"
          % line)
    rc, out, err = run(["pool", "-p", "999999"])
    one_line_error(rc, err, "no such pid")


# ---- Node.js ----

def node_pbkdf2(node):
    def fn():
        doc, tasks = pool_launch(
            [node, JSFIX + "/pool.js", "pbkdf2", "60000", "500"], 2.0,
            {"UV_THREADPOOL_SIZE": "1"})
        p = doc["pool"]
        eq(p["threads"], 1, "pool threads")
        k = kinds(doc)
        check("crypto.pbkdf2" in k, "crypto.pbkdf2 missing: %s" % list(k))
        eq(k["crypto.pbkdf2"]["count"], 4, "pbkdf2 tasks")
        sl = assert_serial(doc, 4, "pbkdf2", 0.15, 2)
        eq(len(tasks), 4, "tasks the script saw")
        assert_seen_agrees(tasks, sl, "the script's")
    return fn


def node_mix(node):
    def fn():
        d = tempfile.mkdtemp()
        doc, tasks = pool_launch([node, JSFIX + "/pool.js", "mix", d, "500"],
                                 2.0)
        eq(len(tasks), 20, "callbacks the script saw")
        k = kinds(doc)
        eq(k.get("fs.stat", {}).get("count"), 10, "fs.stat (%s)" % list(k))
        eq(k.get("dns.lookup", {}).get("count"), 3, "dns.lookup")
        eq(k["dns.lookup"]["slow_io"], True, "dns.lookup is slow I/O")
        for op in ("fs.open", "fs.close"):
            eq(k.get(op, {}).get("count"), 5, op + " (readFile)")
        check(k.get("zlib", {}).get("count", 0) >= 2,
              "zlib tasks: %s" % k.get("zlib"))
        check(not [n for n in k if n.startswith("work ")],
              "Node's own work should be named: %s" % list(k))
    return fn


for label, node in node_binaries():
    add_test("pool_node%s_pbkdf2_serial" % label, node_pbkdf2(node), 40)
    add_test("pool_node%s_kinds" % label, node_mix(node), 40)


@test(timeout=40)
def pool_node20_io_uring():
    """UV_USE_IO_URING=1 (Node 20): fs ops go to io_uring, not the pool,
    and are reported as such rather than missing."""
    d = tempfile.mkdtemp()
    doc, tasks = pool_launch(["/usr/bin/node", JSFIX + "/pool.js", "mix", d,
                              "500"], 2.0, {"UV_USE_IO_URING": "1"})
    eq(len(tasks), 20, "callbacks the script saw")
    ring = kinds(doc, "io_uring")
    eq(ring.get("fs.stat", {}).get("count"), 10,
       "fs.stat through io_uring (%s)" % list(ring))
    eq(ring.get("fs.read", {}).get("count"), 5, "fs.read through io_uring")
    check("fs.stat" not in kinds(doc), "fs.stat also in the pool")
    eq(kinds(doc).get("dns.lookup", {}).get("count"), 3,
       "dns.lookup still in the pool")
    check(doc["pool"]["io_uring"]["ops"] >= 25, "io_uring ops: %s"
          % doc["pool"]["io_uring"])
