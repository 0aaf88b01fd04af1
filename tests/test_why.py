# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""uvscope why: every keeper of a known handle set, read from memory."""
import json
import os
import shutil
import tempfile
import time

from harness import (FIX, JSFIX, LEAD_MS, ROOT, UVSCOPE_ASAN, Fail, Target,
                     add_test, check, eq, hung_target, node_binaries,
                     one_line_error, run, test, validate, within)

NODE = "/usr/bin/node"


def why(pid, binary=None, env=None):
    rc, out, err = run(["why", "--json", "-p", str(pid)], binary=binary,
                       env=env)
    eq(rc, 0, "why exit status (%s)" % err)
    doc = json.loads(out)
    validate(doc, "why JSON")
    return doc["why"]


def find(items, type_, pred=lambda h: True):
    return [h for h in items if h["type"] == type_ and pred(h)]


def assert_c_keepers(w, t, tmp, what):
    port, child = int(t.ready[4]), int(t.ready[5])
    k = w["keepers"]
    eq(len(k), 5, what + ": number of keepers (%r)" % k)
    tcp = find(k, "tcp")
    check(tcp and tcp[0]["detail"] == "listening on 127.0.0.1:%d" % port,
          what + ": tcp keeper: %r" % tcp)
    timers = find(k, "timer")
    check(len(timers) == 1, what + ": one timer keeps it: %r" % timers)
    eq(timers[0]["repeat_ms"], 1000, what + ": timer repeat")
    within(timers[0]["due_ms"], 3000, 5000, what + ": timer due in (ms)")
    sig = find(k, "signal")
    check(sig and sig[0]["detail"] == "SIGUSR2", what + ": signal %r" % sig)
    proc = find(k, "process")
    check(proc and proc[0]["child_pid"] == child and
          "sleep 60" in proc[0]["detail"], what + ": process %r" % proc)
    fse = find(k, "fs_event")
    check(fse and fse[0]["detail"] == "watching " + tmp,
          what + ": fs_event %r" % fse)
    quiet = find(w["not_keeping"], "timer")
    check(len(quiet) == 1 and quiet[0]["why_not"] == "unref'd",
          what + ": the unref'd timer, under not keeping: %r" % quiet)


@test(timeout=30)
def why_c_known_handle_set():
    tmp = tempfile.mkdtemp()
    try:
        with Target([FIX + "/loopfix", "keepers", tmp]) as t:
            w = why(t.pid, binary=UVSCOPE_ASAN)
            assert_c_keepers(w, t, tmp, "libuv 1.44 static")
            check(t.p.poll() is None, "target stopped or died")
    finally:
        shutil.rmtree(tmp)


@test(timeout=30)
def why_c_stripped_shared_libuv():
    tmp = tempfile.mkdtemp()
    try:
        with Target([FIX + "/loopfix-shared", "keepers", tmp]) as t:
            w = why(t.pid)
            assert_c_keepers(w, t, tmp, "libuv.so.1 (stripped)")
    finally:
        shutil.rmtree(tmp)


NODE_JS = """
const net = require('net'), fs = require('fs');
const srv = net.createServer().listen(0, '127.0.0.1', () => {
  setInterval(() => {}, 1000);
  setTimeout(() => {}, 60000).unref();
  process.on('SIGUSR2', () => {});
  const c = require('child_process').spawn('sleep', ['60'], {stdio: 'ignore'});
  fs.watch(process.argv[1]);
  fs.watchFile('/etc/hostname', { interval: 1234 }, () => {});
  console.log('ready', process.pid, srv.address().port, c.pid);
});
"""


def node_why(label, node):
    def fn():
        if not os.path.exists(node):
            raise Fail("%s missing: run scripts/fetch-node.sh" % node)
        tmp = tempfile.mkdtemp()
        try:
            with Target([node, "-e", NODE_JS, tmp]) as t:
                port, child = int(t.ready[2]), int(t.ready[3])
                w = why(t.pid)
            k = w["keepers"]
            tcp = find(k, "tcp")
            check(tcp and tcp[0]["detail"] ==
                  "listening on 127.0.0.1:%d" % port, "tcp: %r" % tcp)
            timers = find(k, "timer")
            check(len(timers) == 1 and "RunTimers" in timers[0]["callback"],
                  "Node's timer handle keeps it: %r" % timers)
            proc = find(k, "process")
            check(proc and proc[0]["child_pid"] == child,
                  "child process: %r" % proc)
            fse = find(k, "fs_event")
            check(fse and fse[0]["detail"] == "watching " + tmp,
                  "fs.watch: %r" % fse)
            fsp = find(k, "fs_poll")
            check(fsp and fsp[0]["detail"] ==
                  "polling /etc/hostname every 1234 ms",
                  "fs.watchFile: %r" % fsp)
            # Node unrefs its signal handles: a listener does not keep a
            # process alive.
            sig = find(w["not_keeping"], "signal",
                       lambda h: h["detail"] == "SIGUSR2")
            check(sig and sig[0]["why_not"] == "unref'd",
                  "SIGUSR2 handle: %r" % sig)
            check(find(w["not_keeping"], "check",
                       lambda h: "CheckImmediate" in h["callback"]),
                  "Node's immediate check handle named by its callback")
        finally:
            shutil.rmtree(tmp)
    add_test("why_node%s_known_handle_set" % label, fn, 30)


for _label, _node in node_binaries():
    node_why(_label, _node)


@test(timeout=30)
def why_node_worker_loops():
    """A worker thread's loop is found (by the wq_async handle every loop
    points back from) and its keepers listed apart, with its thread."""
    js = ("const { Worker } = require('worker_threads');"
          "const w = new Worker(\"require('net').createServer()"
          ".listen(0, '127.0.0.1', function () { require('worker_threads')"
          ".parentPort.postMessage(this.address().port) })\", "
          "{ eval: true }); w.on('message', p => console.log('ready', p));"
          "setInterval(() => {}, 1000);")
    with Target([NODE, "-e", js]) as t:
        port = int(t.ready[1])
        w = why(t.pid)
    check(w["loops"] >= 2, "loops found: %r" % w["loops"])
    tcp = [h for h in w["keepers"] if h["type"] == "tcp"]
    check(len(tcp) == 1 and tcp[0]["loop"] != 0 and
          tcp[0]["detail"] == "listening on 127.0.0.1:%d" % port,
          "the worker's server, on another loop: %r" % tcp)
    worker = [l for l in w["loop_list"] if l["loop"] == tcp[0]["loop"]]
    check(worker[0]["thread"] not in (0, t.pid),
          "the worker loop's thread: %r" % worker)
    main = [h for h in w["keepers"] if h["loop"] == 0 and h["type"] == "tcp"]
    eq(main, [], "no server on the main loop")


@test(timeout=30)
def why_lists_requests_queued_for_the_pool():
    """One pool thread busy with pbkdf2; an fs.stat and a dns.lookup wait
    behind it in libuv's queue: both are named, the count is all three."""
    js = ("require('crypto').pbkdf2('x', 'y', 3e6, 64, 'sha512', () => {});"
          "require('fs').stat('/etc/hostname', () => {});"
          "require('dns').lookup('localhost', () => {});"
          "setInterval(() => {}, 1000); console.log('ready')")
    env = dict(os.environ, UV_THREADPOOL_SIZE="1")
    with Target([NODE, "-e", js], env=env) as t:
        w = why(t.pid)
    reqs = w["active_requests"]
    eq(reqs[0]["count"], 3, "active requests of the main loop")
    queued = sorted((r["type"], r["detail"]) for r in reqs[1:])
    eq(queued, [("fs", "stat /etc/hostname"), ("getaddrinfo", "localhost")],
       "requests queued for the pool")


@test(timeout=30)
def why_refuses_unknown_layout():
    """A libuv version without a profile, or a profile that does not fit:
    refused with the closest version named, target untouched."""
    tmp = tempfile.mkdtemp()
    try:
        prof = os.path.join(tmp, "libuv")
        os.makedirs(prof)
        for v in ("1.46.0", "1.49.1"):
            shutil.copy(os.path.join(ROOT, "profiles", "libuv", v + ".json"),
                        prof)
        env = dict(os.environ, UVSCOPE_PROFILES=tmp)
        with Target([FIX + "/loopfix", "idle", "100"]) as t:
            rc, out, err = run(["why", "-p", str(t.pid)], env=env,
                               binary=UVSCOPE_ASAN)
            line = one_line_error(rc, err, "unknown layout")
            check("1.44.2" in line and "closest profile: 1.46.0" in line,
                  "should name the version and the closest: " + line)
            # a wrong layout: handle_queue moved by 8 bytes
            p = json.load(open(os.path.join(ROOT, "profiles", "libuv",
                                            "1.44.2.json")))
            p["structs"]["uv_handle_t"]["fields"]["handle_queue"]["offset"] += 8
            json.dump(p, open(os.path.join(prof, "1.44.2.json"), "w"))
            rc, out, err = run(["why", "-p", str(t.pid)], env=env,
                               binary=UVSCOPE_ASAN)
            line = one_line_error(rc, err, "wrong layout")
            check("layout check failed" in line or "could not be walked"
                  in line, line)
            check(t.p.poll() is None, "target died")
    finally:
        shutil.rmtree(tmp)


@test(timeout=10)
def why_bad_targets():
    rc, out, err = run(["why", "-p", "4000001"])
    one_line_error(rc, err, "no such pid")
    rc, out, err = run(["why", "--", "true"])
    one_line_error(rc, err, "launch")


@test(timeout=30)
def why_profile_without_a_member_reads_nothing_for_it():
    """A profile that lacks a member why uses to describe a handle (a
    timer's timeout, a process's pid): that handle is described as
    unreadable, never from the bytes before it (offset -1 was added to
    the handle's address and read)."""
    prof = tempfile.mkdtemp()
    tmp = tempfile.mkdtemp()
    try:
        shutil.copytree(os.path.join(ROOT, "profiles", "libuv"),
                        os.path.join(prof, "libuv"))
        path = os.path.join(prof, "libuv", "1.44.2.json")
        with open(path) as f:
            p = json.load(f)
        del p["structs"]["uv_timer_t"]["fields"]["timeout"]
        del p["structs"]["uv_process_t"]["fields"]["pid"]
        with open(path, "w") as f:
            json.dump(p, f)
        with Target([FIX + "/loopfix", "keepers", tmp]) as t:
            w = why(t.pid, binary=UVSCOPE_ASAN,
                    env=dict(os.environ, UVSCOPE_PROFILES=prof))
        for h in find(w["keepers"], "timer") + find(w["keepers"], "process"):
            eq(h["detail"], "(unreadable)", "%s handle described from a "
               "missing member" % h["type"])
        eq(len(find(w["keepers"], "timer")), 1, "the timer is still listed")
        check(find(w["keepers"], "tcp"), "the other keepers still read")
    finally:
        shutil.rmtree(prof)
        shutil.rmtree(tmp)


@test(timeout=30)
def why_busy_loop_says_so():
    """The issue's hung process: a timeout whose callback never returns
    leaves no active handle (libuv stopped the timer to run it), and why
    said "0 handles keep it alive" as if it were about to exit. Now the
    main loop is busy, for at least as long as the fixture says it has
    spun (its "hang" line; the loop's clock moved as that iteration
    began, its millisecond a little before), and the text says so. An
    idle loop (an interval of 2 s) is waiting."""
    t = hung_target(NODE)
    try:
        a = time.monotonic() * 1000
        w = why(t.pid)
        b = time.monotonic() * 1000
        rc, out, err = run(["why", "-p", str(t.pid)])
        hang = [float(ln.split()[1]) for ln in t.lines
                if ln.startswith("hang ")][0]
    finally:
        t.__exit__()
    main = w["loop_list"][0]
    eq(main["state"], "busy", "the hung loop's state")
    within(main["busy_for_ms"], a - hang - 2, b - hang + LEAD_MS + 2,
           "busy for (ms): the fixture began to spin %.1f ms before why "
           "began" % (a - hang))
    eq(rc, 0, "why text (%s)" % err)
    check("the loop is BUSY" in out and "but it is busy" in out,
          "the text does not say the loop is busy: %s" % out)
    with Target([NODE, JSFIX + "/loop.js", "idle", "2000"]) as t:
        w = why(t.pid)
    eq(w["loop_list"][0]["state"], "waiting", "an idle loop's state")
    eq(w["loop_list"][0]["busy_for_ms"], None, "an idle loop's busy time")
