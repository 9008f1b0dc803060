#!/usr/bin/env bash
# Streams a 1 GiB result set through rwproxy and reports rwproxy's peak RSS (VmHWM), next to
# the same query run directly against the server, so the two can be compared side by side.
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
rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$PID/status"; }
echo "rwproxy RSS before: $(rss_kib) KiB"

t0=$(date +%s.%N)
bytes_direct=$(mariadb -h127.0.0.1 -P3316 -uapp -papp_pass --quick --skip-column-names app -e "$QUERY" | wc -c)
t1=$(date +%s.%N)
bytes_proxy=$(mariadb -h127.0.0.1 -P6133 -uapp -papp_pass --quick --skip-column-names app -e "$QUERY" | wc -c)
t2=$(date +%s.%N)
peak=$(rss_kib)
direct_s=$(awk "BEGIN {printf \"%.2f\", $t1 - $t0}")
proxy_s=$(awk "BEGIN {printf \"%.2f\", $t2 - $t1}")
echo "result size: direct ${bytes_direct} bytes, through rwproxy ${bytes_proxy} bytes"
echo "time: direct ${direct_s}s, through rwproxy ${proxy_s}s (ratio $(awk "BEGIN {printf \"%.2f\", $proxy_s / $direct_s}"))"
echo "rwproxy peak RSS (VmHWM) after streaming ${GIB} GiB: ${peak} KiB ($((peak / 1024)) MiB)"
[[ $bytes_direct == "$bytes_proxy" ]] || { echo "MISMATCH: the result through rwproxy differs in size" >&2; exit 1; }
