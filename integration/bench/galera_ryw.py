#!/usr/bin/env python3
"""Read-your-writes on Galera: what a read right after the session's own write costs when it
goes to the writer (what rwproxy does) and when it goes to another node with
`wsrep_sync_wait=1` (the alternative), measured side by side on the local Galera cluster of
integration/galera.sh, directly against the nodes (rwproxy adds the same relay cost to both).

    integration/bench/galera_ryw.py [--pairs N] [--clients 1,8] [--rounds 3] [--write-doc]

Modes, each pair = INSERT on node0, then SELECT of that row:
  writer      the read on node0 (the writer)
  sync_wait   the read on node1 in a session with wsrep_sync_wait=1 (waits until node1 has
              applied everything committed cluster-wide when the read started)
  plain       the read on node1 without waiting: the baseline, and how often it is stale
Modes run in interleaved rounds; each client is its own process. Prints medians and p95 of the
read and of the whole pair per mode, the stale count, and with --write-doc replaces the marked
sections of docs/galera.md and docs/benchmarks.md. A report, not a test.
"""

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

import pymysql

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import report  # noqa: E402

MODES = ("writer", "sync_wait", "plain")
START = "<!-- galera-ryw:start -->"
END = "<!-- galera-ryw:end -->"


def connect(env, node):
    return pymysql.connect(host="127.0.0.1", port=int(env[f"RWPROXY_NODE{node}_PORT"]),
                           user=env["APP_DB_USER"], password=env["APP_DB_PASSWORD"],
                           database="app", autocommit=True)


def client(env, table, mode, first_id, pairs, out):
    writer = connect(env, 0)
    reader = writer if mode == "writer" else connect(env, 1)
    if mode == "sync_wait":
        with reader.cursor() as c:
            c.execute("SET SESSION wsrep_sync_wait = 1")
    reads, whole, stale = [], [], 0
    with writer.cursor() as w, reader.cursor() as r:
        for i in range(first_id, first_id + pairs):
            t0 = time.perf_counter()
            w.execute(f"INSERT INTO {table} VALUES (%s)", (i,))
            t1 = time.perf_counter()
            r.execute(f"SELECT id FROM {table} WHERE id = %s", (i,))
            found = r.fetchone()
            t2 = time.perf_counter()
            reads.append(t2 - t1)
            whole.append(t2 - t0)
            stale += found is None
    out.put((reads, whole, stale))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=1000, help="pairs per client per round")
    ap.add_argument("--clients", default="1,8", help="comma-separated client counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write-doc", action="store_true")
    opts = ap.parse_args()
    env = report.cluster_env("galera.sh")
    table = f"bench_galera_ryw_{os.getpid()}"
    admin = connect(env, 0)
    with admin.cursor() as c:
        c.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY)")
    results = {}
    next_id = 0
    try:
        for clients in [int(x) for x in opts.clients.split(",")]:
            for _ in range(opts.rounds):
                for mode in MODES:
                    out = mp.Queue()
                    procs = []
                    for k in range(clients):
                        procs.append(mp.Process(target=client,
                                                args=(env, table, mode, next_id, opts.pairs, out)))
                        next_id += opts.pairs
                    t0 = time.perf_counter()
                    for p in procs:
                        p.start()
                    got = [out.get() for _ in procs]
                    for p in procs:
                        p.join()
                    wall = time.perf_counter() - t0
                    acc = results.setdefault((clients, mode), {"reads": [], "whole": [], "stale": 0, "pairs": 0, "wall": 0.0})
                    for reads, whole, stale in got:
                        acc["reads"] += reads
                        acc["whole"] += whole
                        acc["stale"] += stale
                        acc["pairs"] += len(reads)
                    acc["wall"] += wall
    finally:
        with admin.cursor() as c:
            c.execute(f"DROP TABLE {table}")

    rows = []
    for (clients, mode), acc in sorted(results.items(), key=lambda kv: (kv[0][0], MODES.index(kv[0][1]))):
        ms = lambda s: f"{s * 1000:.3f}"  # noqa: E731
        rows.append((clients, mode, acc["pairs"], ms(statistics.median(acc["reads"])), ms(report.percentile(acc["reads"], 95)),
                     ms(statistics.median(acc["whole"])), ms(report.percentile(acc["whole"], 95)),
                     f"{acc['pairs'] / acc['wall']:.0f}", acc["stale"]))
    header = ("clients", "mode", "pairs", "read median ms", "read p95 ms", "pair median ms", "pair p95 ms",
              "pairs/s", "stale reads")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    table_md = "\n".join(lines)
    print(table_md)

    # Conclusions computed from the data: the read cost of sync_wait relative to the writer.
    summary = []
    for clients in sorted({c for c, _ in results}):
        w = statistics.median(results[(clients, "writer")]["reads"])
        s = statistics.median(results[(clients, "sync_wait")]["reads"])
        tw = results[(clients, "writer")]["pairs"] / results[(clients, "writer")]["wall"]
        ts = results[(clients, "sync_wait")]["pairs"] / results[(clients, "sync_wait")]["wall"]
        summary.append(f"- {clients} client(s): a read with `wsrep_sync_wait=1` on another node takes "
                       f"{s / w:.2f}× the median time of the same read on the writer; pairs per second "
                       f"{ts / tw:.2f}× the writer's.")
    print("\n".join(summary))
    if opts.write_doc:
        block = "\n".join([
            START,
            f"Run on commit {report.revision()}, {report.machine()}, all three nodes on this one "
            f"machine: `integration/bench/galera_ryw.py --pairs {opts.pairs} --clients {opts.clients} "
            f"--rounds {opts.rounds} --write-doc`.",
            "",
            table_md,
            "",
            *summary,
            END,
        ])
        for doc in ("galera.md", "benchmarks.md"):
            report.write_section(os.path.join(REPO, "docs", doc), block + "\n", START, END)


if __name__ == "__main__":
    main()
