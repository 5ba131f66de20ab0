#!/usr/bin/env bash
# Installs the Debian packages ocss builds and runs with, only those that are missing.
set -euo pipefail
pkgs=(pkg-config libproj-dev proj-data libsqlite3-dev libmicrohttpd-dev libssl-dev libpq-dev openssl tzdata python3 python3-venv)
# `install-deps.sh test`: also what the test suite drives (a real browser for the dashboard and the store app, a CJK
# font for their labels, zbar to read back the QR codes ocss draws, PostgreSQL 15 for throwaway test clusters).
[ "${1:-}" = "test" ] && pkgs+=(chromium fonts-wqy-microhei zbar-tools postgresql-15)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
command -v swift >/dev/null || { echo "swift (6.3) is not on PATH: install the Swift toolchain first" >&2; exit 1; }
