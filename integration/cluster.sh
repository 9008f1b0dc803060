#!/usr/bin/env bash
# A local MariaDB GTID replication cluster for rwproxy's tests and demo:
# one primary and two read_only replicas, all bound to 127.0.0.1.
#
#   integration/cluster.sh {up|down|status|env} [--name NAME] [--base-port N] [--tls-only] [--wipe]
#   integration/cluster.sh promote NODE [--name NAME]
#
# Node i listens on base-port + i (node0 is the primary until `promote` makes another one the
# primary, the way an operator or an orchestrator fails over; remembered in primary-node). With --tls-only (chosen when the
# cluster is created, remembered after) every node has require_secure_transport=ON and the
# replicas replicate over verified TLS. Every file of a cluster
# lives under ${RWPROXY_SCRATCH:-<repo>/.scratch}/cluster-<name>/. The distro's own
# MariaDB service, its datadir and port 3306 are never touched.
set -euo pipefail

readonly NODES=3
readonly APP_USER=app APP_PASSWORD=app_pass
readonly MONITOR_USER=monitor MONITOR_PASSWORD=monitor_pass
readonly ADMIN_USER=admin ADMIN_PASSWORD=admin_pass
readonly REPL_USER=repl REPL_PASSWORD=repl_pass

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}

usage() {
    cat <<'EOF'
usage: integration/cluster.sh COMMAND [--name NAME] [--base-port N] [--tls-only] [--wipe]

commands:
  up       create and/or start the cluster (idempotent; repairs a half-started one)
  down     stop the cluster's servers (data kept unless --wipe)
  status   per node: port, role, read_only, replication threads, lag, gtid_current_pos
  env      print shell export lines (ports, sockets, users, passwords)
  promote NODE
           external failover/switchover to node NODE (0-2): the old primary, if it runs, is
           set read_only and NODE waits for all it wrote; NODE stops replicating and becomes
           writable; every other running node (the old primary included) replicates from it
           with GTIDs. A dead old primary is repointed by the next `up`.

options:
  --name NAME       cluster name (default: main)
  --base-port N     primary port; replicas use N+1 and N+2 (default: 3316)
  --tls-only        with up, for a new cluster: require_secure_transport=ON on every node
                    (TCP clients must use TLS; the cluster's CA is tls/ca.pem) and replication
                    over verified TLS; remembered, so later commands need only --name
  --wipe            with down: also delete the cluster's data
EOF
}

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

log() {
    echo "cluster.sh[$NAME]: $*" >&2
}

# ---------------------------------------------------------------- arguments

COMMAND=${1:-}
[[ -n $COMMAND ]] || {
    usage >&2
    exit 2
}
shift
PROMOTE_NODE=
if [[ $COMMAND == promote ]]; then
    PROMOTE_NODE=${1:-}
    [[ $PROMOTE_NODE =~ ^[0-9]+$ ]] || die "usage: cluster.sh promote NODE [--name NAME]"
    shift
fi
NAME=main
BASE_PORT=
WIPE=0
TLS_ONLY=0
while (($#)); do
    case $1 in
    --name) NAME=${2:?--name needs a value}; shift 2 ;;
    --name=*) NAME=${1#*=}; shift ;;
    --base-port) BASE_PORT=${2:?--base-port needs a value}; shift 2 ;;
    --base-port=*) BASE_PORT=${1#*=}; shift ;;
    --wipe) WIPE=1; shift ;;
    --tls-only) TLS_ONLY=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ $NAME =~ ^[A-Za-z0-9_-]+$ ]] || die "invalid cluster name '$NAME' (letters, digits, _ and - only)"

CDIR=$SCRATCH/cluster-$NAME
LOCK_FILE=$SCRATCH/cluster-$NAME.lock
PORT_FILE=$CDIR/base-port
PRIMARY_FILE=$CDIR/primary-node

# The base port is remembered at creation so that later commands need only --name.
if [[ -f $PORT_FILE ]]; then
    STORED_PORT=$(<"$PORT_FILE")
    if [[ -n $BASE_PORT && $BASE_PORT != "$STORED_PORT" ]]; then
        die "cluster '$NAME' was created with --base-port $STORED_PORT; use that, or run 'down --wipe' first"
    fi
    BASE_PORT=$STORED_PORT
fi
BASE_PORT=${BASE_PORT:-3316}
# TLS-only is chosen at creation too: an existing cluster keeps the mode it was made with.
TLS_ONLY_FILE=$CDIR/tls-only
if [[ -f $PORT_FILE ]]; then
    if [[ -f $TLS_ONLY_FILE ]]; then
        TLS_ONLY=1
    elif ((TLS_ONLY)) && [[ $COMMAND == up ]]; then
        die "cluster '$NAME' was created without --tls-only; run 'down --wipe' first"
    fi
fi
[[ $BASE_PORT =~ ^[0-9]+$ ]] || die "invalid --base-port '$BASE_PORT'"
((BASE_PORT >= 1024 && BASE_PORT + NODES - 1 <= 65535)) || die "--base-port out of range: $BASE_PORT"
if ((BASE_PORT <= 3306 && 3306 < BASE_PORT + NODES)); then
    die "port 3306 belongs to the system MariaDB; choose another --base-port"
fi

# ---------------------------------------------------------------- node layout

node_dir() { echo "$CDIR/node$1"; }
# The node that is the primary (0 unless `promote` chose another).
primary_node() {
    local p=0
    [[ -f $PRIMARY_FILE ]] && p=$(<"$PRIMARY_FILE")
    [[ $p =~ ^[0-9]+$ ]] && ((p < NODES)) || p=0
    echo "$p"
}
# Every node but the primary.
replica_nodes() {
    local node p
    p=$(primary_node)
    for ((node = 0; node < NODES; node++)); do
        ((node == p)) || echo "$node"
    done
}
node_port() { echo $((BASE_PORT + $1)); }
node_cnf() { echo "$CDIR/node$1/my.cnf"; }
node_pidfile() { echo "$CDIR/node$1/mariadbd.pid"; }
node_errlog() { echo "$CDIR/node$1/error.log"; }

# Unix socket paths are limited to ~107 bytes; fall back to /tmp for deep checkouts.
node_socket() {
    local sock="$CDIR/node$1/mariadbd.sock"
    if ((${#sock} > 100)); then
        sock="/tmp/rwproxy-cluster-$NAME-node$1.sock"
    fi
    echo "$sock"
}

# ---------------------------------------------------------------- helpers

have_mariadb() {
    command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]]
}

ensure_mariadb_installed() {
    have_mariadb && command -v mariadb >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1 && return 0
    [[ $(id -u) -eq 0 ]] || die "MariaDB is not installed and we are not root; install mariadb-server and mariadb-client"
    log "installing mariadb-server and mariadb-client with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends mariadb-server mariadb-client >&2
}

mariadbd_bin() {
    if command -v mariadbd >/dev/null 2>&1; then command -v mariadbd; else echo /usr/sbin/mariadbd; fi
}

# sql NODE SQL... : run statements as root over the node's socket; batch output, no headers.
sql() {
    local node=$1
    shift
    timeout 30 mariadb --no-defaults --protocol=socket --socket="$(node_socket "$node")" -uroot \
        --connect-timeout=3 -N -B -e "$*"
}

# sql_vertical NODE SQL : like sql but one "Field: value" line per column.
sql_vertical() {
    local node=$1
    shift
    timeout 30 mariadb --no-defaults --protocol=socket --socket="$(node_socket "$node")" -uroot \
        --connect-timeout=3 -E -e "$*"
}

# The pid of the node's mariadbd if it is running, else nothing (exit status 1).
node_pid() {
    local pidfile pid
    pidfile=$(node_pidfile "$1")
    [[ -f $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: the process must be our mariadbd with our config.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(node_cnf "$1")" || return 1
    echo "$pid"
}

node_ping() {
    timeout 5 mariadb-admin --no-defaults --protocol=socket --socket="$(node_socket "$1")" -uroot \
        --connect-timeout=2 ping >/dev/null 2>&1
}

write_cnf() {
    local node=$1 dir read_only=OFF
    dir=$(node_dir "$node")
    ((node != $(primary_node))) && read_only=ON
    cat >"$(node_cnf "$node")" <<EOF
# Generated by integration/cluster.sh for cluster '$NAME', node $node. Rewritten on every 'up'.
[mariadbd]
datadir                   = $dir/data
port                      = $(node_port "$node")
socket                    = $(node_socket "$node")
pid-file                  = $(node_pidfile "$node")
log-error                 = $(node_errlog "$node")
tmpdir                    = $dir/tmp
bind-address              = 127.0.0.1
server_id                 = $((node + 1))
log_bin                   = mariadb-bin
log_bin_index             = mariadb-bin.index
relay_log                 = relay-bin
relay_log_index           = relay-bin.index
log_slave_updates         = ON
gtid_strict_mode          = ON
binlog_format             = ROW
read_only                 = $read_only
skip-name-resolve
local_infile              = ON
character_set_server      = utf8mb4
collation_server          = utf8mb4_general_ci
max_allowed_packet        = 256M
max_connections           = 1000
slave_net_timeout         = 10
innodb_buffer_pool_size   = 64M
innodb_log_file_size      = 32M
innodb_flush_log_at_trx_commit = 2
sync_binlog               = 0
# Tests write many 20 MiB rows (large-packet and compression cases), several GiB of binlog per
# run on every node. Keep binlogs small and short-lived: a file is purged 3 minutes after it is
# rotated out (never one a connected replica is still reading). A replica rebuilt from scratch
# therefore needs the whole cluster rebuilt, which cmd_up does.
max_binlog_size           = 128M
binlog_expire_logs_seconds = 180
performance_schema        = OFF
EOF
    # TLS is offered (never required) when the cluster's certificate exists; see ensure_tls_files.
    if [[ -r $CDIR/tls/server-cert.pem && -r $CDIR/tls/server-key.pem ]]; then
        printf 'ssl_cert                  = %s\nssl_key                   = %s\n' \
            "$CDIR/tls/server-cert.pem" "$CDIR/tls/server-key.pem" >>"$(node_cnf "$node")"
    fi
    # --tls-only: TCP logins without TLS are refused (the Unix socket stays usable by root).
    if ((TLS_ONLY)); then
        printf 'require_secure_transport  = ON\n' >>"$(node_cnf "$node")"
    fi
}

# A test CA and a server certificate it signed for 127.0.0.1 and localhost, shared by the nodes,
# so clients may ask for TLS and verify it (ca.pem): integration/differential compares results
# over TLS, and rwproxy's backend_tls tests verify each backend. Skipped without openssl.
ensure_tls_files() {
    local d=$CDIR/tls
    [[ -r $d/ca.pem && -r $d/server-cert.pem && -r $d/server-key.pem ]] && return 0
    command -v openssl >/dev/null 2>&1 || return 0
    mkdir -p "$d"
    local tmp
    tmp=$(mktemp -d "$d/new.XXXXXX")
    if ! {
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=rwproxy test CA" \
            -keyout "$tmp/ca-key.pem" -out "$tmp/ca.pem" &&
            openssl req -newkey rsa:2048 -nodes -subj "/CN=rwproxy test cluster" \
                -keyout "$tmp/server-key.pem" -out "$tmp/server.csr" &&
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tmp/ext.cnf" &&
            openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" \
                -CAcreateserial -days 3650 -extfile "$tmp/ext.cnf" -out "$tmp/server-cert.pem"
    } >/dev/null 2>&1; then
        rm -rf "$tmp"
        return 0
    fi
    chmod 644 "$tmp/server-key.pem"
    mv "$tmp/server-key.pem" "$d/server-key.pem"
    mv "$tmp/server-cert.pem" "$d/server-cert.pem"
    mv "$tmp/ca-key.pem" "$d/ca-key.pem"
    mv "$tmp/ca.pem" "$d/ca.pem"
    rm -rf "$tmp"
}

# A pristine system datadir; every node starts as a copy, so all begin with an empty GTID state.
ensure_template() {
    local tpl=$CDIR/template
    [[ -d $tpl ]] && return 0
    rm -rf "$tpl.tmp" "$CDIR/install-tmp"
    mkdir -p "$tpl.tmp" "$CDIR/install-tmp"
    local user_opt=()
    [[ $(id -u) -eq 0 ]] && user_opt=(--user=root)
    log "initialising system tables"
    # Its own tmpdir: clusters set up at the same time must not share /tmp's temporary tables.
    if ! mariadb-install-db --no-defaults --datadir="$tpl.tmp" --tmpdir="$CDIR/install-tmp" "${user_opt[@]}" \
        --auth-root-authentication-method=socket --auth-root-socket-user="$(id -un)" \
        --skip-test-db --skip-name-resolve >"$CDIR/install.log" 2>&1; then
        cat "$CDIR/install.log" >&2
        die "mariadb-install-db failed"
    fi
    mv "$tpl.tmp" "$tpl"
}

ensure_datadir() {
    local node=$1 dir
    dir=$(node_dir "$node")
    [[ -d $dir/data ]] && return 0
    rm -rf "$dir/data.tmp"
    cp -a "$CDIR/template" "$dir/data.tmp"
    mv "$dir/data.tmp" "$dir/data"
    rm -f "$dir/provisioned"
}

# Start the node's server in its own session, detached from our stdio and lock fd.
launch_node() {
    local node=$1 user_opt=()
    [[ $(id -u) -eq 0 ]] && user_opt=(--user=root)
    rm -f "$(node_pidfile "$node")" "$(node_socket "$node")" "$(node_socket "$node").lock"
    setsid "$(mariadbd_bin)" --defaults-file="$(node_cnf "$node")" "${user_opt[@]}" \
        </dev/null >>"$(node_dir "$node")/mariadbd.out" 2>&1 9>&- &
    echo "$!" >"$(node_dir "$node")/launched.pid"
    disown 2>/dev/null || true
}

# False once the mariadbd we launched for a node has exited (or is a zombie).
launched_alive() {
    local file pid state
    file=$(node_dir "$1")/launched.pid
    [[ -f $file ]] || return 0
    pid=$(<"$file")
    [[ -r /proc/$pid/stat ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
    [[ $state != Z ]]
}

wait_node_ready() {
    local node=$1 i
    for ((i = 0; i < 600; i++)); do
        node_ping "$node" && node_pid "$node" >/dev/null && return 0
        launched_alive "$node" || break
        sleep 0.1
    done
    echo "---- tail of $(node_errlog "$node")" >&2
    tail -n 30 "$(node_errlog "$node")" >&2 2>/dev/null || true
    die "node$node (port $(node_port "$node")) did not become ready"
}

# Stop the given nodes: SIGTERM to all of them (SIGCONT first, in case a test stopped one),
# then SIGKILL whatever is still alive after 30 s.
kill_nodes() {
    local node pid pids=() i alive
    for node in "$@"; do
        pid=$(node_pid "$node") || continue
        pids+=("$pid")
        kill -CONT "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
    done
    ((${#pids[@]})) || return 0
    for ((i = 0; i < 300; i++)); do
        alive=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ignored SIGTERM for 30s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    sleep 0.5
}

# Make sure a node runs and answers; a node that is alive but mute (e.g. SIGSTOPped) is
# resumed, and restarted if it still does not answer.
ensure_running() {
    local node=$1 pid
    if pid=$(node_pid "$node"); then
        node_ping "$node" && return 0
        kill -CONT "$pid" 2>/dev/null || true
        sleep 0.5
        node_ping "$node" && return 0
        log "node$node (pid $pid) does not answer; restarting it"
        kill_nodes "$node"
    fi
    launch_node "$node"
}

provision_primary() {
    local marker
    marker=$(node_dir 0)/provisioned
    [[ -f $marker ]] && return 0
    log "creating schemas and users on the primary"
    local hosts=("127.0.0.1" "localhost") h stmts=""
    stmts+="DROP USER IF EXISTS ''@'localhost', ''@'127.0.0.1', ''@'$(hostname)';"
    stmts+="CREATE DATABASE IF NOT EXISTS app; CREATE DATABASE IF NOT EXISTS rwproxy;"
    for h in "${hosts[@]}"; do
        stmts+="CREATE USER IF NOT EXISTS '$APP_USER'@'$h' IDENTIFIED BY '$APP_PASSWORD';"
        stmts+="GRANT ALL PRIVILEGES ON app.* TO '$APP_USER'@'$h';"
        stmts+="CREATE USER IF NOT EXISTS '$MONITOR_USER'@'$h' IDENTIFIED BY '$MONITOR_PASSWORD';"
        stmts+="GRANT SLAVE MONITOR, BINLOG MONITOR, PROCESS ON *.* TO '$MONITOR_USER'@'$h';"
        stmts+="GRANT SELECT ON mysql.global_priv TO '$MONITOR_USER'@'$h';"
        stmts+="GRANT SELECT ON mysql.user TO '$MONITOR_USER'@'$h';"
        stmts+="GRANT ALL PRIVILEGES ON rwproxy.* TO '$MONITOR_USER'@'$h';"
        stmts+="CREATE USER IF NOT EXISTS '$ADMIN_USER'@'$h' IDENTIFIED BY '$ADMIN_PASSWORD';"
        stmts+="GRANT ALL PRIVILEGES ON *.* TO '$ADMIN_USER'@'$h' WITH GRANT OPTION;"
        stmts+="CREATE USER IF NOT EXISTS '$REPL_USER'@'$h' IDENTIFIED BY '$REPL_PASSWORD';"
        stmts+="GRANT REPLICATION SLAVE ON *.* TO '$REPL_USER'@'$h';"
    done
    sql 0 "$stmts"
    touch "$marker"
}

# "Field: value" from SHOW SLAVE STATUS on a node (empty when not a replica).
slave_field() {
    local node=$1 field=$2
    sql_vertical "$node" "SHOW SLAVE STATUS" 2>/dev/null |
        sed -n "s/^ *$field: //p" | head -n 1
}

attach_replica() {
    local node=$1 ssl=""
    # --tls-only: the replica's connection to the primary is TLS, verified against the CA.
    ((TLS_ONLY)) && ssl=", MASTER_SSL=1, MASTER_SSL_CA='$CDIR/tls/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1"
    if [[ -z $(slave_field "$node" Master_Host) ]]; then
        log "attaching node$node to the primary (node$(primary_node))"
        # A former primary (after `promote`) continues from its own binlog, not from nothing.
        if [[ -n $(sql "$node" "SELECT @@gtid_binlog_pos") && -z $(sql "$node" "SELECT @@gtid_slave_pos") ]]; then
            sql "$node" "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos"
        fi
        sql "$node" "SET GLOBAL read_only = ON"
        sql "$node" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$(node_port "$(primary_node)"),
            MASTER_USER='$REPL_USER', MASTER_PASSWORD='$REPL_PASSWORD',
            MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1$ssl; START SLAVE;"
    elif [[ $(slave_field "$node" Slave_IO_Running) != Yes || $(slave_field "$node" Slave_SQL_Running) != Yes ]]; then
        log "starting replication threads on node$node"
        sql "$node" "START SLAVE" || true
    fi
}

wait_caught_up() {
    local node target rc io sqlrun
    target=$(sql "$(primary_node)" "SELECT @@gtid_binlog_pos")
    for node in $(replica_nodes); do
        rc=$(sql "$node" "SELECT MASTER_GTID_WAIT('$target', 30)")
        io=$(slave_field "$node" Slave_IO_Running)
        sqlrun=$(slave_field "$node" Slave_SQL_Running)
        if [[ $rc != 0 || $io != Yes || $sqlrun != Yes ]]; then
            sql_vertical "$node" "SHOW SLAVE STATUS" >&2 || true
            die "node$node did not catch up with the primary (gtid $target)"
        fi
    done
}

cluster_healthy() {
    local node
    for ((node = 0; node < NODES; node++)); do
        node_pid "$node" >/dev/null || return 1
        node_ping "$node" || return 1
        [[ -f $(node_dir "$node")/provisioned || $node -gt 0 ]] || return 1
    done
    for node in $(replica_nodes); do
        [[ $(slave_field "$node" Slave_IO_Running) == Yes ]] || return 1
        [[ $(slave_field "$node" Slave_SQL_Running) == Yes ]] || return 1
    done
}

# ---------------------------------------------------------------- commands

cmd_up() {
    ensure_mariadb_installed
    mkdir -p "$CDIR"
    echo "$BASE_PORT" >"$PORT_FILE"
    ((TLS_ONLY)) && touch "$TLS_ONLY_FILE"
    if cluster_healthy; then
        wait_caught_up
        log "already up (ports $BASE_PORT-$((BASE_PORT + NODES - 1)))"
        return 0
    fi
    local node started=$SECONDS
    # Replicas replay the primary's binlog from an empty position, and old binlogs expire, so
    # any node rebuilt from scratch means the whole cluster is rebuilt (seconds, from the
    # template).
    local missing=0
    for ((node = 0; node < NODES; node++)); do
        [[ -d $(node_dir "$node")/data ]] || missing=1
    done
    if ((missing)); then
        rm -f "$PRIMARY_FILE"
        kill_nodes $(seq 0 $((NODES - 1)))
        for ((node = 0; node < NODES; node++)); do
            rm -rf "$(node_dir "$node")/data" "$(node_dir "$node")/provisioned"
        done
    fi
    ensure_template
    ensure_tls_files
    if ((TLS_ONLY)); then
        [[ -r $CDIR/tls/ca.pem && -r $CDIR/tls/server-cert.pem && -r $CDIR/tls/server-key.pem ]] ||
            die "--tls-only needs the cluster's certificates (is openssl installed?)"
    fi
    for ((node = 0; node < NODES; node++)); do
        mkdir -p "$(node_dir "$node")" "$(node_dir "$node")/tmp"
        write_cnf "$node"
        ensure_datadir "$node"
        ensure_running "$node"
    done
    for ((node = 0; node < NODES; node++)); do
        wait_node_ready "$node"
    done
    provision_primary
    for node in $(replica_nodes); do
        attach_replica "$node"
    done
    wait_caught_up
    log "up in $((SECONDS - started))s: primary 127.0.0.1:$(node_port "$(primary_node)") (node$(primary_node)), ports $BASE_PORT-$((BASE_PORT + NODES - 1))$( ((TLS_ONLY)) && echo ", TLS only")"
}

cmd_down() {
    local node
    [[ -d $CDIR ]] && kill_nodes $(seq 0 $((NODES - 1)))
    if ((WIPE)); then
        rm -rf "$CDIR"
        for ((node = 0; node < NODES; node++)); do
            rm -f "/tmp/rwproxy-cluster-$NAME-node$node.sock"
        done
        log "stopped and wiped"
    else
        log "stopped"
    fi
}

cmd_status() {
    local node role ro io sqlrun lag gtid
    printf '%-6s %-6s %-8s %-9s %-6s %-6s %-7s %s\n' node port role read_only io sql lag gtid_current_pos
    for ((node = 0; node < NODES; node++)); do
        if ! node_pid "$node" >/dev/null || ! node_ping "$node"; then
            printf '%-6s %-6s %-8s\n' "node$node" "$(node_port "$node")" down
            continue
        fi
        io=$(slave_field "$node" Slave_IO_Running)
        if [[ -n $io ]]; then
            role=replica
            sqlrun=$(slave_field "$node" Slave_SQL_Running)
            lag=$(slave_field "$node" Seconds_Behind_Master)
        else
            role=primary io=- sqlrun=- lag=-
        fi
        ro=$(sql "$node" "SELECT IF(@@read_only, 'ON', 'OFF')")
        gtid=$(sql "$node" "SELECT @@gtid_current_pos")
        printf '%-6s %-6s %-8s %-9s %-6s %-6s %-7s %s\n' "node$node" "$(node_port "$node")" \
            "$role" "$ro" "$io" "$sqlrun" "${lag:-NULL}" "${gtid:-(empty)}"
    done
}

cmd_env() {
    local node
    emit() { printf 'export %s=%q\n' "$1" "$2"; }
    emit RWPROXY_CLUSTER_NAME "$NAME"
    emit RWPROXY_CLUSTER_DIR "$CDIR"
    emit RWPROXY_CLUSTER_NODES "$NODES"
    emit RWPROXY_PRIMARY_NODE "$(primary_node)"
    emit RWPROXY_PRIMARY_PORT "$(node_port "$(primary_node)")"
    emit RWPROXY_REPLICA1_PORT "$(node_port 1)"
    emit RWPROXY_REPLICA2_PORT "$(node_port 2)"
    for ((node = 0; node < NODES; node++)); do
        emit "RWPROXY_NODE${node}_PORT" "$(node_port "$node")"
        emit "RWPROXY_NODE${node}_SOCKET" "$(node_socket "$node")"
        emit "RWPROXY_NODE${node}_PIDFILE" "$(node_pidfile "$node")"
    done
    emit APP_DB_USER "$APP_USER"
    emit APP_DB_PASSWORD "$APP_PASSWORD"
    emit MONITOR_USER "$MONITOR_USER"
    emit MONITOR_PASSWORD "$MONITOR_PASSWORD"
    emit ADMIN_DB_USER "$ADMIN_USER"
    emit ADMIN_DB_PASSWORD "$ADMIN_PASSWORD"
    emit REPL_USER "$REPL_USER"
    emit REPL_PASSWORD "$REPL_PASSWORD"
    if ((TLS_ONLY)); then
        emit RWPROXY_CLUSTER_TLS_ONLY 1
        emit RWPROXY_CLUSTER_CA "$CDIR/tls/ca.pem"
    fi
}

cmd_promote() {
    local target=$PROMOTE_NODE old node pos rc
    ((target < NODES)) || die "no node$target (nodes 0-$((NODES - 1)))"
    [[ -f $PORT_FILE ]] || die "cluster '$NAME' does not exist"
    old=$(primary_node)
    ((target != old)) || die "node$target is already the primary"
    node_pid "$target" >/dev/null && node_ping "$target" || die "node$target is not running"
    if node_pid "$old" >/dev/null && node_ping "$old"; then
        log "node$old (primary) read-only; node$target catching up"
        sql "$old" "SET GLOBAL read_only = ON"
        pos=$(sql "$old" "SELECT @@gtid_binlog_pos")
        rc=$(sql "$target" "SELECT MASTER_GTID_WAIT('$pos', 30)")
        [[ $rc == 0 ]] || die "node$target did not reach the primary's position $pos in 30 s"
    else
        log "node$old (primary) is down: node$target takes over with what it has"
    fi
    sql "$target" "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF"
    echo "$target" >"$PRIMARY_FILE"
    for node in $(replica_nodes); do
        if node_pid "$node" >/dev/null && node_ping "$node"; then
            sql "$node" "STOP SLAVE; RESET SLAVE ALL"
            attach_replica "$node"
        fi
    done
    log "node$target (127.0.0.1:$(node_port "$target")) is the primary"
}

with_lock() {
    mkdir -p "$SCRATCH"
    exec 9>"$LOCK_FILE"
    flock 9
    "$@"
}

case $COMMAND in
up) with_lock cmd_up ;;
down) with_lock cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
promote) with_lock cmd_promote ;;
-h | --help | help) usage ;;
*) usage >&2; die "unknown command: $COMMAND" ;;
esac
