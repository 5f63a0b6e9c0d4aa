"""Requeue and purge, the two bulk actions on the failed-events table.

Each first plans (counts what it would touch, names the ids it leaves out, previews rows), then
acts in transactions bounded by a statement timeout and the table's lock timeout. A purge
deletes batch by batch; stopped (Ctrl-C) or cut off midway, it says how many rows its committed
batches deleted, so the message the user reads is true whatever happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from kafkaops.common.errors import ArchiveError, ConnectionLostError, StatementTimeoutError, UsageError
from kafkaops.common.timeparse import parse_instant
from kafkaops.db.failed_events import (
    ActionPlan,
    EventFilter,
    conditions,
    plan_action,
    purge_batch,
    purge_conditions,
    purge_filter,
    requeue,
    requeue_filter,
)

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Table
    from sqlalchemy.engine import Connection

    from kafkaops.db.archive import ArchiveWriter
    from kafkaops.db.connections import Connections
    from kafkaops.db.where import Performer, RowFilter


class BatchWitness(Protocol):
    """What sees each batch of an action (the audit journal): `batch` inside the batch's
    transaction, after its change and before its commit (a failure there rolls the batch
    back), `committed` once that commit succeeded."""

    def batch(self, conn: Connection, ids: Sequence[Any]) -> None: ...

    def committed(self) -> None: ...


class ActionInterrupted(Exception):
    """Ctrl-C in the middle of a batched action, with how many rows it had already committed
    (the batch in progress was rolled back)."""

    def __init__(self, done: int, what: str) -> None:
        super().__init__(f"interrupted after {done} rows")
        self.done = done
        self.what = what  # "deleting"


class BulkAction:
    """What requeue and purge share: a filter, a plan, transactions bounded by `within`."""

    verb = ""  # requeue, purge: names the transaction in a timeout's message
    done_key = ""  # requeued, deleted: the count's key in a result document
    takes = ""  # the statuses it acts on, said when a named id is left out

    def __init__(self, conns: Connections, flt: EventFilter, *, within: timedelta) -> None:
        self.conns = conns
        self.flt = flt
        self.within = within
        self.where: Sequence[ColumnElement[bool]] = ()
        self.rows: RowFilter | None = None  # --where: only the rows this expression selects
        self.witness: BatchWitness | None = None  # the audit journal, when one is kept

    @property
    def statuses(self) -> str:
        """The statuses it acts on, as the user reads them: `DLQ_FAILED/DLQ`."""
        return "/".join(self.flt.statuses)

    def plan(self, *, preview: int) -> ActionPlan:
        """What it would act on, found before anyone is asked (`preview`: rows to show)."""
        try:
            with self._transaction() as conn:
                if self.rows is not None:
                    from kafkaops.db.where import plan_selected

                    matched, shown, left_out = plan_selected(
                        conn, self.conns.table, self.rows, self.where, ids=self.flt.ids, preview=preview
                    )
                    return ActionPlan(matched, left_out, shown)
                return plan_action(conn, self.conns.table, self.where, ids=self.flt.ids, preview=preview)
        except StatementTimeoutError as late:
            raise late.telling(f"nothing was {self.done_key}") from late

    def run(self) -> int:
        """Act; the number of rows changed."""
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        """Each statement bounded by --timeout, lock waits by the `failed` commands' own lock
        timeout (`database.lock_timeout`)."""
        return self.conns.bounded(
            self.verb, within=self.within, lock=self.conns.settings.database.lock_timeout
        )


class Requeue(BulkAction):
    """DLQ_FAILED (default) or DLQ rows back to PENDING, retry_count 0, due now; one transaction.
    Rows the broker will never accept (`db.park.permanent`) are left out unless `force`; how
    many, and why, is in `refused_permanent` once planned."""

    verb, done_key, takes = "requeue", "requeued", "DLQ_FAILED or DLQ"

    def __init__(
        self,
        conns: Connections,
        flt: EventFilter,
        *,
        within: timedelta,
        now: datetime,
        force: bool = False,
        exclude: Sequence[Any] = (),
    ) -> None:
        from kafkaops.db.park import not_permanent

        super().__init__(conns, requeue_filter(flt), within=within)
        self.now = now
        self.force = force
        # Rows held back (their DLQ record was replayed, or waits for a replay).
        self.exclude = tuple(exclude)
        self.where = [*conditions(conns.table, self.flt), *self._held_back()]
        self.refused_permanent: dict[str, int] = {}  # error type -> rows left out
        if not force:
            self.where.append(not_permanent(conns.table))

    def _held_back(self) -> list[ColumnElement[bool]]:
        return [self.conns.table.c.id.notin_(self.exclude)] if self.exclude else []

    def plan(self, *, preview: int) -> ActionPlan:
        from kafkaops.db.park import permanent_breakdown, permanent_ids

        plan = super().plan(preview=preview)
        if not self.force:
            with self._transaction() as conn:
                self.refused_permanent = permanent_breakdown(
                    conn, self.conns.table, conditions(self.conns.table, self.flt)
                )
                # A named id left out for this reason is told by the one line, not as a wrong status.
                named = {item["id"] for item in plan.left_out}
                left = [i for i in self.flt.ids if str(i) in named]
                refused = permanent_ids(conn, self.conns.table, left) if left else set()
            plan.left_out = [i for i in plan.left_out if i["id"] not in refused]
        return plan

    def run(self) -> int:
        try:
            ids: list[Any] | None = None if self.witness is None else []
            with self._transaction() as conn:
                if self.rows is not None:
                    changed = self._requeue_selected(conn, self.rows)
                else:
                    changed = requeue(
                        conn, self.conns.table, flt=self.flt, now=self.now, where=self.where, ids_out=ids
                    )
                    if self.witness is not None:
                        self.witness.batch(conn, ids or [])
            if self.witness is not None:
                self.witness.committed()
            return changed
        except StatementTimeoutError as late:
            raise late.telling("nothing was requeued (the transaction was rolled back)") from late
        except ConnectionLostError as lost:
            raise lost.telling(
                "whether the rows were requeued is unknown (see: kafkaops failed list --status PENDING)"
                if lost.during_commit
                else "nothing was requeued (the transaction was rolled back)"
            ) from lost

    def _requeue_selected(self, conn: Connection, rows: RowFilter) -> int:
        """--where: every selected row, in batches of one transaction."""
        from kafkaops.db.where import act_batch, requeue_statement

        update = requeue_statement(self.conns.table, self.now)

        def perform(conn: Connection, ids: Sequence[Any]) -> int:
            changed = update(conn, ids)
            if self.witness is not None:
                self.witness.batch(conn, ids)
            return changed

        done, after, more = 0, None, True
        while more:
            changed, after, more = act_batch(
                conn, self.conns.table, rows, self.where, perform, after=after, batch_size=5_000
            )
            done += changed
        return done


class Purge(BulkAction):
    """Delete RESOLVED (default) or DLQ rows last updated before `older_than`, in batches of
    `batch_size`, each its own transaction locking what it deletes (SKIP LOCKED)."""

    verb, done_key = "purge", "deleted"

    def __init__(
        self,
        conns: Connections,
        flt: EventFilter,
        *,
        older_than: datetime | None,
        batch_size: int,
        within: timedelta,
    ) -> None:
        super().__init__(conns, purge_filter(flt), within=within)
        self.older_than = older_than
        self.batch_size = batch_size
        self.takes = "RESOLVED or DLQ" + (" last updated before the cutoff" if older_than else "")
        self.where = purge_conditions(conns.table, self.flt, older_than)  # refuses a purge of everything
        self.archive: ArchiveWriter | None = None  # every row deleted, fsynced before each commit
        self.live: Table | None = None  # the table as the database has it, every column

    def keep_in(self, archive: ArchiveWriter, live: Table) -> None:
        """Archive every row deleted, every column of `live`, before each batch commits."""
        self.archive, self.live = archive, live

    def run(self) -> int:
        """Batch after batch until one comes back short. Ctrl-C raises ActionInterrupted with
        the rows committed so far; a timeout or a lost connection says them in its message."""
        deleted = 0
        try:
            if self.rows is not None:
                from kafkaops.db.where import act_batch

                # Each batch its own transaction, as below, resuming after the last id read: the
                # rows the expression leaves are never read twice.
                after, more = None, True
                while more:
                    with self._transaction() as conn:
                        batch, after, more = act_batch(
                            conn,
                            self.conns.table,
                            self.rows,
                            self.where,
                            self._delete_selected(),
                            after=after,
                            batch_size=self.batch_size,
                            skip_locked=True,
                        )
                    if self.witness is not None:
                        self.witness.committed()
                    deleted += batch
                return deleted
            while True:
                with self._transaction() as conn:
                    batch = self._batch(conn)
                if self.witness is not None:
                    self.witness.committed()
                deleted += batch
                if batch < self.batch_size:
                    return deleted
        except KeyboardInterrupt:
            raise ActionInterrupted(deleted, "deleting") from None
        except ArchiveError as unwritten:
            raise ArchiveError(
                f"{unwritten.message}; {deleted:,} row(s) deleted in committed batches (all in the "
                "archive); the batch in flight was rolled back"
            ) from unwritten
        except StatementTimeoutError as late:
            if not deleted:
                raise late.telling("nothing was deleted (the transaction was rolled back)") from late
            raise late.telling(
                f"{deleted:,} row(s) deleted in committed batches; the batch in flight was rolled back"
            ) from late
        except ConnectionLostError as lost:
            if not deleted and not lost.during_commit:
                raise lost.telling("nothing was deleted (the transaction was rolled back)") from lost
            last = (
                "whether the last batch was deleted is unknown"
                if lost.during_commit
                else "the batch in flight was not"
            )
            raise lost.telling(f"{deleted:,} row(s) deleted in committed batches; {last}") from lost

    def _delete_selected(self) -> Performer:
        """--where: delete the ids a batch selected (locked by then), archived and witnessed
        as `_batch` does."""

        def perform(conn: Connection, ids: Sequence[Any]) -> int:
            if self.archive is not None and self.live is not None:
                from kafkaops.db.archive import archived_purge_batch

                done = archived_purge_batch(
                    conn,
                    self.conns.table,
                    self.live,
                    where=[self.conns.table.c.id.in_(ids)],
                    id_column=self.conns.settings.database.physical("id"),
                    batch_size=len(ids),
                    archive=self.archive,
                )
            else:
                from sqlalchemy import delete

                table = self.conns.table
                statement = delete(table).where(table.c.id.in_(ids)).returning(table.c.id)
                done = [row[0] for row in conn.execute(statement)]
            if self.witness is not None:
                self.witness.batch(conn, done)
            return len(done)

        return perform

    def _batch(self, conn: Connection) -> int:
        """Delete one batch: archived and witnessed when asked, else one plain DELETE."""
        if self.archive is None and self.witness is None:
            return purge_batch(
                conn, self.conns.table, flt=self.flt, older_than=self.older_than, batch_size=self.batch_size
            )
        ids: list[Any] = []
        if self.archive is not None and self.live is not None:
            from kafkaops.db.archive import archived_purge_batch

            db = self.conns.settings.database
            ids = archived_purge_batch(
                conn,
                self.conns.table,
                self.live,
                where=self.where,
                id_column=db.physical("id"),
                batch_size=self.batch_size,
                archive=self.archive,
            )
        else:
            purge_batch(
                conn,
                self.conns.table,
                flt=self.flt,
                older_than=self.older_than,
                batch_size=self.batch_size,
                ids_out=ids,
            )
        if self.witness is not None:
            self.witness.batch(conn, ids)
        return len(ids)

    def _transaction(self) -> AbstractContextManager[Connection]:
        """As every action's, and on SQLite holding the write lock from the start when the
        rows are read before they are deleted (archived)."""
        return self.conns.bounded(
            self.verb,
            within=self.within,
            lock=self.conns.settings.database.lock_timeout,
            immediate=self.archive is not None,
        )


def purge_cutoff(raw: str | None, *, now: datetime) -> datetime | None:
    """--older-than as an instant; one in the future is refused (every row would match)."""
    if raw is None:
        return None
    cutoff = parse_instant(raw, what="--older-than", now=now)
    if cutoff > now:
        raise UsageError(
            f"--older-than {raw!r} is in the future: every row would match",
            hint="to delete the rows whatever their age, say so: --older-than 0s",
        )
    return cutoff
