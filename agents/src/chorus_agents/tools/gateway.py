"""The :class:`ToolGateway` over the official MCP client: streamable HTTP and stdio.

One session per tool server, opened at its first use and opened again after it failed.
Each call: allow-list check, circuit breaker, then up to ``retry.attempts`` attempts of
at most the tool's ``timeoutSeconds`` each (connecting included), with backoff between
them. Transient failures (connection refused or dropped, a timeout, an HTTP 5xx or
JSON-RPC internal error) are retried and count against the breaker; a tool's own error
(``isError``) is a result, and a protocol error (invalid parameters, unknown method) is
:class:`~chorus_agents.tools.base.ToolCallFailed`. Every call ends in one ``tool.call``
audit record (``tool.refused`` for refusals) and one metrics observation.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from chorus_api.runtime import RuntimeTool
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from chorus_agents.tools.base import (
    IDEMPOTENCY_KEY_META,
    AuditSink,
    CircuitOpen,
    NullAudit,
    ToolCallFailed,
    ToolError,
    ToolGateway,
    ToolInfo,
    ToolRefused,
    ToolResult,
    ToolTimeout,
    ToolUnavailable,
    arguments_digest,
)
from chorus_agents.tools.metrics import ToolMetrics
from chorus_agents.tools.policy import CircuitBreaker, RetryPolicy
from chorus_agents.tools.session import McpSession, SessionLost

log = logging.getLogger(__name__)

CONNECTION_CLOSED = -32000
REQUEST_TIMEOUT = -32001
INTERNAL_ERROR = -32603
TRANSIENT_CODES = frozenset({CONNECTION_CLOSED, REQUEST_TIMEOUT, INTERNAL_ERROR})
"""JSON-RPC errors worth another try: the MCP client reports an HTTP 5xx as INTERNAL_ERROR."""


class _Transient(Exception):
    def __init__(self, reason: str, *, timeout: bool = False) -> None:
        super().__init__(reason)
        self.timeout = timeout


class _Server:
    """A tool server's state: its config, session and breaker."""

    def __init__(self, config: RuntimeTool, breaker: CircuitBreaker) -> None:
        self.config = config
        self.allow = frozenset(config.allow)
        self.breaker = breaker
        self.session: McpSession | None = None
        self.lock = asyncio.Lock()


class McpToolGateway(ToolGateway):
    """The agent's tool servers, called through the official MCP client.

    ``clock`` (monotonic seconds), ``sleep`` and ``random`` are injected so the backoff
    and the breaker's cool-down are tested without waiting.
    """

    def __init__(
        self,
        tools: Sequence[RuntimeTool],
        *,
        agent: str,
        audit: AuditSink | None = None,
        retry: RetryPolicy | None = None,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        metrics: ToolMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.agent = agent
        self.audit: AuditSink = audit if audit is not None else NullAudit()
        self.retry = retry or RetryPolicy()
        self.metrics = metrics or ToolMetrics()
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._servers = {
            tool.name: _Server(
                tool,
                CircuitBreaker(failure_threshold=failure_threshold, cooldown=cooldown, clock=clock),
            )
            for tool in tools
        }

    def breaker(self, tool: str) -> CircuitBreaker:
        """The circuit breaker of the tool server ``tool``."""
        return self._servers[tool].breaker

    async def list_tools(self) -> tuple[ToolInfo, ...]:
        found: list[ToolInfo] = []
        for server in self._servers.values():
            name = server.config.name
            try:
                session = await asyncio.wait_for(
                    self._session(server), timeout=server.config.timeout_seconds
                )
                offered = await asyncio.wait_for(
                    session.list_tools(), timeout=server.config.timeout_seconds
                )
            except (SessionLost, MCPError, TimeoutError) as exc:
                await self._drop(server)
                raise ToolUnavailable(
                    f"agent {self.agent}: tool '{name}': cannot list its tools: {_text(exc)}",
                    tool=name,
                    name="",
                ) from None
            by_name = {tool.name: tool for tool in offered}
            for allowed in server.config.allow:
                tool = by_name.get(allowed)
                if tool is None:
                    log.warning(
                        "agent %s: tool '%s' does not offer '%s'", self.agent, name, allowed
                    )
                    continue
                found.append(
                    ToolInfo(
                        tool=name,
                        name=allowed,
                        description=tool.description or "",
                        input_schema=dict(tool.input_schema),
                    )
                )
        return tuple(found)

    async def call(
        self, tool: str, name: str, arguments: Mapping[str, Any], *, idempotency_key: str
    ) -> ToolResult:
        record = {
            "agent": self.agent,
            "tool": tool,
            "name": name,
            "arguments": arguments_digest(arguments),
            "idempotency_key": idempotency_key,
        }
        server = self._servers.get(tool)
        if server is None or name not in server.allow:
            if server is None:
                known = ", ".join(sorted(self._servers)) or "none"
                reason = f"agent {self.agent}: has no tool '{tool}' (its tools: {known})"
            else:
                allowed = ", ".join(sorted(server.allow))
                reason = (
                    f"agent {self.agent}: tool '{tool}': may not call '{name}' (allowed: {allowed})"
                )
            self.audit.record("tool.refused", **record, outcome="refused", reason=reason)
            self.metrics.observe(tool, "(not allowed)", "refused", None)
            raise ToolRefused(reason, tool=tool, name=name)

        started = self._clock()
        try:
            result = await self._attempts(server, name, arguments, idempotency_key)
        except ToolError as exc:
            outcome = _outcome(exc)
            self.audit.record("tool.call", **record, outcome=outcome, error=str(exc))
            reached = not isinstance(exc, CircuitOpen)
            self.metrics.observe(tool, name, outcome, self._clock() - started if reached else None)
            raise
        outcome = "error" if result.is_error else "ok"
        self.audit.record("tool.call", **record, outcome=outcome, attempts=result.attempts)
        self.metrics.observe(tool, name, outcome, self._clock() - started)
        return result

    async def _attempts(
        self, server: _Server, name: str, arguments: Mapping[str, Any], key: str
    ) -> ToolResult:
        tool = server.config.name
        where = f"agent {self.agent}: tool '{tool}' call '{name}'"
        attempts = self.retry.attempts
        for attempt in range(attempts):
            if not server.breaker.allow():
                raise CircuitOpen(
                    f"{where}: circuit open after repeated failures "
                    f"(retry in {server.breaker.retry_in():.1f}s)",
                    tool=tool,
                    name=name,
                )
            try:
                answer = await self._attempt(server, name, arguments, key)
            except _Transient as exc:
                server.breaker.failure()
                if attempt + 1 < attempts:
                    delay = self.retry.delay(attempt, self._random)
                    log.info("%s: %s; retrying in %.2fs", where, exc, delay)
                    await self._sleep(delay)
                    continue
                tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
                kind = ToolTimeout if exc.timeout else ToolUnavailable
                raise kind(f"{where}: {exc} ({tries})", tool=tool, name=name) from None
            except MCPError as exc:
                server.breaker.success()  # the server answered
                raise ToolCallFailed(
                    f"{where}: rejected: {exc} (code {exc.code})", tool=tool, name=name
                ) from None
            server.breaker.success()
            return _result(tool, name, answer, key, attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self, server: _Server, name: str, arguments: Mapping[str, Any], key: str
    ) -> CallToolResult:
        timeout = server.config.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                session = await self._session(server)
                return await session.call_tool(name, arguments, {IDEMPOTENCY_KEY_META: key})
        except TimeoutError:
            raise _Transient(f"timed out after {timeout:g}s", timeout=True) from None
        except SessionLost as exc:
            await self._drop(server)
            raise _Transient(f"unavailable: {exc}") from None
        except MCPError as exc:
            if exc.code not in TRANSIENT_CODES:
                raise
            if exc.code == REQUEST_TIMEOUT:
                raise _Transient(f"timed out after {timeout:g}s", timeout=True) from None
            await self._drop(server)
            raise _Transient(f"unavailable: {exc}") from None

    async def _session(self, server: _Server) -> McpSession:
        async with server.lock:
            if server.session is not None and server.session.alive:
                return server.session
            if server.session is not None:
                await server.session.close()
                server.session = None
            session = McpSession(server.config)
            await session.open()
            server.session = session
            return session

    async def _drop(self, server: _Server) -> None:
        session, server.session = server.session, None
        if session is not None:
            await session.close()

    async def aclose(self) -> None:
        for server in self._servers.values():
            await self._drop(server)


def _result(tool: str, name: str, answer: CallToolResult, key: str, attempts: int) -> ToolResult:
    content = tuple(
        block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in answer.content
    )
    text = "\n".join(str(block["text"]) for block in content if block.get("type") == "text")
    return ToolResult(
        tool=tool,
        name=name,
        text=text,
        is_error=answer.is_error,
        content=content,
        structured=answer.structured_content,
        idempotency_key=key,
        attempts=attempts,
    )


def _outcome(exc: ToolError) -> str:
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if isinstance(exc, ToolTimeout):
        return "timeout"
    if isinstance(exc, ToolUnavailable):
        return "unavailable"
    return "failed"


def _text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
