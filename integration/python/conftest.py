"""Fixtures for the PyMySQL tests: the shared local cluster, TLS files, and rwproxy
processes started on free 127.0.0.1 ports with a generated config."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "integration" / "cluster.sh"


@dataclass
class Cluster:
    env: dict[str, str]

    @property
    def primary_port(self) -> int:
        return int(self.env["RWPROXY_PRIMARY_PORT"])

    @property
    def ports(self) -> list[int]:
        n = int(self.env["RWPROXY_CLUSTER_NODES"])
        return [int(self.env[f"RWPROXY_NODE{i}_PORT"]) for i in range(n)]

    @property
    def app(self) -> tuple[str, str]:
        return self.env["APP_DB_USER"], self.env["APP_DB_PASSWORD"]

    @property
    def monitor(self) -> tuple[str, str]:
        return self.env["MONITOR_USER"], self.env["MONITOR_PASSWORD"]


def _cluster_args() -> list[str]:
    args = ["--name", os.environ.get("RWPROXY_TEST_CLUSTER") or "main"]
    if os.environ.get("RWPROXY_TEST_BASE_PORT"):
        args += ["--base-port", os.environ["RWPROXY_TEST_BASE_PORT"]]
    return args


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    subprocess.run(
        ["bash", str(CLUSTER_SH), "up", *_cluster_args()],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), "env", *_cluster_args()[:2]],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return Cluster(env)


def _rwproxy_bin() -> Path:
    if os.environ.get("RWPROXY_BIN"):
        return Path(os.environ["RWPROXY_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "rwproxy"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _q(value: str) -> str:
    """A YAML double-quoted scalar."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def proxy_yaml(
    cluster: Cluster,
    listen: str,
    admin: str,
    *,
    auth_plugin: str = "mysql_native_password",
    tls: tuple[Path, Path] | None = None,
    max_allowed_packet: str = "64MiB",
) -> str:
    user, password = cluster.app
    mon_user, mon_password = cluster.monitor
    lines = [
        f"listen: {listen}",
        "max_client_connections: 256",
        f"max_allowed_packet: {max_allowed_packet}",
        "users:",
        f"  - name: {_q(user)}",
        f"    password: {_q(password)}",
        f"    auth_plugin: {auth_plugin}",
        "backends:",
    ]
    for i, port in enumerate(cluster.ports):
        lines.append(f'  - {{ name: "db{i + 1}", address: "127.0.0.1:{port}", weight: 1 }}')
    lines += ["timeouts: { connect: 1s, handshake: 5s }"]
    if tls:
        lines.append(f"tls: {{ cert: {_q(str(tls[0]))}, key: {_q(str(tls[1]))}, require_tls: false }}")
    lines += [
        "monitor:",
        f"  user: {_q(mon_user)}",
        f"  password: {_q(mon_password)}",
        "  interval: 200ms",
        "  timeout: 1s",
        "admin:",
        f"  listen: {admin}",
        f"log: {{ format: text, level: {os.environ.get('RWPROXY_TEST_LOG_LEVEL', 'info')} }}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Proxy:
    process: subprocess.Popen
    port: int
    admin_port: int
    config: Path
    log: Path
    _log_file: object = field(repr=False, default=None)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"<cannot read {self.log}: {e}>"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file:
            self._log_file.close()


def start_proxy(workdir: Path, make_yaml) -> Proxy:
    """Start rwproxy with make_yaml(listen, admin) as its config; wait until it accepts."""
    binary = _rwproxy_bin()
    if not binary.exists():
        pytest.fail(f"{binary} does not exist; build it with `cargo build -p rwproxy`")
    port, admin_port = _free_port(), _free_port()
    config = workdir / "rwproxy.yaml"
    config.write_text(make_yaml(f"127.0.0.1:{port}", f"127.0.0.1:{admin_port}"))
    log = workdir / "rwproxy.log"
    log_file = open(log, "wb")
    process = subprocess.Popen(
        [str(binary), "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    proxy = Proxy(process, port, admin_port, config, log, log_file)
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            proxy.stop()
            pytest.fail(f"rwproxy exited with {process.returncode}:\n{proxy.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proxy
        except OSError:
            pass
        if time.monotonic() > deadline:
            proxy.stop()
            pytest.fail(f"rwproxy did not listen on {port} within 20s:\n{proxy.log_tail()}")
        time.sleep(0.05)


@pytest.fixture
def proxy(cluster, tmp_path):
    p = start_proxy(tmp_path, lambda listen, admin: proxy_yaml(cluster, listen, admin))
    yield p
    p.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost: (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rwproxy test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    cert_path, key_path = d / "cert.pem", d / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def sha2_tls_proxy(cluster, tls_files, tmp_path):
    """rwproxy offering caching_sha2_password to `app`, with client TLS available."""
    p = start_proxy(
        tmp_path,
        lambda listen, admin: proxy_yaml(
            cluster, listen, admin, auth_plugin="caching_sha2_password", tls=tls_files
        ),
    )
    yield p
    p.stop()
