#!/bin/sh
# The shipped unit files pass `systemd-analyze verify`. The ExecStart path is
# pointed at the freshly built binary (verify insists that it exists); the
# rest of each unit is checked exactly as it is installed.
set -eu
service="$1"; socket="$2"; binary="$3"
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
installed_path=$(sed -n 's|^ExecStart=\([^ ]*\).*|\1|p' "$service")
sed "s|^ExecStart=$installed_path|ExecStart=$binary|" "$service" > "$tmp/sockherd@.service"
cp "$socket" "$tmp/sockherd@.socket"
cd "$tmp"
out=$(systemd-analyze verify ./sockherd@.service ./sockherd@.socket 2>&1) || { echo "$out"; exit 1; }
[ -z "$out" ] || { echo "warnings from systemd-analyze verify:"; echo "$out"; exit 1; }
echo "systemd-analyze verify: sockherd@.service and sockherd@.socket are clean"
