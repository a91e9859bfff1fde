"""A2A over Kafka, one record at a time: requests, responses and dead letters.

The wire format is specified in ``docs/a2a-kafka-binding.md``. In short: a record's
value is an A2A 1.0 JSON-RPC 2.0 request or response in ProtoJSON (as a2a-sdk
serializes it), its key keeps a conversation in order, and its headers carry what
HTTP would carry in its own headers (the protocol version, where to answer, who asks,
the trace context). This module is pure: bytes and headers in, typed values out.

Decoding a request either returns an :class:`A2ARequest` or raises one of the
:class:`PoisonRecord` subclasses, each with a fixed :attr:`~PoisonRecord.reason`
(written to the dead-letter record's ``chorus-error-reason`` header) and the A2A error
the caller is answered with when the record says where to answer.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from a2a.server.jsonrpc_models import JSONParseError as JsonRpcParseError
from a2a.server.jsonrpc_models import JSONRPCError
from a2a.server.request_handlers.response_helpers import build_error_response
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import (
    JSON_RPC_ERROR_CODE_MAP,
    A2AError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    VersionNotSupportedError,
)
from a2a.utils.proto_utils import validate_proto_required_fields
from google.api.field_behavior_pb2 import (  # type: ignore[import-untyped]
    FieldBehavior,
    field_behavior,
)
from google.protobuf.descriptor import FieldDescriptor  # type: ignore[import-untyped]

from chorus_agents.proto import ParseError, ProtoMessage, from_dict, to_dict

BINDING_URI = "https://chorus.dev/a2a/bindings/kafka/v1"
"""The binding's identifier, as an AgentInterface's ``protocolBinding``."""
PROTOCOL_VERSION = "1.0"
"""The A2A protocol version this binding carries."""

A2A_VERSION = "a2a-version"
CORRELATION_ID = "chorus-correlation-id"
REPLY_TO = "chorus-reply-to"
SENDER = "chorus-sender"
STREAM_SEQ = "chorus-stream-seq"
STREAM_END = "chorus-stream-end"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
ERROR_REASON = "chorus-error-reason"
ERROR_MESSAGE = "chorus-error-message"
ERROR_TOPIC = "chorus-error-topic"
ERROR_PARTITION = "chorus-error-partition"
ERROR_OFFSET = "chorus-error-offset"
ERROR_AGENT = "chorus-error-agent"

BINDING_HEADERS = frozenset({A2A_VERSION, CORRELATION_ID, REPLY_TO, SENDER, STREAM_SEQ, STREAM_END})
TRACE_HEADERS = frozenset({TRACEPARENT, TRACESTATE})
FORBIDDEN_PARAMETERS = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Service parameters never written to a record: records are durable and widely readable."""

METHODS: Mapping[str, type[ProtoMessage]] = {
    "SendMessage": SendMessageRequest,
    "SendStreamingMessage": SendMessageRequest,
    "GetTask": GetTaskRequest,
    "ListTasks": ListTasksRequest,
    "CancelTask": CancelTaskRequest,
    "SubscribeToTask": SubscribeToTaskRequest,
    "CreateTaskPushNotificationConfig": TaskPushNotificationConfig,
    "GetTaskPushNotificationConfig": GetTaskPushNotificationConfigRequest,
    "ListTaskPushNotificationConfigs": ListTaskPushNotificationConfigsRequest,
    "DeleteTaskPushNotificationConfig": DeleteTaskPushNotificationConfigRequest,
    "GetExtendedAgentCard": GetExtendedAgentCardRequest,
}
"""Every A2A 1.0 JSON-RPC method and the protobuf type of its ``params``."""
STREAMING_METHODS = frozenset({"SendStreamingMessage", "SubscribeToTask"})
"""Methods answered by a stream of records, the last one marked ``chorus-stream-end``."""

_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_MAX_ERROR_MESSAGE = 1000

HeaderValue = bytes | str | None
Headers = Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue]
"""Kafka record headers as confluent-kafka takes and returns them."""


def _pairs(headers: Headers | None) -> Sequence[tuple[str, HeaderValue]]:
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        return list(headers.items())
    return headers


@dataclass(frozen=True)
class OutRecord:
    """A record to produce: where, its key, its value and its headers."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> str | None:
        """The last value of header ``name``, decoded, or ``None``."""
        return header_map(self.headers).get(name)


@dataclass(frozen=True)
class ReplyRoute:
    """Where and how to answer a request: enough to address every record of the answer."""

    reply_to: str
    correlation_id: str
    request_id: str | int | None
    key: bytes | None


@dataclass(frozen=True)
class A2ARequest:
    """A decoded, validated A2A request record."""

    method: str
    params: ProtoMessage
    route: ReplyRoute
    sender: str
    a2a_version: str
    service_parameters: Mapping[str, str] = field(default_factory=dict)
    """Headers that are neither the binding's nor trace context (``a2a-extensions``, ...)."""
    trace: Mapping[str, str] = field(default_factory=dict)
    """``traceparent`` and ``tracestate``, when present."""

    @property
    def streaming(self) -> bool:
        """Whether the answer is a stream of records."""
        return self.method in STREAMING_METHODS


# --- poison --------------------------------------------------------------------------------


class PoisonReason(StrEnum):
    """Why a record could not be processed: the ``chorus-error-reason`` header's values."""

    TOO_LARGE = "too-large"
    MISSING_HEADER = "missing-header"
    INVALID_HEADER = "invalid-header"
    UNSUPPORTED_VERSION = "unsupported-version"
    INVALID_JSON = "invalid-json"
    NOT_JSON_RPC = "not-json-rpc"
    UNKNOWN_METHOD = "unknown-method"
    INVALID_PARAMS = "invalid-params"


class PoisonRecord(Exception):
    """A record that is not a valid A2A request; it goes to the dead-letter topic.

    ``route`` is set when the record said where to answer: the caller is then also
    answered with :meth:`a2a_error`, so it does not wait for an answer that never comes.
    """

    reason: ClassVar[PoisonReason]
    error_type: ClassVar[type[A2AError]] = InvalidRequestError

    def __init__(self, message: str, *, route: ReplyRoute | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.route = route

    def a2a_error(self) -> A2AError | JSONRPCError:
        """The error the caller is answered with."""
        return self.error_type(message=f"{self.reason}: {self.message}")


class RecordTooLarge(PoisonRecord):
    reason = PoisonReason.TOO_LARGE


class MissingHeader(PoisonRecord):
    reason = PoisonReason.MISSING_HEADER


class InvalidHeader(PoisonRecord):
    reason = PoisonReason.INVALID_HEADER


class UnsupportedVersion(PoisonRecord):
    reason = PoisonReason.UNSUPPORTED_VERSION
    error_type = VersionNotSupportedError


class InvalidJson(PoisonRecord):
    reason = PoisonReason.INVALID_JSON

    def a2a_error(self) -> A2AError | JSONRPCError:
        # a2a-sdk's JSONParseError exception has no JSON-RPC mapping; its model has (-32700).
        return JsonRpcParseError(message=f"{self.reason}: {self.message}")


class NotJsonRpc(PoisonRecord):
    reason = PoisonReason.NOT_JSON_RPC


class UnknownMethod(PoisonRecord):
    reason = PoisonReason.UNKNOWN_METHOD
    error_type = MethodNotFoundError


class InvalidParams(PoisonRecord):
    reason = PoisonReason.INVALID_PARAMS
    error_type = InvalidParamsError


# --- headers ---------------------------------------------------------------------------------


def header_map(headers: Headers | None) -> dict[str, str]:
    """Headers by lower-case name, values decoded as UTF-8; the last of duplicates wins.

    Raises :class:`InvalidHeader` for a value that is not UTF-8.
    """
    out: dict[str, str] = {}
    for name, value in _pairs(headers):
        if value is None:
            continue
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidHeader(f"header {name!r} is not UTF-8") from None
        out[name.lower()] = value
    return out


def _encode_headers(pairs: Mapping[str, str]) -> tuple[tuple[str, bytes], ...]:
    return tuple((name, value.encode("utf-8")) for name, value in pairs.items())


def _version_supported(version: str) -> bool:
    major, _, _ = version.partition(".")
    return major == PROTOCOL_VERSION.partition(".")[0]


# --- requests ------------------------------------------------------------------------------


def request_key(method: str, params: ProtoMessage) -> str | None:
    """The record key of a request: its conversation (``contextId``) or else its task.

    A first message has no ``contextId`` yet: its own message id keys it.
    """
    if isinstance(params, SendMessageRequest):
        return (
            params.message.context_id or params.message.task_id or params.message.message_id or None
        )
    if isinstance(params, ListTasksRequest):
        return params.context_id or None
    if isinstance(params, GetTaskRequest | CancelTaskRequest | SubscribeToTaskRequest):
        return params.id or None
    if isinstance(params, TaskPushNotificationConfig):
        return params.task_id or None
    if isinstance(
        params,
        GetTaskPushNotificationConfigRequest
        | ListTaskPushNotificationConfigsRequest
        | DeleteTaskPushNotificationConfigRequest,
    ):
        return params.task_id or None
    return None


def encode_request(
    method: str,
    params: ProtoMessage,
    *,
    topic: str,
    request_id: str,
    reply_to: str,
    sender: str,
    service_parameters: Mapping[str, str] | None = None,
    trace: Mapping[str, str] | None = None,
) -> OutRecord:
    """The record asking ``topic``'s agent to run ``method``; answers go to ``reply_to``.

    Service parameters become headers under their lower-case names, except the
    binding's own and credentials (:data:`FORBIDDEN_PARAMETERS`), which are dropped.
    """
    if method not in METHODS:
        raise ValueError(f"not an A2A 1.0 method: {method!r}")
    if not isinstance(params, METHODS[method]):
        raise TypeError(f"{method} takes {METHODS[method].__name__}, not {type(params).__name__}")
    headers: dict[str, str] = {}
    for name, value in (service_parameters or {}).items():
        lower = name.lower()
        if (
            lower not in BINDING_HEADERS
            and lower not in TRACE_HEADERS
            and lower not in FORBIDDEN_PARAMETERS
        ):
            headers[lower] = value
    headers.update({k: v for k, v in (trace or {}).items() if k in TRACE_HEADERS})
    headers.update(
        {
            A2A_VERSION: PROTOCOL_VERSION,
            CORRELATION_ID: request_id,
            REPLY_TO: reply_to,
            SENDER: sender,
        }
    )
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": to_dict(params)}
    key = request_key(method, params)
    return OutRecord(
        topic=topic,
        key=key.encode("utf-8") if key else None,
        value=_dumps(body),
        headers=_encode_headers(headers),
    )


def decode_request(
    value: bytes | None,
    headers: Headers | None,
    *,
    key: bytes | None = None,
    max_bytes: int = 1024 * 1024,
) -> A2ARequest:
    """The request in a record, validated; raises a :class:`PoisonRecord` subclass if it is none.

    Checks run cheapest first, and the reply route is read before the value, so that
    even a record whose value is garbage is answered when it says where to.
    """
    fields = header_map(headers)
    route = _route(fields, key)
    if value is not None and len(value) > max_bytes:
        raise RecordTooLarge(
            f"{len(value)} bytes, more than the {max_bytes} this agent accepts", route=route
        )
    if route is None:
        missing = [name for name in (REPLY_TO, CORRELATION_ID) if name not in fields]
        if missing:
            raise MissingHeader(f"no {' or '.join(missing)} header: the request cannot be answered")
        raise InvalidHeader(f"{REPLY_TO} is not a topic name: {fields[REPLY_TO][:250]!r}")
    version = fields.get(A2A_VERSION)
    if version is None:
        raise MissingHeader(
            f"no {A2A_VERSION} header (this binding carries A2A {PROTOCOL_VERSION})", route=route
        )
    if not _version_supported(version):
        raise UnsupportedVersion(
            f"A2A {version[:50]!r}; this agent speaks {PROTOCOL_VERSION}", route=route
        )
    if not value:
        raise InvalidJson("the record has no value", route=route)
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJson(str(exc), route=route) from None
    method, request_id, raw_params = _json_rpc_request(body, route)
    if str(request_id) != route.correlation_id:
        raise InvalidHeader(
            f"{CORRELATION_ID} {route.correlation_id!r} is not the JSON-RPC id {request_id!r}",
            route=route,
        )
    route = ReplyRoute(route.reply_to, route.correlation_id, request_id, route.key)
    model = METHODS.get(method)
    if model is None:
        raise UnknownMethod(f"{method[:100]!r} is not an A2A 1.0 method", route=route)
    try:
        params = from_dict(raw_params, model())
        if not _complete(params):
            validate_proto_required_fields(params)  # the SDK's check says what is missing
    except ParseError as exc:
        raise InvalidParams(f"{method}: {exc}", route=route) from None
    except InvalidParamsError as exc:
        problems = "; ".join(
            f"{e['field']}: {e['message']}" for e in (exc.data or {}).get("errors", [])
        )
        raise InvalidParams(f"{method}: {problems or exc.message}", route=route) from None
    return A2ARequest(
        method=method,
        params=params,
        route=route,
        sender=fields.get(SENDER, ""),
        a2a_version=version,
        service_parameters={
            k: v for k, v in fields.items() if k not in BINDING_HEADERS and k not in TRACE_HEADERS
        },
        trace={k: v for k, v in fields.items() if k in TRACE_HEADERS},
    )


@functools.cache
def _required_plan(
    descriptor: Any,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The fields of a message type marked REQUIRED, and its message-typed fields.

    Reading field options is what makes a2a-sdk's ``validate_proto_required_fields``
    cost ~170 us per request; a type's options never change, so they are read once.
    """
    required, nested = [], []
    for field_descriptor in descriptor.fields:
        behaviors = field_descriptor.GetOptions().Extensions[field_behavior]
        if FieldBehavior.REQUIRED in behaviors:
            required.append(field_descriptor)
        if field_descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            nested.append(field_descriptor)
    return tuple(required), tuple(nested)


def _complete(message: Any) -> bool:
    """Whether every REQUIRED field is set, recursively: the SDK's check, without details."""
    required, nested = _required_plan(message.DESCRIPTOR)
    for f in required:
        value = getattr(message, f.name)
        if f.is_repeated:
            if not value:
                return False
        elif f.has_presence:
            if not message.HasField(f.name):
                return False
        elif value == f.default_value:
            return False
    for f in nested:
        value = getattr(message, f.name)
        if not f.is_repeated:
            if message.HasField(f.name) and not _complete(value):
                return False
        elif f.message_type is not None and f.message_type.GetOptions().map_entry:
            if any(isinstance(v, ProtoMessage) and not _complete(v) for v in value.values()):
                return False
        elif not all(_complete(item) for item in value):
            return False
    return True


def _route(fields: Mapping[str, str], key: bytes | None) -> ReplyRoute | None:
    reply_to, correlation_id = fields.get(REPLY_TO), fields.get(CORRELATION_ID)
    if reply_to is None or not correlation_id or _TOPIC.fullmatch(reply_to) is None:
        return None
    return ReplyRoute(
        reply_to=reply_to, correlation_id=correlation_id, request_id=correlation_id, key=key
    )


def _json_rpc_request(body: Any, route: ReplyRoute) -> tuple[str, str | int, dict[str, Any]]:
    if not isinstance(body, dict):
        raise NotJsonRpc(f"a JSON-RPC request is an object, not {type(body).__name__}", route=route)
    if body.get("jsonrpc") != "2.0":
        raise NotJsonRpc("'jsonrpc' must be exactly '2.0'", route=route)
    method, request_id, params = body.get("method"), body.get("id"), body.get("params", {})
    if not isinstance(method, str) or not method:
        raise NotJsonRpc("'method' must be a non-empty string", route=route)
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        raise NotJsonRpc(
            "'id' must be a string or an integer (notifications are not answered)", route=route
        )
    if not isinstance(params, dict):
        raise NotJsonRpc("'params' must be an object", route=route)
    return method, request_id, params


# --- responses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class A2AResponse:
    """One decoded response record: a result or an error, and its place in the answer."""

    correlation_id: str
    seq: int
    end: bool
    result: Any = None
    error: Mapping[str, Any] | None = None
    sender: str = ""

    def raise_for_error(self) -> None:
        """Raises the A2A error this record carries, if any (as a2a-sdk's transports do)."""
        if self.error is not None:
            raise a2a_error_from_json(self.error)


class InvalidResponse(Exception):
    """A record on a replies topic that is not a response of this binding."""


def encode_response(
    route: ReplyRoute,
    *,
    sender: str,
    seq: int,
    end: bool,
    result: Any = None,
    error: A2AError | JSONRPCError | None = None,
    trace: Mapping[str, str] | None = None,
) -> OutRecord:
    """Record ``seq`` of the answer to ``route``'s request: ``result`` or ``error``.

    ``result`` is a JSON value (ProtoJSON already); ``end`` marks the answer's last record.
    """
    if error is not None:
        body = build_error_response(route.request_id, error)
    else:
        body = {"jsonrpc": "2.0", "id": route.request_id, "result": result}
    headers = {
        **{k: v for k, v in (trace or {}).items() if k in TRACE_HEADERS},
        A2A_VERSION: PROTOCOL_VERSION,
        CORRELATION_ID: route.correlation_id,
        SENDER: sender,
        STREAM_SEQ: str(seq),
    }
    if end:
        headers[STREAM_END] = "true"
    return OutRecord(
        topic=route.reply_to, key=route.key, value=_dumps(body), headers=_encode_headers(headers)
    )


def decode_response(value: bytes | None, headers: Headers | None) -> A2AResponse:
    """The response in a record of a replies topic; :class:`InvalidResponse` if it is none."""
    try:
        fields = header_map(headers)
    except InvalidHeader as exc:
        raise InvalidResponse(str(exc)) from None
    correlation_id = fields.get(CORRELATION_ID)
    if not correlation_id:
        raise InvalidResponse(f"no {CORRELATION_ID} header")
    try:
        seq = int(fields.get(STREAM_SEQ, "0"))
        body = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidResponse(f"response {correlation_id}: {exc}") from None
    if (
        not isinstance(body, dict)
        or body.get("jsonrpc") != "2.0"
        or ("result" in body) == ("error" in body)
    ):
        raise InvalidResponse(f"response {correlation_id}: not a JSON-RPC 2.0 response object")
    error = body.get("error")
    if error is not None and not isinstance(error, dict):
        raise InvalidResponse(f"response {correlation_id}: 'error' is not an object")
    return A2AResponse(
        correlation_id=correlation_id,
        seq=seq,
        end=fields.get(STREAM_END, "").lower() == "true",
        result=body.get("result"),
        error=error,
        sender=fields.get(SENDER, ""),
    )


_ERROR_BY_CODE = {code: error_type for error_type, code in JSON_RPC_ERROR_CODE_MAP.items()}
_ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


def a2a_error_from_json(error: Mapping[str, Any]) -> A2AError:
    """The a2a-sdk exception for a JSON-RPC error object (as its JSON-RPC transport maps it)."""
    code, message = error.get("code"), str(error.get("message", error))
    data: dict[str, Any] | None = None
    details = error.get("data")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, dict) and detail.get("@type") == _ERROR_INFO_TYPE:
                data = detail.get("metadata") or None
                break
    error_type = _ERROR_BY_CODE.get(code) if isinstance(code, int) else None
    if error_type is None:
        return A2AError(f"JSON-RPC error {code}: {message}")
    return error_type(message, data=data)


# --- dead letters --------------------------------------------------------------------------


def dead_letter_record(
    topic: str,
    *,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers | None,
    reason: str,
    message: str,
    agent: str,
) -> OutRecord:
    """The dead-letter copy of a record: its key, value and headers, plus why and whence.

    The original headers come first and are kept byte for byte; the ``chorus-error-*``
    headers follow, so a reader taking the last value of a name sees the newest error.
    """
    original = tuple(
        (name, raw if isinstance(raw, bytes) else raw.encode("utf-8"))
        for name, raw in _pairs(headers)
        if raw is not None
    )
    extra = _encode_headers(
        {
            ERROR_REASON: reason,
            ERROR_MESSAGE: message[:_MAX_ERROR_MESSAGE],
            ERROR_TOPIC: source_topic,
            ERROR_PARTITION: str(partition),
            ERROR_OFFSET: str(offset),
            ERROR_AGENT: agent,
        }
    )
    return OutRecord(topic=topic, key=key, value=value, headers=original + extra)


def _dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
