#!/usr/bin/env bash
# Compiles and runs DropIn.java (MariaDB Connector/J through rwproxy).
#
#   RWPROXY_PORT=6033 PRIMARY_PORT=3316 integration/java/run.sh
#
# Needs javac, java and the Connector/J jar of Debian's libmariadb-java package
# (override with MARIADB_JAVA_JAR). Fails loudly when any of them is missing.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
JAR=${MARIADB_JAVA_JAR:-/usr/share/java/mariadb-java-client.jar}

for tool in javac java; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "integration/java/run.sh: '$tool' is not installed (apt-get install default-jdk-headless)" >&2
        exit 3
    fi
done
if [[ ! -r $JAR ]]; then
    echo "integration/java/run.sh: MariaDB Connector/J not found at $JAR (apt-get install libmariadb-java)" >&2
    exit 3
fi
: "${RWPROXY_PORT:?set RWPROXY_PORT to the rwproxy client port}"
: "${PRIMARY_PORT:?set PRIMARY_PORT to the primary port}"

BUILD=$(mktemp -d "${TMPDIR:-/tmp}/rwproxy-java.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
javac -d "$BUILD" -cp "$JAR" "$HERE/DropIn.java"
java -Xmx512m -cp "$BUILD:$JAR" DropIn
