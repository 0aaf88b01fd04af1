# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""record, report and check: uvscope in CI."""
import copy
import json
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

from harness import (FIX, JSFIX, ROOT, UVSCOPE_ASAN, Target, check, eq,
                     loop_json, one_line_error, run, test, validate)

def record(tmp, name, argv, secs="2", opts=()):
    path = os.path.join(tmp, name)
    with Target(argv) as t:
        rc, out, err = run(["record", "-o", path, "-d", secs,
                            "-p", str(t.pid)] + list(opts))
    eq(rc, 0, "record exit status (%s)" % err)
    check("recorded" in out and path in out, "record said: %r" % out)
    return path


def assert_none_flagged(tmp, base, argv, n, secs="2", opts=()):
    """n more recordings of argv, each checked against base: none may be
    flagged."""
    flagged = []
    for i in range(n):
        p = record(tmp, "run%d.json" % i, argv, secs, opts)
        rc, out, err = run(["check", "-b", base, p])
        if rc != 0:
            flagged.append(out + err)
    eq(len(flagged), 0, "false positives in %d runs:\n" % n +
       "\n".join(flagged))


@test(timeout=60)
def ci_check_flags_a_slower_timer():
    """20 ms timer callbacks, then 60 ms: check exits 1 and names the
    timers phase; the same configuration twice exits 0."""
    tmp = tempfile.mkdtemp()
    try:
        base = record(tmp, "base.json", [FIX + "/loopfix", "timer", "20", "100"])
        same = record(tmp, "same.json", [FIX + "/loopfix", "timer", "20", "100"])
        slow = record(tmp, "slow.json", [FIX + "/loopfix", "timer", "60", "100"])
        for p in (base, same, slow):
            validate(json.load(open(p)), p)
        rc, out, err = run(["check", "--baseline", base, same])
        eq(rc, 0, "same configuration: exit status\n" + out + err)
        check("0 regressions" in out, out)
        junit = os.path.join(tmp, "check.xml")
        rc, out, err = run(["check", "--baseline", base, slow,
                            "--junit", junit])
        eq(rc, 1, "slower timer: exit status\n" + out + err)
        rows = [ln for ln in out.splitlines() if "REGRESSION" in ln]
        check(any(ln.startswith("timers p50") for ln in rows),
              "timers p50 not named as regressed:\n" + out)
        suite = ET.parse(junit).getroot().find("testsuite")
        check(int(suite.get("failures")) >= 1, "JUnit XML has no failure")
        names = [tc.get("name") for tc in suite.iter("testcase")
                 if tc.find("failure") is not None]
        check("timers p50" in names, "JUnit failures: %r" % names)
        rc, out, err = run(["check", "--format", "github", "-b", base, slow])
        eq(rc, 1, "github format exit status")
        check(out.startswith("::error file=%s,title=uvscope check::timers p50"
                             % slow), "github annotation:\n" + out)
        rc, out, err = run(["check", "--json", "-b", base, slow])
        doc = json.loads(out)
        eq(doc["regressions"] >= 1, True, "JSON regressions")
    finally:
        shutil.rmtree(tmp)


@test(timeout=120)
def ci_check_no_false_positives_in_ten_runs():
    """Ten comparisons of the same configuration: none flagged."""
    tmp = tempfile.mkdtemp()
    try:
        argv = [FIX + "/loopfix", "timer", "20", "100"]
        base = record(tmp, "base.json", argv)
        assert_none_flagged(tmp, base, argv, 10)
    finally:
        shutil.rmtree(tmp)


@test(timeout=90)
def ci_check_ptrace_recordings():
    """Without eBPF (record --backend ptrace) check compares the phases'
    shares of the stack samples, widened by their sampling error: timer
    callbacks of 20 ms every 100 ms, then 60 ms, regress the timers share
    (0.2 -> 0.6) and blocked time; five recordings of the same
    configuration are none of them flagged."""
    tmp = tempfile.mkdtemp()
    pt = ["--backend", "ptrace"]
    try:
        argv = [FIX + "/loopfix", "tick", "20", "100"]
        base = record(tmp, "base.json", argv, "2", pt)
        slow = record(tmp, "slow.json", [FIX + "/loopfix", "tick", "60",
                                         "100"], "2", pt)
        rc, out, err = run(["check", "--baseline", base, slow])
        eq(rc, 1, "slower timer: exit status\n" + out + err)
        rows = [ln for ln in out.splitlines() if "REGRESSION" in ln]
        for name in ("timers share", "blocked ms/s"):
            check(any(ln.startswith(name) for ln in rows),
                  "%s not named as regressed:\n%s" % (name, out))
        assert_none_flagged(tmp, base, argv, 5, "2", pt)
    finally:
        shutil.rmtree(tmp)


@test(timeout=60)
def ci_report_renders_the_same_numbers():
    tmp = tempfile.mkdtemp()
    try:
        path = record(tmp, "r.json", [FIX + "/loopfix", "timer", "30", "100"])
        orig = json.load(open(path))
        rc, out, err = run(["report", "--json", path], binary=UVSCOPE_ASAN)
        eq(rc, 0, "report --json exit status (%s)" % err)
        again = json.loads(out)
        validate(again, "report --json")
        eq(again["loop"]["phases"], orig["loop"]["phases"], "phases")
        eq(again["loop"]["poll"], orig["loop"]["poll"], "poll")
        eq(again["target"]["pid"], orig["target"]["pid"], "pid")
        rc, out, err = run(["report", path], binary=UVSCOPE_ASAN)
        eq(rc, 0, "report exit status (%s)" % err)
        p50 = orig["loop"]["phases"]["timers"]["p50_ms"]
        check(("%.3f" % p50) in out, "text report lacks timers p50 %.3f:\n%s"
              % (p50, out))
        # times in ms, to the ns, come back to the ns: 0.125129 ms is
        # 125128.99999... ns as a double, and was once read as 125128
        orig["loop"]["phases"]["check"]["total_ms"] = 0.125129
        orig["blocked"]["blocked_ms"] = 160.176001
        with open(path, "w") as f:
            json.dump(orig, f)
        rc, out, err = run(["report", "--json", path])
        again = json.loads(out)
        eq(again["loop"]["phases"]["check"]["total_ms"], 0.125129,
           "check total_ms read back")
        eq(again["blocked"]["blocked_ms"], 160.176001,
           "blocked_ms read back")
    finally:
        shutil.rmtree(tmp)


@test(timeout=90)
def ci_every_output_follows_the_schema():
    docs = []
    with Target([FIX + "/loopfix", "check", "10", "100"]) as t:
        docs.append(("tier A", loop_json(["-p", str(t.pid), "-d", "1"])))
    with Target([FIX + "/loopfix-shared", "idle", "100"]) as t:
        docs.append(("tier B", loop_json(["-p", str(t.pid), "-d", "1"])))
    with Target(["/usr/bin/node", JSFIX + "/loop.js", "timer", "5", "50"]) as t:
        docs.append(("node", loop_json(["-p", str(t.pid), "-d", "1"])))
        rc, out, err = run(["loop", "--json", "-i", "0.4", "-d", "1",
                            "-p", str(t.pid)])
        for ln in out.splitlines():
            docs.append(("interval", json.loads(ln)))
    for what, d in docs:
        validate(d, what)


def bad_file(tmp, name, content):
    p = os.path.join(tmp, name)
    with open(p, "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return p


@test(timeout=60)
def ci_bad_input_files():
    tmp = tempfile.mkdtemp()
    try:
        good = json.load(open(os.path.join(ROOT, "tests", "fuzz", "corpus",
                                           "report", "loop-tier-a.json")))
        future = copy.deepcopy(good)
        future["schema"] = "uvscope/2"
        other = copy.deepcopy(good)
        other["schema"] = "something/1"
        missing = copy.deepcopy(good)
        del missing["loop"]["poll"]["wait"]
        badbucket = copy.deepcopy(good)
        badbucket["loop"]["phases"]["timers"]["hist"]["buckets"][0][1] += 1
        badtype = copy.deepcopy(good)
        badtype["loop"]["iterations"] = "many"
        text = json.dumps(good, indent=1)
        cases = [
            ("syntax.json", '{"schema": "uvscope/1",\n  "loop": [1, 2,,]}',
             "line 2"),
            ("truncated.json", text[:len(text) // 2], "line"),
            ("empty.json", "", "line"),
            ("array.json", "[1, 2]", "expected a JSON object"),
            ("future.json", future, "newer uvscope"),
            ("other.json", other, "not a uvscope document"),
            ("missing.json", missing, "loop.poll.wait: missing"),
            ("bucket.json", badbucket, "loop.phases.timers.hist"),
            ("type.json", badtype, "loop.iterations: expected an integer"),
        ]
        for name, content, want in cases:
            p = bad_file(tmp, name, content)
            for cmd in (["report", p], ["check", "-b", p, p]):
                rc, out, err = run(cmd, binary=UVSCOPE_ASAN)
                line = one_line_error(rc, err, name)
                check(p in line and want in line,
                      "%s: message should name the file and say %r: %s"
                      % (name, want, line))
        rc, out, err = run(["report", os.path.join(tmp, "none.json")])
        one_line_error(rc, err, "missing file")
    finally:
        shutil.rmtree(tmp)


@test(timeout=90)
def ci_record_pool_and_blocked():
    """record keeps loop, pool and blocked sections; report reads them back
    (text, JSON, --flame); check compares pool queue waits and blocked
    time; diff draws what grew."""
    tmp = tempfile.mkdtemp()
    env = dict(os.environ, UV_THREADPOOL_SIZE="1")
    try:
        paths = {}
        for name, argv in (
                ("base", ["burst", "4", "20", "200", "500"]),
                ("slow", ["burst", "4", "60", "200", "500"])):
            path = os.path.join(tmp, name + ".json")
            with Target([FIX + "/poolfix"] + argv, env=env) as t:
                rc, out, err = run(["record", "-o", path, "-d", "2.2",
                                    "-p", str(t.pid)])
            eq(rc, 0, "record exit status (%s)" % err)
            doc = json.load(open(path))
            validate(doc, path)
            check("pool" in doc and "blocked" in doc and "loop" in doc,
                  "sections: %s" % sorted(doc))
            paths[name] = path
        base = json.load(open(paths["base"]))
        kinds = {k["kind"]: k for k in base["pool"]["tasks"]}
        check("work busy_work (poolfix)" in kinds, "kinds %s" % list(kinds))
        # report renders the same numbers it read
        rc, out, err = run(["report", "--json", paths["base"]])
        eq(rc, 0, "report exit status (%s)" % err)
        again = json.loads(out)
        eq(again["pool"]["tasks"], base["pool"]["tasks"], "pool tasks")
        eq(again["blocked"]["stacks"], base["blocked"]["stacks"],
           "blocked stacks")
        rc, out, err = run(["report", paths["base"]])
        check("QUEUE WAIT" in out, "text report lacks the pool:\n" + out)
        svg = os.path.join(tmp, "r.svg")
        rc, out, err = run(["report", "--flame", svg, paths["base"]])
        eq(rc, 0, "report --flame (%s)" % err)
        check(os.path.getsize(svg) > 1000, "no flame graph")
        # 60 ms work items wait three times longer than 20 ms ones
        rc, out, err = run(["check", "-b", paths["base"], paths["slow"]])
        eq(rc, 1, "check exit status\n" + out)
        check(any(ln.startswith("work busy_work (poolfix) queue p50") and
                  "REGRESSION" in ln for ln in out.splitlines()),
              "pool queue wait not flagged:\n" + out)
        rc, out, err = run(["check", "-b", paths["base"], paths["base"]])
        eq(rc, 0, "a run against itself\n" + out)
        t20 = record(tmp, "t20.json", [FIX + "/loopfix", "timer", "20", "100"])
        t60 = record(tmp, "t60.json", [FIX + "/loopfix", "timer", "60", "150"])
        diff = os.path.join(tmp, "d.svg")
        rc, out, err = run(["diff", t20, t60, "--flame", diff])
        eq(rc, 0, "diff exit status (%s)" % err)
        check("moved most" in out, out)
        check(open(diff).read().startswith("<?xml"), "diff SVG")
        rc, out, err = run(["diff", paths["base"], "--flame", diff])
        one_line_error(rc, err, "diff with one file")
    finally:
        shutil.rmtree(tmp)
