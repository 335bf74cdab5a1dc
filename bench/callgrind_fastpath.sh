#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Instructions per allocate and per deallocate on the same-thread path, from callgrind
# totals: per allocate = (Ir(alloc, N2) - Ir(alloc, N1)) / (N2 - N1); per deallocate =
# (Ir(alloc_then_free, N2) - Ir(alloc, N2)) / N2, and the same for frees made by another
# thread (alloc_then_remote_free; its thread start is spread over N2 frees). Amortized
# over the run, so refills and buffer growth are included; the virtual call through
# memory_resource is included.
#   bash bench/callgrind_fastpath.sh BUILD_DIR   (prints a markdown table)
set -euo pipefail
build=$1
bin="$build/bench/bench_fastpath"
n1=100000
n2=300000
ir() {  # peer mode n -> total instructions
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" "$3" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "| resource | instructions per allocate | per deallocate | per deallocate on another thread |"
echo "|---|---:|---:|---:|"
for peer in chunkpmr std_monotonic std_unsync_pool std_sync_pool new_delete; do
  a1=$(ir "$peer" alloc $n1)
  a2=$(ir "$peer" alloc $n2)
  f2=$(ir "$peer" alloc_then_free $n2)
  r2=$(ir "$peer" alloc_then_remote_free $n2)
  python3 -c "print(f'| $peer | {($a2 - $a1) / ($n2 - $n1):.1f} | {($f2 - $a2) / $n2:.1f} | {($r2 - $a2) / $n2:.1f} |')"
done
