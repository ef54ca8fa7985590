#!/bin/bash
# Build the Debian package (.deb) of this source tree.
#
#   packaging/build-deb.sh [OUTDIR]
#
# dpkg-buildpackage wants debian/ at the top of the source tree; this tree
# keeps it in packaging/debian/. So: copy the tree (export-tree.sh: the
# files git knows about, tracked or new and not ignored) to a temporary
# directory, put packaging/debian/ at its top as debian/, and run
# `dpkg-buildpackage -us -uc -b` there. The .deb, .buildinfo and .changes
# land in OUTDIR (default: dist/ in the tree). The tests run during the
# build (debian/rules); DEB_BUILD_OPTIONS=nocheck skips them.
# Needs the Build-Depends of packaging/debian/control (.ci/install-deps).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The upstream part of debian/changelog's version must be meson's version.
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -n1)
deb_version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
if [ "${deb_version%-*}" != "$meson_version" ]; then
        echo "build-deb.sh: packaging/debian/changelog is at $deb_version, meson.build at $meson_version:" >&2
        echo "  add a changelog entry (dch -v $meson_version-1) first" >&2
        exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sockherd-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Built as root, the tests run workers (test_credentials) and sockherdctl
# (test_control) as other users, who need to reach the build tree.
chmod 755 "$work"
src="$work/sockherd-$meson_version"
mkdir "$src"
"$top/packaging/export-tree.sh" "$src"
cp -a "$top/packaging/debian" "$src/debian"

started=$(date +%s)
(cd "$src" && dpkg-buildpackage -us -uc -b -Jauto)
for f in "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes; do
        mv -f "$f" "$out/"
done
echo "build-deb.sh: built in $(( $(date +%s) - started ))s:"
ls -l "$out"/sockherd_"$deb_version"_*.deb
