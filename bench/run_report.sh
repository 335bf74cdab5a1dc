#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Builds Release, runs the whole benchmark suite (all peers interleaved in one process,
# 5 repetitions, medians), runs it again under LD_PRELOAD of mimalloc and jemalloc for
# their rows, runs the lifecycle benchmarks (in one process, then each headline
# workload alone), runs the chunk-source and classic malloc benchmarks alone
# (bench/chunk_source_alone.sh), counts fast-path instructions with callgrind, measures
# what chunks cost in RSS on glibc, profiles the workloads whose goals are missed
# (bench/profile_misses.sh) and splits release_million's time (bench/release_split.sh),
# and writes docs/PERF.md and docs/CHOOSING.md.
#   bash bench/run_report.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build_release.sh"
build="$root/build/release"
out="$build/report"
mkdir -p "$out"
# REPORT_SMOKE=1: one short repetition of everything, to check the pipeline (numbers
# meaningless); the committed PERF.md comes from a full run.
reps=5 min_time=0.2
if [ "${REPORT_SMOKE:-0}" = 1 ]; then reps=1 min_time=0.01; export ALONE_TARGET_MS=50; fi
args=(--benchmark_repetitions=$reps --benchmark_min_time=$min_time --benchmark_enable_random_interleaving=true
      --benchmark_report_aggregates_only=true --benchmark_out_format=json)
bench="$build/bench/bench_peers"
"$bench" "${args[@]}" --benchmark_out="$out/main.json" >/dev/null 2>"$out/main.log"
lib=/usr/lib/x86_64-linux-gnu
LD_PRELOAD=$lib/libmimalloc.so.2 "$bench" "${args[@]}" --benchmark_filter='/(new_delete|chunkpmr)' \
  --benchmark_out="$out/mimalloc.json" >/dev/null 2>"$out/mimalloc.log"
LD_PRELOAD=$lib/libjemalloc.so.2 "$bench" "${args[@]}" --benchmark_filter='/(new_delete|chunkpmr)' \
  --benchmark_out="$out/jemalloc.json" >/dev/null 2>"$out/jemalloc.log"
# small_alloc alone: glibc's dynamic trim/mmap thresholds then depend on this workload
# only. Further runs fix the thresholds (one, the other, both) to show how much of the
# time is glibc's.
isolated=(--benchmark_filter='small_alloc/(chunkpmr|std_monotonic)$' --benchmark_repetitions=$reps
          --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
          --benchmark_out_format=json)
# Regions are at most 511 frames (under 32 MiB): a 32 MiB threshold covers them.
mmap_fixed=glibc.malloc.mmap_threshold=33554432
trim_fixed=glibc.malloc.trim_threshold=67108864
isolated_args=()
for setting in "default=" "mmap threshold 32 MiB=$mmap_fixed" "trim threshold 64 MiB=$trim_fixed" \
               "both=$mmap_fixed:$trim_fixed"; do
  label=${setting%%=*}
  file="$out/isolated_${#isolated_args[@]}.json"
  GLIBC_TUNABLES=${setting#*=} "$bench" "${isolated[@]}" --benchmark_out="$file" >/dev/null 2>>"$out/isolated.log"
  isolated_args+=("$label=$file")
done
# Resource lifecycles (bench_lifecycle): in-process with the same arguments, then each
# headline workload alone in a fresh process (with system calls counted under strace).
"$build/bench/bench_lifecycle" "${args[@]}" --benchmark_out="$out/lifecycle.json" >/dev/null 2>"$out/lifecycle.log"
bash "$root/bench/lifecycle_alone.sh" > "$out/lifecycle_alone.md" 2>"$out/lifecycle_alone.log"
# Chunk sources and classic malloc benchmarks (bench_chunk_source), each alone in a fresh
# process; the Chunk source section is computed from its results.jsonl.
bash "$root/bench/chunk_source_alone.sh" > "$out/chunk_source_alone.md" 2>"$out/chunk_source_alone.log"
footprint_items=2000000
[ "${REPORT_SMOKE:-0}" = 1 ] && footprint_items=20000
bash "$root/bench/footprint_vs_chunk.sh" "$footprint_items" > "$out/footprint_vs_chunk.md" 2>"$out/footprint_vs_chunk.log"
bash "$root/bench/profile_misses.sh" "$build" > "$out/profile_misses.md" 2>"$out/profile_misses.log"
bash "$root/bench/release_split.sh" "$build" > "$out/release_split.md" 2>"$out/release_split.log"
bash "$root/bench/callgrind_fastpath.sh" "$build" > "$out/callgrind.md"
"$build/bench/bench_chunk_rss" > "$out/rss.md"
machine="$(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(g++ --version | head -n1), $(date -u +%Y-%m-%d)"
python3 "$root/bench/report.py" perf "$root/docs/PERF.md" \
  --main "$out/main.json" --preload "mimalloc=$out/mimalloc.json" "jemalloc=$out/jemalloc.json" \
  --callgrind "$out/callgrind.md" --rss "$out/rss.md" --template "$root/bench/PERF.md.in" \
  --isolated "${isolated_args[@]}" \
  --lifecycle "$out/lifecycle.json" --lifecycle-alone "$out/lifecycle_alone.md" \
  --chunk-source "$build/chunk_source_alone/results.jsonl" \
  --footprint-chunk "$out/footprint_vs_chunk.md" --profiles "$out/profile_misses.md" \
  --release-split "$out/release_split.md" \
  --choosing "$root/bench/CHOOSING.md.in" "$root/docs/CHOOSING.md" --charts "$root/docs" \
  --command "bash bench/run_report.sh" --machine "$machine"
echo "docs/PERF.md and docs/CHOOSING.md written"
