#!/usr/bin/env bash
# Load benchmark of the release binary with wrk, on loopback only.
#
# Reports durable creates/s and p99 at 1, 16 and 64 connections, GET-by-id req/s at 64, and a
# hello-world baseline (GET /healthz, no auth, no store) from the same tool in the same run; then,
# if the shipped plugins are built, the same creates with both plugins in front of them.
#
#   bash benches/load.sh            # 10 s per run
#   BENCH_SECS=30 bash benches/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
# shellcheck source=benches/lib.sh
. benches/lib.sh
start_hookd
id=$(make_endpoint)

echo "hookd $("$HOOKD_BIN" --version | cut -d' ' -f2), $(nproc) cores, ${SECS}s per run, wrk on the same machine"
echo
echo "| run                      | conns |      req/s |      p50 |      p99 | non-2xx |"
echo "|--------------------------|-------|------------|----------|----------|--------|"
run "hello world (/healthz)" 64 "http://$ADDR/healthz"
for c in 1 16 64; do
    run "durable create" "$c" -s "$work/create.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints"
done
run "GET endpoint by id" 64 -s "$work/auth.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints/$id"
rss=$(awk '/VmHWM/ {print $2 " " $3}' /proc/$pid/status)
store=$(du -h "$work/data/hookd.redb" | cut -f1)

# The same create with the two shipped plugins in front of it (built by plugins/build.sh).
if plugins=$(plugins_toml); then
    stop_hookd
    # A new store, so these creates start from the same store size as the ones above.
    DATA=data-plugins start_hookd "$plugins"
    for c in 1 16 64; do
        run "durable create, 2 plugins" "$c" -s "$work/create.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints"
    done
else
    echo "(plugins not built: bash plugins/build.sh adds the create-with-2-plugins run)"
fi

# Metrics off and on, interleaved, each on a fresh store: what recording costs a create.
for round in 1 2; do
    for metrics in false true; do
        stop_hookd
        HOOKD_METRICS__ENABLED=$metrics DATA="data-metrics-$metrics-$round" start_hookd
        run "create, metrics=$metrics" 64 -s "$work/create.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints"
    done
done
echo
echo "store file after the run: $store"
echo "peak RSS of hookd (without plugins): $rss"
