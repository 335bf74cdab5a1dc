#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# valgrind memcheck over every test binary of a g++ Debug build (README's test build
# by default). Any memcheck error or definite leak fails the run. Stress tests run
# for a short time here (valgrind is ~50x slower).
#   bash test/valgrind.sh [build-dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/debug}
if [ ! -d "$build/test" ]; then
  bash "$root/scripts/install_deps.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build "$build" -j"$(nproc)" >/dev/null
fi
export CHUNKPMR_STRESS_SECONDS=${CHUNKPMR_STRESS_SECONDS:-0.5}
status=0
for t in "$build"/test/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  log="$build/valgrind-$name.log"
  extra=()
  # The children of a fork from a multithreaded parent exit holding the other threads'
  # memory, which memcheck (running in them too) reports as leaked (the child's exit
  # status becomes memcheck's error code): those cases run under the sanitizers only.
  [ "$name" = test_lifecycle ] &&
    extra=(--run_test='!fork_child_of_busy_parent_uses_resources_and_exits'
           --run_test='!fork_child_frees_blocks_of_a_parent_thread_that_did_not_follow')
  if valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
       --child-silent-after-fork=yes --log-file="$log" "$t" "${extra[@]}" --log_level=nothing --report_level=no >/dev/null 2>&1; then
    echo "valgrind clean: $name"
  else
    echo "valgrind FAILED: $name (see $log)"
    status=1
  fi
done
exit $status
