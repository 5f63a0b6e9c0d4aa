"""`kafkaops sandbox --port`: the embedded cluster on a port the user chose, as a real process."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.helpers.process import run_kafkaops, start_kafkaops


def free_port_pair() -> int:
    """A port P with P and P+1 free on 127.0.0.1 (for two brokers), found by trying."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as second:
                second.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    pytest.skip("no two adjacent free ports on 127.0.0.1")


def start(*args: str) -> subprocess.Popen[str]:
    return start_kafkaops("sandbox", *args, stdin=None)


def read_exports(proc: subprocess.Popen[str]) -> dict[str, str]:
    """The `export NAME=VALUE` lines the sandbox prints first, as a dict."""
    import shlex

    assert proc.stdout is not None
    exports: dict[str, str] = {}
    while len(exports) < 3:
        line = proc.stdout.readline()
        assert line.startswith("export "), (line, proc.stderr.read() if proc.stderr else "")
        name, _, value = line.removeprefix("export ").strip().partition("=")
        exports[name] = shlex.split(value)[0]
    return exports


@pytest.mark.slow
def test_sandbox_serves_every_broker_on_the_chosen_ports() -> None:
    from confluent_kafka import Consumer, Producer

    port = free_port_pair()
    proc = start("--port", str(port), "--brokers", "2", "--topic", "orders:2")
    try:
        exports = read_exports(proc)
        assert exports["KAFKAOPS_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{port},127.0.0.1:{port + 1}"
        producer = Producer({"bootstrap.servers": f"127.0.0.1:{port}"})
        metadata = producer.list_topics(timeout=10)
        assert sorted((b.host, b.port) for b in metadata.brokers.values()) == [
            ("127.0.0.1", port),
            ("127.0.0.1", port + 1),
        ]
        for n in range(4):
            producer.produce("orders", key=str(n).encode(), value=f"v{n}".encode())
        assert producer.flush(10) == 0
        consumer = Consumer(
            {"bootstrap.servers": f"127.0.0.1:{port}", "group.id": "g", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe(["orders"])
        seen: list[bytes] = []
        for _ in range(100):
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                seen.append(msg.value())
            if len(seen) == 4:
                break
        consumer.close()
        assert sorted(seen) == [b"v0", b"v1", b"v2", b"v3"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_sandbox_on_a_port_in_use_says_so() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = start("--port", str(port))
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip() == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_sandbox_port_out_of_range_is_a_usage_error() -> None:
    proc = start("--port", "65535", "--brokers", "2")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "leaves no room for 2 brokers" in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_sandbox_serves_kafkaops_from_another_process_and_stops_cleanly(signum: int) -> None:
    """The export lines point another process's kafkaops at the sandbox; a signal stops it and
    leaves no process and no folder behind."""
    from pathlib import Path

    proc = start("--topic", "orders:2")
    try:
        exports = read_exports(proc)
        folder = Path(exports["KAFKAOPS_CONFIG"]).parent
        assert folder.is_dir()
        seen = run_kafkaops("failed", "-o", "json", env=exports)
        assert seen.returncode == 0, seen.stderr
        import json

        counts = {row["status"]: row["count"] for row in json.loads(seen.stdout)}
        assert set(counts) == {"PENDING", "RESOLVED", "DLQ", "DLQ_FAILED"}
        from confluent_kafka.admin import AdminClient

        topics = AdminClient({"bootstrap.servers": exports["KAFKAOPS_BOOTSTRAP_SERVERS"]}).list_topics(
            timeout=10
        )
        assert topics.topics["orders"].partitions.keys() == {0, 1}
    finally:
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not folder.exists()


def test_lift_fault_without_a_running_sandbox_is_one_error_line(tmp_path: Path) -> None:
    """`sandbox --lift-fault` talks to the sandbox KAFKAOPS_CONFIG points at; none there (or a
    pid file a stopped one left) is a usage error naming the folder."""
    (tmp_path / "kafkaops.yaml").write_text("{}\n")
    (tmp_path / "sandbox.pid").write_text("999999999\n")
    done = run_kafkaops("sandbox", "--lift-fault", env={"KAFKAOPS_CONFIG": str(tmp_path / "kafkaops.yaml")})
    assert done.returncode == 2
    assert done.stderr.startswith(f"Error: --lift-fault: no kafkaops sandbox is running in {tmp_path}\n")
    assert "Hint: run it where the export lines of a running `kafkaops sandbox` were pasted" in done.stderr
    assert not (tmp_path / "lift-fault.request").exists()
