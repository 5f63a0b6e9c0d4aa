"""`kafkaops db`: create the failed-events table, or check a live one against the mapping."""

from __future__ import annotations

from typing import Annotated

import typer

from kafkaops.cli.errors import LockBoundGroup
from kafkaops.cli.fields import Field
from kafkaops.cli.gate import no_writes, writes
from kafkaops.cli.options import OutputOpt
from kafkaops.cli.state import bounded_connections, output
from kafkaops.common.errors import SchemaError

app = typer.Typer(
    cls=LockBoundGroup,
    help="Create or check the failed_kafka_events table and the audit journal.",
    no_args_is_help=True,
)


@app.command()
@writes
def init(
    ctx: typer.Context,
    id_type: Annotated[
        str,
        typer.Option("--id-type", help="Type of the id primary key: bigint (identity) or uuid."),
    ] = "bigint",
) -> None:
    """Create the table, its indexes, kafkaops_retry_runs and the audit journal (kafkaops_audit)
    if they do not exist.

    The indexes: (status, next_retry_at) for the retry pass, and (status, created_at) over the
    rows not RESOLVED, which keeps `status` and `failed` fast however much history the table
    holds. kafkaops_retry_runs (in the same schema) keeps one row per retry pass, for status to
    say when the retry job last ran; a week of them is kept. Safe to run again: an existing table is left as it is, except that the unresolved
    rows' index is added when missing (CREATE INDEX CONCURRENTLY on PostgreSQL: the service's
    writes go on while it builds).

    \b
    Example:
      kafkaops db init
    """
    from kafkaops.audit.table import NAME as AUDIT_TABLE
    from kafkaops.audit.table import create_audit_table
    from kafkaops.common.errors import UsageError
    from kafkaops.db.retry_runs import TABLE, init_runs_table
    from kafkaops.db.schema import add_unresolved_index, init_table

    if id_type not in ("bigint", "uuid"):
        raise UsageError(f"--id-type must be bigint or uuid, not {id_type!r}")
    conns = bounded_connections(ctx)
    db = conns.settings.database
    with conns.db_errors():
        created = init_table(conns.engine, db, id_type=id_type)
        index = None if created else add_unresolved_index(conns.engine, db)
        runs_created = init_runs_table(conns.engine, db)
        journal = create_audit_table(conns.engine, db)
    name = f"{db.schema}.{db.table}" if db.schema else db.table
    out = output(None)
    out.info(f"Created table {name}." if created else f"Table {name} already exists; left as it is.")
    if index:
        out.info(f"Created index {index} on the rows not RESOLVED.")
    if runs_created:
        runs = f"{db.schema}.{TABLE}" if db.schema else TABLE
        out.info(f"Created table {runs} (one row per retry pass, read by status).")
    if journal:
        out.info(f"Created the audit journal {AUDIT_TABLE}.")


@app.command()
@no_writes
def check(ctx: typer.Context, output_format: OutputOpt = None) -> None:
    """Compare the live table with the configured column mapping; exit 1 when it is unusable.

    Also says whether kafkaops_retry_runs exists (status reads the last retry pass from it;
    without it the last pass is not recorded, which is a warning, not a failure).

    \b
    Example:
      kafkaops db check
    """
    from kafkaops.audit.table import NAME as AUDIT_TABLE
    from kafkaops.audit.table import missing_columns
    from kafkaops.db.retry_runs import TABLE, has_runs_table
    from kafkaops.db.schema import (
        has_unresolved_index,
        inspect_table,
        time_storage,
        unresolved_index_statement,
    )

    conns = bounded_connections(ctx)
    db = conns.settings.database
    out = output(output_format)
    with conns.connect() as conn:
        shape = inspect_table(conn, db)
        problems = shape.problems
        times = time_storage(conn, db, shape) if not problems else None
        indexed = has_unresolved_index(conn, db) if not problems else True
        runs = has_runs_table(conn, db)
        dialect = conn.dialect.name
        journal = missing_columns(conn, db)
    rows = [{"column": p.column, "physical": p.physical, "problem": p.problem} for p in problems]
    if out.fmt.value != "table":
        out.rows(rows, [Field("column"), Field("physical"), Field("problem")])
    elif rows:
        out.rows(
            rows, [Field("column", "COLUMN"), Field("physical", "IN TABLE"), Field("problem", "PROBLEM")]
        )
    name = f"{db.schema}.{db.table}" if db.schema else db.table
    if problems:
        raise SchemaError(f"table {name} does not match the mapping: {len(problems)} problem(s)")
    out.info(f"Table {name} matches the mapping.")
    if times and times.forms:
        out.info(f"Times are stored as {' and '.join(times.forms)}.")
    out.info(
        f"Table {TABLE} exists: status reads the last retry pass from it."
        if runs
        else f"No table {TABLE}: retry passes are not recorded, so status cannot say when the "
        "retry job last ran (kafkaops db init creates it)."
    )
    if journal is None:
        out.warning(
            f"no audit journal table {AUDIT_TABLE}: every command that changes data refuses to run "
            "until `kafkaops db init` creates it (or audit.required: false)"
        )
    elif journal:
        out.warning(f"the audit journal table {AUDIT_TABLE} lacks column(s): {', '.join(journal)}")
    else:
        out.info(f"Audit journal {AUDIT_TABLE} is in place.")
    if not indexed:
        out.warning(
            "no index over the rows not RESOLVED: status and failed read the whole table to count "
            "them; create it with (or run kafkaops db init):\n  " + unresolved_index_statement(db, dialect)
        )
    if times and times.unreadable:
        out.warning(
            f"{times.unreadable:,} time value(s) cannot be read as times: shown as stored, "
            "never matched by --since, --until or --older-than"
        )
