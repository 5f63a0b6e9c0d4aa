"""`make pictures`: the SVGs under docs/, from real runs of kafkaops on the demo's environment.

Each command runs in a pseudo-terminal (so kafkaops draws what a person sees: colour, rich
tables, a progress bar), a terminal emulator (pyte) keeps the final screen, and rich exports
that screen as SVG. Nothing is drawn by hand: rerun it after a change to the output.
"""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
COLUMNS, ROWS = 118, 40

PYTE_COLORS = {"brown": "yellow", "default": None}


def run_in_terminal(argv: list[str], env: dict[str, str], *, until: float | None = None) -> str:
    """The raw bytes kafkaops wrote to a terminal of COLUMNS x ROWS, as text; with `until`, only
    what it had written that many seconds after it started (a progress bar, mid-run)."""
    leader, follower = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    child_env = {**env, "COLUMNS": str(COLUMNS), "LINES": str(ROWS), "TERM": "xterm-256color"}
    child_env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kafkaops", *argv],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=child_env,
        close_fds=True,
    )
    os.close(follower)
    import time

    started = time.monotonic()
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            proc.kill()
            raise RuntimeError(f"kafkaops {' '.join(argv)} wrote nothing for 60 s")
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        if until is None or time.monotonic() - started < until:
            chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def save_svg(title: str, command: str, raw: str, path: Path) -> None:
    """Replay `raw` on an emulated terminal and save its final screen, prompt first, as SVG."""
    import pyte
    from rich.console import Console
    from rich.style import Style
    from rich.text import Text

    screen = pyte.Screen(COLUMNS, 2000)
    stream = pyte.Stream(screen)
    stream.feed(f"\x1b[1;36m$ {command}\x1b[0m\r\n" + raw.replace("\r\n", "\n").replace("\n", "\r\n"))
    last = max(
        (y for y in range(screen.lines) if "".join(c.data for c in screen.buffer[y].values()).strip()),
        default=0,
    )
    console = Console(
        record=True, width=COLUMNS, force_terminal=True, color_system="truecolor", file=io.StringIO()
    )
    for y in range(last + 1):
        line = Text()
        row = screen.buffer[y]
        for x in range(COLUMNS):
            char = row[x]
            fg = PYTE_COLORS.get(char.fg, char.fg)
            if fg and len(fg) == 6 and all(c in "0123456789abcdef" for c in fg.lower()):
                fg = f"#{fg}"
            line.append(
                char.data, Style(color=fg, bold=char.bold, italic=char.italics, underline=char.underscore)
            )
        line.rstrip()
        console.print(line)
    console.save_svg(str(path), title=title)


def main() -> int:
    from kafkaops.demo import story as demo

    DOCS.mkdir(exist_ok=True)
    with demo.demo_environment() as environment:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")} | environment.env()
        refused_dlq = f"{demo.REFUSED_TOPIC}.dlq"
        shots = [
            ("kafkaops status", ["status"], "status.svg"),
            (
                "kafkaops failed --group-by error_signature",
                ["failed", "--group-by", "error_signature"],
                "failed-error-signature.svg",
            ),
            ("kafkaops retry", ["retry"], None),
            ("kafkaops dlq list", ["dlq", "list"], "dlq-list.svg"),
            # Paced, so that the picture catches the progress bar on its way.
            (
                f"kafkaops dlq replay {refused_dlq} --yes --rate 60",
                ["dlq", "replay", refused_dlq, "--yes", "--rate", "60"],
                "dlq-replay.svg",
            ),
        ]
        for command, argv, name in shots:
            replay = argv[:2] == ["dlq", "replay"]
            if replay:
                demo.raise_message_limit(environment.cluster)  # the topic takes its records again
            raw = run_in_terminal(argv, env, until=3.0 if replay else None)
            if name is not None:
                save_svg(command, command, raw, DOCS / name)
                print(f"docs/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
