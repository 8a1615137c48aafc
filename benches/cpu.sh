#!/usr/bin/env bash
# What a request costs hookd in CPU: durable creates at 1, 4, 16 and 64 connections, and a GET
# by id and an alert accept at 1 and 64, with hookd's own CPU time (user and system, from
# /proc/PID/stat) divided by the requests wrk completed. Also hookd's peak RSS after the
# creates and reads. Release build, loopback only, wrk on the same machine. Alerts go to a
# fresh store with no endpoint (accepted and stored, delivered nowhere: nothing leaves the
# machine). Last, what one synced write costs on this machine (dd), the floor under a lone
# create.
#
#   bash benches/cpu.sh               # 8 s per run
#   BENCH_SECS=20 bash benches/cpu.sh
#   HOOKD_BIN=/tmp/before/hookd bash benches/cpu.sh   # another build, for before/after
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${BENCH_SECS:-8}
export BENCH_SECS=$SECS
[ -n "${HOOKD_BIN:-}" ] || cargo build --release --quiet
# shellcheck source=benches/lib.sh
. benches/lib.sh
start_hookd
id=$(make_endpoint)
alert_lua
tick_us=$((1000000 / $(getconf CLK_TCK)))

# cpu_of: hookd's user and system CPU so far, in clock ticks.
cpu_of() { awk '{print $14, $15}' "/proc/$pid/stat"; }

# measure NAME CONNS [wrk args...]: one row of the table.
measure() {
    local name=$1 conns=$2; shift 2
    local threads=$(( conns < 2 ? 1 : 2 ))
    local u0 s0 u1 s1 out rps n
    read -r u0 s0 < <(cpu_of)
    out=$(wrk -t"$threads" -c"$conns" -d"${SECS}s" "$@")
    read -r u1 s1 < <(cpu_of)
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v name="$name" -v c="$conns" -v rps="$rps" -v n="$n" -v u=$(( (u1 - u0) * tick_us )) \
        -v s=$(( (s1 - s0) * tick_us )) -v bad="$(awk '/Non-2xx/ {print $NF}' <<<"$out")" \
        'BEGIN { printf "| %-16s | %5d | %9.0f | %7.0f µs | %7.0f µs | %7.0f µs | %s |\n",
                 name, c, rps, (u + s) / n, u / n, s / n, (bad ? bad : 0) }'
}

echo "hookd $("$HOOKD_BIN" --version | cut -d' ' -f2), $(nproc) cores, ${SECS}s per run, wrk on the same machine"
echo
echo "| request          | conns |     req/s | CPU/request | of it user | of it system | non-2xx |"
echo "|------------------|-------|-----------|-------------|------------|--------------|---------|"
for c in 1 4 16 64; do
    measure "durable create" "$c" -s "$work/create.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints"
done
for c in 1 64; do
    measure "GET by id" "$c" -s "$work/auth.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints/$id"
done
rss=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$pid/status")
store=$(du -h "$work/data/hookd.redb" | cut -f1)
stop_hookd
DATA=alerts start_hookd
for c in 1 64; do
    measure "alert accept" "$c" -s "$work/alert.lua" "http://$ADDR/api/v1/alerting/alerts"
done
echo
echo "peak RSS after the creates and reads: $rss; store: $store"

# What this machine charges for one synced write, the floor under a lone durable create (whose
# commit log record is one): 2,000 writes of 4 KiB, each with O_DSYNC, over a file written out
# and synced first (as the log is, so no write allocates or changes its size), on the store's
# volume. The CPU is dd's,
# nearly all system time; it varies with the disk more than anything hookd does, so compare
# two builds' lone creates only in one run.
sync_floor() {
    local f="$work/syncs" t
    dd if=/dev/zero of="$f" bs=4k count=2000 conv=fsync status=none
    t=$( { TIMEFORMAT='%3U %3S %3R'; time dd if=/dev/zero of="$f" bs=4k count=2000 oflag=dsync \
        conv=notrunc status=none; } 2>&1 )
    rm -f "$f"
    awk -v t="$t" 'BEGIN { split(t, a, " ");
        printf "one synced 4 KiB write on this volume (dd oflag=dsync): %.0f µs of CPU, %.0f µs of wall time\n",
               (a[1] + a[2]) * 1e6 / 2000, a[3] * 1e6 / 2000 }'
}
sync_floor
