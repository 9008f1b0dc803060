#!/usr/bin/env python3
"""Runs the sysbench matrix for integration/bench/run.sh and writes its Markdown section.

Started by run.sh once the cluster, the dataset, HAProxy and rwproxy are up; it only talks to
them. Each cell of the matrix (workload x threads) is run against the primary directly, through
HAProxy and through rwproxy, one after the other, and the whole matrix is repeated --repeat
times, so that noise from the rest of the machine falls on the three alike. Medians are taken
over the repeats.

Per run it reads, besides sysbench's own figures:
  * the CPU time (utime + stime from /proc/PID/stat) HAProxy or rwproxy used during the run,
  * rwproxy's routing decisions (rwproxy_routing_decisions_total from the admin endpoint),
and at the end rwproxy's peak RSS (VmHWM). With --profile it samples rwproxy with
`perf record -e cpu-clock` during one more point-select run and lists the functions with the
most self time, then counts HAProxy's and rwproxy's system calls (`perf trace -s`) and context
switches (/proc/PID/task/*/status) per query during one point-select run each.

Standard library only. Exits non-zero only when the harness itself fails (e.g. every run
against the primary directly failed, so nothing can be compared).
"""

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request

from report import machine, revision, write_section

START_MARK = "<!-- bench:sysbench:start -->"
END_MARK = "<!-- bench:sysbench:end -->"

# (key, label in the report, sysbench test, extra sysbench options); the read-write ones go to
# HAProxy's write listener, the others to its read listener.
WORKLOADS = [
    ("point_select", "`oltp_point_select`", "oltp_point_select", ["--db-ps-mode=disable"]),
    (
        "point_select_ps",
        "`oltp_point_select`, prepared statements",
        "oltp_point_select",
        ["--db-ps-mode=auto"],
    ),
    (
        "read_only",
        "`oltp_read_only --skip-trx=on`",
        "oltp_read_only",
        ["--skip-trx=on", "--db-ps-mode=disable"],
    ),
    (
        "read_only_trx",
        "`oltp_read_only` (`BEGIN` … `COMMIT`)",
        "oltp_read_only",
        ["--db-ps-mode=disable"],
    ),
    ("read_write", "`oltp_read_write`", "oltp_read_write", ["--db-ps-mode=disable"]),
]
WRITES = {"read_write"}
TARGETS = ["direct", "haproxy", "rwproxy"]
TARGET_LABEL = {"direct": "direct", "haproxy": "HAProxy", "rwproxy": "rwproxy"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"sysbench_matrix: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- measurements


def cpu_times(pid):
    """(utime, stime) of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    return sum(cpu_times(pid))


def context_switches(pid):
    """(voluntary, involuntary) context switches of all threads of a process so far."""
    vol = invol = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return vol, invol


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def routing_counts(admin_port):
    """{"role/reason": statements} from rwproxy_routing_decisions_total."""
    url = f"http://127.0.0.1:{admin_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    counts = {}
    for line in text.splitlines():
        if not line.startswith("rwproxy_routing_decisions_total{"):
            continue
        role = re.search(r'role="([^"]+)"', line)
        reason = re.search(r'reason="([^"]+)"', line)
        if role:
            key = f"{role.group(1)}/{reason.group(1) if reason else '?'}"
            counts[key] = counts.get(key, 0) + float(line.rsplit(None, 1)[1])
    return counts


def parse_sysbench(out):
    def grab(pattern, conv=float):
        m = re.search(pattern, out, re.M)
        return conv(m.group(1)) if m else None

    return {
        "queries": grab(r"^\s+queries:\s+(\d+)\s+\(", int),
        "qps": grab(r"^\s+queries:\s+\d+\s+\(([\d.]+) per sec", float),
        "tps": grab(r"^\s+transactions:\s+\d+\s+\(([\d.]+) per sec", float),
        "p95_ms": grab(r"95th percentile:\s+([\d.]+)", float),
        "ignored_errors": grab(r"ignored errors:\s+(\d+)", int),
        "reconnects": grab(r"reconnects:\s+(\d+)", int),
    }


class Bench:
    def __init__(self, args):
        self.a = args
        self.ports = {
            "direct": args.primary_port,
            "haproxy": args.haproxy_port,
            "rwproxy": args.rwproxy_port,
        }
        self.server_ports = [args.primary_port] + [int(p) for p in args.replica_ports.split()]
        self.pids = {"direct": None, "haproxy": args.haproxy_pid, "rwproxy": args.rwproxy_pid}

    def port(self, target, workload_key):
        """Where a workload is sent: HAProxy's write listener for read-write workloads."""
        if target == "haproxy" and workload_key in WRITES:
            return self.a.haproxy_write_port
        return self.ports[target]

    def server_bytes(self):
        """Bytes all database servers sent and received so far (their global status)."""
        total = 0
        for port in self.server_ports:
            total += int(
                self.mariadb(
                    port,
                    "SELECT SUM(VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS "
                    "WHERE VARIABLE_NAME IN ('BYTES_SENT', 'BYTES_RECEIVED')",
                )
            )
        return total

    def sysbench_cmd(self, test, extra, port, threads, seconds):
        a = self.a
        return [
            "sysbench",
            test,
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            f"--mysql-port={port}",
            f"--mysql-user={a.user}",
            f"--mysql-password={a.password}",
            f"--mysql-db={a.db}",
            "--tables=1",
            f"--table-size={a.table_size}",
            f"--threads={threads}",
            f"--time={seconds}",
            "--report-interval=0",
            "--percentile=95",
            *extra,
            "run",
        ]

    def mariadb(self, port, sql):
        a = self.a
        cmd = ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{port}", f"-u{a.user}"]
        cmd += [f"-p{a.password}", "--connect-timeout=5", "-N", "-B", a.db, "-e", sql]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=150, check=True).stdout.strip()

    def wait_replicas(self):
        pos = self.mariadb(self.a.primary_port, "SELECT @@gtid_binlog_pos")
        for port in self.a.replica_ports.split():
            got = self.mariadb(int(port), f"SELECT MASTER_GTID_WAIT('{pos}', 120)")
            if got != "0":
                raise RuntimeError(f"replica on port {port} did not reach GTID {pos}: {got}")

    def run_one(self, target, workload, threads):
        key, _label, test, extra = workload
        pid = self.pids[target]
        cmd = self.sysbench_cmd(test, extra, self.port(target, key), threads, self.a.time)
        bytes0 = self.server_bytes()
        cpu0 = cpu_times(pid) if pid else None
        route0 = routing_counts(self.a.admin_port) if target == "rwproxy" else None
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.a.time + 120)
            out, rc = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = f"timed out: {e}", -1
        wall = time.monotonic() - t0
        res = parse_sysbench(out)
        res.update(target=target, workload=key, threads=threads, rc=rc, wall=wall)
        if pid:
            cpu1 = cpu_times(pid)
            res["user_s"] = cpu1[0] - cpu0[0]
            res["sys_s"] = cpu1[1] - cpu0[1]
            res["cpu_s"] = res["user_s"] + res["sys_s"]
        res["server_bytes"] = self.server_bytes() - bytes0
        if route0 is not None:
            route1 = routing_counts(self.a.admin_port)
            res["routing"] = {
                k: route1[k] - route0.get(k, 0) for k in route1 if route1[k] > route0.get(k, 0)
            }
        if rc != 0 or res["qps"] is None:
            res["error"] = out.strip().splitlines()[-5:] if out.strip() else ["no output"]
            log(f"FAILED {target} {key} {threads}t (exit {rc}): {' | '.join(res['error'])}")
        else:
            log(
                f"{target:8s} {key:16s} {threads:3d}t  {res['qps']:10.1f} q/s  "
                f"p95 {res['p95_ms']:7.2f} ms"
                + (f"  cpu {res['cpu_s']:.2f}s" if pid else "")
            )
        return res

    def matrix(self):
        results = []
        threads_list = [int(t) for t in self.a.threads.split()]
        for rnd in range(1, self.a.repeat + 1):
            log(f"round {rnd} of {self.a.repeat}")
            for workload in WORKLOADS:
                for threads in threads_list:
                    for target in TARGETS:
                        results.append(self.run_one(target, workload, threads))
                        if workload[0] == "read_write":
                            self.wait_replicas()
        return results

    def profile(self):
        """perf samples of rwproxy during an `oltp_read_only` run with transactions (8 threads);
        returns the report data or None."""
        a = self.a
        data = os.path.join(a.scratch, "bench-perf.data")
        seconds = max(a.time, 5)
        sb = subprocess.Popen(
            self.sysbench_cmd(
                "oltp_read_only", ["--db-ps-mode=disable"], a.rwproxy_port, 8, seconds + 2
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(1)  # let sysbench connect and warm up
        perf = subprocess.run(
            ["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-o", data]
            + ["-p", str(a.rwproxy_pid), "--", "sleep", str(seconds)],
            capture_output=True,
            text=True,
        )
        sb_out, _ = sb.communicate(timeout=seconds + 120)
        if perf.returncode != 0:
            log(f"perf record failed: {perf.stderr.strip()[-300:]}")
            return None

        def report(*opts):
            rep = subprocess.run(
                ["perf", "report", "-i", data, "--stdio", "-g", "none", *opts],
                capture_output=True,
                text=True,
            )
            if rep.returncode != 0:
                raise RuntimeError(f"perf report failed: {rep.stderr.strip()[-300:]}")
            return rep.stdout

        try:
            self_by_sym = report("--no-children", "--sort", "dso,sym", "--percent-limit", "0.1")
            self_by_dso = report("--no-children", "-n", "--sort", "dso")
            inclusive = report("--children", "--sort", "sym", "--percent-limit", "0.5")
        except RuntimeError as e:
            log(str(e))
            return None
        rows = []
        for line in self_by_sym.splitlines():
            m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*\S)", line)
            if m:
                sym = re.sub(r"::h[0-9a-f]{16}$", "", m.group(4))
                rows.append((float(m.group(1)), m.group(2), m.group(3), sym))
        dsos = []
        samples = 0
        for line in self_by_dso.splitlines():
            m = re.match(r"\s+([\d.]+)%\s+(\d+)\s+(\S.*\S)", line)
            if m:
                dsos.append((float(m.group(1)), m.group(3)))
                samples += int(m.group(2))
        # Time spent in (and under) each system call, from the kernel call chains.
        syscalls = []
        for line in inclusive.splitlines():
            m = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[k\]\s+__x64_sys_(\w+)", line)
            if m:
                syscalls.append((float(m.group(1)), m.group(2)))
        return {
            "samples": samples,
            "seconds": seconds,
            "rows": rows,
            "dsos": dsos,
            "syscalls": syscalls,
            "sysbench": parse_sysbench(sb_out),
        }

    def syscalls(self, workload_key):
        """System calls and context switches per query of HAProxy and rwproxy, one run of the
        workload (8 threads) each under `perf trace -s`; returns {target: {...}} or None."""
        a = self.a
        _key, _label, test, extra = next(w for w in WORKLOADS if w[0] == workload_key)
        seconds = max(min(a.time, 8), 3)
        out = {}
        for target in ("haproxy", "rwproxy"):
            pid = self.pids[target]
            trace_file = os.path.join(a.scratch, f"bench-trace-{target}.txt")
            cs0 = context_switches(pid)
            trace = subprocess.Popen(
                ["perf", "trace", "-s", "-o", trace_file, "-p", str(pid), "--"]
                + ["sleep", str(seconds + 2)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.5)  # attached before the first query
            sb = subprocess.run(
                self.sysbench_cmd(test, extra, self.port(target, workload_key), 8, seconds),
                capture_output=True,
                text=True,
                timeout=seconds + 120,
            )
            _, err = trace.communicate(timeout=seconds + 60)
            cs1 = context_switches(pid)
            res = parse_sysbench(sb.stdout + sb.stderr)
            queries = res["queries"]
            if trace.returncode != 0 or not queries:
                log(f"perf trace of {target} failed: {err.strip()[-300:]}")
                return None
            counts = {}
            with open(trace_file) as f:
                for line in f:
                    m = re.match(r"\s+(\w+)\s+(\d+)\s+\d+\s+[\d.]+", line)
                    if m and m.group(1) != "syscall":
                        counts[m.group(1)] = counts.get(m.group(1), 0) + int(m.group(2))
            out[target] = {
                "queries": queries,
                "qps": res["qps"],
                "per_query": {k: v / queries for k, v in counts.items()},
                "voluntary": (cs1[0] - cs0[0]) / queries,
                "involuntary": (cs1[1] - cs0[1]) / queries,
            }
            log(
                f"{target} {workload_key}: {sum(counts.values()) / queries:.2f} system calls and "
                f"{(cs1[0] - cs0[0] + cs1[1] - cs0[1]) / queries:.2f} context switches per query"
            )
        return out

    def mallocs(self):
        """Calls to libc's malloc per query (a uprobe, `perf probe`), HAProxy and rwproxy, one
        point-select run each; returns {target: per query} or None when uprobes are unavailable."""
        libc = None
        for path in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6",
                     "/usr/lib64/libc.so.6", "/lib64/libc.so.6"):
            if os.path.exists(path):
                libc = path
                break
        if libc is None:
            return None
        add = subprocess.run(["perf", "probe", "-x", libc, "--add", "malloc"],
                             capture_output=True, text=True)
        if add.returncode != 0 and "already exists" not in add.stderr:
            log(f"perf probe on malloc failed: {add.stderr.strip()[-200:]}")
            return None
        seconds = max(min(self.a.time, 8), 3)
        out = {}
        for target in ("haproxy", "rwproxy"):
            stat = subprocess.Popen(
                ["perf", "stat", "-x", ",", "-e", "probe_libc:malloc", "-p", str(self.pids[target]),
                 "--", "sleep", str(seconds + 2)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            time.sleep(0.5)
            sb = subprocess.run(
                self.sysbench_cmd("oltp_point_select", ["--db-ps-mode=disable"],
                                  self.ports[target], 8, seconds),
                capture_output=True, text=True, timeout=seconds + 120,
            )
            _, err = stat.communicate(timeout=seconds + 60)
            queries = parse_sysbench(sb.stdout + sb.stderr)["queries"]
            count = None
            for line in err.splitlines():
                fields = line.split(",")
                if len(fields) > 2 and "probe_libc:malloc" in fields[2] and fields[0].isdigit():
                    count = int(fields[0])
            if count is None or not queries:
                log(f"counting {target}'s mallocs failed: {err.strip()[-200:]}")
                return None
            out[target] = count / queries
            log(f"{target}: {count / queries:.2f} malloc calls per query")
        subprocess.run(["perf", "probe", "--del", "probe_libc:malloc"], capture_output=True)
        return out


# ---------------------------------------------------------------- the report


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_qps(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_ms(v):
    return "–" if v is None else f"{v:.2f}"


def fmt_ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}"


def summarize(results, threads_list):
    """{(workload, threads): {target: {...medians...}}}"""
    cells = {}
    for key, *_ in WORKLOADS:
        for th in threads_list:
            cell = {}
            for target in TARGETS:
                runs = [
                    r
                    for r in results
                    if r["workload"] == key and r["threads"] == th and r["target"] == target
                ]
                ok = [r for r in runs if "error" not in r]
                def per_query(field, scale):
                    return med(
                        [
                            r[field] / r["queries"] * scale
                            for r in ok
                            if r.get(field) is not None and r.get("queries")
                        ]
                    )
                routing = {}
                for r in ok:
                    for role, n in r.get("routing", {}).items():
                        routing[role] = routing.get(role, 0) + n
                cell[target] = {
                    "runs": len(runs),
                    "failed": len(runs) - len(ok),
                    "qps": med([r["qps"] for r in ok]),
                    "p95": med([r["p95_ms"] for r in ok]),
                    "cpu_us": per_query("cpu_s", 1e6),
                    "user_us": per_query("user_s", 1e6),
                    "sys_us": per_query("sys_s", 1e6),
                    "bytes": per_query("server_bytes", 1),
                    "ignored": sum(r.get("ignored_errors") or 0 for r in ok),
                    "routing": routing,
                }
            cells[(key, th)] = cell
    return cells


def ratio(a, b):
    return None if a is None or not b else a / b


def pct_off(r):
    """A ratio as a signed percentage (`+12%`, `-3%`)."""
    return f"{(r - 1) * 100:+.0f}%"


def targets(cells, threads_list):
    """The issue's targets per cell: rwproxy q/s >= HAProxy's, CPU per query <= HAProxy's,
    p95 <= HAProxy's. Returns (checked, misses) with misses as (cell label, what, ratio)."""
    label = {k: lbl for k, lbl, *_ in WORKLOADS}
    checked = 0
    misses = []
    for key, *_ in WORKLOADS:
        for th in threads_list:
            c = cells[(key, th)]
            h, r = c["haproxy"], c["rwproxy"]
            for what, rv, hv, better_high in (
                ("q/s", r["qps"], h["qps"], True),
                ("CPU per query", r["cpu_us"], h["cpu_us"], False),
                ("p95", r["p95"], h["p95"], False),
            ):
                q = ratio(rv, hv)
                if q is None:
                    continue
                checked += 1
                if (better_high and q < 1) or (not better_high and q > 1):
                    misses.append((f"{label[key]}, {th} threads", what, q))
    return checked, misses


def span(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f}"


def render(args, results, cells, rss, prof, started):
    threads_list = [int(t) for t in args.threads.split()]
    label = {k: lbl for k, lbl, *_ in WORKLOADS}
    now = started.strftime("%Y-%m-%d %H:%M UTC")
    rev = revision()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    L = []
    w = L.append
    w(START_MARK)
    w("## sysbench: directly, through HAProxy, through rwproxy")
    w("")
    w(f"Written by `integration/bench/run.sh`. Run {now} on commit {rev}; machine: {machine()};")
    w(f"load average {load} when the report was written (the machine is shared).")
    w(
        f"{tool_version(['sysbench', '--version'])}, "
        f"{tool_version(['haproxy', '-v']).split(' - ')[0]}, "
        f"MariaDB {args.server_version}."
    )
    w(
        f"One table of {args.table_size:,} rows in schema `app`, user `app`. Each figure is the "
        f"median of {args.repeat} run(s) of {args.time} s; the three paths were run one after "
        "the other for each cell and the whole matrix repeated, so noise falls on all three."
    )
    w(
        "*direct*: the primary (3316). *HAProxy*: TCP mode as deployed for read scaling: the "
        "read-only workloads go to a listener balancing round-robin over the two replicas "
        "rwproxy reads from (3317, 3318), `oltp_read_write` to a listener in front of the "
        "primary. *rwproxy*: release build, `proxy-config.yaml` with other ports (reads to the "
        "replicas, writes and transactions to the primary). Both proxies get 2 threads on the "
        "same 2 cores as the servers and sysbench."
    )
    w("")
    w("Throughput (queries per second) and p95 latency (per sysbench event: one query for point")
    w("selects, one transaction of 14 statements for read-only, 18 for read-write):")
    w("")
    w(
        "| workload | threads | direct q/s | HAProxy q/s | rwproxy q/s | rwproxy / direct "
        "| rwproxy / HAProxy | direct p95 ms | HAProxy p95 ms | rwproxy p95 ms "
        "| p95 rwproxy / direct | p95 rwproxy / HAProxy |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, *_ in WORKLOADS:
        for th in threads_list:
            c = cells[(key, th)]
            d, h, r = c["direct"], c["haproxy"], c["rwproxy"]
            w(
                f"| {label[key]} | {th} | {fmt_qps(d['qps'])} | {fmt_qps(h['qps'])} "
                f"| {fmt_qps(r['qps'])} | {fmt_ratio(r['qps'], d['qps'])} "
                f"| {fmt_ratio(r['qps'], h['qps'])} | {fmt_ms(d['p95'])} | {fmt_ms(h['p95'])} "
                f"| {fmt_ms(r['p95'])} | {fmt_ratio(r['p95'], d['p95'])} "
                f"| {fmt_ratio(r['p95'], h['p95'])} |"
            )
    w("")
    w("Proxy CPU time per query in µs (from `/proc/PID/stat`, all threads: user space + kernel),")
    w("bytes the database servers sent and received per query (their `Bytes_sent` +")
    w("`Bytes_received`, all three servers), and where rwproxy routed the statements")
    w("(`rwproxy_routing_decisions_total` over its runs):")
    w("")
    w(
        "| workload | threads | HAProxy CPU µs/q (user + sys) | rwproxy CPU µs/q (user + sys) "
        "| CPU rwproxy / HAProxy | user rwproxy / HAProxy | sys rwproxy / HAProxy "
        "| server bytes/q direct, HAProxy, rwproxy | rwproxy routing: primary / replica |"
    )
    w("|---|---|---|---|---|---|---|---|---|")
    for key, *_ in WORKLOADS:
        for th in threads_list:
            c = cells[(key, th)]
            d, h, r = c["direct"], c["haproxy"], c["rwproxy"]
            rt = r["routing"]
            total = sum(rt.values())
            to_primary = sum(n for k, n in rt.items() if k.startswith("primary/"))
            to_replica = sum(n for k, n in rt.items() if k.startswith("replica/"))
            if total:
                reasons = sorted({k.split("/", 1)[1] for k, n in rt.items() if n})
                routing = (
                    f"{to_primary / total:.0%} / {to_replica / total:.0%} "
                    f"({', '.join(f'`{x}`' for x in reasons)})"
                )
            else:
                routing = "–"

            def cpu(t):
                if t["cpu_us"] is None:
                    return "–"
                return f"{t['cpu_us']:.1f} ({t['user_us']:.1f} + {t['sys_us']:.1f})"

            def b(t):
                return "–" if t["bytes"] is None else f"{t['bytes']:,.0f}"

            w(
                f"| {label[key]} | {th} | {cpu(h)} | {cpu(r)} "
                f"| {fmt_ratio(r['cpu_us'], h['cpu_us'])} "
                f"| {fmt_ratio(r['user_us'], h['user_us'])} "
                f"| {fmt_ratio(r['sys_us'], h['sys_us'])} "
                f"| {b(d)}, {b(h)}, {b(r)} | {routing} |"
            )
    w("")
    # Conclusions, all computed from the cells above.
    checked, misses = targets(cells, threads_list)
    cellvals = [cells[(k, th)] for k, *_ in WORKLOADS for th in threads_list]
    w("### Against the targets")
    w("")
    w(
        "Targets: in every cell rwproxy's q/s at least HAProxy's, its CPU per query at most "
        "HAProxy's, its p95 at most HAProxy's. "
        f"Met in {checked - len(misses)} of {checked} comparisons"
        + ("." if not misses else "; missed:")
    )
    if misses:
        w("")
        for cell, what, q in misses:
            w(f"- {cell}: {what} rwproxy / HAProxy {q:.2f} ({pct_off(q)})")
    w("")
    w(
        "Across the cells, rwproxy / HAProxy: q/s "
        + span([ratio(c["rwproxy"]["qps"], c["haproxy"]["qps"]) for c in cellvals])
        + ", CPU per query "
        + span([ratio(c["rwproxy"]["cpu_us"], c["haproxy"]["cpu_us"]) for c in cellvals])
        + " (user space "
        + span([ratio(c["rwproxy"]["user_us"], c["haproxy"]["user_us"]) for c in cellvals])
        + ", kernel "
        + span([ratio(c["rwproxy"]["sys_us"], c["haproxy"]["sys_us"]) for c in cellvals])
        + "), p95 "
        + span([ratio(c["rwproxy"]["p95"], c["haproxy"]["p95"]) for c in cellvals])
        + "; rwproxy / direct: q/s "
        + span([ratio(c["rwproxy"]["qps"], c["direct"]["qps"]) for c in cellvals])
        + ", p95 "
        + span([ratio(c["rwproxy"]["p95"], c["direct"]["p95"]) for c in cellvals])
        + ". Extra user-space CPU of rwproxy over HAProxy, µs per query: "
        + span(
            [
                c["rwproxy"]["user_us"] - c["haproxy"]["user_us"]
                for c in cellvals
                if c["rwproxy"]["user_us"] is not None and c["haproxy"]["user_us"] is not None
            ]
        )
        + "."
    )
    w("")
    w(
        f"rwproxy peak RSS (VmHWM) over the whole run: {rss['hwm'] / 1024:.1f} MiB "
        f"({rss['hwm']:,} KiB; {rss['start'] / 1024:.1f} MiB before the first run)."
    )
    failures = [r for r in results if "error" in r]
    ignored = [
        (k, th, t, cells[(k, th)][t]["ignored"])
        for (k, th) in cells
        for t in TARGETS
        if cells[(k, th)][t]["ignored"]
    ]
    if failures:
        w("")
        w(f"**{len(failures)} run(s) failed** and are left out of the medians:")
        for r in failures:
            w(
                f"- {TARGET_LABEL[r['target']]}, {label[r['workload']]}, {r['threads']} threads: "
                f"exit {r['rc']}: `{' | '.join(r['error'])[:300]}`"
            )
    if ignored:
        w("")
        w(
            "Errors sysbench ignored (deadlocks and lock waits it retries): "
            + "; ".join(f"{TARGET_LABEL[t]} {label[k]} {th} threads: {n}" for k, th, t, n in ignored)
            + "."
        )
    w("")
    w("### Where the time goes")
    w("")
    if prof and prof["rows"]:
        sb = prof["sysbench"]
        kernel = sum(pct for pct, dso in prof["dsos"] if dso.startswith("[kernel"))
        user = [r for r in prof["rows"] if r[2] != "k"]
        w(
            f"`perf record -e cpu-clock -F 999 -g` on rwproxy for {prof['seconds']} s of "
            f"`oltp_read_only` (`BEGIN` … `COMMIT`) at 8 threads, no prepared statements "
            f"({fmt_qps(sb['qps'])} q/s while sampled, {prof['samples'] or '?'} samples). "
            "Self time by binary: "
            + ", ".join(f"{dso} {pct:.1f}%" for pct, dso in prof["dsos"][:4])
            + f" ({kernel:.0f}% in the kernel); the busiest user-space function has "
            + (f"{user[0][0]:.1f}%" if user else "?")
            + " of the samples."
        )
        if prof["syscalls"]:
            w(
                "Time in and under system calls (from the kernel call chains): "
                + ", ".join(f"`{name}` {pct:.1f}%" for pct, name in prof["syscalls"][:8])
                + "."
            )
        w(
            "(On this VM the sampling timer cannot fire while the kernel has interrupts off, so "
            "kernel samples pile up on the functions that turn them back on, such as "
            "`_raw_spin_unlock_irqrestore` and `finish_task_switch`.)"
        )
        w("")
        w("| self % | binary | function (kernel) | | self % | binary | function (user space) |")
        w("|---|---|---|---|---|---|---|")
        krows = [r for r in prof["rows"] if r[2] == "k"][:10]
        urows = user[:15]

        def cellfmt(row):
            if row is None:
                return "| |"
            pct, dso, _kind, sym = row
            sym = sym if len(sym) <= 90 else sym[:87] + "..."
            return f"{pct:.1f} | {dso} | `{sym}`"

        for i in range(max(len(krows), len(urows))):
            k = krows[i] if i < len(krows) else None
            u = urows[i] if i < len(urows) else None
            w(f"| {cellfmt(k)} | | {cellfmt(u)} |")
        for key, per in (prof.get("syscalls_per_query") or {}).items():
            if not per or "haproxy" not in per or "rwproxy" not in per:
                continue
            w("")
            w(
                f"System calls and context switches per query, {label[key]} at 8 threads, one "
                "run of each proxy under `perf trace -s` (which slows both; the counts are what "
                "matters):"
            )
            w("")
            names = sorted(
                {n for t in per.values() for n, v in t["per_query"].items() if v >= 0.01},
                key=lambda n: -max(t["per_query"].get(n, 0) for t in per.values()),
            )
            w(
                "| proxy | q/s while traced | "
                + " | ".join(f"`{n}`" for n in names)
                + " | all calls | voluntary / involuntary switches |"
            )
            w("|---|---|" + "---|" * len(names) + "---|---|")
            for target in ("haproxy", "rwproxy"):
                t = per[target]
                w(
                    f"| {TARGET_LABEL[target]} | {fmt_qps(t['qps'])} | "
                    + " | ".join(f"{t['per_query'].get(n, 0):.2f}" for n in names)
                    + f" | {sum(t['per_query'].values()):.2f} | "
                    f"{t['voluntary']:.2f} / {t['involuntary']:.2f} |"
                )
        mallocs = prof.get("mallocs_per_query")
        if mallocs:
            w("")
            w(
                "Heap allocations: calls to libc's `malloc` per query during one more "
                "`oltp_point_select` run (a `perf probe` uprobe, counted over the whole process, "
                f"monitor included): HAProxy {mallocs['haproxy']:.2f}, "
                f"rwproxy {mallocs['rwproxy']:.2f}."
            )
    else:
        w("No profile in this run (perf missing or `--no-profile`).")
    w("")
    w("### Reproduce")
    w("")
    w("```sh")
    w("integration/bench/run.sh                 # 5 rounds of 10 s runs, 8 and 64 threads")
    w("integration/bench/run.sh --repeat 1 --time 5 --no-profile   # a quick look")
    w("```")
    w("")
    w(
        "It brings the cluster up, installs sysbench, HAProxy and perf with apt-get if missing, "
        "loads the dataset once (`oltp_read_write prepare`), starts HAProxy on 127.0.0.1:6301 "
        "(reads) and 6303 (writes) and rwproxy on 127.0.0.1:6302 (admin 9302) and rewrites "
        "this section. Raw per-run figures: `.scratch/bench-sysbench.json`."
    )
    w(END_MARK)
    return "\n".join(L) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--time", type=int, default=10)
    p.add_argument("--threads", default="8 64")
    p.add_argument("--primary-port", type=int, required=True)
    p.add_argument("--replica-ports", required=True)
    p.add_argument("--haproxy-port", type=int, required=True)
    p.add_argument("--haproxy-write-port", type=int, required=True)
    p.add_argument("--haproxy-pid", type=int, required=True)
    p.add_argument("--rwproxy-port", type=int, required=True)
    p.add_argument("--rwproxy-pid", type=int, required=True)
    p.add_argument("--admin-port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--table-size", type=int, required=True)
    p.add_argument("--scratch", required=True)
    p.add_argument("--doc", required=True)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()

    started = datetime.datetime.now(datetime.timezone.utc)
    bench = Bench(args)
    args.server_version = bench.mariadb(args.primary_port, "SELECT VERSION()")
    rss_start = proc_status_kib(args.rwproxy_pid, "VmHWM")
    results = bench.matrix()
    prof = bench.profile() if args.profile else None
    if prof is not None:
        prof["syscalls_per_query"] = {
            key: bench.syscalls(key) for key in ("point_select", "read_only_trx")
        }
        prof["mallocs_per_query"] = bench.mallocs()
    rss = {"start": rss_start, "hwm": proc_status_kib(args.rwproxy_pid, "VmHWM")}
    with open(os.path.join(args.scratch, "bench-sysbench.json"), "w") as f:
        json.dump({"results": results, "rss_kib": rss, "profile": prof}, f, indent=1)

    if all("error" in r for r in results if r["target"] == "direct"):
        log("every run against the primary directly failed: the harness is broken")
        return 1
    cells = summarize(results, [int(t) for t in args.threads.split()])
    block = render(args, results, cells, rss, prof, started)
    write_section(args.doc, block, START_MARK, END_MARK)
    print(block)
    log(f"wrote the section into {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
