"""Shell completion: option values, format names and context names, without importing the heavy
modules a command needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.config import write_config


def _complete(words: str, env_extra: dict[str, str], cwd: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env.update(env_extra)
    env.update(
        {
            "_KAFKAOPS_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1),
        }
    )
    exe = Path(sys.executable).parent / "kafkaops"
    result = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=30, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


@pytest.mark.slow
def test_completion_offers_values_and_context_names(tmp_path: Path) -> None:
    config = tmp_path / "kafkaops.yaml"
    write_config(
        config,
        text="current-context: local\ncontexts:\n  local:\n    database: {url: 'sqlite:///x'}\n  prod-eu:\n    {}\n",
    )
    assert _complete("kafkaops failed --group-by er", {}, tmp_path) == ["error_type", "error_signature"]
    assert _complete("kafkaops failed list --status DLQ,P", {}, tmp_path) == ["DLQ,PENDING", "DLQ,PARKED"]
    assert _complete("kafkaops failed purge --status ", {}, tmp_path) == ["RESOLVED", "DLQ", "PARKED"]
    assert _complete("kafkaops failed show 1 -o j", {}, tmp_path) == ["json", "jsonl"]
    assert _complete("kafkaops --context ", {}, tmp_path) == ["local", "prod-eu"]
    assert _complete("kafkaops failed list --context p", {}, tmp_path) == ["prod-eu"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _complete("kafkaops --context ", {"XDG_CONFIG_HOME": str(empty)}, empty) == []


@pytest.mark.parametrize(
    "words",
    ["kafkaops retry -o ", "kafkaops db check --output ", "kafkaops config show -o ", "kafkaops failed -o "],
)
@pytest.mark.slow
def test_every_output_option_completes_its_formats(words: str, tmp_path: Path) -> None:
    assert _complete(words, {}, tmp_path) == ["table", "json", "jsonl", "yaml", "csv", "tsv"]


def test_context_completion_imports_no_heavy_module(tmp_path: Path) -> None:
    write_config(tmp_path / "kafkaops.yaml", text="contexts:\n  a: {}\n  'b c': {}\n")
    code = (
        "import sys; from kafkaops.cli.completion import complete_contexts; import click;"
        "ctx = click.Context(click.Command('x'));"
        "print(complete_contexts(ctx, ''));"
        "print(sorted(m for m in ('yaml', 'sqlalchemy', 'rich', 'confluent_kafka') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=30
    )
    assert result.stdout.splitlines() == ["['a', 'b c']", "[]"], result.stderr
