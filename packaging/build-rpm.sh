#!/bin/bash
# Build the RPM of this source tree with packaging/rpm/sockherd.spec.
#
#   packaging/build-rpm.sh [OUTDIR]
#
# Makes sockherd-VERSION.tar.gz from the tree (export-tree.sh: the files git
# knows about, tracked or new and not ignored),
# runs `rpmbuild -bb` in a temporary _topdir, and leaves the .rpm in OUTDIR
# (default: dist/ in the tree). The tests run in %check.
#
# On a distribution that is not RPM-based (CI runs on Debian), rpmbuild
# cannot check BuildRequires against its database: set SOCKHERD_RPM_NODEPS=1
# (the default when /etc/debian_version exists) to pass --nodeps; the build
# tools must then be installed by other means (.ci/install-deps).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
spec="$top/packaging/rpm/sockherd.spec"

meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -n1)
spec_version=$(sed -n 's/^Version: *//p' "$spec")
if [ "$spec_version" != "$meson_version" ]; then
        echo "build-rpm.sh: $spec has Version $spec_version, meson.build $meson_version: update the spec (Version, %changelog)" >&2
        exit 1
fi

nodeps=()
if [ "${SOCKHERD_RPM_NODEPS:-$([ -e /etc/debian_version ] && echo 1 || echo 0)}" = 1 ]; then
        nodeps=(--nodeps)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sockherd-rpm.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Built as root, the tests run workers (test_credentials) and sockherdctl
# (test_control) as other users, who need to reach the build tree.
chmod 755 "$work"
mkdir -p "$work/SOURCES" "$work/stage/sockherd-$meson_version"
src="$work/stage/sockherd-$meson_version"
"$top/packaging/export-tree.sh" "$src"
tar -C "$work/stage" -czf "$work/SOURCES/sockherd-$meson_version.tar.gz" "sockherd-$meson_version"

started=$(date +%s)
# SOCKHERD_RPM_NOCHECK=1 skips %check (the test suites), as .ci/run does
# after the .deb build ran them on the same exported tree
nocheck=()
if [ "${SOCKHERD_RPM_NOCHECK:-0}" = 1 ]; then
        nocheck=(--nocheck)
fi
rpmbuild -bb "${nodeps[@]}" "${nocheck[@]}" --define "_topdir $work" "$spec"
find "$work/RPMS" -name '*.rpm' -exec mv -f {} "$out/" \;
echo "build-rpm.sh: built in $(( $(date +%s) - started ))s:"
ls -l "$out"/sockherd-"$meson_version"-*.rpm
