"""Help text and docs stay honest: every command documents itself and is described in
docs/commands.md, the generated reference matches --help, the README's links resolve, and
docs/output.md names exactly the formats each command takes."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import click
import pytest
import typer

from kafkaops.cli.main import app

# The checkout's root, wherever in tests/ this file lives.
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()
COMMANDS_PAGE = (DOCS / "commands.md").read_text()
OUTPUT_PAGE = (DOCS / "output.md").read_text()


def commands() -> list[tuple[str, click.Command]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, click.Command]] = []

    def walk(prefix: str, command: click.Command) -> None:
        found.append((prefix, command))
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}", sub)

    walk("kafkaops", root)
    return found


@pytest.mark.parametrize(("name", "command"), commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_is_in_the_commands_guide(name: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"{name} has no help text"
    if name != "kafkaops":
        assert f"`{name}" in COMMANDS_PAGE, f"{name} is not described in docs/commands.md"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} {param.opts[0]} has no help text"
            # --help adds the default itself: a help text that says it too shows it twice.
            if param.show_default is not False and not param.is_flag and param.default is not None:
                assert "[default:" not in param.help, f"{name} {param.opts[0]} states its default twice"


def test_readme_opens_with_the_two_commands_and_the_status_picture() -> None:
    first_screen = "\n".join(README.splitlines()[:40])
    assert "make run" in first_screen
    assert "make test" in first_screen
    assert "](docs/status.svg)" in first_screen


def test_the_readme_is_a_front_door() -> None:
    """The runbook's problems, install and links; reference and history live under docs/."""
    assert len(README.splitlines()) <= 250, "README.md is growing past a front door: move reference to docs/"
    assert "\n## When something is wrong\n" in README


def runnable() -> set[str]:
    """Every command a user runs: leaves, and groups that act without a subcommand (`failed`)."""
    return {
        name
        for name, command in commands()
        if name != "kafkaops" and (not isinstance(command, click.Group) or command.invoke_without_command)
    }


def commands_table() -> set[str]:
    """The command paths of docs/commands.md's table, arguments (ID, NAME) left out."""
    found: set[str] = set()
    for line in COMMANDS_PAGE.splitlines():
        if not line.startswith("| `kafkaops"):
            continue
        words = line.split("`")[1].split()
        found.add(" ".join(w for w in words if w.islower() and not w.startswith("-")))
    return found


def test_the_command_table_lists_exactly_the_commands_of_help() -> None:
    table = commands_table()
    assert table, "docs/commands.md has no command table"
    assert sorted(runnable() - table) == [], "commands missing from docs/commands.md's table"
    assert sorted(table - runnable()) == [], "docs/commands.md's table lists commands kafkaops does not have"


@pytest.mark.parametrize(("name", "command"), commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_option_with_a_default_states_it(name: str, command: click.Command) -> None:
    ctx = click.Context(command, info_name=name)
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        default = param.get_default(ctx, call=False)
        if default in (None, False, (), []) or param.name in ("help", "version"):
            continue
        record = param.get_help_record(ctx)
        assert record is not None and "default" in record[1], (
            f"{name} {param.opts[0]}: default {default!r} not stated"
        )


# --- the generated reference ------------------------------------------------------------------


def make_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_reference", ROOT / "scripts" / "make_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_is_every_commands_help_as_generated() -> None:
    expected = make_reference().render()
    actual = (DOCS / "reference.md").read_text()
    assert actual == expected, "docs/reference.md is out of step with --help: run `make docs`"


def test_the_reference_has_a_section_per_command() -> None:
    reference = (DOCS / "reference.md").read_text()
    sections = set(re.findall(r"^## `(kafkaops[^`]*)`$", reference, flags=re.MULTILINE))
    assert sections == {name for name, _ in commands()}


# --- -o formats -------------------------------------------------------------------------------


def output_formats() -> dict[str, list[str]]:
    """The formats each command's -o takes, as click will check them."""
    found: dict[str, list[str]] = {}
    for name, command in commands():
        for param in command.params:
            if isinstance(param, click.Option) and "--output" in param.opts and not param.hidden:
                assert isinstance(param.type, click.Choice), f"{name} -o is not a choice"
                found[name] = list(param.type.choices)
    return found


def output_table() -> dict[str, list[str]]:
    """docs/output.md's table: command paths (first cell) -> formats (second cell)."""
    found: dict[str, list[str]] = {}
    for line in OUTPUT_PAGE.splitlines():
        if not line.startswith("| `kafkaops"):
            continue
        first, second = line.strip("|").split("|")[:2]
        for name in re.findall(r"`([^`]+)`", first):
            found[name] = re.findall(r"`([^`]+)`", second)
    return found


def test_the_output_page_names_exactly_the_formats_each_command_takes() -> None:
    assert output_table() == output_formats()


# --- links ------------------------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.+)$", prose(page.read_text()), flags=re.MULTILINE)}


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def local_links(page: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(prose(page.read_text()))
        if not re.match(r"^[a-z]+:", target)  # http(s), mailto: not checked here
    ]


PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_resolves(page: Path) -> None:
    for target in local_links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name} links {target}: no such file"
        if anchor:
            assert resolved.suffix == ".md", (
                f"{page.name} links {target}: an anchor in a file that is no page"
            )
            assert anchor in anchors(resolved), f"{page.name} links {target}: no such heading"


def test_the_readme_links_every_docs_page() -> None:
    linked = {
        (ROOT / target.partition("#")[0]).resolve()
        for target in local_links(ROOT / "README.md")
        if target.startswith("docs/") and ".md" in target
    }
    pages = {page.resolve() for page in DOCS.glob("*.md")}
    assert pages, "no pages under docs/"
    assert sorted(map(str, pages - linked)) == [], "docs pages the README does not link"


def test_the_link_checker_finds_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n[ok](a.md#title) [bad](b.md) [gone](a.md#nowhere)\n")
    page = tmp_path / "a.md"
    assert local_links(page) == ["a.md#title", "b.md", "a.md#nowhere"]
    assert "title" in anchors(page) and "nowhere" not in anchors(page)


# --- the repository ---------------------------------------------------------------------------


def test_gitignore_ignores_no_tracked_file() -> None:
    """A tracked file (the pictures in docs/) that .gitignore matches would be left out of a
    fresh `make pictures` commit; `git ls-files -ci` lists such files."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(
        ["git", "ls-files", "--cached", "--ignored", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert result.stdout.split() == []
