"""Every `console` block of the README, run as printed in `kafkaops sandbox`.

The blocks run in the README's order, one shell each, on one sandbox, through the `export`
lines the sandbox printed (so `kafkaops` is found on the PATH they set). Each command's exit
code and headings must be the README's: the exit code its output implies (a `status` verdict:
0-3; anything else: 0), its first line, its table headers and its `Label:` lines. Figures and
times are the sandbox's own and are not compared.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.process import start_kafkaops

ROOT = Path(__file__).resolve().parents[2]
VERDICTS = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
PROMPTED = "[y/N]: y"


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        first = self.expected[0].split() if self.expected else []
        if len(first) >= 2 and first[0] == "KAFKAOPS":
            return VERDICTS[first[1]]
        return 0

    @property
    def answers_prompt(self) -> bool:
        return any(PROMPTED in line for line in self.expected)


def console_blocks(text: str) -> list[list[Command]]:
    blocks: list[list[Command]] = []
    for body in re.findall(r"^```console\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        commands: list[Command] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                commands.append(Command(line[2:]))
            elif commands and line.strip() and line.strip() != "...":
                commands[-1].expected.append(line)
        blocks.append(commands)
    return blocks


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _is_header(line: str) -> bool:
    cells = _cells(line)
    return len(cells) >= 2 and all(re.fullmatch(r"[A-Za-z_]+( [A-Za-z_]+)*", c) for c in cells)


def headings(lines: list[str]) -> set[tuple[str, ...]]:
    """What a command's output must show whatever the data: its first line (a table's header
    whole, else its first two words), every table header and every `Label:` line's label."""
    found: set[tuple[str, ...]] = set()
    if lines:
        first = lines[0]
        found.add(("first", *(_cells(first) if _is_header(first) else first.split()[:2])))
    for line in lines:
        if _is_header(line) and line.upper() == line:
            found.add(("header", *_cells(line)))
        label = re.match(r"([A-Za-z]+:)(\s|$)", line)
        if label:
            found.add(("label", label.group(1)))
    return found


def run(exports: str, command: Command, cwd: Path) -> tuple[int, list[str]]:
    """The command in a shell that ran the export lines; with a terminal on stdin answering
    `y` when the README shows the confirmation prompt answered."""
    script = exports + command.line + "\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env["NO_COLOR"] = "1"
    env["PATH"] = "/usr/bin:/bin"  # only the export line can find kafkaops
    if command.answers_prompt:
        master, slave = os.openpty()
        os.write(master, b"y\n")
        try:
            done = subprocess.run(
                ["bash", "-c", script],
                stdin=slave,
                capture_output=True,
                text=True,
                env=env,
                cwd=cwd,
                timeout=120,
            )
        finally:
            os.close(slave)
            os.close(master)
    else:
        done = subprocess.run(
            ["bash", "-c", script],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=120,
        )
    out = [line for line in done.stdout.splitlines() if line.strip()]
    err = [line for line in done.stderr.splitlines() if line.strip()]
    return done.returncode, out + err if out else err + out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_console_block_of_the_readme_runs_as_printed_in_the_sandbox(tmp_path: Path) -> None:
    blocks = console_blocks((ROOT / "README.md").read_text())
    assert blocks, "the README has no console blocks"
    proc = start_kafkaops("sandbox", stdin=None)
    try:
        assert proc.stdout is not None
        # Read from the descriptor itself: a line buffered in the file object is invisible to select.
        raw = b""
        while b"export PATH=" not in raw or not raw.endswith(b"\n"):
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
            assert chunk, f"the sandbox printed no `export PATH=` line, only:\n{raw.decode()}"
            raw += chunk
        exports = raw.decode()
        assert all(line.startswith("export ") for line in exports.splitlines()), exports
        problems: list[str] = []
        for commands in blocks:
            for command in commands:
                code, output = run(exports, command, tmp_path)
                if code != command.exit_code:
                    problems.append(f"$ {command.line}: exit {code}, README implies {command.exit_code}")
                missing = headings(command.expected) - headings(output)
                if missing:
                    problems.append(
                        f"$ {command.line}: missing {sorted(missing)} in:\n" + "\n".join(output[:12])
                    )
        assert not problems, "\n".join(problems)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
