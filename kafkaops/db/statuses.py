"""The words of the runbook's state machine, and what each `failed` command may act on.

A module of constants only, so that shell completion can offer them without importing a
database library.
"""

from __future__ import annotations

# PARKED is kafkaops' own: a row an operator took out of the retry loop (`failed park`), kept
# until `failed unpark` puts it back. The status column is free text in the service's table.
STATUSES = ("PENDING", "RESOLVED", "DLQ", "DLQ_FAILED", "PARKED")
# Most urgent first: DLQ_FAILED is the runbook's CRITICAL, PENDING is still in flight; PARKED
# rows were set aside on purpose.
SEVERITY = ("DLQ_FAILED", "PENDING", "DLQ", "PARKED", "RESOLVED")
# Rows no retry pass will touch: a next_retry_at they still carry is stale.
SETTLED = ("DLQ", "DLQ_FAILED", "RESOLVED", "PARKED")
REQUEUEABLE = ("DLQ_FAILED", "DLQ")
PURGEABLE = ("RESOLVED", "DLQ")
# Purged only when `--status PARKED` names them: a parked row is an event not delivered.
PURGEABLE_WHEN_NAMED = ("PARKED",)
PARKABLE = ("PENDING", "DLQ_FAILED", "DLQ")
GROUP_KEYS = (
    "status",
    "topic",
    "last_error",
    "error_type",
    "retry_count",
    "event_key",
    "error_signature",
)
