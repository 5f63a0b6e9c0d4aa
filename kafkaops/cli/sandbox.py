"""`kafkaops sandbox`: an embedded Kafka cluster in the foreground, for trying kafkaops out."""

from __future__ import annotations

from typing import Annotated

import typer


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
            "--topic", help="Create a topic up front, NAME[:PARTITIONS]; repeatable.", show_default=False
        ),
    ] = None,
) -> None:
    """Run an embedded Kafka cluster (librdkafka's mock) on 127.0.0.1 until Ctrl-C.

    Prints bootstrap.servers=127.0.0.1:PORT on stdout (--port chooses it); point kafkaops at it with
    KAFKAOPS_BOOTSTRAP_SERVERS. Nothing to install, nothing kept: fit for trying kafkaops and
    for demos, not for data you care about (see kafkaops.embedded for what it lacks).

    \b
    Example:
      kafkaops sandbox --topic casino.player.registered.v1:3 --port 19092
    """
    from kafkaops.embedded import main
    from kafkaops.errors import UsageError

    if port is not None and port + brokers - 1 > 65535:
        raise UsageError(
            f"--port {port} leaves no room for {brokers} brokers (the last port would be above 65535)"
        )
    argv = ["--brokers", str(brokers)]
    if port is not None:
        argv += ["--port", str(port)]
    for topic in topics or []:
        argv += ["--topic", topic]
    raise typer.Exit(main(argv))
