#!/usr/bin/env python3
"""Connection sharing (issue #15), measured side by side in one run; started by
integration/bench/sharing.sh (which builds rwproxy and passes the options), a report, not a test.

On a cluster of its own (cluster.sh --name), with one server account per target so that the
servers' process lists count exactly the connections of that target, it starts four rwproxy
processes (release build, the binary given):

  many-pooled     the three servers, pool.max_per_backend: CAP          (part 1)
  many-unpooled   the three servers, pool.enabled: false                (part 1)
  pooled          the primary only, pool.max_per_backend: CAP           (parts 2-4)
  unpooled        the primary only, pool.enabled: false                 (parts 2-4)

and measures:

  1. CLIENTS client connections (an asyncio client of idle_conns.py, logged in to schema app)
     with IN_FLIGHT statements outstanding at every moment, each sent on a connection drawn at
     random among those not busy (80 % point selects, 20 % single-row updates), for MANY_TIME
     seconds, through many-pooled then many-unpooled: server threads per backend (the
     servers' PROCESSLIST counted by account, sampled every second, and
     rwproxy_backend_connections), statements/s, errors, client latency, the p95 of
     rwproxy_pool_borrow_wait_seconds and the pool's events;
  2. sysbench oltp_point_select at THREADS client threads, text protocol and prepared
     statements: direct to the primary, pooled, unpooled; transactions/s, p95, errors, the
     server threads of the target's account, rwproxy's CPU per query;
  3. connect-per-request (connect_per_request.measure): direct, pooled, unpooled;
  4. CPU per query at CPU_THREADS client threads (the same sysbench matrix): pooled vs unpooled
     (utime + stime of the rwproxy process from /proc/PID/stat, divided by sysbench's queries).

The sysbench runs are interleaved (direct, pooled, unpooled for one cell, then the next cell,
and the whole matrix ROUNDS times; medians over the rounds) so machine noise falls on all
alike. Writes its Markdown section into docs/benchmarks.md between the bench:sharing markers
(unless --no-doc) and its raw figures into SCRATCH/bench-sharing.json. Exits non-zero only when
the harness itself fails.
"""

import argparse
import asyncio
import datetime
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import pymysql

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import connect_per_request as cpr  # noqa: E402
import report  # noqa: E402
from idle_conns import Conn, ProtocolError  # noqa: E402

START_MARK = "<!-- bench:sharing:start -->"
END_MARK = "<!-- bench:sharing:end -->"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench_pass"
# One server account per target: the process list then counts exactly that target's connections.
ACCOUNTS = {
    "direct": "bench_direct",
    "pooled": "bench_pooled",
    "unpooled": "bench_unpooled",
    "many-pooled": "bench_many_pooled",
    "many-unpooled": "bench_many_unpooled",
}
# name: (listen port, admin port, all three servers?, pooled?)
PROXIES = {
    "many-pooled": (6371, 9371, True, True),
    "many-unpooled": (6372, 9372, True, False),
    "pooled": (6373, 9373, False, True),
    "unpooled": (6374, 9374, False, False),
}
TARGET_LABEL = {
    "direct": "direct (primary)",
    "pooled": "rwproxy pooled",
    "unpooled": "rwproxy without pooling",
}


def log(msg):
    print(f"sharing: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- measurements


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def scrape(admin_port):
    """rwproxy's metrics that matter here: {"conns": {backend: n}, "idle": {backend: n},
    "events": {event: n}, "pinned": {reason: n}, "wait": [(le, cumulative count)],
    "errors": {code: n}}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {"conns": {}, "idle": {}, "events": {}, "pinned": {}, "wait": [], "errors": {}}

    def label(line, name):
        m = re.search(name + r'="([^"]*)"', line)
        return m.group(1) if m else "?"

    for line in text.splitlines():
        if line.startswith("#"):
            continue
        value = float(line.rsplit(None, 1)[-1]) if line.strip() else 0.0
        if line.startswith("rwproxy_backend_connections{"):
            out["conns"][label(line, "backend")] = value
        elif line.startswith("rwproxy_backend_pool_idle_connections{"):
            out["idle"][label(line, "backend")] = value
        elif line.startswith("rwproxy_backend_pool_events_total{"):
            event = label(line, "event")
            out["events"][event] = out["events"].get(event, 0) + value
        elif line.startswith("rwproxy_pool_pinned_sessions{"):
            out["pinned"][label(line, "reason")] = value
        elif line.startswith("rwproxy_pool_borrow_wait_seconds_bucket{"):
            le = label(line, "le")
            out["wait"].append((float("inf") if le == "+Inf" else float(le), value))
        elif line.startswith("rwproxy_errors_total{"):
            out["errors"][label(line, "code")] = value
    return out


def histogram_quantile(q, before, after):
    """The q-quantile of what a cumulative histogram counted between two scrapes, interpolated
    within its bucket as Prometheus' histogram_quantile does; (value, count, (bucket's lower
    bound, upper bound)) or (None, 0, None)."""
    delta = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = delta[-1][1] if delta else 0
    if total <= 0:
        return None, 0, None
    rank = q * total
    lower, below = 0.0, 0.0
    for le, cum in delta:
        if cum >= rank:
            if le == float("inf"):
                return lower, total, (lower, le)  # past the last finite bucket: its bound
            return lower + (le - lower) * (rank - below) / (cum - below), total, (lower, le)
        lower, below = le, cum
    return lower, total, (lower, float("inf"))


def duration(seconds):
    """A short human form of a duration in seconds."""
    if seconds == float("inf"):
        return "∞"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def wait_text(p95, bucket):
    if p95 is None:
        return "—"
    return f"{duration(p95)} (bucket {duration(bucket[0]) if bucket[0] else '0'}–{duration(bucket[1])})"


def bucket_share_above(bound, before, after):
    """The share of the observations between two scrapes that were above `bound` (a bucket
    bound)."""
    delta = {le: a - b for (le, a), (_, b) in zip(after, before)}
    total = delta.get(float("inf"), 0)
    if total <= 0:
        return None
    return (total - delta.get(bound, 0)) / total


def diff(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


class Servers:
    """Admin connections to the three servers, for the process list and settings."""

    def __init__(self, env):
        self.env = env
        self.ports = {f"db{n + 1}": int(env[f"RWPROXY_NODE{n}_PORT"]) for n in range(3)}
        self.primary = f"db{int(env['RWPROXY_PRIMARY_NODE']) + 1}"

    def connect(self, backend):
        return pymysql.connect(host="127.0.0.1", port=self.ports[backend], user=self.env["ADMIN_DB_USER"],
                               password=self.env["ADMIN_DB_PASSWORD"], autocommit=True, ssl_disabled=True)

    def query(self, backend, sql):
        c = self.connect(backend)
        try:
            with c.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            c.close()


class Sampler(threading.Thread):
    """Every `period` seconds: the number of server threads of each account on each server
    (information_schema.PROCESSLIST), and rwproxy_backend_connections of one rwproxy."""

    def __init__(self, servers, backends, admin_port=None, period=1.0):
        super().__init__(daemon=True)
        self.servers, self.backends, self.admin_port, self.period = servers, backends, admin_port, period
        self.samples = []
        self.stop_event = threading.Event()
        self.failures = 0

    def sample_once(self, conns):
        s = {"t": time.monotonic(), "threads": {}, "metric": {}}
        for b in self.backends:
            with conns[b].cursor() as cur:
                cur.execute("SELECT USER, COUNT(*) FROM information_schema.PROCESSLIST GROUP BY USER")
                s["threads"][b] = {u: int(n) for u, n in cur.fetchall()}
        if self.admin_port:
            s["metric"] = scrape(self.admin_port)["conns"]
        return s

    def run(self):
        conns = {b: self.servers.connect(b) for b in self.backends}
        try:
            while not self.stop_event.is_set():
                try:
                    self.samples.append(self.sample_once(conns))
                except (pymysql.MySQLError, OSError):
                    self.failures += 1
                self.stop_event.wait(self.period)
        finally:
            for c in conns.values():
                c.close()

    def stop(self):
        self.stop_event.set()
        self.join(30)

    def max_threads(self, backend, user):
        return max((s["threads"][backend].get(user, 0) for s in self.samples), default=None)

    def max_metric(self, backend):
        return max((s["metric"].get(backend, 0) for s in self.samples), default=None)


# ---------------------------------------------------------------- rwproxy processes


def start_proxies(opts, env, servers, scratch):
    procs = {}
    for name, (port, admin, all_three, pooled) in PROXIES.items():
        backends = servers.ports.items() if all_three else [(servers.primary, servers.ports[servers.primary])]
        pool = f"{{ enabled: true, max_per_backend: {opts.cap} }}" if pooled else "{ enabled: false }"
        cfg = os.path.join(scratch, f"bench-sharing-{name}.yaml")
        with open(cfg, "w") as f:
            f.write(f"# Written by integration/bench/sharing.py ({name}).\n"
                    f"listen: 127.0.0.1:{port}\n"
                    f"max_client_connections: {max(4096, opts.clients + 1000)}\n"
                    "users:\n"
                    f"  - {{ name: {ACCOUNTS[name]}, password: \"{PASSWORD}\" }}\n"
                    "backends:\n"
                    + "".join(f"  - {{ name: {b}, address: \"127.0.0.1:{p}\" }}\n" for b, p in backends)
                    + f"monitor: {{ user: {env['MONITOR_USER']}, password: \"{env['MONITOR_PASSWORD']}\", interval: 1s }}\n"
                    f"pool: {pool}\n"
                    f"admin: {{ listen: 127.0.0.1:{admin} }}\n"
                    "log: { level: warn }\n")
        logf = open(os.path.join(scratch, f"bench-sharing-{name}.log"), "w")
        procs[name] = subprocess.Popen([opts.rwproxy_bin, "--config", cfg], stdin=subprocess.DEVNULL,
                                       stdout=logf, stderr=subprocess.STDOUT)
    for name, proc in procs.items():
        admin = PROXIES[name][1]
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                sys.exit(f"sharing: rwproxy {name} exited at start-up; see {scratch}/bench-sharing-{name}.log")
            try:
                # /ready: the monitor has seen the backends (reads go to replicas only then).
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"sharing: rwproxy {name} is not ready")
                time.sleep(0.1)
    return procs


# ---------------------------------------------------------------- setup


def setup(opts, env, servers):
    """Accounts, max_connections, the sysbench table; returns ({backend: (max_connections
    before, after)} for those this run raised, {backend: max_connections now})."""
    stmts = []
    for user in ACCOUNTS.values():
        for host in ("127.0.0.1", "localhost"):
            stmts.append(f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{PASSWORD}'")
            stmts.append(f"GRANT ALL PRIVILEGES ON app.* TO '{user}'@'{host}'")
    c = servers.connect(servers.primary)
    with c.cursor() as cur:
        for s in stmts:
            cur.execute(s)
        cur.execute("SELECT @@gtid_binlog_pos")
        pos = cur.fetchone()[0]
    c.close()
    changed, now = {}, {}
    for b in servers.ports:
        before = int(servers.query(b, "SELECT @@max_connections")[0][0])
        if before < opts.max_connections:
            servers.query(b, f"SET GLOBAL max_connections = {opts.max_connections}")
            changed[b] = (before, opts.max_connections)
        now[b] = int(servers.query(b, "SELECT @@max_connections")[0][0])
    try:
        rows = int(servers.query(servers.primary, "SELECT COUNT(*) FROM app.sbtest1")[0][0])
    except pymysql.MySQLError:
        rows = None
    if rows != opts.table_size:
        log(f"loading the sysbench table (app.sbtest1, {opts.table_size} rows)")
        servers.query(servers.primary, "DROP TABLE IF EXISTS app.sbtest1")
        cmd = sysbench_base(opts, int(env["RWPROXY_PRIMARY_PORT"]), ACCOUNTS["direct"])
        subprocess.run(["sysbench", "oltp_read_write", *cmd, "prepare"], check=True,
                       stdout=subprocess.DEVNULL, timeout=900)
        pos = servers.query(servers.primary, "SELECT @@gtid_binlog_pos")[0][0]
    for b in servers.ports:
        if b != servers.primary:
            got = servers.query(b, f"SELECT MASTER_GTID_WAIT('{pos}', 300)")[0][0]
            if int(got) != 0:
                sys.exit(f"sharing: {b} did not catch up with the primary ({pos})")
    return changed, now


# ---------------------------------------------------------------- part 1: many clients


class StatementError(Exception):
    def __init__(self, code, text):
        super().__init__(text)
        self.code = code


async def run_statement(conn, sql):
    """Sends one COM_QUERY and reads its whole reply (an OK, an error or a text result set)."""
    conn.seq = 0
    conn.write_packet(b"\x03" + sql.encode())
    await conn.w.drain()
    first = await conn.read_packet()
    if first[:1] == b"\x00":
        return
    if first[:1] == b"\xff":
        raise StatementError(int.from_bytes(first[1:3], "little"), first[3:].decode(errors="replace"))
    for _ in range(first[0]):
        await conn.read_packet()  # column definitions
    await conn.read_packet()  # EOF (CLIENT_DEPRECATE_EOF is not asked for)
    while True:
        pkt = await conn.read_packet()
        if pkt[:1] == b"\xfe" and len(pkt) < 9:
            return
        if pkt[:1] == b"\xff":
            raise StatementError(int.from_bytes(pkt[1:3], "little"), pkt[3:].decode(errors="replace"))


async def many_clients(opts, port, user):
    """Opens opts.clients connections, then keeps opts.in_flight statements outstanding for
    opts.many_time seconds; returns the client-side figures and a callback list of phases."""
    sem = asyncio.Semaphore(100)
    open_errors = {}

    async def open_one():
        async with sem:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
                conn = Conn(reader, writer)
                await asyncio.wait_for(conn.handshake(user, PASSWORD, db="app"), 30)
                return conn
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ProtocolError) as e:
                key = type(e).__name__
                open_errors[key] = open_errors.get(key, 0) + 1
                return None

    t0 = time.monotonic()
    conns = [c for c in await asyncio.gather(*(open_one() for _ in range(opts.clients))) if c is not None]
    opened_in = time.monotonic() - t0
    return conns, open_errors, opened_in


async def drive(opts, conns):
    free = list(range(len(conns)))
    lat, errors, used = [], {}, [0] * len(conns)
    counts = {"read": 0, "write": 0}
    stop_at = time.monotonic() + opts.many_time
    rng = random.Random(15)

    async def worker():
        while time.monotonic() < stop_at and free:
            k = rng.randrange(len(free))
            i = free[k]
            free[k] = free[-1]
            free.pop()
            key = rng.randint(1, opts.table_size)
            if rng.random() < 0.8:
                kind, sql = "read", f"SELECT c FROM sbtest1 WHERE id = {key}"
            else:
                kind, sql = "write", f"UPDATE sbtest1 SET k = k + 1 WHERE id = {key}"
            t = time.perf_counter()
            try:
                await asyncio.wait_for(run_statement(conns[i], sql), 60)
            except StatementError as e:
                errors[f"ERROR {e.code}"] = errors.get(f"ERROR {e.code}", 0) + 1
                free.append(i)
                continue
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ProtocolError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                continue  # the connection is not used again
            lat.append(time.perf_counter() - t)
            used[i] += 1
            counts[kind] += 1
            free.append(i)

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(opts.in_flight)))
    wall = time.monotonic() - t0
    return {"lat": lat, "errors": errors, "used": sum(1 for u in used if u), "wall": wall, **counts}


async def close_all(conns):
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


def part1(opts, servers, procs):
    backends = list(servers.ports)
    out = {}
    for name in ("many-pooled", "many-unpooled"):
        port, admin, _, _ = PROXIES[name]
        user = ACCOUNTS[name]
        log(f"part 1: {opts.clients} clients through {name}, {opts.in_flight} in flight, {opts.many_time} s")
        loop = asyncio.new_event_loop()
        conns, open_errors, opened_in = loop.run_until_complete(many_clients(opts, port, user))
        time.sleep(1)
        idle_sampler = Sampler(servers, backends, admin)
        conns_db = {b: servers.connect(b) for b in backends}
        idle_sample = idle_sampler.sample_once(conns_db)
        for c in conns_db.values():
            c.close()
        before = scrape(admin)
        cpu0 = cpu_seconds(procs[name].pid)
        sampler = Sampler(servers, backends, admin)
        sampler.start()
        res = loop.run_until_complete(drive(opts, conns))
        cpu1 = cpu_seconds(procs[name].pid)
        after = scrape(admin)
        sampler.stop()
        loop.run_until_complete(close_all(conns))
        loop.close()
        wait_p95, borrows, wait_bucket = histogram_quantile(0.95, before["wait"], after["wait"])
        n = res["read"] + res["write"]
        out[name] = {
            "clients": len(conns),
            "open_errors": open_errors,
            "opened_in": opened_in,
            "idle_threads": {b: idle_sample["threads"][b].get(user, 0) for b in backends},
            "statements": n,
            "reads": res["read"],
            "writes": res["write"],
            "wall": res["wall"],
            "rate": n / res["wall"],
            "p50_ms": statistics.median(res["lat"]) * 1000 if res["lat"] else None,
            "p95_ms": report.percentile(res["lat"], 95) * 1000 if res["lat"] else None,
            "mean_in_flight": sum(res["lat"]) / res["wall"],
            "used": res["used"],
            "errors": res["errors"],
            "max_threads": {b: sampler.max_threads(b, user) for b in backends},
            "max_monitor_threads": {b: sampler.max_threads(b, "monitor") for b in backends},
            "max_metric": {b: sampler.max_metric(b) for b in backends},
            "samples": len(sampler.samples),
            "sampler_failures": sampler.failures,
            "wait_p95_s": wait_p95,
            "wait_bucket": wait_bucket,
            "borrows": borrows,
            "wait_over_1ms": bucket_share_above(0.001, before["wait"], after["wait"]),
            "events": diff(after["events"], before["events"]),
            "pinned_end": {k: v for k, v in after["pinned"].items() if v},
            "proxy_errors": {k: v for k, v in diff(after["errors"], before["errors"]).items() if v},
            "cpu_us_per_stmt": (cpu1 - cpu0) / n * 1e6 if n else None,
        }
        log(f"  {n} statements ({n / res['wall']:.0f}/s), errors {res['errors']}, "
            f"server threads max {out[name]['max_threads']}")
        # Let the unpooled sessions' server threads go before the next measurement.
        time.sleep(2)
    return out


# ---------------------------------------------------------------- parts 2 and 4: sysbench


def sysbench_base(opts, port, user):
    return ["--db-driver=mysql", "--mysql-host=127.0.0.1", f"--mysql-port={port}", f"--mysql-user={user}",
            f"--mysql-password={PASSWORD}", "--mysql-db=app", "--tables=1", f"--table-size={opts.table_size}"]


def parse_sysbench(out):
    def grab(pattern, conv):
        m = re.search(pattern, out, re.M)
        return conv(m.group(1)) if m else None

    return {
        "queries": grab(r"^\s+queries:\s+(\d+)\s+\(", int),
        "tps": grab(r"^\s+transactions:\s+\d+\s+\(([\d.]+) per sec", float),
        "p95_ms": grab(r"95th percentile:\s+([\d.]+)", float),
        "errors": grab(r"ignored errors:\s+(\d+)", int),
        "reconnects": grab(r"reconnects:\s+(\d+)", int),
    }


def sysbench_run(opts, env, servers, procs, target, threads, ps_mode):
    if target == "direct":
        port, pid, admin = int(env["RWPROXY_PRIMARY_PORT"]), None, None
    else:
        port, admin = PROXIES[target][0], PROXIES[target][1]
        pid = procs[target].pid
    user = ACCOUNTS[target]
    cmd = ["sysbench", "oltp_point_select", *sysbench_base(opts, port, user), f"--threads={threads}",
           f"--time={opts.time}", "--report-interval=0", "--percentile=95", f"--db-ps-mode={ps_mode}",
           "--mysql-ignore-errors=all", "run"]
    sampler = Sampler(servers, [servers.primary], None, period=0.5)
    before = scrape(admin) if admin else None
    cpu0 = cpu_seconds(pid) if pid else None
    sampler.start()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=opts.time + 300)
    sampler.stop()
    r = parse_sysbench(proc.stdout)
    r["exit"] = proc.returncode
    if proc.returncode != 0 or r["queries"] is None:
        log(f"  sysbench failed against {target} ({threads} threads, ps {ps_mode}): "
            f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        r["failed"] = True
    if pid:
        cpu = cpu_seconds(pid) - cpu0
        after = scrape(admin)
        r["cpu_us_per_query"] = cpu / r["queries"] * 1e6 if r.get("queries") else None
        r["pool_full"] = after["events"].get("full", 0) - before["events"].get("full", 0)
        r["proxy_errors"] = {k: v for k, v in diff(after["errors"], before["errors"]).items() if v}
        r["wait_p95_s"], _, r["wait_bucket"] = histogram_quantile(0.95, before["wait"], after["wait"])
    r["max_threads"] = sampler.max_threads(servers.primary, user)
    return r


def matrix(opts, env, servers, procs):
    cells = [(t, ps) for t in [opts.cpu_threads] + opts.threads for ps in opts.ps_modes]
    runs = {}
    for rnd in range(1, opts.rounds + 1):
        for threads, ps in cells:
            log(f"parts 2 and 4: round {rnd}/{opts.rounds}, {threads} threads, ps-mode {ps}")
            for target in ("direct", "pooled", "unpooled"):
                r = sysbench_run(opts, env, servers, procs, target, threads, ps)
                runs.setdefault(f"{threads}/{ps}/{target}", []).append(r)
                log(f"    {target}: {r.get('tps')} tps, p95 {r.get('p95_ms')} ms, errors {r.get('errors')}, "
                    f"server threads max {r.get('max_threads')}, CPU µs/q {r.get('cpu_us_per_query')}")
    return cells, runs


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ---------------------------------------------------------------- the report


def fmt(v, spec=",.0f", none="—"):
    return none if v is None else format(v, spec)


def target_line(label, measured, target, higher_is_better=True, unit="×"):
    """"met" or "missed by …", computed from the ratio and the target."""
    if measured is None:
        return f"{label}: no figure"
    if higher_is_better:
        if measured >= target:
            return f"{label}: **met** ({measured:.2f}{unit}, target ≥ {target:g}{unit})"
        short = (1 - measured / target) * 100
        return (f"{label}: **missed** ({measured:.2f}{unit} against ≥ {target:g}{unit}: {short:.0f} % short; "
                f"{target / measured:.2f} times the measured figure would be needed)")
    if measured <= target:
        return f"{label}: **met** ({measured:.2f}{unit}, target ≤ {target:g}{unit})"
    return (f"{label}: **missed** ({measured:.2f}{unit} against ≤ {target:g}{unit}: "
            f"{(measured / target - 1) * 100:.0f} % over)")


def per_round(runs, num, den, key):
    """The ratios num / den of `key` round by round (runs of one round side by side), as
    "a, b, c"."""
    out = []
    for a, b in zip(runs[num], runs[den]):
        if a.get(key) and b.get(key):
            out.append(f"{a[key] / b[key]:.2f}")
    return ", ".join(out) or "none"


def rounds(n):
    return f"{n} round" + ("s" if n != 1 else "")


def errors_text(d):
    return ", ".join(f"{k}: {v:,.0f}" for k, v in sorted(d.items())) if d else "0"


def render(opts, env, servers, changed, p1, cells, runs, cpr_results, cpr_targets, meta):
    L = []
    add = L.append
    add(START_MARK)
    add("## Connection sharing: many clients over few server connections (issue #15)")
    add("")
    now = " / ".join(f"{n:,}" for n in meta["max_connections"].values())
    mc = ("raised by this run from " + ", ".join(f"{a:,} on {b}" for b, (a, _) in changed.items())
          if changed else "none raised by this run")
    add(f"Written by `{meta['command']}`. Run {meta['started']} UTC on commit {meta['revision']}; machine: "
        f"{report.machine()} (servers, rwproxy and the clients share it; load average "
        f"{meta['load_before']} when the run started). Release build of rwproxy. "
        f"A cluster of its own (`integration/cluster.sh up --name {meta['cluster']}`, primary "
        f"127.0.0.1:{env['RWPROXY_PRIMARY_PORT']}, MariaDB {meta['version']}); `max_connections` "
        f"{now} ({' / '.join(meta['max_connections'])}; the script raises it to {opts.max_connections:,} "
        f"with `SET GLOBAL` as admin where lower, {mc}) so that {max(opts.threads)} direct threads and "
        f"the sessions without pooling fit. Each target logs in with its own server account, so the servers' process list "
        f"(`information_schema.PROCESSLIST`, counted by account) shows exactly its connections; "
        f"the monitor account's are counted apart. rwproxy runs with `pool.max_per_backend: {opts.cap}` "
        f"(\"pooled\") or `pool.enabled: false` (\"without pooling\"), other settings default "
        f"(`consistency: session`, `monitor.interval: 1s`).")
    add("")

    # part 1
    add(f"### {opts.clients:,} client connections, {opts.in_flight} statements in flight")
    add("")
    add(f"rwproxy in front of the three servers. {opts.clients:,} connections (logged in to schema `app`) "
        f"are opened, then for {opts.many_time} s an asyncio client keeps {opts.in_flight} statements "
        f"outstanding, each sent on a connection drawn at random among those not busy: 80 % "
        f"`SELECT c FROM sbtest1 WHERE id = ?` (reads, to the replicas), 20 % "
        f"`UPDATE sbtest1 SET k = k + 1 WHERE id = ?` (writes, to the primary), autocommit. "
        f"Server threads are sampled every second.")
    add("")
    names = ("many-pooled", "many-unpooled")
    add(f"| | rwproxy pooled (`max_per_backend: {opts.cap}`) | rwproxy without pooling |")
    add("|---|---|---|")
    bk = list(servers.ports)

    def per_backend(d):
        return " / ".join(fmt(d.get(b)) for b in bk)

    rows = [
        ("client connections open", lambda r: f"{r['clients']:,}" + (f" ({errors_text(r['open_errors'])} failed)" if r["open_errors"] else "")),
        (f"server threads of the account with every client connected and idle ({' / '.join(bk)})", lambda r: per_backend(r["idle_threads"])),
        (f"**server threads of the account under load, most seen** ({' / '.join(bk)})", lambda r: "**" + per_backend(r["max_threads"]) + "**"),
        (f"`rwproxy_backend_connections`, most seen ({' / '.join(bk)})", lambda r: per_backend(r["max_metric"])),
        (f"the monitor account's server threads, most seen ({' / '.join(bk)}; the monitors of all four rwproxy processes)", lambda r: per_backend(r["max_monitor_threads"])),
        ("statements (reads / writes)", lambda r: f"{r['statements']:,} ({r['reads']:,} / {r['writes']:,})"),
        ("statements/s", lambda r: f"{r['rate']:,.0f}"),
        ("mean statements in flight (sum of latencies / time)", lambda r: f"{r['mean_in_flight']:.1f}"),
        ("client connections that ran a statement", lambda r: f"{r['used']:,}"),
        ("client latency median / p95 (ms)", lambda r: f"{fmt(r['p50_ms'], '.2f')} / {fmt(r['p95_ms'], '.2f')}"),
        ("errors", lambda r: errors_text(r["errors"])),
        ("`rwproxy_pool_borrow_wait_seconds` p95 (interpolated in its bucket) / borrows", lambda r: "—" if not r["borrows"] else f"{wait_text(r['wait_p95_s'], r['wait_bucket'])} / {r['borrows']:,.0f}"),
        ("borrows that waited over 1 ms", lambda r: "—" if r["wait_over_1ms"] is None else f"{r['wait_over_1ms'] * 100:.2f} %"),
        ("pool events: reused / restored / reset / full", lambda r: " / ".join(fmt(r["events"].get(e, 0)) for e in ("reused", "restored", "reset", "full")) if r["borrows"] else "—"),
        ("rwproxy CPU per statement (µs)", lambda r: fmt(r["cpu_us_per_stmt"], ".1f")),
    ]
    pool_only = ("`rwproxy_pool_borrow_wait_seconds`", "borrows that waited", "pool events")
    for label, f in rows:
        unpooled = "— (no pool)" if label.startswith(pool_only) else f(p1[names[1]])
        add(f"| {label} | {f(p1[names[0]])} | {unpooled} |")
    add("")

    # parts 2 and 4
    add(f"### sysbench `oltp_point_select`, {', '.join(str(t) for t in [opts.cpu_threads] + opts.threads)} client threads")
    add("")
    add(f"rwproxy with **only the primary as backend** (so every target serves the point selects "
        f"from the same server; with replicas rwproxy would spread them over three servers) against "
        f"the primary directly. {rounds(opts.rounds)} of {opts.time} s runs, interleaved; each figure is "
        f"the median over the rounds, errors and reconnects are summed, server threads are the most "
        f"seen (sampled every 0.5 s) for the target's account on the primary (for the pooled rwproxy these include idle "
        f"connections kept from the previous cell, until `pool.idle_timeout`), rwproxy's CPU per query is "
        f"the utime + stime of its process during the run divided by sysbench's queries. "
        f"`--mysql-ignore-errors=all`, "
        f"table of {opts.table_size:,} rows. Text protocol: `--db-ps-mode=disable`; prepared: "
        f"`--db-ps-mode=auto` (the default). \"borrow wait p95\": of `rwproxy_pool_borrow_wait_seconds` "
        f"during the run, interpolated in its bucket (median over the rounds).")
    add("")
    add("| threads | protocol | target | transactions/s | × direct | p95 ms | errors / reconnects | server threads | rwproxy CPU µs/query | borrow wait p95 |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    agg = {}
    for threads, ps in cells:
        for target in ("direct", "pooled", "unpooled"):
            rs = runs[f"{threads}/{ps}/{target}"]
            agg[(threads, ps, target)] = a = {
                "tps": med([r.get("tps") for r in rs]),
                "p95": med([r.get("p95_ms") for r in rs]),
                "errors": sum(r.get("errors") or 0 for r in rs),
                "reconnects": sum(r.get("reconnects") or 0 for r in rs),
                "threads": max((r.get("max_threads") or 0 for r in rs), default=None),
                "cpu": med([r.get("cpu_us_per_query") for r in rs]),
                "wait": med([r.get("wait_p95_s") for r in rs]),
                "failed": sum(1 for r in rs if r.get("failed")),
            }
        for target in ("direct", "pooled", "unpooled"):
            a, d = agg[(threads, ps, target)], agg[(threads, ps, "direct")]
            ratio = a["tps"] / d["tps"] if a["tps"] and d["tps"] else None
            add(f"| {threads} | {'text' if ps == 'disable' else 'prepared'} | {TARGET_LABEL[target]} | "
                f"{fmt(a['tps'])} | {fmt(ratio, '.2f')} | {fmt(a['p95'], '.2f')} | "
                f"{a['errors']:,} / {a['reconnects']:,}{' (' + str(a['failed']) + ' runs failed)' if a['failed'] else ''} | "
                f"{fmt(a['threads'])} | {fmt(a['cpu'], '.1f') if target != 'direct' else '—'} | "
                f"{duration(a['wait']) if a['wait'] is not None and target == 'pooled' else '—'} |")
    add("")

    # part 3
    add("### Connect-per-request")
    add("")
    add(f"`connect_per_request.measure` (see \"Connect-per-request\" above) in this run, against the same "
        f"targets: each request opens a connection (PyMySQL, schema `app`), runs `SELECT ? + 1` and "
        f"closes it; {opts.cpr_requests} requests per client process per round, {rounds(opts.rounds)}, "
        f"interleaved. \"server logins\" is the primary's `Connections` status delta.")
    add("")
    cpr_table, _, cpr_rates = cpr.render(cpr_results, cpr_targets)
    add(cpr_table)
    add("")

    # targets
    add("### Against the targets")
    add("")
    cap_ok = all((p1["many-pooled"]["max_threads"][b] or 0) <= opts.cap for b in bk)
    worst = max(p1["many-pooled"]["max_threads"][b] or 0 for b in bk)
    mon = max(p1["many-pooled"]["max_monitor_threads"][b] or 0 for b in bk)
    add(f"- Server threads with {opts.clients:,} clients, pooled, target ≤ {opts.cap} per backend plus the "
        f"monitor's: **{'met' if cap_ok else 'missed'}** (at most {worst} of the clients' account on a "
        f"backend, plus {mon} of the monitor account, the monitors of all four rwproxy processes; "
        f"without pooling: "
        f"{per_backend(p1['many-unpooled']['max_threads'])}).")
    for clients in sorted(cpr_rates):
        r = cpr_rates[clients]
        add("- " + target_line(f"Connect-per-request, {clients} client process(es), pooled / direct requests per second",
                               r["rwproxy pooled"] / r["direct"], 1.5))
    for threads, ps in cells:
        if threads < 256:
            continue
        a, d = agg[(threads, ps, "pooled")], agg[(threads, ps, "direct")]
        ratio = a["tps"] / d["tps"] if a["tps"] and d["tps"] else None
        spread = per_round(runs, f"{threads}/{ps}/pooled", f"{threads}/{ps}/direct", "tps")
        add("- " + target_line(f"{threads} threads, {'text' if ps == 'disable' else 'prepared'}, pooled / direct "
                               f"transactions per second (medians; per round {spread})", ratio, 1.0))
    for ps in opts.ps_modes:
        a, u = agg[(opts.cpu_threads, ps, "pooled")], agg[(opts.cpu_threads, ps, "unpooled")]
        ratio = a["cpu"] / u["cpu"] if a["cpu"] and u["cpu"] else None
        spread = per_round(runs, f"{opts.cpu_threads}/{ps}/pooled", f"{opts.cpu_threads}/{ps}/unpooled",
                           "cpu_us_per_query")
        add("- " + target_line(f"CPU per query at {opts.cpu_threads} threads, {'text' if ps == 'disable' else 'prepared'}, "
                               f"pooled / without pooling ({fmt(a['cpu'], '.1f')} / {fmt(u['cpu'], '.1f')} µs, "
                               f"medians; per round {spread})", ratio, 1.0, higher_is_better=False))
    add("")
    add(f"Reproduce: `integration/bench/sharing.sh` (about {meta['minutes']} minutes here; "
        f"`--quick` for a short look). Raw figures: `.scratch/bench-sharing.json`.")
    add(END_MARK)
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rwproxy-bin", required=True)
    ap.add_argument("--cluster", default="bench-share")
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--doc", default=os.path.join(REPO, "docs", "benchmarks.md"))
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--command", default="integration/bench/sharing.sh")
    ap.add_argument("--cap", type=int, default=32)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--in-flight", type=int, default=40)
    ap.add_argument("--many-time", type=int, default=30)
    ap.add_argument("--threads", default="256,512")
    ap.add_argument("--cpu-threads", type=int, default=8)
    ap.add_argument("--ps-modes", default="disable,auto")
    ap.add_argument("--time", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpr-requests", type=int, default=500)
    ap.add_argument("--cpr-clients", default="1,8")
    ap.add_argument("--table-size", type=int, default=100000)
    ap.add_argument("--max-connections", type=int, default=2000)
    opts = ap.parse_args()
    opts.threads = [int(x) for x in opts.threads.split(",") if x]
    opts.ps_modes = [x for x in opts.ps_modes.split(",") if x]
    started = time.monotonic()
    meta = {
        "command": opts.command,
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "revision": report.revision(),
        "cluster": opts.cluster,
        "load_before": open("/proc/loadavg").read().split()[0],
    }
    env = report.cluster_env("cluster.sh", "--name", opts.cluster)
    servers = Servers(env)
    meta["version"] = servers.query(servers.primary, "SELECT VERSION()")[0][0].split("-")[0]
    changed, meta["max_connections"] = setup(opts, env, servers)
    procs = start_proxies(opts, env, servers, opts.scratch)
    try:
        p1 = part1(opts, servers, procs)
        cells, runs = matrix(opts, env, servers, procs)
        log("part 3: connect-per-request")
        cpr_targets = {"direct": int(env["RWPROXY_PRIMARY_PORT"]), "rwproxy pooled": PROXIES["pooled"][0],
                       "rwproxy unpooled": PROXIES["unpooled"][0]}
        creds = {"direct": ACCOUNTS["direct"], "rwproxy pooled": ACCOUNTS["pooled"],
                 "rwproxy unpooled": ACCOUNTS["unpooled"]}
        cpr_results = cpr.measure(env, cpr_targets, [int(x) for x in opts.cpr_clients.split(",")], opts.rounds,
                                  opts.cpr_requests, creds={k: (v, PASSWORD) for k, v in creds.items()})
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    meta["minutes"] = max(1, round((time.monotonic() - started) / 60))
    with open(os.path.join(opts.scratch, "bench-sharing.json"), "w") as f:
        json.dump({"meta": meta, "max_connections_changed": changed, "part1": p1, "sysbench": runs,
                   "connect_per_request": {f"{c}/{n}": {k: v for k, v in acc.items() if k != "lat"}
                                           for (c, n), acc in cpr_results.items()}},
                  f, indent=1, default=str)
    section = render(opts, env, servers, changed, p1, cells, runs, cpr_results, cpr_targets, meta)
    print(section)
    if not opts.no_doc:
        report.write_section(opts.doc, section, START_MARK, END_MARK)
        log(f"wrote the section into {opts.doc}")


if __name__ == "__main__":
    main()
