#!/usr/bin/env bash
# The embedded store beside PostgreSQL, one run: durable creates/s and GET-by-id/s at 64
# connections (wrk) for hookd on redb, for one hookd on PostgreSQL, and for two hookd instances
# on the same PostgreSQL (32 connections each, at once; their rates added). PostgreSQL is
# Debian's, started here on loopback (port 5434) with its defaults: fsync and
# synchronous_commit on, so every 200 is on disk as on redb.
#
#   bash benches/postgres.sh              # 10 s per run, as root (initdb runs as postgres)
#   BENCH_SECS=30 bash benches/postgres.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --features postgres
# shellcheck source=benches/lib.sh
. benches/lib.sh
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pgdir="$work/pg"
mkdir -p "$pgdir"
chown postgres "$pgdir" "$work"
su postgres -c "$pgbin/initdb -D $pgdir/data -A trust -U postgres" >/dev/null
su postgres -c "$pgbin/pg_ctl -D $pgdir/data -l $pgdir/log -w -o '-c listen_addresses=127.0.0.1 -p 5434 -k $pgdir -c max_connections=400' start" >/dev/null
pids=()
stop_all() {
    stop_hookd
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; su postgres -c "$pgbin/pg_ctl -D $pgdir/data -m immediate stop" >/dev/null 2>&1; rm -rf "$work"' EXIT
psql_do() { psql "host=127.0.0.1 port=5434 user=postgres dbname=postgres" -qAtc "$1"; }

# pg_hookd PORT DB: a hookd on PostgreSQL database DB, listening on PORT (the pid in $pids).
pg_hookd() {
    HOOKD_LISTEN="127.0.0.1:$1" HOOKD_DATA_DIR="$work/pgdata" HOOKD_BOOTSTRAP_TOKEN=$TOKEN HOOKD_LOG=warn \
        HOOKD_LIMITS__MAX_CONNECTIONS=4096 HOOKD_STORE__BACKEND=postgres \
        HOOKD_STORE__POSTGRES_URL="host=127.0.0.1 port=5434 user=postgres dbname=$2" \
        "$HOOKD_BIN" serve >>"$work/out" 2>>"$work/err" &
    pids+=($!)
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "hookd on PostgreSQL did not start:" >&2; cat "$work/err" >&2; exit 1
}

# rate NAME CONNS URL [wrk args]: one wrk run's req/s and p99 (no table line).
rate() {
    local conns=$1; shift
    wrk -t2 -c"$conns" -d"${SECS}s" --latency "$@" |
        awk '/^Requests\/sec/ {r=$2} $1 == "99%" {p=$2} /Non-2xx/ {e=$NF} END {print r, p, (e ? e : 0)}'
}

echo "hookd $("$HOOKD_BIN" --version | cut -d' ' -f2), $(nproc) cores, ${SECS}s per run, wrk and PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on the same machine"
echo
echo "| store | instances | durable creates/s (64 conns) | p99 | GET by id/s (64 conns) | p99 | non-2xx |"
echo "|---|---|---|---|---|---|---|"

start_hookd
id=$(make_endpoint)
read -r c cp ce < <(rate 64 -s "$work/create.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints")
read -r g gp ge < <(rate 64 -s "$work/auth.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints/$id")
echo "| embedded (redb) | 1 | $c | $cp | $g | $gp | $((ce + ge)) |"
stop_hookd

psql_do "CREATE DATABASE bench1"
pg_hookd "$PORT" bench1
id=$(make_endpoint)
read -r c cp ce < <(rate 64 -s "$work/create.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints")
read -r g gp ge < <(rate 64 -s "$work/auth.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints/$id")
echo "| PostgreSQL | 1 | $c | $cp | $g | $gp | $((ce + ge)) |"
stop_all

psql_do "CREATE DATABASE bench2"
pg_hookd "$PORT" bench2
pg_hookd "$((PORT + 1))" bench2
id=$(make_endpoint)
other="127.0.0.1:$((PORT + 1))"
rate 32 -s "$work/create.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints" >"$work/a" &
rate 32 -s "$work/create.lua" "http://$other/api/v1/alerting/webhook-endpoints" >"$work/b"
wait $!
read -r c1 cp1 ce1 <"$work/a"
read -r c2 cp2 ce2 <"$work/b"
rate 32 -s "$work/auth.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints/$id" >"$work/a" &
rate 32 -s "$work/auth.lua" "http://$other/api/v1/alerting/webhook-endpoints/$id" >"$work/b"
wait $!
read -r g1 gp1 ge1 <"$work/a"
read -r g2 gp2 ge2 <"$work/b"
sum() { python3 -c "print(round($1 + $2))"; }
echo "| PostgreSQL | 2 | $(sum "$c1" "$c2") ($c1 + $c2) | $cp1, $cp2 | $(sum "$g1" "$g2") ($g1 + $g2) | $gp1, $gp2 | $((ce1 + ce2 + ge1 + ge2)) |"
stop_all
