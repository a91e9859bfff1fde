"""HTTP for ``bench.runtime``: a bare a2a-sdk JSON-RPC app, and the client of every HTTP path.

The bare app is what an A2A agent over HTTP is without Chorus: a2a-sdk's standard
JSON-RPC routes (``create_jsonrpc_routes``, as the agent's gateway builds them) in front
of ``DefaultRequestHandler`` with an ``InMemoryTaskStore`` and the bench's no-op
executor; the same tracing setting as the agent (the SDK's ``TracerProvider``, spans made
and not exported), served by uvicorn inside ``asyncio.run`` as the agent's gateway is,
pinned to the server core in its own process:

    .venv/bin/python -m bench.runtime_http serve    # prints {"http": URL, ...}; stops on stdin

``serve --no-tracing`` installs no ``TracerProvider`` (the ``http bare untraced`` path).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import typer

from bench.profile_hotpath import Meter
from bench.runtime import SERVER_CORE, Bench, Child, noop_executor, pin, vmrss_kib
from bench.runtime_kafka import end_offsets, summary, writes

app = typer.Typer(add_completion=False, no_args_is_help=True)
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


@app.callback()
def _commands() -> None:
    """Subcommands, also when there is only one."""


async def _serve_bare(tracing: bool) -> None:
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore
    from chorus_agents.card import build_agent_card
    from chorus_agents.gateway import HttpServer, bind
    from chorus_agents.tracing import setup_tracing
    from starlette.applications import Starlette

    pin(SERVER_CORE)
    if tracing:
        setup_tracing("bench/bare")  # as the agent: SDK spans, no exporter
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    card = build_agent_card(
        namespace="bench", name="bare", inbox="bench.unused", http_url=url, skills=()
    )
    handler = DefaultRequestHandler(noop_executor()(), InMemoryTaskStore(), card)
    server = HttpServer(Starlette(routes=create_jsonrpc_routes(handler, "/")), sock)
    await server.start()
    print(json.dumps({"http": url, "rss_kib": vmrss_kib(os.getpid())}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await server.stop()


@app.command()
def serve(tracing: bool = True) -> None:
    """The bare a2a-sdk app, pinned (run by ``bench.runtime main``); stops on stdin."""
    asyncio.run(_serve_bare(tracing))


def _requests(url: str, count: int) -> list[bytes]:
    """``count`` JSON-RPC ``SendMessage`` requests to ``url``, each a whole HTTP/1.1 request."""
    where = urlsplit(url)
    requests = []
    for i in range(count):
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "SendMessage",
                "params": {
                    "message": {
                        "messageId": f"m{i}-{uuid.uuid4().hex}",
                        "contextId": f"c{i % 64}",
                        "role": "ROLE_USER",
                        "parts": [{"text": f"hello {i}"}],
                    }
                },
            },
            separators=(",", ":"),
        ).encode()
        head = (
            f"POST {where.path or '/'} HTTP/1.1\r\nHost: {where.netloc}\r\n"
            "Content-Type: application/json\r\nA2A-Version: 1.0\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


async def drive_http(
    url: str,
    requests: int,
    inflight: int,
    *,
    on_start: Callable[[], None] = lambda: None,
    on_end: Callable[[], None] = lambda: None,
) -> dict[str, float]:
    """``requests`` JSON-RPC ``SendMessage`` calls on ``inflight`` kept-alive connections,
    one request at a time on each; ``on_start`` and ``on_end`` bracket the timed part.

    A minimal HTTP/1.1 client over asyncio streams, the requests encoded before the
    clock starts and the connections opened before it too (as the Kafka client's records
    are): httpx with hundreds of connections spent more CPU per request than the server.
    """
    where = urlsplit(url)
    encoded = _requests(url, requests)
    latencies: list[float] = []
    connections = []
    for first in range(0, inflight, 32):  # a few at a time: the listen backlog is 128
        connections += await asyncio.gather(
            *(
                asyncio.open_connection(where.hostname, where.port)
                for _ in range(first, min(inflight, first + 32))
            )
        )
    queue = iter(encoded)

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for request in queue:
            begun = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _CONTENT_LENGTH.search(head)
            if length is None:
                raise RuntimeError(f"http: no Content-Length in {head[:200]!r}")
            body = await reader.readexactly(int(length[1]))
            if not head.startswith(b"HTTP/1.1 200") or b'"result"' not in body:
                raise RuntimeError(f"http: {head[:12]!r} {body[:300]!r}")
            latencies.append(time.perf_counter() - begun)

    on_start()
    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(r, w) for r, w in connections))
    finally:
        elapsed = time.perf_counter() - started
        on_end()
        for _, writer in connections:
            writer.close()
    return summary(requests / elapsed, latencies)


def timed_http(bench: Bench, child: Child, roles: dict[str, str]) -> dict[str, Any]:
    """A warm-up on fresh connections, then the timed drive of ``child``'s HTTP server;
    ``roles`` names the server's topics to count, per input, as for the Kafka paths."""
    url = child.info["http"]
    inflight, requests = bench.inflight, bench.http_requests
    asyncio.run(drive_http(url, 2 * inflight, inflight))
    meter = Meter(server=child.pid, broker=bench.broker.pid, client=os.getpid())
    before = end_offsets(bench.bootstrap, list(roles)) if roles else {}
    figures: dict[str, Any] = asyncio.run(
        drive_http(url, requests, inflight, on_start=meter.start, on_end=meter.stop)
    )
    figures |= meter.figures | {"requests": requests}
    if roles:
        time.sleep(0.5)  # the commit cycle after the last answer
        after = end_offsets(bench.bootstrap, list(roles))
        figures |= writes(bench.bootstrap, before, after, roles, requests)
    return figures


def bare(bench: Bench, *, tracing: bool = True) -> dict[str, Any]:
    """The ``http bare`` path: the bare app in its own process (:func:`serve`), timed;
    without ``tracing``, no ``TracerProvider``: the SDK's spans are the API's no-ops."""
    child = Child("bench.runtime_http", "serve", *([] if tracing else ["--no-tracing"]))
    try:
        figures = timed_http(bench, child, {})
        figures["rss_mib"] = child.info["rss_kib"] / 1024
        return figures
    finally:
        child.stop()


if __name__ == "__main__":
    app()
