"""`--where EXPR`: one CEL expression that chooses DLQ records and failed rows.

Compiled once (a bad expression is a UsageError naming its line and column), then asked of
one record model at a time: a record it cannot be evaluated on (a missing field, a type
error, a result that is not true or false) is not selected, and counted. Saved filters
(`filters: {name: expr}` of the context) are named `@name`. CEL has no I/O, no loops beyond
its bounded macros and no way to call Python: it is safe to run on whatever a record holds.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from kafkaops.common.errors import UsageError

# `<input>:1:16: Syntax error: ...` in the library's compile errors.
_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']*)'")


def resolve_saved(text: str, saved: Mapping[str, str]) -> str:
    """The expression itself, or for `@name` the one saved under that name in the context."""
    if not text.startswith("@"):
        return text
    name = text[1:]
    if name in saved:
        return saved[name]
    known = ", ".join("@" + n for n in sorted(saved)) or "none saved in this context"
    raise UsageError(
        f"--where {text}: no saved filter {name!r} ({known})",
        hint="save one under `filters:` in the context: filters: {timeouts: 'error.class.endsWith(\"TimeoutException\")'}",
    )


@dataclass
class EvalFailures:
    """The records an expression could not be evaluated on: how many, and the first."""

    count: int = 0
    first_where: str = ""
    first_error: str = ""

    def add(self, where: str, error: str) -> None:
        if not self.count:
            self.first_where, self.first_error = where, error
        self.count += 1

    def sentence(self, noun: str = "record") -> str:
        """`12 records could not be evaluated: first at partition 2 offset 881: ...`."""
        plural = noun if self.count == 1 else noun + "s"
        return (
            f"{self.count:,} {plural} could not be evaluated (not selected): "
            f"first at {self.first_where}: {self.first_error}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first_at": self.first_where or None,
            "first_error": self.first_error or None,
        }


class Where:
    """A compiled `--where` expression over records of the given top-level names."""

    def __init__(self, source: str, names: Collection[str]) -> None:
        import cel  # heavy (a Rust extension and its REPL): only commands given --where load it

        self.source = source
        try:
            self._program = cel.compile(source)
        except (ValueError, RuntimeError) as exc:
            raise UsageError(f"--where: {_compile_message(str(exc), source)}") from None
        self.names = frozenset(self._program.variables()) & frozenset(names)
        unknown = sorted(set(self._program.variables()) - set(names) - _bound_names(source))
        if unknown:
            column = _column_of(source, unknown[0])
            raise UsageError(
                f"--where: unknown name {unknown[0]!r} at column {column}",
                hint="a record has: " + ", ".join(sorted(names)),
            )
        self.failures = EvalFailures()

    def test(self, model: dict[str, Any], where: str) -> bool:
        """True when the expression selects this record; an error or a result that is not a
        bool counts as a failure (not selected), never raises."""
        try:
            result = self._program.execute(model)
        except Exception as exc:  # the library raises KeyError, TypeError, RuntimeError...
            self.failures.add(where, _eval_message(exc))
            return False
        if result is True or result is False:
            return result
        self.failures.add(
            where, f"the expression gave {type(result).__name__} {_short(result)}, not true or false"
        )
        return False


def compile_where(text: str | None, *, saved: Mapping[str, str], names: Collection[str]) -> Where | None:
    """None without --where; else the expression (saved or given), compiled."""
    if text is None:
        return None
    source = resolve_saved(text, saved)
    if not source.strip():
        raise UsageError(
            "--where needs an expression", hint="e.g. --where 'error.class.endsWith(\"Timeout\")'"
        )
    return Where(source, names)


def _compile_message(message: str, source: str) -> str:
    found = _POSITION.search(message)
    if not found:
        return message.splitlines()[0] if message else "not a valid expression"
    line, column, what = found.groups()
    where = f"column {column}" if line == "1" else f"line {line} column {column}"
    return f"{what.strip()} at {where}: {source!r}"


def _bound_names(source: str) -> set[str]:
    """Names a comprehension macro binds (`x` in `list.exists(x, x > 1)`): the library
    reports them as variables too."""
    return set(re.findall(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,", source))


def _column_of(source: str, name: str) -> int:
    found = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", source)
    return found.start() + 1 if found else 1


def _eval_message(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no key {exc.args[0]!r}" if exc.args else "no such key"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    undefined = _UNDEFINED.search(text)
    if undefined:
        return f"no field {undefined.group(1)!r}"
    if text.startswith("No such overload"):
        return "no such overload (a type mismatch: CEL does not convert between types)"
    return text[:200]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
