#!/usr/bin/env python3
"""Connect-per-request: each request opens a connection, runs one point select and closes
it (PHP, CGI-style workers, serverless functions). Measured side by side in one run against
the primary of the local cluster directly, through rwproxy with pooling on (the default), and
through rwproxy with `pool.enabled: false`, in interleaved rounds; each client is its own
process. A report, not a test. integration/bench/sharing.sh runs the same measurement
(`measure`) in its own run.

    integration/bench/connect_per_request.py [--requests N] [--clients 1,8] [--rounds 3]
                                             [--rwproxy-bin PATH] [--write-doc]

Prints requests per second and per-request latency (median, p95) per target and client
count, the ratio pooled / direct, and the server connections each target opened
(`Connections` status delta on the primary); with --write-doc replaces the marked section of
docs/benchmarks.md.
"""

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import pymysql

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import report  # noqa: E402

START = "<!-- connect-per-request:start -->"
END = "<!-- connect-per-request:end -->"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(binary, env, pooled, workdir):
    port, admin = free_port(), free_port()
    cfg = os.path.join(workdir, f"rwproxy-{'pooled' if pooled else 'unpooled'}.yaml")
    with open(cfg, "w") as f:
        f.write(f"""listen: 127.0.0.1:{port}
users:
  - {{ name: {env['APP_DB_USER']}, password: "{env['APP_DB_PASSWORD']}" }}
backends:
  - {{ name: db1, address: "127.0.0.1:{env['RWPROXY_PRIMARY_PORT']}" }}
monitor: {{ user: {env['MONITOR_USER']}, password: "{env['MONITOR_PASSWORD']}", interval: 1s }}
pool: {{ enabled: {'true' if pooled else 'false'} }}
admin: {{ listen: 127.0.0.1:{admin} }}
log: {{ level: warn }}
""")
    proc = subprocess.Popen([binary, "--config", cfg], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            c = pymysql.connect(host="127.0.0.1", port=port, user=env["APP_DB_USER"],
                                password=env["APP_DB_PASSWORD"], database="app", ssl_disabled=True)
            c.cursor().execute("SELECT 1")
            c.close()
            return proc, port
        except pymysql.MySQLError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("rwproxy did not start")


def client(user, password, port, requests, out):
    lat = []
    for i in range(requests):
        t0 = time.perf_counter()
        c = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                            database="app", ssl_disabled=True)
        with c.cursor() as cur:
            cur.execute("SELECT %s + 1", (i,))
            cur.fetchone()
        c.close()
        lat.append(time.perf_counter() - t0)
    out.put(lat)


def server_connections(env):
    c = pymysql.connect(host="127.0.0.1", port=int(env["RWPROXY_PRIMARY_PORT"]), user=env["ADMIN_DB_USER"],
                        password=env["ADMIN_DB_PASSWORD"])
    with c.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Connections'")
        n = int(cur.fetchone()[1])
    c.close()
    return n


def measure(env, targets, clients_list, rounds, requests, creds=None):
    """Runs the requests against `targets` ({name: port}, measured in that order in every
    round), as the cluster's app account or, for a target in `creds` ({name: (user,
    password)}), as that account; returns
    {(clients, name): {"lat": [seconds], "wall": seconds, "n": requests, "opened": logins}}."""
    creds = creds or {}
    results = {}
    for clients in clients_list:
        for _ in range(rounds):
            for name, port in targets.items():
                user, password = creds.get(name, (env["APP_DB_USER"], env["APP_DB_PASSWORD"]))
                before = server_connections(env)
                out = mp.Queue()
                procs = [mp.Process(target=client, args=(user, password, port, requests, out))
                         for _ in range(clients)]
                t0 = time.perf_counter()
                for p in procs:
                    p.start()
                lat = [x for _ in procs for x in out.get()]
                for p in procs:
                    p.join()
                wall = time.perf_counter() - t0
                opened = server_connections(env) - before - 1
                acc = results.setdefault((clients, name), {"lat": [], "wall": 0.0, "n": 0, "opened": 0})
                acc["lat"] += lat
                acc["wall"] += wall
                acc["n"] += len(lat)
                acc["opened"] += opened
    return results


def render(results, targets):
    """The Markdown table, the summary lines and {clients: {target: requests/s}}."""
    header = ("clients", "target", "requests", "requests/s", "median ms", "p95 ms", "server logins")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    summary = []
    rates = {}
    for clients in sorted({c for c, _ in results}):
        for name in targets:
            acc = results[(clients, name)]
            lines.append(f"| {clients} | {name} | {acc['n']} | {acc['n'] / acc['wall']:.0f} | "
                         f"{statistics.median(acc['lat']) * 1000:.3f} | {report.percentile(acc['lat'], 95) * 1000:.3f} | {acc['opened']} |")
        rate = {n: results[(clients, n)]["n"] / results[(clients, n)]["wall"] for n in targets}
        rates[clients] = rate
        summary.append(f"- {clients} client(s): rwproxy pooled {rate['rwproxy pooled'] / rate['direct']:.2f}× direct, "
                       f"rwproxy unpooled {rate['rwproxy unpooled'] / rate['direct']:.2f}× direct "
                       f"(requests per second; target for pooled: ≥ 1.5×).")
    return "\n".join(lines), summary, rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=500, help="requests per client per round")
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rwproxy-bin", default=os.path.join(REPO, "target", "release", "rwproxy"))
    ap.add_argument("--write-doc", action="store_true")
    opts = ap.parse_args()
    env = report.cluster_env("cluster.sh")
    work = tempfile.mkdtemp(prefix="rwproxy-cpr-")
    pooled, pooled_port = start_proxy(opts.rwproxy_bin, env, True, work)
    unpooled, unpooled_port = start_proxy(opts.rwproxy_bin, env, False, work)
    targets = {"direct": int(env["RWPROXY_PRIMARY_PORT"]), "rwproxy pooled": pooled_port,
               "rwproxy unpooled": unpooled_port}
    try:
        results = measure(env, targets, [int(x) for x in opts.clients.split(",")], opts.rounds, opts.requests)
    finally:
        for p in (pooled, unpooled):
            p.terminate()
            p.wait(10)

    table, summary, _ = render(results, targets)
    print(table)
    print("\n".join(summary))
    if opts.write_doc:
        block = "\n".join([
            START,
            f"Run on commit {report.revision()}, {report.machine()}, client processes, rwproxy and the servers on "
            f"this one machine: `integration/bench/connect_per_request.py --requests {opts.requests} "
            f"--clients {opts.clients} --rounds {opts.rounds} --write-doc` (release build).",
            "",
            table,
            "",
            *summary,
            END,
        ])
        report.write_section(os.path.join(REPO, "docs", "benchmarks.md"), block + "\n", START, END)


if __name__ == "__main__":
    main()
