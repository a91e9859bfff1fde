"""What the domains' MCP servers share: the idempotency key, refusals as tool errors, ``main()``.

A domain's MCP server module (``trading.exchange_server``, ``icu.clinical_server``, ...)
builds an official-SDK ``MCPServer`` in ``create_server()`` (what ``chorus mcp serve
<module>`` runs, :mod:`chorus_agents.cli.mcp`) and keeps a ``main()`` for ``python -m``
that serves the same server through :func:`main`. Its tools use:

- :func:`idempotency_key`: the key a side-effecting tool deduplicates on, the
  ``idempotency_key`` argument if given, else the request's ``_meta``
  ``chorus/idempotency-key`` (:data:`~chorus_agents.tools.base.IDEMPOTENCY_KEY_META`, set by
  the Chorus tool gateway on every call), else ``None``;
- :func:`refusals`: turns a back end's refusal (an exception with a ``rule``) into the
  SDK's ``ToolError``, so the caller sees an ``isError`` result whose text names the rule:
  ``<what> refused (<rule>): <message>``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from chorus_agents.tools.base import IDEMPOTENCY_KEY_META


def meta_key(ctx: Context[Any, Any] | None) -> str | None:
    """The idempotency key the caller put in the request's ``_meta``; ``None`` without one."""
    if ctx is None:
        return None
    meta = ctx.request_context.meta or {}
    value = meta.get(IDEMPOTENCY_KEY_META)
    return str(value) if value is not None else None


def idempotency_key(explicit: str | None, ctx: Context[Any, Any] | None) -> str | None:
    """``explicit`` (a tool's ``idempotency_key`` argument) if set, else :func:`meta_key`."""
    return explicit or meta_key(ctx)


def refusal(what: str, refused: Exception, *, verb: str = "refused") -> ToolError:
    """``<what> <verb> (<rule>): <message>`` as a ``ToolError``; ``rule`` is the refusal's
    ``rule`` attribute (``unknown`` without one)."""
    rule = getattr(refused, "rule", "unknown")
    return ToolError(f"{what} {verb} ({rule}): {refused}")


@contextmanager
def refusals(what: str, *kinds: type[Exception], verb: str = "refused") -> Iterator[None]:
    """Raises :func:`refusal` (chained) for an exception of ``kinds`` raised in the block;
    any other exception passes unchanged."""
    try:
        yield
    except kinds as refused:
        raise refusal(what, refused, verb=verb) from refused


def argument_parser(prog: str) -> argparse.ArgumentParser:
    """``--transport`` (``http``, ``stdio``), ``--host`` and ``--port``; a server with more
    options adds them before parsing, then calls :func:`serve`."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--transport", choices=("http", "stdio"), default="http")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    return parser


def run_server(
    server: MCPServer[Any],
    *,
    transport: str,
    host: str,
    port: int,
    path: str = "/mcp",
    log_level: str = "warning",
) -> None:
    """Serves ``server`` until interrupted: streamable HTTP at ``path`` (uvicorn), or stdio."""
    if transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    # host= decides the SDK's DNS-rebinding protection: bound to all addresses, the server
    # is reached through a Service name, which a loopback-only Host check would refuse.
    app = server.streamable_http_app(streamable_http_path=path, host=host)
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower())


def serve(server: MCPServer[Any], args: argparse.Namespace) -> int:
    """Serves ``server`` as :func:`argument_parser`'s ``args`` say until interrupted:
    streamable HTTP at ``/mcp`` (uvicorn, log level ``warning``), or stdio. Returns 0."""
    run_server(server, transport=args.transport, host=args.host, port=args.port)
    return 0


def main(
    create_server: Callable[[], MCPServer[Any]], argv: Sequence[str] | None = None, *, prog: str
) -> int:
    """A server module's ``main()``: parses ``argv`` (:func:`argument_parser`) and serves
    ``create_server()``, the server ``chorus mcp serve`` runs too."""
    return serve(create_server(), argument_parser(prog).parse_args(argv))
