#!/usr/bin/env bash
# What the store's page cache (`store.cache_mib`) buys: GET by id, list and create throughput,
# and hookd's peak RSS (after the reads, and after the creates, which add endpoints to the
# in-memory routing table), on one store of about 1 GB, with caches of 64, 32, 16 and 8 MiB, in one
# run. The store is built first: 20,000 endpoints (a large appliance's worth) with rules, then
# alerts of about 1 KB that no endpoint's rules take (stored, delivered nowhere: nothing leaves
# the machine) until that much is written.
# Each cache size then starts on its own copy of that file, in two rounds (64..8, then 8..64),
# and runs, at 64 connections, GETs of random endpoints, list pages from random cursors and
# creates, then creates at one connection. Release build, loopback only.
#
#   bash benches/cache.sh                      # 1 GB store, 8 s per run
#   CACHE_BENCH_MB=256 BENCH_SECS=4 bash benches/cache.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${BENCH_SECS:-8}
export BENCH_SECS=$SECS
STORE_MB=${CACHE_BENCH_MB:-1024}
ENDPOINTS=${CACHE_BENCH_ENDPOINTS:-20000}
[ -n "${HOOKD_BIN:-}" ] || cargo build --release --quiet
# shellcheck source=benches/lib.sh
. benches/lib.sh
API="http://$ADDR/api/v1/alerting"

# The store: endpoints, then alerts until it is big enough.
start_hookd
python3 - "$API" "$TOKEN" "$ENDPOINTS" "$work/ids" <<'PY'
import concurrent.futures, json, sys, urllib.request
api, token, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def call(method, path, body=None):
    req = urllib.request.Request(api + path, method=method, data=body and json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)
def create(i):
    # Rules no filler alert meets (they carry no labels and another event type): nothing is
    # ever delivered, and the routing table holds matchers as a real one does.
    rules = [{"filterTypes": ["deploy.*"]}, {"labelMatchers": [f'team="t{i % 50}"']},
             {"filterTypes": ["alertmanager.*"], "labelMatchers": ['severity=~"crit.*"']}][i % 3]
    return call("POST", "/webhook-endpoints", {"name": f"team {i}", "url": f"https://hooks.example.com/{i}",
                "signingEnabled": True, "signingSecret": "", **rules})["endpoint"]["id"]
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    ids = list(pool.map(create, range(n)))
with open(out, "w") as f:
    f.write("\n".join(ids) + "\n")
PY
alert_lua "\"description\":\"$(head -c 900 /dev/zero | tr '\0' 'x')\""
# redb doubles the file's length as it grows (sparse): the size that counts is what is written.
while [ "$(du -k "$work/data/hookd.redb" | cut -f1)" -lt $((STORE_MB << 10)) ]; do
    wrk -t2 -c64 -d2s -s "$work/alert.lua" "$API/alerts" >/dev/null
done
stop_hookd
cp -a "$work/data" "$work/template"

# Random ids and cursors, for the reads.
{
    echo "ids = {"
    sed 's/.*/"&",/' "$work/ids"
    echo "}"
    cat <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
request = function()
    return wrk.format("GET", PATH .. ids[math.random(#ids)] .. SUFFIX)
end
LUA
} >"$work/random.lua"
sed -e '1i PATH = "/api/v1/alerting/webhook-endpoints/"; SUFFIX = ""' "$work/random.lua" >"$work/get.lua"
sed -e '1i PATH = "/api/v1/alerting/webhook-endpoints?limit=50\&cursor="; SUFFIX = ""' "$work/random.lua" >"$work/list.lua"

# rate CONNS [wrk args...]: requests per second (fails on any answer that is not 2xx).
rate() {
    local conns=$1; shift
    local out
    out=$(wrk -t$((conns < 2 ? 1 : 2)) -c"$conns" -d"${SECS}s" "$@")
    if grep -q Non-2xx <<<"$out"; then echo "non-2xx answers:" >&2; echo "$out" >&2; exit 1; fi
    awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out"
}

echo "hookd $("$HOOKD_BIN" --version | cut -d' ' -f2), $(nproc) cores, ${SECS}s per run," \
    "store $(du -h "$work/template/hookd.redb" | cut -f1) written ($(wc -l <"$work/ids") endpoints + alerts)"
echo
echo "| cache | round | GET/s (64) | list/s (64) | peak RSS after reads | creates/s (64) | creates/s (1) | peak RSS after creates |"
echo "|---|---|---|---|---|---|---|---|"
for round in 1 2; do
    sizes="64 32 16 8"
    [ "$round" = 2 ] && sizes="8 16 32 64"
    for mib in $sizes; do
        rm -rf "$work/data"
        cp -a "$work/template" "$work/data"
        HOOKD_STORE__CACHE_MIB=$mib start_hookd
        get=$(rate 64 -s "$work/get.lua" "http://$ADDR")
        list=$(rate 64 -s "$work/list.lua" "http://$ADDR")
        reads=$(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$pid/status")
        c64=$(rate 64 -s "$work/create.lua" "$API/webhook-endpoints")
        c1=$(rate 1 -s "$work/create.lua" "$API/webhook-endpoints")
        rss=$(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$pid/status")
        stop_hookd
        echo "| $mib MiB | $round | $get | $list | $reads | $c64 | $c1 | $rss |"
    done
done
