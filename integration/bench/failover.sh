#!/usr/bin/env bash
# What a change of primary costs the application: sysbench oltp_read_write (16 threads) through
# rwproxy and through HAProxy (TCP mode, the primary with the replicas as backup servers, TCP
# health checks every 500 ms, as commonly deployed), while
#   switchover: the primary role moves to node1 (rwproxy: `rwproxy switchover`; HAProxy: the
#               same move done by `cluster.sh promote 1`, the way an operator does it), and
#   failover:   the primary is killed (kill -9) and node1 promoted one second later.
#   baseline:   nothing happens (errors the workload has anyway, e.g. deadlocks between threads).
# Every run uses a fresh cluster; the event happens 8 s into a 20 s run. Reported per scenario,
# from sysbench's per-second reports: errors the clients saw (errors and reconnects), the
# longest stall (the longest run of seconds in which no transaction completed) and the mean
# throughput. (sysbench's own summary is not used: with errors ignored, a transaction that keeps
# failing never ends, and the run is stopped from outside.) Writes its table into docs/benchmarks.md between
# <!-- bench:failover:start --> and <!-- bench:failover:end -->.
#
#   integration/bench/failover.sh [--time SECONDS] [--at SECONDS]
#
# Ports: cluster "bench-fo" 3590-3592, HAProxy 6311, rwproxy 6312 (admin 9312).
# A report, not a test: it exits non-zero only if the harness itself fails.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
RUN_TIME=20
EVENT_AT=8
while (($#)); do
    case $1 in
    --time) RUN_TIME=${2:?}; shift 2 ;;
    --at) EVENT_AT=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "failover.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
((EVENT_AT < RUN_TIME)) || { echo "failover.sh: --at must be less than --time" >&2; exit 2; }

readonly NAME=bench-fo BASE=3590 HAPROXY_PORT=6311 RWPROXY_PORT=6312 ADMIN_PORT=9312
readonly TOKEN=bench-failover-token THREADS=16
export RWPROXY_SCRATCH=$SCRATCH DEBIAN_FRONTEND=noninteractive
cd "$REPO_ROOT"
mkdir -p "$SCRATCH"
say() { printf '==> %s\n' "$*" >&2; }
die() { echo "failover.sh: $*" >&2; exit 1; }

for tool in sysbench haproxy; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        [[ $(id -u) -eq 0 ]] || die "$tool is not installed"
        apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "$tool" >&2
    fi
done
say "building rwproxy (release)"
cargo build --release -q -p rwproxy
BIN=$REPO_ROOT/target/release/rwproxy

cluster() { bash integration/cluster.sh "$@" --name "$NAME"; }
q() { mariadb -h127.0.0.1 -P"$1" -uadmin -padmin_pass -N -B -e "$2"; }

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap 'cleanup; cluster down --wipe >/dev/null 2>&1 || true' EXIT

fresh_cluster() {
    cluster down --wipe >/dev/null 2>&1 || true
    cluster up --base-port $BASE >/dev/null 2>&1 || die "cannot bring up the cluster"
    sysbench oltp_read_write --mysql-host=127.0.0.1 --mysql-port=$BASE --mysql-user=app \
        --mysql-password=app_pass --mysql-db=app --tables=4 --table-size=10000 prepare >/dev/null
    local pos
    pos=$(q $BASE "SELECT @@gtid_binlog_pos")
    for p in $((BASE + 1)) $((BASE + 2)); do
        [[ $(q "$p" "SELECT MASTER_GTID_WAIT('$pos', 60)") == 0 ]] || die "replica $p did not catch up"
    done
}

start_rwproxy() {
    cat >"$SCRATCH/bench-fo-rwproxy.yaml" <<EOF
listen: 127.0.0.1:$RWPROXY_PORT
max_client_connections: 256
users: [{ name: app, password: app_pass }]
backends:
  - { name: db1, address: "127.0.0.1:$BASE" }
  - { name: db2, address: "127.0.0.1:$((BASE + 1))" }
  - { name: db3, address: "127.0.0.1:$((BASE + 2))" }
monitor: { user: monitor, password: monitor_pass, interval: 200ms, timeout: 500ms, write_wait_timeout: 5s }
switchover: { user: admin, password: admin_pass, replication_user: repl, replication_password: repl_pass, max_lag: 2s, drain_timeout: 2s, catch_up_timeout: 2s }
admin: { listen: "127.0.0.1:$ADMIN_PORT", token: "$TOKEN" }
log: { format: text, level: warn }
EOF
    "$BIN" --config "$SCRATCH/bench-fo-rwproxy.yaml" >"$SCRATCH/bench-fo-rwproxy.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        curl -sf "127.0.0.1:$ADMIN_PORT/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "rwproxy did not become ready"
}

start_haproxy() {
    cat >"$SCRATCH/bench-fo-haproxy.cfg" <<EOF
global
  maxconn 512
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
listen mysql
  bind 127.0.0.1:$HAPROXY_PORT
  default-server inter 500ms fall 2 rise 2
  server node0 127.0.0.1:$BASE check
  server node1 127.0.0.1:$((BASE + 1)) check backup
  server node2 127.0.0.1:$((BASE + 2)) check backup
EOF
    haproxy -db -f "$SCRATCH/bench-fo-haproxy.cfg" >"$SCRATCH/bench-fo-haproxy.log" 2>&1 &
    PIDS+=($!)
    sleep 1
}

# run PROXY EVENT: one sysbench run through PROXY (rwproxy|haproxy) with EVENT at EVENT_AT s.
run() {
    local proxy=$1 event=$2 port out
    port=$([[ $proxy == rwproxy ]] && echo $RWPROXY_PORT || echo $HAPROXY_PORT)
    fresh_cluster
    if [[ $proxy == rwproxy ]]; then start_rwproxy; else start_haproxy; fi
    out=$SCRATCH/bench-fo-$proxy-$event.txt
    timeout -s KILL $((RUN_TIME + 3)) sysbench oltp_read_write --mysql-host=127.0.0.1 \
        --mysql-port="$port" --mysql-user=app --mysql-password=app_pass --mysql-db=app \
        --tables=4 --table-size=10000 --threads=$THREADS --time="$RUN_TIME" \
        --report-interval=1 --mysql-ignore-errors=all --db-ps-mode=disable run >"$out" 2>&1 &
    local sb=$!
    sleep "$EVENT_AT"
    case $proxy-$event in
    rwproxy-switchover)
        RWPROXY_ADMIN_TOKEN=$TOKEN "$BIN" switchover --admin "127.0.0.1:$ADMIN_PORT" --to db2 \
            >"$SCRATCH/bench-fo-switchover-report.json" 2>&1 || say "switchover refused: $(cat "$SCRATCH/bench-fo-switchover-report.json")"
        ;;
    haproxy-switchover) cluster promote 1 >/dev/null 2>&1 ;;
    *-baseline) ;;
    *-failover)
        kill -9 "$(cat "$SCRATCH/cluster-$NAME/node0/mariadbd.pid")"
        sleep 1
        cluster promote 1 >/dev/null 2>&1
        ;;
    esac
    wait "$sb" || true
    # Which errors rwproxy sent (by MySQL code), for the report.
    if [[ $proxy == rwproxy ]]; then
        curl -s -H "Authorization: Bearer $TOKEN" "127.0.0.1:$ADMIN_PORT/metrics" |
            awk '/^rwproxy_errors_total\{/ && $2 > 0 {print $1 "=" $2}' >"$SCRATCH/bench-fo-codes-$event.txt" || true
    fi
    cleanup
    # Per-second lines: "[ 9s ] thds: 16 tps: 512.00 qps: ... err/s: 0.00 reconn/s: 0.00".
    local summary
    summary=$(awk -v limit="$RUN_TIME" '
        /^\[ *[0-9]+s \]/ {
            t = $2; sub(/s/, "", t); if (t + 0 > limit) next
            for (i = 1; i <= NF; i++) {
                if ($i == "tps:") tps = $(i + 1)
                if ($i == "err/s:") err = $(i + 1)
                if ($i == "reconn/s:") rec = $(i + 1)
            }
            n++; sum_tps += tps; errors += err; reconnects += rec; last = t + 0
            if (tps + 0 == 0) { run++; if (run > stall) stall = run } else run = 0
        }
        END {
            if (n == 0) exit 1
            # Seconds after the last report: the clients hung (no report is written while
            # every thread waits); they count as stalled, with no transaction.
            silent = limit - last
            if (silent > 0) { run += silent; if (run > stall) stall = run }
            printf "%d %d %d %.1f %d", errors + 0.5, reconnects + 0.5, stall, sum_tps / limit, silent
        }
    ' "$out") || { cat "$out" >&2; die "no per-second reports from sysbench ($proxy $event)"; }
    printf '%s %s %s\n' "$proxy" "$event" "$summary"
}

RESULTS=$SCRATCH/bench-fo-results.txt
: >"$RESULTS"
for event in baseline switchover failover; do
    for proxy in rwproxy haproxy; do
        say "$event through $proxy"
        run "$proxy" "$event" | tee -a "$RESULTS" >&2
    done
done

COMMIT=$(git rev-parse --short HEAD)
MACHINE="$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM"
python3 - "$RESULTS" "$COMMIT" "$MACHINE" "$RUN_TIME" "$EVENT_AT" "$THREADS" <<'PY'
import sys, datetime, pathlib, re
results, commit, machine, run_time, at, threads = sys.argv[1:7]
rows = [l.split() for l in open(results) if l.strip()]
by = {(r[0], r[1]): r for r in rows}
out = []
out.append("<!-- bench:failover:start -->")
out.append("## A change of primary under load: rwproxy and HAProxy")
out.append("")
out.append(f"Written by `integration/bench/failover.sh`. Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC on commit {commit}; machine: {machine}.")
out.append(f"sysbench `oltp_read_write`, {threads} threads, {run_time} s per run, text protocol, `--mysql-ignore-errors=all`; the event "
           f"{at} s into the run; a fresh cluster for every run. HAProxy: TCP mode, the primary with both replicas as `backup` servers, "
           "TCP checks every 500 ms (`fall 2`). Switchover: rwproxy runs it itself (`rwproxy switchover`); for HAProxy the same "
           "move is made by `cluster.sh promote 1`. Failover: `kill -9` of the primary, `cluster.sh promote 1` one second later.")
out.append("")
out.append("| scenario | proxy | errors clients saw | reconnects | longest stall (s without a completed transaction) | transactions/s (mean over the run) | seconds the clients hung to the end |")
out.append("|---|---|---|---|---|---|---|")
for event in ("baseline", "switchover", "failover"):
    for proxy in ("rwproxy", "haproxy"):
        r = by.get((proxy, event))
        if r:
            out.append(f"| {event} | {'rwproxy' if proxy == 'rwproxy' else 'HAProxy'} | {r[2]} | {r[3]} | {r[4]} | {float(r[5]):.1f} | {r[6]} |")
out.append("")
def errs(p, e):
    r = by.get((p, e)); return int(r[2]) + int(r[3]) if r else None
base = {p: errs(p, "baseline") or 0 for p in ("rwproxy", "haproxy")}
for event in ("switchover", "failover"):
    a, b = errs("rwproxy", event), errs("haproxy", event)
    if a is not None and b is not None:
        sa, sb = by[("rwproxy", event)][4], by[("haproxy", event)][4]
        out.append(f"- {event}: clients saw {a} errors and reconnects through rwproxy ({base['rwproxy']} in the baseline run) "
                   f"and stalled at most {sa} s; through HAProxy {b} ({base['haproxy']} in its baseline run), stalled at most {sb} s.")
codes = {}
for event in ("baseline", "switchover", "failover"):
    f = pathlib.Path(results).parent / f"bench-fo-codes-{event}.txt"
    if f.exists() and f.read_text().strip():
        codes[event] = ", ".join(l.strip() for l in f.read_text().splitlines() if l.strip())
if codes:
    out.append("")
    out.append("Error packets rwproxy sent, by code (`rwproxy_errors_total`): " + "; ".join(f"{e}: {c}" for e, c in codes.items()) + ".")
out.append("")
out.append("Reproduce: `integration/bench/failover.sh [--time SECONDS] [--at SECONDS]`.")
out.append("<!-- bench:failover:end -->")
doc = pathlib.Path("docs/benchmarks.md")
text = doc.read_text()
block = "\n".join(out)
if "<!-- bench:failover:start -->" in text:
    text = re.sub(r"<!-- bench:failover:start -->.*?<!-- bench:failover:end -->", block, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
doc.write_text(text)
print(block)
PY
