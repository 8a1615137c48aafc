# Shared by the load scripts: settings, a hookd on loopback, wrk scripts and one wrk run.
# Source it from the repository root; HOOKD_BIN picks the binary (default: the release build).
# shellcheck shell=bash

HOOKD_BIN=${HOOKD_BIN:-./target/release/hookd}
SECS=${BENCH_SECS:-10}
PORT=${BENCH_PORT:-18080}
ADDR="127.0.0.1:$PORT"
TOKEN="bench-admin-token-0123456789abcdef"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

work=$(mktemp -d)
pid=
trap 'stop_hookd; rm -rf "$work"' EXIT

# start_hookd [CONFIG_FILE]: a release hookd on $ADDR with the store in $work/${DATA:-data}.
start_hookd() {
    HOOKD_LISTEN=$ADDR HOOKD_DATA_DIR="$work/${DATA:-data}" HOOKD_BOOTSTRAP_TOKEN=$TOKEN HOOKD_LOG=warn \
        HOOKD_LIMITS__MAX_CONNECTIONS=4096 "$HOOKD_BIN" serve ${1:+--config "$1"} \
        >"$work/out" 2>"$work/err" &
    pid=$!
    for _ in $(seq 100); do curl -fs "http://$ADDR/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "hookd did not start:" >&2; cat "$work/err" >&2; exit 1
}
stop_hookd() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi
}
cat >"$work/create.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name":"Slack Webhook","url":"https://hooks.slack.com/services/T00/B00/xxx","signingEnabled":true,"signingSecret":"my-secret-key"}'
LUA
cat >"$work/auth.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA

# alert_lua [EXTRA_PAYLOAD_JSON]: writes $work/alert.lua, a wrk script posting a native alert
# (`"...":"..."` members added to its payload).
alert_lua() {
    cat >"$work/alert.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"eventType":"alert.firing","payload":{"alertname":"DiskFull","severity":"page"${1:+,$1}}}'
LUA
}

# make_endpoint: creates one endpoint and prints its id.
make_endpoint() {
    curl -fs -X POST "http://$ADDR/api/v1/alerting/webhook-endpoints" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"name":"bench","url":"https://example.com/","signingEnabled":true,"signingSecret":""}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["endpoint"]["id"])'
}

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


# plugins_toml: writes a config with the two shipped plugins (built by plugins/build.sh) in
# front of creates and prints its path; fails when they are not built.
plugins_toml() {
    [ -f plugins/host_allowlist.wasm ] && [ -f plugins/https_only.wasm ] || return 1
    cat >"$work/plugins.toml" <<TOML
[[plugins]]
name = "hosts"
path = "$PWD/plugins/host_allowlist.wasm"
settings = "hooks.slack.com, .pagerduty.com"
[[plugins]]
name = "https"
path = "$PWD/plugins/https_only.wasm"
TOML
    echo "$work/plugins.toml"
}
