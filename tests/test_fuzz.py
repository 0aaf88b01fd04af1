# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""libFuzzer on every parser of untrusted input, one test a harness: each
tests/fuzz/fuzz_NAME.c (built as .output/fuzz_NAME) runs for a bounded
time from its seeds in tests/fuzz/corpus/NAME/ and fails on any crash,
leak, undefined behaviour, hang or runaway memory, naming the input that
did it (kept under .output/fuzz-crashes/).

UVSCOPE_FUZZ_SECONDS sets the time of each (10 unless told: `make check`;
`make fuzz` gives them longer); UVSCOPE_FUZZ_KEEP=1 keeps what they find
in .output/fuzz-corpus/NAME/ for the next run, instead of a copy that is
thrown away (the tree is never written)."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

from harness import ROOT, Fail, add_test

SECONDS = int(os.environ.get("UVSCOPE_FUZZ_SECONDS", "10"))
KEEP = os.environ.get("UVSCOPE_FUZZ_KEEP") == "1"
OUT = os.path.join(ROOT, ".output")


def seeds(name):
    """The seed directories of a harness: corpus/NAME, and corpus/fuzz_NAME
    for one that spells it so."""
    return [d for d in (os.path.join(ROOT, "tests", "fuzz", "corpus", n)
                        for n in (name, "fuzz_" + name)) if os.path.isdir(d)]


def fuzz(name):
    def fn():
        binary = os.path.join(OUT, "fuzz_" + name)
        if not os.access(binary, os.X_OK):
            raise Fail("%s is not built (make fuzz-build)" % binary)
        tmp = tempfile.mkdtemp()
        try:
            if KEEP:
                work = os.path.join(OUT, "fuzz-corpus", name)
                os.makedirs(work, exist_ok=True)
            else:
                work = os.path.join(tmp, "corpus")
                os.makedirs(work)
            # libFuzzer adds what it finds to the first directory only
            for d in seeds(name):
                for f in os.listdir(d):
                    shutil.copy(os.path.join(d, f), work)
            crashes = os.path.join(OUT, "fuzz-crashes")
            os.makedirs(crashes, exist_ok=True)
            prefix = os.path.join(crashes, name + "-")
            p = subprocess.run(
                [binary, "-max_total_time=%d" % SECONDS, "-timeout=10",
                 "-rss_limit_mb=2048", "-print_final_stats=1",
                 "-artifact_prefix=" + prefix, work],
                capture_output=True, cwd=tmp, timeout=SECONDS + 120)
            err = p.stderr.decode(errors="replace")
            found = re.findall(r"Test unit written to (\S+)", err)
            if p.returncode != 0 or found:
                raise Fail("fuzz_%s: exit status %d; the input: %s\n"
                           "reproduce: %s %s\n%s"
                           % (name, p.returncode, ", ".join(found) or "?",
                              binary, found[0] if found else "",
                              err[-4000:]))
            m = re.search(r"stat::number_of_executed_units:\s*(\d+)", err)
            if not m or "Done" not in err:
                raise Fail("fuzz_%s did not finish: %s" % (name, err[-1000:]))
            print("# fuzz_%s: %s executions in %d s" % (name, m.group(1),
                                                        SECONDS))
            sys.stdout.flush()
        finally:
            shutil.rmtree(tmp)
    return fn


for _src in sorted(glob.glob(os.path.join(ROOT, "tests", "fuzz",
                                          "fuzz_*.c"))):
    _name = os.path.basename(_src)[len("fuzz_"):-len(".c")]
    add_test("fuzz_" + _name, fuzz(_name), timeout=SECONDS + 150)
