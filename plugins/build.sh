#!/usr/bin/env bash
# Builds every plugin in this folder into a WebAssembly component: plugins/<name>.wasm.
#   bash plugins/build.sh
# Needs the wasm32-unknown-unknown target and wasm-tools; installs both if missing.
set -euo pipefail
cd "$(dirname "$0")"

rustup target list --installed | grep -qx wasm32-unknown-unknown ||
    rustup target add wasm32-unknown-unknown
command -v wasm-tools >/dev/null ||
    cargo install --locked wasm-tools --no-default-features --features component

cargo build --release --target wasm32-unknown-unknown
for name in host_allowlist https_only ntfy; do
    wasm-tools component new "target/wasm32-unknown-unknown/release/$name.wasm" -o "$name.wasm"
    echo "built plugins/$name.wasm ($(wc -c <"$name.wasm") bytes)"
done
