#!/usr/bin/env bash
# sysbench through three paths, side by side: the primary directly, HAProxy in TCP mode as an
# operator deploys it for read scaling (a read listener balancing round-robin over the same two
# replicas rwproxy reads from, and a write listener in front of the primary) and rwproxy
# (release build, default configuration). Read-only workloads go to HAProxy's read listener,
# read-write ones to its write listener. Writes its figures into docs/benchmarks.md between the
# markers <!-- bench:sysbench:start --> and <!-- bench:sysbench:end -->.
#
#   integration/bench/run.sh [--repeat N] [--time SECONDS] [--threads "8 64"] [--no-profile]
#
#   --repeat N       rounds of the whole matrix (default 5); each cell reports the median
#   --time SECONDS   length of one sysbench run (default 10)
#   --threads LIST   sysbench thread counts (default "8 64")
#   --no-profile     skip the perf profile of rwproxy during a point-select run
#
# Runs are interleaved (direct, HAProxy, rwproxy for one workload, then the next, and the whole
# matrix again N times) so that machine noise falls on all three alike.
# Ports: HAProxy 127.0.0.1:6301 (reads) and 6303 (writes), rwproxy 127.0.0.1:6302 (admin
# 127.0.0.1:9302); the shared
# "main" cluster (primary 3316, replicas 3317 and 3318).
# A report, not a test: it exits non-zero only if the harness itself fails.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
REPEAT=5
RUN_TIME=10
THREADS="8 64"
PROFILE=1
while (($#)); do
    case $1 in
    --repeat) REPEAT=${2:?--repeat needs a value}; shift 2 ;;
    --repeat=*) REPEAT=${1#*=}; shift ;;
    --time) RUN_TIME=${2:?--time needs a value}; shift 2 ;;
    --time=*) RUN_TIME=${1#*=}; shift ;;
    --threads) THREADS=${2:?--threads needs a value}; shift 2 ;;
    --threads=*) THREADS=${1#*=}; shift ;;
    --no-profile) PROFILE=0; shift ;;
    -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --repeat must be a positive integer" >&2; exit 2; }
[[ $RUN_TIME =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --time must be a positive integer" >&2; exit 2; }

readonly PRIMARY_PORT=3316 REPLICA_PORTS="3317 3318"
readonly HAPROXY_PORT=6301 HAPROXY_WRITE_PORT=6303 RWPROXY_PORT=6302 ADMIN_PORT=9302
readonly DB_USER=app DB_PASSWORD=app_pass DB_NAME=app TABLE_SIZE=100000
export DEBIAN_FRONTEND=noninteractive

cd "$REPO_ROOT"
mkdir -p "$SCRATCH"
say() { printf '==> %s\n' "$*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites

APT_UPDATED=0
apt_install() {
    [[ $(id -u) -eq 0 ]] || die "need the Debian packages $*, and not root"
    if ((APT_UPDATED == 0)); then
        apt-get update -q >&2
        APT_UPDATED=1
    fi
    apt-get install -y -q --no-install-recommends "$@" >&2
}
command -v sysbench >/dev/null 2>&1 || { say "installing sysbench"; apt_install sysbench; }
command -v haproxy >/dev/null 2>&1 || { say "installing haproxy"; apt_install haproxy; }
if ((PROFILE)) && ! command -v perf >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then
        say "installing linux-perf (for the profile)"
        apt_install linux-perf || say "linux-perf could not be installed: no profile"
    else
        say "perf is not installed and we are not root: no profile"
    fi
fi
command -v python3 >/dev/null 2>&1 || apt_install python3

say "starting the cluster"
bash integration/cluster.sh up >/dev/null
say "building rwproxy (release)"
cargo build --release -q -p rwproxy
RWPROXY_BIN=$REPO_ROOT/target/release/rwproxy

# ---------------------------------------------------------------- dataset

# q PORT SQL : one statement as the app user; batch output, no headers.
q() {
    local port=$1
    shift
    timeout 120 mariadb --no-defaults -h127.0.0.1 -P"$port" -u"$DB_USER" -p"$DB_PASSWORD" \
        --connect-timeout=5 -N -B "$DB_NAME" -e "$*"
}

SB_COMMON=(--db-driver=mysql --mysql-host=127.0.0.1 "--mysql-port=$PRIMARY_PORT"
    "--mysql-user=$DB_USER" "--mysql-password=$DB_PASSWORD" "--mysql-db=$DB_NAME"
    --tables=1 "--table-size=$TABLE_SIZE")
rows=$(q $PRIMARY_PORT "SELECT COUNT(*) FROM sbtest1" 2>/dev/null || echo none)
# oltp_read_write deletes a row and inserts it again, so the count stays put unless a run
# was cut short between the two: a few rows either way still counts as loaded.
if [[ $rows =~ ^[0-9]+$ ]] && ((rows > TABLE_SIZE - 1000 && rows < TABLE_SIZE + 1000)); then
    say "dataset already loaded (app.sbtest1: $rows rows)"
else
    say "loading the sysbench dataset (1 table, $TABLE_SIZE rows) into schema $DB_NAME"
    q $PRIMARY_PORT "DROP TABLE IF EXISTS sbtest1"
    sysbench oltp_read_write "${SB_COMMON[@]}" prepare >"$SCRATCH/bench-prepare.log" 2>&1 ||
        { cat "$SCRATCH/bench-prepare.log" >&2; die "sysbench prepare failed"; }
fi

wait_replicas() {
    local pos port got
    pos=$(q $PRIMARY_PORT "SELECT @@gtid_binlog_pos")
    for port in $REPLICA_PORTS; do
        got=$(q "$port" "SELECT MASTER_GTID_WAIT('$pos', 120)")
        [[ $got == 0 ]] || die "replica on port $port did not reach GTID $pos (MASTER_GTID_WAIT: $got)"
    done
}
say "waiting for the replicas to catch up"
wait_replicas

# ---------------------------------------------------------------- the two proxies

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

for port in $HAPROXY_PORT $HAPROXY_WRITE_PORT $RWPROXY_PORT $ADMIN_PORT; do
    if ss -Hltn "sport = :$port" | grep -q .; then
        die "port $port is already in use (an earlier run still going?)"
    fi
done

HAPROXY_CFG=$SCRATCH/bench-haproxy.cfg
{
    cat <<EOF
# Written by integration/bench/run.sh: TCP mode, reads balanced round-robin over the replicas
# rwproxy reads from, writes to the primary; no health checks (nothing fails during the run).
global
    maxconn 4096
    log stderr format short local0 notice

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h

frontend mysql_reads
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend mysql_replicas

frontend mysql_writes
    bind 127.0.0.1:$HAPROXY_WRITE_PORT
    default_backend mysql_primary

backend mysql_primary
    server primary 127.0.0.1:$PRIMARY_PORT

backend mysql_replicas
    balance roundrobin
EOF
    n=0
    for port in $REPLICA_PORTS; do
        n=$((n + 1))
        echo "    server replica$n 127.0.0.1:$port"
    done
} >"$HAPROXY_CFG"
haproxy -c -q -f "$HAPROXY_CFG" || die "HAProxy rejected $HAPROXY_CFG"
# -db: stay in the foreground, one process (its threads share the pid we measure).
haproxy -db -f "$HAPROXY_CFG" >"$SCRATCH/bench-haproxy.log" 2>&1 &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")

RWPROXY_CFG=$SCRATCH/bench-rwproxy.yaml
sed -e "s/^listen: .*/listen: 127.0.0.1:$RWPROXY_PORT/" \
    -e "s/^\(\s*listen: \)127.0.0.1:9033/\1127.0.0.1:$ADMIN_PORT/" \
    -e "s/^\(\s*level: \).*/\1warn/" \
    proxy-config.yaml >"$RWPROXY_CFG"
grep -q "^listen: 127.0.0.1:$RWPROXY_PORT" "$RWPROXY_CFG" || die "could not set listen in $RWPROXY_CFG"
grep -q "listen: 127.0.0.1:$ADMIN_PORT" "$RWPROXY_CFG" || die "could not set admin.listen in $RWPROXY_CFG"
"$RWPROXY_BIN" --config "$RWPROXY_CFG" >"$SCRATCH/bench-rwproxy.log" 2>&1 &
RWPROXY_PID=$!
PIDS+=("$RWPROXY_PID")

wait_up() {
    local name=$1 port=$2 pid=$3 _
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited at start-up; see $SCRATCH/bench-$name.log"
        [[ $(q "$port" "SELECT 1" 2>/dev/null) == 1 ]] && return 0
        sleep 0.1
    done
    die "$name does not answer on port $port"
}
wait_up haproxy $HAPROXY_PORT $HAPROXY_PID
wait_up haproxy $HAPROXY_WRITE_PORT $HAPROXY_PID
wait_up rwproxy $RWPROXY_PORT $RWPROXY_PID
# rwproxy sends reads to replicas only once the monitor has seen them.
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
say "HAProxy pid $HAPROXY_PID on $HAPROXY_PORT (reads) and $HAPROXY_WRITE_PORT (writes), rwproxy pid $RWPROXY_PID on $RWPROXY_PORT"

# ---------------------------------------------------------------- the matrix and the report

PROFILE_ARGS=()
((PROFILE)) && command -v perf >/dev/null 2>&1 && PROFILE_ARGS=(--profile)
python3 integration/bench/sysbench_matrix.py \
    --repeat "$REPEAT" --time "$RUN_TIME" --threads "$THREADS" \
    --primary-port $PRIMARY_PORT --replica-ports "$REPLICA_PORTS" \
    --haproxy-port $HAPROXY_PORT --haproxy-write-port $HAPROXY_WRITE_PORT --haproxy-pid "$HAPROXY_PID" \
    --rwproxy-port $RWPROXY_PORT --rwproxy-pid "$RWPROXY_PID" --admin-port $ADMIN_PORT \
    --user $DB_USER --password $DB_PASSWORD --db $DB_NAME --table-size $TABLE_SIZE \
    --scratch "$SCRATCH" --doc docs/benchmarks.md "${PROFILE_ARGS[@]}"
