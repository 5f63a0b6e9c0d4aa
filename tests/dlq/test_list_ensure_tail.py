"""`kafkaops dlq list | ensure | tail` on the real Apache Kafka broker.

What the user sees is asserted: counts, topics created (and only those), every tail option,
and binary or hostile bytes that never reach the terminal raw.
"""

from __future__ import annotations

import base64
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from tests.conftest import Cli
from tests.helpers.broker_fixtures import NewTopicFactory
from tests.helpers.config import write_config
from tests.helpers.dlq import (
    create_topic,
    dlq_pair,
    json_records,
    kafkaops_process,
    produce,
    produce_raw_header,
    spring_headers,
)
from tests.helpers.events import event
from tests.helpers.process import finish

pytestmark = pytest.mark.kafka


def topics_on(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


# ---------------------------------------------------------------------------------------
# list


def test_list_shows_size_origin_times_and_replay_backlog(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic, partitions=2)
    produce(kafka_bootstrap, dlq, json_records(source, 7))
    result = cli("-b", kafka_bootstrap, "dlq", "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    rows = {r["topic"]: r for r in json.loads(result.stdout)}
    row = rows[dlq]
    assert row["messages"] == 7
    assert row["original_topic"] == source
    assert row["original_exists"] is True
    assert row["replay_pending"] == 7
    assert row["oldest"] is not None and row["newest"] is not None
    assert row["oldest"] <= row["newest"]
    assert source not in rows  # not a DLQ by name


def test_list_names_the_original_from_headers_and_says_when_it_is_gone(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    dlq = create_topic(kafka_bootstrap, new_topic(1, name_prefix="legacy") + "-dlt")
    produce(kafka_bootstrap, dlq, [(b"k", b"v", [("x-original-topic", b"casino.gone.v1")])])
    rows = {r["topic"]: r for r in json.loads(cli("-b", kafka_bootstrap, "dlq", "list", "-o", "json").stdout)}
    assert rows[dlq]["original_topic"] == "casino.gone.v1"
    assert rows[dlq]["original_exists"] is False


def test_list_json_carries_a_hostile_original_topic_as_stored_and_the_table_shows_it_safely(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    dlq = create_topic(kafka_bootstrap, new_topic(1, name_prefix="hostile") + ".dlq")
    hostile = "casino.\x1b[31mgone\u202e\\x"
    produce(kafka_bootstrap, dlq, [(b"k", b"v", [("kafka_dlt-original-topic", hostile.encode())])])
    result = cli("-b", kafka_bootstrap, "dlq", "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    rows = {r["topic"]: r for r in json.loads(result.stdout)}
    assert rows[dlq]["original_topic"] == hostile  # data, not a picture of it
    table = cli("-b", kafka_bootstrap, "dlq", "list").stdout
    assert "casino.\\x1b[31mgone\\u202e\\x" in table
    assert "\x1b" not in table and "\u202e" not in table


def test_list_warns_for_topics_with_failed_events_but_no_dlq(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, make_database, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    covered, _ = dlq_pair(kafka_bootstrap, new_topic)
    uncovered = new_topic(1, name_prefix="nodlq")
    db = make_database("sqlite")
    db.init()
    db.insert([event(1, topic=covered), event(2, topic=uncovered, status="DLQ_FAILED")])
    monkeypatch.setenv(
        "KAFKAOPS_CONFIG",
        str(write_config(tmp_path / "k.yaml", db, kafka={"bootstrap.servers": kafka_bootstrap})),
    )
    result = cli("dlq", "list")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1
    assert f"topic {uncovered} has failed events but no DLQ topic {uncovered}.dlq" in warnings[0]


@pytest.mark.timeout(60)
def test_list_with_the_database_down_prints_the_kafka_side_then_fails(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, closed_port: int
) -> None:
    # Decided: the DLQ topics are still worth seeing; the warnings that need the table are
    # not given, and the run says so with the database error and exit 1 (partial failure).
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, json_records(source, 2))
    url = f"postgresql://kafkaops:s3cret-pw@127.0.0.1:{closed_port}/kafkaops"
    result = cli("-b", kafka_bootstrap, "dlq", "list", "-o", "json", env={"KAFKAOPS_DATABASE_URL": url})
    assert result.exit_code == 1
    assert {r["topic"]: r["messages"] for r in json.loads(result.stdout)}[dlq] == 2
    assert result.stderr.startswith("Error: cannot connect to database"), result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


# ---------------------------------------------------------------------------------------
# ensure


def test_ensure_creates_exactly_the_missing_dlq_topics_with_the_source_layout(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, make_database, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    have, have_dlq = dlq_pair(kafka_bootstrap, new_topic)
    missing_a = new_topic(3, name_prefix="miss")
    missing_b = new_topic(2, name_prefix="miss")
    db = make_database("sqlite")
    db.init()
    db.insert(
        [
            event(1, topic=have),
            event(2, topic=missing_a),
            event(3, topic=missing_b),
            event(4, topic=missing_a),
        ]
    )
    monkeypatch.setenv(
        "KAFKAOPS_CONFIG",
        str(write_config(tmp_path / "k.yaml", db, kafka={"bootstrap.servers": kafka_bootstrap})),
    )
    before = topics_on(kafka_bootstrap)

    dry = cli("dlq", "ensure", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert f"would create {missing_a}.dlq (3 partitions, replication factor 1)" in dry.stderr
    assert topics_on(kafka_bootstrap) == before

    result = cli("dlq", "ensure")
    assert result.exit_code == 0, result.stderr
    assert "Created 2 DLQ topic(s)." in result.stderr
    assert topics_on(kafka_bootstrap) - before == {f"{missing_a}.dlq", f"{missing_b}.dlq"}
    meta = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert len(meta[f"{missing_a}.dlq"].partitions) == 3
    assert len(meta[f"{missing_b}.dlq"].partitions) == 2
    assert have_dlq in before

    again = cli("dlq", "ensure")
    assert again.exit_code == 0
    assert "0 DLQ topic(s) to create" in again.stderr


def test_ensure_named_topic_that_does_not_exist_is_a_usage_error(cli: Cli, kafka_bootstrap: str) -> None:
    before = topics_on(kafka_bootstrap)
    result = cli("-b", kafka_bootstrap, "dlq", "ensure", "no.such.topic.v1")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: topic 'no.such.topic.v1' does not exist")
    assert topics_on(kafka_bootstrap) == before


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_ensure_of_a_source_whose_dlq_name_would_be_too_long_is_a_usage_error(
    cli: Cli, kafka_bootstrap: str, dry_run: list[str]
) -> None:
    import uuid

    source = create_topic(kafka_bootstrap, f"long-{uuid.uuid4().hex[:12]}" + "x" * 229)  # 246: allowed
    before = topics_on(kafka_bootstrap)
    result = cli("-b", kafka_bootstrap, "dlq", "ensure", source, *dry_run)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(
        f"Error: topic {source!r} can have no DLQ topic: {source + '.dlq'!r} is not a valid Kafka topic "
        "name (250 characters)"
    ), result.stderr
    assert topics_on(kafka_bootstrap) == before


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_ensure_of_a_dlq_topic_is_a_usage_error_not_a_dlq_of_the_dlq(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, dry_run: list[str]
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    spring = create_topic(kafka_bootstrap, source + "-dlt")
    before = topics_on(kafka_bootstrap)
    for named in (dlq, spring):
        result = cli("-b", kafka_bootstrap, "dlq", "ensure", named, *dry_run)
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith(f"Error: topic {named!r} is itself a dead-letter topic"), (
            result.stderr
        )
        assert f"Hint: name its source topic ({source})" in result.stderr
    assert topics_on(kafka_bootstrap) == before


def test_ensure_from_the_table_warns_about_a_dlq_topic_and_creates_the_rest(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, make_database, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    missing = new_topic(1, name_prefix="miss")
    db = make_database("sqlite")
    db.init()
    db.insert([event(1, topic=dlq), event(2, topic=missing)])
    monkeypatch.setenv(
        "KAFKAOPS_CONFIG",
        str(write_config(tmp_path / "k.yaml", db, kafka={"bootstrap.servers": kafka_bootstrap})),
    )
    before = topics_on(kafka_bootstrap)
    result = cli("dlq", "ensure")
    assert result.exit_code == 0, result.stderr
    assert f"Warning: topic {dlq} is itself a dead-letter topic: no DLQ created for it" in result.stderr
    assert topics_on(kafka_bootstrap) - before == {f"{missing}.dlq"}


@pytest.mark.timeout(120)
def test_list_and_tail_right_after_ensure_wait_for_the_new_partitions_leaders(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    # "Adding New Event Types": ensure, then look. A partition created a moment ago answers
    # NOT_LEADER_FOR_PARTITION for a while; that is not a failure of the command.
    from confluent_kafka.admin import NewTopic

    prefix = new_topic(1, name_prefix="fresh")
    sources = [f"{prefix}-{n}" for n in range(100)]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in sources], operation_timeout=30).values():
        future.result(60)
    created = cli("-b", kafka_bootstrap, "dlq", "ensure", *sources)
    assert created.exit_code == 0, created.stderr
    listed = cli("-b", kafka_bootstrap, "dlq", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    rows = {r["topic"]: r for r in json.loads(listed.stdout)}
    assert all(rows[f"{t}.dlq"]["messages"] == 0 for t in sources)
    tailed = cli("-b", kafka_bootstrap, "dlq", "tail", f"{sources[-1]}.dlq")
    assert tailed.exit_code == 0, tailed.stderr


# ---------------------------------------------------------------------------------------
# tail


def tail_json(cli: Cli, bootstrap: str, *args: str) -> list[dict]:  # type: ignore[type-arg]
    """The records `dlq tail -o json` prints (one JSON list), checked against `-o jsonl`."""
    result = cli("-b", bootstrap, "dlq", "tail", *args, "-o", "json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    lines = cli("-b", bootstrap, "dlq", "tail", *args, "-o", "jsonl")
    assert lines.exit_code == 0, lines.stderr
    # Two runs may interleave partitions differently when they read without -n (no time merge).
    where = lambda r: (r["partition"], r["offset"])  # noqa: E731
    assert sorted((json.loads(line) for line in lines.stdout.splitlines()), key=where) == sorted(
        records, key=where
    )
    return records  # type: ignore[no-any-return]


def test_tail_last_n_per_partition_merged_by_time(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic, partitions=2)
    for n in range(6):  # alternate partitions, so time order interleaves them
        produce(kafka_bootstrap, dlq, json_records(source, 1, start=n), partition=n % 2)
        time.sleep(0.01)
    records = tail_json(cli, kafka_bootstrap, dlq, "-n", "2")
    assert [r["value"]["n"] for r in records] == [2, 3, 4, 5]
    stamps = [r["timestamp"] for r in records]
    assert stamps == sorted(stamps)
    assert tail_json(cli, kafka_bootstrap, dlq, "--from-beginning", "-p", "1") == [
        r for r in tail_json(cli, kafka_bootstrap, dlq, "--from-beginning") if r["partition"] == 1
    ]
    assert len(tail_json(cli, kafka_bootstrap, dlq, "--from-beginning")) == 6
    assert [r["value"]["n"] for r in tail_json(cli, kafka_bootstrap, dlq, "-n", "20")] == list(range(6))
    everything = "99999999999999999999"  # more than a C long: "all of them", not an OverflowError
    assert [r["value"]["n"] for r in tail_json(cli, kafka_bootstrap, dlq, "-n", everything)] == list(range(6))
    assert len(tail_json(cli, kafka_bootstrap, dlq, "-n", everything, "--key", "player-1")) == 1


def test_tail_filters_key_grep_and_since(cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, json_records(source, 30))
    by_key = tail_json(cli, kafka_bootstrap, dlq, "--key", "player-3", "-n", "2")
    # The last two matches, even though the last 2 records of the partition are other keys.
    assert [r["value"]["n"] for r in by_key] == [17, 24]
    assert all(r["key"] == "player-3" for r in by_key)
    grep = tail_json(cli, kafka_bootstrap, dlq, "--from-beginning", "--grep", '"brandId": "casino-2"')
    assert [r["value"]["n"] for r in grep] == [n for n in range(30) if n % 3 == 2]
    time.sleep(1.1)
    later = time.time()
    produce(kafka_bootstrap, dlq, json_records(source, 2, start=100))
    since = tail_json(cli, kafka_bootstrap, dlq, "--since", _iso(later - 0.5))
    assert [r["value"]["n"] for r in since] == [100, 101]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


def test_tail_json_lines_carry_every_field_and_binary_as_base64(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    headers = [
        *spring_headers("casino.orders.v1", 42, partition=3, message="Timeout [/bold]"),
        ("kafka_dlt-original-timestamp", (1_795_000_000_123).to_bytes(8, "big")),
        ("bin", b"\xff\x00\xfe"),
    ]
    produce(
        kafka_bootstrap,
        dlq,
        [(b"\xfe\xffkey", b"\x00\x01\x9b\xff", headers), ("text-key", "not json {", None)],
    )
    binary, text = tail_json(cli, kafka_bootstrap, dlq, "--from-beginning")
    assert binary["topic"] == dlq and binary["partition"] == 0 and binary["offset"] == 0
    # The one machine time format (README "Output"): to the second, what jq's fromdateiso8601 reads.
    time.strptime(binary["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert base64.b64decode(binary["key_base64"]) == b"\xfe\xffkey" and "key" not in binary
    assert base64.b64decode(binary["value_base64"]) == b"\x00\x01\x9b\xff" and "value" not in binary
    assert binary["origin"] == {
        "topic": "casino.orders.v1",
        "partition": 3,
        "offset": 42,
        "timestamp": "2026-11-18T11:06:40Z",
    }
    assert binary["error"] == {
        "class": "java.lang.IllegalStateException",
        "message": "Timeout [/bold]",
        "signature": "Timeout [/bold]",
        "wrapper": None,
    }
    assert list(binary["headers"]) == [k for k, _ in headers if k != "bin"]
    assert binary["headers_base64"] == {"bin": base64.b64encode(b"\xff\x00\xfe").decode()}
    assert binary["headers"]["kafka_dlt-original-topic"] == "casino.orders.v1"
    assert binary["headers"]["kafka_dlt-original-offset"] == 42
    assert text["key"] == "text-key" and text["value"] == "not json {" and text["headers"] == {}


def test_tail_json_lines_escape_what_a_terminal_would_obey(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    hostile = "a\x1b]0;t\x07 \x9b31m \u202egnp"
    produce(
        kafka_bootstrap,
        dlq,
        [(hostile, json.dumps({"m": hostile}, ensure_ascii=False), [("h", hostile.encode())])],
    )
    result = cli("-b", kafka_bootstrap, "dlq", "tail", dlq, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert not any(c in result.stdout for c in ("\x1b", "\x07", "\x9b", "\u202e"))
    (record,) = json.loads(result.stdout)  # the same strings, once decoded
    assert record["key"] == hostile and record["value"] == {"m": hostile}
    assert record["headers"] == {"h": hostile}


def test_tail_text_never_lets_escape_sequences_or_binary_reach_the_terminal(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    hostile = "\x1b]0;pwned-title\x07 [/bold] \u202egnp.exe"
    produce(
        kafka_bootstrap,
        dlq,
        [
            (
                "k\x1b[2J",
                json.dumps({"msg": hostile}),
                spring_headers("casino.orders.v1", 1, message=hostile),
            ),
            (b"\xff", b"\x1b[31m\xff\x00binary", None),
            ("plain", "line1\nline2 \x1b[5m", None),
        ],
    )
    result = cli("-b", kafka_bootstrap, "dlq", "tail", dlq, "--from-beginning")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out and "\x07" not in out and "\x00" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned-title\\x07 [/bold] \\u202egnp.exe" in out  # the error, shown visibly
    assert "key:      k\\x1b[2J" in out
    assert '"msg": "\\u001b]0;pwned-title\\u0007 [/bold] \\u202egnp.exe"' in out  # pretty JSON value
    assert "(binary, 13 bytes) \\x1b[31m\\xff\\x00binary" in out
    assert "line1\nline2 \\x1b[5m" in out
    assert "original: casino.orders.v1 (partition 0, offset 1)" in out


def test_a_header_name_that_is_not_utf8_does_not_stop_tail_or_list(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    # confluent-kafka cannot read such headers at all (headers() fails): the record is still
    # shown, with its headers said to be unreadable, and the records around it too.
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, json_records(source, 1))
    produce_raw_header(kafka_bootstrap, dlq, b"odd", b"payload", b"bad\xffname", b"v")
    produce(kafka_bootstrap, dlq, json_records(source, 1, start=1))
    records = tail_json(cli, kafka_bootstrap, dlq)
    assert [r["key"] for r in records] == ["player-0", "odd", "player-1"]
    assert records[1]["headers"] is None and records[1]["value"] == "payload"
    assert records[1]["origin"]["topic"] == source  # by the DLQ's name
    text = cli("-b", kafka_bootstrap, "dlq", "tail", dlq)
    assert text.exit_code == 0, text.stderr
    assert "headers:  (unreadable: a header name is not UTF-8)" in text.stdout
    listed = cli("-b", kafka_bootstrap, "dlq", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    assert {r["topic"]: r["messages"] for r in json.loads(listed.stdout)}[dlq] == 3


def test_tail_text_shows_a_huge_value_cut_and_json_keeps_it_whole(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    huge = "\x1b" * 300_000  # 1.2 MB once shown as \x1b: not for a terminal at 3 a.m.
    produce(
        kafka_bootstrap, dlq, [(b"k", huge.encode(), None), (b"k2", json.dumps({"pad": "y" * 300_000}), None)]
    )
    text = cli("-b", kafka_bootstrap, "dlq", "tail", dlq)
    assert text.exit_code == 0, text.stderr
    assert len(text.stdout) < 200_000
    # 16,384 escape characters fill 65,536 once shown as \x1b; the count is of the value's characters
    assert (
        "\\x1b" * 16_384 + "\n... (283,616 more characters; -o json prints the whole value)\n" in text.stdout
    )
    assert text.stdout.count("more characters; -o json prints the whole value") == 2
    records = tail_json(cli, kafka_bootstrap, dlq)
    assert records[0]["value"] == huge and records[1]["value"] == {"pad": "y" * 300_000}


DEEP = b"[" * 100_000  # json.loads alone raises RecursionError on it


@pytest.mark.timeout(120)
def test_a_value_nested_too_deep_is_shown_as_text_and_the_records_after_it_still_are(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, json_records(source, 1))
    produce(kafka_bootstrap, dlq, [(b"deep", DEEP, None)])
    produce(kafka_bootstrap, dlq, json_records(source, 1, start=1))
    text = cli("-b", kafka_bootstrap, "dlq", "tail", dlq)
    assert text.exit_code == 0, text.stderr
    assert text.stderr == ""
    deep = text.stdout.split("key:      deep\n")[1]
    assert deep.split("value:\n")[1].startswith("[" * 65_536 + "\n... (34,464 more characters;")
    assert '"brandId": "casino-1"' in deep  # the record after it
    records = tail_json(cli, kafka_bootstrap, dlq)
    assert [r["key"] for r in records] == ["player-0", "deep", "player-1"]
    assert records[1]["value"] == DEEP.decode()
    assert records[2]["value"]["n"] == 1


def test_tail_text_cuts_a_huge_key_and_error_as_it_cuts_values(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    key = "k" * 900_000
    produce(kafka_bootstrap, dlq, [(key, b"{}", spring_headers(source, 0, message="e" * 70_000))])
    text = cli("-b", kafka_bootstrap, "dlq", "tail", dlq)
    assert text.exit_code == 0, text.stderr
    assert len(text.stdout) < 3 * 65_536
    assert (
        f"key:      {'k' * 65_536} ... (834,464 more characters; -o json prints the whole value)\n"
        in text.stdout
    )
    assert f"{'e' * 65_536} ... (4,464 more characters; -o json prints the whole value)\n" in text.stdout
    (record,) = tail_json(cli, kafka_bootstrap, dlq)
    assert record["key"] == key and record["error"]["message"] == "e" * 70_000


def test_tail_never_joins_or_commits_a_group(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, json_records(source, 3))
    before = {
        g.group_id
        for g in AdminClient({"bootstrap.servers": kafka_bootstrap}).list_consumer_groups().result(10).valid
    }
    assert len(tail_json(cli, kafka_bootstrap, dlq, "--from-beginning")) == 3
    after = {
        g.group_id
        for g in AdminClient({"bootstrap.servers": kafka_bootstrap}).list_consumer_groups().result(10).valid
    }
    assert after == before


def test_tail_follow_prints_new_records_and_exits_0_on_ctrl_c(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, json_records(source, 1))
    process = kafkaops_process("dlq", "tail", dlq, "--follow", "-o", "jsonl", bootstrap=kafka_bootstrap)
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        assert first["value"]["n"] == 0
        produce(kafka_bootstrap, dlq, json_records(source, 1, start=1))
        second = json.loads(process.stdout.readline())
        assert second["value"]["n"] == 1
        process.send_signal(signal.SIGINT)
        code, _, err = finish(process, timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no.such.topic.dlq"], "Error: topic 'no.such.topic.dlq' does not exist"),
        (["{dlq}", "-p", "7"], "Error: topic '{dlq}' has no partition 7"),
        (["{dlq}", "--since", "yesterday-ish"], "Error: invalid --since 'yesterday-ish'"),
        (
            ["{dlq}", "-o", "csv"],
            "Error: dlq tail does not write 'csv': -o/--output takes table, json, jsonl",
        ),
        (
            ["{dlq}", "--follow", "-o", "json"],
            "Error: --follow never ends, so it cannot close one JSON document\nHint: use -o jsonl",
        ),
        (
            ["{dlq}", "--from-beginning", "--since", "1h"],
            "Error: --from-beginning and --since are two start points: give one",
        ),
        (["bad name!"], "Error: 'bad name!' is not a valid Kafka topic name"),
        (["{dlq}\x1b[2J"], "Error: '{dlq}\\x1b[2J' is not a valid Kafka topic name"),
    ],
)
def test_tail_bad_input_is_one_error_line(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, args: list[str], message: str
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    result = cli("-b", kafka_bootstrap, "dlq", "tail", *[a.format(dlq=dlq) for a in args])
    assert result.stderr.startswith(message.format(dlq=dlq)), result.stderr
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["tail", "replay"])
def test_tail_and_replay_refuse_a_partition_the_topic_does_not_have_alike(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory, command: str
) -> None:
    _, dlq = dlq_pair(kafka_bootstrap, new_topic)
    result = cli("-b", kafka_bootstrap, "dlq", command, dlq, "-p", "0", "-p", "7", "-p", "9")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"Error: topic {dlq!r} has no partition 7 (it has 1)"


def test_tail_last_n_counts_records_not_transaction_markers(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    from confluent_kafka import Producer

    topic = new_topic(1, name_prefix="txn")
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"tail-{topic}"})
    producer.init_transactions(30)
    for n in range(5):  # one record per transaction: every other offset is a commit marker
        producer.begin_transaction()
        producer.produce(topic, value=json.dumps({"n": n}).encode())
        producer.commit_transaction(30)
    assert [r["value"]["n"] for r in tail_json(cli, kafka_bootstrap, topic, "-n", "2")] == [3, 4]
    assert [r["value"]["n"] for r in tail_json(cli, kafka_bootstrap, topic, "-n", "1")] == [4]


def test_tail_and_list_find_the_last_records_before_an_aborted_transaction(
    cli: Cli, kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    # A transactional DLQ writer (Spring in a Kafka transaction) that aborts leaves offsets
    # no read_committed reader sees: the last records are further back than any fixed window.
    from confluent_kafka import Producer

    source, dlq = dlq_pair(kafka_bootstrap, new_topic)
    produce(kafka_bootstrap, dlq, json_records(source, 5))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"abort-{dlq}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for n in range(300):
        producer.produce(dlq, value=json.dumps({"aborted": n}).encode())
    producer.flush(30)
    producer.abort_transaction(30)
    assert [r["value"]["n"] for r in tail_json(cli, kafka_bootstrap, dlq)] == list(range(5))
    assert [r["value"]["n"] for r in tail_json(cli, kafka_bootstrap, dlq, "-n", "2")] == [3, 4]
    assert [
        r["value"]["n"] for r in tail_json(cli, kafka_bootstrap, dlq, "-n", "1", "--key", "player-1")
    ] == [1]
    rows = {r["topic"]: r for r in json.loads(cli("-b", kafka_bootstrap, "dlq", "list", "-o", "json").stdout)}
    assert rows[dlq]["newest"] is not None
    assert rows[dlq]["newest"] >= rows[dlq]["oldest"]


def test_dlq_suffixes_are_configurable_and_checked(
    cli: Cli,
    kafka_bootstrap: str,
    new_topic: NewTopicFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = new_topic(1, name_prefix="suf")
    dead = create_topic(kafka_bootstrap, source + ".deadletter")
    config = write_config(
        tmp_path / "k.yaml",
        kafka={"bootstrap.servers": kafka_bootstrap},
        retry={"dlq_suffixes": [".deadletter"]},
    )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    rows = {r["topic"]: r for r in json.loads(cli("dlq", "list", "-o", "json").stdout)}
    assert rows[dead]["original_topic"] == source
    assert not any(t.endswith("-dlt") for t in rows)  # the defaults are replaced, not added to
    bad = write_config(
        tmp_path / "bad.yaml", kafka={"bootstrap.servers": kafka_bootstrap}, retry={"dlq_suffixes": ".dlq"}
    )
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(bad))
    result = cli("dlq", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: retry.dlq_suffixes must be a non-empty list of suffixes")


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["tail", "x.dlq"],
        ["replay", "x.dlq", "--yes"],
        ["ensure", "x"],
        ["replay", "x.dlq", "--dry-run"],
    ],
)
def test_an_unreachable_cluster_is_one_error_line_and_exit_1(
    cli: Cli, closed_port: int, args: list[str]
) -> None:
    started = time.monotonic()
    result = cli("-b", f"127.0.0.1:{closed_port}", "dlq", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot reach Kafka at 127.0.0.1:{closed_port}")
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_ensure_on_a_cluster_without_create_topics_says_why_in_one_line(
    cli: Cli, embedded_kafka: Any
) -> None:
    """librdkafka's mock cluster (the sandbox's) takes no CreateTopics: one Error line and a hint
    saying so, and how the sandbox gets a topic instead."""
    embedded_kafka.create_topic("orders", 2)
    result = cli("-b", embedded_kafka.bootstrap_servers, "dlq", "ensure", "orders")
    assert result.exit_code == 1
    assert "Error: " in result.stderr and "Traceback" not in result.stderr
    assert "Hint: this cluster takes no CreateTopics requests" in result.stderr
    assert "kafkaops sandbox --topic NAME:PARTITIONS" in result.stderr
