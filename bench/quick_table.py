#!/usr/bin/env python3
"""Turns Google Benchmark JSON (with repetitions) into the comparison table:
median time per item for each resource, and how many times slower than chunkpmr
each peer is (>1: chunkpmr is faster), with the upstream footprint."""
import json
import sys
from collections import defaultdict


def main(path):
    with open(path) as f:
        data = json.load(f)
    rows = defaultdict(dict)  # workload -> peer -> (ns per item, footprint)
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"]).split("/")
        workload, peer = name[0], name[1]
        ns_per_item = 1e9 / b["items_per_second"]
        rows[workload][peer] = (ns_per_item, b.get("upstream_per_requested", float("nan")))
    peers = ["chunkpmr", "std_monotonic", "std_unsync_pool", "std_sync_pool", "new_delete"]
    print("time per item in ns (median of repetitions); x = peer time / chunkpmr time;")
    print("fp = peak bytes held from upstream / bytes requested")
    header = f"{'workload':<18}" + "".join(f"{p:>24}" for p in peers)
    print(header)
    print("-" * len(header))
    for workload, by_peer in rows.items():
        ours = by_peer.get("chunkpmr", (float("nan"), 0))[0]
        cells = []
        for p in peers:
            if p not in by_peer:
                cells.append(f"{'-':>24}")
                continue
            ns, fp = by_peer[p]
            ratio = "" if p == "chunkpmr" else f" x{ns / ours:.2f}"
            cells.append(f"{f'{ns:.1f}{ratio} fp{fp:.1f}':>24}")
        print(f"{workload:<18}" + "".join(cells))


if __name__ == "__main__":
    main(sys.argv[1])
