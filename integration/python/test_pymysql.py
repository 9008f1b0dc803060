"""PyMySQL through rwproxy: native auth, caching_sha2 full auth over TLS, DML,
executemany, a large blob, and refused logins."""

from __future__ import annotations

import os
import ssl

import pymysql
import pytest

import pymysql._auth as pymysql_auth


def unique_table(tag: str) -> str:
    unique_table.counter = getattr(unique_table, "counter", 0) + 1
    return f"py_{tag}_{os.getpid()}_{unique_table.counter}"


def connect(port: int, user: str, password: str, **kwargs) -> pymysql.connections.Connection:
    return pymysql.connect(
        host="127.0.0.1",
        port=port,
        user=user,
        password=password,
        database="app",
        connect_timeout=10,
        read_timeout=30,
        write_timeout=30,
        **kwargs,
    )


def test_native_auth_dml_matches_the_primary(cluster, proxy):
    user, password = cluster.app
    table = unique_table("dml")
    via = connect(proxy.port, user, password)
    # autocommit, so that its reads hold no metadata lock that would block the DROP below.
    direct = connect(cluster.primary_port, user, password, autocommit=True)
    try:
        with via.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(40), v DECIMAL(8,3))")
            assert cur.execute(f"INSERT INTO {table} VALUES (1, 'a', 1.5), (2, 'b', NULL), (3, 'ç😀', -2)") == 3
            assert cur.execute(f"UPDATE {table} SET v = v * 2 WHERE v IS NOT NULL") == 2
            assert cur.execute(f"DELETE FROM {table} WHERE id = 2") == 1
        via.commit()
        query = f"SELECT id, name, v FROM {table} ORDER BY id"
        with via.cursor() as cur:
            cur.execute(query)
            through = cur.fetchall()
            through_desc = [d[:2] for d in cur.description]
        with direct.cursor() as cur:
            cur.execute(query)
            reference = cur.fetchall()
            reference_desc = [d[:2] for d in cur.description]
        assert through == reference
        assert through_desc == reference_desc
        assert [row[1] for row in through] == ["a", "ç😀"]
    finally:
        direct.close()
        with via.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        via.close()


def test_executemany_inserts_every_row(cluster, proxy):
    user, password = cluster.app
    table = unique_table("many")
    conn = connect(proxy.port, user, password, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, label VARCHAR(20))")
            rows = [(i, f"label-{i}") for i in range(1000)]
            assert cur.executemany(f"INSERT INTO {table} (id, label) VALUES (%s, %s)", rows) == 1000
            cur.execute(f"SELECT COUNT(*), SUM(id), MAX(label) FROM {table}")
            assert cur.fetchone() == (1000, sum(range(1000)), "label-999")
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()


def test_a_large_blob_round_trips(cluster, proxy):
    user, password = cluster.app
    table = unique_table("blob")
    blob = os.urandom(20 * 1024 * 1024)
    conn = connect(proxy.port, user, password, autocommit=True, max_allowed_packet=128 * 1024 * 1024)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, b LONGBLOB)")
            # The escaped query is over 16 MiB, so it travels in several packets.
            cur.execute(f"INSERT INTO {table} VALUES (%s, %s)", (1, blob))
            cur.execute(f"SELECT b FROM {table} WHERE id = 1")
            (back,) = cur.fetchone()
        assert len(back) == len(blob)
        assert back == blob
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()


def test_wrong_password_is_operational_error_1045(cluster, proxy):
    user, _ = cluster.app
    with pytest.raises(pymysql.err.OperationalError) as excinfo:
        connect(proxy.port, user, "definitely-wrong")
    code, message = excinfo.value.args[0], excinfo.value.args[1]
    assert code == 1045
    assert message.startswith(f"Access denied for user '{user}'@'"), message
    # The proxy keeps serving correct logins.
    ok = connect(proxy.port, *cluster.app)
    ok.close()


@pytest.fixture
def sha2_calls(monkeypatch):
    """Record every time PyMySQL runs its caching_sha2_password exchange."""
    calls = []
    original = pymysql_auth.caching_sha2_password_auth

    def recording(conn, pkt):
        calls.append(conn._secure)
        return original(conn, pkt)

    monkeypatch.setattr(pymysql_auth, "caching_sha2_password_auth", recording)
    return calls


def test_caching_sha2_full_auth_over_tls(cluster, sha2_tls_proxy, tls_files, sha2_calls):
    user, password = cluster.app
    cert, _ = tls_files
    for attempt in range(2):
        conn = connect(sha2_tls_proxy.port, user, password, ssl={"ca": str(cert)})
        try:
            assert isinstance(conn._sock, ssl.SSLSocket), "the session is not TLS-protected"
            with conn.cursor() as cur:
                cur.execute("SELECT CURRENT_USER(), DATABASE()")
                who, db = cur.fetchone()
            assert who.startswith(f"{user}@"), who
            assert db == "app"
        finally:
            conn.close()
        assert len(sha2_calls) == attempt + 1, "the proxy did not use caching_sha2_password"
        assert sha2_calls[-1] is True, "caching_sha2 ran outside TLS"


def test_caching_sha2_wrong_password_over_tls(cluster, sha2_tls_proxy, tls_files):
    user, _ = cluster.app
    cert, _ = tls_files
    with pytest.raises(pymysql.err.OperationalError) as excinfo:
        connect(sha2_tls_proxy.port, user, "wrong-password", ssl={"ca": str(cert)})
    assert excinfo.value.args[0] == 1045
    assert excinfo.value.args[1].startswith(f"Access denied for user '{user}'@'")
