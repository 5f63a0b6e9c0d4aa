"""`kafkaops config`: show the resolved configuration (secrets masked), list and pick contexts."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from kafkaops.cli.completion import complete_contexts
from kafkaops.cli.fields import Field
from kafkaops.cli.gate import no_writes
from kafkaops.cli.options import OutputOpt
from kafkaops.cli.state import output, state

app = typer.Typer(help="Show the resolved configuration and its contexts.", no_args_is_help=True)


@app.command()
@no_writes
def show(ctx: typer.Context, output_format: OutputOpt = None) -> None:
    """Print the resolved configuration, secrets masked, with where each value came from.

    The first row names the config file read (its absolute path, and how it was found). A
    value that uses an environment variable which is not set shows `<unset: ${VAR}>`.

    \b
    Example:
      kafkaops --context prod config show
    """
    from kafkaops.config.show import describe

    rows = describe(state(ctx).settings)
    output(output_format).rows(
        rows, [Field("key", "KEY"), Field("value", "VALUE", kind="long"), Field("source", "SOURCE")]
    )


@app.command("contexts")
@no_writes
def contexts(ctx: typer.Context, output_format: OutputOpt = None) -> None:
    """List the contexts in the config file; the current one is marked.

    \b
    Example:
      kafkaops config contexts
    """
    from kafkaops.config.file import choose_context, context_names

    app_state = state(ctx)
    file = app_state.config_file()
    path, data = (file.path, file.data) if file else (None, {})
    current = choose_context(data, path, flag=app_state.overrides.context, env=os.environ).name
    rows = [{"name": name, "current": name == current} for name in context_names(data, path)]
    out = output(output_format)
    if not rows:
        out.info("No contexts: no config file found." if not path else f"No contexts in {path}.")
    out.rows(rows, [Field("name", "NAME"), Field("current", "CURRENT")])


@app.command("use-context")
@no_writes
def use_context(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="A context of the config file.", autocompletion=complete_contexts
        ),
    ],
) -> None:
    """Make NAME the current context: writes current-context in the config file in use.

    Only that line changes; comments and layout are kept (when the file's layout does not
    allow a one-line edit, it is rewritten from its data and kafkaops says so).
    $KAFKAOPS_CONTEXT and --context still take precedence over it.

    \b
    Example:
      kafkaops config use-context prod
    """
    from kafkaops.common.errors import ConfigError
    from kafkaops.config.file import asked_context, context_names, set_current_context

    app_state = state(ctx)
    file = app_state.config_file()
    if file is None:
        raise ConfigError(
            "no config file to write current-context in",
            hint="create ./kafkaops.yaml or ~/.config/kafkaops/config.yaml, or name one with --config",
        )
    path = file.path
    # What would still beat current-context, asked (and checked) as every command asks it.
    asked = asked_context(app_state.overrides.context, os.environ, context_names(file.data, path))
    kept = set_current_context(path, name)
    out = output(None)
    out.info(f"Switched to context {name!r} in {path}.")
    if not kept:
        out.warning(f"{path} was rewritten from its data: its comments and layout were not kept.")
    if asked.name is not None and asked.name != name:
        shown = (
            f"{asked.chosen_by} {asked.name}"
            if asked.chosen_by == "--context"
            else f"{asked.chosen_by}={asked.name}"
        )
        out.warning(f"{shown} still takes precedence.")
