"""`kafkaops status`: the whole pipeline at a glance, judged, fit for Nagios and Prometheus.

Exit codes are the Monitoring Plugins' for every format: 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN; a usage or configuration error here exits 3 as well.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from typer.core import TyperCommand

from kafkaops.cli.errors import known_error
from kafkaops.cli.formats import output_option
from kafkaops.cli.gate import no_writes
from kafkaops.cli.output import Format, Output
from kafkaops.cli.state import state
from kafkaops.common.errors import ExitStatus, KafkaopsError, UsageError

if TYPE_CHECKING:
    from datetime import datetime

    from kafkaops.cli.state import AppState
    from kafkaops.status.result import StatusResult

DEFAULT_WATCH = 5.0


class StatusFormat(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"
    nagios = "nagios"
    prometheus = "prometheus"


class StatusCommand(TyperCommand):
    """Exit 3 (UNKNOWN) for anything that stops status from judging: a monitoring system must
    never read a usage error as WARNING (1) or CRITICAL (2). `--watch` takes an optional value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, click.Option) and param.name == "watch":
                param._flag_needs_value = True  # `--watch` alone means every DEFAULT_WATCH seconds
                param.flag_value = DEFAULT_WATCH

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        argv = list(args[1] if len(args) > 1 else kwargs.get("args", []))
        try:
            return super().make_context(*args, **kwargs)
        except click.ClickException as error:
            error.exit_code = int(ExitStatus.UNKNOWN)
            if _asks_for_nagios(argv):
                # Nagios shows stdout: a usage error must still give it the plugin's line.
                _nagios_unknown(error.format_message())
            raise
        except KafkaopsError as error:  # an -o it does not write (cli/formats.py)
            error.exit_status = ExitStatus.UNKNOWN
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, KeyboardInterrupt, BrokenPipeError):
            raise
        except click.ClickException as error:
            error.exit_code = int(ExitStatus.UNKNOWN)
            raise
        except Exception as error:
            # Told as every command tells it (cli/errors.py), with status' exit code.
            known = known_error(ctx, error)
            known.exit_status = ExitStatus.UNKNOWN
            if known is error:
                raise
            raise known from error


def _asks_for_nagios(argv: list[str]) -> bool:
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        value = None
        if arg in ("-o", "--output") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--output="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-o") and not arg.startswith("--"):
            value = arg[2:]
        if value is not None and value.lower() == "nagios":
            return True
    return False


def _nagios_unknown(message: str) -> None:
    from kafkaops.status.render import nagios_line

    first = message.splitlines()[0] if message else "unknown error"
    Output().write(nagios_line("UNKNOWN", first) + "\n")


@no_writes
def status(
    ctx: typer.Context,
    output_format: Annotated[StatusFormat | None, output_option(tuple(StatusFormat))] = None,
    watch: Annotated[
        float | None,
        typer.Option(
            "--watch",
            "-w",
            metavar="[SECONDS]",
            min=0.5,
            help=f"Refresh a full-screen view every SECONDS (default {DEFAULT_WATCH:g}) until Ctrl-C, "
            "showing the pending trend since the watch began.",
            show_default=False,
        ),
    ] = None,
    alert_webhook: Annotated[
        str | None,
        typer.Option(
            "--alert-webhook",
            metavar="URL",
            envvar="KAFKAOPS_ALERT_WEBHOOK",
            help="POST a Slack-compatible JSON alert here when the result is CRITICAL (once per change, "
            "and a recovery once). Takes precedence over $KAFKAOPS_ALERT_WEBHOOK and alerts.webhook; "
            "a webhook URL is a secret: prefer those two over the command line.",
            show_default=False,
        ),
    ] = None,
    metrics_file: Annotated[
        str | None,
        typer.Option(
            "--metrics-file",
            metavar="PATH",
            help="Also write the figures as Prometheus text here, atomically, for node_exporter's "
            "textfile collector.",
            show_default=False,
        ),
    ] = None,
    exact: Annotated[
        bool,
        typer.Option(
            "--exact",
            help="Count every RESOLVED row of a large table (a scan of the whole table) instead of "
            "the planner's estimate, and show the newest RESOLVED time. [default: estimate past 16 MiB]",
        ),
    ] = False,
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Also write records to the probe topic and read them back (kafkaops probe: 100 "
            "records to kafkaops.probe, judged by thresholds.publish_latency) within status.timeout.",
        ),
    ] = False,
) -> None:
    """The whole pipeline at a glance: database, broker and service, judged by the runbook.

    Reads every configured source at once (database.url, kafka.bootstrap.servers, app.instances),
    judges them against `thresholds:` and prints each check with its next step. A source that
    does not answer within its deadline (status.timeout, 5s; app.timeout per request, 2s) is
    reported UNKNOWN and the others are still shown.

    Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for usage and configuration errors),
    for every format, as Nagios, Icinga and Sensu expect.

    \b
    Examples:
      kafkaops status
      kafkaops status -o nagios
      kafkaops status -o json | jq .checks
      kafkaops status --watch 10
      */5 * * * * kafkaops status -o prometheus --metrics-file /var/lib/node_exporter/textfile/kafkaops_status.prom
    """
    fmt = output_format or StatusFormat.table
    try:
        _status(state(ctx), fmt, watch, alert_webhook, metrics_file, {"exact_counts": exact, "probe": probe})
    except KafkaopsError as error:
        if fmt is StatusFormat.nagios:
            # A plugin's state line belongs on stdout, even when status could not judge.
            _nagios_unknown(error.message)
        raise


def _status(
    app: AppState,
    fmt: StatusFormat,
    watch: float | None,
    alert_webhook: str | None,
    metrics_file: str | None,
    given: Mapping[str, bool] | None = None,
) -> None:
    if watch is not None and fmt is not StatusFormat.table:
        raise UsageError("--watch shows the table view; it cannot be combined with -o " + fmt.value)
    if watch is not None and not sys.stdout.isatty():
        raise UsageError("--watch needs a terminal", hint="use -o json or -o nagios in scripts")
    if metrics_file:
        from kafkaops.status.render import check_metrics_path

        check_metrics_path(metrics_file)
    webhook = _webhook(app, alert_webhook)
    if watch is not None:
        _watch(app, watch, webhook, metrics_file, given)
        return
    result = _run(app, webhook, given)
    out = Output(
        Format.json if fmt is StatusFormat.json else Format.yaml if fmt is StatusFormat.yaml else Format.table
    )
    _write(app, out, fmt, result)
    if metrics_file:
        _write_metrics(metrics_file, result)
    for warning in result.warnings:
        out.warning(warning)
    raise typer.Exit(result.exit_code)


def _webhook(app: AppState, flag: str | None) -> str | None:
    """--alert-webhook (or $KAFKAOPS_ALERT_WEBHOOK), checked now; else alerts.webhook."""
    if flag:
        from kafkaops.common.http import parse_url

        parse_url(flag)  # a malformed URL is a usage error now, not a failed alert later
        return flag
    return None


def _run(app: AppState, webhook: str | None, given: Mapping[str, bool] | None = None) -> StatusResult:
    from dataclasses import replace

    from kafkaops.common import clock as clock
    from kafkaops.status.gather import run_status
    from kafkaops.status.settings import status_config

    given = given or {}
    config = replace(
        status_config(app.settings),
        exact_counts=given.get("exact_counts", False),
        probe=given.get("probe", False),
    )
    return run_status(app.settings, app.connections, now=clock.now(), config=config, webhook=webhook)


def _write(app: AppState, out: Output, fmt: StatusFormat, result: StatusResult) -> None:
    if fmt in (StatusFormat.json, StatusFormat.yaml):
        out.document(result.as_dict())
    elif fmt is StatusFormat.nagios:
        from kafkaops.status.render import render_nagios

        out.write(render_nagios(result, app.settings.thresholds) + "\n")
    elif fmt is StatusFormat.prometheus:
        from kafkaops.status.render import render_prometheus

        out.write(render_prometheus(result))
    else:
        from kafkaops.cli.status_view import build_view, render_text

        render_text(build_view(result, context=app.settings.context), out.stdout)


def _write_metrics(path: str, result: StatusResult) -> None:
    """A file that cannot be written is a warning: the status was still judged, its exit code stands."""
    from kafkaops.status.render import write_metrics_file

    try:
        write_metrics_file(path, result)
    except KafkaopsError as error:
        result.warnings.append(error.message)


def _watch(
    app: AppState,
    interval: float,
    webhook: str | None,
    metrics_file: str | None,
    given: Mapping[str, bool] | None = None,
) -> None:
    """A full-screen view refreshed every `interval` seconds; Ctrl-C ends it with exit 0."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from kafkaops.cli.status_view import build_view

    console = Console(highlight=False, emoji=False)
    trend: list[tuple[datetime, int]] = []
    if console.is_dumb_terminal:
        # TERM=dumb (Emacs' shell, some CI consoles): rich's Live draws nothing there, and the
        # watch showed a blank screen. Print each refresh below the last one instead.
        _watch_plainly(app, interval, webhook, metrics_file, trend, given)
        return
    try:
        with Live(
            Text("kafkaops status: gathering…"), console=console, screen=True, auto_refresh=False
        ) as live:
            while True:
                result = _refresh(app, webhook, metrics_file, trend, given)
                view = build_view(result, context=app.settings.context, trend=trend)
                footer = Text(f"\nrefreshing every {interval:g}s; Ctrl-C to quit", style="dim")
                for warning in result.warnings:
                    footer.append(f"\nWarning: {warning}", style="yellow")
                from rich.console import Group

                live.update(Group(view, footer), refresh=True)
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    raise typer.Exit(0)


def _refresh(
    app: AppState,
    webhook: str | None,
    metrics_file: str | None,
    trend: list[tuple[datetime, int]],
    given: Mapping[str, bool] | None = None,
) -> StatusResult:
    """One `--watch` refresh: gather and judge, keep the PENDING trend (the last 500), write
    the metrics file."""
    result = _run(app, webhook, given)
    if result.pending is not None:
        trend.append((result.checked_at, result.pending))
        del trend[:-500]
    if metrics_file:
        _write_metrics(metrics_file, result)
    return result


def _watch_plainly(
    app: AppState,
    interval: float,
    webhook: str | None,
    metrics_file: str | None,
    trend: list[tuple[datetime, int]],
    given: Mapping[str, bool] | None = None,
) -> None:
    """`--watch` on a terminal that cannot redraw: one full view per refresh, one after the other."""
    from kafkaops.cli.status_view import build_view, render_text

    out = Output()
    try:
        while True:
            result = _refresh(app, webhook, metrics_file, trend, given)
            render_text(build_view(result, context=app.settings.context, trend=trend), out.stdout)
            for warning in result.warnings:
                out.warning(warning)
            out.write(f"-- refreshing every {interval:g}s; Ctrl-C to quit --\n")
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    raise typer.Exit(0)
