"""The error signature: an error message with its numbers, ids, durations and quoted values
replaced by placeholders, so that errors of one cause group together.

One rule for both sides: `failed --group-by error_signature` runs SIGNATURE_RULES as SQL
(`regexp_replace` on PostgreSQL, `regexp_replace_text` registered as a function on SQLite), and
`dlq stats` / `--where error.signature` run them here on a DLQ record's error message, so a
table row and its DLQ record fall in the same group. Nothing here imports SQLAlchemy: reading
a DLQ topic does not pay for it.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Each (pattern, flags, placeholder) in order. PostgreSQL's regular expressions use \y for a
# word boundary. Explicit ASCII classes ([0-9], [ \t]), not \d or \s, so that both engines
# agree on non-ASCII text (Python's classes are Unicode-aware, PostgreSQL's are not).
SIGNATURE_RULES: tuple[tuple[str, str, str], ...] = (
    (r"'[^']*'|\"[^\"]*\"", "g", "<value>"),
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "gi", "<uuid>"),
    # Java's Object.toString(): `ThreadPoolExecutor@1a2b3c` (hex) and `Foo@123` are one identity.
    (r"([A-Za-z0-9_$])@[0-9a-f]+\y", "gi", r"\1@<id>"),
    (
        r"\y[0-9]+(\.[0-9]+)?[ \t]?(ns|us|ms|s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?)\y",
        "gi",
        "<duration>",
    ),
    (r"\y0x[0-9a-f]+\y", "gi", "<hex>"),
    (r"\y(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{4,}\y", "gi", "<hex>"),
    (r"\y[0-9]+(\.[0-9]+)?\y", "g", "<n>"),
)

_PG_FLAGS = {"i": re.IGNORECASE}


def regexp_replace_text(value: str, pattern: str, replacement: str, flags: str) -> str:
    """PostgreSQL's `regexp_replace(value, pattern, replacement, flags)` for the patterns
    kafkaops writes: `\\y` is a word boundary, classes are ASCII, `g` replaces every match."""
    re_flags = re.ASCII  # as PostgreSQL's classes and case folding are
    for flag in flags:
        re_flags |= _PG_FLAGS.get(flag, 0)
    count = 0 if "g" in flags else 1
    return re.sub(pattern.replace(r"\y", r"\b"), replacement, value, count=count, flags=re_flags)


@lru_cache(maxsize=4096)
def error_signature(text: str) -> str:
    """The signature of one message (the SQL expression's result for it). Messages repeat, so
    each is normalised once."""
    result = text
    for pattern, flags, placeholder in SIGNATURE_RULES:
        result = regexp_replace_text(result, pattern, placeholder, flags)
    return result
