"""`kafkaops probe` and `status --probe`: records written with the service's producer settings
and read back on a real broker, timed and judged; the topic created only by --ensure; a topic
missing, denied, or short of in-sync replicas each said in one line within the deadline."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from kafkaops.demo.cluster import EmbeddedKafka
from kafkaops.probe.model import percentile
from tests.helpers.config import write_config
from tests.helpers.embedded_fixtures import FAST_CLIENT


def test_percentiles_are_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert (percentile(samples, 50), percentile(samples, 99), percentile(samples, 100)) == (50.0, 99.0, 100.0)
    assert percentile([0.2], 99) == 0.2 and percentile([], 50) is None


@pytest.fixture
def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))

    def write(kafka: dict[str, Any], **sections: Any) -> Path:
        path = write_config(tmp_path / "k.yaml", kafka=kafka, **sections)
        monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))
        return path

    return write


def probe_topic() -> str:
    return f"probe-{uuid.uuid4().hex[:10]}"


def topics_on(bootstrap: str) -> set[str]:
    from confluent_kafka.admin import AdminClient

    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


@pytest.mark.kafka
@pytest.mark.timeout(60)
def test_a_missing_probe_topic_is_said_with_the_command_that_creates_it_and_never_created(
    cli: Any, kafka_bootstrap: str, configure: Any
) -> None:
    configure({"bootstrap.servers": kafka_bootstrap})
    topic = probe_topic()
    started = time.monotonic()
    result = cli("probe", "--topic", topic)
    assert time.monotonic() - started < 10
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"Error: probe topic {topic} does not exist (kafkaops creates it only when asked)",
        f"Hint: create it: kafkaops probe --ensure --topic {topic}",
    ]
    assert topic not in topics_on(kafka_bootstrap)


@pytest.mark.kafka
@pytest.mark.timeout(60)
def test_ensure_creates_the_topic_and_every_record_comes_back_timed(
    cli: Any, kafka_bootstrap: str, configure: Any
) -> None:
    configure({"bootstrap.servers": kafka_bootstrap})
    topic = probe_topic()
    result = cli("probe", "--ensure", "--topic", topic, "-n", "50", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"Created topic {topic}.\n"
    doc = json.loads(result.stdout)
    assert (doc["status"], doc["count"], doc["sent"], doc["acked"], doc["received"], doc["lost"]) == (
        "OK",
        50,
        50,
        50,
        50,
        0,
    )
    assert doc["producer"] == {
        "acks": "all",
        "enable.idempotence": True,
        "batch.size": 32768,
        "linger.ms": 10,
    }
    ack, e2e = doc["ack_latency_s"], doc["end_to_end_latency_s"]
    # Every record waited linger.ms (10 ms) before it was sent, so before it could be read.
    assert 0.010 <= ack["p50"] <= ack["p99"] <= ack["max"] < 5
    assert 0.010 <= e2e["p50"] <= e2e["p99"] <= e2e["max"] < 5
    assert 0 < doc["connect_s"] < 5 and 0 < doc["metadata_s"] < 5
    assert doc["message"].startswith(f"50 records to {topic}: ack p99 ")

    table = cli("probe", "--topic", topic)  # exists now: no --ensure needed
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split() == ["MEASURE", "P50", "(MS)", "P99", "(MS)", "MAX", "(MS)"]
    assert table.stderr.startswith(f"OK: 100 records to {topic}: ack p99 ")


@pytest.mark.kafka
@pytest.mark.timeout(60)
def test_the_configs_linger_is_the_probes_and_its_latency_is_judged_by_the_publish_thresholds(
    cli: Any, kafka_bootstrap: str, configure: Any
) -> None:
    configure(
        {"bootstrap.servers": kafka_bootstrap, "linger.ms": 150, "batch.size": 16384},
        thresholds={"publish_latency": {"warning": "100ms", "critical": "2s"}},
    )
    topic = probe_topic()
    result = cli("probe", "--ensure", "--topic", topic, "-n", "10", "-o", "json")
    doc = json.loads(result.stdout)
    assert doc["producer"]["linger.ms"] == 150 and doc["producer"]["batch.size"] == 16384
    assert doc["status"] == "WARNING" and doc["ack_latency_s"]["p99"] > 0.1
    assert doc["message"].endswith("(ack p99 > 100 ms)")
    assert doc["next_step"].startswith("the runbook's High latency steps")
    assert result.exit_code == 1


@pytest.mark.kafka
@pytest.mark.timeout(60)
def test_min_insync_replicas_unmet_is_critical_in_one_line_without_waiting_out_the_deadline(
    cli: Any, kafka_bootstrap: str, configure: Any
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    configure({"bootstrap.servers": kafka_bootstrap})
    topic = probe_topic()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    new = NewTopic(topic, num_partitions=1, replication_factor=1, config={"min.insync.replicas": "2"})
    admin.create_topics([new])[topic].result(30)
    started = time.monotonic()
    result = cli("probe", "--topic", topic, "-o", "json", "--timeout", "8")
    assert time.monotonic() - started < 6
    doc = json.loads(result.stdout)
    assert (doc["status"], doc["sent"], doc["received"], doc["lost"]) == ("CRITICAL", 0, 0, 0)
    assert doc["message"] == (
        f"{topic}: NOT_ENOUGH_REPLICAS: partition 0 of {topic} has 1 in-sync replica(s), "
        "min.insync.replicas is 2: every acks=all write to it is refused, the service's too"
    )
    assert result.exit_code == 2


@pytest.mark.timeout(60)
def test_a_probe_topic_the_cluster_denies_writing_to_is_one_error_line(cli: Any, configure: Any) -> None:
    with EmbeddedKafka() as cluster:
        cluster.create_topic("kafkaops.probe")
        cluster.refuse_produce("kafkaops.probe", 29)  # TOPIC_AUTHORIZATION_FAILED
        configure({"bootstrap.servers": cluster.bootstrap_servers, "sasl.username": "svc", **FAST_CLIENT})
        started = time.monotonic()
        result = cli("probe", "--timeout", "5")
        assert time.monotonic() - started < 8
    assert result.exit_code == 3
    first = result.stderr.splitlines()[0]
    assert first == (
        "Error: Write on topic kafkaops.probe denied to User:svc (TOPIC_AUTHORIZATION_FAILED)"
    ), result.stderr


@pytest.mark.kafka
@pytest.mark.timeout(60)
def test_status_probe_adds_the_probe_check_and_a_missing_topic_is_unknown_with_the_step(
    cli: Any, kafka_bootstrap: str, configure: Any
) -> None:
    configure({"bootstrap.servers": kafka_bootstrap})
    from confluent_kafka.admin import AdminClient

    if "kafkaops.probe" in topics_on(kafka_bootstrap):  # a broker given from outside may have it
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        admin.delete_topics(["kafkaops.probe"])["kafkaops.probe"].result(30)
        deadline = time.monotonic() + 20
        while "kafkaops.probe" in topics_on(kafka_bootstrap) and time.monotonic() < deadline:
            time.sleep(0.2)
    missing = json.loads(cli("status", "--probe", "-o", "json").stdout)
    check = next(c for c in missing["checks"] if c["name"] == "probe")
    assert check["status"] == "UNKNOWN"
    assert check["message"].startswith("probe topic kafkaops.probe does not exist")
    assert check["next_step"] == "create it: kafkaops probe --ensure"
    assert "probe" not in {c["name"] for c in json.loads(cli("status", "-o", "json").stdout)["checks"]}

    assert cli("probe", "--ensure").exit_code == 0
    result = cli("status", "--probe", "-o", "json")
    doc = json.loads(result.stdout)
    check = next(c for c in doc["checks"] if c["name"] == "probe")
    assert check["status"] == "OK" and check["message"].startswith("100 records to kafkaops.probe")
    assert doc["probe"]["received"] == 100
    assert result.exit_code == 0
    metrics = cli("status", "--probe", "-o", "prometheus").stdout
    assert 'kafkaops_probe_latency_seconds{kind="ack",quantile="p99"}' in metrics
    assert 'kafkaops_probe_latency_seconds{kind="end_to_end",quantile="max"}' in metrics
    assert "kafkaops_probe_records_lost 0.0" in metrics
    assert 'kafkaops_probe_step_seconds{step="connect"}' in metrics
    nagios = cli("status", "--probe", "-o", "nagios").stdout
    assert nagios.startswith("KAFKAOPS OK - all checks OK | ")
    assert "probe_ack_p99_s=0." in nagios and "s;0.1;1;0" in nagios and " probe_lost=0;;0;0" in nagios


@pytest.mark.timeout(60)
def test_a_probe_partition_without_a_leader_is_critical_at_once(cli: Any, configure: Any) -> None:
    with EmbeddedKafka() as cluster:
        cluster.create_topic("kafkaops.probe", partitions=2)
        cluster.partition_set_leader("kafkaops.probe", 1, -1)
        configure({"bootstrap.servers": cluster.bootstrap_servers, **FAST_CLIENT})
        started = time.monotonic()
        result = cli("probe", "-o", "json", "--timeout", "5")
        assert time.monotonic() - started < 4
    doc = json.loads(result.stdout)
    assert (doc["status"], doc["sent"]) == ("CRITICAL", 0)
    assert doc["message"] == (
        "kafkaops.probe: partition(s) 1 of kafkaops.probe have no leader: nothing can be written there"
    )
    assert result.exit_code == 2
