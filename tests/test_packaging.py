"""The package as another team gets it: a wheel and an sdist that install into a fresh virtual
environment and run, and shell completions that match the CLI."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return out


@pytest.mark.timeout(600)
@pytest.mark.packaging
def test_the_wheel_installs_into_a_fresh_environment_and_runs(dist: Path, tmp_path: Path) -> None:
    wheel = next(dist.glob("kafkaops-*.whl"))
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    subprocess.run(
        [str(env / "bin" / "pip"), "install", "-q", str(wheel)], check=True, capture_output=True, timeout=480
    )
    exe = str(env / "bin" / "kafkaops")

    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0, version.stderr
    import confluent_kafka

    from kafkaops import __version__

    assert version.stdout.strip() == (
        f"kafkaops {__version__} (confluent-kafka {confluent_kafka.version()}, "
        f"librdkafka {confluent_kafka.libversion()[0]})"
    )
    helped = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "failed" in helped.stdout and "retry" in helped.stdout
    demo = subprocess.run([exe, "demo", "--help"], capture_output=True, text=True, timeout=60)
    assert demo.returncode == 0, demo.stderr
    assert "Walk through the runbook" in demo.stdout
    # The installed tool runs from the environment, not from this checkout.
    where = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import kafkaops; print(kafkaops.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert str(env) in where.stdout


@pytest.mark.packaging
def test_the_wheel_carries_the_package_its_metadata_and_license(dist: Path) -> None:
    wheel = next(dist.glob("kafkaops-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "kafkaops/cli/main.py" in names
    assert "kafkaops/py.typed" in names
    assert not any(n.startswith("tests/") for n in names)
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata
    assert "Requires-Python: >=3.10" in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata
    assert "Requires-Dist: confluent-kafka" in metadata


@pytest.mark.packaging
def test_the_sdist_builds_the_same_package(dist: Path) -> None:
    sdist = next(dist.glob("kafkaops-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    root = names[0].split("/")[0]
    for expected in ("pyproject.toml", "README.md", "LICENSE", "kafkaops/cli/main.py"):
        assert f"{root}/{expected}" in names


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_committed_completions_are_current(shell: str) -> None:
    from typer.completion import get_completion_script

    current = get_completion_script(prog_name="kafkaops", complete_var="_KAFKAOPS_COMPLETE", shell=shell)
    committed = (ROOT / "completions" / f"kafkaops.{shell}").read_text()
    assert committed == current + "\n", f"completions/kafkaops.{shell} is stale: run make completions"
