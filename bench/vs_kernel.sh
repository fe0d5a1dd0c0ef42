#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# uswap against the kernel's own compressed swap, side by side, in one run.
#
#   sudo bench/vs_kernel.sh [--quick] [--size 1G] [--limit 256M] [--reps 3]
#                           [--codec lz4|zstd] [--kernel 4k,64k] [--modes budget,pageout]
#                           [--build build] [--out bench/results/NAME]
#
# The kernel baseline: /dev/zram0 as the only swap (lz4: the best this
# kernel's zram offers besides lzo; --codec zstd changes only uswap's codec),
# and a memory cgroup (v1 or v2) limited to the same budget; the workload
# runs in it on plain anonymous memory, with 4 KiB pages ("4k") and/or
# 64 KiB mTHP ("64k": hugepages-64kB=madvise, the workload asks with
# MADV_HUGEPAGE, PMD-size THP off for the run).  Then the same workload on
# uswap with the same budget.  Kernel and uswap alternate within each
# repetition; zram is set up anew for every kernel run.
#
# Everything it changes is restored on exit, error or Ctrl-C: swapoff, zram
# reset (and its algorithm), the cgroup removed, the THP settings.
#
# Output in --out: runs.jsonl (one line per run), summary.json and
# summary.txt (medians, min-max, ratios uswap/kernel pair by pair), and
# vs_kernel.png when python3-matplotlib is there (bench/plot).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
size=1G limit=256M reps=3 codec=lz4 kernels=4k,64k modes=budget,pageout
build="$here/../build" out=""
usage() { sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) size=128M limit=32M; shift; continue ;;
	--size|--limit|--reps|--codec|--kernel|--modes|--build|--out)
		[ $# -ge 2 ] || { echo "vs_kernel: $1 needs a value" >&2; exit 2; } ;;
	-h|--help) usage ;;
	*) echo "vs_kernel: unknown option $1" >&2; usage ;;
	esac
	case "$1" in
	--size) size=$2 ;; --limit) limit=$2 ;; --reps) reps=$2 ;; --codec) codec=$2 ;;
	--kernel) kernels=$2 ;; --modes) modes=$2 ;; --build) build=$2 ;; --out) out=$2 ;;
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
[ "$limit_b" -lt "$size_b" ] || die "--limit $limit must be below --size $size (the budget must force swapping)"
[ "$(id -u)" = 0 ] || die "needs root (zram, swapon, cgroups, THP settings)"
workload="$build/vs_workload"
[ -x "$workload" ] || die "$workload not found: build first (cmake --build build -j2)"
[ -n "$out" ] || out="$here/results/$(date -u +%Y%m%dT%H%M%SZ)-$size-$limit-$codec"
mkdir -p "$out"

zram=/sys/block/zram0
[ -e /dev/zram0 ] || modprobe zram num_devices=1 2>/dev/null || true
[ -e /dev/zram0 ] || die "/dev/zram0 is missing and 'modprobe zram' did not make it"
grep -q '^/dev/zram0 ' /proc/swaps && die "/dev/zram0 is already swap: someone else uses it"
[ "$(cat $zram/disksize)" = 0 ] || die "/dev/zram0 is in use (disksize $(cat $zram/disksize)); not touching it"
[ "$(wc -l < /proc/swaps)" -le 1 ] || die "other swap is active (/proc/swaps): the baseline would use it too"
grep -qw lz4 $zram/comp_algorithm || die "this kernel's zram has no lz4 ($(cat $zram/comp_algorithm))"

if [ -d /sys/fs/cgroup/memory ]; then
	cgv=1 cg=/sys/fs/cgroup/memory/uswap_vs_kernel.$$
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	grep -qw memory /sys/fs/cgroup/cgroup.controllers || die "cgroup v2 without the memory controller"
	cgv=2 cg=/sys/fs/cgroup/uswap_vs_kernel.$$
else
	die "no memory cgroup (neither /sys/fs/cgroup/memory nor cgroup v2)"
fi

thp=/sys/kernel/mm/transparent_hugepage
sel() { sed 's/.*\[\(.*\)\].*/\1/' "$1"; } # the [selected] word of a sysfs choice
zram_alg0=$(sel $zram/comp_algorithm)
thp64_0=$( [ -e $thp/hugepages-64kB/enabled ] && sel $thp/hugepages-64kB/enabled || echo "")
thp2m_0=$( [ -e $thp/hugepages-2048kB/enabled ] && sel $thp/hugepages-2048kB/enabled || echo "")
child=""

zram_down() {
	if grep -q '^/dev/zram0 ' /proc/swaps; then swapoff /dev/zram0 || echo "vs_kernel: swapoff /dev/zram0 FAILED" >&2; fi
	echo 1 > $zram/reset 2>/dev/null || true
}
cgroup_down() {
	[ -d "$cg" ] || return 0
	for _ in $(seq 50); do rmdir "$cg" 2>/dev/null && return 0; sleep 0.1; done
	echo "vs_kernel: could not remove $cg" >&2
}
restore() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	zram_down
	echo "$zram_alg0" > $zram/comp_algorithm 2>/dev/null || true
	cgroup_down
	[ -z "$thp64_0" ] || echo "$thp64_0" > $thp/hugepages-64kB/enabled || true
	[ -z "$thp2m_0" ] || echo "$thp2m_0" > $thp/hugepages-2048kB/enabled || true
	if grep -q '^/dev/zram0 ' /proc/swaps; then echo "vs_kernel: WARNING: zram0 is still swap" >&2; fi
	exit "$rc"
}
trap restore EXIT
trap 'echo "vs_kernel: interrupted; restoring" >&2; exit 130' INT TERM

zram_up() {
	zram_down
	echo lz4 > $zram/comp_algorithm
	echo $((size_b + (64 << 20))) > $zram/disksize
	mkswap /dev/zram0 >/dev/null
	swapon -p 32767 /dev/zram0
}
cgroup_up() { # $1: limit in bytes, or "max"
	mkdir -p "$cg"
	if [ $cgv = 1 ]; then
		echo "$([ "$1" = max ] && echo -1 || echo "$1")" > "$cg/memory.limit_in_bytes"
		echo 60 > "$cg/memory.swappiness" 2>/dev/null || true
	else
		echo "$1" > "$cg/memory.max"
		echo max > "$cg/memory.swap.max" 2>/dev/null || true
	fi
}
thp_for() { # $1: 4k or 64k
	[ -n "$thp64_0" ] || { [ "$1" = 4k ] || die "no 64 KiB mTHP on this kernel"; return 0; }
	if [ "$1" = 64k ]; then
		echo madvise > $thp/hugepages-64kB/enabled
		echo never > $thp/hugepages-2048kB/enabled
	else
		echo "$thp64_0" > $thp/hugepages-64kB/enabled
		echo "$thp2m_0" > $thp/hugepages-2048kB/enabled
	fi
}

# run_one LABEL REP MODE_KIND ARGS...: one workload run, its JSON line tagged
run_one() {
	local label=$1 rep=$2 kind=$3 line rc=0
	shift 3
	echo "vs_kernel: rep $rep $kind $label ..." >&2
	"$@" > "$out/run.json" 2> "$out/run.err" &
	child=$!
	wait "$child" || rc=$?
	child=""
	if [ $rc -ne 0 ] || ! [ -s "$out/run.json" ]; then
		cat "$out/run.err" >&2
		echo "vs_kernel: $label rep $rep ($kind) failed with status $rc" >&2
		printf '{"label": "%s", "rep": %s, "kind": "%s", "failed": %s}\n' \
			"$label" "$rep" "$kind" "$rc" >> "$out/runs.jsonl"
		return 0
	fi
	line=$(cat "$out/run.json")
	printf '{"label": "%s", "rep": %s, %s\n' "$label" "$rep" "${line#\{}" >> "$out/runs.jsonl"
}

kernel_run() { # kernel variant, rep, kind
	local k=$1 rep=$2 kind=$3 lim=$((limit_b + model_b))
	[ "$kind" = pageout ] && lim=max
	thp_for "$k"
	zram_up
	cgroup_up "$lim"
	local args=(--mode kernel --size "$size_b" --zram $zram)
	[ "$k" = 64k ] && args+=(--thp)
	[ "$kind" = pageout ] && args+=(--pageout-only)
	run_one "kernel-$k" "$rep" "$kind" sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' \
		sh "$cg" "$workload" "${args[@]}"
	cgroup_down
	zram_down
	thp_for 4k
}

uswap_run() { # rep, kind
	local rep=$1 kind=$2
	local args=(--mode uswap --size "$size_b" --limit "$limit_b" --codec "$codec")
	[ "$kind" = pageout ] && args+=(--pageout-only)
	run_one "uswap" "$rep" "$kind" "$workload" "${args[@]}"
}

: > "$out/runs.jsonl"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "command: $0 --size $size --limit $limit --reps $reps --codec $codec --kernel $kernels --modes $modes"
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
