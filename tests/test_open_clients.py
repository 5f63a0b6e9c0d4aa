"""The suite's guard (tests/helpers/open_clients.py) fails a test that leaves a Kafka client open.

Each case runs pytest on a tiny test file in a subprocess with the guard loaded; no broker is
needed (a client pointed at a closed port is created and left, or closed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CASES = """
import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient

from kafkaops.kafka import client as kafka

KEPT = []
CONF = {"bootstrap.servers": "127.0.0.1:9", "log_level": 0}


def test_leaves_a_producer():
    KEPT.append(confluent_kafka.Producer(CONF))


def test_leaves_a_kafkaops_producer():
    KEPT.append(kafka.producer(CONF))


def test_leaves_an_admin_client():
    KEPT.append(AdminClient(CONF))


def test_closes_its_producer():
    producer = confluent_kafka.Producer(CONF)
    KEPT.append(producer)
    producer.close()


def test_drops_its_admin_client():
    AdminClient(CONF)


@pytest.fixture(scope="session")
def shared():
    producer = confluent_kafka.Producer(CONF)
    yield producer
    producer.close()


def test_uses_a_session_fixtures_producer(shared):
    assert shared.flush(0) == 0
"""


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("guard")
    (folder / "test_cases.py").write_text(CASES)
    env = {
        **os.environ,
        "COLUMNS": "400",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "tests.helpers.open_clients", "-p", "no:cacheprovider"),
            *("-rA", "-q", "--rootdir", str(folder), "-c", os.devnull, str(folder / "test_cases.py")),
        ],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=60,
    )
    return run.stdout + run.stderr


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("test", "client"),
    [
        ("test_leaves_a_producer", "Producer"),
        ("test_leaves_a_kafkaops_producer", "KafkaopsProducer"),
        ("test_leaves_an_admin_client", "AdminClient"),
    ],
)
def test_a_client_left_open_fails_its_test(outcome: str, test: str, client: str) -> None:
    assert (
        f"ERROR test_cases.py::{test} - AssertionError: the test left 1 Kafka client(s) open: {client} "
        in outcome
    )


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "test",
    ["test_closes_its_producer", "test_drops_its_admin_client", "test_uses_a_session_fixtures_producer"],
)
def test_a_client_closed_or_dropped_passes(outcome: str, test: str) -> None:
    assert f"PASSED test_cases.py::{test}" in outcome
    assert f"ERROR test_cases.py::{test}" not in outcome
