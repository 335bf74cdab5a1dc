#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Installs dependencies and builds the Release tree with the benchmarks in build/release
# (shared by bench/quick.sh and bench/run_report.sh). Extra arguments: build targets.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install_deps.sh"
cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release -DCHUNKPMR_BUILD_BENCHMARKS=ON \
      -DCHUNKPMR_BUILD_TESTS=OFF -DCHUNKPMR_BUILD_EXAMPLES=OFF >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$root/build/release" -j"$(nproc)" "${targets[@]}" >/dev/null
