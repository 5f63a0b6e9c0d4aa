"""The casino-events service (examples/casino-events) as a process the service tests drive.

`build_service()` runs `make service` once per session (Maven, offline after the first build);
`start_service()` starts the jar on a free loopback port against a PostgreSQL database and a
Kafka broker and returns once `/actuator/health` says UP.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
SERVICE_DIR = ROOT / "examples" / "casino-events"
JAR = SERVICE_DIR / "target" / "casino-events.jar"
SKIP_PREFIX = "service tests skipped"
# Small and quick to start on a two-core machine.
JVM_FLAGS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto")
START_TIMEOUT = 120.0
# Producer timeouts short enough that an outage shows within seconds.
FAST_PRODUCER = {
    "spring.kafka.producer.properties.max.block.ms": "2000",
    "spring.kafka.producer.properties.request.timeout.ms": "1500",
    "spring.kafka.producer.properties.delivery.timeout.ms": "2500",
    "spring.kafka.producer.properties.reconnect.backoff.max.ms": "500",
    "casino.retry.send-timeout": "4s",
}


class ServiceMissing(RuntimeError):
    """Java or Maven is not installed: the service tests are skipped."""


def build_service() -> Path:
    """`make service`: the jar, built (or brought up to date) by Maven."""
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise ServiceMissing(f"{tool} is not installed")
    proc = subprocess.run(
        ["make", "-s", "service"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=900
    )
    if proc.returncode != 0 or not JAR.is_file():
        raise RuntimeError(f"make service failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return JAR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jdbc_url(sqlalchemy_url: str) -> tuple[str, str]:
    """(jdbc URL, user) for a postgresql:// URL of the test cluster."""
    parts = urlsplit(sqlalchemy_url)
    return f"jdbc:postgresql://{parts.hostname}:{parts.port}{parts.path}", parts.username or "postgres"


class Service:
    """One running casino-events JVM."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get_json(self, path: str) -> Any:
        return json.loads(self.get(path)[1])

    def publish(self, topic: str, count: int, *, poison: bool = False) -> list[str]:
        """POST /events: the ids of the events the service accepted (202)."""
        query = f"topic={topic}&count={count}" + ("&poison=true" if poison else "")
        request = urllib.request.Request(f"{self.base_url}/events?{query}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202, response.status
            return list(json.loads(response.read())["eventIds"])

    def breaker(self) -> str:
        return str(self.get_json("/actuator/kafkapublisher")["circuitBreakerState"])

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_service(
    jar: Path, *, database_url: str, bootstrap: str, workdir: Path, properties: dict[str, str] | None = None
) -> Service:
    """Start the jar against this database and broker; returns once /actuator/health is UP."""
    java = shutil.which("java")
    if java is None:
        raise ServiceMissing("java is not installed")
    url, user = jdbc_url(database_url)
    port = free_port()
    args = {
        "server.port": str(port),
        "spring.datasource.url": url,
        "spring.datasource.username": user,
        "spring.datasource.password": "",
        "spring.kafka.bootstrap-servers": bootstrap,
        **FAST_PRODUCER,
        **(properties or {}),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "service.log"
    cmd = [java, *JVM_FLAGS, "-jar", str(jar), *(f"--{k}={v}" for k, v in args.items())]
    with log.open("ab") as out:
        process = subprocess.Popen(
            cmd,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(process, port, log)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with {process.returncode}:\n{service.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                if service.get_json("/actuator/health").get("status") == "UP":
                    return service
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not UP within {START_TIMEOUT:g}s:\n{service.log_tail()}")
            time.sleep(0.25)
    except BaseException:
        service.stop()
        raise


@contextlib.contextmanager
def running_service(jar: Path, **kwargs: Any) -> Iterator[Service]:
    service = start_service(jar, **kwargs)
    try:
        yield service
    finally:
        service.stop()


def wait_until(condition: Any, *, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `condition()` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def records_of(bootstrap: str, topic: str) -> list[tuple[bytes, dict[str, bytes]]]:
    """Every record of a one-partition topic: (value, headers)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "svc-test", "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, low)])
        records: list[tuple[bytes, dict[str, bytes]]] = []
        while len(records) < high - low:
            msg = consumer.poll(5)
            assert msg is not None, f"only {len(records)} of {high - low} records read"
            assert msg.error() is None, msg.error()
            records.append((msg.value(), dict(msg.headers() or [])))
        return records
    finally:
        consumer.close()
