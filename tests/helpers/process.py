"""kafkaops as a real process, started the way a user's shell starts it.

For what only a process shows: the entry point's exit codes, signals, closed or full standard
streams, a terminal, the environment. Everything else drives the CLI in-process (the `cli`
fixture of tests/conftest.py), which is faster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# How every test starts kafkaops: the interpreter of the suite, so the worktree's package runs.
KAFKAOPS = (sys.executable, "-m", "kafkaops")


def process_env(
    *,
    config: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    inherit: bool = True,
    drop: tuple[str, ...] = (),
) -> dict[str, str]:
    """This process's environment without the developer's KAFKAOPS_* settings (the test
    broker's KAFKAOPS_TEST_* stay) and without the names in `drop`, then `$KAFKAOPS_CONFIG`
    for `config`, then `env`. `inherit=False` starts from nothing: only what is given."""
    full = {
        k: v
        for k, v in os.environ.items()
        if inherit and k not in drop and (not k.startswith("KAFKAOPS_") or k.startswith("KAFKAOPS_TEST_"))
    }
    if config is not None:
        full["KAFKAOPS_CONFIG"] = str(config)
    full.update(env or {})
    return full


def run_kafkaops(
    *args: str,
    config: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    inherit: bool = True,
    input: str | None = None,
    timeout: float = 60,
    close: tuple[int, ...] = (),
    prefix: tuple[str, ...] = (),
    **popen: Any,
) -> subprocess.CompletedProcess[str]:
    """Run `kafkaops ARGS...` to the end, text captured (stdout and stderr apart).

    `close` names standard descriptors closed before it starts (as `>&-` and `2>&-` do in a
    shell); `prefix` goes before the interpreter (`env -u HOME`, `setpriv ...`); `popen`
    overrides anything else subprocess.run is given (`cwd`, `stdout`). `inherit=False`: the
    process sees only `config` and `env`, nothing of this environment.
    """

    def closing() -> None:
        for fd in close:
            os.close(fd)

    options: dict[str, Any] = {
        "env": process_env(config=config, env=env, inherit=inherit),
        "input": input,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "text": True,
        "timeout": timeout,
        "preexec_fn": closing if close else None,
        **popen,
    }
    return subprocess.run([*prefix, *KAFKAOPS, *args], **options)


def timed_kafkaops(
    *args: str, config: Path | str | None = None, timeout: float = 60
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`run_kafkaops` and the seconds it took, for the tests of deadlines."""
    started = time.monotonic()
    done = run_kafkaops(*args, config=config, timeout=timeout)
    return done, time.monotonic() - started


def start_kafkaops(
    *args: str,
    config: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    inherit: bool = True,
    **popen: Any,
) -> subprocess.Popen[str]:
    """Start `kafkaops ARGS...` and return at once (to signal it, or to watch it work): no
    stdin, text stdout and stderr piped; `popen` overrides any of that."""
    options: dict[str, Any] = {
        "env": process_env(config=config, env=env, inherit=inherit),
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "text": True,
        **popen,
    }
    return subprocess.Popen([*KAFKAOPS, *args], **options)


def finish(process: subprocess.Popen[str], timeout: float = 90.0) -> tuple[int, str, str]:
    """Wait (bounded) for a started kafkaops; kill it and fail if it hangs."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"kafkaops did not finish within {timeout}s; stderr: {err[-2000:]}") from None
    return process.returncode, out, err
