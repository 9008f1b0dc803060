#!/usr/bin/env bash
# Read-your-writes cost: with the replicas of the shared cluster caught up (no artificial lag),
# clients each INSERT a row and SELECT it straight back through rwproxy under
# `consistency: session`. Reports which share of those reads-after-write the replicas served
# (the rest fell back to the primary), from rwproxy_causal_reads_total and
# rwproxy_routing_decisions_total scraped from /metrics before and after.
#
#   integration/bench/causal.sh [PAIRS_PER_CLIENT] [CLIENTS]     (default 250 4)
#
# Environment: RWPROXY_BIN (default: a release build, built first), CAUSAL_PORT and
# CAUSAL_ADMIN_PORT (default 3520 and 3521), CAUSAL_READ_TIMEOUT (default 200ms),
# CAUSAL_CONSISTENCY (default session; `eventual` gives the baseline without the check).
# A report, not a test: it exits non-zero only if the harness fails or, under session or global
# consistency, a read misses its write.
set -euo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
PAIRS=${1:-250}
CLIENTS=${2:-4}
PORT=${CAUSAL_PORT:-3520}
ADMIN_PORT=${CAUSAL_ADMIN_PORT:-3521}
TIMEOUT=${CAUSAL_READ_TIMEOUT:-200ms}
MODE=${CAUSAL_CONSISTENCY:-session}
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
mkdir -p "$SCRATCH"

bash integration/cluster.sh up >/dev/null
eval "$(bash integration/cluster.sh env)"
if [[ -n ${RWPROXY_BIN:-} ]]; then
    BIN=$RWPROXY_BIN
else
    cargo build --release -q -p rwproxy
    BIN=target/release/rwproxy
fi

CONFIG=$SCRATCH/bench-causal.yaml
cat >"$CONFIG" <<EOF
listen: 127.0.0.1:$PORT
users:
  - { name: $APP_DB_USER, password: "$APP_DB_PASSWORD" }
backends:
  - { name: db1, address: "127.0.0.1:$RWPROXY_NODE0_PORT" }
  - { name: db2, address: "127.0.0.1:$RWPROXY_NODE1_PORT" }
  - { name: db3, address: "127.0.0.1:$RWPROXY_NODE2_PORT" }
monitor: { user: $MONITOR_USER, password: "$MONITOR_PASSWORD", interval: 500ms }
routing: { consistency: $MODE, causal_read_timeout: $TIMEOUT }
admin: { listen: 127.0.0.1:$ADMIN_PORT }
log: { level: warn }
EOF
"$BIN" --config "$CONFIG" >"$SCRATCH/bench-causal.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT

admin() { curl -sf "http://127.0.0.1:$ADMIN_PORT$1"; }
sql() { mariadb -h127.0.0.1 -P"$PORT" -u"$APP_DB_USER" -p"$APP_DB_PASSWORD" app "$@"; }
# Ready when /backends shows a primary and both replicas readable.
for _ in $(seq 100); do
    readable=$(admin /backends 2>/dev/null | grep -Eo '"readable": *true' | wc -l || true)
    [[ $readable -ge 2 ]] && break
    sleep 0.1
done
[[ ${readable:-0} -ge 2 ]] || { echo "causal.sh: the proxy never saw two readable replicas" >&2; exit 1; }

TABLE=bench_causal_$$
sql -e "CREATE TABLE $TABLE (id INT PRIMARY KEY, client INT NOT NULL)"
# Let the replicas apply the CREATE, so that the measured reads start from caught-up replicas.
target=$(mariadb -h127.0.0.1 -P"$RWPROXY_NODE0_PORT" -u"$ADMIN_DB_USER" -p"$ADMIN_DB_PASSWORD" -N -e 'SELECT @@gtid_binlog_pos')
for port in "$RWPROXY_NODE1_PORT" "$RWPROXY_NODE2_PORT"; do
    mariadb -h127.0.0.1 -P"$port" -u"$ADMIN_DB_USER" -p"$ADMIN_DB_PASSWORD" -N \
        -e "SELECT MASTER_GTID_WAIT('$target', 10)" >/dev/null
done

metric() { # metric TEXT NAME LABEL-FILTER: sum of matching samples
    awk -v name="$2" -v filter="$3" '$1 ~ "^"name"[{ ]" && index($1, filter) { s += $2 } END { printf "%d", s }' <<<"$1"
}
before=$(admin /metrics)
t0=$(date +%s.%N)
CLIENT_PIDS=()
for c in $(seq "$CLIENTS"); do
    {
        for i in $(seq "$PAIRS"); do
            id=$((c * 1000000 + i))
            echo "INSERT INTO $TABLE VALUES ($id, $c);"
            echo "SELECT id FROM $TABLE WHERE id = $id;"
        done
    } | sql -N >"$SCRATCH/bench-causal.$c.out" &
    CLIENT_PIDS+=($!)
done
wait "${CLIENT_PIDS[@]}"
t1=$(date +%s.%N)
after=$(admin /metrics)

found=$(cat "$SCRATCH"/bench-causal.*.out | wc -l)
rm -f "$SCRATCH"/bench-causal.*.out
sql -e "DROP TABLE $TABLE"
reads=$((PAIRS * CLIENTS))
delta() { echo $(($(metric "$after" "$1" "$2") - $(metric "$before" "$1" "$2"))); }
fresh=$(delta rwproxy_causal_reads_total 'outcome="replica_fresh"')
waited=$(delta rwproxy_causal_reads_total 'outcome="replica_after_wait"')
fallback=$(delta rwproxy_causal_reads_total 'outcome="primary_fallback"')
timeouts=$(delta rwproxy_causal_reads_total 'outcome="timeout"')
to_replica=$(delta rwproxy_routing_decisions_total 'role="replica"')
causal_fallback=$(delta rwproxy_routing_decisions_total 'reason="causal_fallback"')
causal=$((fresh + waited + fallback))
secs=$(echo "$t1 - $t0" | bc)

echo "consistency=$MODE clients=$CLIENTS pairs/client=$PAIRS causal_read_timeout=$TIMEOUT binary=$BIN"
echo "reads after a write: $reads, found their row: $found"
echo "causal reads: $causal (replica_fresh=$fresh replica_after_wait=$waited primary_fallback=$fallback timeout=$timeouts)"
echo "routing: to replicas $to_replica, causal_fallback to primary $causal_fallback"
if ((causal > 0)); then
    echo "share of reads-after-write served by replicas: $(echo "scale=1; 100 * ($fresh + $waited) / $causal" | bc)%"
fi
echo "time: ${secs}s for $((2 * reads)) statements, $(echo "scale=2; 1000 * $secs / $PAIRS" | bc) ms per write+read pair in each of the $CLIENTS concurrent clients"
[[ $found == "$reads" || $MODE == eventual ]] || { echo "MISSED: $((reads - found)) reads did not see their own write" >&2; exit 1; }
