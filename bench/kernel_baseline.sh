# SPDX-License-Identifier: MIT
#
# The kernel's own swap as a baseline, for the bench scripts (sourced, not
# run): /dev/zram0 as the only swap (lz4), or a swap file on a disk
# ("disk:DIR"), a memory cgroup (v1 or v2) with a limit, and the mTHP
# settings.  kb_init [zram|disk:DIR] checks that the machine can be borrowed
# and records what it changes; kb_restore (run it from an EXIT trap) puts
# everything back: swapoff, zram reset and its algorithm or the swap file
# removed, the cgroup removed, the THP settings.  A disk baseline never
# touches /dev/zram0.
#
# The caller defines die() and sets kb_name (used in messages and in the
# cgroup's name) before kb_init.

kb_zram=/sys/block/zram0
kb_thp=/sys/kernel/mm/transparent_hugepage
kb_sel() { sed 's/.*\[\(.*\)\].*/\1/' "$1"; } # the [selected] word of a sysfs choice

kb_init() { # [zram|disk:DIR], default zram
	kb_swap=${1:-zram}
	[ "$(id -u)" = 0 ] || die "needs root (swapon, zram, cgroups, THP settings)"
	[ "$(wc -l < /proc/swaps)" -le 1 ] || die "other swap is active (/proc/swaps): the baseline would use it too"
	case "$kb_swap" in
	zram) kb_zram_init ;;
	disk:?*) kb_disk_init "${kb_swap#disk:}" ;;
	*) die "baseline '$kb_swap': allowed: zram, disk:DIR (a directory on the disk to measure)" ;;
	esac
	if [ -d /sys/fs/cgroup/memory ]; then
		kb_cgv=1 kb_cg=/sys/fs/cgroup/memory/$kb_name.$$
	elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		grep -qw memory /sys/fs/cgroup/cgroup.controllers || die "cgroup v2 without the memory controller"
		kb_cgv=2 kb_cg=/sys/fs/cgroup/$kb_name.$$
	else
		die "no memory cgroup (neither /sys/fs/cgroup/memory nor cgroup v2)"
	fi
	kb_thp64_0=$( [ -e $kb_thp/hugepages-64kB/enabled ] && kb_sel $kb_thp/hugepages-64kB/enabled || echo "")
	kb_thp2m_0=$( [ -e $kb_thp/hugepages-2048kB/enabled ] && kb_sel $kb_thp/hugepages-2048kB/enabled || echo "")
}

kb_zram_init() {
	[ -e /dev/zram0 ] || modprobe zram num_devices=1 2>/dev/null || true
	[ -e /dev/zram0 ] || die "/dev/zram0 is missing and 'modprobe zram' did not make it"
	grep -q '^/dev/zram0 ' /proc/swaps && die "/dev/zram0 is already swap: someone else uses it"
	[ "$(cat $kb_zram/disksize)" = 0 ] || die "/dev/zram0 is in use (disksize $(cat $kb_zram/disksize)); not touching it"
	grep -qw lz4 $kb_zram/comp_algorithm || die "this kernel's zram has no lz4 ($(cat $kb_zram/comp_algorithm))"
	kb_zram_alg0=$(kb_sel $kb_zram/comp_algorithm)
}

# The swap file of a disk baseline: DIR/NAME.PID, made by kb_disk_up.
kb_disk_init() { # DIR
	[ -d "$1" ] || die "disk:$1: not a directory (allowed: disk:DIR, an existing directory on the disk to measure)"
	case "$(stat -f -c %T "$1")" in
	tmpfs|ramfs) die "disk:$1 is on $(stat -f -c %T "$1"), which is memory: give a directory on a disk" ;;
	esac
	kb_swapfile=$(cd "$1" && pwd)/$kb_name-swap.$$
}

kb_disk_up() { # $1: size in bytes
	kb_disk_down
	# fallocate where the filesystem allows a swap file made so, else dd
	( umask 077; fallocate -l "$1" "$kb_swapfile" 2>/dev/null ||
		dd if=/dev/zero of="$kb_swapfile" bs=1M count=$(( ($1 + (1 << 20) - 1) >> 20 )) status=none )
	mkswap "$kb_swapfile" >/dev/null
	swapon -p 32767 "$kb_swapfile" 2>/dev/null || {
		# some filesystems refuse fallocated swap files: write it out
		rm -f "$kb_swapfile"
		( umask 077; dd if=/dev/zero of="$kb_swapfile" bs=1M count=$(( ($1 + (1 << 20) - 1) >> 20 )) status=none )
		mkswap "$kb_swapfile" >/dev/null
		swapon -p 32767 "$kb_swapfile"
	}
}

kb_disk_down() {
	[ -n "${kb_swapfile:-}" ] || return 0
	if grep -q "^$kb_swapfile " /proc/swaps; then swapoff "$kb_swapfile" || echo "$kb_name: swapoff $kb_swapfile FAILED" >&2; fi
	rm -f "$kb_swapfile"
}

# The kernel's swap for the baseline chosen at kb_init: made anew / removed.
kb_swap_up() { # $1: size in bytes
	if [ "$kb_swap" = zram ]; then kb_zram_up "$1"; else kb_disk_up "$1"; fi
}

kb_swap_down() {
	if [ "$kb_swap" = zram ]; then kb_zram_down; else kb_disk_down; fi
}

kb_zram_down() {
	if grep -q '^/dev/zram0 ' /proc/swaps; then swapoff /dev/zram0 || echo "$kb_name: swapoff /dev/zram0 FAILED" >&2; fi
	echo 1 > $kb_zram/reset 2>/dev/null || true
}

kb_zram_up() { # $1: disk size in bytes
	kb_zram_down
	echo lz4 > $kb_zram/comp_algorithm
	echo "$1" > $kb_zram/disksize
	mkswap /dev/zram0 >/dev/null
	swapon -p 32767 /dev/zram0
}

kb_cgroup_up() { # $1: limit in bytes, or "max"
	mkdir -p "$kb_cg"
	if [ "$kb_cgv" = 1 ]; then
		echo "$([ "$1" = max ] && echo -1 || echo "$1")" > "$kb_cg/memory.limit_in_bytes"
		echo 60 > "$kb_cg/memory.swappiness" 2>/dev/null || true
	else
		echo "$1" > "$kb_cg/memory.max"
		echo max > "$kb_cg/memory.swap.max" 2>/dev/null || true
	fi
}

kb_cgroup_down() {
	[ -n "${kb_cg:-}" ] && [ -d "$kb_cg" ] || return 0
	for _ in $(seq 50); do rmdir "$kb_cg" 2>/dev/null && return 0; sleep 0.1; done
	echo "$kb_name: could not remove $kb_cg" >&2
}

# kb_in_cgroup CMD ARGS...: exec CMD inside the cgroup.  It replaces the
# calling shell: call it in a subshell (cmd & or ( ... )), so that the
# subshell's pid is CMD's own and a kill reaches it.
kb_in_cgroup() {
	exec sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$kb_cg" "$@"
}

kb_thp_for() { # $1: 4k or 64k
	[ -n "$kb_thp64_0" ] || { [ "$1" = 4k ] || die "no 64 KiB mTHP on this kernel"; return 0; }
	if [ "$1" = 64k ]; then
		echo madvise > $kb_thp/hugepages-64kB/enabled
		echo never > $kb_thp/hugepages-2048kB/enabled
	else
		echo "$kb_thp64_0" > $kb_thp/hugepages-64kB/enabled
		echo "$kb_thp2m_0" > $kb_thp/hugepages-2048kB/enabled
	fi
}

kb_restore() {
	if [ "${kb_swap:-zram}" = zram ]; then
		kb_zram_down
		[ -z "${kb_zram_alg0:-}" ] || echo "$kb_zram_alg0" > $kb_zram/comp_algorithm 2>/dev/null || true
	else
		kb_disk_down
		if [ -n "${kb_swapfile:-}" ] && [ -e "$kb_swapfile" ]; then echo "$kb_name: WARNING: $kb_swapfile is still there" >&2; fi
	fi
	kb_cgroup_down
	[ -z "${kb_thp64_0:-}" ] || echo "$kb_thp64_0" > $kb_thp/hugepages-64kB/enabled || true
	[ -z "${kb_thp2m_0:-}" ] || echo "$kb_thp2m_0" > $kb_thp/hugepages-2048kB/enabled || true
	if grep -q '^/dev/zram0 ' /proc/swaps; then echo "$kb_name: WARNING: zram0 is still swap" >&2; fi
	if [ "$(wc -l < /proc/swaps)" -gt 1 ]; then echo "$kb_name: WARNING: swap is still active: $(tail -n +2 /proc/swaps)" >&2; fi
}

# kb_traps: restore the machine on exit, error, Ctrl-C or kill; the
# benchmark's program running then ($kb_child, a pid, if set) is ended first.
kb_child=""
kb_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$kb_child" ] && kill -0 "$kb_child" 2>/dev/null; then
		kill -KILL "$kb_child" 2>/dev/null || true
		wait "$kb_child" 2>/dev/null || true
	fi
	kb_restore
	exit "$rc"
}
kb_traps() {
	trap kb_exit EXIT
	trap 'echo "$kb_name: interrupted; restoring" >&2; exit 130' INT TERM
}
