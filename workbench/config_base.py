"""Typed, validated configuration: dataclasses built from YAML with errors that name file and field.

Every stage owns one dataclass whose fields carry a default and ``metadata={"help": ...}`` (the TRL
convention). :func:`build` turns a plain mapping (parsed YAML) into such a dataclass, checking every
value against its annotation and refusing unknown keys, so a typo in a YAML file fails at load time
with ``configs/x.yaml: sft.learnig_rate: unknown field`` instead of silently using a default.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type; the message names where."""


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, plus YAML 1.2 floats without a dot (``1e-4``), and no duplicate keys."""

    def construct_mapping(self, node, deep=False):
        """A mapping; a key given twice is an error naming its line (PyYAML would keep the last silently)."""
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            if isinstance(key, str):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


# PyYAML's float pattern needs a dot, so `1e-4` would be the string "1e-4" (refused as "expected a number").
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_run_name(name: str) -> None:
    """Refuse a run name that is not one plain folder name, so runs/<name> stays under runs/."""
    if not RUN_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"name: {name!r} is not a plain folder name (letters, digits, '.', '_' and '-', "
                          "starting with a letter or digit, no '..', at most 100 characters); "
                          "set run_dir to put the run folder elsewhere")


def safe_load(text: str, where: str) -> Any:
    """Parse YAML text with the workbench's loader, or raise ConfigError naming ``where``."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML: nested too deeply") from None


def field(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a default and a help text (mutable defaults are copied per instance)."""
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        value = default
        return dataclasses.field(
            default_factory=lambda: _copy(value), metadata={"help": help}, **kwargs
        )
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def _copy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


def _join(where: str, name: str) -> str:
    """``file.yaml:`` + ``a`` -> ``file.yaml: a``; ``file.yaml: a`` + ``b`` -> ``file.yaml: a.b``."""
    return f"{where} {name}" if where.endswith(":") else f"{where}.{name}"


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp`` and return it (ints widen to floats)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: expected one of {list(get_args(tp))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_tp, val_tp = get_args(tp) or (Any, Any)
        return {
            _coerce(k, key_tp, _join(where, str(k))): _coerce(v, val_tp, _join(where, str(k)))
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return build(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from mapping ``data``; ``where`` ("file.yaml:") prefixes every error."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(map(str, set(data) - set(fields)))
    if unknown:
        raise ConfigError(
            f"{_join(where, unknown[0])}: unknown field (known: {', '.join(sorted(fields))})"
        )
    kwargs = {name: _coerce(value, hints[name], _join(where, name)) for name, value in data.items()}
    try:
        obj = cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ConfigError as exc:
            raise ConfigError(_join(where, str(exc))) from exc
    return obj


def to_dict(obj: Any) -> Any:
    """A dataclass config as plain data (for YAML and manifests)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=VALUE`` (VALUE in YAML syntax) into (["a","b","c"], value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. pretrain.max_steps=100")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {text!r}: empty key")
    value = safe_load(raw, f"override {text!r}: value") if raw.strip() else ""
    return path, value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.path=value`` overrides to a nested mapping in place and return it."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict:
    """Read a non-empty YAML mapping, with errors that name the file (and the line, for bad bytes)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                          "save the file as UTF-8") from None
    data = safe_load(text, str(path))
    if data is None:
        raise ConfigError(f"{path}: the config file is empty; give at least `name:` (configs/demo.yaml "
                          "shows every field)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}")
    return data
