#!/bin/bash
# Build the RPM of this source tree with packaging/rpm/sockherd.spec.
#
#   packaging/build-rpm.sh [--version VERSION] [OUTDIR]
#
# Makes sockherd-VERSION.tar.gz from the tree (export-tree.sh: the files git
# knows about, tracked or new and not ignored),
# runs `rpmbuild -bb` in a temporary _topdir, and leaves the .rpm in OUTDIR
# (default: dist/ in the tree). The tests run in %check.
#
# Without --version the package has the spec's Version, which must be
# meson.build's version. --version VERSION builds that version instead (a
# copy of the spec gets it; the binaries report it); the tree is not
# changed.
#
# On a distribution that is not RPM-based (CI runs on Debian), rpmbuild
# cannot check BuildRequires against its database: set SOCKHERD_RPM_NODEPS=1
# (the default when /etc/debian_version exists) to pass --nodeps; the build
# tools must then be installed by other means (.ci/install-deps).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
version=
if [ "${1:-}" = --version ]; then
        version=${2:?build-rpm.sh: --version needs a VERSION}
        shift 2
        case $version in
        [0-9]*) ;;
        *) echo "build-rpm.sh: '$version' is not an RPM version" >&2; exit 2 ;;
        esac
        if [ -n "${version//[A-Za-z0-9._+~^]/}" ]; then
                echo "build-rpm.sh: '$version' is not an RPM version (no '-' or spaces)" >&2
                exit 2
        fi
fi
out=${1:-$top/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
spec="$top/packaging/rpm/sockherd.spec"

meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -n1)
spec_version=$(sed -n 's/^Version: *//p' "$spec")
if [ -z "$version" ] && [ "$spec_version" != "$meson_version" ]; then
        echo "build-rpm.sh: $spec has Version $spec_version, meson.build $meson_version: update the spec (Version, %changelog), or build another version with: $0 --version VERSION" >&2
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
version=${version:-$spec_version}
mkdir -p "$work/SOURCES" "$work/stage/sockherd-$version"
src="$work/stage/sockherd-$version"
"$top/packaging/export-tree.sh" "$src"
tar -C "$work/stage" -czf "$work/SOURCES/sockherd-$version.tar.gz" "sockherd-$version"
sed "s/^Version: .*/Version:        $version/" "$spec" > "$work/sockherd.spec"
spec=$work/sockherd.spec

started=$(date +%s)
# SOCKHERD_RPM_NOCHECK=1 skips %check (the test suites), as .ci/run does
# after the .deb build ran them on the same exported tree
nocheck=()
if [ "${SOCKHERD_RPM_NOCHECK:-0}" = 1 ]; then
        nocheck=(--nocheck)
fi
# SOURCE_DATE_EPOCH (reproducible builds) also dates the packaged files: none
# is newer than it, as in a .deb (tests/systemd/test_rpm_upgrade.py builds
# its older package with files dated 2020)
clamp=()
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
        clamp=(--define "clamp_mtime_to_source_date_epoch 1")
fi
rpmbuild -bb "${nodeps[@]}" "${nocheck[@]}" "${clamp[@]}" --define "_topdir $work" "$spec"
find "$work/RPMS" -name '*.rpm' -exec mv -f {} "$out/" \;
echo "build-rpm.sh: built in $(( $(date +%s) - started ))s:"
ls -l "$out"/sockherd-"$version"-*.rpm
