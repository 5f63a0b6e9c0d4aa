"""pytest plugin: a test that leaves a Kafka client (consumer, producer, admin client) alive fails.

A client alive after its test keeps reconnecting to a broker that may be gone, filling the
run's output with "Connection refused" and holding threads. confluent_kafka's Producer and
Consumer are replaced, before any test module imports them, by subclasses that register each
instance, and AdminClient's constructor registers each admin client; after each test's
teardown, a client created during the test (or its function-scoped fixtures) that is still
open is an error of that test: a consumer not closed, a producer or admin client still
referenced (they are freed with their last reference; a producer's close() frees it at once).
Clients that a module- or session-scoped fixture creates live as long as that fixture.
A test whose call failed only gets a warning: pytest keeps its traceback, and with it the
test's local clients, for the report. Cheap: a weak reference per client, and a garbage
collection only when one is left.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

_open: weakref.WeakSet[Any] = weakref.WeakSet()
_fixtures_own: weakref.WeakSet[Any] = weakref.WeakSet()  # made by module/session fixtures


def _tracked(base: type[Any]) -> type[Any]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        _open.add(self)

    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        _open.discard(self)
        return base.close(self, *args, **kwargs)

    namespace: dict[str, Any] = {"__init__": __init__, "__module__": base.__module__}
    if hasattr(base, "close"):
        namespace["close"] = close
    return type(base.__name__, (base,), namespace)


def _install() -> None:
    import confluent_kafka

    if getattr(confluent_kafka.Producer, "_kafkaops_tracked", False):
        return
    for name in ("Producer", "Consumer"):
        cls = _tracked(getattr(confluent_kafka, name))
        cls._kafkaops_tracked = True  # type: ignore[attr-defined]
        setattr(confluent_kafka, name, cls)
    # confluent_kafka.admin.AdminClient's methods name their class through its module's global
    # (super(AdminClient, self)): a subclass in its place would recurse. Its own (Python)
    # constructor is wrapped instead.
    from confluent_kafka.admin import AdminClient

    init = AdminClient.__init__

    def tracked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _open.add(self)

    AdminClient.__init__ = tracked_init  # type: ignore[method-assign]


_install()


def _new(before: set[int]) -> bool:
    """Whether a client created since `before` is alive (holding no reference to it after)."""
    return any(id(c) not in before and c not in _fixtures_own for c in _open)


def _describe(client: Any) -> str:
    kind = type(client).__name__
    try:
        name = client.memberid() if kind.endswith("Consumer") else None
    except Exception:
        name = None
    return f"{kind}{f' ({name})' if name else ''}"


_BEFORE = pytest.StashKey[set[int]]()
_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    item.stash[_BEFORE] = {id(c) for c in _open}
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    """A client a wider-scoped fixture creates belongs to that fixture, not to the test."""
    if fixturedef.scope == "function":
        return (yield)
    known = {id(c) for c in _open}
    try:
        return (yield)
    finally:
        _fixtures_own.update(c for c in _open if id(c) not in known)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_CALL_FAILED] = True
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    result = yield  # the test's fixtures are finalized by now
    # pytest keeps the finalized fixtures' values (a topic factory holding its admin client)
    # in item.funcargs after teardown; they are the test's no longer.
    funcargs = getattr(item, "funcargs", None)
    if isinstance(funcargs, dict):
        funcargs.clear()
    before = item.stash.get(_BEFORE, set())
    if _new(before):
        gc.collect()  # a client only a reference cycle holds is freed here, not leaked
    left = [c for c in _open if id(c) not in before and c not in _fixtures_own]
    names = sorted(_describe(c) for c in left)
    del left
    if not names:
        return result
    message = (
        f"the test left {len(names)} Kafka client(s) open: {', '.join(names)} "
        "(close every client it creates, in a finally or a fixture's teardown)"
    )
    if item.stash.get(_CALL_FAILED, False):
        item.warn(pytest.PytestWarning(message))  # its traceback holds them; it failed already
        return result
    raise AssertionError(message)
