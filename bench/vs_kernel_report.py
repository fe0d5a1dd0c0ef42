#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Summarise bench/vs_kernel.sh's runs: python3 vs_kernel_report.py DIR

Reads DIR/runs.jsonl (one JSON object per workload run), writes
DIR/summary.json and prints a table: per phase, the median (min-max) of the
microseconds per 4 KiB access of each side, the median faults, and the ratio
uswap/kernel computed pair by pair (same repetition), then memory, metadata
and issue 6's targets, each met or missed.  Exits 1 when a run failed or
read a wrong byte: a fast wrong answer is not a result.

The memory compared is zram's mem_used_total against uswap's store bytes
(RAM) for the zram baseline; for a disk baseline (--baseline disk:DIR) it is
the swap file's Used against the bytes of uswap's store file (disk), and
issue 6's targets, set against zram, are not claimed.
"""
import json
import os
import statistics
import sys

BUDGET_PHASES = ["fill", "seq_read", "rand_read", "rand_write", "zipf_mix", "fork_read"]
PAGEOUT_PHASES = ["fill", "pageout", "touch"]


def spread(values):
    """[median, min, max] of a non-empty list, or None."""
    if not values:
        return None
    return [statistics.median(values), min(values), max(values)]


def by_rep(runs, kind, label):
    return {r["rep"]: r for r in runs
            if r.get("kind") == kind and r.get("label") == label and not r.get("failed")}


def pair_ratios(a, b, value):
    """value(run) of a over b, for each repetition both have."""
    out = []
    for rep in sorted(set(a) & set(b)):
        x, y = value(a[rep]), value(b[rep])
        if x is not None and y:
            out.append(x / y)
    return out


def phase_value(phase, key):
    return lambda r: r["phases"].get(phase, {}).get(key)


# The memory figure each run reports, by baseline, and how the table names it.
MEM_KEY = {"zram": "store_mem_bytes", "disk": "store_disk_bytes"}
MEM_TITLE = {"zram": "store memory in RAM (zram mem_used_total / uswap store)",
             "disk": "disk bytes used (swap file Used in /proc/swaps / uswap store file)"}


def mem_value(point, key):
    return lambda r: (r["memory"].get(point) or {}).get(key)


def summarise(runs):
    labels = sorted({r["label"] for r in runs})
    kernels = [l for l in labels if l.startswith("kernel")]
    summary = {"kinds": {}, "failures": [], "targets": []}
    for r in runs:
        if r.get("failed") or r.get("wrong_pages"):
            summary["failures"].append({k: r.get(k) for k in
                                        ("label", "rep", "kind", "failed", "wrong_pages")})
    first = next((r for r in runs if not r.get("failed")), {})
    uswap_first = next((r for r in runs if r.get("label") == "uswap" and not r.get("failed")), {})
    baselines = {r.get("baseline", "zram") for r in runs}
    if len(baselines) != 1 or not baselines <= set(MEM_KEY):
        sys.exit(f"vs_kernel_report: runs of baselines {sorted(baselines)}: allowed: "
                 "one of zram, disk per directory")
    baseline = baselines.pop()
    mem_key = MEM_KEY[baseline]
    summary.update(size=first.get("size"), limit=uswap_first.get("limit"),
                   codec=uswap_first.get("codec"), folio_bytes=uswap_first.get("folio_bytes"),
                   store=uswap_first.get("store", "ram"),
                   store_direct_io=uswap_first.get("store_direct_io"),
                   baseline=baseline, reps=len({r["rep"] for r in runs}))
    for kind, phases, point in (("budget", BUDGET_PHASES, "after_fill"),
                                ("pageout", PAGEOUT_PHASES, "after_pageout")):
        sides = {l: by_rep(runs, kind, l) for l in labels}
        if not any(sides.values()):
            continue
        k = {"phases": {}, "memory": {}}
        for ph in phases:
            row = {}
            for l in labels:
                if not sides[l]:
                    continue
                row[l] = {
                    "us_per_access": spread([v for v in (phase_value(ph, "us_per_access")(r)
                                                         for r in sides[l].values())
                                             if v is not None]),
                    "faults": spread([r["phases"][ph]["faults"] for r in sides[l].values()
                                      if ph in r["phases"]]),
                    "majflt": spread([r["phases"][ph]["majflt"] for r in sides[l].values()
                                      if ph in r["phases"]]),
                }
            row["ratio"] = {kl: spread(pair_ratios(sides.get("uswap", {}), sides[kl],
                                                   phase_value(ph, "us_per_access")))
                            for kl in kernels if sides[kl]}
            k["phases"][ph] = row
        for l in labels:
            vals = [mem_value(point, mem_key)(r) for r in sides[l].values()]
            vals = [v for v in vals if v is not None]
            if vals:
                k["memory"][l] = {"point": point, mem_key: spread(vals)}
        k["memory"]["ratio"] = {kl: spread(pair_ratios(sides.get("uswap", {}), sides[kl],
                                                       mem_value(point, mem_key)))
                                for kl in kernels if sides[kl]}
        if sides.get("uswap"):
            k["meta_bytes_per_page"] = spread([r["meta_bytes_per_page"]
                                               for r in sides["uswap"].values()])
        summary["kinds"][kind] = k
    summary["targets"] = targets(summary)
    return summary


def targets(s):
    """Issue 6's targets, uswap/kernel in the same run (set against zram:
    none for another baseline)."""
    out = []
    if s.get("baseline", "zram") != "zram":
        return out
    budget = s["kinds"].get("budget", {})
    pageout = s["kinds"].get("pageout", {})

    def ratio(kind, phase, kernel):
        r = kind.get("phases", {}).get(phase, {}).get("ratio", {}).get(kernel)
        return r[0] if r else None

    def add(name, value, limit, note=""):
        out.append({"target": name, "value": value, "limit": limit,
                    "met": None if value is None else value <= limit, "note": note})

    for kl in ("kernel-4k", "kernel-64k"):
        if ratio(budget, "seq_read", kl) is None:
            continue
        add(f"seq_read vs {kl}", ratio(budget, "seq_read", kl), 0.5)
        add(f"rand_read vs {kl}", ratio(budget, "rand_read", kl), 1.0)
        add(f"rand_write vs {kl}", ratio(budget, "rand_write", kl), 1.0)
    mem = pageout.get("memory", {}).get("ratio", {}).get("kernel-4k")
    if mem:
        codec = s.get("codec") or "lz4"
        add(f"store memory ({codec}) vs zram lz4 (all paged out)", mem[0],
            0.65 if codec == "zstd" else 0.8)
    touch = ratio(pageout, "touch", "kernel-64k")
    if touch is not None:
        add("pageout-only swap-in vs kernel-64k", touch, 1.0)
    meta = (budget or pageout).get("meta_bytes_per_page")
    if meta:
        add("metadata bytes per managed page", meta[0], 8.0, "absolute, not a ratio")
    return out


def fmt(sp, scale=1.0, digits=2):
    if not sp:
        return "-"
    m, lo, hi = (v * scale for v in sp)
    return f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def table(s):
    baseline = s.get("baseline", "zram")
    mem_key = MEM_KEY[baseline]
    against = ("kernel: zram swap (lz4)" if baseline == "zram" else
               f"kernel: a swap file on disk; uswap store {s.get('store')} "
               f"({'O_DIRECT' if s.get('store_direct_io') else 'through the page cache'})")
    lines = [f"{(s.get('size') or 0) >> 20} MiB under {(s.get('limit') or 0) >> 20} MiB, "
             f"uswap codec {s.get('codec')}, folio {(s.get('folio_bytes') or 0) >> 10} KiB, "
             f"{s.get('reps')} repetitions; median (min-max); ratio = uswap/kernel pair by pair",
             against]
    for kind, k in s["kinds"].items():
        labels = [l for l in next(iter(k["phases"].values())) if l != "ratio"]
        kernels = [l for l in labels if l.startswith("kernel")]
        lines.append("")
        lines.append(f"== {kind}: us per 4 KiB access (faults)")
        head = f"{'phase':<11}" + "".join(f" {l:>30}" for l in labels) + \
            "".join(f" {'ratio vs ' + kl:>26}" for kl in kernels)
        lines.append(head)
        for ph, row in k["phases"].items():
            cells = []
            for l in labels:
                c = row.get(l, {})
                f = c.get("faults")
                cells.append(f" {fmt(c.get('us_per_access')) + ' (' + (str(int(f[0])) if f else '-') + ')':>30}")
            cells += [f" {fmt(row['ratio'].get(kl), digits=3):>26}" for kl in kernels]
            lines.append(f"{ph:<11}" + "".join(cells))
        mem = k["memory"]
        lines.append(f"{MEM_TITLE[baseline]} ({next((v['point'] for v in mem.values() if 'point' in v), '')}), MiB: " +
                     ", ".join(f"{l} {fmt(mem[l][mem_key], 1 / 2**20, 1)}"
                               for l in labels if l in mem) +
                     "; ratio " + ", ".join(f"vs {kl} {fmt(mem['ratio'].get(kl), digits=3)}"
                                            for kl in kernels))
        if k.get("meta_bytes_per_page"):
            lines.append(f"uswap metadata: {fmt(k['meta_bytes_per_page'])} bytes per managed page")
    lines.append("")
    lines.append("== targets (issue 6)")
    if baseline != "zram":
        lines.append("issue 6's targets are set against zram: not claimed for a disk baseline")
    for t in s["targets"]:
        v = "-" if t["value"] is None else f"{t['value']:.3f}"
        met = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        lines.append(f"{t['target']:<52} {v:>8}  (<= {t['limit']})  {met} {t['note']}")
    if s["failures"]:
        lines.append("")
        lines.append("FAILED RUNS (not results): " + json.dumps(s["failures"]))
    return "\n".join(lines)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: vs_kernel_report.py DIR (with DIR/runs.jsonl)")
    d = sys.argv[1]
    with open(os.path.join(d, "runs.jsonl")) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    if not runs:
        sys.exit(f"vs_kernel_report: no runs in {d}/runs.jsonl")
    s = summarise(runs)
    cond = os.path.join(d, "conditions.txt")
    if os.path.exists(cond):
        with open(cond) as f:
            s["conditions"] = f.read()
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(s, f, indent=1)
    print(table(s))
    sys.exit(1 if s["failures"] else 0)


if __name__ == "__main__":
    main()
