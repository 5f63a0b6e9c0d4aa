"""Database errors by their code, never their text: the SQLSTATE behind an error, what it means
to an operator (connect, lost, timeout, schema), and the one-line kafkaops error for it.
"""

from __future__ import annotations

import re
from typing import Any

from kafkaops.common.errors import ConnectionLostError, DatabaseError, KafkaopsError, SchemaError
from kafkaops.common.secrets import redact

QUERY_CANCELED = "57014"  # SQLSTATE: statement_timeout (or a cancel request) stopped the statement
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE: lock_timeout fired while waiting for a lock

# SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html) by what they mean
# to an operator. Class 08 (connection exceptions) is connect as a whole.
_PG_CONNECT = frozenset({"28P01", "28000", "3D000", "57P03", "53300"})
_PG_LOST = frozenset({"57P01", "57P02", "25P03", "25P04"})  # shut down, idle-session timeouts
_PG_TIMEOUT = frozenset({QUERY_CANCELED, LOCK_NOT_AVAILABLE})  # statement timeout / cancel, lock timeout
_PG_SCHEMA = frozenset({"42P01", "42703", "3F000", "42804", "42883", "22P02"})
# SQLite's primary result codes (sqlite3 exposes them from Python 3.11).
_SQLITE_CANTOPEN, _SQLITE_NOTADB, _SQLITE_AUTH = 14, 26, 23
_SQLITE_ERROR, _SQLITE_BUSY, _SQLITE_LOCKED = 1, 5, 6


def sqlstate(error: BaseException | None) -> str | None:
    """The SQLSTATE behind an error: a psycopg error's own, the one a SQLAlchemy error wraps
    (`.orig`), or the one behind a kafkaops error (its `__cause__`, as `translate_db_error`
    raises them). None when no server gave one: the error is the client's own."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for candidate in (error, getattr(error, "orig", None)):
            code = getattr(candidate, "sqlstate", None)
            if code is None:
                code = getattr(getattr(candidate, "diag", None), "sqlstate", None)
            if isinstance(code, str):
                return code
        error = error.__cause__
    return None


def classify_db_error(error: Any) -> str:
    """connect | lost | timeout | schema | other, from the error's code.

    A psycopg error without a SQLSTATE comes from the client itself (no server to answer, a
    refused or dropped connection); SQLAlchemy wraps errors raised while connecting with no
    statement. kafkaops' SQL is fixed, so SQLite's generic SQLITE_ERROR can only mean the
    table does not match the mapping (no such table or column).
    """
    from sqlalchemy import exc

    orig = getattr(error, "orig", None)
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        primary = sqlite_code & 0xFF
        if primary in (_SQLITE_CANTOPEN, _SQLITE_NOTADB, _SQLITE_AUTH):
            return "connect"
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return "timeout"
        if primary == _SQLITE_ERROR:
            return "schema"
        return "other"
    code = sqlstate(orig)
    if code is None:
        if getattr(error, "connection_invalidated", False) and getattr(error, "statement", None):
            return "lost"
        if isinstance(error, exc.OperationalError | exc.InterfaceError):
            return "connect" if not getattr(error, "statement", None) else "lost"
        return "other"
    if code.startswith("08") or code in _PG_CONNECT:
        return "connect"
    if code in _PG_LOST:
        return "lost"
    if code in _PG_TIMEOUT:
        return "timeout"
    if code in _PG_SCHEMA:
        return "schema"
    return "other"


def translate_db_error(
    error: Any, *, connected: bool, committing: bool, shown_url: str, secrets: list[str]
) -> KafkaopsError:
    """One kafkaops error for a driver error, sorted by its code (SQLSTATE, SQLite's
    error code), never by its text: servers speak other languages. `connected`: the
    connection was made, so one that breaks afterwards is not "cannot connect"; `committing`:
    COMMIT was sent. `shown_url` names the target without its password; `secrets` are cut
    from the driver's text."""
    reason = redact(_first_line(error.orig) if error.orig else str(error), secrets)
    kind = classify_db_error(error)
    if kind == "connect" and connected:
        kind = "lost"  # SQLSTATE class 08, or no SQLSTATE at all: the link broke mid-way
    if kind == "lost":
        when = "while committing" if committing else "during the command"
        return ConnectionLostError(
            f"lost the connection to the database {when}: {reason}",
            during_commit=committing,
        )
    if kind == "connect":
        return DatabaseError(f"cannot connect to database {shown_url}: {_short_reason(reason)}")
    if kind == "schema":
        return SchemaError(
            f"the table does not match the configured mapping: {reason}",
            hint="run 'kafkaops db check' to see which columns differ",
        )
    if kind == "timeout":
        return DatabaseError(
            f"the database did not answer in time: {reason}",
            hint="another session may hold a lock on the table (see pg_stat_activity / pg_locks)",
        )
    return DatabaseError(f"database error: {reason}")


def _first_line(orig: BaseException) -> str:
    text = str(orig).strip()
    return text.splitlines()[0].strip() if text else type(orig).__name__


def _short_reason(reason: str) -> str:
    """The part of a connection error worth a line (presentation only: the error is already
    classified by its code); any text the patterns do not know is shown whole."""
    match = re.search(r'(password authentication failed for user "[^"]*")', reason)
    if match:
        return match.group(1)
    match = re.search(r'(database "[^"]*" does not exist)', reason)
    if match:
        return match.group(1)
    # psycopg prefixes: 'connection failed: connection to server at "h" (ip), port p failed: why'
    short = reason.rsplit("failed: ", 1)[-1].strip() or reason
    short = short.split("FATAL:", 1)[-1].strip() or short
    return short[:1].lower() + short[1:]
