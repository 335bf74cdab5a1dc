#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Runs each headline lifecycle workload of bench/bench_lifecycle.cpp alone, in a fresh
# process (`bench_lifecycle --alone=NAME --items=N`, no Google Benchmark), and prints a
# markdown table on stdout: ns per item, the ratio to the monotonic resource (round
# robin: to N=1 of the same resource), minor page faults per item, system calls per
# item (mmap, munmap, brk, madvise, all) and max RSS.
#   bash bench/lifecycle_alone.sh [WORKLOAD ...]     (default: the headline workloads)
# Time, faults and RSS come from a run without strace; the system calls from a second
# run of the same n items under `strace -f -c`, minus a run of one item (start-up, setup
# and teardown cancel out). n is chosen per workload from a 1000-item calibration run so
# that the timed run takes about ALONE_TARGET_MS (default 500) milliseconds, at least
# 20000 items and at most 5 million. Progress goes to stderr; files to
# build/release/lifecycle_alone/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build_release.sh" bench_lifecycle  # also installs strace (install_deps.sh)
command -v strace >/dev/null || { echo "strace missing: run scripts/install_deps.sh" >&2; exit 1; }
bench="$root/build/release/bench/bench_lifecycle"
out="$root/build/release/lifecycle_alone"
rm -rf "$out"
mkdir -p "$out"
target_ms=${ALONE_TARGET_MS:-500}

workloads=("$@")
if [ ${#workloads[@]} -eq 0 ]; then
  for r in chunkpmr std_monotonic std_unsync_pool; do
    for p in stack new; do workloads+=("request/$r/$p"); done
  done
  for r in chunkpmr std_unsync_pool bump_bound_64k bump_bound_4k; do
    for n in 1 1024; do workloads+=("round_robin/$r/$n"); done
  done
fi

json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

results="$out/results.jsonl"
: > "$results"
i=0
for w in "${workloads[@]}"; do
  i=$((i + 1))
  calibration=$("$bench" --alone="$w" --items=1000)
  ns=$(json_field "$calibration" ns_per_item)
  items=$(python3 -c 'import sys; print(int(min(5e6, max(20000, float(sys.argv[1]) * 1e6 / float(sys.argv[2])))))' \
          "$target_ms" "$ns")
  echo "[$i/${#workloads[@]}] $w: $items items" >&2
  line=$("$bench" --alone="$w" --items="$items")
  strace -f -c -o "$out/$i.strace" "$bench" --alone="$w" --items="$items" >/dev/null
  strace -f -c -o "$out/$i.base.strace" "$bench" --alone="$w" --items=1 >/dev/null
  echo "{\"strace\": \"$out/$i.strace\", \"strace_base\": \"$out/$i.base.strace\", ${line#\{}" >> "$results"
done
python3 "$root/bench/report.py" alone "$results"
