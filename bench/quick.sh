#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# README's main command: installs dependencies, builds Release and runs a quick subset
# of the benchmark suite — chunkpmr against libstdc++'s monotonic and pool resources,
# Boost's pool and glibc malloc on four workloads — interleaved in one process
# (3 repetitions), then prints a legend and the ratio table: medians, with the spread
# over the repetitions, rows marked when chunkpmr's own repetitions are too noisy. The full suite and
# docs/PERF.md come from bench/run_report.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build_release.sh" bench_peers
build="$root/build/release"
json="$build/quick.json"
"$build/bench/bench_peers" --benchmark_repetitions=3 --benchmark_min_time=0.1 \
  --benchmark_enable_random_interleaving=true \
  --benchmark_filter='^(small_alloc|container_churn|producer_consumer|larson)/(chunkpmr|std_|boost_unsync|new_delete)' \
  --benchmark_out="$json" --benchmark_out_format=json >/dev/null 2>"$build/quick.log" \
  || { cat "$build/quick.log" >&2; exit 1; }
echo "machine: $(nproc) cores, $(uname -m), $(g++ --version | head -n1)"
python3 "$root/bench/report.py" quick "$json"
