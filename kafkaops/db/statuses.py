"""The words of the runbook's state machine, and what each `failed` command may act on.

A module of constants only, so that shell completion can offer them without importing a
database library.
"""

from __future__ import annotations

STATUSES = ("PENDING", "RESOLVED", "DLQ", "DLQ_FAILED")
# Most urgent first: DLQ_FAILED is the runbook's CRITICAL, PENDING is still in flight.
SEVERITY = ("DLQ_FAILED", "PENDING", "DLQ", "RESOLVED")
# Rows no retry pass will touch: a next_retry_at they still carry is stale.
SETTLED = ("DLQ", "DLQ_FAILED", "RESOLVED")
REQUEUEABLE = ("DLQ_FAILED", "DLQ")
PURGEABLE = ("RESOLVED", "DLQ")
GROUP_KEYS = (
    "status",
    "topic",
    "last_error",
    "error_type",
    "retry_count",
    "event_key",
    "error_signature",
)
