#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Reruns the figures quoted in docs/TESTING.md and rewrites its "Figures of the last
# run" section: the stress tests (plain and TSan builds), the forced interleavings, the
# fault sweeps, the fuzzer and valgrind.
#   bash test/testing_report.sh [stress-seconds (default 5)] [fuzz-seconds (default 60)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
stress=${1:-5}
fuzz=${2:-60}
bash "$root/scripts/install_deps.sh"
cd "$root"
build() {  # dir, extra cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)" >/dev/null
}
build build/debug -DCMAKE_BUILD_TYPE=Debug
build build/tsan -DCMAKE_BUILD_TYPE=Debug -DCHUNKPMR_SANITIZE=thread
CXX=clang++ build build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHUNKPMR_BUILD_FUZZER=ON \
  -DCHUNKPMR_BUILD_TESTS=OFF -DCHUNKPMR_BUILD_EXAMPLES=OFF "-DCHUNKPMR_SANITIZE=address,undefined,fuzzer-no-link"

messages() {  # binary -> its BOOST_TEST_MESSAGE lines, with the colour codes stripped
  "$@" --log_level=message --color_output=no 2>&1 | grep -E "^(pipeline|mstress|remote|resource|budget)" || true
}
out=$(mktemp)
{
  echo "Produced by \`bash test/testing_report.sh $stress $fuzz\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(g++ --version | head -n1)."
  echo
  echo "Stress, g++ Debug build, ${stress} s per test:"
  echo '```'
  CHUNKPMR_STRESS_SECONDS=$stress messages build/debug/test/test_stress
  echo '```'
  echo "Stress, ThreadSanitizer build, ${stress} s per test:"
  echo '```'
  CHUNKPMR_STRESS_SECONDS=$stress messages build/tsan/test/test_stress
  echo '```'
  echo "Forced interleavings and fault sweeps (Debug):"
  echo '```'
  build/debug/test/test_interleavings --report_level=short --color_output=no 2>&1 | grep -E "passed|failed" | head -n 3
  messages build/debug/test/test_faults
  build/debug/test/test_faults --report_level=short --color_output=no 2>&1 | grep -E "assertions" | head -n 1
  echo '```'
  mkdir -p build/fuzz/corpus && cp test/fuzz/corpus/* build/fuzz/corpus/
  build/fuzz/fuzz_ops build/fuzz/corpus -max_total_time="$fuzz" -print_final_stats=1 > build/fuzz/fuzz.log 2>&1
  echo "Fuzzer (libFuzzer + ASan + UBSan, clang 14), ${fuzz} s from the committed corpus:"
  echo '```'
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)" build/fuzz/fuzz.log
  echo '```'
  echo "valgrind memcheck (Debug build, stress 0.5 s):"
  echo '```'
  bash test/valgrind.sh build/debug
  echo '```'
} > "$out"
python3 - "$out" docs/TESTING.md <<'PY'
import sys
figures = open(sys.argv[1]).read()
path = sys.argv[2]
doc = open(path).read()
begin, end = "<!-- figures:begin -->", "<!-- figures:end -->"
head, rest = doc.split(begin)
_, tail = rest.split(end)
open(path, "w").write(head + begin + "\n" + figures + end + tail)
PY
rm -f "$out"
echo "docs/TESTING.md updated"
