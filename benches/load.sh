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

SECS=${BENCH_SECS:-10}
PORT=${BENCH_PORT:-18080}
ADDR="127.0.0.1:$PORT"
TOKEN="bench-admin-token-0123456789abcdef"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

cargo build --release --quiet
work=$(mktemp -d)
pid=
trap 'stop_hookd; rm -rf "$work"' EXIT

# start_hookd [CONFIG_FILE]: a release hookd on $ADDR with the store in $work/${DATA:-data}.
start_hookd() {
    HOOKD_LISTEN=$ADDR HOOKD_DATA_DIR="$work/${DATA:-data}" HOOKD_BOOTSTRAP_TOKEN=$TOKEN HOOKD_LOG=warn \
        HOOKD_LIMITS__MAX_CONNECTIONS=4096 ./target/release/hookd serve ${1:+--config "$1"} \
        >"$work/out" 2>"$work/err" &
    pid=$!
    for _ in $(seq 100); do curl -fs "http://$ADDR/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "hookd did not start:" >&2; cat "$work/err" >&2; exit 1
}
stop_hookd() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi
}
start_hookd

cat >"$work/create.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name":"Slack Webhook","url":"https://hooks.slack.com/services/T00/B00/xxx","signingEnabled":true,"signingSecret":"my-secret-key"}'
LUA
cat >"$work/auth.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA

id=$(curl -fs -X POST "http://$ADDR/api/v1/alerting/webhook-endpoints" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"bench","url":"https://example.com/","signingEnabled":true,"signingSecret":""}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["endpoint"]["id"])')

# run NAME CONNECTIONS [wrk args...]: prints "| name | conns | req/s | p50 | p99 | errors |"
run() {
    local name=$1 conns=$2; shift 2
    local threads=$(( conns < 2 ? 1 : 2 ))
    local out
    out=$(wrk -t"$threads" -c"$conns" -d"${SECS}s" --latency "$@")
    local rps p50 p99 non2xx
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    printf '| %-24s | %5s | %10s | %8s | %8s | %6s |\n' "$name" "$conns" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

echo "hookd $(./target/release/hookd --version | cut -d' ' -f2), $(nproc) cores, ${SECS}s per run, wrk on the same machine"
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
if [ -f plugins/host_allowlist.wasm ] && [ -f plugins/https_only.wasm ]; then
    stop_hookd
    cat >"$work/plugins.toml" <<TOML
[[plugins]]
name = "hosts"
path = "$PWD/plugins/host_allowlist.wasm"
settings = "hooks.slack.com, .pagerduty.com"
[[plugins]]
name = "https"
path = "$PWD/plugins/https_only.wasm"
TOML
    # A new store, so these creates start from the same store size as the ones above.
    DATA=data-plugins start_hookd "$work/plugins.toml"
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
