#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Install what uvscope needs to build, test and run on Debian 12.
# Idempotent: does nothing when every package is already present.
set -e
PKGS="clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libuv1-dev \
      libunwind-dev libjansson-dev pkg-config make gcc python3 bpftrace wrk \
      python3-jsonschema chromium fonts-dejavu-core \
      libclang-rt-14-dev nodejs npm luajit lua-luv neovim \
      python3-uvloop"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
# /usr/bin/node may come from somewhere other than Debian's nodejs package.
if command -v node >/dev/null 2>&1; then
	missing=$(echo "$missing" | sed 's/ nodejs//; s/ npm//')
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run as root or install them)" >&2
	exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
