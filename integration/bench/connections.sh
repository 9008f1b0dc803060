#!/usr/bin/env bash
# 10,000 idle client connections through rwproxy: RSS per idle connection, then one `SELECT 1`
# from every client in batches (the test servers allow 1,000 connections each), with every
# answer checked. Writes its figures into docs/benchmarks.md between the markers
# <!-- bench:connections:start --> and <!-- bench:connections:end -->.
#
#   integration/bench/connections.sh [COUNT] [BATCH]      (defaults 10000 and 500)
#
# rwproxy (release build) listens on 127.0.0.1:6303, admin on 127.0.0.1:9303, in front of the
# shared "main" cluster (primary 3316, replicas 3317 and 3318).
# A report, not a test: it exits non-zero only if the harness itself fails.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
COUNT=${1:-10000}
BATCH=${2:-500}
readonly PROXY_PORT=6303 ADMIN_PORT=9303
[[ $COUNT =~ ^[1-9][0-9]*$ && $BATCH =~ ^[1-9][0-9]*$ ]] || {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
((BATCH <= 800)) || { echo "connections.sh: BATCH must be at most 800 (servers allow 1000 connections)" >&2; exit 2; }
cd "$REPO_ROOT"
mkdir -p "$SCRATCH"
say() { printf '==> %s\n' "$*" >&2; }
die() { echo "connections.sh: $*" >&2; exit 1; }

# The proxy and the client each hold COUNT sockets (the proxy also BATCH backend connections).
FD_LIMIT=$((COUNT + BATCH + 1000))
if [[ $(ulimit -Hn) != unlimited ]] && (($(ulimit -Hn) < FD_LIMIT)); then
    ulimit -Hn $FD_LIMIT 2>/dev/null || die "cannot raise the open-file limit to $FD_LIMIT"
fi
ulimit -Sn $FD_LIMIT

say "starting the cluster"
bash integration/cluster.sh up >/dev/null
say "building rwproxy (release)"
cargo build --release -q -p rwproxy

for port in $PROXY_PORT $ADMIN_PORT; do
    if ss -Hltn "sport = :$port" | grep -q .; then
        die "port $port is already in use (an earlier run still going?)"
    fi
done
CONFIG=$SCRATCH/bench-connections.yaml
MAX_CLIENTS=$((COUNT + 2000))
sed -e "s/^listen: .*/listen: 127.0.0.1:$PROXY_PORT/" \
    -e "s/^max_client_connections: .*/max_client_connections: $MAX_CLIENTS/" \
    -e "s/^\(\s*listen: \)127.0.0.1:9033/\1127.0.0.1:$ADMIN_PORT/" \
    -e "s/^\(\s*level: \).*/\1warn/" \
    proxy-config.yaml >"$CONFIG"
grep -q "^max_client_connections: $MAX_CLIENTS" "$CONFIG" || die "could not set max_client_connections"
grep -q "listen: 127.0.0.1:$ADMIN_PORT" "$CONFIG" || die "could not set admin.listen"

target/release/rwproxy --config "$CONFIG" >"$SCRATCH/bench-connections.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    kill -0 $PID 2>/dev/null || die "rwproxy exited at start-up; see $SCRATCH/bench-connections.log"
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null || die "rwproxy is not ready"
say "rwproxy pid $PID on $PROXY_PORT (open-file limit $(ulimit -n))"

python3 integration/bench/idle_conns.py --port $PROXY_PORT --admin-port $ADMIN_PORT --pid $PID \
    --count "$COUNT" --batch "$BATCH" --scratch "$SCRATCH" --doc docs/benchmarks.md
