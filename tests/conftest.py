"""Fixtures shared by the whole suite: a real PostgreSQL, SQLite files, config files, the CLI.

PostgreSQL comes from $KAFKAOPS_TEST_DATABASE_URL when set, otherwise a throwaway cluster is
started for the session (scripts/pgserver.py). Every test gets its own schema (PostgreSQL) or
file (SQLite), so no test sees another's rows.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from kafkaops.audit.table import create_audit_table
from kafkaops.cli.main import app
from kafkaops.config.settings import DatabaseSettings
from kafkaops.db.engine import create_engine
from kafkaops.db.schema import build_table, init_table
from tests.helpers.config import write_config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

pytest_plugins = [
    p
    for p in (
        "tests.helpers.open_clients",
        "tests.helpers.broker_fixtures",
        "tests.helpers.embedded_fixtures",
        "tests.helpers.secure_broker",
    )
    if (ROOT / (p.replace(".", "/") + ".py")).exists()
]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = os.environ.get("KAFKAOPS_TEST_DATABASE_URL")
    if url:
        yield url
        return
    import pgserver

    with pgserver.postgres_server() as started:
        yield started


@dataclass
class TestDatabase:
    """One isolated database for one test: its URL, schema and the mapped table."""

    __test__ = False
    kind: str
    url: str
    schema: str | None
    settings: DatabaseSettings
    engine: sa.Engine

    id_type: str = "bigint"
    _table: sa.Table | None = None

    @property
    def table(self) -> sa.Table:
        if self._table is None:
            self._table = build_table(self.settings, id_type=self.id_type)
        return self._table

    def init(self, id_type: str = "bigint", *, journal: bool = True) -> sa.Table:
        """The failed-events table, and (as `db init` makes them) the audit journal's."""
        self.id_type = id_type
        self._table = None
        init_table(self.engine, self.settings, id_type=id_type)
        if journal:
            create_audit_table(self.engine, self.settings)
        return self.table

    def insert(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(self.table), rows)

    def rows(self, *where: Any) -> list[dict[str, Any]]:
        table = self.table
        with self.engine.connect() as conn:
            # Keyed by logical names, whatever the mapping calls the columns.
            columns = [c.label(c.key) for c in table.c]
            result = conn.execute(sa.select(*columns).where(*where).order_by(table.c.id))
            return [dict(r._mapping) for r in result]

    def count(self, *where: Any) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(self.table).where(*where)).scalar_one()
            )


def _make_database(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, columns: dict[str, str] | None = None
) -> TestDatabase:
    mapping = {c: c for c in DatabaseSettings().columns}
    mapping.update(columns or {})
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
        settings = DatabaseSettings(url=url, columns=mapping)
        return TestDatabase(kind, url, None, settings, create_engine(url))
    base = request.getfixturevalue("pg_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    request.addfinalizer(lambda: _drop_schema(engine, schema))
    return TestDatabase(
        kind, base, schema, DatabaseSettings(url=base, schema=schema, columns=mapping), engine
    )


def _drop_schema(engine: sa.Engine, schema: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> TestDatabase:
    """An empty, isolated database of each kind (no table yet: call .init())."""
    return _make_database(request.param, tmp_path, request)


@pytest.fixture
def pg_database(request: pytest.FixtureRequest, tmp_path: Path) -> TestDatabase:
    """An empty, isolated PostgreSQL schema, for what only PostgreSQL can show (SKIP LOCKED)."""
    return _make_database("postgresql", tmp_path, request)


@pytest.fixture
def make_database(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    def factory(kind: str, columns: dict[str, str] | None = None) -> TestDatabase:
        return _make_database(kind, tmp_path, request, columns)

    return factory


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's own kafkaops configuration or environment."""
    for var in list(os.environ):
        if (
            var.startswith("KAFKAOPS_")
            and not var.startswith("KAFKAOPS_TEST_")
            and var != "KAFKAOPS_KAFKA_CACHE"
        ):
            monkeypatch.delenv(var)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def configured(database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestDatabase:
    """`database` with its table created and a config file pointing kafkaops at it."""
    database.init()
    monkeypatch.setenv("KAFKAOPS_CONFIG", str(write_config(tmp_path / "kafkaops.yaml", database)))
    return database


class Cli:
    """Runs kafkaops in-process the way a user does, stdout and stderr kept apart."""

    def __init__(self) -> None:
        self.runner = CliRunner(mix_stderr=False)

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
        result = self.runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        _drop_tracebacks(result)
        return result


def _drop_tracebacks(result: Any) -> None:
    """The SystemExit a run ends with keeps its traceback, and the exceptions it replaced theirs:
    their frames hold the run's Kafka clients (and, through f_back, the calling test's locals)
    until the test is gone. A test reads the exit code and the output, not those frames."""
    if result.exc_info is None:
        return
    kind, error, _tb = result.exc_info
    result.exc_info = (kind, error, None)
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


@pytest.fixture
def cli() -> Cli:
    return Cli()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `postgres` the tests whose fixtures reach PostgreSQL: `pg_url`, `pg_database`, or a
    database fixture's `postgresql` parameter (a test calling `make_database("postgresql")`
    in its body is not seen)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if {"pg_url", "pg_database", "sql_ascii_url"} & set(getattr(item, "fixturenames", ())) or (
            "postgresql" in params
        ):
            item.add_marker(pytest.mark.postgres)
