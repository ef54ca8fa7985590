#!/bin/bash
# bench/install.sh: what bench/run needs on Debian 12, as root:
#   wrk, gnuplot-nox and iproute2 (ss) from apt, PM2 (pinned) from npm into bench/node_modules.
#   bench/install.sh           everything
#   bench/install.sh --no-pm2  apt packages only
# The restart phase (bench/restart.py) boots systemd in a box like the
# systemd tests do: it needs root and what they need (systemd, util-linux's
# unshare/nsenter/setpriv, meson for `meson install`), nothing more.
set -euo pipefail
cd "$(dirname "$0")"
PM2_VERSION=7.0.4

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v systemd-socket-activate >/dev/null || missing+=(systemd)
command -v ss >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        echo "install.sh: apt-get installed ${missing[*]}"
fi

if [ "${1:-}" != --no-pm2 ]; then
        have=$(node -p "try { require('./node_modules/pm2/package.json').version } catch (e) { '' }")
        if [ "$have" != "$PM2_VERSION" ]; then
                npm install --prefix . --no-save --no-audit --no-fund --loglevel=error "pm2@$PM2_VERSION" >/dev/null
                echo "install.sh: npm installed pm2@$PM2_VERSION into bench/node_modules"
        fi
fi
echo "install.sh: wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}'), $(gnuplot --version), node $(node --version)$( [ -x node_modules/.bin/pm2 ] && echo ", pm2 $(node -p "require('./node_modules/pm2/package.json').version")")"
