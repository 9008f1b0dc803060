#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/kubernetes/ without a cluster:
#   1. every resource against the Kubernetes JSON schemas (strict: unknown fields are errors),
#      for the oldest supported version (1.30: native sidecars, preStop sleep) and 1.37, with
#      kubernetes-validate from PyPI (it ships the schemas, so it needs no network at run time);
#   2. the rwproxy configuration inside every ConfigMap with `rwproxy check-config`.
#
#   integration/k8s-validate.sh [path/to/rwproxy]
set -euo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${RWPROXY_SCRATCH:-$REPO_ROOT/.scratch}
RWPROXY=${1:-$REPO_ROOT/target/debug/rwproxy}
VENV=$SCRATCH/k8s-validate-venv
VERSION=1.37.0
cd "$REPO_ROOT"

if ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$VERSION"
fi

mapfile -t manifests < <(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)
((${#manifests[@]} > 0)) || { echo "k8s-validate: no manifests found" >&2; exit 1; }
status=0
for k in 1.30.0 1.37.0; do
    echo "==> schemas of Kubernetes $k (strict)"
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$k" "${manifests[@]}" || status=1
done

echo "==> rwproxy check-config on every ConfigMap's rwproxy.yaml"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" - "$tmp" "${manifests[@]}" <<'PY'
import sys, yaml, pathlib
out = pathlib.Path(sys.argv[1])
n = 0
for path in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") == "ConfigMap" and "rwproxy.yaml" in doc.get("data", {}):
            n += 1
            (out / f"{n}-{doc['metadata']['name']}.yaml").write_text(doc["data"]["rwproxy.yaml"])
if n == 0:
    sys.exit("no ConfigMap with rwproxy.yaml")
PY
for f in "$tmp"/*.yaml; do
    APP_DB_PASSWORD=check MONITOR_PASSWORD=check ADMIN_TOKEN=check \
        "$RWPROXY" check-config "$f" >/dev/null || { echo "invalid: $(basename "$f")" >&2; status=1; }
    echo "ok: $(basename "$f")"
done
if ((status)); then echo "k8s-validate: FAILED" >&2; else echo "k8s-validate: ok (${#manifests[@]} manifests)"; fi
exit $status
