#!/usr/bin/env bash
# Fails when a module imports what ARCHITECTURE.md forbids:
# - OCSSCore imports nothing but the standard library and Synchronization;
# - each C module is imported by its one adapter only;
# - adapters never import each other; OCSSHTTP imports no OCSS module.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
imports() { grep -rhoE '^\s*(@preconcurrency\s+)?((public|internal|package|private|fileprivate)\s+)?import\s+[A-Za-z_]+' "$1" --include='*.swift' 2>/dev/null | awk '{print $NF}' | sort -u; }
check() { # dir allowed-regex
  local dir=$1 allowed=$2 m
  for m in $(imports "$dir"); do
    if ! [[ $m =~ ^($allowed)$ ]]; then echo "boundary: $dir imports $m"; fail=1; fi
  done
}
check Sources/OCSSCore 'Synchronization'
check Sources/OCSSProj 'OCSSCore|CProj|Glibc|Synchronization'
check Sources/OCSSStore 'OCSSCore|CSQLite|OCSSPostgres|Synchronization|Glibc'
check Sources/OCSSPlatforms 'OCSSCore|CCrypto|FoundationEssentials'
check Sources/OCSSHTTP 'CHTTP|Glibc|Synchronization'
check Sources/OCSSPostgres 'OCSSCore|CPostgres|Glibc|Synchronization'
check Sources/OCSSEngine 'OCSSCore|OCSSProj|OCSSStore|OCSSPlatforms|FoundationEssentials|Foundation|Dispatch|Glibc|Synchronization'
check Sources/OCSSApp 'OCSSCore|OCSSProj|OCSSStore|OCSSPlatforms|OCSSHTTP|OCSSEngine|OCSSPostgres|FoundationEssentials|Foundation|FoundationNetworking|Dispatch|Glibc|Synchronization'
check Sources/ocss 'OCSSApp|OCSSEngine|OCSSCore|OCSSStore|OCSSPlatforms|OCSSProj|OCSSPostgres|Foundation|FoundationEssentials|Glibc|Dispatch|Synchronization'
check Benchmarks 'OCSSCore|OCSSApp|Foundation|FoundationEssentials|Glibc|Dispatch|Synchronization'
exit $fail
