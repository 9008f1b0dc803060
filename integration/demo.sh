#!/usr/bin/env bash
# Demo: the local MariaDB cluster plus a release build of rwproxy in front of it,
# listening on 127.0.0.1:6033 in the foreground (Ctrl-C stops the proxy; the cluster
# stays up, stop it with `integration/cluster.sh down`).
#
#   integration/demo.sh            primary and two replicas (integration/cluster.sh),
#                                  proxy-config.yaml
#   integration/demo.sh --galera   a three-node Galera cluster (integration/galera.sh),
#                                  deploy/galera/proxy-config.yaml
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

if [[ ${1:-} == --galera ]]; then
    CLUSTER=integration/galera.sh
    CONFIG=${RWPROXY_CONFIG:-$REPO_ROOT/deploy/galera/proxy-config.yaml}
else
    CLUSTER=integration/cluster.sh
    CONFIG=${RWPROXY_CONFIG:-$REPO_ROOT/proxy-config.yaml}
fi

bash "$CLUSTER" up
cargo build --release -p rwproxy

# Ports, users and passwords of the cluster (APP_DB_PASSWORD, MONITOR_PASSWORD, ...).
eval "$(bash "$CLUSTER" env)"
export APP_DB_PASSWORD MONITOR_PASSWORD

if (exec 3<>/dev/tcp/127.0.0.1/6033) 2>/dev/null; then
    echo "demo.sh: something already listens on 127.0.0.1:6033; stop it first" >&2
    exit 1
fi

if [[ $CLUSTER == integration/galera.sh ]]; then
    SERVERS="Galera nodes 127.0.0.1:$RWPROXY_NODE0_PORT, $RWPROXY_NODE1_PORT and $RWPROXY_NODE2_PORT"
    TRY="SELECT @@wsrep_node_name"
else
    SERVERS="primary  127.0.0.1:$RWPROXY_PRIMARY_PORT, replicas 127.0.0.1:$RWPROXY_REPLICA1_PORT and 127.0.0.1:$RWPROXY_REPLICA2_PORT"
    TRY="SELECT @@server_id"
fi
cat <<EOF2

rwproxy is starting on 127.0.0.1:6033 with $CONFIG
  $SERVERS

Connect from another terminal:
  mariadb -h127.0.0.1 -P6033 -u$APP_DB_USER -p$APP_DB_PASSWORD app -e '$TRY'

Admin endpoint: http://127.0.0.1:9033/backends   Cluster status: $CLUSTER status
Ctrl-C stops the proxy.

EOF2
exec "$REPO_ROOT/target/release/rwproxy" --config "$CONFIG"
