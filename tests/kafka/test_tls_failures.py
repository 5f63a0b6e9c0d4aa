"""A TLS handshake that fails ends every command at once with its real cause, never "Broker
transport failure" after the deadline: here a listener whose certificate names `localhost`
only, reached as 127.0.0.1 (the cause: the IP address is not in the certificate), and one
whose CA the client does not trust. The listener only speaks TLS (no Kafka behind it):
a failed handshake is all these tests need. Certificates are made by `openssl` at set-up."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.helpers.config import write_config

pytestmark = pytest.mark.slow


class TlsListener:
    """Accepts connections on 127.0.0.1, completes (or fails) the TLS handshake, closes."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert), str(key))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                conn.settimeout(2)
                self.context.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._closed = True
        self.sock.close()


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA, a server certificate it signed for DNS:localhost only, and another CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: it makes the test certificates")
    d = tmp_path_factory.mktemp("tls")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d / f"{ca}.key",
                 "-out", d / f"{ca}.pem", "-days", "2", "-subj", f"/CN=kafkaops test {ca}")  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "server.key", "-out", d / "server.csr",
             "-subj", "/CN=localhost")  # fmt: skip
    (d / "ext").write_text("subjectAltName=DNS:localhost\n")
    _openssl("x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
             "-CAcreateserial", "-out", d / "server.pem", "-days", "2", "-extfile", d / "ext")  # fmt: skip
    return {
        "ca": d / "ca.pem",
        "other-ca": d / "other-ca.pem",
        "cert": d / "server.pem",
        "key": d / "server.key",
    }


@pytest.fixture
def listener(certificates: dict[str, Path]) -> Iterator[TlsListener]:
    served = TlsListener(certificates["cert"], certificates["key"])
    yield served
    served.close()


COMMANDS = [
    ("dlq", "list"),
    ("dlq", "tail", "orders.dlq"),
    ("dlq", "replay", "orders.dlq", "--dry-run"),
    ("dlq", "ensure", "orders"),
    ("lag", "--group", "payments"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_certificate_without_the_ip_address_ends_the_command_at_once_saying_so(
    args: tuple[str, ...],
    listener: TlsListener,
    certificates: dict[str, Path],
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka = {
        "bootstrap.servers": f"127.0.0.1:{listener.port}",
        "security.protocol": "SSL",
        "ssl.ca.location": str(certificates["ca"]),
    }
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", kafka=kafka)))
    started = time.monotonic()
    result = cli(*args)
    elapsed = time.monotonic() - started
    assert result.exit_code == (3 if args[0] == "lag" else 1), result.stderr  # lag: UNKNOWN, as status
    assert elapsed < 4, f"{elapsed:.1f}s"
    lines = [line for line in result.stderr.splitlines() if line.startswith(("Error:", "Hint:"))]
    assert lines == [
        f"Error: TLS handshake with Kafka at 127.0.0.1:{listener.port} failed: the broker's certificate "
        "does not name the IP address 127.0.0.1 it was reached by (IP address mismatch, certificate is "
        "not valid for '127.0.0.1'.)",
        "Hint: reach the broker by a host name its certificate names (bootstrap.servers, and the "
        "broker's advertised.listeners), or issue the certificate for that IP address too",
    ]
    assert "transport failure" not in result.stderr and "Timed out" not in result.stderr
    # A bad TLS set-up is not retried for the whole deadline (librdkafka reconnects every
    # reconnect.backoff.ms, 20 ms: about 80 handshakes a second).
    assert listener.connections < 60, listener.connections


@pytest.mark.timeout(60)
def test_a_ca_that_did_not_sign_the_certificate_is_named_the_cause(
    listener: TlsListener,
    certificates: dict[str, Path],
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka = {
        "bootstrap.servers": f"localhost:{listener.port}",
        "security.protocol": "SSL",
        "ssl.ca.location": str(certificates["other-ca"]),
    }
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", kafka=kafka)))
    result = cli("dlq", "list")
    assert result.exit_code == 1
    assert (
        f"Error: TLS handshake with Kafka at localhost:{listener.port} failed: the broker's certificate "
        in (result.stderr)
    )
    assert "Hint: ssl.ca.location (or ssl.ca.pem) must hold the CA that signed the broker's certificate" in (
        result.stderr
    )


@pytest.mark.timeout(60)
def test_status_reports_the_tls_cause_in_its_kafka_check(
    listener: TlsListener,
    certificates: dict[str, Path],
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka = {
        "bootstrap.servers": f"127.0.0.1:{listener.port}",
        "security.protocol": "SSL",
        "ssl.ca.location": str(certificates["ca"]),
    }
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", kafka=kafka)))
    started = time.monotonic()
    result = cli("status")
    assert time.monotonic() - started < 4
    assert "does not name the IP address 127.0.0.1" in result.stdout + result.stderr
