#!/usr/bin/env bash
# Runs one fuzz target with the committed seeds and the JSON dictionary.
#   bash fuzz/run.sh TARGET [SECONDS]      (no SECONDS: until stopped)
# The growing corpus lives in fuzz/corpus/TARGET (not committed); crashes in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$1
secs=${2:-0}
toolchain=+nightly
rustup toolchain list | grep -q '^nightly' || { toolchain=; export RUSTC_BOOTSTRAP=1; }
mkdir -p "fuzz/corpus/$target"
seeds=()
[ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
cargo $toolchain fuzz run "$target" "fuzz/corpus/$target" "${seeds[@]}" -- \
    -dict=fuzz/json.dict -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1
