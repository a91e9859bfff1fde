"""The binding's record format: round trips, and every kind of poison named by its reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from a2a.helpers import new_text_message
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Role,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    Task,
    TaskState,
)
from a2a.utils.errors import (
    InvalidParamsError,
    InvalidRequestError,
    JSONParseError,
    MethodNotFoundError,
    TaskNotFoundError,
    VersionNotSupportedError,
)
from chorus_agents.binding import codec
from chorus_agents.binding.codec import (
    A2A_VERSION,
    CORRELATION_ID,
    ERROR_REASON,
    REPLY_TO,
    SENDER,
    STREAM_END,
    PoisonReason,
    PoisonRecord,
    ReplyRoute,
)
from chorus_agents.proto import from_dict, to_dict

pytestmark = pytest.mark.unit

INBOX = "chorus.trading.a2a.risk.inbox"
REPLIES = "chorus.trading.a2a.desk.replies"


def send_request(context_id: str = "ctx-1") -> SendMessageRequest:
    message = new_text_message("assess AAPL x100", context_id=context_id, role=Role.ROLE_USER)
    return SendMessageRequest(message=message)


def encoded(method: str = "SendMessage", params: Any = None, **kwargs: Any) -> codec.OutRecord:
    return codec.encode_request(
        method,
        params if params is not None else send_request(),
        topic=INBOX,
        request_id=kwargs.pop("request_id", "req-1"),
        reply_to=REPLIES,
        sender="trading/desk",
        **kwargs,
    )


def headers(**overrides: str | None) -> list[tuple[str, bytes]]:
    base: dict[str, str | None] = {
        A2A_VERSION: "1.0",
        CORRELATION_ID: "req-1",
        REPLY_TO: REPLIES,
        SENDER: "trading/desk",
    }
    base.update(overrides)
    return [(k, v.encode()) for k, v in base.items() if v is not None]


def body(**overrides: Any) -> bytes:
    document: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": "req-1",
        "method": "SendMessage",
        "params": to_dict(send_request()),
    }
    document.update(overrides)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


# --- round trips ----------------------------------------------------------------------------


def test_a_request_round_trips_with_its_headers_and_key() -> None:
    params = send_request("ctx-42")
    record = encoded(
        params=params, trace={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
    )

    assert record.topic == INBOX
    assert record.key == b"ctx-42"
    assert record.header(A2A_VERSION) == "1.0"
    assert record.header(CORRELATION_ID) == "req-1"
    assert record.header(REPLY_TO) == REPLIES
    assert record.header(SENDER) == "trading/desk"
    value = json.loads(record.value or b"")
    assert value["method"] == "SendMessage"
    assert value["params"]["message"]["contextId"] == "ctx-42"  # ProtoJSON: camelCase

    request = codec.decode_request(record.value, list(record.headers), key=record.key)
    assert request.method == "SendMessage"
    assert request.params == params
    assert request.route == ReplyRoute(REPLIES, "req-1", "req-1", b"ctx-42")
    assert request.sender == "trading/desk"
    assert request.trace["traceparent"].startswith("00-aaaa")
    assert not request.streaming


@pytest.mark.parametrize(
    ("method", "params", "key"),
    [
        ("GetTask", GetTaskRequest(id="task-7"), b"task-7"),
        ("CancelTask", CancelTaskRequest(id="task-7"), b"task-7"),
        ("ListTasks", ListTasksRequest(context_id="ctx-3"), b"ctx-3"),
        ("ListTasks", ListTasksRequest(), None),
    ],
)
def test_requests_without_a_message_are_keyed_by_their_task_or_context(
    method: str, params: Any, key: bytes | None
) -> None:
    record = encoded(method, params)
    assert record.key == key
    assert codec.decode_request(record.value, list(record.headers)).params == params


def test_a_first_message_is_keyed_by_its_message_id() -> None:
    record = encoded(params=send_request(context_id=""))
    assert record.key is not None
    assert record.key.decode() == json.loads(record.value or b"")["params"]["message"]["messageId"]


def test_service_parameters_travel_as_headers_but_credentials_never_do() -> None:
    record = encoded(
        service_parameters={
            "A2A-Extensions": "https://example.com/ext/v1",
            "Authorization": "Bearer secret",
            "chorus-reply-to": "chorus.evil.replies",
        }
    )
    names = [name for name, _ in record.headers]
    assert "a2a-extensions" in names
    assert "authorization" not in names
    assert record.header(REPLY_TO) == REPLIES
    request = codec.decode_request(record.value, list(record.headers))
    assert request.service_parameters == {"a2a-extensions": "https://example.com/ext/v1"}


def test_a_request_for_the_wrong_params_type_is_refused_when_encoding() -> None:
    with pytest.raises(TypeError, match="GetTask takes GetTaskRequest"):
        encoded("GetTask", CancelTaskRequest(id="x"))
    with pytest.raises(ValueError, match=r"not an A2A 1\.0 method"):
        encoded("tasks/get", GetTaskRequest(id="x"))


def test_a_result_round_trips_and_the_last_record_ends_the_answer() -> None:
    route = ReplyRoute(REPLIES, "req-1", "req-1", b"ctx-1")
    task = Task(id="t1", context_id="ctx-1")
    task.status.state = TaskState.TASK_STATE_COMPLETED
    result = to_dict(SendMessageResponse(task=task))

    first = codec.encode_response(route, sender="trading/risk", seq=0, end=False, result={"x": 1})
    last = codec.encode_response(route, sender="trading/risk", seq=1, end=True, result=result)

    assert (first.topic, first.key) == (REPLIES, b"ctx-1")
    assert first.header(STREAM_END) is None
    assert last.header(STREAM_END) == "true"
    decoded = codec.decode_response(last.value, list(last.headers))
    assert (decoded.correlation_id, decoded.seq, decoded.end, decoded.sender) == (
        "req-1",
        1,
        True,
        "trading/risk",
    )
    decoded.raise_for_error()
    parsed = SendMessageResponse()
    from_dict(decoded.result, parsed)
    assert parsed.task == task
    assert codec.decode_response(first.value, list(first.headers)).end is False


def test_an_error_round_trips_to_the_sdk_exception() -> None:
    route = ReplyRoute(REPLIES, "req-1", "req-1", None)
    record = codec.encode_response(
        route, sender="trading/risk", seq=0, end=True, error=TaskNotFoundError("no task t9")
    )
    response = codec.decode_response(record.value, list(record.headers))
    assert response.error is not None and response.error["code"] == -32001
    with pytest.raises(TaskNotFoundError, match="no task t9"):
        response.raise_for_error()


@pytest.mark.parametrize(
    ("value", "hdrs", "match"),
    [
        (b'{"jsonrpc":"2.0","id":"r","result":{}}', [], "no chorus-correlation-id"),
        (b"nope", [(CORRELATION_ID, b"r")], "r:"),
        (b'{"jsonrpc":"2.0","id":"r"}', [(CORRELATION_ID, b"r")], "not a JSON-RPC 2.0 response"),
        (
            b'{"jsonrpc":"2.0","id":"r","result":1,"error":{}}',
            [(CORRELATION_ID, b"r")],
            "not a JSON-RPC",
        ),
    ],
)
def test_a_record_that_is_no_response_is_refused(
    value: bytes, hdrs: list[tuple[str, bytes]], match: str
) -> None:
    with pytest.raises(codec.InvalidResponse, match=match):
        codec.decode_response(value, hdrs)


# --- poison ---------------------------------------------------------------------------------

GOOD_PARAMS = to_dict(send_request())

POISON: list[
    tuple[str, bytes | None, list[tuple[str, bytes]], PoisonReason, type[Exception], bool]
] = [
    ("oversized", b"x" * 2048, headers(), PoisonReason.TOO_LARGE, InvalidRequestError, True),
    (
        "no reply-to",
        body(),
        headers(**{REPLY_TO: None}),
        PoisonReason.MISSING_HEADER,
        InvalidRequestError,
        False,
    ),
    (
        "no correlation id",
        body(),
        headers(**{CORRELATION_ID: None}),
        PoisonReason.MISSING_HEADER,
        InvalidRequestError,
        False,
    ),
    (
        "reply-to not a topic",
        body(),
        headers(**{REPLY_TO: "no spaces allowed"}),
        PoisonReason.INVALID_HEADER,
        InvalidRequestError,
        False,
    ),
    (
        "header not utf-8",
        body(),
        [*headers(), ("x-bad", b"\xff\xfe")],
        PoisonReason.INVALID_HEADER,
        InvalidRequestError,
        False,
    ),
    (
        "no a2a-version",
        body(),
        headers(**{A2A_VERSION: None}),
        PoisonReason.MISSING_HEADER,
        InvalidRequestError,
        True,
    ),
    (
        "a2a 0.3",
        body(),
        headers(**{A2A_VERSION: "0.3"}),
        PoisonReason.UNSUPPORTED_VERSION,
        VersionNotSupportedError,
        True,
    ),
    (
        "a2a 2.0",
        body(),
        headers(**{A2A_VERSION: "2.0"}),
        PoisonReason.UNSUPPORTED_VERSION,
        VersionNotSupportedError,
        True,
    ),
    ("empty value", None, headers(), PoisonReason.INVALID_JSON, JSONParseError, True),
    (
        "invalid json",
        b'{"jsonrpc": "2.0", ',
        headers(),
        PoisonReason.INVALID_JSON,
        JSONParseError,
        True,
    ),
    ("not utf-8", b"\xff\xfe{}", headers(), PoisonReason.INVALID_JSON, JSONParseError, True),
    ("json array", b"[1, 2]", headers(), PoisonReason.NOT_JSON_RPC, InvalidRequestError, True),
    (
        "json but not json-rpc",
        b'{"hello": "world"}',
        headers(),
        PoisonReason.NOT_JSON_RPC,
        InvalidRequestError,
        True,
    ),
    (
        "no method",
        body(method=...),
        headers(),
        PoisonReason.NOT_JSON_RPC,
        InvalidRequestError,
        True,
    ),
    ("boolean id", body(id=True), headers(), PoisonReason.NOT_JSON_RPC, InvalidRequestError, True),
    ("notification", body(id=...), headers(), PoisonReason.NOT_JSON_RPC, InvalidRequestError, True),
    (
        "params not an object",
        body(params=[1]),
        headers(),
        PoisonReason.NOT_JSON_RPC,
        InvalidRequestError,
        True,
    ),
    (
        "id is not the correlation id",
        body(id="other"),
        headers(),
        PoisonReason.INVALID_HEADER,
        InvalidRequestError,
        True,
    ),
    (
        "unknown method",
        body(method="message/send"),
        headers(),
        PoisonReason.UNKNOWN_METHOD,
        MethodNotFoundError,
        True,
    ),
    (
        "params of another shape",
        body(params={"message": {"parts": "not a list"}}),
        headers(),
        PoisonReason.INVALID_PARAMS,
        InvalidParamsError,
        True,
    ),
    (
        "required field missing",
        body(params={"message": {"messageId": "m1", "role": "ROLE_USER"}}),
        headers(),
        PoisonReason.INVALID_PARAMS,
        InvalidParamsError,
        True,
    ),
]


CODES: dict[type[Exception], int] = {
    InvalidRequestError: -32600,
    MethodNotFoundError: -32601,
    InvalidParamsError: -32602,
    JSONParseError: -32700,
    VersionNotSupportedError: -32009,
}


@pytest.mark.parametrize(
    ("value", "hdrs", "reason", "error_type", "answerable"),
    [case[1:] for case in POISON],
    ids=[case[0] for case in POISON],
)
def test_every_kind_of_poison_raises_a_typed_error_with_its_reason(
    value: bytes | None,
    hdrs: list[tuple[str, bytes]],
    reason: PoisonReason,
    error_type: type[Exception],
    answerable: bool,
) -> None:
    with pytest.raises(PoisonRecord) as caught:
        codec.decode_request(value, hdrs, key=b"k", max_bytes=1024)
    poison = caught.value
    assert poison.reason == reason
    assert poison.message
    assert (poison.route is not None) == answerable
    error = poison.a2a_error()
    assert (
        type(error).__name__ == error_type.__name__
    )  # JSON parse errors: the SDK's JSON-RPC model
    assert str(reason) in error.message
    if answerable:
        assert poison.route is not None
        assert (poison.route.reply_to, poison.route.correlation_id, poison.route.key) == (
            REPLIES,
            "req-1",
            b"k",
        )


def test_a_valid_record_under_the_size_limit_is_not_poison() -> None:
    request = codec.decode_request(body(), headers(), max_bytes=4096)
    assert request.method == "SendMessage"


def test_a_dead_letter_keeps_the_record_and_says_why() -> None:
    original = [*headers(), ("x-custom", b"\x00\x01")]
    record = codec.dead_letter_record(
        "chorus.trading.risk.dlq",
        source_topic=INBOX,
        partition=2,
        offset=41,
        key=b"k",
        value=b"garbage",
        headers=original,
        reason=PoisonReason.INVALID_JSON,
        message="Expecting value: line 1 column 1 (char 0)" + "!" * 5000,
        agent="trading/risk",
    )
    assert (record.topic, record.key, record.value) == ("chorus.trading.risk.dlq", b"k", b"garbage")
    assert record.headers[: len(original)] == tuple(original)
    assert record.header(ERROR_REASON) == "invalid-json"
    assert record.header(codec.ERROR_TOPIC) == INBOX
    assert (record.header(codec.ERROR_PARTITION), record.header(codec.ERROR_OFFSET)) == ("2", "41")
    assert record.header(codec.ERROR_AGENT) == "trading/risk"
    message = record.header(codec.ERROR_MESSAGE)
    assert message is not None and message.startswith("Expecting value") and len(message) == 1000


def test_stream_responses_parse_as_the_sdk_parses_them() -> None:
    route = ReplyRoute(REPLIES, "req-1", "req-1", None)
    event = StreamResponse()
    event.status_update.task_id = "t1"
    event.status_update.status.state = TaskState.TASK_STATE_WORKING
    record = codec.encode_response(route, sender="a/b", seq=3, end=False, result=to_dict(event))
    response = codec.decode_response(record.value, list(record.headers))
    from a2a.utils.proto_utils import parse_lenient

    assert parse_lenient(response.result, StreamResponse()) == event
    assert response.seq == 3


@pytest.mark.unit
@pytest.mark.parametrize(
    "params",
    [
        {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hi"}]}},
        {"message": {"messageId": "m1", "role": "ROLE_USER"}},
        {"message": {"role": "ROLE_USER", "parts": [{"text": "hi"}]}},
        {"message": {"messageId": "m1", "parts": [{"text": "hi"}]}},
        {},
    ],
)
def test_the_cached_required_field_check_agrees_with_the_sdk(params: dict[str, object]) -> None:
    from a2a.types.a2a_pb2 import SendMessageRequest
    from a2a.utils.proto_utils import validate_proto_required_fields
    from chorus_agents.binding.codec import _complete
    from chorus_agents.proto import from_dict

    request = from_dict(params, SendMessageRequest())
    try:
        validate_proto_required_fields(request)
        sdk_accepts = True
    except InvalidParamsError:
        sdk_accepts = False
    assert _complete(request) == sdk_accepts
