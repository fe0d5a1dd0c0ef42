#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The page-fault cost alone, uswap against the kernel's own compressed swap:
# LLNL UMap's page-fault benchmark idea (one word per page, read or written
# in order or shuffled, no I/O) on memory that was paged out just before
# each pass (bench/pf_bench.c).
#
#   sudo bench/pf_vs_kernel.sh [--pages 262144] [--reps 3] [--threads "1 2"]
#                              [--build build] [--out DIR]
#
# Kernel: /dev/zram0 as the only swap (lz4), MADV_PAGEOUT before each pass,
# plain 4 KiB pages.  uswap: USWAP_ADV_PAGEOUT, 64 KiB and 4 KiB folios.
# The machine is restored on exit or Ctrl-C (kernel_baseline.sh).  Output in
# --out: runs.jsonl (a line per pass) and summary.txt (medians, ratios).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
pages=262144 reps=3 threads="1 2" build="$here/../build" out=""
usage() { sed -n '9,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--pages|--reps|--threads|--build|--out)
		[ $# -ge 2 ] || { echo "pf_vs_kernel: $1 needs a value" >&2; exit 2; } ;;
	-h|--help) usage ;;
	*) echo "pf_vs_kernel: unknown option $1" >&2; usage ;;
	esac
	case "$1" in
	--pages) pages=$2 ;; --reps) reps=$2 ;; --threads) threads=$2 ;; --build) build=$2 ;;
	--out) out=$2 ;;
	esac
	shift 2
done
for t in $threads; do
	case "$t" in [1-9]|[1-9][0-9]) ;; *) echo "pf_vs_kernel: --threads '$threads': allowed: numbers from 1 to 64, e.g. \"1 2\"" >&2; exit 2 ;; esac
done
bin="$build/pf_bench"
[ -x "$bin" ] || { echo "pf_vs_kernel: $bin is missing: build first (cmake --build build)" >&2; exit 1; }
out=${out:-$here/results/pf-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"

die() { echo "pf_vs_kernel: $*" >&2; exit 1; }
# shellcheck source=bench/kernel_baseline.sh
. "$here/kernel_baseline.sh"
kb_name=pf_vs_kernel
kb_init zram
kb_traps
kb_thp_for 4k

runs="$out/runs.jsonl"
: > "$runs"
for t in $threads; do
	kb_zram_up $(( pages * 4096 * 2 + (64 << 20) ))
	"$bin" --mode kernel --pages "$pages" --threads "$t" --reps "$reps" >> "$runs" 2>> "$out/log"
	kb_zram_down
	for folio in 64K 4K; do
		"$bin" --mode uswap --pages "$pages" --threads "$t" --reps "$reps" --folio "$folio" \
			>> "$runs" 2>> "$out/log"
	done
done

/usr/bin/python3 - "$runs" > "$out/summary.txt" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
key = lambda r: (r["threads"], r["pattern"], r["op"])
def med(mode, folio, k):
    v = [r["ns_per_page"] for r in rows if r["mode"] == mode and key(r) == k
         and (mode == "kernel" or r["folio_bytes"] == folio)]
    return (statistics.median(v), min(v), max(v)) if v else None
print("ns per page, median (min-max); ratio = uswap / kernel")
print("| threads | pattern | op | kernel 4 KiB | uswap 64 KiB | ratio | uswap 4 KiB | ratio |")
print("|---|---|---|---|---|---|---|---|")
for k in sorted({key(r) for r in rows}):
    kern, u64, u4 = med("kernel", 0, k), med("uswap", 65536, k), med("uswap", 4096, k)
    fmt = lambda m: "%.0f (%.0f-%.0f)" % m if m else "-"
    ratio = lambda m: "%.2f" % (m[0] / kern[0]) if m and kern else "-"
    print("| %d | %s | %s | %s | %s | %s | %s | %s |" % (k + (fmt(kern), fmt(u64), ratio(u64), fmt(u4), ratio(u4))))
EOF
cat "$out/summary.txt"
echo "pf_vs_kernel: results in $out"
