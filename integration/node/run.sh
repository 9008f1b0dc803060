#!/usr/bin/env bash
# Runs compress.js (the mysql2 driver through rwproxy with compress: true).
#
#   RWPROXY_PORT=6033 integration/node/run.sh
#
# Installs mysql2 into integration/node/node_modules (git-ignored) with npm when it is
# missing. Fails loudly when node or npm is missing.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "integration/node/run.sh: '$tool' is not installed (apt-get install nodejs npm)" >&2
        exit 3
    fi
done
: "${RWPROXY_PORT:?set RWPROXY_PORT to the rwproxy client port}"
if [[ ! -d $HERE/node_modules/mysql2 ]]; then
    (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error)
fi
node "$HERE/compress.js"
