"""The Typer layer: one module per command group, assembled by `main`; no work happens here."""

import typer.core

# Help is plain text in the manner of kcat's usage(): rendering it through rich costs ~70 ms of
# imports and layout on every `--help`, and start-up time is a feature of this tool. Rich is
# still used for data tables on a terminal (imported only then).
typer.core.HAS_RICH = False
