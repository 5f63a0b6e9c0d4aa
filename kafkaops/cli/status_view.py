"""The human view of `kafkaops status`: a line per check (worst first, state in colour, next
step under it), then the tables: statuses, instances, DLQ topics, pending per topic.

Every value that came from the database, Kafka or the service goes into a rich `Text` (never
parsed as markup) with its control characters made visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kafkaops.cli.fields import EXISTS_STYLES, exists_word
from kafkaops.common.escape import safe_text
from kafkaops.common.timeparse import format_duration, isoformat_utc

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

    from kafkaops.kafka.dlq_names import DlqTopic
    from kafkaops.status.result import StatusResult

COLOURS = {"OK": "green", "WARNING": "yellow", "CRITICAL": "bold red", "UNKNOWN": "magenta"}
_SPARKS = "▁▂▃▄▅▆▇█"
_TOP_TOPICS = 10
_TOP_DLQ = 20


def _t(value: Any, style: str = "") -> Text:
    from rich.text import Text

    return Text("" if value is None else safe_text(str(value)), style=style)


def _table(*headers: str, right: Sequence[int] = ()) -> Table:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    for n, header in enumerate(headers):
        table.add_column(header, justify="right" if n in right else "left", no_wrap=n == 0)
    return table


def build_view(
    result: StatusResult, *, context: str | None, trend: Sequence[tuple[datetime, int]] = ()
) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = []
    head = Text()
    head.append(f"KAFKAOPS {result.status}", style=COLOURS[result.status])
    head.append(
        f"  context {safe_text(context or '(none)')}, {isoformat_utc(result.checked_at)}, "
        f"{result.gathered.elapsed_s:.2f}s"
    )
    parts.append(head)
    if trend:
        parts.append(_trend(trend))
    parts.append(Text())
    parts.append(_checks(result))
    for title, table in _tables(result):
        parts += [Text(), Text(title, style="bold underline"), table]
    return Group(*parts)


def _checks(result: StatusResult) -> RenderableType:
    """A row per check (state, name, message), each non-OK check's next steps under it."""
    from rich.console import Group

    from kafkaops.status.checks import worst_first

    checks = worst_first(result.checks)
    state_width = max((len(c.status) for c in checks), default=0)
    name_width = max((len(safe_text(c.name)) for c in checks), default=0)
    parts: list[Any] = []
    for check in checks:
        row = _table("STATE", "CHECK", "")
        row.show_header = False
        row.columns[0].width, row.columns[1].width = state_width, name_width
        row.columns[2].overflow = "fold"  # a topic named in the message is never cut
        row.add_row(_t(check.status, COLOURS[check.status]), _t(check.name), _t(check.message))
        parts.append(row)
        if check.next_step and check.status != "OK":
            parts += [_step(step) for step in split_steps(check.next_step)]
    return Group(*parts)


def _step(step: str) -> Text:
    """A next step whole on its own line, whatever the width: never wrapped, never cut (the
    terminal may fold it on screen; a copy still gives the one line)."""
    from rich.text import Text

    line = Text("  → ", style="dim", no_wrap=True, overflow="ignore")
    line.append(safe_text(step), style="cyan")
    return line


def split_steps(next_step: str) -> list[str]:
    """The steps of a check, said as one string joined by `; `; a `; ` inside a shell-quoted
    word or inside parentheses (an aside) is part of its step."""
    steps, current, quoted, depth = [], "", False, 0
    i = 0
    while i < len(next_step):
        char = next_step[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth = max(0, depth + (1 if char == "(" else -1))
        if not quoted and depth == 0 and next_step.startswith("; ", i):
            steps.append(current)
            current, i = "", i + 2
            continue
        current += char
        i += 1
    return [step for step in [*steps, current] if step]


def _tables(result: StatusResult) -> list[tuple[str, Table]]:
    out: list[tuple[str, Table]] = []
    g = result.gathered
    db = g.database
    if db is not None:
        table = _table("STATUS", "COUNT", "", right=(1,))
        for status in ("DLQ_FAILED", "PENDING", "DLQ", "PARKED", "RESOLVED"):
            if status == "PARKED" and not db.counts.get(status):
                continue  # kafkaops' own status: shown when a row has it
            note = ""
            if status == "PENDING" and db.oldest_pending_at is not None:
                age = db.oldest_pending_age(result.checked_at)
                when = (
                    "?"
                    if age is None
                    else "in the future"
                    if age < timedelta(0)
                    else f"{format_duration(age)} ago"
                )
                note = f"oldest {when}, {db.due_now} due now"
            elif status == "RESOLVED" and db.newest_resolved_at is not None:
                note = f"newest {format_duration(result.checked_at - db.newest_resolved_at)} ago"
            elif status == "RESOLVED" and db.resolved_estimated:
                note = "estimate (--exact counts)"
            elif status == "PARKED" and db.counts.get(status):
                note = "set aside by failed park, not retried"
            style = (
                {"DLQ_FAILED": "bold red", "PENDING": "yellow"}.get(status, "")
                if db.counts.get(status)
                else ""
            )
            rows = db.counts.get(status, 0)
            count = f"~{rows}" if status == "RESOLVED" and db.resolved_estimated else rows
            table.add_row(_t(status, style), _t(count), _t(note))
        for status, n in sorted(db.counts.items()):
            if status not in ("DLQ_FAILED", "PENDING", "DLQ", "PARKED", "RESOLVED"):
                table.add_row(_t(status), _t(n), _t("unknown status"))
        out.append(("Failed events", table))
    if g.instances:
        table = _table("INSTANCE", "HEALTH", "BREAKER", "THREADS", "QUEUE", "LATENCY", "NOTE", right=(3, 4))
        for i in g.instances:
            pool = next(iter(i.pools), None)
            threads = f"{_n(pool.active)}/{_n(pool.max_pool)}" if pool else ""
            queue = (
                f"{_n(pool.queued)}" + (f"/{pool.queue_capacity}" if pool.queue_capacity else "")
                if pool
                else ""
            )
            latency = (
                f"{i.latency_kind} {i.latency_s * 1000:.0f} ms"
                if i.latency_s is not None
                else (i.latency_kind or "")
            )
            note = "; ".join(i.endpoint_errors.values()) or (
                f"not exposed: {', '.join(i.missing)}" if i.missing else ""
            )
            breaker_style = {"OPEN": "bold red", "FORCED_OPEN": "bold red", "HALF_OPEN": "yellow"}.get(
                i.breaker or "", "green" if i.breaker == "CLOSED" else ""
            )
            table.add_row(
                _t(i.name),
                _t(i.health or ("unreachable" if not i.reachable else "")),
                _t(i.breaker, breaker_style),
                _t(threads),
                _t(queue),
                _t(latency),
                _t(note, "dim"),
            )
        out.append(("Service instances", table))
    if result.dlq:
        table = _table("DLQ TOPIC", "FOR TOPIC", "EXISTS", "MESSAGES", right=(3,))
        shown = list(result.dlq)
        title = "DLQ topics"
        if len(shown) > _TOP_DLQ:
            # Thousands of topics made thousands of lines: the missing ones first, then the fullest.
            shown = sorted(shown, key=lambda d: (d.exists, -(d.messages or 0), d.name))[:_TOP_DLQ]
            title += f" ({_TOP_DLQ} of {len(result.dlq):,}, missing first; all: -o json)"
        for d in shown:
            table.add_row(
                _t(d.name),
                _t(d.source),
                _t(exists_word(_exists(d)), EXISTS_STYLES.get(exists_word(_exists(d)), "")),
                _t("" if d.messages is None else d.messages),
            )
        out.append((title, table))
    if db is not None and db.pending_by_topic:
        table = _table("TOPIC", "PENDING", right=(1,))
        ranked = sorted(db.pending_by_topic.items(), key=lambda kv: (-kv[1], kv[0]))
        for topic, n in ranked[:_TOP_TOPICS]:
            table.add_row(_t(topic), _t(n))
        title = "Pending by topic" + (
            f" (top {_TOP_TOPICS} of {len(ranked)})" if len(ranked) > _TOP_TOPICS else ""
        )
        out.append((title, table))
    return out


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)


def _trend(trend: Sequence[tuple[datetime, int]]) -> Text:
    from rich.text import Text

    first_at, first = trend[0]
    last = trend[-1][1]
    values = [v for _, v in trend][-40:]
    low, high = min(values), max(values)
    span = (high - low) or 1
    spark = "".join(_SPARKS[int((v - low) / span * (len(_SPARKS) - 1))] for v in values)
    delta = last - first
    text = Text("pending since the watch began ")
    text.append(f"({isoformat_utc(first_at)}): {first} → {last} ")
    text.append(f"({delta:+d}) ", style="red" if delta > 0 else "green" if delta < 0 else "")
    text.append(spark, style="cyan")
    return text


def render_text(renderable: RenderableType, stdout: Any) -> None:
    """Colour on a terminal; plain aligned text (no escape codes) when piped."""
    import io

    from rich.console import Console

    if getattr(stdout, "isatty", lambda: False)():
        Console(file=stdout, highlight=False, emoji=False).print(renderable, crop=False)
        return
    buffer = io.StringIO()
    Console(file=buffer, highlight=False, emoji=False, width=200, no_color=True).print(renderable, crop=False)
    stdout.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))


def _exists(topic: DlqTopic) -> bool | None:
    return None if topic.denied else topic.exists
