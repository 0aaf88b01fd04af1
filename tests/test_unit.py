# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The C unit tests of lib/, built with ASan and UBSan, one test each."""
import glob
import os
import subprocess

from harness import ROOT, Fail, add_test


def unit(path):
    def fn():
        p = subprocess.run([path], capture_output=True, timeout=60,
                           cwd=ROOT)
        if p.returncode != 0:
            raise Fail((p.stdout + p.stderr).decode(errors="replace"))
    return fn


for _src in sorted(glob.glob(os.path.join(ROOT, "tests", "unit", "*.c"))):
    _name = os.path.basename(_src)[:-2]
    add_test("unit_" + _name, unit(os.path.join(ROOT, ".output", "unit",
                                                _name)))
