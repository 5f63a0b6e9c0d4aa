"""The `kafkaops` command: global options, and the command groups assembled in one place."""

from __future__ import annotations

from typing import Annotated

import typer

from kafkaops import __version__
from kafkaops.cli import audit as audit_cli
from kafkaops.cli import config as config_cli
from kafkaops.cli import db as db_cli
from kafkaops.cli import demo as demo_cli
from kafkaops.cli import dlq as dlq_cli
from kafkaops.cli import doctor as doctor_cli
from kafkaops.cli import failed as failed_cli
from kafkaops.cli import lag as lag_cli
from kafkaops.cli import probe as probe_cli
from kafkaops.cli import restore as restore_cli
from kafkaops.cli import retry as retry_cli
from kafkaops.cli import sandbox as sandbox_cli
from kafkaops.cli import status as status_cli
from kafkaops.cli.errors import KafkaopsGroup
from kafkaops.cli.options import (
    BootstrapServersOpt,
    ConfigOpt,
    ContextOpt,
    DatabaseUrlOpt,
    DebugOpt,
    RawCellsOpt,
    VerboseOpt,
)
from kafkaops.cli.state import configure_logging, state


def help_width() -> int:
    """The terminal's width for help text (click stops at 80 columns unless told)."""
    import shutil

    return max(shutil.get_terminal_size().columns, 50)


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
failed_cli.app.command("restore")(restore_cli.restore)
app.add_typer(failed_cli.app, name="failed")
app.add_typer(db_cli.app, name="db")
app.add_typer(dlq_cli.app, name="dlq")
app.add_typer(config_cli.app, name="config")
app.add_typer(audit_cli.app, name="audit")
app.command("retry")(retry_cli.retry)
app.command("sandbox")(sandbox_cli.sandbox)
app.command("status", cls=status_cli.StatusCommand)(status_cli.status)
app.command("demo")(demo_cli.demo)
app.command("lag", cls=lag_cli.LagCommand)(lag_cli.lag)
app.command("probe", cls=probe_cli.ProbeCommand)(probe_cli.probe)
app.command("doctor")(doctor_cli.doctor)


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
    # Declared in cli/options.py; each value goes to the invocation's state as it is parsed, here
    # or after the subcommand, so the body does not use them.
    config_path: ConfigOpt = None,
    context: ContextOpt = None,
    database_url: DatabaseUrlOpt = None,
    bootstrap_servers: BootstrapServersOpt = None,
    debug: DebugOpt = False,
    raw_cells: RawCellsOpt = False,
    verbose: VerboseOpt = 0,
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
    configure_logging(state(ctx).verbose)


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
