#!/usr/bin/env bash
# Schemathesis against docs/openapi.yaml and the live server: no 5xx, no response outside the
# schema, no schema-violating request accepted, no valid request refused. Bounded in time.
# The long-poll feed is left out (a legal wait=30 makes every example slow); live tests cover it.
# Usage: scripts/fuzz.sh [BINARY] [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-$(swift build --show-bin-path)/ocss}
EXAMPLES=${2:-50}
VERSION=4.32.5
# A private venv under .build/: Debian's system Python refuses pip installs (PEP 668).
VENV=.build/fuzz-venv
PY=$VENV/bin/python3
if ! "$PY" -c "import schemathesis, sys; sys.exit(0 if schemathesis.__version__ == '$VERSION' else 1)" 2>/dev/null; then
  python3 -m venv "$VENV" >/dev/null 2>&1 || { echo "fuzz: cannot create a venv (apt-get install python3-venv)" >&2; exit 1; }
  "$PY" -m pip install -q "schemathesis==$VERSION" >/dev/null 2>&1 || { echo "fuzz: cannot install schemathesis $VERSION from PyPI" >&2; exit 1; }
fi
TMP=$(mktemp -d)
# The auth throttle is off here: schemathesis sends wrong credentials on purpose, and the throttle has its own test.
OCSS_ADMIN_TOKEN=fuzz-admin-token-0123456789abcdef01234 "$BIN" serve --port 0 --db "$TMP/fuzz.sqlite" --demo --docs docs --log-level error --auth-failures-per-minute 0 >"$TMP/out" 2>"$TMP/err" &
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do grep -q "running on" "$TMP/out" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/.*running on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/out" | head -1)
[ -n "$PORT" ] || { echo "fuzz: server did not start" >&2; cat "$TMP/err" >&2; exit 1; }
URL="http://127.0.0.1:$PORT"
timeout 600 "$PY" -m schemathesis.cli --config-file scripts/schemathesis.toml run "$URL/openapi.yaml" --url "$URL" -H "Authorization: Bearer fuzz-admin-token-0123456789abcdef01234" \
  --checks all --phases coverage,fuzzing --max-examples "$EXAMPLES" --seed 20261126 \
  --exclude-path '/v1/stores/{id}/assignments' --no-color >"$TMP/report" 2>&1 && rc=0 || rc=$?
grep -E "passed|failed|errors?" "$TMP/report" | head -4
if [ $rc -ne 0 ]; then sed -n '/FAILURES/,$p' "$TMP/report" | head -80; echo "fuzz: schemathesis found problems" >&2; exit 1; fi
echo "fuzz: no findings"
