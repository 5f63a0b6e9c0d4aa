"""The config file itself: finding it, trusting it, reading it safely, checking its keys, setting
its context.

A config file decides what kafkaops connects to and which code librdkafka loads, so it is read
only when nobody else could have written it (owner, mode), and the properties that load code or
run commands only from the user's own file. It is input like any other too: it may not be
UTF-8, may hold a recursive alias or a "billion laughs" of nested ones, may name a context with
a number. Each is one ConfigError (exit 2), found before anything is built from the file. Keys
are checked against the known ones with a "did you mean" hint, so a typo never silently keeps a
default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafkaops.common.errors import ConfigError

TOP_LEVEL_KEYS = ("current-context", "contexts")
# A config file needs a few hundred values; a document expanding past this is an alias bomb.
MAX_EXPANDED_NODES = 50_000
MAX_DEPTH = 64
# `${VAR}` or `${VAR:-default}`: a value taken from the environment when the file is loaded.
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class ConfigSource:
    """A config file found by the lookup, and how it was found."""

    path: Path  # absolute, so that a message says which directory `./kafkaops.yaml` was in
    origin: str  # --config, $KAFKAOPS_CONFIG, the working directory, the user config directory


@dataclass(frozen=True)
class ConfigFile:
    """A config file read and trusted: its data, and its owner and mode as read (fstat)."""

    path: Path
    origin: str
    data: dict[str, Any]
    owner: int | None  # None where the platform has no user ids
    mode: int
    warnings: tuple[str, ...] = ()


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> ConfigSource | None:
    """`--config`, else `$KAFKAOPS_CONFIG`, else `./kafkaops.yaml`, else the user config dir.

    The one lookup: loading settings, `config contexts`, `use-context` and shell completion
    all ask it."""
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
            return ConfigSource(path.absolute(), origin)
    local = Path("kafkaops.yaml")
    if local.is_file():
        return ConfigSource(local.absolute(), "the working directory")
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = Path(base) / "kafkaops" / "config.yaml"
    return ConfigSource(user.absolute(), "the user config directory") if user.is_file() else None


def running_uid() -> int | None:
    """The user kafkaops runs as; None where the platform has no user ids (Windows)."""
    return os.getuid() if hasattr(os, "getuid") else None


def open_config_file(
    explicit: str | None, env: Mapping[str, str], *, uid: int | None = None
) -> ConfigFile | None:
    """The config file the lookup finds, refused unless trusted (see `distrust`), read and
    checked; None when there is none. `uid`: the running user (default: this process's)."""
    found = find_config_file(explicit, env)
    return None if found is None else load_config_file(found, uid=running_uid() if uid is None else uid)


def load_config_file(source: ConfigSource, *, uid: int | None) -> ConfigFile:
    """Open the file once and judge the file that was opened (fstat), not the name: what is
    checked is what is read."""
    path = source.path
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        owner = st.st_uid if uid is not None else None
        problem = distrust(st.st_mode, owner, uid) if uid is not None else None
        if problem:
            raise ConfigError(
                f"config file {path} (from {source.origin}) {problem}: refused",
                hint="a config file decides what kafkaops connects to and which code it loads; "
                "fix its owner or mode, or name your own file with --config",
            )
        try:
            raw = fh.read()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    data = config_data(decode(raw, path), path)
    warnings: tuple[str, ...] = ()
    exposed = plaintext_secrets(data) if st.st_mode & 0o044 and uid is not None else []
    if exposed:
        who = {0o044: "group and others", 0o040: "its group", 0o004: "others"}[st.st_mode & 0o044]
        warnings = (
            f"config file {path} holds a plaintext secret ({exposed[0]}) and is readable by {who}; "
            f"permissions should be u=rw (0600) or less, or use ${{VAR}} for the secret",
        )
    return ConfigFile(path, source.origin, data, owner, st.st_mode & 0o7777, warnings)


def distrust(mode: int, owner: int | None, uid: int) -> str | None:
    """Why a config file with this mode and owner is not to be read by user `uid`, or None.

    As ssh and libpq judge their files: others must not be able to write it (group- or
    world-writable), and it must be the user's own or root's."""
    if owner is not None and owner not in (uid, 0):
        you = "root (you)" if uid == 0 else f"you (uid {uid}) or root"
        return f"is owned by {_user_name(owner)}, not by {you}"
    if mode & 0o002:
        return "is world-writable"
    if mode & 0o020:
        return "is group-writable"
    return None


def _user_name(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


# librdkafka properties that load code or run a command (librdkafka's CONFIGURATION.md):
# taken only from a config file the running user owns. Properties holding C pointers or
# callbacks (ssl_engine_callback_data, oauthbearer_token_refresh_cb, opaque, ...) cannot be set
# from text at all: librdkafka refuses them.
CODE_PROPERTIES: dict[str, str] = {
    "plugin.library.paths": "loads shared libraries",
    "ssl.engine.location": "loads an OpenSSL engine library",
    "ssl.providers": "loads OpenSSL providers",
    "sasl.kerberos.kinit.cmd": "is a shell command",
    # The default kinit command substitutes these two into the shell command it runs.
    "sasl.kerberos.principal": "is put into the kinit shell command",
    "sasl.kerberos.keytab": "is put into the kinit shell command",
}


def code_property(key: str) -> str | None:
    """What a librdkafka property does that needs a trusted file, or None for plain data."""
    return CODE_PROPERTIES.get(key.strip().lower().replace("_", "."))


def check_code_properties(file: ConfigFile, keys: Collection[str], uid: int | None) -> None:
    """Refuse a property that loads code or runs a command unless `file` is the user's own (a
    root-owned file only when running as root)."""
    if uid is None or file.owner is None or file.owner == uid:
        return
    for key in keys:
        does = code_property(key)
        if does:
            raise ConfigError(
                f"kafka property {key} in config file {file.path} {does}, so it is taken only from "
                f"a file you own; {file.path} is owned by {_user_name(file.owner)}",
                hint="move it to a config file of your own, or set it in your environment "
                f"(KAFKAOPS_KAFKA_{key.strip().upper().replace('.', '_')})",
            )


def plaintext_secrets(data: Mapping[str, Any]) -> list[str]:
    """The dotted keys (contexts.prod.database.url) whose value holds a secret written out in
    the file, not taken from the environment with ${VAR}."""
    from kafkaops.common.secrets import secrets_of

    found: list[str] = []
    contexts = data.get("contexts")
    if not isinstance(contexts, Mapping):
        return found
    for name, context in contexts.items():
        if not isinstance(context, Mapping):
            continue
        for section, values in context.items():
            if not isinstance(values, Mapping):
                continue
            for key, value in values.items():
                dotted = f"{section}.{key}"
                written = [VARIABLE.sub("", s) for s in secrets_of(dotted, value)]
                if any(s.strip() for s in written):
                    found.append(f"contexts.{name}.{dotted}")
    return found


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's data, checked (no trust check: for a file already judged)."""
    return config_data(read_text(path), path)


def config_data(text: str, path: Path) -> dict[str, Any]:
    """UTF-8 text of one YAML document of bounded size, a mapping whose top-level keys are known."""
    data = parse_yaml(text, path)
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
    return decode(raw, path)


def decode(raw: bytes, path: Path) -> str:
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


def known_contexts(contexts: Collection[str]) -> str:
    """The names to offer in an error: those a command can select (not a blank one)."""
    return ", ".join(selectable_contexts(contexts)) or "none"


def selectable_contexts(names: Collection[str]) -> list[str]:
    """The context names a command can select, sorted: every one but a blank name."""
    return sorted(name for name in names if name.strip())


# -- which context a command uses ------------------------------------------------------------

CONTEXT_ENV = "KAFKAOPS_CONTEXT"


@dataclass(frozen=True)
class ContextChoice:
    """The context a command uses (None: no file, or several contexts and none current), and
    what chose it: `--context`, `$KAFKAOPS_CONTEXT`, `current-context` or `the only context`."""

    name: str | None
    chosen_by: str | None = None


def asked_context(flag: str | None, env: Mapping[str, str], known: Collection[str] = ()) -> ContextChoice:
    """The context asked for: `--context`, else `$KAFKAOPS_CONTEXT` (set but empty: not set).
    An empty `--context` is refused: `--context "$CTX"` with CTX unset must not quietly mean
    the current context."""
    if flag is not None:
        if not flag.strip():
            raise ConfigError(f"--context is empty: name a context (known contexts: {known_contexts(known)})")
        return ContextChoice(flag, "--context")
    if env.get(CONTEXT_ENV):
        return ContextChoice(env[CONTEXT_ENV], f"${CONTEXT_ENV}")
    return ContextChoice(None)


def choose_context(
    data: Mapping[str, Any], path: Path | None, *, flag: str | None, env: Mapping[str, str]
) -> ContextChoice:
    """The one rule for which context a command uses, for loading settings, `config contexts`,
    `config use-context` and completion alike: `--context`, else `$KAFKAOPS_CONTEXT`, else the
    file's `current-context`, else the file's only context. A name the file does not have is
    refused."""
    contexts = context_names(data, path)
    choice = asked_context(flag, env, contexts)
    if choice.name is not None and path is None:
        raise ConfigError(f"context {choice.name!r} asked for, but no config file was found")
    if choice.name is None:
        current = data.get("current-context")
        if current is not None and not isinstance(current, str):
            raise ConfigError(f"'current-context' in {path} must be a context name")
        if current is not None:
            choice = ContextChoice(current, "current-context")
        elif len(contexts) == 1:
            choice = ContextChoice(next(iter(contexts)), "the only context")
        else:
            return choice
    if choice.name not in contexts:
        where = f" in {path}" if path else ""
        raise ConfigError(
            f"no context named {choice.name!r}{where} (known contexts: {known_contexts(contexts)})"
        )
    return choice


def select_context(
    data: Mapping[str, Any], path: Path | None, *, flag: str | None, env: Mapping[str, str]
) -> tuple[str | None, dict[str, Any]]:
    """The chosen context's name and settings (`choose_context`)."""
    name = choose_context(data, path, flag=flag, env=env).name
    if name is None:
        return None, {}
    context = context_names(data, path)[name] or {}
    if not isinstance(context, dict):
        raise ConfigError(f"context {name!r} must be a mapping")
    return name, context


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
