#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Mutation testing of src/: each mutant in test/mutation/mutants.txt (one search/replace
# in one file) is applied alone to a copy of the tree, the library and tests are rebuilt
# incrementally, and the test suite runs with a timeout. A mutant is killed when the
# suite fails, survives when it passes, times out when it hangs. The copy lives in
# build/mutation (the working tree is never touched); it is restored after each mutant.
#   bash test/mutation/run.sh            the CI subset (mutants marked `ci`)
#   bash test/mutation/run.sh --all      every mutant
#   bash test/mutation/run.sh ID ...     the named mutants
# Fails when a mutant's search text no longer occurs exactly once in its file (the list
# must follow the code), and prints the kill rate. Exit status 0 unless a mutant fails
# to apply or the unmutated suite fails; the rate is reported, not enforced here.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
list="$root/test/mutation/mutants.txt"
work="$root/build/mutation"
timeout_s=${MUTATION_TIMEOUT:-240}
mode=ci
ids=()
for a in "$@"; do
  case "$a" in
    --all) mode=all ;;
    *) mode=ids; ids+=("$a") ;;
  esac
done

# A fresh copy of the tracked files (and the working tree's changes to them).
rm -rf "$work/src"
mkdir -p "$work/src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/src")
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Debug -DCHUNKPMR_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$work/build" -j"$(nproc)" >/dev/null
echo "unmutated suite:"
(cd "$work/build" && timeout "$timeout_s" ctest >/dev/null) || { echo "the unmutated suite fails" >&2; exit 1; }
echo "  passes"

python3 - "$list" "$work" "$mode" "$timeout_s" "${ids[@]}" <<'PY'
import os, re, subprocess, sys, time
list_path, work, mode, timeout_s, *wanted = sys.argv[1:]
timeout_s = int(timeout_s)
mutants = []
for n, line in enumerate(open(list_path), 1):
    line = line.rstrip("\n")
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    fields = [f.strip() for f in line.split(" | ")]
    if len(fields) != 6:
        sys.exit(f"mutants.txt:{n}: expected 'id | ci|- | file | search | replace | what'")
    mid, ci, path, search, replace, what = fields
    unescape = lambda t: t.replace("\\n", "\n").replace("\\|", "|")
    mutants.append((mid, ci == "ci", path, unescape(search), unescape(replace), what))
if mode == "ci":
    chosen = [m for m in mutants if m[1]]
elif mode == "ids":
    chosen = [m for m in mutants if m[0] in wanted]
else:
    chosen = mutants
# Every mutant must still apply, whether chosen or not: the list cannot rot silently.
stale = []
for mid, _, path, search, _, _ in mutants:
    text = open(os.path.join(work, "src", path)).read()
    if text.count(search) != 1:
        stale.append(f"{mid} ({path}: search text found {text.count(search)} times)")
if stale:
    sys.exit("mutants that no longer apply:\n  " + "\n  ".join(stale))
results = []
for mid, _, path, search, replace, what in chosen:
    file = os.path.join(work, "src", path)
    original = open(file).read()
    open(file, "w").write(original.replace(search, replace))
    start = time.time()
    try:
        build = subprocess.run(["cmake", "--build", os.path.join(work, "build"), "-j", str(os.cpu_count())],
                               capture_output=True, text=True)
        if build.returncode != 0:
            outcome = "killed (does not compile)"
        else:
            try:
                test = subprocess.run(["ctest", "--stop-on-failure"],
                                      cwd=os.path.join(work, "build"), capture_output=True, text=True,
                                      timeout=timeout_s)
                if test.returncode == 0:
                    outcome = "SURVIVED"
                else:
                    failed = [m.group(1) for l in test.stdout.splitlines()
                              for m in [re.search(r"Test +#\d+: (\S+) .*(\*\*\*|Subprocess|Exception|Timeout)", l)] if m]
                    outcome = "killed by " + (",".join(failed) if failed else "the suite")
            except subprocess.TimeoutExpired:
                outcome = "timed out (killed)"
    finally:
        open(file, "w").write(original)
    results.append((mid, outcome, what))
    print(f"{mid:<32} {outcome:<40} {time.time() - start:5.0f} s  {what}", flush=True)
# Leave the copy built unmutated.
subprocess.run(["cmake", "--build", os.path.join(work, "build"), "-j", str(os.cpu_count())], capture_output=True)
killed = sum(1 for r in results if not r[1].startswith("SURVIVED"))
print(f"\nkill rate: {killed}/{len(results)} = {100.0 * killed / max(len(results), 1):.0f}%")
survivors = [r for r in results if r[1].startswith("SURVIVED")]
if survivors:
    print("survivors: " + ", ".join(r[0] for r in survivors))
PY
