# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Helpers for uvscope's tests: fixtures with known behaviour, running
uvscope, and assertions that print both sides."""
import json
import os
import shutil
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UVSCOPE = os.path.join(ROOT, "uvscope")
UVSCOPE_ASAN = os.path.join(ROOT, ".output", "uvscope-asan")
FIX = os.path.join(ROOT, ".output", "fixtures")
JSFIX = os.path.join(ROOT, "tests", "fixtures")
TESTS = []
NODE_VERSIONS = ["18.20.8", "22.12.0", "24.11.1"]


class Fail(Exception):
    pass


class Skip(Exception):
    """A test that cannot run on this machine (say why): reported as
    skipped on the runner's closing line, never as passed."""


class Test:
    def __init__(self, name, fn, timeout):
        self.name, self.fn, self.timeout = name, fn, timeout


def test(timeout=60, name=None):
    def reg(fn):
        TESTS.append(Test(name or fn.__name__, fn, timeout))
        return fn
    return reg


def add_test(name, fn, timeout=60):
    TESTS.append(Test(name, fn, timeout))


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(a, b, what):
    if a != b:
        raise Fail("%s: got %r, expected %r" % (what, a, b))


def within(v, lo, hi, what):
    if v is None or not (lo <= v <= hi):
        raise Fail("%s = %r, expected within [%s, %s]" % (what, v, lo, hi))


_SCHEMA = None


def validate(doc, what):
    """Checks a uvscope document against docs/schema.json."""
    global _SCHEMA
    import jsonschema
    if _SCHEMA is None:
        with open(os.path.join(ROOT, "docs", "schema.json")) as f:
            _SCHEMA = json.load(f)
    try:
        jsonschema.Draft202012Validator(_SCHEMA).validate(doc)
    except jsonschema.ValidationError as e:
        raise Fail("%s does not follow docs/schema.json: %s at %s"
                   % (what, e.message[:200], list(e.absolute_path)))


def node_binaries():
    """(label, path) of every Node.js the tests cover: the system's, and
    the official builds fetched into the cache by scripts/fetch-node.sh."""
    out = [("20-system", "/usr/bin/node")]
    cache = os.environ.get("UVSCOPE_CACHE", "/var/cache/uvscope")
    for v in NODE_VERSIONS:
        out.append((v, os.path.join(cache, "node", v, "bin", "node")))
    return out


class Target:
    """A fixture process; waits for its "ready" line, killed on exit."""

    def __init__(self, argv, env=None, user=None, cwd=None, log=False):
        self.argv = argv
        self.env = env
        self.user = user
        self.cwd = cwd
        # log: the fixture prints its own measurements as it runs; read
        # them all along, so that it never blocks on a full pipe
        self.log = log
        self.lines = []

    def __enter__(self):
        pre = None
        if self.user is not None:
            uid = self.user

            def pre():
                os.setgid(uid)
                os.setuid(uid)
        if not os.path.exists(self.argv[0]):
            raise Fail("fixture missing: %s" % self.argv[0])
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=self.env,
                                  preexec_fn=pre, cwd=self.cwd)
        line = self.p.stdout.readline().decode()
        if not line.startswith("ready"):
            err = self.p.stderr.read().decode()
            raise Fail("fixture %s did not start: %r %s"
                       % (self.argv, line, err))
        self.pid = self.p.pid
        self.ready = line.split()
        if self.log:
            import threading

            def reader():
                for ln in self.p.stdout:
                    self.lines.append(ln.decode(errors="replace").rstrip())
            self.reader = threading.Thread(target=reader, daemon=True)
            self.reader.start()
        time.sleep(0.3)  # let the loop settle into its rhythm
        return self

    def __exit__(self, *a):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()

    def finish(self):
        """Ends the fixture; returns what it printed after "ready" (its
        own measurements: the truth a test compares with)."""
        if self.p.poll() is None:
            self.p.kill()
        if self.log:
            self.reader.join(5)
            self.p.wait()
            return list(self.lines)
        out = self.p.stdout.read().decode(errors="replace")
        self.p.wait()
        return out.splitlines()


def run(args, timeout=60, binary=None, input=None, env=None):
    """Runs uvscope; returns (exit status, stdout, stderr)."""
    p = subprocess.run([binary or UVSCOPE] + args, capture_output=True,
                       timeout=timeout, input=input, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def loop_json(args, timeout=60, binary=None):
    rc, out, err = run(["loop", "--json"] + args, timeout, binary)
    if rc != 0:
        raise Fail("uvscope loop %s: exit %d: %s" % (args, rc, err.strip()))
    try:
        return json.loads(out)
    except ValueError as e:
        raise Fail("bad JSON from uvscope (%s): %r" % (e, out[:300]))


def one_line_error(rc, err, what):
    eq(rc, 2, "exit status for %s" % what)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    eq(len(lines), 1, "stderr lines for %s (%r)" % (what, err))
    check(lines[0].startswith("uvscope: "),
          "error line should start with 'uvscope: ': %r" % lines[0])
    return lines[0]


def runtime_addr(pid, path, sym):
    """Address of sym in pid, for a mapped ELF file (PIE or not)."""
    out = subprocess.run(["nm", path], capture_output=True).stdout.decode()
    val = None
    for ln in out.splitlines():
        f = ln.split()
        if len(f) == 3 and f[2] == sym:
            val = int(f[0], 16)
    check(val is not None, "no symbol %s in %s" % (sym, path))
    ehdr = subprocess.run(["readelf", "-h", path],
                          capture_output=True).stdout.decode()
    if "EXEC" in ehdr:
        return val
    real = os.path.realpath(path)
    with open("/proc/%d/maps" % pid) as f:
        for ln in f:
            parts = ln.split()
            if len(parts) >= 6 and parts[5] == real and int(parts[2], 16) == 0:
                return int(parts[0].split("-")[0], 16) + val
    raise Fail("%s not mapped in %d" % (path, pid))


def read_mem(pid, addr, n):
    with open("/proc/%d/mem" % pid, "rb") as f:
        f.seek(addr)
        return f.read(n)


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise Fail("timed out waiting for %s" % what)


def kill(p, sig=signal.SIGTERM):
    try:
        os.kill(p, sig)
    except ProcessLookupError:
        pass


def assert_episodes(doc, lo, hi, phase, n_min, what, median=False):
    """Every episode (or, with median, their median: Node's JIT and GC
    may lengthen one now and then) lasts lo..hi ms, in phase."""
    b = doc["blocked"]
    check(b["count"] >= n_min, "%s: %d episodes, expected at least %d"
          % (what, b["count"], n_min))
    if median:
        ds = sorted(e["duration_ms"] for e in b["episodes"])
        within(ds[len(ds) // 2], lo, hi, what + ": median episode ms "
               "(of %s)" % ["%.1f" % d for d in ds])
    for e in b["episodes"]:
        if not median:
            within(e["duration_ms"], lo, hi, what + ": episode duration ms")
        if isinstance(phase, tuple):
            check(e["phase"] in phase, "%s: episode phase %s, expected one "
                  "of %s" % (what, e["phase"], phase))
        else:
            eq(e["phase"], phase, what + ": episode phase")
    return b["episodes"]


def busy_truth(lines):
    """The busy periods a fixture timed itself (loopfix, LOOPFIX_LOG=1):
    [(spin start, spin end, next prepare)]: each busy period lasted at
    least its spin (or sleep, or nested loop), and at most from its start
    to the prepare phase that followed it (about to poll again). The
    thread's CPU time in each: busy_cpu(lines)."""
    spins, preps = [], []
    for ln in lines:
        f = ln.split()
        if len(f) == 4 and f[0] == "busy":
            spins.append((float(f[1]), float(f[2])))
        elif len(f) in (2, 3) and f[0] == "prep":
            preps.append((float(f[1]), float(f[2]) if len(f) == 3 else 0))
    out = []
    for s, e in spins:
        nxt = [p for p in preps if p[0] >= e]
        prev = [p for p in preps if p[0] <= s]
        if not nxt:
            continue
        p, d = min(nxt)
        # the time the machine kept the thread off-CPU in that iteration
        # (loopfix's run delay at each prep) lengthens the period beyond
        # what the program timed: before its spin as well as in it
        if prev and d >= max(prev)[1] > 0:
            p += d - max(prev)[1]
        out.append((s, e, p))
    return out


def busy_cpu(lines):
    """[(duration, CPU ms)] of each busy period the fixture logged."""
    return [(float(f[2]) - float(f[1]), float(f[3]))
            for f in (ln.split() for ln in lines)
            if len(f) == 4 and f[0] == "busy"]


def steal_ticks():
    """The machine's time stolen by its hypervisor so far, per CPU, in
    clock ticks (/proc/stat)."""
    with open("/proc/stat") as f:
        return [int(ln.split()[8]) for ln in f
                if ln.startswith("cpu") and ln[3].isdigit()]


def stolen_ms(before, after):
    """What the hypervisor may have taken from the machine between two
    steal_ticks(): /proc/stat truncates each CPU's count to a tick, so one
    more a CPU."""
    tick = 1000.0 / os.sysconf("SC_CLK_TCK")
    return sum(b - a + 1 for a, b in zip(before, after)) * tick


def hung_target(node="/usr/bin/node"):
    """loop.js hang: a timeout whose callback never returns, begun (its
    "hang T" line) before anything attaches. An entered Target: the caller
    ends it with __exit__()."""
    t = Target([node, os.path.join(JSFIX, "loop.js"), "hang", "100"],
               log=True)
    t.__enter__()
    try:
        wait_for(lambda: any(ln.startswith("hang ") for ln in t.lines), 10,
                 "the fixture to begin its endless callback")
    except BaseException:
        t.__exit__()
        raise
    return t


def assert_off_cpu(doc, lines, what, stolen=0.0):
    """Each episode's off-CPU time against the busy period the fixture
    timed inside it: in that period (its clock, ms) the thread was off CPU
    all but the process's CPU time there (busy_cpu). Around it (the timers'
    dispatch, the log line, a GC pause) the fixture measured nothing, so
    that part bounds nothing. Episodes clipped by the trace's window, or
    holding no busy period of the fixture (a GC pause), are left out; at
    least one must hold one.

    stolen: the time the hypervisor took from the machine meanwhile
    (stolen_ms). A vCPU stolen while the thread is on it is on CPU to the
    kernel's scheduler (and so to uvscope) but not in the thread's CPU
    time: the episodes may fall short by that much in all."""
    t0 = doc["start_monotonic_s"] * 1000
    periods = [(float(f[1]), float(f[2]), float(f[3]))
               for f in (ln.split() for ln in lines)
               if len(f) == 4 and f[0] == "busy"]
    seen, short = 0, []
    for ep in doc["blocked"]["episodes"]:
        a = t0 + ep["start_ms"]
        b = a + ep["duration_ms"]
        check(ep["off_cpu_ms"] <= ep["duration_ms"] + 1e-6,
              "%s: off CPU %.3f ms of an episode of %.3f" % (
                  what, ep["off_cpu_ms"], ep["duration_ms"]))
        inside = [(max(s, a), min(e, b), c) for s, e, c in periods
                  if s >= a - LEAD_MS and e <= b + LEAD_MS]
        if not inside:
            continue
        seen += 1
        least = sum(max(0.0, e - s - c) for s, e, c in inside) - LEAD_MS
        if ep["off_cpu_ms"] < least:
            short.append((least - ep["off_cpu_ms"],
                          "off CPU %.1f of %.1f ms; in the %.1f ms it timed "
                          "the fixture ran %.3f ms" % (
                              ep["off_cpu_ms"], ep["duration_ms"],
                              sum(e - s for s, e, _ in inside),
                              sum(c for _, _, c in inside))))
    check(seen, "%s: no episode holds a busy period the fixture timed: %s"
          % (what, [(ep["start_ms"], ep["duration_ms"])
                    for ep in doc["blocked"]["episodes"]]))
    missing = sum(m for m, _ in short)
    check(missing <= stolen, "%s: %.1f ms off CPU missing (the hypervisor "
          "took %.0f ms at most): %s" % (what, missing, stolen,
                                         "; ".join(t for _, t in short)))


# what a busy period may have lasted before its callback began (the
# epoll wait's return, the loop's clock, the timers' heap): microseconds,
# unless the thread was preempted in between
LEAD_MS = 1.0


def assert_episodes_truth(doc, truth, phase, n_min, what, gc=False,
                          end=None):
    """Episodes against the busy periods the fixture timed itself
    (busy_truth): each agrees with one of them. Measured episodes (eBPF)
    last at least that period's spin and at most from its start to the
    prepare phase after it; sampled ones (ptrace) carry bounds that hold
    their estimate and overlap that range. A loaded machine lengthens
    the spins and delays a sampler: the truth moves with it. gc: a
    runtime with a garbage collector may add a pause before the callback
    now and then; one in five episodes may then be longer than the busy
    period the script saw, none shorter. end: when the trace ended (the
    fixture's clock, ms): a loaded machine may give the fixture fewer busy
    periods in it than n_min; then all but one of those it had."""
    b = doc["blocked"]
    if end is not None:
        start = end - doc["duration_s"] * 1000
        had = sum(1 for s0, _, p in truth if s0 >= start and p <= end)
        n_min = min(n_min, max(1, had - 1))
    check(b["count"] >= n_min, "%s: %d episodes, expected at least %d"
          % (what, b["count"], n_min))
    check(truth, "%s: the fixture timed no busy period" % what)
    ranges = [(e - s, p - s + LEAD_MS) for s, e, p in truth]
    longer = []
    for ep in b["episodes"]:
        lo, d, hi = ep["duration_lo_ms"], ep["duration_ms"], \
            ep["duration_hi_ms"]
        check(lo <= d <= hi, "%s: estimate %.3f outside its bounds "
              "[%.3f, %.3f]" % (what, d, lo, hi))
        # one that began before the trace is seen from the trace's start,
        # one still running at its end up to there
        clipped = ep["start_ms"] <= 1.0 or \
            ep["start_ms"] + d >= doc["duration_s"] * 1000 - 1.0
        ok = any((clipped or hi >= least - 0.05) and lo <= most
                 for least, most in ranges)
        msg = "%s: episode of %.3f ms [%.3f, %.3f] is none of the busy " \
            "periods the fixture timed: %s" % (
                what, d, lo, hi, ["%.1f..%.1f" % r for r in sorted(ranges)])
        if gc:
            check(clipped or hi >= min(r[0] for r in ranges) - 0.05, msg)
            longer.append(msg) if not ok else None
        else:
            check(ok, msg)
        # one the trace cut holds only its part's stacks: none at all (asleep
        # in execSync's nested wait from the trace's start), or a few in
        # fork in a libc without frame pointers (Debian's node, as the
        # trace ended) that reach no phase: it says "unknown", never a
        # wrong one
        phases = phase if isinstance(phase, tuple) else (phase,)
        if clipped:
            phases += ("unknown",)
        check(ep["phase"] in phases, "%s: episode phase %s, expected one "
              "of %s (at %.1f ms, %.1f ms, %d samples, ongoing %s)" % (
                  what, ep["phase"], phases, ep["start_ms"], d,
                  ep["samples"], ep.get("ongoing")))
    check(len(longer) * 5 <= len(b["episodes"]),
          "%d of %d episodes longer than the script's busy periods:\n%s"
          % (len(longer), len(b["episodes"]), "\n".join(longer)))


def share_at_least(share, n, p, what):
    """A share measured by n samples, against a claim that the truth is at
    least p: fails when the share is further below p than two standard
    errors of n samples allow (the few samples a loaded machine lets a
    short run take are noisier, not wrong)."""
    check(n > 0, "%s: no samples" % what)
    floor = p - 2 * (p * (1 - p) / n) ** 0.5
    check(share >= floor, "%s: %.1f%% of %d samples, below %.1f%% (%.0f%% "
          "less two standard errors)" % (what, 100 * share, n, 100 * floor,
                                         100 * p))


class LoopTruth:
    """What a fixture's loop did, from its own log (loopfix LOOPFIX_LOG=1:
    busy, tick and prep lines; loop.js LOOP_LOG=1: busy, sched and tick
    lines),
    over the window [a, b] ms of its clock (None: all of it).

    spins: durations of its busy callbacks; waits: from the end of each
    iteration (its prepare phase, or for a script without one the end of
    its callback) to the first callback of the next (the poll wait, and
    the microseconds around it); iterations_per_s and busy_share, over
    its whole iterations in the window; rest: each iteration's time
    outside its wait and its busy callbacks (the other phases' time,
    preemptions included); busy_iter: each iteration's time from its first
    callback to its end (prep lines); periods: from each busy callback's
    start to the next one's; gap_delays: from each busy callback's end to
    the next one's start, how long the loop thread waited for a CPU
    (loop.js "sched" lines: the kernel's count); delay_share: the share of
    the whole iterations' time it waited for a CPU (loopfix's prep
    lines: the kernel's count). stolen_ms: what the
    hypervisor took from the machine over the trace, where the test
    measured it."""

    stolen_ms = None

    def __init__(self, lines, a=None, b=None):
        ev = []
        sched = []
        delays = {}  # prep time -> the thread's run delay then (loopfix)
        for ln in lines:
            f = ln.split()
            if len(f) == 3 and f[0] == "prep":
                delays[float(f[1])] = float(f[2])
            if len(f) == 3 and f[0] == "sched":
                sched.append((float(f[1]), float(f[2])))
            elif len(f) >= 3 and f[0] == "busy":
                ev.append((float(f[1]), "start", float(f[2])))
            elif (len(f) == 2 and f[0] == "tick") or \
                    (len(f) in (2, 3) and f[0] == "prep"):
                ev.append((float(f[1]), f[0], None))
        ev.sort()
        if a is None and ev:
            a = ev[0][0]
        if b is None and ev:
            b = max(e[2] or e[0] for e in ev)
        self.a, self.b = a, b
        inside = [e for e in ev if a <= e[0] <= b]
        self.spins = [e[2] - e[0] for e in inside if e[1] == "start"]
        has_prep = any(e[1] == "prep" for e in ev)
        self.waits = []
        spans = []  # (from, to) of each wait
        end = None
        for when, kind, until in ev:
            if kind == "prep":
                end = when
                continue
            if end is not None and a <= end and when <= b:
                self.waits.append(when - end)
                spans.append((end, when))
            end = None
            if not has_prep:
                end = until if kind == "start" else when
        # rates over whole iterations (prepare to prepare; for a script,
        # callback to callback), not the window: its edges cut iterations
        marks = [e[0] for e in ev if e[1] == "prep"] if has_prep else \
            [e[0] for e in ev if e[1] in ("start", "tick")]
        marks = [m for m in marks if a <= m <= b]
        span = marks[-1] - marks[0] if len(marks) > 1 else 0
        self.iterations_per_s = (len(marks) - 1) / (span / 1000) \
            if span else 0
        w = [t1 - t0 for t0, t1 in spans
             if marks and marks[0] <= t0 and t1 <= marks[-1]]
        self.busy_share = 1 - sum(w) / span if span else 0
        # the time the thread waited for a CPU over those iterations: in
        # its busy part or as it woke from its wait, the fixture cannot
        # tell which; a tracer counts the first as busy (prep lines with
        # loopfix's run delay only; else 0)
        d0, d1 = (delays.get(marks[0]), delays.get(marks[-1])) \
            if marks else (None, None)
        self.delay_share = (d1 - d0) / span \
            if span and d0 is not None and d1 is not None and d1 >= d0 \
            else 0
        # each whole iteration's time in neither a wait nor a busy
        # callback: what the loop's other phases took (prep lines only)
        self.rest = []
        # and from its first callback to its end: a phase of it lasted no
        # longer (prep lines only)
        self.busy_iter = []
        preps = [e[0] for e in ev if e[1] == "prep"]
        for p0, p1 in zip(preps, preps[1:]):
            mid = [e for e in ev if p0 < e[0] < p1 and e[1] != "prep"]
            if not mid or not (a <= p0 and p1 <= b):
                continue
            spun = sum(e[2] - e[0] for e in mid if e[1] == "start")
            self.rest.append((p1 - p0) - (mid[0][0] - p0) - spun)
            self.busy_iter.append(p1 - mid[0][0])
        # from each busy callback's start to the next one's: a script whose
        # callbacks follow each other with no wait (a setImmediate chain)
        # spends no longer in the phase that runs them
        starts = [e[0] for e in inside if e[1] == "start"]
        self.periods = [t1 - t0 for t0, t1 in zip(starts, starts[1:])]
        # a spin's start and end each have one: end, next start, ...
        sched.sort()
        self.gap_delays = [
            d1 - d0 for (t0, d0), (t1, d1) in zip(sched[1::2], sched[2::2])
            if a <= t0 and t1 <= b and d0 >= 0 and d1 >= 0]

    @staticmethod
    def median(xs):
        check(xs, "the fixture logged nothing to compare with")
        xs = sorted(xs)
        return xs[len(xs) // 2]


def in_container(argv, setup=""):
    """The unshare(1) command line that runs argv as a container would:
    its own pid and mount namespaces, its own /proc, a private tmpfs on
    /tmp. The repository is bound at /mnt first (paths under it in argv
    are rewritten), so the tmpfs hides none of its files when it lives
    under /tmp itself, as a CI clone may."""
    if not shutil.which("unshare"):
        raise Skip("no unshare(1)")
    moved = [a.replace(ROOT, "/mnt") if isinstance(a, str) else a
             for a in argv]
    sh = "mount --bind %s /mnt && mount -t tmpfs tmpfs /tmp && %s exec %s" % (
        ROOT, setup, " ".join(moved))
    return ["/usr/bin/unshare", "--pid", "--mount", "--fork", "--mount-proc",
            "--kill-child", "sh", "-c", sh]
