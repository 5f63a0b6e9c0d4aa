"""Who acts: `user@host`, or what $KAFKAOPS_ACTOR says (a ticket id, a name)."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping

from kafkaops.common.errors import UsageError

ENV = "KAFKAOPS_ACTOR"
MAX_LENGTH = 255


def actor(env: Mapping[str, str]) -> str:
    """$KAFKAOPS_ACTOR, refused when it holds control characters (a journal line must not be
    able to forge another, or a terminal escape) or is longer than 255; else `user@host`."""
    given = env.get(ENV)
    if given is not None and given.strip():
        if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in given):
            raise UsageError(
                f"${ENV} holds control characters: refused (it names who acts in the audit journal)",
                hint=f"set it to printable text, e.g. {ENV}='alice (INC-4711)'",
            )
        if len(given) > MAX_LENGTH:
            raise UsageError(f"${ENV} is longer than {MAX_LENGTH} characters")
        return given.strip()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        import os

        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"
