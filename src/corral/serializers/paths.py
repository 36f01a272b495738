"""Paths: where a part sits inside an encoded value, as error messages show it."""

from __future__ import annotations

from corral.errors import EncodeError

__all__ = ["describe_path", "path_step", "restate"]


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


def path_step(key: object) -> str | int:
    """A dict key as EncodeError.path holds it: str and int as they are, others as text."""
    if isinstance(key, str | int):
        return key
    try:
        return repr(key)[:60]
    except ValueError:  # e.g. an int beyond the int-to-str digit limit, inside a tuple
        return f"<{type(key).__name__} key>"
