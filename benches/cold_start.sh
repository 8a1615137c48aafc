#!/usr/bin/env bash
# Cold start of the release binary on a large store: the time from exec to systemd's READY=1
# (store open, listener bound), which is also when /readyz first answers.
#
#   bash benches/cold_start.sh              # a store of at least 100 MB, 10 starts
#   STORE_MB=200 STARTS=20 bash benches/cold_start.sh
#
# The store is filled with durable creates by wrk (signing secrets, so every record is sealed),
# then hookd is started STARTS times with the page cache as it is (warm, like a restart) and
# once after dropping the page cache (cold, like a boot; needs root, skipped otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
STORE_MB=${STORE_MB:-100}
STARTS=${STARTS:-10}
cargo build --release --quiet
# shellcheck source=benches/lib.sh
. benches/lib.sh

start_hookd
echo "filling the store to ${STORE_MB} MB with durable creates..."
while [ "$(stat -c %s "$work/data/hookd.redb")" -lt $((STORE_MB * 1000 * 1000)) ]; do
    wrk -t2 -c64 -d5s -s "$work/create.lua" "http://$ADDR/api/v1/alerting/webhook-endpoints" >/dev/null
done
stop_hookd
size=$(du -m "$work/data/hookd.redb" | cut -f1)

# One start: exec to READY=1 on a notify socket, in milliseconds; then SIGTERM.
cat >"$work/start.py" <<'PY'
import os, socket, subprocess, sys, time
sock_path = os.path.join(sys.argv[1], "notify.sock")
if os.path.exists(sock_path):
    os.unlink(sock_path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
s.settimeout(30)
env = dict(os.environ, NOTIFY_SOCKET=sock_path)
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[2:], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
msg = s.recv(512)
ready = (time.monotonic() - t0) * 1000
assert msg.startswith(b"READY=1"), msg
p.terminate()
p.wait(30)
print(f"{ready:.1f}")
PY
run_start() {
    HOOKD_LISTEN=$ADDR HOOKD_DATA_DIR="$work/data" HOOKD_BOOTSTRAP_TOKEN=$TOKEN HOOKD_LOG=warn \
        python3 "$work/start.py" "$work" "$HOOKD_BIN" serve
}
times=()
for _ in $(seq "$STARTS"); do times+=("$(run_start)"); done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
echo "store: ${size} MB ($(du -m "$work/data/hookd.redb" | cut -f1) MB after the starts)"
echo "exec -> READY=1, page cache warm, ${STARTS} starts: median $(sed -n "$(( (STARTS + 1) / 2 ))p" <<<"$sorted") ms, min $(head -1 <<<"$sorted") ms, max $(tail -1 <<<"$sorted") ms"
if [ "$(id -u)" = 0 ] && sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
    echo "exec -> READY=1, page cache dropped: $(run_start) ms"
else
    echo "(not root or no /proc/sys/vm/drop_caches: no cold-cache start)"
fi
