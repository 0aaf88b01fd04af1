# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""uvscope flame: folded stacks through the SVG and back, speedscope files
against the format's schema, differential graphs, input errors, and the
SVG's script driven in a real browser (headless Chromium)."""
import html
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
import xml.etree.ElementTree as ET
from bisect import bisect_right

from harness import (ROOT, UVSCOPE, UVSCOPE_ASAN, Fail, check, eq,
                     one_line_error, run, test)

SVGNS = "{http://www.w3.org/2000/svg}"
GEN = os.path.join(ROOT, "bench", "genfolded.py")
NODE_FOLDED = os.path.join(ROOT, "tests", "fixtures", "flame-node.folded")
SCHEMA = os.path.join(ROOT, "tests", "fixtures", "speedscope-schema.json")
HIGHLIGHT = "rgb(230,0,230)"
# Names an XML writer must escape, and bytes that are not all ASCII.
HOSTILE = [
    "timers;std::vector<std::pair<int, char>>::operator[](unsigned long);"
    "a&b \"quoted\" 'single' 7",
    "check;caf\u00e9 \u2603;x<y>z]]>end 3",
    "poll;operator new(unsigned long) 11",
]


def tmpdir():
    return tempfile.mkdtemp(prefix="uvs-flame-")


def read_folded(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for ln in f:
            ln = ln.rstrip()
            if not ln:
                continue
            st, c = ln.rsplit(None, 1)
            out[st.rstrip()] = out.get(st.rstrip(), 0) + int(c)
    return out


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def gen(path, *args):
    p = subprocess.run(["python3", GEN] + list(args), capture_output=True,
                       timeout=60)
    check(p.returncode == 0, "genfolded: %s" % p.stderr.decode())
    with open(path, "wb") as f:
        f.write(p.stdout)
        f.write(("\n".join(HOSTILE) + "\n").encode())


def flame(args, binary=UVSCOPE_ASAN):
    rc, out, err = run(["flame"] + args, binary=binary, timeout=60)
    if rc != 0:
        raise Fail("uvscope flame %s: exit %d: %s" % (args, rc, err.strip()))
    eq(err, "", "stderr of uvscope flame")
    return out


def parse_svg(path):
    """The SVG's frames: name, exact samples (data-x, data-n, data-b), the
    rectangle's geometry and fill, and depth from the rows' y."""
    root = ET.parse(path).getroot()
    frames = []
    for g in root.iter(SVGNS + "g"):
        if g.get("class") != "f":
            continue
        title = g.find(SVGNS + "title").text
        rect = g.find(SVGNS + "rect")
        frames.append({
            "name": title.split("\n")[0], "title": title,
            "x": int(g.get("data-x")), "n": int(g.get("data-n")),
            "b": int(g.get("data-b", "-1")),
            "y": float(rect.get("y")), "rx": float(rect.get("x")),
            "w": float(rect.get("width")), "fill": rect.get("fill")})
    rows = sorted({f["y"] for f in frames}, reverse=True)
    for f in frames:
        f["d"] = rows.index(f["y"])
    return root, frames


def tree(frames):
    """Parents by interval containment, one depth up; returns each frame's
    stack, its children, and the self count per stack."""
    by_depth = {}
    for f in frames:
        by_depth.setdefault(f["d"], []).append(f)
    xs = {}
    for d, lst in by_depth.items():
        lst.sort(key=lambda f: f["x"])
        xs[d] = [u["x"] for u in lst]
    for f in frames:
        f["kids"] = []
    for f in frames:
        if f["d"] == 0:
            check(f["name"] == "all", "depth 0 is %r, not all" % f["name"])
            f["path"] = []
            continue
        ups = by_depth[f["d"] - 1]
        i = bisect_right(xs[f["d"] - 1], f["x"]) - 1
        check(i >= 0 and ups[i]["x"] + ups[i]["n"] >= f["x"] + f["n"],
              "frame %r at %d has no parent" % (f["name"], f["x"]))
        f["parent"] = ups[i]
        ups[i]["kids"].append(f)
    selfs = {}
    for f in sorted(frames, key=lambda f: f["d"]):
        if f["d"]:
            f["path"] = f["parent"]["path"] + [f["name"]]
        own = f["n"] - sum(k["n"] for k in f["kids"])
        check(own >= 0, "children of %r outweigh it" % f["name"])
        if own and f["d"]:
            st = ";".join(f["path"])
            check(st not in selfs, "stack %r drawn twice" % st)
            selfs[st] = own
    return selfs


@test(timeout=60)
def flame_svg_roundtrip():
    d = tmpdir()
    src, svg = os.path.join(d, "in.folded"), os.path.join(d, "out.svg")
    gen(src, "--samples", "200000", "--stacks", "3000", "--depth", "40",
        "--seed", "7")
    want = read_folded(src)
    total = sum(want.values())
    flame(["--min-width", "0.000001", "-o", svg, src])
    root, frames = parse_svg(svg)
    W, pad = int(root.get("data-width")), int(root.get("data-pad"))
    eq(int(root.get("data-total")), total, "total in the SVG")
    check("0 frames narrower" in open(svg, encoding="utf-8").read(),
          "frames left out though the minimum width is tiny")
    got = tree(frames)
    missing = set(want) - set(got)
    extra = set(got) - set(want)
    check(not missing and not extra,
          "stacks differ: %d missing (%r...), %d extra (%r...)"
          % (len(missing), sorted(missing)[:2], len(extra),
             sorted(extra)[:2]))
    for st, c in want.items():
        if got[st] != c:
            raise Fail("stack %r: %d samples in the SVG, %d in the input"
                       % (st, got[st], c))
    # widths agree with counts: each frame, and each stack's own part
    scale = (W - 2 * pad) / total
    for f in frames:
        if abs(f["w"] - f["n"] * scale) > 0.006 or \
                abs(f["rx"] - (pad + f["x"] * scale)) > 0.006:
            raise Fail("frame %r: x %.3f width %.3f, expected %.3f %.3f"
                       % (f["name"], f["rx"], f["w"], pad + f["x"] * scale,
                          f["n"] * scale))
        own_w = f["w"] - sum(k["w"] for k in f["kids"])
        own = f["n"] - sum(k["n"] for k in f["kids"])
        if abs(own_w - own * scale) > 0.006 * (len(f["kids"]) + 1):
            raise Fail("frame %r: own width %.3f for %d samples"
                       % (f["name"], own_w, own))
    # hover text: the name, the count and the share
    for f in frames[:50]:
        pct = "%.2f%%" % (100.0 * f["n"] / total)
        check("{:,}".format(f["n"]) in f["title"] and pct in f["title"],
              "title %r lacks count or %s" % (f["title"], pct))
    # with the default minimum, exactly the frames under 0.1 px go
    narrow = sum(1 for f in frames if f["n"] * scale < 0.1)
    flame(["-o", svg, src])
    text = open(svg, encoding="utf-8").read()
    m = re.search(r">(\d+) frames narrower than 0.1 px not drawn<", text)
    check(m, "no pruning note in the SVG")
    eq(int(m.group(1)), narrow, "frames said to be left out")
    _, kept = parse_svg(svg)
    eq(len(kept), len(frames) - narrow, "frames drawn with pruning")
    check(all(f["n"] * scale >= 0.1 for f in kept), "a narrow frame drawn")
    shutil.rmtree(d)


@test(timeout=60)
def flame_speedscope_schema():
    import jsonschema
    d = tmpdir()
    src, out = os.path.join(d, "in.folded"), os.path.join(d, "out.json")
    gen(src, "--samples", "50000", "--stacks", "800", "--seed", "3")
    want = read_folded(src)
    flame(["--speedscope", "--title", "run \"1\"", "-o", out, src])
    with open(out, encoding="utf-8") as f:
        doc = json.load(f)
    with open(SCHEMA) as f:
        schema = json.load(f)
    try:
        jsonschema.Draft7Validator(schema).validate(doc)
    except jsonschema.ValidationError as e:
        raise Fail("speedscope file does not follow the schema: %s at %s"
                   % (e.message[:200], list(e.absolute_path)))
    # what the schema cannot say
    frames = [f["name"] for f in doc["shared"]["frames"]]
    eq(len(frames), len(set(frames)), "distinct frames")
    eq(len(doc["profiles"]), 1, "profiles")
    p = doc["profiles"][0]
    eq(p["type"], "sampled", "profile type")
    eq(p["name"], "run \"1\"", "profile name")
    eq(len(p["samples"]), len(p["weights"]), "samples vs weights")
    eq(p["endValue"] - p["startValue"], sum(want.values()), "endValue")
    got = {}
    for s, w in zip(p["samples"], p["weights"]):
        check(all(0 <= i < len(frames) for i in s), "frame index range")
        st = ";".join(frames[i] for i in s)
        got[st] = got.get(st, 0) + w
    eq(got, want, "stacks from speedscope")
    # the empty set is a valid file too
    write(os.path.join(d, "empty.folded"), "\n")
    flame(["--speedscope", "-o", out, os.path.join(d, "empty.folded")])
    with open(out) as f:
        jsonschema.Draft7Validator(schema).validate(json.load(f))
    shutil.rmtree(d)


def _share_of(folded, prefix):
    total = sum(folded.values())
    n = sum(c for st, c in folded.items()
            if st == prefix or st.startswith(prefix + ";"))
    return n, (n / total if total else 0)


@test(timeout=60)
def flame_diff():
    d = tmpdir()
    base = read_folded(NODE_FOLDED)
    run_ = {}
    for st, c in base.items():
        if "escapeHtml" in st:
            continue  # gone in run
        run_[st] = c * (4 if "burnCpu" in st else 1)
    run_["timers;uv__run_timers;brandNew"] = 500
    bp, rp = os.path.join(d, "base.folded"), os.path.join(d, "run.folded")
    write(bp, "".join("%s %d\n" % kv for kv in base.items()))
    write(rp, "".join("%s %d\n" % kv for kv in run_.items()))
    svg = os.path.join(d, "diff.svg")
    flame(["--diff", bp, "-o", svg, rp])
    _, frames = parse_svg(svg)
    tree(frames)
    reds = blues = 0
    for f in frames:
        if f["d"] == 0:
            continue
        pre = ";".join(f["path"])
        n, rs = _share_of(run_, pre)
        b, bs = _share_of(base, pre)
        eq((f["n"], f["b"]), (n, b), "run and base samples of %s" % pre)
        r, g, bl = (int(f["fill"][i:i + 2], 16) for i in (1, 3, 5))
        if rs > bs + 1e-9:
            check(r == 255 and g == bl and g < 255,
                  "%s grew %.4f -> %.4f but is %s" % (pre, bs, rs,
                                                       f["fill"]))
            reds += 1
        elif rs < bs - 1e-9:
            check(bl == 255 and r == g and r < 255,
                  "%s shrank %.4f -> %.4f but is %s" % (pre, bs, rs,
                                                         f["fill"]))
            blues += 1
        check("base {:,}".format(b) in f["title"] and
              "run {:,}".format(n) in f["title"] and "change" in f["title"],
              "diff title of %s: %r" % (pre, f["title"]))
    check(reds and blues, "reds %d blues %d" % (reds, blues))
    names = {f["name"] for f in frames}
    check(not any("escapeHtml" in n for n in names), "base-only drawn")
    check("brandNew" in names, "frame new in run not drawn")
    text = open(svg, encoding="utf-8").read()
    check(" 1 frames only in base" in text,
          "base-only frames not counted: %s"
          % re.findall(r"\d+ frames only in base", text))
    shutil.rmtree(d)


@test(timeout=60)
def flame_errors():
    d = tmpdir()
    cases = [("a;b 3\nc;d 4\nthis line has no count\n", ":3: expected"),
             ("a;b 3\r\na;;b 4\n", ":2: empty frame"),
             ("a;b 3\na;b 1.5\n", ":2: expected a whole number"),
             ("\x7fELF\x02\x01\x00\x00 1\n", ":1: expected folded stacks")]
    for i, (text, what) in enumerate(cases):
        p = os.path.join(d, "bad%d.folded" % i)
        with open(p, "wb") as f:
            f.write(text.encode())
        out = os.path.join(d, "out%d.svg" % i)
        rc, so, err = run(["flame", "-o", out, p], binary=UVSCOPE_ASAN)
        line = one_line_error(rc, err, "bad folded file %d" % i)
        check(line.startswith("uvscope: %s%s" % (p, what)),
              "%r does not name %s%s" % (line, p, what))
        check(not os.path.exists(out), "output left after an error")
    good = os.path.join(d, "good.folded")
    write(good, "a;b 1\n")
    for args, what in (
            (["flame"], "no input"),
            (["flame", os.path.join(d, "absent.folded")], "missing file"),
            (["flame", "--speedscope", "--diff", good, good],
             "speedscope and diff"),
            (["flame", "--frob", good], "unknown option"),
            (["flame", "--width", "wide", good], "bad width"),
            (["flame", good, "-o"], "-o without a value"),
            (["flame", "-o", os.path.join(d, "no", "dir.svg"), good],
             "unwritable output"),
            (["flame", "--diff", os.path.join(d, "nobase"), good],
             "missing base")):
        rc, so, err = run(args, binary=UVSCOPE_ASAN)
        one_line_error(rc, err, what)
        eq(so, "", "stdout for %s" % what)
    rc, so, err = run(["flame", "--help"])
    eq(rc, 0, "flame --help")
    check(so.rstrip().splitlines()[-2].strip() == "" or "EXAMPLES" in so,
          "no EXAMPLES")
    check(so.rstrip().splitlines()[-1].strip().startswith(("uvscope",
                                                           "perf")),
          "help should end with examples")
    for ln in so.splitlines():
        check(len(ln) <= 80, "help line over 80 columns: %r" % ln)
    shutil.rmtree(d)


@test(timeout=60)
def flame_stdin_and_merge():
    d = tmpdir()
    a, b = os.path.join(d, "a.folded"), os.path.join(d, "b.folded")
    write(a, "timers;f;g 5\npoll;h 2\n")
    write(b, "timers;f;g 3\r\ncheck;i 1   \n")
    rc, out, err = run(["flame", a, "-", b], binary=UVSCOPE_ASAN,
                       input=b"poll;h 10\n")
    eq(rc, 0, "exit status (%s)" % err.strip())
    svg = os.path.join(d, "x.svg")
    write(svg, out)
    _, frames = parse_svg(svg)
    eq(tree(frames), {"timers;f;g": 8, "poll;h": 12, "check;i": 1},
       "stacks merged from two files and stdin")
    shutil.rmtree(d)


# ---- the browser ----

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>uvscope flame test</title></head>
<body style="margin:0">
%(svg)s
<pre id="result"></pre>
<script>
var errors = [];
window.addEventListener('error', function (e) { errors.push(String(e.message)); });
function run() {
  var svg = document.querySelector('svg.uvs-flame'), out = {errors: errors};
  function frames() { return Array.prototype.slice.call(svg.querySelectorAll('g.f')); }
  function name(g) { return g.querySelector('title').textContent.split('\\n')[0]; }
  function state() {
    return frames().map(function (g) {
      var r = g.querySelector('rect'), t = g.querySelector('text');
      return {name: name(g), x: +r.getAttribute('x'), w: +r.getAttribute('width'),
        n: +g.dataset.n, hidden: getComputedStyle(g).display === 'none',
        faded: getComputedStyle(g).opacity, cls: g.getAttribute('class'),
        fill: r.getAttribute('fill'), label: t ? t.textContent : ''};
    });
  }
  function click(el) { el.dispatchEvent(new MouseEvent('click', {bubbles: true})); }
  var target = frames().filter(function (g) { return name(g) === %(target)s; })[0];
  out.found = !!target;
  out.before = state();
  target.querySelector('rect').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
  out.details = svg.querySelector('.uvs-details').textContent;
  click(target.querySelector('rect'));
  out.zoomed = state();
  out.unzoomShown = getComputedStyle(svg.querySelector('.uvs-unzoom')).opacity;
  window.prompt = function () { return %(term)s; };
  click(svg.querySelector('.uvs-search'));
  out.searched = state();
  out.matched = svg.querySelector('.uvs-matched').textContent;
  out.searchButton = svg.querySelector('.uvs-search').textContent;
  if (location.hash !== '#shot') {
    click(svg.querySelector('.uvs-unzoom'));
    out.reset = state();
    click(svg.querySelector('.uvs-search'));
    out.unsearched = state();
    out.unzoomHidden = getComputedStyle(svg.querySelector('.uvs-unzoom')).opacity;
  }
  document.getElementById('result').textContent = JSON.stringify(out);
}
try { run(); } catch (e) {
  document.getElementById('result').textContent = 'EXCEPTION ' + e + ' ' + e.stack;
}
</script>
</body></html>
"""


def chromium_bin():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(c)
        if p:
            return p
    raise Fail("chromium is not installed (scripts/deps.sh installs it)")


def chromium(args, profile):
    argv = [chromium_bin(), "--headless", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--hide-scrollbars", "--mute-audio",
            "--user-data-dir=" + profile] + args
    p = subprocess.run(argv, capture_output=True, timeout=25)
    if p.returncode != 0:
        raise Fail("chromium %s: exit %d: %s" % (
            args, p.returncode, p.stderr.decode(errors="replace")[-800:]))
    return p.stdout.decode(errors="replace")


def png_pixels(path):
    """Decodes a PNG (8-bit RGB or RGBA, not interlaced) to rows of bytes."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % path)
    pos, idat = 8, b""
    while pos < len(data):
        ln, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + ln]
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB",
                                                                body)
        elif typ == b"IDAT":
            idat += body
        pos += 12 + ln
    check(depth == 8 and ctype in (2, 6) and not interlace,
          "PNG kind %d/%d/%d" % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        rows.append(line)
        prev = line
    return w, h, bpp, rows


@test(timeout=60)
def flame_browser():
    d = tmpdir()
    svg = os.path.join(d, "node.svg")
    flame(["--title", "browser test", "-o", svg, NODE_FOLDED],
          binary=UVSCOPE)
    folded = read_folded(NODE_FOLDED)
    total = sum(folded.values())
    target = "LazyCompile:*listOnTimeout node:internal/timers:529"
    term = "burnCpu|fib"
    body = open(svg, encoding="utf-8").read()
    body = body[body.index("<svg"):]  # no XML declaration inside HTML
    page = os.path.join(d, "page.html")
    write(page, PAGE % {"svg": body, "target": json.dumps(target),
                        "term": json.dumps(term)})
    root, frames = parse_svg(svg)
    tree(frames)
    W, pad = int(root.get("data-width")), int(root.get("data-pad"))
    full = W - 2 * pad

    dom = chromium(["--virtual-time-budget=3000", "--dump-dom",
                    "file://" + page], os.path.join(d, "profile"))
    m = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    check(m and m.group(1), "no result in the page: %s" % dom[-500:])
    text = html.unescape(m.group(1))
    check(not text.startswith("EXCEPTION"), "page script: %s" % text)
    res = json.loads(text)
    eq(res["errors"], [], "script errors in the page")
    check(res["found"], "no frame named %s" % target)

    # before: everything drawn at its own width
    eq(len(res["before"]), len(frames), "frames in the DOM")
    check(not any(f["hidden"] for f in res["before"]), "hidden before zoom")
    # hover
    check(res["details"].startswith(target) and "samples" in res["details"]
          and "%" in res["details"], "hover details: %r" % res["details"])

    # zoom: the clicked frame fills the width, its callees scale with it,
    # its callers span the width faded, everything else is hidden
    # the DOM lists the frames in the file's order
    eq([f["name"] for f in res["zoomed"]], [f["name"] for f in frames],
       "frames in the DOM after zoom")
    ti = [f["name"] for f in frames].index(target)
    tgt, zt = frames[ti], res["zoomed"][ti]
    check(abs(zt["x"] - pad) < 0.01 and abs(zt["w"] - full) < 0.01,
          "zoomed frame at x %.2f width %.2f, expected %d and %d"
          % (zt["x"], zt["w"], pad, full))
    inside = outside = callers = 0
    widened = False
    for i, f in enumerate(frames):
        s = res["zoomed"][i]
        lo, hi = tgt["x"], tgt["x"] + tgt["n"]
        if f["d"] < tgt["d"] and f["x"] <= lo and hi <= f["x"] + f["n"]:
            callers += 1
            check(not s["hidden"] and abs(s["w"] - full) < 0.01 and
                  float(s["faded"]) < 1,
                  "caller %s after zoom: %r" % (f["name"], s))
        elif f["d"] >= tgt["d"] and lo <= f["x"] and f["x"] + f["n"] <= hi:
            inside += 1
            want = f["n"] * full / tgt["n"]
            check(not s["hidden"] and abs(s["w"] - want) < 0.02 and
                  pad - 0.01 <= s["x"] <= W - pad + 0.01,
                  "callee %s: width %.2f, expected %.2f"
                  % (f["name"], s["w"], want))
            if len(s["label"]) > len(res["before"][i]["label"]):
                widened = True
        else:
            outside += 1
            check(s["hidden"], "%s outside the zoomed frame is shown"
                  % f["name"])
    check(callers >= 6 and inside >= 4 and outside >= 10,
          "zoom classes: %d callers, %d inside, %d outside"
          % (callers, inside, outside))
    check(widened, "no callee's label grew with the zoom")
    check(float(res["unzoomShown"]) == 1, "Reset Zoom not shown")

    # search: matches highlighted, their share (each sample once) shown
    rx = re.compile(term)
    hits = 0
    for s in res["searched"]:
        want = rx.search(s["name"]) is not None and s["name"] != "all"
        check((s["fill"] == HIGHLIGHT) == want,
              "%s: fill %s, match %s" % (s["name"], s["fill"], want))
        hits += want
    check(hits >= 2, "search matched %d frames" % hits)
    n = sum(c for st, c in folded.items()
            if any(rx.search(fr) for fr in st.split(";")))
    pct = "%.2f%%" % (100.0 * n / total)
    check(res["matched"].startswith("Matched: " + pct),
          "matched %r, expected %s" % (res["matched"], pct))
    eq(res["searchButton"], "Reset Search", "search button after a search")

    # Reset Zoom and Reset Search bring back the first picture
    for a, b in zip(res["before"], res["reset"]):
        check(not b["hidden"] and abs(a["x"] - b["x"]) < 0.01 and
              abs(a["w"] - b["w"]) < 0.01 and "a" not in b["cls"].split(),
              "%s after reset: %r vs %r" % (a["name"], b, a))
    for a, b in zip(res["before"], res["unsearched"]):
        eq(b["fill"], a["fill"], "fill of %s after Reset Search" % a["name"])
    eq(float(res["unzoomHidden"]), 0, "Reset Zoom still shown")

    # the SVG opened on its own (an XML document, not inlined in HTML)
    probe = """<script><![CDATA[
(function () {
  var svg = document.documentElement, t = null, gs = svg.querySelectorAll('g.f');
  for (var i = 0; i < gs.length; i++)
    if (gs[i].querySelector('title').textContent.split('\\n')[0] === %s) t = gs[i];
  t.querySelector('rect').dispatchEvent(new MouseEvent('click', {bubbles: true}));
  window.prompt = function () { return 'fib'; };
  svg.querySelector('.uvs-search').dispatchEvent(new MouseEvent('click', {bubbles: true}));
  svg.setAttribute('data-result', t.querySelector('rect').getAttribute('width') +
    '|' + svg.querySelector('.uvs-matched').textContent);
})();
]]></script>
</svg>
""" % json.dumps(target)
    alone = os.path.join(d, "alone.svg")
    write(alone, open(svg, encoding="utf-8").read().replace("</svg>\n",
                                                            probe))
    dom = chromium(["--virtual-time-budget=3000", "--dump-dom",
                    "file://" + alone], os.path.join(d, "profile"))
    m = re.search(r'data-result="([^"]*)"', dom)
    check(m, "standalone SVG: the script did not run: %s" % dom[:300])
    width, said = html.unescape(m.group(1)).split("|")
    check(abs(float(width) - full) < 0.01,
          "standalone zoom: width %s, expected %d" % (width, full))
    n = sum(c for st, c in folded.items() if "fib" in st)
    check(said.startswith("Matched: %.2f%%" % (100.0 * n / total)),
          "standalone search: %r" % said)

    # the picture: zoomed and searched, as a person would see it
    height = int(root.get("height"))
    shot = os.path.join(ROOT, ".output", "flame-browser.png")
    os.makedirs(os.path.dirname(shot), exist_ok=True)
    chromium(["--virtual-time-budget=3000", "--screenshot=" + shot,
              "--window-size=%d,%d" % (W, height), "file://" + page + "#shot"],
             os.path.join(d, "profile"))
    w, h, bpp, rows = png_pixels(shot)
    eq((w, h), (W, height), "screenshot size")
    magenta = sum(1 for row in rows for i in range(0, w * bpp, bpp)
                  if row[i] > 200 and row[i + 1] < 40 and row[i + 2] > 200)
    check(magenta > 2000, "only %d highlighted pixels" % magenta)
    # the zoomed frame's row is covered from edge to edge
    y = int(tgt["y"] + 4)
    bg = [x for x in range(pad + 1, W - pad - 1)
          if tuple(rows[y][x * bpp:x * bpp + 3]) == (0xf8, 0xf8, 0xf4)]
    check(not bg, "zoomed row has background at x=%s" % bg[:5])
    shutil.rmtree(d)
