"""pytest plugin: a test that leaves a Kafka consumer open fails; one that leaves a producer or
admin client alive gets a warning naming it.

A client alive after its test keeps reconnecting to a broker that may be gone, filling the
run's output with "Connection refused" and holding threads. confluent_kafka's Producer and
Consumer are replaced, before any test module imports them, by subclasses that register each
instance, and kafkaops' client factory registers what it builds (admin clients included);
after each test's teardown, a consumer created during the test and not closed is an error of
that test. Cheap: a weak reference per client, and a garbage collection only when one is left.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

_open: weakref.WeakSet[Any] = weakref.WeakSet()


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
    # (super(AdminClient, self)): it cannot be replaced. Those kafkaops builds are registered.
    from kafkaops.kafka import client

    build = client._build

    def tracked_build(*args: Any, **kwargs: Any) -> Any:
        built = build(*args, **kwargs)
        _open.add(built)
        return built

    client._build = tracked_build


_install()


def _new(before: set[int]) -> bool:
    """Whether a client created since `before` is alive (holding no reference to it after)."""
    return any(id(c) not in before for c in _open)


def _is_consumer(client: Any) -> bool:
    import confluent_kafka

    return isinstance(client, confluent_kafka.Consumer)


def _describe(client: Any) -> str:
    kind = type(client).__name__
    try:
        name = client.memberid() if kind.endswith("Consumer") else None
    except Exception:
        name = None
    return f"{kind}{f' ({name})' if name else ''}"


_BEFORE = pytest.StashKey[set[int]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    item.stash[_BEFORE] = {id(c) for c in _open}
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    result = yield  # the test's fixtures are finalized by now
    before = item.stash.get(_BEFORE, set())
    if _new(before):
        gc.collect()  # a client only a reference cycle holds is freed here, not leaked
    left = [c for c in _open if id(c) not in before]
    consumers = sorted(_describe(c) for c in left if _is_consumer(c))
    others = sorted(_describe(c) for c in left if not _is_consumer(c))
    del left
    if others:
        # Producers and admin clients: librdkafka's older API gave them no close(), and one
        # still referenced (by a traceback kept somewhere) is found, not yet failed.
        item.warn(pytest.PytestWarning(f"the test left Kafka client(s) alive: {', '.join(others)}"))
    if consumers:
        raise AssertionError(
            f"the test left {len(consumers)} Kafka consumer(s) open: {', '.join(consumers)} "
            "(close every consumer, in a finally or a fixture's teardown)"
        )
    return result
