#!/bin/bash
# Build the Debian package (.deb) of this source tree.
#
#   packaging/build-deb.sh [--version VERSION] [OUTDIR]
#
# dpkg-buildpackage wants debian/ at the top of the source tree; this tree
# keeps it in packaging/debian/. So: copy the tree (export-tree.sh: the
# files git knows about, tracked or new and not ignored) to a temporary
# directory, put packaging/debian/ at its top as debian/, and run
# `dpkg-buildpackage -us -uc -b` there. The .deb, .buildinfo and .changes
# land in OUTDIR (default: dist/ in the tree). The tests run during the
# build (debian/rules); DEB_BUILD_OPTIONS=nocheck skips them.
# Needs the Build-Depends of packaging/debian/control (.ci/install-deps).
#
# Without --version the package has the version of the newest entry of
# packaging/debian/changelog, whose upstream part must be meson.build's
# version. --version VERSION (e.g. 0.2.0, or 0.2.0-3 with a Debian
# revision; -1 when none is given) builds that version instead: the copy's
# debian/changelog gets an entry for it at the top (written here, so
# devscripts' dch is not needed) and the binaries report it (sockherd
# --version, `sockherdctl status`); the tree itself is not changed. The
# entry is dated now, or $SOURCE_DATE_EPOCH when set (the packaged files'
# timestamps follow it).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
version=
if [ "${1:-}" = --version ]; then
        version=${2:?build-deb.sh: --version needs a VERSION}
        shift 2
fi
out=${1:-$top/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Without --version, the upstream part of debian/changelog's version must be
# meson's version.
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -n1)
if [ -n "$version" ]; then
        case $version in *-*) deb_version=$version ;; *) deb_version=$version-1 ;; esac
        if ! dpkg --validate-version "$deb_version" 2>/dev/null; then
                echo "build-deb.sh: '$version' is not a Debian version" >&2
                exit 2
        fi
else
        deb_version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
        if [ "${deb_version%-*}" != "$meson_version" ]; then
                echo "build-deb.sh: packaging/debian/changelog is at $deb_version, meson.build at $meson_version:" >&2
                echo "  add an entry for $meson_version-1 at the top of packaging/debian/changelog" >&2
                echo "  (by hand, or with dch -v $meson_version-1 from devscripts), or build another" >&2
                echo "  version with: $0 --version VERSION" >&2
                exit 1
        fi
fi
upstream_version=${deb_version#*:}
upstream_version=${upstream_version%-*}

work=$(mktemp -d "${TMPDIR:-/tmp}/sockherd-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Built as root, the tests run workers (test_credentials) and sockherdctl
# (test_control) as other users, who need to reach the build tree.
chmod 755 "$work"
src="$work/sockherd-$upstream_version"
mkdir "$src"
"$top/packaging/export-tree.sh" "$src"
cp -a "$top/packaging/debian" "$src/debian"
if [ -n "$version" ]; then
        # dch's entry, without dch; the maintainer line of the newest entry
        maintainer=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Maintainer)
        distribution=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Distribution)
        {
                printf 'sockherd (%s) %s; urgency=medium\n\n' "$deb_version" "$distribution"
                printf '  * Built from the source tree with packaging/build-deb.sh --version %s.\n\n' "$version"
                printf ' -- %s  %s\n\n' "$maintainer" "$(date -R ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"})"
                cat "$top/packaging/debian/changelog"
        } > "$src/debian/changelog"
fi

started=$(date +%s)
(cd "$src" && dpkg-buildpackage -us -uc -b -Jauto)
for f in "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes; do
        mv -f "$f" "$out/"
done
echo "build-deb.sh: built in $(( $(date +%s) - started ))s:"
ls -l "$out"/sockherd_"${deb_version#*:}"_*.deb
