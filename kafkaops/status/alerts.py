"""The webhook alert: a Slack-compatible `{"text": ...}` plus the structured checks.

Sent when the result is CRITICAL, not again while the same checks stay critical, and a recovery
message once when they clear (an UNKNOWN result is neither: nothing is known to have cleared).
A webhook that fails is reported, never raised: it must not change status' exit code.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime
from typing import TYPE_CHECKING

from kafkaops.common.http import HttpError, post_json
from kafkaops.common.secrets import mask_url
from kafkaops.common.timeparse import format_utc
from kafkaops.status import checks
from kafkaops.status.statefile import Alert, StatusState

if TYPE_CHECKING:
    from kafkaops.status.result import StatusResult


def fingerprint(result: StatusResult) -> str:
    return ",".join(sorted(c.name for c in result.checks if c.status == checks.CRITICAL))


def slack_escape(text: str) -> str:
    """Slack reads `<...>` as links and mentions (`<!channel>`); data must not ping anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def critical_text(result: StatusResult, context: str | None) -> str:
    where = f" ({context})" if context else ""
    lines = [f"KAFKAOPS CRITICAL{where}"]
    for check in result.checks:
        if check.status == checks.CRITICAL:
            step = f": {check.next_step}" if check.next_step else ""
            lines.append(f"- {check.name}: {check.message}{step}")
    return slack_escape("\n".join(lines))


def recovery_text(result: StatusResult, previous: Alert, context: str | None) -> str:
    where = f" ({context})" if context else ""
    return slack_escape(
        f"KAFKAOPS RECOVERED{where}: now {result.status}; was CRITICAL since "
        f"{format_utc(previous.sent_at)}: {previous.summary}"
    )


def maybe_alert(
    result: StatusResult,
    state: StatusState,
    webhook: str,
    *,
    now: datetime,
    context: str | None,
    timeout: float,
) -> str | None:
    """Send what the result calls for, within `timeout` seconds; returns a warning for stderr
    when the webhook failed.

    `state.alert` records the alert sent, so the next run neither repeats it nor forgets to
    say when it cleared; a failed send leaves the state as it was, so the next run tries again.
    """
    if result.status == checks.CRITICAL:
        print_ = fingerprint(result)
        if state.alert is not None and state.alert.fingerprint == print_:
            return None
        text = critical_text(result, context)
        kind = "alert"
    elif result.status in (checks.OK, checks.WARNING) and state.alert is not None:
        text = recovery_text(result, state.alert, context)
        kind = "recovery"
    else:
        return None
    payload = {
        "text": text,
        "status": result.status,
        "kind": kind,
        "context": context,
        "host": socket.gethostname(),
        "checked_at": result.as_dict()["checked_at"],
        "checks": [c.as_dict() for c in result.checks if c.status != checks.OK],
    }
    shown = mask_url(webhook, hide_path=True)
    try:
        response = post_json(
            webhook, json.dumps(payload, ensure_ascii=False).encode("utf-8"), timeout=timeout, shown=shown
        )
    except HttpError as error:
        return f"alert webhook failed: {error.message}"
    if not 200 <= response.status < 300:
        return f"alert webhook failed: {shown}: HTTP {response.status}"
    if kind == "alert":
        summary = "; ".join(c.message for c in result.checks if c.status == checks.CRITICAL)
        state.alert = Alert(fingerprint=fingerprint(result), sent_at=now, summary=summary[:500])
    else:
        state.alert = None
    return None
