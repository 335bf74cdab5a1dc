#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Installs what building, testing and benchmarking chunkpmr needs on Debian 12.
# Skips apt-get when everything is already there; uses sudo when not root.
set -euo pipefail
packages=(build-essential cmake python3 clang libclang-rt-14-dev valgrind
          libboost-test-dev libboost-container-dev libboost1.74-tools-dev
          libbenchmark-dev libmimalloc-dev libtbb-dev libjemalloc-dev strace)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
