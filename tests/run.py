#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""uvscope's test runner.

Like libuv's runner, every test runs in a child process (its own process
group) with a timeout, and a failure prints both sides of what was compared.
The last line is "N passed, N failed".

    python3 tests/run.py            # everything
    python3 tests/run.py loop_c     # tests whose name contains loop_c
"""
import os
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_blocked  # noqa: E402,F401
import test_ci  # noqa: E402,F401
import test_exit  # noqa: E402,F401
import test_flame  # noqa: E402,F401
import test_cli  # noqa: E402,F401
import test_loop  # noqa: E402,F401
import test_pool  # noqa: E402,F401
import test_profiles  # noqa: E402,F401
import test_ptrace  # noqa: E402,F401
import test_unit  # noqa: E402,F401
import test_why  # noqa: E402,F401


def run_one(t):
    start = time.monotonic()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setpgid(0, 0)
        code = 0
        try:
            t.fn()
        except harness.Fail as e:
            os.write(w, str(e).encode())
            code = 1
        except Exception:
            os.write(w, traceback.format_exc().encode())
            code = 1
        os._exit(code)
    os.close(w)
    deadline = start + t.timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        status = None
    msg = b""
    while True:
        chunk = os.read(r, 65536)
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
    if status is None:
        return False, "timed out after %d s" % t.timeout, took
    ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return ok, msg.decode(errors="replace").strip(), took


def main():
    pats = sys.argv[1:]
    tests = [t for t in harness.TESTS
             if not pats or any(p in t.name for p in pats)]
    passed = failed = 0
    for i, t in enumerate(tests, 1):
        ok, msg, took = run_one(t)
        if ok:
            passed += 1
            print("ok %d - %s (%.1f s)" % (i, t.name, took), flush=True)
        else:
            failed += 1
            print("not ok %d - %s (%.1f s)" % (i, t.name, took), flush=True)
            for line in msg.splitlines():
                print("#   " + line, flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
