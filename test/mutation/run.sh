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
# Mutants marked `eq` are equivalent (no observable behaviour changes; their `what`
# field says why): they run with --all or by name, are reported apart and are left out
# of the kill rate. Fails when a mutant's search text no longer occurs exactly once in
# its file (the list must follow the code). Prints "kill rate: K/N (E equivalent
# excluded)" and writes build/mutation/results.md, a markdown table of every mutant run
# and the Boost.Test cases that killed it (the first failing test binary's).
# Exit status: non-zero when a mutant fails to apply, when the unmutated suite fails,
# or, for the CI subset only, when a mutant survives (CI catches a weakened suite);
# --all and named runs only report.
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
import datetime, os, re, signal, subprocess, sys, time
list_path, work, mode, timeout_s, *wanted = sys.argv[1:]
timeout_s = int(timeout_s)
mutants = []
for n, line in enumerate(open(list_path), 1):
    line = line.rstrip("\n")
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    fields = [f.strip() for f in line.split(" | ")]
    if len(fields) != 6 or fields[1] not in ("ci", "-", "eq"):
        sys.exit(f"mutants.txt:{n}: expected 'id | ci|-|eq | file | search | replace | what'")
    mid, kind, path, search, replace, what = fields
    unescape = lambda t: t.replace("\\n", "\n").replace("\\|", "|")
    mutants.append((mid, kind, path, unescape(search), unescape(replace), what))
ids_seen = [m[0] for m in mutants]
dups = sorted({i for i in ids_seen if ids_seen.count(i) > 1})
if dups:
    sys.exit("duplicate mutant ids: " + ", ".join(dups))
if mode == "ci":
    chosen = [m for m in mutants if m[1] == "ci"]
elif mode == "ids":
    unknown = [w for w in wanted if w not in ids_seen]
    if unknown:
        sys.exit("unknown mutant ids: " + ", ".join(unknown))
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
build_dir = os.path.join(work, "build")

def failing_cases(ctest_output):
    # Boost.Test names the failing case in each error line ('error: in "suite/case"'),
    # crashes included ('fatal error: in "case": signal: SIGABRT').
    cases = []
    for m in re.finditer(r'error: in "([^"]+)"', ctest_output):
        name = m.group(1).split("/")[-1]
        if name not in cases:
            cases.append(name)
    return cases

def run_in_own_group(cmd, cwd, timeout):
    """subprocess.run with a timeout that kills the whole process group: a mutant can
    hang a test's forked children, which must not outlive the run."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

results = []
started = time.time()
for mid, kind, path, search, replace, what in chosen:
    file = os.path.join(work, "src", path)
    original = open(file).read()
    open(file, "w").write(original.replace(search, replace))
    start = time.time()
    killers = ""
    try:
        build = subprocess.run(["cmake", "--build", build_dir, "-j", str(os.cpu_count())],
                               capture_output=True, text=True)
        if build.returncode != 0:
            outcome = "killed (does not compile)"
        else:
            try:
                test = run_in_own_group(["ctest", "--stop-on-failure", "--output-on-failure"],
                                        build_dir, timeout_s)
                if test.returncode == 0:
                    outcome = "SURVIVED"
                else:
                    failed = [m.group(1) for l in test.stdout.splitlines()
                              for m in [re.search(r"Test +#\d+: (\S+) .*(\*\*\*|Subprocess|Exception|Timeout)", l)] if m]
                    by = ",".join(failed) or "the suite"
                    outcome = "killed by " + by
                    cases = failing_cases(test.stdout)
                    killers = by + (": " + ", ".join(f"`{c}`" for c in cases) if cases else "")
            except subprocess.TimeoutExpired:
                outcome = "timed out (killed)"
                killers = "the suite hangs (timeout)"
    finally:
        open(file, "w").write(original)
    results.append((mid, kind, path, outcome, killers, what))
    label = "[eq] " if kind == "eq" else ""
    print(f"{mid:<32} {label + outcome:<40} {time.time() - start:5.0f} s  {what}", flush=True)
# Leave the copy built unmutated.
subprocess.run(["cmake", "--build", build_dir, "-j", str(os.cpu_count())], capture_output=True)
counted = [r for r in results if r[1] != "eq"]
equivalent = [r for r in results if r[1] == "eq"]
killed = sum(1 for r in counted if not r[3].startswith("SURVIVED"))
survivors = [r for r in counted if r[3].startswith("SURVIVED")]
rate = 100.0 * killed / max(len(counted), 1)
summary = f"kill rate: {killed}/{len(counted)} = {rate:.0f}% ({len(equivalent)} equivalent excluded)"
elapsed = time.time() - started
print(f"\n{summary}, {elapsed:.0f} s")
if survivors:
    print("survivors: " + ", ".join(r[0] for r in survivors))
eq_killed = [r for r in equivalent if not r[3].startswith("SURVIVED")]
if equivalent:
    print("equivalent (not counted): " + ", ".join(r[0] for r in equivalent))
if eq_killed:
    print("marked equivalent but killed (re-classify them): " + ", ".join(r[0] for r in eq_killed))
with open(os.path.join(work, "results.md"), "w") as out:
    out.write(f"Mutation run `{mode}` on {datetime.date.today().isoformat()}: {summary}.\n\n")
    out.write("| mutant | file | what it breaks | result |\n|---|---|---|---|\n")
    for mid, kind, path, outcome, killers, what in results:
        if kind == "eq":
            cell = "equivalent" + (" (but killed: " + (killers or outcome) + ")" if outcome != "SURVIVED" else "")
        elif outcome == "SURVIVED":
            cell = "**survived**"
        elif killers:
            cell = "killed by " + killers
        else:
            cell = outcome
        what_cell = what.replace("|", "\\|")
        out.write(f"| `{mid}` | `{path}` | {what_cell} | {cell} |\n")
if mode == "ci" and survivors:
    sys.exit("the CI subset has survivors: a test that killed them was weakened or lost")
PY
