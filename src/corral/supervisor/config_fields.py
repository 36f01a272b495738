"""Turning a TOML table into dataclass keywords, driven by the dataclass's fields.

There is one converter per field type (``bool``, ``int``, ``float``, ``str``,
``tuple[str, ...]``, ``Literal[...]``, ``X | None``, ``ReadySpec``, the
environment table) and one per special syntax named by a field's
``metadata["parse"]``; never a parser per key. Valid keys, required keys,
defaults and bounds all come from :func:`dataclasses.fields`.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from corral.errors import ConfigError
from corral.supervisor.config_schema import ReadySpec
from corral.supervisor.config_source import ConfigSource, Section
from corral.supervisor.config_values import (
    ValueProblem,
    describe_value,
    parse_address,
    parse_command,
    parse_environment,
    parse_ready,
    parse_signal,
    resolve_path,
)

__all__ = ["FieldSpec", "convert_table", "convert_value", "field_specs", "unknown_key_problem"]

_APP_REF = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?")

Converter = Callable[[Any, Mapping[str, Any], Path], Any]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One key of a section: its type, metadata and default (``MISSING``: required)."""

    name: str
    hint: Any
    meta: Mapping[str, Any]
    default: Any

    @property
    def required(self) -> bool:
        """True if the file must set this key."""
        return self.default is MISSING

    @property
    def doc(self) -> str:
        """The key's one-line description."""
        return str(self.meta.get("doc", ""))


@functools.cache
def field_specs(cls: type) -> Mapping[str, FieldSpec]:
    """The file keys of dataclass ``cls``, in declaration order (internal fields left out)."""
    hints = get_type_hints(cls)
    return types.MappingProxyType(
        {
            f.name: FieldSpec(f.name, hints[f.name], f.metadata, f.default)
            for f in fields(cls)
            if not f.metadata.get("internal")
        }
    )


def convert_table(
    table: Mapping[str, Any],
    specs: Mapping[str, FieldSpec],
    *,
    source: ConfigSource,
    section: Section,
) -> dict[str, Any]:
    """The converted values of ``table``; ConfigError with file and line for any problem."""
    _check_keys(table, specs, source=source, section=section)
    converted = _default_paths(specs, base_dir=source.path.parent)
    for key, value in table.items():
        try:
            converted[key] = convert_value(value, specs[key], base_dir=source.path.parent)
        except ValueProblem as problem:
            raise source.error(section, key, str(problem)) from None
    return converted


def _default_paths(specs: Mapping[str, FieldSpec], *, base_dir: Path) -> dict[str, Any]:
    """Path defaults (``.corral/logs``) made absolute too: every path in the result is."""
    return {
        name: resolve_path(spec.default, base_dir=base_dir)
        for name, spec in specs.items()
        if spec.meta.get("path") and isinstance(spec.default, str)
    }


def _check_keys(
    table: Mapping[str, Any],
    specs: Mapping[str, FieldSpec],
    *,
    source: ConfigSource,
    section: Section,
) -> None:
    for key in table:
        if key not in specs:
            raise source.error(section, key, unknown_key_problem(key, specs))
    for spec in specs.values():
        if spec.required and spec.name not in table:
            raise source.error(
                section, None, f"missing required key {spec.name!r} ({spec.doc}); add it"
            )


def unknown_key_problem(key: str, valid: Mapping[str, Any]) -> str:
    """``unknown key 'x' (did you mean 'y'?); valid keys are: ...``."""
    close = difflib.get_close_matches(key, list(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}; valid keys are: {', '.join(sorted(valid))}"


def convert_value(value: Any, spec: FieldSpec, *, base_dir: Path) -> Any:
    """``value`` as field ``spec`` holds it, or ValueProblem saying what was expected."""
    parse = spec.meta.get("parse")
    if parse is not None:
        return _PARSERS[parse](value, spec.meta, base_dir)
    return _convert_typed(value, spec.hint, spec.meta, base_dir)


def _convert_typed(value: Any, hint: Any, meta: Mapping[str, Any], base_dir: Path) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        return _choice(value, get_args(hint))
    if origin in (Union, types.UnionType):
        # TOML has no null, so ``X | None`` reads as X; None is only ever the default.
        (inner,) = (arg for arg in get_args(hint) if arg is not type(None))
        return _convert_typed(value, inner, meta, base_dir)
    converter = _BY_TYPE.get(hint)
    if converter is None:
        raise ConfigError(f"corral bug: no converter for config field type {hint!r}")
    return converter(value, meta, base_dir)


def _choice(value: Any, choices: tuple[Any, ...]) -> Any:
    if value not in choices or isinstance(value, bool):
        expected = ", ".join(repr(c) for c in choices)
        raise ValueProblem(f"expected one of {expected}, got {describe_value(value)}")
    return value


def _bool(value: Any, meta: Mapping[str, Any], base_dir: Path) -> bool:
    if not isinstance(value, bool):
        raise ValueProblem(f"expected true or false, got {describe_value(value)}")
    return value


def _int(value: Any, meta: Mapping[str, Any], base_dir: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueProblem(f"expected an integer, got {describe_value(value)}")
    return int(_at_least(value, meta))


def _float(value: Any, meta: Mapping[str, Any], base_dir: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueProblem(f"expected a number of seconds, got {describe_value(value)}")
    if not math.isfinite(value):
        raise ValueProblem(f"expected a finite number, got {value}")
    return float(_at_least(value, meta))


def _at_least(value: float, meta: Mapping[str, Any]) -> float:
    minimum = meta.get("min")
    if minimum is not None and value < minimum:
        raise ValueProblem(f"must be at least {minimum}, got {value}")
    return value


def _str(value: Any, meta: Mapping[str, Any], base_dir: Path) -> str:
    if not isinstance(value, str):
        raise ValueProblem(f"expected a string, got {describe_value(value)}")
    if meta.get("path"):
        return resolve_path(value, base_dir=base_dir)
    if not value.strip():
        raise ValueProblem("expected a non-empty string")
    return value


def _str_list(value: Any, meta: Mapping[str, Any], base_dir: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueProblem(f"expected a list of strings, got {describe_value(value)}")
    if any(not item.strip() for item in value):
        raise ValueProblem("an item of the list is empty")
    return tuple(value)


def _environment(
    value: Any, meta: Mapping[str, Any], base_dir: Path
) -> tuple[tuple[str, str], ...]:
    return parse_environment(value)


def _ready(value: Any, meta: Mapping[str, Any], base_dir: Path) -> ReadySpec:
    return parse_ready(value, base_dir=base_dir)


def _signal(value: Any, meta: Mapping[str, Any], base_dir: Path) -> int:
    return parse_signal(value)


def _command(value: Any, meta: Mapping[str, Any], base_dir: Path) -> tuple[str, ...]:
    return parse_command(value)


def _stderr(value: Any, meta: Mapping[str, Any], base_dir: Path) -> str:
    return "stdout" if value == "stdout" else _str(value, {"path": True}, base_dir)


def _address(value: Any, meta: Mapping[str, Any], base_dir: Path) -> str:
    return parse_address(_str(value, meta, base_dir), base_dir=base_dir)


def _app(value: Any, meta: Mapping[str, Any], base_dir: Path) -> str:
    text = _str(value, meta, base_dir)
    if not _APP_REF.fullmatch(text):
        raise ValueProblem(f'{text!r} is not of the form MODULE:ATTRIBUTE (e.g. "tasks:app")')
    return text


def _queues(value: Any, meta: Mapping[str, Any], base_dir: Path) -> tuple[str, ...]:
    queues = _str_list(value, meta, base_dir)
    if not queues:
        raise ValueProblem('name at least one queue, e.g. ["default"]')
    if any("," in queue for queue in queues):
        raise ValueProblem("a queue name cannot contain a comma; give one queue per list item")
    return queues


_BY_TYPE: dict[Any, Converter] = {
    bool: _bool,
    int: _int,
    float: _float,
    str: _str,
    tuple[str, ...]: _str_list,
    tuple[tuple[str, str], ...]: _environment,
    ReadySpec: _ready,
}

_PARSERS: dict[str, Converter] = {
    "signal": _signal,
    "command": _command,
    "stderr": _stderr,
    "address": _address,
    "app": _app,
    "queues": _queues,
}
