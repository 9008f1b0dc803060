#!/usr/bin/env bash
# A/B of two rwproxy commits, side by side in one run: CPU per query (user space and kernel),
# throughput and p95 of each, under the same sysbench workloads, runs interleaved. Measures what
# a change to the data path buys; writes its figures into docs/benchmarks.md between
# <!-- bench:ab:start --> and <!-- bench:ab:end -->.
#
#   integration/bench/ab.sh OLD NEW [--repeat N] [--time SECONDS]
#
#   OLD, NEW         commits (anything `git rev-parse` takes); each is built (release) in a
#                    worktree under the scratch directory
#   --repeat N       rounds (default 5); each figure is the median
#   --time SECONDS   length of one sysbench run (default 8)
#
# Workloads: oltp_point_select and oltp_read_only (BEGIN … COMMIT), text protocol, 8 threads,
# against the shared "main" cluster (run integration/bench/run.sh once first to load the data).
# Ports: 6321 (OLD) and 6322 (NEW), admin 9321 and 9322.
set -euo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
cd "$REPO_ROOT"
(($# >= 2)) || { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
OLD=$(git rev-parse --short "$1") NEW=$(git rev-parse --short "$2")
shift 2
REPEAT=5 RUN_TIME=8
while (($#)); do
    case $1 in
    --repeat) REPEAT=${2:?}; shift 2 ;;
    --time) RUN_TIME=${2:?}; shift 2 ;;
    *) echo "ab.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
say() { printf '==> %s\n' "$*" >&2; }
mkdir -p "$SCRATCH"
bash integration/cluster.sh up >/dev/null

PIDS=() TREES=()
cleanup() {
    local p t
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for t in "${TREES[@]}"; do git worktree remove --force "$t" 2>/dev/null || true; done
}
trap cleanup EXIT

build() { # build REV -> path of the binary
    local rev=$1 tree=$SCRATCH/ab-tree-$1
    git worktree remove --force "$tree" 2>/dev/null || true
    git worktree add -q --detach "$tree" "$rev"
    TREES+=("$tree")
    say "building $rev (release)"
    (cd "$tree" && CARGO_TARGET_DIR=$SCRATCH/ab-target cargo build --release -q -p rwproxy)
    cp "$SCRATCH/ab-target/release/rwproxy" "$SCRATCH/ab-rwproxy-$rev"
    echo "$SCRATCH/ab-rwproxy-$rev"
}
OLD_BIN=$(build "$OLD")
NEW_BIN=$(build "$NEW")

start() { # start BIN PORT ADMIN -> pid
    local cfg=$SCRATCH/ab-$2.yaml
    sed -e "s/^listen: .*/listen: 127.0.0.1:$2/" \
        -e "s/^\(\s*listen: \)127.0.0.1:9033/\1127.0.0.1:$3/" \
        -e "s/^\(\s*level: \).*/\1warn/" proxy-config.yaml >"$cfg"
    "$1" --config "$cfg" >"$SCRATCH/ab-$2.log" 2>&1 &
    local pid=$! _
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$3/ready" >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "$pid"
}
OLD_PID=$(start "$OLD_BIN" 6321 9321)
PIDS+=("$OLD_PID")
NEW_PID=$(start "$NEW_BIN" 6322 9322)
PIDS+=("$NEW_PID")

RESULTS=$SCRATCH/ab-results.tsv
: >"$RESULTS"
for round in $(seq "$REPEAT"); do
    say "round $round of $REPEAT"
    for workload in point_select read_only_trx; do
        case $workload in
        point_select) test=oltp_point_select ;;
        read_only_trx) test=oltp_read_only ;;
        esac
        # Which build runs first alternates from round to round.
        if ((round % 2)); then order="old new"; else order="new old"; fi
        for side in $order; do
            if [[ $side == old ]]; then port=6321 pid=$OLD_PID; else port=6322 pid=$NEW_PID; fi
            read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
            out=$(sysbench "$test" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=$port \
                --mysql-user=app --mysql-password=app_pass --mysql-db=app --tables=1 \
                --table-size=100000 --threads=8 --time="$RUN_TIME" --report-interval=0 \
                --db-ps-mode=disable run)
            read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
            q=$(awk '/queries:/ {print $2; exit}' <<<"$out")
            qps=$(awk '/queries:/ {gsub(/\(/, "", $3); print $3; exit}' <<<"$out")
            p95=$(awk '/95th percentile/ {print $3; exit}' <<<"$out")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$side" "$q" "$qps" "$p95" \
                "$((u1 - u0))" "$((s1 - s0))" >>"$RESULTS"
        done
    done
done

python3 - "$RESULTS" "$OLD" "$NEW" "$REPEAT" "$RUN_TIME" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
sys.path.insert(0, "integration/bench")
from report import machine, revision, write_section
path, old, new, repeat, run_time, tck = sys.argv[1:7]
tck = int(tck)
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
def cell(workload, side, field):
    vals = []
    for w, s, q, qps, p95, ut, st in rows:
        if w != workload or s != side or not q:
            continue
        q = int(q)
        vals.append({"qps": float(qps), "p95": float(p95),
                     "user": int(ut) / tck / q * 1e6, "sys": int(st) / tck / q * 1e6}[field])
    return statistics.median(vals) if vals else None
start, end = "<!-- bench:ab:start -->", "<!-- bench:ab:end -->"
L = [start, "## A/B: what the latest data-path changes bought", "",
     f"Written by `integration/bench/ab.sh {old} {new}` on {machine()} (script from commit "
     f"{revision()}): both builds run side by side against the same cluster, runs interleaved, "
     f"medians of {repeat} runs of {run_time} s, 8 threads, text protocol.", "",
     f"| workload | q/s {old} | q/s {new} | p95 ms {old} | p95 ms {new} | user µs/q {old} | user µs/q {new} | kernel µs/q {old} | kernel µs/q {new} | CPU per query {new} / {old} |",
     "|---|---|---|---|---|---|---|---|---|---|"]
for w, label in (("point_select", "`oltp_point_select`"), ("read_only_trx", "`oltp_read_only` (`BEGIN` … `COMMIT`)")):
    g = lambda side, f: cell(w, side, f)
    cpu_old = (g("old", "user") or 0) + (g("old", "sys") or 0)
    cpu_new = (g("new", "user") or 0) + (g("new", "sys") or 0)
    L.append(f"| {label} | {g('old','qps'):,.0f} | {g('new','qps'):,.0f} | {g('old','p95'):.2f} | {g('new','p95'):.2f} "
             f"| {g('old','user'):.1f} | {g('new','user'):.1f} | {g('old','sys'):.1f} | {g('new','sys'):.1f} "
             f"| {cpu_new / cpu_old:.2f} |")
L.append(end)
block = "\n".join(L) + "\n"
write_section("docs/benchmarks.md", block, start, end)
print(block)
PY
