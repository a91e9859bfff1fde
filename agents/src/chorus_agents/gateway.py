"""The agent's HTTP server: A2A JSON-RPC for any A2A client, its card, health and readiness.

The JSON-RPC endpoint and the card route are a2a-sdk's own (``create_jsonrpc_routes``,
``create_agent_card_routes``), served by the same ``RequestHandler`` and task store as
the Kafka binding, so a task started over Kafka can be read over HTTP and the reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import uvicorn
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.types.a2a_pb2 import AgentCard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

RPC_PATH = "/"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"


def gateway_app(
    handler: RequestHandler,
    card: AgentCard,
    *,
    ready: Callable[[], bool] = lambda: True,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The Starlette app: JSON-RPC at ``/``, the card at ``/.well-known/agent-card.json``.

    ``/healthz`` answers 200 while the process serves HTTP; ``/readyz`` answers 200 only
    while ``ready()`` is true (the Kafka loop runs and Kafka grants access), else 503.
    ``routes`` come first and win over these (the host gives its ``/metrics`` and the
    detailed checks of :mod:`.health`).
    """

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readiness(_: Request) -> Response:
        if ready():
            return PlainTextResponse("ready\n")
        return PlainTextResponse("not ready\n", status_code=503)

    return Starlette(
        routes=[
            *routes,
            *create_agent_card_routes(card),
            *create_jsonrpc_routes(handler, RPC_PATH),
            Route(HEALTH_PATH, health, methods=["GET"]),
            Route(READY_PATH, readiness, methods=["GET"]),
        ]
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one (read it from ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the runtime owns the signals and stops this server itself


class HttpServer:
    """uvicorn serving an ASGI app on an already bound socket, inside the caller's event loop."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.sock = sock
        self._server = _Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    async def start(self) -> None:
        """Starts serving; returns once the server accepts connections."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]), name="http")
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stops accepting, lets open requests finish, closes."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
