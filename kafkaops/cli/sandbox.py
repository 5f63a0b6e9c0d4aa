"""`kafkaops sandbox`: the demo's environment (an embedded Kafka cluster and a SQLite table of
failed events) kept running in the foreground, for trying every command by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kafkaops.cli.gate import no_writes
from kafkaops.cli.state import output


@no_writes
def sandbox(
    brokers: Annotated[int, typer.Option("--brokers", min=1, max=9, help="Number of brokers.")] = 1,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=1,
            max=65535,
            help="Listen on 127.0.0.1:PORT (broker N on PORT+N-1). [default: ports the system picks]",
            show_default=False,
        ),
    ] = None,
    topics: Annotated[
        list[str] | None,
        typer.Option(
            "--topic",
            help="Create another topic up front, NAME[:PARTITIONS] (default 1 partition); repeatable.",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Keep the SQLite file and config in this folder. [default: a temporary folder, removed at exit]",
            show_default=False,
            file_okay=False,
        ),
    ] = None,
    lift_fault: Annotated[
        bool,
        typer.Option(
            "--lift-fault",
            help="Tell the running sandbox (the one KAFKAOPS_CONFIG points at) to lift its injected "
            "fault: casino.loyalty.points-earned.v1 takes its records again, as after raising its "
            "max.message.bytes; then exit.",
        ),
    ] = False,
) -> None:
    """Run the demo's environment until Ctrl-C: an embedded Kafka and a table of failed events.

    Starts librdkafka's mock cluster on 127.0.0.1 with the service's topics (one refusing its
    records as too large, one without its DLQ), a SQLite file holding a week of failed events in
    every status, and on the DLQ topics the records of the DLQ rows; then prints the `export`
    lines that point kafkaops at them (and put this kafkaops first on PATH): paste them into
    another terminal and try any command. `kafkaops sandbox --lift-fault` there lifts the
    injected fault. The mock cluster has no CreateTopics, so `dlq ensure` cannot create a topic
    in it: --topic creates one up front. Ctrl-C (or SIGTERM) stops the cluster and removes the
    folder. Fit for trying kafkaops, not for data you care about.

    \b
    Example:
      kafkaops sandbox --port 19092
    """
    import os
    import shlex
    import signal
    import sysconfig
    import threading

    from kafkaops.common.errors import UsageError
    from kafkaops.demo import story

    if lift_fault:
        story.request_lift(os.environ.get("KAFKAOPS_CONFIG"))
        output(None).info(
            f"{story.REFUSED_TOPIC} takes its records again (the sandbox's stand-in for raising its "
            "max.message.bytes): a replay of its DLQ now goes through."
        )
        return
    if port is not None and port + brokers - 1 > 65535:
        raise UsageError(
            f"--port {port} leaves no room for {brokers} brokers (the last port would be above 65535)"
        )
    extra = dict(_topic(spec) for spec in topics or [])
    stop = threading.Event()
    # Installed before anything starts, so a signal that arrives early still ends cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    out = output(None)
    with story.demo_environment(keep=keep, port=port, brokers=brokers, extra_topics=extra) as env:
        story.announce_running(env.folder)
        exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.env().items())
        # The kafkaops of this environment first on PATH, so `kafkaops` runs as printed.
        scripts = sysconfig.get_path("scripts")
        out.text(exports + f'export PATH={shlex.quote(scripts)}:"$PATH"\n')
        counts = ", ".join(f"{n:,} {status}" for status, n in sorted(env.seeded.items()))
        out.info(
            f"Sandbox ready: Kafka at {env.bootstrap_servers}, {counts} failed events in {env.folder}. "
            "Paste the export lines into another terminal; Ctrl-C stops it."
        )
        try:
            while not stop.wait(0.2):
                if story.serve_requests(env):
                    out.info(f"Fault lifted: {story.REFUSED_TOPIC} takes its records again.")
        finally:
            story.announce_stopped(env.folder)
    out.info("Sandbox stopped" + ("." if keep is not None else "; its folder is removed."))


def _topic(spec: str) -> tuple[str, int]:
    from kafkaops.common.errors import UsageError

    name, _, count = spec.partition(":")
    if not name or (count and not count.isdigit()) or (count and int(count) < 1):
        raise UsageError(f"--topic {spec!r} is not NAME or NAME:PARTITIONS (a whole number >= 1)")
    return name, int(count) if count else 1
