"""`kafkaops failed restore`: rows a purge archived, back into the table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kafkaops.cli.gate import writes
from kafkaops.cli.journal import audited
from kafkaops.cli.options import DryRunOpt, OutputOpt, YesOpt
from kafkaops.cli.output import Format
from kafkaops.cli.state import bounded_connections, confirm, output, state, target

WARNED_IDS = 20


@writes
def restore(
    ctx: typer.Context,
    archive: Annotated[
        Path,
        typer.Argument(
            metavar="ARCHIVE", help="An archive `failed purge` wrote (.jsonl or .jsonl.gz).", dir_okay=False
        ),
    ],
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    output_format: OutputOpt = None,
) -> None:
    """Put the rows of a purge's archive back, with their ids and every column.

    A row whose id is already in the table is left as it is and reported (never overwritten),
    so restoring an archive twice changes nothing the second time. An archive that ends inside
    a batch (a purge killed before that batch committed) is read up to there: those rows were
    never deleted. -o json prints {"archived", "restored", "conflicts", "dry_run"}.

    \b
    Example:
      kafkaops failed restore purge-2026-12-06.jsonl.gz --dry-run
    """
    from kafkaops.config.settings import STATEMENT_TIMEOUT
    from kafkaops.db.restore import Restore

    out = output(output_format)
    conns = bounded_connections(ctx)
    action = Restore(conns, archive, within=STATEMENT_TIMEOUT)
    where = target(state(ctx))
    if action.cut_short:
        out.warning(
            f"the archive ends inside a batch its purge never committed: {len(action.rows):,} row(s) read "
            "before it; the rest were never deleted"
        )
    out.info(f"{len(action.rows):,} row(s) in the archive (sha256 {action.sha256}); restoring into {where}.")
    if dry_run or not action.rows:
        result = action.run(dry_run=True)
    else:
        confirm(f"Restore up to {len(action.rows):,} row(s) into {where}?", yes=yes)
        chosen = {
            "archive": str(archive.resolve()),
            "archive_sha256": action.sha256,
            "rows": len(action.rows),
        }
        with audited(ctx, "failed restore", chosen) as entry:
            if entry.enabled:
                action.witness = entry
            entry.note(archive=str(archive.resolve()), archive_sha256=action.sha256)
            result = action.run(dry_run=False)
            entry.note(conflicts=len(result.conflicts), conflict_ids=result.conflicts[:1000])
    for conflict in result.conflicts[:WARNED_IDS]:
        out.warning(f"id {conflict} is already in the table: left as it is.")
    if len(result.conflicts) > WARNED_IDS:
        out.warning(
            f"{len(result.conflicts) - WARNED_IDS:,} more id(s) already in the table (-o json lists them all)."
        )
    verb = "Would restore" if dry_run else "Restored"
    out.info(
        f"{verb} {result.restored:,} row(s); {len(result.conflicts):,} already in the table, left as they are"
        + (" (a dry run: nothing changed)." if dry_run else ".")
    )
    if out.fmt is not Format.table:
        out.document(
            {
                "archived": result.archived,
                "restored": result.restored,
                "conflicts": result.conflicts,
                "cut_short": result.cut_short,
                "dry_run": dry_run,
            }
        )
