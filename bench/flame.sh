#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The flame graph target (SPEC.md, "Performance targets"): one million
# samples render in under one second. bench/genfolded.py writes a realistic
# folded set (FLAME_SAMPLES samples over FLAME_STACKS distinct stacks, depth
# up to FLAME_DEPTH, rooted at loop phases); uvscope flame renders it to SVG
# and to speedscope JSON FLAME_RUNS times each; the median and best wall
# times are printed, with the sizes and frames drawn.
#
# A reference renderer is timed on the same file when one can be run:
# Brendan Gregg's flamegraph.pl, from FLAMEGRAPH_PL or the PATH (Debian
# packages none: 'apt-cache search flamegraph' finds nothing), or inferno's
# inferno-flamegraph from the PATH.
#
# Progress to stderr, the table to stdout, the numbers to
# bench/flame-results.json. Exit status 0 whether the target is met or not;
# 1 if a render failed; 2 if the bench cannot run here.
set -u

cd "$(dirname "$0")/.." || exit 2
SAMPLES=${FLAME_SAMPLES:-1000000}
STACKS=${FLAME_STACKS:-20000}
DEPTH=${FLAME_DEPTH:-60}
RUNS=${FLAME_RUNS:-5}
UVSCOPE=./uvscope
OUT=bench/flame-results.json

say() { echo "bench/flame: $*" >&2; }
[ -x "$UVSCOPE" ] || { say "build uvscope first (make uvscope)"; exit 2; }
TMP=$(mktemp -d /tmp/uvs-bench-flame.XXXXXX) || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM

say "generating $SAMPLES samples over $STACKS stacks, depth <= $DEPTH"
python3 bench/genfolded.py --samples "$SAMPLES" --stacks "$STACKS" \
	--depth "$DEPTH" > "$TMP/in.folded" || exit 2

# Wall seconds of one run of "$@", output to $TMP/out; empty on failure.
timed() {
	python3 - "$@" <<'EOF'
import subprocess, sys, time
t = time.monotonic()
with open(sys.argv[1], "wb") as out:
    p = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.PIPE)
took = time.monotonic() - t
if p.returncode:
    sys.stderr.write(p.stderr.decode(errors="replace")[-400:])
    sys.exit(1)
print("%.4f" % took)
EOF
}

# Runs "$@" $RUNS times; prints "median best" seconds.
bench() {
	name=$1
	shift
	: > "$TMP/times"
	i=1
	while [ $i -le "$RUNS" ]; do
		t=$(timed "$TMP/out.$name" "$@") || { say "$name failed"; return 1; }
		echo "$t" >> "$TMP/times"
		say "$name run $i: $t s"
		i=$((i + 1))
	done
	sort -n "$TMP/times" | awk '{ v[NR] = $1 } END {
		printf "%s %s\n", v[int((NR + 1) / 2)], v[1] }'
}

fail=0
svg=$(bench svg "$UVSCOPE" flame "$TMP/in.folded") || fail=1
ss=$(bench speedscope "$UVSCOPE" flame --speedscope "$TMP/in.folded") ||
	fail=1

ref=${FLAMEGRAPH_PL:-$(command -v flamegraph.pl || true)}
refname=
refres=
if [ -n "$ref" ] && [ -e "$ref" ]; then
	refname="flamegraph.pl ($ref)"
	refres=$(bench ref perl "$ref" "$TMP/in.folded") || refres=
elif command -v inferno-flamegraph > /dev/null 2>&1; then
	refname="inferno-flamegraph"
	refres=$(bench ref inferno-flamegraph "$TMP/in.folded") || refres=
else
	say "no reference renderer here: Debian packages no flamegraph.pl or" \
		"inferno; set FLAMEGRAPH_PL=/path/to/flamegraph.pl to compare"
fi

python3 - "$TMP" "$SAMPLES" "$STACKS" "$DEPTH" "$RUNS" "$svg" "$ss" \
	"$refname" "$refres" "$OUT" <<'EOF'
import json, os, re, subprocess, sys
tmp, samples, stacks, depth, runs, svg, ss, refname, refres, out = sys.argv[1:]
def pair(s):
    return [float(v) for v in s.split()] if s else None
svg, ss, ref = pair(svg), pair(ss), pair(refres)
text = open(os.path.join(tmp, "out.svg"), encoding="utf-8").read() \
    if svg else ""
m = re.search(r">(\d+) frames narrower than ([\d.]+) px not drawn<", text)
res = {
    "samples": int(samples), "stacks": int(stacks), "depth": int(depth),
    "runs": int(runs),
    "folded_bytes": os.path.getsize(os.path.join(tmp, "in.folded")),
    "svg_s": svg, "svg_bytes": len(text.encode()),
    "svg_frames": text.count('<g class="f"'),
    "svg_pruned": int(m.group(1)) if m else None,
    "speedscope_s": ss,
    "reference": refname or None, "reference_s": ref,
    "target_s": 1.0,
    "cpu": subprocess.run(["sh", "-c", "sed -n 's/^model name[[:space:]]*: "
                           "//p' /proc/cpuinfo | head -1"],
                          capture_output=True, text=True).stdout.strip(),
    "uvscope_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                     capture_output=True,
                                     text=True).stdout.strip(),
}
with open(out, "w") as f:
    json.dump(res, f, indent=1)
print("flame graph: %s samples, %s distinct stacks (depth <= %s), "
      "%.1f MB folded" % ("{:,}".format(res["samples"]), res["stacks"],
                          res["depth"], res["folded_bytes"] / 1e6))
print("%-28s %10s %10s  %s" % ("RENDER", "MEDIAN s", "BEST s", "NOTE"))
if svg:
    print("%-28s %10.3f %10.3f  %s (target < 1 s), %.1f MB, %d frames, "
          "%s narrower than %s px left out"
          % ("uvscope flame (SVG)", svg[0], svg[1],
             "MET" if svg[0] < 1 else "MISSED", res["svg_bytes"] / 1e6,
             res["svg_frames"], res["svg_pruned"], m.group(2) if m else "?"))
if ss:
    print("%-28s %10.3f %10.3f" % ("uvscope flame --speedscope", ss[0],
                                     ss[1]))
if ref:
    print("%-28s %10.3f %10.3f  uvscope is %.1fx faster"
          % (refname[:28], ref[0], ref[1], ref[0] / svg[0] if svg else 0))
else:
    print("%-28s %10s %10s  none runnable here" % ("reference", "-", "-"))
EOF
exit $fail
