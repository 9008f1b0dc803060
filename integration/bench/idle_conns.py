#!/usr/bin/env python3
"""Many idle MySQL client connections through rwproxy: memory per connection, then one query each.

Used by integration/bench/connections.sh, which starts rwproxy. A small asyncio client speaks
just enough of the protocol: it reads the server greeting, answers with a HandshakeResponse41
using mysql_native_password (SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)))), follows an auth
switch if asked, and can send COM_QUERY and read a text result set.

Phase 1 opens --count connections (at most --concurrency handshakes in flight), waits until
rwproxy's rwproxy_client_connections gauge shows them all, and compares rwproxy's RSS before and
after. Phase 2 has the clients run `SELECT 1`, --batch clients at a time; each batch is closed
once it has its answers, and the next starts only when rwproxy has closed that batch's backend
connections (the test servers allow 1000 connections each). Every answer is checked.
Writes a Markdown section into --doc between the bench:connections markers. Standard library
only; exits non-zero only if the harness itself fails.
"""

import argparse
import asyncio
import datetime
import hashlib
import json
import os
import resource
import struct
import sys
import time
import urllib.request

from report import machine, revision, write_section

START_MARK = "<!-- bench:connections:start -->"
END_MARK = "<!-- bench:connections:end -->"

CLIENT_LONG_PASSWORD = 0x1
CLIENT_LONG_FLAG = 0x4
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CAPS = (
    CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
)


def log(msg):
    print(f"idle_conns: {msg}", file=sys.stderr, flush=True)


class ProtocolError(Exception):
    pass


def native_scramble(password, nonce):
    if not password:
        return b""
    h1 = hashlib.sha1(password.encode()).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(nonce + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def err_text(payload):
    code = struct.unpack_from("<H", payload, 1)[0]
    msg = payload[3:]
    if msg[:1] == b"#":
        msg = msg[6:]
    return f"ERROR {code}: {msg.decode(errors='replace')}"


class Conn:
    def __init__(self, reader, writer):
        self.r, self.w, self.seq = reader, writer, 0

    async def read_packet(self):
        head = await self.r.readexactly(4)
        length = head[0] | head[1] << 8 | head[2] << 16
        self.seq = (head[3] + 1) & 0xFF
        payload = await self.r.readexactly(length)
        if length == 0xFFFFFF:
            payload += await self.read_packet()
        return payload

    def write_packet(self, payload):
        self.w.write(struct.pack("<I", len(payload))[:3] + bytes([self.seq]) + payload)
        self.seq = (self.seq + 1) & 0xFF

    async def handshake(self, user, password, db=None):
        greeting = await self.read_packet()
        if greeting[:1] == b"\xff":
            raise ProtocolError(err_text(greeting))
        if greeting[0] != 10:
            raise ProtocolError(f"unexpected greeting protocol version {greeting[0]}")
        pos = greeting.index(b"\0", 1) + 1  # server version
        pos += 4  # connection id
        nonce = greeting[pos : pos + 8]
        pos += 8 + 1  # auth data part 1, filler
        cap_lo = struct.unpack_from("<H", greeting, pos)[0]
        pos += 2 + 1 + 2  # capabilities (low), charset, status
        cap_hi = struct.unpack_from("<H", greeting, pos)[0]
        pos += 2
        server_caps = cap_lo | cap_hi << 16
        auth_len = greeting[pos]
        pos += 1 + 10
        if server_caps & CLIENT_SECURE_CONNECTION:
            part2 = max(13, auth_len - 8)
            nonce += greeting[pos : pos + part2].rstrip(b"\0")
            pos += part2
        plugin = "mysql_native_password"
        if server_caps & CLIENT_PLUGIN_AUTH and pos < len(greeting):
            plugin = greeting[pos:].split(b"\0", 1)[0].decode()
        auth = native_scramble(password, nonce[:20]) if plugin == "mysql_native_password" else b""
        caps = CAPS | (CLIENT_CONNECT_WITH_DB if db else 0)
        resp = struct.pack("<IIB", caps & (server_caps | CLIENT_PLUGIN_AUTH), 1 << 24, 45)
        resp += b"\0" * 23 + user.encode() + b"\0" + bytes([len(auth)]) + auth
        if db:
            resp += db.encode() + b"\0"
        resp += b"mysql_native_password\0"
        self.write_packet(resp)
        await self.w.drain()
        while True:
            pkt = await self.read_packet()
            if pkt[:1] == b"\x00":
                return
            if pkt[:1] == b"\xff":
                raise ProtocolError(err_text(pkt))
            if pkt[:1] == b"\xfe":  # auth switch request
                name, _, data = pkt[1:].partition(b"\0")
                if name != b"mysql_native_password":
                    raise ProtocolError(f"server wants auth plugin {name!r}")
                self.write_packet(native_scramble(password, data.rstrip(b"\0")[:20]))
                await self.w.drain()
                continue
            raise ProtocolError(f"unexpected packet during auth: {pkt[:16]!r}")

    async def query_one_value(self, sql):
        """Runs a statement that returns one row of one column; returns that value."""
        self.seq = 0
        self.write_packet(b"\x03" + sql.encode())
        await self.w.drain()
        first = await self.read_packet()
        if first[:1] == b"\xff":
            raise ProtocolError(err_text(first))
        if first[:1] == b"\x00":
            raise ProtocolError("OK packet where a result set was expected")
        ncols = first[0]
        for _ in range(ncols):
            await self.read_packet()  # column definitions
        eof = await self.read_packet()
        if eof[:1] != b"\xfe":
            raise ProtocolError(f"expected EOF after column definitions, got {eof[:8]!r}")
        rows = []
        while True:
            pkt = await self.read_packet()
            if pkt[:1] == b"\xfe" and len(pkt) < 9:
                break
            if pkt[:1] == b"\xff":
                raise ProtocolError(err_text(pkt))
            n = pkt[0]
            rows.append(pkt[1 : 1 + n].decode())
        if len(rows) != 1:
            raise ProtocolError(f"expected one row, got {len(rows)}")
        return rows[0]

    async def close(self):
        try:
            self.seq = 0
            self.write_packet(b"\x01")  # COM_QUIT
            await self.w.drain()
        except (ConnectionError, OSError):
            pass
        self.w.close()
        try:
            await self.w.wait_closed()
        except (ConnectionError, OSError):
            pass


# ---------------------------------------------------------------- rwproxy's side


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/{pid}/status")


def metrics(admin_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {"client": 0.0, "backend": 0.0, "rejected": 0.0, "by_backend": {}}
    for line in text.splitlines():
        if line.startswith("rwproxy_client_connections "):
            out["client"] = float(line.split()[1])
        elif line.startswith("rwproxy_backend_connections{"):
            n = float(line.rsplit(None, 1)[1])
            out["backend"] += n
            name = line.split('backend="', 1)[1].split('"', 1)[0]
            out["by_backend"][name] = out["by_backend"].get(name, 0) + n
        elif line.startswith("rwproxy_client_rejections_total"):
            out["rejected"] += float(line.rsplit(None, 1)[1])
    return out


def poll(admin_port, pred, timeout):
    """Polls the metrics until pred(metrics) holds or timeout seconds pass; returns the last."""
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(admin_port)
        if pred(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.1)


# ---------------------------------------------------------------- the run


async def open_all(args):
    sem = asyncio.Semaphore(args.concurrency)
    errors = []

    async def one(_i):
        async with sem:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", args.port), timeout=30
                )
                conn = Conn(reader, writer)
                await asyncio.wait_for(conn.handshake(args.user, args.password), timeout=30)
                return conn
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ProtocolError) as e:
                errors.append(f"{type(e).__name__}: {e}")
                return None

    conns = await asyncio.gather(*(one(i) for i in range(args.count)))
    return [c for c in conns if c is not None], errors


async def query_batch(conns):
    async def one(c):
        try:
            got = await asyncio.wait_for(c.query_one_value("SELECT 1"), timeout=60)
            return None if got == "1" else f"wrong answer {got!r}"
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ProtocolError) as e:
            return f"{type(e).__name__}: {e}"

    return await asyncio.gather(*(one(c) for c in conns))


async def run(args):
    pid, admin = args.pid, args.admin_port
    base = poll(admin, lambda m: True, 0)
    rss_before = status_kib(pid, "VmRSS")
    log(f"rwproxy RSS before: {rss_before} KiB; opening {args.count} connections")

    t0 = time.monotonic()
    conns, open_errors = await open_all(args)
    open_s = time.monotonic() - t0
    log(f"{len(conns)} connections open in {open_s:.1f} s, {len(open_errors)} failed")
    m = poll(admin, lambda m: m["client"] >= base["client"] + len(conns), 30)
    await asyncio.sleep(1)  # let allocations settle before reading RSS
    rss_idle = status_kib(pid, "VmRSS")
    log(f"rwproxy RSS with {int(m['client'])} client connections: {rss_idle} KiB")

    query_errors = []
    batches = []
    t1 = time.monotonic()
    for start in range(0, len(conns), args.batch):
        batch = conns[start : start + args.batch]
        tb = time.monotonic()
        answers = await query_batch(batch)
        dt = time.monotonic() - tb
        during = metrics(admin)
        errs = [a for a in answers if a]
        query_errors += errs
        await asyncio.gather(*(c.close() for c in batch))
        after = poll(admin, lambda m: m["backend"] == 0, 30)
        batches.append(
            {
                "clients": len(batch),
                "seconds": dt,
                "errors": len(errs),
                "backend_conns_after_queries": during["backend"],
                "backend_conns_by_backend": during["by_backend"],
                "backend_conns_after_close": after["backend"],
            }
        )
        if len(batches) % 5 == 0 or errs:
            log(
                f"batch {len(batches)}: {len(batch)} queries in {dt:.2f} s, {len(errs)} errors, "
                f"{int(during['backend'])} backend connections, {int(after['backend'])} after close"
            )
    query_s = time.monotonic() - t1
    rss_end = status_kib(pid, "VmRSS")
    hwm = status_kib(pid, "VmHWM")
    final = metrics(admin)
    return {
        "count": args.count,
        "opened": len(conns),
        "open_errors": open_errors,
        "open_seconds": open_s,
        "client_gauge_idle": m["client"],
        "rss_before_kib": rss_before,
        "rss_idle_kib": rss_idle,
        "rss_end_kib": rss_end,
        "hwm_kib": hwm,
        "batches": batches,
        "query_errors": query_errors,
        "query_seconds": query_s,
        "rejected": final["rejected"] - base["rejected"],
    }


def render(args, r, started):
    rev = revision()
    opened = r["opened"]
    delta = r["rss_idle_kib"] - r["rss_before_kib"]
    per_conn = delta * 1024 / opened if opened else 0
    nb = len(r["batches"])
    worst = max((b["seconds"] for b in r["batches"]), default=0)
    max_backend = max((b["backend_conns_after_queries"] for b in r["batches"]), default=0)
    leftover = max((b["backend_conns_after_close"] for b in r["batches"]), default=0)
    errs = r["query_errors"]
    L = []
    w = L.append
    w(START_MARK)
    w("## 10,000 idle client connections")
    w("")
    w(
        f"Written by `integration/bench/connections.sh`. Run "
        f"{started.strftime('%Y-%m-%d %H:%M UTC')} on commit {rev}; machine: {machine()}."
    )
    w(
        f"rwproxy (release build, `proxy-config.yaml` with `max_client_connections: "
        f"{r['count'] + 2000}` and other ports, open-file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,}) is sent connections by an asyncio client that does the "
        "handshake itself (mysql_native_password) and then holds them idle; "
        f"at most {args.concurrency} handshakes are in flight at once."
    )
    w("")
    w("| measure | value |")
    w("|---|---|")
    w(f"| connections asked for / opened | {r['count']:,} / {opened:,} |")
    w(f"| time to open them all | {r['open_seconds']:.1f} s |")
    w(f"| rwproxy RSS before | {r['rss_before_kib'] / 1024:.1f} MiB |")
    w(
        f"| rwproxy RSS with {opened:,} idle clients | {r['rss_idle_kib'] / 1024:.1f} MiB "
        f"(+{delta / 1024:.1f} MiB) |"
    )
    w(f"| **RSS per idle client connection** | **{per_conn / 1024:.1f} KiB** ({per_conn:,.0f} bytes) |")
    w(
        f"| `SELECT 1` from every client, {args.batch} at a time | {nb} batches in "
        f"{r['query_seconds']:.1f} s (slowest batch {worst:.2f} s) |"
    )
    w(f"| wrong answers or errors | {len(errs):,} |")
    w(
        f"| backend connections open after a batch's queries (most) | {int(max_backend)} "
        f"(after closing a batch and polling: at most {int(leftover)}) |"
    )
    if r["batches"]:
        split = r["batches"][0]["backend_conns_by_backend"]
        w(
            "| backend connections of the first batch, by backend | "
            + ", ".join(f"{k}: {int(v)}" for k, v in sorted(split.items()))
            + " |"
        )
    w(
        f"| rwproxy RSS once every client has closed / peak (VmHWM) | {r['rss_end_kib'] / 1024:.1f} MiB / "
        f"{r['hwm_kib'] / 1024:.1f} MiB |"
    )
    w(f"| connections refused by rwproxy (`rwproxy_client_rejections_total`) | {int(r['rejected'])} |")
    if r["open_errors"] or errs:
        w("")
        sample = (r["open_errors"] + errs)[:5]
        w("Errors (first five): " + "; ".join(f"`{e[:200]}`" for e in sample) + ".")
    w("")
    w(
        "The query phase runs in batches because each client that sends a statement gets its own "
        "backend connection (opened lazily, kept for the session) and the test servers allow "
        "1,000 connections each: a batch is closed, and rwproxy's `rwproxy_backend_connections` "
        "is polled back to 0, before the next one starts. `SELECT 1` is a read, so it goes to a "
        "replica (db1 is the primary, db2 and db3 the replicas). RSS does not fall back when the "
        "clients leave: the allocator keeps the freed memory for reuse."
    )
    w("")
    w("Reproduce: `integration/bench/connections.sh [COUNT] [BATCH]` (defaults 10000 and 500); ")
    w("rwproxy listens on 127.0.0.1:6303 (admin 9303). Raw figures: `.scratch/bench-connections.json`.")
    w(END_MARK)
    return "\n".join(L) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--admin-port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--user", default="app")
    p.add_argument("--password", default="app_pass")
    p.add_argument("--scratch", required=True)
    p.add_argument("--doc", required=True)
    args = p.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    result = asyncio.run(run(args))
    with open(os.path.join(args.scratch, "bench-connections.json"), "w") as f:
        json.dump(result, f, indent=1)
    if result["opened"] == 0:
        log("no connection could be opened: the harness is broken")
        for e in result["open_errors"][:5]:
            log(e)
        return 1
    block = render(args, result, started)
    write_section(args.doc, block, START_MARK, END_MARK)
    print(block)
    log(f"wrote the section into {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
