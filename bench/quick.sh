#!/usr/bin/env bash
# README's main command: installs dependencies, builds Release, runs the quick
# comparison against the standard pmr resources and malloc, and prints the table.
# Peers run interleaved in one process (random interleaving, 3 repetitions, medians).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install_deps.sh"
build="$root/build/release"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCHUNKPMR_BUILD_BENCHMARKS=ON \
      -DCHUNKPMR_BUILD_TESTS=OFF -DCHUNKPMR_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_quick_compare >/dev/null
json="$build/quick_compare.json"
"$build/bench/bench_quick_compare" --benchmark_repetitions=3 --benchmark_min_time=0.1 \
  --benchmark_enable_random_interleaving=true --benchmark_out="$json" \
  --benchmark_out_format=json >/dev/null 2>"$build/quick_compare.log" \
  || { cat "$build/quick_compare.log" >&2; exit 1; }
echo "machine: $(nproc) cores, $(uname -m), $(g++ --version | head -n1)"
python3 "$root/bench/quick_table.py" "$json"
