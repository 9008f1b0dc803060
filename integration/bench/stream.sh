#!/usr/bin/env bash
# Streams a 1 GiB result set through rwproxy and reports rwproxy's peak RSS (VmHWM), next to
# the same query run directly against the server, so the two can be compared side by side.
# Writes its figures into docs/benchmarks.md between <!-- bench:stream:start --> and
# <!-- bench:stream:end -->.
#
#   integration/bench/stream.sh [GiB]      (default 1)
#
# A report, not a test: it exits non-zero only if the harness itself fails.
set -euo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
GIB=${1:-1}
ROWS=$((GIB * 1024 * 1024)) # 1 KiB per row
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
mkdir -p "$SCRATCH"

bash integration/cluster.sh up >/dev/null
cargo build --release -q -p rwproxy
CONFIG=$SCRATCH/bench-stream.yaml
sed -e 's/^listen: .*/listen: 127.0.0.1:6133/' \
    -e 's/^\(\s*listen: \)127.0.0.1:9033/\1127.0.0.1:9133/' proxy-config.yaml >"$CONFIG"
RUST_LOG=warn target/release/rwproxy --config "$CONFIG" >"$SCRATCH/bench-stream.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    mariadb -h127.0.0.1 -P6133 -uapp -papp_pass -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.1
done
QUERY="SELECT REPEAT('x', 1020) AS pad, seq FROM seq_1_to_${ROWS}"
rss_kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$PID/status"; }
rss_before=$(rss_kib VmRSS)
hwm_before=$(rss_kib VmHWM)
echo "rwproxy before the query: RSS ${rss_before} KiB, peak so far ${hwm_before} KiB"

t0=$(date +%s.%N)
bytes_direct=$(mariadb -h127.0.0.1 -P3316 -uapp -papp_pass --quick --skip-column-names app -e "$QUERY" | wc -c)
t1=$(date +%s.%N)
bytes_proxy=$(mariadb -h127.0.0.1 -P6133 -uapp -papp_pass --quick --skip-column-names app -e "$QUERY" | wc -c)
t2=$(date +%s.%N)
peak=$(rss_kib VmHWM)
echo "result size: direct ${bytes_direct} bytes, through rwproxy ${bytes_proxy} bytes"
[[ $bytes_direct == "$bytes_proxy" ]] || { echo "MISMATCH: the result through rwproxy differs in size" >&2; exit 1; }
python3 - "$t0" "$t1" "$t2" "$rss_before" "$hwm_before" "$peak" "$GIB" "$bytes_direct" <<'PY'
import sys
sys.path.insert(0, "integration/bench")
from report import machine, revision, write_section
t0, t1, t2 = (float(x) for x in sys.argv[1:4])
rss_before, hwm_before, peak, gib, size = (int(x) for x in sys.argv[4:9])
direct, proxy = t1 - t0, t2 - t1
start, end = "<!-- bench:stream:start -->", "<!-- bench:stream:end -->"
growth = peak - hwm_before
block = "\n".join([
    start,
    f"Run on commit {revision()}; machine: {machine()}. {gib} GiB requested, "
    f"{size:,} bytes of output each way (identical sizes).",
    "",
    "| direct | through rwproxy | ratio | rwproxy RSS before the query | rwproxy peak RSS (VmHWM) before | after | growth of the peak |",
    "|---|---|---|---|---|---|---|",
    f"| {direct:.2f} s | {proxy:.2f} s | {proxy / direct:.2f} | {rss_before / 1024:.1f} MiB "
    f"| {hwm_before / 1024:.1f} MiB | {peak / 1024:.1f} MiB | {growth:,} KiB |",
    "",
    f"Target: a peak under 64 MiB: {'met' if peak < 64 * 1024 else 'MISSED'} "
    f"({peak / 1024:.1f} MiB).",
    end,
]) + "\n"
write_section("docs/benchmarks.md", block, start, end)
print(block)
PY
