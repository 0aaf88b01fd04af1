#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The pool target: on a Node HTTP server that stats a file in the thread
# pool for every request, `uvscope pool` costs the server at most 3% of its
# requests per second (ratio >= 0.97). `uvscope blocked` (threshold 20 ms,
# 997 Hz samples, sched_switch) is measured on the same server beside it.
#
# bench/server.js in fs mode runs pinned to CPU POOL_SERVER_CPU (1), with
# its thread pool; wrk and uvscope are pinned to CPU POOL_LOAD_CPU (0).
# After a warm-up, rounds alternate, in rotating order: baseline (nothing
# attached), pool (uvscope pool, default budget), blocked (uvscope
# blocked) and, with POOL_EXACT=1, exact (uvscope pool --exact: every task
# traced, whatever it costs). The
# ratio is the median requests/s with the tool over the median without;
# the baseline's own noise (MAD / median) is printed beside it.
#
# Table on stdout, progress on stderr, numbers in bench/pool-results.json.
# Exit 0 whether the target is met or not; 1 if a measurement failed; 2 if
# the bench cannot run here.
set -u

cd "$(dirname "$0")/.." || exit 2
ROUNDS=${POOL_ROUNDS:-5}
SECS=${POOL_SECS:-5}
WARMUP=${POOL_WARMUP:-10}
SERVER_CPU=${POOL_SERVER_CPU:-1}
LOAD_CPU=${POOL_LOAD_CPU:-0}
NODE=${POOL_NODE:-/usr/bin/node}
CONFIGS=${POOL_CONFIGS:-baseline pool blocked}
[ "${POOL_EXACT:-0}" = 1 ] && CONFIGS="$CONFIGS exact"
OUT=bench/pool-results.json

say() { echo "bench/pool: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root"; exit 2; }
[ -x ./uvscope ] || { say "build uvscope first (make uvscope)"; exit 2; }
command -v wrk >/dev/null || { say "wrk missing (sh scripts/deps.sh)"; exit 2; }
TMP=$(mktemp -d /tmp/uvs-bench-pool.XXXXXX) || exit 2
SERVER=
cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

taskset -c "$SERVER_CPU" "$NODE" bench/server.js 0 fs > "$TMP/server.out" &
SERVER=$!
i=0
until grep -q '^listening' "$TMP/server.out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { say "server did not start"; exit 1; }
	sleep 0.1
done
URL=http://127.0.0.1:$(awk '{ print $2; exit }' "$TMP/server.out")/
say "server pid $SERVER (fs.stat per request) on CPU $SERVER_CPU; warming up ${WARMUP} s"
taskset -c "$LOAD_CPU" wrk -t1 -c32 -d"${WARMUP}"s "$URL" > /dev/null 2>&1

: > "$TMP/raw"
n=$(echo $CONFIGS | wc -w)
r=1
while [ $r -le "$ROUNDS" ]; do
	order=$(echo $CONFIGS | awk -v k=$(((r - 1) % n)) '{
		for (i = 0; i < NF; i++) printf "%s ", $((i + k) % NF + 1) }')
	for cfg in $order; do
		tool=
		case $cfg in
		pool) taskset -c "$LOAD_CPU" ./uvscope pool --json -p "$SERVER" \
			-d $((SECS + 2)) > "$TMP/$cfg.$r.json" 2> "$TMP/$cfg.$r.err" &
		      tool=$! ;;
		blocked) taskset -c "$LOAD_CPU" ./uvscope blocked --json \
			-p "$SERVER" -d $((SECS + 2)) > "$TMP/$cfg.$r.json" \
			2> "$TMP/$cfg.$r.err" &
		       tool=$! ;;
		exact) taskset -c "$LOAD_CPU" ./uvscope pool --exact --json \
			-p "$SERVER" -d $((SECS + 2)) > "$TMP/$cfg.$r.json" \
			2> "$TMP/$cfg.$r.err" &
		       tool=$! ;;
		esac
		sleep 0.8
		c0=$(cat /proc/"$SERVER"/task/*/schedstat | awk '{ s += $1 } END { print s }')
		taskset -c "$LOAD_CPU" wrk -t1 -c32 -d"$SECS"s "$URL" > "$TMP/wrk" 2>&1
		c1=$(cat /proc/"$SERVER"/task/*/schedstat | awk '{ s += $1 } END { print s }')
		rps=$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk")
		reqs=$(awk '/ requests in / { print $1 }' "$TMP/wrk")
		if [ -n "$tool" ]; then
			wait "$tool" || { say "$cfg failed:"; cat "$TMP/$cfg.$r.err" >&2; exit 1; }
		fi
		[ -n "$rps" ] || { say "wrk gave no result"; exit 1; }
		say "round $r $cfg: $rps requests/s"
		us=$(python3 -c "print(($c1 - $c0) / 1e3 / $reqs)")
		printf '%s\t%s\t%s\t%s\t%s\n' "$cfg" "$r" "$rps" "$TMP/$cfg.$r.json" \
			"$us" >> "$TMP/raw"
	done
	r=$((r + 1))
done

python3 - "$TMP/raw" "$OUT" <<'EOF'
import json, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
by, cpu = {}, {}
for cfg, r, rps, js, us in rows:
    by.setdefault(cfg, []).append((float(rps), js))
    cpu.setdefault(cfg, []).append(float(us))
base = [x for x, _ in by["baseline"]]
mb = statistics.median(base)
noise = statistics.median([abs(x - mb) for x in base]) / mb
bus = statistics.median(cpu["baseline"])
out = {"baseline_rps": mb, "baseline_noise": noise,
       "baseline_server_us_per_request": bus, "configs": {}}
print("uvscope pool and blocked on a Node HTTP server, fs.stat per "
      "request (%d rounds)" % len(base))
print("%-18s %8s %6s %8s %6s %8s %6s" % ("CONFIG", "REQ/S", "RATIO",
      "SRV us/R", "RATIO", "TRACED%", "TASKS"))
print("%-18s %8.0f %6s %8.2f %6s %8s %6s  noise %.1f%%" % (
    "baseline", mb, "1.000", bus, "1.000", "-", "-", 100 * noise))
for cfg in [c for c in by if c != "baseline"]:
    xs = [x for x, _ in by[cfg]]
    m = statistics.median(xs)
    traced, rate = [], []
    for _, js in by[cfg]:
        if cfg == "blocked":
            continue
        try:
            d = json.load(open(js))["pool"]
            traced.append(d["traced_share"])
            rate.append(d["completed"])
        except (OSError, ValueError, KeyError, ZeroDivisionError):
            pass
    t = statistics.median(traced) if traced else None
    rt = statistics.median(rate) if rate else None
    ratio = m / mb
    us = statistics.median(cpu[cfg])
    out["configs"][cfg] = {"rps": m, "ratio": ratio, "traced_share": t,
                           "tasks_traced": rt, "rounds": xs,
                           "server_us_per_request": us,
                           "cpu_ratio": bus / us}
    print("%-18s %8.0f %6.3f %8.2f %6.3f %8s %6s  %s" % (
        "uvscope " + cfg, m, ratio, us, bus / us,
        "-" if t is None else "%.1f" % (100 * t),
        "-" if rt is None else "%.0f" % rt,
        ("target >= 0.97: " + ("PASS" if ratio >= 0.97 else "FAIL"))
        if cfg == "pool" else ""))
print("RATIO: median req/s over the baseline's; SRV us/R: the server's CPU "
      "per request,\nRATIO: the baseline's over this one's (probe costs "
      "land there; steadier than req/s)")
json.dump(out, open(sys.argv[2], "w"), indent=1)
EOF
