"""The SMS example's task: render a template and record the message as sent.

"Sending" an SMS here means inserting a row into ``sent.db``: the phone, the
template it was rendered from, the code version and the pid that sent it. That
is enough to see what a reload must guarantee (seeds/002): once
``corral ctl reload --all`` returns, no row is written by old code or with an
old template.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import string
import time
from pathlib import Path

from corral import Corral

app = Corral(os.environ.get("CORRAL_BROKER_URL", "sqlite:///sms.db"))

CODE_VERSION = "v1"
"""Written into every row, so a test (or you) can tell which code sent it."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    phone TEXT NOT NULL,
    template_id INTEGER NOT NULL,
    template TEXT NOT NULL,
    body TEXT NOT NULL,
    code_version TEXT NOT NULL,
    pid INTEGER NOT NULL,
    sent_at REAL NOT NULL
)
"""


def sms_dir() -> Path:
    """Where templates/ and sent.db live: $SMS_DIR, else this file's directory."""
    return Path(os.environ.get("SMS_DIR") or Path(__file__).resolve().parent)


def template_path(template_id: int) -> Path:
    """The file of template ``template_id``: ``templates/<id>.txt``."""
    return sms_dir() / "templates" / f"{template_id}.txt"


# Templates are read once per process, as most apps cache what they load. That
# is why a deploy needs a reload: a process that keeps running keeps sending the
# old text, and only a new process (a new generation) reads the new file.
@functools.cache
def load_template(template_id: int) -> str:
    """The text of template ``template_id``, with ``$phone`` where the phone goes."""
    return template_path(template_id).read_text().strip()


def connect_sent() -> sqlite3.Connection:
    """A connection to ``sent.db`` (WAL, so readers never block the workers that write)."""
    db = sqlite3.connect(sms_dir() / "sent.db", timeout=30.0)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(_SCHEMA)
    return db


@app.task(retries=3)
def send_sms(phone: str, template_id: int) -> int:
    """Render template ``template_id`` for ``phone``, record it as sent; the row id."""
    template = load_template(template_id)
    body = string.Template(template).substitute(phone=phone)
    db = connect_sent()
    try:
        with db:  # one transaction: the row is there or it is not
            (row_id,) = db.execute(
                "INSERT INTO sent (phone, template_id, template, body, code_version, pid, sent_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (phone, template_id, template, body, CODE_VERSION, os.getpid(), time.time()),
            ).fetchone()
    finally:
        db.close()
    return int(row_id)
