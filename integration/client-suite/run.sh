#!/usr/bin/env bash
# Runs a client library's own test suite twice, directly against the MariaDB primary and
# through rwproxy, with the same account, and compares the outcomes test by test.
#
#   integration/client-suite/run.sh [-- PYTEST_ARGS...]
#
# The suite is MariaDB Connector/Python's (PyPI package `mariadb`, pinned below): its sdist
# ships testing/test/integration. It is fetched from PyPI into the scratch directory
# (${RWPROXY_SCRATCH:-<repo>/.scratch}/client-suite), built against Debian's Connector/C into a
# virtualenv there, and never committed. Tests that fail directly are listed in
# known-direct-failures.txt. Ends with `N passed, M failed` (N: tests whose outcome through
# rwproxy equals the direct one, M: those that differ) and exits non-zero when M > 0.
#
# Environment: RWPROXY_BIN (default <repo>/target/debug/rwproxy), RWPROXY_SCRATCH.
# Extra arguments after `--` go to both pytest runs (e.g. `-k change_user`).
set -euo pipefail

SUITE_PACKAGE=mariadb
SUITE_VERSION=1.1.14
SUITE_SHA256=e6d702a53eccf20922e47f2f45cfb5c7a0c2c6c0a46e4ee2d8a80d0ff4a52f34
PYTEST_PINS=(pytest==9.2.0 pytest-timeout==2.4.0)

# The dedicated account and the schemas the suite uses (testp is its default database; test,
# test1, test123 and 中文考试 are named inside tests; `unknown` exists as a grant only, so that
# connecting to it gets "Unknown database" as the test expects, not "Access denied").
SUITE_USER=rwproxy_suite
SUITE_PASSWORD=rwproxy_suite_pass
SUITE_DB=testp
SUITE_SCHEMAS=(testp test test1 test123 中文考试 unknown)

# Deselected in both runs (so not compared), each with its reason:
DESELECT=(
    # connects to 8.8.8.8 to provoke a connect timeout: this machine only talks to loopback.
    test/integration/test_exception.py::TestException::test_conn_timeout_exception
    # resolves the host name "non_existant" through the network's DNS server: loopback only.
    test/integration/test_connection.py::TestConnection::test_multi_host
)

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$HERE/../.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
WORK=$SCRATCH/client-suite
RWPROXY_BIN=${RWPROXY_BIN:-$REPO_ROOT/target/debug/rwproxy}
EXTRA_ARGS=()
if [[ ${1:-} == -- ]]; then
    shift
    EXTRA_ARGS=("$@")
elif [[ $# -gt 0 ]]; then
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1
export DEBIAN_FRONTEND=noninteractive
mkdir -p "$WORK"

say() { printf '\n==> client-suite: %s\n' "$*"; }
fail() {
    echo "client-suite: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}
apt_install() {
    [[ $(id -u) -eq 0 ]] || fail "need these packages, and not root: $*"
    if [[ -z ${APT_UPDATED:-} ]]; then
        apt-get update -q
        APT_UPDATED=1
    fi
    apt-get install -y -q --no-install-recommends "$@"
}

[[ -x $RWPROXY_BIN ]] || fail "$RWPROXY_BIN does not exist (cargo build -p rwproxy, or set RWPROXY_BIN)"

# ---------------------------------------------------------------- the suite and its driver

say "$SUITE_PACKAGE $SUITE_VERSION (sdist from PyPI) in $WORK"
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
command -v mariadb_config >/dev/null 2>&1 || apt_install libmariadb-dev
command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
PY_INCLUDE=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[[ -r $PY_INCLUDE/Python.h ]] || apt_install python3-dev

SDIST=$WORK/dist/$SUITE_PACKAGE-$SUITE_VERSION.tar.gz
if [[ ! -f $SDIST ]] || ! sha256sum --status -c <<<"$SUITE_SHA256  $SDIST"; then
    rm -rf "$WORK/dist"
    python3 -m pip download -q --no-deps --no-binary :all: -d "$WORK/dist" "$SUITE_PACKAGE==$SUITE_VERSION" ||
        fail "cannot download $SUITE_PACKAGE==$SUITE_VERSION from PyPI"
fi
sha256sum --status -c <<<"$SUITE_SHA256  $SDIST" || fail "$SDIST: sha256 is not $SUITE_SHA256"
SRC=$WORK/src/$SUITE_PACKAGE-$SUITE_VERSION
if [[ ! -d $SRC/testing/test/integration ]]; then
    rm -rf "$WORK/src"
    mkdir -p "$WORK/src"
    tar -xzf "$SDIST" -C "$WORK/src"
fi

VENV=$WORK/venv
VPY=$VENV/bin/python
STAMP="$SUITE_PACKAGE==$SUITE_VERSION ${PYTEST_PINS[*]} $(python3 -V 2>&1)"
if [[ ! -x $VPY || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$STAMP" ]]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV" 2>/dev/null || {
        apt_install python3-venv
        python3 -m venv "$VENV"
    }
    # The driver is built from the same verified sdist whose tests are run.
    "$VPY" -m pip install -q "$SDIST" "${PYTEST_PINS[@]}" || fail "cannot install $SUITE_PACKAGE and pytest"
    echo "$STAMP" >"$VENV/.stamp"
fi
"$VPY" -c 'import mariadb; print("mariadb", mariadb.__version__, "on Connector/C", mariadb.mariadbapi_version)'

# ---------------------------------------------------------------- cluster and account

say "cluster and the suite's account"
bash "$REPO_ROOT/integration/cluster.sh" up >/dev/null
eval "$(bash "$REPO_ROOT/integration/cluster.sh" env)"
PRIMARY=$RWPROXY_PRIMARY_PORT
admin_sql() {
    mariadb --protocol=TCP -h127.0.0.1 -P"$PRIMARY" -u"$ADMIN_DB_USER" -p"$ADMIN_DB_PASSWORD" \
        --default-character-set=utf8mb4 -N -e "$1"
}
# No SUPER, READ_ONLY ADMIN or other global admin privilege: CREATE USER (the suite creates and
# drops accounts for change_user and ed25519) and everything on its own schemas only.
sql="CREATE USER IF NOT EXISTS '$SUITE_USER'@'127.0.0.1' IDENTIFIED BY '$SUITE_PASSWORD';"
sql+="ALTER USER '$SUITE_USER'@'127.0.0.1' IDENTIFIED BY '$SUITE_PASSWORD';"
sql+="GRANT CREATE USER ON *.* TO '$SUITE_USER'@'127.0.0.1';"
for db in "${SUITE_SCHEMAS[@]}"; do
    sql+="GRANT ALL PRIVILEGES ON \`$db\`.* TO '$SUITE_USER'@'127.0.0.1' WITH GRANT OPTION;"
done
admin_sql "$sql" || fail "cannot create the account $SUITE_USER"

# Each run starts from the same state: fresh default database, no leftovers of the other run.
reset_schemas() {
    admin_sql "DROP DATABASE IF EXISTS \`$SUITE_DB\`; CREATE DATABASE \`$SUITE_DB\`;
        DROP DATABASE IF EXISTS test1; DROP DATABASE IF EXISTS test123;
        DROP DATABASE IF EXISTS \`中文考试\`; DROP USER IF EXISTS foo@'%', eduser@'%';"
}

# ---------------------------------------------------------------- rwproxy

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PROXY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
CONFIG=$WORK/rwproxy.yaml
PROXY_LOG=$WORK/rwproxy.log
{
    echo "listen: 127.0.0.1:$PROXY_PORT"
    echo "max_allowed_packet: 64MiB"
    # Every account comes from the primary's mysql.global_priv, like the server's own check,
    # so the accounts the suite creates log in (and change_user to them) as they do directly.
    echo "users_from_backend: true"
    echo "accounts_refresh_interval: 1s"
    echo "backends:"
    for ((i = 0; i < RWPROXY_CLUSTER_NODES; i++)); do
        port_var=RWPROXY_NODE${i}_PORT
        echo "  - { name: \"db$((i + 1))\", address: \"127.0.0.1:${!port_var}\", weight: 1 }"
    done
    echo "timeouts: { connect: 1s, handshake: 5s }"
    # The server offers TLS (the cluster's certificate), so rwproxy offers it too: the suite's
    # ssl=True connections must work the same way.
    tls_dir=$RWPROXY_CLUSTER_DIR/tls
    if [[ -r $tls_dir/server-cert.pem && -r $tls_dir/server-key.pem ]]; then
        echo "tls: { cert: \"$tls_dir/server-cert.pem\", key: \"$tls_dir/server-key.pem\", require_tls: false }"
    fi
    echo "monitor:"
    echo "  user: \"$MONITOR_USER\""
    echo "  password: \"$MONITOR_PASSWORD\""
    echo "  interval: 200ms"
    echo "  timeout: 1s"
    echo "admin: { listen: 127.0.0.1:$ADMIN_PORT }"
    echo "log: { format: text, level: info }"
} >"$CONFIG"

PROXY_PID=
cleanup() {
    if [[ -n $PROXY_PID ]] && kill -0 "$PROXY_PID" 2>/dev/null; then
        kill "$PROXY_PID" 2>/dev/null || true
        wait "$PROXY_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
"$RWPROXY_BIN" --config "$CONFIG" </dev/null >"$PROXY_LOG" 2>&1 &
PROXY_PID=$!
for ((i = 0; i < 200; i++)); do
    kill -0 "$PROXY_PID" 2>/dev/null || fail "rwproxy exited: $(tail -n 20 "$PROXY_LOG")"
    if (echo >"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null; then break; fi
    sleep 0.1
done
(echo >"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null || fail "rwproxy does not listen on $PROXY_PORT"
# Let the monitor find the primary and the replicas before the first statement.
for ((i = 0; i < 50; i++)); do
    if curl -fsS "http://127.0.0.1:$ADMIN_PORT/backends" 2>/dev/null | grep -q primary; then break; fi
    sleep 0.1
done
echo "$("$RWPROXY_BIN" --version 2>/dev/null || echo rwproxy) on 127.0.0.1:$PROXY_PORT (config $CONFIG, log $PROXY_LOG)"

# ---------------------------------------------------------------- the two runs

run_suite() { # side port
    local side=$1 port=$2 args=()
    for t in "${DESELECT[@]}"; do args+=(--deselect "$t"); done
    reset_schemas || fail "cannot reset the suite's schemas"
    say "the suite $side (127.0.0.1:$port)"
    rm -f "$WORK/$side.json"
    # The suite reads its connection from TEST_DB_*; `srv` (MaxScale mode) must stay unset:
    # the same tests run on both sides. Run from testing/ (a test writes ./client.cnf there).
    (
        cd "$SRC/testing"
        unset srv TEST_REQUIRE_TLS TEST_RESET_SESSION TEST_MODULE LOCAL_DB
        TEST_DB_HOST=127.0.0.1 TEST_DB_PORT=$port TEST_DB_USER=$SUITE_USER \
            TEST_DB_PASSWORD=$SUITE_PASSWORD TEST_DB_DATABASE=$SUITE_DB \
            CLIENT_SUITE_OUTCOMES=$WORK/$side.json PYTHONPATH=$HERE \
            timeout -k 10 600 "$VPY" -m pytest -p no:cacheprovider -p outcomes_plugin \
            --rootdir=. --timeout=60 -q -rfEs "${args[@]}" "${EXTRA_ARGS[@]}" test/integration
    ) 2>&1 | tee "$WORK/$side.log" | grep -E '^(FAILED|ERROR) | in [0-9.]+s( \([0-9:]+\))?$' || true
}
run_suite direct "$PRIMARY"
run_suite proxied "$PROXY_PORT"
cleanup

say "comparison (logs: $WORK/direct.log, $WORK/proxied.log, $PROXY_LOG)"
set +e
python3 "$HERE/compare.py" "$WORK/direct.json" "$WORK/proxied.json" "$HERE/known-direct-failures.txt"
status=$?
set -e
exit "$status"
