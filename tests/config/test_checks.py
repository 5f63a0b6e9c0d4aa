"""Every config key checked, hostile config files refused quickly, durations need units, and a
missing ${VAR} only blocks the commands that read its section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kafkaops.common.errors import ConfigError
from kafkaops.config.settings import Overrides, load_settings
from tests.helpers.config import write_config
from tests.helpers.events import event
from tests.helpers.process import run_kafkaops

# -- unknown keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message", "hint"),
    [
        (
            "contexts: {x: {retry: {dlq_sufix: .DLT, max_retrys: 1}}}",
            "unknown keys 'dlq_sufix', 'max_retrys' in retry",
            "did you mean 'dlq_suffix' for 'dlq_sufix', 'max_retries' for 'max_retrys'?",
        ),
        (
            "contexts: {x: {databse: {url: 'sqlite:///x.db'}}}",
            "unknown key 'databse' in context 'x'",
            "did you mean 'database'?",
        ),
        ("contexts: {x: {database: {tabel: t}}}", "unknown key 'tabel' in database", "did you mean 'table'?"),
        (
            "contexts: {x: {database: {columns: {last_eror: error_message}}}}",
            "unknown key 'last_eror' in database.columns",
            "did you mean 'last_error'?",
        ),
        (
            "contexts: {x: {thresholds: {pending_event: {warning: 1}}}}",
            "unknown key 'pending_event' in thresholds",
            "did you mean 'pending_events'?",
        ),
        (
            "contexts: {x: {thresholds: {pending_events: {warn: 1}}}}",
            "unknown key 'warn' in thresholds.pending_events",
            "did you mean 'warning'?",
        ),
        (
            "contexts: {x: {thresholds: {circuit_breaker_open: {warning: 1m}}}}",
            "unknown key 'warning' in thresholds.circuit_breaker_open",
            "known keys: critical",
        ),
        ("contexts: {x: {app: {helth_url: 'http://a'}}}", "unknown key 'helth_url' in app", "'health_url'"),
        ("contexts: {x: {alerts: {webhok: 'http://a'}}}", "unknown key 'webhok' in alerts", "'webhook'"),
        ("contexts: {x: {status: {statedir: /tmp}}}", "unknown key 'statedir' in status", "'state_dir'"),
        (
            "current-context: x\ncontext: {x: {}}",
            "unknown key 'context' in the top level of",
            "did you mean 'contexts'?",
        ),
        (
            "curent-context: x\ncontexts: {x: {}}",
            "unknown key 'curent-context' in the top level of",
            "did you mean 'current-context'?",
        ),
        ("contexts: {x: {retry: {true: 1}}}", "key True in retry is not a name", "quote it"),
    ],
)
def test_every_section_rejects_an_unknown_key_with_a_suggestion(
    cli, tmp_path: Path, content: str, message: str, hint: str
) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", text=content)
    result = cli("--config", str(path), "failed")
    assert result.exit_code == 2
    error, hint_line = result.stderr.splitlines()[:2]
    assert error.startswith(f"Error: {message}")
    assert hint_line.startswith("Hint: ") and hint in hint_line
    assert result.stdout == ""


def test_kafka_takes_any_librdkafka_property_and_the_known_keys_of_every_section(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "kafkaops.yaml",
        text="""
        current-context: x
        contexts:
          x:
            database:
              url: 'sqlite:///x.db'
              table: t
              schema: null
              id_type: auto
              columns: {event_key: k}
              lock_timeout: 3s
            kafka: {bootstrap.servers: 'b:9092', any.librdkafka.property: 1}
            app:
              instances: [http://a:8080, http://b:8080]
              health_path: /h
              metrics_path: /m
              stats_path: /s
              timeout: 2s
              username: u
              password: p
              token: t
              executor: publisher
              circuit_breaker: kafka
            retry:
              schedule: [1m]
              max_retries: 2
              batch_size: 10
              dlq_suffix: .DLT
              dlq_suffixes: [.DLT, -dlt]
              delivery_timeout: 5s
              breaker_threshold: 2
              metrics_lock_timeout: 2s
            thresholds:
              pending_events: {warning: 1, critical: 2}
              oldest_pending_age: {warning: 1m, critical: 2m}
              circuit_breaker_open: {critical: 1m}
              dlq_failed_count: {critical: 0}
              thread_pool_queue: {warning: 5}
            alerts: {webhook: 'https://hooks.example/services/T/B/X', timeout: 1s}
            status: {state_dir: /tmp/kafkaops-state, timeout: 3s}
          one-instance:
            app: {health_url: http://a:8080/h, metrics_url: http://a:8080/m, stats_url: http://a:8080/s}
        """,
    )
    s = load_settings(Overrides(config_path=str(path)), env={})
    assert s.retry.dlq_suffixes == (".DLT", "-dlt")
    assert s.retry.dlq_suffix == ".DLT"
    assert s.kafka["any.librdkafka.property"] == "1"
    assert s.app.instances == (("a:8080", "http://a:8080"), ("b:8080", "http://b:8080"))
    assert (s.app.executor, s.app.circuit_breaker) == ("publisher", "kafka")
    assert s.alerts.webhook == "https://hooks.example/services/T/B/X"
    assert s.status.state_dir == Path("/tmp/kafkaops-state") and s.status.timeout == timedelta(seconds=3)
    waits = (s.database.lock_timeout, s.retry.metrics_lock_timeout, s.alerts.timeout)
    assert waits == (timedelta(seconds=3), timedelta(seconds=2), timedelta(seconds=1))
    one = load_settings(Overrides(config_path=str(path), context="one-instance"), env={})
    assert [i.metrics_url for i in one.app.endpoints()] == ["http://a:8080/m"]


# -- bad values: refused when the file loads, by every command alike ---------------------------

BAD_VALUES = [
    ("app", {"timeout": "0s"}, "app.timeout must be longer than zero"),
    ("app", {"instances": "http://a:8080"}, "app.instances must be a list of base URLs (http://host:8080)"),
    ("app", {"health_path": "health"}, "app.health_path must be a path starting with /, or null"),
    ("app", {"username": 42}, "app.username must be a string, not 42"),
    ("app", {"instances": ["http://a:8080"], "health_url": "http://a:8080/h"}, "app.health_url is the"),
    ("alerts", {"webhook": 42}, "alerts.webhook must be an http:// or https:// URL"),
    ("alerts", {"webhook": "hooks.example/T/B"}, "alerts.webhook: "),
    ("status", {"state_dir": 42}, "status.state_dir must be a string, not 42"),
    ("status", {"timeout": "0s"}, "status.timeout must be longer than zero"),
    ("status", {"timeout": 5}, "invalid status.timeout 5: a duration needs a unit"),
    ("alerts", {"timeout": "0s"}, "alerts.timeout must be longer than zero"),
    ("database", {"lock_timeout": "0s"}, "database.lock_timeout must be longer than zero"),
    ("retry", {"metrics_lock_timeout": 5}, "invalid retry.metrics_lock_timeout 5: a duration needs a unit"),
]


@pytest.mark.parametrize("command", [["failed", "list"], ["config", "show"], ["status"]], ids=" ".join)
@pytest.mark.parametrize(
    ("section", "value", "message"), BAD_VALUES, ids=[f"{s}:{json.dumps(v)}" for s, v, _ in BAD_VALUES]
)
@pytest.mark.slow
def test_a_bad_value_in_any_section_is_refused_by_every_command(
    make_database, cli, tmp_path: Path, command: list[str], section: str, value: dict[str, Any], message: str
) -> None:
    db = make_database("sqlite")
    db.init()
    path = write_config(tmp_path / "kafkaops.yaml", db, **{section: value})
    result = cli("--config", str(path), *command)
    # status speaks the Monitoring Plugins' codes: a configuration error is UNKNOWN (3) there.
    assert result.exit_code == (3 if command == ["status"] else 2)
    assert result.stderr.startswith(f"Error: {message}")
    assert result.stdout == ""


def test_dlq_suffixes_default_and_validation(tmp_path: Path) -> None:
    s = load_settings(
        Overrides(config_path=str(write_config(tmp_path / "kafkaops.yaml", text="contexts: {x: {}}"))), env={}
    )
    assert s.retry.dlq_suffixes == (".dlq", "-dlt", ".DLT")
    for bad in ("[]", "['']", ".dlq", "[.dlq, 5]"):
        path = write_config(
            tmp_path / "kafkaops.yaml", text=f"contexts: {{x: {{retry: {{dlq_suffixes: {bad}}}}}}}"
        )
        with pytest.raises(ConfigError, match=r"retry\.dlq_suffixes must be a non-empty list"):
            load_settings(Overrides(config_path=str(path)), env={})


# -- hostile files ---------------------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
contexts: {x: {app: {instances: *i}}}
"""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"contexts:\n  x:\n    database: {table: caf\xe9}\n", "is not UTF-8 text: byte 0xe9 at line 3"),
        (b"contexts: &a {x: *a}\n", "has a recursive alias"),
        (b"contexts: {x: {app: {instances: &l [1, *l]}}}\n", "has a recursive alias"),
        (BILLION_LAUGHS.encode(), "expands to more than 50,000 values (nested aliases); refused"),
        (b"contexts: {x: {app: {instances: " + b"[" * 5000 + b"]" * 5000 + b"}}}\n", "nested too deeply"),
        (b"contexts:\n  1: {}\n", "context name 1 in"),
        (b"contexts: {x: {}}\n---\ncontexts: {y: {}}\n", "is not valid YAML at line 2"),
        (b"contexts: {x: !!python/object:os.system {}}\n", "is not valid YAML at line 1"),
        (b"contexts: {x: {}}\x00\n", "is not valid YAML"),
    ],
)
@pytest.mark.slow
def test_hostile_config_files_are_clear_config_errors_quickly(
    tmp_path: Path, content: bytes, message: str
) -> None:
    """Each in its own process, with a time and memory limit: a regression fails, never hangs or
    eats the machine."""
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
    code = limit + "from kafkaops.cli.main import run; run()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKAOPS_")}
    env["KAFKAOPS_CONFIG"] = str(path)
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, "failed"], env=env, capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.fail("reading the hostile config file took more than 20 s")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Error: ") and message in result.stderr.splitlines()[0]
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr


def test_anchors_and_merge_keys_of_a_real_config_still_work(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "kafkaops.yaml",
        text="""
        current-context: b
        contexts:
          a: &base
            retry: {max_retries: 3, schedule: [30s]}
            kafka: {bootstrap.servers: 'a:9092'}
          b:
            <<: *base
            database: {url: 'sqlite:///b.db'}
        """,
    )
    s = load_settings(Overrides(config_path=str(path)), env={})
    assert s.retry.max_retries == 3 and s.kafka["bootstrap.servers"] == "a:9092"


# -- durations need a unit -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("retry: {schedule: [60, 5m]}", "invalid retry.schedule entry 60: a duration needs a unit"),
        ("retry: {delivery_timeout: 30}", "invalid retry.delivery_timeout 30: a duration needs a unit"),
        (
            "thresholds: {oldest_pending_age: {warning: 3600}}",
            "invalid thresholds.oldest_pending_age.warning 3600: a duration needs a unit",
        ),
        (
            "thresholds: {circuit_breaker_open: {critical: '300'}}",
            "invalid thresholds.circuit_breaker_open.critical '300': a duration needs a unit",
        ),
    ],
)
def test_a_bare_number_is_not_a_duration_in_the_config(
    cli, tmp_path: Path, section: str, message: str
) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", text=f"contexts: {{x: {{{section}}}}}")
    result = cli("--config", str(path), "config", "show")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {message}; accepted forms: 90s, 30m, 12h, 7d or 1h30m")


# -- missing variables -----------------------------------------------------------------------------

CLOUD = """
current-context: prod
contexts:
  prod:
    database:
      url: ${DB_URL}
    kafka:
      bootstrap.servers: pkc-1.confluent.cloud:9092
      sasl.username: ${CONFLUENT_API_KEY}
      sasl.password: ${CONFLUENT_API_SECRET}
    retry:
      max_retries: 3
"""


def test_a_missing_kafka_variable_does_not_block_a_database_command(configured, cli, tmp_path: Path) -> None:

    configured.insert([event(1, status="DLQ_FAILED")])
    schema = f"\n      schema: {configured.schema}" if configured.schema else ""
    path = write_config(
        tmp_path / "cloud.yaml", text=CLOUD.replace("url: ${DB_URL}", "url: ${DB_URL}" + schema)
    )
    env = {"DB_URL": configured.url}
    result = cli("--config", str(path), "failed", "-o", "json", env=env)
    assert result.exit_code == 0, result.stderr
    assert [(g["status"], g["count"]) for g in json.loads(result.stdout)] == [("DLQ_FAILED", 1)]


def test_a_command_that_reads_the_section_names_every_missing_variable_at_once(cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "cloud.yaml", text=CLOUD)
    result = cli("--config", str(path), "retry", env={"DB_URL": "sqlite:///x.db"})
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "Error: config section kafka of context 'prod' uses environment variable(s) that are not set: "
        "${CONFLUENT_API_KEY} (kafka.sasl.username), ${CONFLUENT_API_SECRET} (kafka.sasl.password)"
    )
    assert lines[1].startswith("Hint: export them")


def test_an_override_makes_the_missing_variable_irrelevant(tmp_path: Path) -> None:
    path = write_config(tmp_path / "cloud.yaml", text=CLOUD)
    env = {"KAFKAOPS_DATABASE_URL": "sqlite:///x.db"}
    s = load_settings(Overrides(config_path=str(path)), env=env)
    assert s.database.url == "sqlite:///x.db"
    with pytest.raises(ConfigError, match="CONFLUENT_API_KEY"):
        s.require_kafka()
    env |= {"KAFKAOPS_KAFKA_SASL_USERNAME": "k", "KAFKAOPS_KAFKA_SASL_PASSWORD": "s"}
    s = load_settings(Overrides(config_path=str(path)), env=env)
    assert s.require_kafka()["sasl.username"] == "k"


def test_config_show_still_works_and_marks_the_missing_variables(cli, tmp_path: Path) -> None:
    text = CLOUD.replace("url: ${DB_URL}", "url: postgresql://app:${DB_PASSWORD}@db.internal:5432/casino")
    path = write_config(tmp_path / "cloud.yaml", text=text)
    result = cli("--config", str(path), "config", "show", "-o", "json", env={})
    assert result.exit_code == 0, result.stderr
    values = {r["key"]: r["value"] for r in json.loads(result.stdout)}
    assert values["kafka.sasl.username"] == "<unset: ${CONFLUENT_API_KEY}>"
    assert values["kafka.sasl.password"] == "<unset: ${CONFLUENT_API_SECRET}>"
    assert values["kafka.bootstrap.servers"] == "pkc-1.confluent.cloud:9092"
    assert values["database.url"] == "postgresql://app:****@db.internal:5432/casino <unset: ${DB_PASSWORD}>"
    assert values["retry.max_retries"] == "3"


# -- config use-context ----------------------------------------------------------------------------

WITH_COMMENTS = """\
# kafkaops config for the casino platform
# (owned by the payments team)

current-context: local   # where commands go by default

contexts:
  local:
    database: {url: 'sqlite:///local.db'}  # the demo database
  prod:
    # production: read-only credentials
    database: {url: 'postgresql://ro@db.prod/casino'}
"""


def test_use_context_edits_one_line_and_keeps_comments(cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", text=WITH_COMMENTS)
    path.chmod(0o600)
    result = cli("--config", str(path), "config", "use-context", "prod")
    assert result.exit_code == 0, result.stderr
    assert path.read_text() == WITH_COMMENTS.replace(
        "current-context: local   # where", "current-context: prod   # where"
    )
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert result.stderr == f"Switched to context 'prod' in {path.resolve()}.\n"
    shown = cli("--config", str(path), "config", "contexts", "-o", "json")
    assert json.loads(shown.stdout) == [
        {"name": "local", "current": False},
        {"name": "prod", "current": True},
    ]


def test_use_context_adds_the_line_when_there_is_none_and_quotes_odd_names(cli, tmp_path: Path) -> None:
    text = "# header\ncontexts:\n  'true': {}\n  'eu west': {}\n"
    path = write_config(tmp_path / "kafkaops.yaml", text=text)
    assert cli("--config", str(path), "config", "use-context", "eu west").exit_code == 0
    assert (
        path.read_text()
        == "# header\ncurrent-context: \"eu west\"\ncontexts:\n  'true': {}\n  'eu west': {}\n"
    )
    assert cli("--config", str(path), "config", "use-context", "true").exit_code == 0
    assert yaml.safe_load(path.read_text())["current-context"] == "true"


def test_use_context_on_a_flow_style_file_rewrites_it_and_says_so(cli, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "kafkaops.yaml",
        text="{current-context: a, contexts: {a: {}, b: {retry: {max_retries: 2}}}}\n",
    )
    result = cli("--config", str(path), "config", "use-context", "b")
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(path.read_text()) == {
        "current-context": "b",
        "contexts": {"a": {}, "b": {"retry": {"max_retries": 2}}},
    }
    assert "comments and layout were not kept" in result.stderr


def test_use_context_of_an_unknown_context_changes_nothing(cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", text=WITH_COMMENTS)
    result = cli("--config", str(path), "config", "use-context", "prd")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"Error: no context named 'prd' in {path.resolve()} (known contexts: local, prod)"
    )
    assert path.read_text() == WITH_COMMENTS


@pytest.mark.parametrize("name", ["", " "])
@pytest.mark.parametrize(
    ("text", "known"),
    [(WITH_COMMENTS, "local, prod"), ("current-context: a\ncontexts:\n  a: {}\n  '': {}\n", "a")],
    ids=["no-empty-context", "an-empty-named-context"],
)
def test_use_context_of_an_empty_name_is_refused(
    cli, tmp_path: Path, text: str, known: str, name: str
) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", text=text)
    result = cli("--config", str(path), "config", "use-context", name)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"Error: a context name cannot be empty (known contexts: {known})"
    assert path.read_text() == text


def test_an_empty_context_option_is_refused_not_ignored(cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", text=WITH_COMMENTS)
    result = cli("--config", str(path), "--context", "", "config", "show")
    assert result.exit_code == 2
    assert (
        result.stderr.splitlines()[0]
        == "Error: --context is empty: name a context (known contexts: local, prod)"
    )


# -- which context: one rule for loading, config contexts, use-context and completion -----------

TWO = "current-context: a\ncontexts:\n  a: {}\n  b: {}\n"


@pytest.mark.parametrize(
    ("text", "args", "env", "chosen"),
    [
        ("contexts:\n  only: {}\n", [], {}, "only"),
        (TWO, [], {}, "a"),
        (TWO, [], {"KAFKAOPS_CONTEXT": "b"}, "b"),
        (TWO, ["--context", "a"], {"KAFKAOPS_CONTEXT": "b"}, "a"),
        (TWO, [], {"KAFKAOPS_CONTEXT": ""}, "a"),  # set but empty: as if not set
        ("contexts:\n  a: {}\n  b: {}\n", [], {}, None),
    ],
    ids=["the-only-context", "current-context", "env", "flag-beats-env", "empty-env", "none-current"],
)
def test_config_contexts_marks_the_context_every_command_uses(
    cli, tmp_path: Path, text: str, args: list[str], env: dict[str, str], chosen: str | None
) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", text=text)
    listed = cli("--config", str(path), *args, "config", "contexts", "-o", "json", env=env)
    assert listed.exit_code == 0, listed.stderr
    assert [r["name"] for r in json.loads(listed.stdout) if r["current"]] == ([chosen] if chosen else [])
    shown = cli("--config", str(path), *args, "config", "show", "-o", "json", env=env)
    assert shown.exit_code == 0, shown.stderr
    assert {r["key"]: r["value"] for r in json.loads(shown.stdout)}["context"] == (chosen or "(none)")


@pytest.mark.parametrize(
    "command",
    [["config", "contexts"], ["config", "show"], ["failed", "list"], ["config", "use-context", "b"]],
    ids=" ".join,
)
def test_an_empty_context_option_is_refused_by_every_command(cli, tmp_path: Path, command: list[str]) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", text=TWO)
    result = cli("--config", str(path), "--context", "", *command)
    assert result.exit_code == 2
    assert result.stderr == "Error: --context is empty: name a context (known contexts: a, b)\n"
    assert result.stdout == "" and path.read_text() == TWO


@pytest.mark.parametrize("command", [["config", "contexts"], ["config", "show"]], ids=" ".join)
def test_an_unknown_context_is_refused_by_every_command(cli, tmp_path: Path, command: list[str]) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", text=TWO)
    result = cli("--config", str(path), *command, env={"KAFKAOPS_CONTEXT": "c"})
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: no context named 'c' in {path} (known contexts: a, b)")


@pytest.mark.parametrize(
    ("args", "env", "warning"),
    [
        ([], {"KAFKAOPS_CONTEXT": "a"}, "Warning: $KAFKAOPS_CONTEXT=a still takes precedence.\n"),
        (["--context", "a"], {}, "Warning: --context a still takes precedence.\n"),
        (["--context", "a"], {"KAFKAOPS_CONTEXT": "b"}, "Warning: --context a still takes precedence.\n"),
        ([], {"KAFKAOPS_CONTEXT": "b"}, ""),
        ([], {"KAFKAOPS_CONTEXT": ""}, ""),
    ],
    ids=["env", "flag", "flag-beats-env", "env-agrees", "empty-env"],
)
def test_use_context_warns_of_what_still_takes_precedence(
    cli, tmp_path: Path, args: list[str], env: dict[str, str], warning: str
) -> None:
    path = write_config(tmp_path / "kafkaops.yaml", text=TWO)
    result = cli("--config", str(path), *args, "config", "use-context", "b", env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"Switched to context 'b' in {path.resolve()}.\n{warning}"


def test_context_completion_offers_the_names_a_command_can_select(tmp_path: Path) -> None:
    import click

    from kafkaops.cli.completion import complete_contexts

    write_config(
        tmp_path / "kafkaops.yaml",
        text="current-context: b\ncontexts:\n  b: {}\n  '': {}\n  ' ': {}\n  a: {}\n",
    )
    ctx = click.Context(click.Command("x"))
    assert complete_contexts(ctx, "") == ["a", "b"]


def test_use_context_without_a_config_file(cli) -> None:
    result = cli("config", "use-context", "prod")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: no config file to write current-context in")


def test_secret_values_cover_settings_built_in_code_and_sections_held_back(tmp_path: Path) -> None:
    from kafkaops.config.settings import Settings

    built = Settings(
        context=None, config_path=None, kafka={"sasl.password": "k-s3cret", "bootstrap.servers": "b"}
    )
    assert "k-s3cret" in built.secret_values()
    path = write_config(tmp_path / "cloud.yaml", text=CLOUD)
    held = load_settings(Overrides(config_path=str(path)), env={"CONFLUENT_API_SECRET": "c-s3cret"})
    assert "kafka" in held.missing  # CONFLUENT_API_KEY is not set...
    assert "c-s3cret" in held.secret_values()  # ...yet the secret that is set is still scrubbed


@pytest.mark.parametrize(("make", "why"), [("dir", "is a directory"), ("fifo", "is not a regular file")])
def test_a_config_path_that_is_no_regular_file_says_what_it_is(tmp_path: Path, make: str, why: str) -> None:
    path = tmp_path / "kafkaops.yaml"
    if make == "dir":
        path.mkdir()
    else:
        os.mkfifo(path)
    result = run_kafkaops("--config", str(path), "failed", timeout=30)  # a FIFO is never opened: no hang
    assert result.returncode == 2
    assert result.stderr == f"Error: config file {path} (from --config) {why}\n"


def test_a_missing_kafka_variable_makes_only_status_kafka_check_unknown(
    configured, cli, tmp_path: Path
) -> None:
    configured.insert([event(1, status="DLQ_FAILED")])
    schema = f"\n      schema: {configured.schema}" if configured.schema else ""
    path = write_config(
        tmp_path / "cloud.yaml", text=CLOUD.replace("url: ${DB_URL}", "url: ${DB_URL}" + schema)
    )
    result = cli("--config", str(path), "status", "-o", "json", env={"DB_URL": configured.url})
    doc = json.loads(result.stdout)
    by_name = {c["name"]: c for c in doc["checks"]}
    assert by_name["kafka"]["status"] == "UNKNOWN"
    assert "${CONFLUENT_API_SECRET} (kafka.sasl.password)" in by_name["kafka"]["message"]
    assert by_name["dlq_failed"]["status"] == "CRITICAL"  # the database still answered
    assert doc["database"]["reachable"] is True


# A self-signed test certificate (its key thrown away): `config show` summarises it.
TEST_CA_PEM = """-----BEGIN CERTIFICATE-----
MIIDPTCCAiWgAwIBAgIUKgPCVj7d8VoiJy0qqIfL9mlB10AwDQYJKoZIhvcNAQEL
BQAwLjEZMBcGA1UEAwwQa2Fma2FvcHMgdGVzdCBDQTERMA8GA1UECgwIa2Fma2Fv
cHMwHhcNMjYxMjA2MDkzMjExWhcNMzYxMjAzMDkzMjExWjAuMRkwFwYDVQQDDBBr
YWZrYW9wcyB0ZXN0IENBMREwDwYDVQQKDAhrYWZrYW9wczCCASIwDQYJKoZIhvcN
AQEBBQADggEPADCCAQoCggEBAK7KcSVxcvF5kj22VMlauaAA+mGF/hrndPOz3uEm
7dgMnKL7sk1a5/YEW0jsdcvm9qqknU5gdxnQciGskBbcf+vYj5po/JORHzFyN0mV
3jH0Ri6WCYU8csJMOUTCnFnWK7UsgOxqJwBN/Qg5/hQ5ud2QzgLNEQtoJdAsSBb2
mDfnmkvq7VQ1Tmh67M2kS8MhVnt84WyIgTE4NOd0CIeOZn7ryzs6EYPz1QurBGhO
N0uETDZmLZzoJ+Y11FBHSIQCGxaw26c1E6vIp9WG9qJLkjpTD7+SUB+eeWmxFuvd
1z6WQaWR67tLtMqs9rvQqORtwS+nrVgIhfYXfDu9D9CiOYkCAwEAAaNTMFEwHQYD
VR0OBBYEFH8i8zSrv7kZJxsM2oHnbToU3sXVMB8GA1UdIwQYMBaAFH8i8zSrv7kZ
JxsM2oHnbToU3sXVMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQELBQADggEB
AJ8eavZFXZlncLJDwFowLCH8xi9rIF3ENgIHBLKPx0s8oL+7ibohC/cIiwA5XY05
cWJuYnpcMWg/Y/cfr5vm1lImJJpA8C4WwlGYWqVNDwwjZEPWIH9W8nole7NRYkHs
QQI8JaT/m0LBHCRbzJQt1I7gynEIPPXydq7YPKkJhwFSR2pNWsALgUDtu6H22HFx
N/Qk8CCO1QOzArx25eGjRtxi836Hl2MYmOD58qPIGFaN4NQQ6SqWerqvmIQy3j8B
XmLLygLhUnouh6myB9QJC/hgGzeiuOWLukqQxlYpmbvjWhBl7Ko1XCBjRZIL4J6h
TQ5dKNV3o4fVlB54jbQF13E=
-----END CERTIFICATE-----
"""
TEST_CA_SHA256 = (
    "52:21:05:AF:43:88:83:93:4A:05:4F:07:E8:18:2D:8E:0D:51:82:5F:96:25:1A:AB:F9:E0:DA:75:5A:F5:27:B1"
)


def test_config_show_shows_an_inline_ca_pem_as_its_subject_and_fingerprint(cli, tmp_path: Path) -> None:
    kafka = {"bootstrap.servers": "b:9093", "security.protocol": "SSL", "ssl.ca.pem": TEST_CA_PEM}
    path = write_config(tmp_path / "tls.yaml", kafka=kafka)
    result = cli("--config", str(path), "config", "show", "-o", "json")
    assert result.exit_code == 0, result.stderr
    values = {r["key"]: r["value"] for r in json.loads(result.stdout)}
    assert values["kafka.ssl.ca.pem"] == f"CN=kafkaops test CA, O=kafkaops, SHA-256 {TEST_CA_SHA256}"
    table = cli("--config", str(path), "config", "show")
    assert "BEGIN CERTIFICATE" not in table.stdout
    assert TEST_CA_SHA256[:20] in table.stdout.replace("\n", "")
