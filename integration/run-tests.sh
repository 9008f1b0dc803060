#!/usr/bin/env bash
# THE test command of rwproxy: installs what is missing, brings up the local MariaDB
# replication and Galera clusters, runs every Rust test of the workspace, the PyMySQL tests,
# the suites of the shared cluster again with one shared backend connection per backend, the
# differential runs (replication, Galera, replication with sharing), the client-library suite and the fuzzers,
# and prints a summary.
#
#   integration/run-tests.sh [--down]
#
# --down   stop the clusters afterwards (they are left running by default, for the next run).
# Exits non-zero if anything failed.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
DOWN=0
for arg in "$@"; do
    case $arg in
    --down) DOWN=1 ;;
    -h | --help)
        sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "run-tests.sh: unknown argument: $arg" >&2
        exit 2
        ;;
    esac
done
cd "$REPO_ROOT"
mkdir -p "$SCRATCH"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1
export DEBIAN_FRONTEND=noninteractive

say() { printf '\n==> %s\n' "$*"; }

apt_install() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "run-tests.sh: need these packages, and not root: $*" >&2
        return 1
    fi
    if [[ -z ${APT_UPDATED:-} ]]; then
        apt-get update -q
        APT_UPDATED=1
    fi
    apt-get install -y -q --no-install-recommends "$@"
}

# ---------------------------------------------------------------- prerequisites

say "checking prerequisites"
if ! command -v mariadb >/dev/null 2>&1 || ! { command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]]; }; then
    apt_install mariadb-server mariadb-client
fi
command -v cargo >/dev/null 2>&1 || {
    echo "run-tests.sh: cargo is not installed" >&2
    exit 1
}
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-pip python3-venv
# promtool checks the /metrics output (Debian ships it in the prometheus package).
command -v promtool >/dev/null 2>&1 || apt_install prometheus
# HAProxy sends PROXY protocol headers in front of rwproxy in the endpoint tests.
command -v haproxy >/dev/null 2>&1 || apt_install haproxy
# sysbench: the failover tests run oltp_read_write through rwproxy during a change of primary.
command -v sysbench >/dev/null 2>&1 || apt_install sysbench

# Python test dependencies: the current python3 if it has them or pip can add them,
# otherwise a virtualenv in the scratch directory (for distros that forbid system pip).
PYTHON=python3
PY_DEPS="import pytest, pymysql, cryptography"
if ! "$PYTHON" -c "$PY_DEPS" 2>/dev/null; then
    if ! "$PYTHON" -m pip install -q -r integration/python/requirements.txt; then
        VENV=$SCRATCH/venv
        if [[ ! -x $VENV/bin/python ]]; then
            "$PYTHON" -m venv "$VENV" 2>/dev/null || {
                apt_install python3-venv
                "$PYTHON" -m venv "$VENV"
            }
        fi
        PYTHON=$VENV/bin/python
        "$PYTHON" -m pip install -q -r integration/python/requirements.txt
    fi
    "$PYTHON" -c "$PY_DEPS"
fi

# ---------------------------------------------------------------- drop-in drivers
# The Rust test binary `accounts` runs integration/java/run.sh (MariaDB Connector/J, needs a
# JDK and Debian's libmariadb-java) and integration/node/run.sh (mysql2, installed by npm into
# integration/node/node_modules, which git ignores).
say "checking the Java and Node drivers for the drop-in tests"
if ! command -v javac >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
    apt_install default-jdk-headless
fi
[[ -r /usr/share/java/mariadb-java-client.jar ]] || apt_install libmariadb-java
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
if [[ ! -d integration/node/node_modules/mysql2 ]]; then
    (cd integration/node && npm install --no-audit --no-fund --loglevel=error)
fi

# ---------------------------------------------------------------- cluster

say "bringing up the local MariaDB cluster"
bash integration/cluster.sh up
bash integration/cluster.sh status
# The Galera tests (crates/rwproxy/tests/galera, the differential run on Galera) use a second,
# three-node Galera cluster; galera.sh installs galera-4 and rsync when they are missing.
# Started from scratch each run (about 6 s more than a restart): a cluster kept from earlier
# runs carries their write history (the differential writes 16 MiB values), and a node that
# rejoins after the partition test then needs write sets its donors' gcache no longer has.
say "bringing up the local MariaDB Galera cluster (from scratch)"
bash integration/galera.sh down --wipe
bash integration/galera.sh up
bash integration/galera.sh status

# ---------------------------------------------------------------- tests

LOG_DIR=$SCRATCH/test-logs
mkdir -p "$LOG_DIR"
RUST_LOG_FILE=$LOG_DIR/cargo-test.log
PY_LOG_FILE=$LOG_DIR/pytest.log

say "deployment files: docker-compose.yml, the config the container uses, the Kubernetes manifests"
command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
set +e
DEPLOY_STATUS=0
docker-compose -f docker-compose.yml config -q || DEPLOY_STATUS=1
cargo build -q -p rwproxy &&
    APP_DB_PASSWORD=check MONITOR_PASSWORD=check ADMIN_TOKEN=check \
        target/debug/rwproxy check-config deploy/compose/rwproxy.yaml || DEPLOY_STATUS=1
target/debug/rwproxy check-config proxy-config.yaml || DEPLOY_STATUS=1
target/debug/rwproxy check-config deploy/galera/proxy-config.yaml || DEPLOY_STATUS=1
# Kubernetes manifests: schema-validated (no cluster here) and their rwproxy configs checked.
bash integration/k8s-validate.sh target/debug/rwproxy || DEPLOY_STATUS=1
set -e

say "cargo test --workspace"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$RUST_LOG_FILE"
RUST_STATUS=${PIPESTATUS[0]}
set -e

# ---------------------------------------------------------------- TLS-only backends
# The routing suite, the read-your-writes (consistency) tests and the monitor's shared-cluster
# tests again, against a second cluster whose servers take only TLS connections
# (require_secure_transport=ON, replication over TLS): rwproxy and the monitor reach it through
# backend_tls, verified against the cluster's own CA; the tests' direct connections use TLS too.
say "TLS-only backends: routing, consistency and monitor tests against cluster.sh up --tls-only"
TLS_LOG_FILE=$LOG_DIR/tls-only.log
set +e
(
    export RWPROXY_TEST_TLS_ONLY=1 RWPROXY_TEST_CLUSTER=tls-shared RWPROXY_TEST_BASE_PORT=3526
    rc=0
    cargo test --no-fail-fast -p rwproxy --test routing || rc=1
    cargo test --no-fail-fast -p rwproxy --test operations consistency || rc=1
    cargo test --no-fail-fast -p rwproxy-monitor --test shared_cluster || rc=1
    exit $rc
) 2>&1 | tee "$TLS_LOG_FILE"
TLS_STATUS=${PIPESTATUS[0]}
if ((DOWN)); then bash integration/cluster.sh down --name tls-shared || true; fi
set -e
cat "$TLS_LOG_FILE" >>"$RUST_LOG_FILE"
if ((TLS_STATUS != 0)); then RUST_STATUS=$TLS_STATUS; fi

# ---------------------------------------------------------------- sharing, one connection
# Connection sharing with one backend connection per backend (issue #15): the suites of the
# shared cluster again, every rwproxy they start given `pool: { enabled: true,
# max_per_backend: 1 }` (RWPROXY_TEST_POOL, added by the testkit where a test sets no pool), so
# every statement of every session runs on the same few server connections. The failover and
# Galera suites run with sharing on (the default) but no cap: several of their clients hold
# transactions at the same time, which one connection cannot serve.
say "connection sharing with max_per_backend: 1: endpoint, accounts, routing, operations"
SHARE_LOG_FILE=$LOG_DIR/sharing-one-connection.log
export RWPROXY_SHARED_POOL='{ enabled: true, max_per_backend: 1, wait_timeout: 5s }'
set +e
RWPROXY_TEST_POOL=$RWPROXY_SHARED_POOL cargo test --no-fail-fast -p rwproxy \
    --test endpoint --test accounts --test routing --test operations 2>&1 | tee "$SHARE_LOG_FILE"
SHARE_STATUS=${PIPESTATUS[0]}
set -e
cat "$SHARE_LOG_FILE" >>"$RUST_LOG_FILE"
if ((SHARE_STATUS != 0)); then RUST_STATUS=$SHARE_STATUS; fi

say "building rwproxy for the Python tests"
set +e
cargo build -p rwproxy 2>&1 | tail -n 3
BUILD_STATUS=${PIPESTATUS[0]}
set -e

say "pytest integration/python"
set +e
if ((BUILD_STATUS == 0)); then
    "$PYTHON" -m pytest -p no:cacheprovider -q integration/python 2>&1 | tee "$PY_LOG_FILE"
    PY_STATUS=${PIPESTATUS[0]}
else
    echo "skipped: rwproxy did not build" | tee "$PY_LOG_FILE"
    PY_STATUS=1
fi
set -e
# pytest exits 5 when it collected no test: that is a failure here.
if ((PY_STATUS == 5)); then
    echo "pytest collected no test" >&2
fi

# ---------------------------------------------------------------- differential
# Client libraries (Python, Node, PHP, Java) run the same scenarios directly against the primary
# and through rwproxy; any difference not listed in docs/compatibility.md fails.
say "differential: client libraries directly vs. through rwproxy"
DIFF_LOG_FILE=$LOG_DIR/differential.log
set +e
if ((BUILD_STATUS == 0)); then
    { bash integration/differential/setup.sh &&
        python3 integration/differential/run.py --proxy-bin target/debug/rwproxy; } 2>&1 | tee "$DIFF_LOG_FILE"
    DIFF_STATUS=${PIPESTATUS[0]}
else
    echo "skipped: rwproxy did not build" | tee "$DIFF_LOG_FILE"
    DIFF_STATUS=1
fi
set -e
# The same scenarios against the Galera cluster: directly on the writer vs. through rwproxy in
# `topology: galera`.
say "differential on Galera: client libraries directly on the writer vs. through rwproxy"
GALERA_DIFF_LOG_FILE=$LOG_DIR/differential-galera.log
set +e
if ((BUILD_STATUS == 0)); then
    python3 integration/differential/run.py --cluster galera --proxy-bin target/debug/rwproxy 2>&1 |
        tee "$GALERA_DIFF_LOG_FILE"
    GALERA_DIFF_STATUS=${PIPESTATUS[0]}
else
    echo "skipped: rwproxy did not build" | tee "$GALERA_DIFF_LOG_FILE"
    GALERA_DIFF_STATUS=1
fi
set -e
if ((GALERA_DIFF_STATUS != 0)); then DIFF_STATUS=$GALERA_DIFF_STATUS; fi
# And on the replication cluster with every session on one shared connection per backend.
say "differential with connection sharing, max_per_backend: 1"
SHARE_DIFF_LOG_FILE=$LOG_DIR/differential-sharing.log
set +e
if ((BUILD_STATUS == 0)); then
    python3 integration/differential/run.py --proxy-bin target/debug/rwproxy \
        --pool "$RWPROXY_SHARED_POOL" 2>&1 | tee "$SHARE_DIFF_LOG_FILE"
    SHARE_DIFF_STATUS=${PIPESTATUS[0]}
else
    echo "skipped: rwproxy did not build" | tee "$SHARE_DIFF_LOG_FILE"
    SHARE_DIFF_STATUS=1
fi
set -e
if ((SHARE_DIFF_STATUS != 0)); then DIFF_STATUS=$SHARE_DIFF_STATUS; fi
# Cells of both runs, summed.
read -r DIFF_PASSED DIFF_FAILED DIFF_SKIPPED < <(
    for log in "$DIFF_LOG_FILE" "$GALERA_DIFF_LOG_FILE" "$SHARE_DIFF_LOG_FILE"; do
        sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$log" | tail -n 1
    done | awk '{p += $1; f += $2; s += $3} END {print p + 0, f + 0, s + 0}'
)
if ((DIFF_STATUS != 0 && DIFF_FAILED == 0)); then DIFF_FAILED=1; fi

# ---------------------------------------------------------------- client library suite
# MariaDB Connector/Python's own test suite (fetched from PyPI) runs directly and through
# rwproxy; every test must have the same outcome on both sides (docs/compatibility.md).
say "client library test suite: directly vs. through rwproxy"
SUITE_LOG_FILE=$LOG_DIR/client-suite.log
set +e
if ((BUILD_STATUS == 0)); then
    RWPROXY_BIN=$REPO_ROOT/target/debug/rwproxy bash integration/client-suite/run.sh 2>&1 | tee "$SUITE_LOG_FILE"
    SUITE_STATUS=${PIPESTATUS[0]}
else
    echo "skipped: rwproxy did not build" | tee "$SUITE_LOG_FILE"
    SUITE_STATUS=1
fi
set -e
read -r SUITE_PASSED SUITE_FAILED < <(
    sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$SUITE_LOG_FILE" |
        tail -n 1 | awk '{print $1 + 0, $2 + 0} END {if (NR == 0) print 0, 0}'
)
if ((SUITE_STATUS != 0 && SUITE_FAILED == 0)); then SUITE_FAILED=1; fi

# ---------------------------------------------------------------- fuzzing
# The parsers of network input under libFuzzer for a short fixed time each, from the checked-in
# corpus (integration/fuzz.sh; the long runs are recorded in docs/benchmarks.md).
say "fuzzing: framing, compression, handshake, replies, classifier, session text (${RWPROXY_FUZZ_SECONDS:-15} s each)"
FUZZ_LOG_FILE=$LOG_DIR/fuzz.log
set +e
bash integration/fuzz.sh --seconds "${RWPROXY_FUZZ_SECONDS:-15}" 2>&1 | tee "$FUZZ_LOG_FILE"
FUZZ_STATUS=${PIPESTATUS[0]}
set -e
read -r FUZZ_PASSED FUZZ_FAILED < <(
    sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$FUZZ_LOG_FILE" |
        tail -n 1 | awk '{print $1 + 0, $2 + 0} END {if (NR == 0) print 0, 0}'
)
if ((FUZZ_STATUS != 0 && FUZZ_FAILED == 0)); then FUZZ_FAILED=1; fi

# ---------------------------------------------------------------- summary

# Sum "test result: ok. N passed; M failed; K ignored" lines of cargo test.
read -r RUST_PASSED RUST_FAILED RUST_IGNORED < <(
    sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' \
        "$RUST_LOG_FILE" | awk '{p += $1; f += $2; i += $3} END {print p + 0, f + 0, i + 0}'
)
# pytest's last line, e.g. "3 failed, 40 passed, 2 skipped in 1.2s".
PY_LINE=$(grep -E '(passed|failed|error)' "$PY_LOG_FILE" | tail -n 1 || true)
py_count() { sed -n "s/.*\b\([0-9][0-9]*\) $1.*/\1/p" <<<"$PY_LINE" | head -n 1; }
PY_PASSED=$(py_count passed)
PY_FAILED=$(py_count failed)
PY_ERRORS=$(py_count 'errors\{0,1\}')
PY_SKIPPED=$(py_count skipped)
PY_PASSED=${PY_PASSED:-0} PY_FAILED=${PY_FAILED:-0} PY_ERRORS=${PY_ERRORS:-0} PY_SKIPPED=${PY_SKIPPED:-0}

status_word() { if (($1 == 0)); then echo ok; else echo "FAILED (exit $1)"; fi; }
say "summary"
echo "rust:   $(status_word "$RUST_STATUS"): $RUST_PASSED passed, $RUST_FAILED failed, $RUST_IGNORED ignored (log: $RUST_LOG_FILE)"
echo "python: $(status_word "$PY_STATUS"): $PY_PASSED passed, $((PY_FAILED + PY_ERRORS)) failed, $PY_SKIPPED skipped (log: $PY_LOG_FILE)"
echo "deploy: $(status_word "$DEPLOY_STATUS"): docker-compose.yml, the container's configuration, the Galera demo configuration, the Kubernetes manifests"
echo "differential: $(status_word "$DIFF_STATUS"): $DIFF_PASSED passed, $DIFF_FAILED failed, $DIFF_SKIPPED unsupported (library x scenario, replication, Galera, replication with one shared connection per backend; logs: $DIFF_LOG_FILE, $GALERA_DIFF_LOG_FILE, $SHARE_DIFF_LOG_FILE)"
echo "client-suite: $(status_word "$SUITE_STATUS"): $SUITE_PASSED passed, $SUITE_FAILED failed (Connector/Python tests with the same outcome directly and through rwproxy; log: $SUITE_LOG_FILE)"
echo "fuzz:   $(status_word "$FUZZ_STATUS"): $FUZZ_PASSED passed, $FUZZ_FAILED failed (targets without a crash; log: $FUZZ_LOG_FILE)"

if ((DOWN)); then
    say "stopping the clusters"
    bash integration/cluster.sh down
    bash integration/galera.sh down || true
fi

TOTAL_PASSED=$((RUST_PASSED + PY_PASSED + DIFF_PASSED + SUITE_PASSED + FUZZ_PASSED))
TOTAL_FAILED=$((RUST_FAILED + PY_FAILED + PY_ERRORS + DIFF_FAILED + SUITE_FAILED + FUZZ_FAILED))
echo
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
if ((RUST_STATUS != 0 || PY_STATUS != 0 || BUILD_STATUS != 0 || DEPLOY_STATUS != 0 || DIFF_STATUS != 0 || SUITE_STATUS != 0 || FUZZ_STATUS != 0)); then
    exit 1
fi
