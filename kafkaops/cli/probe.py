"""`kafkaops probe`: records written to and read back from the probe topic, timed and judged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from kafkaops.cli.fields import Field
from kafkaops.cli.formats import output_option
from kafkaops.cli.gate import writes
from kafkaops.cli.output import Format, Output
from kafkaops.cli.state import state
from kafkaops.cli.status import StatusCommand

if TYPE_CHECKING:
    from kafkaops.probe.model import ProbeResult

PROBE_TOPIC = "kafkaops.probe"  # kafkaops/probe/model.py's, spelled here for --help without importing it
DEFAULT_COUNT = 100
DEFAULT_TIMEOUT = 10.0
FORMATS = (Format.table, Format.json, Format.yaml)


class ProbeCommand(StatusCommand):
    """Exit 3 when the probe could not run (usage, configuration, unreachable, topic missing,
    denied), as `status`: 1 and 2 stay WARNING and CRITICAL."""


FIELDS = [
    Field("measure", "MEASURE"),
    Field("p50_ms", "P50 (MS)"),
    Field("p99_ms", "P99 (MS)"),
    Field("max_ms", "MAX (MS)"),
]


@writes
def probe(
    ctx: typer.Context,
    output_format: Annotated[Format | None, output_option(FORMATS)] = None,
    count: Annotated[
        int,
        typer.Option("--count", "-n", min=1, max=100_000, help="Records to write and read back."),
    ] = DEFAULT_COUNT,
    topic: Annotated[str, typer.Option("--topic", metavar="TOPIC", help="The probe topic.")] = PROBE_TOPIC,
    ensure: Annotated[
        bool,
        typer.Option(
            "--ensure",
            help="Create the probe topic first when it does not exist (one partition per broker, "
            "up to 3 replicas); without it a missing topic is an error.",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", min=0.5, help="The longest the whole run may take."),
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Write records to the probe topic as the service does and read them back, timed.

    The producer uses the service's settings: acks=all, idempotence, and batch.size and
    linger.ms from the config's kafka section, else the runbook's (32768 and 10). Reports the
    time to connect and to read the topic's metadata, the produce acknowledgement and the end
    to end latency (written to read back; p50, p99, max) and records lost, and judges the
    acknowledgement p99 against thresholds.publish_latency (100 ms / 1 s). The probe topic is
    created only by --ensure, never implicitly. Writes records: not for a read-only context.

    Exit 0 OK, 1 WARNING, 2 CRITICAL (records lost or refused, e.g. NOT_ENOUGH_REPLICAS), 3 when
    it could not probe (unreachable, topic missing, denied), as status.

    \b
    Examples:
      kafkaops probe --ensure
      kafkaops probe -n 1000 -o json | jq .end_to_end_latency_s
    """
    fmt = output_format or Format.table
    app = state(ctx)
    result, check = _run(app, topic=topic, count=count, ensure=ensure, timeout=timeout)
    out = Output(fmt, raw_cells=app.raw_cells)
    if fmt in (Format.json, Format.yaml):
        out.document(
            {
                "status": check.status,
                "message": check.message,
                "next_step": check.next_step,
                **result.as_dict(),
            }
        )
    else:
        out.rows(_rows(result), FIELDS)
        out.info(f"{check.status}: {check.message}")
        if check.next_step:
            out.info(f"Next: {check.next_step}")
    raise typer.Exit(_exit_code(check.status))


def _run(app: Any, *, topic: str, count: int, ensure: bool, timeout: float) -> tuple[ProbeResult, Any]:
    import time

    from kafkaops.probe.run import ensure_probe_topic, run_probe
    from kafkaops.status import checks

    settings = app.settings
    props = settings.require_kafka()
    started = time.monotonic()
    if ensure and ensure_probe_topic(props, topic, timeout=timeout):
        Output().info(f"Created topic {topic}.")
    left = max(0.5, timeout - (time.monotonic() - started))
    result = run_probe(props, topic=topic, count=count, timeout=left)
    return result, checks.probe(result, settings.thresholds)


def _exit_code(status: str) -> int:
    from kafkaops.status.checks import EXIT_CODES

    return EXIT_CODES[status]


def _rows(result: ProbeResult) -> list[dict[str, Any]]:
    def ms(value: float | None) -> str:
        return "" if value is None else f"{value * 1000:.1f}"

    rows = []
    for name, samples in (("produce ack", result.ack_s), ("end to end", result.end_to_end_s)):
        f = result.figures(samples)
        rows.append({"measure": name, "p50_ms": ms(f["p50"]), "p99_ms": ms(f["p99"]), "max_ms": ms(f["max"])})
    for name, value in (("connect", result.connect_s), ("metadata", result.metadata_s)):
        rows.append({"measure": name, "p50_ms": "", "p99_ms": "", "max_ms": ms(value)})
    return rows
