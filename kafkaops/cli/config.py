"""`kafkaops config`: show the resolved configuration (secrets masked) and list contexts."""

from __future__ import annotations

import typer

from kafkaops.cli.common import OutputOpt, output, state
from kafkaops.cli.output import Field

app = typer.Typer(help="Show the resolved configuration and its contexts.", no_args_is_help=True)


@app.command()
def show(ctx: typer.Context, output_format: OutputOpt = None) -> None:
    """Print the resolved configuration, secrets masked, with where each value came from.

    \b
    Example:
      kafkaops --context prod config show
    """
    from kafkaops.config import describe

    rows = describe(state(ctx).settings)
    output(output_format).rows(
        rows, [Field("key", "KEY"), Field("value", "VALUE"), Field("source", "SOURCE")]
    )


@app.command("contexts")
def contexts(ctx: typer.Context, output_format: OutputOpt = None) -> None:
    """List the contexts in the config file; the current one is marked.

    \b
    Example:
      kafkaops config contexts
    """
    from kafkaops.config import context_names, find_config_file, read_config_file

    app_state = state(ctx)
    import os

    path = find_config_file(app_state.overrides.config_path, os.environ)
    data = read_config_file(path) if path else {}
    current = app_state.overrides.context or os.environ.get("KAFKAOPS_CONTEXT") or data.get("current-context")
    rows = [{"name": name, "current": name == current} for name in context_names(data, path)]
    out = output(output_format)
    if not rows:
        out.info("No contexts: no config file found." if not path else f"No contexts in {path}.")
    out.rows(rows, [Field("name", "NAME"), Field("current", "CURRENT")])
