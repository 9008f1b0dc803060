#!/usr/bin/env bash
# A local three-node MariaDB Galera cluster for rwproxy's tests and demo, all bound to
# 127.0.0.1 (the synchronous multi-master counterpart of integration/cluster.sh).
#
#   integration/galera.sh {up|down|status|env} [--name NAME] [--base-port N] [--wipe]
#   integration/galera.sh {stop-node|start-node|kill-node} NODE [--name NAME]
#
# Node i (wsrep_node_name nodei, server_id i+1) uses four ports, all on 127.0.0.1:
#   base-port + i          SQL clients
#   base-port + 1000 + i   Galera group communication (gmcast.listen_addr)
#   base-port + 2000 + i   incremental state transfer (ist.recv_addr)
#   base-port + 3000 + i   full state transfer, rsync SST (wsrep_sst_receive_address)
# With the default base port 3336: 3336-3338, 4336-4338, 5336-5338 and 6336-6338. Every file
# of a cluster lives under ${RWPROXY_SCRATCH:-<repo>/.scratch}/cluster-<name>/, as with
# cluster.sh (so a name must not be used by both scripts). The distro's own MariaDB service,
# its datadir and port 3306 are never touched.
set -euo pipefail

readonly NODES=3
readonly APP_USER=app APP_PASSWORD=app_pass
readonly MONITOR_USER=monitor MONITOR_PASSWORD=monitor_pass
readonly ADMIN_USER=admin ADMIN_PASSWORD=admin_pass
readonly REPL_USER=repl REPL_PASSWORD=repl_pass
# Galera write sets get GTIDs in this domain on every node (wsrep_gtid_mode=ON), the same
# domain as the replication cluster's; a node's own non-replicated writes (wsrep_on=OFF) use
# gtid_domain_id = LOCAL_DOMAIN_BASE + i, so they can never collide with the cluster's.
readonly WSREP_DOMAIN=0 LOCAL_DOMAIN_BASE=100
# Seconds a node may take to reach Synced (a full state transfer included).
readonly SYNC_TIMEOUT=${RWPROXY_GALERA_TIMEOUT:-180}
# More wsrep_provider_options for the nodes started by this command (written into their my.cnf),
# e.g. "evs.keepalive_period=PT0.5S;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT3S" for a
# faster eviction of a killed node: with Galera's defaults, commits on the other nodes wait
# about 5 s after a kill -9 (until the dead node leaves the view); with these, about 2.5 s.
readonly EXTRA_PROVIDER_OPTIONS=${RWPROXY_GALERA_PROVIDER_OPTIONS:-}

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}

usage() {
    cat <<'EOF'
usage: integration/galera.sh COMMAND [--name NAME] [--base-port N] [--wipe]

commands:
  up       create and/or start the cluster and wait until all three nodes are Synced in one
           Primary component of size 3 (idempotent). A new cluster is bootstrapped on node0;
           after a full stop the node with safe_to_bootstrap: 1 in grastate.dat (else the one
           with the highest recovered seqno, node0 on a tie) bootstraps it again; running
           nodes left without a Primary component are re-bootstrapped (pc.bootstrap) on the
           most advanced of them; stopped nodes rejoin (IST, or rsync SST)
  down     stop the cluster's servers one at a time, the lowest running node last, which
           leaves grastate.dat's safe_to_bootstrap: 1 there (data kept unless --wipe)
  status   per node: port, wsrep_local_state_comment, wsrep_cluster_status,
           wsrep_cluster_size, wsrep_desync, wsrep_local_recv_queue, read_only
  env      print shell export lines (ports, sockets, users, passwords)
  stop-node NODE
           stop node NODE (0-2) cleanly (SIGTERM): it leaves the cluster gracefully
  kill-node NODE
           kill -9 node NODE: the others see it vanish (a crash)
  start-node NODE
           start node NODE and wait until it is Synced: it rejoins the running nodes (which
           must be in a Primary component, else use `up`), or, if no node runs, bootstraps
           the cluster when its grastate.dat says safe_to_bootstrap: 1

options:
  --name NAME       cluster name (default: galera)
  --base-port N     node0's SQL port; see the port layout in the script header (default: 3336)
  --wipe            with down: also delete the cluster's data

environment:
  RWPROXY_GALERA_TIMEOUT   seconds a node may take to become Synced (default: 180)
  RWPROXY_GALERA_PROVIDER  path of libgalera_smm.so (default: found in the usual places)
  RWPROXY_GALERA_PROVIDER_OPTIONS
                           more wsrep_provider_options (';'-separated) for the nodes that
                           up/start-node start (a running cluster keeps its own until
                           restarted), e.g. for a faster eviction of a killed node:
                           evs.keepalive_period=PT0.5S;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT3S
EOF
}

die() {
    echo "galera.sh: $*" >&2
    exit 1
}

log() {
    echo "galera.sh[$NAME]: $*" >&2
}

# ---------------------------------------------------------------- arguments

COMMAND=${1:-}
[[ -n $COMMAND ]] || {
    usage >&2
    exit 2
}
shift
TARGET_NODE=
case $COMMAND in
stop-node | start-node | kill-node)
    TARGET_NODE=${1:-}
    [[ $TARGET_NODE =~ ^[0-9]+$ ]] || die "usage: galera.sh $COMMAND NODE [--name NAME]"
    shift
    ;;
esac
NAME=galera
BASE_PORT=
WIPE=0
while (($#)); do
    case $1 in
    --name) NAME=${2:?--name needs a value}; shift 2 ;;
    --name=*) NAME=${1#*=}; shift ;;
    --base-port) BASE_PORT=${2:?--base-port needs a value}; shift 2 ;;
    --base-port=*) BASE_PORT=${1#*=}; shift ;;
    --wipe) WIPE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ $NAME =~ ^[A-Za-z0-9_-]+$ ]] || die "invalid cluster name '$NAME' (letters, digits, _ and - only)"
if [[ -n $TARGET_NODE ]] && ((TARGET_NODE >= NODES)); then
    die "no node$TARGET_NODE (nodes 0-$((NODES - 1)))"
fi

CDIR=$SCRATCH/cluster-$NAME
LOCK_FILE=$SCRATCH/cluster-$NAME.lock
PORT_FILE=$CDIR/base-port
# Marks the directory as a Galera cluster's, so that cluster.sh's clusters are never mistaken
# for one (both scripts keep clusters under cluster-<name>).
KIND_FILE=$CDIR/galera
PROVISIONED_FILE=$CDIR/provisioned

if [[ -f $PORT_FILE && ! -f $KIND_FILE ]]; then
    die "$CDIR belongs to a replication cluster of cluster.sh, not a Galera cluster; choose another --name"
fi
# The base port is remembered at creation so that later commands need only --name.
if [[ -f $PORT_FILE ]]; then
    STORED_PORT=$(<"$PORT_FILE")
    if [[ -n $BASE_PORT && $BASE_PORT != "$STORED_PORT" ]]; then
        die "cluster '$NAME' was created with --base-port $STORED_PORT; use that, or run 'down --wipe' first"
    fi
    BASE_PORT=$STORED_PORT
fi
BASE_PORT=${BASE_PORT:-3336}
[[ $BASE_PORT =~ ^[0-9]+$ ]] || die "invalid --base-port '$BASE_PORT'"
((BASE_PORT >= 1024 && BASE_PORT + 3000 + NODES - 1 <= 65535)) || die "--base-port out of range: $BASE_PORT"
for offset in 0 1000 2000 3000; do
    if ((BASE_PORT + offset <= 3306 && 3306 < BASE_PORT + offset + NODES)); then
        die "port 3306 belongs to the system MariaDB; choose another --base-port"
    fi
done

# ---------------------------------------------------------------- node layout

node_dir() { echo "$CDIR/node$1"; }
node_port() { echo $((BASE_PORT + $1)); }
gcomm_port() { echo $((BASE_PORT + 1000 + $1)); }
ist_port() { echo $((BASE_PORT + 2000 + $1)); }
sst_port() { echo $((BASE_PORT + 3000 + $1)); }
node_cnf() { echo "$CDIR/node$1/my.cnf"; }
node_pidfile() { echo "$CDIR/node$1/mariadbd.pid"; }
node_errlog() { echo "$CDIR/node$1/error.log"; }
node_grastate() { echo "$CDIR/node$1/data/grastate.dat"; }
all_nodes() { seq 0 $((NODES - 1)); }

# Unix socket paths are limited to ~107 bytes; fall back to /tmp for deep checkouts.
node_socket() {
    local sock="$CDIR/node$1/mariadbd.sock"
    if ((${#sock} > 100)); then
        sock="/tmp/rwproxy-cluster-$NAME-node$1.sock"
    fi
    echo "$sock"
}

cluster_address() {
    local node addrs=()
    for node in $(all_nodes); do
        addrs+=("127.0.0.1:$(gcomm_port "$node")")
    done
    local IFS=,
    echo "gcomm://${addrs[*]}"
}

# ---------------------------------------------------------------- helpers

have_mariadb() {
    command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]]
}

# The Galera provider library: RWPROXY_GALERA_PROVIDER, the usual paths of the Debian/Ubuntu,
# RPM and upstream packages, or wherever the galera-4/galera-3 package put it.
find_provider() {
    local candidate
    for candidate in "${RWPROXY_GALERA_PROVIDER:-}" \
        /usr/lib/galera/libgalera_smm.so /usr/lib/galera-4/libgalera_smm.so \
        /usr/lib/libgalera_smm.so /usr/lib64/galera-4/libgalera_smm.so \
        /usr/lib64/galera/libgalera_smm.so /usr/lib/x86_64-linux-gnu/galera/libgalera_smm.so \
        /usr/lib/aarch64-linux-gnu/galera/libgalera_smm.so; do
        [[ -n $candidate && -r $candidate ]] && {
            echo "$candidate"
            return 0
        }
    done
    if command -v dpkg >/dev/null 2>&1; then
        candidate=$(dpkg -L galera-4 galera-3 2>/dev/null | grep '/libgalera_smm\.so$' | head -n 1 || true)
        [[ -n $candidate && -r $candidate ]] && {
            echo "$candidate"
            return 0
        }
    fi
    candidate=$(ldconfig -p 2>/dev/null | awk '/libgalera_smm\.so/ {print $NF; exit}' || true)
    [[ -n $candidate && -r $candidate ]] && {
        echo "$candidate"
        return 0
    }
    return 1
}

# The state transfer method: rsync (needs only rsync), else mariabackup when it is there and
# rsync cannot be installed. As root, rsync goes through our own method script, rwproxy_rsync
# (see ensure_sst_scripts).
sst_method() {
    if command -v rsync >/dev/null 2>&1; then
        if [[ $(id -u) -eq 0 ]]; then echo rwproxy_rsync; else echo rsync; fi
    elif command -v mariabackup >/dev/null 2>&1 && command -v socat >/dev/null 2>&1; then
        echo mariabackup
    else
        return 1
    fi
}

ensure_installed() {
    local packages=()
    { have_mariadb && command -v mariadb-install-db >/dev/null 2>&1 &&
        command -v wsrep_sst_rsync >/dev/null 2>&1; } || packages+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 && command -v mariadb-admin >/dev/null 2>&1 ||
        packages+=(mariadb-client)
    find_provider >/dev/null || packages+=(galera-4)
    command -v rsync >/dev/null 2>&1 || packages+=(rsync)
    # wsrep_sst_rsync and our own port checks use ss.
    command -v ss >/dev/null 2>&1 || packages+=(iproute2)
    ((${#packages[@]})) || return 0
    if [[ $(id -u) -ne 0 ]]; then
        # Without root only rsync may be replaced (by mariabackup).
        if [[ ${packages[*]} == rsync ]] && sst_method >/dev/null; then
            return 0
        fi
        die "missing packages and we are not root; install: ${packages[*]}"
    fi
    log "installing ${packages[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
    find_provider >/dev/null || die "galera-4 is installed but libgalera_smm.so was not found; set RWPROXY_GALERA_PROVIDER"
}

mariadbd_bin() {
    if command -v mariadbd >/dev/null 2>&1; then command -v mariadbd; else echo /usr/sbin/mariadbd; fi
}

# The superuser account over the Unix socket: mariadb-install-db made root@localhost and one
# named after the OS user who ran it (the same account when that is root), both identified by
# unix_socket.
SOCKET_USER=$(id -un)

# sql NODE SQL... : run statements as that superuser over the node's socket; batch output, no
# headers. Dirty reads let SELECTs answer on a node outside the Primary component too.
sql() {
    local node=$1
    shift
    timeout 30 mariadb --no-defaults --protocol=socket --socket="$(node_socket "$node")" -u"$SOCKET_USER" \
        --connect-timeout=3 -N -B -e "SET SESSION wsrep_dirty_reads = ON; $*"
}

# The pid of the node's mariadbd if it is running, else nothing (exit status 1). A joiner
# writes its pid file only after its state transfer, so the pid we launched counts too.
node_pid() {
    local file pid
    for file in "$(node_pidfile "$1")" "$(node_dir "$1")/launched.pid"; do
        [[ -f $file ]] || continue
        pid=$(<"$file")
        [[ $pid =~ ^[0-9]+$ ]] || continue
        kill -0 "$pid" 2>/dev/null || continue
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z) != Z ]] || continue
        # Guard against a recycled pid: the process must be our mariadbd with our config.
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--defaults-file=$(node_cnf "$1") " || continue
        echo "$pid"
        return 0
    done
    return 1
}

node_ping() {
    timeout 5 mariadb-admin --no-defaults --protocol=socket --socket="$(node_socket "$1")" -u"$SOCKET_USER" \
        --connect-timeout=2 ping >/dev/null 2>&1
}

# One tab-separated line about a node: wsrep_local_state, wsrep_local_state_comment,
# wsrep_cluster_status, wsrep_cluster_size, wsrep_desync, wsrep_local_recv_queue, read_only,
# wsrep_last_committed, wsrep_ready.
wsrep_info() {
    sql "$1" "SELECT
        IFNULL(MAX(IF(VARIABLE_NAME = 'WSREP_LOCAL_STATE', VARIABLE_VALUE, NULL)), '-'),
        IFNULL(MAX(IF(VARIABLE_NAME = 'WSREP_LOCAL_STATE_COMMENT', VARIABLE_VALUE, NULL)), '-'),
        IFNULL(MAX(IF(VARIABLE_NAME = 'WSREP_CLUSTER_STATUS', VARIABLE_VALUE, NULL)), '-'),
        IFNULL(MAX(IF(VARIABLE_NAME = 'WSREP_CLUSTER_SIZE', VARIABLE_VALUE, NULL)), '-'),
        IF(@@global.wsrep_desync, 'ON', 'OFF'),
        IFNULL(MAX(IF(VARIABLE_NAME = 'WSREP_LOCAL_RECV_QUEUE', VARIABLE_VALUE, NULL)), '-'),
        IF(@@global.read_only, 'ON', 'OFF'),
        IFNULL(MAX(IF(VARIABLE_NAME = 'WSREP_LAST_COMMITTED', VARIABLE_VALUE, NULL)), '-'),
        IFNULL(MAX(IF(VARIABLE_NAME = 'WSREP_READY', VARIABLE_VALUE, NULL)), '-')
        FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME LIKE 'WSREP%'" 2>/dev/null
}

# True if the node runs, answers and is Synced (4) in a Primary component (of SIZE nodes,
# when given).
node_synced() {
    local node=$1 size=${2:-} info state comment status csize
    node_pid "$node" >/dev/null && node_ping "$node" || return 1
    info=$(wsrep_info "$node") || return 1
    IFS=$'\t' read -r state comment status csize _ <<<"$info"
    [[ $state == 4 && $status == Primary ]] || return 1
    [[ -z $size || $csize == "$size" ]]
}

# True if the node runs, answers and is in a Primary component (in any state).
node_in_primary() {
    local info status
    node_pid "$1" >/dev/null && node_ping "$1" || return 1
    info=$(wsrep_info "$1") || return 1
    IFS=$'\t' read -r _ _ status _ <<<"$info"
    [[ $status == Primary ]]
}

show_errlog() {
    echo "---- tail of $(node_errlog "$1")" >&2
    tail -n 40 "$(node_errlog "$1")" >&2 2>/dev/null || true
}

# wait_synced NODE [SIZE]: until the node is Synced in a Primary component (of SIZE nodes).
# Fails early, with the tail of its error log, if the node's mariadbd exits.
wait_synced() {
    local node=$1 size=${2:-} deadline last="" info
    deadline=$((SECONDS + SYNC_TIMEOUT))
    while ((SECONDS < deadline)); do
        node_synced "$node" "$size" && return 0
        if ! node_pid "$node" >/dev/null; then
            sleep 0.5
            if ! node_pid "$node" >/dev/null; then
                show_errlog "$node"
                die "node$node (port $(node_port "$node")) exited before it was Synced"
            fi
        fi
        if node_ping "$node"; then
            if info=$(wsrep_info "$node"); then
                last=$info
            elif sql "$node" "SELECT 1" 2>&1 | grep -q 'Access denied'; then
                sql "$node" "SELECT 1" >&2 || true
                die "cannot log in to node$node as $SOCKET_USER over its socket"
            fi
        fi
        sleep 0.2
    done
    show_errlog "$node"
    [[ -n $last ]] && echo "last seen: $(awk -F'\t' '{printf "state %s (%s), %s, cluster size %s", $1, $2, $3, $4}' <<<"$last")" >&2
    die "node$node (port $(node_port "$node")) was not Synced${size:+ in a cluster of $size} within ${SYNC_TIMEOUT}s"
}

# Refuse to start a node whose ports another process holds (a node of ours that is not
# running holds none).
check_ports_free() {
    local node=$1 port pid
    # An rsync daemon left behind by this node's own interrupted state transfer is ours to end.
    for pid in $(ss -Hltnp "sport = :$(sst_port "$node")" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(node_dir "$node")/data/rsync_sst.conf"; then
            log "ending rsync daemon $pid left by node$node's interrupted state transfer"
            kill "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    done
    for port in "$(node_port "$node")" "$(gcomm_port "$node")" "$(ist_port "$node")" "$(sst_port "$node")"; do
        if [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]]; then
            ss -Hltnp "sport = :$port" >&2 2>/dev/null || true
            die "port $port (node$node) is in use by another process; choose another --base-port"
        fi
    done
}

write_cnf() {
    local node=$1 dir provider method
    dir=$(node_dir "$node")
    provider=$(find_provider) || die "libgalera_smm.so not found (package galera-4); set RWPROXY_GALERA_PROVIDER"
    method=$(sst_method) || die "no state transfer method: install rsync (or mariabackup and socat)"
    cat >"$(node_cnf "$node")" <<EOF
# Generated by integration/galera.sh for cluster '$NAME', node $node. Rewritten on every 'up'.
[mariadbd]
datadir                   = $dir/data
port                      = $(node_port "$node")
socket                    = $(node_socket "$node")
pid-file                  = $(node_pidfile "$node")
log-error                 = $(node_errlog "$node")
tmpdir                    = $dir/tmp
bind-address              = 127.0.0.1
server_id                 = $((node + 1))
gtid_domain_id            = $((LOCAL_DOMAIN_BASE + node))
log_bin                   = mariadb-bin
log_bin_index             = mariadb-bin.index
log_slave_updates         = ON
binlog_format             = ROW
read_only                 = OFF
skip-name-resolve
local_infile              = ON
character_set_server      = utf8mb4
collation_server          = utf8mb4_general_ci
max_allowed_packet        = 256M
max_connections           = 1000
default_storage_engine    = InnoDB
innodb_autoinc_lock_mode  = 2
innodb_buffer_pool_size   = 64M
innodb_log_file_size      = 32M
innodb_flush_log_at_trx_commit = 2
sync_binlog               = 0
max_binlog_size           = 128M
binlog_expire_logs_seconds = 180
performance_schema        = OFF

wsrep_on                  = ON
wsrep_provider            = $provider
wsrep_cluster_name        = rwproxy-$NAME
wsrep_cluster_address     = $(cluster_address)
wsrep_node_name           = node$node
wsrep_node_address        = 127.0.0.1:$(gcomm_port "$node")
wsrep_node_incoming_address = 127.0.0.1:$(node_port "$node")
wsrep_provider_options    = "gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$node");ist.recv_addr=127.0.0.1:$(ist_port "$node");gcache.size=64M${EXTRA_PROVIDER_OPTIONS:+;$EXTRA_PROVIDER_OPTIONS}"
wsrep_sst_method          = $method
wsrep_sst_receive_address = 127.0.0.1:$(sst_port "$node")
wsrep_gtid_mode           = ON
wsrep_gtid_domain_id      = $WSREP_DOMAIN
wsrep_slave_threads       = 2
EOF
    # TLS is offered (never required) when the cluster's certificate exists; see ensure_tls_files.
    if [[ -r $CDIR/tls/server-cert.pem && -r $CDIR/tls/server-key.pem ]]; then
        printf 'ssl_cert                  = %s\nssl_key                   = %s\n' \
            "$CDIR/tls/server-cert.pem" "$CDIR/tls/server-key.pem" >>"$(node_cnf "$node")"
    fi
    # State transfers stay on loopback: unencrypted, so that the server certificate above does
    # not make the SST scripts demand stunnel.
    printf '\n[sst]\nssl-mode                  = DISABLED\n' >>"$(node_cnf "$node")"
}

# A test CA and a server certificate it signed for 127.0.0.1 and localhost, shared by the nodes
# (as in cluster.sh), so clients may ask for TLS and verify it (ca.pem). Skipped without openssl.
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

# A pristine system datadir. node0 bootstraps a new cluster from a copy of it; the joiners
# start from copies too, which their first state transfer (SST) replaces.
ensure_template() {
    local tpl=$CDIR/template
    [[ -d $tpl ]] && return 0
    rm -rf "$tpl.tmp" "$CDIR/install-tmp"
    mkdir -p "$tpl.tmp" "$CDIR/install-tmp"
    local user_opt=()
    [[ $(id -u) -eq 0 ]] && user_opt=(--user=root)
    log "initialising system tables"
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
}

# True if the node's datadir holds Galera state (it has been part of the cluster).
has_state() {
    [[ -f $(node_grastate "$1") ]] && grep -q '^uuid:' "$(node_grastate "$1")" &&
        ! grep -q '^uuid:[[:space:]]*00000000-0000-0000-0000-000000000000' "$(node_grastate "$1")"
}

grastate_field() {
    sed -n "s/^$2:[[:space:]]*//p" "$(node_grastate "$1")" 2>/dev/null | head -n 1
}

# As root, mariadbd runs as root (like cluster.sh's), and so does the rsync daemon that
# wsrep_sst_rsync starts on a joiner; but an rsync daemon started by root switches to the user
# nobody unless its configuration names another, and nobody cannot write the joiner's datadir.
# wsrep_sst_rsync writes that configuration itself, and mariadbd puts its own bin directory
# first in the PATH of SST scripts, so a plain `rsync` wrapper in PATH is not found. Hence the
# SST method rwproxy_rsync: mariadbd runs $CDIR/bin/wsrep_sst_rwproxy_rsync, which runs the
# distro's wsrep_sst_rsync with $CDIR/bin first in PATH, where an `rsync` wrapper adds
# --dparam=uid=0 --dparam=gid=0 when it starts as a daemon.
ensure_sst_scripts() {
    local real_rsync real_sst
    [[ $(sst_method) == rwproxy_rsync ]] || return 0
    real_rsync=$(PATH=${PATH//"$CDIR/bin:"/} command -v rsync) || return 0
    real_sst=$(command -v wsrep_sst_rsync) || real_sst=/usr/bin/wsrep_sst_rsync
    mkdir -p "$CDIR/bin"
    {
        echo '#!/bin/sh'
        echo '# Generated by integration/galera.sh: see ensure_sst_scripts there.'
        echo 'for arg in "$@"; do'
        echo "    [ \"\$arg\" = --daemon ] && exec '$real_rsync' \"\$@\" --dparam=uid=0 --dparam=gid=0"
        echo 'done'
        echo "exec '$real_rsync' \"\$@\""
    } >"$CDIR/bin/rsync.tmp"
    {
        echo '#!/bin/sh'
        echo '# Generated by integration/galera.sh: see ensure_sst_scripts there.'
        echo "PATH='$CDIR/bin':\$PATH exec '$real_sst' \"\$@\""
    } >"$CDIR/bin/wsrep_sst_rwproxy_rsync.tmp"
    chmod 755 "$CDIR/bin/rsync.tmp" "$CDIR/bin/wsrep_sst_rwproxy_rsync.tmp"
    mv "$CDIR/bin/rsync.tmp" "$CDIR/bin/rsync"
    mv "$CDIR/bin/wsrep_sst_rwproxy_rsync.tmp" "$CDIR/bin/wsrep_sst_rwproxy_rsync"
}

# launch_node NODE [ARGS...]: start the node's server in its own session, detached from our
# stdio and lock fd (ARGS: e.g. --wsrep-new-cluster).
launch_node() {
    local node=$1 user_opt=()
    shift
    [[ $(id -u) -eq 0 ]] && user_opt=(--user=root)
    check_ports_free "$node"
    ensure_sst_scripts
    rm -f "$(node_pidfile "$node")" "$(node_socket "$node")" "$(node_socket "$node").lock"
    PATH="$CDIR/bin:$PATH" setsid "$(mariadbd_bin)" --defaults-file="$(node_cnf "$node")" "${user_opt[@]}" "$@" \
        </dev/null >>"$(node_dir "$node")/mariadbd.out" 2>&1 9>&- &
    echo "$!" >"$(node_dir "$node")/launched.pid"
    disown 2>/dev/null || true
}

# Stop the given nodes with SIGNAL (TERM or KILL): SIGCONT first, in case a test stopped one;
# SIGKILL whatever still runs after 60 s.
signal_nodes() {
    local sig=$1 node pid pids=() i alive
    shift
    for node in "$@"; do
        pid=$(node_pid "$node") || continue
        pids+=("$pid")
        kill -CONT "$pid" 2>/dev/null || true
        kill "-$sig" "$pid" 2>/dev/null || true
    done
    ((${#pids[@]})) || return 0
    for ((i = 0; i < 600; i++)); do
        alive=0
        for pid in "${pids[@]}"; do
            if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z) != Z ]]; then
                alive=1
            fi
        done
        ((alive)) || return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ignored SIG$sig for 60s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    sleep 0.5
}

running_nodes() {
    local node
    for node in $(all_nodes); do
        node_pid "$node" >/dev/null && echo "$node"
    done
    return 0
}

# The position a stopped node has: grastate.dat's seqno, or, after a crash (seqno -1), the one
# InnoDB recovers (mariadbd --wsrep-recover).
node_seqno() {
    local node=$1 seqno user_opt=() rlog
    seqno=$(grastate_field "$node" seqno)
    if [[ $seqno =~ ^[0-9]+$ ]]; then
        echo "$seqno"
        return 0
    fi
    [[ $(id -u) -eq 0 ]] && user_opt=(--user=root)
    rlog=$(node_dir "$node")/wsrep-recover.log
    rm -f "$rlog"
    timeout 120 "$(mariadbd_bin)" --defaults-file="$(node_cnf "$node")" "${user_opt[@]}" \
        --wsrep-recover --log-error="$rlog" </dev/null >/dev/null 2>&1 9>&- || true
    seqno=$(sed -n 's/.*WSREP: Recovered position: [0-9a-f-]*:\(-\{0,1\}[0-9]*\).*/\1/p' "$rlog" 2>/dev/null | tail -n 1)
    [[ $seqno =~ ^-?[0-9]+$ ]] || seqno=-1
    echo "$seqno"
}

# After a full stop: the node that bootstraps the cluster again. The one whose grastate.dat
# says safe_to_bootstrap: 1 (the last to leave), else the most advanced one (node0 on a tie),
# which is then marked safe_to_bootstrap.
choose_bootstrap_node() {
    local node best=-1 best_seqno=-2 seqno any=0
    for node in $(all_nodes); do
        has_state "$node" || continue
        any=1
        if [[ $(grastate_field "$node" safe_to_bootstrap) == 1 ]]; then
            echo "$node"
            return 0
        fi
    done
    if ((!any)); then
        echo 0
        return 0
    fi
    for node in $(all_nodes); do
        has_state "$node" || continue
        seqno=$(node_seqno "$node")
        log "node$node: no safe_to_bootstrap, recovered seqno $seqno"
        if ((seqno > best_seqno)); then
            best=$node best_seqno=$seqno
        fi
    done
    log "node$best has the highest seqno ($best_seqno): marking it safe_to_bootstrap"
    sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$(node_grastate "$best")"
    echo "$best"
}

# Running nodes may still count members that just died (a view change waits for the
# suspect timeout): wait up to 20 s until no running node sees more members than run.
settle_running() {
    local running=("$@") node info csize i settled
    ((${#running[@]})) || return 0
    for ((i = 0; i < 100; i++)); do
        settled=1
        for node in "${running[@]}"; do
            node_ping "$node" || continue
            info=$(wsrep_info "$node") || continue
            IFS=$'\t' read -r _ _ _ csize _ <<<"$info"
            [[ $csize =~ ^[0-9]+$ ]] && ((csize > ${#running[@]})) && settled=0
        done
        ((settled)) && return 0
        sleep 0.2
    done
}

# wait_view_size SIZE NODES...: up to 10 s, until every answering node of NODES sees a
# component of SIZE members.
wait_view_size() {
    local size=$1 node info csize i seen
    shift
    for ((i = 0; i < 50; i++)); do
        seen=1
        for node in "$@"; do
            node_ping "$node" || continue
            info=$(wsrep_info "$node") || continue
            IFS=$'\t' read -r _ _ _ csize _ <<<"$info"
            [[ $csize == "$size" ]] || seen=0
        done
        ((seen)) && return 0
        sleep 0.2
    done
    return 0
}

# Running nodes without a Primary component (after the others crashed): make the most
# advanced of them a new Primary component on its own (pc.bootstrap).
bootstrap_primary_component() {
    local node best=-1 best_seqno=-2 info seqno
    for node in "$@"; do
        node_ping "$node" || continue
        info=$(wsrep_info "$node") || continue
        IFS=$'\t' read -r _ _ _ _ _ _ _ seqno _ <<<"$info"
        [[ $seqno =~ ^-?[0-9]+$ ]] || continue
        if ((seqno > best_seqno)); then
            best=$node best_seqno=$seqno
        fi
    done
    ((best >= 0)) || die "no running node answers; run 'down' and 'up' again"
    log "no running node is in a Primary component: pc.bootstrap on node$best (seqno $best_seqno)"
    sql "$best" "SET GLOBAL wsrep_provider_options = 'pc.bootstrap=YES'"
    wait_synced "$best"
}

provision() {
    local node=$1
    [[ -f $PROVISIONED_FILE ]] && return 0
    log "creating schemas and users (on node$node; Galera replicates them)"
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
    sql "$node" "$stmts"
    touch "$PROVISIONED_FILE"
}

cluster_healthy() {
    local node
    [[ -f $PROVISIONED_FILE ]] || return 1
    for node in $(all_nodes); do
        node_synced "$node" "$NODES" || return 1
    done
}

prepare_nodes() {
    local node
    ensure_template
    ensure_tls_files
    for node in $(all_nodes); do
        mkdir -p "$(node_dir "$node")" "$(node_dir "$node")/tmp"
        write_cnf "$node"
        ensure_datadir "$node"
    done
}

# ---------------------------------------------------------------- commands

cmd_up() {
    ensure_installed
    mkdir -p "$CDIR"
    touch "$KIND_FILE"
    echo "$BASE_PORT" >"$PORT_FILE"
    if cluster_healthy; then
        log "already up (ports $BASE_PORT-$((BASE_PORT + NODES - 1)))"
        return 0
    fi
    local node started=$SECONDS running=() nodes=() boot primary=0
    # A cluster that never finished its first bootstrap is made again from scratch.
    if [[ ! -f $PROVISIONED_FILE ]]; then
        mapfile -t nodes < <(all_nodes)
        signal_nodes KILL "${nodes[@]}"
        for node in $(all_nodes); do
            rm -rf "$(node_dir "$node")/data"
        done
    fi
    prepare_nodes
    # Resume nodes a test stopped with SIGSTOP.
    for node in $(running_nodes); do
        kill -CONT "$(node_pid "$node")" 2>/dev/null || true
        running+=("$node")
    done
    if ((${#running[@]} == 0)); then
        boot=$(choose_bootstrap_node)
        if has_state "$boot"; then
            log "bootstrapping the cluster again on node$boot"
        else
            log "bootstrapping a new cluster on node$boot"
        fi
        launch_node "$boot" --wsrep-new-cluster
        wait_synced "$boot"
        running=("$boot")
    else
        settle_running "${running[@]}"
        for node in "${running[@]}"; do
            node_in_primary "$node" && primary=1
        done
        # A node still joining (state transfer) does not answer yet: wait for it first.
        if ((!primary)); then
            for node in "${running[@]}"; do
                node_ping "$node" || wait_synced "$node"
            done
            for node in "${running[@]}"; do
                node_in_primary "$node" && primary=1
            done
        fi
        ((primary)) || bootstrap_primary_component "${running[@]}"
    fi
    for node in "${running[@]}"; do
        if node_synced "$node"; then
            provision "$node"
            break
        fi
    done
    # One joiner at a time: two joining together disturb each other's view changes (seconds
    # lost) and may wait for a free donor.
    for node in $(all_nodes); do
        if ! node_pid "$node" >/dev/null; then
            log "starting node$node (it joins the cluster)"
            launch_node "$node"
        fi
        wait_synced "$node"
        [[ -f $PROVISIONED_FILE ]] || provision "$node"
    done
    for node in $(all_nodes); do
        wait_synced "$node" "$NODES"
    done
    log "up in $((SECONDS - started))s: Galera nodes on 127.0.0.1:$BASE_PORT-$((BASE_PORT + NODES - 1)), all Synced"
}

cmd_down() {
    local running=() last node
    if [[ -d $CDIR ]]; then
        mapfile -t running < <(running_nodes)
        # One at a time, the highest first, each after the others have seen the previous one
        # leave: nodes leaving together look partitioned to the rest, which then lose their
        # Primary component. So the lowest running node leaves last, alone in a Primary
        # component, and is marked safe_to_bootstrap for the next `up`.
        while ((${#running[@]})); do
            last=${running[-1]}
            unset 'running[-1]'
            signal_nodes TERM "$last"
            ((${#running[@]})) && wait_view_size "${#running[@]}" "${running[@]}"
        done
    fi
    if ((WIPE)); then
        rm -rf "$CDIR"
        for node in $(all_nodes); do
            rm -f "/tmp/rwproxy-cluster-$NAME-node$node.sock"
        done
        log "stopped and wiped"
    else
        log "stopped"
    fi
}

cmd_status() {
    local node info state comment status csize desync queue ro
    printf '%-6s %-6s %-24s %-12s %-5s %-7s %-11s %s\n' node port state cluster size desync recv_queue read_only
    for node in $(all_nodes); do
        if ! node_pid "$node" >/dev/null; then
            printf '%-6s %-6s %s\n' "node$node" "$(node_port "$node")" down
            continue
        fi
        if ! node_ping "$node" || ! info=$(wsrep_info "$node"); then
            printf '%-6s %-6s %s\n' "node$node" "$(node_port "$node")" "running, not answering (state transfer, or stopped)"
            continue
        fi
        IFS=$'\t' read -r state comment status csize desync queue ro _ <<<"$info"
        printf '%-6s %-6s %-24s %-12s %-5s %-7s %-11s %s\n' "node$node" "$(node_port "$node")" \
            "$comment" "$status" "$csize" "$desync" "$queue" "$ro"
    done
}

cmd_env() {
    local node
    emit() { printf 'export %s=%q\n' "$1" "$2"; }
    emit RWPROXY_CLUSTER_NAME "$NAME"
    emit RWPROXY_CLUSTER_DIR "$CDIR"
    emit RWPROXY_CLUSTER_KIND galera
    emit RWPROXY_CLUSTER_NODES "$NODES"
    for ((node = 0; node < NODES; node++)); do
        emit "RWPROXY_NODE${node}_PORT" "$(node_port "$node")"
        emit "RWPROXY_NODE${node}_SOCKET" "$(node_socket "$node")"
        emit "RWPROXY_NODE${node}_PIDFILE" "$(node_pidfile "$node")"
        emit "RWPROXY_NODE${node}_NAME" "node$node"
        emit "RWPROXY_NODE${node}_GCOMM_PORT" "$(gcomm_port "$node")"
        emit "RWPROXY_NODE${node}_IST_PORT" "$(ist_port "$node")"
        emit "RWPROXY_NODE${node}_SST_PORT" "$(sst_port "$node")"
    done
    emit APP_DB_USER "$APP_USER"
    emit APP_DB_PASSWORD "$APP_PASSWORD"
    emit MONITOR_USER "$MONITOR_USER"
    emit MONITOR_PASSWORD "$MONITOR_PASSWORD"
    emit ADMIN_DB_USER "$ADMIN_USER"
    emit ADMIN_DB_PASSWORD "$ADMIN_PASSWORD"
    emit REPL_USER "$REPL_USER"
    emit REPL_PASSWORD "$REPL_PASSWORD"
}

require_cluster() {
    [[ -f $PORT_FILE && -f $PROVISIONED_FILE ]] || die "cluster '$NAME' does not exist; run 'up' first"
}

cmd_stop_node() {
    local node=$TARGET_NODE
    require_cluster
    node_pid "$node" >/dev/null || {
        log "node$node is not running"
        return 0
    }
    signal_nodes TERM "$node"
    log "node$node stopped"
}

cmd_kill_node() {
    local node=$TARGET_NODE
    require_cluster
    node_pid "$node" >/dev/null || {
        log "node$node is not running"
        return 0
    }
    signal_nodes KILL "$node"
    log "node$node killed (SIGKILL)"
}

cmd_start_node() {
    local node=$TARGET_NODE others=() other primary=0
    require_cluster
    if node_pid "$node" >/dev/null; then
        kill -CONT "$(node_pid "$node")" 2>/dev/null || true
        wait_synced "$node"
        log "node$node is running and Synced"
        return 0
    fi
    ensure_installed
    prepare_nodes
    for other in $(running_nodes); do
        others+=("$other")
    done
    if ((${#others[@]})); then
        settle_running "${others[@]}"
        for other in "${others[@]}"; do
            node_in_primary "$other" && primary=1
        done
        ((primary)) || die "the running nodes (${others[*]/#/node}) are not in a Primary component; run 'up' to bootstrap one"
        launch_node "$node"
    elif [[ $(grastate_field "$node" safe_to_bootstrap) == 1 ]]; then
        log "no other node runs: node$node bootstraps the cluster (safe_to_bootstrap: 1)"
        launch_node "$node" --wsrep-new-cluster
    else
        die "no other node runs and node$node is not safe_to_bootstrap; run 'up' to choose the node that bootstraps"
    fi
    wait_synced "$node"
    log "node$node is Synced"
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
stop-node) with_lock cmd_stop_node ;;
start-node) with_lock cmd_start_node ;;
kill-node) with_lock cmd_kill_node ;;
-h | --help | help) usage ;;
*) usage >&2; die "unknown command: $COMMAND" ;;
esac
