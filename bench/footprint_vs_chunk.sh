#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Footprint under random lifetimes against chunk size: larson_sized and mstress from
# bench/bench_chunk_source.cpp, each alone in a fresh process on glibc's defaults, for
# chunkpmr with ResourceOptions::max_chunk_bytes = 64, 32, 16, 8 and 4 KiB (through
# CHUNKPMR_BENCH_MAX_CHUNK_BYTES) and for glibc's malloc. Prints a markdown table: time
# per item, max RSS and chunkpmr's peak bytes held from upstream, RSS as a multiple of
# glibc's.
#   bash bench/footprint_vs_chunk.sh [ITEMS]    (default 2000000 items per run)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build_release.sh" bench_chunk_source
bench="$root/build/release/bench/bench_chunk_source"
items=${1:-2000000}
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])' "$1" "$2"; }
echo "| workload | resource | max_chunk_bytes | ns/item | max RSS (MiB) | RSS / glibc's | peak bytes held (MiB) |"
echo "|---|---|---:|---:|---:|---:|---:|"
for w in larson_sized mstress; do
  glibc=$("$bench" --alone="$w/new_delete" --items="$items")
  glibc_rss=$(field "$glibc" max_rss_kib)
  for cap in 65536 32768 16384 8192 4096; do
    run=$(CHUNKPMR_BENCH_MAX_CHUNK_BYTES=$cap "$bench" --alone="$w/chunkpmr" --items="$items")
    python3 - "$w" "$cap" "$run" "$glibc_rss" <<'PY'
import json, sys
w, cap, run, glibc_rss = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4])
rss = run["max_rss_kib"]
print(f"| {w} | chunkpmr | {cap // 1024} KiB | {run['ns_per_item']:.1f} | {rss / 1024:.1f} | "
      f"{rss / glibc_rss:.2f}x | {run['peak_bytes_held'] / 2**20:.1f} |")
PY
  done
  python3 - "$w" "$glibc" <<'PY'
import json, sys
w, run = sys.argv[1], json.loads(sys.argv[2])
print(f"| {w} | glibc malloc | - | {run['ns_per_item']:.1f} | {run['max_rss_kib'] / 1024:.1f} | 1.00x | - |")
PY
done
