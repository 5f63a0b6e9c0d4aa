"""Text from the database or Kafka made safe for a terminal: shown, never obeyed, and bounded.

One definition for every place that prints data (the output layer, status, messages, DLQ
records): control characters as `\\x1b`, `\\n`, `\\t`, bidirectional overrides as `\\u202e`;
bytes that are no text as `\\xNN`. Human formats show a text up to SHOWN_CHARACTERS.
"""

from __future__ import annotations

from typing import Any

_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
# C0 controls, DEL, C1 controls (U+009B is a CSI on some terminals), and the bidirectional
# overrides that make a terminal show text in another order than it is stored.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
# Bytes that were not UTF-8, kept by surrogateescape (SQLite): shown as the byte, `\xff`.
_BAD_BYTES = range(0xDC80, 0xDD00)
_VISIBLE = (
    {c: _NAMED.get(c, f"\\x{c:02x}") for c in _CONTROLS}
    | {c: f"\\u{c:04x}" for c in _BIDI}
    | {c: f"\\x{c - 0xDC00:02x}" for c in _BAD_BYTES}
)
_VISIBLE_KEEP_LINES = {c: v for c, v in _VISIBLE.items() if c not in (0x09, 0x0A)}
# JSON escapes C0 itself; C1, bidi overrides and line/paragraph separators are escaped too.
_JSON_UNSAFE = {c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), *_BIDI, 0x2028, 0x2029, *_BAD_BYTES)}


def safe_text(value: Any, *, keep_lines: bool = False) -> str:
    """`value` as text a terminal shows and never obeys: control characters as `\\x1b`, `\\n`,
    `\\t`, `\\u202e`. `keep_lines` leaves newlines and tabs (a payload, a multi-line message)."""
    return str(value).translate(_VISIBLE_KEEP_LINES if keep_lines else _VISIBLE)


# How much of one text a person is shown (a DLQ value or a last_error may hold megabytes);
# the machine formats print it whole.
SHOWN_CHARACTERS = 65_536
_CHUNK = 1024


def shown_text(value: Any, *, keep_lines: bool = False, limit: int = SHOWN_CHARACTERS) -> str:
    """`safe_text(value)` in at most `limit` characters: a longer text is cut (never inside an
    escape such as `\\x1b`) and ends with how many of its characters were left out. Only the
    part shown is escaped, so a text of any size costs the same."""
    text = str(value)
    head = text[: limit + 1]
    shown = safe_text(head, keep_lines=keep_lines)
    if len(shown) <= limit and len(head) == len(text):
        return shown
    parts: list[str] = []
    used = kept = 0
    for start in range(0, len(head), _CHUNK):
        chunk = head[start : start + _CHUNK]
        piece = safe_text(chunk, keep_lines=keep_lines)
        if used + len(piece) <= limit:
            parts.append(piece)
            used += len(piece)
            kept += len(chunk)
            continue
        for char in chunk:  # escapes are per character: find the last one that fits whole
            piece = safe_text(char, keep_lines=keep_lines)
            if used + len(piece) > limit:
                break
            parts.append(piece)
            used += len(piece)
            kept += 1
        break
    more = len(text) - kept
    sep = "\n" if keep_lines else " "
    return "".join(parts) + f"{sep}... ({more:,} more characters; -o json prints the whole value)"


# Bytes that are no text: printable ASCII as it is, a backslash doubled (so `\\xff` in the data
# cannot pass for an escape), every other byte as `\xNN`.
_BINARY = {b: chr(b) for b in range(0x20, 0x7F)} | {0x5C: "\\\\"}


def safe_binary(data: bytes) -> str:
    """Bytes that are not UTF-8 (a binary DLQ record) shown byte for byte: `\\x1b[31m\\xff`."""
    return "".join(_BINARY.get(b) or f"\\x{b:02x}" for b in data)
