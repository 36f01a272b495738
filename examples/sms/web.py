"""The SMS example's web app: ``POST /sms`` enqueues ``send_sms``.

Under ``corral run`` it serves on the listening socket corral run opened
(``corral.listen_socket()``) and says when it is ready (``corral.notify_ready()``).
The socket stays open in corral run across a reload, so while an old process
finishes its requests, the new one already accepts: no connection is refused.
Run alone (``python web.py``) it binds 127.0.0.1:8000 itself.

Werkzeug's server keeps the example dependency-free beyond Flask; in production
gunicorn takes the same socket (it reads ``LISTEN_FDS`` too).
"""

from __future__ import annotations

import os
import re
import signal
import threading
from typing import Any

import tasks
from flask import Flask, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

import corral

web = Flask(__name__)

PHONE = re.compile(r"\+?[0-9]{6,15}")

@web.post("/sms")
def post_sms() -> Any:
    """Enqueue ``send_sms(phone, template_id)``; 202 with the task id, 400 if invalid."""
    try:
        phone, template_id = _sms_request(request.get_json(silent=True))
    except ValueError as error:
        return jsonify(error=str(error)), 400
    handle = tasks.send_sms.delay(phone, template_id)
    return jsonify(task_id=handle.id), 202


@web.get("/sms/<task_id>")
def get_sms(task_id: str) -> Any:
    """The state of a sent task: queued, running, succeeded..."""
    try:
        state = tasks.app.task_state(task_id)
    except corral.ResultError as error:
        return jsonify(error=str(error)), 404
    return jsonify(task_id=task_id, state=state.value)


def _sms_request(data: Any) -> tuple[str, int]:
    """``(phone, template_id)`` from a request body; ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError('send a JSON object: {"phone": "+15550100", "template_id": 1}')
    phone, template_id = data.get("phone"), data.get("template_id")
    if not isinstance(phone, str) or not PHONE.fullmatch(phone):
        raise ValueError("phone: a string of 6 to 15 digits, optionally after a '+'")
    if type(template_id) is not int:
        raise ValueError("template_id: an integer")
    if not tasks.template_path(template_id).exists():
        raise ValueError(f"template_id: no template {template_id} (templates/{template_id}.txt)")
    return phone, template_id


class OneRequestPerConnection(WSGIRequestHandler):
    # A graceful stop must not wait for idle keep-alive connections, and a client
    # must never send its next request on a connection an old process is closing.
    protocol_version = "HTTP/1.0"


def make_web_server() -> BaseWSGIServer:
    """A threaded server on corral run's socket, or on 127.0.0.1:8000 when run alone."""
    options: dict[str, Any] = {"threaded": True, "request_handler": OneRequestPerConnection}
    if "LISTEN_FDS" not in os.environ:
        return make_server("127.0.0.1", 8000, web, **options)
    sock = corral.listen_socket()
    host, port = sock.getsockname()[:2]
    server = make_server(host, port, web, fd=sock.fileno(), **options)
    sock.close()  # the server holds its own duplicate
    # Every instance waits on the same socket: all wake for one connection and only
    # one gets it. Blocking, the others would hang in accept(), deaf to a stop.
    server.socket.setblocking(False)
    return server


def main() -> None:
    server = make_web_server()
    # On stop, finish the requests in hand: serve_forever's server_close() joins
    # the request threads, which it only does for non-daemon ones.
    server.daemon_threads = False  # type: ignore[attr-defined]
    # shutdown() waits for serve_forever() to return, which runs in this thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    corral.notify_ready(f"serving on port {server.port}")
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
