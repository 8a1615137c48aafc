#!/usr/bin/env bash
# The Debian package of hookd, for this machine's architecture or cross-built for arm64:
#
#   bash config/debian/build.sh            # amd64: target/debian/hookd_<version>-1_amd64.deb
#   bash config/debian/build.sh arm64      # arm64, from an x86-64 Debian machine
#
# Installs what it needs when missing (as root): cargo-deb, and for arm64 Debian's cross
# toolchain (crossbuild-essential-arm64) and the Rust target. Prints the path of the package.
set -euo pipefail
cd "$(dirname "$0")/../.."

arch=${1:-amd64}
case $arch in
amd64) target=x86_64-unknown-linux-gnu ;;
arm64) target=aarch64-unknown-linux-gnu ;;
*) echo "usage: $0 [amd64|arm64]" >&2; exit 2 ;;
esac

if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --locked --version '^3.8'
fi
if [ "$arch" = arm64 ]; then
    if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq crossbuild-essential-arm64 >/dev/null
    fi
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    # The linker, and the C compiler for ring's and zstd's C parts.
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
    export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
fi

# /etc/hookd/hookd.toml: the documented defaults, with the store where the package keeps it.
mkdir -p target/debian-conf
# The per-address cap is left commented out: set in the file, it would count as the operator's
# and refuse a max_connections lowered below it; unset, it follows max_connections.
sed -e 's|^data_dir = "./data"$|data_dir = "/var/lib/hookd"|' \
    -e 's|^max_connections_per_ip = |# max_connections_per_ip = |' \
    config/hookd.toml >target/debian-conf/hookd.toml
grep -qx '# max_connections_per_ip = 128' target/debian-conf/hookd.toml ||
    { echo "config/hookd.toml has no max_connections_per_ip = 128 line to comment out" >&2; exit 1; }
grep -qx 'data_dir = "/var/lib/hookd"' target/debian-conf/hookd.toml ||
    { echo "config/hookd.toml has no data_dir = \"./data\" line to replace" >&2; exit 1; }
grep -qx 'listen = "127.0.0.1:8080"' target/debian-conf/hookd.toml ||
    { echo "the packaged configuration must listen on loopback" >&2; exit 1; }
# The example plugins ship in /usr/share/hookd/plugins: the packaged configuration's examples
# name them there (the service's working directory is /var/lib/hookd).
sed -i -e 's|^# path = "plugins/\([a-z_]*\.wasm\)".*$|# path = "/usr/share/hookd/plugins/\1"   # installed by the package|' \
    target/debian-conf/hookd.toml
for p in host_allowlist ntfy; do
    grep -q "^# path = \"/usr/share/hookd/plugins/$p.wasm\"" target/debian-conf/hookd.toml ||
        { echo "config/hookd.toml has no example path = \"plugins/$p.wasm\" to rewrite" >&2; exit 1; }
done
for p in host_allowlist https_only ntfy; do
    [ -f "plugins/$p.wasm" ] || bash plugins/build.sh >&2
done
# The man pages and shell completions, generated from the command line's definition (on this
# machine, whatever the package's architecture: they are text).
rm -rf target/debian-conf/man
cargo run --quiet --locked --example man -- target/debian-conf/man >&2
gzip -9n target/debian-conf/man/*.1

started=$(date +%s)
if [ "$arch" = amd64 ]; then
    cargo build --release --locked --bin hookd
    cargo deb --no-build --no-strip --output target/debian/ >/dev/null
else
    cargo build --release --locked --bin hookd --target "$target"
    cargo deb --no-build --no-strip --target "$target" --output target/debian/ >/dev/null
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
deb=$(ls -t target/debian/hookd_"$version"*_"$arch".deb | head -1)
echo "built $deb in $(( $(date +%s) - started )) s" >&2
echo "$deb"
