"""The service's effective producer settings, read from Spring Boot's `/actuator/configprops`.

Spring Boot builds the producer's properties from `spring.kafka.*` in this order, each later
one winning: the common typed keys, `spring.kafka.properties.*`, the producer's typed keys
(`acks`, `batch-size`, `compression-type`, ...), then `spring.kafka.producer.properties.*`.
Values are masked (`******`) unless the service sets
`management.endpoint.configprops.show-values`; an endpoint not exposed is said in one line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kafkaops.kafka.producer_settings import EXPECTED
from kafkaops.status.limits import cut

EXPOSE = "management.endpoints.web.exposure.include=configprops"
SHOW_VALUES = "management.endpoint.configprops.show-values=always"
MASK = "******"
_KAFKA_PREFIX = "spring.kafka"
# The producer's typed keys (camelCase in configprops) and the Kafka property each sets.
_TYPED = {
    "acks": "acks",
    "batchSize": "batch.size",
    "compressionType": "compression.type",
    "retries": "retries",
    "bufferMemory": "buffer.memory",
}
_DATA_SIZE = re.compile(r"^(\d+)\s*(B|KB|MB|GB)?$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


class NotProducerSettings(ValueError):
    """The body is no configprops document with spring.kafka in it: one line says why."""


def producer_settings(data: Mapping[str, Any]) -> dict[str, str]:
    """{Kafka property: value} of the producer, for the settings kafkaops compares, from a
    configprops document. Raises NotProducerSettings when there is none to read."""
    kafka = _kafka_bean(data)
    if kafka is None:
        raise NotProducerSettings(
            "configprops has no spring.kafka properties (is spring-kafka in the service?)"
        )
    given = kafka.get("producer")
    producer: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    found: dict[str, Any] = {}
    _put_all(found, kafka.get("properties"))
    for key, name in _TYPED.items():
        if producer.get(key) is not None:
            found[name] = producer[key]
    _put_all(found, producer.get("properties"))
    wanted = {k: _text(found[k]) for k in EXPECTED if k in found}
    if any(v == MASK for v in wanted.values()):
        raise NotProducerSettings(f"configprops masks the values ({MASK}): set {SHOW_VALUES} on the service")
    if "batch.size" in wanted:
        wanted["batch.size"] = _bytes(wanted["batch.size"])
    return wanted


def _kafka_bean(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `properties` of the bean whose prefix is spring.kafka, in any application context
    (Spring Boot 2.x and 3.x: {"contexts": {name: {"beans": {...}}}})."""
    contexts = data.get("contexts")
    if not isinstance(contexts, Mapping):
        raise NotProducerSettings('unexpected JSON (no "contexts": not Spring Boot\'s configprops)')
    for context in contexts.values():
        beans = context.get("beans") if isinstance(context, Mapping) else None
        if not isinstance(beans, Mapping):
            continue
        for bean in beans.values():
            if isinstance(bean, Mapping) and bean.get("prefix") == _KAFKA_PREFIX:
                properties = bean.get("properties")
                return properties if isinstance(properties, Mapping) else {}
    return None


def _put_all(found: dict[str, Any], properties: Any) -> None:
    if isinstance(properties, Mapping):
        found.update({str(k): v for k, v in properties.items() if v is not None})


def _text(value: Any) -> str:
    return cut(
        value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value), 64
    )


def _bytes(value: str) -> str:
    """A Spring DataSize (`32KB`, `32768B`) as bytes, as Kafka writes batch.size."""
    match = _DATA_SIZE.match(value.strip())
    if match is None:
        return value
    return str(int(match.group(1)) * _UNITS[(match.group(2) or "B").upper()])
