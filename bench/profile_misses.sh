#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Where the time goes in the workloads whose goals chunkpmr misses: each runs alone in a
# fresh process (the --alone mode of its benchmark) under `perf record -e cpu-clock`
# (a software clock: no hardware counters needed), and a markdown table gets, per
# workload, the five symbols with most samples and, for the first of them, the
# instruction with most samples (its share of that symbol's samples). Kernel symbols
# are marked [k]. Prints "(perf not available)" where perf cannot record.
#   bash bench/profile_misses.sh [BUILD_DIR]     (default: build/release, built already)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
out="$build/profile_misses"
mkdir -p "$out"
if ! command -v perf >/dev/null || ! perf record -e cpu-clock -o "$out/probe.data" true >/dev/null 2>&1; then
  echo "(perf not available)"
  exit 0
fi
# workload | benchmark binary | items
workloads=(
  "round_robin/chunkpmr/1024|bench_lifecycle|5000000"
  "round_robin/chunkpmr/1|bench_lifecycle|5000000"
  "mstress/chunkpmr|bench_chunk_source|1000000"
  "larson_sized/chunkpmr|bench_chunk_source|1000000"
  "release_million/chunkpmr|bench_chunk_source|30"
  "small_written/chunkpmr|bench_chunk_source|4000000"
)
[ "${REPORT_SMOKE:-0}" = 1 ] && workloads=("round_robin/chunkpmr/1024|bench_lifecycle|200000")
echo "| workload | top symbols (share of the process's samples) | hottest instruction of the first |"
echo "|---|---|---|"
i=0
for entry in "${workloads[@]}"; do
  IFS='|' read -r name binary items <<<"$entry"
  i=$((i + 1))
  data="$out/$i.data"
  perf record -q -e cpu-clock -o "$data" "$build/bench/$binary" --alone="$name" --items="$items" \
    >/dev/null 2>"$out/$i.log"
  perf report -i "$data" --no-children --sort dso,symbol --stdio 2>/dev/null >"$out/$i.report"
  python3 - "$out/$i.report" "$data" "$name" <<'PY'
import re, subprocess, sys
report, data, name = sys.argv[1:]
rows = []
for line in open(report):
    m = re.match(r"\s+([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*\S)", line)
    if m:  # perf pads the symbol and may add empty columns ("-  -") after it
        symbol = re.sub(r"(\s+-)+\s*$", "", m.group(4)).strip()
        rows.append((float(m.group(1)), m.group(3), symbol))
rows = rows[:5]
def short(sym):
    sym = re.sub(r"\(anonymous namespace\)::", "", sym)
    sym = re.sub(r"<.*>", "<…>", sym)
    return sym.replace("|", "\\|")
tops = "; ".join(f"{p:.1f}% {'[k] ' if k == 'k' else ''}`{short(s)}`" for p, k, s in rows)
hot = "-"
if rows and rows[0][1] != "k":
    text = subprocess.run(["perf", "annotate", "-i", data, "--stdio", "-s", rows[0][2]],
                          capture_output=True, text=True).stdout
    best, previous = None, None
    for line in text.splitlines():
        m = re.match(r"\s+([0-9.]+)\s+:\s+[0-9a-f]+:\s+(.*\S)", line)
        if not m:
            continue
        instruction = re.sub(r"\s+", " ", m.group(2)).replace("|", "\\|")
        if best is None or float(m.group(1)) > best[0]:
            best = (float(m.group(1)), instruction, previous)
        previous = instruction
    if best:
        # A clock sample lands on the instruction after the one that stalled: show both.
        hot = f"{best[0]:.1f}%: `{best[1]}`" + (f", after `{best[2]}`" if best[2] else "")
print(f"| {name} | {tops} | {hot} |")
PY
done
