#!/usr/bin/env python3
"""Turns criterion's saved estimates into the tables of docs/PERFORMANCE.md.

Usage: python3 benches/report.py [TARGET_DIR]   (default: target, or $CARGO_TARGET_DIR)

Reads TARGET_DIR/criterion/*/*/*/new/{benchmark,estimates}.json, i.e. the latest run
of each benchmark, and prints Markdown: medians as messages/s and GB/s (10^9 bytes of
payload per second), and ratios of medians against the peers measured in the same run.
"""
import json
import os
import sys
from collections import defaultdict

PEERS = ["hybi", "tungstenite", "fastwebsockets"]


def load(root):
    results = {}
    for dirpath, _dirs, files in os.walk(os.path.join(root, "criterion")):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        median_ns = est["median"]["point_estimate"]
        tp = bench.get("throughput") or {}
        elements = bytes_ = None
        if "ElementsAndBytes" in tp:
            elements = tp["ElementsAndBytes"]["elements"]
            bytes_ = tp["ElementsAndBytes"]["bytes"]
        elif "Bytes" in tp:
            bytes_ = tp["Bytes"]
        elif "Elements" in tp:
            elements = tp["Elements"]
        key = (bench["group_id"], bench["function_id"], bench["value_str"])
        results[key] = (median_ns, elements, bytes_)
    return results


def human_rate(per_sec):
    if per_sec >= 1e6:
        return f"{per_sec / 1e6:.2f} M"
    return f"{per_sec / 1e3:.1f} k"


def sort_key(case):
    kind, _, size = case.rpartition("/")
    try:
        return (int(size), kind)
    except ValueError:
        return (0, case)


def peer_table(results, group):
    cases = sorted({k[2] for k in results if k[0] == group}, key=sort_key)
    if not cases:
        return
    print(f"### {group}\n")
    head = "| case | " + " | ".join(f"{p} msgs/s | {p} GB/s" for p in PEERS)
    print(head + " | hybi/tungstenite | hybi/fastwebsockets |")
    print("|" + "---|" * (1 + 2 * len(PEERS) + 2))
    for case in cases:
        row = [case]
        rates = {}
        for p in PEERS:
            r = results.get((group, p, case))
            if r is None:
                row += ["-", "-"]
                continue
            ns, elements, bytes_ = r
            rates[p] = elements / ns * 1e9
            row += [human_rate(rates[p]), f"{bytes_ / ns:.2f}"]
        for peer in PEERS[1:]:
            if "hybi" in rates and peer in rates:
                row.append(f"{rates['hybi'] / rates[peer]:.2f}x")
            else:
                row.append("-")
        print("| " + " | ".join(row) + " |")
    print()


def bytes_table(results, group, reference):
    keys = sorted((k for k in results if k[0] == group), key=lambda k: (k[2], k[1]))
    if not keys:
        return
    print(f"### {group}\n")
    print(f"| case | function | median | GB/s | vs {reference} |")
    print("|---|---|---|---|---|")
    for _, fn, case in keys:
        ns, _, bytes_ = results[(group, fn, case)]
        ref = results.get((group, reference, case))
        ratio = f"{ref[0] / ns:.2f}x" if ref else "-"
        time = f"{ns / 1e3:.2f} µs" if ns >= 1e3 else f"{ns:.0f} ns"
        print(f"| {case} | {fn} | {time} | {bytes_ / ns:.2f} | {ratio} |")
    print()


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target")
    results = load(root)
    if not results:
        sys.exit(f"no criterion results under {root}/criterion")
    peer_table(results, "receive")
    peer_table(results, "send")
    bytes_table(results, "mask", "memcpy")
    bytes_table(results, "utf8", "core-from_utf8")


if __name__ == "__main__":
    main()
