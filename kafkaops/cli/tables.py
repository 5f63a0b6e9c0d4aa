"""How a table looks to a person: rich on a terminal, plain aligned text when piped.

Cells arrive as safe text (control characters already escaped) and are handed to rich as
`Text`, never as markup, so `[/bold]` or `[casino.loyalty.v1]` in data shows as written. On a
narrow terminal, error text and other text give way first (ellipsis at the end), topics last
and cut in the middle (`casino.game…completed.v1`: rows of one prefix stay told apart); ids,
statuses, counts and times are never cut: when even they do not fit, the table is wider than
the terminal.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from kafkaops.cli.fields import EXISTS_STYLES, STATUS_STYLES, Field

if TYPE_CHECKING:
    from rich.console import Console

GAP = 2  # between columns
# Which columns give way, in order, and how far: error text first, then other text, topics last.
SHRINK_STEPS = (
    ("long", 20),
    ("text", 16),
    ("long", 10),
    ("text", 8),
    ("topic", 20),
    ("long", 6),
    ("topic", 12),
)


def cell_width(text: str) -> int:
    """Terminal cells: wide (CJK) characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def fit_widths(widths: Sequence[int], roles: Sequence[str], available: int) -> list[int]:
    """Column widths within `available` cells, shrinking only `long`, `text` and `topic` columns."""
    fitted = list(widths)
    excess = sum(fitted) + GAP * (len(fitted) - 1) - available
    for role, floor in SHRINK_STEPS:
        for i, col_role in enumerate(roles):
            if excess <= 0:
                return fitted
            if col_role == role and fitted[i] > floor:
                cut = min(fitted[i] - floor, excess)
                fitted[i] -= cut
                excess -= cut
    return fitted


def _widths(fields: Sequence[Field], cells: list[list[str]], floor: Sequence[int] | None) -> list[int]:
    """Each column's natural width: its title, its cells, and no less than `floor` (the widths
    of the blocks already shown)."""
    widths = [max(cell_width(f.title), *(cell_width(row[i]) for row in cells)) for i, f in enumerate(fields)]
    return [max(w, f) for w, f in zip(widths, floor, strict=True)] if floor else widths


def render_terminal(
    stdout: TextIO,
    fields: Sequence[Field],
    cells: list[list[str]],
    roles: Sequence[str],
    *,
    floor: Sequence[int] | None = None,
) -> list[int]:
    """Columns fitted to the terminal, cut with an ellipsis where they give way, the header bold
    and statuses in colour. Built as one rich `Text` (never markup): rich decides whether and
    how the terminal takes colour (`NO_COLOR`, `TERM=dumb`).

    `floor`: the natural widths of the blocks of rows already shown; the header is only shown
    with the first block. Returns the natural widths, for the next block."""
    from rich.text import Text

    widths = _widths(fields, cells, floor)
    available = _console(stdout).width
    fitted = fit_widths(widths, roles, available)
    needed = sum(fitted) + GAP * (len(fitted) - 1)
    console = _console(stdout, width=max(available, needed))
    screen = Text()
    gap = " " * GAP
    header = [] if floor else [[f.title for f in fields]]
    for n, row in enumerate([*header, *cells]):
        title = n == 0 and bool(header)
        for i, (cell, width, role) in enumerate(zip(row, fitted, roles, strict=True)):
            last = i == len(row) - 1
            styles = STATUS_STYLES if role == "status" else EXISTS_STYLES if role == "exists" else {}
            style = "bold" if title else styles.get(cell)
            fitted_cell = (
                _elide_middle(cell, width, pad=not last)
                if role == "topic" and not title
                else _fit(cell, width, right=role == "int", pad=not last)
            )
            screen.append(fitted_cell, style)
            if not last:
                screen.append(gap, "bold" if title else None)
        screen.append("\n")
    console.print(screen, soft_wrap=True, end="")
    return widths


def _fit(text: str, width: int, *, right: bool, pad: bool) -> str:
    """`text` in exactly `width` cells: cut with an ellipsis, or padded (unless last)."""
    used = cell_width(text)
    if used > width:
        kept, used = [], 0
        for char in text:
            char_width = cell_width(char)
            if used + char_width > width - 1:
                break
            kept.append(char)
            used += char_width
        text = "".join(kept) + "…"
        used += 1
    fill = " " * (width - used)
    if right:
        return fill + text
    return text + fill if pad else text


def _elide_middle(text: str, width: int, *, pad: bool) -> str:
    """`text` in exactly `width` cells, its middle replaced by an ellipsis when too long: a topic
    keeps its domain and its version (`casino.game…completed.v1`)."""
    used = cell_width(text)
    if used <= width:
        return text + " " * (width - used) if pad else text
    tail_room = (width - 1) // 2
    head_room = width - 1 - tail_room
    head = _take(text, head_room)
    tail = _take(text[::-1], tail_room)[::-1]
    shown = head + "…" + tail
    return shown + " " * (width - cell_width(shown)) if pad else shown


def _take(text: str, room: int) -> str:
    kept, used = [], 0
    for char in text:
        if used + cell_width(char) > room:
            break
        kept.append(char)
        used += cell_width(char)
    return "".join(kept)


def render_plain(
    fields: Sequence[Field],
    cells: list[list[str]],
    roles: Sequence[str],
    *,
    floor: Sequence[int] | None = None,
) -> tuple[str, list[int]]:
    """Aligned columns, nothing cut, no colour, the last column not padded; the header only with
    the first block (`floor` None). Returns the text and the widths, for the next block."""
    widths = _widths(fields, cells, floor)
    lines = []
    for row in [[f.title for f in fields], *cells] if not floor else cells:
        parts = []
        for i, text in enumerate(row):
            pad = " " * (widths[i] - cell_width(text))
            if roles[i] == "int":
                parts.append(pad + text)
            else:
                parts.append(text if i == len(row) - 1 else text + pad)
        line = (" " * GAP).join(parts)
        lines.append(line.rstrip(" ") if row[-1] == "" else line)
    return "\n".join(lines) + "\n", widths


def render_record(stdout: TextIO, pairs: Sequence[tuple[str, str]], *, terminal: bool) -> None:
    """Key/value lines; on a terminal the status is coloured, long values wrap instead of being cut."""
    width = max((cell_width(k) for k, _ in pairs), default=0)
    if not terminal:
        stdout.write("".join(f"{k}{' ' * (width - cell_width(k))}  {v}\n" for k, v in pairs))
        return
    from rich.text import Text

    console = _console(stdout)
    for key, value in pairs:
        line = Text()
        line.append(f"{key}{' ' * (width - cell_width(key))}  ", style="bold")
        line.append(value, style=STATUS_STYLES.get(value, "") if key == "status" else "")
        console.print(line, soft_wrap=True)


def _console(stdout: TextIO, width: int | None = None) -> Console:
    from rich.console import Console

    return Console(file=stdout, width=width, soft_wrap=False, markup=False, highlight=False, emoji=False)
