"""Whose config file kafkaops reads: refused when others could have written it, code-loading
librdkafka properties only from the user's own file, the file named, its secrets warned of."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kafkaops.common.errors import ConfigError
from kafkaops.config.file import CODE_PROPERTIES, distrust
from kafkaops.config.settings import Overrides, load_settings
from tests.helpers.config import write_config
from tests.helpers.process import run_kafkaops

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
OTHER_UID = 65534  # nobody
HINT = (
    "Hint: a config file decides what kafkaops connects to and which code it loads; fix its owner or "
    "mode, or name your own file with --config"
)


def place(tmp_path: Path, origin: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file where the lookup finds it by `origin` (for --config: pass it)."""
    kafka = {"bootstrap.servers": "b:9092"}
    if origin == "--config":
        return write_config(tmp_path / "given.yaml", kafka=kafka)
    if origin == "$KAFKAOPS_CONFIG":
        path = write_config(tmp_path / "env.yaml", kafka=kafka)
        monkeypatch.setenv("KAFKAOPS_CONFIG", str(path))
        return path
    if origin == "the working directory":
        return write_config(tmp_path / "kafkaops.yaml", kafka=kafka)
    user = tmp_path / "xdg" / "kafkaops"  # conftest points XDG_CONFIG_HOME at tmp_path / "xdg"
    user.mkdir(parents=True)
    return write_config(user / "config.yaml", kafka=kafka)


ORIGINS = ["--config", "$KAFKAOPS_CONFIG", "the working directory", "the user config directory"]
PROBLEMS: list[tuple[int, int | None, str]] = [  # mode, owner (None: the test's user), reason
    (0o664, None, "is group-writable"),
    (0o646, None, "is world-writable"),
    (0o666, None, "is world-writable"),
    (0o644, OTHER_UID, "is owned by nobody (uid 65534), not by root (you)"),
]


@ROOT_ONLY
@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize(("mode", "owner", "reason"), PROBLEMS)
@pytest.mark.slow
def test_a_config_file_others_could_have_written_is_refused(
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    origin: str,
    mode: int,
    owner: int | None,
    reason: str,
) -> None:
    path = place(tmp_path, origin, monkeypatch)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner, -1)
    args = ["--config", str(path)] if origin == "--config" else []
    for command in (
        ["config", "show"],
        ["config", "contexts"],
        ["config", "use-context", "test"],
        ["dlq", "list"],
    ):
        result = cli(*args, *command)
        assert result.exit_code == 2, (command, result.stdout)
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"Error: config file {path} (from {origin}) {reason}: refused",
            HINT,
        ]


@ROOT_ONLY
def test_a_file_of_your_own_or_roots_that_only_you_can_write_is_read(cli: Any, tmp_path: Path) -> None:
    path = write_config(tmp_path / "k.yaml", kafka={"bootstrap.servers": "b:9092"})
    for mode in (0o600, 0o644, 0o640, 0o400):
        os.chmod(path, mode)
        shown = cli("--config", str(path), "config", "show", "-o", "json")
        assert shown.exit_code == 0, shown.stderr
        values = {row["key"]: row for row in json.loads(shown.stdout)}
        assert values["kafka.bootstrap.servers"]["value"] == "b:9092"


@pytest.mark.parametrize(
    ("mode", "owner", "uid", "reason"),
    [
        (0o644, 4000001, 4000001, None),
        (0o644, 0, 4000001, None),  # root's file: root can do anything as anyone anyway
        (0o600, 0, 0, None),
        (0o644, 4000002, 4000001, "is owned by uid 4000002, not by you (uid 4000001) or root"),
        (0o644, 4000001, 0, "is owned by uid 4000001, not by root (you)"),
        (0o620, 4000001, 4000001, "is group-writable"),
        (0o602, 0, 4000001, "is world-writable"),
        (0o1777, 4000001, 4000001, "is world-writable"),
    ],
)
def test_who_may_have_written_a_config_file(mode: int, owner: int, uid: int, reason: str | None) -> None:
    assert distrust(mode, owner, uid) == reason


# -- properties that load code or run commands -----------------------------------------------


@pytest.mark.parametrize("prop", sorted(CODE_PROPERTIES))
def test_code_loading_properties_are_taken_only_from_your_own_file(tmp_path: Path, prop: str) -> None:
    path = write_config(tmp_path / "k.yaml", kafka={"bootstrap.servers": "b:9092", prop: "./evil"})
    owner = path.stat().st_uid
    other = owner + 1000
    with pytest.raises(ConfigError) as refused:  # the file is root's (or the tester's), you are not
        load_settings(Overrides(config_path=str(path)), env={}, uid=other)
    if owner == 0:
        assert refused.value.message == (
            f"kafka property {prop} in config file {path} {CODE_PROPERTIES[prop]}, so it is taken only "
            f"from a file you own; {path} is owned by root (uid 0)"
        )
    # The same file is read by its owner, and the same property from your own environment.
    assert load_settings(Overrides(config_path=str(path)), env={}, uid=owner).kafka[prop] == "./evil"
    plain = write_config(tmp_path / "plain.yaml", kafka={"bootstrap.servers": "b:9092"})
    env = {f"KAFKAOPS_KAFKA_{prop.upper().replace('.', '_')}": "/opt/mine"}
    assert load_settings(Overrides(config_path=str(plain)), env=env, uid=other).kafka[prop] == "/opt/mine"


def test_data_properties_come_from_any_trusted_file(tmp_path: Path) -> None:
    kafka = {
        "bootstrap.servers": "b:9092",
        "sasl.oauthbearer.config": "principal=kafkaops",
        "ssl.ca.location": "/etc/ssl/ca.pem",
        "sasl.mechanisms": "GSSAPI",
        "sasl.kerberos.service.name": "kafka",
    }
    path = write_config(tmp_path / "k.yaml", kafka=kafka)
    settings = load_settings(Overrides(config_path=str(path)), env={}, uid=path.stat().st_uid + 1000)
    assert dict(settings.kafka) == kafka


def _evil_library(directory: Path) -> Path:
    """A shared library that leaves a mark when it is loaded."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the library")
    source = directory / "evil.c"
    source.write_text(
        "#include <stdio.h>\n#include <stdlib.h>\n"
        "__attribute__((constructor)) static void loaded(void) {\n"
        '  const char *mark = getenv("EVIL_MARK"); FILE *f = mark ? fopen(mark, "w") : NULL;\n'
        '  if (f) { fputs("loaded", f); fclose(f); }\n}\n'
    )
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(directory / "evil.so"), str(source)], check=True, timeout=60
    )
    return directory / "evil.so"


def _run(cwd: Path, *args: str, prefix: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    home = {"HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd / "xdg")}
    return run_kafkaops(*args, env={**home, **env}, prefix=prefix, cwd=cwd)


@ROOT_ONLY
@pytest.mark.slow
def test_a_hostile_kafkaops_yaml_in_the_working_directory_loads_no_code(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    _evil_library(shared)
    mark = tmp_path / "loaded"
    write_config(
        shared / "kafkaops.yaml",
        kafka={"bootstrap.servers": "127.0.0.1:1", "plugin.library.paths": "./evil.so"},
    )
    # The file as its owner wrote it: librdkafka does load the library (so the test can fail).
    own = _run(shared, "dlq", "list", EVIL_MARK=str(mark))
    assert own.returncode == 2 and mark.read_text() == "loaded", own.stderr
    mark.unlink()
    for mode, owner, reason in PROBLEMS:
        os.chmod(shared / "kafkaops.yaml", mode)
        os.chown(shared / "kafkaops.yaml", owner if owner is not None else 0, -1)
        hostile = _run(shared, "dlq", "list", EVIL_MARK=str(mark))
        assert hostile.returncode == 2
        assert hostile.stderr.splitlines()[0] == (
            f"Error: config file {shared / 'kafkaops.yaml'} (from the working directory) {reason}: refused"
        )
        assert not mark.exists()


@ROOT_ONLY
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to run as another user")
def test_a_user_running_with_roots_config_file_loads_no_code_from_it(tmp_path: Path) -> None:
    _evil_library(tmp_path)
    mark = tmp_path / "marks"
    mark.mkdir(mode=0o777)
    os.chmod(mark, 0o777)  # so that nobody could leave the mark
    config = write_config(
        tmp_path / "etc.yaml",
        kafka={"bootstrap.servers": "127.0.0.1:1", "plugin.library.paths": str(tmp_path / "evil.so")},
    )
    # As nobody; reading root's 0700 folders (Python itself lives under /root here) by capability.
    nobody = (
        "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search",
    )  # fmt: skip
    probe = subprocess.run([*nobody, "id", "-u"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or probe.stdout.strip() != "65534":
        pytest.skip(f"cannot run as another user here: {probe.stderr.strip()}")
    result = _run(tmp_path, "--config", str(config), "dlq", "list", prefix=nobody, EVIL_MARK=str(mark / "m"))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"Error: kafka property plugin.library.paths in config file {config} loads shared libraries, so it "
        f"is taken only from a file you own; {config} is owned by root (uid 0)"
    )
    assert not (mark / "m").exists()


# -- which file was read -----------------------------------------------------------------------


@pytest.mark.parametrize("origin", ORIGINS)
def test_config_show_heads_every_format_with_the_file_read(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, origin: str
) -> None:
    path = place(tmp_path, origin, monkeypatch)
    args = ["--config", str(path)] if origin == "--config" else []
    head = {"key": "config_file", "value": str(path), "source": f"from {origin}"}
    shown = cli(*args, "config", "show", "-o", "json")
    assert json.loads(shown.stdout)[0] == head
    assert yaml.safe_load(cli(*args, "config", "show", "-o", "yaml").stdout)[0] == head
    csv_lines = cli(*args, "config", "show", "-o", "csv").stdout.splitlines()
    assert csv_lines[:2] == ["key,value,source", f"config_file,{path},from {origin}"]
    table = cli(*args, "config", "show").stdout.splitlines()
    assert table[1].split() == ["config_file", str(path), "from", *origin.split()]


def test_config_show_without_a_file_says_so_first(cli: Any) -> None:
    rows = json.loads(cli("config", "show", "-o", "json").stdout)
    assert rows[0] == {"key": "config_file", "value": "(none found)", "source": "lookup"}


def test_verbose_logs_the_file_read(cli: Any, tmp_path: Path) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", kafka={"bootstrap.servers": "b:9092"})
    for args in (["-v", "config", "show"], ["config", "contexts", "-v"]):
        result = cli(*args)
        assert result.exit_code == 0
        [line] = [line for line in result.stderr.splitlines() if "kafkaops.config.settings" in line]
        assert line.endswith(
            f"INFO kafkaops.config.settings: config file {path} (from the working directory)"
        )
    assert "kafkaops.config.settings" not in cli("config", "show").stderr
    path.unlink()
    assert "INFO kafkaops.config.settings: no config file found" in cli("-v", "config", "show").stderr


# -- plaintext secrets in a file others can read -----------------------------------------------


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"database": {"url": "postgresql://app:DbPw-Z9@db/casino"}}, "contexts.test.database.url"),
        ({"kafka": {"sasl.password": "kafka-pw"}}, "contexts.test.kafka.sasl.password"),
        ({"alerts": {"webhook": "https://hooks.slack.com/services/T0/B0/X"}}, "contexts.test.alerts.webhook"),
        ({"app": {"token": "bearer-1"}}, "contexts.test.app.token"),
    ],
)
@pytest.mark.parametrize(
    ("mode", "who"), [(0o644, "group and others"), (0o640, "its group"), (0o604, "others"), (0o600, None)]
)
def test_a_plaintext_secret_in_a_file_others_can_read_is_warned_of(
    cli: Any, tmp_path: Path, sections: dict[str, Any], key: str, mode: int, who: str | None
) -> None:
    path = write_config(tmp_path / "k.yaml", **sections)
    os.chmod(path, mode)
    result = cli("--config", str(path), "config", "show")
    assert result.exit_code == 0
    warning = (
        f"Warning: config file {path} holds a plaintext secret ({key}) and is readable by {who}; "
        "permissions should be u=rw (0600) or less, or use ${VAR} for the secret"
    )
    assert result.stderr.splitlines() == ([warning] if who else [])


def test_secrets_taken_from_the_environment_are_no_plaintext(cli: Any, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "k.yaml",
        database={"url": "postgresql://app:${DB_PASSWORD}@db/casino"},
        kafka={"sasl.password": "${KAFKA_PASSWORD}", "sasl.username": "app"},
    )
    os.chmod(path, 0o644)
    result = cli("--config", str(path), "config", "show", env={"DB_PASSWORD": "x", "KAFKA_PASSWORD": "y"})
    assert result.exit_code == 0 and result.stderr == ""


def test_the_configuration_page_names_every_property_that_needs_a_file_of_your_own() -> None:
    configuration = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for prop in CODE_PROPERTIES:
        assert f"`{prop}`" in configuration, prop


def test_context_completion_reads_no_untrusted_file(tmp_path: Path) -> None:
    import click

    from kafkaops.cli.completion import complete_contexts

    write_config(tmp_path / "kafkaops.yaml", text="contexts:\n  a: {}\n  b: {}\n")
    ctx = click.Context(click.Command("x"))
    assert complete_contexts(ctx, "") == ["a", "b"]
    os.chmod(tmp_path / "kafkaops.yaml", 0o666)
    assert complete_contexts(ctx, "") == []
