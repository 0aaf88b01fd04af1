#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""uvscope's test runner.

Like libuv's runner, every test runs in a child process (its own process
group) with a timeout, and a failure prints both sides of what was compared.
The last line is "N passed, N failed, N skipped": a test skips (raises
harness.Skip) only for a reason of the machine, and says which.

    python3 tests/run.py            # everything
    python3 tests/run.py loop_c     # tests whose name contains loop_c
"""
import glob
import importlib
import os
import select
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

# Every tests/test_*.py registers its tests on import.
for _f in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
    importlib.import_module(os.path.basename(_f)[:-3])

SKIP_STATUS = 77  # as automake's test drivers


def run_one(t):
    """Runs t in a child (its own process group) with t.timeout; returns
    (state, message, seconds), state one of "ok", "fail", "skip". The
    child's message is read while it runs, so a long one cannot fill the
    pipe and stall the child into a timeout."""
    start = time.monotonic()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setpgid(0, 0)
        code = 0
        try:
            t.fn()
        except harness.Skip as e:
            os.write(w, str(e).encode())
            code = SKIP_STATUS
        except harness.Fail as e:
            os.write(w, str(e).encode())
            code = 1
        except Exception:
            os.write(w, traceback.format_exc().encode())
            code = 1
        os._exit(code)
    os.close(w)
    deadline = start + t.timeout
    msg = b""
    eof = False
    status = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if not eof:
            rd, _, _ = select.select([r], [], [], min(left, 0.05))
            if rd:
                chunk = os.read(r, 65536)
                if chunk:
                    msg += chunk
                else:
                    eof = True
        else:
            time.sleep(min(left, 0.05))
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
    if status is None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    os.set_blocking(r, False)
    while True:
        try:
            chunk = os.read(r, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        msg += chunk
    os.close(r)
    # anything the test started is ended with it
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    took = time.monotonic() - start
    text = msg.decode(errors="replace").strip()
    if status is None:
        return "fail", ("timed out after %d s\n" % t.timeout) + text, took
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return "ok", text, took
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == SKIP_STATUS:
        return "skip", text, took
    return "fail", text, took


def main():
    pats = sys.argv[1:]
    tests = [t for t in harness.TESTS
             if not pats or any(p in t.name for p in pats)]
    passed = failed = skipped = 0
    for i, t in enumerate(tests, 1):
        state, msg, took = run_one(t)
        if state == "ok":
            passed += 1
            print("ok %d - %s (%.1f s)" % (i, t.name, took), flush=True)
        elif state == "skip":
            skipped += 1
            print("ok %d - %s # SKIP %s" % (i, t.name, msg.splitlines()[0]
                                            if msg else ""), flush=True)
        else:
            failed += 1
            print("not ok %d - %s (%.1f s)" % (i, t.name, took), flush=True)
            for line in msg.splitlines():
                print("#   " + line, flush=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
