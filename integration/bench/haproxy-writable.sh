#!/bin/sh
# HAProxy external check for integration/bench/failover.sh: passes (exit 0) only when the
# server at $3:$4 answers and is writable (@@read_only = 0), so HAProxy sends clients to the
# primary alone and follows a promotion. Arguments as HAProxy passes them:
# <proxy address> <proxy port> <server address> <server port>.
ro=$(mariadb -h"$3" -P"$4" -umonitor -pmonitor_pass --connect-timeout=1 -N -B -e 'SELECT @@read_only' 2>/dev/null) || exit 1
[ "$ro" = 0 ]
