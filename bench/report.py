#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""Tables from Google Benchmark JSON (bench_peers, with repetitions).

  report.py quick RUN.json                          README's quick job: legend, ratios with their spread
  report.py table RUN.json [LABEL=RUN.json ...]     ratio table on stdout
  report.py perf OUT.md --main RUN.json [--preload LABEL=RUN.json ...]
                 --callgrind TABLE.md --rss TABLE.md --command "..." --machine "..."
                 --isolated "LABEL=RUN.json" ...   (small_alloc alone under glibc settings)

  report.py lifecycle RUN.json                      Lifecycle section (bench_lifecycle) on stdout
  report.py alone RESULTS.jsonl                     fresh-process table (bench/lifecycle_alone.sh)
  report.py chunk-source RESULTS.jsonl              goals and fresh-process table (bench/chunk_source_alone.sh)
  report.py merge-runs RUNS.jsonl STRACE BASE        one results line: the medians of a run's sweeps
  perf also takes --lifecycle RUN.json [--lifecycle-alone TABLE.md] [--chunk-source RESULTS.jsonl]
                 [--release-split TABLE.md]

Extra runs (LABEL=file) are runs of the same binary under LD_PRELOAD of another
malloc; their new_delete rows are shown as peer LABEL (e.g. mimalloc), as a ratio to
the chunkpmr rows of the same run when it has them."""
import json
import math
import statistics
import sys
from collections import defaultdict

PEERS = ["chunkpmr", "std_monotonic", "std_unsync_pool", "std_sync_pool", "boost_monotonic",
         "boost_unsync_pool", "boost_sync_pool", "new_delete", "tbb_scalable"]


def load(path, relabel_new_delete=None):
    """-> {workload: {peer: {"ns": median ns per item, "fp": footprint or nan}}}"""
    with open(path) as f:
        data = json.load(f)
    rows = defaultdict(dict)
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if b.get("run_type") != "aggregate" and any(
                x.get("run_type") == "aggregate" for x in data["benchmarks"]):
            continue  # repetitions present: use the medians only
        parts = b["run_name"].split("/")
        workload, peer = parts[0], parts[1]
        if b.get("threads", 1) > 1 or workload == "independent_threads":
            workload += f"/{b.get('threads', 1)}t"
        if relabel_new_delete:
            if peer not in ("new_delete", "chunkpmr"):
                continue
            peer = relabel_new_delete if peer == "new_delete" else "chunkpmr_ref"
        if "items_per_second" in b:
            ns = 1e9 / b["items_per_second"]
        else:  # release_many: time per release() in ms
            ns = b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
        rows[workload][peer] = {"ns": ns, "fp": b.get("upstream_per_requested", math.nan),
                                "requested": b.get("requested_bytes", math.nan),
                                "faults": b.get("minor_faults_per_round", math.nan)}
    if relabel_new_delete:
        # The preloaded malloc is compared with chunkpmr measured in the same process.
        for by_peer in rows.values():
            ref = by_peer.pop("chunkpmr_ref", None)
            if ref and relabel_new_delete in by_peer:
                by_peer[relabel_new_delete]["ref_ns"] = ref["ns"]
    return rows


def merge(main, extras):
    peers = list(PEERS)
    for label, rows in extras:
        peers.append(label)
        for workload, by_peer in rows.items():
            main.setdefault(workload, {}).update(by_peer)
    return main, peers


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:.1f} us"
    return f"{ns:.1f} ns"


def ratio_table(rows, peers, markdown):
    present = [p for p in peers if any(p in r for r in rows.values())]
    lines = []
    if markdown:
        lines.append("| workload | chunkpmr | " + " | ".join(p for p in present if p != "chunkpmr") + " |")
        lines.append("|---|---:|" + "---:|" * (len(present) - 1))
    else:
        lines.append(f"{'workload':<24}" + "".join(f"{p:>19}" for p in present))
    for workload in sorted(rows):
        by_peer = rows[workload]
        ours = by_peer.get("chunkpmr", {}).get("ns", math.nan)
        cells = []
        for p in present:
            if p not in by_peer:
                cells.append("-")
            elif p == "chunkpmr":
                cells.append(fmt_time(ours))
            else:
                cells.append(f"x{by_peer[p]['ns'] / by_peer[p].get('ref_ns', ours):.2f}")
        if markdown:
            lines.append(f"| {workload} | " + " | ".join(cells) + " |")
        else:
            lines.append(f"{workload:<24}" + "".join(f"{c:>19}" for c in cells))
    return "\n".join(lines)


def footprint_table(rows, peers):
    present = [p for p in peers if any(not math.isnan(r.get(p, {}).get("fp", math.nan)) for r in rows.values())]
    lines = ["| workload | " + " | ".join(present) + " |", "|---|" + "---:|" * len(present)]
    for workload in sorted(rows):
        cells = []
        for p in present:
            fp = rows[workload].get(p, {}).get("fp", math.nan)
            cells.append("-" if math.isnan(fp) else f"{fp:.2f}")
        if any(c != "-" for c in cells):
            lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_table(rows, peers):
    one, two = rows.get("independent_threads/1t", {}), rows.get("independent_threads/2t", {})
    lines = ["| resource | 1 thread (ns/item) | 2 threads (ns/item, wall) | speed-up |", "|---|---:|---:|---:|"]
    for p in peers:
        if p in one and p in two:
            lines.append(f"| {p} | {one[p]['ns']:.1f} | {two[p]['ns']:.1f} | {one[p]['ns'] / two[p]['ns']:.2f}x |")
    return "\n".join(lines)


def _status(ok):
    return "met" if ok else "missed"


def callgrind_rows(text):
    """callgrind_fastpath.sh's table -> {resource: [per allocate, per free, per remote free]}"""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4:
            try:
                out[cells[0]] = [float(c) for c in cells[1:]]
            except ValueError:
                pass
    return out


def rss_rows(text):
    """bench_chunk_rss's second table -> {bytes allocated: (chunkpmr KiB, monotonic KiB)}"""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].endswith(" B") and cells[1].endswith(" KiB"):
            out[cells[0]] = (float(cells[1].split()[0]), float(cells[2].split()[0]))
    return out


def suite_goals(rows, callgrind_text, rss_text, isolated_runs):
    """The goals of the main suite, each with the value measured in this run and its status."""
    lines = ["| goal | measured | status |", "|---|---|---|"]

    def ns(workload, peer):
        return rows.get(workload, {}).get(peer, {}).get("ns", math.nan)

    small = ns("small_alloc", "chunkpmr") / ns("small_alloc", "std_monotonic")
    lines.append(f"| `small_alloc` ≤ 1.1× monotonic's time (in the suite's process) | {small:.2f}× | {_status(small <= 1.1)} |")
    for label, iso in isolated_runs:
        if label == "default":
            r = iso["small_alloc"]
            v = r["chunkpmr"]["ns"] / r["std_monotonic"]["ns"]
            lines.append(f"| `small_alloc` alone, glibc defaults, ≤ 1.1× monotonic | {v:.2f}× "
                         f"({r['chunkpmr']['faults']:.0f} vs {r['std_monotonic']['faults']:.0f} faults per round) | {_status(v <= 1.1)} |")
    cg = callgrind_rows(callgrind_text)
    if "chunkpmr" in cg and "std_monotonic" in cg:
        d = cg["chunkpmr"][0] - cg["std_monotonic"][0]
        lines.append(f"| instructions per allocate within +5 of monotonic (callgrind) | {cg['chunkpmr'][0]:.1f} vs "
                     f"{cg['std_monotonic'][0]:.1f} ({d:+.1f}) | {_status(d <= 5)} |")
    churn = rows.get("container_churn", {})
    others = {p: v["ns"] / v.get("ref_ns", churn["chunkpmr"]["ns"]) for p, v in churn.items()
              if p not in ("chunkpmr", "std_monotonic", "boost_monotonic")}
    if others:
        closest = min(others, key=others.get)
        lines.append(f"| `container_churn` faster than every pool resource and malloc | slowest margin: "
                     f"{closest} takes {others[closest]:.2f}× chunkpmr's time | {_status(others[closest] > 1)} |")
    fp = churn.get("chunkpmr", {}).get("fp", math.nan)
    live = churn.get("chunkpmr", {}).get("requested", math.nan)
    bound = 2 + 65536 / live if live and not math.isnan(live) else 2.0  # 2× the live set + one 64 KiB chunk
    lines.append(f"| `container_churn`: bytes held ≤ 2× the live set + one 64 KiB chunk | {fp:.2f}× the live set "
                 f"(bound {bound:.2f}×, live set {live / 1024:.0f} KiB) | {_status(fp <= bound)} |")
    pc = rows.get("producer_consumer", {})
    if "std_sync_pool" in pc:
        v = pc["std_sync_pool"]["ns"] / pc["chunkpmr"]["ns"]
        lines.append(f"| `producer_consumer` ≥ 3× `synchronized_pool_resource`'s throughput | {v:.2f}× | {_status(v >= 3)} |")
    if "mimalloc" in pc:
        v = pc["mimalloc"]["ns"] / pc["mimalloc"].get("ref_ns", pc["chunkpmr"]["ns"])
        lines.append(f"| `producer_consumer` ≥ mimalloc's throughput (same preloaded process) | mimalloc takes {v:.2f}× "
                     f"chunkpmr's time | {_status(v >= 1)} |")
    one, two = rows.get("independent_threads/1t", {}), rows.get("independent_threads/2t", {})
    if "chunkpmr" in one and "chunkpmr" in two:
        v = one["chunkpmr"]["ns"] / two["chunkpmr"]["ns"]
        lines.append(f"| 2 independent threads ≥ 1.8× one thread | {v:.2f}× | {_status(v >= 1.8)} |")
    rel = rows.get("release_many", {})
    if "chunkpmr" in rel and "std_monotonic" in rel:
        v = rel["chunkpmr"]["ns"] / rel["std_monotonic"]["ns"]
        lines.append(f"| `release()` of a million blocks ≤ 2× monotonic's (in the suite's process) | "
                     f"{fmt_time(rel['chunkpmr']['ns'])}, {v:.2f}× | {_status(v <= 2)} |")
    rss = rss_rows(rss_text)
    for size in ("256 B", "2048 B"):
        if size in rss:
            ours, mono = rss[size]
            lines.append(f"| RSS of a resource that allocates {size} within 4 KiB of monotonic's | "
                         f"{ours:.1f} vs {mono:.1f} KiB | {_status(ours - mono <= 4)} |")
    return "\n".join(lines)


def isolated_table(runs):
    """small_alloc run alone under several glibc settings: [(label, rows), ...]."""
    lines = ["| glibc settings | chunkpmr ns/item | monotonic ns/item | monotonic / chunkpmr "
             "| chunkpmr faults per round | monotonic faults per round |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, rows in runs:
        r = rows["small_alloc"]
        ours, mono = r["chunkpmr"], r["std_monotonic"]
        lines.append(f"| {label} | {ours['ns']:.2f} | {mono['ns']:.2f} | x{mono['ns'] / ours['ns']:.2f} "
                     f"| {ours['faults']:.0f} | {mono['faults']:.0f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------
# bench_lifecycle: request/<resource>/<placement>, request_2threads/...,
# request_with_10k_live/..., round_robin/<resource>/<N>.

LIFECYCLE_REQUEST_PEERS = ["chunkpmr", "std_monotonic", "std_unsync_pool"]
LIFECYCLE_RR_PEERS = ["chunkpmr", "std_unsync_pool", "std_sync_pool", "boost_unsync_pool"]
# Not peers: a bump allocator reduced to its bump (bench_lifecycle.cpp, BumpBound).
LIFECYCLE_RR_BOUNDS = ["bump_bound_64k", "bump_bound_4k"]
PLACEMENTS = ["stack", "new"]
RR_SIZES = ["1", "8", "9", "64", "1024"]


def load_lifecycle(path):
    """-> {(workload, resource, placement_or_N, threads): median ns per item (wall)}"""
    with open(path) as f:
        data = json.load(f)
    has_aggregates = any(b.get("run_type") == "aggregate" for b in data["benchmarks"])
    rows = {}
    for b in data["benchmarks"]:
        if has_aggregates and (b.get("run_type") != "aggregate" or b.get("aggregate_name") != "median"):
            continue
        if "items_per_second" not in b:
            continue
        parts = b["run_name"].split("/")
        rows[(parts[0], parts[1], parts[2], int(b.get("threads", 1)))] = 1e9 / b["items_per_second"]
    return rows


def _cell(v, fmt="{:.1f}"):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _div(a, b):
    return a / b if a is not None and b is not None and b > 0 else None


def lifecycle_goals(rows):
    """[(goal, measured, status)], every status computed from rows."""
    get = rows.get
    goals = []

    def status(values, ok):
        if not values or any(v is None for v in values):
            return "not measured"
        return "met" if all(ok(v) for v in values) else "missed"

    ratios = {p: _div(get(("request", "chunkpmr", p, 1)), get(("request", "std_monotonic", p, 1)))
              for p in PLACEMENTS}
    goals.append(("request ≤ 1.3× monotonic's time (resource on the stack and `new`ed)",
                  ", ".join(f"{p} {_times(v)}" for p, v in ratios.items()),
                  status(list(ratios.values()), lambda v: v <= 1.3)))

    speedups = {p: _div(get(("request_2threads", "chunkpmr", p, 1)), get(("request_2threads", "chunkpmr", p, 2)))
                for p in PLACEMENTS}
    goals.append(("requests on 2 threads ≥ 1.8× one thread's throughput",
                  ", ".join(f"{p} {_times(v)}" for p, v in speedups.items()),
                  status(list(speedups.values()), lambda v: v >= 1.8)))

    changes = {}
    for p in PLACEMENTS:
        r = _div(get(("request_with_10k_live", "chunkpmr", p, 1)), get(("request", "chunkpmr", p, 1)))
        changes[p] = None if r is None else r - 1
    goals.append(("10,000 live resources change the request's time by < 10%",
                  ", ".join(f"{p} {_cell(None if v is None else 100 * v, '{:+.0f}')}%" for p, v in changes.items()),
                  status(list(changes.values()), lambda v: abs(v) < 0.10)))

    base = get(("round_robin", "chunkpmr", "1", 1))
    present = [n for n in RR_SIZES if ("round_robin", "chunkpmr", n, 1) in rows]
    vs_one = {n: _div(rows[("round_robin", "chunkpmr", n, 1)], base) for n in present if n != "1"}
    goals.append(("round robin over N resources ≤ 2× chunkpmr's time at N=1, at every N",
                  ", ".join(f"N={n} {_times(v)}" for n, v in vs_one.items()) or "-",
                  status(list(vs_one.values()), lambda v: v <= 2.0)))

    vs_pool = {n: _div(rows[("round_robin", "chunkpmr", n, 1)], get(("round_robin", "std_unsync_pool", n, 1)))
               for n in present}
    goals.append(("round robin faster than unsynchronized_pool_resource, at every N",
                  "chunkpmr's time / the pool's: " +
                  (", ".join(f"N={n} {_cell(v, '{:.2f}')}" for n, v in vs_pool.items()) or "-"),
                  status(list(vs_pool.values()), lambda v: v < 1.0)))
    return goals


def lifecycle_section(rows):
    out = ["| goal | measured | status |", "|---|---|---|"]
    out += [f"| {g} | {m} | {s} |" for g, m, s in lifecycle_goals(rows)]
    out.append("")
    out.append("Requests: median ns per request (2 threads: wall time per request, both threads together).")
    out.append("")
    out.append("| workload | placement | " + " | ".join(LIFECYCLE_REQUEST_PEERS) + " | chunkpmr / monotonic |")
    out.append("|---|---|" + "---:|" * (len(LIFECYCLE_REQUEST_PEERS) + 1))
    for workload, threads, label in [("request", 1, "request"),
                                     ("request_with_10k_live", 1, "request, 10k resources live"),
                                     ("request_2threads", 1, "request_2threads, 1 thread"),
                                     ("request_2threads", 2, "request_2threads, 2 threads")]:
        for p in PLACEMENTS:
            vals = [rows.get((workload, r, p, threads)) for r in LIFECYCLE_REQUEST_PEERS]
            if all(v is None for v in vals):
                continue
            ratio = _div(vals[0], vals[1])
            out.append(f"| {label} | {p} | " + " | ".join(_cell(v) for v in vals) +
                       f" | {_cell(ratio, '{:.2f}')} |")
    out.append("")
    out.append("Two threads, each creating and destroying its own resources: throughput of 2 threads / 1 thread.")
    out.append("")
    out.append("| resource | placement | 1 thread (ns/request) | 2 threads (ns/request, wall) | speed-up |")
    out.append("|---|---|---:|---:|---:|")
    for r in LIFECYCLE_REQUEST_PEERS:
        for p in PLACEMENTS:
            one, two = rows.get(("request_2threads", r, p, 1)), rows.get(("request_2threads", r, p, 2))
            if one is None and two is None:
                continue
            out.append(f"| {r} | {p} | {_cell(one)} | {_cell(two)} | {_cell(_div(one, two), '{:.2f}')}× |")
    out.append("")
    out.append("Round robin: median ns per block replaced (N resources, 16 live blocks each).")
    out.append("")
    columns = LIFECYCLE_RR_PEERS + LIFECYCLE_RR_BOUNDS
    out.append("| N | " + " | ".join(columns) + " | chunkpmr / its N=1 | " +
               " | ".join(f"{b} / its N=1" for b in LIFECYCLE_RR_BOUNDS) + " | chunkpmr / std_unsync_pool |")
    out.append("|---:|" + "---:|" * (len(columns) + len(LIFECYCLE_RR_BOUNDS) + 2))
    for n in RR_SIZES:
        vals = [rows.get(("round_robin", r, n, 1)) for r in columns]
        if all(v is None for v in vals):
            continue
        own = [_cell(_div(rows.get(("round_robin", r, n, 1)), rows.get(("round_robin", r, "1", 1))), '{:.2f}')
               for r in ["chunkpmr"] + LIFECYCLE_RR_BOUNDS]
        out.append(f"| {n} | " + " | ".join(_cell(v) for v in vals) + " | " + " | ".join(own) +
                   f" | {_cell(_div(vals[0], vals[1]), '{:.2f}')} |")
    return "\n".join(out)


SYSCALLS = ["mmap", "munmap", "brk", "madvise"]


def strace_counts(path):
    """strace -c summary -> {syscall: calls}; the total is the sum of the rows."""
    counts = {}
    with open(path) as f:
        for line in f:
            tokens = line.split()
            if len(tokens) < 5 or tokens[-1] == "total" or not tokens[0][0].isdigit():
                continue
            counts[tokens[-1]] = int(tokens[3])
    counts["total"] = sum(counts.values())
    return counts


def alone_table(path):
    """Lines of bench_lifecycle --alone JSON, each with "strace" (the run of n items) and
    "strace_base" (the same workload with 1 item): syscalls per item are the difference
    over n - 1, so process start-up, setup and teardown cancel out."""
    results = [json.loads(line) for line in open(path) if line.strip()]
    by_name = {r["workload"]: r for r in results}
    lines = ["| workload | ns/item | ratio | page faults/item | " +
             " | ".join(f"{s}/item" for s in SYSCALLS) + " | syscalls/item | max RSS (MiB) |",
             "|---|---:|---:|---:|" + "---:|" * (len(SYSCALLS) + 2)]
    for r in results:
        parts = r["workload"].split("/")
        if parts[0] == "round_robin":
            ref = by_name.get(f"round_robin/{parts[1]}/1")
            ref_label = "N=1"
        else:
            ref = by_name.get(f"{parts[0]}/std_monotonic/{parts[2]}")
            ref_label = "monotonic"
        ratio = f"{r['ns_per_item'] / ref['ns_per_item']:.2f}× {ref_label}" if ref else "-"
        if r.get("strace") and r.get("strace_base"):
            full, base = strace_counts(r["strace"]), strace_counts(r["strace_base"])
            n = max(r["items"] - 1, 1)
            per = {k: (full.get(k, 0) - base.get(k, 0)) / n for k in SYSCALLS + ["total"]}
            sys_cells = [f"{per[k]:.3f}".replace("-0.000", "0.000") for k in SYSCALLS + ["total"]]
        else:
            sys_cells = ["-"] * (len(SYSCALLS) + 1)
        lines.append(f"| {r['workload']} | {r['ns_per_item']:.1f} | {ratio} | {r['minor_faults_per_item']:.3f} | " +
                     " | ".join(sys_cells) + f" | {r['max_rss_kib'] / 1024:.1f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------
# bench_chunk_source alone (bench/chunk_source_alone.sh): one JSON line per run, each
# with "bench" (workload), "peer", "malloc" and the strace files.

CHUNK_SOURCE_RELEASE = ["small_written", "small_untouched", "mixed_release_cycle", "release_million"]
CHUNK_SOURCE_CLASSIC = ["larson_sized", "xmalloc_fixed", "xmalloc_random", "mstress"]


def chunk_source_label(r):
    """The peer as shown: new_delete runs are named by their malloc."""
    return r["malloc"] if r["peer"] == "new_delete" else r["peer"]


MERGED_FIELDS = ["ns_per_item", "wall_ns_per_item", "minor_faults_per_item", "max_rss_kib",
                 "peak_bytes_held", "upstream_peak_bytes"]


def merge_runs(runs_path, strace, strace_base):
    """The sweeps of one run (one JSON line each) -> one line: each measured field is the
    median, and its values per sweep are kept under FIELD + "_runs"."""
    runs = [json.loads(line) for line in open(runs_path) if line.strip()]
    merged = dict(runs[0])
    for field in MERGED_FIELDS:
        values = [r[field] for r in runs]
        merged[field] = statistics.median(values)
        merged[field + "_runs"] = values
    merged["strace"], merged["strace_base"] = strace, strace_base
    return json.dumps(merged)


def load_chunk_source(path):
    results = [json.loads(line) for line in open(path) if line.strip()]
    return results, {(r["bench"], chunk_source_label(r)): r for r in results}


def syscalls_per_item(r):
    """{syscall: calls per item}: the n-item strace run minus the 1-item run, over n - 1."""
    if not (r.get("strace") and r.get("strace_base")):
        return None
    full, base = strace_counts(r["strace"]), strace_counts(r["strace_base"])
    n = max(r["items"] - 1, 1)
    return {k: (full.get(k, 0) - base.get(k, 0)) / n for k in SYSCALLS + ["total"]}


def _per_item(v):
    if v == 0:
        return "0"
    return f"{v:.3f}" if abs(v) >= 0.01 else f"{v:.1e}"


def _times(v):
    return "-" if v is None else f"{v:.2f}×"


def chunk_source_reference(bench):
    return ("std_monotonic", "monotonic") if bench in CHUNK_SOURCE_RELEASE else ("glibc", "glibc")


def chunk_source_goals(by_key):
    """[(goal, measured, status)], every value and status computed from the run."""
    def get(bench, peer, field="ns_per_item"):
        r = by_key.get((bench, peer))
        return None if r is None else r[field]

    def status(ok, *values):
        if any(v is None for v in values):
            return "not measured"
        return "met" if ok else "missed"

    def spread(bench, ours, theirs, field="ns_per_item"):
        """' (a–b over N sweeps)': the lowest and highest of the per-sweep ratios."""
        a, b = by_key.get((bench, ours)), by_key.get((bench, theirs))
        if a is None or b is None or field + "_runs" not in a or field + "_runs" not in b:
            return ""
        ratios = sorted(x / y for x, y in zip(a[field + "_runs"], b[field + "_runs"]) if y)
        if len(ratios) < 2:
            return ""
        return f" ({ratios[0]:.2f}–{ratios[-1]:.2f}× over {len(ratios)} sweeps)"

    goals = []
    for bench, limit in [("small_written", 1.1), ("small_untouched", 1.5), ("mixed_release_cycle", 1.1),
                         ("release_million", 2.0)]:
        v = _div(get(bench, "chunkpmr"), get(bench, "std_monotonic"))
        goals.append((f"{bench} ≤ {limit:g}× monotonic's time",
                      f"{_times(v)}{spread(bench, 'chunkpmr', 'std_monotonic')}",
                      status(v is not None and v <= limit, v)))
    v = _div(get("mixed_release_cycle", "glibc"), get("mixed_release_cycle", "chunkpmr"))
    goals.append(("mixed_release_cycle ≥ 3× faster than glibc's per-object frees",
                  f"glibc's time / chunkpmr's = {_times(v)}{spread('mixed_release_cycle', 'glibc', 'chunkpmr')}",
                  status(v is not None and v >= 3.0, v)))
    for bench in ["larson_sized", "mstress"]:
        v = _div(get(bench, "chunkpmr"), get(bench, "glibc"))
        goals.append((f"{bench}: speed ≥ glibc's",
                      f"chunkpmr's time = {_times(v)} glibc's{spread(bench, 'chunkpmr', 'glibc')}",
                      status(v is not None and v <= 1.0, v)))
    for bench in ["xmalloc_fixed", "xmalloc_random"]:
        v = _div(get(bench, "chunkpmr"), get(bench, "mimalloc"))
        goals.append((f"{bench}: speed ≥ mimalloc's",
                      f"chunkpmr's time = {_times(v)} mimalloc's{spread(bench, 'chunkpmr', 'mimalloc')}",
                      status(v is not None and v <= 1.0, v)))
    for bench, ref in [("larson_sized", "glibc"), ("mstress", "glibc"),
                       ("xmalloc_fixed", "mimalloc"), ("xmalloc_random", "mimalloc")]:
        ours, theirs = get(bench, "chunkpmr", "max_rss_kib"), get(bench, ref, "max_rss_kib")
        v = _div(ours, theirs)
        measured = (f"{_times(v)} ({_cell(None if ours is None else ours / 1024)} vs "
                    f"{_cell(None if theirs is None else theirs / 1024)} MiB)"
                    f"{spread(bench, 'chunkpmr', ref, 'max_rss_kib')}")
        goals.append((f"{bench}: peak RSS ≤ 2× {ref}'s", measured, status(v is not None and v <= 2.0, v)))
    return goals


def chunk_source_table(results, by_key):
    lines = ["| workload | peer | items | ns/item | ratio | × mimalloc | page faults/item | " +
             " | ".join(f"{s}/item" for s in SYSCALLS) +
             " | syscalls/item | max RSS (MiB) | chunkpmr peak held (MiB) |",
             "|---|---|---:|---:|---:|---:|---:|" + "---:|" * (len(SYSCALLS) + 3)]
    for r in results:
        bench, label = r["bench"], chunk_source_label(r)
        ref_peer, ref_label = chunk_source_reference(bench)
        ref = by_key.get((bench, ref_peer))
        ratio = f"{r['ns_per_item'] / ref['ns_per_item']:.2f}× {ref_label}" if ref else "-"
        mi = by_key.get((bench, "mimalloc")) if bench.startswith("xmalloc") else None
        vs_mi = f"{r['ns_per_item'] / mi['ns_per_item']:.2f}×" if mi else "-"
        per = syscalls_per_item(r)
        sys_cells = [_per_item(per[k]) for k in SYSCALLS + ["total"]] if per else ["-"] * (len(SYSCALLS) + 1)
        held = r.get("peak_bytes_held", -1)
        peer = f"new_delete ({label})" if r["peer"] == "new_delete" else label
        lines.append(f"| {bench} | {peer} | {r['items']} | {fmt_time(r['ns_per_item'])} | {ratio} | {vs_mi} "
                     f"| {_per_item(r['minor_faults_per_item'])} | " + " | ".join(sys_cells) +
                     f" | {r['max_rss_kib'] / 1024:.1f} | {'-' if held < 0 else f'{held / 2**20:.1f}'} |")
    return "\n".join(lines)


def chunk_source_section(path):
    results, by_key = load_chunk_source(path)
    out = ["| goal | measured | status |", "|---|---|---|"]
    out += [f"| {g} | {m} | {s} |" for g, m, s in chunk_source_goals(by_key)]
    out.append("")
    out.append(chunk_source_table(results, by_key))
    return "\n".join(out)


def parse_extras(args):
    extras = []
    for a in args:
        label, path = a.split("=", 1)
        extras.append((label, load(path, relabel_new_delete=label)))
    return extras


def load_repetitions(path):
    """-> {workload: {peer: [ns per item of each repetition]}} (runs without aggregates)"""
    with open(path) as f:
        data = json.load(f)
    reps = defaultdict(lambda: defaultdict(list))
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" or "items_per_second" not in b:
            continue
        parts = b["run_name"].split("/")
        workload = parts[0] + (f"/{b['threads']}t" if b.get("threads", 1) > 1 else "")
        reps[workload][parts[1]].append(1e9 / b["items_per_second"])
    return reps


QUICK_LEGEND = """Workloads (bench/bench_peers.cpp); an item is one allocation (small_alloc), one
container element built and dropped (container_churn), one string handed from a producer
to a consumer thread (producer_consumer), one block replaced (larson).
  small_alloc        65536 blocks of 8-64 B, no frees, then release()
  container_churn    pmr::vector<pmr::string> and pmr::vector<int> built and dropped
  producer_consumer  one thread creates pmr strings, another destroys them
  larson             two threads replace random blocks, swapping their arrays
Columns: chunkpmr's median time per item; for each peer its median time as a multiple of
chunkpmr's (x2.00 = the peer takes twice as long) and, in brackets, the spread over the
repetitions (lowest to highest ratio). '-': the peer cannot run the workload (not
thread-safe, or no release()). 'noisy': chunkpmr's own repetitions differ by more than
30%, so read that row's ratios with care."""


def quick_table(path):
    reps = load_repetitions(path)
    present = [p for p in PEERS if any(p in r for r in reps.values())]
    width = 26
    lines = [f"{'workload':<20}" + "".join(f"{p:>{width}}" for p in present)]
    for workload in sorted(reps):
        by_peer = reps[workload]
        ours = sorted(by_peer.get("chunkpmr", []))
        if not ours:
            continue
        mid = ours[len(ours) // 2]
        noisy = ours[-1] / ours[0] > 1.3
        cells = []
        for p in present:
            if p not in by_peer:
                cells.append("-")
            elif p == "chunkpmr":
                cells.append(fmt_time(mid) + (" noisy" if noisy else ""))
            else:
                theirs = sorted(by_peer[p])
                med = theirs[len(theirs) // 2] / mid
                lo, hi = theirs[0] / ours[-1], theirs[-1] / ours[0]
                cells.append(f"x{med:.2f} [{lo:.2f}-{hi:.2f}]")
        lines.append(f"{workload:<20}" + "".join(f"{c:>{width}}" for c in cells))
    return QUICK_LEGEND + "\n\n" + "\n".join(lines)


def svg_bars(title, groups, unit_note, log_scale=True):
    """A horizontal bar chart as SVG text, no dependencies. groups: [(group label,
    [(bar label, value)])]; with log_scale, bars grow with log10(value) around 1 (values
    are ratios: 1 = same as chunkpmr)."""
    bar_h, gap, left, width = 16, 6, 230, 420
    rows = sum(len(bars) for _, bars in groups) + len(groups)
    height = 60 + rows * (bar_h + gap)
    values = [v for _, bars in groups for _, v in bars if v and v > 0 and not math.isnan(v)]
    top = max([abs(math.log10(v)) for v in values] + [1.0]) if log_scale else max(values + [1.0])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{title}</text>',
           f'<text x="10" y="38" fill="#555">{unit_note}</text>']
    y = 52
    mid = left + width / 2 if log_scale else left
    if log_scale:
        out.append(f'<line x1="{mid}" y1="46" x2="{mid}" y2="{height - 4}" stroke="#999"/>')
    for group, bars in groups:
        out.append(f'<text x="10" y="{y + bar_h - 3}" font-weight="bold">{group}</text>')
        y += bar_h + gap
        for label, v in bars:
            out.append(f'<text x="24" y="{y + bar_h - 3}">{label}</text>')
            if v and v > 0 and not math.isnan(v):
                if log_scale:
                    length = (width / 2) * math.log10(v) / top
                    x = mid if length >= 0 else mid + length
                    color = "#4a7" if v >= 1 else "#c54"
                    out.append(f'<rect x="{x:.1f}" y="{y}" width="{abs(length):.1f}" height="{bar_h}" fill="{color}"/>')
                    out.append(f'<text x="{max(x + abs(length), mid) + 4:.1f}" y="{y + bar_h - 3}">x{v:.2f}</text>')
                else:
                    length = width * v / top
                    out.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="#47a"/>')
                    out.append(f'<text x="{left + length + 4:.1f}" y="{y + bar_h - 3}">{v:.0f}</text>')
            y += bar_h + gap
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_charts(rows, lifecycle_rows, directory):
    """docs/perf_peers.svg (each peer's time over chunkpmr's on the headline workloads)
    and docs/perf_requests.svg (ns per short-lived request), from this run's data."""
    groups = []
    for workload in ("small_alloc", "container_churn", "producer_consumer", "larson"):
        by_peer = rows.get(workload, {})
        ours = by_peer.get("chunkpmr", {}).get("ns", math.nan)
        bars = [(p, d["ns"] / d.get("ref_ns", ours)) for p, d in sorted(by_peer.items()) if p != "chunkpmr"]
        if bars:
            groups.append((workload, bars))
    with open(f"{directory}/perf_peers.svg", "w") as f:
        f.write(svg_bars("Each peer's time per item as a multiple of chunkpmr's",
                         groups, "log scale; right of the line (green): the peer is slower than chunkpmr"))
    groups = []
    for placement in ("stack", "new"):
        bars = []
        for peer in ("chunkpmr", "std_monotonic", "std_unsync_pool"):
            v = lifecycle_rows.get(("request", peer, placement, 1))
            if v is not None:
                bars.append((peer, v))
        if bars:
            groups.append((f"request, resource on the {placement}" if placement == "stack" else "request, resource new'ed", bars))
    with open(f"{directory}/perf_requests.svg", "w") as f:
        f.write(svg_bars("A short-lived request: create a resource, 20 pmr strings, destroy",
                         groups, "ns per request (median), lower is better", log_scale=False))


def choosing_values(rows, lifecycle_alone_path, chunk_source_path, rss_text):
    """{placeholder: text} for CHOOSING.md.in, every value from this run."""
    v = {}

    def x(value):
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"

    churn = rows.get("container_churn", {})
    ours = churn.get("chunkpmr", {}).get("ns", math.nan)
    others = {p: d["ns"] / d.get("ref_ns", ours) for p, d in churn.items()
              if p not in ("chunkpmr", "std_monotonic", "boost_monotonic")}
    closest = min(others, key=others.get) if others else "n/a"
    v["CHURN_CLOSEST"] = closest
    v["CHURN_CLOSEST_X"] = x(others.get(closest))
    v["CHURN_FP"] = x(churn.get("chunkpmr", {}).get("fp"))
    v["CHURN_MONO_FP"] = f"{churn.get('std_monotonic', {}).get('fp', math.nan):.0f}"
    pc = rows.get("producer_consumer", {})
    v["PC_SYNC"] = x(pc.get("std_sync_pool", {}).get("ns", math.nan) / pc.get("chunkpmr", {}).get("ns", math.nan))
    if "mimalloc" in pc:
        mi = pc["mimalloc"]["ns"] / pc["mimalloc"].get("ref_ns", pc["chunkpmr"]["ns"])
        v["PC_MIMALLOC"] = f", mimalloc (preloaded) {mi:.2f}×"
    else:
        v["PC_MIMALLOC"] = ""
    # Fresh-process lifecycle table: | workload | ns/item | ratio | faults | mmap | munmap | brk | madvise | syscalls | rss |
    alone = {}
    if lifecycle_alone_path:
        for line in open(lifecycle_alone_path):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 9 and "/" in cells[0]:
                alone[cells[0]] = cells
    def ratio_of(cells):
        try:
            return float(cells[2].split("×")[0])
        except (ValueError, IndexError):
            return math.nan
    v["REQ_STACK"] = x(ratio_of(alone.get("request/chunkpmr/stack", [])))
    v["REQ_NEW"] = x(ratio_of(alone.get("request/chunkpmr/new", [])))
    syscalls = [alone[k][8] for k in ("request/chunkpmr/stack", "request/chunkpmr/new") if k in alone]
    v["REQ_SYSCALLS"] = " and ".join(syscalls) if syscalls else "n/a"
    rr = {}
    for k, cells in alone.items():
        if k.startswith("round_robin/"):
            try:
                rr[k] = float(cells[1])
            except ValueError:
                pass
    v["RR_UNSYNC_1024"] = x(rr.get("round_robin/std_unsync_pool/1024", math.nan) /
                            rr.get("round_robin/chunkpmr/1024", math.nan))
    by_key = {}
    if chunk_source_path:
        _, by_key = load_chunk_source(chunk_source_path)
    def cs(bench, peer, field="ns_per_item"):
        r = by_key.get((bench, peer))
        return math.nan if r is None else float(r[field])
    v["MIXED_MONO"] = x(cs("mixed_release_cycle", "chunkpmr") / cs("mixed_release_cycle", "std_monotonic"))
    v["MIXED_GLIBC"] = x(cs("mixed_release_cycle", "glibc") / cs("mixed_release_cycle", "chunkpmr"))
    v["REL_MILLION"] = x(cs("release_million", "chunkpmr") / cs("release_million", "std_monotonic"))
    v["SMALL_UNTOUCHED"] = x(cs("small_untouched", "chunkpmr") / cs("small_untouched", "std_monotonic"))
    v["SMALL_WRITTEN"] = x(cs("small_written", "chunkpmr") / cs("small_written", "std_monotonic"))
    v["LARSON_RSS"] = x(cs("larson_sized", "chunkpmr", "max_rss_kib") / cs("larson_sized", "glibc", "max_rss_kib"))
    v["MSTRESS_RSS"] = x(cs("mstress", "chunkpmr", "max_rss_kib") / cs("mstress", "glibc", "max_rss_kib"))
    v["LARSON_TIME"] = x(cs("larson_sized", "chunkpmr") / cs("larson_sized", "glibc"))
    v["MSTRESS_TIME"] = x(cs("mstress", "chunkpmr") / cs("mstress", "glibc"))
    rss = rss_rows(rss_text)
    v["RSS_256"], v["RSS_256_MONO"] = (f"{rss['256 B'][0]:.1f}", f"{rss['256 B'][1]:.1f}") if "256 B" in rss else ("n/a", "n/a")
    return v


def main(argv):
    if argv[1] == "quick":
        print(quick_table(argv[2]))
        return
    if argv[1] == "table":
        rows, peers = merge(load(argv[2]), parse_extras(argv[3:]))
        print("time per item (chunkpmr, median of repetitions) and each peer's time as a multiple")
        print("of it: x2.00 = the peer takes twice as long (chunkpmr faster); x0.50 = half as long")
        print(ratio_table(rows, peers, markdown=False))
        return
    if argv[1] == "lifecycle":
        print(lifecycle_section(load_lifecycle(argv[2])))
        return
    if argv[1] == "alone":
        print(alone_table(argv[2]))
        return
    if argv[1] == "chunk-source":
        print(chunk_source_section(argv[2]))
        return
    if argv[1] == "merge-runs":
        print(merge_runs(argv[2], argv[3], argv[4]))
        return
    out = argv[2]
    opts = defaultdict(list)
    key = None
    for a in argv[3:]:
        if a.startswith("--"):
            key = a[2:]
        else:
            opts[key].append(a)
    rows, peers = merge(load(opts["main"][0]), parse_extras(opts.get("preload", [])))
    callgrind = open(opts["callgrind"][0]).read().strip()
    rss = open(opts["rss"][0]).read().strip()
    template = open(opts["template"][0]).read()
    isolated_runs = [(a.split("=", 1)[0], load(a.split("=", 1)[1])) for a in opts["isolated"]]
    text = (template.replace("@COMMAND@", opts["command"][0])
            .replace("@SUITE_GOALS@", suite_goals(rows, callgrind, rss, isolated_runs))
            .replace("@MACHINE@", opts["machine"][0])
            .replace("@RATIOS@", ratio_table(rows, peers, markdown=True))
            .replace("@FOOTPRINT@", footprint_table(rows, peers))
            .replace("@SCALING@", scaling_table(rows, peers))
            .replace("@CALLGRIND@", callgrind)
            .replace("@RSS@", rss)
            .replace("@ISOLATED@", isolated_table(isolated_runs))
            .replace("@LIFECYCLE@", lifecycle_section(load_lifecycle(opts["lifecycle"][0])))
            .replace("@LIFECYCLE_ALONE@", open(opts["lifecycle-alone"][0]).read().strip()
                     if opts.get("lifecycle-alone") else "(not run)")
            .replace("@CHUNK_SOURCE@", chunk_source_section(opts["chunk-source"][0])
                     if opts.get("chunk-source") else "(not run)")
            .replace("@FOOTPRINT_CHUNK@", open(opts["footprint-chunk"][0]).read().strip()
                     if opts.get("footprint-chunk") else "(not run)")
            .replace("@PROFILES@", open(opts["profiles"][0]).read().strip()
                     if opts.get("profiles") else "(not run)")
            .replace("@RELEASE_SPLIT@", open(opts["release-split"][0]).read().strip()
                     if opts.get("release-split") else "(not run)"))
    open(out, "w").write(text)
    if opts.get("charts"):
        write_charts(rows, load_lifecycle(opts["lifecycle"][0]), opts["charts"][0])
    if opts.get("choosing"):
        template_path, choosing_out = opts["choosing"][0], opts["choosing"][1]
        text = open(template_path).read()
        values = choosing_values(rows, opts["lifecycle-alone"][0] if opts.get("lifecycle-alone") else None,
                                 opts["chunk-source"][0] if opts.get("chunk-source") else None, rss)
        values["COMMAND"], values["MACHINE"] = opts["command"][0], opts["machine"][0]
        for k, val in values.items():
            text = text.replace(f"@{k}@", val)
        open(choosing_out, "w").write(text)


if __name__ == "__main__":
    main(sys.argv)
