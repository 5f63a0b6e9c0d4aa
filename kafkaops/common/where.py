"""`--where EXPR`: one CEL expression that chooses DLQ records and failed rows.

Compiled once (a bad expression is a UsageError naming its line and column), then asked of
one record model at a time: a record it cannot be evaluated on (a missing field, a type
error, a result that is not true or false) is not selected, and counted. Saved filters
(`filters: {name: expr}` of the context) are named `@name`. CEL has no I/O, no loops beyond
its bounded macros and no way to call Python: it is safe to run on whatever a record holds.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
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
    what = re.sub(r"\s*expecting \{.*\}", "", what)  # ANTLR's list of every token it could take
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


def unwrap(term: str) -> str:
    """A term without the parentheses around all of it."""
    term = term.strip()
    while term.startswith("(") and term.endswith(")") and _depth_ok(term[1:-1]):
        term = term[1:-1].strip()
    return term


def _depth_ok(text: str) -> bool:
    depth = 0
    for ch, in_string in _scan(text):
        if in_string:
            continue
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def _scan(text: str) -> Iterator[tuple[str, bool]]:
    """Each character and whether it is inside a string literal."""
    quote = ""
    escaped = False
    for ch in text:
        if quote:
            yield ch, True
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            yield ch, True
        else:
            yield ch, False


def conjuncts(source: str) -> list[str] | None:
    """The terms joined by `&&` at the top level; None when `||` or `?:` joins anything there
    (then no term alone is necessary)."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    chars = list(_scan(source))
    i = 0
    while i < len(chars):
        ch, in_string = chars[i]
        nxt = chars[i + 1][0] if i + 1 < len(chars) else ""
        if not in_string:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            elif depth == 0 and ch == "&" and nxt == "&":
                terms.append("".join(current))
                current = []
                i += 2
                continue
            elif depth == 0 and ((ch == "|" and nxt == "|") or ch == "?"):
                return None
        current.append(ch)
        i += 1
    terms.append("".join(current))
    return terms


_HEADER_LOOKUP = re.compile(r'(?<![\w.])headers\s*\[\s*"((?:[^"\\]|\\.)*)"\s*\]')
_HEADER_IN = re.compile(r'"((?:[^"\\]|\\.)*)"\s+in\s+headers(?!\w)')
_HEADER_NAME = re.compile(r"(?<![\w.])headers(?!\w)")
_HEADER_EQUALS = re.compile(r'^headers\s*\[\s*"([^"\\]*)"\s*\]\s*==\s*"([^"\\]*)"$')


def header_names_read(source: str) -> frozenset[str] | None:
    """The header names an expression can look at, when it only ever names them literally
    (`headers["x"]`, `"x" in headers`); None when it may look at any (`headers.size()`)."""
    looked = [m.group(1) for m in _HEADER_LOOKUP.finditer(source)]
    tested = [m.group(1) for m in _HEADER_IN.finditer(source)]
    if len(looked) + len(tested) != len(_HEADER_NAME.findall(source)) or any(
        "\\" in n for n in looked + tested
    ):
        return None
    return frozenset(looked + tested)


def header_equalities(source: str) -> tuple[tuple[str, str], ...]:
    """The top-level `&&` terms `headers["x"] == "text"` (no escapes): a record whose header x
    holds other text cannot be selected (CEL's `&&` is false when one side is false)."""
    terms = conjuncts(source) or []
    found = [_HEADER_EQUALS.match(unwrap(t)) for t in terms]
    return tuple((m.group(1), m.group(2)) for m in found if m)
