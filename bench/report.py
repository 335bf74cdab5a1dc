#!/usr/bin/env python3
"""Tables from Google Benchmark JSON (bench_peers, with repetitions).

  report.py table RUN.json [LABEL=RUN.json ...]     ratio table on stdout (README's quick job)
  report.py perf OUT.md --main RUN.json [--preload LABEL=RUN.json ...]
                 --callgrind TABLE.md --rss TABLE.md --command "..." --machine "..."
                 --isolated "LABEL=RUN.json" ...   (small_alloc alone under glibc settings)

Extra runs (LABEL=file) are runs of the same binary under LD_PRELOAD of another
malloc; their new_delete rows are shown as peer LABEL (e.g. mimalloc), as a ratio to
the chunkpmr rows of the same run when it has them."""
import json
import math
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


def parse_extras(args):
    extras = []
    for a in args:
        label, path = a.split("=", 1)
        extras.append((label, load(path, relabel_new_delete=label)))
    return extras


def main(argv):
    if argv[1] == "table":
        rows, peers = merge(load(argv[2]), parse_extras(argv[3:]))
        print("time per item (chunkpmr, median of repetitions) and each peer's time as a multiple")
        print("of it: x2.00 = the peer takes twice as long (chunkpmr faster); x0.50 = half as long")
        print(ratio_table(rows, peers, markdown=False))
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
    text = (template.replace("@COMMAND@", opts["command"][0])
            .replace("@MACHINE@", opts["machine"][0])
            .replace("@RATIOS@", ratio_table(rows, peers, markdown=True))
            .replace("@FOOTPRINT@", footprint_table(rows, peers))
            .replace("@SCALING@", scaling_table(rows, peers))
            .replace("@CALLGRIND@", callgrind)
            .replace("@RSS@", rss)
            .replace("@ISOLATED@", isolated_table(
                [(a.split("=", 1)[0], load(a.split("=", 1)[1])) for a in opts["isolated"]])))
    open(out, "w").write(text)


if __name__ == "__main__":
    main(sys.argv)
