"""The DLQ record's parsing side: every origin's headers, Spring's binary numbers, Connect's
decimal text, repeated headers, and the headers a replay adds (pure functions, no broker)."""

from __future__ import annotations

import pytest

from kafkaops.common.jsontext import MAX_DEPTH, parse_json
from kafkaops.dlq import record as dlq_record
from kafkaops.dlq.record import parse_origin
from kafkaops.kafka.dlq_names import DEFAULT_DLQ_SUFFIXES as SUFFIXES
from kafkaops.kafka.dlq_names import is_dlq_topic


def be(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big", signed=True)


SPRING = [
    ("kafka_dlt-original-topic", b"casino.wallet.deposit.v1"),
    ("kafka_dlt-original-partition", be(5, 4)),
    ("kafka_dlt-original-offset", be(123_456_789_012, 8)),
    ("kafka_dlt-original-timestamp", be(1_795_000_000_123, 8)),
    ("kafka_dlt-exception-fqcn", b"org.springframework.kafka.listener.ListenerExecutionFailedException"),
    ("kafka_dlt-exception-message", b"Listener failed; nested exception is java.lang.IllegalStateException"),
]
CLOUD_STREAM = [
    ("x-original-topic", b"casino.player.registered.v1"),
    ("x-original-partition", be(2, 4)),
    ("x-original-offset", be(77, 8)),
    ("x-original-timestamp", be(1_795_000_000_000, 8)),
    ("x-exception-message", b"Dispatcher has no subscribers"),
    ("x-exception-fqcn", b"org.springframework.messaging.MessageDeliveryException"),
]
CONNECT = [
    ("__connect.errors.topic", b"casino.loyalty.points-earned.v1"),
    ("__connect.errors.partition", b"3"),
    ("__connect.errors.offset", b"12345678"),  # 8 bytes of decimal text, not a binary integer
    ("__connect.errors.exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
    ("__connect.errors.exception.message", b"Converting byte[] to Kafka Connect data failed"),
]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            SPRING,
            (
                "casino.wallet.deposit.v1",
                5,
                123_456_789_012,
                1_795_000_000_123,
                "Listener failed; nested exception is java.lang.IllegalStateException",
                "org.springframework.kafka.listener.ListenerExecutionFailedException",
            ),
        ),
        (
            CLOUD_STREAM,
            (
                "casino.player.registered.v1",
                2,
                77,
                1_795_000_000_000,
                "Dispatcher has no subscribers",
                "org.springframework.messaging.MessageDeliveryException",
            ),
        ),
        (
            CONNECT,
            (
                "casino.loyalty.points-earned.v1",
                3,
                12_345_678,
                None,
                "Converting byte[] to Kafka Connect data failed",
                "org.apache.kafka.connect.errors.DataException",
            ),
        ),
    ],
    ids=["spring-kafka", "spring-cloud-stream", "kafka-connect"],
)
def test_each_origin_resolves_topic_numbers_and_error(headers: list, expected: tuple) -> None:
    origin = parse_origin(headers, "whatever.dlq", SUFFIXES)
    got = (
        origin.topic,
        origin.partition,
        origin.offset,
        origin.timestamp,
        origin.error_message,
        origin.error_class,
    )
    assert got == expected


def test_spring_headers_win_over_cloud_stream_and_connect() -> None:
    origin = parse_origin([*CONNECT, *CLOUD_STREAM, *SPRING], "x.dlq", SUFFIXES)
    assert origin.topic == "casino.wallet.deposit.v1"
    assert origin.partition == 5
    assert origin.error_class == "org.springframework.kafka.listener.ListenerExecutionFailedException"


LISTENER_FAILED = "org.springframework.kafka.listener.ListenerExecutionFailedException"
POISON = "com.example.casino.events.PlayerRegisteredListener$PoisonEventException"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([("kafka_dlt-exception-cause-fqcn", POISON.encode())], (POISON, LISTENER_FAILED)),
        ([], (LISTENER_FAILED, None)),  # no cause named: the class Spring named is all there is
        ([("kafka_dlt-exception-cause-fqcn", b"")], (LISTENER_FAILED, None)),
    ],
    ids=["cause-named", "no-cause-header", "empty-cause"],
)
def test_a_spring_listener_failure_is_named_by_its_cause_and_keeps_the_wrapper(
    extra: list, expected: tuple
) -> None:
    origin = parse_origin([*SPRING, *extra], "x.dlq", SUFFIXES)
    assert (origin.error_class, origin.error_wrapper) == expected


def test_a_spring_cause_header_does_not_rename_another_origins_class() -> None:
    headers = [*CLOUD_STREAM, ("kafka_dlt-exception-cause-fqcn", POISON.encode())]
    origin = parse_origin(headers, "x.dlq", SUFFIXES)
    assert (origin.error_class, origin.error_wrapper) == (
        "org.springframework.messaging.MessageDeliveryException",
        None,
    )


def test_a_repeated_header_counts_by_its_last_occurrence() -> None:
    headers = [
        ("kafka_dlt-original-topic", b"first"),
        ("kafka_dlt-original-offset", be(1, 8)),
        ("kafka_dlt-original-topic", b"second"),
        ("kafka_dlt-original-offset", be(2, 8)),
        ("kafkaops-replay-count", b"1"),
        ("kafkaops-replay-count", b"2"),
    ]
    origin = parse_origin(headers, "x.dlq", SUFFIXES)
    assert (origin.topic, origin.offset, origin.replay_count) == ("second", 2, 2)


@pytest.mark.parametrize(
    ("dlq", "original"),
    [
        ("casino.orders.v1.dlq", "casino.orders.v1"),
        ("casino.orders.v1-dlt", "casino.orders.v1"),
        ("casino.orders.v1.DLT", "casino.orders.v1"),
        ("casino.orders.v1", None),
        (".dlq", None),
    ],
)
def test_without_headers_the_original_topic_is_the_name_without_its_suffix(
    dlq: str, original: str | None
) -> None:
    assert parse_origin([], dlq, SUFFIXES).topic == original
    assert is_dlq_topic(dlq, SUFFIXES) is (original is not None)


def test_kafkaops_retry_headers_are_read_back() -> None:
    headers = dlq_record.dlq_headers(
        [("traceparent", b"00-abc")],
        original_topic="casino.orders.v1",
        exception_message="Broker: Message size too large",
        exception_fqcn="org.apache.kafka.common.errors.RecordTooLargeException",
        failed_event_id=4711,
        retry_count=5,
    )
    origin = parse_origin(headers, "casino.orders.v1.dlq", SUFFIXES)
    assert origin.topic == "casino.orders.v1"
    assert origin.error_message == "Broker: Message size too large"
    assert origin.failed_event_id == "4711"
    assert origin.retry_count == 5
    assert origin.replay_count == 0


def test_numbers_that_fit_neither_form_are_none_not_garbage() -> None:
    headers = [("kafka_dlt-original-partition", b"\x01\x02"), ("__connect.errors.offset", b"12a")]
    origin = parse_origin(headers, "x.dlq", SUFFIXES)
    assert origin.partition is None
    assert origin.offset is None


def test_replay_headers_keep_every_original_byte_and_add_two() -> None:
    original = [
        ("bin", b"\x00\xff\xfe"),
        ("dup", b"a"),
        ("dup", b"b"),
        ("null", None),
        ("kafkaops-replay-count", b"1"),
    ]
    out = dlq_record.replay_headers(
        original, source_topic="orders.dlq", partition=2, offset=41, replay_count=1
    )
    assert out[:5] == original
    assert out[5:] == [("kafkaops-replayed-from", b"orders.dlq/2/41"), ("kafkaops-replay-count", b"2")]
    assert dlq_record.parse_origin(out, "orders.dlq", SUFFIXES).replay_count == 2


@pytest.mark.parametrize(
    ("header", "raw", "field", "expected"),
    [
        # Spring writes the partition in 4 bytes and offsets/timestamps in 8: another width
        # is not Spring's binary form, so it is read as decimal text or not at all.
        ("kafka_dlt-original-offset", b"1234", "offset", 1234),
        ("kafka_dlt-original-offset", b"\x00\x00\x00\x07", "offset", None),
        ("kafka_dlt-original-partition", be(7, 8), "partition", None),
        ("kafka_dlt-original-partition", b"\x00\x00\x01", "partition", None),
        ("kafka_dlt-original-offset", b"\x00" * 9, "offset", None),
        # Kafka's "no timestamp" (-1) and negative numbers are no position at all.
        ("kafka_dlt-original-timestamp", be(-1, 8), "timestamp", None),
        ("__connect.errors.partition", b"-5", "partition", None),
        ("__connect.errors.offset", b"12abc", "offset", None),
        ("__connect.errors.offset", b"", "offset", None),
    ],
)
def test_header_numbers_of_the_wrong_width_or_sign_are_unknown(
    header: str, raw: bytes, field: str, expected: int | None
) -> None:
    origin = parse_origin([(header, raw)], "x.dlq", SUFFIXES)
    assert getattr(origin, field) == expected


@pytest.mark.parametrize(("raw", "count"), [(b"-5", 0), (b"x", 0), (b"2", 2), (b"\x00\x00\x00\x02", 2)])
def test_a_garbled_or_negative_replay_count_reads_as_never_replayed(raw: bytes, count: int) -> None:
    # A negative count would let a record loop between its topic and the DLQ far beyond
    # --max-replays; a garbled one is rewritten as a clean "1" by the next replay.
    assert parse_origin([("kafkaops-replay-count", raw)], "x.dlq", SUFFIXES).replay_count == count


# ---------------------------------------------------------------------------------------
# Values read as JSON: one parser, nesting bounded


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (b'{"brandId": "casino-7"}', {"brandId": "casino-7"}),
        ("[" * MAX_DEPTH + "]" * MAX_DEPTH, None),  # at the bound: parsed (checked below)
        ('{"a": "' + "[" * 100_000 + '"}', {"a": "[" * 100_000}),  # brackets in a string are text
        ('{"a": "\\"' + "{" * 500 + '"}', {"a": '"' + "{" * 500}),  # after an escaped quote too
    ],
)
def test_json_values_within_the_depth_bound_parse(raw: bytes | str, parsed: object) -> None:
    value, is_json = parse_json(raw)
    assert is_json
    if parsed is not None:
        assert value == parsed


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,  # the hostile record: json.loads alone raises RecursionError
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        '{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
        b'{"a": "\xff"}',  # not UTF-8
        b"not json",
        '"unterminated \\"' * 50_000 + "[" * 200,
    ],
)
@pytest.mark.timeout(10)
def test_values_too_deep_or_not_json_are_text(raw: bytes | str) -> None:
    assert parse_json(raw) == (None, False)
