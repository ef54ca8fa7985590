#!/bin/sh
# Build (once) the lower root of the systemd tests' Debian 13 boxes: a
# minimal Debian 13 "trixie" (systemd 257) made by debootstrap from Debian's
# archive, so that the scenarios of tests/systemd also run under a systemd
# newer than Debian 12's 252 (Type=notify-reload, which needs 253).
#
#     make-root.sh ROOT
#
# ROOT (build/trixie-root in a meson build) is built only if it is missing
# or was made from another package list; concurrent callers wait on a lock
# (ROOT.lock) and the root appears by rename() only once complete, so a
# test never sees half a root. The box mounts it read-only as the lower
# layer of an overlay (boot.sh), so it stays pristine and is reused by
# every box of every test run until the build directory is removed.
#
# Contents: debootstrap's minbase, systemd and dbus (the box's PID 1 and
# bus), libinih1 and libbpf1 (sockherd's run-time libraries besides
# libsystemd0 and libc6, which systemd pulls in), and curl (the README's
# steps use it).
# The sockherd binaries the tests copy in are the ones built on the host
# (Debian 12) against older libraries, which trixie's accept (same
# sonames, newer symbol versions).
#
# SOCKHERD_DEBIAN_MIRROR overrides the archive (default
# http://deb.debian.org/debian). Exit 0 when the root is ready, 1 when it
# cannot be built (debootstrap's log is printed).
set -eu

root=${1:?usage: make-root.sh ROOT}
suite=trixie
mirror=${SOCKHERD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=systemd,dbus,libinih1,libbpf1,curl
stamp="suite=$suite include=$include"
marker=.sockherd-root

command -v debootstrap > /dev/null || { echo "make-root.sh: debootstrap not found (apt-get install debootstrap)" >&2; exit 1; }
command -v flock > /dev/null || { echo "make-root.sh: flock not found" >&2; exit 1; }

mkdir -p "$(dirname "$root")"
exec 9> "$root.lock"
flock 9

if [ -f "$root/$marker" ] && [ "$(cat "$root/$marker")" = "$stamp" ]; then
        exit 0
fi

tmp=$root.tmp
log=$root.log
rm -rf "$tmp"
start=$(date +%s)
echo "make-root.sh: debootstrap $suite into $root from $mirror ($include)" >&2
# Niced: it runs next to the integration tests, some of which time things.
if ! nice -n 19 debootstrap --variant=minbase --include="$include" "$suite" "$tmp" "$mirror" > "$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "make-root.sh: debootstrap failed after $(( $(date +%s) - start ))s (log: $log)" >&2
        rm -rf "$tmp"
        exit 1
fi
# The downloaded packages are of no use to the box.
rm -f "$tmp"/var/cache/apt/archives/*.deb
echo "$stamp" > "$tmp/$marker"
rm -rf "$root"
mv "$tmp" "$root"
echo "make-root.sh: $root built in $(( $(date +%s) - start ))s, $(du -sh "$root" | cut -f1), systemd $(chroot "$root" dpkg-query -W -f='${Version}' systemd)" >&2
