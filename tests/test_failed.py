"""`kafkaops failed`: grouping, listing, showing, requeueing and purging, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
import yaml

from kafkaops.db.failed_events import error_signature
from tests.events import NOW, event


def seed_mix(db) -> None:  # type: ignore[no-untyped-def]
    db.insert(
        [event(i, status="PENDING", last_error="Timeout after 30012 ms") for i in range(5)]
        + [event(10 + i, status="DLQ_FAILED", topic="casino.wallet.v1", last_error="boom") for i in range(2)]
        + [event(20 + i, status="RESOLVED") for i in range(3)]
    )


def test_counts_per_status_with_oldest_and_newest(configured, cli) -> None:
    seed_mix(configured)
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
    seed_mix(configured)
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
    seed_mix(configured)
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
    seed_mix(configured)
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
        (["--status", "LOST"], "unknown status 'LOST' (valid: PENDING, RESOLVED, DLQ, DLQ_FAILED)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(configured, cli, args: list[str], message: str) -> None:
    seed_mix(configured)
    result = cli("failed", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith("Error: ")
    assert message in first
    assert "Traceback" not in result.stderr
    assert configured.count() == 10


def test_list_is_most_urgent_then_newest_first_with_limit(configured, cli) -> None:
    seed_mix(configured)
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
    from tests.conftest import write_config

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


def test_requeue_sets_dlq_failed_back_to_pending(configured, cli) -> None:
    seed_mix(configured)
    configured.insert([event(50, status="DLQ", retry_count=5)])
    t = configured.table
    before = configured.rows(t.c.status == "DLQ_FAILED")
    result = cli("failed", "requeue", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "2 DLQ_FAILED row(s) match in context test" in result.stderr
    assert "Requeued 2 row(s)" in result.stderr
    after = configured.rows(t.c.id.in_([r["id"] for r in before]))
    assert {r["status"] for r in after} == {"PENDING"}
    assert {r["retry_count"] for r in after} == {0}
    assert all(r["next_retry_at"] is not None for r in after)
    assert [r["payload"] for r in after] == [r["payload"] for r in before]
    assert configured.count(t.c.status == "DLQ") == 1  # DLQ only when asked
    assert cli("failed", "requeue", "--status", "DLQ", "--yes").exit_code == 0
    assert configured.count(t.c.status == "DLQ") == 0


def test_requeue_dry_run_and_refusals_change_nothing(configured, cli) -> None:
    seed_mix(configured)
    t = configured.table
    result = cli("failed", "requeue", "--dry-run")
    assert result.exit_code == 0 and "2 DLQ_FAILED row(s) match in context test" in result.stderr
    result = cli("failed", "requeue")  # no terminal to ask, no --yes
    assert result.exit_code == 2 and "add --yes" in result.stderr
    result = cli("failed", "requeue", "--status", "RESOLVED", "--yes")
    assert result.exit_code == 2 and "requeue takes rows in DLQ_FAILED or DLQ, not RESOLVED" in result.stderr
    assert configured.count(t.c.status == "DLQ_FAILED") == 2


def test_purge_deletes_old_rows_in_batches_and_never_undelivered_ones(configured, cli) -> None:
    old = NOW - timedelta(days=40)
    configured.insert(
        [event(i, status="RESOLVED", created_at=old, updated_at=old) for i in range(7)]
        + [event(10, status="RESOLVED")]  # recent: kept
        + [
            event(11, status="PENDING", created_at=old, updated_at=old),
            event(12, status="DLQ_FAILED", created_at=old, updated_at=old),
        ]
    )
    t = configured.table
    result = cli("failed", "purge", "--older-than", "30d", "--dry-run")
    assert "7 RESOLVED row(s)" in result.stderr and configured.count() == 10
    result = cli("failed", "purge", "--older-than", "30d", "--batch-size", "3", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "Deleted 7 row(s)." in result.stderr
    assert configured.count(t.c.status == "RESOLVED") == 1
    for status in ("PENDING", "DLQ_FAILED", "pending,resolved"):
        refused = cli("failed", "purge", "--status", status, "--older-than", "0s", "--yes")
        assert refused.exit_code == 2 and "purge never deletes" in refused.stderr
    assert configured.count() == 3


def test_purge_needs_older_than(configured, cli) -> None:
    result = cli("failed", "purge", "--yes")
    assert result.exit_code == 2
    assert "--older-than" in result.stderr


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
    from tests.conftest import write_config

    table = build_table(database.settings)
    table.c.payload.nullable = True  # the service's table may allow it; db init's does not
    table.metadata.create_all(database.engine)
    database._table = table
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "k.yaml", database)))
    database.insert([event(1, payload=None)])
    result = cli("failed", "show", str(database.rows()[0]["id"]))
    assert result.exit_code == 0, result.stderr
    assert "payload (NULL: nothing stored)" in result.stdout
