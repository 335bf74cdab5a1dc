#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Runs each workload × peer of bench/bench_chunk_source.cpp alone, in a fresh process
# (`bench_chunk_source --alone=NAME --items=N`, no Google Benchmark) on glibc's default
# settings (GLIBC_TUNABLES unset), ALONE_REPEATS times (default 5, in sweeps over every
# run), and prints on stdout the goals computed from the runs and a markdown table:
# medians of ns per item, the ratio to the reference (std_monotonic for small_*,
# mixed_release_cycle and release_million; glibc's new_delete for larson_sized,
# xmalloc_* and mstress, and for xmalloc also to mimalloc), minor page faults per item,
# system calls per item (mmap, munmap, brk, madvise, all), max RSS and chunkpmr's peak
# bytes held.
#   bash bench/chunk_source_alone.sh [RUN ...]   RUN: workload/peer, or
#                                                workload/new_delete@mimalloc|@jemalloc
#                                                (default: every workload × peer)
# new_delete@mimalloc and @jemalloc run new_delete_resource with Debian's
# libmimalloc.so.2 / libjemalloc.so.2 preloaded (LD_PRELOAD). Time, faults and RSS come
# from the runs without strace; the system calls from a second run of the same n items
# under `strace -f -c`, minus a run of one item (start-up, setup and teardown cancel
# out). n comes from a calibration run (wall time per item, release_million's untimed
# allocations included) so that the timed run takes about ALONE_TARGET_MS (default 500)
# milliseconds, within bounds per workload; in larson_sized, xmalloc_* and mstress,
# chunkpmr and the new_delete runs share the smallest of their n, so that their RSS is
# measured over the same work. Progress goes to stderr; files to
# build/release/chunk_source_alone/ (results.jsonl: one JSON line per run, medians and
# the sweeps' values).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build_release.sh" bench_chunk_source  # also installs strace (install_deps.sh)
command -v strace >/dev/null || { echo "strace missing: run scripts/install_deps.sh" >&2; exit 1; }
unset GLIBC_TUNABLES
bench="$root/build/release/bench/bench_chunk_source"
out="$root/build/release/chunk_source_alone"
rm -rf "$out"
mkdir -p "$out"
target_ms=${ALONE_TARGET_MS:-500}
lib=/usr/lib/x86_64-linux-gnu
declare -A preload=([mimalloc]=$lib/libmimalloc.so.2 [jemalloc]=$lib/libjemalloc.so.2)
for so in "${preload[@]}"; do
  [ -r "$so" ] || { echo "$so missing: run scripts/install_deps.sh" >&2; exit 1; }
done

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
  for w in small_written small_untouched; do
    for p in chunkpmr std_monotonic boost_monotonic new_delete; do runs+=("$w/$p"); done
  done
  for p in chunkpmr std_monotonic new_delete new_delete@mimalloc new_delete@jemalloc std_unsync_pool; do
    runs+=("mixed_release_cycle/$p")
  done
  for p in chunkpmr std_monotonic boost_monotonic; do runs+=("release_million/$p"); done
  for w in larson_sized xmalloc_fixed xmalloc_random mstress; do
    for p in chunkpmr new_delete new_delete@mimalloc new_delete@jemalloc std_sync_pool boost_sync_pool tbb_scalable; do
      runs+=("$w/$p")
    done
  done
fi

# Items of the calibration run (also the least n) and the most n, per workload.
bounds() {
  case "$1" in
    small_*) echo "2000000 20000000" ;;  # one round of 2 M allocations and its release()
    mixed_release_cycle) echo "50 20000" ;;
    release_million) echo "2 40" ;;
    *) echo "100000 20000000" ;;
  esac
}

# Runs the bench for RUN (with its preload) and ITEMS; extra arguments go before it
# (strace). The preload goes through strace's -E so that strace itself runs without it.
run_bench() {
  local run=$1 items=$2
  shift 2
  local name=${run%@*} lib_so=""
  [ "$name" != "$run" ] && lib_so=${preload[${run#*@}]}
  if [ $# -gt 0 ]; then
    if [ -n "$lib_so" ]; then "$@" -E "LD_PRELOAD=$lib_so" "$bench" --alone="$name" --items="$items"
    else "$@" "$bench" --alone="$name" --items="$items"; fi
  else
    if [ -n "$lib_so" ]; then LD_PRELOAD=$lib_so "$bench" --alone="$name" --items="$items"
    else "$bench" --alone="$name" --items="$items"; fi
  fi
}

json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# 1. Calibration: n per run.
declare -A items
for run in "${runs[@]}"; do
  w=${run%%/*}
  read -r least most <<<"$(bounds "$w")"
  calibration=$(run_bench "$run" "$least")
  ns=$(json_field "$calibration" wall_ns_per_item)
  items[$run]=$(python3 -c 'import sys; t, ns, lo, hi = map(float, sys.argv[1:]); print(int(min(hi, max(lo, t * 1e6 / ns))))' \
                "$target_ms" "$ns" "$least" "$most")
done
# 2. The classic workloads: chunkpmr and the mallocs share the smallest n.
for w in larson_sized xmalloc_fixed xmalloc_random mstress; do
  common=""
  for p in chunkpmr new_delete new_delete@mimalloc new_delete@jemalloc; do
    n=${items[$w/$p]:-}
    if [ -n "$n" ] && { [ -z "$common" ] || [ "$n" -lt "$common" ]; }; then common=$n; fi
  done
  for p in chunkpmr new_delete new_delete@mimalloc new_delete@jemalloc; do
    if [ -n "${items[$w/$p]:-}" ]; then items[$w/$p]=$common; fi
  done
done
# 3. The timed runs: ALONE_REPEATS (default 5) sweeps over every run, so that the
# machine's drift falls on every peer alike; the table takes each run's medians
# (time, faults, RSS) and the goals also show the spread of the per-sweep ratios.
repeats=${ALONE_REPEATS:-5}
for rep in $(seq 1 "$repeats"); do
  i=0
  for run in "${runs[@]}"; do
    i=$((i + 1))
    echo "[sweep $rep/$repeats, $i/${#runs[@]}] $run: ${items[$run]} items" >&2
    run_bench "$run" "${items[$run]}" >> "$out/$i.runs.jsonl"
  done
done
# 4. n items and 1 item under strace, once per run.
results="$out/results.jsonl"
: > "$results"
i=0
for run in "${runs[@]}"; do
  i=$((i + 1))
  n=${items[$run]}
  echo "[strace $i/${#runs[@]}] $run" >&2
  run_bench "$run" "$n" strace -f -c -o "$out/$i.strace" >/dev/null
  run_bench "$run" 1 strace -f -c -o "$out/$i.base.strace" >/dev/null
  python3 "$root/bench/report.py" merge-runs "$out/$i.runs.jsonl" "$out/$i.strace" "$out/$i.base.strace" >> "$results"
done
python3 "$root/bench/report.py" chunk-source "$results"
