#!/usr/bin/env bash
# Checks that the release binary, built as the Dockerfile builds it (--static-swift-stdlib), needs
# only shared libraries that the Dockerfile's runtime stage installs. Only the binary's direct
# NEEDED entries are checked: apt brings each package's own dependencies.
# Usage: scripts/check-runtime-libs.sh   (builds .build/release/ocss statically linked to the Swift runtime)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product ocss --static-swift-stdlib >/dev/null
bin=.build/release/ocss
runtime=$(awk '/^FROM debian:bookworm-slim/{r=1} r' Dockerfile | grep -oE '\b(lib[a-z0-9.+-]+|proj-data|ca-certificates)\b' | sort -u)
base="libc6 libgcc-s1 libstdc++6 zlib1g"   # in debian:bookworm-slim already
fail=0
for lib in $(readelf -d "$bin" | awk '/NEEDED/ {gsub(/[\[\]]/, "", $5); print $5}'); do
  path=$(ldd "$bin" | awk -v l="$lib" '$1 == l {print $3}')
  case "$lib" in ld-linux*) echo "base: $lib (the dynamic loader)"; continue;; esac
  case "$path" in
    /opt/swift/*) echo "NOT STATIC: $lib comes from the Swift toolchain"; fail=1; continue;;
    "") echo "unresolved: $lib"; fail=1; continue;;
  esac
  pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1 || true)
  [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1 || true)
  if echo " $base " | grep -q " $pkg "; then echo "base: $lib <- $pkg"; continue; fi
  if echo "$runtime" | grep -qx "$pkg"; then echo "ok: $lib <- $pkg"; else echo "MISSING in Dockerfile runtime stage: $lib <- $pkg"; fail=1; fi
done
[ $fail -eq 0 ] && echo "runtime libraries: all provided by the Dockerfile"
exit $fail
