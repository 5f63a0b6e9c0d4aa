"""Commands printed for the user to paste into a shell (next steps, hints)."""

from __future__ import annotations

import shlex


def command(*argv: str) -> str:
    """A command to paste into a shell: each part one word, quoted when it needs to be, so a
    topic named `orders.v1 $(touch pwned)` stays a name and never becomes a command."""
    return shlex.join(argv)
