"""Typed errors raised by the core, and the exit status each one maps to.

The core never prints and never exits: it raises one of these. The CLI entry point turns
each into a single `Error: ...` line (plus an optional hint) and the exit code below.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Every exit code kafkaops has: the core's errors carry one, the CLI exits with it.

    `kafkaops status` speaks a second contract, the Monitoring Plugins' (OK 0, WARNING 1,
    CRITICAL 2, UNKNOWN 3: `status.checks.EXIT_CODES`), for what it judged. Whatever stops it
    from judging (a usage, configuration or runtime error, which other commands exit 2 or 1
    for) exits UNKNOWN there, so a monitoring system never reads an error as WARNING or
    CRITICAL: UNKNOWN below is that same 3.
    """

    OK = 0
    FAILURE = 1  # runtime failure: unreachable database or broker, partial failure
    USAGE = 2  # bad input or configuration
    UNKNOWN = 3  # `kafkaops status` only (Monitoring Plugins): could not judge, or bad usage there
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as a shell reports a process it interrupted
    BROKEN_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE), as if killed by SIGPIPE


def exit_status_for_signal(signum: int) -> int:
    """The code a shell reports for a process a signal stopped: 128 + the signal's number.
    A command that stops cleanly on a signal (`retry`, `dlq replay`) exits with it, so a
    supervisor sees what stopped it."""
    return 128 + int(signum)


class KafkaopsError(Exception):
    """Base of every error kafkaops reports to the user as one line."""

    exit_status: ExitStatus = ExitStatus.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(KafkaopsError):
    """The user asked for something that cannot mean anything (bad option value)."""

    exit_status = ExitStatus.USAGE


class ConfigError(KafkaopsError):
    """The configuration is missing, unreadable or inconsistent."""

    exit_status = ExitStatus.USAGE


class NotFoundError(KafkaopsError):
    """A thing the user named (a row id, a topic) does not exist."""

    exit_status = ExitStatus.FAILURE


class DatabaseError(KafkaopsError):
    """The database could not be reached or refused a statement."""


class ConnectionLostError(DatabaseError):
    """The connection broke after it was made (server stopped, backend terminated, network).

    `during_commit`: it broke while committing, so whether that transaction took effect is
    unknown; otherwise the transaction in flight was rolled back by the server."""

    def __init__(self, message: str, *, during_commit: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.during_commit = during_commit

    def telling(self, known: str) -> ConnectionLostError:
        """The same error with what the command knows of its own writes (`; nothing was ...`)."""
        return ConnectionLostError(
            f"{self.message}; {known}", during_commit=self.during_commit, hint=self.hint
        )


class StatementTimeoutError(DatabaseError):
    """A statement ran past the bound its transaction set; the transaction was rolled back."""

    def telling(self, known: str) -> StatementTimeoutError:
        """The same error with what the command knows of its own writes (`; nothing was ...`)."""
        return StatementTimeoutError(f"{self.message}; {known}", hint=self.hint)


class SchemaError(KafkaopsError):
    """The live table does not match the configured column mapping."""


class KafkaUnavailableError(KafkaopsError):
    """The Kafka cluster could not be reached within the deadline."""


class KafkaClientError(KafkaopsError):
    """Kafka answered with an error that is not about reachability."""


class KafkaAuthorizationError(KafkaClientError):
    """The cluster denied kafkaops' own principal an operation (a missing ACL): kafkaops'
    configuration is at fault, never an event."""


class OutputError(KafkaopsError):
    """The output could not be written (standard output closed, disk full)."""


class ReadOnlyError(KafkaopsError):
    """A command that writes to the database or Kafka, asked of a read-only context: refused
    before anything is opened."""

    exit_status = ExitStatus.USAGE


class AuditError(KafkaopsError):
    """The audit journal could not be written, so the command did not act (fail closed)."""


class ArchiveError(KafkaopsError):
    """A purge's archive could not be created or written; the batch in flight was not deleted."""
