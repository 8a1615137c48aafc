#!/usr/bin/env bash
# Installs the Debian package on this machine (as root) and checks it the way an operator would:
# files, owners and modes, the hookd user, the unit file, hookd running as that user, then a
# remove and a purge that keep /var/lib/hookd. CI runs it after `bash config/debian/build.sh`.
#
#   sudo bash tests/deb_install.sh target/debian/hookd_<version>-1_amd64.deb
#
# It refuses to run where hookd is already installed, and cleans up after itself.
set -euo pipefail
deb=${1:?usage: $0 PACKAGE.deb}
[ "$(id -u)" = 0 ] || { echo "run as root (it installs a package)" >&2; exit 2; }
if dpkg-query -W hookd >/dev/null 2>&1 || [ -e /var/lib/hookd ] || getent passwd hookd >/dev/null; then
    echo "hookd is already installed here (package, /var/lib/hookd or user): not touching it" >&2
    exit 2
fi

work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    dpkg --purge hookd >/dev/null 2>&1 || true
    rm -rf /var/lib/hookd /etc/hookd "$work"
    userdel hookd >/dev/null 2>&1 || true
    groupdel hookd >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
# expect PATH OWNER:GROUP MODE
expect() {
    local got
    got=$(stat -c '%U:%G %a' "$1") || fail "$1 is missing"
    [ "$got" = "$2 $3" ] || fail "$1 is $got, expected $2 $3"
    ok "$1 $2 $3"
}

echo "== dpkg -i $deb"
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"

echo "== files, owners and modes"
expect /usr/bin/hookd root:root 755
expect /etc/hookd/hookd.toml root:hookd 640
expect /var/lib/hookd hookd:hookd 700
expect /usr/lib/systemd/system/hookd.service root:root 644
expect /usr/share/doc/hookd/README.md root:root 644
for page in hookd hookd-serve hookd-config-check hookd-backup hookd-restore hookd-rekey hookd-token-create hookd-plugin-transform; do
    expect "/usr/share/man/man1/$page.1.gz" root:root 644
done
zcat /usr/share/man/man1/hookd-backup.1.gz | grep -q 'http://127.0.0.1:8080' ||
    fail "hookd-backup(1) lacks --url's default"
zcat /usr/share/man/man1/hookd-backup.1.gz | grep -q 'cacert' ||
    fail "hookd-backup(1) lacks --cacert"
ok "man pages, generated from the command line (hookd-backup(1) shows --url's default)"
expect /usr/share/bash-completion/completions/hookd root:root 644
expect /usr/share/zsh/vendor-completions/_hookd root:root 644
expect /usr/share/fish/vendor_completions.d/hookd.fish root:root 644
# bash: the completion offers the commands.
words=$(bash -c 'source /usr/share/bash-completion/completions/hookd 2>/dev/null
    COMP_WORDS=(hookd co); COMP_CWORD=1; COMP_LINE="hookd co"; COMP_POINT=${#COMP_LINE}
    _hookd hookd co hookd; echo "${COMPREPLY[*]}"')
echo "$words" | grep -qw config && echo "$words" | grep -qw compact ||
    fail "bash completion of 'hookd co' gave: $words"
ok "bash completion: hookd co -> $words"
for p in host_allowlist https_only ntfy; do
    expect "/usr/share/hookd/plugins/$p.wasm" root:root 644
done
dpkg-query -W -f='${Conffiles}\n' hookd | grep -q '/etc/hookd/hookd.toml' || fail "hookd.toml is not a conffile"
ok "/etc/hookd/hookd.toml is a conffile"
grep -qx 'data_dir = "/var/lib/hookd"' /etc/hookd/hookd.toml || fail "data_dir is not /var/lib/hookd"
grep -qx 'listen = "127.0.0.1:8080"' /etc/hookd/hookd.toml || fail "the listen address is not on loopback"
ok "configuration: data_dir /var/lib/hookd, listen 127.0.0.1:8080"

echo "== the hookd user"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd hookd)
[ "$uid" -lt 1000 ] || fail "hookd is not a system user (uid $uid)"
[ "$home" = /var/lib/hookd ] || fail "hookd's home is $home"
[ "$shell" = /usr/sbin/nologin ] || fail "hookd's shell is $shell"
ok "hookd: system user $uid, home $home, shell $shell"

echo "== the unit file"
systemd-analyze verify /usr/lib/systemd/system/hookd.service
ok "systemd-analyze verify"
systemd-analyze security --offline=true --no-pager /usr/lib/systemd/system/hookd.service >"$work/security" 2>&1 || true
grep -E 'Overall exposure level' "$work/security" || { cat "$work/security"; fail "no security score"; }

echo "== hookd as the hookd user, the way the unit starts it"
runuser -u hookd -- /usr/bin/hookd --version
runuser -u hookd -- /usr/bin/hookd config check --config /etc/hookd/hookd.toml >"$work/check"
tail -n 1 "$work/check" | grep -q 'the configuration is valid' || { cat "$work/check"; fail "config check"; }
ok "hookd config check --config /etc/hookd/hookd.toml, as hookd"
# The packaged configuration's plugin examples, uncommented, load from where the package put them.
sed -e 's|^# \[\[plugins\]\]|[[plugins]]|' -e 's|^# \[\[transformers\]\]|[[transformers]]|' \
    -e 's#^\# \(name\|path\|settings\|on_error\) = #\1 = #' -e '/^plugins = \[\]$/d' -e '/^transformers = \[\]$/d' \
    /etc/hookd/hookd.toml >"$work/plugins.toml"
chmod 644 "$work/plugins.toml"
chmod 755 "$work"
runuser -u hookd -- /usr/bin/hookd config check --config "$work/plugins.toml" >"$work/check" 2>&1 ||
    { cat "$work/check"; fail "config check with the example plugins"; }
grep -q '1 URL-policy plugin(s) and 1 transformer(s) loaded' "$work/check" ||
    { tail -n 3 "$work/check"; fail "the example plugins did not load"; }
ok "the packaged configuration's example plugin and transformer load from /usr/share/hookd/plugins"
# A lower connection limit alone is enough: the packaged file leaves the per-address cap to follow it.
runuser -u hookd -- env HOOKD_LIMITS__MAX_CONNECTIONS=50 /usr/bin/hookd config check --config /etc/hookd/hookd.toml >"$work/check" 2>&1 ||
    { cat "$work/check"; fail "config check with HOOKD_LIMITS__MAX_CONNECTIONS=50"; }
ok "HOOKD_LIMITS__MAX_CONNECTIONS=50 with the packaged file passes config check"
# systemd's readiness socket, read by a small Python listener.
python3 - "$work/notify.sock" >"$work/notify" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
import os; os.chmod(sys.argv[1], 0o777)
s.settimeout(60)
print(s.recv(512).decode().replace("\n", " "), flush=True)
PY
listener=$!
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done
chmod 755 "$work"
(cd /var/lib/hookd && exec setpriv --reuid=hookd --regid=hookd --init-groups env NOTIFY_SOCKET="$work/notify.sock" HOOKD_LISTEN=127.0.0.1:18089 \
    /usr/bin/hookd serve --config /etc/hookd/hookd.toml >"$work/stdout" 2>"$work/stderr") &
pid=$!
wait "$listener" || { cat "$work/stderr"; fail "no readiness notification"; }
grep -q '^READY=1' "$work/notify" || fail "notified $(cat "$work/notify")"
ok "sd_notify: $(cat "$work/notify")"
curl -fsS http://127.0.0.1:18089/readyz >/dev/null || fail "/readyz"
token=$(grep -A1 'created the admin API token' "$work/stdout" | tail -n 1)
[ -n "$token" ] || fail "no admin token on stdout"
curl -fsS -H "Authorization: Bearer $token" http://127.0.0.1:18089/api/v1/alerting/webhook-endpoints >/dev/null ||
    fail "the printed token does not work"
ok "serving; the first start's token (printed once, to the journal under systemd) works"
expect /var/lib/hookd/hookd.redb hookd:hookd 600
expect /var/lib/hookd/master.key hookd:hookd 600
kill -TERM "$pid"
wait "$pid" || fail "hookd exited with $? on SIGTERM"
pid=
ok "SIGTERM: exit 0"

echo "== reinstall (an upgrade's path): the user and the modes stay"
chmod 0644 /etc/hookd/hookd.toml
echo "# an operator's edit" >>/etc/hookd/hookd.toml
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null
expect /etc/hookd/hookd.toml root:hookd 644
expect /var/lib/hookd hookd:hookd 700
grep -q "^# an operator's edit" /etc/hookd/hookd.toml || fail "the upgrade replaced the edited configuration"
ok "the edited configuration is kept"

echo "== dpkg -r: the program goes, the data and the configuration stay"
dpkg -r hookd >/dev/null
[ ! -e /usr/bin/hookd ] || fail "/usr/bin/hookd is still there"
expect /var/lib/hookd/hookd.redb hookd:hookd 600
expect /var/lib/hookd/master.key hookd:hookd 600
[ -f /etc/hookd/hookd.toml ] || fail "the conffile went with a remove"
ok "removed; /var/lib/hookd and /etc/hookd/hookd.toml kept"

echo "== dpkg --purge: the data still stays"
dpkg --purge hookd 2>&1 | grep -q 'is kept' || fail "purge did not say the data is kept"
expect /var/lib/hookd/hookd.redb hookd:hookd 600
ok "purged; /var/lib/hookd kept"
echo "debian package: all checks passed"
