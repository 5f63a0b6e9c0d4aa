"""Stored text as every command reads it: the one decoding of bytes a database handed back.

SQLite stores whatever bytes it is given; `decode_text` is how they become `str` (for the
connection's text factory and every SQL helper function), `encode_text` how they go back.
"""

from __future__ import annotations


def decode_text(raw: bytes) -> str:
    """Text SQLite stored, as every command and every SQL function reads it: UTF-8, each byte
    that is not UTF-8 kept as a lone surrogate (surrogateescape, `\\xff` -> U+DCFF), so that it
    goes back out as the very byte. JSON and YAML show it as `\\udcff`, tables and tsv as
    `\\xff` (`escape.safe_text`), piped csv as the byte; `retry` publishes the stored bytes."""
    return raw.decode("utf-8", "surrogateescape")


def encode_text(text: str) -> bytes:
    """The stored bytes of text read by `decode_text`."""
    return text.encode("utf-8", "surrogateescape")


def is_utf8(text: str) -> bool:
    """False for text `decode_text` read from bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
