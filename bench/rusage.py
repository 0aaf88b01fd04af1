#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""rusage.py FILE CMD [ARGS...]: runs CMD, writes the CPU time it and its
waited-for children used (user + system, in ns) to FILE, exits with CMD's
status. bench/run.sh wraps wrk in it to tell wrk's CPU from other load."""
import os
import signal
import sys

out, cmd = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
# Ctrl-C reaches the whole process group: let CMD see it and end, then report.
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda s, f: os.kill(pid, signal.SIGTERM))
while True:
    try:
        _, status, ru = os.wait4(pid, 0)
        break
    except InterruptedError:
        continue
with open(out, "w") as f:
    f.write("%d\n" % int((ru.ru_utime + ru.ru_stime) * 1e9))
sys.exit(os.waitstatus_to_exitcode(status))
