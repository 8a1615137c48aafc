#!/usr/bin/env bash
# Two hookd binaries side by side under the same wrk load, interleaved (A, B, A, B) so that a
# machine that speeds up or slows down during the run treats both alike. Used to check that a
# build setting (opt-level, LTO) does not cost request speed.
#
#   bash benches/compare.sh OLD_BINARY NEW_BINARY      # BENCH_SECS=10, 2 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 BINARY_A BINARY_B" >&2; exit 2; }
a=$1 b=$2
# shellcheck source=benches/lib.sh
. benches/lib.sh

echo "A: $a ($(stat -c %s "$a") bytes)"
echo "B: $b ($(stat -c %s "$b") bytes)"
echo "$(nproc) cores, ${SECS}s per run, wrk on the same machine, a fresh store per run"
echo
echo "| run                      | conns |      req/s |      p50 |      p99 | non-2xx |"
echo "|--------------------------|-------|------------|----------|----------|--------|"
plugins=$(plugins_toml) || plugins=
for round in $(seq "${BENCH_ROUNDS:-2}"); do
    for which in A B; do
        if [ "$which" = A ]; then HOOKD_BIN=$a; else HOOKD_BIN=$b; fi
        stop_hookd
        DATA="data-$which-$round" start_hookd
        id=$(make_endpoint)
        run "$which healthz" 64 "http://$ADDR/healthz"
        run "$which durable create" 64 -s "$work/create.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints"
        run "$which GET by id" 64 -s "$work/auth.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints/$id"
        if [ -n "$plugins" ]; then
            stop_hookd
            DATA="data-$which-$round-plugins" start_hookd "$plugins"
            run "$which create, 2 plugins" 64 -s "$work/create.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints"
        fi
    done
done
