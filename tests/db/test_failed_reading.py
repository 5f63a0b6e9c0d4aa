"""`kafkaops failed` reading the table: grouping, listing and showing, filters and error
signatures, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
import yaml

from kafkaops.common.signature import error_signature
from tests.helpers.config import write_config
from tests.helpers.events import NOW, event, insert_a_mix, insert_one_per_status


def test_counts_per_status_with_oldest_and_newest(configured, cli) -> None:
    insert_a_mix(configured)
    result = cli("failed", "-o", "json")
    assert result.exit_code == 0, result.stderr
    groups = json.loads(result.stdout)
    # Severity order, not size: DLQ_FAILED (the runbook's CRITICAL) first, RESOLVED last.
    assert groups == [
        {
            "status": "DLQ_FAILED",
            "count": 2,
            "oldest_created_at": "2026-11-27T11:49:00Z",
            "newest_created_at": "2026-11-27T11:50:00Z",
        },
        {
            "status": "PENDING",
            "count": 5,
            "oldest_created_at": "2026-11-27T11:56:00Z",
            "newest_created_at": "2026-11-27T12:00:00Z",
        },
        {
            "status": "RESOLVED",
            "count": 3,
            "oldest_created_at": "2026-11-27T11:38:00Z",
            "newest_created_at": "2026-11-27T11:40:00Z",
        },
    ]


def test_group_by_several_columns_and_top(configured, cli) -> None:
    insert_a_mix(configured)
    result = cli("failed", "--group-by", "topic,status", "--top", "2", "-o", "json")
    assert result.exit_code == 0, result.stderr
    groups = [(g["topic"], g["status"], g["count"]) for g in json.loads(result.stdout)]
    assert groups == [
        ("casino.player.registered.v1", "PENDING", 5),
        ("casino.player.registered.v1", "RESOLVED", 3),
    ]


def test_error_signature_folds_numbers_ids_and_durations(configured, cli) -> None:
    configured.insert(
        [
            event(1, last_error="Timeout after 30012 ms for id 8f1c2a9e"),
            event(2, last_error="Timeout after 30007 ms for id 77ab0c1d"),
            event(
                3,
                last_error="Record for 'player-17' rejected: offset 991 of 5e0c4f7a-1b2c-4d3e-8f90-0a1b2c3d4e5f",
            ),
            event(
                4,
                last_error="Record for 'player-3' rejected: offset 12 of 00000000-1111-2222-3333-444444444444",
            ),
            event(5, last_error="broker down"),
        ]
    )
    result = cli("failed", "--group-by", "error_signature", "-o", "json")
    assert result.exit_code == 0, result.stderr
    counts = {g["error_signature"]: g["count"] for g in json.loads(result.stdout)}
    assert counts == {
        "Timeout after <duration> for id <hex>": 2,
        "Record for <value> rejected: offset <n> of <uuid>": 2,
        "broker down": 1,
    }


@pytest.mark.parametrize(
    ("text", "signature"),
    [
        ("Timeout after 30012 ms for id 8f1c", "Timeout after <duration> for id <hex>"),
        (
            "Expiring 3 record(s) for topic-0:120001 ms has passed",
            "Expiring <n> record(s) for topic-<n>:<duration> has passed",
        ),
        ('Value "abc" too large: 1048601 bytes at 0x7ffe12', "Value <value> too large: <n> bytes at <hex>"),
        ("waited 1.5s then 2 minutes", "waited <duration> then <duration>"),
        ("facade decade", "facade decade"),
    ],
)
def test_error_signature_rules(text: str, signature: str) -> None:
    assert error_signature(text) == signature


def test_filters_narrow_the_groups(configured, cli) -> None:
    insert_a_mix(configured)
    configured.insert([event(100, status="PENDING", topic="other.topic", created_at=NOW - timedelta(days=3))])
    result = cli(
        "failed", "--topic", "casino.*", "--since", "2026-11-27T11:45:00Z", "--error", "TIMEOUT", "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    assert [(g["status"], g["count"]) for g in json.loads(result.stdout)] == [("PENDING", 5)]
    result = cli("failed", "--status", "pending,dlq_failed", "--until", "2026-11-27T11:50:30Z", "-o", "json")
    assert [(g["status"], g["count"]) for g in json.loads(result.stdout)] == [
        ("DLQ_FAILED", 2),
        ("PENDING", 1),
    ]


def test_topic_glob_treats_sql_wildcards_literally(configured, cli) -> None:
    configured.insert([event(1, topic="a_b"), event(2, topic="axb"), event(3, topic="a%b")])
    result = cli("failed", "--group-by", "topic", "--topic", "a_*", "-o", "json")
    assert [g["topic"] for g in json.loads(result.stdout)] == ["a_b"]


@pytest.mark.parametrize("fmt", ["json", "yaml", "csv", "tsv", "table"])
def test_every_format_carries_the_same_groups(configured, cli, fmt: str) -> None:
    insert_a_mix(configured)
    result = cli("failed", "-o", fmt)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    if fmt == "json":
        rows = json.loads(out)
    elif fmt == "yaml":
        rows = yaml.safe_load(out)
    elif fmt in ("csv", "tsv"):
        rows = list(csv.DictReader(io.StringIO(out), delimiter="," if fmt == "csv" else "\t"))
    else:
        lines = out.splitlines()
        assert lines[0].split() == ["STATUS", "COUNT", "OLDEST", "NEWEST"]
        assert "\x1b[" not in out  # plain text when not a terminal
        rows = [dict(zip(["status", "count"], line.split()[:2], strict=True)) for line in lines[1:]]
    assert [(r["status"], int(r["count"])) for r in rows] == [
        ("DLQ_FAILED", 2),
        ("PENDING", 5),
        ("RESOLVED", 3),
    ]


def test_empty_table_gives_empty_json_list_and_a_note_for_people(configured, cli) -> None:
    assert json.loads(cli("failed", "-o", "json").stdout) == []
    result = cli("failed")
    assert result.stdout == ""
    assert "No failed events match." in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--group-by", "status,payload"],
            "cannot group by 'payload' (valid: status, topic, last_error, error_type, retry_count, event_key, error_signature)",
        ),
        (
            ["--group-by", "status; DROP TABLE failed_kafka_events"],
            "cannot group by 'status; drop table failed_kafka_events'",
        ),
        (["--since", "yesterday"], "invalid --since 'yesterday'"),
        (["--until", "2h30"], "invalid --until '2h30'"),
        (["--status", "LOST"], "unknown status 'LOST' (valid: PENDING, RESOLVED, DLQ, DLQ_FAILED, PARKED)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(configured, cli, args: list[str], message: str) -> None:
    insert_a_mix(configured)
    result = cli("failed", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith("Error: ")
    assert message in first
    assert "Traceback" not in result.stderr
    assert configured.count() == 10


def test_list_is_most_urgent_then_newest_first_with_limit(configured, cli) -> None:
    insert_a_mix(configured)
    result = cli("failed", "list", "--limit", "3", "-o", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["event_id"] for r in rows] == ["evt-10", "evt-11", "evt-0"]
    assert set(rows[0]) == {
        "id",
        "event_id",
        "topic",
        "event_key",
        "status",
        "retry_count",
        "last_error",
        "error_type",
        "created_at",
        "updated_at",
        "next_retry_at",
        "resolved_at",
    }
    assert rows[0]["created_at"] == "2026-11-27T11:50:00Z"  # evt-10: ten minutes before evt-0
    assert isinstance(rows[0]["retry_count"], int)


def test_piped_list_table_cuts_nothing(configured, cli) -> None:
    configured.insert([event(1, status="DLQ_FAILED", last_error="x" * 500 + ".dlq]")])
    result = cli("failed", "list")
    header, line = result.stdout.splitlines()
    assert header.split() == ["ID", "TOPIC", "STATUS", "RETRIES", "NEXT", "RETRY", "AGE", "LAST", "ERROR"]
    assert line.endswith("x" * 500 + ".dlq]") and "…" not in line


def test_show_pretty_prints_json_payload_and_decodes_headers(configured, cli) -> None:
    configured.insert([event(1, payload='{"b":1,"a":"é"}', headers='{"traceId":"t-1"}')])
    row_id = configured.rows()[0]["id"]
    result = cli("failed", "show", str(row_id))
    assert result.exit_code == 0, result.stderr
    assert 'payload (JSON):\n{\n  "b": 1,\n  "a": "é"\n}' in result.stdout
    assert '{"traceId": "t-1"}' in result.stdout
    doc = json.loads(cli("failed", "show", str(row_id), "-o", "json").stdout)
    assert doc["payload"] == '{"b":1,"a":"é"}'  # the stored bytes, untouched
    assert doc["headers"] == {"traceId": "t-1"}


def test_show_non_json_payload_as_stored(configured, cli) -> None:
    configured.insert([event(1, payload="<xml>not json</xml>", headers="not-json-either")])
    row_id = configured.rows()[0]["id"]
    result = cli("failed", "show", str(row_id))
    assert result.exit_code == 0, result.stderr
    assert "payload (not JSON, shown as stored):\n<xml>not json</xml>" in result.stdout
    assert "not-json-either" in result.stdout


@pytest.mark.timeout(60)
def test_show_a_payload_nested_too_deep_as_stored(configured, cli) -> None:
    deep = "[" * 100_000  # json.loads alone raises RecursionError on it
    configured.insert([event(1, payload=deep, headers="{" * 100_000)])
    row_id = str(configured.rows()[0]["id"])
    result = cli("failed", "show", row_id)
    assert result.exit_code == 0, result.stderr
    assert "payload (not JSON, shown as stored):\n[[[[" in result.stdout
    doc = json.loads(cli("failed", "show", row_id, "-o", "json").stdout)
    assert doc["payload"] == deep and doc["headers"] == "{" * 100_000


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [("999999", 1, "no failed event with id 999999"), ("abc", 2, "invalid id 'abc'")],
)
def test_show_unknown_or_malformed_id(configured, cli, raw: str, code: int, message: str) -> None:
    result = cli("failed", "show", raw)
    assert result.exit_code == code
    assert message in result.stderr


def test_uuid_primary_key_works(database, cli, tmp_path, monkeypatch) -> None:

    database.init(id_type="uuid")
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", database)))
    import uuid

    ids = [str(uuid.uuid4()) for _ in range(2)]
    database.insert(
        [
            event(i, id=ids[i] if database.kind == "sqlite" else uuid.UUID(ids[i]), status="DLQ_FAILED")
            for i in range(2)
        ]
    )
    result = cli("failed", "show", ids[1], "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["id"] == ids[1]
    assert cli("failed", "show", "42").exit_code == 2
    listed = json.loads(cli("failed", "list", "-o", "json").stdout)
    assert sorted(r["id"] for r in listed) == sorted(ids)
    assert cli("failed", "requeue", "--yes").exit_code == 0
    assert database.count(database.table.c.status == "PENDING") == 2


def test_since_with_an_offset_is_converted_to_utc(configured, cli) -> None:
    configured.insert([event(0), event(90)])  # 12:00Z and 10:30Z
    result = cli("failed", "--since", "2026-11-27T13:00:00+02:00", "-o", "json")  # 11:00Z
    assert [g["count"] for g in json.loads(result.stdout)] == [1]
    result = cli("failed", "--until", "2026-11-27T06:00:00-05:00", "-o", "json")  # 11:00Z
    assert [g["count"] for g in json.loads(result.stdout)] == [1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["failed", "--since", "5000000d"], "--since '5000000d' is out of range"),
        (["failed", "show", "99999999999999999999"], "whole numbers below 2^63"),
        (["failed", "purge", "--older-than", "soon", "--yes"], "invalid --older-than 'soon'"),
    ],
)
def test_out_of_range_input_is_a_usage_error(configured, cli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr


def test_error_signature_is_the_same_in_sql_and_in_python(configured, cli) -> None:
    texts = [
        "Timeout after 30012 ms for id 8f1c2a9e",
        "Zeitüberschreitung nach 5 s für Schlüssel 'ä-1'",
        "\u0661\u0662\u0663 digits that are not ASCII, \uff15 full-width, 5\u00a0ms with a no-break space",
        "\u017f is no unit; 3 days; 1h30m; o'clock",
    ]
    configured.insert([event(i, last_error=text) for i, text in enumerate(texts)])
    result = cli("failed", "--group-by", "error_signature", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert sorted(g["error_signature"] for g in json.loads(result.stdout)) == sorted(
        error_signature(t) for t in texts
    )


def test_show_a_null_payload(database, cli, tmp_path, monkeypatch) -> None:
    from kafkaops.db.schema import build_table

    table = build_table(database.settings)
    table.c.payload.nullable = True  # the service's table may allow it; db init's does not
    table.metadata.create_all(database.engine)
    database._table = table
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", database)))
    database.insert([event(1, payload=None)])
    result = cli("failed", "show", str(database.rows()[0]["id"]))
    assert result.exit_code == 0, result.stderr
    assert "payload (NULL: nothing stored)" in result.stdout


def test_error_filter_ignores_case_beyond_ascii_on_both_databases(configured, cli) -> None:  # type: ignore[no-untyped-def]
    configured.insert(
        [
            event(1, status="DLQ_FAILED", last_error="ÉCHEC de connexion au courtier"),
            event(2, status="DLQ_FAILED", last_error="Ошибка: брокер недоступен"),
            event(3, status="DLQ_FAILED", last_error="timeout"),
        ]
    )
    for needle, expected in (("échec", 1), ("ОШИБКА", 2), ("TIMEOUT", 3)):
        result = cli("failed", "list", "--error", needle, "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert [row["id"] for row in json.loads(result.stdout)] == [expected], needle


def test_error_may_search_for_a_space(configured, cli) -> None:  # type: ignore[no-untyped-def]
    configured.insert([event(1, last_error="no space"), event(2, last_error="nospace")])
    result = cli("failed", "list", "--error", " ", "-o", "json")
    assert [row["id"] for row in json.loads(result.stdout)] == [1]


def test_statuses_come_in_severity_order_and_other_groupings_by_count(configured, cli) -> None:
    configured.insert(
        [event(i, status="RESOLVED") for i in range(6)]
        + [event(10 + i, status="DLQ", topic="b") for i in range(3)]
        + [event(20, status="DLQ_FAILED", topic="b"), event(21, status="PENDING")]
        + [event(30 + i, status="PENDING", topic="b") for i in range(2)]
    )
    groups = json.loads(cli("failed", "-o", "json").stdout)
    assert [g["status"] for g in groups] == ["DLQ_FAILED", "PENDING", "DLQ", "RESOLVED"]
    # Status first: severity, then the largest group within it.
    both = json.loads(cli("failed", "-g", "status", "-g", "topic", "-o", "json").stdout)
    assert [(g["status"], g["topic"], g["count"]) for g in both] == [
        ("DLQ_FAILED", "b", 1),
        ("PENDING", "b", 2),
        ("PENDING", "casino.player.registered.v1", 1),
        ("DLQ", "b", 3),
        ("RESOLVED", "casino.player.registered.v1", 6),
    ]
    by_topic = json.loads(cli("failed", "-g", "topic", "-o", "json").stdout)
    assert [(g["topic"], g["count"]) for g in by_topic] == [("casino.player.registered.v1", 7), ("b", 6)]


@pytest.mark.slow
def test_rows_no_retry_will_touch_show_no_next_retry(configured, cli) -> None:
    ids = insert_one_per_status(configured)
    lines = cli("failed", "list").stdout.splitlines()
    stale = "2026-11-27 12:00:00Z"
    row_of = {line.split()[0]: line for line in lines[1:]}
    assert stale in row_of[str(ids["evt-2"])]  # PENDING: the time is a real promise
    assert stale not in row_of[str(ids["evt-3"])]  # DLQ: no retry will come
    assert "2026-10-18" not in row_of[str(ids["evt-4"])]  # RESOLVED
    shown = cli("failed", "show", str(ids["evt-3"])).stdout
    assert "next_retry_at  \n" in shown and stale not in shown
    # Scripts still get what is stored.
    assert json.loads(cli("failed", "show", str(ids["evt-3"]), "-o", "json").stdout)["next_retry_at"] == (
        "2026-11-27T12:00:00Z"
    )


def test_a_row_created_in_the_future_says_so_instead_of_a_negative_age(configured, cli) -> None:
    from kafkaops.common import clock as clock

    ahead = (clock.now() + timedelta(hours=3, minutes=5)).replace(microsecond=0)
    configured.insert([event(1, created_at=ahead, updated_at=ahead), event(2)])
    # Scripts get the stored value, intact.
    listed = {r["event_id"]: r for r in json.loads(cli("failed", "list", "-o", "json").stdout)}
    assert listed["evt-1"]["created_at"] == ahead.strftime("%Y-%m-%dT%H:%M:%SZ")
    table = cli("failed", "list").stdout
    row_of = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert (
        "in the future (3h5m)" in row_of[str(listed["evt-1"]["id"])]
        or "in the future (3h4m)" in row_of[str(listed["evt-1"]["id"])]
    ), table
    assert "in the future" not in row_of[str(listed["evt-2"]["id"])]
    assert not re.search(r"\s-[0-9]", table), table


def test_a_limit_that_cuts_the_list_says_so_and_all_shows_everything(configured, cli) -> None:
    configured.insert([event(i) for i in range(7)])
    cut = cli("failed", "list", "-n", "3", "-o", "json")
    assert len(json.loads(cut.stdout)) == 3
    assert cut.stderr == "Showing 3 of 7; use --limit N or --all.\n"
    whole = cli("failed", "list", "-n", "7", "-o", "json")
    assert len(json.loads(whole.stdout)) == 7 and whole.stderr == ""
    everything = cli("failed", "list", "--all", "-o", "json")
    assert [r["event_id"] for r in json.loads(everything.stdout)] == [f"evt-{i}" for i in range(7)]
    assert everything.stderr == ""
    both = cli("failed", "list", "--all", "-n", "3")
    assert both.exit_code == 2 and "--all and --limit" in both.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["failed", "list", "--limit", "99999999999999999999999"], "is not in the range 1<=x<=1000000000000"),
        (["failed", "--top", "9223372036854775808"], "is not in the range 1<=x<=1000000000000"),
        (["failed", "purge", "--older-than", "1d", "--batch-size", "1e30"], "is not a valid integer"),
    ],
)
def test_numbers_beyond_a_bigint_are_usage_errors(configured, cli, args: list[str], message: str) -> None:
    configured.insert([event(1)])
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert configured.count() == 1


SIGNATURES = {
    "Timeout after 30012 ms for id 8f1c2a9e": "Timeout after <duration> for id <hex>",
    "Zeitüberschreitung nach 5 s für Schlüssel 'ä-1'": "Zeitüberschreitung nach <duration> für Schlüssel <value>",
    "\u0661\u0662\u0663 digits that are not ASCII, \uff15 full-width, 5\u00a0ms with a no-break space": (
        "\u0661\u0662\u0663 digits that are not ASCII, \uff15 full-width, <n>\u00a0ms with a no-break space"
    ),
    "\u017f is no unit; 3 days; 1h30m; o'clock": "\u017f is no unit; <duration>; 1h30m; o'clock",
    "Größe 1048601 überschritten nach 30s": "Größe <n> überschritten nach <duration>",
    "Task Foo@1a2b3c rejected from java.util.concurrent.ThreadPoolExecutor@5e0c4f7a[Running, pool size = 50]": (
        "Task Foo@<id> rejected from java.util.concurrent.ThreadPoolExecutor@<id>[Running, pool size = <n>]"
    ),
    "Task Foo@123 rejected from java.util.concurrent.ThreadPoolExecutor@77[Running, pool size = 50]": (
        "Task Foo@<id> rejected from java.util.concurrent.ThreadPoolExecutor@<id>[Running, pool size = <n>]"
    ),
}


def test_error_signature_gives_the_expected_values_in_sql(configured, cli) -> None:
    """Literal expectations on each database, not one implementation compared with itself."""
    configured.insert([event(i, last_error=text) for i, text in enumerate(SIGNATURES)])
    result = cli("failed", "--group-by", "last_error,error_signature", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert {g["last_error"]: g["error_signature"] for g in json.loads(result.stdout)} == SIGNATURES
    folded = json.loads(cli("failed", "--group-by", "error_signature", "-o", "json").stdout)
    assert {g["error_signature"]: g["count"] for g in folded}[
        "Task Foo@<id> rejected from java.util.concurrent.ThreadPoolExecutor@<id>[Running, pool size = <n>]"
    ] == 2


def test_show_takes_several_ids_and_names_the_missing_ones(configured, cli) -> None:
    ids = insert_one_per_status(configured)
    both = json.loads(cli("failed", "show", str(ids["evt-3"]), str(ids["evt-1"]), "-o", "json").stdout)
    assert [r["event_id"] for r in both] == ["evt-3", "evt-1"]
    table = cli("failed", "show", str(ids["evt-3"]), str(ids["evt-1"])).stdout
    assert table.count("payload (JSON):") == 2
    missing = cli("failed", "show", str(ids["evt-1"]), "998", "999")
    assert missing.exit_code == 1 and "no failed event with id 998, 999" in missing.stderr
