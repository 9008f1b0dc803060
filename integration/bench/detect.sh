#!/usr/bin/env bash
# Time to detect a failed replica: kill -9 and SIGSTOP of a replica of a private cluster
# (ports 3488-3490) under a read load of 4 clients, 3 runs each, with the monitor at a
# 200 ms interval and a 500 ms timeout. For each kind it prints the median time from the
# signal to
#   - the replica being reported "down" in /backends on the admin endpoint, and
#   - the first read after which no read went to that replica (answered by it, failed,
#     waited on it, or was retried away from it by the proxy).
#
#   integration/bench/detect.sh
#
# The figures come from the ignored test `detection_figures` of the `failover` test binary
# (crates/rwproxy/tests/failover/detect.rs). A report, not a test: it fails only if the
# harness does.
set -euo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"

echo "# $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)')"
echo "# $(nproc) CPUs, $(mariadbd --version 2>/dev/null | awk '{print $3}')"
out=$(cargo test -q -p rwproxy --test failover -- --ignored --nocapture --exact detect::detection_figures 2>&1) || {
    echo "$out" >&2
    echo "detect.sh: the benchmark run failed" >&2
    exit 1
}
grep '^detect:' <<<"$out" | sed 's/^detect: //'
