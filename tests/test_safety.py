# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Hostile input (issue 14): uvscope runs as root and reads files others
can write (the /tmp perf map of a process, folded stacks, recorded
reports) and strings a target controls (its comm, its symbol names). It
must never block, follow a link, read without a bound, or copy terminal
escapes from them to a terminal."""
import glob
import json
import os
import pwd
import resource
import shutil
import subprocess
import tempfile
import time

from harness import (in_container, FIX, JSFIX, ROOT, UVSCOPE, UVSCOPE_ASAN, Fail, Skip,
                     Target, check, eq, one_line_error, test, validate,
                     wait_for)

ESC = "\x1b]0;PWNED\x07"  # sets a terminal's title: must reach no terminal
NODE = "/usr/bin/node"


def uvs(args, timeout=30, binary=None, stdin=None, limit_as=None):
    """Runs uvscope; (status, stdout, stderr) as bytes: what a terminal
    would be sent, undecoded."""
    def pre():
        if limit_as:  # so a defect ends in ENOMEM, not in the OOM killer
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))
    p = subprocess.run([binary or UVSCOPE] + args, capture_output=True,
                       timeout=timeout, input=stdin, preexec_fn=pre)
    return p.returncode, p.stdout, p.stderr


def no_controls(data, what):
    """No byte a terminal acts on: C0 controls but newline and tab, DEL,
    and no C1 control (U+0080..U+009F, raw or UTF-8 encoded)."""
    for i, c in enumerate(data):
        if (c < 0x20 and c not in (0x0a, 0x09)) or c == 0x7f:
            raise Fail("%s: control byte %#x at %d: %r" %
                       (what, c, i, data[max(0, i - 40):i + 40]))
    text = data.decode("utf-8", "replace")
    for ch in text:
        if 0x80 <= ord(ch) <= 0x9f:
            raise Fail("%s: C1 control U+%04X in %r" % (what, ord(ch),
                                                        text[:200]))


def blocked_run(pid, dur=1, extra=(), timeout=20):
    """uvscope blocked -v --json; fails (rather than hangs) if it does not
    end within timeout."""
    start = time.monotonic()
    try:
        rc, out, err = uvs(["blocked", "-v", "--json", "-d", str(dur), "-p",
                            str(pid)] + list(extra), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail("uvscope blocked did not end in %d s (blocked on the "
                   "perf map?)" % timeout)
    took = time.monotonic() - start
    err = err.decode("utf-8", "replace")
    eq(rc, 0, "exit status (%s)" % err[-500:])
    doc = json.loads(out)
    validate(doc, "blocked document")
    return doc, err, took


def perf_lines(err):
    return [ln for ln in err.splitlines() if "perf map" in ln or
            "perf-" in ln]


def refused(err, why):
    """-v says why the map was refused, once however often it was
    looked at, and at the end how often."""
    lines = perf_lines(err)
    check(len(lines) == 2 and why in lines[0] and "[jit]" in lines[0] and
          "reads refused" in lines[1], "a -v line saying the map was "
          "refused (%s) and one counting: %r" % (why, lines))


def jit_ranges(pid):
    """Anonymous executable mappings of a process: V8's code space."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for ln in f:
            p = ln.split()
            if len(p) == 5 and "x" in p[1]:
                a, b = (int(x, 16) for x in p[0].split("-"))
                out.append((a, b - a))
    check(out, "no anonymous executable mapping in %d" % pid)
    return out


def map_naming(pid, name):
    """Perf map text naming every JIT range of pid `name`."""
    return "".join("%x %x %s\n" % (a, n, name) for a, n in jit_ranges(pid))


def node_burn(cwd, *pre):
    """blocked.js burning 60 ms every 300 ms, without --perf-basic-prof
    unless pre says so (V8 writes isolate-*.log in cwd)."""
    return Target(list(pre) + [NODE] + [JSFIX + "/blocked.js", "burn", "60",
                                        "300"], cwd=cwd)


def stack_names(doc):
    return " ".join(doc["blocked"]["stacks"])


# ---- the perf map: never block, never follow, never unbounded ----

def assert_hostile_map_refused(plant, why):
    """A loopfix traced with plant(path) done at /tmp/perf-PID.map: uvscope
    neither blocks nor spins on it, reports all the same, and says why it
    refused the map."""
    with Target([FIX + "/loopfix", "timer", "30", "100"]) as t:
        path = "/tmp/perf-%d.map" % t.pid
        plant(path)
        try:
            doc, err, took = blocked_run(t.pid)
        finally:
            os.unlink(path)
    check(took < 8, "uvscope took %.1f s" % took)
    check(doc["blocked"]["count"] >= 5, "episodes still reported")
    refused(err, why)


@test(timeout=40)
def safety_perfmap_fifo():
    """A FIFO at /tmp/perf-PID.map: opened without blocking, refused as not
    a regular file (one -v line); the report is made all the same."""
    assert_hostile_map_refused(os.mkfifo, "not a regular file")


@test(timeout=40)
def safety_perfmap_symlink_dev_zero():
    """/tmp/perf-PID.map -> /dev/zero: the link is not followed (it spun at
    100% CPU reading zeros for ever)."""
    assert_hostile_map_refused(lambda p: os.symlink("/dev/zero", p),
                               "symbolic link")


@test(timeout=60)
def safety_perfmap_symlink_to_root_file():
    """A map of the target's own (root's) names JIT frames; another user's
    link at that name, to a root-only file, does not put that file's lines
    into the report (the link was followed, and the owner checked was the
    file's, root: the target's)."""
    d = tempfile.mkdtemp(prefix="uvs-safety-")
    secret = os.path.join(d, "secret")
    with node_burn(d) as t:
        path = "/tmp/perf-%d.map" % t.pid
        try:
            # control: the target's own map names its JIT code
            with open(path, "w") as f:
                f.write(map_naming(t.pid, "JS:*OwnMapName"))
            doc, err, _ = blocked_run(t.pid, 1.5)
            check("JS:*OwnMapName" in stack_names(doc),
                  "the target's own map did not name its JIT frames: %s"
                  % list(doc["blocked"]["stacks"])[:3])
            os.unlink(path)
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, map_naming(t.pid, "ROOT_ONLY_SECRET").encode())
            os.close(fd)
            os.symlink(secret, path)
            nobody = pwd.getpwnam("nobody").pw_uid
            os.lchown(path, nobody, nobody)
            doc, err, _ = blocked_run(t.pid, 1.5)
        finally:
            if os.path.lexists(path):
                os.unlink(path)
            shutil.rmtree(d)
    check("ROOT_ONLY_SECRET" not in stack_names(doc),
          "a root-only file's lines became frame names: %s"
          % [k for k in doc["blocked"]["stacks"] if "SECRET" in k][:2])
    check(doc["blocked"]["count"] >= 3, "episodes still reported")
    refused(err, "symbolic link")


@test(timeout=60)
def safety_perfmap_huge_and_long_lines():
    """A sparse 4 GiB map (a line then zeros): read up to its cap, once,
    with a -v line saying so. Then a map whose first line is 100 KiB long:
    that line is skipped, the next ones name the JIT frames."""
    d = tempfile.mkdtemp(prefix="uvs-safety-")
    with node_burn(d) as t:
        path = "/tmp/perf-%d.map" % t.pid
        try:
            with open(path, "w") as f:
                f.write(map_naming(t.pid, "JS:*BeforeTheZeros"))
                f.truncate(4 << 30)
            doc, err, took = blocked_run(t.pid, 1.5)
            check(took < 15, "uvscope took %.1f s" % took)
            check("JS:*BeforeTheZeros" in stack_names(doc),
                  "the lines before the cap name frames: %s"
                  % list(doc["blocked"]["stacks"])[:3])
            lines = perf_lines(err)
            check(any("first 256 MiB" in ln for ln in lines),
                  "no -v line about the cap: %r" % lines)
            with open(path, "w") as f:
                f.write("%x 10 %s\n" % (jit_ranges(t.pid)[0][0],
                                        "x" * 100000))
                f.write(map_naming(t.pid, "JS:*AfterTheLongLine"))
            doc, err, _ = blocked_run(t.pid, 1.5)
            check("JS:*AfterTheLongLine" in stack_names(doc),
                  "lines after a long one name no frame: %s"
                  % list(doc["blocked"]["stacks"])[:3])
            check("xxxxxxxx" not in stack_names(doc), "the long line "
                  "was read in pieces")
        finally:
            os.unlink(path)
            shutil.rmtree(d)


@test(timeout=60)
def safety_perfmap_names_escaped_in_text():
    """A perf map's names are the target's to choose: a terminal escape in
    one reaches the text report as \\x1b, the JSON as it is."""
    d = tempfile.mkdtemp(prefix="uvs-safety-")
    with node_burn(d) as t:
        path = "/tmp/perf-%d.map" % t.pid
        try:
            with open(path, "w") as f:
                f.write(map_naming(t.pid, "JS:*evil%sname" % ESC))
            rc, out, err = uvs(["blocked", "-d", "1.5", "-p", str(t.pid)])
            doc, _, _ = blocked_run(t.pid, 1.5)
        finally:
            os.unlink(path)
            shutil.rmtree(d)
    eq(rc, 0, "exit status (%r)" % err[-300:])
    no_controls(out, "blocked text report")
    no_controls(err, "blocked stderr")
    # (';' separates frames: in a frame's name it is ':')
    check(b"JS:*evil\\x1b]0:PWNED\\x07name" in out,
          "the name, escaped, is not in the text report: %r" % out[-600:])
    check(any(ESC.replace(";", ":") in k for k in doc["blocked"]["stacks"]),
          "JSON keeps the name as it is")


# ---- containers: the map is in the target's /tmp, named by its pid there --

def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(x) for x in f.read().split()]


@test(timeout=60)
def safety_perfmap_container():
    """node --perf-basic-prof in its own pid and mount namespaces, with a
    private /tmp: its map is /tmp/perf-1.map there, read through
    /proc/PID/root; a decoy at the host's /tmp/perf-HOSTPID.map is not."""
    d = tempfile.mkdtemp(prefix="uvs-safety-")
    with Target(in_container([NODE, "--perf-basic-prof",
                              JSFIX + "/blocked.js", "burn", "60", "300"]),
                cwd=d) as t:
        kids = children(t.pid)
        eq(len(kids), 1, "children of unshare")
        pid = kids[0]
        with open("/proc/%d/status" % pid) as f:
            nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")]
        eq(nspid, [[str(pid), "1"]], "the node's NSpid")
        wait_for(lambda: os.path.exists("/proc/%d/root/tmp/perf-1.map" % pid),
                 5, "the map in the container")
        decoy = "/tmp/perf-%d.map" % pid
        try:
            with open(decoy, "w") as f:
                f.write(map_naming(pid, "JS:*HostDecoy"))
            doc, err, _ = blocked_run(pid, 2.5)
        finally:
            os.unlink(decoy)
            shutil.rmtree(d)
    names = stack_names(doc)
    check("HostDecoy" not in names, "the host's /tmp/perf-%d.map was read"
          % pid)
    st = doc["blocked"]["stacks"]
    on = {k: v for k, v in st.items() if not k.endswith(";off-cpu")}
    held = sum(v for k, v in on.items() if "burnCpu" in k)
    check(on and held >= 0.9 * sum(on.values()), "burnCpu in %d of %d "
          "samples: the container's map was not read (%s)"
          % (held, sum(on.values()), perf_lines(err)))


# ---- uvscope flame: bounded lines, special files refused ----

@test(timeout=60)
def safety_flame_dev_zero():
    """/dev/zero as folded input: refused at once as a device, never read
    into memory until the OOM killer; read through a pipe, its first line
    is too long, and the error says which line."""
    rc, out, err = uvs(["flame", "-o", "/dev/null", "/dev/zero"],
                       timeout=20, limit_as=2 << 30)
    line = one_line_error(rc, err.decode(), "flame /dev/zero")
    check("/dev/zero" in line and "not a regular file" in line,
          "error does not say why: %r" % line)
    rc, out, err = uvs(["flame", "-o", "/dev/null", "/tmp"])
    one_line_error(rc, err.decode(), "flame of a directory")
    # /dev/null ends: an empty base to diff against
    rc, out, err = uvs(["flame", "/dev/null"])
    eq(rc, 0, "flame /dev/null (%r)" % err)
    p = subprocess.Popen(["head", "-c", str(1 << 30), "/dev/zero"],
                         stdout=subprocess.PIPE)
    try:
        q = subprocess.run([UVSCOPE, "flame", "-o", "/dev/null", "-"],
                           stdin=p.stdout, capture_output=True, timeout=20,
                           preexec_fn=lambda: resource.setrlimit(
                               resource.RLIMIT_AS, (2 << 30, 2 << 30)))
    finally:
        p.kill()
        p.wait()
    line = one_line_error(q.returncode, q.stderr.decode(), "flame - < zeros")
    check("<stdin>:1:" in line and "longer than" in line,
          "error does not name the line: %r" % line)


@test(timeout=60)
def safety_flame_long_lines():
    """A line over 64 KiB is an error naming its line, in a file and from a
    pipe (/dev/stdin, as bash's <(...) gives); good input through a pipe
    still renders."""
    d = tempfile.mkdtemp(prefix="uvs-safety-")
    p = os.path.join(d, "long.folded")
    with open(p, "w") as f:
        f.write("a;b 1\nc;d 2\n" + "e;" * 40000 + "f 3\n")
    rc, out, err = uvs(["flame", "-o", "/dev/null", p],
                       binary=UVSCOPE_ASAN)
    line = one_line_error(rc, err.decode(), "flame long line")
    check(line.startswith("uvscope: %s:3: " % p) and "longer than" in line,
          "error does not name line 3: %r" % line)
    for name in ("-", "/dev/stdin"):
        rc, out, err = uvs(["flame", name], binary=UVSCOPE_ASAN,
                           stdin=b"timers;a 3\npoll;b 1\n")
        eq(rc, 0, "flame %s from a pipe (%r)" % (name, err))
        check(out.startswith(b"<?xml") and b"timers" in out,
              "no flame graph from a pipe")
    shutil.rmtree(d)


@test(timeout=30)
def safety_flame_error_escaped():
    """A folded file's bad count is quoted in the error escaped: the
    terminal sees \\x1b, not an escape."""
    d = tempfile.mkdtemp(prefix="uvs-safety-")
    p = os.path.join(d, "bad.folded")
    with open(p, "wb") as f:
        f.write(("a;b 1\na;b %s\n" % ESC).encode())
    rc, out, err = uvs(["flame", "-o", os.path.join(d, "x.svg"), p],
                       binary=UVSCOPE_ASAN)
    no_controls(err[:-1], "flame error")
    line = one_line_error(rc, err.decode(), "flame escape")
    check(":2: " in line and "\\x1b]0;PWNED\\x07" in line,
          "the bad count is not quoted escaped: %r" % line)
    shutil.rmtree(d)


# ---- recorded reports are input files too ----

@test(timeout=30)
def safety_report_text_escaped():
    """uvscope report of a recording whose strings hold terminal escapes
    (exe, a pool task kind, blocked frames and stacks): the text report
    prints them escaped."""
    seed = glob.glob(os.path.join(ROOT, "tests", "fuzz", "corpus", "**",
                                  "record-ebpf-pool.json"), recursive=True)
    check(seed, "no record-ebpf-pool.json under tests/fuzz/corpus")
    with open(seed[0]) as f:
        doc = json.load(f)
    doc["target"]["exe"] = "/srv/" + ESC + "app"
    doc["pool"]["tasks"][0]["kind"] = "work " + ESC + " (app)"
    b = doc["blocked"]
    b["count"] = 1
    b["episodes"] = [{"start_ms": 10.0, "duration_ms": 30.0,
                      "on_cpu_ms": 30.0, "off_cpu_ms": 0.0, "samples": 30,
                      "microtasks": 0.0, "phase": "timers",
                      "waker": None,
                      "top_frames": ["JS:*a" + ESC, "\x9b31mred\u202e"]}]
    b["stacks"] = {"timers;JS:*a" + ESC: 30, "timers;b\x9b2J": 3}
    d = tempfile.mkdtemp(prefix="uvs-safety-")
    p = os.path.join(d, "hostile.json")
    with open(p, "w") as f:
        json.dump(doc, f)
    rc, out, err = uvs(["report", p], binary=UVSCOPE_ASAN)
    eq(rc, 0, "uvscope report (%r)" % err)
    no_controls(out, "report text")
    for s in (b"work \\x1b]0;PWNED\\x07 (app)", b"JS:*a\\x1b]0;PWNED\\x07"):
        check(s in out, "%r not in the text report: %r" % (s, out[-800:]))
    shutil.rmtree(d)


@test(timeout=30)
def safety_error_lines_escaped():
    """An error quoting a bad input file (the JSON reader's, naming a
    token) is one line without its control bytes."""
    d = tempfile.mkdtemp(prefix="uvs-safety-")
    p = os.path.join(d, "bad.json")
    with open(p, "wb") as f:
        f.write(b'{"schema": "uvscope/1", "command": ' + ESC.encode() +
                b'\n}')
    rc, out, err = uvs(["report", p], binary=UVSCOPE_ASAN)
    no_controls(err[:-1], "report error")
    line = one_line_error(rc, err.decode(), "report of bad JSON")
    check("\\x1b" in line, "the token is not quoted escaped: %r" % line)
    shutil.rmtree(d)
