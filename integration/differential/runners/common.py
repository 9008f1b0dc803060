"""Shared by the Python-based runners: command line, scenario loop, value encoding.

A runner prints one JSON document on stdout:
    {"library": NAME, "version": V, "scenarios": {NAME: {"steps": [...]} | {"unsupported": WHY}}}
Each step is {"results": [...], "error": {...}} as the library reports them; values are
encoded as [type name, text] so that a change of the type the application gets shows up.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import hashlib
import json
import os
import sys
import tempfile
import traceback

HASH_OVER = 2048  # values longer than this are replaced by their length and SHA-256


def parse_args(libraries):
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True, choices=libraries)
    p.add_argument("--scenarios", required=True)
    p.add_argument("--only", default="", help="comma-separated scenario names")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="app")
    p.add_argument("--password", default="app_pass")
    p.add_argument("--database", default="app")
    p.add_argument("--admin-port", type=int, required=True)
    p.add_argument("--admin-user", default="admin")
    p.add_argument("--admin-password", default="admin_pass")
    p.add_argument("--tls-ca", default="")
    return p.parse_args()


def load_scenarios(args):
    with open(args.scenarios, encoding="utf-8") as f:
        scenarios = json.load(f)["scenarios"]
    only = [s for s in args.only.split(",") if s]
    return [s for s in scenarios if not only or s["name"] in only]


def big_param(p):
    """{"repeat": S, "times": N} → the string S * N; anything else unchanged."""
    if isinstance(p, dict) and "repeat" in p:
        return p["repeat"] * p["times"]
    return p


def hashed(kind, data: bytes):
    return [kind, f"len={len(data)} sha256={hashlib.sha256(data).hexdigest()}"]


def enc(v):
    """A value as the application received it: [python type, canonical text]."""
    if v is None:
        return None
    if isinstance(v, bool):
        return ["bool", str(v)]
    if isinstance(v, int):
        return ["int", str(v)]
    if isinstance(v, float):
        return ["float", repr(v)]
    if isinstance(v, decimal.Decimal):
        return ["Decimal", str(v)]
    if isinstance(v, str):
        if len(v) > HASH_OVER:
            return hashed("str", v.encode("utf-8"))
        return ["str", v]
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        if len(b) > HASH_OVER:
            return hashed(type(v).__name__, b)
        return [type(v).__name__, b.hex()]
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time, datetime.timedelta)):
        return [type(v).__name__, str(v)]
    if isinstance(v, (set, frozenset)):
        return ["set", sorted(str(x) for x in v)]
    if isinstance(v, (dict, list)):
        return [type(v).__name__, json.dumps(v, sort_keys=True, ensure_ascii=False, default=str)]
    return [type(v).__name__, repr(v)]


class Unsupported(Exception):
    pass


class ServerError(Exception):
    def __init__(self, code, sqlstate, message):
        super().__init__(f"{code} ({sqlstate}): {message}")
        self.code, self.sqlstate, self.message = code, sqlstate, message


def run(args, driver_factory, library, version):
    """driver_factory(args) → object with features (set), and methods
    connect(opts) → info dict or None, close(), and, appending what the library returns for
    each result to `out`: text(sql, params, out), prepared(sql, params, out),
    cursor(sql, params, fetch_size, out), call(sql, params, out_indexes, out);
    change_user(user, password, db) → info, reset() → info, admin(sql),
    server_error(exc) → ServerError | None."""
    out = {"library": library, "version": version, "scenarios": {}}
    tmpdir = tempfile.mkdtemp(prefix="rwproxy-diff-")
    for scen in load_scenarios(args):
        drv = driver_factory(args)
        missing = [n for n in scen.get("needs", []) if n not in drv.features]
        for key, val in scen.get("connect", {}).items():
            if val and key not in drv.features and key not in missing:
                missing.append(key)
        if missing:
            out["scenarios"][scen["name"]] = {"unsupported": "library has no " + ", ".join(missing)}
            continue
        steps = []
        try:
            info = drv.connect(scen.get("connect", {}))
            if info:
                steps.append({"connect": info})
        except Exception as e:  # noqa: BLE001
            out["scenarios"][scen["name"]] = {"connect_error": describe(drv, e)}
            continue
        for step in scen["steps"]:
            mode = step.get("mode", "text")
            rec = {"mode": mode}
            if "sql" in step:
                rec["sql"] = step["sql"][:80]
            results = rec["results"] = []
            try:
                params = [big_param(p) for p in step.get("params", [])]
                sql = step.get("sql", "")
                if mode == "prepared_or_text":
                    mode = "prepared" if "prepared" in drv.features else "text"
                if mode in ("prepared", "call", "cursor") and mode not in drv.features:
                    if mode == "call" and "prepared" in drv.features:
                        mode = "prepared"
                    else:
                        rec["skipped"] = f"library has no {mode}"
                        steps.append(rec)
                        continue
                if mode == "text":
                    drv.text(sql, params, results)
                elif mode == "prepared":
                    drv.prepared(sql, params, results)
                elif mode == "call":
                    drv.call(sql, params, step.get("out", []), results)
                elif mode == "cursor":
                    drv.cursor(sql, params, step.get("fetch_size", 2), results)
                elif mode == "load_local":
                    path = os.path.join(tmpdir, f"{scen['name']}-{len(steps)}.csv")
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(step["data"])
                    drv.text(sql.replace("{file}", path), [], results)
                elif mode == "admin":
                    drv.admin(sql)
                elif mode == "change_user":
                    user = args.user if step["user"] == "$app" else step["user"]
                    pw = args.password if step["password"] == "$app" else step["password"]
                    results.append(drv.change_user(user, pw, step.get("database")))
                elif mode == "reset_connection":
                    results.append(drv.reset())
                else:
                    raise ValueError(f"unknown mode {mode}")
            except Unsupported as e:
                rec["skipped"] = str(e)
            except Exception as e:  # noqa: BLE001
                rec["error"] = describe(drv, e)
                if "exception" in rec["error"]:
                    # The connection is in an unknown state: start a new one for the next steps.
                    try:
                        drv.close()
                    except Exception:  # noqa: BLE001
                        pass
                    try:
                        drv.connect(scen.get("connect", {}))
                        rec["reconnected"] = True
                    except Exception as e2:  # noqa: BLE001
                        rec["reconnect_error"] = describe(drv, e2)
                        steps.append(rec)
                        break
            steps.append(rec)
        try:
            drv.close()
        except Exception:  # noqa: BLE001
            pass
        out["scenarios"][scen["name"]] = {"steps": steps}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=None, sort_keys=True, default=_jsonable)
    sys.stdout.write("\n")


def _jsonable(o):
    if isinstance(o, (bytes, bytearray)):
        return "hex:" + bytes(o).hex()
    return repr(o)


def describe(drv, e):
    se = drv.server_error(e)
    if se is not None:
        return {"code": se.code, "sqlstate": se.sqlstate, "message": se.message}
    return {"exception": f"{type(e).__name__}: {e}"[:500],
            "where": traceback.format_exc().strip().splitlines()[-3:-1]}
