"""The task call as it travels: ``[task name, positional args, keyword args]``.

Arguments are encoded when the task is sent, so an argument the codec cannot
encode raises :class:`~corral.errors.EncodeError` in the caller, naming the task
and the argument (P7). Errors travel as ``{"type", "message", "traceback"}``.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral.errors import DecodeError, EncodeError
from corral.serializers import Codec, describe_path, restate

__all__ = [
    "Message",
    "RemoteError",
    "decode_call",
    "decode_error",
    "encode_call",
    "encode_calls",
    "encode_error",
    "encode_remote_error",
]


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded task call."""

    task: str
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RemoteError:
    """An exception as recorded by the worker that saw it."""

    type_name: str
    message: str
    traceback: str


def encode_call(
    codec: Codec,
    task: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    signature: inspect.Signature | None = None,
) -> bytes:
    """Encode a call; an EncodeError names ``task`` and the argument at fault."""
    try:
        return codec.encode_call(task, list(args), _as_dict(kwargs))
    except EncodeError as error:
        raise _name_argument(error, task, signature) from None


def encode_calls(
    codec: Codec,
    task: str,
    calls: Iterable[tuple[Sequence[Any], Mapping[str, Any]]],
    *,
    signature: inspect.Signature | None = None,
) -> list[bytes]:
    """Encode many calls of ``task``; an EncodeError names the argument at fault."""
    try:
        return codec.encode_calls(task, [(list(args), _as_dict(kwargs)) for args, kwargs in calls])
    except EncodeError as error:
        raise _name_argument(error, task, signature) from None


def decode_call(codec: Codec, body: bytes) -> Message:
    """Decode a call; DecodeError if the bytes are not a well-formed call."""
    value = codec.decode(body)
    if not (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], list)
        and isinstance(value[2], dict)
        and all(isinstance(key, str) for key in value[2])
    ):
        raise DecodeError(
            f"message body is not a task call [name, args, kwargs]: {_preview(value)}"
        )
    return Message(task=value[0], args=value[1], kwargs=value[2])


def encode_error(codec: Codec, error: BaseException) -> bytes:
    """Encode an exception with its type name, message and traceback text."""
    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    text = "".join(traceback.format_exception(error))
    return codec.encode({"type": name, "message": str(error), "traceback": text})


def encode_remote_error(codec: Codec, type_name: str, message: str, tb: str = "") -> bytes:
    """Encode an error that has no exception object (a killed process, a time limit)."""
    return codec.encode({"type": type_name, "message": message, "traceback": tb})


def decode_error(codec: Codec, payload: bytes) -> RemoteError:
    """Decode an error payload; an unreadable one still yields a RemoteError."""
    if not payload:  # buried by the broker, not by a task's exception
        return RemoteError(
            "WorkerLost",
            "the task recorded no error: the process running it died on every delivery "
            "(`corral dead` shows the message and why it was buried)",
            "",
        )
    try:
        value = codec.decode(payload)
    except DecodeError as error:
        return RemoteError("DecodeError", f"the stored error could not be decoded: {error}", "")
    if not isinstance(value, dict):
        return RemoteError(
            "DecodeError", f"the stored error is not a record: {_preview(value)}", ""
        )
    return RemoteError(
        type_name=str(value.get("type", "Exception")),
        message=str(value.get("message", "")),
        traceback=str(value.get("traceback", "")),
    )


def _name_argument(
    error: EncodeError, task: str, signature: inspect.Signature | None
) -> EncodeError:
    path = error.path
    if len(path) < 2 or path[0] not in (1, 2):
        return EncodeError(f"{task}(): {error}", path=path, type_name=error.type_name)
    label = _argument_label(path[0], path[1], signature)
    # restate() keeps the codec's whole sentence ("is an object", "has a key that",
    # "contains itself"), only swapping its subject for the argument's name.
    message = restate(error, f"{task}(): argument {label}{describe_path(path[2:])}")
    return EncodeError(message, path=path, type_name=error.type_name)


def _argument_label(section: int | str, key: int | str, signature: inspect.Signature | None) -> str:
    if section == 2:  # keyword arguments
        return repr(key)
    if signature is not None and isinstance(key, int):
        positional = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if key < len(positional):
            return repr(positional[key])
    return f"#{key} (positional)"


def _as_dict(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    # A dict is encoded as it is (encoding only reads it); any other mapping as a dict.
    return kwargs if type(kwargs) is dict else dict(kwargs)


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
