"""`kafkaops lag`: lag in records and in time per consumer group, and Burrow's verdicts, on a
real broker with groups built by real consumers that commit, then stop, then lag; the rules
themselves as pure functions; the observations file's safety; the config it reads."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kafkaops.common.timeparse import isoformat_utc
from kafkaops.lag import observations
from kafkaops.lag.evaluate import judge_group, judge_partition
from kafkaops.lag.model import ERROR, OK, STALL, STOP, WARNING, GroupLag, Member, PartitionLag
from kafkaops.lag.read import _set_time_lag, select_groups
from tests.helpers.config import write_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
T0 = NOW.timestamp()
W, C = timedelta(minutes=5), timedelta(minutes=30)


def judged(
    p: PartitionLag, window: list[tuple[float, int, int]], moved_at: float | None = None
) -> tuple[str, str]:
    return judge_partition(p, window, moved_at if moved_at is not None else T0, NOW, warning=W, critical=C)


# -- the rules --------------------------------------------------------------------------------------


def test_a_partition_up_to_date_is_ok_whatever_its_history() -> None:
    p = PartitionLag("t", 0, committed=50, end=50)
    assert judged(p, [(T0 - 3600, 50, 50), (T0, 50, 50)], moved_at=T0 - 7200) == (OK, "up to date")


def test_no_commit_for_longer_than_the_critical_threshold_with_records_waiting_is_stop() -> None:
    p = PartitionLag("t", 0, committed=10, end=30)
    verdict, reason = judged(p, [(T0 - 1900, 10, 25), (T0, 10, 30)], moved_at=T0 - 31 * 60)
    assert verdict == STOP
    assert reason == "no commit for 31m (> 30m) with 20 records waiting"


def test_a_consumer_that_caught_up_within_the_window_is_not_stopped() -> None:
    """Burrow's "recent lag zero": the end was at the committed offset during the window."""
    p = PartitionLag("t", 0, committed=10, end=12)
    assert judged(p, [(T0 - 1900, 10, 10), (T0, 10, 12)], moved_at=T0 - 31 * 60)[0] == OK


def test_offsets_not_moving_while_records_wait_is_stall() -> None:
    p = PartitionLag("t", 0, committed=10, end=40)
    verdict, reason = judged(p, [(T0 - 120, 10, 20), (T0 - 60, 10, 30), (T0, 10, 40)])
    assert verdict == STALL
    assert reason == "committed offset stuck at 10 over 3 runs (2m) with 30 records waiting"


def test_offsets_moving_but_lag_never_decreasing_is_warning() -> None:
    p = PartitionLag("t", 0, committed=30, end=100)
    verdict, reason = judged(p, [(T0 - 120, 10, 50), (T0 - 60, 20, 80), (T0, 30, 100)])
    assert (verdict, reason) == (WARNING, "lag growing: 40 to 70 records over 2m")


def test_lag_that_was_zero_in_the_window_is_ok() -> None:
    p = PartitionLag("t", 0, committed=30, end=100)
    assert judged(p, [(T0 - 120, 10, 10), (T0 - 60, 20, 80), (T0, 30, 100)])[0] == OK


def test_the_oldest_waiting_record_older_than_the_warning_threshold_is_warning() -> None:
    p = PartitionLag("t", 0, committed=30, end=31, time_lag_s=6 * 60)
    assert judged(p, [(T0, 30, 31)]) == (
        WARNING,
        "oldest record not yet consumed is 6m old (> 5m), 1 records waiting",
    )


def test_a_committed_offset_beyond_the_end_is_an_error_naming_a_recreated_topic() -> None:
    p = PartitionLag("t", 0, committed=500, end=10)
    verdict, reason = judged(p, [(T0, 500, 10)])
    assert verdict == ERROR and p.lag == 0
    assert reason.startswith("committed offset 500 is beyond the end (10): the topic was recreated")


def test_a_partition_without_a_leader_is_an_error_with_its_reason() -> None:
    p = PartitionLag("t", 0, committed=5, problem="partition has no leader: its end offset cannot be read")
    assert judged(p, []) == (ERROR, "partition has no leader: its end offset cannot be read")


@pytest.mark.timeout(30)
def test_end_offsets_of_a_partition_without_a_leader_are_not_asked_and_it_is_an_error() -> None:
    from kafkaops.demo.cluster import EmbeddedKafka
    from kafkaops.kafka.client import admin
    from kafkaops.lag.read import read_ends
    from tests.helpers.embedded_fixtures import FAST_CLIENT

    with EmbeddedKafka() as cluster:
        cluster.create_topic("t", partitions=2)
        cluster.partition_set_leader("t", 1, -1)
        group = GroupLag("g", partitions=[PartitionLag("t", 0, 0), PartitionLag("t", 1, 0)])
        started = time.monotonic()
        read_ends(
            admin({"bootstrap.servers": cluster.bootstrap_servers, **FAST_CLIENT}), {"g": group}, started + 5
        )
        assert time.monotonic() - started < 3
    led, leaderless = group.partitions
    assert (led.end, led.problem) == (0, None)
    assert (leaderless.end, leaderless.problem) == (
        None,
        "partition has no leader: its end offset cannot be read",
    )
    assert judged(leaderless, []) == (ERROR, "partition has no leader: its end offset cannot be read")


def test_a_record_without_a_timestamp_leaves_the_lag_in_time_unknown_and_says_so() -> None:
    p = PartitionLag("t", 0, committed=5, end=9)
    _set_time_lag(p, -1, NOW)
    assert p.time_lag_s is None
    assert p.note == "the oldest waiting record has no timestamp (-1): its lag in time is unknown"


def test_a_create_time_in_the_future_counts_as_no_wait_and_says_so() -> None:
    p = PartitionLag("t", 0, committed=5, end=9)
    _set_time_lag(p, int((T0 + 600) * 1000), NOW)
    assert p.time_lag_s == 0.0
    assert p.note is not None and p.note.startswith("the oldest waiting record is dated 10m in the future")


@pytest.mark.parametrize(
    ("state", "members", "expected"),
    [
        ("STABLE", [Member("m", "c", "10.0.0.1")], (OK, "up to date")),
        ("EMPTY", [], (ERROR, "group is empty: no member consumes its partitions")),
        (
            "PREPARING_REBALANCING",
            [],
            (ERROR, "rebalancing (PREPARING_REBALANCING): no member consumes until it ends"),
        ),
    ],
)
def test_a_group_empty_or_rebalancing_is_an_error(
    state: str, members: list[Member], expected: tuple[str, str]
) -> None:
    g = GroupLag("g", state=state, members=members, partitions=[PartitionLag("t", 0, 5, 5)])
    assert judge_group(g) == expected


def test_a_stopped_partition_outranks_an_empty_group() -> None:
    p = PartitionLag("t", 0, 5, 9, verdict=STOP, reason="no commit for 31m (> 30m) with 4 records waiting")
    g = GroupLag("g", state="EMPTY", partitions=[p])
    assert judge_group(g) == (
        STOP,
        "t[0]: no commit for 31m (> 30m) with 4 records waiting; group is empty: no member consumes its partitions",
    )


def test_globs_select_listed_groups_and_exact_names_are_kept_to_be_reported() -> None:
    assert select_groups(["casino-*", "gone", "x*"], ["casino-a", "casino-b", "other"]) == (
        ["casino-a", "casino-b", "gone"],
        ["x*"],
    )


# -- the observations file --------------------------------------------------------------------------


def test_observations_keep_a_window_and_when_the_offset_last_moved(tmp_path: Path) -> None:
    path = observations.observations_path(tmp_path / "state", "prod")
    kept, warning = observations.load(path)
    assert warning is None
    for n in range(15):
        kept.track("g", "t", 0).observe(T0 + n, 7 if n < 12 else 9, 20)
    assert observations.save(path, kept) is None
    again, _ = observations.load(path)
    track = again.track("g", "t", 0)
    assert len(track.window) == observations.WINDOW and track.window[-1] == (T0 + 14, 9, 20)
    assert track.moved_at == T0 + 12
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_an_observations_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    from kafkaops.common.errors import ConfigError

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="can be written by others"):
        observations.load(observations.observations_path(shared, None))


def test_a_link_at_the_observations_file_is_refused(tmp_path: Path) -> None:
    from kafkaops.common.errors import ConfigError

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "lag-default.json").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="symbolic link"):
        observations.load(observations.observations_path(state, None))


def test_a_corrupt_observations_file_starts_the_window_afresh(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    path = observations.observations_path(state, None)
    path.write_text('{"version": 1, "groups": {"g": {"t\\t0": {"window": [["x"]]}}}}')
    kept, warning = observations.load(path)
    assert kept.groups == {}
    assert warning == f"lag state file {path} is not a kafkaops state file: the window starts afresh"


# -- the config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (
            {"thresholds": {"consumer_lag": {"warnnig": "5m"}}},
            "thresholds.consumer_lag",
        ),
        (
            {"kafka": {"bootstrap.servers": "x:9092", "consumer_groups": "casino"}},
            "kafka.consumer_groups must be a list",
        ),
    ],
)
def test_a_bad_lag_setting_is_refused_in_one_line(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sections: dict[str, Any], message: str
) -> None:
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", **sections)))
    result = cli("lag", "-g", "g")
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_lag_without_any_group_to_judge_says_how_to_name_one(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", kafka={"bootstrap.servers": "127.0.0.1:9"}))
    )
    result = cli("lag")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == "Error: no consumer group to judge"


# -- on the real broker -------------------------------------------------------------------------------


def produce(bootstrap: str, topic: str, count: int, *, timestamp_ms: int | None = None) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    for n in range(count):
        kwargs = {"timestamp": timestamp_ms} if timestamp_ms is not None else {}
        producer.produce(topic, value=f"r{n}".encode(), **kwargs)
    assert producer.flush(30) == 0


def consume_and_commit(bootstrap: str, topic: str, group: str, count: int, *, close: bool = True) -> Any:
    """A real member of `group`: subscribes, consumes `count` records, commits, then stops
    (closes, leaving the group empty, unless `close` is False)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "client.id": "lag-test",
        }
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 30
    while seen < count and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=count - seen, timeout=0.5):
            assert msg.error() is None
            seen += 1
    if count == 0:
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.2)
    assert seen == count
    if count:
        consumer.commit(asynchronous=False)
    if close:
        consumer.close()
    return consumer


@pytest.fixture
def lag_config(kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))

    def configure(**thresholds: str) -> Path:
        sections: dict[str, Any] = {}
        if thresholds:
            sections["thresholds"] = {"consumer_lag": thresholds}
        path = write_config(tmp_path / "k.yaml", kafka={"bootstrap.servers": kafka_bootstrap}, **sections)
        monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))
        return path

    configure()
    return configure


def lag_json(cli: Any, *args: str) -> tuple[int, dict[str, Any], str]:
    result = cli("lag", "-o", "json", *args)
    return result.exit_code, json.loads(result.stdout), result.stderr


def group_name() -> str:
    return f"lag-{uuid.uuid4().hex[:10]}"


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_a_group_that_committed_then_stopped_shows_its_lag_in_records_and_time(
    cli: Any, kafka_bootstrap: str, new_topic: Any, lag_config: Any
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 10)
    group = group_name()
    consume_and_commit(kafka_bootstrap, topic, group, 10)
    time.sleep(1.2)
    produce(kafka_bootstrap, topic, 20)  # the consumer is gone: these wait

    code, doc, _ = lag_json(cli, "-g", group)
    [g] = doc["groups"]
    [p] = g["partitions"]
    assert (p["committed"], p["end"], p["lag"]) == (10, 30, 20)
    assert 0 <= p["time_lag_s"] < 10
    assert (g["verdict"], g["state"], g["members"]) == (ERROR, "EMPTY", [])
    assert g["reason"] == "group is empty: no member consumes its partitions"
    assert code == 2


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_a_live_group_up_to_date_is_ok_with_its_members_hosts(
    cli: Any, kafka_bootstrap: str, new_topic: Any, lag_config: Any
) -> None:
    topic = new_topic(2)
    produce(kafka_bootstrap, topic, 6)
    group = group_name()
    member = consume_and_commit(kafka_bootstrap, topic, group, 6, close=False)
    try:
        code, doc, _ = lag_json(cli, "-g", group)
        [g] = doc["groups"]
        assert (g["verdict"], g["state"], g["lag"]) == (OK, "STABLE", 0)
        [m] = g["members"]
        assert m["client_id"] == "lag-test" and m["host"]
        assert sorted(m["partitions"]) == [f"{topic}-0", f"{topic}-1"]
        assert code == 0
        table = cli("lag", "-g", group)
        assert group in table.stdout and "OK" in table.stdout
    finally:
        member.close()


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_offsets_that_do_not_move_stall_then_stop_across_runs(
    cli: Any, kafka_bootstrap: str, new_topic: Any, lag_config: Any
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 10)
    group = group_name()
    member = consume_and_commit(kafka_bootstrap, topic, group, 5, close=False)  # alive, not committing
    try:
        lag_config(critical="3s")
        first = lag_json(cli, "-g", group, "-p")
        assert first[1]["groups"][0]["verdict"] == OK  # one observation: nothing to compare yet
        member.poll(0.1)
        second = lag_json(cli, "-g", group)
        g = second[1]["groups"][0]
        assert g["verdict"] == STALL, g
        assert g["reason"].startswith(f"{topic}[0]: committed offset stuck at 5 over 2 runs")
        time.sleep(3.2)
        member.poll(0.1)
        third = lag_json(cli, "-g", group)
        g = third[1]["groups"][0]
        assert g["verdict"] == STOP, g
        assert "with 5 records waiting" in g["reason"] and third[0] == 2
    finally:
        member.close()


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_a_rebalancing_group_is_an_error_within_the_deadline(
    cli: Any, kafka_bootstrap: str, new_topic: Any, lag_config: Any
) -> None:
    from confluent_kafka import Consumer

    topic = new_topic(1)
    group = group_name()
    # The first member stops polling; the second one's join makes the group wait for it.
    first = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, "max.poll.interval.ms": 60000})
    first.subscribe([topic])
    deadline = time.monotonic() + 30
    while not first.assignment() and time.monotonic() < deadline:
        first.poll(0.2)
    second = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    second.subscribe([topic])
    try:
        second.poll(1.0)
        started = time.monotonic()
        code, doc, _ = lag_json(cli, "-g", group, "--timeout", "5")
        assert time.monotonic() - started < 8
        [g] = doc["groups"]
        assert g["state"] == "PREPARING_REBALANCING"
        assert g["verdict"] == ERROR and g["reason"].startswith("rebalancing")
        assert code == 2
    finally:
        second.close()
        first.close()


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_a_committed_offset_beyond_the_end_says_the_topic_was_recreated(
    cli: Any, kafka_bootstrap: str, new_topic: Any, lag_config: Any
) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 3)
    group = group_name()
    committer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    committer.commit(offsets=[TopicPartition(topic, 0, 500)], asynchronous=False)
    committer.close()
    code, doc, _ = lag_json(cli, "-g", group, "-p")
    [p] = doc["groups"][0]["partitions"]
    assert (p["committed"], p["end"], p["lag"], p["verdict"]) == (500, 3, 0, ERROR)
    assert p["reason"].startswith("committed offset 500 is beyond the end (3): the topic was recreated")
    assert code == 2


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_a_record_dated_in_the_future_is_said_and_not_counted_as_waiting(
    cli: Any, kafka_bootstrap: str, new_topic: Any, lag_config: Any
) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 2, timestamp_ms=int((time.time() + 600) * 1000))
    group = group_name()
    committer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    committer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    committer.close()
    _, doc, _ = lag_json(cli, "-g", group)
    [p] = doc["groups"][0]["partitions"]
    assert p["lag"] == 2 and p["time_lag_s"] == 0.0
    assert "is dated 10m in the future" in p["reason"] or "is dated 9m" in p["reason"]


def commit_at(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """Offsets as a consumer that stopped would have left them, without joining the group."""
    from confluent_kafka import Consumer, TopicPartition

    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    committer.close()


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_a_record_without_a_timestamp_leaves_the_lag_in_time_unknown_on_the_broker(
    cli: Any, kafka_bootstrap: str, new_topic: Any, lag_config: Any
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 3, timestamp_ms=-1)  # stored as CreateTime -1
    group = group_name()
    commit_at(kafka_bootstrap, group, topic, 1)
    started = time.monotonic()
    code, doc, _ = lag_json(cli, "-g", group, "--timeout", "5")
    assert time.monotonic() - started < 8
    [p] = doc["groups"][0]["partitions"]
    assert (p["lag"], p["time_lag_s"], p["oldest_unconsumed_at"]) == (2, None, None)
    assert p["reason"].endswith("the oldest waiting record has no timestamp (-1): its lag in time is unknown")
    assert code == 2  # the group is empty


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_a_group_whose_topic_was_deleted_says_its_offsets_went_with_it(
    cli: Any, kafka_bootstrap: str, new_topic: Any, lag_config: Any
) -> None:
    from confluent_kafka.admin import AdminClient

    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 3)
    group = group_name()
    commit_at(kafka_bootstrap, group, topic, 1)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.delete_topics([topic])[topic].result(30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the broker drops the offsets shortly after the topic
        code, doc, _ = lag_json(cli, "-g", group)
        if not doc["groups"][0]["partitions"]:
            break
        time.sleep(0.3)
    [g] = doc["groups"]
    assert (g["verdict"], g["partitions"]) == (ERROR, [])
    assert g["reason"] == (
        "group is empty: no member consumes its partitions; no committed offset on any topic "
        "(none committed yet, or the topics it read were deleted)"
    )
    table = cli("lag", "-g", group, "-p")
    assert f"Group {group}: ERROR, group is empty" in table.stderr
    assert code == 2


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_groups_at_different_offsets_of_one_partition_each_get_the_age_of_their_own_record(
    cli: Any, kafka_bootstrap: str, new_topic: Any, lag_config: Any
) -> None:
    from confluent_kafka import Producer

    topic = new_topic(1)
    base_ms = int((time.time() - 3600) * 1000)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(600):  # record n is dated base + n seconds
        producer.produce(topic, value=b"r", timestamp=base_ms + n * 1000)
    assert producer.flush(30) == 0
    offsets = {group_name(): offset for offset in (0, 7, 8, 450)}  # 450: past a seek's gap
    for group, offset in offsets.items():
        commit_at(kafka_bootstrap, group, topic, offset)
    _, doc, _ = lag_json(cli, *(a for g in offsets for a in ("-g", g)))
    ages = {g["group"]: g["partitions"][0] for g in doc["groups"]}
    for group, offset in offsets.items():
        p = ages[group]
        assert p["lag"] == 600 - offset
        expected = datetime.fromtimestamp((base_ms + offset * 1000) / 1000, tz=timezone.utc)
        assert p["oldest_unconsumed_at"] == isoformat_utc(expected), (group, offset)


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_a_group_named_but_absent_and_a_glob_matching_nothing_are_said(
    cli: Any, kafka_bootstrap: str, lag_config: Any
) -> None:
    result = cli("lag", "-o", "json", "-g", "no-such-group-here", "-g", "nothing-*")
    doc = json.loads(result.stdout)
    [g] = doc["groups"]
    assert (g["verdict"], g["reason"]) == (
        ERROR,
        "no consumer group named 'no-such-group-here' on this cluster",
    )
    assert "Warning: no consumer group matches 'nothing-*'" in result.stderr
    assert result.exit_code == 2


@pytest.mark.kafka
@pytest.mark.timeout(90)
@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "yaml"])
def test_every_format_carries_the_groups_figures(
    cli: Any, kafka_bootstrap: str, new_topic: Any, lag_config: Any, fmt: str
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 4)
    group = group_name()
    consume_and_commit(kafka_bootstrap, topic, group, 1)
    result = cli("lag", "-o", fmt, "-g", group, "-p")
    assert result.exit_code == 2
    assert group in result.stdout and topic in result.stdout
    if fmt == "csv":
        header, row = result.stdout.splitlines()
        assert header.startswith("group,topic,partition,committed,end,lag,")
        assert row.startswith(f"{group},{topic},0,1,4,3,")


# -- in status ----------------------------------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_status_judges_the_configured_groups_worst_first_with_the_command_to_paste(
    cli: Any, kafka_bootstrap: str, new_topic: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 5)
    stopped, live = group_name(), group_name()
    consume_and_commit(kafka_bootstrap, topic, stopped, 2)
    member = consume_and_commit(kafka_bootstrap, topic, live, 5, close=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
    kafka = {"bootstrap.servers": kafka_bootstrap, "consumer_groups": [stopped, live]}
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", kafka=kafka)))
    try:
        result = cli("status", "-o", "json")
        doc = json.loads(result.stdout)
        check = next(c for c in doc["checks"] if c["name"] == "consumer_lag")
        assert check["status"] == "CRITICAL" and check["value"] == 3
        assert check["message"] == f"group {stopped} ERROR: group is empty: no member consumes its partitions"
        assert check["next_step"] == f"kafkaops lag --group {stopped} --partitions"
        assert [g["group"] for g in doc["consumer_lag"]["groups"]] == [stopped, live]
        assert result.exit_code == 2

        metrics = cli("status", "-o", "prometheus").stdout
        assert f'kafkaops_consumer_lag_records{{group="{stopped}",topic="{topic}"}} 3.0' in metrics
        assert f'kafkaops_consumer_lag_records{{group="{live}",topic="{topic}"}} 0.0' in metrics
        assert f'kafkaops_consumer_lag_seconds{{group="{live}",topic="{topic}"}} 0.0' in metrics
        assert f'kafkaops_consumer_lag_seconds{{group="{stopped}",topic="{topic}"}}' in metrics
    finally:
        member.close()


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_status_without_groups_configured_or_discoverable_has_no_lag_check(
    cli: Any, kafka_bootstrap: str, lag_config: Any
) -> None:
    doc = json.loads(cli("status", "-o", "json").stdout)
    assert "consumer_lag" not in {c["name"] for c in doc["checks"]}
    assert doc["consumer_lag"] is None


@pytest.mark.kafka
@pytest.mark.timeout(90)
def test_without_groups_named_lag_judges_the_groups_consuming_the_failed_events_topics_and_dlqs(
    cli: Any,
    kafka_bootstrap: str,
    new_topic: Any,
    make_database: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.helpers.events import event

    failing, other = new_topic(1), new_topic(1)
    dlq = f"{failing}.dlq"
    for topic in (failing, other):
        produce(kafka_bootstrap, topic, 2)
    db = make_database("sqlite")
    db.init()
    db.insert([event(1, topic=failing, status="RESOLVED")])
    on_failing, on_other, own = group_name(), group_name(), f"kafkaops-replay.{failing}"
    consume_and_commit(kafka_bootstrap, failing, on_failing, 1)
    consume_and_commit(kafka_bootstrap, other, on_other, 1)
    consume_and_commit(kafka_bootstrap, failing, own, 1)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
    path = write_config(tmp_path / "k.yaml", db, kafka={"bootstrap.servers": kafka_bootstrap})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))
    code, doc, _ = lag_json(cli)
    assert [g["group"] for g in doc["groups"]] == [on_failing]
    assert doc["selection"] == "groups consuming the topics of failed_kafka_events and their DLQ topics"
    assert dlq not in {p["topic"] for p in doc["groups"][0]["partitions"]}
    assert code == 2
