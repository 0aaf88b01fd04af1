#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The README's first command: run the bundled demo target (a libuv program
# whose timer callback spins 30 ms every 100 ms) and show uvscope's loop
# report of it.
set -e
cd "$(dirname "$0")/.."
secs=${UVSCOPE_DEMO_SECONDS:-5}
fix=.output/fixtures/loopfix
"$fix" timer 30 100 >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT INT TERM
sleep 0.3
echo "\$ uvscope loop -p $pid -d $secs    # demo: $fix timer 30 100"
./uvscope loop -p "$pid" -d "$secs"
