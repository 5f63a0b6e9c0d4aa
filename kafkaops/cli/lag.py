"""`kafkaops lag`: how far behind each consumer group is, in records and in time, judged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from kafkaops.cli.fields import Field
from kafkaops.cli.formats import output_option
from kafkaops.cli.gate import no_writes
from kafkaops.cli.output import Format, Output
from kafkaops.cli.state import state
from kafkaops.cli.status import StatusCommand
from kafkaops.common.errors import UsageError

if TYPE_CHECKING:
    from kafkaops.cli.state import AppState
    from kafkaops.lag.model import LagReport

DEFAULT_TIMEOUT = 10.0


class LagCommand(StatusCommand):
    """Exit 3 when lag could not judge (usage, configuration, an unreachable cluster), as
    `status`: 1 and 2 stay WARNING and CRITICAL for whoever runs it from cron or Nagios."""


GROUP_FIELDS = [
    Field("group", "GROUP"),
    Field("verdict", "VERDICT", kind="status"),
    Field("state", "STATE"),
    Field("members", "MEMBERS", kind="int"),
    Field("hosts", "HOSTS"),
    Field("topics", "TOPICS"),
    Field("lag", "LAG", kind="int"),
    Field("time_lag_s", "TIME LAG (S)", kind="int"),
    Field("reason", "REASON", kind="long"),
]
PARTITION_FIELDS = [
    Field("group", "GROUP"),
    Field("topic", "TOPIC"),
    Field("partition", "PARTITION", kind="int"),
    Field("committed", "COMMITTED", kind="int"),
    Field("end", "END", kind="int"),
    Field("lag", "LAG", kind="int"),
    Field("oldest_unconsumed_at", "OLDEST WAITING", kind="time"),
    Field("waited", "WAITED", kind="age", source="oldest_unconsumed_at"),
    Field("time_lag_s", "TIME LAG (S)", kind="int"),
    Field("verdict", "VERDICT", kind="status"),
    Field("reason", "REASON", kind="long"),
]


@no_writes
def lag(
    ctx: typer.Context,
    output_format: Annotated[Format | None, output_option(tuple(Format))] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            "-g",
            metavar="GLOB",
            help="Only this consumer group (a name or a glob: 'casino-*'); repeat for more. Takes "
            "precedence over kafka.consumer_groups; without either, every group with offsets on a "
            "topic of failed_kafka_events or its DLQ topic.",
            show_default=False,
        ),
    ] = None,
    partitions: Annotated[
        bool, typer.Option("--partitions", "-p", help="One row per group, topic and partition.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", min=0.5, help="The longest the whole run may take."),
    ] = DEFAULT_TIMEOUT,
) -> None:
    """How far behind each consumer group is: lag in records and in time, members, a verdict.

    Per group, topic and partition: the committed offset, the end offset, the records not yet
    consumed, and their lag in time (the age of the record at the committed offset, read from
    the topic). The verdict follows Burrow's rules over the observations kept between runs in
    status.state_dir: OK; WARNING (lag growing across the runs, or the oldest waiting record older
    than thresholds.consumer_lag.warning, 5m); STALL (offsets not moving while records wait);
    STOP (no commit for longer than thresholds.consumer_lag.critical, 30m, while records wait);
    ERROR (the group is empty or rebalancing, or a partition cannot be read). Run it from cron
    or `status` to build the window.

    Exit 0 OK, 1 WARNING, 2 STALL, STOP or ERROR, 3 when it could not judge (as status).

    \b
    Examples:
      kafkaops lag
      kafkaops lag -g 'casino-events-*' -p
      kafkaops lag -o json | jq '.groups[] | select(.verdict != "OK")'
    """
    fmt = output_format or Format.table
    app = state(ctx)
    report = _run(app, group or [], timeout)
    out = Output(fmt, raw_cells=app.raw_cells)
    if fmt in (Format.json, Format.yaml):
        out.document(report.as_dict())
    elif partitions:
        out.rows(_partition_rows(report), PARTITION_FIELDS)
        for g in report.worst_first():
            if not g.partitions:  # no row above says why
                out.info(f"Group {g.group}: {g.verdict}, {g.reason}.")
    else:
        out.rows(_group_rows(report), GROUP_FIELDS)
    if not report.groups:
        out.info(f"No consumer group to judge ({report.selection}).")
    for warning in report.warnings:
        out.warning(warning)
    raise typer.Exit(report.exit_code)


def _run(app: AppState, groups: list[str], timeout: float) -> LagReport:
    from kafkaops.common import clock
    from kafkaops.lag.report import lag_of_pipeline
    from kafkaops.status.settings import status_config

    settings = app.settings
    settings.require_kafka()
    report = lag_of_pipeline(
        settings,
        app.connections,
        groups=groups,
        state_dir=status_config(settings).state_dir,
        now=clock.now(),
        timeout=timeout,
    )
    if report is None:
        raise UsageError(
            "no consumer group to judge",
            hint="give --group NAME, set kafka.consumer_groups in the config, or configure "
            "database.url so lag judges the groups consuming the failed events' topics",
        )
    return report


def _group_rows(report: LagReport) -> list[dict[str, Any]]:
    return [
        {
            "group": g.group,
            "verdict": g.verdict,
            "state": g.state,
            "members": len(g.members),
            "hosts": ", ".join(g.hosts),
            "topics": ", ".join(g.topics()),
            "lag": g.lag,
            "time_lag_s": _whole(g.time_lag_s),
            "reason": g.reason,
        }
        for g in report.worst_first()
    ]


def _partition_rows(report: LagReport) -> list[dict[str, Any]]:
    return [
        {
            "group": g.group,
            "topic": p.topic,
            "partition": p.partition,
            "committed": p.committed,
            "end": p.end,
            "lag": p.lag,
            "oldest_unconsumed_at": p.oldest_timestamp,
            "time_lag_s": _whole(p.time_lag_s),
            "verdict": p.verdict,
            "reason": p.reason,
        }
        for g in report.worst_first()
        for p in g.partitions
    ]


def _whole(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds)
