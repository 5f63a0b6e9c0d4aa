"""`failed restore`: the rows of a purge's archive back into the table, with their ids, in
batches of one transaction each; a row whose id is already there is reported, never
overwritten."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kafkaops.common.errors import UsageError
from kafkaops.common.escape import safe_text
from kafkaops.db.archive import RESTORE_BATCH, from_row_to_json, live_table, read_archive, restore_rows

if TYPE_CHECKING:
    from kafkaops.db.actions import BatchWitness
    from kafkaops.db.connections import Connections


@dataclass
class RestoreResult:
    archived: int  # rows the archive holds
    restored: int = 0
    conflicts: list[str] = field(default_factory=list)  # ids already in the table: left alone
    cut_short: bool = False  # the archive ends inside a batch its purge never committed


class Restore:
    """One archive, read whole when made (`rows`); `run` inserts what is not in the table."""

    def __init__(self, conns: Connections, path: Path, *, within: timedelta) -> None:
        self.conns = conns
        self.path = path
        self.within = within
        contents = read_archive(path)
        self.header = contents.header
        self.rows = contents.rows
        self.cut_short = contents.cut_short
        self.sha256 = _sha256(path)
        self.witness: BatchWitness | None = None
        db = conns.settings.database
        with conns.connect() as conn:
            self.live = live_table(conn, db)
        if self.header.get("values") == "row_to_json":
            self.rows = [from_row_to_json(self.live, row) for row in self.rows]
        self.id_column = str(self.header.get("id_column") or db.physical("id"))
        if self.id_column not in self.live.c:
            raise UsageError(
                f"the archive's id column {safe_text(self.id_column)} is not in table {db.table}",
                hint="restore into the table the rows came from (database.table, database.schema)",
            )

    def run(self, *, dry_run: bool) -> RestoreResult:
        result = RestoreResult(len(self.rows), cut_short=self.cut_short)
        lock = self.conns.settings.database.lock_timeout
        for start in range(0, len(self.rows), RESTORE_BATCH):
            chunk = self.rows[start : start + RESTORE_BATCH]
            with self.conns.bounded("restore", within=self.within, lock=lock, immediate=True) as conn:
                ids, conflicts = restore_rows(
                    conn, self.live, chunk, id_column=self.id_column, dry_run=dry_run
                )
                if self.witness is not None and not dry_run:
                    self.witness.batch(conn, ids)
            if self.witness is not None and not dry_run:
                self.witness.committed()
            result.restored += len(ids)
            result.conflicts += conflicts
        return result


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
