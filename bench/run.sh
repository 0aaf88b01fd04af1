#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# make bench: what uvscope costs the process it watches (SPEC.md,
# "Performance targets"), measured as ratios against a baseline of the same
# run.
#
# A Node HTTP hello-world (bench/server.js) runs pinned to CPU 1; wrk, pinned
# to CPU 0, loads it over loopback. The tracers are pinned to CPU 0 as well,
# like a monitoring agent sharing a core with other work, so what they cost
# the server is what their probes cost inside it, not competition for its core.
#
# Configurations, interleaved in rotating order over ROUNDS rounds:
#   baseline   nothing attached
#   uvscope    uvscope loop -p PID -d S --json       (windowed phase probes)
#   exact      uvscope loop --exact -p PID -d S --json (phase probes always on)
#   bpftrace   bpftrace bench/loop.bt PID            (the equivalent script)
#   ptrace     uvscope loop --backend ptrace -p PID -d S --json
#              (stack samples at 99 Hz: what a host without eBPF gets)
# Then: uvscope's attach time on the idle server (5 runs of loop -v -d 0.5),
# its own CPU during the loaded rounds, what its JSON says the windowing did.
#
# Around every wrk run the bench accounts for the CPU time of both CPUs
# (/proc/stat) against the server's, wrk's (bench/rusage.py) and the tracer's;
# what is left was used by something else. A measurement during which other
# processes used more than BENCH_FOREIGN_MAX_LOAD % (10) of the load CPU or
# BENCH_FOREIGN_MAX_SERVER % (5) of the server CPU, or another process had
# BPF tracing attached (bpftool perf list; a syscall tracepoint slows every
# process's syscalls), is marked disturbed and, time allowing, taken again
# once the machine is calm; both are kept in the results and the table warns.
# The server's CPU time per request is reported next to requests/s: it shows
# what the probes cost inside the server even when the load is noisy.
#
# Then bench/flame.sh times the flame graph of one million samples, and
# bench/pool.sh what uvscope pool costs a server doing fs work.
#
# Progress goes to stderr, the table to stdout, everything to
# bench/results.json. Exit status 0 whether targets pass or fail; 1 if
# something crashed or could not be measured; 2 if the bench cannot run here.
#
# Environment: BENCH_ROUNDS (5), BENCH_SECS (5, seconds of wrk per
# measurement), BENCH_CONNS (32), BENCH_PORT (0: any free port),
# BENCH_SERVER_CPU (1), BENCH_LOAD_CPU (0), BENCH_CONFIGS (all five),
# BENCH_MAX_RETRIES (4), BENCH_RETRY_UNTIL (120 s into the run),
# BENCH_WARMUP (10 s of load before the first measurement),
# BENCH_KEEP=1 keeps the raw files, BENCH_PARTS ("loop flame pool") which
# of the three parts run (the loop part always does).
set -u

cd "$(dirname "$0")/.." || exit 2
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECS:-5}
WARMUP=${BENCH_WARMUP:-10}
CONNS=${BENCH_CONNS:-32}
PORT=${BENCH_PORT:-0}
SERVER_CPU=${BENCH_SERVER_CPU:-1}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
NODE=/usr/bin/node # bench/loop.bt names this binary in its probes
UVSCOPE=./uvscope
CONFIGS=${BENCH_CONFIGS:-baseline uvscope exact bpftrace ptrace}
PARTS=${BENCH_PARTS:-loop flame pool} # loop is this script's own part
# A measurement is disturbed when something else used more than this share
# (%) of the load generator's / the server's CPU during it, or traced.
FOREIGN_MAX_LOAD=${BENCH_FOREIGN_MAX_LOAD:-10}
FOREIGN_MAX_SERVER=${BENCH_FOREIGN_MAX_SERVER:-5}
MAX_RETRIES=${BENCH_MAX_RETRIES:-4}
RETRY_UNTIL=${BENCH_RETRY_UNTIL:-120} # s after the start; keeps the run < 4 min
OUT=bench/results.json

say() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 2; }

SERVER_PID=
TOOL_PID=
WATCH_PID=
TMP=

cleanup() {
	trap - EXIT INT TERM
	# The tracers first (their probes live in the server), then the server.
	for p in $WATCH_PID $TOOL_PID $SERVER_PID; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $WATCH_PID $TOOL_PID $SERVER_PID; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 30 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		# A killed tracer's BPF links and perf events go with its fds.
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	WATCH_PID=
	TOOL_PID=
	SERVER_PID=
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ]; then
			say "raw files kept in $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM

# --- preflight ------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (BPF uprobes and tracepoints); try: sudo make bench"
for c in wrk bpftrace taskset python3; do
	command -v "$c" >/dev/null 2>&1 ||
		die "'$c' not found; install it (sh scripts/deps.sh, or apt-get install $c)"
done
[ -x "$NODE" ] || die "$NODE not found (bench/loop.bt probes that binary); sh scripts/deps.sh"
[ -x "$UVSCOPE" ] || die "$UVSCOPE not built; run make"
ncpu=$(getconf _NPROCESSORS_ONLN)
[ "$ncpu" -gt "$SERVER_CPU" ] && [ "$ncpu" -gt "$LOAD_CPU" ] ||
	die "needs CPUs $LOAD_CPU and $SERVER_CPU, this machine has $ncpu"
[ "$SERVER_CPU" != "$LOAD_CPU" ] || die "server and load generator need different CPUs"
if [ ! -d /sys/kernel/tracing/events ]; then
	say "mounting tracefs on /sys/kernel/tracing (bpftrace needs it)"
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
		die "cannot mount tracefs on /sys/kernel/tracing"
fi
# This script and its helpers (awk, python3, bpftool) stay off the server's
# CPU; only the server runs there.
taskset -p -c "$LOAD_CPU" $$ >/dev/null 2>&1 ||
	die "cannot pin this script to CPU $LOAD_CPU"
TMP=$(mktemp -d /tmp/uvscope-bench.XXXXXX) || die "mktemp failed"
RAW=$TMP/raw.tsv
: > "$RAW"

T0=$(date +%s)
# Seconds since the epoch with nanoseconds.
now() { date +%s.%N; }
# CPU time of a process so far in ns, threads that already exited included
# (utime + stime of /proc/PID/stat, in USER_HZ ticks: 10 ms steps).
cpu_ns() {
	sed 's/.*) //' /proc/"$1"/stat 2>/dev/null |
		awk -v hz="$CLK_TCK" '{ printf "%.0f\n", ($12 + $13) * 1e9 / hz }'
}
# The same to the ns, live threads only (/proc/PID/task/*/schedstat): for
# the server, whose threads live as long as it does.
cpu_ns_live() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null |
		awk '{ s += $1 } END { printf "%.0f\n", s }'
}
CLK_TCK=$(getconf CLK_TCK)

server_alive() {
	kill -0 "$SERVER_PID" 2>/dev/null ||
		{ say "the node server died (see $TMP/server.err):"; \
		  cat "$TMP/server.err" >&2; BENCH_KEEP=1; exit 1; }
}

# --- the server -------------------------------------------------------------
say "starting $NODE bench/server.js on CPU $SERVER_CPU"
taskset -c "$SERVER_CPU" "$NODE" bench/server.js "$PORT" \
	> "$TMP/server.out" 2> "$TMP/server.err" &
SERVER_PID=$!
i=0
while ! grep -q '^listening ' "$TMP/server.out" 2>/dev/null; do
	server_alive
	i=$((i + 1))
	[ $i -lt 100 ] || die "the server did not start listening in 10 s"
	sleep 0.1
done
PORT=$(awk '/^listening /{ print $2; exit }' "$TMP/server.out")
URL=http://127.0.0.1:$PORT/
say "server pid $SERVER_PID listening on $URL"

# One wrk run: prints requests/sec (or nothing) and leaves output in $1.
wrk_run() {
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$2"s "$URL" > "$1" 2>&1
	awk '/^Requests\/sec:/ { print $2 }' "$1"
}

# V8 needs ~10 s of load before the server's requests/s level off.
say "warming up the server (JIT) for ${WARMUP} s"
r=$(wrk_run "$TMP/warmup.wrk" "$WARMUP")
[ -n "$r" ] || { cat "$TMP/warmup.wrk" >&2; die "wrk failed against $URL"; }
say "warm-up: $r requests/s"

# --- one measurement ---------------------------------------------------------
# Busy time of CPUs $LOAD_CPU and $SERVER_CPU so far, in ns, from /proc/stat
# (user nice system irq softirq; USER_HZ ticks).
cpus_busy() {
	awk -v a="cpu$LOAD_CPU" -v b="cpu$SERVER_CPU" -v hz="$CLK_TCK" '
		$1 == a { x = ($2 + $3 + $4 + $7 + $8) * 1e9 / hz }
		$1 == b { y = ($2 + $3 + $4 + $7 + $8) * 1e9 / hz }
		END { printf "%.0f %.0f\n", x, y }' /proc/stat
}
# Processes other than ours with BPF programs on perf events (kprobes,
# uprobes, tracepoints): another tracer's syscall tracepoints slow every
# syscall of the server too, so such a measurement is disturbed.
other_tracers() {
	command -v bpftool >/dev/null 2>&1 || { echo 0; return; }
	bpftool perf list 2>/dev/null | awk -v me="${TOOL_PID:-x}" '
		$1 == "pid" && $2 != me { p[$2] = 1 }
		END { n = 0; for (k in p) n++; print n }'
}
# watch_tracers FILE: keeps the largest other_tracers count seen in FILE.
watch_tracers() {
	wmax=0
	while :; do
		n=$(other_tracers)
		if [ "$n" -gt "$wmax" ]; then
			wmax=$n
			echo "$wmax" > "$1"
		fi
		sleep 0.5
	done
}

# measure CONFIG ROUND ATTEMPT: attach CONFIG's tool, wait until it is in
# place, run wrk for SECS and account for every CPU-ns on both CPUs around
# it, stop the tool. Appends an 'm' line to $RAW and sets DISTURBED=1 when
# something else used the CPUs or traced (then run.sh may measure again).
measure() {
	cfg=$1 round=$2 attempt=$3
	base=$TMP/$cfg.$round.$attempt
	TOOL_PID=
	DISTURBED=0
	t_start=$(now)
	case $cfg in
	baseline) ;;
	uvscope | exact)
		flag=
		[ "$cfg" = exact ] && flag=--exact
		# Attached 0.5 s before wrk, SECS of wrk, a margin after: its
		# JSON covers a little idle time at both ends.
		taskset -c "$LOAD_CPU" "$UVSCOPE" loop $flag -p "$SERVER_PID" \
			-d $((SECS + 1)) --json > "$base.json" 2> "$base.err" &
		TOOL_PID=$!
		;;
	ptrace)
		taskset -c "$LOAD_CPU" "$UVSCOPE" loop --backend ptrace \
			-p "$SERVER_PID" -d $((SECS + 1)) --json \
			> "$base.json" 2> "$base.err" &
		TOOL_PID=$!
		;;
	bpftrace)
		taskset -c "$LOAD_CPU" bpftrace bench/loop.bt "$SERVER_PID" \
			> "$base.bt" 2> "$base.err" &
		TOOL_PID=$!
		# BEGIN prints "ready" once every probe is attached.
		i=0
		while ! grep -q '^ready' "$base.bt" 2>/dev/null; do
			if ! kill -0 "$TOOL_PID" 2>/dev/null; then
				say "bpftrace failed:"; cat "$base.err" >&2
				wait "$TOOL_PID"; TOOL_PID=
				printf 'fail\t%s\t%s\tbpftrace exited during attach\n' \
					"$cfg" "$round" >> "$RAW"
				return
			fi
			i=$((i + 1))
			[ $i -lt 600 ] || { say "bpftrace not ready in 60 s"; break; }
			sleep 0.1
		done
		printf 'ready\t%s\t%s\t%s\n' "$cfg" "$round" \
			"$(python3 -c "print(($(now) - $t_start) * 1000)")" >> "$RAW"
		;;
	esac
	sleep 0.5
	server_alive
	if [ -n "$TOOL_PID" ] && ! kill -0 "$TOOL_PID" 2>/dev/null; then
		say "$cfg exited before the load started:"; cat "$base.err" >&2
		wait "$TOOL_PID"
		printf 'fail\t%s\t%s\texited before the load (status %s)\n' \
			"$cfg" "$round" "$?" >> "$RAW"
		TOOL_PID=
		return
	fi
	# Other tracers come and go (a test suite's short runs): watch for
	# them twice a second for the whole wrk run.
	echo 0 > "$base.tracers"
	watch_tracers "$base.tracers" &
	WATCH_PID=$!
	c0=0 c1=0
	[ -n "$TOOL_PID" ] && c0=$(cpu_ns "$TOOL_PID")
	n0=$(cpu_ns_live "$SERVER_PID")
	b0=$(cpus_busy)
	w0=$(now)
	taskset -c "$LOAD_CPU" python3 bench/rusage.py "$base.wrkcpu" \
		wrk -t1 -c"$CONNS" -d"$SECS"s "$URL" > "$base.wrk" 2>&1
	w1=$(now)
	b1=$(cpus_busy)
	n1=$(cpu_ns_live "$SERVER_PID")
	[ -n "$TOOL_PID" ] && c1=$(cpu_ns "$TOOL_PID")
	kill "$WATCH_PID" 2>/dev/null
	wait "$WATCH_PID" 2>/dev/null
	WATCH_PID=
	tracers=$(cat "$base.tracers")
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$base.wrk")
	reqs=$(awk '/ requests in / { print $1 }' "$base.wrk")
	errs=$(awk '/Socket errors|Non-2xx/ { printf "%s ", $0 }' "$base.wrk")
	wrkcpu=$(cat "$base.wrkcpu" 2>/dev/null || echo 0)
	alive=1
	if [ -n "$TOOL_PID" ]; then
		kill -0 "$TOOL_PID" 2>/dev/null || alive=0
		[ "$cfg" = bpftrace ] && kill -INT "$TOOL_PID" 2>/dev/null
		i=0
		while kill -0 "$TOOL_PID" 2>/dev/null && [ $i -lt 150 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if kill -0 "$TOOL_PID" 2>/dev/null; then
			say "$cfg did not stop; killing it"
			kill -KILL "$TOOL_PID" 2>/dev/null
		fi
		wait "$TOOL_PID"
		st=$?
		TOOL_PID=
		if [ "$st" != 0 ]; then
			say "$cfg exited with status $st:"; tail -5 "$base.err" >&2
			printf 'fail\t%s\t%s\texit status %s\n' "$cfg" "$round" \
				"$st" >> "$RAW"
		fi
	fi
	server_alive
	if [ -z "$rps" ]; then
		say "$cfg round $round: wrk gave no requests/sec:"
		cat "$base.wrk" >&2
		printf 'fail\t%s\t%s\twrk gave no result\n' "$cfg" "$round" >> "$RAW"
		return
	fi
	# Foreign CPU: busy time of each CPU that is not ours, as % of wall.
	set -- $b0 $b1
	fl=$(python3 -c "
w = ($w1 - $w0) * 1e9
print('%.1f %.1f' % ((($3 - $1) - $wrkcpu - ($c1 - $c0)) * 100 / w,
                     (($4 - $2) - ($n1 - $n0)) * 100 / w))")
	set -- $fl
	if python3 -c "import sys; sys.exit(0 if $1 > $FOREIGN_MAX_LOAD or $2 > $FOREIGN_MAX_SERVER else 1)" ||
	   [ "$tracers" != 0 ]; then
		DISTURBED=1
	fi
	[ "$cfg" = bpftrace ] && json=- || json=$base.json
	[ "$cfg" = baseline ] && json=-
	# m cfg round attempt rps requests node_ns wrk_ns tool_ns wall_s
	#   foreign_load% foreign_server% other_tracers disturbed tool_alive
	#   tool_cpu_before_load_ns json errors
	printf 'm\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$cfg" "$round" "$attempt" "$rps" "$reqs" $((n1 - n0)) \
		"$wrkcpu" $((c1 - c0)) "$(python3 -c "print($w1 - $w0)")" \
		"$1" "$2" "$tracers" "$DISTURBED" "$alive" "$c0" \
		"$json" "$errs" >> "$RAW"
	note=
	[ "$DISTURBED" = 1 ] && note=" DISTURBED: other CPU use $1% on CPU $LOAD_CPU, $2% on CPU $SERVER_CPU, $tracers other tracer(s)"
	say "round $round/$ROUNDS $cfg: $rps requests/s${errs:+ ($errs)}$note"
}

# Waits (at most $1 s) until, for 2 s in a row, nothing but the server used
# more than a few % of the two CPUs and no other tracer is attached.
wait_quiet() {
	deadline=$(( $(date +%s) + $1 ))
	calm=0
	while [ "$(date +%s)" -lt "$deadline" ]; do
		b0=$(cpus_busy); n0=$(cpu_ns_live "$SERVER_PID")
		sleep 1
		b1=$(cpus_busy); n1=$(cpu_ns_live "$SERVER_PID")
		set -- $b0 $b1
		if [ $(( ($3 - $1) + ($4 - $2) - (n1 - n0) )) -lt 50000000 ] &&
		   [ "$(other_tracers)" = 0 ]; then
			calm=$((calm + 1))
			[ $calm -ge 2 ] && return 0
		else
			calm=0
		fi
	done
	return 1
}

# --- interleaved rounds --------------------------------------------------------
nconf=$(echo $CONFIGS | wc -w)
say "$ROUNDS rounds x $nconf configurations x ${SECS} s, rotating order"
retries=0
r=1
while [ $r -le "$ROUNDS" ]; do
	# Round r starts at configuration (r-1) mod nconf.
	order=$(echo $CONFIGS | awk -v k=$(((r - 1) % nconf)) '{
		for (i = 0; i < NF; i++) printf "%s ", $((i + k) % NF + 1) }')
	for cfg in $order; do
		measure "$cfg" "$r" 1
		# A measurement disturbed by other load is taken once more after
		# the machine calms down, while time allows; both are kept in
		# the results, the last one counts.
		if [ "$DISTURBED" = 1 ] && [ $retries -lt "$MAX_RETRIES" ] &&
		   [ $(( $(date +%s) - T0 )) -lt "$RETRY_UNTIL" ]; then
			retries=$((retries + 1))
			say "waiting up to 5 s for the machine to calm down"
			wait_quiet 5 || say "still busy; measuring anyway"
			measure "$cfg" "$r" 2
		fi
	done
	r=$((r + 1))
done

# --- attach time on the idle server ------------------------------------------
say "attach time: 5 x uvscope loop -v -p $SERVER_PID -d 0.5 on the idle server"
sleep 1
for i in 1 2 3 4 5; do
	server_alive
	taskset -c "$LOAD_CPU" "$UVSCOPE" loop -v -p "$SERVER_PID" -d 0.5 \
		> "$TMP/attach.$i.out" 2> "$TMP/attach.$i.err"
	st=$?
	ms=$(sed -n 's/^uvscope: attached in \([0-9.]*\) ms.*/\1/p' \
		"$TMP/attach.$i.err" | head -1)
	if [ "$st" != 0 ] || [ -z "$ms" ]; then
		say "attach run $i failed (status $st):"
		tail -5 "$TMP/attach.$i.err" >&2
		printf 'fail\tattach\t%s\tstatus %s, no "attached in" line\n' \
			"$i" "$st" >> "$RAW"
		continue
	fi
	printf 'attach\t%s\t%s\n' "$i" "$ms" >> "$RAW"
	say "attach $i: $ms ms"
done

# --- report ---------------------------------------------------------------------
{
	printf 'meta\tdate\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf 'meta\tkernel\t%s\n' "$(uname -r)"
	printf 'meta\tcpu_model\t%s\n' \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	printf 'meta\tcpus\t%s\n' "$ncpu"
	printf 'meta\tnode\t%s\n' "$NODE"
	printf 'meta\tnode_version\t%s\n' "$("$NODE" --version)"
	printf 'meta\tnode_size\t%s\n' "$(stat -L -c %s "$NODE")"
	printf 'meta\tbpftrace_version\t%s\n' "$(bpftrace --version 2>&1 | head -1)"
	printf 'meta\twrk\t-t1 -c%s -d%ss\n' "$CONNS" "$SECS"
	printf 'meta\trounds\t%s\n' "$ROUNDS"
	printf 'meta\tconfigs\t%s\n' "$CONFIGS"
	printf 'meta\tsecs\t%s\n' "$SECS"
	printf 'meta\tserver_cpu\t%s\n' "$SERVER_CPU"
	printf 'meta\tload_cpu\t%s\n' "$LOAD_CPU"
	printf 'meta\tloadavg\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'meta\tuvscope_commit\t%s\n' \
		"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} >> "$RAW"
python3 bench/report.py "$RAW" "$OUT"
st=$?

# --- flame graph rendering: its own script, no server needed ------------------
case " $PARTS " in *" flame "*) sh bench/flame.sh || st=1 ;; esac

# --- uvscope pool on an fs-heavy server: its own script and server -------------
# (the server above is gone: cleanup runs at exit; pool.sh starts its own)
kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
case " $PARTS " in *" pool "*) sh bench/pool.sh || st=1 ;; esac
exit $st
