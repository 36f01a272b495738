"""The tagger: the slow path that tags what a codec lacks and refuses what none may carry.

It builds a codec-native copy of a value only when the fast check in
:mod:`corral.serializers.plain` says something needs a tag.
"""

from __future__ import annotations

from typing import Any

from corral.errors import EncodeError
from corral.serializers.hints import hint
from corral.serializers.paths import describe_path, path_step
from corral.serializers.tags import NATIVE, SCALAR_TAGS, SEQUENCES, TAG, b64, tagged

__all__ = ["Tagger"]

_Path = tuple[object, ...]  # dict keys stay objects until an error renders them


class _Unsupported(Exception):  # internal signal, never escapes this module
    """Raised inside the tagger; :meth:`Tagger.tag_value` turns it into an EncodeError."""

    def __init__(self, obj: object, path: _Path, *, cycle: bool = False) -> None:
        super().__init__()
        self.obj = obj
        self.path = path
        self.cycle = cycle
        self.in_key = False


class Tagger:
    """Builds the codec-native, tagged copy of one value. One instance per encode."""

    def __init__(self, codec_name: str, *, bytes_native: bool, int_bounds: tuple[int, int]):
        self._codec_name = codec_name
        self._bytes_native = bytes_native
        self._int_min, self._int_max = int_bounds
        self._open: set[int] = set()  # ids of the containers being walked: a cycle check

    def tag_value(self, value: object) -> object:
        """The tagged copy of ``value``, or an EncodeError naming what cannot be encoded."""
        try:
            return self._tag(value, ())
        except _Unsupported as exc:
            raise _encode_error(exc, self._codec_name) from None
        except RecursionError:
            raise EncodeError(
                f"value is nested too deeply for the {self._codec_name} codec; flatten it",
            ) from None

    def _tag(self, value: Any, path: _Path) -> object:
        kind = type(value)
        if kind is int:
            fits = self._int_min <= value <= self._int_max
            return value if fits else tagged("int", f"{value:x}")
        if kind in NATIVE:
            return value
        if kind is bytes:
            return value if self._bytes_native else tagged("bytes", b64(value))
        scalar = SCALAR_TAGS.get(kind)
        if scalar is not None:
            return tagged(scalar[0], scalar[1](value))
        if kind is list or kind is dict or kind in SEQUENCES:
            return self._container(value, path)
        raise _Unsupported(value, path)

    def _container(self, value: Any, path: _Path) -> object:
        if id(value) in self._open:
            raise _Unsupported(value, path, cycle=True)
        self._open.add(id(value))
        try:
            if type(value) is dict:
                return self._dict(value, path)
            items = [self._tag(item, (*path, i)) for i, item in enumerate(value)]
            return items if type(value) is list else tagged(type(value).__name__, items)
        finally:
            self._open.discard(id(value))

    def _dict(self, value: dict[Any, Any], path: _Path) -> object:
        if TAG not in value and all(type(key) is str for key in value):
            return {key: self._tag(item, (*path, key)) for key, item in value.items()}
        pairs = [
            [self._key(key, path), self._tag(item, (*path, key))] for key, item in value.items()
        ]
        return tagged("dict", pairs)

    def _key(self, key: object, path: _Path) -> object:
        try:
            return self._tag(key, path)
        except _Unsupported as exc:
            exc.in_key = True
            raise


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _encode_error(exc: _Unsupported, codec_name: str) -> EncodeError:
    type_name = type(exc.obj).__name__
    path = tuple(map(path_step, exc.path))
    where = f"value{describe_path(path)}"
    if exc.cycle:
        what = f"{where} contains itself (a reference cycle), which the {codec_name} codec"
        return EncodeError(
            f"{what} cannot encode; pass a copy without the cycle", path=path, type_name=type_name
        )
    subject = f"{where} has a key that" if exc.in_key else where
    message = (
        f"{subject} is {_article(type_name)} {type_name}, which the {codec_name} codec "
        f"cannot encode; {hint(exc.obj)}"
    )
    return EncodeError(message, path=path, type_name=type_name)
