"""The `kafkaops` command: global options, and the command groups assembled in one place."""

from __future__ import annotations

from typing import Annotated

import typer

from kafkaops import __version__
from kafkaops.cli import config as config_cli
from kafkaops.cli import db as db_cli
from kafkaops.cli import demo as demo_cli
from kafkaops.cli import dlq as dlq_cli
from kafkaops.cli import failed as failed_cli
from kafkaops.cli import lag as lag_cli
from kafkaops.cli import retry as retry_cli
from kafkaops.cli import sandbox as sandbox_cli
from kafkaops.cli import status as status_cli
from kafkaops.cli.common import AppState, KafkaopsGroup, complete_contexts, configure_logging, help_width

app = typer.Typer(
    name="kafkaops",
    cls=KafkaopsGroup,
    help="The operator's tool for a resilient Kafka publishing pipeline: failed events, retries, DLQs.",
    epilog="Configuration: --config, else $KAFKAOPS_CONFIG, else ./kafkaops.yaml, else "
    "~/.config/kafkaops/config.yaml; a file others can write, or another user's, is refused. "
    "Environment (KAFKAOPS_*) beats the file; flags beat both. "
    "The options above may also follow the subcommand: kafkaops failed list --context prod.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help uses the terminal's width (click would stop at 80 columns); subcommands inherit it.
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": help_width()},
)
app.add_typer(failed_cli.app, name="failed")
app.add_typer(db_cli.app, name="db")
app.add_typer(dlq_cli.app, name="dlq")
app.add_typer(config_cli.app, name="config")
app.command("retry")(retry_cli.retry)
app.command("sandbox")(sandbox_cli.sandbox)
app.command("status", cls=status_cli.StatusCommand)(status_cli.status)
app.command("demo")(demo_cli.demo)
app.command("lag", cls=lag_cli.LagCommand)(lag_cli.lag)


def _version(value: bool) -> None:
    if value:
        import confluent_kafka  # only here: --version names the client library it runs on

        typer.echo(
            f"kafkaops {__version__} (confluent-kafka {confluent_kafka.version()}, "
            f"librdkafka {confluent_kafka.libversion()[0]})"
        )
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config", "-c", help="Config file; takes precedence over $KAFKAOPS_CONFIG.", show_default=False
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            help="Context in the config file; takes precedence over $KAFKAOPS_CONTEXT.",
            show_default=False,
            autocompletion=complete_contexts,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Database URL; takes precedence over $KAFKAOPS_DATABASE_URL. Keep passwords out of it "
            "(they would show in `ps`): use the environment or ${VAR} in the config file.",
            show_default=False,
        ),
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers",
            "-b",
            help="Kafka bootstrap servers; take precedence over $KAFKAOPS_BOOTSTRAP_SERVERS.",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    raw_cells: Annotated[
        bool,
        typer.Option(
            "--raw-cells",
            help="csv and tsv: write text cells exactly as stored. By default a text cell starting with "
            "=, +, -, @, tab or carriage return (a formula to a spreadsheet) gets a leading '; numbers "
            "are never changed.",
        ),
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log lines on stderr (-vv for debug).")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version (with the confluent-kafka and librdkafka versions) and exit.",
        ),
    ] = False,
) -> None:
    from kafkaops.config.settings import Overrides

    overrides = Overrides(
        config_path=config, context=context, database_url=database_url, bootstrap_servers=bootstrap_servers
    )
    ctx.obj = AppState(overrides, debug=debug, verbose=verbose, raw_cells=raw_cells)
    ctx.call_on_close(ctx.obj.close)
    configure_logging(verbose)


def run() -> None:
    """The console script. It ends with os._exit: by then every connection, producer and file
    is closed (ctx.call_on_close), and tearing down the interpreter's module graph (SQLAlchemy,
    psycopg) would add ~50 ms to every command, a third of what a `--help` may take."""
    import os
    import sys

    from kafkaops.cli.output import guard_standard_streams

    guard_standard_streams()  # before anything is opened: `2>&-` must not make a database "stderr"
    try:
        app(prog_name="kafkaops")  # also under python -m kafkaops
        code = 0
    except SystemExit as exit_:
        code = _exit_code(exit_.code)
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
        pass
    except OSError as error:  # the last buffered bytes did not fit (disk full)
        _say(f"Error: cannot write the output: {error.strerror or error}\n")
        code = code or 1
    _say("")
    os._exit(code)


def _say(text: str) -> None:
    """A last line on stderr, which may itself be full or gone."""
    import sys

    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except OSError:
        pass


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=__import__("sys").stderr)
    return 1
