"""No secret in output, errors or `config show`, whatever shape the URL or setting has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kafkaops.common.secrets import (
    mask_url,
    mask_value,
    redact,
    secrets_of,
    url_secrets,
    url_without_password,
)
from tests.helpers.config import write_config
from tests.helpers.events import event
from tests.helpers.process import run_kafkaops

# (url, what `config show` prints, what an error message names)
HOSTILE_URLS = [
    (
        "postgresql://secretuser:p@ssw0rdSECRET@127.0.0.1:1/db",
        "postgresql://secretuser:****@127.0.0.1:1/db",
        "postgresql://secretuser@127.0.0.1:1/db",
    ),
    (
        "postgresql://app:s3cr#etSECRET@127.0.0.1:1/db",
        "postgresql://app:****@127.0.0.1:1/db",
        "postgresql://app@127.0.0.1:1/db",
    ),
    (
        "postgresql://app:s3cr?etSECRET@127.0.0.1:1/db",
        "postgresql://app:****@127.0.0.1:1/db",
        "postgresql://app@127.0.0.1:1/db",
    ),
    (
        "postgresql://app:a/b:c@SECRET@127.0.0.1:1/db",
        "postgresql://app:****@127.0.0.1:1/db",
        "postgresql://app@127.0.0.1:1/db",
    ),
    (
        "postgresql+psycopg://app:@SECRET@@127.0.0.1:1/db",
        "postgresql+psycopg://app:****@127.0.0.1:1/db",
        "postgresql://app@127.0.0.1:1/db",
    ),
    (
        "postgresql://app@127.0.0.1:1/db?sslmode=disable&password=SECRET",
        "postgresql://app@127.0.0.1:1/db?sslmode=disable&password=****",
        "postgresql://app@127.0.0.1:1/db?sslmode=disable",
    ),
    (
        "postgresql://:SECRET@127.0.0.1:1/db",
        "postgresql://****@127.0.0.1:1/db",
        "postgresql://127.0.0.1:1/db",
    ),
]


@pytest.mark.parametrize(("url", "shown", "named"), HOSTILE_URLS)
def test_everything_between_the_scheme_and_the_last_at_is_masked(url: str, shown: str, named: str) -> None:
    assert mask_url(url) == shown
    assert url_without_password(url) == named
    assert "SECRET" not in mask_url(url) + url_without_password(url)


@pytest.mark.parametrize(("url", "shown", "named"), HOSTILE_URLS)
def test_hostile_database_urls_never_show_their_password(cli, url: str, shown: str, named: str) -> None:
    env = {"KAFKAOPS_DATABASE_URL": url}
    show = cli("config", "show", "-o", "json", env=env)
    assert show.exit_code == 0, show.stderr
    assert {r["key"]: r["value"] for r in json.loads(show.stdout)}["database.url"] == shown
    failed = cli("failed", "list", env=env)
    assert failed.exit_code in (1, 2)
    assert failed.stderr.startswith("Error: ")
    assert named in failed.stderr.splitlines()[0]
    for text in (show.stdout, show.stderr, failed.stdout, failed.stderr):
        assert "SECRET" not in text


def test_the_pieces_of_a_password_are_secrets_too() -> None:
    # A parser splitting at the first @ sees "ssw0rdSECRET@127.0.0.1" as the host: a driver may quote it.
    secrets = url_secrets("postgresql://u:p@ssw0rdSECRET@127.0.0.1/db")
    assert redact('could not translate host name "ssw0rdSECRET@127.0.0.1"', secrets) == (
        'could not translate host name "****@127.0.0.1"'
    )
    assert redact("failed: postgresql://u:pw@h/db and https://TOKEN@api", []) == (
        "failed: postgresql://****@h/db and https://****@api"
    )


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        (
            "app.health_url",
            "http://admin:AppSECRET@10.0.0.5:8080/actuator/health/kafka",
            "http://admin:****@10.0.0.5:8080/actuator/health/kafka",
        ),
        ("app.metrics_url", "https://svc:9000/prom?token=SECRET&x=1", "https://svc:9000/prom?token=****&x=1"),
        ("app.health_url", "https://svc/h?password=SECRET", "https://svc/h?password=****"),
        ("app.health_url", "https://ghp_SECRET@svc/h", "https://****@svc/h"),
        (
            "app.instances",
            ["http://a:SECRET@h1:8080", "http://h2:8080"],
            ["http://a:****@h1:8080", "http://h2:8080"],
        ),
        (
            "app.instances",
            [{"name": "eu-1", "url": "http://a:SECRET@h1:8080"}, {"name": "eu-2", "token": "SECRET"}],
            [{"name": "eu-1", "url": "http://a:****@h1:8080"}, {"name": "eu-2", "token": "****"}],
        ),
        ("app.token", "SECRET-bearer", "****"),
        ("app.password", "SECRET", "****"),
        ("app.username", "admin", "admin"),
        ("kafka.api_key", "SECRET", "****"),
        ("kafka.apikey", "SECRET", "****"),
        ("kafka.schema.registry.api.key", "SECRET", "****"),
        ("kafka.sasl.oauthbearer.client.secret", "SECRET", "****"),
        (
            "kafka.sasl.oauthbearer.config",
            "clientId=kafkaops clientSecret=SECRET scope=kafka",
            "clientId=kafkaops clientSecret=**** scope=kafka",
        ),
        ("kafka.sasl.jaas.config", 'org.Plain required username="u" password="SECRET";', "****"),
        ("kafka.ssl.key.pem", "-----BEGIN PRIVATE KEY----- SECRET", "****"),
        (
            "kafka.sasl.oauthbearer.token.endpoint.url",
            "https://idp/token?client_secret=SECRET",
            "https://idp/token?client_secret=****",
        ),
        ("alerts.webhook", "https://hooks.slack.com/services/T0/B0/SECRET", "https://hooks.slack.com/****"),
        ("kafka.basic.auth.user.info", "SRKEY:SECRET", "****"),
        ("kafka.bootstrap.servers", "b1:9092,b2:9092", "b1:9092,b2:9092"),
        ("kafka.ssl.key.location", "/etc/kafka/key.pem", "/etc/kafka/key.pem"),
    ],
)
def test_setting_values_are_masked_by_key_and_by_content(key: str, value: object, shown: object) -> None:
    assert mask_value(key, value) == shown
    assert "SECRET" not in str(shown)
    hidden = secrets_of(key, value)
    if "SECRET" in str(value):  # every secret a value holds can be scrubbed from free text too
        assert "SECRET" not in redact(str(value), hidden)


@pytest.mark.slow
def test_config_show_masks_every_kind_of_secret(cli, tmp_path: Path) -> None:
    config = tmp_path / "k.yaml"
    write_config(
        config,
        text="""
contexts:
  prod:
    database: {url: "postgresql://secretuser:p@ssw0rdSECRET@db.internal:5432/casino"}
    kafka:
      bootstrap.servers: pkc-1:9092
      sasl.oauthbearer.config: clientId=kafkaops clientSecret=SECRET1 scope=kafka
      schema.registry.api_key: SECRET2
      apikey: SECRET3
    app:
      health_url: http://admin:AppSECRET@10.0.0.5:8080/actuator/health/kafka
      metrics_url: http://10.0.0.5:8080/actuator/prometheus?token=SECRET4
      token: SECRET6
    alerts: {webhook: "https://hooks.slack.com/services/T0/B0/SECRET7"}
  other:
    app:
      instances: ["http://u:SECRET5@a:8080"]
""",
    )
    config.chmod(0o600)  # the plaintext-secret warning is another test's subject
    for context in ("prod", "other"):
        for fmt in ("json", "table", "yaml", "csv", "tsv"):
            result = cli("--config", str(config), "--context", context, "config", "show", "-o", fmt)
            assert result.exit_code == 0, result.stderr
            assert "SECRET" not in result.stdout + result.stderr, fmt
            assert "ssw0rd" not in result.stdout
    values = {
        r["key"]: r["value"]
        for r in json.loads(
            cli("--config", str(config), "--context", "prod", "config", "show", "-o", "json").stdout
        )
    }
    assert values["app.health_url"] == "http://admin:****@10.0.0.5:8080/actuator/health/kafka"
    assert values["kafka.sasl.oauthbearer.config"] == "clientId=kafkaops clientSecret=**** scope=kafka"
    assert values["alerts.webhook"] == "https://hooks.slack.com/****"


def test_an_unexpected_error_quoting_a_url_is_scrubbed(cli, tmp_path: Path) -> None:
    # A driver error that quotes the URL it was given: kafkaops' scrubber removes the password.
    url = "postgresql://app:pa55SECRET@127.0.0.1:1/casino"
    result = cli("failed", env={"KAFKAOPS_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "SECRET" not in result.stderr and "pa55" not in result.stderr


def test_debug_tracebacks_are_scrubbed_too(cli) -> None:
    # The driver quotes the host it was given: with an unencoded @, part of the password.
    url = "postgresql://secretuser:p@ssw0rdSECRET@127.0.0.1:1/db"
    result = cli("--debug", "failed", env={"KAFKAOPS_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "SECRET" not in result.stderr


# A password holding `@`, `:` or `/` unencoded: the driver gets the password and host that masking
# sees (userinfo ends at the last `@`), so its error names the real host, never a password's tail.
PASSWORDS_WITH_AT = ["DbPw-Z9@x", "a@b", "@", "x@", "p@ss:w/rd@7", "p%40ss@x"]


@pytest.mark.parametrize("password", PASSWORDS_WITH_AT)
def test_the_driver_reads_the_password_that_masking_masks(password: str) -> None:
    from urllib.parse import unquote

    from sqlalchemy.engine import make_url

    from kafkaops.db.engine import normalise_url

    parsed = make_url(normalise_url(f"postgresql://app:{password}@127.0.0.1:1/casino"))
    assert (parsed.username, parsed.password, parsed.host, parsed.port) == (
        "app",
        unquote(password),
        "127.0.0.1",
        1,
    )
    assert (
        mask_url(f"postgresql://app:{password}@127.0.0.1:1/casino")
        == "postgresql://app:****@127.0.0.1:1/casino"
    )


@pytest.mark.parametrize("password", PASSWORDS_WITH_AT)
def test_a_connection_error_never_names_part_of_the_password(cli, password: str) -> None:
    result = cli(
        "failed", "list", env={"KAFKAOPS_DATABASE_URL": f"postgresql://app:{password}@127.0.0.1:1/casino"}
    )
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: cannot connect to database postgresql://app@127.0.0.1:1/casino: connection refused\n"
    )


def test_a_url_in_free_text_is_masked_by_position_however_short_its_password() -> None:
    assert redact("could not connect to postgresql://u:a@b@db:5432/x", []) == (
        "could not connect to postgresql://****@db:5432/x"
    )


def test_a_sqlite_path_with_an_at_is_no_password() -> None:
    from sqlalchemy.engine import make_url

    from kafkaops.db.engine import normalise_url

    assert make_url(normalise_url("sqlite:////var/lib/me@host/x.db")).database == "/var/lib/me@host/x.db"
    assert mask_url("sqlite:////var/lib/me@host/x.db") == "sqlite:////var/lib/me@host/x.db"


# -- secrets on the command line ---------------------------------------------------------------

PS_WARNING = (
    "Warning: {option} holds a secret, which other users can read in the process list (ps); give it with {how} "
    "instead"
)
DB_HOW = "$KAFKAOPS_DATABASE_URL, or database.url in the config file with ${VAR} for the password"


@pytest.mark.parametrize(
    "args",
    [
        ["--database-url", "postgresql://app:pw@127.0.0.1:1/casino", "failed", "list"],
        ["--database-url=postgresql://app:pw@127.0.0.1:1/casino", "failed", "list"],
        ["failed", "list", "--database-url", "postgresql://app:pw@127.0.0.1:1/casino"],
        ["failed", "list", "--database-url", "postgresql://app@127.0.0.1:1/casino?password=pw"],
    ],
)
def test_a_password_on_the_command_line_is_warned_of_once(cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.stderr.splitlines() == [
        PS_WARNING.format(option="--database-url", how=DB_HOW),
        "Error: cannot connect to database postgresql://app@127.0.0.1:1/casino: connection refused",
    ]


def test_a_webhook_on_the_command_line_is_warned_of(cli, tmp_path: Path) -> None:
    config = tmp_path / "k.yaml"
    write_config(config, text="contexts: {t: {database: {url: 'sqlite:///nowhere/x.db'}}}")
    result = cli(
        "--config", str(config), "status", "-o", "json", "--alert-webhook", "http://127.0.0.1:1/T0/B0/HookX"
    )
    how = "$KAFKAOPS_ALERT_WEBHOOK, or alerts.webhook in the config file"
    assert result.stderr.splitlines()[0] == PS_WARNING.format(option="--alert-webhook", how=how)
    assert "HookX" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["failed", "list"], {"KAFKAOPS_DATABASE_URL": "postgresql://app:pw@127.0.0.1:1/casino"}),
        (["failed", "list", "--database-url", "postgresql://app@127.0.0.1:1/casino"], {}),
    ],
)
def test_no_warning_without_a_secret_on_the_command_line(cli, args: list[str], env: dict[str, str]) -> None:
    assert cli(*args, env=env).stderr.splitlines() == [
        "Error: cannot connect to database postgresql://app@127.0.0.1:1/casino: connection refused"
    ]


def test_a_short_piece_of_a_password_after_an_unencoded_at_sign_is_never_shown() -> None:
    """The driver reads `x1@127.0.0.1` as the host and names it in its error: the end of the
    password, too short to be masked as a piece of its own."""
    url = "postgresql://app:Zq@x1@127.0.0.1:1/casino"
    result = run_kafkaops("failed", env={"KAFKAOPS_DATABASE_URL": url, "XDG_CONFIG_HOME": "/nonexistent"})
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot connect to database postgresql://app@127.0.0.1:1/casino: ")
    assert "x1" not in result.stderr and "Zq" not in result.stderr


@pytest.mark.slow
def test_an_encoded_at_sign_is_fine(pg_database) -> None:  # type: ignore[no-untyped-def]
    pg_database.init()
    pg_database.insert([event(1, status="DLQ_FAILED"), event(2, status="DLQ_FAILED"), event(3)])
    url = pg_database.url.replace("postgresql://postgres@", "postgresql://postgres:Zq%40x1@")
    url += f"?options=-csearch_path%3D{pg_database.schema}"
    result = run_kafkaops("failed", "-o", "json", env={"KAFKAOPS_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    counts = {group["status"]: group["count"] for group in json.loads(result.stdout)}
    assert counts == {"DLQ_FAILED": 2, "PENDING": 1}
    assert "Zq" not in result.stdout + result.stderr
