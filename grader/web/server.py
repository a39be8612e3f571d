"""Run the browser review app on a local port (waitress: a pure-Python, multi-threaded WSGI server)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from waitress.server import create_server
from waitress.wasyncore import close_all

from grader.embedding.encoder import TextEncoder
from grader.errors import GraderError
from grader.web.app import create_app

LOOPBACK = ("127.0.0.1", "localhost", "::1")
EXPOSED = (
    "--host {host} listens beyond this machine: anyone who can reach port {port} here and has the link (its token) "
    "can read every student's answers and change marks, over plain HTTP (not encrypted). "
    "Share the link only on a network you trust."
)


def start(db: Path, host: str, port: int, encoder: Callable[[], TextEncoder], token: str | None = None):
    """A server bound to host:port (port 0: any free port), not yet running: `.run()` serves, `.close()` stops.

    Returns (server, the link with its token)."""
    token = token or secrets.token_urlsafe(24)
    app = create_app(db, token, encoder)
    try:
        server = create_server(app, host=host, port=port, threads=8, ident="grader")
    except OSError as exc:  # port taken, address not on this machine
        raise GraderError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (pick another --port or --host)"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    return server, f"http://{shown}:{server.effective_port}/?token={token}"


def stop(server) -> None:
    """Stop a server that runs in another thread: its sockets are closed from inside its own loop (closing
    them from here would pull them from under its select), which then ends for want of sockets."""
    server.task_dispatcher.shutdown()
    server.trigger.pull_trigger(lambda: close_all(server._map))


def serve(db: Path, host: str, port: int, encoder: Callable[[], TextEncoder], say: Callable[[str], None]) -> None:
    """Serve until Ctrl-C, saying where (and, off loopback, what that exposes)."""
    server, link = start(db, host, port, encoder)
    if host not in LOOPBACK:
        say("warning: " + EXPOSED.format(host=host, port=server.effective_port))
    say(f"Serving {db} at {link}   (Ctrl-C to stop)")
    try:
        server.run()
    finally:
        server.close()
