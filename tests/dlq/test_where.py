"""`--where` on DLQ records and `dlq stats`, on the real broker, over records from every
header origin kafkaops reads: kafkaops' retry, the service (Spring Kafka's recoverer wrapping
a listener failure), Spring Kafka, Spring Cloud Stream and Kafka Connect."""

from __future__ import annotations

import json
import shlex
import time

import pytest

from kafkaops.common.signature import error_signature
from kafkaops.dlq import record as dlq_record
from tests.conftest import Cli
from tests.helpers.broker_fixtures import NewTopicFactory
from tests.helpers.config import write_config
from tests.helpers.dlq import (
    committed_total,
    dlq_pair,
    kafkaops_process,
    produce,
    produce_raw_header,
    read_all,
    wait_until,
)
from tests.helpers.process import finish

pytestmark = pytest.mark.kafka


def be(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big", signed=True)


TIMEOUT = "org.apache.kafka.common.errors.TimeoutException"
# One record per origin: (name, headers).
ORIGINS: list[tuple[str, list[tuple[str, bytes | None]]]] = [
    (
        "kafkaops",
        dlq_record.dlq_headers(
            [("brand", b"casino-7")],
            original_topic="casino.wallet.deposit.v1",
            exception_message="Expiring 1 record(s) for casino.wallet.deposit.v1-0: 30001 ms has passed",
            exception_fqcn=TIMEOUT,
            failed_event_id=41,
            retry_count=5,
        ),
    ),
    (
        "service",
        [
            ("kafka_dlt-original-topic", b"casino.player.registered.v1"),
            ("kafka_dlt-original-partition", be(1, 4)),
            ("kafka_dlt-original-offset", be(900, 8)),
            ("kafka_dlt-original-timestamp", be(1_795_000_000_123, 8)),
            (
                "kafka_dlt-exception-fqcn",
                b"org.springframework.kafka.listener.ListenerExecutionFailedException",
            ),
            ("kafka_dlt-exception-cause-fqcn", TIMEOUT.encode()),
            ("kafka_dlt-exception-message", b"Listener failed; Expiring 3 record(s) after 120000 ms"),
        ],
    ),
    (
        "spring-kafka",
        [
            ("kafka_dlt-original-topic", b"casino.wallet.deposit.v1"),
            ("kafka_dlt-original-partition", be(5, 4)),
            ("kafka_dlt-original-offset", be(123_456_789_012, 8)),
            ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
            ("kafka_dlt-exception-message", b"bad brand 'casino-9'"),
        ],
    ),
    (
        "cloud-stream",
        [
            ("x-original-topic", b"casino.player.registered.v1"),
            ("x-original-partition", be(2, 4)),
            ("x-original-offset", be(77, 8)),
            ("x-exception-message", b"Dispatcher has no subscribers"),
            ("x-exception-fqcn", b"org.springframework.messaging.MessageDeliveryException"),
        ],
    ),
    (
        "connect",
        [
            ("__connect.errors.topic", b"casino.loyalty.points-earned.v1"),
            ("__connect.errors.partition", b"3"),
            ("__connect.errors.offset", b"12345678"),
            ("__connect.errors.exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
            ("__connect.errors.exception.message", b"Converting byte[] to Kafka Connect data failed"),
        ],
    ),
]


def origin_records() -> list[tuple[str, str, list[tuple[str, bytes | None]]]]:
    return [
        (name, json.dumps({"origin": name, "brandId": "casino-7" if n % 2 else "casino-1", "n": n}), headers)
        for n, (name, headers) in enumerate(ORIGINS)
    ]


def tail_where(cli: Cli, bootstrap: str, dlq: str, *args: str) -> tuple[list[dict], str]:
    result = cli("-b", bootstrap, "dlq", "tail", dlq, "--from-beginning", "-o", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_tail_json_prints_the_model_where_filters_on(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, origin_records())
    records, _ = tail_where(cli, kafka_bootstrap, dlq)
    by_key = {r["key"]: r for r in records}
    assert set(by_key) == {name for name, _ in ORIGINS}
    service = by_key["service"]
    assert service["origin"] == {
        "topic": "casino.player.registered.v1",
        "partition": 1,
        "offset": 900,
        "timestamp": "2026-11-18T11:06:40Z",
    }
    assert service["error"] == {
        "class": TIMEOUT,
        "message": "Listener failed; Expiring 3 record(s) after 120000 ms",
        "signature": "Listener failed; Expiring <n> record(s) after <duration>",
        "wrapper": "org.springframework.kafka.listener.ListenerExecutionFailedException",
    }
    assert service["headers"]["kafka_dlt-original-offset"] == 900  # Spring's binary number, decoded
    assert service["value"] == {"origin": "service", "brandId": "casino-7", "n": 1}
    assert service["replay_count"] == 0
    connect = by_key["connect"]
    assert connect["origin"]["offset"] == 12_345_678 and connect["headers"]["__connect.errors.partition"] == 3
    assert by_key["kafkaops"]["headers"]["kafkaops-failed-event-id"] == "41"
    assert by_key["kafkaops"]["failed_event_id"] == "41" and connect["failed_event_id"] is None
    assert (
        by_key["cloud-stream"]["error"]["class"] == "org.springframework.messaging.MessageDeliveryException"
    )
    # The signature is `failed --group-by error_signature`'s.
    for record in records:
        assert record["error"]["signature"] == error_signature(record["error"]["message"])
    assert list(records[0]) == [
        "topic", "partition", "offset", "timestamp", "key", "headers", "origin", "error", "replay_count",
        "failed_event_id", "value",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        (f'error.class == "{TIMEOUT}"', {"kafkaops", "service"}),
        ('origin.topic == "casino.player.registered.v1"', {"service", "cloud-stream"}),
        (
            '"kafka_dlt-original-partition" in headers && headers["kafka_dlt-original-partition"] == 5',
            {"spring-kafka"},
        ),
        ('"__connect.errors.topic" in headers', {"connect"}),
        ('value.brandId == "casino-7" && error.class.endsWith("Exception")', {"service", "cloud-stream"}),
        ('error.signature.startsWith("Expiring <n> record(s)")', {"kafkaops"}),
        ("origin.offset != null && origin.offset > 1000", {"spring-kafka", "connect"}),
        ('key.matches("^(kafkaops|connect)$")', {"kafkaops", "connect"}),
    ],
)
def test_where_selects_by_every_part_of_the_model(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, expression: str, selected: set[str]
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, origin_records())
    records, stderr = tail_where(cli, kafka_bootstrap, dlq, "--where", expression)
    assert {r["key"] for r in records} == selected
    assert "could not be evaluated" not in stderr


def test_a_record_the_expression_fails_on_is_not_selected_and_counted(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, [("text", "not json", None), *origin_records()])
    records, stderr = tail_where(cli, kafka_bootstrap, dlq, "--where", 'headers["brand"] == "casino-7"')
    assert [r["key"] for r in records] == ["kafkaops"]
    assert (
        "Warning: 5 records could not be evaluated (not selected): first at partition 0 offset 0: "
        "no key 'brand'"
    ) in stderr
    records, stderr = tail_where(cli, kafka_bootstrap, dlq, "--where", "value.n >= 3")
    assert {r["key"] for r in records} == {"cloud-stream", "connect"}
    assert "1 record could not be evaluated (not selected): first at partition 0 offset 0" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("error.class ==", "at column 15"),
        ('key == "a" &&& value', "at column"),
        ("nonsense == 1", "unknown name 'nonsense' at column 1"),
        ("@missing", "no saved filter 'missing' (@timeouts)"),
    ],
)
def test_a_bad_expression_is_exit_2_with_its_position(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, tmp_path, expression: str, message: str
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    config = write_config(
        tmp_path / "k.yaml", kafka={"bootstrap.servers": kafka_bootstrap}, filters={"timeouts": "true"}
    )
    for command in ("tail", "stats", "replay"):
        result = cli("--config", str(config), "dlq", command, dlq, "--where", expression)
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert result.stderr.startswith("Error: --where") and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_a_saved_filter_is_used_as_at_name(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, tmp_path
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, origin_records())
    config = write_config(
        tmp_path / "k.yaml",
        kafka={"bootstrap.servers": kafka_bootstrap},
        filters={"timeouts": f'error.class == "{TIMEOUT}"'},
    )
    result = cli(
        "--config", str(config), "dlq", "tail", dlq, "--from-beginning", "-o", "json", "--where", "@timeouts"
    )
    assert result.exit_code == 0, result.stderr
    assert {r["key"] for r in json.loads(result.stdout)} == {"kafkaops", "service"}


def test_stats_groups_with_oldest_newest_and_a_replay_line_that_replays_exactly_the_group(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    target, dlq = dlq_pair(kafka_bootstrap, new_topic, partitions=2)
    records = [(f"k{n}", json.dumps({"n": n}), ORIGINS[n % len(ORIGINS)][1]) for n in range(50)]
    produce(kafka_bootstrap, dlq, records)
    result = cli(
        "-b", kafka_bootstrap, "dlq", "stats", dlq, "-g", "error.class", "-g", "origin.topic", "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    groups = json.loads(result.stdout)
    counts = {(g["error.class"], g["origin.topic"]): g["count"] for g in groups}
    assert counts == {
        (TIMEOUT, "casino.wallet.deposit.v1"): 10,
        (TIMEOUT, "casino.player.registered.v1"): 10,
        ("java.lang.IllegalStateException", "casino.wallet.deposit.v1"): 10,
        ("org.springframework.messaging.MessageDeliveryException", "casino.player.registered.v1"): 10,
        ("org.apache.kafka.connect.errors.DataException", "casino.loyalty.points-earned.v1"): 10,
    }
    assert all(g["oldest"] <= g["newest"] for g in groups)
    # The pasted line, dry-run, counts exactly its group.
    line = next(g for g in groups if g["error.class"] == "java.lang.IllegalStateException")["replay"]
    argv = shlex.split(line)
    assert argv[:4] == ["kafkaops", "dlq", "replay", dlq]
    dry = cli("-b", kafka_bootstrap, *argv[1:], "--to", target, "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout)["replayed"] == 10
    # by day, with --where
    result = cli(
        "-b", kafka_bootstrap, "dlq", "stats", dlq, "-g", "day", "--where", "value.n < 5", "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    (day,) = json.loads(result.stdout)
    assert day["count"] == 5 and day["day"] == time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())
    assert read_all(kafka_bootstrap, target) == []  # stats and a dry run write nothing


@pytest.mark.slow
def test_a_killed_filtered_replay_resumed_replays_each_selected_record_once(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    target, dlq = dlq_pair(kafka_bootstrap, new_topic, partitions=2)
    count = 300
    produce(
        kafka_bootstrap,
        dlq,
        [
            (f"k{n}", json.dumps({"n": n, "brandId": f"casino-{n % 3}"}), ORIGINS[n % 5][1])
            for n in range(count)
        ],
    )
    where = 'value.brandId == "casino-1" && origin.topic != "casino.loyalty.points-earned.v1"'
    selected = {f"k{n}" for n in range(count) if n % 3 == 1 and n % 5 != 4}
    group = f"kafkaops-replay.{dlq}"
    args = ("dlq", "replay", dlq, "--to", target, "--yes", "--where", where, "--batch-size", "1000")
    process = kafkaops_process(*args, "--rate", "20", bootstrap=kafka_bootstrap)
    try:
        wait_until(lambda: committed_total(kafka_bootstrap, group, dlq, 2) > 0, 60, "a committed transaction")
        process.kill()  # SIGKILL, mid-run
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    first = {m.key().decode() for m in read_all(kafka_bootstrap, target)}
    assert first and first < selected, "the kill should stop the replay midway"
    code, out, err = finish(kafkaops_process(*args, "-o", "json", bootstrap=kafka_bootstrap), timeout=120)
    assert code == 0, err
    assert json.loads(out)["complete"] is True
    keys = [m.key().decode() for m in read_all(kafka_bootstrap, target)]
    assert sorted(keys) == sorted(selected)  # each selected record once, none outside the filter


def test_a_header_equality_reads_the_last_occurrence_and_counts_records_without_it(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    # The records a header predicate passes over without evaluating it must be the very ones
    # the expression would find false: same result, same count of failures.
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(
        kafka_bootstrap,
        dlq,
        [
            ("first-wins-not", "1", [("brand", b"casino-7"), ("brand", b"casino-1")]),
            ("last-wins", "2", [("brand", b"casino-1"), ("brand", b"casino-7")]),
            ("missing", "3", [("other", b"x")]),
            ("binary", "4", [("brand", b"\xff")]),
            ("plain", "5", [("brand", b"casino-7")]),
        ],
    )
    for expression in ('headers["brand"] == "casino-7"', '(headers["brand"] == "casino-7") && key != "x"'):
        records, stderr = tail_where(cli, kafka_bootstrap, dlq, "--where", expression)
        assert [r["key"] for r in records] == ["last-wins", "plain"]
        assert (
            "2 records could not be evaluated (not selected): first at partition 0 offset 2: no key 'brand'"
            in stderr
        )
    records, _ = tail_where(cli, kafka_bootstrap, dlq, "--where", 'headers["brand"] != "casino-7"')
    assert [r["key"] for r in records] == ["first-wins-not"]


def test_a_record_whose_header_name_is_not_utf8_is_shown_with_unreadable_headers_after_a_filter(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    # The client reads such headers only once; the filter asked first, the output after it.
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce_raw_header(kafka_bootstrap, dlq, b"odd", b"payload", b"bad\xffname", b"v")
    records, _ = tail_where(
        cli, kafka_bootstrap, dlq, "--where", f'error.class == null && origin.topic == "{source}"'
    )
    assert [(r["key"], r["headers"]) for r in records] == [("odd", None)]


def test_a_filtered_replay_refuses_a_record_whose_headers_cannot_be_read_without_crashing(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce_raw_header(kafka_bootstrap, dlq, b"odd", b"payload", b"bad\xffname", b"v")
    result = cli("-b", kafka_bootstrap, "dlq", "replay", dlq, "--yes", "--where", "error.class == null")
    assert result.exit_code == 1, result.stderr
    assert "has a header name that is not UTF-8" in result.stderr
    assert read_all(kafka_bootstrap, source) == []
