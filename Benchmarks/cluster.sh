#!/usr/bin/env bash
# Cluster benchmark on this machine (loopback and a Unix socket only, bounded in time), on the 10k-store dataset:
#   1. `ocss migrate` of the 10k-store SQLite database into PostgreSQL: counts per table, and the routing answers of
#      a SQLite node and a PostgreSQL node equal on 300 orders;
#   2. durable intake: one SQLite node vs the PostgreSQL leader, same run; and through a follower (forwarded);
#   3. polls through one node vs through three at once;
#   4. failover: kill -9 of the leader until a follower leads, and until it takes an order;
#   and the CPU each costs (the ocss processes and PostgreSQL's, from /proc), per order and per poll.
# Usage: Benchmarks/cluster.sh [SECONDS] [WORKERS]     (make bench-cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
WORKERS=${2:-16}
DATA=${BENCH_DATA:-/tmp/ocss-bench-data}
[ -f "$DATA/orders.csv" ] || python3 Benchmarks/data/gen_dataset.py "$DATA" --sizes 10000
if [ -z "${OCSS_BIN:-}" ]; then swift build -c release --product ocss >/dev/null; fi
BIN=${OCSS_BIN:-.build/release/ocss}
TMP=$(mktemp -d)
chmod 755 "$TMP"   # the PostgreSQL cluster inside runs as the postgres user
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  bash scripts/pg-test-cluster.sh stop "$TMP/pg" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
export OCSS_ADMIN_TOKEN=bench-admin-token-0123456789abcdef0123
ADMIN=$OCSS_ADMIN_TOKEN

# CPU seconds (user + system) used so far by the processes given, and by the PostgreSQL server's processes.
cpu() { python3 - "$@" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
def ticks(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except OSError:
        return 0
total = sum(ticks(p) for p in sys.argv[1:] if p != "pg")
if "pg" in sys.argv[1:]:
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if open(f"/proc/{p}/comm").read().strip() in ("postgres", "postmaster"):
                    total += ticks(p)
            except OSError:
                pass
print(f"{total / hz:.3f}")
PY
}
rps() { sed 's/.* rps=\([0-9]*\).*/\1/'; }
run() { $BIN loadgen --url "http://127.0.0.1:$1" --duration "$SECS" --workers "$WORKERS" "${@:2}"; }
# Up: healthy (a cluster node also leads, or follows a known leader).
wait_up() { for _ in $(seq 600); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0; sleep 0.1; done; echo "port $1 did not come up" >&2; exit 1; }
role() { curl -s --max-time 2 "http://127.0.0.1:$1/healthz" | sed -n 's/.*"role":"\([a-z]*\)".*/\1/p'; }
now() { date +%s.%N; }

echo "== preparing the 10k-store database"
$BIN import stores "$DATA/stores_10k.csv" --db "$TMP/a.sqlite" >/dev/null 2>&1
$BIN import inventory "$DATA/inventory_10k.csv" --db "$TMP/a.sqlite" >/dev/null 2>&1
cp "$TMP/a.sqlite" "$TMP/b.sqlite"
PG=$(bash scripts/pg-test-cluster.sh start "$TMP/pg")

echo "== ocss migrate"
T0=$(now)
$BIN migrate --from "$TMP/b.sqlite" --to "$PG" 2>/dev/null | tail -4
MIGRATE_S=$(python3 -c "print(f'{$(now) - $T0:.1f}')")

echo "== the same 300 orders on SQLite and on the migrated PostgreSQL"
$BIN serve --port 18600 --db "$TMP/a.sqlite" --geodata "" --log-level error >/dev/null 2>&1 &
PIDS+=($!); SQLITE_PID=$!
T0=$(now)
$BIN serve --port 18601 --db "$PG" --geodata "" --log-level error >/dev/null 2>&1 &
PIDS+=($!); A_PID=$!
wait_up 18600; wait_up 18601
START_S=$(python3 -c "print(f'{$(now) - $T0:.1f}')")
python3 - "$DATA/orders.csv" <<'PY'
import json, sys, urllib.request
rows = open(sys.argv[1]).read().splitlines()[1:301]
def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/orders", data=body.encode(), method="POST",
        headers={"Authorization": "Bearer bench-admin-token-0123456789abcdef0123", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r: return r.status, r.read().decode()
    except urllib.error.HTTPError as e: return e.code, e.read().decode()
same, first = 0, None
for row in rows:
    f = row.split(",")
    lines = [{"sku": f[4 + 2 * j], "quantity": int(f[5 + 2 * j])} for j in range(int(f[3]))]
    body = json.dumps({"platform": "direct", "event": "order.paid", "platform_order_id": "m" + f[0],
        "idempotency_key": "direct:m" + f[0] + ":paid", "shipping": {"coordinates": {"lat": float(f[1]), "lon": float(f[2]), "crs": "WGS84"}},
        "lines": lines}, separators=(",", ":"))
    a, b = post(18600, body), post(18601, body)
    same += a == b
    if a != b and first is None: first = (row, a, b)
print(f"routing answers equal: {same} of {len(rows)}")
if first:
    print("first difference:", first)
    sys.exit(1)
PY
kill -9 "$SQLITE_PID" 2>/dev/null || true

echo "== durable intake: SQLite single node (fresh copy) vs the PostgreSQL leader, same run"
cp "$TMP/b.sqlite" "$TMP/c.sqlite"
$BIN serve --port 18602 --db "$TMP/c.sqlite" --geodata "" --log-level error >/dev/null 2>&1 &
PIDS+=($!); S_PID=$!
wait_up 18602
C0=$(cpu "$S_PID")
SQLITE=$(run 18602 --token "$ADMIN" --mode orders)
SQLITE_CPU=$(python3 -c "print($(cpu "$S_PID") - $C0)")
kill -9 "$S_PID"
sync
# Steady state, as after the first minute of a new database: a few seconds of orders, then the statistics autovacuum
# would gather by itself about a minute in (until then the tables that started empty are planned as tiny, and the
# foreign-key checks' cached plans scan them whole: about half the throughput), and a checkpoint.
$BIN loadgen --url "http://127.0.0.1:18601" --duration 3 --workers "$WORKERS" --token "$ADMIN" --mode orders >/dev/null
/usr/lib/postgresql/15/bin/psql "$PG" -qc "ANALYZE" -c CHECKPOINT
C0=$(cpu "$A_PID"); P0=$(cpu pg)
LEADER=$(run 18601 --token "$ADMIN" --mode orders)
LEADER_CPU=$(python3 -c "print($(cpu "$A_PID") - $C0)"); PG_CPU=$(python3 -c "print($(cpu pg) - $P0)")

echo "== two more nodes"
$BIN serve --port 18603 --db "$PG" --geodata "" --log-level error >/dev/null 2>&1 &
PIDS+=($!); B_PID=$!
$BIN serve --port 18604 --db "$PG" --geodata "" --log-level error >/dev/null 2>&1 &
PIDS+=($!); C_PID=$!
wait_up 18603; wait_up 18604
echo "roles: $(role 18601) $(role 18603) $(role 18604)"
C0=$(cpu "$B_PID"); L0=$(cpu "$A_PID")
FORWARDED=$(run 18603 --token "$ADMIN" --mode orders)
FWD_CPU=$(python3 -c "print($(cpu "$B_PID") - $C0)"); FWD_LEADER_CPU=$(python3 -c "print($(cpu "$A_PID") - $L0)")

echo "== polls: one node, then three at once"
TOKEN=$(curl -s -X POST "http://127.0.0.1:18601/v1/stores/1/tokens" -H "Authorization: Bearer $ADMIN" | sed 's/.*"token":"\([^"]*\)".*/\1/')
for port in 18603 18604; do
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/v1/stores/1/assignments?after=999999999")" = 200 ] && break
    sleep 0.1
  done
done
POLLPATH="/v1/stores/1/assignments?after=999999999"
C0=$(cpu "$B_PID")
POLL1=$(run 18603 --token "$TOKEN" --mode poll --path "$POLLPATH")
POLL1_CPU=$(python3 -c "print($(cpu "$B_PID") - $C0)")
W3=$(( (WORKERS + 2) / 3 ))
LOADS=()
for port in 18601 18603 18604; do
  $BIN loadgen --url "http://127.0.0.1:$port" --duration "$SECS" --workers "$W3" --token "$TOKEN" --mode poll --path "$POLLPATH" >"$TMP/poll.$port" &
  LOADS+=($!)
done
for p in "${LOADS[@]}"; do wait "$p"; done
POLL3=$(cat "$TMP"/poll.* | rps | python3 -c "import sys; print(sum(int(x) for x in sys.stdin.read().split()))")

echo "== failover at 10k stores: kill -9 the leader"
T0=$(now)
kill -9 "$A_PID"
NEW=""
while [ -z "$NEW" ]; do
  for port in 18603 18604; do [ "$(role $port)" = leader ] && NEW=$port; done
  python3 -c "import sys; sys.exit(0 if $(now) - $T0 < 60 else 1)" || { echo "no leader after 60 s"; exit 1; }
  sleep 0.02
done
LEAD_S=$(python3 -c "print(f'{$(now) - $T0:.2f}')")
OTHER=$([ "$NEW" = 18603 ] && echo 18604 || echo 18603)
until [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$OTHER/v1/orders" -H "Authorization: Bearer $ADMIN" \
  -H 'Content-Type: application/json' -d '{"platform":"direct","event":"order.paid","platform_order_id":"fo1","idempotency_key":"direct:fo1:paid","shipping":{"coordinates":{"lat":31.83,"lon":117.3,"crs":"WGS84"}},"lines":[{"sku":"3","quantity":1}]}')" = 201 ]; do
  sleep 0.02
done
ORDER_S=$(python3 -c "print(f'{$(now) - $T0:.2f}')")

echo "sqlite     $SQLITE"
echo "leader     $LEADER"
echo "forwarded  $FORWARDED"
echo "poll x1    $POLL1"
echo "poll x3    $(cat "$TMP"/poll.* | tr '\n' ' ')"
python3 - "$(echo "$SQLITE" | rps)" "$(echo "$LEADER" | rps)" "$(echo "$FORWARDED" | rps)" "$(echo "$POLL1" | rps)" "$POLL3" \
  "$SQLITE_CPU" "$LEADER_CPU" "$PG_CPU" "$FWD_CPU" "$FWD_LEADER_CPU" "$POLL1_CPU" "$SECS" "$LEAD_S" "$ORDER_S" "$MIGRATE_S" "$START_S" <<'PY'
import sys
sq, ld, fw, p1, p3 = map(float, sys.argv[1:6])
sq_cpu, ld_cpu, pg_cpu, fw_cpu, fwl_cpu, p1_cpu, secs = map(float, sys.argv[6:13])
lead_s, order_s, migrate_s, start_s = sys.argv[13:17]
ms = lambda cpu, n: 1000 * cpu / max(n, 1)
print("| figure | rps | vs (same run) | ratio |")
print("|---|---:|---|---:|")
print(f"| durable intake, PostgreSQL leader | {ld:.0f} | SQLite single node {sq:.0f} | {ld/sq:.2f}x |")
print(f"| durable intake through a follower | {fw:.0f} | the leader directly {ld:.0f} | {fw/ld:.2f}x |")
print(f"| polls through three nodes | {p3:.0f} | through one node {p1:.0f} | {p3/p1:.2f}x |")
print()
print("| CPU per operation | ms |")
print("|---|---:|")
print(f"| order on SQLite (the ocss process) | {ms(sq_cpu, sq*secs):.3f} |")
print(f"| order on the PostgreSQL leader (ocss) | {ms(ld_cpu, ld*secs):.3f} |")
print(f"| order on PostgreSQL (the server's processes) | {ms(pg_cpu, ld*secs):.3f} |")
print(f"| forwarded order: follower / leader | {ms(fw_cpu, fw*secs):.3f} / {ms(fwl_cpu, fw*secs):.3f} |")
print(f"| poll on a follower | {ms(p1_cpu, p1*secs):.3f} |")
print()
print(f"failover at 10k stores: a follower leads {lead_s} s after kill -9, takes an order {order_s} s after")
print(f"migrate of the 10k-store database: {migrate_s} s; first node start on it: {start_s} s")
PY
