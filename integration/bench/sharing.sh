#!/usr/bin/env bash
# Connection sharing (issue #15), side by side in one run, on a cluster of its own: 1,000 client
# connections with a few dozen statements in flight through rwproxy with
# pool.max_per_backend: 32 (server threads per backend, statements/s, errors, borrow waits),
# sysbench oltp_point_select at 8, 256 and 512 threads (rwproxy pooled vs the primary directly
# vs rwproxy without pooling; CPU per query), and connect-per-request. Writes its figures into
# docs/benchmarks.md between <!-- bench:sharing:start --> and <!-- bench:sharing:end -->.
#
#   integration/bench/sharing.sh [--rounds N] [--time SECONDS] [--threads 256,512]
#                                [--clients N] [--in-flight N] [--many-time SECONDS] [--cap N]
#                                [--cluster NAME] [--base-port N] [--quick] [--no-doc] [--down]
#
#   --rounds N          interleaved rounds of the sysbench matrix and of connect-per-request
#                       (default 5; figures are medians over the rounds)
#   --time SECONDS      one sysbench run (default 15)
#   --threads LIST      the many-thread sysbench cells (default 256,512; 8 is always run, for
#                       CPU per query)
#   --clients N         client connections of the first part (default 1000)
#   --in-flight N       statements outstanding at every moment in the first part (default 40)
#   --many-time SECONDS length of the first part, per target (default 30)
#   --cap N             pool.max_per_backend of the pooled rwproxy (default 32)
#   --cluster NAME      the cluster (default bench-share), created with --base-port (default
#                       3670: ports 3670-3672) if it does not exist
#   --quick             a short look: 1 round of 5 s runs, 10 s first part, 100 requests
#   --no-doc            print the section, leave docs/benchmarks.md alone
#   --down              stop the cluster at the end
#
# rwproxy (release build of this checkout; CARGO_TARGET_DIR is honoured) listens on
# 127.0.0.1:6371-6374, admin 9371-9374. max_connections of the cluster's servers is raised to
# 2000 with SET GLOBAL when lower. Takes about 25 minutes with the defaults.
# A report, not a test: it exits non-zero only if the harness itself fails.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
CLUSTER=bench-share
BASE_PORT=3670
DOWN=0
ARGS=()
COMMAND="integration/bench/sharing.sh${*:+ $*}"
while (($#)); do
    case $1 in
    --rounds | --time | --threads | --clients | --in-flight | --many-time | --cap)
        ARGS+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    --cluster) CLUSTER=${2:?--cluster needs a value}; shift 2 ;;
    --base-port) BASE_PORT=${2:?--base-port needs a value}; shift 2 ;;
    --quick) ARGS+=(--rounds 1 --time 5 --many-time 10 --cpr-requests 100); shift ;;
    --no-doc) ARGS+=(--no-doc); shift ;;
    --down) DOWN=1; shift ;;
    -h | --help) sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sharing.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
export DEBIAN_FRONTEND=noninteractive
cd "$REPO_ROOT"
mkdir -p "$SCRATCH"
say() { printf '==> %s\n' "$*" >&2; }
die() { echo "sharing.sh: $*" >&2; exit 1; }

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
command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c 'import pymysql' 2>/dev/null || { say "installing PyMySQL"; apt_install python3-pymysql; }

for port in 6371 6372 6373 6374 9371 9372 9373 9374; do
    if ss -Hltn "sport = :$port" | grep -q .; then
        die "port $port is already in use (an earlier run still going?)"
    fi
done
# 1,000 clients without pooling: 1,000 client sockets and up to 2,000 backend ones in rwproxy.
if [[ $(ulimit -Hn) != unlimited ]] && (($(ulimit -Hn) < 16384)); then
    ulimit -Hn 16384 2>/dev/null || die "cannot raise the open-file limit to 16384"
fi
ulimit -Sn 16384

say "starting the cluster $CLUSTER"
bash integration/cluster.sh up --name "$CLUSTER" --base-port "$BASE_PORT" >/dev/null
if ((DOWN)); then
    trap 'bash integration/cluster.sh down --name "$CLUSTER" >/dev/null || true' EXIT
fi
say "building rwproxy (release)"
cargo build --release -q -p rwproxy
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO_ROOT/$TARGET_DIR

python3 integration/bench/sharing.py --rwproxy-bin "$TARGET_DIR/release/rwproxy" --cluster "$CLUSTER" \
    --scratch "$SCRATCH" --command "$COMMAND" "${ARGS[@]}"
