"""Codecs: how task arguments and results become bytes and come back (promise P7).

Every codec round-trips each supported value to *exactly* its own type:
None, bool, int (any size), float (nan, inf, -0.0), str, bytes, list, tuple,
set, frozenset, dict (any supported keys), ``datetime.datetime`` (naive stays
naive, aware keeps its UTC offset), ``datetime.date``, ``uuid.UUID`` and
``decimal.Decimal`` (exact, NaN and -0 included). Anything else, subclasses
included (an ``IntEnum`` would come back as an ``int``), is refused at encode
time with an :class:`~corral.errors.EncodeError` that says where it is and what
to pass instead. seeds/004 is why: a changed serializer default silently broke
binary results in production instead of failing at the call.

The wire format of json and msgpack is the codec's own native data, plus
*tagged* values for what it lacks: a map ``{"~t": <tag>, "v": <payload>}``. A
user dict that holds the key ``"~t"`` itself, or keys that are not str, is sent
as tagged ``dict`` pairs, so it cannot be mistaken for a tag and ``{1: "a"}``
does not come back as ``{"1": "a"}``.

The hot path (every send, every task) is values that need no tags: a walk that
only checks exact types says so, and the original object goes straight to the
C encoder. Tagging builds a copy only when something needs it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import importlib
import json
import os
import pickle
import uuid
from collections.abc import Callable, ItemsView, Iterator, KeysView, ValuesView
from types import ModuleType
from typing import Any, Protocol

from corral.errors import ConfigError, DecodeError, EncodeError

__all__ = [
    "CODEC_NAMES",
    "DEFAULT_CODEC",
    "Codec",
    "JsonCodec",
    "MsgpackCodec",
    "PickleCodec",
    "describe_path",
    "get_codec",
    "restate",
    "sniff_codec",
]

CODEC_NAMES = ("json", "msgpack", "pickle")
"""Every name :func:`get_codec` accepts."""

DEFAULT_CODEC = "json"

_TAG = "~t"
_VALUE = "v"
_PICKLE_PROTOCOL = 5  # readable by every Python corral supports (3.8+)
_SUPPORTED = (
    "None, bool, int, float, str, bytes, list, tuple, set, frozenset, dict, "
    "datetime.datetime, datetime.date, uuid.UUID and decimal.Decimal"
)


class Codec(Protocol):
    """Turns a value into bytes and back. Instances are stateless and thread-safe."""

    name: str

    def encode(self, value: object) -> bytes:
        """Encode ``value``; raise :class:`~corral.errors.EncodeError` if it cannot be."""
        ...

    def decode(self, data: bytes) -> Any:
        """Decode ``data``; raise :class:`~corral.errors.DecodeError` if it cannot be."""
        ...


def describe_path(path: tuple[str | int, ...]) -> str:
    """Render a value's location as subscripts: ``['meta']['path']`` or ``[0][2]``."""
    return "".join(f"[{step!r}]" for step in path)


def restate(error: EncodeError, subject: str) -> str:
    """``error``'s message about ``subject`` instead of ``value[...]``.

    A codec's EncodeError message always starts with ``value`` and
    ``describe_path(error.path)``: ``restate(error, "send_sms(): argument 'meta'['path']")``
    gives ``"send_sms(): argument 'meta'['path'] is a PosixPath, which ..."``.
    """
    message = str(error)
    prefix = "value" + describe_path(error.path)
    return subject + message[len(prefix) :] if message.startswith(prefix) else message


# --- the fast path: is a value already native to the codec? -----------------------------


def _plain_walker(scalars: frozenset[type]) -> Callable[[Any], bool]:
    """Build a check that a value holds only ``scalars``, lists and str-keyed dicts.

    Exact types only: a subclass must go the slow way, where it is refused.
    """

    def is_plain(value: Any) -> bool:
        # Scalars are checked inline, not by a call: calls are what this walk costs.
        kind = type(value)
        if kind is list:
            for item in value:  # noqa: SIM110 - all(<generator>) is slower on this hot path
                if type(item) not in scalars and not is_plain(item):
                    return False
            return True
        if kind is dict:
            if _TAG in value:
                return False
            for key, item in value.items():
                if type(key) is not str or (type(item) not in scalars and not is_plain(item)):
                    return False
            return True
        return kind in scalars

    return is_plain


_NATIVE: frozenset[type] = frozenset({str, int, float, bool, type(None)})
_is_plain_json = _plain_walker(_NATIVE)
_is_plain_msgpack = _plain_walker(_NATIVE | {bytes})


# --- the slow path: tag what the codec lacks, refuse what no codec may carry ---------------


_Path = tuple[object, ...]  # dict keys stay objects until an error renders them


class _Unsupported(Exception):  # internal signal, never escapes this module
    """Raised inside the tagger; :meth:`_Tagger.tag_value` turns it into an EncodeError."""

    def __init__(self, obj: object, path: _Path, *, cycle: bool = False) -> None:
        super().__init__()
        self.obj = obj
        self.path = path
        self.cycle = cycle
        self.in_key = False


_SCALAR_TAGS: dict[type, tuple[str, Callable[[Any], str]]] = {
    datetime.datetime: ("datetime", datetime.datetime.isoformat),
    datetime.date: ("date", datetime.date.isoformat),
    uuid.UUID: ("uuid", str),
    decimal.Decimal: ("decimal", str),
}
_SEQUENCES = frozenset({tuple, set, frozenset})


def _tagged(tag: str, payload: object) -> dict[str, object]:
    return {_TAG: tag, _VALUE: payload}


def _path_step(key: object) -> str | int:
    """A dict key as EncodeError.path holds it: str and int as they are, others as text."""
    if isinstance(key, str | int):
        return key
    try:
        return repr(key)[:60]
    except ValueError:  # e.g. an int beyond the int-to-str digit limit, inside a tuple
        return f"<{type(key).__name__} key>"


class _Tagger:
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
            return value if fits else _tagged("int", f"{value:x}")
        if kind in _NATIVE:
            return value
        if kind is bytes:
            return value if self._bytes_native else _tagged("bytes", _b64(value))
        scalar = _SCALAR_TAGS.get(kind)
        if scalar is not None:
            return _tagged(scalar[0], scalar[1](value))
        if kind is list or kind is dict or kind in _SEQUENCES:
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
            return items if type(value) is list else _tagged(type(value).__name__, items)
        finally:
            self._open.discard(id(value))

    def _dict(self, value: dict[Any, Any], path: _Path) -> object:
        if _TAG not in value and all(type(key) is str for key in value):
            return {key: self._tag(item, (*path, key)) for key, item in value.items()}
        pairs = [
            [self._key(key, path), self._tag(item, (*path, key))] for key, item in value.items()
        ]
        return _tagged("dict", pairs)

    def _key(self, key: object, path: _Path) -> object:
        try:
            return self._tag(key, path)
        except _Unsupported as exc:
            exc.in_key = True
            raise


# --- what to say about a value that cannot be encoded ------------------------------------


def _isa(*kinds: type) -> Callable[[object], bool]:
    return lambda obj: isinstance(obj, kinds)


def _is_dataclass_instance(obj: object) -> bool:
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


# Checked in order: an IntEnum is also an int, a namedtuple also a tuple.
_HINTS: tuple[tuple[Callable[[object], bool], str], ...] = (
    (_isa(enum.Enum), "pass its .value"),
    (_is_dataclass_instance, "pass dataclasses.asdict(value)"),
    (_isa(os.PathLike), "pass str(path)"),
    (_isa(datetime.time), "pass value.isoformat()"),
    (_isa(datetime.timedelta), "pass value.total_seconds()"),
    (_isa(bytearray, memoryview), "pass bytes(value)"),
    (
        lambda obj: isinstance(obj, tuple) and hasattr(obj, "_fields"),
        "pass value._asdict() or tuple(value)",
    ),
    (_isa(Iterator, range, KeysView, ValuesView, ItemsView), "pass list(value)"),
    (lambda obj: callable(getattr(obj, "tolist", None)), "pass value.tolist()"),
)
_BASES = (bool, int, float, str, bytes, list, tuple, set, frozenset, dict, *_SCALAR_TAGS)
_CONVERSIONS = {  # how to make a plain instance of a base, where ``base(value)`` does not
    datetime.datetime: "datetime.datetime.fromisoformat(value.isoformat())",
    datetime.date: "datetime.date.fromisoformat(value.isoformat())",
    uuid.UUID: "uuid.UUID(str(value))",
}


def _hint(obj: object) -> str:
    for applies, hint in _HINTS:
        if applies(obj):
            return hint
    for base in _BASES:
        if isinstance(obj, base):
            name = base.__name__
            plain = _CONVERSIONS.get(base, f"{name}(value)")
            return f"it is a subclass of {name} and would come back as a plain {name}; pass {plain}"
    return f"pass one of the supported types: {_SUPPORTED}"


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _encode_error(exc: _Unsupported, codec_name: str) -> EncodeError:
    type_name = type(exc.obj).__name__
    path = tuple(map(_path_step, exc.path))
    where = f"value{describe_path(path)}"
    if exc.cycle:
        what = f"{where} contains itself (a reference cycle), which the {codec_name} codec"
        return EncodeError(
            f"{what} cannot encode; pass a copy without the cycle", path=path, type_name=type_name
        )
    subject = f"{where} has a key that" if exc.in_key else where
    message = (
        f"{subject} is {_article(type_name)} {type_name}, which the {codec_name} codec "
        f"cannot encode; {_hint(exc.obj)}"
    )
    return EncodeError(message, path=path, type_name=type_name)


# --- decoding tags ----------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _str(payload: object) -> str:
    if type(payload) is not str:
        raise TypeError(f"expected a str payload, got {type(payload).__name__}")
    return payload


def _list(payload: object) -> list[Any]:
    if type(payload) is not list:
        raise TypeError(f"expected a list payload, got {type(payload).__name__}")
    return payload


def _datetime(payload: object) -> datetime.datetime:
    text = _str(payload)
    value = datetime.datetime.fromisoformat(text)
    if (
        value.utcoffset() == datetime.timedelta(0)
        and text[-16:-15] in ("+", "-")
        and text[-7:-6] == "."
    ):
        # CPython 3.11 reads an offset under one second ("+00:00:00.000001") as UTC.
        sign = -1 if text[-16] == "-" else 1
        offset = datetime.timedelta(microseconds=sign * int(text[-6:]))
        value = value.replace(tzinfo=datetime.timezone(offset))
    return value


_UNTAGGERS: dict[str, Callable[[Any], object]] = {
    "bytes": lambda p: base64.b64decode(_str(p), validate=True),
    "int": lambda p: int(_str(p), 16),
    "datetime": _datetime,
    "date": lambda p: datetime.date.fromisoformat(_str(p)),
    "uuid": lambda p: uuid.UUID(_str(p)),
    "decimal": lambda p: decimal.Decimal(_str(p)),
    "tuple": lambda p: tuple(_list(p)),
    "set": lambda p: set(_list(p)),
    "frozenset": lambda p: frozenset(_list(p)),
    "dict": lambda p: dict(_list(p)),
}


def _untag(obj: dict[str, Any]) -> Any:
    """Object hook: turn a tagged map back into its value; leave other maps alone."""
    if _TAG not in obj:
        return obj
    tag = obj[_TAG]
    untag = _UNTAGGERS.get(tag) if type(tag) is str else None
    if untag is None:
        raise DecodeError(
            f"unknown tag {tag!r}: the message was written by a newer corral "
            f"or by something else; known tags: {', '.join(_UNTAGGERS)}"
        )
    if len(obj) != 2 or _VALUE not in obj:
        raise DecodeError(
            f"malformed {tag!r} tag {obj!r:.80}: expected exactly the keys {_TAG!r} and {_VALUE!r}"
        )
    try:
        return untag(obj[_VALUE])
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise DecodeError(f"malformed {tag!r} tag {obj!r:.80}: {exc}") from None


# --- recognising foreign data ------------------------------------------------------------

_PLAIN_JSON_DECODER = json.JSONDecoder()
_TAGGED_JSON_DECODER = json.JSONDecoder(object_hook=_untag)
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
_JSON_TAG_MARK = b'"~t"'
_MSGPACK_TAG_MARK = b"\xa2~t"  # "~t" as a msgpack fixstr
_MSGPACK_CONTAINER_STARTS = frozenset([*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF])


def _optional_msgpack() -> ModuleType | None:
    try:
        return importlib.import_module("msgpack")
    except ImportError:
        return None


def _looks_like_pickle(data: bytes) -> bool:
    # Protocol 2+ starts with PROTO (0x80) and its number; every pickle ends with STOP.
    return len(data) >= 3 and data[0] == 0x80 and 2 <= data[1] <= 5 and data[-1:] == b"."


def _looks_like_json(data: bytes) -> bool:
    try:
        _PLAIN_JSON_DECODER.decode(data.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        return False
    return True


def _looks_like_msgpack(data: bytes) -> bool:
    msgpack = _optional_msgpack()
    if msgpack is None:  # no parser: the shape of the first byte (corral sends maps/arrays)
        return bool(data) and data[0] in _MSGPACK_CONTAINER_STARTS
    try:
        msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException):
        return False
    return True


def sniff_codec(data: bytes) -> str | None:
    """Guess which codec wrote ``data``: ``"pickle"``, ``"json"``, ``"msgpack"`` or None.

    Only inspects and parses; pickle data is recognised by its header and never
    unpickled. A guess, for error messages: tiny payloads can be valid in several
    formats (``b"1"`` is both json and msgpack; json wins).
    """
    if _looks_like_pickle(data):
        return "pickle"
    if _looks_like_json(data):
        return "json"
    if _looks_like_msgpack(data):
        return "msgpack"
    return None


def _undecodable(data: bytes, codec_name: str, reason: object) -> DecodeError:
    found = sniff_codec(data)
    if found == "pickle" and codec_name != "pickle":
        return DecodeError(
            f"this message was encoded with pickle, but the app accepts {codec_name} only; it "
            "was not unpickled, because unpickling runs arbitrary code from anyone who can "
            f"write to the broker. Send it with the {codec_name} codec"
        )
    if found is not None and found != codec_name:
        return DecodeError(
            f"this message was encoded with {found}, but the app accepts {codec_name} only; "
            f"send it with the {codec_name} codec, or configure the app to accept {found}"
        )
    return DecodeError(
        f"cannot decode {len(data)} bytes with the {codec_name} codec ({reason}); the message "
        f"is corrupted or truncated. It starts with {bytes(data[:32])!r}"
    )


# --- the codecs -----------------------------------------------------------------------


def _dump_json(value: object) -> bytes:
    try:
        text = _JSON_ENCODER.encode(value)
    except RecursionError:
        raise EncodeError("value is nested too deeply for the json codec; flatten it") from None
    # surrogatepass: a str holding a lone surrogate must round-trip, not fail here.
    return text.encode("utf-8", "surrogatepass")


class JsonCodec:
    """JSON with tagged types: the default codec, readable in the broker by any tool.

    Floats nan/inf are written as ``NaN``/``Infinity``, which Python reads back but
    strict JSON parsers in other languages refuse.
    """

    name: str = "json"

    def encode(self, value: object) -> bytes:
        """Encode ``value`` as UTF-8 JSON; raise EncodeError for unsupported values."""
        try:
            plain = _is_plain_json(value)
        except RecursionError:  # a cycle or very deep nesting: the tagger says which
            plain = False
        if plain:
            try:
                return _dump_json(value)
            except ValueError:
                pass  # an int beyond Python's int-to-str digit limit: the tagger writes hex
        return _dump_json(self._tagger().tag_value(value))

    def decode(self, data: bytes) -> Any:
        """Decode JSON written by :meth:`encode`; raise DecodeError for anything else."""
        decoder = _TAGGED_JSON_DECODER if _JSON_TAG_MARK in data else _PLAIN_JSON_DECODER
        try:
            return decoder.decode(data.decode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError) as exc:
            raise _undecodable(data, self.name, exc) from None

    def _tagger(self) -> _Tagger:
        # Ints with more than ~600 digits are tagged: every receiver can parse them,
        # whatever its sys.set_int_max_str_digits() (the minimum is 640).
        return _Tagger(self.name, bytes_native=False, int_bounds=(-(2**2000), 2**2000))


class MsgpackCodec:
    """msgpack with the same tags as json (bytes are native): smaller and faster.

    Needs the optional dependency: ``pip install 'corral[msgpack]'``.
    """

    name: str = "msgpack"

    def __init__(self) -> None:
        msgpack = _optional_msgpack()
        if msgpack is None:
            raise ConfigError(
                "codec 'msgpack' needs the msgpack package; pip install 'corral[msgpack]'"
            )
        self._packb: Callable[..., bytes] = msgpack.packb
        self._unpackb: Callable[..., Any] = msgpack.unpackb
        self._unpack_errors = (ValueError, TypeError, RecursionError, msgpack.UnpackException)

    def encode(self, value: object) -> bytes:
        """Encode ``value`` as msgpack; raise EncodeError for unsupported values."""
        try:
            plain = _is_plain_msgpack(value)
        except RecursionError:
            plain = False
        if plain:
            try:
                return self._pack(value)
            except OverflowError:
                pass  # an int beyond 64 bits: the tagger writes it in hex
        return self._pack(self._tagger().tag_value(value))

    def decode(self, data: bytes) -> Any:
        """Decode msgpack written by :meth:`encode`; raise DecodeError for anything else."""
        hook = _untag if _MSGPACK_TAG_MARK in data else None
        try:
            return self._unpackb(
                data, object_hook=hook, raw=False, ext_hook=_no_ext, unicode_errors="surrogatepass"
            )
        except self._unpack_errors as exc:
            raise _undecodable(data, self.name, exc) from None

    def _pack(self, value: object) -> bytes:
        try:
            return self._packb(value, use_bin_type=True, unicode_errors="surrogatepass")
        except ValueError as exc:  # nested deeper than msgpack's limit, or an object too large
            raise EncodeError(f"value cannot be encoded by the msgpack codec: {exc}") from None

    def _tagger(self) -> _Tagger:
        return _Tagger(self.name, bytes_native=True, int_bounds=(-(2**63), 2**64 - 1))


def _no_ext(code: int, data: bytes) -> object:
    raise DecodeError(
        f"msgpack extension type {code} is not a corral type; "
        "the message was not written by corral's msgpack codec"
    )


class PickleCodec:
    """pickle: any picklable object. Used only when the app names it.

    .. warning:: Unpickling runs arbitrary code chosen by whoever wrote the message.
       Anyone who can write to the broker (or to the result store) can then run
       code in every worker and client that decodes with this codec. Use it only
       when every writer is trusted; the json and msgpack codecs never unpickle.
    """

    name: str = "pickle"

    def encode(self, value: object) -> bytes:
        """Pickle ``value`` (protocol 5); raise EncodeError if it cannot be pickled."""
        try:
            return pickle.dumps(value, protocol=_PICKLE_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            type_name = type(value).__name__
            raise EncodeError(
                f"value cannot be pickled: {exc}; pass a picklable value "
                "(module-level classes and functions, no open resources)",
                type_name=type_name,
            ) from None

    def decode(self, data: bytes) -> Any:
        """Unpickle ``data``: runs whatever code the writer put in it (see the class docs)."""
        if not _looks_like_pickle(data):
            raise _undecodable(data, self.name, "no pickle protocol 2+ header")
        try:
            return pickle.loads(data)
        except Exception as exc:  # unpickling can fail with anything its objects raise
            raise DecodeError(f"cannot unpickle {len(data)} bytes: {exc!r}") from exc


_FACTORIES: dict[str, Callable[[], Codec]] = {
    "json": JsonCodec,
    "msgpack": MsgpackCodec,
    "pickle": PickleCodec,
}
_codecs: dict[str, Codec] = {}


def get_codec(name: str) -> Codec:
    """The shared codec called ``name`` (one of :data:`CODEC_NAMES`).

    Raises ConfigError for an unknown name, or for msgpack when it is not installed.
    """
    codec = _codecs.get(name)
    if codec is None:
        factory = _FACTORIES.get(name)
        if factory is None:
            raise ConfigError(f"unknown codec {name!r}; valid names: {', '.join(CODEC_NAMES)}")
        codec = _codecs.setdefault(name, factory())
    return codec
