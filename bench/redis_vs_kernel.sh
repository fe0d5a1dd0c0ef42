#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Debian's redis-server holding about 4x its budget in keys, under the
# kernel's compressed swap and under `uswap run`, side by side in one run.
#
#   sudo bench/redis_vs_kernel.sh [--quick] [--limit 256M] [--keys 1000000]
#                                 [--value 1024] [--requests 200000]
#                                 [--clients 50] [--reps 3] [--allowance SIZE]
#                                 [--folio SIZE]
#                                 [--build build] [--out bench/results/NAME]
#
# Kernel: /dev/zram0 as swap (lz4) and redis-server in a memory cgroup
# limited to the budget plus an allowance for the memory redis has outside
# its heap (binary, libraries, stacks): uswap's budget covers the managed
# heap only, the allowance gives the kernel the same room for the rest.  By
# default it is the resident size of an idle redis-server, measured at the
# start of the run; --allowance SIZE sets it.
# uswap: `uswap run --limit BUDGET -- redis-server` (lz4, 64 KiB folios or
# --folio SIZE).
# Both: the same keys (bench/redis_fill: values cut from the realistic page
# mix), checked after the GET phase; then redis-benchmark GET over random
# keys, then SET (its own payload of --value bytes), over the whole key
# space.  Kernel and uswap alternate which goes first from one repetition to
# the next.  The machine is restored on exit or Ctrl-C (kernel_baseline.sh).
#
# Output in --out: runs.jsonl (one line per run and side) and summary.txt
# (medians with min-max, ratios uswap/kernel pair by pair).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
limit=256M keys=1000000 value=1024 requests=200000 clients=50 reps=3 allowance="" folio=""
build="$here/../build" out=""
usage() { sed -n '6,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) limit=32M keys=120000 requests=50000; shift; continue ;;
	--limit|--keys|--value|--requests|--clients|--reps|--allowance|--folio|--build|--out)
		[ $# -ge 2 ] || { echo "redis_vs_kernel: $1 needs a value" >&2; exit 2; } ;;
	-h|--help) usage ;;
	*) echo "redis_vs_kernel: unknown option $1" >&2; usage ;;
	esac
	case "$1" in
	--limit) limit=$2 ;; --keys) keys=$2 ;; --value) value=$2 ;; --requests) requests=$2 ;;
	--clients) clients=$2 ;; --reps) reps=$2 ;; --allowance) allowance=$2 ;; --folio) folio=$2 ;;
	--build) build=$2 ;; --out) out=$2 ;;
	esac
	shift 2
done

die() { echo "redis_vs_kernel: $*" >&2; exit 1; }
bytes() { # 512M -> bytes
	local n=${1%[KkMmGg]} s=${1: -1}
	[[ $n =~ ^[0-9]+$ ]] || die "size '$1': allowed: a number with K, M or G"
	case "$s" in K|k) echo $((n << 10)) ;; M|m) echo $((n << 20)) ;; G|g) echo $((n << 30)) ;;
	*) echo "$1" ;; esac
}
number() { # flag value lo hi
	[[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] ||
		die "$1 $2: allowed: $3 to $4"
}
limit_b=$(bytes "$limit")
number --keys "$keys" 1000 100000000
number --value "$value" 16 65536
number --requests "$requests" 1000 100000000
number --clients "$clients" 1 1000
number --reps "$reps" 1 15
data_b=$((keys * value))
[ "$data_b" -gt "$limit_b" ] || die "--keys $keys x --value $value = $data_b bytes must exceed --limit $limit"
for tool in redis-server redis-cli redis-benchmark; do
	command -v $tool >/dev/null || die "$tool not found (apt-get install redis-server redis-tools)"
done
uswap="$build/uswap" fill="$build/redis_fill"
[ -x "$uswap" ] && [ -x "$fill" ] || die "$uswap or $fill not found: build first (cmake --build build -j2)"
[ -n "$out" ] || out="$here/results/$(date -u +%Y%m%dT%H%M%SZ)-redis-$limit"
mkdir -p "$out"

kb_name=redis_vs_kernel
. "$here/kernel_baseline.sh"
kb_init
kb_child="" port=$((20000 + $$ % 20000))

kb_traps

redis_args=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no
	--protected-mode yes --logfile "$out/redis.log")

server_ready() {
	for _ in $(seq 100); do
		redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
		kill -0 "$kb_child" 2>/dev/null || die "redis-server exited at start (see $out/redis.log)"
		sleep 0.1
	done
	die "redis-server did not answer on port $port"
}

# bench_csv TEST ARGS...: "rps p99_ms" of one redis-benchmark test
bench_csv() {
	local t=$1
	shift
	redis-benchmark -p "$port" -t "$t" -n "$requests" -c "$clients" -r "$keys" --csv "$@" |
		awk -F'"' -v T="${t^^}" '$2 == T { print $4, $14 }'
}

# side LABEL REP: fill, check, GET, SET against the running server, one JSON line
side() {
	local label=$1 rep=$2 t0 t1 fill_s get set mem extra=""
	server_ready
	t0=$(date +%s.%N)
	"$fill" --port "$port" --keys "$keys" --value "$value" --fill > /dev/null
	t1=$(date +%s.%N)
	fill_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	get=$(bench_csv get)
	"$fill" --port "$port" --keys "$keys" --value "$value" --verify 2000 > /dev/null ||
		die "$label: the keys do not hold what was written"
	set=$(bench_csv set -d "$value")
	mem=$(redis-cli -p "$port" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
	if [ "$label" = kernel ]; then
		extra=$(awk '{ printf "\"zram_orig_bytes\": %s, \"zram_mem_used\": %s", $1, $3 }' $kb_zram/mm_stat)
	else
		extra=$("$uswap" stat "$kb_child" --json | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
c = s.get("counters", s)
print(", ".join(f"\"{k}\": {c[k]}" for k in
      ("pool_bytes", "meta_bytes", "resident_bytes", "faults", "swapin_pages", "swapout_pages") if k in c))')
	fi
	local rss
	rss=$(awk '/^VmHWM/ { print $2 * 1024 }' /proc/"$kb_child"/status)
	printf '{"label": "%s", "rep": %s, "fill_s": %s, "get_rps": %s, "get_p99_ms": %s, "set_rps": %s, "set_p99_ms": %s, "used_memory": %s, "vmhwm": %s, %s}\n' \
		"$label" "$rep" "$fill_s" ${get% *} ${get#* } ${set% *} ${set#* } "$mem" "$rss" "$extra" >> "$out/runs.jsonl"
	echo "redis_vs_kernel: rep $rep $label: GET ${get% *}/s p99 ${get#* } ms, SET ${set% *}/s p99 ${set#* } ms" >&2
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
	wait "$kb_child" 2>/dev/null || true
	kb_child=""
}

kernel_side() {
	kb_zram_up $((data_b * 2 + (256 << 20)))
	kb_cgroup_up $((limit_b + allowance_b))
	kb_in_cgroup redis-server "${redis_args[@]}" &
	kb_child=$!
	side kernel "$1"
	kb_cgroup_down
	kb_zram_down
}

uswap_side() {
	"$uswap" run --limit "$limit" ${folio:+--folio "$folio"} -- redis-server "${redis_args[@]}" &
	kb_child=$!
	side uswap "$1"
}

if [ -z "$allowance" ]; then # an idle redis-server's resident size
	redis-server "${redis_args[@]}" &
	kb_child=$!
	server_ready
	allowance_b=$(awk '/^VmRSS/ { print $2 * 1024 }' /proc/"$kb_child"/status)
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
	wait "$kb_child" 2>/dev/null || true
	kb_child="" allowance=$((allowance_b >> 10))K
else
	allowance_b=$(bytes "$allowance")
fi

: > "$out/runs.jsonl"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "command: $0 --limit $limit --keys $keys --value $value --requests $requests --clients $clients --reps $reps --allowance $allowance${folio:+ --folio $folio}"
	echo "redis: $(redis-server --version | cut -d' ' -f3), kernel: $(uname -r), cpus: $(nproc), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "git: $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$out/conditions.txt"
cat "$out/conditions.txt" >&2

for rep in $(seq 0 $((reps - 1))); do
	if [ $((rep % 2)) = 0 ]; then kernel_side "$rep"; uswap_side "$rep"
	else uswap_side "$rep"; kernel_side "$rep"; fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/conditions.txt"

/usr/bin/python3 - "$out" <<'EOF' | tee "$out/summary.txt"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1] + "/runs.jsonl")]
side = lambda lab: sorted((r for r in runs if r["label"] == lab), key=lambda r: r["rep"])
k, u = side("kernel"), side("uswap")
def fmt(v): return f"{statistics.median(v):10.2f} [{min(v):.2f}-{max(v):.2f}]"
print(open(sys.argv[1] + "/conditions.txt").read().strip())
print(f"{'figure':26} {'kernel (zram+memcg)':>28} {'uswap':>28} {'uswap/kernel':>26}")
for key, what in (("get_rps", "GET requests/s"), ("get_p99_ms", "GET p99 ms"),
                  ("set_rps", "SET requests/s"), ("set_p99_ms", "SET p99 ms"),
                  ("fill_s", "fill seconds")):
    kv, uv = [r[key] for r in k], [r[key] for r in u]
    ratio = [b / a for a, b in zip(kv, uv) if a]
    print(f"{what:26} {fmt(kv):>28} {fmt(uv):>28} {fmt(ratio):>26}")
mb = lambda v: [x / 2**20 for x in v]
print(f"{'redis used_memory MiB':26} {fmt(mb([r['used_memory'] for r in k])):>28} {fmt(mb([r['used_memory'] for r in u])):>28}")
print(f"{'swap store MiB':26} {fmt(mb([r['zram_mem_used'] for r in k])):>28} {fmt(mb([r.get('pool_bytes', 0) for r in u])):>28}"
      "   (zram mem_used_total; uswap pool_bytes)")
print(f"{'process peak RSS MiB':26} {fmt(mb([r['vmhwm'] for r in k])):>28} {fmt(mb([r['vmhwm'] for r in u])):>28}"
      "   (uswap's includes its store)")
EOF
