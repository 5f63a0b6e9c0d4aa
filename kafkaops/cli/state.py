"""The state of one `kafkaops` invocation: what the global options said, and the config file,
settings and connections opened from it on first use; where a command acts, and asking first.

Heavy libraries are not imported at this level: `kafkaops --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import click
import typer

from kafkaops.cli.output import Format, Output
from kafkaops.common.errors import ExitStatus

if TYPE_CHECKING:
    from kafkaops.config.file import ConfigFile
    from kafkaops.config.settings import Overrides, Settings
    from kafkaops.db.connections import Connections


@dataclass
class AppState:
    """Created on the first global option or command; the config file, settings and connections
    open on first use, after every option was parsed."""

    overrides: Overrides
    debug: bool = False
    verbose: int = 0
    raw_cells: bool = False  # --raw-cells: csv/tsv cells exactly as stored
    warned_secrets: set[str] = field(default_factory=set)  # options warned of (a secret in `ps`)
    _settings: Settings | None = field(default=None, repr=False)
    _connections: Connections | None = field(default=None, repr=False)
    _config_file: tuple[ConfigFile | None] | None = field(default=None, repr=False)

    def take(self, name: str, option: str, value: Any, *, lenient: bool = False) -> None:
        """A global option given on the command line (before or after the subcommand): `name`
        is its parameter's name, `option` how the user spelt it. A value option given twice
        with different values is refused (`lenient`: while completing, nothing is refused)."""
        from kafkaops.common.errors import UsageError

        if name in ("debug", "raw_cells"):
            setattr(self, name, True)
        elif name == "verbose":
            self.verbose += int(value)
            configure_logging(self.verbose)
        else:
            before = getattr(self.overrides, name)
            if before is not None and before != value:
                if lenient:
                    return
                raise UsageError(f"{option} given twice, with different values: give it once")
            self.overrides = replace(self.overrides, **{name: value})

    def config_file(self) -> ConfigFile | None:
        """The config file in use, found, trusted and read once per command; which one it is
        goes to the log (-v), and a warning about it to stderr."""
        if self._config_file is None:
            import logging

            from kafkaops.config.file import open_config_file

            file = open_config_file(self.overrides.config_path, os.environ)
            log = logging.getLogger("kafkaops.config.settings")
            if file is None:
                log.info(
                    "no config file found (--config, $KAFKAOPS_CONFIG, ./kafkaops.yaml, user config dir)"
                )
            else:
                log.info("config file %s (from %s)", file.path, file.origin)
                for warning in file.warnings:
                    Output().warning(warning)
            self._config_file = (file,)
        return self._config_file[0]

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from kafkaops.config.file import running_uid
            from kafkaops.config.settings import settings_from

            self._settings = settings_from(self.config_file(), self.overrides, os.environ, uid=running_uid())
        return self._settings

    @property
    def connections(self) -> Connections:
        if self._connections is None:
            from kafkaops.db.connections import Connections

            self._connections = Connections(self.settings)
        return self._connections

    def close(self) -> None:
        if self._connections is not None:
            self._connections.close()
            self._connections = None


def state(ctx: click.Context) -> AppState:
    """The invocation's state, kept on the root context and closed with it."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        from kafkaops.config.settings import Overrides

        root.obj = AppState(Overrides())
        root.call_on_close(root.obj.close)
    return root.obj


def output(fmt: Format | None) -> Output:
    ctx = click.get_current_context(silent=True)
    return Output(fmt or Format.table, raw_cells=ctx is not None and state(ctx).raw_cells)


def bounded_connections(ctx: click.Context) -> Connections:
    """The connections, their sessions bounded in how long they wait for a lock
    (`database.lock_timeout`)."""
    conns = state(ctx).connections
    conns.bound_lock_waits(conns.settings.database.lock_timeout)
    return conns


def configure_logging(verbose: int) -> None:
    import logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, force=True)
    # The pool logs a connection lost mid-query with a traceback (and the SQL); the command
    # already says it in one Error line. Shown with -vv.
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL if verbose < 2 else logging.NOTSET)
    from kafkaops.cli.output import safe_log_formatter

    for handler in logging.getLogger().handlers:
        handler.setFormatter(safe_log_formatter(fmt))  # log lines quote data from the database and Kafka


def target(app: AppState) -> str:
    """Where a command acts, for its confirmation: `context prod (postgresql db:5432/casino)`.

    The context and the database's host and name, never its user or password."""
    from sqlalchemy.engine import make_url

    from kafkaops.db.engine import normalise_url

    settings = app.settings
    url = make_url(normalise_url(settings.require_database_url()))
    backend = url.get_backend_name()
    if backend == "sqlite":
        place = url.database or ":memory:"
    else:
        place = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    context = f"context {settings.context}" if settings.context else "no context (environment and flags)"
    return f"{context} ({backend} {place})"


def confirm(question: str, *, yes: bool) -> None:
    """Ask before acting; refuse to guess when nobody can answer (cron, a pipe)."""
    from kafkaops.common.errors import UsageError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("refusing to act without confirmation: stdin is not a terminal", hint="add --yes")
    if not typer.confirm(question, default=False, err=True):
        sys.stderr.write("Aborted; nothing changed.\n")
        raise typer.Exit(int(ExitStatus.FAILURE))
