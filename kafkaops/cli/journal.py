"""The CLI's hooks into the audit journal and the purge archive: a command wraps what it does
in `audited(...)` (an intent before, the outcome after, whatever ends it), a bulk action gets
its entry as the witness of each batch (`audit_action`), and a purge its archive.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from kafkaops.cli.output import Output
from kafkaops.cli.state import state
from kafkaops.common.errors import ExitStatus, KafkaopsError

if TYPE_CHECKING:
    from kafkaops.audit.journal import Entry
    from kafkaops.config.settings import Settings
    from kafkaops.db.actions import BulkAction, Purge

ARGV = "kafkaops.argv"  # ctx.meta key: the command line as given (KafkaopsGroup.make_context)

ArchiveOpt = Annotated[
    Path | None,
    typer.Option(
        "--archive",
        help="Write every row deleted, every column, to this new file first (JSON Lines; gzip when "
        "it ends in .gz); never overwritten. [default: a new file in purge.archive_dir]",
        show_default=False,
        dir_okay=False,
    ),
]
NoArchiveOpt = Annotated[
    bool,
    typer.Option("--no-archive", help="Delete without keeping the rows anywhere."),
]


def command_line(ctx: click.Context, settings: Settings) -> str:
    """The command as typed, secrets masked: URLs' passwords, `name=secret` pairs and every
    secret value of the context."""
    from kafkaops.common.escape import safe_text
    from kafkaops.common.secrets import is_url, mask_pairs, mask_url, redact

    argv = ctx.meta.get(ARGV) or ctx.command_path.split()[1:]
    shown = []
    for arg in argv:
        name, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        value = mask_url(value) if is_url(value) else value
        shown.append(f"{name}{eq}{value}")
    text = mask_pairs(shlex.join(["kafkaops", *shown]))
    return safe_text(redact(text, settings.secret_values()))


def selection_of(flt: Any = None, **extra: Any) -> dict[str, Any]:
    """A command's selection as the journal keeps it: every field of its filter that is set."""
    chosen: dict[str, Any] = {}
    if flt is not None and is_dataclass(flt):
        for f in fields(flt):
            value = getattr(flt, f.name)
            if value not in (None, (), [], ""):
                chosen[f.name] = [str(v) for v in value] if isinstance(value, tuple | list) else value
    chosen.update({k: v for k, v in extra.items() if v is not None})
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in chosen.items()}


def journal_counts(summary: Any) -> dict[str, Any]:
    """The counts of a result (a dataclass: retry's pass, a replay) for an entry's details."""
    if hasattr(summary, "as_dict"):
        return dict(summary.as_dict())
    if is_dataclass(summary):
        return {f.name: getattr(summary, f.name) for f in fields(summary)}
    return {}


@contextmanager
def audited(ctx: click.Context, command: str, selection: dict[str, Any]) -> Iterator[Entry]:
    """An entry for `command`, its intent written before the block runs (or the command stops
    here, exit 1), its outcome when the block ends: ok, failed: <the error>, interrupted."""
    from kafkaops.audit.actor import actor
    from kafkaops.audit.journal import open_entry
    from kafkaops.db.actions import ActionInterrupted

    app = state(ctx)
    settings = app.settings
    entry = open_entry(
        app.connections,
        settings,
        command=command,
        command_line=command_line(ctx, settings),
        selection=selection,
        actor=actor(os.environ),
    )
    _say(entry)
    try:
        yield entry
    except (KeyboardInterrupt, ActionInterrupted):
        entry.close("interrupted", int(ExitStatus.INTERRUPTED))
        raise
    except (typer.Exit, SystemExit) as stop:
        code = getattr(stop, "exit_code", getattr(stop, "code", 1)) or 0
        entry.close("ok" if code == 0 else "interrupted" if code >= 128 else f"failed: exit {code}", code)
        raise
    except Exception as error:
        from kafkaops.cli.errors import known_error

        known = error if isinstance(error, KafkaopsError) else known_error(ctx, error)
        entry.close(f"failed: {known.message}", int(known.exit_status))
        raise
    else:
        entry.close("ok", 0)
    finally:
        _say(entry)


def _say(entry: Entry) -> None:
    out = Output()
    for warning in entry.warnings:
        out.warning(warning)
    entry.warnings.clear()


def audit_action(
    ctx: click.Context,
    action: BulkAction,
    command: str,
    selection: dict[str, Any],
    *,
    archive: Path | None = None,
) -> None:
    """Make `action.run` journaled (its entry the witness of every batch) and, for a purge with
    an `archive`, archived. A dry run or a refused confirmation never runs: no entry."""
    run = action.run

    def audited_run() -> int:
        with audited(ctx, command, selection) as entry:
            if entry.enabled:
                action.witness = entry
            if archive is None:
                return run()
            return _archived(ctx, action, entry, archive, run)

    action.run = audited_run  # type: ignore[method-assign]


def _archived(ctx: click.Context, action: Any, entry: Entry, path: Path, run: Any) -> int:
    from kafkaops.common import clock
    from kafkaops.db.archive import ArchiveWriter, archive_header, live_table

    purge: Purge = action
    conns = purge.conns
    db = conns.settings.database
    with conns.connect() as conn:
        live = live_table(conn, db)
    writer = ArchiveWriter(path, archive_header(live, db, context=conns.settings.context, now=clock.now()))
    entry.note(archive=str(path.resolve()))
    purge.keep_in(writer, live)
    try:
        return int(run())
    finally:
        try:
            writer.close()
        finally:
            entry.note(archive_sha256=writer.sha256, archived_rows=writer.rows)
            Output().info(f"Archive: {path} ({writer.rows:,} row(s), sha256 {writer.sha256}).")


def archive_target(ctx: click.Context, given: Path | None, no_archive: bool, *, dry_run: bool) -> Path | None:
    """Where a purge archives: --archive, else a new file in purge.archive_dir; None with
    --no-archive (or a dry run). With none of them, a usage error naming all three."""
    from kafkaops.common.errors import UsageError
    from kafkaops.db.archive import refuse_existing

    if given is not None and no_archive:
        raise UsageError("--archive and --no-archive contradict each other: give one")
    if no_archive or dry_run:
        return None
    settings = state(ctx).settings
    if given is None and settings.purge.archive_dir is None:
        raise UsageError(
            "purge keeps what it deletes: give --archive PATH, or set purge.archive_dir in the config",
            hint="--no-archive deletes without keeping the rows anywhere",
        )
    if given is None:
        from kafkaops.common import clock

        folder = settings.purge.archive_dir
        assert folder is not None
        import re

        stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
        context = re.sub(r"[^A-Za-z0-9._-]", "_", settings.context or "default")
        given = folder / f"failed-purge-{context}-{stamp}-{os.getpid()}.jsonl.gz"
    refuse_existing(given)
    return given


def replay_selection(plan: Any, request: Any) -> dict[str, Any]:
    """What a `dlq replay` was asked to replay, for its entry."""
    return selection_of(
        source=plan.source,
        group=plan.group,
        target=plan.target,
        selection=plan.selection,
        limit=request.limit,
        pending=plan.pending,
    )


def note_replay(entry: Entry, plan: Any, replayer: Any) -> None:
    """A replay's details: per partition the source offsets its commits moved the group over
    ([from, to), from None: the partition's first offset, the group had none), the
    transactions it committed, and its counts."""
    summary = replayer.summary
    ranges: dict[str, list[int | None]] = {}
    for partition, end in sorted(replayer.positions.items()):
        start = plan.committed.get(partition)
        if start is None or end > start:
            ranges[str(partition)] = [start, end]
    entry.note(offsets=ranges, commits=getattr(summary, "commits", None), **journal_counts(summary))
    entry.count(int(summary.replayed))
