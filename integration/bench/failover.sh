#!/usr/bin/env bash
# What a change of primary costs the application: sysbench oltp_read_write (16 threads, text
# protocol unless --prepared, keys drawn uniformly) through rwproxy and through HAProxy, one
# scenario per run, each on a fresh cluster, the event 8 s into a 20 s run:
#   baseline:   nothing happens (errors the workload has anyway);
#   switchover: rwproxy only: `rwproxy switchover --to db2` (held writes, zero-error goal);
#   external:   `cluster.sh promote 1` with the old primary alive (it is set read-only first),
#               as an operator or an orchestrator switches over;
#   kill:       kill -9 of the primary, `cluster.sh promote 1` one second later.
# HAProxy (TCP mode) follows the writable server: every node is a server with an external
# health check (`option external-check`, integration/bench/haproxy-writable.sh) that passes
# only where `@@read_only = 0`, checked every 500 ms (fall 2, rise 1), and a server marked down
# has its sessions shut (`on-marked-down shutdown-sessions`) so that clients reconnect to the
# new primary instead of writing into a read-only server.
# Reported per scenario: errors the clients saw (sysbench's errors and reconnects), the longest
# statement stall: sysbench's maximum transaction latency (its summary) and the longest run of
# seconds without a completed transaction (its per-second reports), and the mean throughput.
# Writes its table into docs/benchmarks.md between <!-- bench:failover:start --> and
# <!-- bench:failover:end -->.
#
#   integration/bench/failover.sh [--time SECONDS] [--at SECONDS] [--transaction-replay] [--prepared]
#
# --transaction-replay: rwproxy runs with `routing.transaction_replay: true` (issue #16 item 3;
# a build without that key refuses the configuration); the report adds what became of the
# replays (`rwproxy_transaction_replays_total`).
# --prepared: sysbench uses prepared statements (`--db-ps-mode=auto`, its default) instead of
# the text protocol.
# Each combination of the two flags has its own block in docs/benchmarks.md
# (bench:failover, bench:failover-replay, bench:failover-prepared, bench:failover-replay-prepared).
# Ports: cluster "bench-fo" 3650-3652, HAProxy 6311, rwproxy 6312 (admin 9312). The rwproxy
# binary is $CARGO_TARGET_DIR/release/rwproxy (default target/), built here.
# A report, not a test: it exits non-zero only if the harness itself fails.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
RUN_TIME=20
EVENT_AT=8
REPLAY=0
PREPARED=0
while (($#)); do
    case $1 in
    --time) RUN_TIME=${2:?}; shift 2 ;;
    --at) EVENT_AT=${2:?}; shift 2 ;;
    --transaction-replay) REPLAY=1; shift ;;
    --prepared) PREPARED=1; shift ;;
    -h | --help) sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "failover.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
((EVENT_AT < RUN_TIME)) || { echo "failover.sh: --at must be less than --time" >&2; exit 2; }
PS_MODE=$( ((PREPARED)) && echo auto || echo disable)

readonly NAME=bench-fo BASE=3650 HAPROXY_PORT=6311 RWPROXY_PORT=6312 ADMIN_PORT=9312
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
BIN=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/rwproxy

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
    if ((REPLAY)); then echo "routing: { transaction_replay: true }" >>"$SCRATCH/bench-fo-rwproxy.yaml"; fi
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
  external-check
  insecure-fork-wanted
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
listen mysql
  bind 127.0.0.1:$HAPROXY_PORT
  option external-check
  external-check path "/usr/bin:/bin"
  external-check command $REPO_ROOT/integration/bench/haproxy-writable.sh
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
  server node0 127.0.0.1:$BASE check
  server node1 127.0.0.1:$((BASE + 1)) check
  server node2 127.0.0.1:$((BASE + 2)) check
EOF
    haproxy -db -f "$SCRATCH/bench-fo-haproxy.cfg" >"$SCRATCH/bench-fo-haproxy.log" 2>&1 &
    PIDS+=($!)
    sleep 2
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
        --tables=4 --table-size=10000 --rand-type=uniform --threads=$THREADS --time="$RUN_TIME" \
        --report-interval=1 --mysql-ignore-errors=all --db-ps-mode="$PS_MODE" run >"$out" 2>&1 &
    local sb=$!
    sleep "$EVENT_AT"
    case $proxy-$event in
    rwproxy-switchover)
        RWPROXY_ADMIN_TOKEN=$TOKEN "$BIN" switchover --admin "127.0.0.1:$ADMIN_PORT" --to db2 \
            >"$SCRATCH/bench-fo-switchover-report.json" 2>&1 || say "switchover refused: $(cat "$SCRATCH/bench-fo-switchover-report.json")"
        ;;
    *-external) cluster promote 1 >/dev/null 2>&1 ;;
    *-baseline) ;;
    *-kill)
        kill -9 "$(cat "$SCRATCH/cluster-$NAME/node0/mariadbd.pid")"
        sleep 1
        cluster promote 1 >/dev/null 2>&1
        ;;
    esac
    wait "$sb" || true
    # Which errors rwproxy sent (by MySQL code), and what became of transaction replays, for
    # the report.
    if [[ $proxy == rwproxy ]]; then
        curl -s -H "Authorization: Bearer $TOKEN" "127.0.0.1:$ADMIN_PORT/metrics" >"$SCRATCH/bench-fo-metrics.txt" || true
        awk '/^rwproxy_errors_total\{/ && $2 > 0 {print $1 "=" $2}' "$SCRATCH/bench-fo-metrics.txt" >"$SCRATCH/bench-fo-codes-$event.txt" || true
        awk '/^rwproxy_transaction_replays_total\{/ && $2 > 0 {sub(/^rwproxy_transaction_replays_total\{outcome="/, "", $1); sub(/"\}$/, "", $1); print $1 "=" $2}' \
            "$SCRATCH/bench-fo-metrics.txt" >"$SCRATCH/bench-fo-replays-$event.txt" || true
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
    # The longest transaction (ms) from the summary; "-" when sysbench was stopped from outside.
    local max
    max=$(awk '$1 == "max:" {print $2; exit}' "$out")
    printf '%s %s %s %s\n' "$proxy" "$event" "$summary" "${max:--}"
}

RESULTS=$SCRATCH/bench-fo-results.txt
: >"$RESULTS"
rm -f "$SCRATCH"/bench-fo-codes-*.txt "$SCRATCH"/bench-fo-replays-*.txt
for event in baseline switchover external kill; do
    for proxy in rwproxy haproxy; do
        [[ $proxy-$event == haproxy-switchover ]] && continue
        say "$event through $proxy"
        run "$proxy" "$event" | tee -a "$RESULTS" >&2
    done
done

COMMIT=$(git rev-parse --short HEAD)
MACHINE="$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM"
python3 - "$RESULTS" "$COMMIT" "$MACHINE" "$RUN_TIME" "$EVENT_AT" "$THREADS" "$REPLAY" "$PREPARED" <<'PY'
import sys, datetime, pathlib, re
results, commit, machine, run_time, at, threads, replay, prepared = sys.argv[1:9]
variant = ("-replay" if replay == "1" else "") + ("-prepared" if prepared == "1" else "")
flags = (" --transaction-replay" if replay == "1" else "") + (" --prepared" if prepared == "1" else "")
start, end = f"<!-- bench:failover{variant}:start -->", f"<!-- bench:failover{variant}:end -->"
rows = [l.split() for l in open(results) if l.strip()]
by = {(r[0], r[1]): r for r in rows}
names = {"baseline": "baseline (no event)", "switchover": "rwproxy switchover",
         "external": "external switchover (`cluster.sh promote 1`, old primary alive)",
         "kill": "kill -9 of the primary, promotion 1 s later"}
out = []
out.append(start)
title = "## Failover continuity: a change of primary under load, rwproxy and HAProxy"
if variant:
    title += " (" + ", ".join(w for w, on in (("transaction replay", replay == "1"), ("prepared statements", prepared == "1")) if on) + ")"
out.append(title)
out.append("")
out.append(f"Written by `integration/bench/failover.sh{flags}`. "
           f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC on commit {commit}; machine: {machine} "
           "(servers, proxies and sysbench share it, as does other work).")
protocol = "prepared statements (`--db-ps-mode=auto`)" if prepared == "1" else "text protocol"
out.append(f"sysbench `oltp_read_write`, {threads} threads, 4 tables × 10,000 rows, keys drawn uniformly, {protocol}, "
           f"`--mysql-ignore-errors=all`, {run_time} s per run, the event {at} s into the run, a fresh cluster for every run; "
           f"rwproxy {'with' if replay == '1' else 'without'} `routing.transaction_replay`, monitor every 200 ms. "
           "HAProxy: TCP mode, the three servers with an external check every 500 ms that passes only where "
           "`@@read_only = 0` (`integration/bench/haproxy-writable.sh`; `fall 2 rise 1`), sessions shut when their "
           "server is marked down.")
out.append("")
out.append("| scenario | proxy | errors clients saw | reconnects | longest transaction (ms) | longest stall (s without a completed transaction) | transactions/s (mean) |")
out.append("|---|---|---|---|---|---|---|")
for event in ("baseline", "switchover", "external", "kill"):
    for proxy in ("rwproxy", "haproxy"):
        r = by.get((proxy, event))
        if r:
            hung = f" (+{r[6]} s hung at the end)" if r[6] != "0" else ""
            out.append(f"| {names[event]} | {'rwproxy' if proxy == 'rwproxy' else 'HAProxy'} | {r[2]} | {r[3]} | {r[7]} | {r[4]}{hung} | {float(r[5]):.1f} |")
codes = {}
for event in ("baseline", "switchover", "external", "kill"):
    f = pathlib.Path(results).parent / f"bench-fo-codes-{event}.txt"
    if f.exists() and f.read_text().strip():
        codes[event] = ", ".join(l.strip() for l in f.read_text().splitlines() if l.strip())
if codes:
    out.append("")
    out.append("Error packets rwproxy sent, by code (`rwproxy_errors_total`): " + "; ".join(f"{e}: {c}" for e, c in codes.items()) + ".")
replays = {}
for event in ("baseline", "switchover", "external", "kill"):
    f = pathlib.Path(results).parent / f"bench-fo-replays-{event}.txt"
    if f.exists() and f.read_text().strip():
        replays[event] = ", ".join(l.strip() for l in f.read_text().splitlines() if l.strip())
if replay == "1":
    out.append("")
    out.append("Transaction replays (`rwproxy_transaction_replays_total` by outcome): "
               + ("; ".join(f"{e}: {c}" for e, c in replays.items()) if replays else "none") + ".")
out.append("")
out.append("Reproduce: `integration/bench/failover.sh [--time SECONDS] [--at SECONDS] [--transaction-replay] [--prepared]` "
           "(about 6 minutes; builds rwproxy in release mode).")
out.append(end)
doc = pathlib.Path("docs/benchmarks.md")
text = doc.read_text()
block = "\n".join(out)
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda m: block, text, flags=re.S)
elif "<!-- bench:failover:end -->" in text:
    # Beside the other failover figures.
    text = text.replace("<!-- bench:failover:end -->", "<!-- bench:failover:end -->\n\n" + block, 1)
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
doc.write_text(text)
print(block)
PY
