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

The modules, one noun each: ``codec`` (the protocol), ``json_codec``,
``msgpack_codec`` and ``pickle_codec``; ``plain`` (the fast check), ``tags``
(the wire marks and reading them back), ``tagger`` (the slow path), ``hints``
(what to pass instead), ``paths`` (where a part sits) and ``sniff`` (who wrote
some bytes). This module is the registry, :func:`get_codec`.
"""

from __future__ import annotations

from collections.abc import Callable

from corral.errors import ConfigError
from corral.serializers.codec import Codec
from corral.serializers.json_codec import JsonCodec
from corral.serializers.msgpack_codec import MsgpackCodec
from corral.serializers.paths import describe_path, restate
from corral.serializers.pickle_codec import PickleCodec
from corral.serializers.sniff import sniff_codec

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

# The registry lives here, not in a submodule, so that ``serializers._codecs`` is the
# cache get_codec reads: tests replace it to forget a codec built earlier.
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
