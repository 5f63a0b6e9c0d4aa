"""Files kafkaops writes beside paths it was given: never through a symbolic link, never in a
folder others can write to when the file decides what kafkaops does (the status state), and
never over a file that is already there (`demo`/`sandbox --keep`)."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kafkaops.common.errors import ConfigError, UsageError
from kafkaops.common.filelock import open_nofollow
from kafkaops.demo import story as demo
from kafkaops.demo.service import FakeService
from kafkaops.status.statefile import state_path
from tests.helpers.config import write_config
from tests.helpers.process import run_kafkaops


@pytest.fixture
def service() -> Iterator[FakeService]:
    with FakeService().healthy() as running:
        yield running


# -- the helper ---------------------------------------------------------------------------------


def test_a_link_is_refused_and_its_target_is_not_created(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    link = tmp_path / "file.lock"
    link.symlink_to(target)
    with pytest.raises(ConfigError) as refused:
        open_nofollow(link, os.O_RDWR | os.O_CREAT)
    assert refused.value.message == (
        f"{link} is a symbolic link: kafkaops does not write through links, and created nothing"
    )
    assert not target.exists()


# -- retry --metrics-file -------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_link_at_the_metrics_lock_is_refused_before_the_pass(make_database, tmp_path: Path) -> None:
    """A link planted at `.kafkaops.prom.lock` in a shared textfile folder made a root cron job
    create the link's target."""
    db = make_database("sqlite")
    db.init()
    config = write_config(tmp_path / "kafkaops.yaml", db, kafka={"bootstrap.servers": "127.0.0.1:1"})
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    target = tmp_path / "etc-cron.d-evil"
    (textfiles / ".kafkaops.prom.lock").symlink_to(target)
    done = run_kafkaops(
        "retry", "--metrics-file", str(textfiles / "kafkaops.prom"), config=config, timeout=50
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == (
        f"Error: {textfiles}/.kafkaops.prom.lock is a symbolic link: kafkaops does not write through "
        "links, and created nothing"
    )
    assert not target.exists()
    assert sorted(p.name for p in textfiles.iterdir()) == [".kafkaops.prom.lock"]


def plant_link_at_prometheus_client_temp_name(path: Path, target: Path) -> None:
    """prometheus_client's `write_to_textfile` first writes `PATH.PID.TID`: a name anyone can
    guess, and a link planted there was followed."""
    (path.parent / f"{path.name}.{os.getpid()}.{threading.current_thread().ident}").symlink_to(target)


def test_retry_metrics_file_is_written_without_a_guessable_temp_name(tmp_path: Path) -> None:
    from kafkaops.retry.job import PassSummary
    from kafkaops.retry.metrics import write_textfile

    path, target = tmp_path / "kafkaops.prom", tmp_path / "victim"
    plant_link_at_prometheus_client_temp_name(path, target)
    write_textfile(str(path), PassSummary(resolved=2))
    assert not target.exists()
    assert 'kafkaops_retry_events{outcome="resolved"} 2.0' in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o644  # node_exporter may run as a user of its own


def test_status_metrics_file_is_written_without_a_guessable_temp_name(
    tmp_path: Path, service: FakeService, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, target = tmp_path / "status.prom", tmp_path / "victim"
    plant_link_at_prometheus_client_temp_name(path, target)
    config = write_config(tmp_path / "kafkaops.yaml", app={"instances": [service.url]})
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(config))
    result = cli("status", "-o", "prometheus", "--metrics-file", str(path))
    assert result.exit_code == 0, result.stderr
    assert not target.exists()
    assert "kafkaops_status " in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o644


# -- the status state ------------------------------------------------------------------------------


def run_status(tmp_path: Path, service: FakeService, state_dir: Path) -> subprocess.CompletedProcess[str]:
    config = write_config(
        tmp_path / "kafkaops.yaml", app={"instances": [service.url]}, status={"state_dir": str(state_dir)}
    )
    return run_kafkaops("status", config=config, timeout=50)


@pytest.mark.slow
def test_a_new_state_folder_is_made_private(tmp_path: Path, service: FakeService) -> None:
    state_dir = tmp_path / "state"
    done = run_status(tmp_path, service, state_dir)
    assert done.returncode == 0, done.stderr
    assert state_dir.stat().st_mode & 0o777 == 0o700
    assert state_path(state_dir, "test").is_file()


@pytest.mark.parametrize("mode", [0o1777, 0o775, 0o757])
@pytest.mark.slow
def test_a_state_folder_others_can_write_is_refused(tmp_path: Path, service: FakeService, mode: int) -> None:
    """Whoever can write the state file can mute an alert (a fingerprint marked as sent)."""
    state_dir = tmp_path / "shared"
    state_dir.mkdir()
    state_dir.chmod(mode)
    done = run_status(tmp_path, service, state_dir)
    assert done.returncode == 3, done.stderr  # status: UNKNOWN, it cannot judge
    assert done.stderr.splitlines()[0] == (
        f"Error: state folder {state_dir} can be written by others (mode {mode:04o}): refused, "
        "whoever can write it can change what kafkaops does"
    )
    assert list(state_dir.iterdir()) == []  # nothing read, nothing written


@pytest.mark.parametrize("kind", ["group-writable", "link"])
@pytest.mark.slow
def test_a_state_file_others_could_have_written_is_refused(
    tmp_path: Path, service: FakeService, kind: str
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    path = state_path(state_dir, "test")
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"version": 1, "breakers_open_since": {}}')
    if kind == "link":
        path.symlink_to(elsewhere)
        why = "is a symbolic link"
    else:
        path.write_text(elsewhere.read_text())
        path.chmod(0o664)
        why = "can be written by others (mode 0664)"
    done = run_status(tmp_path, service, state_dir)
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines()[0] == (
        f"Error: state file {path} {why}: refused, whoever can write it can change what kafkaops does"
    )
    assert elsewhere.read_text() == '{"version": 1, "breakers_open_since": {}}'


@pytest.mark.slow
def test_a_link_at_the_state_lock_is_refused(tmp_path: Path, service: FakeService) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    target = tmp_path / "victim"
    state_path(state_dir, "test").with_suffix(".json.lock").symlink_to(target)
    done = run_status(tmp_path, service, state_dir)
    assert done.returncode == 3, done.stderr
    assert "is a symbolic link: kafkaops does not write through links" in done.stderr.splitlines()[0]
    assert not target.exists()


# -- demo and sandbox --keep ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [demo.CONFIG_FILE, demo.DATABASE_FILE])
@pytest.mark.parametrize("kind", ["file", "link"])
def test_keep_never_overwrites_a_file_already_there(tmp_path: Path, name: str, kind: str) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    mine = tmp_path / "my-own-file"
    mine.write_text("mine")
    if kind == "link":
        (keep / name).symlink_to(mine)
    else:
        (keep / name).write_text("mine")
    with pytest.raises(UsageError) as refused, demo.demo_environment(keep=keep):
        pass
    assert refused.value.message == (f"--keep {keep} already holds {name}: the demo never overwrites a file")
    assert mine.read_text() == "mine"
    assert sorted(p.name for p in keep.iterdir()) == [name]  # the other file was not made either


def test_sandbox_keep_over_a_link_is_one_line_and_exit_2(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    mine = tmp_path / "authorized_keys"
    mine.write_text("ssh-ed25519 AAAA me\n")
    (keep / "kafkaops.yaml").symlink_to(mine)
    done = run_kafkaops("sandbox", "--keep", str(keep), stdin=subprocess.DEVNULL, timeout=50)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines()[0] == (
        f"Error: --keep {keep} already holds kafkaops.yaml: the demo never overwrites a file"
    )
    assert mine.read_text() == "ssh-ed25519 AAAA me\n"


@pytest.mark.slow
def test_keep_in_a_new_folder_writes_private_files(tmp_path: Path, monkeypatch: Any) -> None:
    keep = tmp_path / "new"
    with demo.demo_environment(keep=keep) as env:
        assert env.config_file.read_text().startswith("# kafkaops demo")
    assert (keep / demo.CONFIG_FILE).stat().st_mode & 0o077 == 0
    assert (keep / demo.DATABASE_FILE).stat().st_size > 0
