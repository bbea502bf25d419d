"""Frozen dataclass configs, named presets and typed `--set a.b=value` overrides.

Every app composes its own `Config` from per-concern dataclasses and exposes
`PRESETS = {"tiny": ..., "default": ..., "gpu": ...}`. The CLI helpers here turn
`--config NAME --set model.units=(64,64) --run-dir DIR` into a validated config.

    parser = build_parser("Train the speech model", PRESETS)
    args = parser.parse_args(argv)
    cfg = resolve_config(PRESETS, args.config, args.set)
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence


from common.errors import ConfigError  # noqa: E402,F401  (re-exported: apps import it from here)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "|".join(str(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Checks `value` against the annotation `tp` and converts where lossless (int→float, list→tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: {value!r} matches none of {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if isinstance(value, (int, float, str, bool)) and not isinstance(value, tuple):
            value = (value,)  # `--set model.units=64` means a one-layer stack.
        if not isinstance(value, (tuple, list)):
            raise ConfigError(f"{key}: expected a tuple like (64, 64), got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if args and len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)} in {value!r}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args)) if args else tuple(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return from_dict(tp, value, prefix=key + ".")
        raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    return value


def check_fields(cfg: Any, section: str, checks: list[tuple[str, bool, str]]) -> None:
    """Raises a ConfigError naming the first `(field, holds, rule)` whose condition is False.

    For a dataclass's `__post_init__`: `check_fields(self, "train", [("epochs", self.epochs >= 1, ">= 1")])`
    gives "train.epochs must be >= 1, got 0". Keep each rule to its own field: `--set` replaces
    one field at a time, so a cross-field rule would reject a valid final config midway.
    """
    for name, holds, rule in checks:
        if not holds:
            raise ConfigError(f"{section}.{name} must be {rule}, got {getattr(cfg, name)!r}")


def _parse_literal(text: str) -> Any:
    """Parses the right-hand side of `--set`: Python literals, true/false/none, else a plain string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _keeps_text(tp: Any, parsed: Any, text: str) -> bool:
    """Whether a field typed `tp` takes the `--set` text verbatim rather than its parsed literal.

    A `str` field takes any text; a `Literal` takes one of its own strings (so "none" stays
    "none" for `Literal["none", ...]`). A field that admits None (`str | None`) still reads
    none/null as None.
    """
    origin = typing.get_origin(tp)
    if tp is str:
        return True
    if origin is typing.Literal:
        return text in typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if parsed is None and type(None) in options:
            return False
        return any(_keeps_text(option, parsed, text) for option in options if option is not type(None))
    return False


def to_dict(cfg: Any) -> dict:
    """Nested plain-dict view of a config dataclass (tuples become lists in JSON)."""
    return dataclasses.asdict(cfg)


class MissingConfigKeys(ConfigError):
    """A strict `from_dict` found fields absent (a run dir from before they existed, or a damaged one)."""


def added_field(default: Any, since: str) -> Any:
    """A config field added on `since` whose `default` keeps older run dirs' behaviour: a run dir's
    config.json without it still loads (strict `from_dict`) and gets the default."""
    return dataclasses.field(default=default, metadata={"since": since})


def from_dict(cls: type, data: Mapping, prefix: str = "", strict: bool = False) -> Any:
    """Rebuilds a (nested) config dataclass from `to_dict` output, checking keys and types.

    `strict`: every field must be given (a run dir's config.json is complete: a missing field
    means a damaged or foreign file, not "use the default"), except fields declared with
    `metadata={"since": DATE}` (`added_field`): added later, their default reproduces what run dirs
    from before them did, so those run dirs still load.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping of fields, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {sorted(prefix + k for k in unknown)}; valid: {sorted(prefix + n for n in names)}"
        )
    required = {f.name for f in dataclasses.fields(cls) if "since" not in f.metadata}
    if strict and required - set(data):
        raise MissingConfigKeys(f"config key(s) {sorted(prefix + k for k in required - set(data))} missing")
    kwargs = {}
    for k, v in data.items():
        tp = hints[k]
        if strict and dataclasses.is_dataclass(tp) and isinstance(v, Mapping):
            kwargs[k] = from_dict(tp, v, prefix=prefix + k + ".", strict=True)
        else:
            kwargs[k] = _coerce(v, tp, prefix + k)
    return cls(**kwargs)


def override(cfg: Any, key: str, raw_value: Any, _prefix: str = "") -> Any:
    """Returns a copy of `cfg` with dotted `key` set; `raw_value` strings are parsed as literals."""
    head, _, rest = key.partition(".")
    full_key = _prefix + key
    if not dataclasses.is_dataclass(cfg):
        raise ConfigError(f"cannot set {_prefix + key!r}: {_prefix.rstrip('.')!r} is not a config section")
    names = [f.name for f in dataclasses.fields(cfg)]
    if head not in names:
        raise ConfigError(f"unknown config key {head!r} in {type(cfg).__name__}; valid keys: {', '.join(names)}")
    current = getattr(cfg, head)
    if rest:
        return dataclasses.replace(cfg, **{head: override(current, rest, raw_value, _prefix + head + ".")})
    if dataclasses.is_dataclass(current):
        raise ConfigError(
            f"{full_key!r} is a section; set one of its fields, e.g. {full_key}.{dataclasses.fields(current)[0].name}=..."
        )
    value = _parse_literal(raw_value) if isinstance(raw_value, str) else raw_value
    hint = typing.get_type_hints(type(cfg))[head]
    if isinstance(raw_value, str) and not isinstance(value, str) and _keeps_text(hint, value, raw_value):
        value = raw_value  # `--set data.source=123` and `--set train.lr_scaling=none` keep the text typed.
    return dataclasses.replace(cfg, **{head: _coerce(value, hint, full_key)})


def apply_overrides(cfg: Any, assignments: Sequence[str] | None) -> Any:
    """Applies `["a.b=1", "c=(2,3)"]` in order; raises ConfigError naming the bad one."""
    for item in assignments or ():
        if "=" not in item:
            raise ConfigError(f"--set expects key=value (e.g. model.units=(64,64)), got {item!r}")
        key, raw = item.split("=", 1)
        cfg = override(cfg, key.strip(), raw.strip())
    return cfg


def resolve_config(presets: Mapping[str, Any], name: str, assignments: Sequence[str] | None = None) -> Any:
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(presets)}")
    return apply_overrides(presets[name], assignments)


def save_config(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(cfg), indent=2) + "\n")


def load_config(cls: type, path: str | Path) -> Any:
    """The complete config a run dir recorded; errors name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found: is this a run directory written by a train command?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); the run dir is damaged: retrain or restore it") from None
    try:
        return from_dict(cls, data, strict=True)
    except ConfigError as err:
        hint = ("the run dir was written by an older version of the suite, before these settings existed, "
                "or is damaged" if isinstance(err, MissingConfigKeys) else "the run dir is damaged or from another app")
        raise ConfigError(f"{path} does not hold a complete {cls.__module__.split('.')[-2]} config ({err}); "
                          f"{hint}: retrain or restore it") from None


def build_parser(description: str, presets: Mapping[str, Any], run_dir_default: str | None = None) -> argparse.ArgumentParser:
    """Parser with the suite-wide flags: --config, --set (repeatable), --run-dir."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default="default", choices=list(presets), help="preset name")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config field, e.g. --set 'model.units=(64,64)' (quoted for the shell); repeatable",
    )
    parser.add_argument("--run-dir", default=run_dir_default, required=run_dir_default is None,
                        help="where config.json, model.keras, history.json and metrics.json go")
    return parser


def describe(cfg: Any, prefix: str = "") -> list[str]:
    """Flat `key = value` lines, used to log the effective config."""
    lines = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines.extend(describe(value, prefix + f.name + "."))
        else:
            lines.append(f"{prefix}{f.name} = {value!r}")
    return lines


def field_docs(cls: type) -> dict[str, str]:
    """The comment of each field of a config dataclass: its end-of-line comment, after the comment
    lines just above it. The comments are the documentation `--help` shows."""
    import inspect
    import io
    import tokenize

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    names = {f.name for f in dataclasses.fields(cls)}
    docs: dict[str, str] = {}
    above: list[str] = []
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(comments.get(number, ""))
            continue
        name = stripped.split(":", 1)[0].strip()
        if ":" in stripped and name in names and name not in docs:
            docs[name] = " ".join(above + ([comments[number]] if number in comments else [])).strip()
        above = []
    return docs


def field_table(cfg: Any, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """(`section.key`, type, value in `cfg`, comment) for every leaf field, for --help listings."""
    rows = []
    hints = typing.get_type_hints(type(cfg))
    docs = field_docs(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(field_table(value, prefix + f.name + "."))
        else:
            rows.append((prefix + f.name, _type_name(hints[f.name]), value, docs.get(f.name, "")))
    return rows
