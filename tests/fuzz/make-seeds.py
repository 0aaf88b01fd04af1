#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Writes the seed corpora of the fuzz harnesses that are made from this
machine rather than kept by hand: tests/fuzz/corpus/NAME/ for elf, unwind,
maps and layout. The inputs are checked in; run this again only to
refresh them (it needs cc, strip, objdump and a built fixtures tree).

    tests/fuzz/make-seeds.py
"""
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
TRAILER = 256  # as fuzz_unwind.c


def out(name, fname, data):
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data)


def build(tmp, name, flags, strip=None):
    path = os.path.join(tmp, name)
    subprocess.run(["cc", "-Os", "-g0", "-Wl,-z,noseparate-code",
                    "-Wl,--build-id"] + flags +
                   ["-o", path, os.path.join(HERE, "seed_uv.c")], check=True)
    subprocess.run(["strip", strip or "--strip-debug", path], check=True)
    with open(path, "rb") as f:
        return path, f.read()


def call_returns(path):
    """{(caller, callee): offset of the return address} from objdump; the
    first PT_LOAD of the seeds maps file offset 0, so offset = address -
    its address."""
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path],
                         capture_output=True, text=True, check=True).stdout
    base = None
    hdr = subprocess.run(["readelf", "-lW", path], capture_output=True,
                         text=True, check=True).stdout
    for ln in hdr.splitlines():
        f = ln.split()
        if f and f[0] == "LOAD":
            base = int(f[2], 16)
            break
    rets, func, prev = {}, None, None
    for ln in dis.splitlines():
        m = re.match(r"^([0-9a-f]+) <([^>]+)>:", ln)
        if m:
            func = m.group(2)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)", ln)
        if not m:
            continue
        addr = int(m.group(1), 16)
        if prev:
            rets.setdefault(prev, addr - base)
            prev = None
        c = re.search(r"call\s+\S+ <([^>+]+)", ln)
        if c:
            prev = (func, c.group(1).replace("@plt", ""))
    syms = {}
    for ln in subprocess.run(["nm", path], capture_output=True, text=True,
                             check=True).stdout.splitlines():
        f = ln.split()
        if len(f) == 3:
            syms[f[2]] = int(f[0], 16) - base
    return rets, syms


def unwind_seed(image, path):
    """The image, then a sample stopped at the entry of uv__io_poll,
    called from uv_run, called from main (uv_run's frame as gcc -Os
    makes it: rbx pushed and 16 bytes, so main's return address is the
    fifth word)."""
    rets, syms = call_returns(path)
    words = [rets[("uv_run", "uv__io_poll")], 0, 0, 0,
             rets[("main", "uv_run")]]
    words += [0] * ((TRAILER - 16) // 8 - len(words))
    head = struct.pack("<4I", syms["uv__io_poll"], 0, 4, 0)
    return image + head + struct.pack("<%dQ" % len(words), *words)


def maps_of(argv):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        with open("/proc/%d/maps" % p.pid, "rb") as f:
            return f.read()
    finally:
        p.kill()
        p.wait()


def long_line():
    """A mapped file whose path is longer than a line buffer (nested
    directories allow that), ending in what reads as a mapping of its
    own if the line is taken in pieces."""
    head = b"7f0000000000-7f0000001000 r-xp 00000000 fd:01 42                         /"
    fake = b"7f1000000000-7f1000001000 r-xp 00000000 00:00 0 /usr/lib/libuv.so.1"
    pad = b"d/" * ((4399 - len(head)) // 2)
    line = head + pad
    line += b"d" * (4399 - len(line))
    return line + fake + b"\n" + b"7fff00000000-7fff00001000 r--p 00000000 00:00 0 [vvar]\n"


def main():
    tmp = tempfile.mkdtemp()
    try:
        path, so = build(tmp, "seed.so", ["-shared", "-fPIC"])
        out("elf", "seed-so", so)
        out("elf", "seed-stripped-so",
            build(tmp, "stripped.so", ["-shared", "-fPIC"], "--strip-all")[1])
        exe, img = build(tmp, "seed-exe", ["-no-pie"])
        out("elf", "seed-exe", img)
        cet, cimg = build(tmp, "seed-cet", ["-pie", "-fPIE", "-fcf-protection",
                                            "-Wl,-z,ibtplt"])
        out("elf", "seed-cet-pie", cimg)
        out("unwind", "seed-exe-uv_run", unwind_seed(img, exe))
        out("unwind", "seed-so-uv_run", unwind_seed(so, path))
        out("unwind", "seed-cet-uv_run", unwind_seed(cimg, cet))
    finally:
        shutil.rmtree(tmp)
    fix = os.path.join(ROOT, ".output", "fixtures", "loopfix-shared")
    out("maps", "loopfix-shared", maps_of([fix, "idle", "100"]))
    out("maps", "sleep", maps_of(["sleep", "5"]))
    out("maps", "node", maps_of(["node", "-e", "setTimeout(() => {}, 5000)"]))
    out("maps", "long-path", long_line())
    for f in sorted(os.listdir(os.path.join(ROOT, "profiles", "libuv"))):
        out("layout", f, open(os.path.join(ROOT, "profiles", "libuv", f),
                              "rb").read())
    layout_seeds()


def layout_seeds():
    """A profile cut down to what uvscope looks up (quicker to mutate),
    and one with a member past the end of its struct, which must be
    refused (readers add offsets to target addresses unchecked)."""
    with open(os.path.join(ROOT, "profiles", "libuv", "1.46.0.json")) as f:
        p = json.load(f)
    want = {"uv_handle_t": ["handle_queue", "loop", "type", "flags"],
            "uv_loop_t": ["handle_queue", "active_reqs.count", "wq_async",
                          "backend_fd", "time", "internal_fields"],
            "uv_fs_t": ["work_req", "fs_type"],
            "uv_work_t": ["work_cb", "work_req"], "uv_req_t": ["type"],
            "struct uv__work": ["wq", "loop"]}
    p["structs"] = {k: {"size": p["structs"][k]["size"],
                        "fields": {f: p["structs"][k]["fields"][f]
                                   for f in v}}
                    for k, v in want.items()}
    p["enums"] = {k: p["enums"][k] for k in ("uv_req_type", "uv_fs_type")}
    out("layout", "small.json", json.dumps(p, indent=1).encode())
    p["structs"]["uv_loop_t"]["fields"]["backend_fd"]["offset"] = 900
    out("layout", "outside.json", json.dumps(p, indent=1).encode())


if __name__ == "__main__":
    main()
