"""A code fingerprint: which source a pool process actually runs (P4).

The hash covers the source files of every imported module that lives in the
app's package (or beside the app's module), so two pool processes with the same
fingerprint run the same code, and a stale one is visible in ``corral status``.
"""

from __future__ import annotations

import hashlib
import os
import sys

__all__ = ["code_fingerprint"]


def code_fingerprint(app_module: str) -> str:
    """12 hex digits over the app package's imported source files."""
    root = _package_root(app_module)
    digest = hashlib.sha256()
    for path in sorted(_imported_files_under(root)):
        digest.update(path.encode())
        try:
            with open(path, "rb") as f:
                digest.update(f.read())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()[:12]


def _package_root(app_module: str) -> str:
    top = sys.modules.get(app_module.split(".", maxsplit=1)[0])
    path = getattr(top, "__file__", None) or ""
    if os.path.basename(path) == "__init__.py":
        return os.path.dirname(path)
    return path


def _imported_files_under(root: str) -> list[str]:
    if not root:
        return []
    if os.path.isfile(root):
        return [root]
    prefix = root + os.sep
    files = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and path.startswith(prefix) and path.endswith(".py"):
            files.append(path)
    return files
