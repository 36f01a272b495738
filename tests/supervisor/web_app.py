"""A tiny web app for supervisor tests: serves $VERSION on the socket `corral run` passes.

On SIGTERM it stops accepting, finishes the request in hand and exits, so a
rolling reload drops no request: the listening socket stays open in the
supervisor and the new generation accepts what the old one no longer does.
"""

from __future__ import annotations

import http.server
import os
import signal
import threading

import corral


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{os.environ['VERSION']} {os.getpid()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def main() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = corral.listen_socket()
    # Every instance waits on the one shared socket: a blocking accept() of an instance
    # that lost the race for a connection would hang, deaf to a stop.
    server.socket.setblocking(False)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    corral.notify_ready(f"serving version {os.environ['VERSION']}")
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
