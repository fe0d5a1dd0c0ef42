#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# uswap against the kernel's own compressed swap, side by side, in one run.
#
#   sudo bench/vs_kernel.sh [--quick] [--size 1G] [--limit 256M] [--reps 3]
#                           [--codec lz4|zstd] [--kernel 4k,64k] [--modes budget,pageout]
#                           [--baseline zram|disk:DIR]
#                           [--build build] [--out bench/results/NAME]
#
# The kernel baseline: /dev/zram0 as the only swap (lz4: the best this
# kernel's zram offers besides lzo; --codec zstd changes only uswap's codec),
# or with --baseline disk:DIR a swap file in DIR (made anew for every kernel
# run, removed afterwards) while uswap uses --store file:DIR on the same
# disk; and a memory cgroup (v1 or v2) limited to the same budget; the workload
# runs in it on plain anonymous memory, with 4 KiB pages ("4k") and/or
# 64 KiB mTHP ("64k": hugepages-64kB=madvise, the workload asks with
# MADV_HUGEPAGE, PMD-size THP off for the run).  Then the same workload on
# uswap with the same budget.  Kernel and uswap alternate within each
# repetition; the kernel's swap (zram or the file) is made anew for every
# kernel run.
#
# Everything it changes is restored on exit, error or Ctrl-C: swapoff, zram
# reset (and its algorithm) or the swap file removed, the cgroup removed,
# the THP settings.  Memory figures: zram's mem_used_total against uswap's
# store bytes; for a disk baseline, the swap file's Used (/proc/swaps)
# against the bytes of uswap's store file.
#
# Output in --out: runs.jsonl (one line per run), summary.json and
# summary.txt (medians, min-max, ratios uswap/kernel pair by pair), and
# vs_kernel.png when python3-matplotlib is there (bench/plot).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
size=1G limit=256M reps=3 codec=lz4 kernels=4k,64k modes=budget,pageout baseline=zram
build="$here/../build" out=""
usage() { sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) size=128M limit=32M; shift; continue ;;
	--size|--limit|--reps|--codec|--kernel|--modes|--baseline|--build|--out)
		[ $# -ge 2 ] || { echo "vs_kernel: $1 needs a value" >&2; exit 2; } ;;
	-h|--help) usage ;;
	*) echo "vs_kernel: unknown option $1" >&2; usage ;;
	esac
	case "$1" in
	--size) size=$2 ;; --limit) limit=$2 ;; --reps) reps=$2 ;; --codec) codec=$2 ;;
	--kernel) kernels=$2 ;; --modes) modes=$2 ;; --build) build=$2 ;; --out) out=$2 ;;
	--baseline) baseline=$2 ;;
	esac
	shift 2
done

die() { echo "vs_kernel: $*" >&2; exit 1; }
bytes() { # 512M -> bytes
	local n=${1%[KkMmGg]} s=${1: -1}
	[[ $n =~ ^[0-9]+$ ]] || die "size '$1': allowed: a number with K, M or G"
	case "$s" in K|k) echo $((n << 10)) ;; M|m) echo $((n << 20)) ;; G|g) echo $((n << 30)) ;;
	*) echo "$1" ;; esac
}
size_b=$(bytes "$size") limit_b=$(bytes "$limit")
# The cgroup counts all of the workload's memory, uswap's budget only the
# managed data: the cgroup gets the budget plus the workload's own model of
# the data (13 bytes a page, outside managed memory under uswap) and 4 MiB
# for its program, libc and stacks.
model_b=$((size_b / 4096 * 13 + (4 << 20)))
[[ $reps =~ ^[0-9]+$ ]] && [ "$reps" -ge 1 ] && [ "$reps" -le 15 ] ||
	die "--reps $reps: allowed: 1 to 15"
case "$codec" in lz4|zstd) ;; *) die "--codec $codec: allowed: lz4, zstd" ;; esac
for k in ${kernels//,/ }; do
	case "$k" in 4k|64k) ;; *) die "--kernel $kernels: allowed: 4k, 64k or both, comma-separated" ;; esac
done
for m in ${modes//,/ }; do
	case "$m" in budget|pageout) ;; *) die "--modes $modes: allowed: budget, pageout or both" ;; esac
done
case "$baseline" in
zram|disk:?*) ;;
*) die "--baseline $baseline: allowed: zram, disk:DIR (a swap file in DIR; uswap uses --store file:DIR)" ;;
esac
[ "$limit_b" -lt "$size_b" ] || die "--limit $limit must be below --size $size (the budget must force swapping)"
workload="$build/vs_workload"
[ -x "$workload" ] || die "$workload not found: build first (cmake --build build -j2)"
[ -n "$out" ] || out="$here/results/$(date -u +%Y%m%dT%H%M%SZ)-$size-$limit-$codec-${baseline%%:*}"
mkdir -p "$out"

kb_name=vs_kernel
. "$here/kernel_baseline.sh"
kb_init "$baseline"
kb_child=""

kb_traps

# run_one LABEL REP MODE_KIND ARGS...: one workload run, its JSON line tagged
run_one() {
	local label=$1 rep=$2 kind=$3 line rc=0
	shift 3
	echo "vs_kernel: rep $rep $kind $label ..." >&2
	"$@" > "$out/run.json" 2> "$out/run.err" &
	kb_child=$!
	wait "$kb_child" || rc=$?
	kb_child=""
	if [ $rc -ne 0 ] || ! [ -s "$out/run.json" ]; then
		cat "$out/run.err" >&2
		echo "vs_kernel: $label rep $rep ($kind) failed with status $rc" >&2
		printf '{"label": "%s", "rep": %s, "kind": "%s", "failed": %s}\n' \
			"$label" "$rep" "$kind" "$rc" >> "$out/runs.jsonl"
		return 0
	fi
	line=$(cat "$out/run.json")
	printf '{"label": "%s", "rep": %s, "baseline": "%s", %s\n' "$label" "$rep" "${baseline%%:*}" \
		"${line#\{}" >> "$out/runs.jsonl"
}

kernel_run() { # kernel variant, rep, kind
	local k=$1 rep=$2 kind=$3 lim=$((limit_b + model_b))
	[ "$kind" = pageout ] && lim=max
	kb_thp_for "$k"
	kb_swap_up $((size_b + (64 << 20)))
	kb_cgroup_up "$lim"
	local args=(--mode kernel --size "$size_b")
	if [ "$baseline" = zram ]; then args+=(--zram $kb_zram); else args+=(--swapfile "$kb_swapfile"); fi
	[ "$k" = 64k ] && args+=(--thp)
	[ "$kind" = pageout ] && args+=(--pageout-only)
	run_one "kernel-$k" "$rep" "$kind" kb_in_cgroup "$workload" "${args[@]}"
	kb_cgroup_down
	kb_swap_down
	kb_thp_for 4k
}

uswap_run() { # rep, kind
	local rep=$1 kind=$2
	local args=(--mode uswap --size "$size_b" --limit "$limit_b" --codec "$codec")
	[ "$kind" = pageout ] && args+=(--pageout-only)
	[ "$baseline" = zram ] || args+=(--store "file:${baseline#disk:}")
	run_one "uswap" "$rep" "$kind" "$workload" "${args[@]}"
}

: > "$out/runs.jsonl"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "command: $0 --size $size --limit $limit --reps $reps --codec $codec --kernel $kernels --modes $modes --baseline $baseline"
	echo "kernel: $(uname -r), cpus: $(nproc), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "git: $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$out/conditions.txt"
cat "$out/conditions.txt" >&2

for rep in $(seq 0 $((reps - 1))); do
	for kind in ${modes//,/ }; do
		# alternate which side goes first, so that drift of the machine
		# does not favour one
		if [ $((rep % 2)) = 0 ]; then
			for k in ${kernels//,/ }; do kernel_run "$k" "$rep" "$kind"; done
			uswap_run "$rep" "$kind"
		else
			uswap_run "$rep" "$kind"
			for k in ${kernels//,/ }; do kernel_run "$k" "$rep" "$kind"; done
		fi
	done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/conditions.txt"
rm -f "$out/run.json" "$out/run.err"

/usr/bin/python3 "$here/vs_kernel_report.py" "$out" | tee "$out/summary.txt"
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
	/usr/bin/python3 "$here/plot" "$out/summary.json" "$out/vs_kernel.png" && echo "chart: $out/vs_kernel.png"
else
	echo "vs_kernel: no python3-matplotlib: no chart (apt-get install python3-matplotlib)" >&2
fi
