#!/bin/bash
# Copy this source tree to DEST, as a release tarball would hold it: in a git
# checkout the files git knows about (tracked, or new and not ignored) that
# exist; otherwise everything but .git and build output. Never dist/ (where
# the build scripts put packages), build directories or a debian/ at the top.
#
#   packaging/export-tree.sh DEST
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest=$1
mkdir -p "$dest"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$top" && git ls-files -z --cached --others --exclude-standard |
                while IFS= read -r -d '' f; do
                        case $f in dist/* | obj-*/* | debian/*) continue ;; esac
                        [ -e "$f" ] && printf '%s\0' "$f"
                done | tar --null -T - -cf -) | tar -xf - -C "$dest"
else
        tar -C "$top" --exclude=./.git --exclude='./build*' --exclude=./dist \
                --exclude='./obj-*' --exclude=./debian -cf - . | tar -xf - -C "$dest"
fi
