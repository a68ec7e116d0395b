#!/usr/bin/env python3
"""Turns criterion output (stdin) into Markdown tables of median throughput and
ratios, one row per workload, one column per method.

Usage: cargo bench -p dio-benches --bench fs | scripts/bench-table.py
"""
import re
import sys

UNITS = {"B/s": 1, "KiB/s": 2**10, "MiB/s": 2**20, "GiB/s": 2**30, "TiB/s": 2**40}

rows = {}
methods = []
name = None
for line in sys.stdin:
    m = re.match(r"^(\S+)/(\S+)/(\S+)\s*(time:.*)?$", line.strip())
    if m and not line.startswith(" "):
        name = (m.group(1) + "/" + m.group(2), m.group(3))
    m = re.search(r"thrpt:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
    if m and name:
        value = float(m.group(1)) * UNITS[m.group(2)]
        workload, method = name
        rows.setdefault(workload, {})[method] = value
        if method not in methods:
            methods.append(method)
        name = None


def fmt(v):
    return f"{v / 2**30:.2f} GiB/s" if v >= 2**30 else f"{v / 2**20:.0f} MiB/s"


print("| workload | " + " | ".join(methods) + " |")
print("|---" * (len(methods) + 1) + "|")
for workload, values in rows.items():
    print(f"| {workload} | " + " | ".join(fmt(values[m]) if m in values else "" for m in methods) + " |")

print()
print("Ratios of ours_dedicated to each baseline (higher is better for ours):")
print()
base = [m for m in methods if not m.startswith("ours")]
print("| workload | " + " | ".join(f"vs {m}" for m in base) + " | vs best peer |")
print("|---" * (len(base) + 2) + "|")
for workload, values in rows.items():
    ours = values.get("ours_dedicated")
    if not ours:
        continue
    cells = [f"{ours / values[m]:.2f}x" if m in values else "" for m in base]
    peers = [values[m] for m in ("opendal", "object_store") if m in values]
    best = f"{ours / max(peers):.2f}x" if peers else ""
    print(f"| {workload} | " + " | ".join(cells) + f" | {best} |")
