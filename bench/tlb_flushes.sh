#!/usr/bin/env bash
# TLB flushes per evicted folio, a figure the machine's load does not change.
#
#   bench/tlb_flushes.sh [BUILD_DIR] [vs_workload options]
#   (default: build, --size 512M --limit 128M; as root; needs perf: linux-perf)
#
# Runs `vs_workload --mode uswap` under `perf record -e tlb:tlb_flush` and
# counts, per evicted folio (reclaim_direct + reclaim_background):
#   - flushes uswap's threads ask for (every thread but a process's main
#     one; reason "local mm shootdown": one per flush_tlb_mm_range, whatever
#     the other CPU runs), and the program's own;
#   - IPIs uswap's threads send (reason "remote send IPI": only when the
#     program's thread is on another CPU at that moment, so load-dependent);
#   - the TLB line of /proc/interrupts over the run (all CPUs, all processes);
# and the run's user and sys seconds.  docs/ARCHITECTURE.md ("Eviction: never
# a stale copy") has the figures.
set -euo pipefail

build=${1:-build}
shift || true
[ $# -gt 0 ] || set -- --size 512M --limit 128M
command -v perf >/dev/null || { echo "tlb_flushes.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
[ -x "$build/vs_workload" ] || { echo "tlb_flushes.sh: no $build/vs_workload (build first)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tlb_irqs() { awk '/TLB/ { s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; print s }' /proc/interrupts; }

before=$(tlb_irqs)
perf record -q -e tlb:tlb_flush -o "$tmp/perf.data" -- \
	/usr/bin/time -f "%U %S %e" -o "$tmp/time" \
	"$build/vs_workload" --mode uswap "$@" >"$tmp/out.json"
after=$(tlb_irqs)
perf script -i "$tmp/perf.data" -F pid,tid,trace >"$tmp/events" 2>/dev/null

python3 - "$tmp/out.json" "$tmp/events" "$tmp/time" $((after - before)) <<'PY'
import collections, json, re, sys

out, events, times, irqs = sys.argv[1:5]
txt = open(out).read()
run = json.loads(txt[txt.find('{'):])
evicted = run["uswap"]["reclaim_direct"] + run["uswap"]["reclaim_background"]
count = collections.Counter()
for line in open(events):
    m = re.match(r'\s*(\d+)/(\d+)\s.*reason:.*\((\d)\)', line)
    if m:
        pid, tid, reason = m.groups()
        count[("uswap" if pid != tid else "program", reason)] += 1
user, sys_s, wall = open(times).read().split()
per = lambda n: n / evicted if evicted else float("nan")
print(f"evicted folios {evicted}")
print(f"per evicted folio: uswap threads' flushes {per(count[('uswap', '3')]):.2f}, "
      f"IPIs they sent {per(count[('uswap', '4')]):.2f}; "
      f"the program's flushes {per(count[('program', '3')]):.2f}; "
      f"/proc/interrupts TLB {per(int(irqs)):.2f}")
print(f"user {user} s, sys {sys_s} s, wall {wall} s")
print("us per access: " + ", ".join(f"{k} {v['us_per_access']:.1f}" for k, v in run["phases"].items())
      + f"; wrong pages {run['wrong_pages']}")
PY
