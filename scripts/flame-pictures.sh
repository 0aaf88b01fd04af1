#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Makes docs/flamegraph.png and docs/flamegraph-diff.png: uvscope flame
# renders tests/fixtures/flame-node.folded (and, for the diff, the same
# stacks after a change: burnCpu three times as hot, escapeHtml gone), and
# headless Chromium takes the pictures, hovering one frame so the details
# line shows. Needs ./uvscope and chromium (scripts/deps.sh).
set -eu
cd "$(dirname "$0")/.."
TMP=$(mktemp -d /tmp/uvs-flame-pictures.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
IN=tests/fixtures/flame-node.folded

# $1 svg, $2 frame to hover, $3 png
shoot() {
	{
		echo '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
		echo '<body style="margin:0">'
		sed 1d "$1"
		cat <<EOF
<script>
var g = Array.prototype.slice.call(document.querySelectorAll('g.f'))
  .filter(function (g) {
    return g.querySelector('title').textContent.split('\n')[0] === '$2';
  })[0];
g.querySelector('rect').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
</script></body></html>
EOF
	} > "$TMP/page.html"
	h=$(sed -n 's/.*<svg [^>]* height="\([0-9]*\)".*/\1/p' "$1" | head -1)
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
		--no-first-run --user-data-dir="$TMP/profile" \
		--virtual-time-budget=2000 --window-size=1200,"$h" \
		--screenshot="$3" "file://$TMP/page.html" 2>/dev/null
	echo "$3: $(stat -c %s "$3") bytes"
}

./uvscope flame --title "node server.js: where the main thread was busy" \
	-o "$TMP/node.svg" "$IN"
shoot "$TMP/node.svg" "LazyCompile:*burnCpu /srv/app/server.js:12" \
	docs/flamegraph.png

awk '/burnCpu/ { $NF = $NF * 3 } !/escapeHtml/ { print }' "$IN" \
	> "$TMP/after.folded"
./uvscope flame --title "after the change, against before" \
	--diff "$IN" -o "$TMP/diff.svg" "$TMP/after.folded"
shoot "$TMP/diff.svg" "LazyCompile:*burnCpu /srv/app/server.js:12" \
	docs/flamegraph-diff.png
