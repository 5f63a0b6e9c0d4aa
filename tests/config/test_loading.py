"""Config lookup, contexts, environment and flag precedence, ${VAR} expansion, masked secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kafkaops.common.errors import ConfigError
from kafkaops.config.settings import Overrides, load_settings
from tests.helpers.config import write_config

CONFIG = {
    "current-context": "staging",
    "contexts": {
        "staging": {
            "database": {
                "url": "postgresql://app:${DB_PASSWORD}@db.staging:5432/casino",
                "columns": {"event_key": "kafka_key"},
            },
            "kafka": {
                "bootstrap.servers": "staging:9092",
                "sasl.password": "${KAFKA_SECRET}",
                "linger.ms": 10,
            },
            "retry": {"schedule": ["30s", "2m"], "max_retries": 3},
        },
        "prod": {
            "database": {"url": "postgresql://app@db.prod/casino"},
            "kafka": {"bootstrap.servers": "prod:9092"},
            "thresholds": {"pending_events": {"warning": 10, "critical": 20}},
        },
    },
}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "conf.yaml"
    return write_config(path, contexts=CONFIG["contexts"], current=CONFIG["current-context"])


ENV = {"DB_PASSWORD": "pg-s3cret!", "KAFKA_SECRET": "kafka-s3cret"}


def test_current_context_with_env_expansion(config_file: Path) -> None:
    s = load_settings(Overrides(config_path=str(config_file)), env=ENV)
    assert s.context == "staging"
    assert s.database.url == "postgresql://app:pg-s3cret!@db.staging:5432/casino"
    assert s.database.physical("event_key") == "kafka_key"
    assert s.kafka == {
        "bootstrap.servers": "staging:9092",
        "sasl.password": "kafka-s3cret",
        "linger.ms": "10",
    }
    assert [t.total_seconds() for t in s.retry.schedule] == [30, 120]
    assert s.retry.max_retries == 3
    assert s.retry.dlq_topic_for("casino.player.registered.v1") == "casino.player.registered.v1.dlq"


def test_defaults_are_the_runbooks(config_file: Path) -> None:
    s = load_settings(Overrides(config_path=str(config_file), context="prod"), env={})
    assert [t.total_seconds() for t in s.retry.schedule] == [60, 300, 900, 3600]
    assert (s.retry.max_retries, s.retry.batch_size, s.retry.dlq_suffix) == (5, 500, ".dlq")
    assert (s.thresholds.pending_warning, s.thresholds.pending_critical) == (10, 20)
    assert s.thresholds.oldest_pending_critical.total_seconds() == 4 * 3600
    # The waits: a table lock (failed, db), the metrics file's lock (retry), one webhook send
    # and the status sources.
    waits = (s.database.lock_timeout, s.retry.metrics_lock_timeout, s.alerts.timeout, s.status.timeout)
    assert [w.total_seconds() for w in waits] == [10, 5, 5, 5]


def test_environment_beats_file_and_flags_beat_both(config_file: Path) -> None:
    env = {
        **ENV,
        "KAFKAOPS_CONFIG": str(config_file),
        "KAFKAOPS_CONTEXT": "prod",
        "KAFKAOPS_DATABASE_URL": "sqlite:///env.db",
        "KAFKAOPS_BOOTSTRAP_SERVERS": "env:9092",
        "KAFKAOPS_KAFKA_SASL_PASSWORD": "from-env",
        "KAFKAOPS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    }
    s = load_settings(Overrides(), env=env)
    assert s.context == "prod"
    assert s.database.url == "sqlite:///env.db"
    assert s.kafka["bootstrap.servers"] == "env:9092"
    assert s.kafka["sasl.password"] == "from-env"
    assert s.kafka["security.protocol"] == "SASL_SSL"
    assert s.sources["kafka.sasl.password"] == "env KAFKAOPS_KAFKA_SASL_PASSWORD"
    s = load_settings(
        Overrides(database_url="sqlite:///flag.db", bootstrap_servers="flag:9092", context="staging"), env=env
    )
    assert (s.database.url, s.kafka["bootstrap.servers"], s.context) == (
        "sqlite:///flag.db",
        "flag:9092",
        "staging",
    )
    assert s.sources["database.url"] == "flag --database-url"


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "kafkaops.yaml"
    user = tmp_path / "xdg" / "kafkaops" / "config.yaml"
    user.parent.mkdir(parents=True)
    write_config(user, contexts={"user": {"kafka": {"bootstrap.servers": "user:9092"}}}, current=None)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert load_settings(env=env).context == "user"
    write_config(local, contexts={"local": {}}, current=None)
    assert load_settings(env=env).context == "local"


@pytest.mark.parametrize(
    ("content", "overrides", "env", "message"),
    [
        ("contexts: [", {}, {}, "is not valid YAML at line 1"),
        (yaml.safe_dump(CONFIG), {"context": "nope"}, ENV, "no context named 'nope'"),
        ("contexts: {x: {retry: {schedule: [1m, soon]}}}", {}, {}, "invalid retry.schedule entry 'soon'"),
        (
            "contexts: {x: {database: {columns: {nope: x}}}}",
            {},
            {},
            "unknown key 'nope' in database.columns",
        ),
        ("contexts: {x: {retry: {max_retries: 0}}}", {}, {}, "retry.max_retries must be a whole number >= 1"),
        (
            "contexts: {x: {retry: {schedule: [1m, 0s]}}}",
            {},
            {},
            "retry.schedule delays must be longer than zero",
        ),
        ("contexts: {x: {retry: {schedule: [-60]}}}", {}, {}, "invalid retry.schedule entry -60"),
        ("contexts: {x: {retry: {dlq_suffix: ''}}}", {}, {}, "retry.dlq_suffix must be a non-empty string"),
        (
            "contexts: {x: {retry: {dlq_suffixes: [.dlq, 'bad suffix!']}}}",
            {},
            {},
            "retry.dlq_suffixes 'bad suffix!' has characters a Kafka topic name cannot have",
        ),
        (
            "contexts: {x: {retry: {dlq_suffix: '/dlq'}}}",
            {},
            {},
            "retry.dlq_suffix '/dlq' has characters a Kafka topic name cannot have",
        ),
        (
            "contexts: {x: {retry: {batch_size: 100000}}}",
            {},
            {},
            "retry.batch_size must be a whole number from 1 to 10000",
        ),
        (
            "contexts: {x: {kafka: {bootstrap.servers: }}}",
            {},
            {},
            "kafka.bootstrap.servers must be a string or number, not empty",
        ),
        ("contexts: {x: {database: {url: 5}}}", {}, {}, "database.url must be a string, not 5"),
        (
            "contexts: {x: {database: {columns: [a]}}}",
            {},
            {},
            "database.columns must map logical column names",
        ),
        ("contexts: {x: {database: {schema: 5}}}", {}, {}, "database.schema must be a string"),
        ("current-context: [a]\ncontexts: {x: {}}", {}, {}, "'current-context' in"),
        ("contexts: [a, b]", {}, {}, "'contexts' in"),
    ],
)
def test_bad_config_is_a_config_error(
    tmp_path: Path, content: str, overrides: dict[str, str], env: dict[str, str], message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(Overrides(config_path=str(path), **overrides), env=env)
    assert message in info.value.message


def test_missing_config_names_the_three_ways(cli) -> None:
    result = cli("failed")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: no database configured"
    assert (
        "--config PATH" in lines[1] and "$KAFKAOPS_DATABASE_URL" in lines[1] and "--database-url" in lines[1]
    )


def test_named_config_file_must_exist(cli, tmp_path: Path) -> None:
    result = cli("--config", str(tmp_path / "missing.yaml"), "failed")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"Error: config file {tmp_path / 'missing.yaml'} (from --config) does not exist"
    )


def test_config_show_masks_every_secret(cli, config_file: Path) -> None:
    env = {
        **ENV,
        "KAFKAOPS_KAFKA_SSL_KEY_PASSWORD": "key-s3cret",
        "KAFKAOPS_KAFKA_SASL_USERNAME": "api-key-1",
    }
    result = cli("--config", str(config_file), "config", "show", "-o", "json", env=env)
    assert result.exit_code == 0, result.stderr
    values = {r["key"]: r for r in json.loads(result.stdout)}
    assert values["database.url"]["value"] == "postgresql://app:****@db.staging:5432/casino"
    assert values["kafka.sasl.password"]["value"] == "****"
    assert values["kafka.ssl.key.password"] == {
        "key": "kafka.ssl.key.password",
        "value": "****",
        "source": "env KAFKAOPS_KAFKA_SSL_KEY_PASSWORD",
    }
    assert values["kafka.sasl.username"]["value"] == "api-key-1"
    assert values["database.columns.event_key"]["value"] == "kafka_key"
    assert values["retry.schedule"]["value"] == "30s, 2m"
    for secret in (*ENV.values(), "key-s3cret"):
        assert secret not in result.stdout + result.stderr
    table = cli("--config", str(config_file), "config", "show", env=env)
    assert "pg-s3cret" not in table.stdout and "****" in table.stdout


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cr#et-Zq@127.0.0.1:1/casino",
        "postgresql://app:s3cr?et-Zq@127.0.0.1:1/casino",
        "postgresql://app:s3/cret-Zq@127.0.0.1:1/casino",
        "postgresql://app@127.0.0.1:1/casino?password=s3cret-Zq",
    ],
)
def test_unencoded_and_query_passwords_are_never_shown(cli, url: str) -> None:
    shown = cli("config", "show", env={"KAFKAOPS_DATABASE_URL": url})
    failed = cli("failed", env={"KAFKAOPS_DATABASE_URL": url})
    assert failed.exit_code == 1
    assert failed.stderr.startswith("Error: cannot connect to database postgresql://app@127.0.0.1:1/casino")
    for text in (shown.stdout, shown.stderr, failed.stdout, failed.stderr):
        assert "Zq" not in text and "s3cr" not in text


def test_config_contexts(cli, config_file: Path) -> None:
    result = cli("--config", str(config_file), "config", "contexts", "-o", "json")
    assert json.loads(result.stdout) == [
        {"name": "staging", "current": True},
        {"name": "prod", "current": False},
    ]


def test_example_config_loads_with_its_secrets_from_the_environment() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    env = {"KAFKAOPS_DB_PASSWORD": "x", "CONFLUENT_API_KEY": "k", "CONFLUENT_API_SECRET": "s"}
    local = load_settings(Overrides(config_path=str(example)), env=env)
    assert [t.total_seconds() for t in local.retry.schedule] == [60, 300, 900, 3600]
    assert (local.thresholds.pending_warning, local.thresholds.pending_critical) == (1000, 5000)
    cloud = load_settings(Overrides(config_path=str(example), context="confluent-cloud"), env=env)
    assert cloud.kafka["security.protocol"] == "SASL_SSL" and cloud.kafka["sasl.password"] == "s"


def test_config_show_says_whether_the_context_is_read_only_and_what_says_so(cli, tmp_path: Path) -> None:
    path = tmp_path / "kafkaops.yaml"
    path.write_text(
        "current-context: prod\ncontexts:\n  prod:\n    readonly: true\n  dev: {}\n", encoding="utf-8"
    )
    path.chmod(0o600)

    def readonly(*args: str, env: dict[str, str] | None = None) -> dict[str, str]:
        result = cli("--config", str(path), *args, "config", "show", "-o", "json", env=env)
        assert result.exit_code == 0, result.stderr
        return next(r for r in json.loads(result.stdout) if r["key"] == "readonly")

    assert readonly() == {
        "key": "readonly",
        "value": "true",
        "source": f"readonly: true in {path} (context prod)",
    }
    assert readonly("--context", "dev") == {"key": "readonly", "value": "false", "source": "default"}
    assert (
        readonly("--context", "dev", env={"KAFKAOPS_READONLY": "1"})["source"]
        == "$KAFKAOPS_READONLY is set (1)"
    )
