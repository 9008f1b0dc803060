#!/usr/bin/env python3
"""Differential test: every scenario run by every client library twice, directly against the
MariaDB primary and through rwproxy; the two transcripts must be identical, except for the
differences listed (with their reasons) in docs/compatibility.md.

    integration/differential/run.py [--proxy-bin PATH] [--libs a,b] [--scenarios x,y]
                                    [--proxy-endpoint HOST:PORT] [--allowlist FILE]

Run integration/differential/setup.sh first (installs the libraries). Starts the local cluster
(integration/cluster.sh up) and one rwproxy on a free 127.0.0.1 port unless --proxy-endpoint
names one. Prints a library x scenario matrix and ends with "N passed, M failed, K skipped"
(cells); exits 1 if any cell failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRATCH = Path(os.environ.get("RWPROXY_SCRATCH") or REPO / ".scratch")
WORK = SCRATCH / "differential"
VENV_PY = SCRATCH / "differential-venv" / "bin" / "python"
SCENARIOS = HERE / "scenarios" / "scenarios.json"
COMPAT_DOC = REPO / "docs" / "compatibility.md"
RUNNER_TIMEOUT = 120


def runners(py_site: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """library → (command, extra environment). Each takes the common runner options."""
    py = [str(VENV_PY), str(HERE / "runners" / "python" / "runner.py")]
    java_dir = WORK / "java-classes"
    node = ["node", str(HERE / "runners" / "node" / "runner.js")]
    php = ["php", "-d", "mysqli.allow_local_infile=1", "-d", "memory_limit=1G", str(HERE / "runners" / "php" / "runner.php")]
    return {
        "pymysql": (py + ["--lib", "pymysql"], {}),
        "mysqlclient": (py + ["--lib", "mysqlclient"], {}),
        "mysql-connector-pure": (py + ["--lib", "mysql-connector-pure"], {}),
        # The wheel's C extension needs the OpenSSL it ships, not Debian 12's older one.
        "mysql-connector-cext": (py + ["--lib", "mysql-connector-cext"],
                                 {"LD_LIBRARY_PATH": str(py_site / "mysql" / "vendor")}),
        "node-mysql2": (node + ["--lib", "mysql2"], {"NODE_PATH": str(HERE / "node_modules")}),
        "node-mariadb": (node + ["--lib", "mariadb"], {"NODE_PATH": str(HERE / "node_modules")}),
        "php-mysqli": (php + ["--lib", "mysqli"], {}),
        "php-pdo_mysql": (php + ["--lib", "pdo_mysql"], {}),
        "connector-j": (["java", "-Xmx1g", "-cp", f"{java_dir}:/usr/share/java/mariadb-java-client.jar:/usr/share/java/gson.jar",
                         "Runner", "--lib", "connector-j"], {}),
        "perl-dbd-mariadb": (["perl", str(HERE / "runners" / "perl" / "runner.pl"), "--lib", "dbd-mariadb"], {}),
        "ruby-mysql2": (["ruby", str(HERE / "runners" / "ruby" / "runner.rb"), "--lib", "mysql2"], {}),
    }


def build_java() -> None:
    out = WORK / "java-classes"
    out.mkdir(parents=True, exist_ok=True)
    src = HERE / "runners" / "java" / "Runner.java"
    stamp = out / "Runner.class"
    if stamp.exists() and stamp.stat().st_mtime >= src.stat().st_mtime:
        return
    subprocess.run(["javac", "-encoding", "UTF-8", "-d", str(out), "-cp",
                    "/usr/share/java/mariadb-java-client.jar:/usr/share/java/gson.jar", str(src)], check=True)


# ---------------------------------------------------------------- cluster and proxy

def cluster_env(kind: str) -> dict[str, str]:
    """`up`, then `env`, of integration/cluster.sh (replication) or integration/galera.sh."""
    script = str(REPO / "integration" / ("galera.sh" if kind == "galera" else "cluster.sh"))
    subprocess.run(["bash", script, "up"], check=True, stdin=subprocess.DEVNULL)
    out = subprocess.run(["bash", script, "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            env[k] = shlex.split(v)[0] if v else ""
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(binary: Path, env: dict[str, str], tls: tuple[Path, Path] | None,
                topology: str, pool: str = "") -> tuple[subprocess.Popen, int, Path]:
    port, admin = free_port(), free_port()
    n = int(env["RWPROXY_CLUSTER_NODES"])
    lines = [
        f"listen: 127.0.0.1:{port}",
        "max_allowed_packet: 64MiB",
        "users:",
        f'  - {{ name: "{env["APP_DB_USER"]}", password: "{env["APP_DB_PASSWORD"]}" }}',
        "users_from_backend: true",
        "accounts_refresh_interval: 1s",
        "backends:",
    ]
    for i in range(n):
        lines.append(f'  - {{ name: "db{i + 1}", address: "127.0.0.1:{env[f"RWPROXY_NODE{i}_PORT"]}", weight: 1 }}')
    if tls:
        lines.append(f'tls: {{ cert: "{tls[0]}", key: "{tls[1]}", require_tls: false }}')
    lines += [
        "monitor:",
        f'  user: "{env["MONITOR_USER"]}"',
        f'  password: "{env["MONITOR_PASSWORD"]}"',
        "  interval: 200ms",
        "  timeout: 1s",
        f"  topology: {topology}",
        f"admin: {{ listen: 127.0.0.1:{admin} }}",
        "log: { format: text, level: info }",
        # A runner starts a new session after a client-side exception (ruby-mysql2's
        # types_prepared always has one). Under the default `session` consistency a new session
        # may read from a replica that has not applied the previous session's writes yet (the
        # CI found one such 1146 under load, reproduced by stalling the replicas): that is
        # replication lag, not protocol fidelity, which is what this harness compares. `global`
        # makes every read wait for the proxy's newest write; a session's own reads still take
        # the read-your-writes path, on replicas.
        "routing: { consistency: global }",
    ]
    if pool:
        lines.append(f"pool: {pool}")
    cfg = WORK / "rwproxy.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    log = WORK / "rwproxy.log"
    proc = subprocess.Popen([str(binary), "--config", str(cfg)], stdin=subprocess.DEVNULL,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            sys.exit(f"rwproxy exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.terminate()
                sys.exit(f"rwproxy did not listen on {port}")
            time.sleep(0.05)
    # Wait until the monitor has found the primary: a statement that writes must succeed.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = subprocess.run(["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{port}", f"-u{env['APP_DB_USER']}",
                            f"-p{env['APP_DB_PASSWORD']}", "app", "-e", "DO 1; SELECT /* rwproxy:primary */ 1"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            break
        time.sleep(0.2)
    return proc, port, log


# ---------------------------------------------------------------- comparison

def flatten(value, path="", out=None):
    if out is None:
        out = {}
    if isinstance(value, dict):
        if not value:
            out[path] = {}
        for k, v in value.items():
            flatten(v, f"{path}.{k}" if path else k, out)
    elif isinstance(value, list):
        if not value:
            out[path] = []
        for i, v in enumerate(value):
            flatten(v, f"{path}[{i}]", out)
    else:
        out[path] = value
    return out


def load_allowlist(path: Path) -> list[dict[str, str]]:
    """Rows of the table after the line '<!-- differential-allowlist -->' in docs/compatibility.md:
    | library | scenario | field | reason | (library, scenario and field may use '*')."""
    if not path.exists():
        return []
    rows, active = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if "differential-allowlist" in line:
            active = True
            continue
        if not active:
            continue
        if not line.startswith("|"):
            if rows or line.strip().startswith("<!--"):
                break
            continue
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] in ("library", "") or set(cells[0]) <= set("-: "):
            continue
        rows.append({"library": cells[0], "scenario": cells[1], "field": cells[2], "reason": cells[3]})
    return rows


def glob(pattern: str, text: str) -> bool:
    """Only '*' is special (field paths contain brackets)."""
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), text) is not None


def allowed(allow, lib, scen, field):
    for row in allow:
        if glob(row["library"], lib) and glob(row["scenario"], scen) and glob(row["field"], field):
            return row
    return None


def has_exception(s) -> bool:
    return any("exception" in (st.get("error") or {}) for st in s.get("steps", []))


def compare(lib, direct, proxied, allow):
    """→ {scenario: (status, [diff lines])}."""
    cells = {}
    names = list(direct.get("scenarios", {}))
    for n in proxied.get("scenarios", {}):
        if n not in names:
            names.append(n)
    for n in names:
        d, p = direct["scenarios"].get(n), proxied["scenarios"].get(n)
        if d is None or p is None:
            cells[n] = ("FAIL", [f"scenario missing from the {'direct' if d is None else 'proxied'} run"])
            continue
        if "unsupported" in d and d == p:
            cells[n] = ("UNSUPPORTED", [d["unsupported"]])
            continue
        fd, fp = flatten(d), flatten(p)
        diffs, explained = [], []
        for key in sorted(set(fd) | set(fp), key=_natural):
            if fd.get(key, "<absent>") == fp.get(key, "<absent>"):
                continue
            line = f"{key}: direct={_short(fd.get(key, '<absent>'))} proxy={_short(fp.get(key, '<absent>'))}"
            row = allowed(allow, lib, n, key)
            (explained if row else diffs).append(line + (f"  [allowed: {row['reason']}]" if row else ""))
        if diffs:
            cells[n] = ("FAIL", diffs)
        elif "connect_error" in d:
            cells[n] = ("FAIL", [f"the direct connection failed: {d['connect_error']}"])
        else:
            cells[n] = ("PASS*" if explained else "PASS", explained + (
                ["note: the library raised a client-side exception directly against the server too"]
                if has_exception(d) else []))
    return cells


def _natural(key):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def _short(v, n=160):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= n else s[:n] + "…"


# ---------------------------------------------------------------- main

def cleanup(env) -> None:
    """Drop what an interrupted scenario may have left (objects named dt_*), so that both sides
    start from the same state."""
    base = ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{env['RWPROXY_PRIMARY_PORT']}",
            f"-u{env['ADMIN_DB_USER']}", f"-p{env['ADMIN_DB_PASSWORD']}", "-N", "-B", "-e"]
    q = ("SELECT CONCAT('DROP ', IF(TABLE_TYPE = 'VIEW', 'VIEW', 'TABLE'), ' IF EXISTS app.`', TABLE_NAME, '`;') "
         "FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME LIKE 'dt\\_%' "
         "UNION ALL SELECT CONCAT('DROP PROCEDURE IF EXISTS app.`', ROUTINE_NAME, '`;') FROM information_schema.ROUTINES "
         "WHERE ROUTINE_SCHEMA = 'app' AND ROUTINE_NAME LIKE 'dt\\_%' "
         "UNION ALL SELECT CONCAT('DROP USER IF EXISTS `', User, '`@`', Host, '`;') FROM mysql.user WHERE User LIKE 'dt\\_%'")
    stmts = subprocess.run(base + [q], capture_output=True, text=True, check=True).stdout.strip()
    if stmts:
        subprocess.run(base + [stmts], check=True)


def run_runner(lib, cmd, extra_env, port, env, tls_ca, only, side, timeout=RUNNER_TIMEOUT):
    args = cmd + ["--scenarios", str(SCENARIOS), "--host", "127.0.0.1", "--port", str(port),
                  "--user", env["APP_DB_USER"], "--password", env["APP_DB_PASSWORD"], "--database", "app",
                  "--admin-port", env["RWPROXY_PRIMARY_PORT"], "--admin-user", env["ADMIN_DB_USER"],
                  "--admin-password", env["ADMIN_DB_PASSWORD"], "--tls-ca", str(tls_ca or "")]
    if only:
        args += ["--only", only]
    cleanup(env)
    out_file = WORK / f"{lib}.{side}.json"
    err_file = WORK / f"{lib}.{side}.stderr"
    started = time.monotonic()
    try:
        r = subprocess.run(args, env={**os.environ, **extra_env}, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=open(err_file, "wb"), timeout=timeout)
        out_file.write_bytes(r.stdout)
        if r.returncode != 0:
            return None, f"runner exited {r.returncode}: {err_file.read_text(errors='replace')[-1500:]}"
        return json.loads(r.stdout), f"{time.monotonic() - started:.1f}s"
    except subprocess.TimeoutExpired:
        return None, f"runner timed out after {timeout}s"
    except json.JSONDecodeError as e:
        return None, f"runner printed no JSON ({e}); see {out_file}"


def run_side(lib, cmd, extra_env, port, env, tls_ca, only, side):
    """All scenarios in one process; if it hangs or crashes, each scenario in its own process so
    that one hang costs one cell, not the library's whole column."""
    doc, info = run_runner(lib, cmd, extra_env, port, env, tls_ca, only, side)
    if doc is not None:
        return doc, info
    names = [s["name"] for s in json.loads(SCENARIOS.read_text(encoding="utf-8"))["scenarios"]
             if not only or s["name"] in only.split(",")]
    merged = {"library": lib, "version": None, "scenarios": {}}
    for n in names:
        d, i = run_runner(lib, cmd, extra_env, port, env, tls_ca, n, f"{side}.{n}", timeout=45)
        if d is None:
            merged["scenarios"][n] = {"runner_failed": i.splitlines()[0] if i else "?"}
        else:
            merged["version"] = d.get("version")
            merged["scenarios"].update(d["scenarios"])
    return merged, f"{info}; rerun one scenario at a time"


def main() -> int:
    global WORK
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy-bin", default=os.environ.get("RWPROXY_BIN") or str(REPO / "target" / "debug" / "rwproxy"))
    ap.add_argument("--libs", default="", help="comma-separated libraries (default: all)")
    ap.add_argument("--scenarios", default="", help="comma-separated scenarios (default: all)")
    ap.add_argument("--proxy-endpoint", default="", help="HOST:PORT of a running proxy to test instead of starting one")
    ap.add_argument("--allowlist", default=str(COMPAT_DOC))
    ap.add_argument("--cluster", choices=["replication", "galera"], default="replication",
                    help="the servers: integration/cluster.sh's primary and replicas, or integration/galera.sh's "
                         "three Galera nodes (the direct side then talks to the writer, node0)")
    ap.add_argument("--summary-json", default="", help="default: summary.json in the work directory")
    ap.add_argument("--pool", default=os.environ.get("RWPROXY_TEST_POOL", ""),
                    help="rwproxy's pool: section as a YAML flow map, e.g. '{ enabled: true, max_per_backend: 1 }' "
                         "(default: $RWPROXY_TEST_POOL, else rwproxy's defaults)")
    opts = ap.parse_args()

    if opts.cluster == "galera":
        WORK = SCRATCH / "differential-galera"
    WORK.mkdir(parents=True, exist_ok=True)
    env = cluster_env(opts.cluster)
    cdir = Path(env["RWPROXY_CLUSTER_DIR"])
    cert, key = cdir / "tls" / "server-cert.pem", cdir / "tls" / "server-key.pem"
    tls = (cert, key) if cert.exists() and key.exists() else None
    # The CA that signed the cluster's certificate (rwproxy serves the same certificate).
    ca = cdir / "tls" / "ca.pem"
    ca = ca if ca.exists() else cert
    if opts.cluster == "galera":
        # node0 is the writer rwproxy chooses (equal priorities, lowest wsrep_node_name).
        env["RWPROXY_PRIMARY_PORT"] = env["RWPROXY_NODE0_PORT"]
    primary = int(env["RWPROXY_PRIMARY_PORT"])
    have_ssl = subprocess.run(["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{primary}", f"-u{env['APP_DB_USER']}",
                               f"-p{env['APP_DB_PASSWORD']}", "-N", "-B", "-e", "SELECT @@have_ssl"],
                              capture_output=True, text=True).stdout.strip()
    if have_ssl != "YES":
        print(f"warning: the primary has no TLS (have_ssl={have_ssl or '?'}); the tls scenario's direct side will fail."
              " Restart the cluster (integration/cluster.sh down; up) so that it picks up its certificate.")

    proc = None
    if opts.proxy_endpoint:
        proxy_port = int(opts.proxy_endpoint.rsplit(":", 1)[1])
    else:
        binary = Path(opts.proxy_bin)
        if not binary.exists():
            sys.exit(f"{binary} does not exist: build it with `cargo build -p rwproxy` or pass --proxy-bin")
        topology = "galera" if opts.cluster == "galera" else "auto"
        proc, proxy_port, proxy_log = start_proxy(binary, env, tls, topology, opts.pool)
    allow = load_allowlist(Path(opts.allowlist))

    site = next((VENV_PY.parent.parent / "lib").glob("python3*/site-packages"), Path("/nonexistent"))
    all_runners = runners(site)
    libs = [x for x in opts.libs.split(",") if x] or list(all_runners)
    if "connector-j" in libs:
        build_java()
    results, versions, notes = {}, {}, []
    try:
        for lib in libs:
            cmd, extra = all_runners[lib]
            d, d_info = run_side(lib, cmd, extra, primary, env, ca if tls else None, opts.scenarios, "direct")
            p, p_info = run_side(lib, cmd, extra, proxy_port, env, ca if tls else None, opts.scenarios, "proxy")
            print(f"{lib}: direct {d_info if d else 'FAILED'}, proxy {p_info if p else 'FAILED'}", flush=True)
            if d is None or p is None:
                results[lib] = {"*": ("FAIL", [x for x in (None if d else "direct: " + d_info, None if p else "proxy: " + p_info) if x])}
                continue
            versions[lib] = d.get("version")
            results[lib] = compare(lib, d, p, allow)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    scen_names = [s["name"] for s in json.loads(SCENARIOS.read_text(encoding="utf-8"))["scenarios"]]
    if opts.scenarios:
        scen_names = [s for s in scen_names if s in opts.scenarios.split(",")]
    short = {"PASS": "pass", "PASS*": "pass*", "FAIL": "FAIL", "UNSUPPORTED": "-"}
    width = max(len(s) for s in scen_names) + 2
    print()
    print("scenario".ljust(width) + " ".join(lib[:14].rjust(14) for lib in libs))
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for s in scen_names:
        row = []
        for lib in libs:
            st = results[lib].get(s) or results[lib].get("*") or ("FAIL", ["no result"])
            row.append(short[st[0]].rjust(14))
            counts["pass" if st[0].startswith("PASS") else "fail" if st[0] == "FAIL" else "skip"] += 1
        print(s.ljust(width) + " ".join(row))
    print("\n(pass* = only differences listed in docs/compatibility.md; - = the library cannot do this)")
    print("\nversions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    failed_cells = [(lib, s, st) for lib in libs for s, st in results[lib].items() if st[0] == "FAIL"]
    if failed_cells:
        print("\ndifferences:")
        for lib, s, st in failed_cells:
            print(f"  {lib} / {s}:")
            for line in st[1][:12]:
                print(f"      {line}")
            if len(st[1]) > 12:
                print(f"      … {len(st[1]) - 12} more (transcripts: {WORK}/{lib}.direct.json and .proxy.json)")
    for lib in libs:
        for s, st in results[lib].items():
            if st[0].startswith("PASS") and any(x.startswith("note:") for x in st[1]):
                notes.append(f"{lib}/{s}")
    if notes:
        print("\nlibrary errors seen against the server itself (same through rwproxy): " + ", ".join(notes))
    Path(opts.summary_json or WORK / "summary.json").write_text(json.dumps(
        {"versions": versions, "cells": {lib: {s: st[0] for s, st in results[lib].items()} for lib in libs}}, indent=1))
    print(f"\n{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
