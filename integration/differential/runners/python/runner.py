"""Differential runner for the Python libraries: PyMySQL, mysqlclient (MySQLdb) and
MySQL Connector/Python (pure and C extension).

    python runner.py --lib pymysql --scenarios FILE --port P --admin-port A [--tls-ca CA]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common import ServerError, Unsupported, enc, parse_args, run  # noqa: E402

LIBS = ["pymysql", "mysqlclient", "mysql-connector-pure", "mysql-connector-cext"]


def pyformat(sql, params):
    """'?' placeholders → '%s' for libraries that interpolate client-side."""
    return sql.replace("?", "%s") if params else sql


class Base:
    features: set = set()

    def __init__(self, args):
        self.args = args
        self.conn = None

    def admin(self, sql):
        import pymysql

        c = pymysql.connect(host=self.args.host, port=self.args.admin_port, user=self.args.admin_user,
                            password=self.args.admin_password)
        try:
            c.cursor().execute(sql)
        finally:
            c.close()

    def close(self):
        if self.conn is not None:
            self.conn.close()

    def cursor(self, sql, params, n, out):
        raise Unsupported("no server-side cursor")

    def call(self, sql, params, outs, out):
        return self.prepared(sql, params, out)


# ---------------------------------------------------------------------- PyMySQL

class PyMySQL(Base):
    features = {"multi_statements", "multi_results", "local_infile", "tls"}

    def connect(self, opts):
        import pymysql
        from pymysql.constants import CLIENT

        a = self.args
        kw = dict(host=a.host, port=a.port, user=a.user, password=a.password, database=a.database,
                  local_infile=bool(opts.get("local_infile")), connect_timeout=10, read_timeout=30)
        if opts.get("multi_statements"):
            kw["client_flag"] = CLIENT.MULTI_STATEMENTS
        if opts.get("tls"):
            kw.update(ssl_ca=a.tls_ca, ssl_verify_cert=False, ssl_verify_identity=False)
        self.conn = pymysql.connect(**kw)
        import ssl

        return {"tls": isinstance(self.conn._sock, ssl.SSLSocket), "server_version": self.conn.get_server_info(),
                "server_status": self.conn.server_status}

    def server_error(self, e):
        import pymysql

        if isinstance(e, pymysql.err.MySQLError) and e.args and isinstance(e.args[0], int) and e.args[0] < 2000:
            return ServerError(e.args[0], None, e.args[1])
        return None

    def _record(self, cur, out):
        r = cur._result
        msg = r.message.decode("utf-8", "replace") if isinstance(r.message, bytes) else r.message
        item = {"warnings": r.warning_count, "status": r.server_status}
        if getattr(r, "fields", None):
            item["columns"] = [
                {"catalog": f.catalog, "db": f.db, "table": f.table_name, "org_table": f.org_table,
                 "name": f.name, "org_name": f.org_name, "charsetnr": f.charsetnr, "length": f.length,
                 "type": f.type_code, "flags": f.flags, "decimals": f.scale}
                for f in r.fields
            ]
            item["description"] = [list(d) for d in cur.description]
            item["rows"] = [[enc(v) for v in row] for row in (r.rows or ())]
        else:
            item.update(affected_rows=r.affected_rows, insert_id=r.insert_id, info=msg,
                        lastrowid=cur.lastrowid, rowcount=cur.rowcount)
        out.append(item)

    def text(self, sql, params, out):
        cur = self.conn.cursor()
        cur.execute(pyformat(sql, params), params or None)
        self._record(cur, out)
        while cur.nextset():
            self._record(cur, out)
        out.append({"connection_status": self.conn.server_status})

    def prepared(self, sql, params, out):
        raise Unsupported("no binary protocol")


# ---------------------------------------------------------------------- mysqlclient

class MySQLClient(Base):
    features = {"multi_statements", "multi_results", "local_infile", "tls", "compress", "change_user"}

    def connect(self, opts):
        import MySQLdb
        from MySQLdb.constants import CLIENT

        a = self.args
        kw = dict(host=a.host, port=a.port, user=a.user, password=a.password, database=a.database,
                  local_infile=1 if opts.get("local_infile") else 0, client_flag=CLIENT.MULTI_RESULTS,
                  connect_timeout=10, read_timeout=30)
        if opts.get("multi_statements"):
            kw["client_flag"] |= CLIENT.MULTI_STATEMENTS
        if opts.get("compress"):
            kw["compress"] = 1
        if opts.get("tls"):
            kw["ssl"] = {"ca": a.tls_ca}
        else:
            kw["ssl_mode"] = "DISABLED"
        self.conn = MySQLdb.connect(**kw)
        return {"server_version": self.conn.get_server_info(), "character_set": self.conn.character_set_name(),
                "proto": self.conn.get_proto_info()}

    def server_error(self, e):
        import MySQLdb

        if isinstance(e, MySQLdb.MySQLError) and e.args and isinstance(e.args[0], int) and e.args[0] < 2000:
            try:
                state = self.conn.sqlstate()
            except Exception:  # noqa: BLE001
                state = None
            return ServerError(e.args[0], state, e.args[1])
        return None

    def _record(self, cur, out):
        item = {"warnings": self.conn.warning_count(), "info": self.conn.info(), "rowcount": cur.rowcount}
        if cur.description:
            item["description"] = [list(d) for d in cur.description]
            item["flags"] = list(cur.description_flags)
            item["rows"] = [[enc(v) for v in row] for row in cur.fetchall()]
        else:
            item.update(lastrowid=cur.lastrowid, insert_id=self.conn.insert_id(),
                        affected_rows=self.conn.affected_rows())
        out.append(item)

    def text(self, sql, params, out):
        cur = self.conn.cursor()
        cur.execute(pyformat(sql, params), params or None)
        self._record(cur, out)
        while cur.nextset():
            self._record(cur, out)

    def prepared(self, sql, params, out):
        raise Unsupported("no binary protocol")

    def change_user(self, user, password, db):
        self.conn.change_user(user, password, db)
        return {"changed": True}

    def reset(self):
        raise Unsupported("no reset")


# ---------------------------------------------------------------------- Connector/Python

class Connector(Base):
    features = {"multi_statements", "multi_results", "local_infile", "tls", "compress", "change_user",
                "reset_connection", "prepared"}

    def __init__(self, args, pure):
        super().__init__(args)
        self.pure = pure

    def connect(self, opts):
        import mysql.connector

        a = self.args
        kw = dict(host=a.host, port=a.port, user=a.user, password=a.password, database=a.database,
                  use_pure=self.pure, allow_local_infile=bool(opts.get("local_infile")),
                  compress=bool(opts.get("compress")), connection_timeout=30,
                  read_timeout=30, write_timeout=30)
        if opts.get("tls"):
            kw.update(ssl_ca=a.tls_ca, ssl_verify_cert=False, ssl_verify_identity=False)
        else:
            kw["ssl_disabled"] = True
        self.conn = mysql.connector.connect(**kw)
        return {"tls": self.conn.is_secure, "server_version": list(self.conn.server_version),
                "charset": self.conn.charset, "collation": self.conn.collation}

    def server_error(self, e):
        import mysql.connector

        if isinstance(e, mysql.connector.Error) and e.errno and 0 < e.errno < 2000:
            return ServerError(e.errno, e.sqlstate, e.msg)
        errno = getattr(e, "errno", None)  # the C extension's MySQLInterfaceError
        if type(e).__name__ == "MySQLInterfaceError" and isinstance(errno, int) and 0 < errno < 2000:
            return ServerError(errno, getattr(e, "sqlstate", None), getattr(e, "msg", str(e)))
        return None

    def _drain(self, cur, out):
        while True:
            item = {"warnings": cur.warning_count, "rowcount": None}
            if cur.description:
                item["description"] = [list(d) for d in cur.description]
                item["rows"] = [[enc(v) for v in row] for row in cur.fetchall()]
            else:
                item["lastrowid"] = cur.lastrowid
            item["rowcount"] = cur.rowcount
            item["warnings"] = cur.warning_count
            out.append(item)
            if not cur.nextset():
                break

    def text(self, sql, params, out):
        cur = self.conn.cursor()
        cur.execute(pyformat(sql, params), params or None)
        self._drain(cur, out)
        cur.close()

    def prepared(self, sql, params, out):
        cur = self.conn.cursor(prepared=True)
        try:
            cur.execute(sql, params or ())
            self._drain(cur, out)
        finally:
            cur.close()

    def change_user(self, user, password, db):
        self.conn.cmd_change_user(username=user, password=password, database=db)
        return {"changed": True}

    def reset(self):
        self.conn.cmd_reset_connection()
        return {"reset": True}


def main():
    args = parse_args(LIBS)
    from importlib.metadata import version

    if args.lib == "pymysql":
        factory, dist = PyMySQL, "PyMySQL"
    elif args.lib == "mysqlclient":
        factory, dist = MySQLClient, "mysqlclient"
    else:
        pure = args.lib == "mysql-connector-pure"
        if not pure:
            from mysql.connector.connection_cext import CMySQLConnection  # noqa: F401  fail loudly

        factory, dist = (lambda a: Connector(a, pure)), "mysql-connector-python"
    run(args, factory, args.lib, version(dist))


if __name__ == "__main__":
    main()
