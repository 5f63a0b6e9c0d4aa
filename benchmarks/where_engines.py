"""Evaluation speed of the expression libraries considered for `--where` (docs/filters.md).

Run: .venv/bin/python benchmarks/where_engines.py [--records 100000]

Each library that is installed (`pip install jq jmespath cel-python`; common-expression-language
is kafkaops' own dependency) evaluates one predicate on a decoded header,
headers["kafka_dlt-exception-fqcn"] == "...TimeoutException", over the same records: built
whole (key, value, headers, error...) and, for CEL and JMESPath, with only `headers` (what
kafkaops passes: only the fields an expression names). No target: the figures chose the library.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from typing import Any

TIMEOUT = "org.apache.kafka.common.errors.TimeoutException"
HEADER = "kafka_dlt-exception-fqcn"


def records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "key": f"player-{i % 97}",
            "value": {"brandId": f"casino-{i % 10}", "n": i, "pad": "x" * 300},
            "headers": {HEADER: TIMEOUT if i % 3 == 0 else "java.lang.IllegalStateException", "brand": "c7"},
            "error": {"class": "x", "message": "m", "signature": "s"},
            "partition": i % 3,
            "offset": i,
            "replay_count": 0,
        }
        for i in range(n)
    ]


def rate(name: str, items: list[Any], test: Callable[[Any], Any]) -> None:
    start = time.perf_counter()
    selected = sum(1 for item in items if test(item))
    elapsed = time.perf_counter() - start
    print(f"{name:<44} {len(items) / elapsed:>12,.0f} evaluations/s ({selected} selected)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    n = parser.parse_args().records
    whole = records(n)
    only_headers = [{"headers": r["headers"]} for r in whole]
    have = {m: importlib.util.find_spec(m) is not None for m in ("cel", "jq", "jmespath", "celpy")}
    if have["cel"]:
        import cel

        program = cel.compile(f'headers["{HEADER}"] == "{TIMEOUT}"')
        rate("common-expression-language (CEL), whole", whole, program.execute)
        rate("common-expression-language (CEL), headers", only_headers, program.execute)
    if have["jq"]:
        import jq

        query = jq.compile(f'.headers["{HEADER}"] == "{TIMEOUT}"')
        rate("jq, whole", whole, lambda r: query.input_value(r).first())
    if have["jmespath"]:
        import jmespath

        expression = jmespath.compile(f"headers.\"{HEADER}\" == '{TIMEOUT}'")
        rate("jmespath, whole", whole, expression.search)
        rate("jmespath, headers", only_headers, expression.search)
    if have["celpy"]:
        import celpy

        env = celpy.Environment()
        slow = env.program(env.compile(f'headers["{HEADER}"] == "{TIMEOUT}"'))
        part = whole[: max(1, n // 20)]
        rate(
            "cel-python, whole (1/20 of the records)",
            part,
            lambda r: slow.evaluate({k: celpy.json_to_cel(v) for k, v in r.items()}),
        )
    missing = [m for m, ok in have.items() if not ok]
    if missing:
        print("not installed:", ", ".join(missing))


if __name__ == "__main__":
    main()
