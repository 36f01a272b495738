"""The text of a ``corral.toml``: decoding it, and pointing errors at its lines.

tomllib reports lines only for syntax errors, so the lines of sections and keys
come from a small scan of the text: good enough to send a reader to the right
place, without a second TOML parser.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.errors import ConfigError

__all__ = ["ConfigSource", "Section"]

Section = tuple[str, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_HEADER = re.compile(r"^\s*\[(?!\[)(?P<name>[^\[\]]+)\](?!\])\s*(#.*)?$")
_ARRAY_HEADER = re.compile(r"^\s*\[\[")
_KEY = re.compile(r"""^\s*(?P<key>"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*[=.]""")
_DECODE_AT = re.compile(r"\(at line (?P<line>\d+), column \d+\)$")
_DECODE_END = re.compile(r"\(at end of document\)$")


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """A config file's path and text, and the line of each section and key in it."""

    path: Path
    text: str
    _headers: dict[Section, int] = field(init=False, repr=False, compare=False)
    _keys: dict[Section, dict[str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        headers, keys = _scan(self.text)
        object.__setattr__(self, "_headers", headers)
        object.__setattr__(self, "_keys", keys)

    def decode(self) -> dict[str, Any]:
        """The TOML document; a syntax error becomes a ConfigError with its line."""
        try:
            return tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as error:
            raise self._syntax_error(str(error)) from None

    def line_of(self, section: Section, key: str | None = None) -> int | None:
        """The line (1-based) where ``key`` of ``section`` is set, else where the section is."""
        if key is not None:
            line = self._keys.get(section, {}).get(key) or self._first_header((*section, key))
            if line:
                return line
        if section in self._headers:
            return self._headers[section]
        if len(section) > 1:
            return self.line_of(section[:-1], section[-1])
        return None

    def _first_header(self, prefix: Section) -> int | None:
        """The first line of ``[prefix]`` or of a header under it (``[prefix.NAME]``)."""
        lines = [n for h, n in self._headers.items() if h[: len(prefix)] == prefix]
        return min(lines, default=None)

    def error(self, section: Section, key: str | None, problem: str) -> ConfigError:
        """A ConfigError: ``FILE:LINE: [section] key: problem`` (a top-level key: ``[key]``)."""
        line = self.line_of(section, key)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: {_subject(section, key)}{problem}")

    def _syntax_error(self, message: str) -> ConfigError:
        message, line = self._split_decode_message(message)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: invalid TOML: {message}; fix the syntax on that line")

    def _split_decode_message(self, message: str) -> tuple[str, int | None]:
        """tomllib's message without its position, and the line that position names."""
        if found := _DECODE_AT.search(message):
            return message[: found.start()].rstrip(), int(found["line"])
        if found := _DECODE_END.search(message):
            return message[: found.start()].rstrip(), max(1, len(self.text.splitlines()))
        return message, None


def _subject(section: Section, key: str | None) -> str:
    """What an error is about: ``[program.web] numprocs: ``, ``[corral]: `` or nothing."""
    if not section:
        return f"[{key}]: " if key is not None else ""
    return f"[{format_section(section)}]" + (f" {key}: " if key is not None else ": ")


def format_section(section: Section) -> str:
    """``("program", "web")`` as it is written in a header: ``program.web``."""
    return ".".join(part if _BARE_KEY.fullmatch(part) else f'"{part}"' for part in section)


def _scan(text: str) -> tuple[dict[Section, int], dict[Section, dict[str, int]]]:
    """The line of every ``[header]`` and of every ``key =`` under the header before it."""
    headers: dict[Section, int] = {}
    keys: dict[Section, dict[str, int]] = {(): {}}
    current: Section | None = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = _split_dotted(header["name"])
            headers.setdefault(current, number)
            keys.setdefault(current, {})
        elif _ARRAY_HEADER.match(line):
            current = None  # arrays of tables are not part of corral.toml: nothing to point at
        elif current is not None and (key := _KEY.match(line)):
            keys[current].setdefault(key["key"].strip("\"'"), number)
    return headers, keys


def _split_dotted(name: str) -> Section:
    """``program."my app"`` -> ``("program", "my app")`` (quotes may hold dots)."""
    parts = re.findall(r"""\s*("[^"]*"|'[^']*'|[^.]+?)\s*(?:\.|$)""", name.strip())
    return tuple(part.strip().strip("\"'") for part in parts)
