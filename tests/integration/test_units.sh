#!/bin/sh
# The shipped unit files pass `systemd-analyze verify`, in both variants of
# the service that meson builds (units/meson.build): Type=notify with
# ExecReload=, and Type=notify-reload.
#
#   test_units.sh SERVICE SOCKET SOCKHERD
#
# SERVICE is the configured sockherd@.service.VARIANT; its sibling variant
# sits next to it. verify insists that every Exec*= binary exists, so the
# installed paths of ExecStart= (sockherd) and ExecReload= (sockherdctl) are
# pointed at the build; the rest of each unit is checked exactly as it is
# installed.
#
# Type=notify-reload needs systemd >= 253. An older systemd-analyze (Debian
# 12 has 252) warns that it does not know the type; for that variant on
# such a systemd exactly that one warning is allowed and everything else
# must be clean.
set -eu
service="$1"; socket="$2"; binary="$3"
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing"; exit 77; }

ctl="$(dirname "$binary")/sockherdctl"
if [ ! -x "$ctl" ]; then
        # sockherdctl is not built (yet): any existing executable satisfies
        # verify, which only checks that the ExecReload= binary exists.
        ctl=/bin/true
fi

systemd_version=$(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0

# verify also runs `man` for each Documentation= page. The pages are not
# installed yet: point man at the ones this build made (man/meson.build),
# or skip that check when they were not built (-Dman=disabled).
man_built="$(dirname "$(dirname "$binary")")/man"
man_option=--man=no
if [ -f "$man_built/sockherd.8" ]; then
        for page in "$man_built"/*.[0-9]; do
                section="${page##*.}"
                mkdir -p "$tmp/man/man$section"
                ln -s "$page" "$tmp/man/man$section/"
        done
        MANPATH="$tmp/man"; export MANPATH
        man_option=--man=yes
fi

verify() {
        variant_file="$1"
        variant="${variant_file##*.service.}"
        dir="$tmp/$variant"; mkdir "$dir"
        start_path=$(sed -n 's|^ExecStart=\([^ ]*\).*|\1|p' "$variant_file")
        reload_path=$(sed -n 's|^#\{0,1\}ExecReload=\([^ ]*\).*|\1|p' "$variant_file")
        [ -n "$start_path" ] || { echo "$variant: no ExecStart= line"; return 1; }
        [ -n "$reload_path" ] || { echo "$variant: no ExecReload= line"; return 1; }
        sed -e "s|^ExecStart=$start_path |ExecStart=$binary |" \
            -e "s|^ExecReload=$reload_path |ExecReload=$ctl |" \
            "$variant_file" > "$dir/sockherd@.service"
        cp "$socket" "$dir/sockherd@.socket"
        type=$(sed -n 's/^Type=//p' "$dir/sockherd@.service")
        case "$variant:$type" in
        notify:notify)
                grep -q "^ExecReload=$ctl -u %i reload --wait\$" "$dir/sockherd@.service" ||
                        { echo "notify: ExecReload= is not 'sockherdctl -u %i reload --wait'"; return 1; } ;;
        notify-reload:notify-reload)
                ! grep -q '^ExecReload=' "$dir/sockherd@.service" ||
                        { echo "notify-reload: ExecReload= must be left out"; return 1; } ;;
        *)      echo "$variant: unexpected Type=$type"; return 1 ;;
        esac

        out=$(cd "$dir" && systemd-analyze verify "$man_option" ./sockherd@.service ./sockherd@.socket 2>&1) ||
                { echo "$variant: systemd-analyze verify failed:"; echo "$out"; return 1; }
        note=""
        if [ "$type" = notify-reload ] && [ "${systemd_version:-0}" -lt 253 ]; then
                unknown=$(printf '%s\n' "$out" | grep -c "Failed to parse service type, ignoring: notify-reload" || true)
                [ "$unknown" = 1 ] ||
                        { echo "$variant: expected systemd $systemd_version to reject the type once:"; echo "$out"; return 1; }
                out=$(printf '%s\n' "$out" | grep -v "Failed to parse service type, ignoring: notify-reload" || true)
                note=" (except Type=notify-reload, which systemd $systemd_version does not know)"
        fi
        [ -z "$out" ] || { echo "$variant: warnings from systemd-analyze verify:"; echo "$out"; return 1; }
        echo "systemd-analyze verify: sockherd@.service ($variant) and sockherd@.socket are clean$note"
}

for variant_file in "${service%.service.*}.service.notify" "${service%.service.*}.service.notify-reload"; do
        [ -f "$variant_file" ] || { echo "missing $variant_file"; status=1; continue; }
        verify "$variant_file" || status=1
done
echo "ExecReload= binary used for verify: $ctl; Documentation= pages: ${MANPATH:-not checked (man pages not built)}"
exit $status
