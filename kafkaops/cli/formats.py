"""The `-o/--output` option: each command declares once the formats it writes, and its help,
its completion and its validation all come from that one tuple.

`json` is one JSON document in every command; `jsonl` is one object per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

import click
import typer

from kafkaops.cli.output import Format

# What each format is, as the help says it.
_DESCRIBED = {
    "table": "table (rich on a terminal, plain text when piped)",
    "json": "json (one document)",
    "jsonl": "jsonl (one object per line)",
    "nagios": "nagios (the plugin line with performance data)",
    "prometheus": "prometheus (text format)",
}

# The formats of a command whose result is rows or one object.
ALL = tuple(Format)
# A stream of records (`dlq tail`): no columns to put them in.
RECORDS = (Format.table, Format.json, Format.jsonl)


class FormatChoice(click.Choice):
    """click's Choice, refusing another value with one `Error:` line (exit 2) that names what
    this command writes, instead of a usage screen."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            from kafkaops.common.errors import UsageError

            where = ctx.command_path.split(" ", 1)[-1] if ctx is not None else "this command"
            raise UsageError(
                f"{where} does not write {str(value)!r}: -o/--output takes {', '.join(self.choices)}"
            ) from None


def output_option(formats: Sequence[Enum]) -> Any:
    """The `typer.Option` of `-o/--output` for a command that writes `formats` (the first is
    the default): annotate with `Annotated[<their Enum> | None, output_option(...)]`."""
    names = [str(f.value) for f in formats]
    described = ", ".join(_DESCRIBED.get(n, n) for n in names)
    return typer.Option(
        "--output",
        "-o",
        click_type=FormatChoice(names, case_sensitive=False),
        help=f"Output format: {described}. [default: {names[0]}]",
        show_default=False,
    )
