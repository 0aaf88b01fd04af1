# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""profiles/libuv/*.json: well formed, reproducible from the checked-in
script, and right about live processes (read through /proc/PID/mem at the
offsets the profile gives, compared with what libuv itself reports)."""
import glob
import json
import os
import re
import struct
import subprocess
import tempfile
import time

from harness import (ROOT, Fail, Target, add_test, check, eq, node_binaries,
                     read_mem, runtime_addr, test)

PROFILES = os.path.join(ROOT, "profiles", "libuv")
GEN = os.path.join(ROOT, "scripts", "gen-profile.py")
VERSIONS = ["1.44.2", "1.46.0", "1.49.1", "1.51.0"]
UV_A = "/usr/lib/x86_64-linux-gnu/libuv_a.a"

# What the features that read libuv memory rely on. A tuple lists the
# names one field has had across versions; one of them must be present.
HANDLE = ["data", "loop", "type", "close_cb", "handle_queue", "u", "u.fd",
          "next_closing", "flags"]
REQ = ["data", "type"]
STREAM = HANDLE + ["write_queue_size", "alloc_cb", "read_cb", "connect_req",
                   "shutdown_req", "io_watcher", "io_watcher.fd",
                   "write_queue", "write_completed_queue", "connection_cb",
                   "accepted_fd"]
WORK = ["work_req", "work_req.work", "work_req.done", "work_req.loop",
        "work_req.wq"]
REQUIRED = {
    "uv_loop_t": ["data", "active_handles", "handle_queue", "active_reqs",
                  "active_reqs.count", "stop_flag", "flags", "backend_fd",
                  "pending_queue", "watcher_queue", "watchers", "nwatchers",
                  "nfds", "wq", "wq_mutex", "wq_async", "closing_handles",
                  "process_handles", "prepare_handles", "check_handles",
                  "idle_handles", "async_handles", "async_io_watcher.fd",
                  "timer_heap", "timer_heap.min", "timer_heap.nelts",
                  "timer_counter", "time", "signal_pipefd",
                  "signal_io_watcher", "signal_io_watcher.fd",
                  "child_watcher", "emfile_fd"],
    "uv_handle_t": HANDLE,
    "uv_stream_t": STREAM,
    "uv_tcp_t": STREAM,
    "uv_pipe_t": STREAM + ["ipc", "pipe_fname"],
    "uv_tty_t": STREAM + ["mode"],
    "uv_udp_t": HANDLE + ["send_queue_size", "send_queue_count", "io_watcher",
                          "io_watcher.fd", "write_queue"],
    "uv_poll_t": HANDLE + ["poll_cb", "io_watcher", "io_watcher.fd"],
    "uv_timer_t": HANDLE + ["timer_cb", ("heap_node", "node.heap"), "timeout",
                            "repeat", "start_id"],
    "uv_prepare_t": HANDLE + ["prepare_cb", "queue"],
    "uv_check_t": HANDLE + ["check_cb", "queue"],
    "uv_idle_t": HANDLE + ["idle_cb", "queue"],
    "uv_async_t": HANDLE + ["async_cb", "queue", "pending"],
    "uv_process_t": HANDLE + ["exit_cb", "pid", "queue", "status"],
    "uv_fs_event_t": HANDLE + ["path", "cb", "wd"],
    "uv_fs_poll_t": HANDLE + ["poll_ctx"],
    "uv_signal_t": HANDLE + ["signal_cb", "signum"],
    "uv_req_t": REQ,
    "uv_fs_t": REQ + ["fs_type", "loop", "cb", "result", "ptr", "path",
                      "new_path", "file", "flags", "mode", "nbufs", "bufs",
                      "off"] + WORK,
    "uv_work_t": REQ + ["loop", "work_cb", "after_work_cb"] + WORK,
    "uv_getaddrinfo_t": REQ + ["loop", "cb", "hostname", "service",
                               "retcode"] + WORK,
    "uv_getnameinfo_t": REQ + ["loop", "getnameinfo_cb", "host", "service",
                               "retcode"] + WORK,
    "uv_random_t": REQ + ["loop", "cb", "buflen"] + WORK,
    "uv_write_t": REQ + ["cb", "send_handle", "handle", "queue", "nbufs",
                         "error"],
    "uv_connect_t": REQ + ["cb", "handle", "queue"],
    "uv_shutdown_t": REQ + ["handle", "cb"],
    "uv_udp_send_t": REQ + ["handle", "cb", "queue", ("addr", "u.storage")],
    "struct uv__work": ["work", "done", "loop", "wq"],
    "uv__io_t": ["cb", "pending_queue", "watcher_queue", "pevents", "events",
                 "fd"],
}
HANDLE_STRUCTS = [k for k, v in REQUIRED.items() if v[:len(HANDLE)] == HANDLE]
REQ_STRUCTS = [k for k, v in REQUIRED.items() if v[:2] == REQ]
QUEUES = ["handle_queue", "pending_queue", "watcher_queue", "wq",
          "process_handles", "prepare_handles", "check_handles",
          "idle_handles", "async_handles"]
# libuv's handle flags (src/uv-common.h, not in uv.h, unchanged 1.44-1.51)
UV_HANDLE_ACTIVE, UV_HANDLE_REF, UV_HANDLE_INTERNAL = 0x4, 0x8, 0x10


def load(ver):
    path = os.path.join(PROFILES, ver + ".json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise Fail("%s: %s" % (path, e))


def field(prof, sname, *names):
    """The layout of the first of names the profile has."""
    fields = prof["structs"][sname]["fields"]
    for n in names:
        if n in fields:
            return fields[n]
    raise Fail("libuv %s: %s has none of %s" % (prof["libuv"], sname, names))


class View:
    """One structure of a live process, read once, fields by profile."""

    def __init__(self, prof, sname, pid, addr):
        self.prof, self.sname, self.addr = prof, sname, addr
        self.buf = read_mem(pid, addr, prof["structs"][sname]["size"])
        eq(len(self.buf), prof["structs"][sname]["size"],
           "bytes read of %s at %#x" % (sname, addr))

    def at(self, *names):
        return self.addr + field(self.prof, self.sname, *names)["offset"]

    def u(self, *names, signed=False):
        f = field(self.prof, self.sname, *names)
        size = 8 if f["size"] > 8 else f["size"]
        fmt = {1: "b", 2: "h", 4: "i", 8: "q"}[size]
        fmt = fmt if signed else fmt.upper()
        return struct.unpack_from("<" + fmt, self.buf, f["offset"])[0]

    def i(self, *names):
        return self.u(*names, signed=True)


def fd_link(pid, fd):
    try:
        return os.readlink("/proc/%d/fd/%d" % (pid, fd))
    except OSError as e:
        return "<%s>" % e.strerror


def mono_ms():
    # libuv's loop time is CLOCK_MONOTONIC(_COARSE) in milliseconds
    return time.clock_gettime(time.CLOCK_MONOTONIC) * 1000


# ---- (a) the files themselves ----

@test(timeout=30)
def profiles_present_and_well_formed():
    found = sorted(os.path.basename(p)[:-5]
                   for p in glob.glob(os.path.join(PROFILES, "*.json")))
    eq(found, VERSIONS, "profiles in profiles/libuv")
    for ver in VERSIONS:
        prof = load(ver)
        what = "profile " + ver
        eq(prof.get("schema"), "uvscope-libuv-layout/1", what + ": schema")
        eq(prof.get("libuv"), ver, what + ": libuv version")
        eq(prof.get("arch"), "x86_64", what + ": arch")
        check(prof.get("source"), what + ": source missing")
        for sname, need in REQUIRED.items():
            check(sname in prof["structs"], "%s: no %s" % (what, sname))
            for n in need:
                field(prof, sname, *(n if isinstance(n, tuple) else (n,)))
        for sname, s in prof["structs"].items():
            check_offsets(what, sname, s)
        check_enums(what, prof["enums"])


def check_offsets(what, sname, s):
    """Inside the struct, in declaration order, and no two top-level
    members sharing a byte; a nested member lies inside its parent."""
    size, fields = s["size"], s["fields"]
    check(size > 0 and size % 8 == 0, "%s: %s size %d" % (what, sname, size))
    end = 0
    for name, f in fields.items():
        where = "%s: %s.%s %s" % (what, sname, name, f)
        check(f["size"] > 0 and f["offset"] + f["size"] <= size,
              where + " lies outside the struct (size %d)" % size)
        if "." in name:
            parent = fields[name.rsplit(".", 1)[0]]
            check(parent["offset"] <= f["offset"] and
                  f["offset"] + f["size"] <= parent["offset"] + parent["size"],
                  where + " lies outside its parent %s" % parent)
            continue
        check(f["offset"] >= end, where + " overlaps the member before it")
        end = f["offset"] + f["size"]
    for q in QUEUES:
        if q in fields:
            eq(fields[q]["size"], 16, "%s: %s.%s size" % (what, sname, q))


def check_enums(what, enums):
    ht = enums["uv_handle_type"]
    rt = enums["uv_req_type"]
    eq(ht.get("UV_UNKNOWN_HANDLE"), 0, what + ": UV_UNKNOWN_HANDLE")
    eq(rt.get("UV_UNKNOWN_REQ"), 0, what + ": UV_UNKNOWN_REQ")
    for e in ("UV_ASYNC", "UV_TCP", "UV_TIMER", "UV_SIGNAL", "UV_NAMED_PIPE",
              "UV_HANDLE_TYPE_MAX"):
        check(e in ht, "%s: uv_handle_type has no %s" % (what, e))
    for e in ("UV_FS", "UV_WORK", "UV_GETADDRINFO", "UV_WRITE",
              "UV_REQ_TYPE_MAX"):
        check(e in rt, "%s: uv_req_type has no %s" % (what, e))
    for name, vals in enums.items():
        v = list(vals.values())
        eq(v, sorted(set(v)), "%s: %s values increase" % (what, name))
    for e in ("UV_FS_OPEN", "UV_FS_READ", "UV_FS_STAT", "UV_FS_CUSTOM"):
        check(e in enums["uv_fs_type"], "%s: uv_fs_type has no %s"
              % (what, e))


@test(timeout=30)
def profiles_subtypes_share_their_base():
    """A reader casts a uv_tcp_t* to uv_handle_t*: every handle type must
    start with uv_handle_t's fields, every request with uv_req_t's, every
    stream with uv_stream_t's, at the same offsets."""
    for ver in VERSIONS:
        prof = load(ver)
        st = prof["structs"]
        for base, subs in (("uv_handle_t", HANDLE_STRUCTS),
                           ("uv_req_t", REQ_STRUCTS),
                           ("uv_stream_t", ["uv_tcp_t", "uv_pipe_t",
                                            "uv_tty_t"])):
            for sub in subs:
                for name, f in st[base]["fields"].items():
                    eq(st[sub]["fields"].get(name), f,
                       "libuv %s: %s.%s against %s" % (ver, sub, name, base))


# ---- (b) the data is what the script makes of the headers ----

@test(timeout=60)
def profiles_regenerate_debian_exactly():
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([GEN, "-o", tmp, "/usr/include"],
                           capture_output=True, text=True, timeout=50)
        eq(p.returncode, 0, "gen-profile.py exit status (%s)"
           % p.stderr.strip())
        out = os.listdir(tmp)
        eq(out, ["1.44.2.json"], "files written")
        with open(os.path.join(tmp, out[0])) as f:
            new = f.read()
    with open(os.path.join(PROFILES, "1.44.2.json")) as f:
        old = f.read()
    if new != old:
        a, b = old.splitlines(), new.splitlines()
        n = next(i for i in range(min(len(a), len(b)) + 1)
                 if i == min(len(a), len(b)) or a[i] != b[i])
        raise Fail("profiles/libuv/1.44.2.json differs from what "
                   "scripts/gen-profile.py /usr/include makes of the "
                   "headers; first at line %d:\n  committed: %s\n  "
                   "regenerated: %s" % (n + 1, a[n] if n < len(a) else "EOF",
                                        b[n] if n < len(b) else "EOF"))


@test(timeout=120)
def profiles_regenerate_all_sources():
    """Every committed profile from its recorded source (the Node.js
    builds in the cache), and Node 18's headers agree with Debian's."""
    p = subprocess.run([GEN, "--all", "--check"], capture_output=True,
                       text=True, timeout=110)
    if p.returncode != 0:
        raise Fail("gen-profile.py --all --check: exit %d\n%s%s"
                   % (p.returncode, p.stdout[-3000:], p.stderr))
    check("agrees with Node.js 18.20.8" in p.stdout,
          "Node 18's libuv 1.44.2 headers not cross-checked: %s" % p.stdout)


@test(timeout=30)
def profiles_generator_errors_are_one_line():
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([GEN, "-o", tmp, tmp], capture_output=True,
                           text=True, timeout=20)
        eq(p.returncode, 2, "exit status for a directory without uv.h")
        eq(len(p.stderr.strip().splitlines()), 1, "stderr lines: %r"
           % p.stderr)
        eq(os.listdir(tmp), [], "files written on error")


# ---- (c) the offsets are right about live processes ----

FIXTURE_C = r"""
#include <stdio.h>
#include <unistd.h>
#include <uv.h>

static uv_timer_t timer;
static uv_tcp_t server;
static uv_work_t work;
static int block[2];

static void on_timer(uv_timer_t *t) { (void)t; }
static void on_conn(uv_stream_t *s, int status) { (void)s; (void)status; }
/* Holds a thread-pool worker until the process ends: an in-flight work. */
static void work_cb(uv_work_t *w)
{
	char c;
	(void)w;
	while (read(block[0], &c, 1) < 0)
		;
}
static void after_work(uv_work_t *w, int status) { (void)w; (void)status; }

int main(void)
{
	uv_loop_t *loop = uv_default_loop();
	struct sockaddr_in a;
	uv_os_fd_t fd = -1;

	if (pipe(block) || uv_timer_init(loop, &timer) ||
	    uv_timer_start(&timer, on_timer, 3600000, 4321) ||
	    uv_tcp_init(loop, &server) || uv_ip4_addr("127.0.0.1", 0, &a) ||
	    uv_tcp_bind(&server, (const struct sockaddr *)&a, 0) ||
	    uv_listen((uv_stream_t *)&server, 8, on_conn) ||
	    uv_fileno((uv_handle_t *)&server, &fd) ||
	    uv_queue_work(loop, &work, work_cb, after_work))
		return 1;
	/* every number below comes from libuv's own accessors */
	printf("ready %s loop=%p timer=%p tcp=%p work=%p backend_fd=%d "
	       "repeat=%llu timeout=%llu tcp_fd=%d on_timer=%p work_cb=%p "
	       "after_work=%p\n",
	       uv_version_string(), (void *)loop, (void *)&timer,
	       (void *)&server, (void *)&work, uv_backend_fd(loop),
	       (unsigned long long)uv_timer_get_repeat(&timer),
	       (unsigned long long)(uv_now(loop) + uv_timer_get_due_in(&timer)),
	       (int)fd, (void *)on_timer, (void *)work_cb, (void *)after_work);
	fflush(stdout);
	return uv_run(loop, UV_RUN_DEFAULT);
}
"""


def walk_handles(prof, pid, loop):
    """Handles on loop.handle_queue, as {address: uv_handle_t View}. The
    queue is {next, prev} whether spelt void*[2] or struct uv__queue."""
    head = loop.at("handle_queue")
    hq = field(prof, "uv_handle_t", "handle_queue")["offset"]
    out, q = {}, struct.unpack("<Q", read_mem(pid, head, 8))[0]
    while q != head:
        check(len(out) < 10000, "handle_queue does not come back to its head")
        h = View(prof, "uv_handle_t", pid, q - hq)
        check(h.addr not in out, "handle_queue loops at %#x" % h.addr)
        out[h.addr] = h
        q = struct.unpack("<Q", read_mem(pid, q, 8))[0]
    return out


def read_loop(prof, pid, addr):
    """The loop as it is in memory, read while it runs. A read that falls
    inside the timer's callback finds the heap empty (libuv takes the
    timer out to run it; Node re-arms its one timer after its JS
    callbacks): read again, up to five times."""
    for _ in range(5):
        loop = View(prof, "uv_loop_t", pid, addr)
        if loop.u("timer_heap.nelts") >= 1:
            break
        time.sleep(0.013)
    return loop


def check_loop_common(prof, pid, loop, handles, what):
    """What holds for any libuv loop on Linux, fixture or Node."""
    ht = prof["enums"]["uv_handle_type"]
    eq(fd_link(pid, loop.i("backend_fd")), "anon_inode:[eventpoll]",
       what + ": backend_fd %d" % loop.i("backend_fd"))
    eq(fd_link(pid, loop.i("async_io_watcher.fd")), "anon_inode:[eventfd]",
       what + ": async_io_watcher.fd")
    eq(loop.u("stop_flag"), 0, what + ": stop_flag")
    now = mono_ms()
    check(now - 2000 <= loop.u("time") <= now + 5,
          "%s: loop time %d ms, CLOCK_MONOTONIC %d ms"
          % (what, loop.u("time"), now))
    for a, h in handles.items():
        eq(h.u("loop"), loop.addr, "%s: loop of the handle at %#x" % (what, a))
        check(0 < h.u("type") < ht["UV_HANDLE_TYPE_MAX"],
              "%s: handle at %#x has type %d" % (what, a, h.u("type")))
    # the loop's own handles, at the offsets the profile gives for them
    wq_async, child = loop.at("wq_async"), loop.at("child_watcher")
    check(wq_async in handles and child in handles,
          "%s: wq_async %#x / child_watcher %#x not on handle_queue (%s)"
          % (what, wq_async, child, sorted(hex(a) for a in handles)))
    eq(handles[wq_async].u("type"), ht["UV_ASYNC"], what + ": wq_async type")
    eq(handles[child].u("type"), ht["UV_SIGNAL"],
       what + ": child_watcher type")
    for a in (wq_async, child):
        eq(handles[a].u("flags") & (UV_HANDLE_INTERNAL | UV_HANDLE_REF),
           UV_HANDLE_INTERNAL, what + ": flags of internal handle %#x" % a)
    # the earliest timer, found through the heap
    heap = field(prof, "uv_timer_t", "heap_node", "node.heap")["offset"]
    tmin = loop.u("timer_heap.min")
    check(tmin != 0 and loop.u("timer_heap.nelts") >= 1,
          "%s: empty timer heap" % what)
    check(tmin - heap in handles, "%s: timer_heap.min %#x - %d is no handle"
          % (what, tmin, heap))
    timer = View(prof, "uv_timer_t", pid, tmin - heap)
    eq(timer.u("type"), ht["UV_TIMER"], what + ": type of the earliest timer")
    return timer


def fixture_test():
    src_a = UV_A
    check(os.path.exists(src_a), "%s missing (apt-get install libuv1-dev)"
          % src_a)
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "layoutfix.c"), os.path.join(tmp, "fix")
        with open(src, "w") as f:
            f.write(FIXTURE_C)
        p = subprocess.run(["cc", "-g", "-O2", "-Wall", "-Wextra", "-Werror",
                            src, src_a, "-lpthread", "-ldl", "-o", exe],
                           capture_output=True, text=True)
        eq(p.returncode, 0, "building the layout fixture (%s)" % p.stderr)
        with Target([exe]) as t:
            ver = t.ready[1]
            r = dict(kv.split("=") for kv in t.ready[2:])
            n = {k: int(v, 0) for k, v in r.items()}
            prof = load(ver)
            what = "libuv %s fixture" % ver
            ht = prof["enums"]["uv_handle_type"]
            loop = read_loop(prof, t.pid, n["loop"])
            eq(loop.i("backend_fd"), n["backend_fd"], what + ": backend_fd")
            handles = walk_handles(prof, t.pid, loop)
            eq(sorted(handles),
               sorted([n["timer"], n["tcp"], loop.at("wq_async"),
                       loop.at("child_watcher")]),
               what + ": handles on handle_queue")
            eq(loop.u("active_handles"), 2, what + ": active_handles")
            eq(loop.u("active_reqs.count"), 1, what + ": active_reqs.count")
            timer = check_loop_common(prof, t.pid, loop, handles, what)
            eq(timer.addr, n["timer"], what + ": the earliest timer")
            eq(timer.u("repeat"), n["repeat"], what + ": timer repeat")
            eq(timer.u("timeout"), n["timeout"], what + ": timer timeout")
            eq(timer.u("timer_cb"), n["on_timer"], what + ": timer_cb")
            eq(timer.u("flags") & (UV_HANDLE_ACTIVE | UV_HANDLE_REF),
               UV_HANDLE_ACTIVE | UV_HANDLE_REF, what + ": timer flags")
            tcp = View(prof, "uv_tcp_t", t.pid, n["tcp"])
            eq(tcp.u("type"), ht["UV_TCP"], what + ": tcp type")
            eq(tcp.i("io_watcher.fd"), n["tcp_fd"], what + ": io_watcher.fd")
            check(tcp.u("connection_cb") != 0, what + ": connection_cb unset")
            # the loop's fd -> watcher table points back at the handle
            check(loop.u("nwatchers") > n["tcp_fd"], what + ": nwatchers")
            slot = loop.u("watchers") + 8 * n["tcp_fd"]
            eq(struct.unpack("<Q", read_mem(t.pid, slot, 8))[0],
               tcp.at("io_watcher"), what + ": watchers[tcp fd]")
            # the in-flight thread-pool work
            rt = prof["enums"]["uv_req_type"]
            work = View(prof, "uv_work_t", t.pid, n["work"])
            eq(work.u("type"), rt["UV_WORK"], what + ": work type")
            eq(work.u("loop"), n["loop"], what + ": work loop")
            eq(work.u("work_cb"), n["work_cb"], what + ": work_cb")
            eq(work.u("after_work_cb"), n["after_work"], what + ": after_work")
            eq(work.u("work_req.loop"), n["loop"], what + ": work_req.loop")
            check(work.u("work_req.work") != 0 and work.u("work_req.done"),
                  what + ": work_req callbacks unset")
            # a worker took it: unlinked from loop.wq, pointing at itself
            wq = work.at("work_req.wq")
            eq(work.u("work_req.wq"), wq, what + ": work_req.wq.next")
            eq(loop.u("wq"), loop.at("wq"), what + ": loop.wq empty")


add_test("profiles_live_c_fixture_static_libuv", fixture_test, 60)

NODE_JS = r"""
const s = require('net').createServer().listen(0, '127.0.0.1', () => {
  setInterval(() => {}, 100);
  console.log('ready ' + process.versions.uv + ' ' + s.address().port);
});
"""


def listening_inodes(pid, port):
    out = set()
    with open("/proc/%d/net/tcp" % pid) as f:
        for ln in f.readlines()[1:]:
            p = ln.split()
            if int(p[1].split(":")[1], 16) == port and p[3] == "0A":
                out.add(p[9])
    return out


def node_test(label, node):
    def fn():
        if not os.path.exists(node):
            raise Fail("%s missing: run scripts/fetch-node.sh %s"
                       % (node, label))
        with Target([node, "-e", NODE_JS]) as t:
            ver, port = t.ready[1], int(t.ready[2])
            check(ver in VERSIONS, "node %s has libuv %s: no profile for it"
                  % (label, ver))
            prof = load(ver)
            what = "node %s (libuv %s)" % (label, ver)
            ht = prof["enums"]["uv_handle_type"]
            addr = runtime_addr(t.pid, node, "default_loop_struct")
            ptr = runtime_addr(t.pid, node, "default_loop_ptr")
            eq(struct.unpack("<Q", read_mem(t.pid, ptr, 8))[0], addr,
               what + ": default_loop_ptr")
            loop = read_loop(prof, t.pid, addr)
            handles = walk_handles(prof, t.pid, loop)
            timer = check_loop_common(prof, t.pid, loop, handles, what)
            # read apart from the loop, so allow for an iteration between
            check(loop.u("time") - 200 <= timer.u("timeout")
                  <= loop.u("time") + 1000,
                  "%s: timer due at %d, loop time %d"
                  % (what, timer.u("timeout"), loop.u("time")))
            # the listening server: a TCP handle whose io_watcher.fd is it
            want = listening_inodes(t.pid, port)
            check(want, what + ": no LISTEN socket on port %d" % port)
            found = []
            for a, h in handles.items():
                if h.u("type") != ht["UV_TCP"]:
                    continue
                tcp = View(prof, "uv_tcp_t", t.pid, a)
                m = re.match(r"socket:\[(\d+)\]",
                             fd_link(t.pid, tcp.i("io_watcher.fd")))
                if m and m.group(1) in want:
                    found.append(a)
            eq(len(found), 1, what + ": TCP handles on the listening socket")
            check(loop.u("active_handles") >= 2,
                  what + ": active_handles %d" % loop.u("active_handles"))
    return fn


for _label, _node in node_binaries():
    add_test("profiles_live_node%s" % _label, node_test(_label, _node), 60)
