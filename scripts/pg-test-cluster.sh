#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests: `pg-test-cluster.sh start DIR` initialises one in DIR (owned by an
# unprivileged user: PostgreSQL refuses to run as root), listening only on a Unix socket in DIR, fsync on, and prints
# its connection string (also written to DIR/conninfo); `stop DIR` stops it as a crash would, `resume DIR` starts it again. Debian's postgresql-15 (scripts/install-deps.sh test).
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/initdb" ] || { echo "postgresql-15 is not installed (scripts/install-deps.sh test installs it)" >&2; exit 3; }
as=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "no postgres user to run the cluster as" >&2; exit 3; }
  as=(runuser -u postgres --)
fi
# Starts the server. It lives on after this script: it must not inherit the caller's descriptors (a pipe, or the one a
# caller such as Foundation's Process watches to learn that this script ended), so they are closed for it.
launch() {
  (
    for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done
    exec "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=on -c synchronous_commit=on -c max_connections=1000 -c shared_buffers=64MB" \
      start >/dev/null
  )
}
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ ${#as[@]} -eq 0 ] || chown postgres "$dir"
    chmod 700 "$dir"
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U ocss --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
    launch
    "${as[@]}" "$bin/createdb" -h "$dir" -U ocss ocss
    echo "postgresql:///ocss?host=$dir&user=ocss" | tee "$dir/conninfo"
    ;;
  resume)
    # Starts a stopped cluster again (the tests of losing PostgreSQL and getting it back).
    launch
    ;;
  stop)
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|resume|stop DIR" >&2; exit 2 ;;
esac
