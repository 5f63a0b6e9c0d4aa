"""A record's value read as JSON, the one way every command reads it (`dlq tail`, `--match`,
`failed show`): a value nested deeper than MAX_DEPTH is not parsed at all, so one hostile record
cannot exhaust the stack of whoever reads it; such a value is text.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

# serde_json's limit. Real events nest a few levels; printing a parsed value recurses once
# per level again (pretty JSON, the output layer), well inside Python's 1,000 frames.
MAX_DEPTH = 128

# A string, its closing quote optional: an unterminated one runs to the end instead of being
# tried again at every quote inside it. One pass, no backtracking.
_STRINGS = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
# Every byte but a bracket deleted, each bracket made its step in depth (-1 as a signed byte).
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def parse_json(raw: bytes | str) -> tuple[Any, bool]:
    """(the parsed value, True) when `raw` is JSON (bytes: in UTF-8) nested at most MAX_DEPTH
    levels; else (None, False): not JSON, not UTF-8, or too deep."""
    try:
        text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8")
        if too_deep(text):
            return None, False
        return json.loads(text), True
    except (TypeError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, False


def too_deep(text: str) -> bool:
    """True when brackets outside strings nest deeper than MAX_DEPTH (checked before parsing,
    so nothing deeper ever reaches a recursive parser)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # the common case
        return False
    outside = _STRINGS.sub("", text).encode("utf-8", "surrogatepass")
    steps = array("b", outside.translate(_STEPS, _NOT_BRACKETS))
    return max(accumulate(steps), default=0) > MAX_DEPTH
