#!/usr/bin/env bash
# Installs what the differential harness needs, idempotently (Debian 12, as root):
# the client libraries of every runner, a virtualenv for the Python libraries
# (${RWPROXY_SCRATCH:-<repo>/.scratch}/differential-venv) and the Node libraries
# (integration/differential/node_modules, ignored by git).
#
#   integration/differential/setup.sh
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$HERE/../.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
VENV=$SCRATCH/differential-venv
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

# Debian packages: a command or file that proves each is there.
declare -A NEED=(
    [mariadb-client]="command:mariadb"
    [openssl]="command:openssl"
    [python3-venv]="python:ensurepip"
    [python3-dev]="command:python3-config"
    [gcc]="command:gcc"
    [pkg-config]="command:pkg-config"
    [libmariadb-dev]="command:mariadb_config"
    [nodejs]="command:node"
    [npm]="command:npm"
    [default-jdk-headless]="command:javac"
    [libmariadb-java]="file:/usr/share/java/mariadb-java-client.jar"
    [libgoogle-gson-java]="file:/usr/share/java/gson.jar"
    [php-cli]="command:php"
    [php-mysql]="php:pdo_mysql"
    [libdbd-mariadb-perl]="perl:DBD::MariaDB"
    [ruby]="command:ruby"
    [ruby-mysql2]="ruby:mysql2"
)
missing=()
for pkg in "${!NEED[@]}"; do
    probe=${NEED[$pkg]}
    case $probe in
    command:*) command -v "${probe#command:}" >/dev/null 2>&1 || missing+=("$pkg") ;;
    file:*) [[ -e ${probe#file:} ]] || dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
    perl:*) perl -M"${probe#perl:}" -e1 2>/dev/null || missing+=("$pkg") ;;
    ruby:*) ruby -r"${probe#ruby:}" -e1 2>/dev/null || missing+=("$pkg") ;;
    python:*) python3 -c "import ${probe#python:}" 2>/dev/null || missing+=("$pkg") ;;
    php:*) php -m 2>/dev/null | grep -qx "${probe#php:}" || missing+=("$pkg") ;;
    esac
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "differential/setup.sh: need these Debian packages, and not root: ${missing[*]}" >&2
        exit 1
    fi
    echo "differential/setup.sh: installing ${missing[*]}" >&2
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Python libraries in a virtualenv (Debian forbids pip into the system Python).
if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$HERE/requirements.txt" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
want = {}
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, _, v = line.partition("==")
        want[name] = v
sys.exit(0 if all(version(n) == v for n, v in want.items()) else 1)
PY
    "$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
fi

# Node libraries.
if ! (cd "$HERE" && node -e '
const want = require("./package.json").dependencies;
for (const [n, v] of Object.entries(want)) {
  if (require(`./node_modules/${n}/package.json`).version !== v) process.exit(1);
}' 2>/dev/null); then
    (cd "$HERE" && npm install --no-audit --no-fund --no-save --loglevel=error)
fi
echo "differential/setup.sh: ready (python: $VENV/bin/python)"
