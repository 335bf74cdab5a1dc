#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Where release()'s time goes in release_million (bench/bench_chunk_source.cpp): the
# workload alone in a fresh process for chunkpmr and std_monotonic, on glibc's defaults
# and with glibc's thresholds fixed (GLIBC_TUNABLES: mmap threshold 32 MiB, above the
# largest region, and trim threshold 256 MiB), which keeps glibc from handing freed
# memory back to the kernel after release(). The difference between the two settings is
# what the kernel's freeing of the written pages costs. (Fixing the trim threshold alone
# would also freeze glibc's mmap threshold at 128 KiB: every region would be mmapped.)
# Runs RUNS times (default 5) in sweeps over the four runs and prints a markdown table
# of medians: time of one release() (the mean over the run), of the first (in a fresh
# process, where glibc has mmapped every region) and the mean of the later ones, their
# ratios to monotonic's, and page faults per item (the million allocations before each
# release() included).
#   bash bench/release_split.sh [BUILD_DIR]     (default: build/release, built already)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
bench="$build/bench/bench_chunk_source"
runs=${RUNS:-5}
items=40
[ "${REPORT_SMOKE:-0}" = 1 ] && runs=1 items=2
trim_fixed=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq 1 "$runs"); do
  for setting in default trim_fixed; do
    for peer in chunkpmr std_monotonic; do
      tunables=""
      [ "$setting" = trim_fixed ] && tunables=$trim_fixed
      line=$(env -u GLIBC_TUNABLES ${tunables:+GLIBC_TUNABLES=$tunables} \
             "$bench" --alone="release_million/$peer" --items="$items")
      echo "$setting $line" >> "$out"
    done
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    setting, text = line.split(" ", 1)
    r = json.loads(text)
    runs[(setting, r["peer"])].append(r)
def median(setting, peer, field):
    return statistics.median(r[field] for r in runs[(setting, peer)])
labels = {"default": "default", "trim_fixed": "mmap threshold 32 MiB, trim threshold 256 MiB"}
print("| glibc settings | resource | release() time | × monotonic | first release() | later ones | "
      "later ones × monotonic | page faults per item |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
def later(r):  # the mean of the items after the first
    return (r["ns_per_item"] * r["items"] - r["first_item_ns"]) / (r["items"] - 1)
for setting in ["default", "trim_fixed"]:
    mono = median(setting, "std_monotonic", "ns_per_item")
    mono_later = statistics.median(later(r) for r in runs[(setting, "std_monotonic")])
    for peer in ["chunkpmr", "std_monotonic"]:
        ns = median(setting, peer, "ns_per_item")
        later_ns = statistics.median(later(r) for r in runs[(setting, peer)])
        print(f"| {labels[setting]} | {peer} | {ns / 1000:.1f} us | {ns / mono:.2f}× | "
              f"{median(setting, peer, 'first_item_ns') / 1000:.1f} us | {later_ns / 1000:.1f} us | "
              f"{later_ns / mono_later:.2f}× | {median(setting, peer, 'minor_faults_per_item'):.1f} |")
PY
