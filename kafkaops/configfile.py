"""The config file itself: finding it, reading it safely, checking its keys, setting its context.

A config file is input like any other: it may not be UTF-8, may hold a recursive alias or a
"billion laughs" of nested ones, may name a context with a number. Each is one ConfigError
(exit 2), found before anything is built from the file. Keys are checked against the known
ones with a "did you mean" hint, so a typo never silently keeps a default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from kafkaops.errors import ConfigError

TOP_LEVEL_KEYS = ("current-context", "contexts")
# A config file needs a few hundred values; a document expanding past this is an alias bomb.
MAX_EXPANDED_NODES = 50_000
MAX_DEPTH = 64


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """`--config`, else `$KAFKAOPS_CONFIG`, else `./kafkaops.yaml`, else the user config dir."""
    for origin, value in (("--config", explicit), ("$KAFKAOPS_CONFIG", env.get("KAFKAOPS_CONFIG"))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                why = (
                    "is a directory"
                    if path.is_dir()
                    else "is not a regular file"
                    if path.exists()
                    else "does not exist"
                )
                raise ConfigError(f"config file {path} (from {origin}) {why}")
            return path
    local = Path("kafkaops.yaml")
    if local.is_file():
        return local
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = Path(base) / "kafkaops" / "config.yaml"
    return user if user.is_file() else None


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's data, checked: UTF-8, one YAML document of bounded size, a mapping whose
    top-level keys are known."""
    data = parse_yaml(read_text(path), path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping with 'contexts'")
    check_keys(data, TOP_LEVEL_KEYS, f"the top level of {path}")
    return data


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"config file {path} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}",
            hint="save it as UTF-8",
        ) from None


def parse_yaml(text: str, path: Path | None) -> Any:
    """One YAML document, its aliases checked before anything is built from it: no alias that
    contains itself, no expansion beyond MAX_EXPANDED_NODES values, no nesting beyond MAX_DEPTH."""
    import yaml

    loader = None
    try:
        loader = yaml.SafeLoader(text)  # the reader refuses control characters here already
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, path)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if isinstance(exc, yaml.reader.ReaderError):  # a control character the reader refuses
            line = text.count("\n", 0, exc.position) + 1
        where = f" at line {line}" if line else ""
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None)
        raise ConfigError(
            f"config file {path} is not valid YAML{where}" + (f": {problem}" if problem else "")
        ) from None
    except RecursionError:
        raise ConfigError(f"config file {path} is nested too deeply (more than {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_expansion(root: Any, path: Path | None) -> None:
    """Walk the composed node graph as the constructed data would be walked, aliases expanded,
    without building it: refuse cycles, deep nesting and exponential expansion."""
    import yaml

    visits = 0
    on_path: set[int] = set()
    # (node, depth, entering): a node is pushed again with entering=False to leave the path.
    stack: list[tuple[Any, int, bool]] = [(root, 1, True)]
    while stack:
        node, depth, entering = stack.pop()
        if not entering:
            on_path.discard(id(node))
            continue
        if id(node) in on_path:
            raise ConfigError(f"config file {path} has a recursive alias (an anchor that contains itself)")
        visits += 1
        if visits > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"config file {path} expands to more than {MAX_EXPANDED_NODES:,} values "
                "(nested aliases); refused"
            )
        if depth > MAX_DEPTH:
            raise ConfigError(f"config file {path} is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            continue
        on_path.add(id(node))
        stack.append((node, depth, False))
        stack.extend((child, depth + 1, True) for child in children)


def check_keys(mapping: Mapping[Any, Any], known: Collection[str] | None, where: str) -> None:
    """Every key of `mapping` is text and, unless `known` is None (free-form), a known one.

    The one mechanism every section uses: an unknown key is a ConfigError naming all unknown
    keys at once, each with its closest known key.
    """
    for key in mapping:
        if not isinstance(key, str):
            raise ConfigError(
                f"key {key!r} in {where} is not a name (YAML read it as {type(key).__name__})",
                hint=f"quote it: '{key}'",
            )
    if known is None:
        return
    unknown = [k for k in mapping if k not in known]
    if not unknown:
        return
    import difflib

    guesses = {k: difflib.get_close_matches(k, list(known), n=1, cutoff=0.6) for k in unknown}
    listed = ", ".join(repr(k) for k in unknown)
    message = f"unknown key{'s' if len(unknown) > 1 else ''} {listed} in {where}"
    suggestions = [f"{g[0]!r}" + (f" for {k!r}" if len(unknown) > 1 else "") for k, g in guesses.items() if g]
    hint = f"did you mean {', '.join(suggestions)}? " if suggestions else ""
    raise ConfigError(message, hint=f"{hint}known keys: {', '.join(known)}")


def context_names(data: Mapping[str, Any], path: Path | None) -> dict[str, Any]:
    """The file's contexts, checked to be a mapping of name -> settings."""
    contexts = data.get("contexts") or {}
    if not isinstance(contexts, dict):
        raise ConfigError(f"'contexts' in {path} must be a mapping of name -> settings")
    for name in contexts:
        if not isinstance(name, str):
            raise ConfigError(
                f"context name {name!r} in {path} is not text (YAML read it as {type(name).__name__})",
                hint=f"quote it: '{name}':",
            )
    return contexts


def known_contexts(contexts: Mapping[str, Any]) -> str:
    """The names to offer in an error: those a command can select (not a blank one)."""
    return ", ".join(sorted(name for name in contexts if name.strip())) or "none"


def select_context(
    data: Mapping[str, Any], wanted: str | None, path: Path | None
) -> tuple[str | None, dict[str, Any]]:
    contexts = context_names(data, path)
    name = wanted or data.get("current-context")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"'current-context' in {path} must be a context name")
    if name is None and len(contexts) == 1:
        name = next(iter(contexts))
    if name is None:
        return None, {}
    if name not in contexts:
        where = f" in {path}" if path else ""
        raise ConfigError(f"no context named {name!r}{where} (known contexts: {known_contexts(contexts)})")
    context = contexts[name] or {}
    if not isinstance(context, dict):
        raise ConfigError(f"context {name!r} must be a mapping")
    return str(name), context


# -- config use-context ------------------------------------------------------------------------

_CURRENT_LINE = (
    r"^current-context[ \t]*:(?P<value>[ \t]*(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^#\r\n]*?))"
    r"(?P<tail>[ \t]*(?:#[^\r\n]*)?)(?=\r?$)"
)
_PLAIN_NAME = r"[A-Za-z_][A-Za-z0-9_.\-/]*"
_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"}


def set_current_context(path: Path, name: str) -> bool:
    """Write `current-context: NAME` into the config file, atomically.

    One line is edited (or added), so comments and layout stay; the result is parsed again and
    must hold the same data with the new context. When a line edit cannot do that (flow style,
    an odd layout), the file is rewritten from its data and comments are lost: returns False
    then, True when comments were kept.
    """
    path = path.resolve()
    text = read_text(path)
    data = read_config_file(path)
    contexts = context_names(data, path)
    if not name.strip():  # a context no command could select: "" reads as no current-context
        raise ConfigError(f"a context name cannot be empty (known contexts: {known_contexts(contexts)})")
    if name not in contexts:
        raise ConfigError(f"no context named {name!r} in {path} (known contexts: {known_contexts(contexts)})")
    wanted = {**data, "current-context": name}
    scalar = name if re.fullmatch(_PLAIN_NAME, name) and name.lower() not in _YAML_WORDS else _quoted(name)
    edited = _edit_line(text, scalar)
    if edited is not None and _same_data(edited, wanted, path):
        _write_atomically(path, edited)
        return True
    import yaml

    dumped = yaml.safe_dump(
        {"current-context": name, **{k: v for k, v in data.items() if k != "current-context"}},
        sort_keys=False,
        allow_unicode=True,
    )
    if not _same_data(dumped, wanted, path):  # never write what would not read back the same
        raise ConfigError(f"cannot rewrite {path} safely; set current-context: {name} by hand")
    _write_atomically(path, dumped)
    return False


def _quoted(name: str) -> str:
    import json

    return json.dumps(name, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _edit_line(text: str, scalar: str) -> str | None:
    matches = list(re.finditer(_CURRENT_LINE, text, re.M))
    if len(matches) > 1:
        return None
    if matches:
        m = matches[0]
        tail = m.group("tail")
        return text[: m.start("value")] + " " + scalar + (tail if tail.strip() else "") + text[m.end() :]
    newline = "\r\n" if "\r\n" in text else "\n"
    # After the leading comment block, so a header comment stays on top.
    lines = text.splitlines(keepends=True)
    at = 0
    while at < len(lines) and (lines[at].lstrip().startswith("#") or not lines[at].strip()):
        at += 1
    if at < len(lines) and lines[at].startswith("---"):
        return None
    return "".join(lines[:at]) + f"current-context: {scalar}{newline}" + "".join(lines[at:])


def _same_data(text: str, wanted: Mapping[str, Any], path: Path) -> bool:
    try:
        return bool(parse_yaml(text, path) == wanted)
    except ConfigError:
        return False


def _write_atomically(path: Path, text: str) -> None:
    import tempfile

    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # a config file holding secrets may be 0600: keep it so
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write config file {path}: {exc.strerror}") from None
