"""Structured logs: one JSON object per line, with the agent, task and trace ids, never a secret.

:func:`setup_logging` routes the standard library's logging (the runtime's modules, the
SDKs) through structlog's JSON renderer. Every line carries ``agent`` (bound once),
and, when known, ``task_id``/``context_id`` (the audit scope of the running handling)
and ``trace_id``/``span_id`` (the running span). Values of keys that look like secrets
(``password``, ``token``, ``secret``, ``api_key``, ``authorization``, ...) are replaced
by ``"[redacted]"``: a secret passed as a field never reaches the log.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

from chorus_agents.audit import current_scope

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|api[-_.]?key|authorization|credential|cookie|sasl\.password)",
    re.IGNORECASE,
)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replaces the values of secret-looking keys, also inside nested mappings."""
    for key, value in list(event.items()):
        if _SECRET_KEY.search(str(key)):
            event[key] = REDACTED
        elif isinstance(value, MutableMapping):
            event[key] = redact(_logger, _method, dict(value))
    return event


def add_ids(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Adds the running handling's task/context ids and the running span's trace ids."""
    scope = current_scope()
    if scope is not None:
        if scope.task_id:
            event.setdefault("task_id", scope.task_id)
        if scope.context_id:
            event.setdefault("context_id", scope.context_id)
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event.setdefault("trace_id", format(span.trace_id, "032x"))
        event.setdefault("span_id", format(span.span_id, "016x"))
    return event


def processors() -> list[Any]:
    """The chain every line goes through before it is rendered as JSON."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_ids,
        redact,
        structlog.processors.format_exc_info,
    ]


def setup_logging(
    *, agent: str | None = None, level: str = "INFO", stream: TextIO | None = None
) -> None:
    """JSON logs on ``stream`` (stderr) for structlog and standard logging alike."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(default=str),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    if agent is not None:
        structlog.contextvars.bind_contextvars(agent=agent)
