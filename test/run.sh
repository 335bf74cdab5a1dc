#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# README's test command: installs dependencies, builds everything (Debug, so the debug
# checks are on) and runs the full Boost.Test suite through CTest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install_deps.sh"
build="$root/build/debug"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)"
