"""HTTP answers only after the commit that stores what they report.

Over Kafka an answer is itself a record of the transaction that stores its task, so a
caller never hears of a task that a crash then loses. Over HTTP the SDK's handler
answers as soon as it has the task in memory. :class:`DurableRequestHandler` wraps the
handler the HTTP gateway serves: a request that changes state (``SendMessage``,
``CancelTask``, push configs) runs in an outbox scope (:mod:`.binding.outbox`); when it
returns, its records are checked (one that could never be written, say a task holding a
1 MiB message, fails the request with a JSON-RPC error naming the reason, and nothing of
it is written), released, and the answer waits for the commit that holds them.

Streams (``SendStreamingMessage``, ``SubscribeToTask``) send each event once the commit
after it was made has succeeded: the task-store writes behind it are durable, so a
caller never sees a state that a crash then loses. That costs an event at most one
commit interval (``delivery.commitInterval``, 100 ms). Reads (``GetTask``,
``ListTasks``, the card) pass through.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.utils.errors import InternalError

from chorus_agents.binding.outbox import Outbox, Scope

Check = Callable[[Scope], Awaitable[tuple[str, str] | None]]
Committed = Callable[[], Awaitable[None]]


class DurableRequestHandler(RequestHandler):
    """``inner``, answering state changes once committed; see the module docstring."""

    def __init__(
        self, inner: RequestHandler, outbox: Outbox, *, check: Check, committed: Committed
    ) -> None:
        self.inner = inner
        self.outbox = outbox
        self._check = check
        self._committed = committed

    async def _durably(self, call: Awaitable[Any]) -> Any:
        scope = self.outbox.scope()
        try:
            result = await call
        except BaseException:
            scope.close()  # what a failed call wrote is dropped with it
            raise
        refusal = await self._check(scope)
        records = scope.close()
        if refusal is not None:
            reason, why = refusal
            raise InternalError(message=f"{reason}: {why}")
        self.outbox.release(records, loose=True)  # no input record runs it again
        await self._committed()
        return result

    # --- state changes: answered once committed ---------------------------------------------

    async def on_message_send(self, params: Any, context: ServerCallContext) -> Any:
        return await self._durably(self.inner.on_message_send(params, context))

    async def on_cancel_task(self, params: Any, context: ServerCallContext) -> Any:
        return await self._durably(self.inner.on_cancel_task(params, context))

    async def on_create_task_push_notification_config(
        self, params: Any, context: ServerCallContext
    ) -> Any:
        return await self._durably(
            self.inner.on_create_task_push_notification_config(params, context)
        )

    async def on_delete_task_push_notification_config(
        self, params: Any, context: ServerCallContext
    ) -> Any:
        return await self._durably(
            self.inner.on_delete_task_push_notification_config(params, context)
        )

    async def _durable_stream(
        self, events: AsyncGenerator[Event, None]
    ) -> AsyncGenerator[Event, None]:
        try:
            async for event in events:
                await self._committed()
                yield event
        finally:
            await events.aclose()

    def on_message_send_stream(
        self, params: Any, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        return self._durable_stream(self.inner.on_message_send_stream(params, context))

    def on_subscribe_to_task(
        self, params: Any, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        return self._durable_stream(self.inner.on_subscribe_to_task(params, context))

    # --- reads: passed through --------------------------------------------------------------

    async def on_get_task(self, params: Any, context: ServerCallContext) -> Any:
        return await self.inner.on_get_task(params, context)

    async def on_list_tasks(self, params: Any, context: ServerCallContext) -> Any:
        return await self.inner.on_list_tasks(params, context)

    async def on_get_task_push_notification_config(
        self, params: Any, context: ServerCallContext
    ) -> Any:
        return await self.inner.on_get_task_push_notification_config(params, context)

    async def on_list_task_push_notification_configs(
        self, params: Any, context: ServerCallContext
    ) -> Any:
        return await self.inner.on_list_task_push_notification_configs(params, context)

    async def on_get_extended_agent_card(self, params: Any, context: ServerCallContext) -> Any:
        return await self.inner.on_get_extended_agent_card(params, context)
